"""``modelstore repair``: deal with a script that failed partway on MySQL/MariaDB.

The failed script's history row holds its operations log (modelstore.engine.nontx). Repair, under
the run lock, either reverts the operations that completed -- newest first, each with its inverse,
the log rewritten after each so that a repair that dies halfway is repaired again from what is
left -- or, after an operator's manual fix, records the script applied (``--mark-applied``:
method ``repaired``) or not applied (``--mark-reverted``: its row removed, so migrate runs it
again). A failed ``up`` reverted is pending again; a failed ``down`` reverted is applied again.
"""
import json

from ..exceptions import MigrationError
from .history import REPAIRED
from .lock import run_lock
from .nontx import is_log, statements_undo, took_effect, undo_of_sql
from .steps import Recorder

__all__ = ['MODES', 'repair', 'pending_undo', 'run_undo']


def pending_undo(database, text):
    """What repair must undo, newest first, from a log: [(description, undo list or None,
    'done' or 'doing')].

    A completed operation is undone by its inverse (or its statements' inverses). The one in
    progress when the run stopped, by the inverses of the statements it completed -- and of the
    one it had started, if the schema shows that took effect; one whose effect cannot be seen
    is in doubt (None)."""
    log = json.loads(text)
    todo = [(op['description'], [op['undo']] if op.get('undo') else
             statements_undo(op.get('sql') or ()), 'done') for op in log['done']]
    doing = log.get('doing')
    if doing:
        ran = [sql for sql in doing.get('sql') or () if sql not in doing.get('noop', ())]
        statement = doing.get('statement')
        if statement in doing.get('noop', ()):
            statement = None
        _, effect = undo_of_sql(statement) if statement else (None, None)
        if statement and effect is not None and took_effect(database, effect):
            ran.append(statement)
        if statement and effect is None:
            todo.append(('%s (interrupted during %s; whether that took effect cannot be told)'
                         % (doing['description'], ' '.join(statement.split())[:80]), None,
                         'doing'))
        elif ran:
            todo.append(('%s (interrupted)' % doing['description'], statements_undo(ran),
                         'doing'))
    return list(reversed(todo))


def run_undo(recorder, undo):
    """Run one operation's inverse (a list of ``{"op", "args"}`` or ``{"sql"}``), its steps
    recorded by ``recorder``."""
    database = recorder.database
    migrator = recorder.migrator()
    with recorder:
        for step in undo:
            if 'sql' in step:
                database.execute_sql(step['sql'])
            else:
                migrator.migrate(getattr(migrator, step['op'])(*step['args']))


MODES = (None, 'applied', 'reverted')


def repair(engine, mode=None, on_script=None):
    """``modelstore repair``: for each script the history records failed partway, revert its
    completed operations with their inverses (``mode`` None), or record it applied or not
    applied after a manual fix. Returns [(name, direction, action, steps)]."""
    if mode not in MODES:
        raise ValueError('mode must be one of %r' % (MODES,))
    done = []
    with run_lock(engine.database, engine.lock_timeout):
        engine.history.forget()
        status = engine.status()
        failed = [e for e in status.entries if e.failed]
        for entry in failed:
            done.append(_repair_one(engine, entry, mode))
            if on_script is not None:
                on_script(done[-1])
    return done


def _repair_one(engine, entry, mode):
    db, history, record = engine.database, engine.history, entry.record
    direction = json.loads(record.operations)['direction'] if is_log(record.operations) \
        else 'up'
    if mode == 'applied' or mode == 'reverted':
        applied = mode == 'applied'
        if applied:
            history.set_operations(entry.name, record.operations, method=REPAIRED,
                                   error=record.error)
        else:
            history.remove(entry.name)
        return entry.name, direction, 'marked %s' % ('applied' if applied else 'not applied'), []
    todo = pending_undo(db, record.operations) if is_log(record.operations) else []
    unknown = [description for description, undo, _ in todo if undo is None]
    if unknown:
        raise MigrationError(
            'cannot repair %s automatically: %s no known inverse (%s). Undo %s by hand and '
            'run `%s`, or finish the script by hand and run `%s`' % (
                entry.name, 'this operation has' if len(unknown) == 1 else
                'these operations have', '; '.join(unknown), 'it' if len(unknown) == 1 else
                'them', engine.hint('repair', '--mark-reverted' if direction == 'up' else
                                    '--mark-applied'),
                engine.hint('repair', '--mark-applied' if direction == 'up' else
                            '--mark-reverted')))
    recorder = Recorder(db)
    remaining = json.loads(record.operations)
    remaining['doing'] = remaining.get('doing') if any(s == 'doing' for *_, s in todo) else None
    for description, undo, source in todo:
        run_undo(recorder, undo)
        # Each reverted operation leaves the log, committed, so a repair that dies halfway is
        # repaired again from what is left.
        if source == 'doing':
            remaining['doing'] = None
        else:
            remaining['done'].pop()
        history.set_operations(entry.name, json.dumps(remaining, sort_keys=True))
    if direction == 'up':
        history.remove(entry.name)  # Not applied: migrate runs it again.
    else:
        history.set_operations(entry.name, None, method='ran', error=None)
    return entry.name, direction, 'reverted %d operation%s' % (
        len(todo), '' if len(todo) == 1 else 's'), recorder.steps
