"""The registry for operators: ``modelstore models list|show|delete`` and ``tasks list|show``.

Human output is a table that fits an 80-column terminal (a long value is cut with '…'), or one
``column: value`` line per column for ``show``; ``--json`` prints a JSON array of objects with
every column. A bad id or filter is exit 2 with ``error:``; a database that does not exist is
not created (the commands read an existing registry; ``delete`` writes one row).
"""
import sys

from ..exceptions import ConfigError, NotFound, UsageError, ValidationError
from ..registry import (MODELS_ROOT_ENV as ROOT_ENV, connect, import_modelforge, is_alias,
                        plan_modelforge, resolve_root)
from ..shared.urls import database_exists, parse_url
from .output import TERMINAL_LIMIT
from .results import Changed, Deleted, Imported, Listing, Row, columns

__all__ = ['cmd_models_list', 'cmd_models_show', 'cmd_models_delete', 'cmd_models_alias',
           'cmd_models_events', 'cmd_models_archive', 'cmd_models_lineage', 'cmd_models_tag', 'cmd_tasks_list',
           'cmd_tasks_show', 'cmd_import', 'columns', 'PAGE']


def _store(args, write=False):
    url = parse_url(args.database)
    if not database_exists(url):
        raise ConfigError('no registry at %s: it does not exist (nothing was created)'
                          % url.masked)
    root = getattr(args, 'models_root', None)
    return connect(url, allow_newer=not write, models_root=root, register=False)


PAGE = 1000  # Rows read at a time: the memory a listing takes at any table size.


def _limit(args, out):
    """The number of rows to list (None: all): --limit, else all with --all, off a terminal
    or as JSON, else a terminal's page."""
    if args.limit is not None:
        return args.limit
    if args.all or out.as_json or args.jsonl or not out.live:
        return None
    return TERMINAL_LIMIT


def _listing(args, out, fetch, what):
    """The Listing of ``fetch(store, limit)`` (an iterator): its rows are read as they are
    printed, the registry held open until they are spent. A terminal's default page reads
    one row more, to say whether there are more."""
    limit = _limit(args, out)
    listing = Listing(None, what, args.jsonl, limit, args.offset, PAGE)
    listing.rows = _rows(args, fetch, limit, args.limit is None and limit is not None,
                         listing.more)
    return listing


def _rows(args, fetch, limit, paged, more):
    with _store(args) as store:
        for n, row in enumerate(fetch(store, limit + 1 if paged else limit)):
            if paged and n == limit:
                more[0] = True
                return
            yield row


# -- models ----------------------------------------------------------------------------------

MODEL_FILTERS = ('task', 'base_model', 'model_name', 'name_prefix', 'name_contains',
                 'created_after', 'created_before')


def cmd_models_list(args, out):
    filters = {name: getattr(args, name) for name in MODEL_FILTERS
               if getattr(args, name) is not None}
    if args.custom is not None:
        filters['is_custom_base_model'] = args.custom
    filters['archived'] = args.archived
    if args.tag:
        filters['tags'] = _pairs(args.tag, '--tag')
    for name in ('metric', 'metric_below', 'metric_above'):
        if getattr(args, name) is not None:
            filters[name] = getattr(args, name)
    return _listing(
        args, out, lambda store, limit: store.iter_models(
            order=args.order, limit=limit, offset=args.offset, page=PAGE, **filters),
        'models')


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
    return _by_number(store, ref) if _whole(ref) else _by_name(store, ref)


def _whole(text):
    """Is ``text`` a whole number written in ASCII digits (an id, a version)?"""
    return text.isdigit() and text.isascii()


def _by_number(store, ref):
    """A whole number: the model of that id, or the latest model named so; both, when they
    differ, is an error that says how to choose."""
    model = _quietly(store.get_model, int(ref))  # (ValidationError: past the largest id.)
    named = _latest(store, ref)
    if model is not None and named is not None and model.id != named.id:
        raise UsageError('%r is both model id %s and the name of model %d: say which with '
                         '--id %s or --name %s' % (ref, ref, named.id, ref, ref))
    if model is None and named is None:
        raise NotFound('no model with id %s, and none named %r' % (ref, ref))
    return model or named


def _quietly(get, key):
    """``get(key)``, or None when there is none (NotFound, or a key out of range)."""
    try:
        return get(key)
    except (NotFound, ValidationError):
        return None


def _by_name(store, ref):
    """NAME@VERSION (split at the last @, when a whole number follows it), NAME@ALIAS (when an
    alias's name does), else NAME."""
    name, at, version = ref.rpartition('@')
    if at and name and _whole(version):
        try:
            return store.get_model_version(name, int(version))
        except NotFound:
            model = _latest(store, ref)  # A name that ends in @3 itself.
            if model is None:
                raise
            return model
    if at and name and is_alias(version):
        return _by_alias(store, name, version, ref)
    return store.get_latest_model(ref)


def _by_alias(store, name, alias, ref):
    """NAME@ALIAS; a model named ``ref`` itself (with its @) when there is no such alias."""
    try:
        return store.get_model_version(name, alias)
    except NotFound as exc:
        model = _latest(store, ref)
        if model is None:
            raise NotFound('no model named %r, and %s' % (ref, exc)) from None
        return model


def _latest(store, name):
    return _quietly(store.get_latest_model, name)


def cmd_models_show(args, out):
    if args.id is not None and args.name is not None or \
            args.model is not None and (args.id is not None or args.name is not None):
        raise UsageError('models show takes one of ID|NAME[@VERSION], --id ID and --name NAME')
    with _store(args) as store:
        return Row(_find_model(store, args))


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
    return Deleted(model, removed, args.files)


# -- aliases and events ----------------------------------------------------------------------

def cmd_models_alias(args, out):
    try:
        return _alias(args)
    except ValidationError as exc:  # Said in the command line's words.
        option = {'alias': 'ALIAS', 'version': 'VERSION', 'model_name': 'NAME'}.get(exc.field)
        if option is None:
            raise
        raise ValidationError(option, exc.message.replace('force=True', '--force')) from None


def _alias(args):
    with _store(args, write=args.alias_action in ('set', 'rm')) as store:
        if args.alias_action == 'ls':
            return Listing(store.list_aliases(args.name), 'aliases', args.jsonl, None, 0, PAGE)
        if args.alias_action == 'set':
            return Row(store.set_alias(args.name, args.alias, _version(args.version),
                                       protected=args.protected, force=args.force))
        store.delete_alias(args.name, args.alias, force=args.force)
    return Changed('Removed %s@%s.' % (args.name, args.alias),
                   {'model_name': args.name, 'alias': args.alias, 'removed': True})


def _version(text):
    if not _whole(text) or int(text) < 1:
        raise UsageError('VERSION: a whole number of at least 1, got %r' % text)
    return int(text)


def cmd_models_events(args, out):
    if args.follow:  # Each printed as it is read: a table row, or (--json too) a JSON line.
        if args.limit is not None:
            raise UsageError('--limit: not with --follow, which prints every event as it '
                             'commits until interrupted')
        listing = Listing(None, 'events', args.jsonl or out.as_json, None, 0, 1)
        listing.rows = _follow(args)
        return listing
    limit = 1000 if args.limit is None else args.limit
    with _store(args) as store:
        return Listing(store.events(after=args.after, limit=limit), 'events', args.jsonl,
                       limit, 0, PAGE)


def _follow(args):
    """Every event after --after, then each new one as it commits, until interrupted."""
    with _store(args) as store:
        cursor = args.after
        while True:
            # Waits up to --interval for the next one; on PostgreSQL woken at its commit.
            for event in store.events(after=cursor, limit=PAGE, wait=args.interval):
                yield event
                cursor = event.seq


def cmd_models_archive(args, out):
    with _store(args, write=True) as store:
        model = _by_ref(store, args.model)
        if args.action == 'archive':
            return Row(store.archive_model(model.id))
        return Row(store.restore_model(model.id))


def cmd_models_tag(args, out):
    tags = _pairs(args.tags, 'KEY=VALUE')
    with _store(args, write=bool(tags or args.rm)) as store:
        model = _by_ref(store, args.model)
        now = store.set_tags(model.id, tags, remove=args.rm) if tags or args.rm else \
            store.get_tags(model.id)  # One change: all of it or none.
    return Changed('\n'.join('%s=%s' % item for item in sorted(now.items())) or
                   'Model %d has no tags.' % model.id, {'model_id': model.id, 'tags': now})


def _pairs(items, what):
    """{key: value} of KEY=VALUE items (a value may hold '=')."""
    pairs = {}
    for item in items:
        key, eq, value = item.partition('=')
        if not eq or not key:
            raise UsageError('%s: expected KEY=VALUE, got %r' % (what, item))
        if pairs.get(key, value) != value:
            raise UsageError('%s: %s is given twice, as %r and %r' % (what, key, pairs[key],
                                                                       value))
        pairs[key] = value
    return pairs


def cmd_models_lineage(args, out):
    with _store(args) as store:
        return Listing(store.lineage(_by_ref(store, args.model).id), 'lineage', args.jsonl,
                       None, 0, PAGE)


def cmd_models_card(args, out):
    """The model's Hugging Face card: printed (--print), or written as README.md into its
    folder under the models root."""
    if args.print:
        if args.overwrite:
            raise UsageError('--overwrite: not with --print, which writes nothing')
        with _store(args) as store:
            model = _by_ref(store, args.model)
            text = store.model_card(model.id)
        return Changed(text.rstrip('\n'), {'model_id': model.id, 'card': text})
    if resolve_root(args.models_root) is None:
        raise UsageError('models card writes README.md only into a folder inside the models '
                         'root, and none is set: pass --models-root DIR, set $%s, or set '
                         'models_root in pyproject.toml\'s [tool.modelstore] (or --print it)'
                         % ROOT_ENV)
    with _store(args) as store:
        model = _by_ref(store, args.model)
        try:
            path = store.export_model_card(model.id, overwrite=args.overwrite)
        except ValidationError as exc:
            if exc.field == 'overwrite':
                raise UsageError(str(exc).replace('overwrite=True, ', '')) from None
            raise
    return Changed('Wrote %s (model %d, %s v%s).' % (path, model.id, model.model_name,
                                                    model.version),
                   {'model_id': model.id, 'path': path})


def _by_ref(store, ref):
    """ID, NAME@VERSION or NAME@ALIAS (an archived model too), else NAME (its latest)."""
    if _whole(ref):
        return store.get_model(int(ref))
    return _by_name(store, ref)


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
    return _listing(
        args, out, lambda store, limit: store.iter_tasks(
            limit=limit, offset=args.offset, page=PAGE, **filters),
        'tasks')


def cmd_tasks_show(args, out):
    """ID or NAME: a whole number is an id; a task named so is pointed out."""
    ref = args.task
    with _store(args) as store:
        by_id = _quietly(store.get_task, int(ref)) if _whole(ref) else None
        try:
            by_name = store.get_task_by_name(ref)
        except NotFound:
            if by_id is None:
                raise NotFound('no task with id %s, and none named %r' % (ref, ref)
                               if ref.isdigit() else 'no task named %r' % ref) from None
            by_name = None
        if by_id is not None and by_name is not None and by_id.id != by_name.id:
            raise UsageError('%r is both task id %s and the name of task %d' % (
                ref, ref, by_name.id))
        return Row(by_id or by_name)


# -- import ----------------------------------------------------------------------------------

def cmd_import(args, out):
    with _store(args, write=not args.dry_run) as store:
        if args.dry_run:
            plan, ids = plan_modelforge(store, args.include_inactive), None
        else:
            plan, ids = import_modelforge(store, args.include_inactive)
    return Imported(plan, ids, args.dry_run)
