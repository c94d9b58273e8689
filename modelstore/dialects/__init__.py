"""Every difference between SQLite, PostgreSQL and MySQL/MariaDB, one module per backend behind
one interface (``base.Dialect``), the way ``playhouse.migrate.SchemaMigrator.from_database``
picks a subclass: ``dialect_of(database)`` returns the one instance for a peewee database (or
database class), and the code above asks it -- a capability flag or a method -- instead of
naming a backend's class. Outside this package and ``migrations/`` no module names one
(``tests/test_dialects.py``).
"""
from .base import UNKNOWN, Dialect
from .mysql import MYSQL
from .postgresql import POSTGRESQL
from .sqlite import SQLITE

__all__ = ['Dialect', 'dialect_of', 'SQLITE', 'POSTGRESQL', 'MYSQL', 'UNKNOWN']

_DIALECTS = (SQLITE, POSTGRESQL, MYSQL)


def dialect_of(database):
    """The dialect of ``database``: a peewee database, a ``DatabaseProxy`` bound to one, or a
    database class; ``UNKNOWN`` (no backend's flag set) for anything else."""
    database = getattr(database, 'obj', database)
    cls = database if isinstance(database, type) else type(database)
    for dialect in _DIALECTS:
        if issubclass(cls, dialect.database_class):
            return dialect
    return UNKNOWN
