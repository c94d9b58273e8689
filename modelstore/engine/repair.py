"""``modelstore repair``: deal with a script that failed partway on MySQL/MariaDB.

The failed script's history row holds its operations log (modelstore.engine.nontx). Repair, under
the run lock, either reverts the operations that completed -- newest first, each with its inverse,
the log rewritten after each so that a repair that dies halfway is repaired again from what is
left -- or, after an operator's manual fix, records the script applied (``--mark-applied``:
method ``repaired``) or not applied (``--mark-reverted``: its row removed, so migrate runs it
again). A failed ``up`` reverted is pending again; a failed ``down`` reverted is applied again.

Before it changes anything, repair refuses (naming what, and changing nothing):

* an operation without a known inverse, or a statement in doubt whose effect cannot be seen;
* an object an inverse would drop that is no longer the one the script made (the log's
  ``made``: a column's type, a table's columns, an index's columns, a trigger's event);
* an inverse that would drop a column holding values other than NULL and its default, or a
  table holding rows -- DataLossRefused, as rollback refuses the same loss -- unless
  ``allow_data_loss`` (``--yes``).

Each step is idempotent: one whose object is gone already (a repair killed after it dropped the
column, before the log said so) is skipped, so the next repair finishes the work.
"""
import json

from ..exceptions import DataLossRefused, MigrationError, ValidationError
from .history import REPAIRED, is_log
from .operations import RawSQL, destroys, effect_key, identity, target, took_effect
from .losses import count_drops
from .steps import Recorder

__all__ = ['MODES', 'repair', 'pending_undo']

MODES = (None, 'applied', 'reverted')


def pending_undo(database, text):
    """What repair must undo, newest first, from a log: [(description, undo list or None,
    'done' or 'doing')].

    A completed operation is undone by its inverse (or its statements' inverses). The one in
    progress when the run stopped, by the inverses of the statements it completed -- and of the
    one it had started, if the schema shows that took effect; one whose effect cannot be seen
    is in doubt (None)."""
    log = json.loads(text)
    todo = [(op['description'], [op['undo']] if op.get('undo') else
             RawSQL.undo(op.get('sql') or ()), 'done') for op in log['done']]
    doing = log.get('doing')
    if doing:
        todo.append(_interrupted(database, doing))
    return list(reversed(todo))


def _interrupted(database, doing):
    """(description, undo list or None, 'doing') of the operation a run stopped in."""
    noop = doing.get('noop', ())
    ran = [sql for sql in doing.get('sql') or () if sql not in noop]
    statement = doing.get('statement') if doing.get('statement') not in noop else None
    description = '%s (interrupted)' % doing['description']
    effect = doing.get('effect')
    if effect is not None:  # An operation: the catalogue's effect shows whether it is done.
        if doing.get('there'):
            return description, [], 'doing'  # Its effect was there before: nothing is its.
        if took_effect(database, effect):
            return description, [doing['undo']] if doing.get('undo') else None, 'doing'
        if not ran:
            return description, [], 'doing'
    # Raw SQL (or an operation's statements, past what its effect shows): statement by
    # statement, the one in progress undone if the schema shows it took effect.
    effect = RawSQL.effect(statement) if statement else None
    if statement and effect is None:
        return ('%s (interrupted during %s; whether that took effect cannot be told)'
                % (doing['description'], ' '.join(statement.split())[:80]), None, 'doing')
    if effect is not None and took_effect(database, effect):
        ran.append(statement)
    return description, RawSQL.undo(ran), 'doing'


def repair(run, mode=None, allow_data_loss=False):
    """``modelstore repair`` (a modelstore.engine.run.Run's): for each script the history
    records failed partway, revert its completed operations with their inverses (``mode``
    None), or record it applied or not applied after a manual fix; each reported to the run's
    observer. Returns [(name, direction, action, steps)]."""
    if mode not in MODES:
        raise ValidationError('mode', 'must be None (revert), %s, got %r' % (
            ' or '.join(repr(m) for m in MODES[1:]), mode))
    if not isinstance(allow_data_loss, bool):
        raise ValidationError('allow_data_loss', 'must be True or False, got %r'
                              % (allow_data_loss,))
    done = []
    with run.locked():
        run.history.forget()
        for entry in [e for e in run.status().entries if e.failed]:
            script = _FailedScript(run, entry)
            done.append(script.revert(allow_data_loss) if mode is None
                        else script.mark(applied=mode == 'applied'))
            run.observer.script_finished(done[-1])
    return done


class _FailedScript:
    """A script the history records failed partway: its name, direction, operations log (None
    for a row without one) and the identities of what it made."""

    def __init__(self, run, entry):
        self.run, self.name, self.record = run, entry.name, entry.record
        self.log = json.loads(self.record.operations) if is_log(self.record.operations) else None
        self.direction = self.log['direction'] if self.log else 'up'
        self.made = (self.log or {}).get('made') or {}

    def mark(self, applied):
        """After a manual fix: record it applied (method ``repaired``) or not applied."""
        if applied:
            self.run.history.set_operations(self.name, self.record.operations,
                                            method=REPAIRED, error=self.record.error)
        else:
            self.run.history.remove(self.name)
        return (self.name, self.direction,
                'marked %s' % ('applied' if applied else 'not applied'), [])

    def revert(self, allow_data_loss):
        """Refuse first, then undo its completed operations newest first."""
        db = self.run.database
        if self.log is None:  # A row written by hand, or damaged: nothing says what it did.
            raise MigrationError(
                'cannot repair %s automatically: its history row holds no operations log, so '
                'what it did is not known. Undo it by hand and run `%s`, or finish the script '
                'by hand and run `%s`' % (self.name, *self._manual_hints()))
        todo = pending_undo(db, self.record.operations)
        self._refuse_unknown([description for description, undo, _ in todo if undo is None])
        losses = count_drops(db, self._check_plan(todo))
        if losses and not allow_data_loss:
            raise DataLossRefused(self.run.label, ['%s (reverting %s)' % (loss, self.name)
                                                   for loss in losses], action='repair',
                                  override='Engine.repair(allow_data_loss=True)', backup='')
        recorder = Recorder(db)
        reverted, skipped = self._undo(todo, recorder)
        if self.direction == 'up':
            self.run.history.remove(self.name)  # Not applied: migrate runs it again.
        else:
            self.run.history.set_operations(self.name, None, method='ran', error=None)
        action = 'reverted %d operation%s' % (reverted, '' if reverted == 1 else 's')
        if skipped:
            action += ' (%d found undone already)' % skipped
        return self.name, self.direction, action, recorder.steps

    def _undo(self, todo, recorder):
        """Run the inverses; each reverted operation leaves the log, committed, so a repair
        that dies halfway is repaired again from what is left. Returns (reverted, skipped)."""
        remaining = dict(self.log or {})
        if not any(source == 'doing' for *_, source in todo):
            remaining['doing'] = None
        reverted = skipped = 0
        for _, undo, source in todo:
            ran = sum(self._undo_step(recorder, step) for step in undo)
            reverted += ran > 0
            skipped += bool(undo) and ran == 0
            if source == 'doing':
                remaining['doing'] = None
            else:
                remaining['done'].pop()
            self.run.history.set_operations(self.name, json.dumps(remaining, sort_keys=True))
        return reverted, skipped

    def _refuse_unknown(self, unknown):
        """Refuse operations without a known inverse (or in doubt), by their descriptions."""
        if unknown:
            one = len(unknown) == 1
            raise MigrationError(
                'cannot repair %s automatically: %s no known inverse (%s). Undo %s by hand and '
                'run `%s`, or finish the script by hand and run `%s`' % (
                    self.name, 'this operation has' if one else 'these operations have',
                    '; '.join(unknown), 'it' if one else 'them', *self._manual_hints()))

    def _manual_hints(self):
        """(the command after undoing by hand, the one after finishing by hand)."""
        undone, finished = ('--mark-reverted', '--mark-applied') if self.direction == 'up' \
            else ('--mark-applied', '--mark-reverted')
        return self.run.hint('repair', undone), self.run.hint('repair', finished)

    def _check_plan(self, todo):
        """Before anything runs: refuse an object that is not the one the script made; return
        what the steps would drop (effects, by their names now), for the loss count. Names
        are followed through the renames that steps before them undo."""
        tables, columns, drops = {}, {}, []
        for _, undo, _ in todo:
            for step in undo:
                effect = target(step)
                if effect is None:
                    continue
                now = _named_now(effect, tables, columns)
                if took_effect(self.run.database, now):
                    self._check_identity(effect, now)
                    if destroys(step):
                        drops.append(now)
                if step.get('op') == 'rename_column':
                    columns[(now[1], step['args'][2])] = now[2]
                elif step.get('op') == 'rename_table':
                    tables[step['args'][1]] = now[1]
        return drops

    def _check_identity(self, effect, now):
        recorded = self.made.get(effect_key(effect))
        if recorded is None:
            return  # Not recorded (an older log, a statement in doubt): its presence is all.
        found = identity(self.run.database, now)
        # A table may have gained columns the steps before this one drop: it must still have
        # all it was made with.
        if found != recorded if now[0] != 'table' else not all(c in found for c in recorded):
            raise MigrationError(
                'cannot repair %s automatically: %s %s is not the one the script made (it made '
                '%s; it is now %s), so it is not dropped. Undo the script by hand and run `%s`, '
                'or finish it by hand and run `%s`' % (
                    self.name, now[0], '.'.join(now[1:]), _described(recorded),
                    _described(found), *self._manual_hints()))

    def _undo_step(self, recorder, step):
        """Run one step of an inverse, its SQL recorded by ``recorder``; returns 1, or 0 if
        its object is gone already (undone by a repair that died before the log said so)."""
        database = recorder.database
        effect = target(step)
        if effect is not None:
            if not took_effect(database, effect):
                return 0
            self._check_identity(effect, effect)
        with recorder:
            if 'sql' in step:
                database.execute_sql(step['sql'])
            else:
                migrator = recorder.migrator()
                migrator.migrate(getattr(migrator, step['op'])(*step['args']))
        return 1


def _named_now(effect, tables, columns):
    kind, *names = effect
    if kind == 'trigger':
        return effect
    table = tables.get(names[0], names[0])
    if kind == 'column':
        return [kind, table, columns.get((table, names[1]), names[1])]
    return [kind, table] + names[1:]


def _described(identity_rows):
    return '; '.join(' '.join(row) for row in identity_rows) or 'nothing'
