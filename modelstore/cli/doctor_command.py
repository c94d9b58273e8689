"""``modelstore doctor``: do the registry's rows and the models root agree, and the fixes.

    modelstore doctor [--models-root DIR] [--json]      report; exit 0 clean, 1 if not
        --empty-trash            finish deletes a crash interrupted
        --register               record orphan folders as models
        --forget-dangling --yes  delete rows whose model_path is missing (SQLite: backed up)
        --min-age MINUTES        the fixes leave alone anything younger (default 60; 0: none)

The report reads only (the database is opened for inspection, nothing is created). Each fix
says what it changed, or what it left alone and why; the exit code is that of the state after
the fixes. A fix never races the pipeline it serves: what is younger than --min-age is left
alone, and right before each row it adds, --register asks again whether a row names the folder.
"""
import datetime
import json
import os
import sys

from ..engine import Backups, Engine, schema_version
from ..exceptions import ConfigError, ModelStoreError, NotFound, UsageError, ValidationError
from ..registry import (MODELS_ROOT_ENV as ENV_VAR, changed_at, connect, examine,
                        forge_present, orphan_model, read_forge, read_rows, resolve_root,
                        rows_naming)
from ..shared.database import open_database
from ..shared.text import shown, utf8
from ..shared.urls import command
from .output import plural
from .render import render
from .render_registry import too_recent
from .results import DoctorReport, columns
from .settings import database_url, hint

__all__ = ['cmd_doctor']


def _root(args):
    root = resolve_root(getattr(args, 'models_root', None))
    if root is None:
        raise ConfigError('doctor needs the models root: pass --models-root DIR, set $%s, or '
                          'set models_root in pyproject.toml\'s [tool.modelstore]' % ENV_VAR)
    try:
        return root.check()
    except ValidationError as exc:
        raise ConfigError('--models-root: %s' % exc.message) from None


def _read(url, root, min_age):
    """Findings from a database opened for inspection only."""
    database = open_database(url, mode='inspect')
    try:
        tables = database.get_tables()
        if 'fine_tuned_models' not in tables:
            raise ConfigError('%s holds no fine_tuned_models table: no registry to compare '
                              'with the models root' % url.masked)
        rows = read_rows(database)
        forge = read_forge(database, tables)
        paths = {(r[0], p) for r in rows for p in [_text(r[2])] if p is not None}
        return examine(rows, root, lambda model_id, path: (model_id, path) in paths, min_age,
                       forge)
    finally:
        database.close()


def _text(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode('utf-8')
        except UnicodeDecodeError:
            return None
    return value


def cmd_doctor(args, out):
    url = database_url(args)
    root = _root(args)
    min_age = args.min_age
    found = _read(url, root, min_age)
    fixes = []
    if args.forget_dangling and not args.yes:
        _confirm_forget(out, found)
    hints = _hints(args)
    if args.empty_trash or args.register or args.forget_dangling:
        # What the fixes start from, printed before they run (text only).
        render(out, DoctorReport(url.masked, found, hints, final=False))
        fixes = _fix(args, url, root)
        found = _read(url, root, min_age)
    return DoctorReport(url.masked, found, hints, fixes=fixes)


def _fix(args, url, root):
    """The fixes asked for, each on the findings as they are when it starts."""
    fixes, min_age = [], args.min_age
    with connect(url, models_root=root.path, register=False) as store:
        if args.empty_trash:
            fixes += _empty_trash(store)
        if args.register:
            fixes += _register(store, root, _read(url, root, min_age).orphans, min_age)
        if args.forget_dangling:
            fixes += _forget(store, url, _read(url, root, min_age).dangling, min_age)
    return fixes


def _hints(args):
    return lambda verb, *words: hint(args, verb, *words)


def _confirm_forget(out, found):
    """--forget-dangling without --yes: asked on a terminal; else (or not yes) a UsageError."""
    rows = [r for r in found.dangling if not r['too_recent']]
    if not rows or sys.stdin.isatty() and not out.as_json and _confirm(out, rows):
        return
    raise UsageError('--forget-dangling deletes %s; add --yes to do it'
                     % plural(len(rows), 'row'))


def _confirm(out, rows):
    out.line('%s whose files are gone:' % plural(len(rows), 'row'))
    for row in rows:
        out.line('  #%d %s  %s' % (row['id'], row['model_name'], row['model_path']))
    return out.ask('Delete them?')


def _empty_trash(store):
    return [{'fix': 'empty_trash', 'action': action, 'entry': token, 'detail': detail,
             'said': 'trash: %s %s: %s' % (action, token, detail)}
            for action, token, detail in store.empty_trash()]


def _left_alone(fix, what, why, **fields):
    """A fix not done, and why: {'fix': 'left_alone', 'would': 'register'|'forget', 'why'}."""
    return dict(fields, fix='left_alone', would=fix, why=why,
                said='left alone: %s: %s' % (what, why))


def _register(store, root, orphans, min_age):
    fixes = []
    forge = forge_present(store.database)
    for orphan in orphans:
        path = orphan.path
        if orphan.too_recent:
            fixes.append(_left_alone('register', shown(path), too_recent(min_age), path=path))
            continue
        if not utf8(path):
            fixes.append(_left_alone('register', shown(path), 'its name is not valid UTF-8, '
                                     'so it cannot be a model_path', path=path))
            continue
        # Asked again right before the row is added: a pipeline that wrote the folder may have
        # added its row since the report.
        naming = rows_naming(store.database, root, os.path.basename(path), forge)
        if naming:
            fixes.append(_left_alone('register', path, 'a row names it now (%s)' % ', '.join(
                '%s #%s: %s' % (table, key, p) for table, key, p in naming[:3]) + (
                    ', ...' if len(naming) > 3 else ''), path=path))
            continue
        fields = orphan_model(orphan)
        try:
            model = store.add_model(**fields)
        except ValidationError as exc:
            fixes.append({'fix': 'register', 'path': path, 'id': None,
                          'error': str(exc), 'said': 'not registered: %s: %s' % (path, exc)})
            continue
        tags, untagged = orphan.card.get('tags') or {}, ''
        try:
            if tags:  # The card's tags (modelstore's own card, or key:value Hub tags).
                store.set_tags(model.id, tags)
        except ValidationError as exc:
            tags, untagged = {}, "; its card's tags were not set: %s" % exc
        fixes.append({'fix': 'register', 'path': path, 'id': model.id,
                      'model_name': model.model_name, 'version': model.version,
                      'task': fields['task'], 'task_from': orphan.task_from, 'tags': tags,
                      'said': 'registered %s as model %d (%s v%s, base %s, task %s)%s' % (
                          path, model.id, model.model_name, model.version,
                          fields['base_model'], fields['task'], untagged)})
    return fixes


def _forget(store, url, dangling, min_age):
    fixes = []
    rows = []
    for row in dangling:
        if row['too_recent']:
            fixes.append(_left_alone('forget', '#%d %s' % (row['id'], row['model_path']),
                                     too_recent(min_age), id=row['id'],
                                     model_path=row['model_path']))
        else:
            rows.append(row)
    if not rows:
        return fixes
    path = url.sqlite_path
    backed_up = path not in (None, ':memory:')
    if backed_up:  # (Else each row is printed in full.)
        # Named as migrate's and rollback's are (the schema's number), so that restore and
        # the retention treat them alike.
        backup = Backups(path).take(schema_version(Engine(store.database).status()))
        fixes.append({'fix': 'backup', 'path': backup,
                      'said': 'backed up %s to %s (%s puts it back)'
                      % (path, backup, command('restore', backup, database=url))})
    cutoff = datetime.datetime.now() - datetime.timedelta(minutes=min_age)
    for row in rows:
        fix = _forget_row(store, row, cutoff, min_age, backed_up)
        if fix is not None:
            fixes.append(fix)
    return fixes


def _forget_row(store, row, cutoff, min_age, backed_up):
    """Delete one dangling row, judged again as it is now (a pipeline may have touched it
    since the report); None when it is gone already."""
    what = '#%d %s' % (row['id'], row['model_path'])
    fields = dict(id=row['id'], model_path=row['model_path'])
    try:
        model = store.get_model(row['id'])
    except NotFound:
        return None  # Gone since the report: nothing to forget.
    except ModelStoreError as exc:
        return _left_alone('forget', what, 'cannot read it: %s' % exc, **fields)
    changed = changed_at(model.creation_date, getattr(model, 'updated_at', None))
    if min_age and (changed is None or changed > cutoff):
        return _left_alone('forget', what, too_recent(min_age), **fields)
    if model.model_path != row['model_path'] or os.path.lexists(model.model_path):
        return _left_alone('forget', what, 'its files are there now: %s' % model.model_path,
                           **fields)
    # The whole row, in the output: enough to add it again (a server has no backup here).
    store.delete_model(row['id'])
    data = columns(model)
    said = 'forgot model %d (%s): %s does not exist' % (row['id'], row['model_name'],
                                                      row['model_path'])
    if not backed_up:
        said += '; the row was: ' + json.dumps(data, default=str)
    return {'fix': 'forget', **fields, 'row': data, 'said': said}
