"""A table's shape as the database reports it, and when two column types are compatible.

Used by adoption (a live table against the states the scripts produce) and by the drift check
(a live table against the models). Types are compared by *kind*, not by spelling: SQLite keeps the
declared text (``VARCHAR(9)``, ``BOOLEAN``, ``JSON``), PostgreSQL reports its own names
(``character varying``, ``jsonb``). JSON and text columns hold the same values (JSON text; peewee's
JSONField declares TEXT on SQLite, SQLAlchemy declares JSON), and so do boolean and integer columns
(SQLite has no boolean type: peewee declares INTEGER, ModelForge declared BOOLEAN).
"""
from __future__ import annotations  # No typing at start-up (issue 30).

import functools
import re
from dataclasses import dataclass

from ..dialects import dialect_of

__all__ = ['Column', 'Shape', 'snapshot', 'invalid_indexes', 'kind', 'compatible', 'default_key',
           'blocks_inserts', 'bare_default', 'FIELD_KINDS', 'mysql_type']

# NOT NULL columns that a legacy app created nullable (ModelForge v1.1's BOOLEAN DEFAULT 0
# is_custom_base_model); adoption and drift accept them, and modelstore always writes a value.
LEGACY_NULLABLE = frozenset({('fine_tuned_models', 'is_custom_base_model')})

_KINDS = {
    'integer': {'INTEGER', 'INT', 'BIGINT', 'SMALLINT', 'TINYINT', 'MEDIUMINT', 'SERIAL',
                'BIGSERIAL', 'INT2', 'INT4', 'INT8'},
    'boolean': {'BOOLEAN', 'BOOL'},
    'text': {'TEXT', 'VARCHAR', 'CHARACTER VARYING', 'CHAR', 'CHARACTER', 'CLOB', 'NVARCHAR',
             'NCHAR', 'VARYING CHARACTER', 'NATIVE CHARACTER', 'STRING', 'TINYTEXT',
             'MEDIUMTEXT', 'LONGTEXT'},
    'json': {'JSON', 'JSONB'},
    'real': {'REAL', 'FLOAT', 'DOUBLE', 'DOUBLE PRECISION', 'NUMERIC', 'DECIMAL', 'FLOAT4',
             'FLOAT8'},
    'datetime': {'DATETIME', 'TIMESTAMP', 'TIMESTAMP WITHOUT TIME ZONE',
                 'TIMESTAMP WITH TIME ZONE', 'TIMESTAMPTZ', 'DATE'},
}
_KIND_OF = {name: k for k, names in _KINDS.items() for name in names}
# (expected, found) pairs that hold the same values.
_COMPATIBLE = {('json', 'text'), ('text', 'json'), ('boolean', 'integer'),
               ('integer', 'boolean')}

# peewee's field_type -> kind, for comparing a model field with a live column.
FIELD_KINDS = {'AUTO': 'integer', 'BIGAUTO': 'integer', 'INT': 'integer', 'BIGINT': 'integer',
               'SMALLINT': 'integer', 'VARCHAR': 'text', 'TEXT': 'text', 'CHAR': 'text',
               'JSON': 'json', 'BOOL': 'boolean', 'FLOAT': 'real', 'DOUBLE': 'real',
               'DATETIME': 'datetime'}


@functools.lru_cache(maxsize=1024)
def kind(declared):
    """The kind of a declared column type: ``VARCHAR(9)`` -> text; unknown types keep a name."""
    base = re.sub(r'\s*\(.*\)\s*$', '', (declared or '').strip()).upper()
    return _KIND_OF.get(base, base.lower() or 'none')


def compatible(expected, found):
    """Whether a column of kind ``found`` holds the values of kind ``expected``."""
    return expected == found or (expected, found) in _COMPATIBLE


def blocks_inserts(column):
    """True for a NOT NULL column without a default: an INSERT that omits it is refused."""
    return not column.null and column.default is None and not column.primary_key


def bare_default(text):
    """A DEFAULT clause without its wrapping parentheses and PostgreSQL's ``::type`` cast."""
    value = str(text).strip()
    while value.startswith('(') and value.endswith(')'):
        value = value[1:-1].strip()
    return re.sub(r'::[a-z ]+(\(\d+\))?$', '', value, flags=re.I)


@functools.lru_cache(maxsize=1024)
def default_key(text):
    """A DEFAULT clause's value, normalised: ``FALSE``, ``0`` and ``'0'`` compare equal."""
    if text is None:
        return None
    value = bare_default(text).strip("'\"").lower()
    return {'false': '0', 'true': '1'}.get(value, value)


@dataclass(frozen=True)
class Column:
    name: str
    declared: str
    null: bool
    default: str | None
    primary_key: bool

    @property
    def kind(self):
        return kind(self.declared)


@dataclass(frozen=True)
class Shape:
    """Columns by name, and indexes as (column names, unique) -- index names do not matter."""
    columns: dict[str, Column]
    indexes: frozenset[tuple[tuple[str, ...], bool]]

    def same_as(self, other):
        if other is None:
            return False
        return (self.indexes == other.indexes and self.columns.keys() == other.columns.keys()
                and all(_column_key(c) == _column_key(other.columns[n])
                        for n, c in self.columns.items()))


def _column_key(col):
    return col.kind, col.null, default_key(col.default), col.primary_key


def invalid_indexes(database, table):
    """Names of the table's INVALID indexes (PostgreSQL: left by a concurrent build that died)."""
    return dialect_of(database).invalid_indexes(database, table)


def mysql_type(declared):
    """A MySQL column type as a comparable name: ``int(11)`` and ``INTEGER`` are ``int``,
    ``tinyint(1)`` and ``BOOL`` are ``bool``, MariaDB's JSON (``longtext``) is ``json``."""
    text = re.sub(r'\s+', ' ', (declared or '').strip().lower())
    text = re.sub(r'^(int|integer|bigint|smallint|mediumint)\(\d+\)', r'\1', text)
    return {'integer': 'int', 'tinyint(1)': 'bool', 'boolean': 'bool',
            'double precision': 'double', 'real': 'double', 'longtext': 'json'}.get(text, text)


def snapshot(database, table):
    """The shape of ``table`` in ``database`` (which must have it)."""
    dialect = dialect_of(database)
    columns = {name: Column(name, declared, null, default, pk) for name, declared, null, default,
               pk in dialect.table_columns(database, table)}
    pk = tuple(n for n, c in columns.items() if c.primary_key)
    return Shape(columns, frozenset(dialect.table_indexes(database, table, pk)))
