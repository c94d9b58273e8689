"""One ``Run`` per ``Engine.migrate``, ``rollback`` or ``repair`` call: that call's state.

Every run follows the same order:

1. take the backend's run lock (bounded wait, then LockTimeout);
2. read the applied set *under the lock*;
3. plan and validate everything -- unknown target, a script without ``up``/``down`` or that does
   not load, an applied script whose file is gone, an applied script whose checksum changed --
   before the first script runs; a refusal changes nothing;
4. run each script with its history row written as its strategy says (below). A failing script
   gets no ``ran`` row; the scripts before it stay applied, and ScriptError names it.

How a script runs is the run's *strategy*, chosen once from the dialect's capability flag
(``operation_log``): ``Transactional`` (SQLite, PostgreSQL) runs each script in
``migration_context()``, a transaction or savepoint holding its history row too, so a failing
script is rolled back completely; ``Logged`` (MySQL/MariaDB, where DDL commits:
modelstore.engine.nontx) logs each script's operations in its history row as they run. A dry run
is the strategy's too: a transaction rolled back at the end, so the SQL it reports is exactly
what would run and nothing changes -- or, where DDL commits, the scripts on a throwaway database.

The run reports to one Observer (modelstore.engine.observer): backups, scripts started and
finished, an online script's progress, lock waits.
"""
import contextlib
import sqlite3
import time

from peewee import DatabaseError

from ..dialects import NeedBaseline, dialect_of, raising
from ..exceptions import (AdoptionRefused, ChecksumMismatch, ClientsAlive, DataLossRefused,
                          MigrationError, SchemaNewerThanCode, ScriptError)
from ..version import __version__
from .adopt import ADOPT, PARTIAL
from .batch_runner import run_online
from .clients import Clients
from .losses import foresee_losses
from .nontx import Logged, refuse_failed
from .repair import repair
from .run_results import RunResult, ScriptRun
from .scripts import CONTRACT, PHASES
from .status import schema_version
from .steps import Recorder

__all__ = ['Run', 'Transactional']


class Transactional:
    """Where DDL is transactional (SQLite, PostgreSQL): each script in a transaction or a
    savepoint with its history row; a dry run in one transaction rolled back at the end."""

    def dry_run(self, run, todo, direction):
        with run.database.atomic() as txn:
            result = run.apply(todo, direction, dry_run=True)
            txn.rollback()
        return result

    def attempt(self, run, script, module, direction, method, kept):
        db, history = run.database, run.history
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
            history.ensure()
            history.mark_running(script.name, checksum=script.checksum, version=__version__,
                                 phase=script.phase)
        start = time.perf_counter()
        try:
            with migrator.migration_context(atomic):
                if atomic:
                    run.ddl.set_local()
                if method in ('ran', 'reverted'):
                    run.lock.watch.mark()
                    with recorder:
                        getattr(module, direction)(migrator, db)
                    run.lock.watch.check()
                    if recorder.steps:  # It may have made or dropped the history table too.
                        history.expect(None)
                duration = time.perf_counter() - start
                # Created (or upgraded) in the script's own transaction: a first script that
                # fails must not leave an empty history table behind.
                history.ensure()
                if direction == 'up':
                    history.record(script.name, checksum=script.checksum, method=method,
                                   duration=duration, version=__version__,
                                   replace=exposed or script.name in run.interrupted,
                                   phase=script.phase, note=run.note(script))
                else:
                    history.remove(script.name)
        except BaseException:
            if exposed and direction == 'up':
                history.remove(script.name)  # Not applied; a half-built index is ignored.
            raise  # (A failed down stays `running`: pending, so migrate restores it.)
        return ScriptRun(script.name, direction, method, duration, recorder.steps, kept)


class Run:
    """One call's run: its observer, strategy, lock, plan (``todo``) and the scripts whose
    earlier run was interrupted. ``engine`` gives the database and its settings."""

    def __init__(self, engine, observer):
        self.engine = engine
        self.database, self.history, self.ddl = engine.database, engine.history, engine.ddl
        self.label, self.hint, self.lock_timeout = engine.label, engine.hint, engine.lock_timeout
        self.backups, self.directory = engine.backups, engine.directory
        self.observer = observer
        self.strategy = Logged() if dialect_of(self.database).operation_log \
            else Transactional()
        self.lock = None
        self.todo = []
        self.held_back = []  # migrate --phase: pending scripts left for the other phase
        self.interrupted = frozenset()
        self.notes = {}  # script name -> an override this run recorded in its history row
        self.offline = False  # migrate(offline=True): online scripts make no room for writers

    def status(self, analyse=False):
        return self.engine.status(analyse=analyse)

    @contextlib.contextmanager
    def locked(self):
        """The run lock, held by this run while the block runs."""
        with dialect_of(self.database).run_session(self.database, self.lock_timeout) as lock:
            self.lock = lock
            try:
                yield lock
            finally:
                self.lock = None

    # -- the three calls --------------------------------------------------------------------

    def migrate(self, target=None, *, dry_run=False, fake=False, precondition=None,
                phase=None, force=False, offline=False):
        self.offline = bool(offline)
        if phase is not None and phase not in PHASES:
            raise MigrationError('unknown phase %r: expected %s' % (phase, ' or '.join(PHASES)))

        def plan(status):
            if precondition is not None:
                precondition(status)
            todo = self._plan_up(status, target, fake, phase)
            self._wait_for_old_clients(todo, force)
            return todo

        # --fake is the operator's override: it records without looking at the schema.
        return self._execute(plan, 'up', dry_run=dry_run, analyse=not fake)

    def rollback(self, target=None, *, dry_run=False, allow_data_loss=False):
        return self._execute(lambda status: self._plan_down(status, target), 'down',
                             dry_run=dry_run, allow_data_loss=allow_data_loss)

    def repair(self, mode=None, allow_data_loss=False):
        with raising(MigrationError, 'repair on %s' % self.label):
            return repair(self, mode, allow_data_loss)

    # -- planning ---------------------------------------------------------------------------

    def _plan_up(self, status, target, fake, phase=None):
        refuse_failed(status, self.hint)
        if status.missing:
            raise SchemaNewerThanCode(self.label, status.missing, self.directory)
        if status.changed:
            raise ChecksumMismatch(status.changed, self.hint('accept', 'NAME'))
        _check_target(target, [e for e in status.entries if e.script])
        adoption = status.adoption
        if adoption is not None and adoption.problems:
            raise AdoptionRefused(self.label, adoption.problems, self.hint('migrate', '--fake'))
        todo, self.held_back = [], []
        for entry in status.entries:
            if entry.state == 'pending' and phase is not None \
                    and (self.held_back or entry.phase != phase):
                self.held_back.append(entry.name)  # Stopped before the other phase's first.
            elif entry.state == 'pending':
                module = entry.script.load(('up',))
                if fake:
                    todo.append((entry.script, module, 'faked', []))
                elif entry.plan == ADOPT:
                    todo.append((entry.script, module, 'adopted', []))
                else:
                    kept = adoption.present.get(entry.name, []) if entry.plan == PARTIAL else []
                    todo.append((entry.script, module, 'ran', kept))
            if entry.name == target:
                break
        return todo

    def _wait_for_old_clients(self, todo, force):
        """Refuse to run a contract script while a client built for an earlier schema is alive
        (modelstore.engine.clients) -- unless ``force``, which each such script's history row
        records."""
        contract = [script.name for script, _, method, _ in todo
                    if method == 'ran' and script.phase == CONTRACT]
        if not contract:
            return
        alive = Clients(self.database).alive_before(contract[-1])
        if alive and not force:
            raise ClientsAlive(self.label, contract, alive, self.hint('migrate', '--force'))
        if alive:
            self.notes = {name: 'run with --force while %d client%s built for an earlier '
                          'schema %s alive: %s' % (len(alive), '' if len(alive) == 1 else 's',
                                                   'was' if len(alive) == 1 else 'were',
                                                   '; '.join(c.describe() for c in alive))
                          for name in contract}

    def note(self, script):
        """What the history row of ``script`` records of an override, or None."""
        return self.notes.get(script.name)

    def _plan_down(self, status, target):
        refuse_failed(status, self.hint)
        applied = [e for e in status.entries if e.state not in ('pending', 'failed')]
        _check_target(target, applied, verb='applied')
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

    # -- running ----------------------------------------------------------------------------

    def _execute(self, plan, direction, *, dry_run, analyse=False, allow_data_loss=False):
        try:
            return self._execute_locked(plan, direction, dry_run, analyse, allow_data_loss)
        except (DatabaseError, sqlite3.Error) as exc:
            # Outside the scripts: reading the history, the backup's read, the final COMMIT
            # (SQLITE_FULL, IOERR). Nothing of the run after the last commit is kept.
            raise MigrationError('%s of %s failed: %s: %s; %s' % (
                'migration' if direction == 'up' else 'rollback', self.label,
                type(exc).__name__, exc, 'no script of this run was applied'
                if dialect_of(self.database).one_transaction_per_run else
                'the scripts committed before it stay applied')) from exc

    def _execute_locked(self, plan, direction, dry_run, analyse, allow_data_loss):
        """Lock, read, plan, guard against losses, back up, apply, report: in that order."""
        self.history.forget()
        with self.locked() as lock:
            # Where the lock's transaction holds every script (SQLite), a script is committed
            # only when the lock is released: it is reported then, never before.
            deferred = lock.commits_at_exit and not dry_run
            status = self._read_and_plan(plan, analyse, dry_run)
            if not self.todo:
                return RunResult([], dry_run, status.adoption, held_back=self.held_back)
            losses = self._refuse_losses(dry_run, allow_data_loss, status) \
                if direction == 'down' else []
            backup = None if dry_run else self._back_up(status)
            runs, failure, reported = self.strategy.dry_run(self, self.todo, direction) \
                if dry_run else self.apply(self.todo, direction, deferred=deferred)
            if deferred and not lock.still_open():
                self._rolled_back_by_sqlite(direction, failure, runs[:reported])
            if dry_run:
                lock.discard()
        if deferred:
            for run in runs[reported:]:  # Committed now.
                self.observer.script_finished(run)
        if failure is not None:
            _raise_failure(direction, *failure)
        return RunResult(runs, dry_run, status.adoption, backup, losses,
                         held_back=self.held_back)

    def _read_and_plan(self, plan, analyse, dry_run):
        """The status under the lock; ``todo`` planned from it. Returns the status."""
        status = self.status(analyse=analyse)
        self.history.expect(status.history_table)
        self.interrupted = {e.name for e in status.entries if e.interrupted}
        if self.backups is not None and not dry_run:
            self.backups.remove_partials()  # Even when there is nothing to do.
        self.todo = plan(status)
        return status

    def _back_up(self, status):
        """SQLite: a copy of a database that holds data, before the run changes it."""
        if self.backups is None or not status.data_tables:
            return None
        backup = self.backups.take(schema_version(status))
        self.observer.backup(backup)
        return backup

    def _refuse_losses(self, dry_run, allow_data_loss, status):
        """What the rollback would destroy; raises unless allowed (and backed up on SQLite)."""
        losses = foresee_losses(self.database, self.todo, [e.script for e in status.entries
                                                           if e.state == 'applied'])
        if losses and not (allow_data_loss or dry_run):
            raise DataLossRefused(self.label, losses)
        if losses and not dry_run and self.backups is None \
                and dialect_of(self.database).embedded:
            raise MigrationError('a rollback that destroys data (%s) takes a backup first; it '
                                 'cannot run without one (drop --no-backup)' % '; '.join(losses))
        return losses

    def apply(self, todo, direction, *, dry_run=False, deferred=False):
        """Run the scripts in order until one fails; returns (runs, (exception, script) or
        None, how many runs were reported already). With ``deferred`` (the lock's transaction
        holds the scripts) a run is reported once committed: at an online script's
        checkpoint, else by the caller."""
        runs, failure, reported = [], None, 0
        for script, module, method, kept in todo:
            online = not dry_run and direction == 'up' and method == 'ran' \
                and callable(getattr(module, 'online', None))
            self.lock.verify()
            if online:
                self._checkpoint(script, runs[reported:])
                reported = len(runs)
            self.observer.script_started(script)
            try:
                if online:
                    run = run_online(self, script, module)
                else:
                    run = self._run_script(script, module, direction, method, kept)
            except KeyboardInterrupt as exc:
                raise KeyboardInterrupt(self._interrupted(script, online)) from exc
            except Exception as exc:
                if _interrupt_in(exc):  # A cleanup on the connection the interrupt broke
                    # (MySQL's driver closes it) raised over the interrupt: still one.
                    raise KeyboardInterrupt(self._interrupted(script, online)) from exc
                failure = exc, script
                break
            runs.append(run)
            if online or not deferred:
                self.observer.script_finished(run)
                reported = len(runs)
        return runs, failure, reported

    def _interrupted(self, script, online):
        """What an interrupt (Ctrl-C) in ``script`` left: the message of the
        KeyboardInterrupt the run raises."""
        dialect = dialect_of(self.database)
        if online:
            left = ('an online script: the batches it committed stay, and the next migrate '
                    'resumes it where they stopped')
        elif dialect.operation_log:
            left = ('%s commits each DDL statement, so what the script completed stays, '
                    'recorded in its history row (`%s` shows it)'
                    % (dialect.label, self.hint('status')))
        elif dialect.one_transaction_per_run:
            left = ('it was rolled back, with every script of this run not yet committed '
                    '(`%s` shows what is applied)' % self.hint('status'))
        else:
            left = 'it was rolled back; the scripts before it stay applied'
        return 'interrupted during %s: %s' % (script.name, left)

    def _checkpoint(self, script, unreported):
        """Commit the run so far (SQLite) before an online script, and report what it held."""
        try:
            committed = self.lock.checkpoint()
        except (DatabaseError, sqlite3.Error) as exc:
            raise MigrationError('committing the scripts before %s failed: %s: %s; no script '
                                 'of this run was applied' % (script.name, type(exc).__name__,
                                                              exc)) from exc
        if committed:
            for run in unreported:
                self.observer.script_finished(run)

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

    def _run_script(self, script, module, direction, method, kept):
        def attempt():
            try:
                return self.strategy.attempt(self, script, module, direction, method, kept)
            except NeedBaseline:
                # The script's savepoint is undone: read the violations that were already there
                # (a legacy file may hold orphans) and run it again, telling new from old.
                self.lock.watch.read_baseline()
                self.history.forget()
                return self.strategy.attempt(self, script, module, direction, method, kept)
        # Retried after lock waits.
        return self.ddl.run(script.name, attempt, self.observer.lock_wait)


def _interrupt_in(exc):
    """True if a KeyboardInterrupt is among the exceptions ``exc`` was raised from or over."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _raise_failure(direction, exc, script):
    """The ScriptError a run that stopped at ``script`` raises."""
    if isinstance(exc, ScriptError):
        raise exc
    raise ScriptError(script.name, '%s failed and was rolled back: %s: %s'
                      % (direction, type(exc).__name__, exc)) from exc


def _check_target(target, candidates, verb='known'):
    if target is None:
        return
    if target not in {e.name for e in candidates}:
        known = ', '.join(e.name for e in candidates) or 'none'
        raise MigrationError('unknown migration target %r (%s scripts: %s)'
                             % (target, verb, known))
