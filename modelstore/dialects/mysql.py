"""MySQL and MariaDB as modelstore opens them (``mysql://`` and ``mariadb://`` URLs, PyMySQL).

Every connection gets the same session, whatever the server's configuration:

* ``sql_mode`` strict (``STRICT_ALL_TABLES``: a value too long or of the wrong type is an error,
  never truncated or coerced -- the silent change this project exists to prevent), no zero
  dates, ``ANSI_QUOTES``: ``"name"`` is an identifier, as on SQLite and PostgreSQL, so a
  migration script's raw SQL reads the same on all three (strings are single-quoted anyway),
  and ``NO_BACKSLASH_ESCAPES``: a backslash in a string literal is a backslash, as in standard
  SQL and on the other backends -- ``DEFAULT 'C:\\new\\dir'`` stores what it says, not a
  newline, and ``'ends with \\'`` is a complete literal, not a syntax error. These modes are
  *added* to the server's own (``@@sql_mode``), not put in its place (PyMySQL's ``sql_mode``
  argument would replace it);
* ``utf8mb4`` (all of Unicode; MySQL's ``utf8`` is three bytes and refuses emoji) and
  ``time_zone = '+00:00'`` (``DATETIME`` holds no zone; modelstore's are UTC already);
* tables are InnoDB (transactions, row locks, foreign keys; ``ENGINE=InnoDB`` is said in every
  CREATE TABLE rather than trusted to the server's default), in utf8mb4 with a binary NO PAD
  collation (``Bot``, ``bot`` and ``bot `` are three names, as on the other backends);
  ``DATETIME(6)``: microseconds, as the other backends keep them (MySQL's bare DATETIME drops
  them); text is MEDIUMTEXT (TEXT holds only 64 KB), and the indexed text columns VARCHAR
  (modelstore.fields.KeyTextField).

JSON columns are declared ``JSON``: MySQL's binary JSON type; on MariaDB an alias of
``LONGTEXT`` with a ``CHECK (json_valid(...))``, so a value that is not JSON is refused there too.
"""
import contextlib
import math
import re
import time

import peewee
from peewee import DatabaseError, MySQLDatabase, fn

from ..exceptions import ConfigError, MigrationError
from .base import Dialect
from .session import RunSession, lock_held, poll
from .throwaway import connection_to, throwaway, throwaway_name

__all__ = ['MYSQL', 'MySQLDialect', 'mysql_shadow', 'SQL_MODE', 'SESSION_INIT', 'MYSQL_SCHEMES',
           'mysql_kwargs', 'check_mysql_query', 'server_flavour', 'atomic_ddl', 'string_literal',
           'reported_default']

SQL_MODE = ('ANSI_QUOTES,NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,'
            'ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION')
# Run by PyMySQL on every new connection (and reconnection): the server's modes plus ours.
SESSION_INIT = ("SET sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), '%s'), "
                "time_zone = '+00:00'" % SQL_MODE)
MYSQL_SCHEMES = ('mysql', 'mariadb')
INNODB_LOCKS_EVERY = 0.15  # seconds: see MySQLDialect.waiting_on_me


# PyMySQL's connect() keywords that make sense in a URL (the session is modelstore's), and how
# each is read from the URL's text.
_PARAMETERS = {'connect_timeout': int, 'read_timeout': int, 'write_timeout': int,
               'ssl_ca': str, 'ssl_cert': str, 'ssl_key': str, 'unix_socket': str,
               'ssl_verify_cert': lambda v: str(v).lower() in ('1', 'true', 'yes'),
               'ssl_verify_identity': lambda v: str(v).lower() in ('1', 'true', 'yes')}


def check_mysql_query(shown, pairs):
    """Refuse query parameters of a MySQL URL that would not be understood."""
    unknown = [key for key, _ in pairs if key not in _PARAMETERS]
    if unknown:
        raise ConfigError('MySQL URL %s has query parameters modelstore does not take: %s (it '
                          'takes %s)' % (shown, ', '.join(map(repr, unknown)),
                                         ', '.join(sorted(_PARAMETERS))))
    for key, value in pairs:
        if _PARAMETERS[key] is int and not re.fullmatch(r'\s*\d+\s*', value):
            raise ConfigError('MySQL URL %s: %s must be a whole number of seconds, got %r'
                              % (shown, key, value))


def mysql_kwargs(kwargs, connect_timeout):
    """playhouse.db_url's keywords for a MySQL URL, each of the driver's type (connect_timeout
    by default ``connect_timeout``)."""
    kwargs = dict(kwargs)
    kwargs.setdefault('connect_timeout', connect_timeout)
    if 'passwd' in kwargs:  # playhouse.db_url's name for it, which PyMySQL deprecates.
        kwargs['password'] = kwargs.pop('passwd')
    return {key: _PARAMETERS[key](value) if key in _PARAMETERS else value
            for key, value in kwargs.items()}


class _Session:
    """Mixed into the URL's MySQLDatabase class: the session settings above."""
    # MEDIUMTEXT: MySQL's TEXT holds 65,535 bytes, fewer than the 64 Ki characters of utf8mb4
    # text the registry takes in a description (modelstore.registry.validate).
    field_types = dict(MySQLDatabase.field_types, DATETIME='DATETIME(6)', TEXT='MEDIUMTEXT')
    sql_mode = None  # (peewee would pass it to PyMySQL, which replaces the server's modes.)

    def init(self, database, **kwargs):
        kwargs.setdefault('charset', 'utf8mb4')
        kwargs.pop('sql_mode', None)
        # Every connection made from this one's parameters (the engine's, the registry's, the
        # lock's, a shadow's) runs it: they are all made by type(database)(..., **connect_params).
        kwargs['init_command'] = SESSION_INIT
        super().init(database, **kwargs)
        # Called with each statement's text before it is sent (peewee's query_hooks run after
        # it): the migration engine logs a statement before DDL that commits by itself runs.
        self.before_hooks = []

    def execute_sql(self, sql, params=None):
        for hook in self.before_hooks:
            hook(sql)
        return super().execute_sql(sql, params)

    def _set_server_version(self, conn):
        super()._set_server_version(conn)
        # peewee's JSON values: JSON_COMPACT on MariaDB, CAST(... AS JSON) on MySQL.
        self.mariadb = 'mariadb' in str(conn.get_server_info()).lower()

    def create_tables(self, models, **options):
        for model in models:
            table_settings(self, model)
        return super().create_tables(models, **options)


def binary_collation(database):
    """The utf8mb4 collation that compares as SQLite and PostgreSQL do: by code point, case and
    trailing spaces counting (MariaDB's and MySQL 8's ``_bin`` collations ignore trailing
    spaces; their NO PAD ones do not)."""
    version = getattr(database, 'server_version', None) or (0,)
    if version >= (10, 2):
        return 'utf8mb4_nopad_bin'  # MariaDB
    if version >= (8, 0, 17):
        return 'utf8mb4_0900_bin'
    return 'utf8mb4_bin'


def table_settings(database, model):
    """``ENGINE=InnoDB`` and utf8mb4 with the binary collation on ``model``'s CREATE TABLE
    (peewee's table_settings): a name is unique, and found, exactly as it was written --
    ``Bot`` is not ``bot`` -- as on the other backends."""
    settings = list(model._meta.table_settings or ())
    if not any('ENGINE' in str(s).upper() for s in settings):
        database.connect(reuse_if_open=True)  # (server_version)
        model._meta.table_settings = settings + [
            'ENGINE=InnoDB', 'DEFAULT CHARSET=utf8mb4', 'COLLATE=%s' % binary_collation(database)]


def server_flavour(database):
    """('mariadb' or 'mysql', version tuple) of an open MySQL database."""
    version = database.execute_sql('SELECT VERSION()').fetchone()[0]
    numbers = tuple(int(n) for n in version.split('-')[0].split('.')[:3] if n.isdigit())
    return ('mariadb' if 'mariadb' in version.lower() else 'mysql'), numbers


def atomic_ddl(database):
    """Whether a DDL statement the server refused left nothing behind (MariaDB 10.6+, MySQL 8:
    atomic DDL; before them a failed ALTER could leave part of its work)."""
    version = getattr(database, 'server_version', None) or (0,)
    return version >= ((10, 6) if getattr(database, 'mariadb', False) else (8, 0))


def string_literal(text):
    """The value of ``text`` if it is one standard SQL string literal (``'it''s'``; a backslash
    is itself, as in modelstore's session), else None."""
    match = re.fullmatch(r"\s*'((?:[^']|'')*)'\s*", text or '', re.S)
    return match[1].replace("''", "'") if match else None


# MariaDB's escapes in a quoted COLUMN_DEFAULT (whatever the session's sql_mode).
_MARIADB_ESCAPES = {'0': '\0', 'n': '\n', 'r': '\r', 't': '\t', 'b': '\b', 'Z': '\x1a'}
_MARIADB_LITERAL = re.compile(r"'((?:[^'\\]|''|\\.)*)'", re.S)


def reported_default(database, table, column, reported):
    """The string a column's default is, from what information_schema.COLUMNS.COLUMN_DEFAULT
    reports for it (``reported``); None if that is not a string (NULL, a number, an
    expression).

    MariaDB reports a string default quoted, in its own escaping (``'it''s C:\\\\dir\\n'``);
    MySQL reports the value itself. Both report it in utf8mb3, where a character outside the
    Basic Multilingual Plane is ``?``: then the default is read from the server exactly, with
    ``DEFAULT()``, on no row."""
    if reported is None:
        return None
    value = reported
    if getattr(database, 'mariadb', False):
        match = _MARIADB_LITERAL.fullmatch(reported)
        if match is None:
            return None
        value = re.sub(r"''|\\(.)", lambda m: "'" if m[1] is None else
                       _MARIADB_ESCAPES.get(m[1], m[1]), match[1], flags=re.S)
    if '?' in value:
        quoted_table, quoted_column = ('`%s`' % name.replace('`', '``')
                                       for name in (table, column))
        exact = database.execute_sql(
            'SELECT DEFAULT(t.%s) FROM (SELECT 1) AS one LEFT JOIN %s AS t ON FALSE'
            % (quoted_column, quoted_table)).fetchone()[0]
        if isinstance(exact, str):
            value = exact
    return value


# MySQL: the full column type (``varchar(255)``, ``tinyint(1)``), which peewee's get_columns
# reduces to its name.
_MYSQL_TYPES = """
SELECT column_name, column_type FROM information_schema.columns
WHERE table_schema = DATABASE() AND table_name = %s"""


# The transactions open in other sessions of this database since before a wait.
_BLOCKERS = """
SELECT p.id, p.command, TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) / 1e6,
       DATABASE(), p.info
FROM information_schema.innodb_trx t
JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id
WHERE p.id <> CONNECTION_ID() AND t.trx_started <= NOW(6) - INTERVAL %s SECOND
ORDER BY t.trx_started
"""


class MySQLRunSession(RunSession):
    """``GET_LOCK('modelstore:<sha1 of the database name>', 0)``, polled until the timeout, on
    the run's connection; ``verify`` checks it is still that connection's (a reconnect would
    have lost it)."""

    def __enter__(self):
        self._refuse_open_transaction()
        db = self.database
        db.connect(reuse_if_open=True)
        # At most 64 characters; the same for every client of this database.
        self._name = db.execute_sql("SELECT CONCAT('modelstore:', SHA1(DATABASE()))"
                                    ).fetchone()[0]
        if not poll(lambda: db.execute_sql('SELECT GET_LOCK(%s, 0)', (self._name,)
                                           ).fetchone()[0] == 1, self.timeout, 0.01, 0.25):
            holder = db.execute_sql('SELECT IS_USED_LOCK(%s)', (self._name,)).fetchone()[0]
            raise lock_held(self.timeout, holder=' (connection id %s)' % holder if holder else '')
        self._connection = db.connection()
        return self

    def verify(self):
        try:
            mine = self.database.connection() is self._connection and self.database.execute_sql(
                'SELECT IS_USED_LOCK(%s) = CONNECTION_ID()', (self._name,)).fetchone()[0]
        except Exception as exc:
            mine, why = False, ' '.join(str(exc).split())
        else:
            why = 'its connection was replaced'
        if not mine:
            raise MigrationError('the migration lock was lost (%s); what was recorded before '
                                 'stays recorded, run migrate again' % why)

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.database.connection() is self._connection:
                self.database.execute_sql('DO RELEASE_LOCK(%s)', (self._name,))
        except Exception:
            if exc_type is None:  # A lost connection has released the lock already.
                raise
        return False


class MySQLDialect(Dialect):
    """MySQL and MariaDB: DDL commits by itself, so a script's operations are logged one by one
    (modelstore.engine.nontx), and the last batch of an online script is ``LOCK TABLES``, no
    transaction."""
    name = 'mysql'
    label = 'MySQL/MariaDB'
    database_class = MySQLDatabase
    schemes = MYSQL_SCHEMES
    operation_log = True
    upsert_names_key = False
    insert_id_value = True
    final_batch_lock = 'tables'
    ddl_lock_waits = True
    session_mixin = _Session
    run_session_class = MySQLRunSession
    epoch = 'UNIX_TIMESTAMP(SYSDATE(6))'  # (NOW() is the statement's start; SYSDATE() is now)

    def contains(self, field, pattern):
        # Its columns compare binary (as elsewhere): LOWER() LIKE LOWER(). The session has
        # NO_BACKSLASH_ESCAPES (above): the same ESCAPE text as on the other backends.
        return peewee.NodeList((fn.LOWER(field), peewee.SQL('LIKE'), fn.LOWER(pattern),
                                peewee.SQL("ESCAPE '\\'")))

    def json_object(self, pairs):
        return fn.JSON_OBJECT(*[part for key, value in pairs for part in (key, value)])

    def final_number(self, field, key):
        path = '$."%s"' % key
        numbers = ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')
        # The last element by its index, not '[last]': MariaDB 10.11 resolves [last] once, and
        # after a row without the array returns NULL for every row that follows. GREATEST
        # keeps the path valid for an empty list (MySQL has no negative indexes).
        index = fn.GREATEST(fn.COALESCE(fn.JSON_LENGTH(field, path), 1) - 1, 0)
        value = fn.JSON_EXTRACT(field, path)
        final = fn.JSON_EXTRACT(field, fn.CONCAT(path, '[', index, ']'))
        return peewee.Case(None, [
            (fn.JSON_TYPE(value).in_(numbers), value.cast('DOUBLE')),
            ((fn.JSON_TYPE(value) == 'ARRAY') & fn.JSON_TYPE(final).in_(numbers),
             final.cast('DOUBLE'))])

    def waiting_on_me(self, database):
        # InnoDB's lock waits whose blocking transaction is this connection's (it needs the
        # PROCESS privilege: without it, None -- the runner stops asking). InnoDB refreshes
        # what information_schema shows of them only when it was last read more than 0.1 s ago:
        # asked more often, it would show the same old copy for ever, so it is asked at most
        # every INNODB_LOCKS_EVERY seconds (0 in between).
        now = time.monotonic()
        if now - getattr(database, '_modelstore_waits_asked', float('-inf')) \
                < INNODB_LOCKS_EVERY:
            return 0
        database._modelstore_waits_asked = now
        try:
            return self._waiting_on_me(database)
        except DatabaseError:
            return None

    def _waiting_on_me(self, database):
        return database.execute_sql(
            'SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS w '
            'JOIN information_schema.INNODB_TRX t ON t.trx_id = w.blocking_trx_id '
            'WHERE t.trx_mysql_thread_id = CONNECTION_ID()').fetchone()[0]

    def lock_tables(self, database, tables):
        """The final batch's lock: ``LOCK TABLES t WRITE, ...`` (no other table can be read);
        a ``(table, alias)`` pair locks the table under that alias too."""
        q = database.quote[0]  # (A backtick: pwmigrate's session has no ANSI_QUOTES.)

        def named(entry):
            table, alias = entry if isinstance(entry, tuple) else (entry, None)
            return '%s%s%s%s WRITE' % (q, table, q, '' if alias is None else
                                       ' AS %s%s%s' % (q, alias, q))
        database.execute_sql('LOCK TABLES %s' % ', '.join(map(named, tables)))

    def unlock_tables(self, database):
        database.execute_sql('UNLOCK TABLES')

    @contextlib.contextmanager
    def lock_wait(self, database, seconds):
        """LOCK TABLES waits at most ``seconds`` (whole) in this session, then as before."""
        old = database.execute_sql('SELECT @@SESSION.lock_wait_timeout').fetchone()[0]
        database.execute_sql('SET SESSION lock_wait_timeout = %d' % seconds)
        try:
            yield
        finally:
            database.execute_sql('SET SESSION lock_wait_timeout = %s', (old,))

    def set_ddl_lock_timeout(self, database, seconds):
        # Whole seconds, for the session (DDL commits: there is no transaction to scope it).
        database.execute_sql('SET SESSION lock_wait_timeout = %d' % max(1, math.ceil(seconds)))

    def reset_ddl_lock_timeout(self, database):
        try:
            database.execute_sql('SET SESSION lock_wait_timeout = DEFAULT')
        except Exception:  # A connection that is gone takes its session with it.
            pass

    def blocker_rows(self, database, waited):
        return [(pid, state, seconds, [where], query) for pid, state, seconds, where, query
                in database.execute_sql(_BLOCKERS, (waited,)).fetchall()]

    def shadow(self, database):
        return mysql_shadow(database)

    def full_column_types(self, database, table):
        return dict(database.execute_sql(_MYSQL_TYPES, (table,)).fetchall())

    def trigger_names(self, database, table):
        return {r[0] for r in database.execute_sql(
            'SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = '
            'DATABASE() AND event_object_table = %s', (table,))}


@contextlib.contextmanager
def mysql_shadow(database):
    """An empty database beside ``database`` (MySQL) on its server, dropped afterwards."""
    name = throwaway_name()
    try:
        database.execute_sql('CREATE DATABASE `%s` CHARACTER SET utf8mb4' % name)
    except DatabaseError as exc:
        raise ConfigError('cannot replay the scripts on this server: creating a throwaway '
                          'database failed (%s); the user needs CREATE and DROP on databases '
                          'named modelstore_shadow_*' % str(exc).strip()) from None
    with throwaway(database, connection_to(database, name), name,
                    'DROP DATABASE IF EXISTS `%s`' % name) as shadow:
        yield shadow


MYSQL = MySQLDialect()
