"""The one catalogue of schema operations: what each says, what undoes it, what shows it is done.

Every ``playhouse.migrate`` operation a script runs through ``migrator.migrate()`` arrives as
an ``Operation`` (its migrator method and arguments); ``CATALOGUE`` holds one ``Kind`` per
method name, and nothing here reads the SQL such an operation sends:

* ``describe`` -- the one past-tense line ``migrate`` prints for it (modelstore.engine.steps);
* ``inverse`` -- the operation that undoes it, as ``{"op": method, "args": [...]}`` (what the
  operations log of MySQL, modelstore.engine.nontx, stores and repair runs through the
  migrator, so its SQL is the migrator's), or None when none is known (a dropped column's
  values are gone);
* ``effect`` -- the state that shows it took effect, as a list (``['column', t, c]``: the
  column is there; ``['gone', 'index', t, i]``: the index is not; ``['not_null', t, c]``...),
  seen through peewee's introspection (``get_columns``, ``get_indexes``, ``table_exists``)
  by ``took_effect``; None when it cannot be seen (a type change, a constraint);
* ``acts_on`` -- what must be there for it to apply (repair skips an undo step whose object is
  gone: a repair killed after it), and ``destroys`` -- whether it drops values or rows.

Statements a script runs outside ``migrator.migrate()`` (``db.execute_sql``, ``create_tables``)
are no Operation: ``RawSQL``, the only place here that reads SQL text, is the fallback for them
(and for the statements' SQL the recorder sees): it describes a statement, and for the ones that
make a table, an index, a column or a trigger, names what it makes and that object's inverse --
itself an operation of the catalogue (``drop_table``, ``drop_index``, ``drop_column``), save a
trigger's, which has no migrator method.

What identifies an object once made (``identity``) and which statements the server refused
without effect (``refused_without_effect``) are MySQL/MariaDB's questions (where DDL commits):
the operations log records the one, and forgets the statements of the other.
"""
import inspect
import re
from dataclasses import dataclass
from typing import Callable, Optional

from peewee import SQL, Context, Entity
from playhouse.migrate import SchemaMigrator, make_index_name
from ..dialects import atomic_ddl, mysql_errno


__all__ = ['Kind', 'CATALOGUE', 'RawSQL', 'describe_operation', 'undo_of_operation',
           'effect_of_operation', 'took_effect', 'identity', 'effect_key', 'target',
           'destroys', 'refused_without_effect']


@dataclass(frozen=True)
class Kind:
    """One playhouse.migrate operation: each callable takes its arguments by name (``a``)."""
    describe: Callable[[dict], str]
    inverse: Optional[Callable[[dict], tuple]] = None  # (method, positional arguments)
    effect: Optional[Callable[[dict], list]] = None
    acts_on: Optional[Callable[[dict], list]] = None
    destroys: bool = False


# Peewee's field_type names, as a reader of the output expects them.
_TYPE_NAMES = {'AUTO': 'INTEGER', 'BIGAUTO': 'BIGINT', 'BOOL': 'BOOLEAN', 'INT': 'INTEGER'}


def _column_type(fld):
    text = _TYPE_NAMES.get(fld.field_type, fld.field_type)
    if not fld.null:
        text += ' NOT NULL'
    for constraint in fld.constraints or ():
        if isinstance(constraint, SQL):
            text += ' ' + constraint.sql
    return text


def _index_name(a):
    return a['name'] or make_index_name(a['table'], list(a['columns']))


def _column(a):
    return ['column', a['table'], a.get('column_name') or a['column']]


def _said(template):
    return lambda a: template.format(**a)


CATALOGUE = {
    'add_column': Kind(
        lambda a: "Added column '%s' (%s) to '%s'" % (a['column_name'],
                                                      _column_type(a['field']), a['table']),
        inverse=lambda a: ('drop_column', [a['table'], a['column_name']]),
        effect=_column),
    'drop_column': Kind(
        _said("Dropped column '{column_name}' from '{table}'"),
        effect=lambda a: ['gone'] + _column(a), acts_on=_column, destroys=True),
    'rename_column': Kind(
        _said("Renamed column '{table}.{old_name}' to '{new_name}'"),
        inverse=lambda a: ('rename_column', [a['table'], a['new_name'], a['old_name']]),
        effect=lambda a: ['column', a['table'], a['new_name']],
        acts_on=lambda a: ['column', a['table'], a['old_name']]),
    'rename_table': Kind(
        _said("Renamed table '{old_name}' to '{new_name}'"),
        inverse=lambda a: ('rename_table', [a['new_name'], a['old_name']]),
        effect=lambda a: ['table', a['new_name']], acts_on=lambda a: ['table', a['old_name']]),
    'drop_table': Kind(
        _said("Dropped table '{table}'"),
        effect=lambda a: ['gone', 'table', a['table']], acts_on=lambda a: ['table', a['table']],
        destroys=True),
    'add_index': Kind(
        lambda a: "Created %sindex %son '%s' (%s)" % (
            'unique ' if a['unique'] else '', "'%s' " % a['name'] if a['name'] else '',
            a['table'], ', '.join(a['columns'])),
        inverse=lambda a: ('drop_index', [a['table'], _index_name(a)]),
        effect=lambda a: ['index', a['table'], _index_name(a)]),
    'drop_index': Kind(
        _said("Dropped index '{index_name}' from '{table}'"),
        effect=lambda a: ['gone', 'index', a['table'], a['index_name']],
        acts_on=lambda a: ['index', a['table'], a['index_name']]),
    'add_not_null': Kind(
        _said("Made '{table}.{column}' NOT NULL"),
        inverse=lambda a: ('drop_not_null', [a['table'], a['column']]),
        effect=lambda a: ['not_null', a['table'], a['column']], acts_on=_column),
    'drop_not_null': Kind(
        _said("Made '{table}.{column}' nullable"),
        inverse=lambda a: ('add_not_null', [a['table'], a['column']]),
        effect=lambda a: ['nullable', a['table'], a['column']], acts_on=_column),
    'add_column_default': Kind(
        _said("Set the default of '{table}.{column}'"),
        inverse=lambda a: ('drop_column_default', [a['table'], a['column']]),
        effect=lambda a: ['default', a['table'], a['column']], acts_on=_column),
    'drop_column_default': Kind(
        _said("Dropped the default of '{table}.{column}'"),
        effect=lambda a: ['gone', 'default', a['table'], a['column']], acts_on=_column),
    'alter_column_type': Kind(_said("Changed the type of '{table}.{column}'")),
    'add_unique': Kind(_said("Added a unique constraint on '{table}'")),
    'add_constraint': Kind(_said("Added constraint '{name}' to '{table}'")),
    'drop_constraint': Kind(_said("Dropped constraint '{name}' from '{table}'")),
    'sql': Kind(lambda a: 'Ran SQL: %s' % _first_line(a['sql'])),
}


_SIGNATURES = {}  # migrator method -> its inspect.Signature (~25 us each to read again)


def _arguments(fn, args, kwargs):
    """A migrator method's arguments by name, defaults filled in (None if they do not bind)."""
    signature = _SIGNATURES.get(fn)
    if signature is None:
        signature = _SIGNATURES[fn] = inspect.signature(fn)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(list(bound.arguments.items())[1:])


def _kind_of(op):
    kind = CATALOGUE.get(op.fn.__name__)
    arguments = _arguments(op.fn, op.args, op.kwargs) if kind else None
    return (kind, arguments) if arguments is not None else (None, None)


def describe_operation(op):
    """A one-line, past-tense description of a playhouse.migrate Operation."""
    kind, arguments = _kind_of(op)
    if kind is None:
        return '%s(%s)' % (op.fn.__name__, ', '.join(repr(a) for a in op.args))
    return kind.describe(arguments)


def undo_of_operation(op):
    """The inverse of a playhouse.migrate Operation as ``{"op", "args"}``, or None."""
    kind, arguments = _kind_of(op)
    if kind is None or kind.inverse is None:
        return None
    method, args = kind.inverse(arguments)
    return {'op': method, 'args': args}


def effect_of_operation(op):
    """The state that shows ``op`` took effect (for ``took_effect``), or None."""
    kind, arguments = _kind_of(op)
    return kind.effect(arguments) if kind is not None and kind.effect else None


def _step_arguments(step):
    """An undo step's catalogue entry and arguments by name (its method as the migrator's
    base class defines it: the names are the same in every backend's)."""
    kind = CATALOGUE.get(step['op'])
    if kind is None:
        return None, None
    method = getattr(SchemaMigrator, step['op']).__wrapped__
    return kind, _arguments(method, step['args'], {})


def target(step):
    """What an undo step (``{"op", "args"}`` or ``{"sql", "target"}``) acts on, as an effect;
    None if that is not known."""
    if 'op' not in step:
        return step.get('target')
    kind, arguments = _step_arguments(step)
    return kind.acts_on(arguments) if kind is not None and kind.acts_on else None


def destroys(step):
    """Whether an undo step drops data: a table (its rows) or a column (its values)."""
    kind = CATALOGUE.get(step['op']) if 'op' in step else None
    return kind is not None and kind.destroys


# -- whether it took effect: peewee's introspection --------------------------------------------

def _columns(database, table):
    if not database.table_exists(table):
        return {}
    return {c.name.lower(): c for c in database.get_columns(table)}


def _present(database, kind, names):
    if kind == 'table':
        return database.table_exists(names[0])
    if kind == 'index':
        return database.table_exists(names[0]) and \
            any(i.name == names[1] for i in database.get_indexes(names[0]))
    if kind == 'trigger':  # peewee has no introspection of triggers: MySQL's (raw SQL only).
        return bool(identity(database, ['trigger', names[0]]))
    column = _columns(database, names[0]).get(names[1].lower())
    if kind == 'column':
        return column is not None
    if column is None:
        return False
    if kind in ('not_null', 'nullable'):
        return column.null == (kind == 'nullable')
    if kind == 'default':
        return column.default is not None and str(column.default).upper() != 'NULL'
    raise ValueError('unknown effect %r' % (kind,))


def took_effect(database, effect):
    """Whether the state ``effect`` names is the database's now (``['gone', ...]``: whether
    what follows is not there)."""
    if not effect:
        return False
    if effect[0] == 'gone':
        return not _present(database, effect[1], effect[2:])
    return _present(database, effect[0], effect[1:])


def effect_key(effect):
    """The key of an effect in a log's ``made`` (names are ``[\\w$]+``: no dots)."""
    return '.'.join(effect)


_IDENTITY = {
    'table': ('SELECT column_name FROM information_schema.columns WHERE table_schema = '
              'DATABASE() AND table_name = %s ORDER BY ordinal_position'),
    'column': ('SELECT column_type FROM information_schema.columns WHERE table_schema = '
               'DATABASE() AND table_name = %s AND column_name = %s'),
    'index': ('SELECT column_name, non_unique FROM information_schema.statistics WHERE '
              'table_schema = DATABASE() AND table_name = %s AND index_name = %s ORDER BY '
              'seq_in_index'),
    'trigger': ('SELECT event_object_table, action_timing, event_manipulation FROM '
                'information_schema.triggers WHERE trigger_schema = DATABASE() AND '
                'trigger_name = %s'),
}


def identity(database, effect):
    """MySQL/MariaDB: what identifies the object ``effect`` names, as the server describes it
    now (a list, empty if it is not there): a column's type, a table's columns, an index's
    columns and uniqueness, a trigger's table, timing and event."""
    kind, *names = effect
    names = names[:1] if kind == 'trigger' else names
    return [[str(v) for v in row] for row in database.execute_sql(_IDENTITY[kind],
                                                                   tuple(names))]


# Refused before anything changed, on any server: the statement names something that is there
# already (table 1050, column 1060, key 1061, trigger 1359, foreign key 1826) or is not
# (1049, 1051, 1054, 1072, 1091, 1146), or does not parse (1064, 1149).
_REFUSED_EARLY = {1050, 1060, 1061, 1359, 1826, 1049, 1051, 1054, 1072, 1091, 1146, 1064, 1149}


def refused_without_effect(database, exc):
    """MySQL/MariaDB: whether the error ``exc``, raised by a statement, means the server
    refused it and nothing of it took effect: one that names something already there, or not
    there, or does not parse, is refused before it changes anything on any server; on MariaDB
    10.6+ and MySQL 8 every DDL statement is atomic, so any error the server reports means
    nothing changed. An error of the client's (a lost connection) leaves it in doubt."""
    errno = mysql_errno(exc)
    if not errno or 2000 <= errno < 3000:  # Not the server's answer (2013: lost connection).
        return False
    return errno in _REFUSED_EARLY or atomic_ddl(database)


# -- the fallback for raw SQL: statements that are no Operation --------------------------------

def _first_line(sql):
    line = ' '.join(str(sql).split())
    return line if len(line) <= 72 else line[:69] + '...'


_CONTROL = ('BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'END')
_NAME = r'[`"]?([\w$]+)[`"]?'
_IF_NOT_EXISTS = r'(?:IF\s+NOT\s+EXISTS\s+)?'


def _columns_listed(text):
    return ' (%s)' % ', '.join(c.strip().strip('"`') for c in text.split(',')) if text else ''


class RawSQL:
    """The fallback for raw SQL -- a statement a script runs outside ``migrator.migrate()``
    (``db.execute_sql``, ``create_tables``), which has no Operation to ask -- and the one place
    in modelstore that reads SQL text: what it says, and, for a statement that makes a table,
    an index, a column or a trigger, what it makes (an effect) and what undoes it."""

    # (pattern, its description) for the description of a statement.
    DESCRIPTIONS = (
        (re.compile(r'CREATE\s+TABLE\s+' + _IF_NOT_EXISTS + r'["`]?([\w.]+)', re.I),
         lambda m: "Created table '%s'" % m[1]),
        (re.compile(r'CREATE\s+(UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?' + _IF_NOT_EXISTS +
                    r'["`]?([\w.]+)["`]?\s+ON\s+["`]?([\w.]+)["`]?\s*(?:\(([^()]*)\))?', re.I),
         lambda m: "Created %sindex '%s' on '%s'%s%s" % (
             'unique ' if m[1] else '', m[3], m[4], _columns_listed(m[5]),
             ' concurrently (writers are not blocked)' if m[2] else '')),
        (re.compile(r'DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?["`]?([\w.]+)', re.I),
         lambda m: "Dropped table '%s'" % m[1]),
        (re.compile(r'DROP\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?["`]?([\w.]+)',
                    re.I),
         lambda m: "Dropped index '%s'" % m[1]),
        (re.compile(r'ALTER\s+TABLE\s+["`]?([\w.]+)["`]?\s+ADD\s+COLUMN\s+["`]?(\w+)["`]?\s+(.*)',
                    re.I | re.S),
         lambda m: "Added column '%s' (%s) to '%s'" % (m[2], m[3].strip(), m[1])),
    )
    # (pattern, what the statement makes) for the statements whose inverse is known.
    MAKERS = (
        (re.compile(r'\s*CREATE\s+TABLE\s+' + _IF_NOT_EXISTS + _NAME, re.I),
         lambda m: ['table', m[1]]),
        (re.compile(r'\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+' + _IF_NOT_EXISTS + _NAME + r'\s+ON\s+'
                    + _NAME, re.I),
         lambda m: ['index', m[2], m[1]]),
        (re.compile(r'\s*ALTER\s+TABLE\s+' + _NAME + r'\s+ADD\s+(?:COLUMN\s+)?(?!INDEX\b|KEY\b|'
                    r'UNIQUE\b|CONSTRAINT\b|PRIMARY\b|FOREIGN\b|IF\s)' + _NAME, re.I),
         lambda m: ['column', m[1], m[2]]),
        (re.compile(r'\s*CREATE\s+(?:DEFINER\s*=\s*\S+\s+)?TRIGGER\s+(?!IF\s)' + _NAME, re.I),
         lambda m: ['trigger', m[1]]),
    )
    # What undoes the making of each kind of object: an operation of the catalogue.
    UNDO = {'table': 'drop_table', 'index': 'drop_index', 'column': 'drop_column'}

    @staticmethod
    def is_change(sql):
        """Whether a statement changes the database (not control, not introspection)."""
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ''
        if head in _CONTROL or head in ('SELECT', 'SHOW', 'DESCRIBE', 'EXPLAIN'):
            return False
        if head == 'PRAGMA':
            return '=' in sql  # Setting a pragma is a change; reading one is introspection.
        return True

    @classmethod
    def describe(cls, sql):
        """A one-line description of a statement run outside migrator.migrate()."""
        for pattern, describe in cls.DESCRIPTIONS:
            match = pattern.match(sql.strip())
            if match:
                return describe(match)
        return 'Ran SQL: %s' % _first_line(sql)

    @classmethod
    def effect(cls, sql):
        """What the statement makes (``['table', t]``, ``['column', t, c]``, ``['index', t,
        i]``, ``['trigger', name]``), or None."""
        for pattern, effect in cls.MAKERS:
            match = pattern.match(sql)
            if match:
                return effect(match)
        return None

    @staticmethod
    def guarded(sql):
        """Whether the statement says IF NOT EXISTS: it makes nothing if its object is there."""
        return bool(re.search(r'\bIF\s+NOT\s+EXISTS\b', sql, re.I))

    @classmethod
    def inverse(cls, sql):
        """The undo step of a statement (``{"op", "args"}``, or ``{"sql", "target"}`` for a
        trigger), or None if none is known."""
        effect = cls.effect(sql)
        if effect is None:
            return None
        kind, *names = effect
        if kind == 'trigger':  # MySQL's; the migrator has no method for triggers.
            drop = Context(quote='``').literal('DROP TRIGGER ').sql(Entity(names[0])).query()
            return {'sql': drop[0], 'target': effect}
        return {'op': cls.UNDO[kind], 'args': names}  # (table[, column or index]).

    @classmethod
    def undo(cls, statements):
        """The undo steps of raw ``statements``, last first; None if one of them has none."""
        steps = []
        for sql in reversed(statements):
            if not cls.is_change(sql):
                continue
            inverse = cls.inverse(sql)
            if inverse is None:
                return None
            steps.append(inverse)
        return steps
