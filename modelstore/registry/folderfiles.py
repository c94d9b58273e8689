"""Writing one file into a model's folder under the models root (export_model_card's README.md).

The folder is reached as ``delete_model(files=True)`` reaches one (modelstore.shared.confine):
strictly inside the root, one component at a time through open handles, never through a link,
never onto another filesystem. Then, in the folder's handle:

1. the new text goes to a temporary file (``O_EXCL | O_NOFOLLOW``), synced;
2. if nothing is at the name, the file is *linked* there: ``link`` never replaces, so a file
   that appeared meanwhile (a trainer writing its README.md) stays, and the call is refused;
3. if something is there, it is replaced only when ``may_replace`` says so (modelstore's own
   card, or ``overwrite``) and only if it is a regular file or a link (never a directory, a
   FIFO or a device): it is first *renamed aside*, and what was moved must be the very file
   that was judged (device, inode, size, mtime), else it is put back and the call refused;
   then the new file is linked in, and the old one unlinked (a link's target is never
   touched, nor the other names of a hard-linked file);
4. the folder is walked to again from the root: if it is no longer the folder written into
   (moved out of the root meanwhile), the new file is removed through the handle and the call
   fails -- nothing is left outside the root.

Temporary files a killed writer left (``.NAME.modelstore-*``, older than an hour) are removed
by the next write into the folder.
"""
import os
import stat
import time
import uuid

from ..exceptions import StorageError, ValidationError
from ..shared import confine
from ..shared.confine import Refused, entry_stat

__all__ = ['write_into', 'READ_LIMIT']

READ_LIMIT = 16 << 20  # bytes of an existing file read to judge it (a card fits).
_STALE = 3600  # seconds after which a temporary file is a killed writer's.


def write_into(root, model_path, name, data, may_replace):
    """Write ``data`` (bytes) as ``name`` in the folder of ``model_path`` below ``root`` (a
    checked modelfiles.ModelsRoot), in the order the module describes. ``may_replace(text,
    there)``: whether the existing ``name`` (its bytes, read through no link, and its lstat)
    may be replaced. Returns the path written; ValidationError (nothing changed) when it may
    not, or the folder is refused."""
    parts = root.relative(model_path, act='is ever written into; nothing was written')
    directory = root.shown(parts)
    shown = os.path.join(directory, name)
    with root.opened('export_model_card') as (top, fs):
        folder = _open(root, top, fs, parts, model_path, directory)
        try:
            _sweep(folder, name)
            written = _place(folder, shown, name, data, may_replace)
            confine.sync(folder)
            if not _still_there(root, top, fs, parts, folder):
                st = entry_stat(name, folder)
                if st is not None and confine.same(st, written):
                    os.unlink(name, dir_fd=folder)
                raise StorageError('export_model_card: %s was moved while its card was written; '
                                   'the card written into it was removed' % directory)
        except OSError as exc:
            raise StorageError('export_model_card: %s: %s; nothing was written' % (
                shown, exc.strerror or exc)) from None
        finally:
            os.close(folder)
    return shown


def _open(root, top, fs, parts, model_path, directory):
    try:
        folder = confine.walk(top, parts, fs, lambda i: repr(root.shown(parts[:i + 1])))
    except Refused as refused:
        raise ValidationError('model_path', '%r is refused: %s; nothing was written'
                              % (model_path, refused.why)) from None
    if folder is None:
        raise ValidationError('model_path', 'the folder %s does not exist; nothing was '
                              'written' % directory)
    return folder


def _still_there(root, top, fs, parts, folder):
    try:
        again = confine.walk(top, parts, fs, lambda i: repr(root.shown(parts[:i + 1])))
    except (Refused, OSError):
        return False
    if again is None:
        return False
    try:
        return confine.same(os.fstat(again), os.fstat(folder))
    finally:
        os.close(again)


def _sweep(folder, name):
    """Remove the temporary files of writers killed long ago."""
    prefix = '.%s.modelstore-' % name
    for entry in os.listdir(folder):
        if entry.startswith(prefix):
            st = entry_stat(entry, folder)
            if st is not None and stat.S_ISREG(st.st_mode) and \
                    time.time() - st.st_mtime > _STALE:
                try:
                    os.unlink(entry, dir_fd=folder)
                except OSError:
                    pass


def _temporary(folder, name, data):
    """(name, lstat) of a new synced file holding ``data``."""
    temporary = '.%s.modelstore-%s' % (name, uuid.uuid4().hex[:12])
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                 getattr(os, 'O_CLOEXEC', 0), 0o644, dir_fd=folder)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        return temporary, os.fstat(fd)
    except BaseException:
        os.unlink(temporary, dir_fd=folder)
        raise
    finally:
        os.close(fd)


def _read(folder, name, there):
    """The bytes of the regular file ``name`` (judged by ``there``), or b''."""
    if not stat.S_ISREG(there.st_mode):
        return b''
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    try:
        if not _unchanged(os.fstat(fd), there) or not stat.S_ISREG(os.fstat(fd).st_mode):
            return b''
        chunks, left = [], READ_LIMIT
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b''.join(chunks)
    finally:
        os.close(fd)


def _unchanged(now, then):
    """The same file, not written since: device and inode (a number a file removed meanwhile
    may give the next one), size and mtime."""
    return confine.same(now, then) and (now.st_size, now.st_mtime_ns) == (then.st_size,
                                                                        then.st_mtime_ns)


def _link(folder, source, name):
    os.link(source, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)


def _place(folder, shown, name, data, may_replace):
    """Steps 1-3; the lstat of the file now at ``name``."""
    temporary, written = _temporary(folder, name, data)
    try:
        there = entry_stat(name, folder)
        if there is not None:
            if not (stat.S_ISREG(there.st_mode) or stat.S_ISLNK(there.st_mode)):
                raise ValidationError('model_path', '%s is not a file (a directory, a FIFO or '
                                      'a device): it is never replaced; nothing was written'
                                      % shown)
            if not may_replace(_read(folder, name, there), there):
                raise ValidationError('overwrite', '%s exists and modelstore did not write it '
                                      '(overwrite=True, --overwrite: replace it); nothing was '
                                      'written' % shown)
            _set_aside(folder, shown, name, there)
        try:
            _link(folder, temporary, name)
        except FileExistsError:
            raise ValidationError('overwrite', '%s appeared while the card was written (another '
                                  'writer): it was left as it is; nothing was written'
                                  % shown) from None
        return written
    finally:
        os.unlink(temporary, dir_fd=folder)


def _set_aside(folder, shown, name, there):
    """Move what is at ``name`` aside and remove it -- if it is still what was judged."""
    aside = '.%s.modelstore-old-%s' % (name, uuid.uuid4().hex[:12])
    try:
        os.rename(name, aside, src_dir_fd=folder, dst_dir_fd=folder)
    except FileNotFoundError:
        return  # Gone meanwhile: the name is free.
    moved = entry_stat(aside, folder)
    if moved is not None and _unchanged(moved, there):
        os.unlink(aside, dir_fd=folder)
        return
    # Swapped between the look and the move: put it back (link never replaces; a directory
    # is renamed back, which replaces nothing but an empty directory).
    try:
        if moved is not None and stat.S_ISDIR(moved.st_mode):
            os.rename(aside, name, src_dir_fd=folder, dst_dir_fd=folder)
        elif moved is not None:
            _link(folder, aside, name)
            os.unlink(aside, dir_fd=folder)
    except OSError:
        raise ValidationError('overwrite', '%s changed while the card was written; what was '
                              'there is kept as %s; nothing was written'
                              % (shown, aside)) from None
    raise ValidationError('overwrite', '%s changed while the card was written: it was left as '
                          'it is; nothing was written' % shown)
