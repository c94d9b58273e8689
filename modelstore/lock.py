"""One lock per backend, held for a whole migration run, with a bounded wait.

The applied set is read *after* the lock is taken, so a runner that waited finds the work done.

* SQLite: the lock is the run's own write transaction (``BEGIN IMMEDIATE``); scripts run inside
  it as savepoints. The database holds it, so kill -9 releases it and rolls the run back -- a
  lock row would outlive the process. Foreign-key enforcement is switched off *before* BEGIN (the
  pragma is ignored inside a transaction; left on, a table rebuild's DROP TABLE cascades to child
  rows), and after each script no foreign-key violation may exist that was not there before.
  ``PRAGMA foreign_key_check`` reads every child row, so it runs only after a script that could
  have created a violation: one that changed rows, dropped or rebuilt a table (a new root page),
  or changed a table other than by adding columns without foreign keys (its old columns and
  foreign keys compared before and after). Adding columns and
  indexes -- what schema changes mostly are -- then costs no scan at all. The violations that
  were there before (legacy files may hold orphans) are only read when one is found.
* PostgreSQL: a session advisory lock (see PostgresRunLock); each script is its own transaction.
* MySQL (``GET_LOCK``) would slot in the same way; it is not supported yet.
"""
import sqlite3
import time

from peewee import OperationalError, PostgresqlDatabase, SqliteDatabase

from .backup import busy_ms, check_timeout
from .db import BUSY_TIMEOUT
from .exceptions import LockTimeout, MigrationError

__all__ = ['RunLock', 'run_lock']

DEFAULT_TIMEOUT = 30.0


class NeedBaseline(Exception):
    """Violations were found before the ones already there were read: undo, read, run again."""


class RunLock:
    """Context manager: acquire on enter (or raise LockTimeout), release on exit."""

    # True when every script of the run is committed only as the lock is released.
    commits_at_exit = False

    def __init__(self, database, timeout=DEFAULT_TIMEOUT):
        self.database = database
        self.timeout = check_timeout(timeout)

    def mark(self):
        """Called before each script, inside its transaction."""

    def read_baseline(self):
        """See SqliteRunLock."""

    def check(self):
        """Verify integrity after a script, inside its transaction; raise to roll it back."""

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
            if 'locked' in str(exc) or 'busy' in str(exc):
                raise LockTimeout('another process is writing to the database and held its '
                                  'lock for more than %g s; try again when it has finished'
                                  % self.timeout) from None
            raise
        finally:
            db.pragma('busy_timeout', int(BUSY_TIMEOUT * 1000))
        self._known = None  # The violations accepted so far; None: not read yet.
        return self

    def _violations(self):
        # (table, rowid, parent): the constraint's number shifts when a table gains a foreign key.
        return {row[:3] for row in self.database.execute_sql('PRAGMA foreign_key_check')}

    def _state(self):
        tables = {name: (root, sql) for name, root, sql in self.database.execute_sql(
            "SELECT name, rootpage, sql FROM sqlite_master WHERE type = 'table'")}
        return self.database.connection().total_changes, tables

    def mark(self):
        self._before = self._state()

    def _cannot_orphan(self):
        """True when nothing since mark() can have created a foreign-key violation."""
        (changes, before), (changes_now, after) = self._before, self._state()
        if changes_now != changes:  # Rows were inserted, updated or deleted.
            return False
        for name, (root, sql) in before.items():
            if after.get(name) == (root, sql):
                continue
            if name not in after or after[name][0] != root:
                return False  # Dropped, or rebuilt under the name.
            if not self._only_columns_added(name, sql):
                return False
        return True  # New tables start empty: rows in them would have counted as changes.

    def _only_columns_added(self, table, old_sql):
        """The table kept its columns and foreign keys and gained columns (ADD COLUMN)."""
        quoted = table.replace('"', '""')
        shadow = sqlite3.connect(':memory:')
        try:
            shadow.execute(old_sql)
            old_columns = shadow.execute('PRAGMA table_info("%s")' % quoted).fetchall()
            old_keys = shadow.execute('PRAGMA foreign_key_list("%s")' % quoted).fetchall()
        except sqlite3.Error:
            return False
        finally:
            shadow.close()
        columns = self.database.execute_sql('PRAGMA table_info("%s")' % quoted).fetchall()
        keys = self.database.execute_sql('PRAGMA foreign_key_list("%s")' % quoted).fetchall()
        return (len(columns) > len(old_columns) and columns[:len(old_columns)] == old_columns
                and sorted(keys) == sorted(old_keys))

    def check(self):
        if self._cannot_orphan():
            return
        found = self._violations()
        if self._known is None:
            if found:
                raise NeedBaseline()
            self._known = found
            return
        new = sorted(found - self._known, key=repr)
        if new:
            tables = sorted({'%s -> %s' % (row[0], row[2]) for row in new})
            raise MigrationError('foreign key check failed: %d row(s) would reference missing '
                                 'rows (%s)' % (len(new), ', '.join(tables)))
        self._known = found

    def read_baseline(self):
        """Record the violations that exist now (the script that found some was undone)."""
        self._known = self._violations()

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
