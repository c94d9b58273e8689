"""The ``modelstore`` command (also ``python -m modelstore``); the only module that prints.

    modelstore <command> [--database URL] [--json] [-v]

Commands: migrate [--to NAME] [--dry-run] [--fake], status, history, check,
rollback [--to NAME] [--dry-run], accept NAME... | --all.

Exit codes: 0 ok; 1 something is pending, drifted, changed or missing (so ``check`` and
``status`` can gate a deploy); 2 error -- one line on stderr, ``-v`` adds the traceback.
``NO_COLOR`` (any value) turns colour off; colour is only used on a terminal.
"""
import argparse
import json
import os
import sys
import traceback

from .backup import KEEP, Backups, check_timeout, restore_database
from .db import database_exists, mask_url, open_database, resolve_url, sqlite_path
from .drift import detect_drift
from .engine import Engine
from .exceptions import (AdoptionRefused, ConfigError, DataLossRefused, ModelStoreError,
                         ScriptError)
from .gate import migrate_command
from .lock import DEFAULT_TIMEOUT
from .version import __version__

__all__ = ['main']

OK, PENDING, ERROR = 0, 1, 2


class Output:
    """Where and how to print: colour only on a terminal without NO_COLOR."""

    def __init__(self, stream, as_json):
        self.stream = stream
        self.as_json = as_json
        self.color = (not as_json and not os.environ.get('NO_COLOR')
                      and os.environ.get('TERM') != 'dumb'
                      and hasattr(stream, 'isatty') and stream.isatty())

    def paint(self, text, code):
        return '\033[%sm%s\033[0m' % (code, text) if self.color else text

    def line(self, text=''):
        self._write(text.rstrip())

    def json(self, payload):
        self._write(json.dumps(payload, indent=2, default=str))

    def _write(self, text):
        # A reader that went away (`modelstore migrate | head`) must not abort a run: this is
        # called from inside the migration lock, where an exception would roll it back.
        try:
            print(text, file=self.stream, flush=True)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())


def _open(args, mode):
    url = resolve_url(args.database)
    return url, open_database(url, mode=mode)


def _plural(n, word):
    return '%d %s%s' % (n, word, '' if n == 1 else 's')


def _print_run(out, run, dry_run):
    arrow = '↩ ' if run.direction == 'down' else ''
    tag = {'adopted': 'adopted', 'faked': 'recorded without running'}.get(run.method)
    out.line('%s%s%s' % (arrow, out.paint(run.name, '1'),
                         '  (%s%s)' % ('would be ' if dry_run else '', tag) if tag else ''))
    if run.method == 'adopted':
        out.line('  %s already in the database: recorded, not run' % out.paint('=', '36'))
        return
    for table in run.kept:
        out.line('  %s %s already holds this script\'s effect: kept as it is'
                 % (out.paint('=', '36'), table))
    if not run.steps and run.method != 'faked':
        out.line('  %s (no schema operations)' % out.paint('✓', '32'))
    for step in run.steps:
        out.line('  %s %s' % (out.paint('✓', '32'), step.description))
        if dry_run:
            for sql in step.render():
                out.line('      ' + sql)


def _run(args, out, direction):
    # Rolling back a file that does not exist must not create it.
    url = resolve_url(args.database)
    inspect = args.dry_run or (direction == 'down' and not database_exists(url))
    database = open_database(url, mode='inspect' if inspect else 'migrate')
    shown = mask_url(url)
    engine = Engine(database, args.migrations, label=shown, lock_timeout=args.lock_timeout,
                    backups=_backups(args, url))
    verb = 'Migrating' if direction == 'up' else 'Rolling back'
    if not out.as_json:
        out.line('%s database: %s%s' % (verb, shown, ' (dry run: nothing will be changed)'
                                        if args.dry_run else ''))
    printer = None if out.as_json else (lambda run: _print_run(out, run, args.dry_run))
    on_backup = None if out.as_json else (lambda path: out.line(
        'Backup: %s (the newest %d are kept; --no-backup skips this)' % (path, args.keep_backups)))
    if direction == 'up':
        result = engine.migrate(args.to, dry_run=args.dry_run, fake=args.fake,
                                on_script=printer, on_backup=on_backup)
    else:
        result = engine.rollback(args.to, dry_run=args.dry_run, allow_data_loss=args.yes,
                                 on_script=printer, on_backup=on_backup)
    status = engine.status()
    adoption = result.adoption
    if out.as_json:
        out.json({'database': shown, 'dry_run': args.dry_run, 'direction': direction,
                  'scripts': [r.as_dict() for r in result.runs], 'names': result.names,
                  'ran': result.by_method('ran'), 'adopted': result.by_method('adopted'),
                  'notes': adoption.notes if adoption else [], 'backup': result.backup,
                  'data_lost': result.losses,
                  'applied': status.applied, 'pending': status.pending})
        return OK
    for note in adoption.notes if adoption else ():
        out.line('note: ' + note)
    for loss in result.losses:
        out.line(out.paint('%s: %s' % ('would destroy' if args.dry_run else 'destroyed', loss),
                           '31'))
    steps = sum(len(r.steps) for r in result.runs)
    seconds = sum(r.duration for r in result.runs)
    adopted = len(result.by_method('adopted'))
    ran = len(result.runs) - adopted
    if not result.runs:
        if direction == 'up':
            out.line('Nothing to migrate: the database is up to date (%s applied).'
                     % _plural(len(status.applied), 'script'))
        else:
            out.line('Nothing to roll back: no script is applied.')
    else:
        done = 'applied' if direction == 'up' else 'rolled back'
        if getattr(args, 'fake', False):
            done = 'recorded without running'
        scripts = _plural(ran, 'script') + (' (%s)' % _plural(steps, 'operation'))
        if args.dry_run:
            parts = ['%s would be %s' % (scripts, done)] if ran else []
            if adopted:
                parts.append('%s would be adopted' % (adopted if ran else
                                                      _plural(adopted, 'script')))
            out.line('Dry run: %s; nothing was changed.' % ' and '.join(parts))
            return OK
        parts = ['%s %s' % (done, scripts)] if ran else []
        if adopted:
            parts.append('adopted %s' % (adopted if ran else _plural(adopted, 'script')))
        summary = ' and '.join(parts)
        out.line(out.paint('%s%s in %.0f ms.' % (summary[0].upper(), summary[1:],
                                                seconds * 1000), '32'))
        if status.pending:
            out.line('%s still pending: %s' % (_plural(len(status.pending), 'script'),
                                               ', '.join(status.pending)))
        elif direction == 'up':
            out.line('Database is up to date.')
    return OK


def _backups(args, url):
    """Where a run on ``url`` keeps its backups: SQLite files only, unless --no-backup."""
    path = sqlite_path(url)
    if path is None or path == ':memory:' or args.no_backup or args.dry_run:
        return None
    return Backups(path, keep=args.keep_backups, timeout=args.lock_timeout)


def cmd_migrate(args, out):
    return _run(args, out, 'up')


def cmd_rollback(args, out):
    return _run(args, out, 'down')


def cmd_status(args, out):
    url, database = _open(args, 'inspect')
    shown = mask_url(url)
    status = Engine(database, args.migrations, label=shown).status(analyse=True)
    exists = database_exists(url)
    adoption = status.adoption
    if out.as_json:
        out.json({'database': shown, 'exists': exists, 'applied': status.applied,
                  'pending': status.pending, 'missing': status.missing,
                  'changed': status.changed, 'history_table': status.history_table,
                  'up_to_date': status.up_to_date, 'to_adopt': status.to_adopt,
                  'adoption': adoption.as_dict() if adoption else None,
                  'scripts': [e.as_dict() for e in status.entries]})
    else:
        out.line('Database: %s%s' % (shown, '' if exists else ' (does not exist yet)'))
        if not status.applied and not status.fresh:
            out.line('It has tables but no modelstore history (a ModelForge or autotuner '
                     'file?): migrate records what is already there as adopted and runs the '
                     'rest.')
        colors = {'applied': '32', 'pending': '33', 'missing': '31'}
        for entry in status.entries:
            state = entry.state
            when = method = ''
            if entry.record is not None:
                when = _when(entry.record, '')
                method = _value(entry.record, 'method', entry.record.method or '')
            note = ''
            if entry.changed:
                note = '  ' + out.paint('CHANGED since applied', '31')
            elif entry.interrupted:
                note = '  interrupted: a run died while it ran; migrate runs it again'
            elif state == 'missing':
                note = '  (script file not found)'
            elif entry.plan:
                tables = ', '.join(adoption.present.get(entry.name, ()))
                note = _PLAN_NOTES[entry.plan].format(tables=tables)
            out.line('  %s  %-45s %s %s%s' % (out.paint('%-7s' % state, colors[state]),
                                               entry.name, when, method, note))
        to_adopt = len(status.to_adopt)
        out.line('%d applied, %d pending%s%s.' % (
            len(status.applied), len(status.pending),
            ' (%d already in the database, to adopt)' % to_adopt if to_adopt else '',
            ', %d missing' % len(status.missing) if status.missing else ''))
        for note in adoption.notes if adoption else ():
            out.line('note: ' + note)
        for problem in _history_problems(status.records):
            out.line('damaged history: %s (modelstore check fails until it is fixed)'
                     % problem)
        if adoption and adoption.problems:
            out.line(out.paint('migrate will refuse this database until it is fixed:', '31'))
            for line in adoption.problems:
                out.line('  ' + line)
        elif status.pending:
            out.line('Run: %s' % migrate_command(url))
        if status.changed:
            out.line('Changed since applied: %s; review, then run: modelstore accept NAME'
                     % ', '.join(status.changed))
    return OK if status.up_to_date and not status.changed else PENDING


_PLAN_NOTES = {'adopt': '  already in the database ({tables}): will be adopted',
               'partial': '  will run; keeps {tables}, already there',
               'run': '  will run'}


def cmd_history(args, out):
    url, database = _open(args, 'inspect')
    shown = mask_url(url)
    records = Engine(database, args.migrations, label=shown).history.read()
    if out.as_json:
        out.json({'database': shown, 'history': [r.as_dict() for r in records]})
        return OK
    out.line('History of %s' % shown)
    if not records:
        out.line('  (no scripts applied%s)' % ('' if database_exists(url) else
                                                 '; the database does not exist yet'))
    for r in records:
        out.line('  %-45s %s  %-7s %8s  %s  %s  %s' % (
            r.name, _when(r, '-'), _value(r, 'method', r.method or '-'),
            _value(r, 'duration', '%.1f ms' % (r.duration * 1000)
                   if r.duration is not None else '-'),
            _value(r, 'applied_by', r.applied_by or '-'),
            _value(r, 'tool_version', r.tool_version or '-'),
            _value(r, 'checksum', (r.checksum or '-')[:12])))
    for problem in _history_problems(records):
        out.line('  damaged: ' + problem)
    return OK


def _when(record, empty):
    """When a history record was applied, in UTC where known; unreadable text shown so."""
    if record.applied_utc is not None:
        return record.applied_utc.strftime('%Y-%m-%d %H:%M:%S') + ' UTC'
    unreadable = dict(record.unreadable)
    if 'applied_utc' in unreadable:
        return 'unreadable: %s' % unreadable['applied_utc']
    if record.applied is not None:
        return record.applied.strftime('%Y-%m-%d %H:%M:%S')
    if 'applied' in unreadable:
        return 'unreadable: %s' % unreadable['applied']
    return empty


def _value(record, name, text):
    unreadable = dict(record.unreadable)
    return 'unreadable: %s' % unreadable[name] if name in unreadable else text


def _history_problems(records):
    return [problem for record in records for problem in record.problems()]


def cmd_check(args, out):
    url, database = _open(args, 'inspect')
    shown = mask_url(url)
    status = Engine(database, args.migrations, label=shown).status()
    drift = detect_drift(database)
    problems = ['pending: %s' % n for n in status.pending]
    problems += ['missing script file for applied %s' % n for n in status.missing]
    problems += ['changed since applied: %s' % n for n in status.changed]
    problems += ['drift: %s' % line for line in drift.lines]
    damaged = _history_problems(status.records)
    problems += ['damaged history: %s' % line for line in damaged]
    if out.as_json:
        out.json({'database': shown, 'ok': not problems, 'pending': status.pending,
                  'missing': status.missing, 'changed': status.changed,
                  'drift': drift.lines, 'notes': drift.notes, 'applied': status.applied,
                  'damaged_history': damaged})
        return PENDING if problems else OK
    if problems:
        out.line('%s %s' % (out.paint('✗', '31'), shown))
        for problem in problems:
            out.line('  ' + problem)
    else:
        out.line('%s %s: up to date (%s), no drift.' % (
            out.paint('✓', '32'), shown, _plural(len(status.applied), 'script')))
    for note in drift.notes:
        out.line('  note: ' + note)
    if status.pending:
        out.line('Run: %s' % migrate_command(url))
    return PENDING if problems else OK


def cmd_accept(args, out):
    if not args.names and not args.all:
        raise ModelStoreError('name the scripts to accept, or pass --all')
    url, database = _open(args, 'migrate')
    shown = mask_url(url)
    names = Engine(database, args.migrations, label=shown,
                   lock_timeout=args.lock_timeout).accept(
        None if args.all else args.names)
    if out.as_json:
        out.json({'database': shown, 'accepted': names})
    elif names:
        for name in names:
            out.line('%s Recorded the current checksum of %s' % (out.paint('✓', '32'), name))
    else:
        out.line('Nothing to accept: no applied script has changed.')
    return OK


def cmd_restore(args, out):
    url, safety, tables = restore_database(
        args.backup, args.database, keep=args.keep_backups, timeout=args.lock_timeout,
        safety_backup=not args.no_backup, directory=args.migrations)
    backup = os.path.abspath(os.path.expanduser(args.backup))
    database = open_database(url, mode='inspect')
    try:
        status = Engine(database, args.migrations).status()
    finally:
        database.close()
    if out.as_json:
        out.json({'database': url, 'restored_from': backup, 'backup_of_previous': safety,
                  'tables': sorted(tables), 'applied': status.applied,
                  'pending': status.pending})
        return OK
    if safety:
        out.line('Backup of the database as it was: %s' % safety)
    out.line(out.paint('Restored %s from %s (%s applied).' % (
        url, backup, _plural(len(status.applied), 'script')), '32'))
    if status.pending:
        out.line('%s pending; run: %s' % (_plural(len(status.pending), 'script'),
                                          migrate_command(url)))
    return OK


def _one_line(exc):
    return ' '.join(str(exc).split()) or type(exc).__name__


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
    common.add_argument('--json', action='store_true', help='print one JSON object', **flag)
    common.add_argument('-v', '--verbose', action='store_true',
                        help='show tracebacks and log progress', **flag)
    return common


def _parser():
    common = _common_options(suppress=True)
    locking = argparse.ArgumentParser(add_help=False)
    locking.add_argument('--lock-timeout', type=_seconds, default=DEFAULT_TIMEOUT,
                         metavar='SECONDS', help='wait this long for another run to finish '
                         '(default %(default)g)')

    parser = _Parser(
        prog='modelstore', description='Migrate and inspect a modelstore registry database.',
        parents=[_common_options(suppress=False)])
    parser.add_argument('--version', action='version', version='modelstore ' + __version__)
    sub = parser.add_subparsers(dest='command', metavar='command', required=True)

    backups = argparse.ArgumentParser(add_help=False)
    backups.add_argument('--no-backup', action='store_true',
                         help='do not copy a SQLite file before changing it')
    backups.add_argument('--keep-backups', type=_positive, default=KEEP, metavar='N',
                         help='backups of the file to keep, newest first (default %(default)d)')

    p = sub.add_parser('migrate', parents=[common, locking, backups],
                       help='apply pending scripts')
    p.add_argument('--to', metavar='NAME', help='stop after applying this script')
    p.add_argument('--dry-run', action='store_true',
                   help='print the SQL each script would run; change nothing')
    p.add_argument('--fake', action='store_true',
                   help='record pending scripts as applied without running them')
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser('rollback', parents=[common, locking, backups],
                       help='revert the last script, or back through --to NAME')
    p.add_argument('--to', metavar='NAME', help='revert every script back through this one')
    p.add_argument('--dry-run', action='store_true',
                   help='print the SQL each down() would run; change nothing')
    p.add_argument('--yes', action='store_true',
                   help='go ahead even if the rollback drops tables or columns holding data')
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser('restore', parents=[common, locking, backups],
                       help='put a backup back, after checking it')
    p.add_argument('backup', metavar='BACKUP', help='a backup file that migrate or rollback made')
    p.set_defaults(func=cmd_restore, dry_run=False)

    p = sub.add_parser('status', parents=[common], help='list applied and pending scripts')
    p.set_defaults(func=cmd_status)
    p = sub.add_parser('history', parents=[common], help='show the history table')
    p.set_defaults(func=cmd_history)
    p = sub.add_parser('check', parents=[common],
                       help='exit 0 only if up to date, unchanged and without drift')
    p.set_defaults(func=cmd_check)
    p = sub.add_parser('accept', parents=[common, locking],
                       help='record the new checksum of edited applied scripts')
    p.add_argument('names', nargs='*', metavar='NAME')
    p.add_argument('--all', action='store_true', help='accept every changed script')
    p.set_defaults(func=cmd_accept)
    return parser


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('invalid float value: %r' % text) from None
    try:
        return check_timeout(value, None)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError('must be a whole number of at least 1, got %r' % text)
    return value


class UsageError(ModelStoreError):
    """The command line itself is wrong."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises UsageError (after printing the usage) so that main()
    reports it like any other error, also as JSON with --json."""

    def error(self, message):
        self.print_usage(sys.stderr)
        raise UsageError('%s: %s' % (self.prog, message))


def main(argv=None):
    """Run the CLI; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help or --version.
        return exc.code if isinstance(exc.code, int) else ERROR
    except UsageError as exc:
        args = argparse.Namespace(verbose=False)
        return _fail(args, Output(sys.stdout, '--json' in argv), exc, 'error: %s' % exc,
                     trace=False)
    if args.verbose:
        import logging
        logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    out = Output(sys.stdout, args.json)
    if args.command in ('migrate', 'rollback') and args.dry_run and getattr(args, 'fake', False):
        return _fail(args, out, UsageError('--dry-run and --fake cannot be combined'),
                     'error: --dry-run and --fake cannot be combined')
    try:
        return args.func(args, out)
    except (AdoptionRefused, DataLossRefused) as exc:  # A report, one line per item.
        return _fail(args, out, exc, 'error: %s' % exc.report())
    except ModelStoreError as exc:
        return _fail(args, out, exc, 'error: %s' % _one_line(exc))
    except KeyboardInterrupt as exc:
        return _fail(args, out, exc, 'error: interrupted; the script that was running was '
                                     'rolled back', code=130, trace=False)
    except Exception as exc:  # A bug or an unexpected driver error: still one line.
        return _fail(args, out, exc, 'error: unexpected %s: %s (run with -v for the traceback)'
                     % (type(exc).__name__, _one_line(exc)))


def _fail(args, out, exc, text, code=ERROR, trace=True):
    """Report an error: one line (or a report) on stderr; with --json, also a JSON object on
    stdout, so that a script reading stdout always gets one object."""
    if args.verbose and trace:
        traceback.print_exc()
    print(text, file=sys.stderr)
    if out.as_json:
        error = {'type': type(exc).__name__, 'message': _one_line(exc), 'exit_code': code}
        for attribute in ('pending', 'command', 'problems', 'losses', 'names', 'unknown'):
            if hasattr(exc, attribute):
                error[attribute] = getattr(exc, attribute)
        if isinstance(exc, ScriptError):
            error['script'] = exc.name
        out.json({'ok': False, 'error': error})
    return code
