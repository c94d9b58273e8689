"""What undoes a schema change on MySQL/MariaDB, and what shows the change is there.

The operations log (modelstore.engine.nontx) records each statement a script runs; repair
(modelstore.engine.repair) undoes them. Both need, for a statement:

* its inverse: from the migrator operation (``undo_of_operation``: DROP COLUMN for an ADD
  COLUMN, the other name for a rename...) or from its text (``undo_of_sql``);
* its *effect*, what it makes -- ``['table', t]``, ``['column', t, c]``, ``['index', t, i]``,
  ``['trigger', name]`` -- and whether that is there (``took_effect``). A statement whose
  effect is there before it runs makes nothing (it fails, or does nothing: IF NOT EXISTS), so
  it is never undone: repair never drops what the run did not create;
* what identifies the object once made (``identity``: a column's type, a table's columns, an
  index's columns, a trigger's table and event), so that repair can tell that what it is about
  to drop is still the one the run made, and ``target``: what an undo step removes, so that a
  step whose target is gone (a repair killed after it) is skipped instead of failing;
* whether a statement the server refused took no effect (``refused_without_effect``): one
  that names something already there, or not there, or does not parse, is refused before it
  changes anything on any server; on MariaDB 10.6+ and MySQL 8 every DDL statement is atomic,
  so any error the server reports means nothing changed. An error of the client's (a lost
  connection) leaves it in doubt.
"""
import re

from playhouse.migrate import make_index_name

from ..dialects.errors import mysql_errno
from ..dialects.mysql import atomic_ddl

__all__ = ['undo_of_operation', 'undo_of_sql', 'statements_undo', 'took_effect', 'identity',
           'effect_key', 'target', 'destroys', 'refused_without_effect']

# Each migrator operation's inverse, as (migrator method, the argument positions it takes).
_INVERSE_OPS = {
    'add_column': ('drop_column', (0, 1)),
    'rename_column': ('rename_column', (0, 2, 1)),
    'rename_table': ('rename_table', (1, 0)),
    'add_not_null': ('drop_not_null', (0, 1)),
    'drop_not_null': ('add_not_null', (0, 1)),
    'add_column_default': ('drop_column_default', (0, 1)),
}
# What an inverse operation acts on: the object that must be there for it to apply.
_OP_TARGETS = {
    'drop_column': lambda a: ['column', a[0], a[1]],
    'drop_index': lambda a: ['index', a[0], a[1]],
    'rename_column': lambda a: ['column', a[0], a[1]],
    'rename_table': lambda a: ['table', a[0]],
    'add_not_null': lambda a: ['column', a[0], a[1]],
    'drop_not_null': lambda a: ['column', a[0], a[1]],
    'drop_column_default': lambda a: ['column', a[0], a[1]],
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
# The inverses above, read back: what each removes.
_SQL_TARGETS = (
    (re.compile(r'DROP TABLE `([\w$]+)`$'), lambda m: ['table', m[1]]),
    (re.compile(r'DROP INDEX `([\w$]+)` ON `([\w$]+)`$'), lambda m: ['index', m[2], m[1]]),
    (re.compile(r'ALTER TABLE `([\w$]+)` DROP COLUMN `([\w$]+)`$'),
     lambda m: ['column', m[1], m[2]]),
    (re.compile(r'DROP TRIGGER `([\w$]+)`$'), lambda m: ['trigger', m[1]]),
)

# Refused before anything changed, on any server: the statement names something that is there
# already (table 1050, column 1060, key 1061, trigger 1359, foreign key 1826) or is not
# (1049, 1051, 1054, 1072, 1091, 1146), or does not parse (1064, 1149).
_REFUSED_EARLY = {1050, 1060, 1061, 1359, 1826, 1049, 1051, 1054, 1072, 1091, 1146, 1064, 1149}


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
    """What identifies the object ``effect`` names, as the server describes it now (a list,
    empty if it is not there): a column's type, a table's columns, an index's columns and
    uniqueness, a trigger's table, timing and event."""
    kind, *names = effect
    names = names[:1] if kind == 'trigger' else names
    return [[str(v) for v in row] for row in database.execute_sql(_IDENTITY[kind],
                                                                   tuple(names))]


def took_effect(database, effect):
    """Whether what ``effect`` names is in the database (one query of information_schema)."""
    return bool(effect) and bool(identity(database, effect))


def effect_key(effect):
    """The key of an effect in a log's ``made`` (names are ``[\\w$]+``: no dots)."""
    return '.'.join(effect)


def target(step):
    """What an undo step (``{"op", "args"}`` or ``{"sql"}``) acts on, as an effect; None if
    that is not known."""
    if 'op' in step:
        found = _OP_TARGETS.get(step['op'])
        return found(step['args']) if found else None
    for pattern, effect in _SQL_TARGETS:
        match = pattern.match(step['sql'])
        if match:
            return effect(match)
    return None


def destroys(step):
    """Whether an undo step drops data: a table (its rows) or a column (its values)."""
    if 'op' in step:
        return step['op'] == 'drop_column'
    return bool(re.match(r'DROP TABLE |ALTER TABLE `[\w$]+` DROP COLUMN ', step['sql']))


def refused_without_effect(database, exc):
    """Whether the error ``exc``, raised by a statement, means the server refused it and
    nothing of it took effect (see the module's docstring)."""
    errno = mysql_errno(exc)
    if not errno or 2000 <= errno < 3000:  # Not the server's answer (2013: lost connection).
        return False
    return errno in _REFUSED_EARLY or atomic_ddl(database)
