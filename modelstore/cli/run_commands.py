"""The commands that change a database: migrate, rollback, restore."""
import os

from ..engine import Backups, Engine, restore_database
from ..engine.status import script_number
from ..exceptions import UsageError
from ..shared.database import open_database
from ..shared.urls import command, database_exists, mask_url, resolve_url, sqlite_path
from .output import OK, plural, progress_line
from .settings import hint

__all__ = ['cmd_migrate', 'cmd_rollback', 'cmd_restore']


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


def _wait_line(wait):
    held = '; '.join(b.describe() for b in wait.blockers) or 'a session that has ended'
    return ('%s: waited %.1f s for a table lock held by %s; rolled back so that writers can go '
            'on, trying again in %g s (attempt %d of %d)'
            % (wait.script, wait.waited, held, wait.retry_in, wait.attempt + 1, wait.attempts))


def _run(args, out, direction):
    # Rolling back a file that does not exist must not create it.
    url = resolve_url(args.database)
    inspect = args.dry_run or (direction == 'down' and not database_exists(url))
    database = open_database(url, mode='inspect' if inspect else 'migrate')
    shown = mask_url(url)
    engine = Engine(database, args.migrations, label=shown, lock_timeout=args.lock_timeout,
                    backups=_backups(args, url), ddl_lock_timeout=args.ddl_lock_timeout,
                    ddl_retries=args.ddl_retries, hint=_hints(args))
    args.to = _target(engine, args.to)
    verb = 'Migrating' if direction == 'up' else 'Rolling back'
    if not out.as_json:
        out.line('%s database: %s%s' % (verb, shown, ' (dry run: nothing will be changed)'
                                        if args.dry_run else ''))
    printer = None if out.as_json else (lambda run: _print_run(out, run, args.dry_run))
    on_backup = None if out.as_json else (lambda path: out.line(
        'Backup: %s (the newest %d are kept; --no-backup skips this)' % (path, args.keep_backups)))
    # Each lock wait, as it happens (on stderr with --json, which keeps stdout one object).
    on_wait = lambda wait: out.note(_wait_line(wait))  # noqa: E731
    if direction == 'up':
        on_progress = (lambda p: out.progress(progress_line(p))) if out.live else None
        result = engine.migrate(args.to, dry_run=args.dry_run, fake=args.fake,
                                on_script=printer, on_backup=on_backup, on_progress=on_progress,
                                on_wait=on_wait)
    else:
        result = engine.rollback(args.to, dry_run=args.dry_run, allow_data_loss=args.yes,
                                 on_script=printer, on_backup=on_backup, on_wait=on_wait)
    status = engine.status()
    adoption = result.adoption
    if out.as_json:
        out.json({'database': shown, 'dry_run': args.dry_run, 'direction': direction,
                  'scripts': [r.as_dict() for r in result.runs], 'names': result.names,
                  'ran': result.by_method('ran'), 'adopted': result.by_method('adopted'),
                  'notes': adoption.notes if adoption else [],
                  'warnings': adoption.warnings if adoption else [], 'backup': result.backup,
                  'data_lost': result.losses,
                  'applied': status.applied, 'pending': status.pending})
        return OK
    for note in adoption.notes if adoption else ():
        out.line('note: ' + note)
    for warning in adoption.warnings if adoption else ():
        out.line(out.paint('warning: ' + warning, '33'))
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
                     % plural(len(status.applied), 'script'))
        else:
            out.line('Nothing to roll back: no script is applied.')
    else:
        done = 'applied' if direction == 'up' else 'rolled back'
        if getattr(args, 'fake', False):
            done = 'recorded without running'
        scripts = plural(ran, 'script') + (' (%s)' % plural(steps, 'operation'))
        if args.dry_run:
            parts = ['%s would be %s' % (scripts, done)] if ran else []
            if adopted:
                parts.append('%s would be adopted' % (adopted if ran else
                                                      plural(adopted, 'script')))
            out.line('Dry run: %s; nothing was changed.' % ' and '.join(parts))
            return OK
        parts = ['%s %s' % (done, scripts)] if ran else []
        if adopted:
            parts.append('adopted %s' % (adopted if ran else plural(adopted, 'script')))
        summary = ' and '.join(parts)
        out.line(out.paint('%s%s in %.0f ms.' % (summary[0].upper(), summary[1:],
                                                seconds * 1000), '32'))
        if status.pending:
            out.line('%s still pending: %s' % (plural(len(status.pending), 'script'),
                                               ', '.join(status.pending)))
        elif direction == 'up':
            out.line('Database is up to date.')
    return OK


def _target(engine, given):
    """--to NAME, a script's number (``3``, ``0003``) or a unique prefix of its name; several
    scripts that fit are an error listing them. One that fits none is left for the engine to
    refuse, listing the scripts it knows."""
    if given is None:
        return None
    names = [script.name for script in engine.scripts()]
    names += [r.name for r in engine.history.read() if r.name not in names]
    if given in names:
        return given
    fits = [n for n in names if n.startswith(given) or (
        given.isdigit() and given.isascii() and script_number(n) == int(given))]
    if len(fits) > 1:
        raise UsageError('--to %s fits %d scripts: %s; give more of the name'
                         % (given, len(fits), ', '.join(fits)))
    return fits[0] if fits else given


def _backups(args, url):
    """Where a run on ``url`` keeps its backups: SQLite files only, unless --no-backup."""
    path = sqlite_path(url)
    if path is None or path == ':memory:' or args.no_backup or args.dry_run:
        return None
    return Backups(path, keep=args.keep_backups, timeout=args.lock_timeout)


def _hints(args):
    """The engine's hints, with this command line's options (modelstore.cli.settings)."""
    return lambda verb, *words: hint(args, verb, *words)


def cmd_migrate(args, out):
    return _run(args, out, 'up')


def cmd_rollback(args, out):
    return _run(args, out, 'down')


def cmd_repair(args, out):
    url = resolve_url(args.database)
    shown = mask_url(url)
    done = []
    if database_exists(url):  # (A SQLite file that is not there is not created for this.)
        database = open_database(url, mode='migrate')
        try:
            done = Engine(database, args.migrations, label=shown, hint=_hints(args),
                          lock_timeout=args.lock_timeout).repair(
                              args.mark, allow_data_loss=args.yes)
        finally:
            database.close()
    if out.as_json:
        out.json({'database': shown, 'repaired': [
            {'name': name, 'direction': direction, 'action': action,
             'steps': [step.as_dict() for step in steps]}
            for name, direction, action, steps in done]})
        return OK
    if not done:
        out.line('Nothing to repair: no script of %s failed partway.' % shown)
    for name, direction, action, steps in done:
        out.line('%s %s (%s): %s' % (out.paint('✓', '32'), name, direction, action))
        for step in steps:
            out.line('    %s' % step.description)
    if done:
        out.line('Run: %s' % hint(args, 'migrate'))
    return OK


def cmd_restore(args, out):
    url, safety, tables = restore_database(
        args.backup, args.database, keep=args.keep_backups, timeout=args.lock_timeout,
        safety_backup=not args.no_backup, directory=args.migrations)
    backup = os.path.abspath(os.path.expanduser(args.backup))
    database = open_database(url, mode='inspect')
    try:
        status = Engine(database, args.migrations, hint=_hints(args)).status()
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
        url, backup, plural(len(status.applied), 'script')), '32'))
    if status.pending:
        out.line('%s pending; run: %s' % (plural(len(status.pending), 'script'),
                                          command('migrate', database=url,
                                                  migrations=args.migrations)))
    return OK
