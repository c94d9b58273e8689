"""SQLite: modelstore's writers tell a running online migration that they are waiting.

SQLite's busy handler is no queue: a waiting writer sleeps and polls again (after 1, 2, 5, 10,
15, 20, 25, 25, 25, 50, 50, then 100 ms), so a migration that ran its batches back to back would
keep it out until it finished. While an online script runs, its runner
(modelstore.engine.batch_runner) keeps a *board*: the file ``<database>.writers``.

* *Live*: the runner holds an exclusive ``flock`` on the board for as long as it runs. A writer
  whose shared ``flock`` succeeds has found a board nobody runs (a killed runner's): it writes
  as without one.
* *Announced*: a modelstore write transaction that finds a live board holds a shared POSIX
  record lock (``lockf``) on it from before its ``BEGIN IMMEDIATE`` until its transaction ends,
  and asks for the write lock every millisecond instead of through the busy handler's growing
  sleeps. Between two batches the runner tries an exclusive record lock without waiting: when
  that fails, a writer is waiting or writing, and the runner stays out of the write lock until
  it has written (``Board.wait``). (Two kinds of lock because they do not see each other: the
  announcements never touch the liveness.) Writers that are not modelstore's never see the
  board; the runner finds those by their commits (see batch_runner). A writer in the runner's
  own process is not seen by the runner's record-lock test (such locks do not conflict within a
  process): it is found by its commits, as an app's writer is.

No board: one failed ``open()`` per write transaction. A board nobody runs: one ``flock`` more.
The board is opened without following links and must be a plain file. The runner creates it
(``O_EXCL``) readable by whoever can read the database (their writers lock it), or takes over
one a killed run left -- an empty plain file of its own user, with no other link and no live
runner, which it neither changes nor reads -- and removes the path when it is done only while
the path still names that file. Anything else there is left alone, and the run goes on without
a board. What someone who can only read the database can do with it: hold a record lock, which
looks like a waiting writer; the runner stops believing the board when it waits and nobody
commits (batch_runner).

``others_open``: whether any other connection has the file open at all -- with nobody else
there, the runner leaves no gap between its batches (batch_runner).
"""
import contextlib
import errno
import os
import stat
import struct
import sys
import threading
import time

from peewee import OperationalError

from .errors import is_busy

try:
    import fcntl
except ImportError:  # Not POSIX: no board; writers use the busy handler alone.
    fcntl = None

__all__ = ['Board', 'announced_write', 'busy_timeout']

SUFFIX = '.writers'
POLL = 0.001  # seconds between a waiting writer's requests for the write lock
FAST = 0.2  # seconds a writer asks every POLL; then its busy handler takes over
_HELD = (errno.EAGAIN, errno.EACCES)  # what a refused lockf says
FDS = '/proc/self/fd'  # Linux: this process's descriptors
DMS = 128  # the byte of a -shm every connection to the file holds a shared lock on
# Linux's struct flock on 64-bit: l_type, l_whence, l_start, l_len, l_pid (and padding).
_FLOCK = (struct.Struct('@hhqqixxxx') if sys.platform.startswith('linux')
          and struct.calcsize('P') == 8 else None)


def _path(database):
    """``<main file>.writers``, or '' (in memory, temporary, no flock); read once for each file
    a database object is opened on (``init()`` may point it at another)."""
    cached = getattr(database, '_modelstore_board', None)
    if cached is not None and cached[0] == database.database:
        return cached[1]
    path = ''
    if fcntl is not None:
        for _, name, main in database.execute_sql('PRAGMA database_list').fetchall():
            if name == 'main' and main:
                path = main + SUFFIX
    database._modelstore_board = (database.database, path)
    return path


def _try(lock, fd, how):
    """``lock(fd, how | LOCK_NB)``: True if taken, False if someone holds a conflicting one;
    None if the file system refuses such locks (ENOLCK, ...): then there is no board."""
    try:
        lock(fd, how | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        return False if exc.errno in _HELD else None


class Board:
    """The runner's side: the board exists, live, while it is open."""

    def __init__(self, database):
        self.path, self._fd = _path(database), None
        if not self.path:
            return
        fd = self._open()
        if fd is None:
            return
        held = os.fstat(fd)
        self._fd, self._inode = fd, (held.st_dev, held.st_ino)
        if not _try(fcntl.flock, fd, fcntl.LOCK_EX):  # Another run's live board, or no locks.
            if not self._created:
                os.close(fd)
                self._fd = None
                return
            self.close()  # (Its own new file, locked by someone else at once: not kept.)

    def _open(self):
        """The new board, created here; or a board a killed run left (see the module's
        docstring), taken over as it is; None: no board this run."""
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        self._created = False
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._left_behind(flags)
        except OSError:  # No right to create it there.
            return None
        self._created = True
        try:  # Readable by whoever can read the database: their writers lock it.
            os.fchmod(fd, os.stat(self.path[:-len(SUFFIX)]).st_mode & 0o644)
        except OSError:
            pass
        return fd

    def _left_behind(self, flags):
        try:
            fd = os.open(self.path, flags)
        except OSError:  # A link, a directory, or gone again.
            return None
        held = os.fstat(fd)
        if stat.S_ISREG(held.st_mode) and held.st_nlink == 1 and held.st_size == 0 \
                and held.st_uid == os.geteuid():
            return fd
        os.close(fd)
        return None

    def waiting(self):
        """True while a modelstore writer (of another process) announces itself: waiting for
        the write lock, or holding it."""
        if self._fd is None:
            return False
        taken = _try(fcntl.lockf, self._fd, fcntl.LOCK_EX)
        if taken:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        return taken is False

    def alone(self):
        """True when no other connection has the database open -- no writer can be waiting
        for the lock (``others_open``). False while unknown, or without a live board."""
        return self._fd is not None and others_open(self.path[:-len(SUFFIX)]) is False

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
        os.close(self._fd)  # Releases the flock: the board is no longer live.
        self._fd = None


def others_open(path):
    """Whether another connection has the SQLite database ``path`` (in WAL) open: True,
    False, or None when it cannot be told -- the caller then assumes someone may be there.

    * Another process: every connection to a file in WAL holds a shared lock on the byte DMS
      of its ``-shm`` from its first statement until it closes (SQLite's unix VFS). Asked of
      the kernel through the descriptor SQLite itself holds on the ``-shm`` (``F_GETLK``: a
      question, no lock taken -- opening and closing a descriptor of our own would drop this
      process's locks on the file), whoever holds it, in whatever PID namespace or container.
    * This process: each connection opens its own descriptor of the ``-wal`` at its first
      statement and closes it with itself; more than the caller's one is another connection.
      (Not the main file's: SQLite keeps a closed connection's descriptor of it open while
      another connection of the process holds a lock on the file, as a backup's does.)

    None off Linux (64-bit), without a ``-wal`` or ``-shm`` (not in WAL), or when this
    process holds no descriptor of them. A connection that has run no statement yet holds
    neither: it is seen at its first."""
    if fcntl is None or _FLOCK is None:
        return None
    try:
        wal, shm = os.stat(path + '-wal'), os.stat(path + '-shm')
        names = os.listdir(FDS)
    except OSError:
        return None
    on_wal, probe = 0, None
    for name in names:
        try:
            fd = int(name)
            held = os.fstat(fd)
        except (OSError, ValueError):  # (The listing's own descriptor, closed since.)
            continue
        if (held.st_dev, held.st_ino) == (wal.st_dev, wal.st_ino):
            on_wal += 1
        elif (held.st_dev, held.st_ino) == (shm.st_dev, shm.st_ino):
            probe = fd
    if probe is None or on_wal == 0:
        return None
    if on_wal > 1:
        return True
    try:
        answer = fcntl.fcntl(probe, fcntl.F_GETLK,
                             _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, DMS, 1, 0))
        held = os.fstat(probe)  # Still the -shm (not closed and its number reused since)?
    except OSError:
        return None
    if (held.st_dev, held.st_ino) != (shm.st_dev, shm.st_ino):
        return None
    return _FLOCK.unpack(answer)[0] != fcntl.F_UNLCK


# One descriptor per board in a process, shared by its writers and closed with the last: a
# POSIX record lock belongs to the process, and closing any descriptor of the file drops it --
# one writer's end would otherwise take away another's announcement.
_ANNOUNCED = {}  # board path -> [descriptor, writers holding it]
_ANNOUNCED_LOCK = threading.Lock()
if hasattr(os, 'register_at_fork'):  # (A child holds none of its parent's record locks.)
    os.register_at_fork(after_in_child=_ANNOUNCED.clear)


def _announce(database):
    """The board's path, announced on (its descriptor record-locked, shared in the process),
    when a live online run keeps one; else None."""
    path = _path(database)
    if not path:
        return None
    with _ANNOUNCED_LOCK:
        held = _ANNOUNCED.get(path)
        if held is not None:
            held[1] += 1
            return path
        fd = _locked(path)
        if fd is None:
            return None
        _ANNOUNCED[path] = [fd, 1]
        return path


def _locked(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or _try(fcntl.flock, fd, fcntl.LOCK_SH) \
                is not False:
            return None  # Not a board, nobody runs it, or no locks there.
        for _ in range(3):  # The runner holds its record lock only for an instant.
            if _try(fcntl.lockf, fd, fcntl.LOCK_SH):
                fd, announced = None, fd
                return announced
            time.sleep(POLL / 10)
        return None
    finally:
        if fd is not None:
            os.close(fd)  # (Releases a shared flock taken on a board nobody runs.)


def _withdraw(path):
    with _ANNOUNCED_LOCK:
        held = _ANNOUNCED.get(path)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _ANNOUNCED[path]
            os.close(held[0])  # Releases the record lock.


class announced_write:
    """``database.atomic('IMMEDIATE')``, announced on the board of a running online script.

    Outside a transaction only (a savepoint needs no lock). The write lock is asked for every
    POLL seconds for FAST seconds at most -- long enough for a run to step aside, short
    enough that a board someone keeps "live" without running costs little -- then through the
    busy handler, as long as the connection's busy timeout would have waited in all."""

    def __init__(self, database):
        self.database = database
        self._txn = database.atomic('IMMEDIATE')
        self._board = None

    def __enter__(self):
        db = self.database
        if db.in_transaction():
            return self._txn.__enter__()
        self._board = _announce(db)
        if self._board is None:
            return self._txn.__enter__()
        try:
            return self._begin()
        except BaseException:
            self._release()
            raise

    def _begin(self):
        db = self.database
        start = time.monotonic()
        with busy_timeout(db, 0) as busy_ms:
            while time.monotonic() - start < min(FAST, busy_ms / 1000.0):
                try:
                    return self._txn.__enter__()
                except OperationalError as exc:
                    if not is_busy(exc):
                        raise
                time.sleep(POLL)
            left = busy_ms - int((time.monotonic() - start) * 1000)
            db.pragma('busy_timeout', max(left, 0))
            return self._txn.__enter__()

    def __exit__(self, *exc):
        try:
            return self._txn.__exit__(*exc)
        finally:
            self._release()

    def _release(self):
        if self._board is not None:
            _withdraw(self._board)
            self._board = None


@contextlib.contextmanager
def busy_timeout(database, ms):
    """SQLite's busy timeout of ``database`` set to ``ms`` for the block, which is given the
    one it had (and may change it); that one is put back however the block ends."""
    before = database.pragma('busy_timeout')
    database.pragma('busy_timeout', ms)
    try:
        yield before
    finally:
        database.pragma('busy_timeout', before)
