"""One lock per backend, held for a whole migration run, with a bounded wait.

The applied set is read *after* the lock is taken, so a runner that waited finds the work done.

* SQLite: two locks, both released by the kernel or the database when the process dies (a
  lock row would outlive a kill -9). First ``flock`` on ``<file>.migrate-lock`` beside the
  database (there only while a run holds it): one run at a time, even while an online script
  (modelstore.online) runs its batches outside any transaction. Then the run's own write
  transaction (``BEGIN IMMEDIATE``); scripts run inside it as savepoints, so a kill rolls the
  run back. An online script ends that transaction first (``checkpoint``: the scripts before it
  are committed) and the scripts after it get a new one (``resume``). Foreign-key enforcement
  is switched off *before* BEGIN (the pragma is ignored inside a transaction; left on, a table
  rebuild's DROP TABLE cascades to child rows), and the lock's ``watch``
  (modelstore.engine.fkwatch) sees to it that no script leaves a foreign-key violation that was
  not there before.
* PostgreSQL: a transaction-scoped advisory lock on a connection of its own, correct behind
  PgBouncer too (see PostgresRunLock); each script is its own transaction.
* MySQL and MariaDB: a named lock (``GET_LOCK``) on the run's own connection, named after the
  database (named locks are server-wide); the server releases it when the connection ends --
  a killed runner's too. DDL commits there, so each script runs outside any transaction, its
  operations recorded one by one (modelstore.engine.nontx).
"""
import os
import sqlite3
import time

from peewee import OperationalError

from ..dialects import dialect_of, is_busy
from ..exceptions import LockTimeout, MigrationError
from ..shared.database import BUSY_TIMEOUT, busy_ms, check_timeout
from ..shared.files import create_private

try:
    import fcntl
except ImportError:  # Not POSIX: the write transaction alone keeps runs apart.
    fcntl = None
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
        # Checks each script for new foreign-key violations (SQLite; modelstore.engine.fkwatch).
        self.watch = NoWatch()

    def discard(self):
        """Undo everything done under the lock (a dry run); the lock stays held."""

    def still_open(self):
        """SQLite: the lock's transaction was not rolled back by SQLite itself."""
        return True

    def checkpoint(self):
        """Commit what the run did so far and hold the lock without a transaction (for an
        online script's batches); True if that committed anything (SQLite)."""
        return False

    def resume(self):
        """After ``checkpoint``: the next scripts' transaction (SQLite)."""

    def verify(self):
        """Before each script: the lock is still held (PostgreSQL), else MigrationError."""


class SqliteRunLock(RunLock):
    commits_at_exit = True
    _txn = None

    def __enter__(self):
        db = self.database
        if db.in_transaction():
            raise MigrationError('a migration run cannot start inside an open transaction')
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
        db.pragma('busy_timeout', busy_ms(wait))
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
        deadline = time.monotonic() + timeout
        delay = 0.005
        while not self._try():
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeout('another modelstore migration on this database held its '
                                  'lock (%s) for more than %g s; try again when it has '
                                  'finished' % (self._path, timeout))
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.1)

    def _try(self):
        try:
            create_private(self._path)
            fd = os.open(self._path, os.O_RDWR)
        except FileNotFoundError:  # Deleted by the holder just now.
            return False
        except OSError:
            # A directory this process cannot write to: SQLite cannot write a journal there
            # either, so the run's write transaction fails and reports it (or, with nothing to
            # do, never writes); the transaction alone keeps such runs apart.
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = os.fstat(fd)
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


class PostgresRunLock(RunLock):
    """A transaction-scoped advisory lock, held by a connection of its own in a transaction
    that stays open for the whole run; polled with ``pg_try_advisory_xact_lock`` until the
    timeout.

    Not a session lock: behind a pooler in transaction mode (PgBouncer), the statements of one
    client session run on whichever server connection is free, so a session lock would be
    taken on one and "released" on another -- it would protect nothing, and stay held. An open
    transaction keeps its server connection, there as directly. The lock goes when the run
    ends (ROLLBACK), when its process dies (the connection closes), or when the server ends its
    session -- which ``verify`` notices before each script. Advisory locks never block ordinary
    reads and writes, and the idle transaction holds no snapshot (READ COMMITTED). Scripts run
    one transaction each, with their history row, on the run's own connection.
    """
    # Any fixed 64-bit key; this one spells "modelstr".
    KEY = 0x6D6F64656C737472

    def __enter__(self):
        db = self.database
        if db.in_transaction():
            raise MigrationError('a migration run cannot start inside an open transaction')
        self._holder = type(db)(db.database, **db.connect_params)
        try:
            self._take()
        except BaseException:
            self._holder.close()
            raise
        return self

    def _take(self):
        holder = self._holder
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        holder.connect()
        while True:
            holder.execute_sql('BEGIN ISOLATION LEVEL READ COMMITTED')
            # Not ended by a server-wide idle-in-transaction timeout while scripts run.
            holder.execute_sql('SET LOCAL idle_in_transaction_session_timeout = 0')
            if holder.execute_sql('SELECT pg_try_advisory_xact_lock(%s)',
                                  (self.KEY,)).fetchone()[0]:
                return
            holder.execute_sql('ROLLBACK')
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeout('another modelstore migration on this database held its '
                                  'lock for more than %g s; try again when it has finished'
                                  % self.timeout)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.25)

    def verify(self):
        try:
            self._holder.execute_sql('SELECT 1')
        except Exception as exc:
            raise MigrationError('the migration lock was lost (its connection ended: %s); the '
                                 'scripts committed before stay applied, run migrate again'
                                 % ' '.join(str(exc).split())) from None

    def __exit__(self, exc_type, exc, tb):
        try:
            self._holder.execute_sql('ROLLBACK')  # Releases the lock.
        except Exception:
            if exc_type is None:  # A lost connection has released the lock already.
                raise
        finally:
            self._holder.close()
        return False


class MySQLRunLock(RunLock):
    """``GET_LOCK('modelstore:<sha1 of the database name>', 0)``, polled until the timeout, on
    the run's connection; ``verify`` checks it is still that connection's (a reconnect would
    have lost it)."""

    def __enter__(self):
        db = self.database
        if db.in_transaction():
            raise MigrationError('a migration run cannot start inside an open transaction')
        db.connect(reuse_if_open=True)
        # At most 64 characters; the same for every client of this database.
        self._name = db.execute_sql("SELECT CONCAT('modelstore:', SHA1(DATABASE()))"
                                    ).fetchone()[0]
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while db.execute_sql('SELECT GET_LOCK(%s, 0)', (self._name,)).fetchone()[0] != 1:
            left = deadline - time.monotonic()
            if left <= 0:
                holder = db.execute_sql('SELECT IS_USED_LOCK(%s)', (self._name,)).fetchone()[0]
                raise LockTimeout('another modelstore migration on this database held its '
                                  'lock for more than %g s%s; try again when it has finished'
                                  % (self.timeout, ' (connection id %s)' % holder
                                     if holder else ''))
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.25)
        self._connection = db.connection()
        return self

    def verify(self):
        try:
            mine = self.database.connection() is self._connection and self.database.execute_sql(
                'SELECT IS_USED_LOCK(%s) = CONNECTION_ID()', (self._name,)).fetchone()[0]
        except Exception as exc:
            mine, why = False, ' '.join(str(exc).split())
        else:
            why = 'its connection was replaced'
        if not mine:
            raise MigrationError('the migration lock was lost (%s); what was recorded before '
                                 'stays recorded, run migrate again' % why)

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.database.connection() is self._connection:
                self.database.execute_sql('DO RELEASE_LOCK(%s)', (self._name,))
        except Exception:
            if exc_type is None:  # A lost connection has released the lock already.
                raise
        return False


_LOCKS = {'sqlite': SqliteRunLock, 'postgresql': PostgresRunLock, 'mysql': MySQLRunLock}


def run_lock(database, timeout=DEFAULT_TIMEOUT):
    """The run lock for ``database``'s backend."""
    lock = _LOCKS.get(dialect_of(database).name)
    if lock is not None:
        return lock(database, timeout)
    raise MigrationError('migrations are not supported on %s; SQLite, PostgreSQL and '
                         'MySQL/MariaDB are' % type(database).__name__)
