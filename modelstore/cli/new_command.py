"""``modelstore new SLUG`` and ``modelstore new --auto SLUG``: write the next script."""
import sys

from ..authoring import DEFAULT_DIRECTORY, diff_schema, generate, new_script
from ..authoring.models import DEFAULT_MODELS
from ..authoring.pysource import printable
from ..shared.urls import mask_url, resolve_url, sqlite_path
from .output import OK, PENDING, plural

__all__ = ['cmd_new']


def cmd_new(args, out):
    directory = args.migrations or DEFAULT_DIRECTORY
    if not args.auto:
        path = new_script(args.slug, directory)
        if out.as_json:
            out.json({'ok': True, 'paths': [path]})
        else:
            out.line(path)
        return OK
    url = resolve_url(args.database) if args.database else None
    if args.check:
        return _check(out, diff_schema(directory, args.models, url), args, directory)
    result = generate(args.slug, directory, args.models, url, write=not args.dry_run)
    plan = result.plan
    where = 'SQLite in memory' if url is None or sqlite_path(url) is not None else \
        'a throwaway database on %s, dropped' % mask_url(url)
    if out.as_json:
        out.json({'ok': not plan.todos, 'changed': result.changed, 'paths': result.paths,
                  'dry_run': args.dry_run, 'operations': plan.summary(), 'todos': plan.todos,
                  'scripts': [{'name': name, 'text': text} for name, text in result.files]})
        return PENDING if plan.todos else OK
    if not result.changed:
        out.line(_nothing(args, directory) + ' (replayed on %s).' % where)
        return OK
    if args.dry_run:
        for name, text in result.files:
            out.line('# --- %s.py (dry run: not written)' % name)
            out.line(text)
    for path in result.paths:
        out.line(path)
    for line in plan.summary():
        out.line('  + %s' % printable(line))
    for todo in plan.todos:
        print('todo: %s' % printable(todo), file=sys.stderr)
    if plan.todos:
        # Exit 1, not an error (README, "Exit codes"): the script is written, and refuses to
        # run until a person resolves its TODOs -- so no "error:" prefix either.
        print('%s not generated: resolve %s in %s; until then the script refuses to run'
              % (plural(len(plan.todos), 'change'), 'it' if len(plan.todos) == 1 else 'them',
                 result.paths[0] if result.paths else 'the script'), file=sys.stderr)
        return PENDING
    return OK


def _check(out, plan, args, directory):
    """``new --auto --check``: does the directory lack a script the models need?"""
    models = args.models or DEFAULT_MODELS
    if out.as_json:
        out.json({'ok': not plan, 'changed': bool(plan), 'operations': plan.summary(),
                  'todos': plan.todos})
    elif not plan:
        out.line(_nothing(args, directory) + '.')
    else:
        out.line('%s need a script that %s does not have (modelstore new --auto SLUG writes it):'
                 % (models, directory))
        for line in plan.summary():
            out.line('  + %s' % printable(line))
        for todo in plan.todos:
            out.line('  todo: %s' % printable(todo))
    return PENDING if plan else OK


def _nothing(args, directory):
    return 'Nothing to generate: %s match the schema the scripts in %s produce' % (
        args.models or DEFAULT_MODELS, directory)
