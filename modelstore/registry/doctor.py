"""Do the registry's rows and the models root agree? (``modelstore doctor``)

``examine(rows, root, row_exists)`` compares rows -- (id, model_name, model_path[, timestamps])
-- with the folders directly under the root and reports:

* **orphans**: folders under the root that no row points at or into (seed 000's lost models:
  files on disk whose row was never written), with what they hold -- the base model from
  ``adapter_config.json``'s ``base_model_name_or_path`` or ``config.json``'s ``_name_or_path``,
  the task from ``modelforge_config.json``'s ``pipeline_task`` (else the adapter's
  ``task_type``) -- or all of it from a model card (``README.md``: modelstore's own from
  ``export_model_card``, or any Hugging Face card's ``base_model`` and ``pipeline_tag``) --,
  the size, the folder's time and the newest time of anything in it;
* **awaiting_import**: folders that ModelForge's own ``models`` table names, in a row not
  imported yet (waiting for ``modelstore import modelforge``): never orphans;
* **dangling** rows, whose ``model_path`` does not exist;
* rows **outside** the root (their path exists but is not strictly inside it);
* **relative** rows, whose ``model_path`` is not absolute: they cannot be judged (relative to
  what?), so they are neither dangling nor forgotten;
* **invalid** rows, whose ``model_path`` or ``model_name`` cannot be read as text (not a string,
  a NUL byte, bytes that are not UTF-8), each named by table and id;
* **trash** a crash left (``modelfiles``), with what ``empty_trash`` would do with it ('busy':
  a delete in progress holds it; listed, nothing to fix).

A folder is claimed iff some row's path, taken relative to the root (``ModelsRoot.relative``,
by its spelling), has that folder as its first component: one set, so the report is
O(rows + folders). A path whose spelling is not under the root (another spelling of it,
through a link, with '..') or that goes through a link in the root is resolved, as far as it
exists.

Orphans and dangling rows younger than ``min_age`` minutes (a folder by the newest mtime of
anything in it, a row by the later of its ``creation_date`` and ``updated_at``) are marked
``too_recent``: a pipeline writes its folder and then adds its row, or adds the row and then
writes the folder while it trains, and a fix must never race it.

Hidden entries (a name starting with '.') are not models and are not reported; a symlink is
never followed (it is listed as skipped); config files are read at most ``READ_LIMIT`` bytes,
never through a link; a folder that cannot be read is reported with what could be read; one
bad row or folder is reported and the rest of the report goes on. Examining writes nothing.
"""
import datetime
import errno
import json
import os
import re
import stat
import time

from ..exceptions import ValidationError
from ..shared.defaults import MAX_MIN_AGE, MIN_AGE
from ..shared.text import shown, utf8
from .cards import CARD, parse as parse_card
from .folderfiles import READ_LIMIT as CARD_LIMIT

__all__ = ['MIN_AGE', 'MAX_MIN_AGE', 'READ_LIMIT', 'FORGE_TABLE', 'FORGE_SOURCE', 'Findings',
           'NotText', 'Orphan', 'as_text', 'changed_at', 'examine', 'first_folder', 'key_text',
           'orphan_model']

READ_LIMIT = 1 << 20  # bytes of a config file read at most (1 MiB).
FORGE_TABLE = 'models'  # ModelForge v2's own table (modelstore.registry.importer).
FORGE_SOURCE = 'modelforge'

# ModelForge names a model's folder <name>_<uuid4>.
_FOLDER = re.compile(r'^(?P<name>.+)_[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}'
                     r'-?[0-9a-f]{12}$', re.IGNORECASE)


class NotText(str):
    """What SQLite holds in a text column that is not text: its type ('integer', 'blob')."""


def as_text(value, column):
    """(text, None), or (None, why) for a value that is not text: None, another type, bytes
    that are not UTF-8 (SQLite hands back anything), or text with a NUL byte."""
    if isinstance(value, NotText):
        return None, '%s is not text but %s' % (column, value)
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode('utf-8')
        except UnicodeDecodeError as exc:
            return None, '%s is not valid UTF-8 (byte 0x%02x at offset %d of %r)' % (
                column, value[exc.start], exc.start, bytes(value[:200]))
    if value is None:
        return None, '%s is NULL' % column
    if not isinstance(value, str):
        return None, '%s is not text but %s (%r)' % (column, type(value).__name__, value)
    if '\0' in value:
        return None, '%s contains a NUL byte: %r' % (column, value)
    return value, None


def key_text(value):
    """A key as read (SQLite: the bytes of its value) as text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode('utf-8', 'backslashreplace')
    return value


def _timestamp(value):
    """A stored timestamp (ISO text, bytes of it, or a datetime) as naive local time; None for
    NULL or anything unreadable (a hand-edited value is not this report's business)."""
    if not isinstance(value, datetime.datetime):
        text, _ = as_text(value, 'timestamp')  # None for anything that is not text.
        try:
            value = datetime.datetime.fromisoformat((text or '').strip())
        except ValueError:
            return None
    if value.tzinfo is not None:
        try:
            value = value.astimezone().replace(tzinfo=None)
        except (OverflowError, ValueError):
            return None
    return value


def _when(seconds):
    """A file time as local time; None for one no datetime holds (a clock set to year 30000)."""
    try:
        return datetime.datetime.fromtimestamp(seconds)
    except (OverflowError, ValueError, OSError):
        return None


def changed_at(*values):
    """The latest of the readable timestamps among ``values`` (creation_date, updated_at), or
    None if none is readable."""
    stamps = [t for t in map(_timestamp, values) if t is not None]
    return max(stamps) if stamps else None


class Orphan:
    """A folder under the root with no row."""

    def __init__(self, path, min_age=0, now=None):
        self.path = path
        folder = os.path.basename(path)
        match = _FOLDER.match(folder)
        self.name = match.group('name') if match else folder
        self.problems = []
        if not utf8(path):
            self.problems.append('its name is not valid UTF-8: it cannot be a model_path')
        self.base_model, self.task, self.task_from = self._config()
        try:
            top = os.lstat(path)
        except OSError as exc:
            self.problems.append('cannot read %s: %s' % (shown(path), exc.strerror))
            top = None
        self.modified = _when(top.st_mtime) if top else None
        self.size, newest = self._walk(top.st_mtime if top else None)
        self.newest = _when(newest) if newest is not None else None
        self.too_recent = _too_recent(
            min_age, newest, (now if now is not None else time.time()) - min_age * 60)

    def _read(self, name, parse=json.loads, limit=None):
        """What ``parse`` makes of the text of ``name`` inside the folder (a dict), read
        through no link and at most ``limit`` (limit) bytes; {} (with a problem said) for
        anything else."""
        limit = READ_LIMIT if limit is None else limit
        path = os.path.join(self.path, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.problems.append('%s is a symlink: not followed' % name)
            elif exc.errno not in (errno.ENOTDIR,):
                self.problems.append('%s unreadable: %s' % (name, exc.strerror))
            return {}
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self.problems.append('%s is not a regular file: not read' % name)
                return {}
            if st.st_size > limit:
                self.problems.append('%s is %d bytes, more than %d: not read' % (
                    name, st.st_size, limit))
                return {}
            with os.fdopen(os.dup(fd), 'rb') as f:
                data = f.read(limit + 1)
            if len(data) > limit:  # It grew after the fstat.
                self.problems.append('%s is more than %d bytes: not read' % (name, limit))
                return {}
            data = parse(data.decode('utf-8'))
        except (OSError, ValueError, RecursionError) as exc:
            self.problems.append('%s unreadable: %s' % (name, exc))
            return {}
        finally:
            os.close(fd)
        return data if isinstance(data, dict) else {}

    def _config(self):
        # A model card (README.md, Hugging Face's, or modelstore's own: export_model_card)
        # says it first; the configuration files otherwise.
        self.card = self._read(CARD, parse_card, CARD_LIMIT)
        if self.card.get('model_name') not in (None, self.name):
            # A card copied with its folder names the model it was copied from: the folder's
            # own name says which model this is (a copy never becomes that model's version).
            self.problems.append('%s names the model %r, not this folder (%r): registered '
                                 'under the folder\'s name' % (CARD, self.card['model_name'],
                                                                 self.name))
            del self.card['model_name']
        card_base, card_task = self.card.get('base_model'), self.card.get('task')
        if isinstance(card_base, str) and card_base and isinstance(card_task, str) and \
                card_task.strip():
            return card_base, card_task, CARD
        base, task, source = self._configured()
        if isinstance(card_base, str) and card_base:
            base = card_base
        if isinstance(card_task, str) and card_task.strip():
            task, source = card_task, CARD
        return base, task, source

    def _configured(self):
        adapter = self._read('adapter_config.json')
        base = adapter.get('base_model_name_or_path')
        if not isinstance(base, str) or not base:
            base = self._read('config.json').get('_name_or_path')
        task, source = self._read('modelforge_config.json').get('pipeline_task'), \
            'modelforge_config.json'
        if not isinstance(task, str) or not task.strip():
            task, source = adapter.get('task_type'), 'adapter_config.json'
        if not isinstance(task, str) or not task.strip():
            task, source = None, None
        return (base if isinstance(base, str) and base else None, task, source)

    def _walk(self, newest):
        """(total size of the files, newest mtime of the folder and everything in it), with a
        list of folders still to read rather than recursion: a tree of any depth is walked.
        Links are not followed (their own size and time count); a directory is its time only."""
        total = 0
        pending = [self.path]
        while pending:
            base = pending.pop()
            try:
                with os.scandir(base) as listing:
                    entries = list(listing)
            except OSError as exc:
                self.problems.append('cannot read %s: %s' % (shown(base), exc.strerror))
                continue
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    self.problems.append('cannot read %s: %s' % (shown(entry.path),
                                                                exc.strerror))
                    continue
                newest = st.st_mtime if newest is None else max(newest, st.st_mtime)
                if stat.S_ISDIR(st.st_mode):
                    pending.append(entry.path)
                else:
                    total += st.st_size
        return total, newest

    def as_dict(self):
        return {'path': self.path, 'name': self.name, 'base_model': self.base_model,
                'task': self.task, 'task_from': self.task_from, 'size': self.size,
                'card': bool(self.card),
                'modified': self.modified.isoformat() if self.modified else None,
                'newest': self.newest.isoformat() if self.newest else None,
                'too_recent': self.too_recent, 'problems': self.problems}


def orphan_model(orphan):
    """The add_model fields ``doctor --register`` records for an orphan folder: from its model
    card, where it has one (the card's ``tags`` are the caller's to set), else from its name
    and configuration files."""
    fields = {name: value for name, value in orphan.card.items() if name != 'tags'}
    fields.update(model_name=fields.get('model_name') or orphan.name,
                  base_model=orphan.base_model or 'unknown', task=orphan.task or 'unknown',
                  model_path=orphan.path,
                  creation_date=orphan.modified or datetime.datetime.now())
    fields.setdefault('description', 'registered by modelstore doctor from a folder with no '
                                     'row')
    return fields


class Findings:
    def __init__(self, root, rows, min_age):
        self.root = root
        self.rows = rows
        self.min_age = min_age
        self.orphans = []
        self.awaiting_import = []  # {'path', 'models': [{'id', 'name', 'active'}]}
        # {'id', 'model_name', 'model_path', 'inside', 'changed', 'too_recent'}
        self.dangling = []
        self.outside = []    # {'id', 'model_name', 'model_path'}
        self.relative = []   # {'id', 'model_name', 'model_path', 'why'}
        self.invalid = []    # {'table', 'id', 'why'}
        self.trash = []      # (action, token, detail), as empty_trash would do it
        self.skipped = []    # (path, why)

    @property
    def trash_to_fix(self):
        return [t for t in self.trash if t[0] != 'busy']

    @property
    def clean(self):
        return not (self.orphans or self.awaiting_import or self.dangling or self.outside
                    or self.relative or self.invalid or self.trash_to_fix)

    def as_dict(self):
        return {'models_root': self.root.path, 'rows': self.rows, 'clean': self.clean,
                'min_age_minutes': self.min_age,
                'orphans': [o.as_dict() for o in self.orphans],
                'awaiting_import': self.awaiting_import,
                'dangling': [dict(r, changed=r['changed'] and r['changed'].isoformat())
                             for r in self.dangling],
                'outside': self.outside, 'relative': self.relative, 'invalid': self.invalid,
                'trash': [{'action': a, 'entry': t, 'detail': d} for a, t, d in self.trash],
                'skipped': [{'path': p, 'why': w} for p, w in self.skipped]}


def first_folder(root, path, entries=None):
    """The folder directly under the root that ``path`` (absolute, text) names or is inside,
    or None if it names none. By spelling first (``root.relative``); a path spelled otherwise,
    or through a link directly under the root, is resolved as far as it exists."""
    entries = entries or {}
    parts = _relative(root, path)
    if parts is not None:
        entry = entries.get(parts[0])
        if entry is None or not entry[1]:
            return parts[0]
    # Not under the root by its spelling (another spelling of it, '..', the trash, the root
    # itself), or through a symlink in the root: where it really is, as far as it exists.
    parts = _relative(root, os.path.realpath(path))
    return parts[0] if parts else None


def _relative(root, path):
    try:
        return root.relative(path)
    except ValidationError:
        return None


def examine(rows, root, row_exists, min_age=MIN_AGE, forge=(), now=None):
    """Findings for ``rows`` -- (id, model_name, model_path, *timestamps), all of them; the
    texts may be bytes (SQLite's, read as BLOB) and are decoded row by row -- under ``root`` (a
    checked ModelsRoot); ``row_exists(id, path)`` is what ``empty_trash`` asks. ``forge``: the
    rows of ModelForge's ``models`` table not imported yet, (id, name, path, is_active).
    ``min_age`` (minutes) marks what is too recent for a fix."""
    rows = list(rows)
    now = now if now is not None else time.time()
    found = Findings(root, len(rows), min_age)
    entries = _entries(root)
    cutoff = _when(now - min_age * 60) or datetime.datetime.min
    claimed = {_file_row(found, entries, cutoff, *row) for row in rows} - {None}
    waiting = _awaiting_import(found, entries, claimed, forge)
    for name, (entry, link) in entries.items():
        if not _model_folder(found, name, entry, link) or name in claimed:
            continue
        if name in waiting:
            found.awaiting_import.append({'path': entry.path, 'models': waiting[name]})
        else:
            found.orphans.append(Orphan(entry.path, min_age, now))
    found.trash = root.recover(row_exists, dry_run=True)
    return found


def _too_recent(min_age, when, cutoff):
    """Unknown age is too recent: a fix must never race a pipeline."""
    return bool(min_age) and (when is None or when > cutoff)


def _entries(root):
    """The root's entries, by name in order: name -> (entry, is a symlink)."""
    try:
        listed = sorted(os.scandir(root.path), key=lambda e: e.name)
    except OSError as exc:
        raise OSError('cannot list the models root %s: %s' % (root.path, exc.strerror)) from exc
    entries = {}
    for entry in listed:
        try:
            entries[entry.name] = (entry, entry.is_symlink())
        except OSError:
            entries[entry.name] = (entry, False)
    return entries


def _file_row(found, entries, cutoff, model_id, name, path, *stamps):
    """Files a row under its finding (if any); returns the folder it claims, or None. An
    invalid row's folder is claimed all the same: it is no orphan."""
    name, bad_name = as_text(name, 'model_name')
    path, bad_path = as_text(path, 'model_path')
    absolute = path is not None and path.startswith('/')
    folder = first_folder(found.root, path, entries) if absolute else None
    row = {'id': model_id, 'model_name': name, 'model_path': path}
    if bad_path or bad_name:
        found.invalid.append({'table': 'fine_tuned_models', 'id': model_id,
                              'why': '; '.join(filter(None, (bad_path, bad_name)))})
    elif not absolute:
        found.relative.append(dict(row, why='cannot be judged: not an absolute path'))
    elif not os.path.lexists(path):
        changed = changed_at(*stamps)
        found.dangling.append(dict(row, inside=folder is not None, changed=changed,
                                   too_recent=_too_recent(found.min_age, changed, cutoff)))
    elif folder is None:
        found.outside.append(row)
    return folder


def _awaiting_import(found, entries, claimed, forge):
    """{folder: [{'id', 'name', 'active'}]}: the unclaimed folders ModelForge's rows name."""
    waiting = {}
    for source_id, name, path, active in forge:
        source_id = key_text(source_id)
        path, bad_path = as_text(path, 'path')
        if bad_path:
            found.invalid.append({'table': FORGE_TABLE, 'id': source_id, 'why': bad_path})
            continue
        folder = first_folder(found.root, path, entries) if path.startswith('/') else None
        if folder is not None and folder not in claimed:
            waiting.setdefault(folder, []).append({'id': source_id, 'name': as_text(
                name, 'name')[0], 'active': active not in (0, False, '0', 'false')})
    return waiting


def _model_folder(found, name, entry, link):
    """Can this entry of the root be a model? Hidden entries and files are not; a symlink or
    an entry that cannot be told is skipped, with why."""
    if name.startswith('.'):
        return False
    if link:
        found.skipped.append((entry.path, 'a symlink: not followed'))
        return False
    try:
        return entry.is_dir(follow_symlinks=False)  # A file beside the folders is no model.
    except OSError as exc:
        found.skipped.append((entry.path, 'cannot tell what it is: %s' % exc.strerror))
        return False
