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

Scripts run as the engine runs them: a migrator of ``SchemaMigrator.from_database``'s class,
each ``up()`` in its own transaction (a savepoint inside the fallback's transaction, where an
``atomic = False`` script's ``db.in_transaction()`` is true, so 0005 takes its plain ``CREATE
INDEX`` path, as it does in the throwaway database's per-script transaction).
"""
import contextlib
import logging
import time
import uuid
from urllib.parse import urlsplit

from peewee import DatabaseError, PostgresqlDatabase, SqliteDatabase
from playhouse.migrate import SchemaMigrator

from ..exceptions import ConfigError, MigrationError, ScriptError, StorageError, one_line
from ..shared.database import open_database
from ..shared.dberrors import sqlstate
from ..shared.mysql import MYSQL_SCHEMES, is_mysql

__all__ = ['shadow_database', 'mysql_shadow', 'postgres_shadow', 'apply', 'replay']

log = logging.getLogger('modelstore.shadow')
INSUFFICIENT_PRIVILEGE, OBJECT_IN_USE = '42501', '55006'
DROP_SECONDS = 10


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
    try:
        with postgres_shadow(database) as shadow:
            yield shadow
    finally:
        database.close()


def _name():
    return 'modelstore_shadow_%s' % uuid.uuid4().hex[:12]


def _connection(database, name):
    """A new connection like ``database``'s (its class, host, user, options) to ``name``."""
    return type(database)(name, **database.connect_params)


def _closed(connection):
    """Close ``connection`` even when a script left a transaction open (peewee refuses then):
    the database it is in is dropped next, which its open session would block."""
    with contextlib.suppress(Exception):
        if connection.in_transaction():
            connection.rollback()
    while connection.in_transaction():
        connection.pop_transaction()
    with contextlib.suppress(Exception):
        connection.close()


@contextlib.contextmanager
def mysql_shadow(database):
    """An empty database beside ``database`` (MySQL) on its server, dropped afterwards."""
    name = _name()
    try:
        database.execute_sql('CREATE DATABASE `%s` CHARACTER SET utf8mb4' % name)
    except DatabaseError as exc:
        raise ConfigError('cannot replay the scripts on this server: creating a throwaway '
                          'database failed (%s); the user needs CREATE and DROP on databases '
                          'named modelstore_shadow_*' % str(exc).strip()) from None
    with _throwaway(database, _connection(database, name), name,
                    'DROP DATABASE IF EXISTS `%s`' % name) as shadow:
        yield shadow


@contextlib.contextmanager
def postgres_shadow(database):
    """An empty PostgreSQL database on ``database``'s server, dropped afterwards; without
    CREATEDB, a schema in ``database`` (see the module's docstring)."""
    name = _name()
    settings = database.execute_sql(
        'SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database '
        'WHERE datname = current_database()').fetchone() or ()
    # As the user's database is (a NULL setting, as some providers leave one: the server's).
    chosen = [(option, value) for option, value in zip(('ENCODING', 'LC_COLLATE', 'LC_CTYPE'),
                                                       settings) if value]
    try:
        database.execute_sql('CREATE DATABASE "%s" TEMPLATE template0%s' % (name, ''.join(
            ' %s %%s' % option for option, _ in chosen)), [value for _, value in chosen])
    except DatabaseError as exc:
        if sqlstate(exc) != INSUFFICIENT_PRIVILEGE:
            raise ConfigError('cannot replay the scripts on this server: creating a throwaway '
                              'database failed (%s)' % one_line(exc)) from None
        log.warning('the role may not create databases (CREATEDB), so the scripts are '
                    'replayed in a throwaway schema of the database instead (%s)', one_line(exc))
        with _schema_shadow(database, name) as shadow:
            yield shadow
        return
    force = ' WITH (FORCE)' if database.server_version >= 130000 else ''
    with _throwaway(database, _connection(database, name), name,
                    'DROP DATABASE IF EXISTS "%s"%s' % (name, force)) as shadow:
        yield shadow


@contextlib.contextmanager
def _schema_shadow(database, name):
    with _throwaway(database, _connection(database, database.database), name,
                    'DROP SCHEMA IF EXISTS "%s" CASCADE' % name) as shadow, \
            shadow.atomic() as transaction:
        try:
            # CREATE SCHEMA inside the transaction: a run killed now leaves nothing. SET, not
            # SET LOCAL: a script that commits keeps the search_path, so what it creates after
            # the commit lands in the schema, not in the database's own.
            shadow.execute_sql('CREATE SCHEMA "%s"' % name)
            shadow.execute_sql('SET search_path TO "%s"' % name)
        except DatabaseError as exc:
            raise ConfigError(
                'cannot replay the scripts on this server: the role may neither create a '
                'throwaway database (CREATEDB) nor a throwaway schema (%s); grant CREATEDB '
                '(ALTER ROLE ... CREATEDB), or CREATE on the database' % one_line(exc)) \
                from None
        try:
            yield shadow
        finally:
            with contextlib.suppress(Exception):
                transaction.rollback()


@contextlib.contextmanager
def _throwaway(database, shadow, name, drop):
    """Yield ``shadow``; then close it and run ``drop`` on ``database`` (retried for a few
    seconds while a session is still in it). If that fails, a StorageError names what is left
    -- unless the block failed already: that error is the one raised, and this one logged."""
    done = False
    try:
        yield shadow
        done = True
    finally:
        _closed(shadow)
        deadline = time.monotonic() + DROP_SECONDS
        while True:
            try:
                database.execute_sql(drop)
                break
            except DatabaseError as exc:
                if sqlstate(exc) == OBJECT_IN_USE and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                message = 'the throwaway %s could not be dropped (%s); drop it by hand' % (
                    name, one_line(exc))
                if done:
                    raise StorageError(message) from None
                log.error(message)
                break


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
