"""SQLite as modelstore uses it: a file on this machine, one writer at a time.

Opening mixes ``_SafeRollback`` into playhouse.db_url's class: a rollback skipped when SQLite
already rolled the transaction back by itself. A write transaction takes the write lock first
(``BEGIN IMMEDIATE``). A migration run is one write transaction with a savepoint per script
(SqliteRunSession), with foreign keys checked by a watch instead of enforced. DDL is
transactional; no concurrent index builds (there is no other writer to let through), partial
indexes yes.
"""
import contextlib
import errno
import os
import sqlite3
import stat
import threading
import time

from peewee import Case, OperationalError, SqliteDatabase, fn

from ..exceptions import LockTimeout, MigrationError
from .base import Dialect
from .errors import is_busy
from .session import NeedBaseline, RunSession, lock_held, poll
from .writers import announced_write

try:
    import fcntl
except ImportError:  # Not POSIX: the write transaction alone keeps runs apart.
    fcntl = None

__all__ = ['SQLITE', 'SqliteDialect', 'SqliteRunSession', 'BUSY_TIMEOUT']

BUSY_TIMEOUT = 5.0  # seconds a writer waits for SQLite's lock before "database is locked".


class _SafeRollback:
    """SQLite: roll back only what is still there, so the error that ended a transaction is the
    one reported.

    On SQLITE_FULL, IOERR, NOMEM or CORRUPT, SQLite may roll the whole transaction back by
    itself. peewee's atomic() then sends ROLLBACK (or ROLLBACK TO SAVEPOINT), which fails with
    "cannot rollback - no transaction is active" and replaces the real error ("database or disk
    is full"). Here a rollback is skipped when the connection is no longer in a transaction.
    """

    def _in_transaction(self):
        return not self.is_closed() and self.connection().in_transaction

    def rollback(self):
        if self._in_transaction():
            super().rollback()

    def savepoint(self):
        return _Savepoint(self)


class _Savepoint:
    """A savepoint as peewee's atomic() nests one, whose rollback survives SQLite's own."""

    def __init__(self, db):
        self.db = db
        self.quoted_sid = 's%s' % os.urandom(8).hex()

    def _begin(self):
        self.db.execute_sql('SAVEPOINT %s' % self.quoted_sid)

    def commit(self, begin=True):
        self.db.execute_sql('RELEASE SAVEPOINT %s' % self.quoted_sid)
        if begin:
            self._begin()

    def rollback(self, begin=True):
        if self.db._in_transaction():
            self.db.execute_sql('ROLLBACK TO SAVEPOINT %s' % self.quoted_sid)
        if begin:
            self._begin()

    def __enter__(self):
        self._begin()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.rollback(False)
            return False
        try:
            self.commit(False)
        except Exception:
            self.rollback(False)
            raise
        return False


class SqliteRunSession(RunSession):
    """Two locks, both released by the kernel or SQLite when the process dies: first ``flock``
    on ``<file>.migrate-lock`` (_RunFile: one run at a time, even while an online script runs
    its batches outside any transaction), then the run's write transaction (``BEGIN
    IMMEDIATE``), its scripts savepoints in it. An online script ends that transaction first
    (``checkpoint``: the scripts before it are committed) and the scripts after it get a new one
    (``resume``). Foreign-key enforcement is switched off *before* BEGIN (the pragma is ignored
    inside a transaction; left on, a table rebuild's DROP TABLE cascades to child rows), and the
    ``watch`` (ForeignKeyWatch) sees to it that no script leaves a foreign-key violation that
    was not there before."""
    commits_at_exit = True
    _txn = None

    def __enter__(self):
        self._refuse_open_transaction()
        db = self.database
        deadline = time.monotonic() + self.timeout
        self._file = _RunFile(db, self.timeout)
        self._foreign_keys = db.pragma('foreign_keys')
        db.pragma('foreign_keys', 0)
        try:  # (What is left of the timeout after waiting for the file.)
            self._begin(max(deadline - time.monotonic(), 0))
        except BaseException:
            self._restore()
            raise
        self.watch = ForeignKeyWatch(db)
        return self

    def _begin(self, wait):
        db = self.database
        db.pragma('busy_timeout', int(wait * 1000))
        txn = db.atomic('IMMEDIATE')
        try:
            self._inner = txn.__enter__()
        except (OperationalError, sqlite3.OperationalError) as exc:
            if is_busy(exc):
                raise LockTimeout('another process is writing to the database and held its '
                                  'lock for more than %g s; try again when it has finished'
                                  % self.timeout) from None
            raise
        finally:
            db.pragma('busy_timeout', int(BUSY_TIMEOUT * 1000))
        self._txn = txn

    def checkpoint(self):
        txn, self._txn, self._inner = self._txn, None, None
        txn.__exit__(None, None, None)  # COMMIT (rolled back and popped if that fails)
        return True

    def resume(self):
        self._begin(self.timeout)

    def still_open(self):
        # (No transaction of the run's own after a checkpoint: nothing SQLite could undo.)
        return not self._txn or self.database.connection().in_transaction

    def discard(self):
        # Rolling back only a savepoint is not enough: committing the outer transaction would
        # still bump the file's change counter, and a dry run must leave it byte-identical.
        self._inner.rollback()

    def __exit__(self, exc_type, exc, tb):
        try:
            if self._txn:
                return self._txn.__exit__(exc_type, exc, tb)
            return False
        finally:
            self._restore()

    def _restore(self):
        try:
            if self._foreign_keys:
                self.database.pragma('foreign_keys', 1)
        finally:
            self._file.release()


class _RunFile:
    """``flock`` on ``<database>.migrate-lock``, polled until the timeout (nothing for an
    in-memory database: no other process can open it).

    The file exists only while a run holds it: the holder deletes it before unlocking, and a
    runner that locked a file someone deleted meanwhile (its inode is no longer the path's)
    tries again. A killed runner leaves the file behind, unlocked; the next run takes it.
    """

    def __init__(self, database, timeout):
        self._fd = None
        path = _main_file(database)
        if fcntl is None or not path:
            return
        self._path = path + '.migrate-lock'
        if not poll(self._try, timeout, 0.005, 0.1):
            raise lock_held(timeout, 'its lock (%s)' % self._path)

    def _try(self):
        try:  # Private (0600), and never through a link someone planted.
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                         0o600)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR):
                self._refuse()
            # A directory this process cannot write to: SQLite cannot write a journal there
            # either, so the run's write transaction fails and reports it (or, with nothing to
            # do, never writes); the transaction alone keeps such runs apart.
            return True
        try:
            held = os.fstat(fd)
            if not stat.S_ISREG(held.st_mode):
                self._refuse()
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            now = os.stat(self._path)
            if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                self._fd, fd = fd, None
                return True
        except (BlockingIOError, FileNotFoundError):
            pass
        finally:
            if fd is not None:
                os.close(fd)
        return False

    def _refuse(self):
        raise MigrationError('%s is not a plain file (a link, a directory or a device put there '
                             'by someone else?); it is where migrations take their lock: remove '
                             'it, then run migrate again' % self._path)

    def release(self):
        if self._fd is not None:
            try:
                os.remove(self._path)
            except OSError:
                pass
            os.close(self._fd)  # Releases the lock.
            self._fd = None


def _main_file(database):
    """The main database file's path; '' for an in-memory or temporary database."""
    for _, name, path in database.execute_sql('PRAGMA database_list').fetchall():
        if name == 'main':
            return path or ''
    return ''


class ForeignKeyWatch:
    """No script may leave a foreign-key violation that was not there before.

    Enforcement is off during a run (SqliteRunSession), so the watch checks instead, inside
    each script's transaction, where raising rolls the script back. ``PRAGMA
    foreign_key_check`` reads every child row, so it runs only after a script that could have
    created a violation: one that changed rows, dropped or rebuilt a table (a new root page),
    or changed a table other than by adding columns without foreign keys (its old columns and
    foreign keys compared before and after). Adding columns and indexes -- what schema changes
    mostly are -- then costs no scan at all. The violations that were there before (legacy files
    may hold orphans) are only read when one is found: ``check`` raises NeedBaseline, the
    engine undoes the script, calls ``read_baseline`` and runs it again.
    """

    def __init__(self, database):
        self.database = database
        self._known = None  # The violations accepted so far; None: not read yet.

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
        old = _declared(quoted, old_sql)
        if old is None:
            return False
        old_columns, old_keys = old
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


_DECLARED = {}  # (quoted table, CREATE TABLE text) -> what _declared read from it
_DECLARED_LOCK = threading.Lock()


def _declared(quoted, sql):
    """(table_info, foreign_key_list) of the table ``sql`` creates, read from a fresh
    in-memory database -- the same text gives the same answer, so it is kept (the last 256);
    None if it does not create that table there (not kept: the next check tries again)."""
    key = (quoted, sql)
    with _DECLARED_LOCK:
        if key in _DECLARED:
            return _DECLARED[key]
    shadow = sqlite3.connect(':memory:')
    try:
        shadow.execute(sql)
        found = (shadow.execute('PRAGMA table_info("%s")' % quoted).fetchall(),
                 shadow.execute('PRAGMA foreign_key_list("%s")' % quoted).fetchall())
    except sqlite3.Error:
        return None
    finally:
        shadow.close()
    with _DECLARED_LOCK:
        _DECLARED[key] = found
        while len(_DECLARED) > 256:
            del _DECLARED[next(iter(_DECLARED))]
    return found


class SqliteDialect(Dialect):
    name = 'sqlite'
    label = 'SQLite'
    database_class = SqliteDatabase
    schemes = ('sqlite',)
    transactional_ddl = True
    returning = sqlite3.sqlite_version_info >= (3, 35)
    partial_indexes = True
    embedded = True
    one_transaction_per_run = True
    batch_target = 'sqlite'
    session_mixin = _SafeRollback
    run_session_class = SqliteRunSession

    def json_object(self, pairs):
        return fn.json_object(*[part for key, value in pairs for part in (key, value)])

    def final_number(self, field, key):
        path, last = '$."%s"' % key, '$."%s"[#-1]' % key
        numbers = ('integer', 'real')
        # json_valid first: json_type raises on text that is not JSON (a hand-written row).
        return Case(None, [
            (fn.json_valid(field) & fn.json_type(field, path).in_(numbers),
             fn.json_extract(field, path).cast('REAL')),
            (fn.json_valid(field) & (fn.json_type(field, path) == 'array') &
             fn.json_type(field, last).in_(numbers), fn.json_extract(field, last).cast('REAL'))])

    def write_transaction(self, database):
        # BEGIN IMMEDIATE, announced to an online script running its batches (writers.py).
        return announced_write(database)

    @contextlib.contextmanager
    def shadow(self, database=None):
        """A fresh in-memory database (``database``, the user's, is not needed)."""
        shadow = SqliteDatabase(':memory:')
        try:
            yield shadow
        finally:
            shadow.close()

    def trigger_names(self, database, table):
        return {r[0] for r in database.execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,))}


SQLITE = SqliteDialect()
