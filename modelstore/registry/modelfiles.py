"""Model directories under the models root, deleted with their rows so that no crash leaves one
without the other, and nothing outside the root is ever touched.

The models root (``connect(models_root=...)``, ``$MODELSTORE_MODELS_ROOT``, ``--models-root``) is
the folder model directories live under (ModelForge: ``~/.local/share/ModelForge/models``, one
``<name>_<uuid4>`` directory per model). ``/``, a system directory and the home directory are
refused as roots. Only a directory strictly inside the root is ever removed, and only as
``modelstore.shared.confine`` does it: the root is opened once and the model's folder is reached
one component at a time through open directory handles, never following a link or entering
another filesystem, so that what was checked is what is moved and removed (docs/architecture.md).

``delete_model(id, files=True)`` runs in an order that kill -9 at any instant cannot break:

1. a manifest ``<root>/.modelstore-trash/<token>.json`` names the row (id and model_path) and
   where its directory was (written under a temporary name, synced, then renamed). Its writer
   holds an exclusive ``flock`` on it until the delete is over, so that ``recover`` in another
   process leaves a delete in progress alone;
2. the directory is renamed into the trash as ``<token>`` (one ``rename`` between two open
   handles), and checked to be the directory that was examined;
3. the row is deleted (committed);
4. the trash directory is removed, then the manifest.

Killed before 3, the row is there and its files are whole, in place or in the trash; killed
after, the row is gone and whatever is left of its files is in the trash, named by a manifest.
``recover`` (``modelstore doctor --empty-trash``) finishes each: files whose row is still there go
back where they were (only to a place strictly inside the root that is free), files whose row is
gone are removed. It trusts no manifest it reads. Nothing else in the root is touched.
"""
import contextlib
import os
import stat
import uuid

from ..exceptions import StorageError, ValidationError
from ..shared import confine
from ..shared.confine import Refused, entry_stat
from . import trash as _trash
from .trash import TRASH

__all__ = ['ENV_VAR', 'TRASH', 'ModelsRoot', 'resolve_root']

ENV_VAR = 'MODELSTORE_MODELS_ROOT'
# Never a models root: what `rm --preserve-root` protects, and the directories a system is made of.
SYSTEM_DIRECTORIES = frozenset([
    '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32',
    '/media', '/mnt', '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr',
    '/var', '/usr/bin', '/usr/lib', '/usr/lib64', '/usr/local', '/usr/sbin', '/usr/share',
    '/usr/src', '/usr/include', '/var/lib', '/var/log', '/var/tmp', '/var/cache', '/var/spool',
    '/Users', '/System', '/Library', '/Applications', '/private', '/private/tmp', '/private/var'])


def resolve_root(value):
    """The models root: ``value``, else ``$MODELSTORE_MODELS_ROOT`` (unset or empty: none), else
    None. An empty string given as the root is an error, never "no root"."""
    if value is None:
        value = os.environ.get(ENV_VAR) or None
        if value is None:
            return None
    if not isinstance(value, (str, os.PathLike)):
        raise ValidationError('models_root', 'must be a path, got %s' % type(value).__name__)
    if not os.fspath(value):
        raise ValidationError('models_root', 'is empty; pass a directory, or None for none')
    return ModelsRoot(os.fspath(value))


def _parts(path):
    return [p for p in path.split('/') if p not in ('', '.')]


class ModelsRoot:
    """The folder model directories live under."""

    def __init__(self, path):
        if not isinstance(path, str):
            raise ValidationError('models_root', 'must be a text path, got %r' % (path,))
        if '\0' in path:
            raise ValidationError('models_root', '%r contains a NUL byte' % path)
        self.given = path
        self.lexical = os.path.normpath(os.path.abspath(os.path.expanduser(path)))
        self.path = os.path.realpath(self.lexical)
        home = os.path.realpath(os.path.expanduser('~'))
        if self.path in SYSTEM_DIRECTORIES or self.path == home:
            raise ValidationError('models_root', '%s is %s: a models root is a folder of its own '
                                  'that only model directories live in' % (
                                      path, 'the home directory' if self.path == home
                                      else 'a system directory'))
        self.trash = os.path.join(self.path, TRASH)
        self._bases = [_parts(self.path), _parts(self.lexical)]

    def __repr__(self):
        return '<ModelsRoot %s>' % self.path

    def check(self):
        """The root exists and is a directory (ValidationError otherwise)."""
        if not os.path.isdir(self.path):
            raise ValidationError('models_root', '%s is not a directory' % self.given)
        return self

    def _refuse(self, model_path, why):
        return ValidationError('model_path', '%r %s; only a directory inside the models root %s '
                               'is ever removed' % (model_path, why, self.given))

    def relative(self, model_path):
        """The components of ``model_path`` below the root (a tuple, never empty), judged by its
        spelling alone: ValidationError naming why for a path that is not absolute, has a NUL
        byte or a '..' component, is not below the root (as given or as resolved), is the root,
        or is in the trash. What is on disk there is the business of ``delete``."""
        if not isinstance(model_path, str) or not model_path:
            raise self._refuse(model_path, 'is not a path')
        if '\0' in model_path:
            raise self._refuse(model_path, 'contains a NUL byte')
        if not model_path.startswith('/'):
            raise self._refuse(model_path, 'is not an absolute path')
        parts = _parts(model_path)
        if '..' in parts:
            raise self._refuse(model_path, "has a '..' component")
        for base in self._bases:
            if parts[:len(base)] == base:
                rest = tuple(parts[len(base):])
                break
        else:
            raise self._refuse(model_path, 'is outside the models root')
        if not rest:
            raise self._refuse(model_path, 'is the models root itself')
        if rest[0] == TRASH:
            raise self._refuse(model_path, "is in the models root's trash")
        return rest

    def components(self, path):
        """``relative(path)``, () for the root itself, or None for any other path it refuses."""
        try:
            return self.relative(path)
        except ValidationError:
            if isinstance(path, str) and '\0' not in path and path.startswith('/') \
                    and _parts(path) in self._bases:
                return ()
            return None

    def shown(self, parts):
        return os.path.join(self.path, *parts)

    @contextlib.contextmanager
    def opened(self, what):
        """(handle, device) of the root, opened once for one whole operation."""
        self.check()
        try:
            fd = confine.open_top(self.path)
        except OSError as exc:
            raise StorageError('%s: cannot open the models root %s: %s'
                               % (what, self.path, exc.strerror)) from None
        try:
            yield fd, os.fstat(fd).st_dev
        finally:
            os.close(fd)

    # -- deleting ------------------------------------------------------------------------

    def delete(self, model_id, model_path, delete_row):
        """Delete the row (``delete_row()``, which commits it) and the directory of
        ``model_path``, in the order the module describes. Returns the directory removed, or
        None when there was none (then only the row goes). ValidationError (nothing deleted)
        for anything but a real directory strictly inside the root on the root's filesystem;
        FilesLeft when the row is gone but some of its files could not be removed."""
        parts = self.relative(model_path)
        directory = self.shown(parts)
        done = []

        def row_deleted():
            delete_row()
            done.append(True)
        try:
            return self._walk_and_delete(model_id, model_path, parts, directory, row_deleted)
        except OSError as exc:  # (What each step expects is handled where it happens.)
            raise StorageError('delete_model: %s: %s; %s' % (
                exc.filename or directory, exc.strerror or exc,
                'the row was deleted and what is left of the folder is in the trash %s '
                '(modelstore doctor --empty-trash finishes it)' % self.trash if done
                else 'nothing was deleted')) from None

    def _walk_and_delete(self, model_id, model_path, parts, directory, delete_row):
        with self.opened('delete_model') as (top, dev):
            try:
                parent = confine.walk(top, parts[:-1], dev,
                                      lambda i: repr(self.shown(parts[:i + 1])))
            except Refused as refused:
                raise self._refuse(model_path, 'is refused: %s' % refused.why) from None
            except OSError as exc:
                raise StorageError('delete_model: cannot open %s: %s; nothing was deleted'
                                   % (exc.filename or directory, exc.strerror)) from None
            if parent is None:
                delete_row()
                return None
            try:
                st = entry_stat(parts[-1], parent)
                if st is None:
                    delete_row()
                    return None
                if stat.S_ISLNK(st.st_mode):
                    raise self._refuse(model_path, 'is a symlink')
                if not stat.S_ISDIR(st.st_mode):
                    raise self._refuse(model_path, 'is not a directory')
                if st.st_dev != dev:
                    raise self._refuse(model_path, 'is a mount point of another filesystem')
                self._delete(model_id, model_path, directory, top, dev, parent, parts[-1], st,
                             delete_row)
                return directory
            finally:
                os.close(parent)

    def _delete(self, model_id, model_path, directory, top, dev, parent, name, st, delete_row):
        token = '%d-%s' % (model_id, uuid.uuid4().hex[:12])
        entry = {'id': model_id, 'model_path': model_path, 'directory': directory}
        trash, manifest = _trash.begin(self, top, dev, token, entry)
        try:
            try:
                os.rename(name, token, src_dir_fd=parent, dst_dir_fd=trash)
            except OSError as exc:
                _trash.abandon(trash, token)
                raise StorageError('delete_model: cannot move %s to the trash %s: %s; nothing '
                                   'was deleted' % (directory, self.trash, exc.strerror)) from None
            moved = entry_stat(token, trash)
            if moved is None or not confine.same(moved, st):
                # Swapped between the look and the move: put back whatever was moved.
                if moved is not None and entry_stat(name, parent) is None:
                    os.rename(token, name, src_dir_fd=trash, dst_dir_fd=parent)
                _trash.abandon(trash, token)
                raise StorageError('delete_model: %s changed while it was being deleted; nothing '
                                   'was deleted' % directory)
            confine.sync(trash)
            try:
                delete_row()
            except BaseException:
                os.rename(token, name, src_dir_fd=trash, dst_dir_fd=parent)  # The row stays,
                _trash.abandon(trash, token)                                  # so do its files.
                raise
            _trash.finish(self, trash, token, dev, 'delete_model: model %d was deleted and '
                          'its folder %s moved to the trash' % (model_id, directory))
        finally:
            os.close(manifest)  # Releases the lock.
            os.close(trash)
            _trash.tidy(top)

    # -- what a crash left ---------------------------------------------------------------

    def trash_entries(self):
        """[(token, manifest entry or None)] of what is in the trash (see trash.entries)."""
        return _trash.entries(self)

    def recover(self, row_exists, dry_run=False):
        """Finish every delete a crash interrupted; [(action, token, detail)] (trash.recover)."""
        return _trash.recover(self, row_exists, dry_run)


def _inside(path, directory):  # TEMPORARY until registry/doctor.py moves to ModelsRoot.relative
    return os.path.commonpath([path, directory]) == directory
