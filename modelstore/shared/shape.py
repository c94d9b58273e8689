"""A table's shape as the database reports it, and when two column types are compatible.

Used by adoption (a live table against the states the scripts produce) and by the drift check
(a live table against the models). Types are compared by *kind*, not by spelling: SQLite keeps the
declared text (``VARCHAR(9)``, ``BOOLEAN``, ``JSON``), PostgreSQL reports its own names
(``character varying``, ``jsonb``). JSON and text columns hold the same values (JSON text; peewee's
JSONField declares TEXT on SQLite, SQLAlchemy declares JSON), and so do boolean and integer columns
(SQLite has no boolean type: peewee declares INTEGER, ModelForge declared BOOLEAN).
"""
import functools
import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional, Tuple

from peewee import MySQLDatabase, PostgresqlDatabase

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
    default: Optional[str]
    primary_key: bool

    @property
    def kind(self):
        return kind(self.declared)


@dataclass(frozen=True)
class Shape:
    """Columns by name, and indexes as (column names, unique) -- index names do not matter."""
    columns: Dict[str, Column]
    indexes: FrozenSet[Tuple[Tuple[str, ...], bool]]

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
    if not isinstance(database, PostgresqlDatabase):
        return []
    return [row[0] for row in database.execute_sql(
        'SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid '
        'JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname = %s AND NOT i.indisvalid '
        'ORDER BY c.relname', (table,))]


# PostgreSQL's information_schema views (what peewee's get_columns reads) take ~5 ms a query;
# the catalog answers the same in a fraction of that, and adoption asks for every table it
# checks on every run.
_PG_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid),
       EXISTS (SELECT 1 FROM pg_index p WHERE p.indrelid = a.attrelid AND p.indisprimary
               AND a.attnum = ANY (p.indkey))
FROM pg_attribute a
JOIN pg_class t ON t.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE t.relname = %s AND t.relnamespace = current_schema()::regnamespace
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum"""
_PG_INDEXES = """
SELECT ix.indisunique, ix.indisprimary, ix.indisvalid,
       ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k + 1, TRUE)
             FROM generate_subscripts(ix.indkey, 1) AS k ORDER BY k)
FROM pg_index ix
JOIN pg_class t ON t.oid = ix.indrelid
WHERE t.relname = %s AND t.relnamespace = current_schema()::regnamespace"""


def _postgres_snapshot(database, table):
    # Invalid indexes (a CREATE INDEX CONCURRENTLY that died) are not there for any purpose.
    columns = {name: Column(name, declared, null, default, pk) for name, declared, null, default,
               pk in database.execute_sql(_PG_COLUMNS, (table,))}
    indexes = frozenset((tuple(c.strip('"') for c in cols), bool(unique))
                        for unique, primary, valid, cols in database.execute_sql(
                            _PG_INDEXES, (table,)) if valid and not primary)
    return Shape(columns, indexes)


# MySQL: the full column type (``varchar(255)``, ``tinyint(1)``), which peewee's get_columns
# reduces to its name.
_MYSQL_TYPES = """
SELECT column_name, column_type FROM information_schema.columns
WHERE table_schema = DATABASE() AND table_name = %s"""


def mysql_type(declared):
    """A MySQL column type as a comparable name: ``int(11)`` and ``INTEGER`` are ``int``,
    ``tinyint(1)`` and ``BOOL`` are ``bool``, MariaDB's JSON (``longtext``) is ``json``."""
    text = re.sub(r'\s+', ' ', (declared or '').strip().lower())
    text = re.sub(r'^(int|integer|bigint|smallint|mediumint)\(\d+\)', r'\1', text)
    return {'integer': 'int', 'tinyint(1)': 'bool', 'boolean': 'bool',
            'double precision': 'double', 'real': 'double', 'longtext': 'json'}.get(text, text)


def snapshot(database, table):
    """The shape of ``table`` in ``database`` (which must have it)."""
    if isinstance(database, PostgresqlDatabase):
        return _postgres_snapshot(database, table)
    full = dict(database.execute_sql(_MYSQL_TYPES, (table,)).fetchall()) \
        if isinstance(database, MySQLDatabase) else {}
    columns = {c.name: Column(c.name, full.get(c.name, c.data_type), bool(c.null), c.default,
                              bool(c.primary_key))
               for c in database.get_columns(table)}
    pk = tuple(n for n, c in columns.items() if c.primary_key)
    indexes = set()
    for index in database.get_indexes(table):
        key = (tuple(index.columns), bool(index.unique))
        if key != (pk, True):  # A unique index on the primary key is the key itself.
            indexes.add(key)
    return Shape(columns, frozenset(indexes))
