"""Record what a script does: one Step per operation, each with the exact SQL it executed.

Scripts get a migrator of the class ``SchemaMigrator.from_database`` picks (so ``isinstance``
checks in scripts still work) whose ``migrate()`` names each operation it runs; the SQL comes
from peewee's ``query_hooks``. Statements a script runs outside ``migrator.migrate()`` (such as
``db.create_tables()``) become steps of their own, described from the SQL.
"""
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import List, Tuple

from peewee import SQL
from playhouse.migrate import SchemaMigrator

__all__ = ['Step', 'Recorder']

# Peewee's field_type names, as a reader of the output expects them.
_TYPE_NAMES = {'AUTO': 'INTEGER', 'BIGAUTO': 'BIGINT', 'BOOL': 'BOOLEAN', 'INT': 'INTEGER'}
_CONTROL = ('BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'END')


@dataclass
class Step:
    description: str
    sql: List[Tuple[str, tuple]] = field(default_factory=list)

    def render(self):
        """The statements as SQL text, parameters shown beside them."""
        return [_render(sql, params) for sql, params in self.sql]

    def as_dict(self):
        return {'description': self.description, 'sql': self.render()}


def _render(sql, params):
    sql = sql.rstrip().rstrip(';')
    return '%s;  -- params: %r' % (sql, list(params)) if params else sql + ';'


def _is_change(sql):
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ''
    if head in _CONTROL or head in ('SELECT', 'SHOW', 'DESCRIBE', 'EXPLAIN'):
        return False
    if head == 'PRAGMA':
        return '=' in sql  # Setting a pragma is a change; reading one is introspection.
    return True


def _column_type(fld):
    text = _TYPE_NAMES.get(fld.field_type, fld.field_type)
    if not fld.null:
        text += ' NOT NULL'
    for constraint in fld.constraints or ():
        if isinstance(constraint, SQL):
            text += ' ' + constraint.sql
    return text


def describe_operation(op):
    """A one-line, past-tense description of a playhouse.migrate Operation."""
    name, args = op.fn.__name__, op.args
    if name == 'add_column':
        return "Added column '%s' (%s) to '%s'" % (args[1], _column_type(args[2]), args[0])
    simple = {
        'drop_column': "Dropped column '{1}' from '{0}'",
        'rename_column': "Renamed column '{0}.{1}' to '{2}'",
        'rename_table': "Renamed table '{0}' to '{1}'",
        'drop_table': "Dropped table '{0}'",
        'drop_index': "Dropped index '{1}' from '{0}'",
        'add_not_null': "Made '{0}.{1}' NOT NULL",
        'drop_not_null': "Made '{0}.{1}' nullable",
        'add_column_default': "Set the default of '{0}.{1}'",
        'drop_column_default': "Dropped the default of '{0}.{1}'",
        'alter_column_type': "Changed the type of '{0}.{1}'",
        'add_unique': "Added a unique constraint on '{0}'",
        'add_constraint': "Added constraint '{1}' to '{0}'",
        'drop_constraint': "Dropped constraint '{1}' from '{0}'",
    }
    if name in simple:
        return simple[name].format(*args)
    if name == 'add_index':
        unique = args[2] if len(args) > 2 else op.kwargs.get('unique', False)
        name = op.kwargs.get('name')
        return "Created %sindex %son '%s' (%s)" % ('unique ' if unique else '',
                                                   "'%s' " % name if name else '', args[0],
                                                   ', '.join(args[1]))
    if name == 'sql':
        return 'Ran SQL: %s' % _first_line(args[0])
    return '%s(%s)' % (name, ', '.join(repr(a) for a in args))


_SQL_PATTERNS = (
    (re.compile(r'CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?["`]?([\w.]+)', re.I),
     lambda m: "Created table '%s'" % m[1]),
    (re.compile(r'CREATE\s+(UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?'
                r'["`]?([\w.]+)["`]?\s+ON\s+["`]?([\w.]+)["`]?\s*(?:\(([^()]*)\))?', re.I),
     lambda m: "Created %sindex '%s' on '%s'%s%s" % (
         'unique ' if m[1] else '', m[3], m[4],
         ' (%s)' % ', '.join(c.strip().strip('"`') for c in m[5].split(',')) if m[5] else '',
         ' concurrently (writers are not blocked)' if m[2] else '')),
    (re.compile(r'DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?["`]?([\w.]+)', re.I),
     lambda m: "Dropped table '%s'" % m[1]),
    (re.compile(r'DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?["`]?([\w.]+)', re.I),
     lambda m: "Dropped index '%s'" % m[1]),
    (re.compile(r'ALTER\s+TABLE\s+["`]?([\w.]+)["`]?\s+ADD\s+COLUMN\s+["`]?(\w+)["`]?\s+(.*)',
                re.I | re.S),
     lambda m: "Added column '%s' (%s) to '%s'" % (m[2], m[3].strip(), m[1])),
)


def describe_sql(sql):
    """A one-line description of a statement run outside migrator.migrate()."""
    for pattern, describe in _SQL_PATTERNS:
        match = pattern.match(sql.strip())
        if match:
            return describe(match)
    return 'Ran SQL: %s' % _first_line(sql)


def _first_line(sql):
    line = ' '.join(str(sql).split())
    return line if len(line) <= 72 else line[:69] + '...'


class Recorder:
    """Collect the steps of one script run on this thread.

    ``log`` (MySQL, where DDL commits: a modelstore.engine.nontx.OperationLog) is told of each
    operation and change statement before it runs and after it completed; what it writes
    itself is not a step.
    """

    def __init__(self, database, log=None):
        self.database = database
        self.steps = []
        self.log = log
        self._current = None
        self._thread = threading.get_ident()
        self._quiet = False  # While the log writes.

    def __enter__(self):
        self.database.query_hooks.append(self._hook)
        if self.log is not None:
            self.database.before_hooks.append(self._before)
        return self

    def __exit__(self, *exc):
        self.database.query_hooks.remove(self._hook)
        if self.log is not None:
            self.database.before_hooks.remove(self._before)

    def _mine(self, sql):
        return threading.get_ident() == self._thread and not self._quiet and _is_change(sql)

    @contextmanager
    def _logging(self):
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _before(self, sql):
        if self._mine(sql):
            with self._logging():
                self.log.before_statement(sql, describe_sql(sql))

    def _hook(self, event):
        if event.exception is not None or not self._mine(event.sql):
            return
        statement = (event.sql, tuple(event.params or ()))
        if self._current is not None:
            self._current.sql.append(statement)
        else:
            self.steps.append(Step(describe_sql(event.sql), [statement]))
        if self.log is not None:
            with self._logging():
                self.log.after_statement(event.sql)

    @contextmanager
    def operation(self, op):
        self._current = Step(describe_operation(op))
        if self.log is not None:
            with self._logging():
                self.log.begin_operation(self._current.description, op)
        try:
            yield
        finally:
            step, self._current = self._current, None
        self.steps.append(step)
        if self.log is not None:
            with self._logging():
                self.log.end_operation()

    def migrator(self):
        """A migrator for this database that reports each operation to this recorder."""
        base = type(SchemaMigrator.from_database(self.database))
        recorder = self

        class Reporting(base):
            def migrate(self, *operations):
                for op in operations:
                    with recorder.operation(op):
                        op.run()

        Reporting.__name__ = base.__name__
        Reporting.__qualname__ = base.__qualname__
        return Reporting(self.database)
