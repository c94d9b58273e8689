"""The models root's trash, where a deleted model's folder waits for its row's delete.

``<root>/.modelstore-trash``: where a deleted model's folder waits, under a manifest naming its
row, until the row's delete has committed (``modelfiles``), and what ``recover`` (``modelstore
doctor --empty-trash``) finishes after a crash.

The trash trusts nothing it reads. It is opened through the root's handle without following a
link; a manifest is opened without following a link or blocking, read at most 64 KiB, and must be
a JSON object with a positive integer ``id`` (the one its name starts with), a text
``model_path``, and a ``directory`` strictly inside the root, else it is reported by name and its
entry left alone. A delete in progress holds an exclusive ``flock`` on its manifest from before
it is named until it is gone, and ``recover`` takes the lock without waiting before it touches an
entry: a locked entry is 'busy' and left alone, so that a recovery running beside live deletes
finishes only the ones whose process is gone (a lock dies with its process).
"""
import contextlib
import errno
import json
import os
import stat

from ..exceptions import FilesLeft, StorageError, ValidationError
from ..shared import confine
from ..shared.confine import Refused, entry_stat

__all__ = ['TRASH', 'abandon', 'begin', 'entries', 'finish', 'open_trash', 'recover', 'tidy']

TRASH = '.modelstore-trash'
MANIFEST_LIMIT = 64 * 1024
LOCK_WAIT = 30  # seconds a delete waits for the trash's lock (held briefly by empty_trash)


def begin(root, top, fs, token, entry):
    """(trash handle, locked manifest handle) with the manifest written and renamed into
    place. While its name exists unlocked (created, not yet locked) the delete holds the trash
    directory's lock shared, so that ``recover``, which discards a half-written manifest only
    under that lock held exclusively, never takes it for a crash's. Another delete may remove
    the trash once it is empty: then try again."""
    data = json.dumps(entry).encode()
    for _ in range(5):
        trash = open_trash(root, top, fs, create=True)
        if trash is None:  # Tidied away between the mkdir and the open.
            continue
        if not confine.lock(trash, exclusive=False, wait=LOCK_WAIT):
            os.close(trash)
            raise StorageError('delete_model: the trash %s stayed locked for %d s (an '
                               'empty_trash holding it?); nothing was deleted'
                               % (root.trash, LOCK_WAIT))
        try:
            fd = os.open(token + '.json.partial', os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0), 0o600, dir_fd=trash)
        except FileNotFoundError:
            os.close(trash)
            continue
        except OSError as exc:
            os.close(trash)
            raise StorageError('delete_model: cannot write in the trash %s: %s; nothing was '
                               'deleted' % (root.trash, exc.strerror)) from None
        try:
            if not confine.lock(fd, wait=LOCK_WAIT):  # (Just made: nobody else should.)
                raise OSError(errno.EAGAIN, 'its new manifest is locked by another process')
            confine.unlock(trash)
            os.write(fd, data)
            os.fsync(fd)
            os.rename(token + '.json.partial', token + '.json', src_dir_fd=trash,
                      dst_dir_fd=trash)
            confine.sync(trash)
        except OSError as exc:
            abandon(trash, token)
            os.close(fd)
            os.close(trash)
            raise StorageError('delete_model: cannot write in the trash %s: %s; nothing was '
                               'deleted' % (root.trash, exc.strerror)) from None
        return trash, fd
    raise StorageError('delete_model: the trash %s keeps disappearing; nothing was deleted'
                       % root.trash)


def open_trash(root, top, fs, create=False):
    """The trash's handle (None if there is none and ``create`` is off); StorageError if it
    is a link, not a directory, or on another filesystem."""
    if create:
        try:
            os.mkdir(TRASH, 0o700, dir_fd=top)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError('cannot create the trash %s: %s; nothing was deleted'
                               % (root.trash, exc.strerror)) from None
    tail = '; nothing was deleted' if create else ''
    try:
        fd = confine.open_dir(TRASH, top, fs, root.trash)
    except Refused as refused:
        raise StorageError('the trash %s; it is not used%s' % (refused.why, tail)) from None
    except OSError as exc:
        raise StorageError('cannot open the trash %s: %s%s' % (
            root.trash, exc.strerror, tail)) from None
    if fd is None:
        return None
    # Only a trash its user, or the root's owner, made private is trusted: a manifest planted by
    # anyone else could otherwise steer what recover moves.
    mine, owner = os.fstat(fd), os.fstat(top).st_uid
    if mine.st_uid not in (os.geteuid(), owner) or mine.st_mode & 0o077:
        os.close(fd)
        raise StorageError('the trash %s belongs to uid %d with mode %o, not to you or the '
                           "models root's owner with mode 700; it is not used%s" % (
                               root.trash, mine.st_uid, stat.S_IMODE(mine.st_mode), tail))
    return fd


def abandon(trash, token):
    for name in (token + '.json', token + '.json.partial'):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=trash)


def finish(root, trash, token, fs, what):
    """Remove a trashed directory whose row is gone, then its manifest; FilesLeft (the
    manifest kept) if anything could not be removed."""
    shown = os.path.join(root.trash, token)
    try:
        left = confine.remove_tree(trash, token, fs, shown)
    except OSError as exc:
        left = ['%s: %s' % (shown, exc.strerror or exc)]
    if left:
        raise FilesLeft(what, shown, left)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(token + '.json', dir_fd=trash)


def tidy(top):
    with contextlib.suppress(OSError):
        os.rmdir(TRASH, dir_fd=top)  # Only when empty: the root is left as it was found.


# -- what a crash left ---------------------------------------------------------------


def entries(root):
    """[(token, manifest entry or None)] of what is in the trash: a manifest and its
    directory share a token; a directory with no manifest, or a manifest that is not valid,
    has entry None. Reads only."""
    out = []
    with root.opened('trash') as (top, fs):
        trash = open_trash(root, top, fs)
        if trash is None:
            return out
        try:
            names = sorted(os.listdir(trash))
            for name in names:
                if name.endswith('.json'):
                    entry, _ = _read_manifest(root, trash, name[:-5])
                    out.append((name[:-5], entry))
                elif not name.endswith('.partial') and name + '.json' not in names:
                    out.append((name, None))
        finally:
            os.close(trash)
    return out


def _read_manifest(root, trash, token, fd=None):
    """(entry, None) for a valid manifest, else (None, why)."""
    opened = fd is None
    if opened:
        try:
            fd = _open_manifest(token + '.json', trash)
        except OSError as exc:
            return None, 'cannot be opened: %s' % exc.strerror
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, 'is not a regular file'
        data = os.pread(fd, MANIFEST_LIMIT + 1, 0)
    except OSError as exc:
        return None, 'cannot be read: %s' % exc.strerror
    finally:
        if opened:
            os.close(fd)
    if len(data) > MANIFEST_LIMIT:
        return None, 'is larger than %d bytes' % MANIFEST_LIMIT
    try:
        entry = json.loads(data.decode('utf-8'))
    except (ValueError, RecursionError):
        return None, 'is not JSON (or nests too deep)'
    if not isinstance(entry, dict):
        return None, 'is not a JSON object'
    model_id = entry.get('id')
    if type(model_id) is not int or not 0 < model_id < 2 ** 63:
        return None, "has no positive integer 'id'"
    if not token.startswith('%d-' % model_id):
        return None, 'names model %d, not the one its name says' % model_id
    for key in ('model_path', 'directory'):
        if not isinstance(entry.get(key), str):
            return None, "has no text %r" % key
        try:
            entry[key].encode('utf-8')
        except UnicodeError:
            return None, '%r is not valid text' % key
    try:
        entry = dict(entry, parts=root.relative(entry['directory']))
    except ValidationError as exc:
        return None, 'names a place that is not strictly inside the models root: %s' % (
            exc.message if hasattr(exc, 'message') else exc)
    if root.components(entry['model_path']) != entry['parts']:
        return None, "names a directory that is not its model_path's folder"
    return entry, None


def recover(root, row_exists, dry_run=False):
    """Finish every delete a crash interrupted; returns [(action, token, detail)].

    ``row_exists(id, model_path)`` says whether the manifest's row is still stored. Its
    files go back where they were (the delete never committed), or are removed (it did).
    A half-written manifest means nothing was moved: it is removed. A delete still running
    (its owner holds the manifest's lock) is 'busy' and left alone; a manifest that is not
    valid is 'keep', named with why. With ``dry_run`` only the actions are returned."""
    actions = []
    with root.opened('empty_trash') as (top, fs):
        try:
            trash = open_trash(root, top, fs)
        except StorageError as exc:
            if not dry_run:
                raise
            return [('keep', TRASH, str(exc))]  # (What doctor reports; the fix raises it.)
        if trash is None:
            return actions
        try:
            names = sorted(os.listdir(trash))
            # No delete is between creating a manifest and locking it while this is held.
            quiet = confine.lock(trash)
            try:
                for name in names:
                    if name.endswith('.json.partial'):
                        actions.append(_partial(trash, name, dry_run, quiet))
                actions = [a for a in actions if a is not None]
            finally:
                confine.unlock(trash)
            for name in names:
                if name.endswith('.json.partial'):
                    continue
                if name.endswith('.json'):
                    action = _recover_one(root, top, fs, trash, name[:-5], row_exists,
                                          dry_run)
                elif name + '.json' not in names:
                    action = ('keep', name, 'no manifest says whose it is; left alone')
                else:
                    continue
                if action is not None:
                    actions.append(action)
        finally:
            os.close(trash)
            if not dry_run:
                tidy(top)
    return actions


def _partial(trash, name, dry_run, quiet):
    """A half-written manifest: discarded when no delete can be writing it (``quiet``: the
    trash's lock is held) and nobody holds it; no file was moved for it."""
    if not quiet:
        return ('busy', name, 'a delete in progress may be writing it; left alone')
    try:
        fd = _open_manifest(name, trash)
    except FileNotFoundError:
        return None  # Renamed into place by its delete meanwhile.
    except OSError as exc:
        return ('keep', name, 'cannot be opened: %s; left alone' % exc.strerror)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ('keep', name, 'is not a regular file; left alone')
        if not confine.lock(fd, not dry_run):
            return ('busy', name, 'a delete in progress is writing it; left alone')
        if not dry_run:
            try:
                os.unlink(name, dir_fd=trash)
            except FileNotFoundError:
                pass
            except OSError as exc:
                return ('keep', name, 'cannot be removed: %s' % exc.strerror)
        return ('discard', name, 'a manifest a crash left half written')
    finally:
        os.close(fd)


def _recover_one(root, top, fs, trash, token, row_exists, dry_run):
    try:
        fd = _open_manifest(token + '.json', trash)
    except FileNotFoundError:
        return None  # Its delete finished meanwhile.
    except OSError as exc:
        return ('keep', token, 'manifest cannot be opened: %s; left alone' % exc.strerror)
    try:
        if not confine.lock(fd, exclusive=not dry_run):
            return ('busy', token, 'a delete in progress holds it; left alone')
        named = entry_stat(token + '.json', trash)
        if named is None or not confine.same(named, os.fstat(fd)):
            return None  # Finished (or replaced) between the open and the lock.
        entry, why = _read_manifest(root, trash, token, fd)
        if entry is None:
            return ('keep', token, 'manifest %s; left alone' % why)
        try:
            return _settle(root, top, fs, trash, token, entry, row_exists, dry_run)
        except OSError as exc:
            return ('keep', token, 'stopped: %s: %s' % (exc.filename or token,
                                                        exc.strerror or exc))
    finally:
        os.close(fd)


def _settle(root, top, fs, trash, token, entry, row_exists, dry_run):
    model_id, parts = entry['id'], entry['parts']
    moved = entry_stat(token, trash)
    if not row_exists(model_id, entry['model_path']):
        if not dry_run:
            try:
                finish(root, trash, token, fs, 'model %d was deleted' % model_id)
            except FilesLeft as exc:
                return ('keep', token, 'cannot remove: ' + '; '.join(exc.left[:3]))
        return ('remove', token, 'model %d was deleted: its files %s' % (
            model_id, 'are removed' if moved else 'were removed already'))
    if moved is None:
        if not dry_run:
            abandon(trash, token)
        return ('discard', token, 'model %d was never moved' % model_id)
    directory = root.shown(parts)
    if not stat.S_ISDIR(moved.st_mode):
        return ('keep', token, 'model %d is still stored, but what is in the trash is not a '
                'directory; left alone' % model_id)
    try:
        parent = confine.walk(top, parts[:-1], fs, lambda i: root.shown(parts[:i + 1]))
    except Refused as refused:
        return ('keep', token, 'model %d is still stored, but the way back to %s leads '
                'through %s; move it back by hand' % (model_id, directory, refused.why))
    if parent is None:
        return ('keep', token, 'model %d is still stored, but the folder %s was in is gone; '
                'move it back by hand' % (model_id, directory))
    try:
        if entry_stat(parts[-1], parent) is not None:
            return ('keep', token, 'model %d is still stored but %s is taken; move it back '
                    'by hand' % (model_id, directory))
        if not dry_run:
            os.rename(token, parts[-1], src_dir_fd=trash, dst_dir_fd=parent)
            abandon(trash, token)
    finally:
        os.close(parent)
    return ('restore', token, 'model %d is still stored: its files go back to %s'
            % (model_id, directory))


def _open_manifest(name, trash):
    """A manifest's handle, never through a link and never blocking (a FIFO planted there)."""
    return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                   | getattr(os, 'O_CLOEXEC', 0), dir_fd=trash)
