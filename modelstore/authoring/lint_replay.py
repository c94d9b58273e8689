"""The statements each script runs, captured on a shadow replay, for the migration linter.

``replay_for_lint(scripts, url)`` replays the scripts on an empty shadow database of ``url``'s
backend (engine.shadow: SQLite in memory by default) the way ``migrate`` runs them: an online
script's ``online(db, batches)`` outside any transaction, batch by batch; an ``atomic = False``
script outside a transaction (so PostgreSQL's ``CREATE INDEX CONCURRENTLY`` path is the one
taken); any other in one. peewee's ``query_hooks`` see each statement; the statements that
change something (not reads, not transaction control, not pragmas) are kept with:

* the line of the script that ran it (the innermost frame in the script's file), and the lines
  an allow comment may stand on: the call that ran it (``db.execute_sql(...)``), or, for an
  operation run by ``migrator.migrate()``, the migrator call that made the operation;
* the migrator method that produced it (None for raw SQL), and whether an online batch ran it.

Around each script the exact schema (engine.schema_of) is read before and after; then its
``down()`` is run and the schema compared with the one before, and ``up()`` again (not captured)
so that the next script starts where ``migrate`` would leave it. A script that fails to load or
replay ends the replay on that backend: later scripts would replay on a schema no database has.
"""
import ast
import contextlib
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import List, Optional

from playhouse.migrate import SchemaMigrator, operation

from ..dialects import dialect_of
from ..engine import schema_differences, schema_of, shadow_database
from ..exceptions import ScriptError
from ..online import Batches

__all__ = ['Statement', 'Replayed', 'replay_for_lint']

# Statements that change nothing the linter judges: reads, transaction control, settings.
_SKIPPED = {'SELECT', 'SHOW', 'DESCRIBE', 'DESC', 'EXPLAIN', 'PRAGMA', 'BEGIN', 'COMMIT',
            'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'START', 'END', 'SET', 'ANALYZE', 'USE'}
# The code of every playhouse.migrate method decorated with @operation.
_OPERATION_CODE = operation(lambda self: None).__code__


@dataclass
class Statement:
    sql: str
    line: Optional[int]  # The script's line that ran it (None: not found on the stack).
    allow_lines: frozenset  # The lines an allow comment for it may stand on.
    operation: Optional[str] = None  # The migrator method, or None (raw SQL).
    batched: bool = False  # Run inside an online script's batch.


@dataclass
class Replayed:
    """One script replayed on one backend: what it ran and the schema around it."""
    script: object
    backend: str  # The dialect's name: 'sqlite', 'postgresql', 'mysql'.
    before: dict
    after: Optional[dict] = None  # None when it failed.
    statements: List[Statement] = field(default_factory=list)
    error: Optional[str] = None  # Why it did not load or replay.
    round_trip: List[str] = field(default_factory=list)  # How down() fails to restore.
    has_down: bool = True
    stopped: bool = False  # The replay on this backend ended here (later scripts unchecked).
    # The shadow holds everything in one transaction (PostgreSQL without CREATEDB): an
    # `atomic = False` script ran inside it, not as migrate runs it.
    bound: bool = False

    @property
    def outside_transaction(self):
        module = self._module()
        return module is not None and (getattr(module, 'atomic', True) is False
                                       or callable(getattr(module, 'online', None)))

    def _module(self):
        try:
            return self.script.load()
        except ScriptError:
            return None


class _Spans:
    """The lines of the calls in one script's text, to place an allow comment."""

    def __init__(self, path):
        try:
            with open(path, encoding='utf-8', errors='replace') as fh:
                tree = ast.parse(fh.read())
        except (OSError, SyntaxError, ValueError):
            tree = None
        self.calls = {}  # start line -> [(end line, method name or None)]
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else None
                self.calls.setdefault(node.lineno, []).append((node.end_lineno, name))

    def of(self, line, method=None):
        """The lines of the largest call starting at ``line`` (of ``method`` if one is)."""
        if line is None:
            return frozenset()
        calls = self.calls.get(line, [])
        named = [end for end, name in calls if method and name == method]
        ends = named or [end for end, _ in calls] or [line]
        return frozenset(range(line, max(ends) + 1))


class _Capture:
    """Collect the statements one script runs on this thread, with their lines."""

    def __init__(self, database, script):
        self.database = database
        self.paths = {script.path, os.path.realpath(script.path)}
        self.spans = _Spans(script.path)
        self.statements = []
        self.batched = 0
        self.operation = None  # (method, line it was made on) while migrate() runs it.
        self._thread = threading.get_ident()

    def __enter__(self):
        self.database.query_hooks.append(self._hook)
        return self

    def __exit__(self, *exc):
        self.database.query_hooks.remove(self._hook)

    def script_line(self):
        """The line of the innermost frame running the script's own code, or None."""
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename in self.paths:
                return frame.f_lineno
            frame = frame.f_back
        return None

    def _hook(self, event):
        if event.exception is not None or threading.get_ident() != self._thread:
            return
        sql = (event.sql or '').strip()
        head = sql.split(None, 1)[0].upper() if sql else ''
        if not sql or head in _SKIPPED:
            return
        line = self.script_line()
        lines = self.spans.of(line)
        method = None
        if self.operation is not None:
            method, made = self.operation
            if made is not None:  # The operation's own call, not all of migrate(...)'s.
                line, lines = made, self.spans.of(made, method)
        self.statements.append(Statement(sql, line, lines, method, self.batched > 0))

    def migrator(self):
        """A migrator of the database's class that tells this capture each operation it runs,
        and where the script made it."""
        base = type(SchemaMigrator.from_database(self.database))
        capture = self

        class Capturing(base):
            def __getattribute__(self, name):
                value = super().__getattribute__(name)
                if getattr(getattr(value, '__func__', None), '__code__', None) \
                        is not _OPERATION_CODE:
                    return value

                def making(*args, **kwargs):
                    op = value(*args, **kwargs)
                    op.lint_line = capture.script_line()
                    return op
                return making

            def migrate(self, *operations):
                for op in operations:
                    capture.operation = (op.fn.__name__, getattr(op, 'lint_line', None))
                    try:
                        op.run()
                    finally:
                        capture.operation = None

        Capturing.__name__ = base.__name__
        return Capturing(self.database)


class _WatchedBatches(Batches):
    """The plain batch runner, telling the capture while a batch runs."""

    def __init__(self, database, capture):
        super().__init__(database)
        self._capture = capture

    @contextlib.contextmanager
    def _counted(self, table, also=()):
        self._capture.batched += 1
        try:
            with super()._counted(table, also) as batch:
                yield batch
        finally:
            self._capture.batched -= 1


def _run(module, direction, database, migrator, capture=None):
    """Run ``direction`` as migrate runs it (see the module's docstring)."""
    if direction == 'up' and callable(getattr(module, 'online', None)):
        watched = capture or _Capture(database, _NoScript)  # (Not entered: sees nothing.)
        module.online(database, _WatchedBatches(database, watched))
        return
    atomic = getattr(module, 'atomic', True) or database.in_transaction()
    with migrator.migration_context(atomic):
        getattr(module, direction)(migrator, database)


class _NoScript:
    path = '<none>'


def _failure(exc):
    return '%s: %s' % (type(exc).__name__, str(exc).strip())


def replay_for_lint(scripts, url=None):
    """[Replayed] for ``scripts`` on a shadow of ``url``'s backend, in order, up to the first
    that fails to load or replay (included, with its ``error``)."""
    out = []
    with shadow_database(url) as database:
        backend = dialect_of(database).name
        bound = database.in_transaction()
        for script in scripts:
            done = Replayed(script, backend, schema_of(database), bound=bound)
            out.append(done)
            try:
                module = script.load()
            except ScriptError as exc:
                done.error, done.stopped = str(exc), True
                break
            capture = _Capture(database, script)
            try:
                with capture:
                    _run(module, 'up', database, capture.migrator(), capture)
            except Exception as exc:
                done.statements = capture.statements
                done.error, done.stopped = 'up() fails: %s' % _failure(exc), True
                break
            done.statements = capture.statements
            done.after = schema_of(database)
            done.has_down = callable(getattr(module, 'down', None))
            if done.has_down and not _round_trip(done, module, database):
                # A failed down() rolled back where DDL is transactional: go on from there.
                if schema_of(database) != done.after:
                    done.stopped = True
                    break
    return out


def _round_trip(done, module, database):
    """down(), compared with the schema before up(); then up() again. False if either fails
    (the replay cannot go on from a schema no run leaves)."""
    migrator = SchemaMigrator.from_database(database)
    try:
        _run(module, 'down', database, migrator)
    except Exception as exc:
        done.round_trip.append('down() fails: %s' % _failure(exc))
        return False
    done.round_trip += schema_differences(done.before, schema_of(database))
    try:
        _run(module, 'up', database, migrator)
    except Exception as exc:
        done.round_trip.append('up() fails after down(): %s' % _failure(exc))
        return False
    done.round_trip += ['up() run again: %s' % line
                        for line in schema_differences(done.after, schema_of(database))]
    return True
