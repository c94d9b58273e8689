"""The interface every backend's dialect has: capability flags and the behaviour that differs.

Capability flags are class attributes, the behaviour that differs methods (the defaults here are
the plainest backend's).
"""
import peewee

from ..exceptions import MigrationError

__all__ = ['Dialect', 'UNKNOWN', 'like_pattern']


def like_pattern(needle):
    """``%needle%`` with LIKE's wildcards in ``needle`` escaped, so they match themselves (the
    escape character is a backslash, said by ``ESCAPE`` on every backend)."""
    return '%%%s%%' % needle.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_')


_SESSION_CLASSES = {}


class Dialect:
    """One backend as modelstore uses it. ``name`` is the key of per-backend tables (such as
    ``shared.tables.VERSION_TRIGGERS``); ``label`` is what a message calls it."""

    name = None
    label = 'an unsupported database'
    database_class = None  # peewee's class for the backend (a subclass is the same backend).
    schemes = ()  # The URL schemes whose class is database_class itself (not playhouse's).

    # -- capability flags ----------------------------------------------------------------------
    # DDL runs inside a transaction and is rolled back with it (not MySQL: DDL commits).
    transactional_ddl = False
    # INSERT ... RETURNING.
    returning = False
    # An upsert names its key (ON CONFLICT (key) DO UPDATE); MySQL's ON DUPLICATE KEY UPDATE
    # takes none (peewee refuses a conflict_target there).
    upsert_names_key = True
    # A statement's insert id (the driver's ``lastrowid``) can carry a value the statement
    # computed, by LAST_INSERT_ID(expr): an upsert returns its new value without RETURNING.
    insert_id_value = False
    # A JSON column's value is bound as its JSON text in a plain statement (PostgreSQL's
    # driver takes an adapter for jsonb instead).
    json_as_text = True
    # CREATE INDEX ... WHERE.
    partial_indexes = False
    # CREATE INDEX CONCURRENTLY (outside a transaction; an INVALID index if it dies).
    concurrent_indexes = False
    # A script's operations are logged one by one in its history row (modelstore.engine.nontx):
    # what a script that failed half-way did is known without a transaction to undo it.
    operation_log = False
    # A file on this machine, not a server (no reconnect, no failover; backups are copies).
    embedded = False
    # A migration run holds one write transaction around all its scripts (savepoints each), so
    # a failure leaves none of them applied; elsewhere each script commits by itself.
    one_transaction_per_run = False
    # The last batch of an online script: '' (the write transaction is enough), 'table' (LOCK
    # TABLE in the transaction) or 'tables' (LOCK TABLES instead of a transaction).
    final_batch_lock = ''
    # Key of modelstore.engine.batch_runner's target batch times.
    batch_target = 'postgres'
    # DDL waits behind other sessions' locks, and the writers queue behind it: each script's
    # wait is bounded and retried (modelstore.engine.ddlwait). SQLite has one writer.
    ddl_lock_waits = False

    # The server's clock as seconds since 1970 (a float), in SQL: what every client of one
    # database reads the same (modelstore.engine.clients), whatever each machine's clock says.
    epoch = "(julianday('now') - 2440587.5) * 86400.0"

    # Mixed into playhouse.db_url's class for a URL when modelstore opens it (session_class).
    session_mixin = None
    # A migration run's session on this backend (modelstore.dialects.session).
    run_session_class = None

    def __repr__(self):
        return '<dialect %s>' % (self.name or 'unknown')

    # -- opening and the session ----------------------------------------------------------------
    def session_class(self, cls):
        """``cls`` (playhouse.db_url's class for a URL) with ``session_mixin`` mixed in: one
        class per ``cls``, made once."""
        if self.session_mixin is None:
            return cls
        if cls not in _SESSION_CLASSES:
            _SESSION_CLASSES[cls] = type(cls.__name__, (self.session_mixin, cls),
                                         {'__module__': self.session_mixin.__module__})
        return _SESSION_CLASSES[cls]

    def run_session(self, database, timeout):
        """The session of a migration run on ``database``: entering it takes the run lock,
        waiting at most ``timeout`` seconds (then LockTimeout)."""
        if self.run_session_class is None:
            raise MigrationError('migrations are not supported on %s; SQLite, PostgreSQL and '
                                 'MySQL/MariaDB are' % type(database).__name__)
        return self.run_session_class(database, timeout)

    def write_transaction(self, database):
        """A transaction that takes the write lock before it reads (SQLite: BEGIN IMMEDIATE)."""
        return database.atomic()

    def autovacuum_wait(self, database, table):
        """PostgreSQL: how long a lock request must wait for an autovacuum of ``table`` to be
        cancelled; None elsewhere, or when none runs."""
        return None

    def waiting_on_me(self, database):
        """Inside a transaction: how many other sessions wait for a lock this one holds (an
        online batch asks before it commits; modelstore.engine.batch_runner)."""
        return 0

    # -- DDL lock waits (modelstore.engine.ddlwait) ---------------------------------------------
    def set_ddl_lock_timeout(self, database, seconds):
        """In a script's transaction: fail a lock wait after ``seconds``."""

    def reset_ddl_lock_timeout(self, database):
        """The session's own lock wait back, where ``set_ddl_lock_timeout`` outlives the
        transaction."""

    def blocker_rows(self, database, waited):
        """(pid, state, seconds, [tables], query) of the sessions holding locks on the schema's
        tables in a transaction older than ``waited`` seconds."""
        return []

    # -- shadow databases (modelstore.engine.shadow) ---------------------------------------------
    def shadow(self, database):
        """Context manager: an empty database of this backend beside ``database`` (on its
        server), on a connection of its own, thrown away afterwards."""
        raise NotImplementedError('%s has no shadow database' % self.label)

    # -- LIKE -------------------------------------------------------------------------------------
    def contains(self, field, pattern):
        """``field`` holds the LIKE ``pattern`` (built by ``like_pattern``), ignoring case."""
        return peewee.NodeList((field, peewee.SQL('LIKE'), pattern, peewee.SQL("ESCAPE '\\'")))

    def probed_per_row(self, subquery):
        """``subquery``, a correlated EXISTS, run for each outer row through its index
        rather than turned into a join that reads every row it matches (SQLite probes so)."""
        return subquery

    # -- JSON ---------------------------------------------------------------------------------
    # -- events wake-ups (modelstore.registry.events) -----------------------------------------

    def notify(self, database, channel, payload):
        """Tell the sessions listening on ``channel`` at the commit (PostgreSQL's NOTIFY);
        elsewhere nothing: their followers look again at their interval."""

    def notify_sql(self, channel, value):
        """The SQL expression that notifies ``channel`` with the text of the SQL ``value``,
        for a RETURNING list; None where there is no NOTIFY."""
        return None

    def listen(self, database, channel):
        """Start listening on ``channel`` on this thread's connection; False where there is
        no LISTEN (then wait_notified is never called)."""
        return False

    def unlisten(self, database, channel):
        """Stop listening, and drop what arrived."""

    def wait_notified(self, database, timeout):
        """Wait until a notification arrives on this connection, or ``timeout`` seconds pass;
        whether one did."""
        raise NotImplementedError('%s has no LISTEN' % self.label)

    def json_object(self, pairs):
        """A JSON object built in SQL from [(key, expression), ...], stored as a JSON
        column takes it (add_models' model.added events)."""
        raise NotImplementedError('%s has no JSON functions here' % self.label)

    def final_number(self, field, key):
        """The number a JSON object column ``field`` holds under ``key`` -- the last element
        of a list (a curve's final value) -- as a double; NULL for anything else (no such key,
        text, an empty list, a list ending in a non-number, a value that is not JSON).
        ``key`` is checked by the caller (modelstore.registry.validate's metric names): it
        is placed inside a JSON path."""
        raise NotImplementedError('%s has no JSON functions here' % self.label)

    # -- introspection ----------------------------------------------------------------------------
    def invalid_indexes(self, database, table):
        """Names of ``table``'s indexes a failed build left unusable ([] where none can be)."""
        return []

    def table_columns(self, database, table):
        """[(name, declared type, nullable, default, primary key?)] of ``table``'s columns."""
        full = self.full_column_types(database, table)
        return [(c.name, full.get(c.name, c.data_type), bool(c.null), c.default,
                 bool(c.primary_key)) for c in database.get_columns(table)]

    def table_indexes(self, database, table, primary_key):
        """{(columns, unique?)} of ``table``'s indexes, but its primary key
        (``primary_key``: its columns)."""
        indexes = set()
        for index in database.get_indexes(table):
            key = (tuple(index.columns), bool(index.unique))
            if key != (primary_key, True):  # A unique index on the primary key is the key.
                indexes.add(key)
        return indexes

    def full_column_types(self, database, table):
        """{column: full declared type} where peewee's get_columns reduces it ({} if not)."""
        return {}

    def trigger_names(self, database, table):
        """Names of the triggers on ``table``."""
        raise NotImplementedError('%s has no trigger introspection' % self.label)


UNKNOWN = Dialect()
