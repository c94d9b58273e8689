"""What a rollback (or a repair) would destroy: tables that hold rows, columns that hold values.

The engine finds out by running the ``down()`` functions inside a transaction that it rolls back
(DDL is transactional on SQLite and PostgreSQL), comparing the tables and columns before and
after. On MySQL/MariaDB, where DDL commits, the downs run instead on a shadow (an in-memory
SQLite database) that the applied scripts have been replayed on: what disappears there is what
the rollback drops. Then, on the untouched database:

* a table that disappears loses every row it holds;
* a column that disappears from a surviving table loses every value that is neither NULL nor
  the column's default (a default that is not a plain literal counts every non-NULL value).

Counting is done with parameterised queries and quoted identifiers.
"""
import re

from peewee import SQL, Table, fn

from ..exceptions import ScriptError
from ..dialects import dialect_of
from ..shared.shape import bare_default
from .clients import TABLE as CLIENTS_TABLE
from .shadow import apply, replay, shadow_database
from .steps import Recorder

__all__ = ['layout', 'count_losses', 'count_drops', 'foresee_losses']

_NUMBER = re.compile(r'^-?\d+(\.\d+)?$')


def layout(database):
    """{table: {column: default text}} of every table in the database."""
    return {table: {c.name: c.default for c in database.get_columns(table)}
            for table in database.get_tables()}


def _literal(default):
    """The Python value of a plain-literal DEFAULT, or raise ValueError."""
    text = bare_default(default)
    lowered = text.lower()
    if lowered in ('false', 'true'):
        return lowered == 'true'
    if _NUMBER.match(text):
        return float(text) if '.' in text else int(text)
    if len(text) >= 2 and text[0] == text[-1] == "'" and "'" not in text[1:-1]:
        return text[1:-1]
    raise ValueError(default)


def _plural(n, word):
    return '%d %s%s' % (n, word, '' if n == 1 else 's')


def count_losses(database, before, after):
    """Lines saying what would be lost going from layout ``before`` to ``after``. The clients
    table is no data: its rows say who is connected now, and a registration writes them again."""
    lines = []
    for table, columns in sorted(before.items()):
        if table == CLIENTS_TABLE:
            continue
        tbl = Table(table).bind(database)
        if table not in after:
            rows = tbl.select(fn.COUNT(SQL('*'))).scalar()
            if rows:
                lines.append('table %s and its %s' % (table, _plural(rows, 'row')))
            continue
        for column, default in columns.items():
            if column in after[table]:
                continue
            col = tbl.c[column]
            condition = col.is_null(False)
            if default is not None:
                try:
                    condition &= (col != _literal(default))
                except ValueError:
                    pass  # Not a plain literal: every stored value counts.
            rows = tbl.select(fn.COUNT(SQL('*'))).where(condition).scalar()
            if rows:
                lines.append('column %s.%s and the values of %s (neither NULL nor its default)'
                             % (table, column, _plural(rows, 'row')))
    return lines


def count_drops(database, drops):
    """Lines saying what dropping ``drops`` (``['table', t]`` or ``['column', t, c]``, each
    there) would lose: what repair's inverses would drop, counted as a rollback's are."""
    before, after = {}, {}
    for kind, table, *column in drops:
        if table not in before:
            before[table] = {c.name: c.default for c in database.get_columns(table)}
            after[table] = dict(before[table])
        if kind == 'table':
            after[table] = None
        elif after[table] is not None:
            after[table].pop(column[0], None)
    return count_losses(database, before, {t: c for t, c in after.items() if c is not None})


def foresee_losses(db, todo, applied=()):
    """Run the down()s of ``todo`` ((script, module, ...) tuples) in a transaction that is
    rolled back; say what they would destroy. ``applied``: the applied scripts, in order (for
    the shadow, on MySQL)."""
    if not dialect_of(db).transactional_ddl:  # MySQL: DDL commits; a down() would stay done.
        return _foresee_on_shadow(db, todo, applied)
    before = layout(db)
    with db.atomic() as txn:
        for script, module, *_ in todo:
            try:
                module.down(Recorder(db).migrator(), db)
            except Exception as exc:
                txn.rollback()
                raise ScriptError(script.name, 'down failed and was rolled back: %s: %s'
                                  % (type(exc).__name__, exc)) from exc
        after = layout(db)
        txn.rollback()
    return count_losses(db, before, after)


def _foresee_on_shadow(db, todo, applied):
    """MySQL: the tables and columns the downs drop on a shadow at the same scripts, counted on
    ``db``."""
    with shadow_database() as shadow:
        replay(applied, shadow)
        shadow_before = layout(shadow)
        for script, *_ in todo:
            apply(script, shadow, direction='down')
        shadow_after = layout(shadow)
    live = layout(db)
    before, after = {}, {}
    for table, columns in live.items():
        if table in shadow_before and table not in shadow_after:
            before[table] = columns  # Dropped: every row counts.
            continue
        gone = set(shadow_before.get(table, ())) - set(shadow_after.get(table, ()))
        before[table] = columns
        after[table] = {c: d for c, d in columns.items() if c not in gone}
    return count_losses(db, before, after)
