"""One renderer: any command's result (``cli.results``) as text or as JSON.

With --json, as one JSON object on stdout; returns the exit code. Each result type has one small
text formatter here (the registry's and doctor's are in ``render_registry``); the JSON is the
result's ``as_json()``. Also the lines streamed while migrate and rollback run (each script, the
backup, a lock wait, progress), which cannot wait for the result."""
import sys

from ..shared.text import printable
from . import results as r
from .output import plural
from .render_registry import REGISTRY_TEXT, render_listing

__all__ = ['render', 'run_header', 'print_script', 'wait_line']


def render(out, result):
    """Print ``result`` on ``out`` as text or JSON; its exit code."""
    if isinstance(result, r.Listing):
        return render_listing(out, result)
    if isinstance(result, r.Failure):
        print(result.text, file=sys.stderr)
    if out.as_json:
        payload = result.as_json()
        if payload is not None:
            out.json(payload)
    else:
        TEXT[type(result)](out, result)
    return result.exit_code


# -- status, history, check, accept ----------------------------------------------------------

_STATE_COLORS = {'applied': '32', 'pending': '33', 'missing': '31', 'failed': '31'}
_PLAN_NOTES = {'adopt': '  already in the database ({tables}): will be adopted',
               'partial': '  will run; keeps {tables}, already there',
               'run': '  will run'}


def when(record, empty):
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


def _entry_note(out, entry, adoption, failure_note):
    if entry.failed:
        return '  ' + out.paint(failure_note(entry), '31')
    if entry.changed:
        return '  ' + out.paint('CHANGED since applied', '31')
    if entry.interrupted:
        return '  interrupted: a run died while it ran; migrate runs it again'
    if entry.state == 'missing':
        return '  (script file not found)'
    if entry.plan:
        return _PLAN_NOTES[entry.plan].format(
            tables=', '.join(adoption.present.get(entry.name, ())))
    return ''


def _entry_line(out, entry, adoption, failure_note):
    at = method = ''
    if entry.record is not None:
        at = when(entry.record, '')
        method = _value(entry.record, 'method', entry.record.method or '')
    return '  %s  %-8s  %-45s %s %s%s' % (
        out.paint('%-7s' % entry.state, _STATE_COLORS[entry.state]), entry.phase or '?',
        entry.name, at, method, _entry_note(out, entry, adoption, failure_note))


def _status_counts(status):
    to_adopt = len(status.to_adopt)
    return '%d applied, %d pending%s%s%s.' % (
        len(status.applied), len(status.pending),
        ' (%d already in the database, to adopt)' % to_adopt if to_adopt else '',
        ', %d missing' % len(status.missing) if status.missing else '',
        ', %d failed partway' % len(status.failed) if status.failed else '')


def _adoption_lines(out, adoption):
    for note in adoption.notes if adoption else ():
        out.line('note: ' + note)
    for warning in adoption.warnings if adoption else ():
        out.line(out.paint('warning: ' + warning, '33'))


def _status(out, result):
    status, adoption = result.status, result.status.adoption
    out.line('Database: %s%s' % (result.database, '' if result.exists else
                                 ' (does not exist yet)'))
    if not status.applied and not status.fresh:
        out.line('It has tables but no modelstore history (a ModelForge or autotuner file?): '
                 'migrate records what is already there as adopted and runs the rest.')
    for entry in status.entries:
        out.line(_entry_line(out, entry, adoption, result.failure_note))
    out.line(_status_counts(status))
    if status.failed:
        out.line(out.paint('migrate refuses to go on: run `%s` (it reverts what the failed '
                           'script did; see --mark-applied and --mark-reverted for a manual '
                           'fix)' % result.hint('repair'), '31'))
    _adoption_lines(out, adoption)
    for problem in result.damaged:
        out.line('damaged history: %s (modelstore check fails until it is fixed)' % problem)
    _status_advice(out, result)


def _status_advice(out, result):
    status, adoption = result.status, result.status.adoption
    if adoption and adoption.problems:
        out.line(out.paint('migrate will refuse this database until it is fixed:', '31'))
        for line in adoption.problems:
            out.line('  ' + line)
    elif status.pending:
        out.line('Run: %s' % result.hint('migrate'))
    if status.changed:
        out.line('Changed since applied: %s; review, then run: %s'
                 % (', '.join(status.changed), result.hint('accept', 'NAME')))


def _history(out, result):
    out.line('History of %s' % result.database)
    if not result.records:
        out.line('  (no scripts applied%s)' % ('' if result.exists else
                                                 '; the database does not exist yet'))
    for record in result.records:
        out.line(_history_line(record))
    for problem in result.damaged:
        out.line('  damaged: ' + problem)


def _history_line(record):
    duration = record.duration
    return '  %-45s %s  %-7s %8s  %s  %s  %s' % (
        record.name, when(record, '-'), _value(record, 'method', record.method or '-'),
        _value(record, 'duration', '-' if duration is None else '%.1f ms' % (duration * 1000)),
        _value(record, 'applied_by', record.applied_by or '-'),
        _value(record, 'tool_version', record.tool_version or '-'),
        _value(record, 'checksum', (record.checksum or '-')[:12]))


def _clients(out, result):
    if not result.table:
        out.line('%s has no clients table yet (script 0012_clients registers them): run `%s`'
                 % (result.database, result.hint('migrate')))
        return
    alive = [c for c in result.clients if c.alive]
    out.line('Clients of %s: %d alive%s' % (
        result.database, len(alive), ', %d gone' % (len(result.clients) - len(alive))
        if result.all else ''))
    if result.clients:
        out.line('  %-6s %-24s %-28s %-20s %s' % ('id', 'release', 'built for', 'host pid',
                                                  'last seen'))
    for c in result.clients:
        out.line('  %-6d %-24s %-28s %-20s %.0f s ago%s' % (
            c.id, c.release, c.schema_head, '%s %d' % (c.host, c.pid), max(c.age, 0),
            '' if c.alive else ' (gone)'))


def _check(out, result):
    problems = result.problems
    if problems:
        out.line('%s %s' % (out.paint('✗', '31'), result.database))
        for problem in problems:
            out.line('  ' + problem)
    else:
        out.line('%s %s: up to date (%s), no drift.' % (
            out.paint('✓', '32'), result.database,
            plural(len(result.status.applied), 'script')))
    for note in result.drift.notes:
        out.line('  note: ' + note)
    if result.status.pending:
        out.line('Run: %s' % result.hint('migrate'))


def _accepted(out, result):
    for name in result.names:
        out.line('%s Recorded the current checksum of %s' % (out.paint('✓', '32'), name))
    if not result.names:
        out.line('Nothing to accept: no applied script has changed.')


# -- migrate, rollback, repair, restore ------------------------------------------------------

def run_header(out, direction, database, dry_run):
    if not out.as_json:
        out.line('%s database: %s%s' % ('Migrating' if direction == 'up' else 'Rolling back',
                                        database, ' (dry run: nothing will be changed)'
                                        if dry_run else ''))


def print_script(out, run, dry_run):
    arrow = '↩ ' if run.direction == 'down' else ''
    tag = {'adopted': 'adopted', 'faked': 'recorded without running'}.get(run.method)
    out.line('%s%s%s' % (arrow, out.paint(run.name, '1'),
                         '  (%s%s)' % ('would be ' if dry_run else '', tag) if tag else ''))
    if run.method == 'adopted':
        out.line('  %s already in the database: recorded, not run' % out.paint('=', '36'))
    else:
        _steps(out, run, dry_run)


def _steps(out, run, dry_run):
    for table in run.kept:
        out.line('  %s %s already holds this script\'s effect: kept as it is'
                 % (out.paint('=', '36'), table))
    if not run.steps and run.method != 'faked':
        out.line('  %s (no schema operations)' % out.paint('✓', '32'))
    for step in run.steps:
        out.line('  %s %s' % (out.paint('✓', '32'), step.description))
        for sql in step.render() if dry_run else ():
            out.line('      ' + sql)
    for note in run.notes:
        out.line('  %s %s' % (out.paint('·', '36'), note))


def wait_line(wait):
    held = '; '.join(b.describe() for b in wait.blockers) or 'a session that has ended'
    return ('%s: waited %.1f s for a table lock held by %s; rolled back so that writers can go '
            'on, trying again in %g s (attempt %d of %d)'
            % (wait.script, wait.waited, held, wait.retry_in, wait.attempt + 1, wait.attempts))


def wait_event(wait):
    """The lock wait as a JSON object (``--json``, on stderr), with the line's text."""
    return {'event': 'lock_wait', 'script': wait.script, 'waited': round(wait.waited, 3),
            'retry_in': wait.retry_in, 'attempt': wait.attempt + 1, 'attempts': wait.attempts,
            'blockers': [b.as_dict() for b in wait.blockers], 'message': wait_line(wait)}


def _run(out, result):
    run, status = result.result, result.status
    _adoption_lines(out, run.adoption)
    for loss in run.losses:
        out.line(out.paint('%s: %s' % ('would destroy' if result.dry_run else 'destroyed', loss),
                           '31'))
    if not run.runs and run.held_back:
        out.line('Nothing to migrate in the %s phase.' % result.phase)
    elif not run.runs:
        out.line('Nothing to migrate: the database is up to date (%s applied).'
                 % plural(len(status.applied), 'script') if result.direction == 'up' else
                 'Nothing to roll back: no script is applied.')
    elif result.dry_run:
        out.line('Dry run: %s; nothing was changed.' % _run_summary(result, 'would be '))
    else:
        summary = _run_summary(result, '')
        out.line(out.paint('%s%s in %.0f ms.' % (summary[0].upper(), summary[1:], sum(
            r.duration for r in run.runs) * 1000), '32'))
        if status.pending and not run.held_back:
            out.line('%s still pending: %s' % (plural(len(status.pending), 'script'),
                                               ', '.join(status.pending)))
        elif result.direction == 'up' and not run.held_back:
            out.line('Database is up to date.')
    if run.held_back:
        _held_back(out, result)


def _held_back(out, result):
    """migrate --phase: what waits for the other phase, and when to run it."""
    held, phases = result.result.held_back, {e.name: e.phase for e in result.status.entries}
    first = phases.get(held[0])
    out.line('Held back: %s (%s, starting with the %s script %s).'
             % (plural(len(held), 'script'), ', '.join(held), first, held[0]))
    if first == 'contract':
        out.line('Run `%s` once no worker of the previous release is left (modelstore '
                 'clients lists them).' % result.hint('migrate', '--phase', 'contract'))
    else:
        out.line('Run `%s` first: an expand script comes before them.'
                 % result.hint('migrate', '--phase', 'expand'))


def _run_summary(result, would):
    """'applied 2 scripts (3 operations) and adopted 1', or with ``would`` ('would be '):
    '2 scripts (3 operations) would be applied and 1 would be adopted'."""
    runs = result.result.runs
    adopted = len(result.result.by_method('adopted'))
    ran = len(runs) - adopted
    done = 'applied' if result.direction == 'up' else 'rolled back'
    if result.fake:
        done = 'recorded without running'
    scripts = plural(ran, 'script') + (' (%s)' % plural(sum(len(r.steps) for r in runs),
                                                        'operation'))
    adopted_text = adopted if ran else plural(adopted, 'script')
    if would:
        parts = ['%s would be %s' % (scripts, done)] if ran else []
        parts += ['%s would be adopted' % adopted_text] if adopted else []
    else:
        parts = ['%s %s' % (done, scripts)] if ran else []
        parts += ['adopted %s' % adopted_text] if adopted else []
    return ' and '.join(parts)


def _repaired(out, result):
    if not result.done:
        out.line('Nothing to repair: no script of %s failed partway.' % result.database)
    for name, direction, action, steps in result.done:
        out.line('%s %s (%s): %s' % (out.paint('✓', '32'), name, direction, action))
        for step in steps:
            out.line('    %s' % step.description)
    if result.done:
        out.line('Run: %s' % result.hint('migrate'))


def _restored(out, result):
    pending = result.status.pending
    if result.safety:
        out.line('Backup of the database as it was: %s' % result.safety)
    out.line(out.paint('Restored %s from %s (%s applied).' % (
        result.database, result.backup, plural(len(result.status.applied), 'script')), '32'))
    if pending:
        out.line('%s pending; run: %s' % (plural(len(pending), 'script'), result.migrate))


# -- new -------------------------------------------------------------------------------------

def _new_script(out, result):
    out.line(result.path)


def _generated(out, result):
    generated, plan = result.result, result.result.plan
    if not generated.changed:
        out.line(result.nothing + ' (replayed on %s).' % result.where)
        return
    for name, text in generated.files if result.dry_run else ():
        out.line('# --- %s.py (dry run: not written)' % name)
        out.line(text)
    for path in generated.paths:
        out.line(path)
    _operations(out, plan.summary())
    for todo in plan.todos:
        print('todo: %s' % printable(todo), file=sys.stderr)
    if plan.todos:
        # Exit 1, not an error (docs/cli.md, "Exit codes"): the script is written, and refuses to
        # run until a person resolves its TODOs -- so no "error:" prefix either.
        print('%s not generated: resolve %s in %s; until then the script refuses to run'
              % (plural(len(plan.todos), 'change'), 'it' if len(plan.todos) == 1 else 'them',
                 generated.paths[0] if generated.paths else 'the script'), file=sys.stderr)
    for change in plan.contract_pending:  # Exit 1 too: the models need another script.
        print('contract: %s' % printable(change), file=sys.stderr)
    for rename in plan.renames:  # Exit 0: said because it changes how the deploy goes.
        print('note: renaming %s.%s to %s is not a rolling change: the release that maps %s '
              'connects only after this contract script has run, and the script waits for the '
              'previous release\'s clients to stop (docs/rolling-upgrades.md, "Renames")'
              % (printable(rename.table), printable(rename.old), printable(rename.new),
                 printable(rename.new)), file=sys.stderr)


def _operations(out, lines):
    for line in lines:
        out.line('  + %s' % printable(line))


def _schema_check(out, result):
    if not result.plan:
        out.line(result.nothing + '.')
        return
    out.line('%s need a script that %s does not have (modelstore new --auto SLUG writes it):'
             % (result.models, result.directory))
    _operations(out, result.plan.summary())
    for change in result.plan.contract_pending:
        out.line('  contract: %s' % printable(change))
    for todo in result.plan.todos:
        out.line('  todo: %s' % printable(todo))


def _lint(out, result):
    report = result.report
    for finding in report.findings:
        _finding(out, finding, out.paint(finding.rule, '31'))
    if report.silenced:
        out.line('silenced by allow comments:')
        for finding in report.silenced:
            _finding(out, finding, finding.rule, '  ', ' -- %s' % printable(finding.allowed))
    for finding in report.notes:
        _finding(out, finding, 'note: ' + finding.rule)
    where = ', '.join(report.backends)
    if report.findings:
        out.line('%s %s in %s (replayed on %s)' % (
            out.paint('✗', '31'), plural(len(report.findings), 'finding'),
            plural(report.scripts, 'script'), where))
    else:
        out.line('%s %s lint clean (replayed on %s).' % (
            out.paint('✓', '32'), plural(report.scripts, 'script'), where))


def _finding(out, finding, rule, indent='', after=''):
    place = finding.script + '.py' + (':%d' % finding.line if finding.line else '')
    backends = ' [%s]' % ', '.join(finding.backends) if finding.backends else ''
    out.line('%s%s: %s %s%s%s' % (indent, place, rule, printable(finding.message), backends,
                                  after))
    texts = {' '.join(sql.split()) for sql in finding.statements.values()}
    for backend, sql in finding.statements.items():
        text = ' '.join(sql.split())
        text = text if len(text) <= 160 else text[:157] + '...'
        out.line('%s    %s%s' % (indent, '' if len(texts) == 1 else backend + ': ',
                                 printable(text)))
        if len(texts) == 1:
            break


def _failure(out, result):
    """(The line on stderr is printed by render, whatever the format.)"""


TEXT = {**REGISTRY_TEXT, **{
    r.Status: _status, r.History: _history, r.ClientList: _clients, r.Check: _check, r.Accepted: _accepted,
    r.Run: _run, r.Repaired: _repaired, r.Restored: _restored, r.NewScript: _new_script,
    r.Generated: _generated, r.SchemaCheck: _schema_check, r.Lint: _lint,
    r.Failure: _failure}}
