"""Migrations that never queue the writers (PostgreSQL).

An ``ALTER TABLE`` needs its table to itself: it waits for every open transaction that touched
the table, and every statement that arrives after it -- each writer's INSERT -- waits behind it.
One transaction left open in a notebook would stop the whole pipeline for as long as it stays
open. So each script's transaction starts with ``SET LOCAL lock_timeout`` (``ddl_lock_timeout``,
default 2 s; transaction-scoped, so nothing leaks to a pooled connection): a lock not granted by
then fails the statement, the script is rolled back -- its locks released, the writers queued
behind it go on -- and it is tried again after a backoff (0.5 s doubling to 5 s), up to
``ddl_retries`` times (default 10: about a minute in all). Each wait is reported, naming the
sessions that held locks on the schema's tables since before it began. If they are still there
after the last try, ScriptBlocked says who they are; the script is rolled back, the scripts
before it stay applied.

Scripts with ``atomic = False`` (``CREATE INDEX CONCURRENTLY``) run outside a transaction and
take no lock that writers wait for; online scripts pace their own locks (modelstore.online).
SQLite has no such queue: a run holds the database's write lock from the start.

MySQL/MariaDB queue the same way behind an ALTER's metadata lock. There the wait is
``lock_wait_timeout`` (whole seconds: the timeout rounded up), set for the script's statements;
a script whose first statement timed out changed nothing and is tried again like this, while one
that times out after some of its operations completed is a script that failed partway
(modelstore.engine.nontx).
"""
import collections
import time

from ..dialects import dialect_of, LOCK_NOT_AVAILABLE, mysql_errno, MYSQL_LOCK_WAIT, sqlstate
from ..exceptions import ConfigError, ScriptBlocked, ScriptFailedPartway
from ..shared.database import check_timeout
from ..shared.defaults import DDL_LOCK_TIMEOUT, DDL_RETRIES

__all__ = ['DDL_LOCK_TIMEOUT', 'DDL_RETRIES', 'LockWait', 'Blocker', 'DdlLocks',
           'check_retries']

BACKOFF, MAX_BACKOFF = 0.5, 5.0

# What one wait was: the script, which attempt failed (of how many allowed), how long it waited,
# how long until the next, and who held the locks.
LockWait = collections.namedtuple('LockWait', 'script attempt attempts waited retry_in blockers')


class Blocker(collections.namedtuple('Blocker', 'pid state seconds tables query')):
    """A session that held locks on the schema's tables since before the wait began."""

    def describe(self):
        query = ' '.join((self.query or '').split())
        if len(query) > 120:
            query = query[:117] + '...'
        return 'pid %d (%s for %.0f s, holding locks on %s): %s' % (
            self.pid, self.state or 'unknown state', self.seconds, ', '.join(self.tables),
            query or '(query not visible to this role)')

    def as_dict(self):
        return self._asdict()


def check_retries(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError('ddl_retries must be a whole number, at least 0, got %r' % (value,))
    return value


def _timed_out(exc):
    """The statement failed on lock_timeout (SQLSTATE 55P03), here or in what caused it."""
    seen = 0
    while exc is not None and seen < 8:
        if sqlstate(exc) == LOCK_NOT_AVAILABLE or mysql_errno(exc) == MYSQL_LOCK_WAIT:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def find_blockers(database, waited):
    """Sessions holding locks on the schema's tables whose transaction is older than the wait
    (the ones it waited for); [] if that cannot be read."""
    try:
        rows = dialect_of(database).blocker_rows(database, max(waited - 0.05, 0))
    except Exception:  # Naming them is a courtesy; the failure itself is what matters.
        return []
    return [Blocker(pid, state, float(seconds or 0), list(tables), query)
            for pid, state, seconds, tables, query in rows]


class DdlLocks:
    """The lock_timeout and retries of one run's scripts (active on PostgreSQL only)."""

    def __init__(self, database, timeout=DDL_LOCK_TIMEOUT, retries=DDL_RETRIES,
                 sleep=time.sleep):
        self.database = database
        self.timeout = check_timeout(timeout, 'ddl_lock_timeout')
        if self.timeout <= 0:  # 0 is PostgreSQL's "wait forever": the queue this prevents.
            raise ConfigError('ddl_lock_timeout must be more than 0 s, got %r' % (timeout,))
        self.retries = check_retries(retries)
        self.dialect = dialect_of(database)
        self.active = self.dialect.ddl_lock_waits
        self._sleep = sleep

    def set_local(self):
        """In a script's transaction: fail a lock wait after ``timeout``. (MySQL: for the
        session, until ``reset``.)"""
        self.dialect.set_ddl_lock_timeout(self.database, self.timeout)

    def reset(self):
        """MySQL: the session's lock_wait_timeout back to the server's."""
        self.dialect.reset_ddl_lock_timeout(self.database)

    def run(self, name, attempt, on_wait=None):
        """``attempt()`` (one try of script ``name``), tried again after a lock wait."""
        started = time.monotonic()
        for number in range(1, self.retries + 2):
            began = time.monotonic()
            try:
                return attempt()
            except Exception as exc:
                if not self.active or not _timed_out(exc) or isinstance(exc,
                                                                        ScriptFailedPartway):
                    raise
                waited = time.monotonic() - began
                blockers = find_blockers(self.database, waited)
                if number > self.retries:
                    raise ScriptBlocked(name, number, self.timeout, time.monotonic() - started,
                                        [b.describe() for b in blockers],
                                        [b.as_dict() for b in blockers]) from exc
                delay = min(BACKOFF * 2 ** (number - 1), MAX_BACKOFF)
                if on_wait is not None:
                    on_wait(LockWait(name, number, self.retries + 1, waited, delay, blockers))
                self._sleep(delay)
