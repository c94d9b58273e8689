"""How a registry call meets its database: its transaction, its errors, a lost connection.

Every call of a ModelStore runs through its ``Calls.run``. On SQLite that is the call's write
transaction and the error mapping (``_guard``). On a server it is also what keeps a pipeline
running through a restart or a failover:

* Before a call, the idle connection's socket is looked at (``select``, no round trip): a
  server that went away has closed it, and the call reconnects before sending anything.
* A call whose connection is lost before anything could have been committed reconnects and
  runs again. Reconnecting is retried with backoff (0.05 s doubling to 0.5 s) until
  ``reconnect_timeout`` (default 30 s) has passed, then StorageError says that no server
  accepted the connection. With a multi-host URL and ``target_session_attrs=read-write``, libpq
  itself skips a standby, so the call lands on whichever server is the primary now.
* A call whose connection is lost while its change may have been committed raises
  OutcomeUnknown and is never retried: a retry could store the row twice.
* A write the server chose as a deadlock's victim (PostgreSQL 40P01, InnoDB 1213) was rolled
  back whole, so it runs again (up to 8 runs), unless it ran inside the caller's own
  transaction, which the server rolled back too.
* ``add_model`` on PostgreSQL is a single INSERT sent without BEGIN/COMMIT: the statement is
  its own transaction (atomic, and durable as the server's synchronous_commit makes it), so it
  costs one round trip instead of three. Its connection lost mid-statement is OutcomeUnknown.

A store of an earlier release learns that a contract script newer than its code was applied
(``migrate --force`` while it was alive) at its next heartbeat, or from the next write that
fails: from then on every write raises SchemaNewerThanCode naming the scripts, and reads go
on (modelstore.engine.clients; docs/rolling-upgrades.md).
"""
import logging
import select
import time

from peewee import DatabaseError, InterfaceError

from ..dialects import (constraint_error, dialect_of, DRIVER_ERRORS, is_constraint,
                        is_deadlock, is_schema_missing)
from ..exceptions import (ModelStoreError, NotFound, OutcomeUnknown, SchemaNewerThanCode,
                          StorageError, UnreadableValue)
from ..shared.database import check_timeout, write_transaction

__all__ = ['Calls', 'RECONNECT_TIMEOUT']

RECONNECT_TIMEOUT = 30.0  # seconds a call waits for a server to accept a new connection.
_ATTEMPTS = 8  # runs of one call at most (each after a reconnect that succeeded).

# Reconnects are logged as warnings; a library leaves where they go to the application.
log = logging.getLogger('modelstore')
log.addHandler(logging.NullHandler())


class _guard:
    """Turn a database failure into StorageError naming the operation.

    A missing table or column means the schema is behind the code (the seeds' failure): that
    becomes SchemaOutOfDate naming the pending scripts and the command, when scripts are pending.
    A write (``check_newer``) that fails while the history records a contract script newer
    than this code raises SchemaNewerThanCode: that script is why it failed.
    """

    def __init__(self, what, calls, check_newer=False):
        self.what = what
        self.calls = calls
        self.check_newer = check_newer

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return False
        if issubclass(exc_type, UnreadableValue) and not exc.row_ids:
            raise exc.at(self.calls.rows_holding(exc)) from None
        # sqlite3's own errors too: add_models' executemany runs on the driver's cursor.
        if not issubclass(exc_type, (DatabaseError, InterfaceError) + DRIVER_ERRORS):
            return False
        # Not on a lost connection: asking would reconnect, and the call's retry decides that.
        if self.check_newer and not self.calls._connection_lost():
            self.calls.refuse_if_newer(self.calls.newer_contract(), exc)
        if is_constraint(exc):
            raise constraint_error(exc, self.calls.database) from exc
        if is_schema_missing(exc):
            self.calls.out_of_date()
        raise StorageError('%s failed: %s' % (self.what, exc)) from exc


def _peer_closed(conn):
    """Has the server closed this idle connection (or sent anything unasked, which an idle
    connection of ours only gets as it is being terminated)? No round trip: a poll of the
    socket."""
    if getattr(conn, 'closed', False):
        return True
    # psycopg2's connection has fileno(); PyMySQL's keeps its socket (None once closed).
    sock = conn if hasattr(conn, 'fileno') else getattr(conn, '_sock', None)
    if sock is None:
        return True
    try:
        return bool(select.select([sock.fileno()], [], [], 0)[0])
    except (OSError, ValueError, AttributeError, InterfaceError):
        return True


class Calls:
    """How the calls of one store meet its database.

    ``refuse_writes``: an exception every write raises (connect(allow_newer=True), or set when
    a contract script newer than this code is found). ``rows_holding(error)``: the ids of the
    rows holding an unreadable value (the error names the column and value).
    ``out_of_date()``: raise SchemaOutOfDate if scripts are pending. ``newer_contract()``: the
    contract scripts (or of unknown phase) the history records and this code does not know,
    asked after a write failed; [] when it cannot tell.
    """

    def __init__(self, database, url, *, refuse_writes=None, reconnect_timeout=RECONNECT_TIMEOUT,
                 rows_holding=lambda error: [], out_of_date=lambda: None, registration=None,
                 newer_contract=lambda: []):
        self.database = database
        self.url = url  # Masked: safe to print.
        self.refuse_writes = refuse_writes
        self.reconnect_timeout = check_timeout(reconnect_timeout, 'reconnect_timeout')
        self.rows_holding = rows_holding
        self.server = not dialect_of(database).embedded  # Reconnects, single statements.
        self.out_of_date = out_of_date
        self.newer_contract = newer_contract
        # True once refuse_writes is this store's own finding (not connect()'s allow_newer):
        # a heartbeat that no longer finds the script (rolled back) lets writes go on again.
        self.refusing_newer = False
        # This process's row in the clients table (modelstore.engine.clients), refreshed by
        # the first call after each HEARTBEAT seconds; None when the store did not register.
        self.registration = registration
        # How often the store reconnected after losing its server, and how many calls ran
        # again.
        self.reconnects = 0
        self.retried_calls = 0

    def one(self, what, query, missing):
        """The one row ``query`` selects, or NotFound(``missing``)."""
        row = self.run(what, query.get_or_none)
        if row is None:
            raise NotFound(missing)
        return row

    def run(self, what, body, write=False, retry=True, single=False, beat=True):
        """Run ``body()``, in a write transaction if ``write``, and return its result.

        ``single``: ``body`` sends one statement, which on a server runs without BEGIN/COMMIT.
        ``retry=False``: a call that cannot run again (its input was consumed) is not rerun
        after a lost connection; it raises, saying nothing was stored. ``beat=False``: the
        call is the client registration's own (a heartbeat, the removal at close).
        """
        registration = self.registration
        if beat and registration is not None and registration.due() and \
                not self.database.in_transaction():
            self._beat(registration)  # First: it may find that writes must be refused.
        # The registration's own writes (beat=False) go on: the store is still a client.
        if write and beat and self.refuse_writes is not None:
            raise self.refuse_writes.with_traceback(None)
        server = self.server
        deadline = None
        # A deadlock's victim was rolled back whole by the server: run again, unless the
        # caller's own transaction holds this call (it was rolled back too: the caller's to
        # rerun) or the call's input was consumed.
        rerunnable = write and retry and not self.database.in_transaction()
        for attempt in range(1, _ATTEMPTS + 1):
            sent = False  # True once a statement that commits the change may have been sent.
            try:
                with _guard(what, self, check_newer=write and beat):
                    if server and not self.database.in_transaction():
                        self._ready(what)
                    if not write:
                        return body()
                    if single and server and not self.database.in_transaction():
                        sent = True
                        return body()
                    with write_transaction(self.database):
                        result = body()
                        sent = True  # The COMMIT is next.
                    return result
            except StorageError as exc:
                if rerunnable and attempt < _ATTEMPTS and is_deadlock(exc.__cause__):
                    log.info('%s was a deadlock\'s victim (attempt %d); running it again',
                             what, attempt)
                    self.retried_calls += 1
                    time.sleep(0.005 * attempt)
                    continue
                if not server or not self._connection_lost():
                    raise
                cause = exc.__cause__
                if sent:
                    self._drop_connection()
                    raise OutcomeUnknown(what) from cause
                if not retry:
                    self._drop_connection()
                    raise StorageError(
                        '%s failed: the connection to the database was lost before anything '
                        'was committed, so nothing of it was stored (%s); the next call '
                        'reconnects' % (what, _first_line(cause))) from cause
                if attempt == _ATTEMPTS:
                    raise
                if deadline is None:
                    deadline = time.monotonic() + self.reconnect_timeout
                self._reconnect(what, deadline, cause)
                self.retried_calls += 1

    def _beat(self, registration):
        """Refresh this client's last_seen (a call of its own, before the caller's). A failure
        is logged, not raised: the caller's call does not depend on it, and a client not seen
        for LIFE seconds counts as gone, so nothing waits for it forever."""
        try:
            self.run('heartbeat', registration.beat, write=True, beat=False)
            # A read of its own, after the UPDATE's transaction: one small SELECT per beat,
            # whose failure cannot undo the refresh.
            newer = self.run('heartbeat', registration.newer_contract, beat=False)
        except ModelStoreError as exc:  # Lost storage, or a schema rolled back below 0012.
            log.warning('could not refresh this client in %s: %s', self.url, exc)
            return
        if newer:
            self.refuse_if_newer(newer)
        elif self.refusing_newer:  # The script was rolled back: the schema suits this code.
            self.refuse_writes, self.refusing_newer = None, False
            log.warning('%s: no contract script newer than this code is applied any more; '
                        'writes go on', self.url)

    def refuse_if_newer(self, newer, cause=None):
        """Contract scripts this code does not know were applied (``newer``): refuse every
        write from now on, with SchemaNewerThanCode naming them, and raise it if ``cause`` (the
        write that failed because of them)."""
        if not newer:
            return
        if self.refuse_writes is None:
            self.refuse_writes = SchemaNewerThanCode(self.url, newer, running=True)
            self.refusing_newer = True
            log.warning('%s: contract script%s newer than this code %s been applied (%s); '
                        'this store only reads from now on', self.url,
                        's' if len(newer) > 1 else '', 'have' if len(newer) > 1 else 'has',
                        ', '.join(newer))
        if cause is not None:
            raise SchemaNewerThanCode(self.url, newer, running=True) from cause

    def leave(self):
        """Remove this client's row (the store is being closed)."""
        registration = self.registration
        if registration is None or registration.id is None:
            return
        try:
            self.run('unregister', registration.leave, write=True, single=True, beat=False)
        except ModelStoreError as exc:  # A close does not fail: the row ages out in LIFE.
            log.warning('could not remove this client from %s: %s', self.url, exc)

    def _ready(self, what):
        """Connect if there is no connection; reconnect first if the server closed it."""
        db = self.database
        if db.is_closed():
            db.connect()
        elif _peer_closed(db.connection()):
            self._drop_connection()
            db.connect()
            self.reconnects += 1
            log.warning('%s: %s had closed the connection; reconnected', what, self.url)

    def _connection_lost(self):
        """No usable connection after a failure: it died, or a (re)connect failed."""
        db = self.database
        return db.is_closed() or not db.is_connection_usable()

    def _drop_connection(self):
        try:
            self.database.close()
        except Exception:  # A broken connection may fail even to close: forget it.
            self.database.dispose()

    def _reconnect(self, what, deadline, cause):
        """Connect again, with backoff, until ``deadline``; StorageError after that."""
        started, delay, tries = time.monotonic(), 0.05, 0
        while True:
            self._drop_connection()
            tries += 1
            try:
                self.database.connect()
            except Exception as exc:  # Refused, a standby (read-write wanted), starting up.
                cause = exc
            else:
                self.reconnects += 1
                log.warning('%s: lost the connection to %s; reconnected after %.2f s (%d '
                            'attempt%s)', what, self.url, time.monotonic() - started, tries,
                            '' if tries == 1 else 's')
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise StorageError(
                    '%s failed: lost the connection to %s, and no server accepted a new one '
                    'for %.1f s (%d attempts; reconnect_timeout=%g); nothing of this call was '
                    'stored. Last error: %s' % (what, self.url, time.monotonic() - started,
                                                tries, self.reconnect_timeout,
                                                _first_line(cause))) from cause
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.5)


def _first_line(exc):
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
