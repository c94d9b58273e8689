"""Scripts on a database whose DDL commits (MySQL, MariaDB): every operation recorded as it runs.

MySQL cannot roll DDL back: each ALTER commits by itself, so a script that fails after its second
ALTER leaves the first applied, and a run killed halfway leaves whatever had completed. The tools
that lose track of the schema are the ones that then record nothing. Here (Flyway's model):

* before its first statement, the script's history row says ``running``; its ``operations``
  column holds a log, rewritten (and committed) before and after every statement:
  ``{"direction": "up", "done": [operation, ...], "doing": operation or null}``, where an
  operation is ``{"description", "sql": [statements that completed], "undo": [...] or null}``
  (while it runs, a migrator operation's also holds ``effect``, the state that shows it took
  effect, and ``there`` if that state was there before it started);
* a script that completes is recorded ``ran`` with its log; one that raises is recorded
  ``failed``, with the operations that did complete and the error; one whose run died
  (kill -9, a lost connection) is left ``running`` with its log -- the same case, found by the
  next run under the lock;
* ``status`` and ``check`` show such a script, and ``migrate`` refuses to go on until
  ``modelstore repair`` has reverted its completed operations with their inverses (``undo``:
  DROP COLUMN for an ADD COLUMN, DROP INDEX for a CREATE INDEX, the other name for a rename...)
  or, after a manual fix, recorded it applied (``--mark-applied``) or not (``--mark-reverted``).

What undoes an operation and what shows it took effect come from the catalogue of operations
(modelstore.engine.operations), asked with the Operation itself; a statement run outside
``migrator.migrate()`` (and the statements of an operation the catalogue cannot see the effect
of) is read by its fallback for raw SQL. An operation whose effect is there before it starts
made nothing (its statements fail, or change nothing), and is recorded so.

A statement the server refused (an unknown column, a syntax error, a column that exists) took
no effect (modelstore.engine.operations says when that is certain): it leaves the log as it fails.
One whose object was there before it ran made nothing, and is recorded so: repair never undoes
what the run did not create. What each statement made is identified in the log's ``made``
(``{"column.t.c": [its type]...}``) for repair to check that what it drops is still that.

A statement that was started but not recorded complete or refused (the run died during it, the
connection was lost) is *in doubt*: repair looks at the schema to see whether it took effect
(the table, column, index or trigger is there), and undoes it only if so. An operation without a
known inverse (a DROP COLUMN: its values are gone; an UPDATE) makes the automatic repair refuse,
naming it.
"""
import json
import time

from ..exceptions import MigrationError, ScriptError, ScriptFailedPartway, one_line
from ..version import __version__
from .history import FAILED, RUNNING, is_log
from .operations import (RawSQL, effect_key, effect_of_operation, identity,
                         refused_without_effect, took_effect, undo_of_operation)
from .run_results import ScriptRun
from .shadow import mysql_shadow, replay
from .steps import Recorder

__all__ = ['OperationLog', 'Logged', 'attempt_logged', 'refuse_failed', 'dry_run_on_shadow']


class OperationLog:
    """The log of one script's run, written to its history row before and after each
    statement (autocommit: each write is committed at once)."""

    def __init__(self, history, name, direction):
        self.history = history
        self.name = name
        self.log = {'direction': direction, 'done': [], 'doing': None}

    def text(self):
        return json.dumps(self.log, sort_keys=True)

    @property
    def completed(self):
        return [op['description'] for op in self.log['done']]

    # The Recorder's callbacks (modelstore.engine.steps).

    def begin_operation(self, description, op):
        """A migrator operation starts: the catalogue gives its inverse and the state that
        shows it took effect -- if that is there already, the operation makes nothing."""
        effect = effect_of_operation(op)
        self.log['doing'] = {'description': description, 'sql': [],
                             'undo': undo_of_operation(op), 'statement': None, 'effect': effect}
        if effect is not None and took_effect(self.history.database, effect):
            self.log['doing']['there'] = True
        self._write()

    def before_statement(self, sql, description):
        """A statement is about to run (outside an operation: it is one of its own)."""
        if self.log['doing'] is None:
            self.log['doing'] = {'description': description, 'sql': [], 'undo': None,
                                 'statement': None, 'single': True}
        doing = self.log['doing']
        doing['statement'] = sql
        if doing.get('effect') is not None:
            made_nothing = doing.get('there')
        else:  # Raw SQL, or an operation whose effect the catalogue cannot see.
            effect = RawSQL.effect(sql)
            # What is there before the statement runs is not its work: it will fail, or (IF
            # NOT EXISTS) do nothing, and repair must never undo it.
            made_nothing = RawSQL.guarded(sql) if effect is None else \
                took_effect(self.history.database, effect)
        if made_nothing:
            doing.setdefault('noop', []).append(sql)
        self._write()

    def after_statement(self, sql):
        doing = self.log['doing']
        if doing is None:
            return
        doing['sql'].append(sql)
        doing['statement'] = None
        if sql not in doing.get('noop', ()):
            self._identify(doing, sql)
        if doing.get('single'):
            self.end_operation()
        else:
            self._write()

    def _identify(self, doing, sql):
        """Record what identifies the object a statement made, for repair to check before it
        drops it: the operation's (once, after the statement that made it), or the raw
        statement's."""
        database = self.history.database
        if doing.get('effect') is not None:
            effect = doing['effect']
            if effect[0] in _MADE and not doing.get('identified'):
                found = identity(database, effect)
                if found:
                    self.log.setdefault('made', {})[effect_key(effect)] = found
                    doing['identified'] = True
            return
        effect = RawSQL.effect(sql)
        if effect is not None:
            self.log.setdefault('made', {})[effect_key(effect)] = identity(database, effect)

    def statement_failed(self, sql, exc):
        """A statement raised ``exc``. If the server refused it, nothing of it took effect:
        it leaves the log (else it stays in doubt, for repair to look at the schema)."""
        doing = self.log['doing']
        if doing is None or doing.get('statement') != sql or \
                not refused_without_effect(self.history.database, exc):
            return
        doing['statement'] = None
        if doing.get('single'):
            self.log['doing'] = None
        try:
            self._write()
        except Exception:  # noqa: BLE001 -- the row keeps the statement in doubt: still true.
            pass

    def end_operation(self):
        doing = self.log['doing']
        if doing is not None:
            made = [sql for sql in doing['sql'] if sql not in doing.get('noop', ())]
            # An operation whose statements all found their work done made nothing to undo.
            self.log['done'].append({'description': doing['description'], 'sql': made,
                                     'undo': doing['undo'] if made else None})
            self.log['doing'] = None
            self._write()

    def _write(self):
        self.history.set_operations(self.name, self.text())


# The effects that name an object made (which ``identity`` describes).
_MADE = ('table', 'column', 'index', 'trigger')


class _LoggingRecorder(Recorder):
    """The Recorder that also tells the log of a statement that raised."""

    def _hook(self, event):
        if event.exception is not None and self._mine(event.sql):
            with self._logging():
                self.log.statement_failed(event.sql, event.exception)
            return
        super()._hook(event)


# -- the run's side: running a script with its log ---------------------------------------------

class Logged:
    """A Run's strategy where DDL commits (modelstore.engine.run): each script's operations
    logged as they run; a dry run on a throwaway database."""

    def attempt(self, run, script, module, direction, method, kept):
        return attempt_logged(run, script, module, direction, method, kept)

    def dry_run(self, run, todo, direction):
        return dry_run_on_shadow(run, todo, direction)


def attempt_logged(run, script, module, direction, method, kept):
    """Run one script on a database whose DDL commits, its log in its history row; returns the
    ScriptRun. Raises ScriptFailedPartway when it failed after something had completed."""
    db, history, name = run.database, run.history, script.name
    history.ensure()
    if method in ('adopted', 'faked'):
        history.record(name, checksum=script.checksum, method=method, duration=0.0,
                       version=__version__, replace=name in run.interrupted,
                       phase=script.phase, note=run.note(script))
        return ScriptRun(name, direction, method, 0.0, [], kept)
    log = OperationLog(history, name, direction)
    if direction == 'up':
        history.mark_running(name, checksum=script.checksum, version=__version__,
                             operations=log.text(), phase=script.phase)
    else:
        history.set_operations(name, log.text(), method=RUNNING)
    recorder = _LoggingRecorder(db, log)
    migrator = recorder.migrator()
    start = time.perf_counter()
    try:
        with migrator.migration_context(False):
            run.ddl.set_local()
            try:
                with recorder:
                    getattr(module, direction)(migrator, db)
            finally:
                run.ddl.reset()
    except BaseException as exc:
        _failed(run, script, direction, log, exc)
        raise
    duration = time.perf_counter() - start
    if direction == 'up':
        history.record(name, checksum=script.checksum, method=method, duration=duration,
                       version=__version__, replace=True, operations=log.text(),
                       phase=script.phase, note=run.note(script))
    else:
        history.remove(name)
    return ScriptRun(name, direction, method, duration, recorder.steps, kept)


def _failed(run, script, direction, log, exc):
    """Record the failure: nothing completed -- as before the script; else ``failed``."""
    history, name = run.history, script.name
    doing = log.log['doing'] or {}
    nothing = not log.log['done'] and not doing.get('sql') and not doing.get('statement')
    try:
        if nothing and isinstance(exc, Exception):
            if direction == 'up':
                history.remove(name)
            else:
                history.set_operations(name, None, method=_applied_method(script, history))
            return
        history.set_operations(name, log.text(), method=FAILED,
                               error='%s: %s' % (type(exc).__name__, one_line(exc)))
    except Exception:  # The connection is gone: the row stays `running`, which means the same.
        pass
    if not isinstance(exc, Exception):
        return
    done = log.completed
    raise ScriptFailedPartway(name, '%s failed after %d operation%s had completed (%s): %s: '
                              '%s. MySQL cannot roll DDL back, so they stay applied; the '
                              'history records the script as failed, with them. Run '
                              '`%s` to revert them (or, after fixing it by hand, `%s`)'
                              % (direction, len(done), '' if len(done) == 1 else 's',
                                 '; '.join(done) or 'part of one', type(exc).__name__,
                                 one_line(exc), run.hint('repair'),
                                 run.hint('repair', '--mark-applied')), done) from exc


def _applied_method(script, history):
    for record in history.read():
        if record.name == script.name:
            return record.method if record.method not in (RUNNING, FAILED) else 'ran'
    return 'ran'


def refuse_failed(status, hint):
    """Before migrate or rollback plans anything: ScriptFailedPartway for a failed script."""
    for entry in status.entries:
        if entry.failed:
            record = entry.record
            raise ScriptFailedPartway(entry.name, 'failed partway%s; migrate and rollback refuse '
                                      'to go on until `%s` has dealt with it' % (
                                          ' (%s)' % record.error if record.error else
                                          ' (its run died, or it is running now)',
                                          hint('repair')))


def dry_run_on_shadow(run, todo, direction):
    """A dry run on MySQL, where DDL cannot be rolled back: the applied scripts are replayed on a
    throwaway database beside the real one (modelstore.engine.shadow), then ``todo`` runs there,
    recorded; the real database is only read. Returns what ``Run.apply`` does. The SQL is
    the scripts' for this schema; what depends on the rows (an online script's batches) is
    shown as it runs on no rows."""
    applied = [e.script for e in run.status().entries if e.state == 'applied' and e.script]
    runs, failure = [], None
    with mysql_shadow(run.database) as shadow:
        try:
            replay(applied, shadow)
        except ScriptError as exc:
            raise MigrationError('the dry run replays the applied scripts on a throwaway '
                                 'database first, and that failed: %s' % exc) from exc
        for script, module, method, kept in todo:
            run.observer.script_started(script)
            recorder = Recorder(shadow)
            start = time.perf_counter()
            try:
                if method in ('ran', 'reverted'):
                    with recorder:
                        getattr(module, direction)(recorder.migrator(), shadow)
            except Exception as exc:
                failure = exc, script
                break
            runs.append(ScriptRun(script.name, direction, method, time.perf_counter() - start,
                                  recorder.steps, kept))
            run.observer.script_finished(runs[-1])
    return runs, failure, len(runs)
