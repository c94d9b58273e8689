"""One lock per backend, held for a whole migration run, with a bounded wait.

The applied set is read *after* the lock is taken, so a runner that waited finds the work done.

* SQLite: the lock is the run's own write transaction (``BEGIN IMMEDIATE``); scripts run inside
  it as savepoints. The database holds it, so kill -9 releases it and rolls the run back -- a
  lock row would outlive the process. Foreign-key enforcement is switched off *before* BEGIN (the
  pragma is ignored inside a transaction; left on, a table rebuild's DROP TABLE cascades to child
  rows), and the lock's ``watch`` (modelstore.engine.fkwatch) sees to it that no script leaves a
  foreign-key violation that was not there before.
* PostgreSQL: a session advisory lock (see PostgresRunLock); each script is its own transaction.
* MySQL (``GET_LOCK``) would slot in the same way; it is not supported yet.
"""
import sqlite3
import time

from peewee import OperationalError, PostgresqlDatabase, SqliteDatabase

from ..exceptions import LockTimeout, MigrationError
from ..shared.database import BUSY_TIMEOUT, busy_ms, check_timeout
from ..shared.dberrors import is_busy
from .fkwatch import ForeignKeyWatch, NoWatch

__all__ = ['RunLock', 'run_lock']

DEFAULT_TIMEOUT = 30.0


class RunLock:
    """Context manager: acquire on enter (or raise LockTimeout), release on exit."""

    # True when every script of the run is committed only as the lock is released.
    commits_at_exit = False

    def __init__(self, database, timeout=DEFAULT_TIMEOUT):
        self.database = database
        self.timeout = check_timeout(timeout)
        # Checks each script for new foreign-key violations (SQLite; see modelstore.engine.fkwatch).
        self.watch = NoWatch()

    def discard(self):
        """Undo everything done under the lock (a dry run); the lock stays held."""

    def still_open(self):
        """SQLite: the lock's transaction was not rolled back by SQLite itself."""
        return True


class SqliteRunLock(RunLock):
    commits_at_exit = True

    def __enter__(self):
        db = self.database
        if db.in_transaction():
            raise MigrationError('a migration run cannot start inside an open transaction')
        self._foreign_keys = db.pragma('foreign_keys')
        db.pragma('foreign_keys', 0)
        db.pragma('busy_timeout', busy_ms(self.timeout))
        self._txn = db.atomic('IMMEDIATE')
        try:
            self._inner = self._txn.__enter__()
        except (OperationalError, sqlite3.OperationalError) as exc:
            self._restore()
            if is_busy(exc):
                raise LockTimeout('another process is writing to the database and held its '
                                  'lock for more than %g s; try again when it has finished'
                                  % self.timeout) from None
            raise
        finally:
            db.pragma('busy_timeout', int(BUSY_TIMEOUT * 1000))
        self.watch = ForeignKeyWatch(db)
        return self

    def still_open(self):
        return self.database.connection().in_transaction

    def discard(self):
        # Rolling back only a savepoint is not enough: committing the outer transaction would
        # still bump the file's change counter, and a dry run must leave it byte-identical.
        self._inner.rollback()

    def __exit__(self, exc_type, exc, tb):
        try:
            return self._txn.__exit__(exc_type, exc, tb)
        finally:
            self._restore()

    def _restore(self):
        if self._foreign_keys:
            self.database.pragma('foreign_keys', 1)


class PostgresRunLock(RunLock):
    """A session advisory lock, polled with ``pg_try_advisory_lock`` until the timeout.

    Advisory locks are scoped to the database, held by the session (a killed runner's lock goes
    with its connection), and never block ordinary reads and writes. Scripts then run one
    transaction each, with their history row.
    """
    # Any fixed 64-bit key; this one spells "modelstr".
    KEY = 0x6D6F64656C737472

    def __enter__(self):
        db = self.database
        if db.in_transaction():
            raise MigrationError('a migration run cannot start inside an open transaction')
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while not db.execute_sql('SELECT pg_try_advisory_lock(%s)', (self.KEY,)).fetchone()[0]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeout('another modelstore migration on this database held its '
                                  'lock for more than %g s; try again when it has finished'
                                  % self.timeout)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.25)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.database.execute_sql('SELECT pg_advisory_unlock(%s)', (self.KEY,))
        except Exception:
            if exc_type is None:  # A lost connection has released the lock already.
                raise
        return False


_LOCKS = ((SqliteDatabase, SqliteRunLock), (PostgresqlDatabase, PostgresRunLock))


def run_lock(database, timeout=DEFAULT_TIMEOUT):
    """The run lock for ``database``'s backend."""
    for cls, lock in _LOCKS:
        if isinstance(database, cls):
            return lock(database, timeout)
    raise MigrationError('migrations are not yet supported on %s; SQLite and PostgreSQL are'
                         % type(database).__name__)
