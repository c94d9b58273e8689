"""Do the registry's rows and the models root agree? (``modelstore doctor``)

``examine(rows, root)`` compares rows -- (id, model_name, model_path) -- with the folders
directly under the root and reports:

* **orphans**: folders under the root that no row points at or into (seed 000's lost models:
  files on disk whose row was never written), with what they hold -- the base model from
  ``adapter_config.json``'s ``base_model_name_or_path`` or ``config.json``'s ``_name_or_path``,
  the adapter's ``task_type``, the size, the folder's time;
* **dangling** rows, whose ``model_path`` does not exist;
* rows **outside** the root (their path exists but is not strictly inside it);
* **trash** a crash left (``modelfiles``), with what ``empty_trash`` would do with it.

Hidden entries (a name starting with '.') are not models and are not reported; a symlink is
never followed (it is listed as skipped); a folder that cannot be read is reported with what
could be read. Examining writes nothing.
"""
import datetime
import json
import os
import re

from .modelfiles import _inside

__all__ = ['Findings', 'Orphan', 'examine', 'orphan_model']

# ModelForge names a model's folder <name>_<uuid4>.
_FOLDER = re.compile(r'^(?P<name>.+)_[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}'
                     r'-?[0-9a-f]{12}$', re.IGNORECASE)


class Orphan:
    """A folder under the root with no row."""

    def __init__(self, path):
        self.path = path
        folder = os.path.basename(path)
        match = _FOLDER.match(folder)
        self.name = match.group('name') if match else folder
        self.problems = []
        self.base_model, self.task = self._config()
        self.size = self._size()
        self.modified = datetime.datetime.fromtimestamp(os.lstat(path).st_mtime)

    def _read(self, name):
        path = os.path.join(self.path, name)
        if not os.path.isfile(path):
            return {}
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            self.problems.append('%s unreadable: %s' % (name, exc))
            return {}
        return data if isinstance(data, dict) else {}

    def _config(self):
        adapter = self._read('adapter_config.json')
        base = adapter.get('base_model_name_or_path')
        if not isinstance(base, str) or not base:
            base = self._read('config.json').get('_name_or_path')
        task = adapter.get('task_type')
        return (base if isinstance(base, str) and base else None,
                task if isinstance(task, str) and task else None)

    def _size(self):
        total = 0

        def unreadable(exc):
            self.problems.append('cannot read %s: %s' % (exc.filename, exc.strerror))
        for base, _, files in os.walk(self.path, onerror=unreadable):
            for name in files:
                try:
                    total += os.lstat(os.path.join(base, name)).st_size
                except OSError as exc:
                    unreadable(exc)
        return total

    def as_dict(self):
        return {'path': self.path, 'name': self.name, 'base_model': self.base_model,
                'task': self.task, 'size': self.size, 'modified': self.modified.isoformat(),
                'problems': self.problems}


def orphan_model(orphan):
    """The add_model fields ``doctor --register`` records for an orphan folder."""
    return dict(model_name=orphan.name, base_model=orphan.base_model or 'unknown',
                task=orphan.task or 'unknown', model_path=orphan.path,
                creation_date=orphan.modified,
                description='registered by modelstore doctor from a folder with no row')


class Findings:
    def __init__(self, root, rows):
        self.root = root
        self.rows = rows
        self.orphans = []
        self.dangling = []   # {'id', 'model_name', 'model_path', 'inside'}
        self.outside = []    # {'id', 'model_name', 'model_path'}
        self.trash = []      # (action, token, detail), as empty_trash would do it
        self.skipped = []    # (path, why)

    @property
    def clean(self):
        return not (self.orphans or self.dangling or self.outside or self.trash)

    def as_dict(self):
        return {'models_root': self.root.path, 'rows': self.rows, 'clean': self.clean,
                'orphans': [o.as_dict() for o in self.orphans], 'dangling': self.dangling,
                'outside': self.outside,
                'trash': [{'action': a, 'entry': t, 'detail': d} for a, t, d in self.trash],
                'skipped': [{'path': p, 'why': w} for p, w in self.skipped]}


def examine(rows, root, row_exists):
    """Findings for ``rows`` ((id, model_name, model_path), all of them) under ``root`` (a
    checked ModelsRoot); ``row_exists(id, path)`` is what ``empty_trash`` asks."""
    rows = list(rows)
    found = Findings(root, len(rows))
    claimed = []
    for model_id, name, path in rows:
        row = {'id': model_id, 'model_name': name, 'model_path': path}
        absolute = isinstance(path, str) and os.path.isabs(path)
        real = os.path.realpath(path) if absolute else None
        inside = real is not None and real != root.path and _inside(real, root.path)
        if not absolute or not os.path.lexists(path):
            found.dangling.append(dict(row, inside=inside))
        elif not inside:
            found.outside.append(row)
        else:
            claimed.append(real)
    try:
        entries = sorted(os.scandir(root.path), key=lambda e: e.name)
    except OSError as exc:
        raise OSError('cannot list the models root %s: %s' % (root.path, exc.strerror)) from exc
    for entry in entries:
        if entry.name.startswith('.'):
            continue
        if entry.is_symlink():
            found.skipped.append((entry.path, 'a symlink: not followed'))
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue  # A file beside the model folders is not a model.
        real = os.path.realpath(entry.path)
        if any(_inside(c, real) or _inside(real, c) for c in claimed):
            continue
        found.orphans.append(Orphan(entry.path))
    found.trash = root.recover(row_exists, dry_run=True)
    return found
