"""The commands that read a database (status, history, check) and accept, which records a
reviewed checksum."""
from ..authoring.models import load_models
from ..engine import Drift, Engine, detect_drift, invalid_index_lines
from ..engine.nontx import failure_note
from ..exceptions import UsageError
from ..shared.database import open_database
from ..shared.models import MODELS
from ..shared.urls import database_exists, mask_url, resolve_url
from .output import OK, PENDING, plural
from .settings import hint

__all__ = ['cmd_status', 'cmd_history', 'cmd_check', 'cmd_accept']


def _open(args, mode):
    url = resolve_url(args.database)
    return url, open_database(url, mode=mode)


def _engine(args, database, shown, **options):
    return Engine(database, args.migrations, label=shown,
                  hint=lambda verb, *words: hint(args, verb, *words), **options)


def cmd_status(args, out):
    url, database = _open(args, 'inspect')
    shown = mask_url(url)
    status = _engine(args, database, shown).status(analyse=True)
    exists = database_exists(url)
    adoption = status.adoption
    if out.as_json:
        out.json({'database': shown, 'exists': exists, 'applied': status.applied,
                  'pending': status.pending, 'missing': status.missing,
                  'failed': status.failed,
                  'changed': status.changed, 'history_table': status.history_table,
                  'up_to_date': status.up_to_date, 'to_adopt': status.to_adopt,
                  'adoption': adoption.as_dict() if adoption else None,
                  'scripts': [e.as_dict() for e in status.entries]})
    else:
        out.line('Database: %s%s' % (shown, '' if exists else ' (does not exist yet)'))
        if not status.applied and not status.fresh:
            out.line('It has tables but no modelstore history (a ModelForge or autotuner '
                     'file?): migrate records what is already there as adopted and runs the '
                     'rest.')
        colors = {'applied': '32', 'pending': '33', 'missing': '31', 'failed': '31'}
        for entry in status.entries:
            state = entry.state
            when = method = ''
            if entry.record is not None:
                when = _when(entry.record, '')
                method = _value(entry.record, 'method', entry.record.method or '')
            note = ''
            if entry.failed:
                note = '  ' + out.paint(failure_note(entry), '31')
            elif entry.changed:
                note = '  ' + out.paint('CHANGED since applied', '31')
            elif entry.interrupted:
                note = '  interrupted: a run died while it ran; migrate runs it again'
            elif state == 'missing':
                note = '  (script file not found)'
            elif entry.plan:
                tables = ', '.join(adoption.present.get(entry.name, ()))
                note = _PLAN_NOTES[entry.plan].format(tables=tables)
            out.line('  %s  %-45s %s %s%s' % (out.paint('%-7s' % state, colors[state]),
                                               entry.name, when, method, note))
        to_adopt = len(status.to_adopt)
        out.line('%d applied, %d pending%s%s%s.' % (
            len(status.applied), len(status.pending),
            ' (%d already in the database, to adopt)' % to_adopt if to_adopt else '',
            ', %d missing' % len(status.missing) if status.missing else '',
            ', %d failed partway' % len(status.failed) if status.failed else ''))
        if status.failed:
            out.line(out.paint('migrate refuses to go on: run `%s` (it reverts what the failed '
                               'script did; see --mark-applied and --mark-reverted for a manual '
                               'fix)' % hint(args, 'repair'), '31'))
        for note in adoption.notes if adoption else ():
            out.line('note: ' + note)
        for warning in adoption.warnings if adoption else ():
            out.line(out.paint('warning: ' + warning, '33'))
        for problem in _history_problems(status.records):
            out.line('damaged history: %s (modelstore check fails until it is fixed)'
                     % problem)
        if adoption and adoption.problems:
            out.line(out.paint('migrate will refuse this database until it is fixed:', '31'))
            for line in adoption.problems:
                out.line('  ' + line)
        elif status.pending:
            out.line('Run: %s' % hint(args, 'migrate'))
        if status.changed:
            out.line('Changed since applied: %s; review, then run: %s'
                     % (', '.join(status.changed), hint(args, 'accept', 'NAME')))
    return OK if status.up_to_date and not status.changed else PENDING


_PLAN_NOTES = {'adopt': '  already in the database ({tables}): will be adopted',
               'partial': '  will run; keeps {tables}, already there',
               'run': '  will run'}


def cmd_history(args, out):
    url, database = _open(args, 'inspect')
    shown = mask_url(url)
    records = _engine(args, database, shown).history.read()
    if out.as_json:
        out.json({'database': shown, 'history': [r.as_dict() for r in records]})
        return OK
    out.line('History of %s' % shown)
    if not records:
        out.line('  (no scripts applied%s)' % ('' if database_exists(url) else
                                                 '; the database does not exist yet'))
    for r in records:
        out.line('  %-45s %s  %-7s %8s  %s  %s  %s' % (
            r.name, _when(r, '-'), _value(r, 'method', r.method or '-'),
            _value(r, 'duration', '%.1f ms' % (r.duration * 1000)
                   if r.duration is not None else '-'),
            _value(r, 'applied_by', r.applied_by or '-'),
            _value(r, 'tool_version', r.tool_version or '-'),
            _value(r, 'checksum', (r.checksum or '-')[:12])))
    for problem in _history_problems(records):
        out.line('  damaged: ' + problem)
    return OK


def _when(record, empty):
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


def _history_problems(records):
    return [problem for record in records for problem in record.problems()]


def cmd_check(args, out):
    url, database = _open(args, 'inspect')
    shown = mask_url(url)
    status = _engine(args, database, shown).status(analyse=True)
    drift = _drift(args, database, status)
    problems = ['pending: %s' % n for n in status.pending]
    problems += ['missing script file for applied %s' % n for n in status.missing]
    problems += ['changed since applied: %s' % n for n in status.changed]
    problems += ['failed partway: %s (%s); run %s' % (e.name, failure_note(e),
                                                      hint(args, 'repair'))
                 for e in status.entries if e.failed]
    problems += ['drift: %s' % line for line in drift.lines]
    damaged = _history_problems(status.records)
    problems += ['damaged history: %s' % line for line in damaged]
    if out.as_json:
        out.json({'database': shown, 'ok': not problems, 'pending': status.pending,
                  'missing': status.missing, 'changed': status.changed,
                  'failed': status.failed,
                  'drift': drift.lines, 'notes': drift.notes, 'applied': status.applied,
                  'damaged_history': damaged})
        return PENDING if problems else OK
    if problems:
        out.line('%s %s' % (out.paint('✗', '31'), shown))
        for problem in problems:
            out.line('  ' + problem)
    else:
        out.line('%s %s: up to date (%s), no drift.' % (
            out.paint('✓', '32'), shown, plural(len(status.applied), 'script')))
    for note in drift.notes:
        out.line('  note: ' + note)
    if status.pending:
        out.line('Run: %s' % hint(args, 'migrate'))
    return PENDING if problems else OK


def _drift(args, database, status):
    """Drift from what is applied. Up to date: the models against the schema. Behind: the
    models describe the schema after the pending scripts, so the live tables are compared
    with the states the scripts produce instead (the analysis migrate runs before adopting):
    a table that matches none is drift, the pending scripts are listed by themselves."""
    if status.pending:
        adoption = status.adoption
        tables = [m._meta.table_name for m in (load_models(args.models) if args.models
                                               else MODELS)]
        return Drift((list(adoption.problems) if adoption else [])
                     + invalid_index_lines(database, tables),
                     ['%s pending: the models are compared with the schema once they are '
                      'applied' % plural(len(status.pending), 'script')])
    models = load_models(args.models) if args.models else MODELS
    return detect_drift(database, models, hint=lambda verb, *words: hint(args, verb, *words))


def cmd_accept(args, out):
    if not args.names and not args.all:
        raise UsageError('accept needs the names of the scripts to accept, or --all')
    url, database = _open(args, 'migrate')
    shown = mask_url(url)
    names = _engine(args, database, shown, lock_timeout=args.lock_timeout).accept(
        None if args.all else args.names)
    if out.as_json:
        out.json({'database': shown, 'accepted': names})
    elif names:
        for name in names:
            out.line('%s Recorded the current checksum of %s' % (out.paint('✓', '32'), name))
    else:
        out.line('Nothing to accept: no applied script has changed.')
    return OK
