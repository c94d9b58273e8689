"""Record what a script does: one Step per operation, each with the exact SQL it executed.

Scripts get a migrator of the class ``SchemaMigrator.from_database`` picks (so ``isinstance``
checks in scripts still work) whose ``migrate()`` names each operation it runs; the SQL comes
from peewee's ``query_hooks``. Statements a script runs outside ``migrator.migrate()`` (such as
``db.create_tables()``) become steps of their own, described from the SQL (the catalogue's
fallback for raw SQL, modelstore.engine.operations.RawSQL); an operation is described by the
catalogue from the Operation itself.
"""
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import List, Tuple

from playhouse.migrate import SchemaMigrator

from .operations import RawSQL, describe_operation

__all__ = ['Step', 'Recorder']


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
        return threading.get_ident() == self._thread and not self._quiet and \
            RawSQL.is_change(sql)

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
                self.log.before_statement(sql, RawSQL.describe(sql))

    def _hook(self, event):
        if event.exception is not None or not self._mine(event.sql):
            return
        statement = (event.sql, tuple(event.params or ()))
        if self._current is not None:
            self._current.sql.append(statement)
        else:
            self.steps.append(Step(RawSQL.describe(event.sql), [statement]))
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
