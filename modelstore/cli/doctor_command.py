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

from ..engine import Backups, Engine
from ..exceptions import ConfigError, ModelStoreError, NotFound, UsageError, ValidationError
from ..registry import connect
from ..registry.doctor import changed_at, examine, orphan_model
from ..registry.doctordb import forge_present, read_forge, read_rows, rows_naming
from ..registry.modelfiles import ENV_VAR, resolve_root
from ..shared.database import open_database
from ..shared.text import shown, utf8
from ..engine.status import schema_version
from ..shared.urls import command, mask_url, resolve_url, sqlite_path
from .output import OK, PENDING, plural
from .settings import hint
from .registry_commands import columns

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
                              'with the models root' % mask_url(url))
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
    url = resolve_url(args.database)
    root = _root(args)
    min_age = args.min_age
    found = _read(url, root, min_age)
    fixes = []
    forgettable = [r for r in found.dangling if not r['too_recent']]
    if args.forget_dangling and forgettable and not args.yes:
        if not (sys.stdin.isatty() and not out.as_json and _confirm(out, forgettable)):
            raise UsageError('--forget-dangling deletes %s; add --yes to do it'
                                  % plural(len(forgettable), 'row'))
    if args.empty_trash or args.register or args.forget_dangling:
        _report(out, found, final=False, args=args)
        with connect(url, models_root=root.path) as store:
            if args.empty_trash:
                fixes += _empty_trash(store)
            if args.register:
                fixes += _register(store, root, _read(url, root, min_age).orphans, min_age)
            if args.forget_dangling:
                fixes += _forget(store, url, _read(url, root, min_age).dangling, min_age)
        for fix in fixes if not out.as_json else ():
            out.line(fix['said'])
        found = _read(url, root, min_age)
    if out.as_json:
        out.json(dict(found.as_dict(), database=mask_url(url),
                      fixes=[{k: v for k, v in f.items() if k != 'said'} for f in fixes]))
    else:
        _report(out, found, final=True, args=args)
    return OK if found.clean else PENDING


def _confirm(out, rows):
    out.line('%s whose files are gone:' % plural(len(rows), 'row'))
    for row in rows:
        out.line('  #%d %s  %s' % (row['id'], row['model_name'], row['model_path']))
    return out.ask('Delete them?')


def _empty_trash(store):
    return [{'fix': 'empty_trash', 'action': action, 'entry': token, 'detail': detail,
             'said': 'trash: %s %s: %s' % (action, token, detail)}
            for action, token, detail in store.empty_trash()]


def _too_recent(min_age):
    return 'too recent for a fix (younger than %s min)' % ('%g' % min_age)


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
            fixes.append(_left_alone('register', shown(path), _too_recent(min_age), path=path))
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
        fixes.append({'fix': 'register', 'path': path, 'id': model.id,
                      'model_name': model.model_name, 'version': model.version,
                      'task': fields['task'], 'task_from': orphan.task_from,
                      'said': 'registered %s as model %d (%s v%s, base %s, task %s)' % (
                          path, model.id, model.model_name, model.version,
                          fields['base_model'], fields['task'])})
    return fixes


def _forget(store, url, dangling, min_age):
    fixes = []
    rows = []
    for row in dangling:
        if row['too_recent']:
            fixes.append(_left_alone('forget', '#%d %s' % (row['id'], row['model_path']),
                                     _too_recent(min_age), id=row['id'],
                                     model_path=row['model_path']))
        else:
            rows.append(row)
    if not rows:
        return fixes
    path = sqlite_path(url)
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
        what = '#%d %s' % (row['id'], row['model_path'])
        try:
            model = store.get_model(row['id'])
        except NotFound:
            continue  # Gone since the report: nothing to forget.
        except ModelStoreError as exc:
            fixes.append(_left_alone('forget', what, 'cannot read it: %s' % exc,
                                     id=row['id'], model_path=row['model_path']))
            continue
        # Judged again as the row is now: a pipeline may have touched it since the report.
        changed = changed_at(model.creation_date, getattr(model, 'updated_at', None))
        if min_age and (changed is None or changed > cutoff):
            fixes.append(_left_alone('forget', what, _too_recent(min_age), id=row['id'],
                                     model_path=row['model_path']))
            continue
        if model.model_path != row['model_path'] or os.path.lexists(model.model_path):
            fixes.append(_left_alone('forget', what, 'its files are there now: %s'
                                     % model.model_path, id=row['id'],
                                     model_path=row['model_path']))
            continue
        # The whole row, in the output: enough to add it again (a server has no backup here).
        store.delete_model(row['id'])
        data = columns(model)
        said = 'forgot model %d (%s): %s does not exist' % (row['id'], row['model_name'],
                                                          row['model_path'])
        if not backed_up:
            said += '; the row was: ' + json.dumps(data, default=str)
        fixes.append({'fix': 'forget', 'id': row['id'], 'model_path': row['model_path'],
                      'row': data, 'said': said})
    return fixes


def _rows(out, rows, note=None):
    for row in rows:
        out.line('  #%d %s  %s%s' % (row['id'], shown(row['model_name']),
                                     shown(row['model_path']), note(row) if note else ''))


def _report(out, found, final, args):
    if out.as_json:
        return
    if final:
        out.line('Models root: %s (%s)' % (found.root.path, plural(found.rows, 'row')))
    else:
        out.line('Before the fixes:')
    recent = ' — ' + _too_recent(found.min_age)
    if found.orphans:
        out.line('Orphan folders (%d): files with no row' % len(found.orphans))
        for o in found.orphans:
            out.line('  %s  base %s, task %s, %s, %s%s%s' % (
                shown(o.path), shown(o.base_model or '?'), shown(o.task or '?'), _size(o.size),
                o.modified.strftime('%Y-%m-%d %H:%M') if o.modified else '?',
                ''.join('; ' + shown(p) for p in o.problems), recent if o.too_recent else ''))
    if found.awaiting_import:
        out.line('Waiting for `%s` (%d): folders that ModelForge\'s models table names'
                 % (hint(args, 'import modelforge'), len(found.awaiting_import)))
        for folder in found.awaiting_import:
            out.line('  %s  %s' % (shown(folder['path']), ', '.join(
                'models.id %s %s%s' % (shown(m['id']), shown(m['name']), '' if m['active'] else
                                       ' (inactive: --include-inactive imports it)')
                for m in folder['models'])))
    if found.dangling:
        out.line('Dangling rows (%d): model_path missing' % len(found.dangling))
        _rows(out, found.dangling, lambda r: recent if r['too_recent'] else '')
    if found.outside:
        out.line('Rows outside the models root (%d)' % len(found.outside))
        _rows(out, found.outside)
    if found.relative:
        out.line('Rows with a relative model_path (%d): cannot be judged: not an absolute path'
                 % len(found.relative))
        _rows(out, found.relative)
    if found.invalid:
        out.line('Rows that cannot be read (%d)' % len(found.invalid))
        for row in found.invalid:
            out.line('  %s #%s: %s' % (row['table'], row['id'], shown(row['why'])))
    if found.trash:
        out.line('Trash left by interrupted deletes (%d)' % len(found.trash))
        for action, token, detail in found.trash:
            out.line('  %s: %s: %s' % (shown(token), action if action == 'busy' else
                                       'would ' + action, shown(detail)))
    for path, why in found.skipped:
        out.line('  skipped %s: %s' % (shown(path), why))
    if not final:
        return
    if found.clean:
        out.line('%s Rows and folders agree.' % out.paint('✓', '32'))
        return
    hints = []
    if any(not o.too_recent for o in found.orphans):
        hints.append('`%s` records the orphans' % hint(args, 'doctor', '--register'))
    elif found.orphans:
        hints.append('the orphans are too recent for --register (--min-age)')
    if found.awaiting_import:
        hints.append('`%s` records the folders waiting for it'
                     % hint(args, 'import modelforge'))
    if any(not r['too_recent'] for r in found.dangling):
        hints.append('`%s` deletes the dangling rows'
                     % hint(args, 'doctor', '--forget-dangling', '--yes'))
    elif found.dangling:
        hints.append('the dangling rows are too recent for --forget-dangling (--min-age)')
    if found.trash_to_fix:
        hints.append('`%s` finishes the deletes' % hint(args, 'doctor', '--empty-trash'))
    if found.relative or found.invalid:
        hints.append('rows with a relative or unreadable model_path need a hand (update_model '
                     'or `%s`)' % hint(args, 'models delete', 'ID'))
    if hints:
        out.line('Fix: ' + '; '.join(hints) + '.')


def _size(n):
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if n < 1024 or unit == 'GiB':
            return ('%d %s' if unit == 'B' else '%.1f %s') % (n, unit)
        n /= 1024.0
    return str(n)
