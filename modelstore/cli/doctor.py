"""``modelstore doctor``: do the registry's rows and the models root agree, and the fixes.

    modelstore doctor [--models-root DIR] [--json]      report; exit 0 clean, 1 if not
        --empty-trash            finish deletes a crash interrupted
        --register               record orphan folders as models
        --forget-dangling --yes  delete rows whose model_path is missing (SQLite: backed up)

The report reads only (the database is opened for inspection, nothing is created). Each fix
says what it changed; the exit code is that of the state after the fixes.
"""
import json
import sys

from ..engine import Backups, Engine
from ..exceptions import ModelStoreError, ValidationError
from ..registry import connect
from ..registry.doctor import examine, orphan_model
from ..registry.modelfiles import ENV_VAR, resolve_root
from ..shared.database import open_database
from ..shared.models import bind_models
from ..shared.urls import mask_url, resolve_url, sqlite_path
from .output import OK, PENDING, plural
from .registry import columns

__all__ = ['cmd_doctor']


def _root(args):
    root = resolve_root(getattr(args, 'models_root', None))
    if root is None:
        raise ModelStoreError('doctor needs the models root: pass --models-root DIR or set $%s'
                              % ENV_VAR)
    try:
        return root.check()
    except ValidationError as exc:
        raise ModelStoreError('models root: %s' % exc.message) from None


def _read(url, root):
    """Findings from a database opened for inspection only."""
    database = open_database(url, mode='inspect')
    try:
        if 'fine_tuned_models' not in database.get_tables():
            raise ModelStoreError('%s holds no fine_tuned_models table: no registry to compare '
                                  'with the models root' % mask_url(url))
        M = bind_models(database)['FineTunedModel']
        rows = list(M.select(M.id, M.model_name, M.model_path).order_by(M.id).tuples())
        paths = {(i, p) for i, _, p in rows}
        return examine(rows, root, lambda model_id, path: (model_id, path) in paths)
    finally:
        database.close()


def cmd_doctor(args, out):
    url = resolve_url(args.database)
    root = _root(args)
    found = _read(url, root)
    fixes = []
    if args.forget_dangling and found.dangling and not args.yes:
        if not (sys.stdin.isatty() and not out.as_json and _confirm(out, found)):
            raise ModelStoreError('--forget-dangling deletes %s; add --yes to do it'
                                  % plural(len(found.dangling), 'row'))
    if args.empty_trash or args.register or args.forget_dangling:
        _report(out, found, final=False)
        with connect(url, models_root=root.path) as store:
            if args.empty_trash:
                fixes += _empty_trash(store)
            if args.register:
                fixes += _register(store, _read(url, root).orphans)
            if args.forget_dangling:
                fixes += _forget(store, url, _read(url, root).dangling)
        for fix in fixes if not out.as_json else ():
            out.line(fix['said'])
        found = _read(url, root)
    if out.as_json:
        out.json(dict(found.as_dict(), database=mask_url(url),
                      fixes=[{k: v for k, v in f.items() if k != 'said'} for f in fixes]))
    else:
        _report(out, found, final=True)
    return OK if found.clean else PENDING


def _confirm(out, found):
    out.line('%s whose files are gone:' % plural(len(found.dangling), 'row'))
    for row in found.dangling:
        out.line('  #%d %s  %s' % (row['id'], row['model_name'], row['model_path']))
    return out.ask('Delete them?')


def _empty_trash(store):
    return [{'fix': 'empty_trash', 'action': action, 'entry': token, 'detail': detail,
             'said': 'trash: %s %s: %s' % (action, token, detail)}
            for action, token, detail in store.empty_trash()]


def _register(store, orphans):
    fixes = []
    for orphan in orphans:
        fields = orphan_model(orphan)
        try:
            model = store.add_model(**fields)
        except ValidationError as exc:
            fixes.append({'fix': 'register', 'path': orphan.path, 'id': None,
                          'error': str(exc), 'said': 'not registered: %s: %s'
                          % (orphan.path, exc)})
            continue
        fixes.append({'fix': 'register', 'path': orphan.path, 'id': model.id,
                      'model_name': model.model_name, 'version': model.version,
                      'said': 'registered %s as model %d (%s v%s, base %s, task %s)' % (
                          orphan.path, model.id, model.model_name, model.version,
                          fields['base_model'], fields['task'])})
    return fixes


def _forget(store, url, dangling):
    if not dangling:
        return []
    fixes = []
    path = sqlite_path(url)
    backed_up = path not in (None, ':memory:')
    if backed_up:  # (Else each row is printed in full.)
        applied = Engine(store.database).status().applied
        backup = Backups(path).take(applied[-1] if applied else 'none')
        fixes.append({'fix': 'backup', 'path': backup,
                      'said': 'backed up %s to %s (modelstore restore puts it back)'
                      % (path, backup)})
    for row in dangling:
        # The whole row, in the output: enough to add it again (a server has no backup here).
        model = store.get_model(row['id'])
        store.delete_model(row['id'])
        data = columns(model)
        said = 'forgot model %d (%s): %s does not exist' % (row['id'], row['model_name'],
                                                          row['model_path'])
        if not backed_up:
            said += '; the row was: ' + json.dumps(data, default=str)
        fixes.append({'fix': 'forget', 'id': row['id'], 'model_path': row['model_path'],
                      'row': data, 'said': said})
    return fixes


def _report(out, found, final):
    if out.as_json:
        return
    if final:
        out.line('Models root: %s (%s)' % (found.root.path, plural(found.rows, 'row')))
    else:
        out.line('Before the fixes:')
    if found.orphans:
        out.line('Orphan folders (%d): files with no row' % len(found.orphans))
        for o in found.orphans:
            out.line('  %s  base %s, task %s, %s, %s%s' % (
                o.path, o.base_model or '?', o.task or '?', _size(o.size),
                o.modified.strftime('%Y-%m-%d %H:%M'),
                ''.join('; ' + p for p in o.problems)))
    if found.dangling:
        out.line('Dangling rows (%d): model_path missing' % len(found.dangling))
        for row in found.dangling:
            out.line('  #%d %s  %s' % (row['id'], row['model_name'], row['model_path']))
    if found.outside:
        out.line('Rows outside the models root (%d)' % len(found.outside))
        for row in found.outside:
            out.line('  #%d %s  %s' % (row['id'], row['model_name'], row['model_path']))
    if found.trash:
        out.line('Trash left by interrupted deletes (%d)' % len(found.trash))
        for action, token, detail in found.trash:
            out.line('  %s: would %s: %s' % (token, action, detail))
    for path, why in found.skipped:
        out.line('  skipped %s: %s' % (path, why))
    if not final:
        return
    if found.clean:
        out.line('%s Rows and folders agree.' % out.paint('✓', '32'))
        return
    hints = []
    if found.orphans:
        hints.append('--register records the orphans')
    if found.dangling:
        hints.append('--forget-dangling --yes deletes the dangling rows')
    if found.trash:
        hints.append('--empty-trash finishes the deletes')
    if hints:
        out.line('Fix: ' + '; '.join(hints) + '.')


def _size(n):
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if n < 1024 or unit == 'GiB':
            return ('%d %s' if unit == 'B' else '%.1f %s') % (n, unit)
        n /= 1024.0
    return str(n)

