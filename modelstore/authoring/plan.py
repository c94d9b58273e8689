"""What the next script must do: the models against the schema the scripts produce.

``playhouse.schema_diff.diff_models`` finds the tables, columns and indexes to add and the
columns and indexes the models no longer have; this module adds what it does not look at --
types, nullability, database-side defaults, tables no model maps -- and sorts every difference
into an operation that is safe to generate or a TODO a person must resolve:

==============================================  =============================================
generated                                       TODO (the script refuses to run until edited)
==============================================  =============================================
a table a model maps and the schema lacks       a table no model maps (a drop, or a rename)
a nullable column                               a column no field maps (a drop, or a rename)
a NOT NULL column with a constant default:      a NOT NULL column without a default, or with
one ``ADD COLUMN ... NOT NULL DEFAULT <const>``  a callable or non-constant one
an index the models declare (separate script)   a type change; nullable -> NOT NULL; a
an index the models no longer declare           changed database default; a partial or
NOT NULL -> nullable (``drop_not_null``)         expression index
==============================================  =============================================

The type of a column is compared as declared: the field's DDL type rendered for the shadow's
backend against what that backend reports (``VARCHAR(100)`` is not ``VARCHAR(255)``; on
PostgreSQL ``TEXT`` is not ``JSONB``).
"""
import datetime
import decimal
import enum
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from peewee import SQL, AutoField, ForeignKeyField, IntegerField, JSONField, sort_models
from playhouse.migrate import make_index_name
from playhouse.reflection import Introspector
from playhouse.schema_diff import diff_models

from ..dialects import MYSQL, POSTGRESQL, dialect_of
from ..engine import BOOKKEEPING, declared_default
from ..exceptions import ConfigError
from ..shared.shape import bare_default, compatible, default_key, kind, mysql_type, snapshot
from .pysource import check_text

__all__ = ['Plan', 'AddColumn', 'DropColumn', 'Rename', 'Index', 'plan_changes']


@dataclass
class AddColumn:
    table: str
    field: object  # the model's field
    default_sql: Optional[str] = None  # NOT NULL: the constant DEFAULT of the one ADD COLUMN


@dataclass(frozen=True)
class Index:
    table: str
    name: str
    columns: Tuple[str, ...]
    unique: bool


@dataclass
class DropColumn:
    table: str
    column: str
    field: object  # reflected from the schema, nullable: what down() adds back
    indexes: List[Index] = field(default_factory=list)  # on it: dropped first, built in down()


@dataclass(frozen=True)
class Rename:
    table: str
    old: str
    new: str


@dataclass
class Plan:
    """The operations to generate, in the order ``up()`` runs them, and the TODO items.

    An expand plan never drops or renames: those are ``contract_pending``, for a contract
    script generated apart (``plan_changes(contract=True)``), whose plan holds only
    ``renames`` and ``drop_columns``."""
    create: list = field(default_factory=list)  # model classes, in dependency order
    add_columns: List[AddColumn] = field(default_factory=list)
    drop_not_null: List[Tuple[str, str]] = field(default_factory=list)
    add_indexes: List[Index] = field(default_factory=list)  # on tables that exist already
    drop_indexes: List[Index] = field(default_factory=list)
    todos: List[str] = field(default_factory=list)
    renames: List[Rename] = field(default_factory=list)  # contract
    drop_columns: List[DropColumn] = field(default_factory=list)  # contract
    contract_pending: List[str] = field(default_factory=list)  # expand: left for --contract

    @property
    def phase(self):
        return 'contract' if self.renames or self.drop_columns else 'expand'

    @property
    def schema_changes(self):
        """Anything for the transactional script (tables, columns, nullability)."""
        return bool(self.create or self.add_columns or self.drop_not_null or self.renames
                    or self.drop_columns)

    @property
    def index_changes(self):
        return bool(self.add_indexes or self.drop_indexes)

    @property
    def scripts(self):
        """Whether there is a script to write (the contract changes wait for --contract)."""
        return self.schema_changes or self.index_changes or bool(self.todos)

    def __bool__(self):
        return self.scripts or bool(self.contract_pending)

    def summary(self):
        """One line per generated operation, for the command's output."""
        return self.schema_summary() + self.index_summary()

    def schema_summary(self):
        lines = self.expand_summary()
        lines += ['rename column %s.%s to %s' % (r.table, r.old, r.new) for r in self.renames]
        for d in self.drop_columns:
            lines += ['drop index %s on %s' % (i.name, i.table) for i in d.indexes]
            lines.append('drop column %s.%s' % (d.table, d.column))
        return lines

    def expand_summary(self):
        lines = ['create table %s' % m._meta.table_name for m in self.create]
        lines += ['add column %s.%s%s' % (c.table, c.field.column_name,
                                          ' NOT NULL DEFAULT %s' % c.default_sql
                                          if c.default_sql else '') for c in self.add_columns]
        return lines + ['drop NOT NULL on %s.%s' % tc for tc in self.drop_not_null]

    def index_summary(self):
        lines = ['drop index %s on %s' % (i.name, i.table) for i in self.drop_indexes]
        lines += ['add %sindex %s on %s (%s)' % ('unique ' if i.unique else '', i.name, i.table,
                                                 ', '.join(i.columns)) for i in self.add_indexes]
        return lines


def plan_changes(database, models, contract=False, renames=()):
    """The Plan that takes ``database`` (the scripts' schema) to ``models``.

    An expand plan (the default) leaves the columns no field maps in ``contract_pending``.
    ``contract=True``: the contract plan -- ``renames`` ((table, old, new) triples: a column
    no field maps and one the models add) and a drop of every other column no field maps --
    refused (ConfigError, naming them) while the models also need expand changes: those go
    first, in a script of their own, so that the previous release can run beside them."""
    models = sort_models(models)
    for model in models:
        _check_names(model)
    diff = diff_models(database, models)
    plan = Plan(create=list(diff.create_tables))
    mapped = {m._meta.table_name for m in models}
    gone = sorted(t for t in database.get_tables() if t not in mapped and t not in BOOKKEEPING
                  and not t.startswith('sqlite_'))
    new = [m._meta.table_name for m in diff.create_tables]
    for table in gone:
        hint = (' If it was renamed (to %s?), write migrator.rename_table(%r, NEW) instead of '
                'creating the new table.' % (' or '.join(new), table)) if new else ''
        plan.todos.append('table %s is in the schema but no model maps it: dropping a table '
                          '(and its rows) is never generated; drop it by hand in a contract '
                          'script (phase = \'contract\'), or add its model back.%s'
                          % (table, hint))

    dropped = sorted(diff.drop_columns)
    added = [(f.model._meta.table_name, f.column_name) for f in diff.add_columns]
    named = _renames(renames, dropped, added)
    renamed = {(r.table, r.old) for r in named} | {(r.table, r.new) for r in named}
    if contract:
        plan.renames = named
    else:  # Left out of the expand script: the contract script renames (--rename's help).
        plan.contract_pending += [
            'column %s.%s is renamed to %s (--rename): a contract change, left out of this '
            'expand script; generate it with `modelstore new --auto SLUG --contract --rename '
            '%s.%s=%s` once this one is applied' % (r.table, r.old, r.new, r.table, r.old,
                                                     r.new) for r in named]
    unmapped = set()  # (table, column): no field maps it, and it is not renamed
    for table, column in dropped:
        if (table, column) in renamed:
            continue
        unmapped.add((table, column))
        if contract:
            plan.drop_columns.append(DropColumn(table, column, _reflected(database, table,
                                                                          column)))
            continue
        if _refuses_rows_without(database, table, column):
            # The new release will not write it: until the contract step drops it, each of
            # its INSERTs would fail. Relaxing it is additive (the old release still writes it).
            plan.drop_not_null.append((table, column))
        others = [c for t, c in added if t == table]
        hint = (' If it was renamed (to %s?), the expand script adds %s as a new, empty '
                'column; to rename it instead, keeping the values, generate the expand script '
                'with --rename %s.%s=%s (remove one that adds it first, as this run writes '
                'unless --dry-run), which leaves it out, and then the rename with --contract '
                '--rename -- a contract script: the release that maps the new name starts '
                'only after it has run.'
                % (' or '.join(others), others[0] if len(others) == 1 else 'the new one',
                   table, column, others[0] if len(others) == 1 else 'NEW')) if others else ''
        plan.contract_pending.append(
            'column %s.%s is in the schema but no field maps it: dropping it is a contract '
            'change, generated only as a contract script of its own (`modelstore new --auto '
            'SLUG --contract`) once the expand script is applied, or add the field back.%s'
            % (table, column, hint))

    before = len(plan.todos)
    for fld in diff.add_columns:
        if (fld.model._meta.table_name, fld.column_name) not in renamed:
            _add_column(plan, fld)
    added_todos = plan.todos[before:]
    created = {m._meta.table_name for m in plan.create}
    for model in models:
        if model._meta.table_name not in created:
            _changed_columns(plan, database, model)
    # The definitions of the indexes on tables losing a column (a partial one may use it).
    sql = {(t, i.name): i.sql or '' for t in {t for t, _ in unmapped}
           for i in database.get_indexes(t)}
    _indexes(plan, diff, {(d.table, d.column): d for d in plan.drop_columns}, unmapped,
             {(r.table, r.old): r.new for r in named}, sql)
    if contract:
        _contract_only(plan, added_todos)
    return plan


def _mentions(index, sql, columns):
    """Does a partial or expression index's ``sql`` name one of ``columns`` ({(table,
    name)})?"""
    return any(t == index.table and re.search(r'\b%s\b' % re.escape(c.lower()), sql.lower())
               for t, c in columns)


def _refuses_rows_without(database, table, column):
    """Is ``table.column`` NOT NULL without a default (an INSERT that omits it fails)?"""
    meta = {c.name: c for c in database.get_columns(table)}[column]
    return not meta.null and meta.default is None and not meta.primary_key


def _renames(renames, dropped, added):
    """The Renames of (table, old, new) triples, each a column no field maps (``dropped``)
    and one the models add; ConfigError naming the first that is not."""
    out = []
    for table, old, new in renames:
        where = '--rename %s.%s=%s' % (table, old, new)
        if (table, old) not in dropped:
            raise ConfigError('%s: %s has no column %s that no field maps (columns no field '
                              'maps: %s)' % (where, table, old, ', '.join(
                                  '%s.%s' % tc for tc in dropped) or 'none'))
        if (table, new) not in added:
            raise ConfigError('%s: the models add no column %s to %s (columns they add: %s)'
                              % (where, new, table, ', '.join('%s.%s' % tc for tc in added)
                                 or 'none'))
        for other in out:
            if other.table == table and (other.old == old or other.new == new):
                raise ConfigError('%s: %s.%s is already in --rename %s.%s=%s; each column is '
                                  'renamed once' % (where, table, old if other.old == old
                                                    else new, table, other.old, other.new))
        out.append(Rename(table, old, new))
    return out


def _contract_only(plan, added_todos):
    """A contract script holds contract changes only: refuse while expand changes wait."""
    expand = plan.expand_summary() + plan.index_summary() + added_todos
    if expand:
        raise ConfigError(
            'the models also need expand changes: %s. A contract script holds only drops and '
            'renames: generate the expand changes first (`modelstore new --auto SLUG`, without '
            '--contract), then this one' % '; '.join(expand))


def _reflected(database, table, column):
    """The column as a nullable peewee field, read from the schema: what a contract script's
    down() adds back (its values do not come back)."""
    model = Introspector.from_database(database).generate_models(
        table_names=[table], literal_column_names=True)[table]
    fld = next(f for f in model._meta.sorted_fields if f.column_name == column)
    if isinstance(fld, ForeignKeyField):  # Added back as the plain key column it stored.
        plain = type(fld.rel_field) if not isinstance(fld.rel_field, AutoField) else IntegerField
        fld = plain(column_name=column)
        fld.bind(model, column)
    fld.null, fld.primary_key, fld.unique, fld.index = True, False, False, False
    fld.default, fld.constraints = None, None
    return fld


def _check_names(model):
    """Refuse names and SQL text of ``model`` that no database can store (NUL, an unpaired
    surrogate): the script would fail on every backend."""
    table = model._meta.table_name
    check_text(table, 'the table name', table)
    for fld in model._meta.sorted_fields:
        where = '%s.%s' % (table, fld.column_name)
        check_text(where, 'the column name', fld.column_name)
        for constraint in fld.constraints or ():
            check_text(where, 'a SQL constraint', sql_text(constraint))
    for index in model._meta.indexes or ():
        name = getattr(index, '_name', None)
        check_text(table, 'the index name', name)


def _add_column(plan, fld):
    table = fld.model._meta.table_name
    where = '%s.%s' % (table, fld.column_name)
    if fld.primary_key:
        plan.todos.append('%s: adding a primary key to an existing table is not generated'
                          % where)
        return
    if fld.null:
        plan.add_columns.append(AddColumn(table, fld))
        return
    if isinstance(fld, ForeignKeyField):
        plan.todos.append('%s: a NOT NULL foreign key cannot be given to the existing rows in '
                          'one statement; add it nullable, fill it, then make it NOT NULL'
                          % where)
        return
    default = declared_default(fld)
    if default is not None and not _LITERAL.match(bare_default(default)):
        plan.todos.append('%s is NOT NULL with the database default %s, which is not a constant: '
                          'SQLite refuses it in ADD COLUMN and PostgreSQL computes it for every '
                          'existing row; add it nullable, fill it, then make it NOT NULL'
                          % (where, default))
        return
    if default is None:
        default, problem = constant_sql(fld)
        if problem:
            plan.todos.append('%s is NOT NULL and %s: the existing rows need a value. Give the '
                              'field a constant default (or constraints=[SQL(\'DEFAULT ...\')]), '
                              'or add it nullable, fill it, then make it NOT NULL' % (where,
                                                                                       problem))
            return
    check_text(where, 'its default', default)
    plan.add_columns.append(AddColumn(table, fld, default))


# A constant SQL can put in ADD COLUMN ... DEFAULT: a number, a quoted string, TRUE/FALSE.
_LITERAL = re.compile(r"""\s*(-?\d+(\.\d*)?([eE][-+]?\d+)?|'([^']|'')*'|TRUE|FALSE)\s*\Z""", re.I)


def constant_sql(fld):
    """(SQL literal of the field's default, None) or (None, why there is none)."""
    value = fld.default
    if value is None:
        return None, 'has no default'
    if callable(value):
        return None, 'its default %s is computed in Python (callable)' % getattr(
            value, '__qualname__', repr(value))
    if isinstance(value, enum.Enum) and not hasattr(fld, 'enum_class'):
        value = value.value
    if isinstance(fld, JSONField):  # Its db_value depends on the database the model is bound to.
        try:
            stored = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            return None, 'its default %r is not a constant SQL can hold' % (value,)
    else:
        stored = fld.db_value(value)
    if isinstance(stored, bool):
        return ('TRUE' if stored else 'FALSE'), None
    if isinstance(stored, int):
        return str(stored), None
    if isinstance(stored, float) and math.isfinite(stored):
        return repr(stored), None
    if isinstance(stored, decimal.Decimal) and stored.is_finite():
        return str(stored), None
    if isinstance(stored, (datetime.date, datetime.time)) and getattr(stored, 'tzinfo',
                                                                      None) is None:
        stored = str(stored)  # As the drivers write it: '2020-01-01 00:00:00'.
    if isinstance(stored, uuid.UUID):
        stored = str(stored)
    if isinstance(stored, str):  # NUL and unpaired surrogates: refused by _add_column.
        return "'%s'" % stored.replace("'", "''"), None
    return None, 'its default %r is not a constant SQL can hold' % (value,)


# PostgreSQL's format_type() names -> the names peewee declares.
_ALIASES = {'CHARACTER VARYING': 'VARCHAR', 'CHARACTER': 'CHAR', 'INT4': 'INTEGER',
            'INT': 'INTEGER', 'SERIAL': 'INTEGER', 'INT8': 'BIGINT', 'BIGSERIAL': 'BIGINT',
            'INT2': 'SMALLINT', 'BOOL': 'BOOLEAN', 'FLOAT8': 'DOUBLE PRECISION',
            'FLOAT4': 'REAL', 'DECIMAL': 'NUMERIC', 'TIMESTAMP WITHOUT TIME ZONE': 'TIMESTAMP',
            'TIMESTAMP WITH TIME ZONE': 'TIMESTAMPTZ', 'TIME WITHOUT TIME ZONE': 'TIME'}


def normal_type(declared):
    text = re.sub(r'\s+', ' ', (declared or '').strip().upper())
    text = re.sub(r'\s*([(),])\s*', r'\1', text)
    base, paren, rest = text.partition('(')
    return _ALIASES.get(base, base) + paren + rest


def same_type(want, have, database):
    """Whether declared types ``want`` and ``have`` are the same on ``database``'s backend.

    PostgreSQL: the same name and modifiers. SQLite keeps the declared text but stores by
    affinity, so ``BOOLEAN`` and ``INTEGER``, ``JSON`` and ``TEXT``, or ``DATETIME`` and
    ``TIMESTAMP`` are the same there -- the modifiers must still agree (``VARCHAR(100)`` is a
    change on PostgreSQL).
    """
    if normal_type(want) == normal_type(have):
        return True
    if dialect_of(database) is POSTGRESQL:
        return False
    if dialect_of(database) is MYSQL:  # MySQL reports its own spelling (int(11)).
        return mysql_type(want) == mysql_type(have)
    params = lambda text: normal_type(text).partition('(')[2]  # noqa: E731
    return compatible(kind(want), kind(have)) and params(want) == params(have)


def declared_type(fld, database):
    """The column type ``fld`` declares on ``database``'s backend, e.g. ``VARCHAR(255)``."""
    ctx = database.get_sql_context()
    node = fld.ddl_datatype(ctx)
    if node is None and isinstance(fld, ForeignKeyField):
        node = fld.rel_field.ddl_datatype(ctx)
    if node is None:
        return None
    text = ctx.sql(node).query()[0]
    if dialect_of(database) is POSTGRESQL and text.upper() == 'SERIAL':
        text = 'INTEGER'
    return text


def _changed_columns(plan, database, model):
    table = model._meta.table_name
    live = snapshot(database, table).columns
    for fld in model._meta.sorted_fields:
        col = live.get(fld.column_name)
        if col is None or fld.primary_key:
            continue
        where = '%s.%s' % (table, fld.column_name)
        want = declared_type(fld, database)
        if want is not None and not same_type(want, col.declared, database):
            plan.todos.append('%s changes type from %s to %s: not generated (a rebuild on '
                              'SQLite, a rewrite that locks the table on PostgreSQL, and values '
                              'may not convert); write it by hand' % (where, col.declared, want))
        if fld.null and not col.null:
            plan.drop_not_null.append((table, fld.column_name))
        elif col.null and not fld.null:
            plan.todos.append('%s becomes NOT NULL: not generated (existing rows may hold NULL); '
                              'fill it, then migrator.add_not_null(%r, %r) by hand'
                              % (where, table, fld.column_name))
        default = declared_default(fld)
        if default is not None and default_key(default) != default_key(col.default):
            plan.todos.append('%s changes its database default from %s to %s: not generated; '
                              'write it by hand' % (where, col.default or 'none', default))


def _indexes(plan, diff, dropping, unmapped, renamed, sql):
    """The index changes. An index over a column no field maps goes with that column: in a
    contract plan it is dropped just before it (``dropping``: {(table, column): DropColumn}),
    in an expand plan it is left alone -- the previous release still uses the column, and a
    unique index is its constraint (``unmapped``: {(table, column)}). An index over a renamed
    column (``renamed``: {(table, old): new}) that the models declare over the new name is
    the same index: a rename keeps it."""
    kept = set()
    for idx in diff.drop_indexes:
        moved = tuple(renamed.get((idx.table, c), c) for c in idx.columns or ())
        if moved != tuple(idx.columns or ()):
            kept |= {(i.table, tuple(i.columns), bool(i.unique)) for i in diff.add_indexes
                     if i.table == idx.table and tuple(i.columns or ()) == moved
                     and bool(i.unique) == bool(idx.unique)}
    for idx in diff.drop_indexes:
        if (idx.table, tuple(renamed.get((idx.table, c), c) for c in idx.columns or ()),
                bool(idx.unique)) in kept:
            continue
        over = sorted(c for c in idx.columns or () if (idx.table, c) in unmapped)
        if idx.columns is None and _mentions(idx, sql.get((idx.table, idx.name), ''),
                                             unmapped):
            if dropping:  # The contract plan: a TODO, for a person to drop it first.
                plan.todos.append('index %s on %s (partial or an expression) uses a column '
                                  'this script drops: drop it first by hand '
                                  '(migrator.drop_index), and build it again in down()'
                                  % (idx.name, idx.table))
            continue  # The expand plan: it goes with its column, in the contract script.
        if over and (idx.table, over[0]) in dropping:
            # With the first of its columns dropped (drop_columns are sorted): down() adds
            # that one back last, so the index is built once all of them are there.
            dropping[(idx.table, over[0])].indexes.append(
                Index(idx.table, idx.name, tuple(idx.columns), bool(idx.unique)))
        elif over:
            continue
        elif idx.columns is None:
            plan.todos.append('index %s on %s is in the schema but not in the models (partial or '
                              'an expression): dropping it is not generated' % (idx.name,
                                                                               idx.table))
        else:
            plan.drop_indexes.append(Index(idx.table, idx.name, tuple(idx.columns),
                                           bool(idx.unique)))
    for idx in diff.add_indexes:
        if (idx.table, tuple(idx.columns or ()), bool(idx.unique)) in kept:
            continue
        if idx.columns is None:
            plan.todos.append('index %s on %s (partial or an expression) is not generated: its '
                              'definition cannot be read from the model' % (idx.name, idx.table))
            continue
        name = make_index_name(idx.table, idx.columns)
        plan.add_indexes.append(Index(idx.table, name, tuple(idx.columns), bool(idx.unique)))
    return plan


def sql_text(constraint):
    """The text of a ``SQL(...)`` column constraint, or None for anything else."""
    return constraint.sql if isinstance(constraint, SQL) and not constraint.params else None
