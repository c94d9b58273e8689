"""The registry's results as text (``cli.render`` dispatches here).

Listings printed as they are read (a table that fits 80 columns, a JSON array streamed row by
row, or JSON Lines), one row as ``column: value`` lines, a delete, an import, doctor's report."""
import datetime
import json

from ..shared.text import shown
from . import results as r
from .output import OK, plural

__all__ = ['REGISTRY_TEXT', 'render_listing', 'table_widths', 'table_lines', 'too_recent',
           'WIDTH']

WIDTH = 80


def table_widths(headers, rows, flexible, width=WIDTH):
    """Column widths for ``rows`` (tuples of text) under ``headers`` that fit ``width``: the
    ``flexible`` columns (indexes) give way, widest first."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    while sum(widths) + 2 * (len(widths) - 1) > width:
        shrink = max(flexible, key=lambda i: widths[i])
        if widths[shrink] <= 6:
            break
        widths[shrink] -= 1
    return widths


def table_lines(rows, widths):
    """One line per row, each value padded to its width or cut with '…'."""
    def cut(text, n):
        return text if len(text) <= n else text[:n - 1] + '…'
    return ['  '.join(cut(v, w).ljust(w) for v, w in zip(row, widths)).rstrip()
            for row in rows]


# -- listings --------------------------------------------------------------------------------

def _when(value):
    return value.strftime('%Y-%m-%d %H:%M') if isinstance(value, datetime.datetime) else \
        ('' if value is None else str(value))


class _Columns:
    """How a listing of ``what`` is a table: its headers, each row's cells, the columns
    that give way to fit (indexes), the line for no rows."""

    def __init__(self, headers, cells, flexible, empty, floor=()):
        self.headers, self.cells, self.flexible, self.empty = headers, cells, flexible, empty
        self.floor = floor  # Least widths: a followed feed's widths come from its first row.


_COLUMNS = {
    'models': _Columns(('ID', 'NAME', 'VER', 'BASE MODEL', 'TASK', 'CREATED'),
                       lambda m: (m.id, m.model_name, '' if m.version is None else m.version,
                                  m.base_model, m.task, _when(m.creation_date)),
                       (1, 3, 4), 'No models.'),
    'tasks': _Columns(('ID', 'NAME', 'STATUS', 'RUNTIME', 'MODE', 'CREATED'),
                      lambda t: (t.id, t.task_name, t.status.value if t.status else '',
                                 t.base_runtime, t.deployment_mode or '', _when(t.created_at)),
                      (1, 3), 'No tasks.'),
    'lineage': _Columns(('ID', 'NAME', 'VER', 'PARENT', 'DATASET', 'COMMIT', 'RUN'),
                        lambda m: (m.id, m.model_name, '' if m.version is None else m.version,
                                   '' if m.parent_id is None else m.parent_id,
                                   m.dataset_uri or '', (m.source_commit or '')[:12],
                                   m.run_id or ''), (1, 4, 6), 'No such model.'),
    'aliases': _Columns(('ALIAS', 'VER', 'MODEL ID', 'PROTECTED', 'UPDATED (UTC)', 'BY'),
                        lambda a: (a.alias, a.version, a.model_id,
                                   'yes' if a.protected else '', _when(a.updated_at),
                                   a.updated_by), (0, 5), 'No aliases.'),
    'events': _Columns(('SEQ', 'AT (UTC)', 'KIND', 'MODEL', 'VER', 'ALIAS', 'ACTOR'),
                       lambda e: (e.seq, _when(e.at), e.kind, e.model_name or '',
                                  '' if e.version is None else e.version, e.alias or '',
                                  e.actor), (3, 5, 6), 'No events.', (3, 16, 13))}


def render_listing(out, listing):
    """Print the rows as they are read; the registry is closed once they are spent, or when
    the reader went away."""
    try:
        if listing.jsonl:
            _jsonl(out, listing.rows)
        elif out.as_json:
            _json_array(out, listing.rows)
        else:
            _table(out, listing)
    finally:
        close = getattr(listing.rows, 'close', None)
        if close is not None:
            close()
    return OK


def _jsonl(out, rows):
    for row in rows:
        if out.closed:
            break
        out.raw_line(json.dumps(r.columns(row), default=str))
    out.raw_line('', end='', flush=True)


def _json_array(out, rows):
    """The rows as one JSON array, written as they are read. A row that cannot be read
    after some were written closes the array (it stays JSON) and the error goes on: the CLI
    then prints its ``{"ok": false, ...}`` object on the next line, so stdout holds two values
    and a reader of one document fails, as it should, instead of taking a part for the whole."""
    first = True
    try:
        for row in rows:
            if out.closed:
                break
            text = json.dumps(r.columns(row), indent=2, default=str).replace('\n', '\n  ')
            out.raw_line(('[\n  ' if first else ',\n  ') + text, end='')
            first = False
    except Exception:
        if not first:
            out.raw_line('\n]', flush=True)
        raise
    out.raw_line('[]' if first else '\n]', flush=True)


def _table(out, listing):
    # The widths are those of the first page: a listing is printed as it is read.
    table = _COLUMNS[listing.what]
    count, widths, chunk = 0, None, []
    for row in listing.rows:
        if out.closed:
            break
        chunk.append(tuple(map(str, table.cells(row))))
        count += 1
        if len(chunk) == listing.page:
            if listing.page == 1 and widths is not None:  # Followed: columns only widen.
                widths = [max(w, len(c)) for w, c in zip(widths, chunk[0])]
            widths = _flush(out, table, chunk, widths)
    if chunk:
        _flush(out, table, chunk, widths)
    out.raw_line('', end='', flush=True)
    if not count:
        out.line(table.empty)
    if listing.more[0]:
        out.line('(the first %d %s; --limit N shows N, --all every one, --offset %d the next '
                 'ones)' % (listing.limit, listing.what, listing.offset + listing.limit))


def _flush(out, table, chunk, widths):
    if widths is None:
        widths = table_widths(table.headers, chunk, table.flexible)
        widths = [max(w, f) for w, f in zip(widths, table.floor)] + widths[len(table.floor):]
        chunk.insert(0, table.headers)
    for line in table_lines(chunk, widths):
        out.raw_line(line)
    chunk.clear()
    return widths


# -- one row, a delete, an import ------------------------------------------------------------

def _row(out, result):
    values = r.columns(result.row)
    width = max(map(len, values))
    for name, value in values.items():
        text = '' if value is None else (value if isinstance(value, str) else
                                         json.dumps(value))
        out.line('%s  %s' % (name.ljust(width), text))


def _deleted(out, result):
    model = result.model
    done = 'Deleted model %d (%s v%s)' % (model.id, model.model_name, model.version)
    if result.files:
        done += (' and removed %s' % result.removed if result.removed else
                 ' (its directory was already gone)')
    out.line(done + '.')


def _imported(out, result):
    plan, ids = result.plan, result.ids
    out.line('%s %s from ModelForge\'s `models` table%s' % (
        'Would import' if result.dry_run else 'Imported', plural(len(plan.rows), 'model'),
        ':' if plan.rows else '.'))
    for n, (source_id, fields) in enumerate(plan.rows):
        made = ' -> model %d' % ids[n] if ids else ''
        out.line('  %s  %s  %s%s' % (source_id, fields['model_name'], fields['model_path'], made))
    if plan.skipped:
        out.line('Skipped %s:' % plural(len(plan.skipped), 'row'))
        for source_id, name, why in plan.skipped:
            out.line('  %s  %s: %s' % (source_id, name, why))


# -- doctor ----------------------------------------------------------------------------------

def too_recent(min_age):
    return 'too recent for a fix (younger than %s min)' % ('%g' % min_age)


def _doctor(out, report):
    for fix in report.fixes:
        out.line(fix['said'])
    found = report.found
    if report.final:
        out.line('Models root: %s (%s)' % (found.root.path, plural(found.rows, 'row')))
    else:
        out.line('Before the fixes:')
    recent = ' — ' + too_recent(found.min_age)
    _orphans(out, found.orphans, recent)
    _awaiting(out, found.awaiting_import, report.hint)
    _rows(out, found.dangling, 'Dangling rows (%d): model_path missing',
          lambda row: recent if row['too_recent'] else '')
    _rows(out, found.outside, 'Rows outside the models root (%d)')
    _rows(out, found.relative, 'Rows with a relative model_path (%d): cannot be judged: not '
          'an absolute path')
    _section(out, found.invalid, 'Rows that cannot be read (%d)' % len(found.invalid),
             lambda row: '%s #%s: %s' % (row['table'], row['id'], shown(row['why'])))
    _section(out, found.trash, 'Trash left by interrupted deletes (%d)' % len(found.trash),
             lambda t: '%s: %s: %s'
             % (shown(t[1]), t[0] if t[0] == 'busy' else 'would ' + t[0], shown(t[2])))
    for path, why in found.skipped:
        out.line('  skipped %s: %s' % (shown(path), why))
    if report.final:
        _doctor_advice(out, found, report.hint)


def _section(out, items, title, line):
    """``title`` and a line for each of ``items``, when there are some."""
    if items:
        out.line(title)
        for item in items:
            out.line('  ' + line(item))


def _orphans(out, orphans, recent):
    _section(out, orphans, 'Orphan folders (%d): files with no row' % len(orphans), lambda o: (
        '%s  base %s, task %s, %s, %s%s%s' % (
            shown(o.path), shown(o.base_model or '?'), shown(o.task or '?'), _size(o.size),
            o.modified.strftime('%Y-%m-%d %H:%M') if o.modified else '?',
            ''.join('; ' + shown(p) for p in o.problems), recent if o.too_recent else '')))


def _awaiting(out, folders, hint):
    def models(folder):
        return ', '.join('models.id %s %s%s' % (
            shown(m['id']), shown(m['name']),
            '' if m['active'] else ' (inactive: --include-inactive imports it)')
            for m in folder['models'])
    _section(out, folders, 'Waiting for `%s` (%d): folders that ModelForge\'s models table '
             'names' % (hint('import modelforge'), len(folders)),
             lambda folder: '%s  %s' % (shown(folder['path']), models(folder)))


def _rows(out, rows, title, note=lambda row: ''):
    _section(out, rows, title % len(rows), lambda row: '#%d %s  %s%s' % (
        row['id'], shown(row['model_name']), shown(row['model_path']), note(row)))


def _doctor_advice(out, found, hint):
    if found.clean:
        out.line('%s Rows and folders agree.' % out.paint('✓', '32'))
        return
    hints = [text for text in _doctor_hints(found, hint) if text]
    if hints:
        out.line('Fix: ' + '; '.join(hints) + '.')


def _doctor_hints(found, hint):
    yield _fixable(found.orphans, lambda o: o.too_recent,
                   '`%s` records the orphans' % hint('doctor', '--register'),
                   'the orphans are too recent for --register (--min-age)')
    if found.awaiting_import:
        yield '`%s` records the folders waiting for it' % hint('import modelforge')
    yield _fixable(found.dangling, lambda row: row['too_recent'],
                   '`%s` deletes the dangling rows'
                   % hint('doctor', '--forget-dangling', '--yes'),
                   'the dangling rows are too recent for --forget-dangling (--min-age)')
    if found.trash_to_fix:
        yield '`%s` finishes the deletes' % hint('doctor', '--empty-trash')
    if found.relative or found.invalid:
        yield ('rows with a relative or unreadable model_path need a hand (update_model or '
               '`%s`)' % hint('models delete', 'ID'))


def _fixable(items, recent, fix, wait):
    """``fix`` when one of ``items`` is old enough for it, ``wait`` when all are too recent."""
    if any(not recent(item) for item in items):
        return fix
    return wait if items else None


def _size(n):
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if n < 1024 or unit == 'GiB':
            return ('%d %s' if unit == 'B' else '%.1f %s') % (n, unit)
        n /= 1024.0
    return str(n)


REGISTRY_TEXT = {r.Row: _row, r.Deleted: _deleted, r.Imported: _imported,
                 r.DoctorReport: _doctor, r.Changed: lambda out, result: out.line(result.text)}
