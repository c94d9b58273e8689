"""The ``modelstore`` command (also ``python -m modelstore``); the only package that prints.

``parser`` holds the grammar and names each command's function, whose module is loaded only
when the command runs (``--help`` loads none); each command module parses its arguments, calls
the library and returns a result (``results``): ``run_commands`` those that change a database
(migrate, rollback, repair, restore), ``read_commands`` those that read one (status, history,
clients) and accept, ``check_command`` check, ``new_command`` new, ``lint_command`` lint,
``doctor_command`` doctor, ``registry_commands`` models, tasks and import. ``render`` turns any result into text or JSON, ``output`` is the stream it prints on;
this module runs one command, renders its result and reports its error.

    modelstore <command> [--database URL] [--json] [-v]

Commands: migrate [--to NAME] [--dry-run] [--fake], status, history, check [--models M],
rollback [--to NAME] [--dry-run], accept NAME... | --all, new SLUG [--auto] [--models M];
doctor [--models-root DIR] [fixes], models list|show|delete, tasks list|show, import modelforge.

Exit codes: 0 ok; 1 something is pending, drifted, changed or missing (so ``check`` and
``status`` can gate a deploy); 2 error -- one line on stderr, ``-v`` adds the traceback.
``NO_COLOR`` (any value) turns colour off; colour is only used on a terminal.
"""
import argparse
import logging
import sys
import traceback

from ..exceptions import (AdoptionRefused, DataLossRefused, ModelStoreError, UsageError,
                          ValidationError)
from .output import ERROR, Output, one_line
from .parser import build_parser
from .render import render
from .results import Failure
from ..shared.urls import parse_url
from .settings import apply_config

__all__ = ['main', 'command', 'Output']


def main(argv=None):
    """Run the CLI; returns the exit code. In a process that goes on afterwards (a program that
    embeds the command line), everything a command may need is loaded as usual."""
    return _main(sys.argv[1:] if argv is None else list(argv), lean=False)


def command():
    """The ``modelstore`` command itself (its console script, ``python -m modelstore``): main()
    on this process's arguments, in a process that ends with it -- so a command whose only
    database is SQLite is loaded without the server drivers (``_load_command``)."""
    return _main(sys.argv[1:], lean=True)


def _main(argv, lean):
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as exc:  # --help or --version.
        return exc.code if isinstance(exc.code, int) else ERROR
    except UsageError as exc:
        args = argparse.Namespace(verbose=False)
        return _fail(args, Output(sys.stdout, '--json' in argv), exc, 'error: %s' % exc,
                     trace=False)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    out = Output(sys.stdout, args.json)
    try:
        _configure(args)
    except ModelStoreError as exc:
        return _fail(args, out, exc, 'error: %s' % one_line(exc), trace=False)
    problem = _usage_problem(args)
    if problem:
        return _fail(args, out, UsageError(problem), 'error: ' + problem)
    try:
        _load_command(args, lean)
        return render(out, args.func(args, out))
    except KeyboardInterrupt as exc:
        if getattr(args, 'follow', False):  # models events --follow: how it ends.
            return 130
        # The run says what the interrupt left (modelstore.engine.run); anything else was
        # interrupted before or after the scripts ran.
        return _fail(args, out, exc, 'error: %s' % (one_line(exc) if exc.args else
                                                    'interrupted'), code=130, trace=False)
    except Exception as exc:
        return _fail(args, out, exc, _error_text(args, exc))


def _error_text(args, exc):
    """The line (or report) on stderr for a command that raised ``exc``."""
    if isinstance(exc, (AdoptionRefused, DataLossRefused)):  # A report, one line per item.
        return 'error: %s' % exc.report()
    if isinstance(exc, ValidationError):  # Named as the option that gave the value.
        option = _option(args, exc.field)
        return 'error: %s: %s' % (option, one_line(exc.message)) if option else \
            'error: %s' % one_line(exc)
    if isinstance(exc, ModelStoreError):
        return 'error: %s' % one_line(exc)
    # A bug or an unexpected driver error: still one line.
    return 'error: unexpected %s: %s (run with -v for the traceback)' % (type(exc).__name__,
                                                                         one_line(exc))


def _configure(args):
    """Settings not given on the command line or in the environment, from pyproject.toml's
    [tool.modelstore] (modelstore.cli.settings). Not the database of `new` (its --database
    picks a backend to replay on, never a registry) nor of `restore` (which defaults to the
    file the backup came from, so that it never lands elsewhere by accident)."""
    keep = args.command in ('new', 'restore') and args.database is None
    if keep:
        args.database = 'not from the file'
    apply_config(args)
    if keep:
        args.database = None


# The server drivers that peewee and playhouse import as they are imported (each where
# installed), and the commands that may open a database other than --database (lint and new
# replay on servers).
_SERVER_DRIVERS = ('psycopg2cffi', 'psycopg2', 'psycopg', 'pymysql', 'MySQLdb')
_OTHER_DATABASES = frozenset({'lint', 'new'})


def _load_command(args, lean):
    """Import the command's module; when ``lean`` (the process ends with the command) and the
    only database the command opens is SQLite, without the server drivers that peewee,
    playhouse and the dialects would import with it: they are a sixth of a SQLite command's
    start-up (issue 30). The drivers stay importable, but the modules imported here keep None
    for them for the rest of the process -- which is why a process that goes on (main()) is
    never lean."""
    hidden = []
    if lean and args.command not in _OTHER_DATABASES and 'peewee' not in sys.modules:
        try:
            if parse_url(getattr(args, 'database', None)).backend == 'sqlite':  # (restore: None)
                hidden = [name for name in _SERVER_DRIVERS if name not in sys.modules]
        except ModelStoreError:
            pass  # The command reports it.
    sys.modules.update(dict.fromkeys(hidden))  # None: `import name` raises ImportError.
    try:
        args.func.load()
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def _option(args, field):
    """The option of this command that gave the API's ``field`` (models_root: --models-root),
    or None when no option did."""
    if field == 'is_custom_base_model' and getattr(args, 'custom', None) is not None:
        return '--custom' if args.custom else '--not-custom'
    if field and field != 'custom' and getattr(args, field, None) is not None:
        return '--' + field.replace('_', '-')
    return None


def _usage_problem(args):
    """What the grammar cannot say: options that go together, or exclude each other."""
    if args.command == 'new':
        return _new_problem(args)
    if args.command in ('migrate', 'rollback') and args.dry_run and getattr(args, 'fake', False):
        return '--dry-run and --fake cannot be combined'
    return None


def _new_problem(args):
    if not args.auto and (args.models or args.dry_run or args.check):
        return '--models, --dry-run and --check go with --auto'
    if args.slug is None and not args.check:
        return 'new needs a SLUG (the script\'s name after its number)'
    return None


def _fail(args, out, exc, text, code=ERROR, trace=True):
    """Report an error: one line (or a report) on stderr; with --json, also a JSON object on
    stdout, so that a script reading stdout always gets one object."""
    if args.verbose and trace:
        traceback.print_exc()
    return render(out, Failure(exc, text, code))
