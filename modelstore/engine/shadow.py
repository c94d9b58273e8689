"""The schema the scripts produce, built where nothing real is touched (the *shadow*).

Adoption compares a live table with the states the scripts produce; ``new --auto`` and
``check_migrations`` compare the models with them. Both replay the scripts' ``up()`` on an
empty database:

* ``sqlite`` (the default, and for any ``sqlite://`` URL): a fresh in-memory database;
* a MySQL/MariaDB URL: a database of its own on that server (``modelstore_shadow_<random>``),
  dropped at the end (DDL commits there, so no transaction can hold it; a run killed meanwhile
  leaves it behind, recognisable by its name). The user needs CREATE and DROP;
* a PostgreSQL URL: one transaction on that server, inside it a schema of its own
  (``modelstore_shadow_<random>``) first on the ``search_path``; everything the scripts create
  lands there, and the transaction is rolled back at the end -- the database's own tables are
  never read or changed, and nothing is left behind (even by a kill: an open transaction that
  dies is rolled back by the server). The role needs CREATE on the database.

Scripts run as the engine runs them: a migrator of ``SchemaMigrator.from_database``'s class,
each ``up()`` in its own transaction (a savepoint inside the PostgreSQL shadow's transaction,
where an ``atomic = False`` script's ``db.in_transaction()`` is true, so 0005 takes its plain
``CREATE INDEX`` path).
"""
import contextlib
import uuid
from urllib.parse import urlsplit

from peewee import DatabaseError, PostgresqlDatabase, SqliteDatabase
from playhouse.migrate import SchemaMigrator

from ..exceptions import ConfigError, MigrationError, ScriptError
from ..shared.database import open_database
from ..shared.mysql import MYSQL_SCHEMES, is_mysql

__all__ = ['shadow_database', 'mysql_shadow', 'apply', 'replay']


@contextlib.contextmanager
def shadow_database(url=None):
    """Yield an empty database of ``url``'s backend (default SQLite) that is thrown away."""
    scheme = urlsplit(url).scheme if url else 'sqlite'
    if scheme.startswith('sqlite'):
        database = SqliteDatabase(':memory:')
        try:
            yield database
        finally:
            database.close()
        return
    if scheme.split('+')[0] in MYSQL_SCHEMES:
        database = open_database(url, mode='migrate')
        try:
            with mysql_shadow(database) as shadow:
                yield shadow
        finally:
            database.close()
        return
    if not scheme.startswith('postgres'):
        raise ConfigError('cannot replay the scripts on %s: modelstore runs migrations on SQLite, '
                          'PostgreSQL and MySQL/MariaDB only' % scheme)
    database = open_database(url, mode='migrate')
    name = 'modelstore_shadow_%s' % uuid.uuid4().hex[:12]
    try:
        with database.atomic() as transaction:
            try:
                database.execute_sql('CREATE SCHEMA "%s"' % name)
                database.execute_sql('SET LOCAL search_path TO "%s"' % name)
            except DatabaseError as exc:
                raise ConfigError('cannot replay the scripts on this server: creating a '
                                  'throwaway schema failed (%s); the role needs CREATE on the '
                                  'database' % str(exc).strip()) from None
            try:
                yield database
            finally:
                transaction.rollback()
    finally:
        database.close()


@contextlib.contextmanager
def mysql_shadow(database):
    """An empty database beside ``database`` (MySQL) on its server, dropped afterwards."""
    name = 'modelstore_shadow_%s' % uuid.uuid4().hex[:12]
    try:
        database.execute_sql('CREATE DATABASE `%s` CHARACTER SET utf8mb4' % name)
    except DatabaseError as exc:
        raise ConfigError('cannot replay the scripts on this server: creating a throwaway '
                          'database failed (%s); the user needs CREATE and DROP on databases '
                          'named modelstore_shadow_*' % str(exc).strip()) from None
    shadow = type(database)(name, **database.connect_params)
    try:
        yield shadow
    finally:
        shadow.close()
        database.execute_sql('DROP DATABASE IF EXISTS `%s`' % name)


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
        backend = 'PostgreSQL' if isinstance(database, PostgresqlDatabase) else \
            'a throwaway MySQL database' if is_mysql(database) else \
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
