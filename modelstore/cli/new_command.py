"""``modelstore new SLUG`` and ``modelstore new --auto SLUG``: write the next script.

Returns the result (cli.results) for cli.render to print."""
from ..authoring import (DEFAULT_DIRECTORY, DEFAULT_MODELS, diff_schema, generate,
                         new_script, printable)
from ..exceptions import UsageError
from ..shared.urls import parse_url
from .results import Generated, NewScript, SchemaCheck

__all__ = ['cmd_new']


def cmd_new(args, out):
    directory = args.migrations or DEFAULT_DIRECTORY
    renames = [_rename(value) for value in args.rename]
    if (args.contract or renames) and not args.auto:
        raise UsageError('--contract and --rename generate a script: use them with --auto')
    if args.check and (args.contract or renames):
        raise UsageError('--check lists every change a script would hold, the contract ones '
                         'too ("contract: ..."); it takes no --contract or --rename')
    if not args.auto:
        return NewScript(new_script(args.slug, directory))
    url = parse_url(args.database) if args.database else None
    if args.check:
        return SchemaCheck(diff_schema(directory, args.models, url),
                           args.models or DEFAULT_MODELS, directory, _nothing(args, directory))
    where = 'SQLite in memory' if url is None or url.sqlite_path is not None else \
        'a throwaway database on %s, dropped' % url.masked
    return Generated(generate(args.slug, directory, args.models, url, write=not args.dry_run,
                              contract=args.contract, renames=renames),
                     args.dry_run, where, _nothing(args, directory))


def _rename(value):
    """(table, old, new) of ``TABLE.OLD=NEW``."""
    column, _, new = value.partition('=')
    table, _, old = column.rpartition('.')
    if not (table and old and new) or '.' in new:
        raise UsageError('--rename %s: expected TABLE.OLD=NEW, e.g. --rename '
                         'fine_tuned_models.notes=description' % printable(value))
    return table, old, new


def _nothing(args, directory):
    return 'Nothing to generate: %s match the schema the scripts in %s produce' % (
        args.models or DEFAULT_MODELS, directory)
