"""The Engine: a database, its scripts and settings; status and accept, and a facade for runs.

``status`` and ``accept`` are here; each ``migrate``, ``rollback`` and ``repair`` call makes one
``Run`` (modelstore.engine.run), which holds that call's state -- its plan, its lock, the
scripts whose earlier run was interrupted, its Observer -- and runs it with the strategy the
dialect calls for (scripts in a transaction, or their operations logged where DDL commits).
"""
from importlib import import_module

from ..dialects import dialect_of, raising
from ..exceptions import MigrationError, StorageError
from ..shared.database import check_timeout
from ..shared.urls import command
from .adopt import Adoption, analyse
from .ddlwait import DDL_LOCK_TIMEOUT, DDL_RETRIES, DdlLocks
from .history import TABLE as HISTORY_TABLE, History
from ..shared.defaults import LOCK_TIMEOUT
from .observer import observing
from .scripts import discover
from .status import Entry, Status, script_number

__all__ = ['Engine', 'LOCK_TIMEOUT']



class Engine:
    """Migrate one database with the scripts in ``directory`` (default: the shipped ones).

    ``backups`` (a modelstore.engine.backup.Backups, SQLite only): a run that will change a
    database that has tables first copies it there, under the lock, and reports the path.
    """

    def __init__(self, database, directory=None, *, label=None, lock_timeout=LOCK_TIMEOUT,
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
            records = ({r.name: r for r in self.history.read(exists=True)}
                       if HISTORY_TABLE in tables else {})
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
            status.adoption = analyse(self.database, scripts, pending, status.tables)
        else:  # An empty database: every script runs.
            status.adoption = Adoption(verdicts={name: 'run' for name in pending})
        for entry in status.entries:
            entry.plan = status.adoption.verdicts.get(entry.name)

    # -- runs: one Run per call (modelstore.engine.run) ----------------------------------------
    # modelstore.engine.run is loaded by the first run, not with the Engine: ``status`` and the
    # registry's gate never run scripts, and the run's modules are half the engine's start-up
    # (issue 30).

    def _run(self, observer):
        return import_module('.run', __package__).Run(self, observer)

    def migrate(self, target=None, *, dry_run=False, fake=False, on_script=None,
                on_backup=None, precondition=None, on_progress=None, on_wait=None,
                observer=None, phase=None, force=False, offline=False):
        """Apply pending scripts in order (through ``target`` if given).

        ``phase`` ('expand' or 'contract'): only the pending scripts of that phase, stopping
        before the first script of the other; the rest are ``RunResult.held_back``. A contract
        script is refused (ClientsAlive) while a client built for an earlier schema is alive
        (modelstore.engine.clients), unless ``force``, which its history row records.

        An online script (modelstore.online) runs its batches outside the run's transaction,
        paced by contention (modelstore.engine.batch_runner); ``offline``: for a maintenance
        window, back to back in long batches, making no room for other writers.
        ``on_progress(Progress)`` is called after each batch. ``on_wait(LockWait)``: after a
        script timed out waiting for a lock, before it is tried again (PostgreSQL). The
        callbacks and ``observer`` (a modelstore.engine.observer.Observer) are told the same.
        """
        observer = observing(observer, on_script=on_script, on_backup=on_backup,
                             on_progress=on_progress, on_wait=on_wait)
        return self._run(observer).migrate(target, dry_run=dry_run, fake=fake,
                                          precondition=precondition, phase=phase,
                                          force=force, offline=offline)

    def rollback(self, target=None, *, dry_run=False, allow_data_loss=False, on_script=None,
                 on_backup=None, on_wait=None, observer=None):
        """Revert the last applied script, or every one back through ``target``.

        A rollback that would drop a table holding rows, or a column holding values other than
        its default, raises DataLossRefused listing them -- unless ``allow_data_loss``; on
        SQLite it then also requires ``backups`` and takes one first. A dry run reports the
        losses in ``RunResult.losses`` instead.
        """
        observer = observing(observer, on_script=on_script, on_backup=on_backup,
                             on_wait=on_wait)
        return self._run(observer).rollback(target, dry_run=dry_run,
                                           allow_data_loss=allow_data_loss)

    def repair(self, mode=None, on_script=None, *, allow_data_loss=False, observer=None):
        """MySQL/MariaDB: deal with the scripts that failed partway (modelstore.engine.nontx):
        revert their completed operations, or (``mode`` 'applied' / 'reverted') record an
        operator's manual fix. Returns [(name, direction, action, steps)].

        A revert that would drop a column holding values (other than NULL and its default) or
        a table holding rows raises DataLossRefused listing them, as rollback does -- unless
        ``allow_data_loss``."""
        return self._run(observing(observer, on_script=on_script)).repair(mode, allow_data_loss)

    def accept(self, names=None):
        """Record the current checksum of changed applied scripts (all changed if no names)."""
        with raising(MigrationError, 'accept on %s' % self.label), \
                dialect_of(self.database).run_session(self.database, self.lock_timeout):
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
