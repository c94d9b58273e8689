"""The registry for operators: ``modelstore models list|show|delete`` and ``tasks list|show``.

Human output is a table that fits an 80-column terminal (a long value is cut with '…'), or one
``column: value`` line per column for ``show``; ``--json`` prints a JSON array of objects with
every column. A bad id or filter is exit 2 with ``error:``; a database that does not exist is
not created (the commands read an existing registry; ``delete`` writes one row).
"""
import datetime
import enum
import json
import sys

from ..exceptions import ModelStoreError
from ..registry import connect
from ..registry.importer import import_modelforge, plan_modelforge
from ..shared.urls import database_exists, mask_url, resolve_url
from .output import OK, plural

__all__ = ['cmd_models_list', 'cmd_models_show', 'cmd_models_delete', 'cmd_tasks_list',
           'cmd_tasks_show', 'cmd_import', 'table']

WIDTH = 80


def _store(args, write=False):
    url = resolve_url(args.database)
    if not database_exists(url):
        raise ModelStoreError('no registry at %s: it does not exist (nothing was created)'
                              % mask_url(url))
    root = getattr(args, 'models_root', None)
    return connect(url, allow_newer=not write, models_root=root)


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return value


def columns(row):
    """Every column of a stored row, by column name, as JSON values."""
    meta = type(row)._meta
    return {field.column_name: _plain(row.__data__.get(field.name))
            for field in meta.sorted_fields}


def table(headers, rows, flexible, width=WIDTH):
    """Lines of a table of ``rows`` (tuples of text) under ``headers`` that fit ``width``:
    the ``flexible`` columns (indexes) give way, widest first, and their values are cut
    with '…'."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    while sum(widths) + 2 * (len(widths) - 1) > width:
        shrink = max(flexible, key=lambda i: widths[i])
        if widths[shrink] <= 6:
            break
        widths[shrink] -= 1

    def cut(text, n):
        return text if len(text) <= n else text[:n - 1] + '…'
    lines = []
    for r in [headers] + list(rows):
        lines.append('  '.join(cut(v, w).ljust(w) for v, w in zip(r, widths)).rstrip())
    return lines


def _when(value):
    return value.strftime('%Y-%m-%d %H:%M') if isinstance(value, datetime.datetime) else \
        ('' if value is None else str(value))


def _print_rows(out, rows, headers, cells, flexible, empty):
    if out.as_json:
        out.json([columns(r) for r in rows])
        return OK
    if not rows:
        out.line(empty)
        return OK
    for line in table(headers, [tuple(map(str, cells(r))) for r in rows], flexible):
        out.line(line)
    return OK


def _show(out, row):
    if out.as_json:
        out.json([columns(row)])
        return OK
    values = columns(row)
    width = max(map(len, values))
    for name, value in values.items():
        text = '' if value is None else (value if isinstance(value, str) else
                                         json.dumps(value))
        out.line('%s  %s' % (name.ljust(width), text))
    return OK


# -- models ----------------------------------------------------------------------------------

MODEL_FILTERS = ('task', 'base_model', 'model_name', 'name_prefix', 'name_contains',
                 'created_after', 'created_before')


def cmd_models_list(args, out):
    filters = {name: getattr(args, name) for name in MODEL_FILTERS
               if getattr(args, name) is not None}
    if args.custom is not None:
        filters['is_custom_base_model'] = args.custom
    with _store(args) as store:
        rows = store.list_models(order=args.order, limit=args.limit, offset=args.offset,
                                 **filters)
    return _print_rows(out, rows, ('ID', 'NAME', 'VER', 'BASE MODEL', 'TASK', 'CREATED'),
                       lambda m: (m.id, m.model_name, '' if m.version is None else m.version,
                                  m.base_model, m.task, _when(m.creation_date)),
                       flexible=(1, 3, 4), empty='No models.')


def _find_model(store, ref):
    """ID, NAME (its latest version) or NAME@VERSION."""
    if ref.isdigit():
        return store.get_model(int(ref))
    name, at, version = ref.rpartition('@')
    if at and version.isdigit():
        return store.get_model_version(name, int(version))
    if at:
        raise ModelStoreError('%r: a version after @ is a whole number (NAME@3)' % ref)
    return store.get_latest_model(ref)


def cmd_models_show(args, out):
    with _store(args) as store:
        return _show(out, _find_model(store, args.model))


def cmd_models_delete(args, out):
    with _store(args, write=True) as store:
        model = store.get_model(_model_id(args.id))
        what = 'model %d (%s v%s)%s' % (model.id, model.model_name, model.version,
                                        ' and its directory %s' % model.model_path
                                        if args.files else '')
        if not args.yes:
            if not sys.stdin.isatty() or out.as_json:
                raise ModelStoreError('deleting %s needs --yes off a terminal' % what)
            if not out.ask('Delete %s?' % what):
                raise ModelStoreError('not deleted: %s' % what)
        removed = store.delete_model(model.id, files=args.files)
    if out.as_json:
        out.json([dict(columns(model), deleted=True, removed_directory=removed)])
        return OK
    done = 'Deleted model %d (%s v%s)' % (model.id, model.model_name, model.version)
    if args.files:
        done += ' and removed %s' % removed if removed else ' (its directory was already gone)'
    out.line(done + '.')
    return OK


def _model_id(text):
    try:
        return int(text)
    except ValueError:
        raise ModelStoreError('model id: a whole number, got %r' % text) from None


# -- tasks -----------------------------------------------------------------------------------

def cmd_tasks_list(args, out):
    filters = {name: getattr(args, name) for name in ('status', 'base_runtime',
                                                       'name_contains')
               if getattr(args, name) is not None}
    with _store(args) as store:
        rows = store.list_tasks(limit=args.limit, offset=args.offset, **filters)
    return _print_rows(out, rows, ('ID', 'NAME', 'STATUS', 'RUNTIME', 'MODE', 'CREATED'),
                       lambda t: (t.id, t.task_name, t.status.value if t.status else '',
                                  t.base_runtime, t.deployment_mode or '',
                                  _when(t.created_at)),
                       flexible=(1, 3), empty='No tasks.')


def cmd_tasks_show(args, out):
    with _store(args) as store:
        ref = args.task
        task = store.get_task(int(ref)) if ref.isdigit() else store.get_task_by_name(ref)
        return _show(out, task)


# -- import ----------------------------------------------------------------------------------

def cmd_import(args, out):
    with _store(args, write=not args.dry_run) as store:
        if args.dry_run:
            plan, ids = plan_modelforge(store, args.include_inactive), None
        else:
            plan, ids = import_modelforge(store, args.include_inactive)
    if out.as_json:
        payload = plan.as_dict()
        for entry, model_id in zip(payload['import'], ids or ()):
            entry['id'] = model_id
        out.json(dict(payload, source='modelforge', dry_run=args.dry_run))
        return OK
    verb = 'Would import' if args.dry_run else 'Imported'
    out.line('%s %s from ModelForge\'s `models` table%s' % (
        verb, plural(len(plan.rows), 'model'), ':' if plan.rows else '.'))
    for n, (source_id, fields) in enumerate(plan.rows):
        made = ' -> model %d' % ids[n] if ids else ''
        out.line('  %s  %s  %s%s' % (source_id, fields['model_name'], fields['model_path'], made))
    if plan.skipped:
        out.line('Skipped %s:' % plural(len(plan.skipped), 'row'))
        for source_id, name, why in plan.skipped:
            out.line('  %s  %s: %s' % (source_id, name, why))
    return OK
