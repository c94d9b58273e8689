"""Every difference between SQLite, PostgreSQL and MySQL/MariaDB: one module per backend.

One module per backend behind one interface (``base.Dialect``), the way
``playhouse.migrate.SchemaMigrator.from_database`` picks a subclass: ``dialect_of(database)``
returns the one instance for a peewee database (or database class), and the code above asks it -- a
capability flag or a method -- instead of naming a backend's class. Outside this package and
``migrations/`` no module names one (``tests/test_dialects.py``)."""
from .base import UNKNOWN, Dialect, like_pattern
from .errors import (DRIVER_ERRORS, LOCK_NOT_AVAILABLE, MYSQL_LOCK_WAIT, cannot_open,
                     constraint_error, is_busy, is_constraint, is_deadlock, is_schema_missing,
                     mysql_errno, raising, sqlstate)
from .mysql import (MYSQL, MYSQL_SCHEMES, SQL_MODE, atomic_ddl, check_mysql_query, mysql_kwargs,
                    mysql_shadow, reported_default, string_literal)
from .postgresql import POSTGRESQL, postgres_shadow
from .session import NeedBaseline
from .sqlite import BUSY_TIMEOUT, SQLITE
from .writers import Board, busy_timeout

__all__ = ['Dialect', 'dialect_of', 'database_class', 'SQLITE', 'POSTGRESQL', 'MYSQL', 'UNKNOWN', 'like_pattern',
           # What a driver error means (errors).
           'DRIVER_ERRORS', 'LOCK_NOT_AVAILABLE', 'MYSQL_LOCK_WAIT', 'cannot_open',
           'constraint_error', 'is_busy', 'is_constraint', 'is_deadlock', 'is_schema_missing',
           'mysql_errno', 'raising', 'sqlstate',
           # MySQL/MariaDB as modelstore opens them, and the throwaway shadows.
           'MYSQL_SCHEMES', 'SQL_MODE', 'atomic_ddl', 'check_mysql_query', 'mysql_kwargs',
           'mysql_shadow', 'reported_default', 'string_literal', 'postgres_shadow',
           # A migration run's session (session): SQLite's foreign-key watch asks for a rerun.
           'NeedBaseline', 'BUSY_TIMEOUT',
           # SQLite: the board an online run keeps for modelstore's waiting writers, and the
           # busy timeout set for a block (writers).
           'Board', 'busy_timeout']

_DIALECTS = (SQLITE, POSTGRESQL, MYSQL)


def database_class(scheme):
    """peewee's own class for a URL scheme that names it (``sqlite``, ``postgresql``,
    ``mysql``...), else None: playhouse.db_url, which knows the others, imports every playhouse
    extension and its driver (issue 30's start-up)."""
    for dialect in _DIALECTS:
        if scheme in dialect.schemes:
            return dialect.database_class
    return None


def dialect_of(database):
    """The dialect of ``database``: a peewee database, a ``DatabaseProxy`` bound to one, or a
    database class; ``UNKNOWN`` (no backend's flag set) for anything else."""
    database = getattr(database, 'obj', database)
    cls = database if isinstance(database, type) else type(database)
    for dialect in _DIALECTS:
        if issubclass(cls, dialect.database_class):
            return dialect
    return UNKNOWN
