"""The commands that change a database: migrate, rollback, repair, restore.

Each returns its result (cli.results); a run prints each script as it goes (RunPrinter)."""
import os

from ..engine import Backups, Engine, Observer, restore_database, script_number
from ..exceptions import UsageError
from ..shared.database import open_database
from ..shared.urls import command, database_exists
from .output import progress_event, progress_line
from .render import print_script, run_header, wait_event, wait_line
from .results import Repaired, Restored, Run
from .settings import database_url, hint

__all__ = ['cmd_migrate', 'cmd_rollback', 'cmd_repair', 'cmd_restore', 'RunPrinter']


class RunPrinter(Observer):
    """The engine's Observer that prints a run as it goes: each script, the backup, each lock
    wait (on stderr with --json, which keeps stdout one object), progress on a terminal."""

    def __init__(self, out, dry_run, keep_backups):
        self.out, self.dry_run, self.keep_backups = out, dry_run, keep_backups

    def script_finished(self, result):
        if not self.out.as_json:
            print_script(self.out, result, self.dry_run)

    def backup(self, backup):
        if not self.out.as_json:
            self.out.line('Backup: %s (the newest %d are kept; --no-backup skips this)'
                          % (backup, self.keep_backups))

    def lock_wait(self, wait):
        if self.out.as_json:  # stderr holds JSON lines only: one an event, as progress's.
            self.out.event(wait_event(wait))
        else:
            self.out.line(wait_line(wait))

    def progress(self, progress):
        """On a terminal, the live line; off one (a CI log), a line every PROGRESS_EVERY
        seconds -- with --json, a JSON object on stderr."""
        if self.out.live:
            self.out.progress(progress_line(progress))
        elif self.out.due():
            if self.out.as_json:
                self.out.event(progress_event(progress))
            else:
                self.out.line(progress_line(progress))


def _run(args, out, direction):
    # Rolling back a file that does not exist must not create it.
    url = database_url(args)
    inspect = args.dry_run or (direction == 'down' and not database_exists(url))
    database = open_database(url, mode='inspect' if inspect else 'migrate')
    shown = url.masked
    engine = Engine(database, args.migrations, label=shown, lock_timeout=args.lock_timeout,
                    backups=_backups(args, url), ddl_lock_timeout=args.ddl_lock_timeout,
                    ddl_retries=args.ddl_retries, hint=_hints(args))
    args.to = _target(engine, args.to)
    run_header(out, direction, shown, args.dry_run)
    printer = RunPrinter(out, args.dry_run, args.keep_backups)
    if direction == 'up':
        result = engine.migrate(args.to, dry_run=args.dry_run, fake=args.fake, observer=printer,
                                phase=args.phase, force=args.force, offline=args.offline)
    else:
        result = engine.rollback(args.to, dry_run=args.dry_run, allow_data_loss=args.yes,
                                 observer=printer)
    return Run(shown, direction, args.dry_run, getattr(args, 'fake', False), result,
               engine.status(), getattr(args, 'phase', None), _hints(args))


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
    fits = _fits(names, given)
    if len(fits) > 1:
        raise UsageError('--to %s fits %d scripts: %s; give more of the name'
                         % (given, len(fits), ', '.join(fits)))
    return fits[0] if fits else given


def _fits(names, given):
    """The names that start with ``given``, or whose number it is."""
    number = int(given) if given.isdigit() and given.isascii() else None
    return [n for n in names
            if n.startswith(given) or (number is not None and script_number(n) == number)]


def _backups(args, url):
    """Where a run on ``url`` keeps its backups: SQLite files only, unless --no-backup."""
    path = url.sqlite_path
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
    url = database_url(args)
    shown = url.masked
    done = []
    if database_exists(url):  # (A SQLite file that is not there is not created for this.)
        database = open_database(url, mode='migrate')
        try:
            done = Engine(database, args.migrations, label=shown, hint=_hints(args),
                          lock_timeout=args.lock_timeout).repair(
                              args.mark, allow_data_loss=args.yes)
        finally:
            database.close()
    return Repaired(shown, done, _hints(args))


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
    return Restored(url, backup, safety, tables, status,
                    command('migrate', database=url, migrations=args.migrations))
