"""Model directories under the models root, deleted with their rows so that no crash leaves one
without the other.

The models root (``connect(models_root=...)``, ``$MODELSTORE_MODELS_ROOT``, ``--models-root``) is
the folder model directories live under (ModelForge: ``~/.local/share/ModelForge/models``, one
``<name>_<uuid4>`` directory per model). Only a directory strictly inside it is ever removed: not
the root, not a path outside it, not one with a ``..`` component, not a symlink, and not one
reached through a symlink that leads outside (``directory_of`` says which, as ValidationError).

``delete_model(id, files=True)`` runs in an order that kill -9 at any instant cannot break:

1. a manifest ``<root>/.modelstore-trash/<token>.json`` names the row (id and model_path) and
   where its directory was (written under a temporary name, synced, then renamed);
2. the directory is renamed to ``<root>/.modelstore-trash/<token>`` (one ``rename``);
3. the row is deleted (committed);
4. the trash directory is removed, then the manifest.

Killed before 3, the row is there and its files are whole, in place or in the trash; killed
after, the row is gone and whatever is left of its files is in the trash, named by a manifest.
``recover`` (``modelstore doctor --empty-trash``) finishes each: files whose row is still there go
back where they were, files whose row is gone are removed. Nothing else in the root is touched.
"""
import json
import os
import shutil
import uuid

from ..exceptions import StorageError, ValidationError
from ..shared.files import sync_directory

__all__ = ['ENV_VAR', 'TRASH', 'ModelsRoot', 'resolve_root']

ENV_VAR = 'MODELSTORE_MODELS_ROOT'
TRASH = '.modelstore-trash'


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


def _inside(path, directory):
    """``path`` is ``directory`` or below it (both absolute and normalised)."""
    return os.path.commonpath([path, directory]) == directory


class ModelsRoot:
    """The folder model directories live under."""

    def __init__(self, path):
        self.given = path
        self.lexical = os.path.normpath(os.path.abspath(os.path.expanduser(path)))
        self.path = os.path.realpath(self.lexical)
        self.trash = os.path.join(self.path, TRASH)

    def __repr__(self):
        return '<ModelsRoot %s>' % self.path

    def check(self):
        """The root exists and is a directory (ValidationError otherwise)."""
        if not os.path.isdir(self.path):
            raise ValidationError('models_root', '%s is not a directory' % self.given)
        return self

    def directory_of(self, model_path):
        """The real path of ``model_path``'s directory, strictly inside the root; None when
        nothing is there. ValidationError (naming why) for anything else."""
        self.check()

        def refuse(why):
            return ValidationError('model_path', '%r %s; only a directory inside the models '
                                   'root %s is ever removed' % (model_path, why, self.given))
        if not isinstance(model_path, str) or not model_path:
            raise refuse('is not a path')
        if not os.path.isabs(model_path):
            raise refuse('is not an absolute path')
        if '..' in model_path.replace('\\', '/').split('/'):
            raise refuse("has a '..' component")
        if os.path.islink(model_path):
            raise refuse('is a symlink')
        real = os.path.realpath(model_path)
        if real == self.path:
            raise refuse('is the models root itself')
        if not _inside(real, self.path):
            lexical = os.path.normpath(model_path)
            if _inside(lexical, self.path) or _inside(lexical, self.lexical):
                raise refuse('leads outside the models root through a symlink')
            raise refuse('is outside the models root')
        if _inside(real, self.trash):
            raise refuse("is in the models root's trash")
        if not os.path.lexists(real):
            return None
        if not os.path.isdir(real):
            raise refuse('is not a directory')
        return real

    # -- deleting ------------------------------------------------------------------------

    def delete(self, model_id, model_path, delete_row):
        """Delete the row (``delete_row()``, which commits it) and the directory of
        ``model_path``, in the order the module describes. Returns the directory removed, or
        None when there was none (then only the row goes)."""
        directory = self.directory_of(model_path)
        if directory is None:
            delete_row()
            return None
        if os.stat(self.path).st_dev != os.stat(os.path.dirname(directory)).st_dev:
            raise ValidationError('model_path', '%r is on another filesystem than the models '
                                  'root, so it cannot be moved to the trash in one step'
                                  % model_path)
        token = '%d-%s' % (model_id, uuid.uuid4().hex[:12])
        trashed = os.path.join(self.trash, token)
        manifest = self._write_manifest(token, {'id': model_id, 'model_path': model_path,
                                                'directory': directory})
        try:
            os.rename(directory, trashed)
        except OSError as exc:
            os.unlink(manifest)
            self._tidy()
            raise StorageError('delete_model: cannot move %s to the trash: %s'
                               % (directory, exc)) from exc
        sync_directory(self.trash)
        try:
            delete_row()
        except BaseException:
            os.rename(trashed, directory)  # The row stays: so do its files, where they were.
            os.unlink(manifest)
            self._tidy()
            raise
        self._purge(token)
        return directory

    def _write_manifest(self, token, entry):
        path = os.path.join(self.trash, token + '.json')
        partial = path + '.partial'
        for attempt in range(5):  # Another delete may remove the trash once it is empty.
            os.makedirs(self.trash, exist_ok=True)
            try:
                f = open(partial, 'w')
                break
            except FileNotFoundError:
                if attempt == 4:
                    raise
        with f:
            json.dump(entry, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(partial, path)
        sync_directory(self.trash)
        return path

    def _purge(self, token):
        """Remove a trashed directory whose row is gone, then its manifest; the errors of what
        could not be removed (an unreadable folder), else []."""
        errors = []
        trashed = os.path.join(self.trash, token)
        if os.path.lexists(trashed):
            shutil.rmtree(trashed, onerror=lambda f, p, e: errors.append('%s: %s' % (p, e[1])))
        if not errors:
            os.unlink(os.path.join(self.trash, token + '.json'))
            self._tidy()
        return errors

    def _tidy(self):
        try:
            os.rmdir(self.trash)  # Only when empty: the root is left as it was found.
        except OSError:
            pass

    # -- what a crash left ---------------------------------------------------------------

    def trash_entries(self):
        """[(token, manifest entry or None)] of what is in the trash: a manifest and its
        directory share a token; a directory with no manifest has entry None."""
        if not os.path.isdir(self.trash):
            return []
        names = sorted(os.listdir(self.trash))
        out = []
        for name in names:
            if name.endswith('.json'):
                try:
                    with open(os.path.join(self.trash, name)) as f:
                        out.append((name[:-5], json.load(f)))
                except (OSError, ValueError):
                    out.append((name[:-5], None))
            elif not name.endswith('.partial') and name + '.json' not in names:
                out.append((name, None))
        return out

    def recover(self, row_exists, dry_run=False):
        """Finish every delete a crash interrupted; returns [(action, token, detail)].

        ``row_exists(id, model_path)`` says whether the manifest's row is still stored. Its
        files go back where they were (the delete never committed), or are removed (it did).
        A half-written manifest means nothing was moved: it is removed. With ``dry_run`` only
        the actions are returned."""
        actions = []
        for name in (sorted(os.listdir(self.trash)) if os.path.isdir(self.trash) else []):
            if name.endswith('.partial'):
                actions.append(('discard', name, 'a manifest a crash left half written'))
                if not dry_run:
                    os.unlink(os.path.join(self.trash, name))
        for token, entry in self.trash_entries():
            trashed = os.path.join(self.trash, token)
            if entry is None:
                actions.append(('keep', token, 'no manifest says whose it is; left alone'))
                continue
            moved = os.path.lexists(trashed)
            if row_exists(entry['id'], entry['model_path']):
                if not moved:
                    actions.append(('discard', token, 'model %d was never moved' % entry['id']))
                elif os.path.lexists(entry['directory']):
                    actions.append(('keep', token, 'model %d is still stored but %s is taken; '
                                    'move it back by hand' % (entry['id'], entry['directory'])))
                    continue
                else:
                    actions.append(('restore', token, 'model %d is still stored: its files go '
                                    'back to %s' % (entry['id'], entry['directory'])))
                    if not dry_run:
                        os.rename(trashed, entry['directory'])
                if not dry_run:
                    os.unlink(os.path.join(self.trash, token + '.json'))
            else:
                actions.append(('remove', token, 'model %d was deleted: its files %s' % (
                    entry['id'], 'are removed' if moved else 'were removed already')))
                if not dry_run:
                    errors = self._purge(token)
                    if errors:
                        actions[-1] = ('keep', token, 'cannot remove: ' + '; '.join(errors[:3]))
        if not dry_run:
            self._tidy()
        return actions
