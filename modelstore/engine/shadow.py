"""The schema the scripts produce, built where nothing real is touched (the *shadow*).

Adoption compares a live table with the states the scripts produce; ``new --auto`` and
``check_migrations`` compare the models with them. Both replay the scripts' ``up()`` on an
empty database, on a connection of its own:

* ``sqlite`` (the default, and for any ``sqlite://`` URL): a fresh in-memory database;
* a MySQL/MariaDB URL: a database of its own on that server (``modelstore_shadow_<random>``),
  dropped at the end (DDL commits there, so no transaction can hold it). The user needs CREATE
  and DROP;
* a PostgreSQL URL: likewise a database of its own (``CREATE DATABASE modelstore_shadow_<random>
  TEMPLATE template0``, in the encoding and locale of the one the URL names), dropped at the end
  ``WITH (FORCE)``: whatever a script does -- commit halfway, run ``atomic = False``, create
  tables in any schema -- happens there. The role needs ``CREATEDB``. Without it (a clear
  warning in the log says so), the replay falls back to a schema of its own
  (``modelstore_shadow_<random>``, first on the session's ``search_path``) in the URL's
  database, inside one transaction that is rolled back; a second connection drops the schema
  afterwards, so a script that commits leaves nothing behind either -- unless it writes to
  another schema by name or changes the ``search_path`` itself, which only the throwaway
  database contains. That needs CREATE on the database; a role with neither is refused with
  both privileges named.

A run killed meanwhile (``kill -9``) leaves a throwaway database behind, recognisable by its
name; nothing else is left: the fallback's schema is created inside its transaction, which the
server rolls back when the connection dies.

Each backend's shadow is its dialect's ``shadow`` (modelstore.dialects; the throwaway database
and its drop in ``dialects.throwaway``).

Scripts run as the engine runs them: a migrator of ``SchemaMigrator.from_database``'s class,
each ``up()`` in its own transaction (a savepoint inside the fallback's transaction, where an
``atomic = False`` script's ``db.in_transaction()`` is true, so 0005 takes its plain ``CREATE
INDEX`` path, as it does in the throwaway database's per-script transaction).
"""
import contextlib

from playhouse.migrate import SchemaMigrator

from ..dialects import (dialect_of, MYSQL, MYSQL_SCHEMES, mysql_shadow, postgres_shadow,
                        POSTGRESQL, SQLITE)
from ..exceptions import ConfigError, MigrationError, ScriptError
from ..shared.database import open_database
from ..shared.shape import snapshot
from ..shared.urls import DatabaseURL
from .history import TABLE as HISTORY_TABLE

# mysql_shadow and postgres_shadow: each dialect's ``shadow``, by their names of before.
__all__ = ['shadow_database', 'mysql_shadow', 'postgres_shadow', 'apply', 'replay', 'schema_of',
           'schema_differences']


@contextlib.contextmanager
def shadow_database(url=None):
    """Yield an empty database of ``url``'s backend (default SQLite) that is thrown away.
    ``url``: a string or a DatabaseURL (parsed once, here or by the caller)."""
    url = DatabaseURL.of(url) if url else None
    scheme = url.scheme if url else 'sqlite'
    if scheme.startswith('sqlite'):
        with SQLITE.shadow() as shadow:
            yield shadow
        return
    if not (scheme.split('+')[0] in MYSQL_SCHEMES or scheme.startswith('postgres')):
        raise ConfigError('cannot replay the scripts on %s: modelstore runs migrations on SQLite, '
                          'PostgreSQL and MySQL/MariaDB only' % scheme)
    database = open_database(url, mode='migrate')
    try:
        with dialect_of(database).shadow(database) as shadow:
            yield shadow
    finally:
        database.close()


def apply(script, database, migrator=None, direction='up'):
    """Run one script's ``up`` (or ``down``) on a shadow database, as the engine would."""
    module = script.load((direction,))
    migrator = migrator or SchemaMigrator.from_database(database)
    try:
        with database.atomic():
            getattr(module, direction)(migrator, database)
    except ScriptError:
        raise
    except Exception as exc:
        backend = 'PostgreSQL' if dialect_of(database) is POSTGRESQL else \
            'a throwaway MySQL database' if dialect_of(database) is MYSQL else \
            'an empty in-memory SQLite database'
        raise ScriptError(script.name, '%s() fails on %s (%s: %s)' % (
            direction, backend, type(exc).__name__, str(exc).strip())) from exc


def replay(scripts, database, after_each=None):
    """Apply every script's ``up`` in order; ``after_each(script)`` is called after each."""
    if database.get_tables():
        raise MigrationError('the shadow database is not empty')
    migrator = SchemaMigrator.from_database(database)
    for script in scripts:
        apply(script, database, migrator)
        if after_each is not None:
            after_each(script)


def schema_of(database):
    """The whole schema, for exact comparison: {table: (columns, indexes, foreign keys)}."""
    schema = {}
    for table in sorted(database.get_tables()):
        if table == HISTORY_TABLE or table.startswith('sqlite_'):
            continue
        columns = {c.name: ((c.declared or '').upper(), c.null, c.default, c.primary_key)
                   for c in snapshot(database, table).columns.values()}
        indexes = {i.name: (tuple(i.columns), bool(i.unique))
                   for i in database.get_indexes(table)}
        keys = sorted((k.column, k.dest_table, k.dest_column)
                      for k in database.get_foreign_keys(table))
        schema[table] = (columns, indexes, keys)
    return schema


def schema_differences(expected, found):
    """Lines saying how schema ``found`` differs from ``expected``."""
    lines = []
    for table in sorted(expected.keys() - found.keys()):
        lines.append('table %s is gone' % table)
    for table in sorted(found.keys() - expected.keys()):
        lines.append('table %s is left behind' % table)
    for table in sorted(expected.keys() & found.keys()):
        for what, want, have in zip(('column', 'index', 'foreign keys'), expected[table],
                                    found[table]):
            if what == 'foreign keys':
                if want != have:
                    lines.append('%s: foreign keys %s became %s' % (table, want, have))
                continue
            for name in sorted(want.keys() | have.keys()):
                if want.get(name) != have.get(name):
                    lines.append('%s %s.%s: %s became %s' % (
                        what, table, name, want.get(name, 'absent'), have.get(name, 'absent')))
    return lines
