"""The command line's grammar: commands, their options, and how a bad option is reported.

A command's function is named (``Command``), not imported: its module is loaded when the
command runs, so ``modelstore --help`` loads none of them, and each command only its own (with
what it uses: peewee, the engine, the registry). Start-up is issue 30's.
"""
import argparse
import math
import re
import sys
from importlib import import_module

from ..exceptions import ConfigError, UsageError
from ..shared.defaults import (ALIAS_RULE, DDL_LOCK_TIMEOUT, DDL_RETRIES, KEEP,
                               LOCK_TIMEOUT as DEFAULT_TIMEOUT, MAX_MIN_AGE, MAX_PAGE, MIN_AGE)
from ..shared.timeouts import check_timeout
from ..version import __version__
from .output import TERMINAL_LIMIT

__all__ = ['build_parser', 'Command', 'UsageError']

# Where each command's function lives: the module of this package that defines it.
_MODULES = {
    'cmd_doctor': 'doctor_command', 'cmd_lint': 'lint_command', 'cmd_new': 'new_command',
    'cmd_migrate': 'run_commands', 'cmd_rollback': 'run_commands', 'cmd_restore': 'run_commands',
    'cmd_repair': 'run_commands',
    'cmd_check': 'check_command',
    **dict.fromkeys(('cmd_accept', 'cmd_clients', 'cmd_history', 'cmd_status'), 'read_commands'),
    **dict.fromkeys(('cmd_import', 'cmd_models_alias', 'cmd_models_archive', 'cmd_models_card',
                     'cmd_models_delete', 'cmd_models_events', 'cmd_models_lineage',
                     'cmd_models_list', 'cmd_models_show', 'cmd_models_tag', 'cmd_tasks_list',
                     'cmd_tasks_show'), 'registry_commands'),
}


class Command:
    """A command's function, ``function(args, out) -> result``, loaded from its module the
    first time it is called."""

    def __init__(self, name):
        self.name, self.module = name, _MODULES[name]

    def load(self):
        return getattr(import_module('.' + self.module, __package__), self.name)

    def __call__(self, args, out):
        return self.load()(args, out)

    def __repr__(self):
        return '<Command %s.%s>' % (self.module, self.name)



def _common_options(suppress):
    # The same options are accepted before and after the command. After it, they default to
    # SUPPRESS so that an option given before the command is not overwritten by a default.
    common = argparse.ArgumentParser(add_help=False)
    kw = {'default': argparse.SUPPRESS} if suppress else {}
    common.add_argument('--database', metavar='URL', help='database URL (default: '
                        '$MODELSTORE_DATABASE_URL, else the SQLite file under the XDG data '
                        'directory)', **kw)
    common.add_argument('--migrations', metavar='DIR', help='scripts directory (default: the '
                        'scripts shipped with modelstore)', **kw)
    flag = {'default': argparse.SUPPRESS} if suppress else {'default': False}
    common.add_argument('--json', action='store_true', help='print JSON: one object (models and '
                        'tasks: an array of rows)', **flag)
    common.add_argument('-v', '--verbose', action='store_true',
                        help='show tracebacks and log progress', **flag)
    return common


def build_parser(argv=None):
    """The whole grammar; given the command line ``argv``, only the parsers of the command it
    names (a parser costs ~0.3 ms to build, the whole grammar ~10 ms of a command's start-up:
    issue 30). Either parses ``argv`` to the same namespace (held by the tests)."""
    words = _command_words(argv)
    common = _common_options(suppress=True)
    locking = argparse.ArgumentParser(add_help=False)
    locking.add_argument('--lock-timeout', type=_seconds, default=DEFAULT_TIMEOUT,
                         metavar='SECONDS', help='wait this long for another run to finish '
                         '(default %(default)g)')

    parser = _Parser(
        prog='modelstore', description='Migrate, inspect and look after a modelstore registry.',
        parents=[_common_options(suppress=False)])
    parser.add_argument('--version', action='version', version='modelstore ' + __version__)
    levels = []
    sub = _only(levels, parser.add_subparsers(dest='command', metavar='command', required=True),
                words[:1])

    backups = argparse.ArgumentParser(add_help=False)
    backups.add_argument('--no-backup', action='store_true',
                         help='do not copy a SQLite file before changing it')
    backups.add_argument('--keep-backups', type=_positive, default=KEEP, metavar='N',
                         help='backups of the file to keep, newest first (default %(default)d)')

    ddl = argparse.ArgumentParser(add_help=False)
    ddl.add_argument('--ddl-lock-timeout', type=_wait, default=DDL_LOCK_TIMEOUT,
                     metavar='SECONDS', help='PostgreSQL and MySQL: a script waits at most this '
                     'long for a table lock before it is rolled back and tried again, so that '
                     'writers never queue behind it (default %(default)g)')
    ddl.add_argument('--ddl-retries', type=_count, default=DDL_RETRIES, metavar='N',
                     help='PostgreSQL and MySQL: tries after the first, with backoff, before the '
                     'script fails naming the sessions that held the locks (default '
                     '%(default)d)')

    p = sub.add_parser('migrate', parents=[common, locking, ddl, backups],
                       help='apply pending scripts')
    p.add_argument('--to', metavar='NAME', help='stop after applying this script')
    p.add_argument('--dry-run', action='store_true',
                   help='print the SQL each script would run; change nothing')
    p.add_argument('--fake', action='store_true',
                   help='record pending scripts as applied without running them')
    p.add_argument('--phase', choices=('expand', 'contract'), help='run only the pending '
                   'scripts of this phase, stopping before the first of the other (a rolling '
                   'deploy: expand before it, contract once every worker runs the new release)')
    p.add_argument('--force', action='store_true', help='run a contract script even while '
                   'clients built for an earlier schema are alive (the history records it)')
    p.add_argument('--offline', action='store_true', help='a maintenance window: run data '
                   'migrations back to back in long batches, making no room for the apps\' '
                   'writers (by default they pause whenever a writer waits)')
    p.set_defaults(func=Command('cmd_migrate'))

    p = sub.add_parser('rollback', parents=[common, locking, ddl, backups],
                       help='revert the last script, or back through --to NAME')
    p.add_argument('--to', metavar='NAME', help='revert every script back through this one')
    p.add_argument('--dry-run', action='store_true',
                   help='print the SQL each down() would run; change nothing')
    p.add_argument('--yes', action='store_true',
                   help='go ahead even if the rollback drops tables or columns holding data')
    p.set_defaults(func=Command('cmd_rollback'))

    p = sub.add_parser('restore', parents=[common, locking, backups],
                       help='put a backup back, after checking it')
    p.add_argument('backup', metavar='BACKUP', help='a backup file that migrate or rollback made')
    p.set_defaults(func=Command('cmd_restore'), dry_run=False)

    p = sub.add_parser('new', parents=[_new_options()],
                       help='write the next script: empty, or from the models with --auto')
    p.add_argument('slug', metavar='SLUG', nargs='?', help='the script\'s name after its '
                   'number ([a-z0-9_]+): NNNN_SLUG.py')
    p.add_argument('--auto', action='store_true', help='generate it from the difference between '
                   'the models and the schema the existing scripts produce')
    p.add_argument('--models', metavar='MODULE', help='with --auto: the models, as '
                   'package.module[:NAME] (default modelstore.models)')
    p.add_argument('--dry-run', action='store_true',
                   help='with --auto: print the script instead of writing it')
    p.add_argument('--check', action='store_true', help='with --auto: write nothing; exit 1 if '
                   'the models need a script the directory does not have (for CI)')
    p.add_argument('--contract', action='store_true', help='with --auto: write the contract '
                   'script: drop the columns no field maps (refused while the models also '
                   'need expand changes, which go first, in a script of their own)')
    p.add_argument('--rename', metavar='TABLE.OLD=NEW', action='append', default=[],
                   help='with --auto: a column no field maps was renamed to one the models '
                   'add; the expand script leaves both out, the contract script (--contract) '
                   'renames; repeatable')
    p.set_defaults(func=Command('cmd_new'))

    p = sub.add_parser('status', parents=[common], help='list applied and pending scripts')
    p.set_defaults(func=Command('cmd_status'))
    p = sub.add_parser('history', parents=[common], help='show the history table')
    p.set_defaults(func=Command('cmd_history'))
    p = sub.add_parser('clients', parents=[common], help='list the workers connected to the '
                       'registry, and the schema their code was built for')
    p.add_argument('--all', action='store_true', help='also the clients not seen for 120 s '
                   '(gone)')
    p.set_defaults(func=Command('cmd_clients'))
    p = sub.add_parser('check', parents=[common],
                       help='exit 0 only if up to date, unchanged and without drift')
    p.add_argument('--models', metavar='MODULE', help='compare with these models, as '
                   'package.module[:NAME] (default modelstore.models)')
    p.set_defaults(func=Command('cmd_check'))
    p = sub.add_parser('lint', parents=[_lint_options()], help='check the scripts for what '
                       'breaks a rolling deploy or locks a table; exit 1 on a finding')
    p.add_argument('--released', metavar='FILE', help='the released scripts\' checksums (JSON; '
                   'default: released_scripts.json in the scripts directory, if there)')
    p.set_defaults(func=Command('cmd_lint'))
    p = sub.add_parser('accept', parents=[common, locking],
                       help='record the new checksum of edited applied scripts')
    p.add_argument('names', nargs='*', metavar='NAME')
    p.add_argument('--all', action='store_true', help='accept every changed script')
    p.set_defaults(func=Command('cmd_accept'))

    p = sub.add_parser('repair', parents=[common, locking], help='MySQL: revert what a script '
                       'that failed partway did (or record a manual fix)')
    mark = p.add_mutually_exclusive_group()
    mark.add_argument('--mark-applied', dest='mark', action='store_const', const='applied',
                      help='record the failed script as applied: you finished it by hand')
    mark.add_argument('--mark-reverted', dest='mark', action='store_const', const='reverted',
                      help='record it as not applied: you undid its operations by hand')
    p.add_argument('--yes', action='store_true', help='revert even if that drops columns or '
                   'tables holding data (as rollback --yes)')
    p.set_defaults(func=Command('cmd_repair'), mark=None)

    p = sub.add_parser('doctor', parents=[common], help='compare the rows with the model '
                       'folders under the models root; exit 1 if they disagree')
    p.add_argument('--models-root', metavar='DIR', help='the folder model directories live '
                   'under (default: $MODELSTORE_MODELS_ROOT)')
    p.add_argument('--register', action='store_true',
                   help='record each orphan folder as a model')
    p.add_argument('--forget-dangling', action='store_true',
                   help='delete the rows whose model_path is missing (asks; --yes off a '
                   'terminal)')
    p.add_argument('--empty-trash', action='store_true',
                   help='finish the deletes with files that a crash interrupted')
    p.add_argument('--yes', action='store_true', help='do not ask before --forget-dangling')
    p.add_argument('--min-age', type=_minutes, default=MIN_AGE, metavar='MINUTES',
                   help='--register and --forget-dangling leave alone a folder or row changed '
                   'less than this long ago: a pipeline writing its folder and adding its row '
                   'must not be raced (default %(default)g; 0: no minimum)')
    p.set_defaults(func=Command('cmd_doctor'))
    _registry_commands(sub, common, lambda action: _only(levels, action, words[1:]))
    if any(level.missed for level in levels):
        return build_parser()
    return parser


def _registry_commands(sub, common, only):
    """models list|show|delete and tasks list|show (modelstore.cli.registry)."""
    page = argparse.ArgumentParser(add_help=False)
    shown = page.add_mutually_exclusive_group()
    shown.add_argument('--limit', type=_limit, metavar='N', help='at most N rows (default: '
                       'all of them, but %d on a terminal)' % TERMINAL_LIMIT)
    shown.add_argument('--all', action='store_true', help='every row, also on a terminal')
    page.add_argument('--offset', type=_offset, default=0, metavar='N', help='skip N rows')
    page.add_argument('--jsonl', action='store_true', help='print JSON Lines: one object a '
                      'line, as each row is read')

    models = sub.add_parser('models', help='list, show or delete fine-tuned models')
    what = only(models.add_subparsers(dest='action', metavar='action', required=True))
    p = what.add_parser('list', parents=[common, page], help='models matching the filters')
    for name in ('task', 'base-model', 'model-name', 'name-prefix', 'name-contains'):
        p.add_argument('--' + name, metavar='TEXT')
    p.add_argument('--created-after', metavar='WHEN', help='ISO date or time (inclusive)')
    p.add_argument('--created-before', metavar='WHEN', help='ISO date or time (exclusive)')
    custom = p.add_mutually_exclusive_group()
    custom.add_argument('--custom', dest='custom', action='store_true', default=None,
                        help='only models of a custom base model')
    custom.add_argument('--not-custom', dest='custom', action='store_false')
    p.add_argument('--order', default='newest', metavar='ORDER',
                   help="newest (default), oldest, name, or metric (with --metric: lowest "
                   'first)')
    p.add_argument('--tag', action='append', default=[], metavar='KEY=VALUE',
                   help='only models with this tag; repeatable (all of them)')
    p.add_argument('--metric', metavar='NAME', help='only models whose metrics hold NAME (a '
                   "number, or a curve's final value)")
    p.add_argument('--metric-below', type=float, metavar='X', help='with --metric: below X')
    p.add_argument('--metric-above', type=float, metavar='X', help='with --metric: above X')
    archived = p.add_mutually_exclusive_group()
    archived.add_argument('--archived', dest='archived', action='store_const', const=True,
                          default=False, help='only archived models (left out by default)')
    archived.add_argument('--include-archived', dest='archived', action='store_const',
                          const=None, help='archived models too')
    p.set_defaults(func=Command('cmd_models_list'))
    p = what.add_parser('show', parents=[common], help='one model, every column')
    p.add_argument('model', metavar='ID|NAME[@VERSION]', nargs='?',
                   help='a whole number is an id (an error names both if a model is also '
                   'named so); else NAME@VERSION when a number follows the last @, else a '
                   'name (its latest version)')
    p.add_argument('--id', metavar='ID', help='the model with this id')
    p.add_argument('--name', metavar='NAME[@VERSION]', help='the latest version of the model '
                   'named NAME (a number too), or that version')
    p.set_defaults(func=Command('cmd_models_show'))
    p = what.add_parser('delete', parents=[common], help='delete a model (asks on a terminal)')
    p.add_argument('id', metavar='ID')
    p.add_argument('--files', action='store_true', help='remove its directory too (only '
                   'inside the models root)')
    p.add_argument('--models-root', metavar='DIR',
                   help='the folder model directories live under (default: '
                   '$MODELSTORE_MODELS_ROOT)')
    p.add_argument('--yes', action='store_true', help='do not ask (needed off a terminal)')
    p.set_defaults(func=Command('cmd_models_delete'))
    p = what.add_parser('alias', help='set, remove or list the aliases of a model name '
                        '(NAME@ALIAS)')
    alias = p.add_subparsers(dest='alias_action', metavar='action', required=True)
    p = alias.add_parser('set', parents=[common], help='point NAME@ALIAS at a version (moves '
                         'it if it exists; recorded as an event)')
    p.add_argument('name', metavar='NAME')
    p.add_argument('alias', metavar='ALIAS', help=ALIAS_RULE)
    p.add_argument('version', metavar='VERSION')
    protect = p.add_mutually_exclusive_group()
    protect.add_argument('--protected', dest='protected', action='store_true', default=None,
                         help='protect it: it moves only with --force')
    protect.add_argument('--unprotected', dest='protected', action='store_false',
                         help='remove its protection (needs --force)')
    p.add_argument('--force', action='store_true', help='move or change a protected alias')
    p.set_defaults(func=Command('cmd_models_alias'))
    p = alias.add_parser('rm', parents=[common], help='remove NAME@ALIAS (recorded as an '
                         'event)')
    p.add_argument('name', metavar='NAME')
    p.add_argument('alias', metavar='ALIAS')
    p.add_argument('--force', action='store_true', help='remove a protected alias')
    p.set_defaults(func=Command('cmd_models_alias'))
    p = alias.add_parser('ls', parents=[common], help="a model name's aliases")
    p.add_argument('name', metavar='NAME')
    p.add_argument('--jsonl', action='store_true', help='print JSON Lines')
    p.set_defaults(func=Command('cmd_models_alias'))
    for action, helptext in (('archive', 'set a model aside: left out of listings and of '
                                          'NAME (its latest), still found by id and '
                                          'NAME@VERSION'),
                             ('restore', 'undo archive')):
        p = what.add_parser(action, parents=[common], help=helptext)
        p.add_argument('model', metavar='ID|NAME@VERSION')
        p.set_defaults(func=Command('cmd_models_archive'))
    p = what.add_parser('tag', parents=[common], help="set or remove a model's tags, and "
                        'show them')
    p.add_argument('model', metavar='ID|NAME[@VERSION|@ALIAS]')
    p.add_argument('tags', nargs='*', metavar='KEY=VALUE', help='set these (an event records '
                   'the change)')
    p.add_argument('--rm', action='append', default=[], metavar='KEY', help='remove this tag; '
                   'repeatable')
    p.set_defaults(func=Command('cmd_models_tag'))
    p = what.add_parser('lineage', parents=[common], help='a model and its ancestors '
                        '(parent_id), the model first')
    p.add_argument('model', metavar='ID|NAME[@VERSION|@ALIAS]')
    p.add_argument('--jsonl', action='store_true', help='print JSON Lines')
    p.set_defaults(func=Command('cmd_models_lineage'))
    p = what.add_parser('card', parents=[common], help="write the model's Hugging Face model "
                        'card (README.md: base_model, datasets, tags, model-index) into its '
                        'folder')
    p.add_argument('model', metavar='ID|NAME[@VERSION|@ALIAS]')
    p.add_argument('--print', action='store_true', help='print the card instead; writes '
                   'nothing')
    p.add_argument('--overwrite', action='store_true', help='replace a README.md modelstore '
                   'did not write')
    p.add_argument('--models-root', metavar='DIR',
                   help='the folder model directories live under (default: '
                   '$MODELSTORE_MODELS_ROOT)')
    p.set_defaults(func=Command('cmd_models_card'))
    p = what.add_parser('events', parents=[common], help="the registry's events (models "
                        'added, updated, archived, deleted; aliases; tags), oldest first')
    p.add_argument('--after', type=_offset, default=0, metavar='SEQ', help='only those after '
                   'event SEQ (the last one a deployer read)')
    p.add_argument('--limit', type=_limit, metavar='N', help='at most N (default 1000; not '
                   'with --follow)')
    p.add_argument('--follow', action='store_true', help='then wait for new ones and print '
                   'each as it commits, until interrupted (with --json: a JSON line each)')
    p.add_argument('--interval', type=_wait, default=1.0, metavar='SECONDS',
                   help='with --follow: how often to look (default 1); PostgreSQL wakes '
                   'at each commit (LISTEN/NOTIFY)')
    p.add_argument('--jsonl', action='store_true', help='print JSON Lines: one object a line')
    p.set_defaults(func=Command('cmd_models_events'))

    tasks = sub.add_parser('tasks', help='list or show autotuning tasks')
    what = only(tasks.add_subparsers(dest='action', metavar='action', required=True))
    p = what.add_parser('list', parents=[common, page], help='tasks in id order')
    p.add_argument('--status', metavar='STATUS', help='pending, running, completed, ...')
    p.add_argument('--base-runtime', metavar='TEXT')
    p.add_argument('--name-contains', metavar='TEXT')
    p.set_defaults(func=Command('cmd_tasks_list'))
    p = what.add_parser('show', parents=[common], help='one task, every column')
    p.add_argument('task', metavar='ID|NAME')
    p.set_defaults(func=Command('cmd_tasks_show'))

    p = sub.add_parser('import', help="copy another app's models into the registry")
    what = p.add_subparsers(dest='source', metavar='source', required=True)
    p = what.add_parser('modelforge', parents=[common], help="ModelForge v2's `models` table "
                        '(in the same database), each row once')
    p.add_argument('--include-inactive', action='store_true',
                   help='also the rows ModelForge soft-deleted (is_active false)')
    p.add_argument('--dry-run', action='store_true', help='list what it would import')
    p.set_defaults(func=Command('cmd_import'))


def _new_options():
    # `new` writes into a project's directory and needs no database: its own defaults and help.
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument('--migrations', metavar='DIR', default=argparse.SUPPRESS,
                         help='the scripts directory to write into (default: ./migrations)')
    options.add_argument('--database', metavar='URL', default=argparse.SUPPRESS,
                         help='with --auto: replay the scripts on this server\'s backend, in a '
                         'throwaway database dropped afterwards (default: SQLite in memory; no '
                         'database is touched)')
    options.add_argument('--json', action='store_true', default=argparse.SUPPRESS,
                         help='print one JSON object')
    options.add_argument('-v', '--verbose', action='store_true', default=argparse.SUPPRESS,
                         help='show tracebacks')
    return options


def _lint_options():
    # `lint` replays on SQLite in memory and on each server named: --database is repeatable.
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument('--migrations', metavar='DIR', default=argparse.SUPPRESS,
                         help='scripts directory (default: the scripts shipped with modelstore)')
    options.add_argument('--database', metavar='URL', action='append', default=argparse.SUPPRESS,
                         help='also replay on this PostgreSQL or MySQL server, in a throwaway '
                         'database dropped afterwards; repeatable (default: the configured '
                         'database when it is a server; SQLite in memory always)')
    options.add_argument('--json', action='store_true', default=argparse.SUPPRESS,
                         help='print one JSON object')
    options.add_argument('-v', '--verbose', action='store_true', default=argparse.SUPPRESS,
                         help='show tracebacks')
    return options


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('invalid float value: %r' % text) from None
    try:
        return check_timeout(value, None)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _wait(text):
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError('must be more than 0 seconds (0 would wait forever), '
                                         'got %r' % text)
    return value


def _minutes(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < 0 or value > MAX_MIN_AGE:
        raise argparse.ArgumentTypeError('must be a number of minutes from 0 to %d (ten '
                                         'years), got %r' % (MAX_MIN_AGE, text))
    return value


def _limit(text):
    return _whole(text, 1, '--limit')


def _offset(text):
    return _whole(text, 0, '--offset')


def _whole(text, minimum, option):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= MAX_PAGE:
        raise argparse.ArgumentTypeError('must be a whole number from %d to %d, got %r'
                                         % (minimum, MAX_PAGE, text))
    return value


def _count(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError('must be a whole number of at least 0, got %r' % text)
    return value


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError('must be a whole number of at least 1, got %r' % text)
    return value


# The options before the command that take a value (``--database URL``), as argparse reads
# them, also abbreviated (``--data URL``).
_VALUED = ('--database', '--migrations')
_OPTION = re.compile(r'-[A-Za-z]|--[A-Za-z]')  # What argparse may read as an option.


def _command_words(argv):
    """The command and its action (``models list``) ``argv`` names, as far as they can be told
    without parsing: [] (build everything) for no argv, ``--``, a word argparse would not take
    for an option, or help asked before the words."""
    if argv is None:
        return []
    words, argv = [], list(argv)
    while argv and len(words) < 2:
        token = argv.pop(0)
        if token == '--' or (not words and _asks_help(token)) or \
                token.startswith('-') and (' ' in token or not _OPTION.match(token)):
            return []  # (argparse reads '-', '-1' and '-a b' as positional words.)
        if token.startswith('-'):
            if not words and '=' not in token and len(token) > 2 and any(
                    option.startswith(token) for option in _VALUED):
                argv = argv[1:]
            if words:  # An option after the command: its action, if any, came first.
                break
            continue
        words.append(token)
    return words


def _asks_help(token):
    """Whether argparse may read ``token`` as the main parser's -h: ``-h``, a cluster holding
    it (``-vh``), or ``--help`` however abbreviated (``--he``)."""
    if token.startswith('--'):
        return len(token) > 2 and '--help'.startswith(token.split('=')[0])
    return token.startswith('-') and 'h' in token


class _Only:
    """A subparsers action that builds only the parser of the wanted word (all of them when
    none is wanted); the others are ``_Skipped``. ``missed``: the wanted word is no choice (the
    caller then builds everything, so that the error lists the choices)."""

    def __init__(self, action, wanted):
        self.action, self.wanted, self.found = action, wanted[0] if wanted else None, False

    def add_parser(self, name, **kwargs):
        if self.wanted is None or name == self.wanted:
            self.found = True
            return self.action.add_parser(name, **kwargs)
        return _SKIPPED

    @property
    def missed(self):
        return self.wanted is not None and not self.found


def _only(levels, action, wanted):
    """``action``, building only the wanted word's parser, noted in ``levels``; a skipped
    parser's subparsers stay skipped."""
    if action is _SKIPPED:
        return action
    levels.append(_Only(action, wanted))
    return levels[-1]


class _Skipped:
    """A parser not built: every call that would build it does nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: self


_SKIPPED = _Skipped()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises UsageError (after printing the usage) so that main()
    reports it like any other error, also as JSON with --json."""

    def error(self, message):
        self.print_usage(sys.stderr)
        raise UsageError('%s: %s' % (self.prog, message))
