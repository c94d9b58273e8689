"""Model directories under the models root, deleted with their rows.

A folder goes with its row so that no crash leaves one without the other, and nothing outside
the root is ever touched.

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
import time
import uuid

try:
    import pwd
except ImportError:  # Not POSIX: $HOME alone.
    pwd = None

from ..exceptions import StorageError, ValidationError
from ..shared import confine
from ..shared.defaults import MODELS_ROOT_ENV as ENV_VAR
from ..shared.confine import Refused, entry_stat
from . import trash as _trash
from .trash import TRASH

__all__ = ['ENV_VAR', 'TRASH', 'ModelsRoot', 'resolve_root']

# Never a models root: what `rm --preserve-root` protects, and the directories a system is made of.
SYSTEM_DIRECTORIES = frozenset([
    '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32',
    '/media', '/mnt', '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr',
    '/var', '/usr/bin', '/usr/lib', '/usr/lib64', '/usr/local', '/usr/sbin', '/usr/share',
    '/usr/src', '/usr/include', '/var/lib', '/var/log', '/var/tmp', '/var/cache', '/var/spool',
    '/Users', '/System', '/Library', '/Applications', '/private', '/private/tmp', '/private/var'])


# ... every directory directly in these (a service's data: /var/lib/dpkg, /var/mail) ...
SYSTEM_PARENTS = frozenset(['/var', '/var/lib', '/var/cache', '/var/spool', '/var/log', '/run',
                            '/run/user', '/var/backups'])
# ... and every directory inside these.
SYSTEM_TREES = ('/bin/', '/boot/', '/dev/', '/etc/', '/lib/', '/lib32/', '/lib64/', '/libx32/',
                '/proc/', '/sbin/', '/sys/', '/usr/', '/System/', '/Library/')


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
        try:
            self.path = os.path.realpath(self.lexical)
        except OSError as exc:
            raise ValidationError('models_root', '%s cannot be resolved: %s'
                                  % (path, exc.strerror)) from None
        self._refuse_system()
        self.trash = os.path.join(self.path, TRASH)
        self._bases = [_parts(self.path), _parts(self.lexical)]

    def _refuse_system(self):
        """ValidationError for ``/``, a system directory, one inside a system tree or directly
        in a system folder of data (``/var/lib/dpkg``), a home directory (any user's), or (by
        identity, when it exists) another path to one of them: a bind mount of ``/`` is ``/``
        for what a delete may reach."""
        path = self.path
        homes = _homes()
        why = None
        if path in SYSTEM_DIRECTORIES or path.startswith(SYSTEM_TREES) or \
                os.path.dirname(path) in SYSTEM_PARENTS:
            why = 'a system directory'
        elif path in homes or os.path.dirname(path) == '/home':
            why = 'a home directory'
        else:
            try:
                mine = os.stat(path)
            except OSError:
                mine = None  # Not there (yet): check() says so when it is used.
            for system in sorted(SYSTEM_DIRECTORIES | homes) if mine is not None else ():
                try:
                    if confine.same(mine, os.stat(system)):
                        why = 'the system directory %s by another name' % system
                        break
                except OSError:
                    continue
        if why:
            raise ValidationError('models_root', '%s is %s: a models root is a folder of its own '
                                  'that only model directories live in' % (self.given, why))

    def __repr__(self):
        return '<ModelsRoot %s>' % self.path

    def check(self):
        """The root exists and is a directory, not a system one (ValidationError otherwise)."""
        if not os.path.isdir(self.path):
            raise ValidationError('models_root', '%s is not a directory' % self.given)
        self._refuse_system()
        return self

    def _refuse(self, model_path, why, act='is ever removed'):
        return ValidationError('model_path', '%r %s; only a directory inside the models root %s '
                               '%s' % (model_path, why, self.given, act))

    def relative(self, model_path, act='is ever removed'):
        """The components of ``model_path`` below the root (a tuple, never empty), judged by its
        spelling alone: ValidationError naming why for a path that is not absolute, has a NUL
        byte or a '..' component, is not below the root (as given or as resolved), is the root,
        or is in the trash. What is on disk there is the business of ``delete``."""
        if not isinstance(model_path, str) or not model_path:
            raise self._refuse(model_path, 'is not a path', act)
        if '\0' in model_path:
            raise self._refuse(model_path, 'contains a NUL byte', act)
        if not model_path.startswith('/'):
            raise self._refuse(model_path, 'is not an absolute path', act)
        parts = _parts(model_path)
        if '..' in parts:
            raise self._refuse(model_path, "has a '..' component", act)
        for base in self._bases:
            if parts[:len(base)] == base:
                rest = tuple(parts[len(base):])
                break
        else:
            raise self._refuse(model_path, 'is outside the models root', act)
        if not rest:
            raise self._refuse(model_path, 'is the models root itself', act)
        if rest[0] == TRASH:
            raise self._refuse(model_path, "is in the models root's trash", act)
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

    def overlaps(self, parts, path, resolve=None):
        """``path`` (another row's model_path) is, holds, or is inside the folder at ``parts``:
        by its components as spelled (after '.' and '..' are resolved by name), or as resolved
        through links (``resolve``: a _Resolver shared by many calls)."""
        if not isinstance(path, str) or '\0' in path or not path.startswith('/'):
            return False
        spelled = os.path.normpath(path)
        resolved = (resolve or _Resolver())(spelled)
        for spelling in (spelled, resolved) if resolved != spelled else (spelled,):
            theirs = self.components(spelling) if spelling else None
            if theirs is not None and theirs[:len(parts)] == parts[:len(theirs)]:
                return True
        return False

    def sharing(self, parts, rows):
        """[(id, model_path)] of ``rows`` whose folder overlaps the one at ``parts``, however
        spelled, a link anywhere included: every row is resolved (one lstat a row, its folder's
        parent resolved once)."""
        resolve = _Resolver()
        return [(i, p) for i, p in rows if self.overlaps(parts, p, resolve)]

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
            yield fd, confine.where(fd)
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
        with self.opened('delete_model') as (top, fs):
            parent, st = self._locate(model_path, parts, directory, top, fs)
            if st is None:
                # Seen missing twice, a moment apart (a folder being renamed is missing for an
                # instant): only the row goes.
                os.close(parent)
                time.sleep(0.01)
                parent, st = self._locate(model_path, parts, directory, top, fs)
            try:
                if st is None:
                    delete_row()
                    return None
                if stat.S_ISLNK(st.st_mode):
                    raise self._refuse(model_path, 'is a symlink')
                if not stat.S_ISDIR(st.st_mode):
                    raise self._refuse(model_path, 'is not a directory')
                if st.st_dev != fs[0] or self._is_mount(parts[-1], parent, fs):
                    raise self._refuse(model_path, 'is a mount point')
                mounts = confine.mounts_below(directory)
                if mounts:
                    raise self._refuse(model_path, 'holds the mount point%s %s, and nothing on '
                                       'another mount is ever removed' % (
                                           's' if len(mounts) > 1 else '',
                                           ', '.join(mounts[:3])))
                self._delete(model_id, model_path, directory, top, fs, parent, parts[-1], st,
                             delete_row)
                return directory
            finally:
                os.close(parent)

    def _locate(self, model_path, parts, directory, top, fs):
        """(handle of the folder's parent, lstat of the folder or None)."""
        try:
            parent = confine.walk(top, parts[:-1], fs, lambda i: repr(self.shown(parts[:i + 1])))
        except Refused as refused:
            raise self._refuse(model_path, 'is refused: %s' % refused.why) from None
        except OSError as exc:
            raise StorageError('delete_model: cannot open %s: %s; nothing was deleted'
                               % (exc.filename or directory, exc.strerror)) from None
        if parent is None:
            # A folder above it is missing: a folder renamed away for an instant, or a tree
            # gone. Either way not a judgement to delete the row on.
            raise StorageError('delete_model: a folder above %s is missing; nothing was deleted '
                               '(delete_model(id) without files deletes the row alone)'
                               % directory)
        try:
            return parent, entry_stat(parts[-1], parent)
        except BaseException:
            os.close(parent)
            raise

    @staticmethod
    def _is_mount(name, parent, fs):
        try:
            fd = os.open(name, confine.DIR_FLAGS, dir_fd=parent)
        except OSError:
            return False  # (Gone or swapped: the move and its check below will tell.)
        try:
            return confine.where(fd) != fs
        finally:
            os.close(fd)

    def _delete(self, model_id, model_path, directory, top, fs, parent, name, st, delete_row):
        token = '%d-%s' % (model_id, uuid.uuid4().hex[:12])
        entry = {'id': model_id, 'model_path': model_path, 'directory': directory}
        trash, manifest = _trash.begin(self, top, fs, token, entry)
        try:
            try:
                os.rename(name, token, src_dir_fd=parent, dst_dir_fd=trash)
            except OSError as exc:
                _trash.abandon(trash, token)
                raise StorageError('delete_model: cannot move %s to the trash %s: %s; nothing '
                                   'was deleted' % (directory, self.trash, exc.strerror)) from None
            moved = entry_stat(token, trash)
            if moved is None or not confine.same(moved, st):
                # Swapped between the look and the move: put back whatever was moved, or, if
                # its place is taken meanwhile and it is a link, remove the link (never what it
                # points at).
                if moved is not None and entry_stat(name, parent) is None:
                    os.rename(token, name, src_dir_fd=trash, dst_dir_fd=parent)
                elif moved is not None and stat.S_ISLNK(moved.st_mode):
                    os.unlink(token, dir_fd=trash)
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
            _trash.finish(self, trash, token, fs, 'delete_model: model %d was deleted and '
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


class _Resolver:
    """``realpath`` of many normalised paths, each parent folder resolved once; None where
    that fails."""

    def __init__(self):
        self.parents = {}

    def __call__(self, path):
        try:
            parent, name = os.path.split(path)
            real = self.parents.get(parent)
            if real is None:
                real = self.parents[parent] = os.path.realpath(parent)
            full = os.path.join(real, name)
            return os.path.realpath(full) if os.path.islink(full) else full
        except (OSError, ValueError):
            return None


def _homes():
    """Every user's home directory (the password database), and $HOME's."""
    homes = {os.path.realpath(os.path.expanduser('~'))}
    if pwd is not None:
        homes.update(entry.pw_dir for entry in pwd.getpwall() if entry.pw_dir.startswith('/'))
    return homes
