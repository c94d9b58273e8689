"""SQLite: modelstore's writers tell a running online migration that they are waiting.

SQLite's busy handler is no queue: a waiting writer sleeps and polls again (1, 2, 5, 10, 15,
20, 25, 25... ms), so a migration that ran its batches back to back would keep it out until it
finished. While an online script runs, its runner (modelstore.engine.batch_runner) keeps a
*board*: the file ``<database>.writers``. A modelstore write transaction that finds the board
holds a shared ``flock`` on it from before its ``BEGIN IMMEDIATE`` until its transaction ends,
and asks for the write lock every millisecond instead of through the busy handler's growing
sleeps. Between two batches the runner tries an exclusive ``flock`` without waiting: when that
fails, a writer is waiting or writing, and the runner stays out of the write lock until it
has finished (``Board.wait``). Writers that are not modelstore's (a legacy app's own INSERTs)
never see the board; the runner finds those by their commits (see batch_runner).

No board, no cost but one failed ``open()`` per write transaction. A board left by a killed
runner costs a writer one ``flock`` a transaction; the next online run takes it over and
removes it. The board is opened without following links; the runner uses only a plain file it
created (or, left by a killed run, one of its user's with no other link), and removes the path
only while it still names that file. Anything else there is left alone, and the run goes on
without a board.
"""
import os
import stat
import time

from peewee import OperationalError

from .errors import is_busy

try:
    import fcntl
except ImportError:  # Not POSIX: no board; writers use the busy handler alone.
    fcntl = None

__all__ = ['Board', 'announced_write']

SUFFIX = '.writers'
POLL = 0.001  # seconds between a waiting writer's requests for the write lock


def _path(database):
    """``<main file>.writers``, or '' (in memory, temporary, no flock). Read once a database."""
    path = getattr(database, '_modelstore_board', None)
    if path is None:
        path = ''
        if fcntl is not None:
            for _, name, main in database.execute_sql('PRAGMA database_list').fetchall():
                if name == 'main' and main:
                    path = main + SUFFIX
        database._modelstore_board = path
    return path


class Board:
    """The runner's side: the board exists while it is open."""

    def __init__(self, database):
        self.path, self._fd = _path(database), None
        if not self.path:
            return
        fd = self._open()
        if fd is None:
            return
        held = os.fstat(fd)
        try:  # Readable by whoever can read the database (their writers open it to lock it).
            os.fchmod(fd, os.stat(self.path[:-len(SUFFIX)]).st_mode & 0o644)
        except OSError:
            pass
        self._fd, self._inode = fd, (held.st_dev, held.st_ino)

    def _open(self):
        """A new board, or the one a killed runner left -- only a plain file of this user's
        with no other link (never one planted to make this process chmod or lock another
        file); None: no board this run (writers then find the run by their commits)."""
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            return os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        except OSError:  # No right to create it there.
            return None
        try:
            fd = os.open(self.path, flags)
        except OSError:  # A link, a directory, or gone again.
            return None
        held = os.fstat(fd)
        if stat.S_ISREG(held.st_mode) and held.st_nlink == 1 and held.st_uid == os.geteuid():
            return fd
        os.close(fd)
        return None

    def waiting(self):
        """True while a modelstore writer is waiting for the write lock or holding it."""
        if self._fd is None:
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return False

    def wait(self, longest, sleep=time.sleep):
        """Stay out of the write lock while modelstore writers wait for it or hold it, at most
        ``longest`` seconds; returns the seconds waited (0.0: nobody was waiting)."""
        if not self.waiting():
            return 0.0
        start = time.perf_counter()
        while time.perf_counter() - start < longest:
            sleep(POLL / 2)
            if not self.waiting():
                break
        return time.perf_counter() - start

    def close(self):
        """Remove the board -- only if the path still names the file this runner opened."""
        if self._fd is None:
            return
        try:
            now = os.lstat(self.path)
            if (now.st_dev, now.st_ino) == self._inode:
                os.remove(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None


def _announce(database):
    """The board's descriptor, share-locked, when an online run has one; else None."""
    path = _path(database)
    if not path:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            for _ in range(3):  # The runner holds it exclusively only for an instant.
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    fd, announced = None, fd
                    return announced
                except BlockingIOError:
                    time.sleep(POLL / 10)
        return None
    finally:
        if fd is not None:
            os.close(fd)


class announced_write:
    """``database.atomic('IMMEDIATE')``, announced on the board of a running online script.

    Outside a transaction only (a savepoint needs no lock). The write lock is asked for every
    POLL seconds, as long as the connection's busy timeout would have waited."""

    def __init__(self, database):
        self.database = database
        self._txn = database.atomic('IMMEDIATE')
        self._fd = None

    def __enter__(self):
        db = self.database
        if db.in_transaction():
            return self._txn.__enter__()
        self._fd = _announce(db)
        if self._fd is None:
            return self._txn.__enter__()
        try:
            return self._begin()
        except BaseException:
            self._release()
            raise

    def _begin(self):
        db = self.database
        timeout = db.pragma('busy_timeout') / 1000.0
        deadline = time.monotonic() + timeout
        db.pragma('busy_timeout', 0)
        try:
            while True:
                try:
                    return self._txn.__enter__()
                except OperationalError as exc:
                    if not is_busy(exc) or time.monotonic() >= deadline:
                        raise
                time.sleep(POLL)
        finally:
            db.pragma('busy_timeout', int(timeout * 1000))

    def __exit__(self, *exc):
        try:
            return self._txn.__exit__(*exc)
        finally:
            self._release()

    def _release(self):
        if self._fd is not None:
            os.close(self._fd)  # Releases the share lock.
            self._fd = None
