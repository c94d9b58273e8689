"""The linter's rules: what one script replayed on one backend (lint_replay.Replayed) breaks.

Each rule returns ``Hit``s: a rule id, a backend-neutral message, the statement it points at
(or None) and whether it is a note (listed, never failing). Phase and NOT NULL rules read the
schema before and after the script (the same on every backend); lock and rewrite rules read the
SQL each backend's migrator sent (they differ: a SQLite column drop or type change is a table
rebuild). "Existing" means there before the script ran: a table the same script creates is
empty, so building an index on it or rewriting it costs nothing.

MS000 does not load or replay -- MS001 a contract change in an expand script (note: a contract
script without one) -- MS002 a table rewrite or full-table lock -- MS003 a PostgreSQL index
built or dropped without CONCURRENTLY on an existing table -- MS004 a NOT NULL column added
without a constant default -- MS005 an UPDATE/DELETE of a whole table in one statement --
MS006 down() does not restore the schema. (MS007, a released script's text changed, and MS008,
a bad allow comment, are the linter's own: they need no replay.)
"""
import re
from dataclasses import dataclass
from typing import Optional

__all__ = ['Hit', 'RULES', 'check_replayed', 'Checks']

RULES = {
    'MS000': 'the script does not load or replay',
    'MS001': 'a contract change (drop, rename, type change, NOT NULL, default removed) in an '
             'expand script',
    'MS002': 'a table rewrite or a full-table lock',
    'MS003': 'PostgreSQL: an index built or dropped without CONCURRENTLY on an existing table',
    'MS004': 'a NOT NULL column added to an existing table without a constant default',
    'MS005': 'an UPDATE or DELETE of a whole table in one statement',
    'MS006': 'down() does not restore the schema',
    'MS007': 'a released script\'s text changed',
    'MS008': 'an allow comment without a reason, or naming no rule',
}

_ID = r'[`"]?(\w+)[`"]?'
_TABLE_OF = re.compile(r'^\s*(?:ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?'
                       r'|UPDATE\s+(?:ONLY\s+)?'
                       r'|DELETE\s+FROM\s+(?:ONLY\s+)?|DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?)' + _ID,
                       re.I)
_CREATE_INDEX = re.compile(r'^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?'
                           r'(?:IF\s+NOT\s+EXISTS\s+)?(?:' + _ID + r'\s+)?ON\s+(?:ONLY\s+)?' + _ID,
                           re.I)
_DROP_INDEX = re.compile(r'^\s*DROP\s+INDEX\s+(CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?' + _ID, re.I)
_ALTER_TYPE = re.compile(r'ALTER\s+(?:COLUMN\s+)?' + _ID + r'\s+(?:SET\s+DATA\s+)?TYPE\s+'
                         r'([\w ]+(?:\(\s*\d+\s*(?:,\s*\d+\s*)?\))?)', re.I)
_SET_NOT_NULL = re.compile(r'ALTER\s+(?:COLUMN\s+)?' + _ID + r'\s+SET\s+NOT\s+NULL', re.I)
_CHECK_NOT_NULL = re.compile(r'ADD\s+CONSTRAINT\s+' + _ID + r'\s+CHECK\s*\(\s*\(?\s*' + _ID +
                             r'\s+IS\s+NOT\s+NULL\s*\)?\s*\)(\s+NOT\s+VALID)?', re.I)
_VALIDATE = re.compile(r'VALIDATE\s+CONSTRAINT\s+' + _ID, re.I)
_PG_LOCKING_ADD = re.compile(r'\bADD\s+(?:CONSTRAINT\s+\S+\s+)?(FOREIGN\s+KEY|CHECK|PRIMARY\s+KEY|'
                             r'UNIQUE)\b(.*)', re.I | re.S)
_MY_MODIFY = re.compile(r'\b(?:MODIFY\s+(?:COLUMN\s+)?' + _ID + r'|CHANGE\s+(?:COLUMN\s+)?' + _ID +
                        r'\s+' + _ID + r')', re.I)
_MY_COPY = re.compile(r'\bALGORITHM\s*=?\s*COPY\b|\bCONVERT\s+TO\s+CHARACTER\s+SET\b|'
                      r'\bDROP\s+PRIMARY\s+KEY\b|\bADD\s+(?:CONSTRAINT\s+\S+\s+)?FOREIGN\s+KEY\b',
                      re.I)
_MY_ONLINE = re.compile(r'\bALGORITHM\s*=?\s*(INSTANT|INPLACE|NOCOPY)\b', re.I)
_DROP_COLUMN = re.compile(r'\bDROP\s+(?:COLUMN\s+)?(?!CONSTRAINT\b|INDEX\b|KEY\b|PRIMARY\b|'
                          r'FOREIGN\b|DEFAULT\b|NOT\b)' + _ID, re.I)
_WHOLE = re.compile(r'\bWHERE\b|\bJOIN\b', re.I)
_CONSTANT = re.compile(r"^\(*\s*(-?\d+(\.\d+)?|'([^']|'')*'|TRUE|FALSE)\s*\)*(::[\w ]+)?$", re.I)
_TEXTUAL = re.compile(r'^(TEXT|VARCHAR|CHARACTER VARYING)', re.I)


@dataclass
class Hit:
    rule: str
    message: str
    statement: Optional[object] = None  # lint_replay.Statement
    note: bool = False


class Checks:
    """What a backend's replay has shown so far across scripts: PostgreSQL CHECK (c IS NOT
    NULL) constraints by name, and those validated ({name: (table, column, validated)})."""

    def __init__(self):
        self.not_null_checks = {}
        self.mysql_types = {}  # {table: {column: type}} as one script's statements leave them

    def validated(self, table, column):
        return any(v == (table, column, True) for v in self.not_null_checks.values())


def _table(sql):
    m = _TABLE_OF.match(sql)
    return m[1] if m else None


def _mentions(sql, *names):
    return all(re.search(r'(?<![\w])[`"]?%s[`"]?(?![\w])' % re.escape(n), sql) for n in names)


def _pointing(replayed, *names):
    """The first schema-changing statement that names all of ``names`` (else the first that
    names the first of them), or None."""
    statements = [s for s in replayed.statements
                  if s.sql.split(None, 1)[0].upper() in ('ALTER', 'DROP', 'CREATE', 'RENAME')]
    for wanted in (names, names[:1]):
        for statement in statements:
            if _mentions(statement.sql, *wanted):
                return statement
    return None


def check_replayed(replayed, checks):
    """Every Hit of one Replayed (``checks``: the backend's Checks, updated)."""
    stopped = [Hit('MS000', 'the replay stopped at this script on this backend: the '
                            'scripts after it were not checked', note=True)] \
        if replayed.stopped and replayed.error is None else []
    if replayed.error is not None:
        return [Hit('MS000', replayed.error)] + stopped
    hits = stopped + _phase(replayed) + _not_null_adds(replayed) + _whole_table(replayed)
    backend = {'sqlite': _sqlite, 'postgresql': _postgresql, 'mysql': _mysql}.get(
        replayed.backend)
    if backend is not None:
        hits += backend(replayed, checks)
    return hits + _round_trip(replayed)


# -- MS001: the phase, from the schema before and after ---------------------------------------

def contract_changes(before, after):
    """[(message, names)] of what the schema lost or tightened from ``before`` to ``after``."""
    out = []
    for table in sorted(before.keys() - after.keys()):
        out.append(('drops or renames table %s' % table, (table,)))
    for table in sorted(before.keys() & after.keys()):
        was, now = before[table][0], after[table][0]
        for column in sorted(was.keys() - now.keys()):
            out.append(('drops or renames column %s.%s' % (table, column), (table, column)))
        for column in sorted(was.keys() & now.keys()):
            (old_type, old_null, old_default, _), (new_type, new_null, new_default, _) = \
                was[column], now[column]
            where = '%s.%s' % (table, column)
            if old_type != new_type:
                out.append(('changes the type of %s from %s to %s' % (where, old_type or '?',
                                                                     new_type or '?'),
                            (table, column)))
            if old_null and not new_null:
                out.append(('makes %s NOT NULL' % where, (table, column)))
            if old_default is not None and new_default is None:
                out.append(('removes the default of %s' % where, (table, column)))
    return out


def _phase(replayed):
    changes = contract_changes(replayed.before, replayed.after)
    if replayed.script.phase == 'contract':
        return [] if changes else [Hit('MS001', "declares phase = 'contract' but makes no "
                                                'contract change: an expand script would let it '
                                                'run before the rollout', note=True)]
    return [Hit('MS001', '%s, a contract change, in an expand script: the previous release '
                         "still running beside it breaks (declare phase = 'contract', run "
                         'it once no worker of the previous release is left)' % message,
                _pointing(replayed, *names)) for message, names in changes]


# -- MS004: NOT NULL columns added ------------------------------------------------------------

def _not_null_adds(replayed):
    hits = []
    for table in sorted(replayed.before.keys() & replayed.after.keys()):
        was, now = replayed.before[table][0], replayed.after[table][0]
        for column in sorted(now.keys() - was.keys()):
            _, null, default, primary = now[column]
            if null or primary:
                continue
            if default is not None and _CONSTANT.match(str(default).strip()):
                continue
            said = 'no database default' if default is None else \
                'a default that is not a constant (%s)' % default
            hits.append(Hit('MS004', 'adds NOT NULL column %s.%s with %s: the previous '
                                     "release's INSERTs fail, and filling it rewrites every row "
                                     '(give it DEFAULT <constant> in its one ADD COLUMN)'
                            % (table, column, said), _pointing(replayed, table, column)))
    return hits


# -- MS005: whole-table data changes ----------------------------------------------------------

def _whole_table(replayed):
    hits = []
    for statement in replayed.statements:
        head = statement.sql.split(None, 1)[0].upper()
        table = _table(statement.sql) if head in ('UPDATE', 'DELETE') else None
        if table in replayed.before and not _WHOLE.search(statement.sql):
            hits.append(Hit('MS005', '%s every row of %s in one statement: one long '
                                     'transaction holding every row (batch it: '
                                     'modelstore.online)' % ('updates' if head == 'UPDATE'
                                                             else 'deletes', table), statement))
    return hits


# -- MS002 and MS003: per backend -------------------------------------------------------------

def _sqlite(replayed, checks):
    hits = []
    for statement in replayed.statements:
        sql, table = statement.sql, _table(statement.sql)
        if table not in replayed.before:
            continue
        head = sql.split(None, 1)[0].upper()
        if head == 'DROP' and table in (replayed.after or {}):
            hits.append(Hit('MS002', 'rebuilds table %s: every row copied into a new table '
                                     'under the write lock' % table, statement))
        elif head == 'ALTER' and _DROP_COLUMN.search(sql.split(table, 1)[-1]):
            hits.append(Hit('MS002', 'rewrites every row of %s (SQLite drops a column by '
                                     'rewriting the table)' % table, statement))
    return hits


def _postgresql(replayed, checks):
    hits = []
    for statement in replayed.statements:
        sql = statement.sql
        index = _CREATE_INDEX.match(sql)
        if index and not index[1] and index[3] in replayed.before:
            hits.append(_not_concurrent(replayed, statement, 'builds index %s on %s' % (
                index[2] or '', index[3])))
            continue
        dropped = _DROP_INDEX.match(sql)
        if dropped and not dropped[1] and any(dropped[2] in replayed.before[t][1]
                                              for t in replayed.before):
            hits.append(_not_concurrent(replayed, statement, 'drops index %s' % dropped[2]))
            continue
        table = _table(sql)
        if not sql.upper().lstrip().startswith('ALTER') or table is None:
            continue
        _remember_checks(sql, table, checks)
        if table not in replayed.before:
            continue
        hits += _pg_alter(replayed, statement, table, checks)
    return hits


def _not_concurrent(replayed, statement, what):
    hit = Hit('MS003', '%s without CONCURRENTLY: writers of the table wait until it is done'
              % what, statement)
    if replayed.bound and replayed.outside_transaction:
        # Its CONCURRENTLY path needs no transaction around it; this shadow had one.
        return Hit('MS003', 'not checked for this atomic = False script: the PostgreSQL '
                            'shadow was a schema inside one transaction (the role lacks '
                            'CREATEDB)', None, note=True)
    return hit


def _remember_checks(sql, table, checks):
    for m in _CHECK_NOT_NULL.finditer(sql):
        checks.not_null_checks[m[1]] = (table, m[2], not m[3])
    for m in _VALIDATE.finditer(sql):
        if m[1] in checks.not_null_checks:
            checks.not_null_checks[m[1]] = checks.not_null_checks[m[1]][:2] + (True,)


def _pg_alter(replayed, statement, table, checks):
    hits, sql = [], statement.sql
    columns = replayed.before[table][0]
    for m in _ALTER_TYPE.finditer(sql):
        old = (columns.get(m[1]) or ('',))[0]
        new = m[2].strip().upper()
        if not (_TEXTUAL.match(old) and new == 'TEXT'):
            hits.append(Hit('MS002', 'changes the type of %s.%s: PostgreSQL rewrites the table '
                                     'under an ACCESS EXCLUSIVE lock (readers and writers wait)'
                            % (table, m[1]), statement))
    for m in _SET_NOT_NULL.finditer(sql):
        if not checks.validated(table, m[1]):
            hits.append(Hit('MS002', 'sets %s.%s NOT NULL without a validated CHECK (%s IS NOT '
                                     'NULL): PostgreSQL scans the table under an ACCESS '
                                     'EXCLUSIVE lock (add the CHECK NOT VALID, VALIDATE it, '
                                     'then SET NOT NULL)' % (table, m[1], m[1]), statement))
    m = _PG_LOCKING_ADD.search(sql)
    if m:
        kind, rest = ' '.join(m[1].upper().split()), m[2].upper()
        if (kind in ('FOREIGN KEY', 'CHECK') and 'NOT VALID' not in rest) or \
                (kind in ('PRIMARY KEY', 'UNIQUE') and 'USING INDEX' not in rest):
            hits.append(Hit('MS002', 'adds a %s constraint to %s: checked (or indexed) under a '
                                     'lock that blocks writers (%s)' % (
                                         kind, table, 'add it NOT VALID, then VALIDATE '
                                         'CONSTRAINT' if kind in ('FOREIGN KEY', 'CHECK') else
                                         'build the index CONCURRENTLY, then ADD CONSTRAINT '
                                         '... USING INDEX'), statement))
    return hits


def _mysql(replayed, checks):
    hits = []
    for statement in replayed.statements:
        sql, table = statement.sql, _table(statement.sql)
        if not sql.upper().lstrip().startswith('ALTER') or table not in replayed.before:
            continue
        if _MY_ONLINE.search(sql):
            continue  # The server refuses the statement if it cannot keep its word.
        copy = _MY_COPY.search(sql)
        reason = copy and ' '.join(copy[0].upper().split())
        types = checks.mysql_types.setdefault(table, {
            name: _my_type(column[0]) for name, column in replayed.before[table][0].items()})
        for m in _MY_MODIFY.finditer(sql):
            old, new = (m[1], m[1]) if m[1] else (m[2], m[3])
            said = _my_type(_MY_TYPE.match(sql, m.end())[1])
            if types.get(old) and said and types[old] != said:
                reason = 'a type change from %s to %s' % (types[old], said)
            types[new] = said or types.get(old)
        if reason:
            hits.append(Hit('MS002', 'alters %s with ALGORITHM=COPY (%s): the table is copied '
                                     'while writers wait' % (table, reason), statement))
    checks.mysql_types.clear()  # Per script: the next one starts from its own "before".
    return hits


_MY_TYPE = re.compile(r'\s+(.*?)\s*(?:\bNOT\s+NULL\b|\bNULL\b|\bDEFAULT\b|\bCOMMENT\b|\bAFTER\b|'
                      r'\bFIRST\b|,|$)', re.I | re.S)
_MY_ALIASES = {'INTEGER': 'INT', 'BOOLEAN': 'TINYINT', 'BOOL': 'TINYINT'}


def _my_type(text):
    """A MySQL column type, comparable: upper case, no display width (INT(11) is INT)."""
    text = ' '.join((text or '').upper().split())
    text = re.sub(r'^(TINYINT|SMALLINT|MEDIUMINT|INT|INTEGER|BIGINT)\(\d+\)', r'\1', text)
    head, _, rest = text.partition(' ')
    return ' '.join(p for p in (_MY_ALIASES.get(head, head), rest) if p)


# -- MS006 ------------------------------------------------------------------------------------

def _round_trip(replayed):
    if not replayed.has_down:
        if replayed.script.phase == 'contract':
            return []  # A contract script may be one-way: what it drops cannot come back.
        return [Hit('MS006', 'has no down(): an expand script only adds, so it can be undone')]
    return [Hit('MS006', 'down() does not restore the schema: %s' % line)
            for line in replayed.round_trip]
