"""Acting inside one directory tree through open handles: what was checked is what is acted on.

Nothing here resolves a path by name twice. A tree is entered by opening its top directory once;
every step below it opens one component relative to the directory handle above it, with
``O_NOFOLLOW | O_DIRECTORY``, and checks the device of what it opened. Renames and removals name
an entry relative to an open directory handle (``dir_fd``, ``src_dir_fd``, ``dst_dir_fd``), so
whatever someone does to the path's spelling meanwhile (swapping a component for a symlink,
renaming a parent), the act lands in the directory that was checked, or fails.

What it assumes: the top directory is trusted configuration (it is opened once, following a link
if it is one); another process may change anything below it at any moment; a directory cannot be
hard-linked (so a walk from the top that never follows a link stays below the top, except where a
directory that was walked through is renamed out from under it, which ``remove_tree`` detects by
device and inode when it climbs back up and then stops).
"""
import errno
import os
import re
import stat
import time

try:
    import fcntl
except ImportError:  # Not POSIX: no lock, and no handle-relative calls either.
    fcntl = None

__all__ = ['Refused', 'DIR_FLAGS', 'entry_stat', 'lock', 'mounts_below', 'open_dir', 'open_top',
           'remove_tree', 'same', 'sync', 'unlock', 'walk', 'where']

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)


class Refused(Exception):
    """What is at a path is not what may be acted on: ``why`` says what it is instead."""

    def __init__(self, why):
        super().__init__(why)
        self.why = why


def _handle(fd):
    """Refuse to go on without a directory handle: ``dir_fd=None`` means the current directory."""
    if type(fd) is not int:
        raise TypeError('a directory handle is needed, got %r' % (fd,))


def where(fd):
    """(device, mount id) of an open handle. A bind mount of a directory of the same
    filesystem has the same device but its own mount id, which Linux shows in
    /proc/self/fdinfo; without it (another system, no /proc), the device alone."""
    device = os.fstat(fd).st_dev
    try:
        with open('/proc/self/fdinfo/%d' % fd, 'rb') as f:
            for line in f:
                if line.startswith(b'mnt_id:'):
                    return device, int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return device, None


def mounts_below(path):
    """The mount points at or below ``path`` (from /proc/self/mountinfo; [] without it)."""
    found = []
    try:
        with open('/proc/self/mountinfo', 'rb') as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    prefix = path.rstrip('/') + '/'
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        point = re.sub(rb'\\([0-7]{3})', lambda m: bytes([int(m.group(1), 8)]), fields[4])
        point = os.fsdecode(point)
        if point == path or point.startswith(prefix):
            found.append(point)
    return found


def same(a, b):
    """Two stat results are of one file (device and inode)."""
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def open_top(path):
    """A handle on the trusted top directory ``path`` (a link to it is followed, once)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, 'O_CLOEXEC', 0))


def open_dir(name, dir_fd, fs, shown):
    """Open the directory ``name`` in ``dir_fd`` without following a link, on the mount ``fs``
    (``where``).
    Returns its handle, or None if nothing is there; Refused if it is a link, not a directory,
    or on another filesystem (``shown`` names it in the message)."""
    _handle(dir_fd)
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        # (Linux says ENOTDIR for a link opened with O_DIRECTORY | O_NOFOLLOW: look which.)
        st = entry_stat(name, dir_fd)
        if st is None:
            return None
        raise Refused('%s is %s' % (shown, 'a symlink' if stat.S_ISLNK(st.st_mode)
                                    else 'not a directory')) from None
    if where(fd) != fs:
        os.close(fd)
        raise Refused('%s is on another filesystem (a mount point)' % shown)
    return fd


def walk(top_fd, parts, fs, shown):
    """Open ``parts`` below ``top_fd`` one component at a time; the last one's handle, or None
    when a component is missing. ``shown(i)`` names ``parts[:i + 1]`` for messages."""
    fd = os.dup(top_fd)
    for i, part in enumerate(parts):
        try:
            child = open_dir(part, fd, fs, shown(i))
        finally:
            os.close(fd)
        if child is None:
            return None
        fd = child
    return fd


def entry_stat(name, dir_fd):
    """``lstat`` of ``name`` in ``dir_fd``, or None when nothing is there."""
    _handle(dir_fd)
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def sync(fd):
    """fsync a directory handle (what was renamed in it is on disk); best effort."""
    try:
        os.fsync(fd)
    except OSError:
        pass


def lock(fd, exclusive=True, wait=0):
    """Take a flock on ``fd``; False if another holds a conflicting one for longer than
    ``wait`` seconds (0: do not wait)."""
    if fcntl is None:
        return True
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, mode)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


def unlock(fd):
    """Release the flock taken on ``fd`` by ``lock``."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class _Level:
    """A directory being emptied: its name in the one above, identity, and what is left."""

    __slots__ = ('name', 'st', 'pending', 'skipped', 'relisted')

    def __init__(self, name, st, names):
        self.name = name
        self.st = st
        self.pending = names
        self.skipped = set()
        self.relisted = 0


def remove_tree(parent_fd, name, fs, shown):
    """Remove the directory ``name`` in ``parent_fd`` and everything below it, iteratively, one
    open handle at a time: no link is followed (a link is removed, never its target), no other
    filesystem is entered (a mount point and what is on it stay), and no depth is too deep.

    Returns the list of what is left, as ``'<path>: <why>'`` with paths ``shown`` + the path
    below ``name``; [] when all of it is gone. Stops with OSError if a directory it walked
    through was moved meanwhile (climbing back up finds another directory)."""
    left = []
    st = entry_stat(name, parent_fd)
    if st is None:
        return left
    if not stat.S_ISDIR(st.st_mode):
        _unlink(name, parent_fd, shown, left)
        return left
    if st.st_dev != fs[0]:
        return ['%s: on another filesystem (a mount point): not entered' % shown]
    fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    try:
        if not same(os.fstat(fd), st):
            raise OSError(errno.ESTALE, '%s was replaced while it was being removed' % shown)
        if where(fd) != fs:
            return ['%s: a mount point: not entered' % shown]
        stack = [_Level(name, st, os.listdir(fd))]
        while stack:
            level = stack[-1]
            here = shown + ''.join('/' + lv.name for lv in stack[1:])
            child = _next_directory(fd, level, fs, here, left)
            if child is not None:
                child_fd, child_level = child
                os.close(fd)
                fd = child_fd
                stack.append(child_level)
                continue
            if len(stack) == 1:
                break
            done = stack.pop()
            up = os.open('..', DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = up
            if not same(os.fstat(fd), stack[-1].st):
                raise OSError(errno.ESTALE, '%s was moved while it was being removed; stopped '
                              'inside it' % here)
            stack[-1].skipped.add(done.name)
            _rmdir(done.name, fd, here, left)
    finally:
        os.close(fd)
    _rmdir(name, parent_fd, shown, left)
    return left


def _next_directory(fd, level, fs, here, left):
    """Remove the files of ``level`` (open as ``fd``) until a subdirectory to enter comes up:
    (its handle, its _Level); None when the level is done."""
    while True:
        while level.pending:
            entry = level.pending.pop()
            if entry in level.skipped:
                continue
            st = entry_stat(entry, fd)
            if st is None:
                continue
            shown = '%s/%s' % (here, entry)
            if not stat.S_ISDIR(st.st_mode):
                _unlink(entry, fd, shown, left)
                level.skipped.add(entry)
                continue
            level.skipped.add(entry)
            if st.st_dev != fs[0]:
                left.append('%s: on another filesystem (a mount point): not entered' % shown)
                continue
            try:
                child = os.open(entry, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # Swapped since the lstat.
                    level.skipped.discard(entry)
                    level.pending.append(entry)
                    continue
                left.append('%s: %s' % (shown, exc.strerror))
                continue
            child_st = os.fstat(child)
            if not same(child_st, st):  # Replaced since the lstat: look again.
                os.close(child)
                level.skipped.discard(entry)
                level.pending.append(entry)
                continue
            if where(child) != fs:  # A bind mount of the same filesystem: same device.
                os.close(child)
                left.append('%s: a mount point: not entered' % shown)
                continue
            try:
                names = os.listdir(child)
            except OSError as exc:
                os.close(child)
                left.append('%s: cannot list: %s' % (shown, exc.strerror))
                continue
            return child, _Level(entry, child_st, names)
        # Whatever appeared meanwhile: look again, a few times (someone may keep adding).
        if level.relisted >= 3:
            return None
        level.relisted += 1
        level.pending = [n for n in os.listdir(fd) if n not in level.skipped]
        if not level.pending:
            return None


def _unlink(name, dir_fd, shown, left):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        left.append('%s: %s' % (shown, exc.strerror))


def _rmdir(name, dir_fd, shown, left):
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno == errno.ENOTEMPTY and left:
            return False  # What is left below it is already listed.
        left.append('%s: %s' % (shown, exc.strerror))
        return False
    return True
