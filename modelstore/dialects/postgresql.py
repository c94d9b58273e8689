"""PostgreSQL as modelstore uses it: a server, transactional DDL, concurrent index builds.

A migration run commits each script in a transaction of its own (PostgresRunSession holds a
transaction-scoped advisory lock on a connection of its own); the last batch of an online
script takes ``LOCK TABLE ... IN SHARE ROW EXCLUSIVE MODE``; a concurrent index build that died
leaves an INVALID index, which introspection reports.
"""
import contextlib
import logging
import math
import select

import peewee
from peewee import DatabaseError, PostgresqlDatabase, fn

from ..exceptions import ConfigError, MigrationError, one_line
from .base import Dialect
from .errors import sqlstate
from .session import RunSession, lock_held, poll
from .throwaway import connection_to, throwaway, throwaway_name

__all__ = ['POSTGRESQL', 'PostgresqlDialect', 'PostgresRunSession', 'postgres_shadow']

log = logging.getLogger('modelstore.shadow')
INSUFFICIENT_PRIVILEGE = '42501'


# The sessions holding locks on the schema's tables since before a wait began.
_BLOCKERS = """
SELECT a.pid, a.state, EXTRACT(EPOCH FROM clock_timestamp() - a.xact_start),
       array_agg(DISTINCT c.relname ORDER BY c.relname), a.query
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid() AND c.relkind IN ('r', 'p')
  AND c.relnamespace = current_schema()::regnamespace
  AND a.xact_start <= clock_timestamp() - make_interval(secs => %s)
GROUP BY a.pid, a.state, a.xact_start, a.query
ORDER BY a.xact_start
"""


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


class PostgresRunSession(RunSession):
    """A transaction-scoped advisory lock, held by a connection of its own in a transaction
    that stays open for the whole run; polled with ``pg_try_advisory_xact_lock`` until the
    timeout.

    Not a session lock: behind a pooler in transaction mode (PgBouncer), the statements of one
    client session run on whichever server connection is free, so a session lock would be
    taken on one and "released" on another -- it would protect nothing, and stay held. An open
    transaction keeps its server connection, there as directly. The lock goes when the run
    ends (ROLLBACK), when its process dies (the connection closes), or when the server ends its
    session -- which ``verify`` notices before each script. Advisory locks never block ordinary
    reads and writes, and the idle transaction holds no snapshot (READ COMMITTED). Scripts run
    one transaction each, with their history row, on the run's own connection.
    """
    # Any fixed 64-bit key; this one spells "modelstr".
    KEY = 0x6D6F64656C737472

    def __enter__(self):
        self._refuse_open_transaction()
        db = self.database
        self._holder = type(db)(db.database, **db.connect_params)
        try:
            self._take()
        except BaseException:
            self._holder.close()
            raise
        return self

    def _take(self):
        self._holder.connect()
        if not poll(self._try, self.timeout, 0.01, 0.25):
            raise lock_held(self.timeout)

    def _try(self):
        holder = self._holder
        holder.execute_sql('BEGIN ISOLATION LEVEL READ COMMITTED')
        # Not ended by a server-wide idle-in-transaction timeout while scripts run.
        holder.execute_sql('SET LOCAL idle_in_transaction_session_timeout = 0')
        if holder.execute_sql('SELECT pg_try_advisory_xact_lock(%s)', (self.KEY,)).fetchone()[0]:
            return True
        holder.execute_sql('ROLLBACK')
        return False

    def verify(self):
        try:
            self._holder.execute_sql('SELECT 1')
        except Exception as exc:
            raise MigrationError('the migration lock was lost (its connection ended: %s); the '
                                 'scripts committed before stay applied, run migrate again'
                                 % ' '.join(str(exc).split())) from None

    def __exit__(self, exc_type, exc, tb):
        try:
            self._holder.execute_sql('ROLLBACK')  # Releases the lock.
        except Exception:
            if exc_type is None:  # A lost connection has released the lock already.
                raise
        finally:
            self._holder.close()
        return False


class PostgresqlDialect(Dialect):
    name = 'postgresql'
    label = 'PostgreSQL'
    database_class = PostgresqlDatabase
    schemes = ('postgres', 'postgresql')
    transactional_ddl = True
    returning = True
    json_as_text = False
    partial_indexes = True
    concurrent_indexes = True
    final_batch_lock = 'table'
    ddl_lock_waits = True
    run_session_class = PostgresRunSession
    epoch = 'extract(epoch from clock_timestamp())::float8'  # (now() is the transaction's)

    def contains(self, field, pattern):
        return peewee.NodeList((field, peewee.SQL('ILIKE'), pattern, peewee.SQL("ESCAPE '\\'")))

    def probed_per_row(self, subquery):
        # An OFFSET keeps the planner from pulling the EXISTS up into a semi-join (it then
        # hash-joined a common tag's every carrier to filter a page of a rarer one): a SubPlan.
        return subquery.offset(peewee.SQL('0'))

    def notify(self, database, channel, payload):
        database.execute_sql('SELECT pg_notify(%s, %s)', (channel, payload))

    def notify_sql(self, channel, value):
        return "pg_notify('%s', CAST(%s AS text))" % (channel, value)

    def listen(self, database, channel):
        database.execute_sql('LISTEN "%s"' % channel)
        return True

    def unlisten(self, database, channel):
        database.execute_sql('UNLISTEN "%s"' % channel)
        del database.connection().notifies[:]

    def wait_notified(self, database, timeout):
        connection = database.connection()
        if not connection.notifies and select.select([connection], [], [], timeout)[0]:
            connection.poll()  # Reads what arrived: notifications land in .notifies.
        arrived = bool(connection.notifies)
        del connection.notifies[:]
        return arrived

    def json_object(self, pairs):
        return fn.jsonb_build_object(*[part for key, value in pairs for part in (key, value)])

    def final_number(self, field, key):
        # (metrics is jsonb here. The key is a bound parameter, sent as text: not through
        # the JSON field's own conversion.)
        name, end = peewee.Value(key, converter=False), peewee.Value(-1, converter=False)
        value = peewee.Expression(field, '->', name)
        last = peewee.Expression(value, '->', end)
        return peewee.Case(None, [
            (fn.jsonb_typeof(value) == 'number',
             peewee.Expression(field, '->>', name).cast('float8')),
            ((fn.jsonb_typeof(value) == 'array') & (fn.jsonb_typeof(last) == 'number'),
             peewee.Expression(value, '->>', end).cast('float8'))])

    def set_ddl_lock_timeout(self, database, seconds):
        # Transaction-scoped: nothing leaks to a pooled connection.
        database.execute_sql("SET LOCAL lock_timeout = '%dms'" % max(1, math.ceil(seconds * 1000)))

    def blocker_rows(self, database, waited):
        return [(pid, state, seconds, list(tables), query) for pid, state, seconds, tables, query
                in database.execute_sql(_BLOCKERS, (waited,)).fetchall()]

    def waiting_on_me(self, database):
        # pg_locks, not pg_stat_activity: that one is a snapshot kept for the whole transaction.
        return database.execute_sql(
            'SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted '
            'AND pg_backend_pid() = ANY(pg_blocking_pids(pid))').fetchone()[0]

    def lock_table(self, database, table, wait=None):
        """The final batch's lock: readers go on, writers wait for this transaction. With
        ``wait`` (seconds), a lock not granted by then fails (lock_not_available), and undoes
        only itself."""
        if wait is None:
            database.execute_sql('LOCK TABLE "%s" IN SHARE ROW EXCLUSIVE MODE' % table)
            return
        with database.atomic():  # A savepoint: a timed-out LOCK is undone alone.
            database.execute_sql("SET LOCAL lock_timeout = '%dms'" % int(wait * 1000))
            self.lock_table(database, table)
        database.execute_sql('SET LOCAL lock_timeout = DEFAULT')

    def autovacuum_wait(self, database, table):
        """Seconds a lock request on ``table`` must wait for PostgreSQL to cancel the
        autovacuum holding it (it does once a request has waited ``deadlock_timeout`` behind
        one, unless the vacuum prevents wraparound), plus a margin; None when no cancellable
        autovacuum holds a lock on it. A request that gives up sooner never gets the table
        while a vacuum of a large table runs, which can take minutes."""
        row = database.execute_sql(
            "SELECT EXTRACT(EPOCH FROM current_setting('deadlock_timeout')::interval) "
            'FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid '
            "WHERE l.relation = %s::regclass AND l.granted "
            "AND a.backend_type = 'autovacuum worker' "
            "AND a.query NOT LIKE '%%to prevent wraparound%%' LIMIT 1",
            ('"%s"' % table,)).fetchone()
        return None if row is None else float(row[0]) + 0.2

    def invalid_indexes(self, database, table):
        """Left by a concurrent build that died."""
        return [row[0] for row in database.execute_sql(
            'SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid '
            'JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname = %s AND NOT i.indisvalid '
            'ORDER BY c.relname', (table,))]

    def shadow(self, database):
        return postgres_shadow(database)

    def table_columns(self, database, table):
        return list(database.execute_sql(_PG_COLUMNS, (table,)))

    def table_indexes(self, database, table, primary_key):
        # Invalid indexes (a CREATE INDEX CONCURRENTLY that died) are not there for any purpose.
        return {(tuple(c.strip('"') for c in cols), bool(unique))
                for unique, primary, valid, cols in database.execute_sql(_PG_INDEXES, (table,))
                if valid and not primary}

    def trigger_names(self, database, table):
        return {r[0] for r in database.execute_sql(
            'SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal',
            (table,))}


@contextlib.contextmanager
def postgres_shadow(database):
    """An empty PostgreSQL database on ``database``'s server, dropped afterwards; without
    CREATEDB, a schema in ``database`` (see the module's docstring)."""
    name = throwaway_name()
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
    with throwaway(database, connection_to(database, name), name,
                    'DROP DATABASE IF EXISTS "%s"%s' % (name, force)) as shadow:
        yield shadow


@contextlib.contextmanager
def _schema_shadow(database, name):
    with throwaway(database, connection_to(database, database.database), name,
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


POSTGRESQL = PostgresqlDialect()
