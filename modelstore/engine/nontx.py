"""Scripts on a database whose DDL commits (MySQL, MariaDB): every operation recorded as it runs.

MySQL cannot roll DDL back: each ALTER commits by itself, so a script that fails after its second
ALTER leaves the first applied, and a run killed halfway leaves whatever had completed. The tools
that lose track of the schema are the ones that then record nothing. Here (Flyway's model):

* before its first statement, the script's history row says ``running``; its ``operations``
  column holds a log, rewritten (and committed) before and after every statement:
  ``{"direction": "up", "done": [operation, ...], "doing": operation or null}``, where an
  operation is ``{"description", "sql": [statements that completed], "undo": [...] or null}``;
* a script that completes is recorded ``ran`` with its log; one that raises is recorded
  ``failed``, with the operations that did complete and the error; one whose run died
  (kill -9, a lost connection) is left ``running`` with its log -- the same case, found by the
  next run under the lock;
* ``status`` and ``check`` show such a script, and ``migrate`` refuses to go on until
  ``modelstore repair`` has reverted its completed operations with their inverses (``undo``:
  DROP COLUMN for an ADD COLUMN, DROP INDEX for a CREATE INDEX, the other name for a rename...)
  or, after a manual fix, recorded it applied (``--mark-applied``) or not (``--mark-reverted``).

An operation that was started but not recorded complete (the run died during it) is *in doubt*:
repair looks at the schema to see whether it took effect (the table, column, index or trigger is
there), and undoes it only if so. An operation without a known inverse (a DROP COLUMN: its values
are gone; an UPDATE) makes the automatic repair refuse, naming it.
"""
import json
import re
import time

from playhouse.migrate import make_index_name

from ..exceptions import MigrationError, ScriptError, ScriptFailedPartway, one_line
from ..version import __version__
from .history import FAILED, RUNNING
from .results import ScriptRun
from .shadow import mysql_shadow, replay
from .steps import Recorder

__all__ = ['OperationLog', 'undo_of_operation', 'undo_of_sql', 'statements_undo', 'took_effect',
           'is_log', 'attempt_logged', 'refuse_failed', 'dry_run_on_shadow', 'failure_note']

# Each migrator operation's inverse, as (migrator method, the argument positions it takes).
_INVERSE_OPS = {
    'add_column': ('drop_column', (0, 1)),
    'rename_column': ('rename_column', (0, 2, 1)),
    'rename_table': ('rename_table', (1, 0)),
    'add_not_null': ('drop_not_null', (0, 1)),
    'drop_not_null': ('add_not_null', (0, 1)),
    'add_column_default': ('drop_column_default', (0, 1)),
}

_NAME = r'[`"]?([\w$]+)[`"]?'
_IF_NOT_EXISTS = r'(?:IF\s+NOT\s+EXISTS\s+)?'
# Statements whose inverse is known from their text: (pattern, inverse, what makes it present).
_SQL_INVERSES = (
    (re.compile(r'\s*CREATE\s+TABLE\s+' + _IF_NOT_EXISTS + _NAME, re.I),
     lambda m: 'DROP TABLE `%s`' % m[1], lambda m: ('table', m[1])),
    (re.compile(r'\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+' + _IF_NOT_EXISTS + _NAME + r'\s+ON\s+'
                + _NAME, re.I),
     lambda m: 'DROP INDEX `%s` ON `%s`' % (m[1], m[2]), lambda m: ('index', m[2], m[1])),
    (re.compile(r'\s*ALTER\s+TABLE\s+' + _NAME + r'\s+ADD\s+(?:COLUMN\s+)?(?!INDEX\b|KEY\b|'
                r'UNIQUE\b|CONSTRAINT\b|PRIMARY\b|FOREIGN\b|IF\s)' + _NAME, re.I),
     lambda m: 'ALTER TABLE `%s` DROP COLUMN `%s`' % (m[1], m[2]),
     lambda m: ('column', m[1], m[2])),
    (re.compile(r'\s*CREATE\s+(?:DEFINER\s*=\s*\S+\s+)?TRIGGER\s+(?!IF\s)' + _NAME, re.I),
     lambda m: 'DROP TRIGGER `%s`' % m[1], lambda m: ('trigger', m[1])),
)


def undo_of_operation(op):
    """The inverse of a playhouse.migrate Operation as ``{"op", "args"}``, or None."""
    name, args = op.fn.__name__, op.args
    if name in _INVERSE_OPS:
        method, positions = _INVERSE_OPS[name]
        if len(args) > max(positions):
            return {'op': method, 'args': [args[i] for i in positions]}
    if name == 'add_index':
        table, columns = args[0], list(args[1])
        index = op.kwargs.get('name') or (args[3] if len(args) > 3 else None)
        if index is None:  # The name playhouse.migrate gives it.
            index = make_index_name(table, columns)
        return {'op': 'drop_index', 'args': [table, index]}
    return None


def undo_of_sql(sql):
    """(inverse statement, what shows it took effect) of a statement, or (None, None)."""
    for pattern, inverse, effect in _SQL_INVERSES:
        match = pattern.match(sql)
        if match:
            return inverse(match), list(effect(match))
    return None, None


def is_log(text):
    """Whether ``text`` (a history row's ``operations``) is an operations log."""
    try:
        log = json.loads(text) if text else None
    except ValueError:
        return False
    return isinstance(log, dict) and 'done' in log


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
        """A migrator operation starts."""
        self.log['doing'] = {'description': description, 'sql': [],
                             'undo': undo_of_operation(op), 'statement': None}
        self._write()

    def before_statement(self, sql, description):
        """A statement is about to run (outside an operation: it is one of its own)."""
        if self.log['doing'] is None:
            self.log['doing'] = {'description': description, 'sql': [], 'undo': None,
                                 'statement': None, 'single': True}
        doing = self.log['doing']
        doing['statement'] = sql
        if re.search(r'\bIF\s+NOT\s+EXISTS\b', sql, re.I):
            # Nothing to undo if what it creates is there already: it will do nothing.
            _, effect = undo_of_sql(sql)
            if effect is None or took_effect(self.history.database, effect):
                doing.setdefault('noop', []).append(sql)
        self._write()

    def after_statement(self, sql):
        doing = self.log['doing']
        if doing is None:
            return
        doing['sql'].append(sql)
        doing['statement'] = None
        if doing.get('single'):
            self.end_operation()
        else:
            self._write()

    def end_operation(self):
        doing = self.log['doing']
        if doing is not None:
            self.log['done'].append({'description': doing['description'],
                                     'sql': [sql for sql in doing['sql']
                                             if sql not in doing.get('noop', ())],
                                     'undo': doing['undo']})
            self.log['doing'] = None
            self._write()

    def _write(self):
        self.history.set_operations(self.name, self.text())


def statements_undo(statements):
    """The inverses of ``statements``, last first; None if one of them has none."""
    undo = []
    for sql in reversed(statements):
        if sql.lstrip().upper().startswith(('SELECT', 'SHOW')):
            continue
        inverse, _ = undo_of_sql(sql)
        if inverse is None:
            return None
        undo.append({'sql': inverse})
    return undo


def took_effect(database, effect):
    if not effect:
        return False
    kind, *names = effect
    tables = database.get_tables()
    if kind == 'table':
        return names[0] in tables
    if kind == 'column':
        return names[0] in tables and names[1] in [c.name for c in database.get_columns(names[0])]
    if kind == 'index':
        return names[0] in tables and names[1] in [i.name for i in database.get_indexes(names[0])]
    if kind == 'trigger':
        return bool(database.execute_sql(
            'SELECT 1 FROM information_schema.triggers WHERE trigger_schema = DATABASE() AND '
            'trigger_name = %s', (names[0],)).fetchone())
    return False


# -- the engine's side: running a script with its log ------------------------------------------

def attempt_logged(engine, script, module, direction, method, kept):
    """Run one script on a database whose DDL commits, its log in its history row; returns the
    ScriptRun. Raises ScriptFailedPartway when it failed after something had completed."""
    db, history, name = engine.database, engine.history, script.name
    history.ensure()
    if method in ('adopted', 'faked'):
        history.record(name, checksum=script.checksum, method=method, duration=0.0,
                       version=__version__, replace=name in engine._interrupted)
        return ScriptRun(name, direction, method, 0.0, [], kept)
    log = OperationLog(history, name, direction)
    if direction == 'up':
        history.mark_running(name, checksum=script.checksum, version=__version__,
                             operations=log.text())
    else:
        history.set_operations(name, log.text(), method=RUNNING)
    recorder = Recorder(db, log)
    migrator = recorder.migrator()
    start = time.perf_counter()
    try:
        with migrator.migration_context(False):
            engine.ddl.set_local()
            try:
                with recorder:
                    getattr(module, direction)(migrator, db)
            finally:
                engine.ddl.reset()
    except BaseException as exc:
        _failed(engine, script, direction, log, exc)
        raise
    duration = time.perf_counter() - start
    if direction == 'up':
        history.record(name, checksum=script.checksum, method=method, duration=duration,
                       version=__version__, replace=True, operations=log.text())
    else:
        history.remove(name)
    return ScriptRun(name, direction, method, duration, recorder.steps, kept)


def _failed(engine, script, direction, log, exc):
    """Record the failure: nothing completed -- as before the script; else ``failed``."""
    history, name = engine.history, script.name
    nothing = not log.log['done'] and not (log.log['doing'] or {}).get('sql')
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
                                 one_line(exc), engine.hint('repair'),
                                 engine.hint('repair', '--mark-applied')), done) from exc


def _applied_method(script, history):
    for record in history.read():
        if record.name == script.name:
            return record.method if record.method not in (RUNNING, FAILED) else 'ran'
    return 'ran'


def failure_note(entry):
    """One line on a failed script: how far it got, and why it stopped."""
    record = entry.record
    log = json.loads(record.operations) if is_log(record.operations) else {'done': []}
    done, doing = log['done'], log.get('doing')
    return '%s after %d completed operation%s%s%s%s' % (
        'failed' if record.method == FAILED else 'its run died (or is still running)',
        len(done), '' if len(done) == 1 else 's',
        ' (%s)' % '; '.join(op['description'] for op in done) if done else '',
        ', during: %s' % doing['description'] if doing else '',
        ': %s' % record.error if record.error else '')


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


def dry_run_on_shadow(engine, todo, direction, on_script):
    """A dry run on MySQL, where DDL cannot be rolled back: the applied scripts are replayed on a
    throwaway database beside the real one (modelstore.engine.shadow), then ``todo`` runs there,
    recorded; the real database is only read. Returns what ``Engine._apply`` does. The SQL is
    the scripts' for this schema; what depends on the rows (an online script's batches) is
    shown as it runs on no rows."""
    applied = [e.script for e in engine.status().entries if e.state == 'applied' and e.script]
    runs, failure = [], None
    with mysql_shadow(engine.database) as shadow:
        try:
            replay(applied, shadow)
        except ScriptError as exc:
            raise MigrationError('the dry run replays the applied scripts on a throwaway '
                                 'database first, and that failed: %s' % exc) from exc
        for script, module, method, kept in todo:
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
            if on_script is not None:
                on_script(runs[-1])
    return runs, failure, len(runs)
