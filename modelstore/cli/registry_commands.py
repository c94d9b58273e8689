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

from ..exceptions import ConfigError, NotFound, UsageError, ValidationError
from ..registry import connect
from ..registry.importer import import_modelforge, plan_modelforge
from ..registry.modelfiles import ENV_VAR as ROOT_ENV, resolve_root
from ..shared.urls import database_exists, mask_url, resolve_url
from .output import OK, plural

__all__ = ['cmd_models_list', 'cmd_models_show', 'cmd_models_delete', 'cmd_tasks_list',
           'cmd_tasks_show', 'cmd_import', 'table', 'table_widths', 'table_lines']

WIDTH = 80


def _store(args, write=False):
    url = resolve_url(args.database)
    if not database_exists(url):
        raise ConfigError('no registry at %s: it does not exist (nothing was created)'
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


def table_widths(headers, rows, flexible, width=WIDTH):
    """Column widths for ``rows`` (tuples of text) under ``headers`` that fit ``width``: the
    ``flexible`` columns (indexes) give way, widest first."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    while sum(widths) + 2 * (len(widths) - 1) > width:
        shrink = max(flexible, key=lambda i: widths[i])
        if widths[shrink] <= 6:
            break
        widths[shrink] -= 1
    return widths


def table_lines(rows, widths):
    """One line per row, each value padded to its width or cut with '…'."""
    def cut(text, n):
        return text if len(text) <= n else text[:n - 1] + '…'
    return ['  '.join(cut(v, w).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]


def table(headers, rows, flexible, width=WIDTH):
    """Lines of a table of ``rows`` under ``headers`` that fits ``width`` (see table_widths)."""
    rows = list(rows)
    return table_lines([headers] + rows, table_widths(headers, rows, flexible, width))


def _when(value):
    return value.strftime('%Y-%m-%d %H:%M') if isinstance(value, datetime.datetime) else \
        ('' if value is None else str(value))


PAGE = 1000  # Rows read at a time: the memory a listing takes at any table size.
TERMINAL_LIMIT = 50  # Rows `list` shows on a terminal unless --limit or --all says otherwise.


def _limit(args, out):
    """The number of rows to list (None: all): --limit, else all with --all, off a terminal
    or as JSON, else a terminal's page."""
    if args.limit is not None:
        return args.limit
    if args.all or out.as_json or args.jsonl or not out.live:
        return None
    return TERMINAL_LIMIT


def _flush(out, headers, chunk, flexible, widths):
    if widths is None:
        widths = table_widths(headers, chunk, flexible)
        chunk.insert(0, headers)
    for line in table_lines(chunk, widths):
        out.raw_line(line)
    chunk.clear()
    return widths


def _list(args, out, fetch, what, headers, cells, flexible, empty):
    """Print the rows of ``fetch(limit)`` (an iterator) as they come: a table, a JSON array
    written row by row, or JSON Lines. A terminal's default page ends with how to see more."""
    limit = _limit(args, out)
    paged = args.limit is None and limit is not None  # The terminal's default page.
    rows, more = fetch(limit + 1 if paged else limit), [False]
    if paged:
        rows, more = _first(rows, limit)
    if args.jsonl:
        for row in rows:
            if out.closed:
                break
            out.raw_line(json.dumps(columns(row), default=str))
        out.raw_line('', end='', flush=True)
        return OK
    if out.as_json:
        first = True
        for row in rows:
            if out.closed:
                break
            text = json.dumps(columns(row), indent=2, default=str).replace('\n', '\n  ')
            out.raw_line(('[\n  ' if first else ',\n  ') + text, end='')
            first = False
        out.raw_line('[]' if first else '\n]', flush=True)
        return OK
    # The widths are those of the first page: a listing is printed as it is read.
    shown, widths, chunk = 0, None, []
    for row in rows:
        if out.closed:
            break
        chunk.append(tuple(map(str, cells(row))))
        shown += 1
        if len(chunk) == PAGE:
            widths = _flush(out, headers, chunk, flexible, widths)
    if chunk:
        _flush(out, headers, chunk, flexible, widths)
    out.raw_line('', end='', flush=True)
    if not shown:
        out.line(empty)
    if more[0]:
        out.line('(the first %d %s; --limit N shows N, --all every one, --offset %d the next '
                 'ones)' % (limit, what, args.offset + limit))
    return OK


def _first(rows, limit):
    """(an iterator of the first ``limit`` rows, [whether there was one more]): the flag is
    set once the iterator is spent."""
    more = [False]

    def take():
        for n, row in enumerate(rows):
            if n == limit:
                more[0] = True
                return
            yield row
    return take(), more


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
        return _list(args, out, lambda limit: store.iter_models(
            order=args.order, limit=limit, offset=args.offset, page=PAGE, **filters),
            'models', ('ID', 'NAME', 'VER', 'BASE MODEL', 'TASK', 'CREATED'),
            lambda m: (m.id, m.model_name, '' if m.version is None else m.version,
                       m.base_model, m.task, _when(m.creation_date)),
            flexible=(1, 3, 4), empty='No models.')


def _find_model(store, args):
    """--id ID, --name NAME[@VERSION], or the bare form: a whole number is an id (and a model
    named so is pointed out), NAME@VERSION when what follows the last @ is a whole number,
    else a name (its latest version)."""
    if args.id is not None:
        return store.get_model(_model_id(args.id, '--id'))
    if args.name is not None:
        return _by_name(store, args.name)
    ref = args.model
    if ref is None:
        raise UsageError('models show needs ID, NAME[@VERSION], --id ID or --name NAME')
    if ref.isdigit() and ref.isascii():
        try:
            model = store.get_model(int(ref))
        except (NotFound, ValidationError):  # (ValidationError: past the largest id.)
            model = None
        named = _latest(store, ref)
        if model is not None and named is not None and model.id != named.id:
            raise UsageError('%r is both model id %s and the name of model %d: say which with '
                             '--id %s or --name %s' % (ref, ref, named.id, ref, ref))
        if model is None and named is None:
            raise NotFound('no model with id %s, and none named %r' % (ref, ref))
        return model or named
    return _by_name(store, ref)


def _by_name(store, ref):
    """NAME@VERSION (split at the last @, when a whole number follows it), else NAME."""
    name, at, version = ref.rpartition('@')
    if at and name and version.isdigit() and version.isascii():
        try:
            return store.get_model_version(name, int(version))
        except NotFound:
            model = _latest(store, ref)  # A name that ends in @3 itself.
            if model is None:
                raise
            return model
    return store.get_latest_model(ref)


def _latest(store, name):
    try:
        return store.get_latest_model(name)
    except (NotFound, ValidationError):
        return None


def cmd_models_show(args, out):
    if args.id is not None and args.name is not None or \
            args.model is not None and (args.id is not None or args.name is not None):
        raise UsageError('models show takes one of ID|NAME[@VERSION], --id ID and --name NAME')
    with _store(args) as store:
        return _show(out, _find_model(store, args))


def cmd_models_delete(args, out):
    if args.files and resolve_root(args.models_root) is None:
        raise UsageError('--files removes only folders inside the models root, and none is set: '
                         'pass --models-root DIR, set $%s, or set models_root in '
                         'pyproject.toml\'s [tool.modelstore]' % ROOT_ENV)
    with _store(args, write=True) as store:
        model = store.get_model(_model_id(args.id, 'model id'))
        what = 'model %d (%s v%s)%s' % (model.id, model.model_name, model.version,
                                        ' and its directory %s' % model.model_path
                                        if args.files else '')
        if not args.yes:
            if not sys.stdin.isatty() or out.as_json:
                raise UsageError('deleting %s needs --yes off a terminal' % what)
            if not out.ask('Delete %s?' % what):
                raise UsageError('not deleted: %s (the answer was not yes)' % what)
        removed = store.delete_model(model.id, files=args.files)
    if out.as_json:
        out.json([dict(columns(model), deleted=True, removed_directory=removed)])
        return OK
    done = 'Deleted model %d (%s v%s)' % (model.id, model.model_name, model.version)
    if args.files:
        done += ' and removed %s' % removed if removed else ' (its directory was already gone)'
    out.line(done + '.')
    return OK


def _model_id(text, what):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError('%s: a whole number of at least 1, got %r' % (what, text))
    return value


# -- tasks -----------------------------------------------------------------------------------

def cmd_tasks_list(args, out):
    filters = {name: getattr(args, name) for name in ('status', 'base_runtime',
                                                       'name_contains')
               if getattr(args, name) is not None}
    with _store(args) as store:
        return _list(args, out, lambda limit: store.iter_tasks(
            limit=limit, offset=args.offset, page=PAGE, **filters),
            'tasks', ('ID', 'NAME', 'STATUS', 'RUNTIME', 'MODE', 'CREATED'),
            lambda t: (t.id, t.task_name, t.status.value if t.status else '',
                       t.base_runtime, t.deployment_mode or '', _when(t.created_at)),
            flexible=(1, 3), empty='No tasks.')


def cmd_tasks_show(args, out):
    """ID or NAME: a whole number is an id; a task named so is pointed out."""
    ref = args.task
    with _store(args) as store:
        by_id = by_name = None
        if ref.isdigit() and ref.isascii():
            try:
                by_id = store.get_task(int(ref))
            except (NotFound, ValidationError):
                pass
        try:
            by_name = store.get_task_by_name(ref)
        except NotFound:
            if by_id is None:
                raise NotFound('no task with id %s, and none named %r' % (ref, ref)
                               if ref.isdigit() else 'no task named %r' % ref) from None
        if by_id is not None and by_name is not None and by_id.id != by_name.id:
            raise UsageError('%r is both task id %s and the name of task %d' % (
                ref, ref, by_name.id))
        return _show(out, by_id or by_name)


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
