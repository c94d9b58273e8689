"""The Engine: status, migrate, rollback and accept, composed from scripts, history and lock.

Every run follows the same order:

1. take the backend's run lock (bounded wait, then LockTimeout);
2. read the applied set *under the lock*;
3. plan and validate everything -- unknown target, a script without ``up``/``down`` or that does
   not load, an applied script whose file is gone, an applied script whose checksum changed --
   before the first script runs; a refusal changes nothing;
4. run each script in ``migration_context()`` with its history row written in the same
   transaction. A failing script is rolled back completely and gets no history row; the scripts
   before it stay applied, and ScriptError names it.

A dry run does all of this inside one transaction that is rolled back at the end, so the SQL it
reports is exactly what would run, and nothing changes -- not even the history table.
"""
import contextlib
import sqlite3
import time

from peewee import DatabaseError

from ..dialects import dialect_of, raising
from ..exceptions import (AdoptionRefused, ChecksumMismatch, DataLossRefused, MigrationError,
                          SchemaNewerThanCode, ScriptError, StorageError)
from ..shared.database import check_timeout
from ..shared.urls import command
from ..version import __version__
from .adopt import ADOPT, PARTIAL, Adoption, analyse
from .ddlwait import DDL_LOCK_TIMEOUT, DDL_RETRIES, DdlLocks
from .history import TABLE as HISTORY_TABLE, History
from .fkwatch import NeedBaseline
from .lock import DEFAULT_TIMEOUT, run_lock
from .batch_runner import run_online
from .losses import foresee_losses
from .nontx import attempt_logged, dry_run_on_shadow, refuse_failed
from .repair import repair
from .run_results import RunResult, ScriptRun
from .scripts import discover
from .status import Entry, Status, schema_version, script_number
from .steps import Recorder

__all__ = ['Engine']


class Engine:
    """Migrate one database with the scripts in ``directory`` (default: the shipped ones).

    ``backups`` (a modelstore.engine.backup.Backups, SQLite only): a run that will change a
    database that has tables first copies it there, under the lock, and reports the path.
    """

    def __init__(self, database, directory=None, *, label=None, lock_timeout=DEFAULT_TIMEOUT,
                 backups=None, ddl_lock_timeout=DDL_LOCK_TIMEOUT, ddl_retries=DDL_RETRIES,
                 hint=None):
        self.database = database
        self.directory = directory
        self.label = label or 'the database'
        # hint(verb, *words): the command a message tells the operator to run, with the options
        # that chose this database and these scripts (the CLI passes its own: --models too).
        self.hint = hint or (lambda verb, *words: command(
            verb, *words, database=label if label and '://' in label else None,
            migrations=directory))
        self.lock_timeout = check_timeout(lock_timeout)
        self.backups = backups
        self.history = History(database)
        # PostgreSQL: each script's lock_timeout and retries (modelstore.engine.ddlwait).
        self.ddl = DdlLocks(database, ddl_lock_timeout, ddl_retries)
        # MySQL/MariaDB: DDL commits, so each script's operations are logged as they run.
        self.logged = dialect_of(database).operation_log
        self._on_progress = self._on_wait = None

    def scripts(self):
        return discover(self.directory)

    def status(self, analyse=False):
        """Merge script files and history; reads only, never creates anything.

        With ``analyse=True`` the pending scripts are also checked against the live schema
        (see modelstore.engine.adopt): each entry's ``plan`` says whether migrate would adopt
        or run it, and ``status.adoption`` holds what was found.
        """
        scripts = self.scripts()
        with raising(StorageError, 'reading the migration status of %s' % self.label):
            tables = frozenset(self.database.get_tables())
            records = ({r.name: r for r in self.history.read()} if HISTORY_TABLE in tables
                       else {})
        entries = [Entry(s.name, s, records.pop(s.name, None)) for s in scripts]
        entries.extend(Entry(name, None, rec) for name, rec in records.items())
        entries.sort(key=lambda e: (script_number(e.name), e.name))
        status = Status(entries, HISTORY_TABLE in tables, tables)
        if analyse:
            self._analyse(status, scripts)
        return status

    def _analyse(self, status, scripts):
        pending = status.pending
        if pending and status.tables - {HISTORY_TABLE}:
            status.adoption = analyse(self.database, scripts, pending)
        else:  # An empty database: every script runs.
            status.adoption = Adoption(verdicts={name: 'run' for name in pending})
        for entry in status.entries:
            entry.plan = status.adoption.verdicts.get(entry.name)

    # -- runs -----------------------------------------------------------------------------

    def migrate(self, target=None, *, dry_run=False, fake=False, on_script=None,
                on_backup=None, precondition=None, on_progress=None, on_wait=None):
        """Apply pending scripts in order (through ``target`` if given).

        An online script (modelstore.online) runs its batches outside the run's transaction;
        ``on_progress(Progress)`` is called after each of them. ``on_wait(LockWait)``: after a
        script timed out waiting for a lock, before it is tried again (PostgreSQL).
        """
        self._on_progress, self._on_wait = on_progress, on_wait

        def plan(status):
            if precondition is not None:
                precondition(status)
            refuse_failed(status, self.hint)
            if status.missing:
                raise SchemaNewerThanCode(self.label, status.missing, self.directory)
            if status.changed:
                raise ChecksumMismatch(status.changed, self.hint('accept', 'NAME'))
            self._check_target(status, target, [e for e in status.entries if e.script])
            adoption = status.adoption
            if adoption is not None and adoption.problems:
                raise AdoptionRefused(self.label, adoption.problems,
                                      self.hint('migrate', '--fake'))
            todo = []
            for entry in status.entries:
                if entry.state == 'pending':
                    module = entry.script.load(('up',))
                    if fake:
                        todo.append((entry.script, module, 'faked', []))
                    elif entry.plan == ADOPT:
                        todo.append((entry.script, module, 'adopted', []))
                    else:
                        kept = adoption.present.get(entry.name, []) if entry.plan == PARTIAL \
                            else []
                        todo.append((entry.script, module, 'ran', kept))
                if entry.name == target:
                    break
            return todo

        # --fake is the operator's override: it records without looking at the schema.
        return self._run(plan, 'up', dry_run=dry_run, on_script=on_script, on_backup=on_backup,
                         analyse=not fake)

    def rollback(self, target=None, *, dry_run=False, allow_data_loss=False, on_script=None,
                 on_backup=None, on_wait=None):
        """Revert the last applied script, or every one back through ``target``.

        A rollback that would drop a table holding rows, or a column holding values other than
        its default, raises DataLossRefused listing them -- unless ``allow_data_loss``; on
        SQLite it then also requires ``backups`` and takes one first. A dry run reports the
        losses in ``RunResult.losses`` instead.
        """
        self._on_wait = on_wait

        def plan(status):
            refuse_failed(status, self.hint)
            applied = [e for e in status.entries if e.state not in ('pending', 'failed')]
            self._check_target(status, target, applied, verb='applied')
            todo = []
            for entry in reversed(applied):
                if entry.script is None:
                    raise MigrationError("cannot roll back %s: its script file is missing"
                                         % entry.name)
                todo.append(entry)
                if target is None or entry.name == target:
                    break
            changed = [e.name for e in todo if e.changed]
            if changed:
                raise ChecksumMismatch(changed, self.hint('accept', 'NAME'))
            return [(e.script, e.script.load(('down',)), 'reverted', []) for e in todo]

        return self._run(plan, 'down', dry_run=dry_run, on_script=on_script,
                         on_backup=on_backup, allow_data_loss=allow_data_loss)

    def repair(self, mode=None, on_script=None, *, allow_data_loss=False):
        """MySQL/MariaDB: deal with the scripts that failed partway (modelstore.engine.nontx):
        revert their completed operations, or (``mode`` 'applied' / 'reverted') record an
        operator's manual fix. Returns [(name, direction, action, steps)].

        A revert that would drop a column holding values (other than NULL and its default) or
        a table holding rows raises DataLossRefused listing them, as rollback does -- unless
        ``allow_data_loss``."""
        with raising(MigrationError, 'repair on %s' % self.label):
            return repair(self, mode, on_script, allow_data_loss)

    def accept(self, names=None):
        """Record the current checksum of changed applied scripts (all changed if no names)."""
        with raising(MigrationError, 'accept on %s' % self.label), \
                run_lock(self.database, self.lock_timeout):
            status = self.status()
            by_name = {e.name: e for e in status.entries}
            names = status.changed if names is None else list(names)
            for name in names:
                entry = by_name.get(name)
                if entry is None or entry.state == 'pending':
                    raise MigrationError('cannot accept %s: it is not an applied script' % name)
                if entry.script is None:
                    raise MigrationError('cannot accept %s: its script file is missing' % name)
            with self.database.atomic():
                self.history.forget()
                self.history.ensure()
                for name in names:
                    self.history.set_checksum(name, by_name[name].script.checksum)
        return names

    def _check_target(self, status, target, candidates, verb='known'):
        if target is None:
            return
        if target not in {e.name for e in candidates}:
            known = ', '.join(e.name for e in candidates) or 'none'
            raise MigrationError('unknown migration target %r (%s scripts: %s)'
                                 % (target, verb, known))

    def _run(self, plan, direction, *, dry_run, on_script=None, on_backup=None, analyse=False,
             allow_data_loss=False):
        try:
            return self._run_locked(plan, direction, dry_run=dry_run, on_script=on_script,
                                    on_backup=on_backup, analyse=analyse,
                                    allow_data_loss=allow_data_loss)
        except (DatabaseError, sqlite3.Error) as exc:
            # Outside the scripts: reading the history, the backup's read, the final COMMIT
            # (SQLITE_FULL, IOERR). Nothing of the run after the last commit is kept.
            raise MigrationError('%s of %s failed: %s: %s; %s' % (
                'migration' if direction == 'up' else 'rollback', self.label,
                type(exc).__name__, exc, 'no script of this run was applied'
                if dialect_of(self.database).one_transaction_per_run else
                'the scripts committed before it stay applied')) from exc

    def _run_locked(self, plan, direction, *, dry_run, on_script, on_backup, analyse,
                    allow_data_loss):
        """Lock, read, plan, guard against losses, back up, apply, report: in that order."""
        losses = []
        backup = None
        self.history.forget()
        with run_lock(self.database, self.lock_timeout) as lock:
            # Where the lock's transaction holds every script (SQLite), a script is committed
            # only when the lock is released: it is reported then, never before.
            deferred = lock.commits_at_exit and not dry_run
            status = self.status(analyse=analyse)
            self._interrupted = {e.name for e in status.entries if e.interrupted}
            if self.backups is not None and not dry_run:
                self.backups.remove_partials()  # Even when there is nothing to do.
            todo = plan(status)
            if not todo:
                return RunResult([], dry_run, status.adoption)
            if direction == 'down':
                losses = self._refuse_losses(todo, dry_run, allow_data_loss, status)
            if self.backups is not None and not dry_run and status.data_tables:
                backup = self.backups.take(schema_version(status))
                if on_backup is not None:
                    on_backup(backup)
            runs, failure, reported = self._apply(lock, todo, direction, dry_run, on_script,
                                                  deferred)
            if deferred and not lock.still_open():
                self._rolled_back_by_sqlite(direction, failure, runs[:reported])
            if dry_run:
                lock.discard()
        if deferred and on_script is not None:
            for run in runs[reported:]:  # Committed now.
                on_script(run)
        if failure is not None:
            exc, script = failure
            if isinstance(exc, ScriptError):
                raise exc
            raise ScriptError(script.name, '%s failed and was rolled back: %s: %s'
                              % (direction, type(exc).__name__, exc)) from exc
        return RunResult(runs, dry_run, status.adoption, backup, losses)

    def _refuse_losses(self, todo, dry_run, allow_data_loss, status):
        """What the rollback would destroy; raises unless allowed (and backed up on SQLite)."""
        losses = foresee_losses(self.database, todo, [e.script for e in status.entries
                                                      if e.state == 'applied'])
        if losses and not (allow_data_loss or dry_run):
            raise DataLossRefused(self.label, losses)
        if losses and not dry_run and self.backups is None \
                and dialect_of(self.database).embedded:
            raise MigrationError('a rollback that destroys data (%s) takes a backup first; it '
                                 'cannot run without one (drop --no-backup)' % '; '.join(losses))
        return losses

    def _apply(self, lock, todo, direction, dry_run, on_script, deferred):
        """Run the scripts in order until one fails; returns (runs, (exception, script) or
        None, how many runs were reported already). A dry run does it all in a transaction
        that is rolled back. With ``deferred`` (the lock's transaction holds the scripts) a run
        is reported once committed: at an online script's checkpoint, else by the caller."""
        if dry_run and self.logged:  # MySQL: DDL cannot be rolled back.
            return dry_run_on_shadow(self, todo, direction, on_script)
        runs, failure, reported = [], None, 0
        outer = self.database.atomic() if dry_run else contextlib.nullcontext()
        with outer as txn:
            for script, module, method, kept in todo:
                online = not dry_run and direction == 'up' and method == 'ran' \
                    and callable(getattr(module, 'online', None))
                lock.verify()
                if online:
                    self._checkpoint(lock, script, runs[reported:], on_script)
                    reported = len(runs)
                try:
                    if online:
                        run = run_online(self, lock, script, module)
                    else:
                        run = self._run_script(lock, script, module, direction, method, kept)
                except Exception as exc:
                    failure = exc, script
                    break
                runs.append(run)
                if on_script is not None and (online or not deferred):
                    on_script(run)
                    reported = len(runs)
            if dry_run:
                txn.rollback()
        return runs, failure, reported

    def _checkpoint(self, lock, script, unreported, on_script):
        """Commit the run so far (SQLite) before an online script, and report what it held."""
        try:
            committed = lock.checkpoint()
        except (DatabaseError, sqlite3.Error) as exc:
            raise MigrationError('committing the scripts before %s failed: %s: %s; no script '
                                 'of this run was applied' % (script.name, type(exc).__name__,
                                                              exc)) from exc
        if committed and on_script is not None:
            for run in unreported:
                on_script(run)

    def _rolled_back_by_sqlite(self, direction, failure, committed):
        """SQLite rolled the run's transaction back by itself (SQLITE_FULL, IOERR, CORRUPT):
        not even the scripts that succeeded are applied (but those an online script's
        checkpoint committed)."""
        kept = ('only %s stayed applied' % ', '.join(r.name for r in committed) if committed
                else 'no script of it was applied')
        if failure is not None:
            exc, script = failure
            raise ScriptError(script.name, '%s failed: %s: %s; SQLite then rolled back the '
                              'run, so %s' % (direction, type(exc).__name__, exc, kept)) from exc
        raise MigrationError('SQLite rolled back the run on %s, so %s' % (self.label, kept))

    def _run_script(self, lock, script, module, direction, method, kept):
        def attempt():
            try:
                return self._attempt(lock, script, module, direction, method, kept)
            except NeedBaseline:
                # The script's savepoint is undone: read the violations that were already there
                # (a legacy file may hold orphans) and run it again, telling new from old.
                lock.watch.read_baseline()
                self.history.forget()
                return self._attempt(lock, script, module, direction, method, kept)
        return self.ddl.run(script.name, attempt, self._on_wait)  # Retried after lock waits.

    def _attempt(self, lock, script, module, direction, method, kept):
        if self.logged:
            return attempt_logged(self, script, module, direction, method, kept)
        db = self.database
        recorder = Recorder(db)
        migrator = recorder.migrator()
        # Inside the SQLite lock (or a dry run) there is always an outer transaction, so even
        # an `atomic = False` script gets a savepoint and cannot leave half its work behind.
        atomic = getattr(module, 'atomic', True) or db.in_transaction()
        # Otherwise (PostgreSQL: CREATE INDEX CONCURRENTLY cannot run in a transaction) the
        # history says `running` while it runs, so a run that dies halfway is never taken for
        # done nor its effect for absent: the next migrate runs it again or adopts its effect.
        exposed = not atomic and method in ('ran', 'reverted')
        if exposed:
            self.history.ensure()
            self.history.mark_running(script.name, checksum=script.checksum,
                                      version=__version__)
        start = time.perf_counter()
        try:
            with migrator.migration_context(atomic):
                if atomic:
                    self.ddl.set_local()
                if method in ('ran', 'reverted'):
                    lock.watch.mark()
                    with recorder:
                        getattr(module, direction)(migrator, db)
                    lock.watch.check()
                duration = time.perf_counter() - start
                # Created (or upgraded) in the script's own transaction: a first script that
                # fails must not leave an empty history table behind.
                self.history.ensure()
                if direction == 'up':
                    self.history.record(script.name, checksum=script.checksum, method=method,
                                        duration=duration, version=__version__,
                                        replace=exposed or script.name in self._interrupted)
                else:
                    self.history.remove(script.name)
        except BaseException:
            if exposed and direction == 'up':
                self.history.remove(script.name)  # Not applied; a half-built index is ignored.
            raise  # (A failed down stays `running`: pending, so migrate restores it.)
        return ScriptRun(script.name, direction, method, duration, recorder.steps, kept)
