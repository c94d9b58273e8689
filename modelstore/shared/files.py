"""Files beside a SQLite database: private creation, ``file:`` URIs, the advisory lock.

The lock keeps retention away from a file a command is using.

A backup being written or restored from is held under a shared ``flock`` for as long as it is
used; retention deletes only the files it can lock exclusively, without waiting (a lock dies with
its process, so a killed command leaves nothing locked). ``flock`` and SQLite's own POSIX locks
are independent on Linux; a descriptor opened here is closed only after SQLite's connection to
the same file, so SQLite's locks are never dropped by it.
"""
import contextlib
import os
from urllib.parse import quote

try:
    import fcntl
except ImportError:  # Not POSIX: retention relies on the explicit ``protect`` list alone.
    fcntl = None

__all__ = ['create_private', 'file_uri_path', 'has_wal', 'in_use', 'remove',
           'remove_unused', 'sync_directory']


def sync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def create_private(path):
    """Create ``path`` empty with mode 0600 if it does not exist (SQLite then keeps the mode
    for its -wal, -shm and -journal files).

    A dangling symlink is followed: its target is created, privately (``O_EXCL`` on the link
    itself would fail, and SQLite would then create the target with the umask's mode).
    """
    if os.path.islink(path) and not os.path.exists(path):
        path = os.path.realpath(path)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


@contextlib.contextmanager
def in_use(path):
    """Hold a shared advisory lock on ``path`` while it is read or written, so that retention
    (``Backups.prune``) in this or another process leaves it alone."""
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Not there (yet) or unreadable: the caller's own open reports it.
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # Releases the lock.


def remove_unused(path):
    """Delete ``path`` unless a command holds it (see in_use); True if it is gone."""
    if fcntl is None:
        remove(path)
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: in use; anything else: leave it alone too.
            return False
        remove(path)
        return True
    finally:
        os.close(fd)


def file_uri_path(path):
    """``path`` made absolute and escaped for a ``file:`` URI."""
    return quote(os.path.abspath(path))


def remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def has_wal(path):
    """True when a ``-wal`` file with content lies beside the database ``path``: commits a
    reader must see, and ``immutable=1`` would ignore."""
    try:
        return os.path.getsize(path + '-wal') > 0
    except OSError:
        return False
