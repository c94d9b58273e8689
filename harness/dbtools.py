"""Database helpers shared by the tests and the harnesses: plain-driver queries and dumps.

Everything goes through the plain driver (sqlite3, psycopg2, PyMySQL), never through
modelstore, so a check cannot be fooled by the code it checks. ``target`` is a SQLite path, a
``sqlite:///`` URL, a PostgreSQL URL or a MySQL/MariaDB URL (its sessions with ANSI_QUOTES, so
``"name"`` is an identifier on all three).
"""
import datetime
import sqlite3
import uuid
from urllib.parse import urlsplit, urlunsplit

# Creating and dropping throwaway databases is the pytest plugin's job too: one implementation.
from modelstore.testing.postgres_server import create_database, drop_database  # noqa: E402,F401
from modelstore.testing import mysql_server as _mysql
from modelstore.testing.mysql_server import is_mysql_url


def new_database(admin_url):
    """An empty database on the server of ``admin_url`` (PostgreSQL or MySQL); (url, drop)."""
    if is_mysql_url(admin_url):
        return _mysql.throwaway_database(admin_url, 'ms_test')
    return new_postgres_database(admin_url)


def new_postgres_database(admin_url):
    """Create an empty database on the server of ``admin_url``; returns (url, drop)."""
    name = 'ms_test_%s' % uuid.uuid4().hex[:16]
    create_database(admin_url, name)
    parts = urlsplit(admin_url)

    def drop():
        drop_database(admin_url, name)
    return urlunsplit(parts._replace(path='/' + name)), drop


def _is_sqlite(target):
    return '://' not in target or target.startswith('sqlite:')


def _connect(target):
    """(connection, placeholder style) through the plain driver."""
    if _is_sqlite(target):
        return sqlite3.connect(_sqlite_path(target)), '?'
    if is_mysql_url(target):
        return _mysql.driver_connect(target), '%s'
    import psycopg2
    return psycopg2.connect(target), '%s'


def _sqlite_path(target):
    return target[len('sqlite:///'):] if target.startswith('sqlite:') else target


def _query(target, sql, params=()):
    """Rows of ``sql`` on a SQLite path or any database URL, through the plain driver."""
    conn, style = _connect(target)
    if style != '?':
        sql = sql.replace('?', '%s')
    try:
        cur = conn.cursor()
        # (PyMySQL formats the text with any parameters given, even none: () would read a LIKE
        # pattern's % as a placeholder.)
        cur.execute(sql, None if not params and is_mysql_url(target) else params)
        rows = list(cur.fetchall()) if cur.description else []  # (PyMySQL: a tuple)
        names = [d[0] for d in cur.description] if cur.description else []
        conn.commit()
        return names, rows
    finally:
        conn.close()


def execute(target, *statements):
    """Run statements (raw SQL, or (SQL, parameters) pairs) in one transaction on a SQLite
    path or a database URL."""
    conn, style = _connect(target)
    try:
        cur = conn.cursor()
        for sql in statements:
            sql, params = (sql, None) if isinstance(sql, str) else sql
            if params is None:
                cur.execute(sql)
            else:
                cur.execute(sql if style == '?' else sql.replace('?', '%s'), params)
        conn.commit()
    finally:
        conn.close()


def tables(target):
    if _is_sqlite(target):
        sql = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    elif is_mysql_url(target):
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
               "AND table_type = 'BASE TABLE'")
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    return {r[0] for r in _query(target, sql)[1]}


def columns(target, table):
    if _is_sqlite(target):
        return [r[1] for r in _query(target, 'PRAGMA table_info("%s")' % table)[1]]
    schema = 'DATABASE()' if is_mysql_url(target) else "'public'"
    return [r[0] for r in _query(target, 'SELECT column_name FROM information_schema.columns '
                                 'WHERE table_schema = %s AND table_name = %%s ORDER BY '
                                 'ordinal_position' % schema, (table,))[1]]


def schema(target):
    """Every table's definition and index (SQLite: sqlite_master; PostgreSQL: the catalog)."""
    if _is_sqlite(target):
        return _query(target, 'SELECT type, name, tbl_name, sql FROM sqlite_master '
                      'ORDER BY type, name')[1]
    if is_mysql_url(target):
        found = _query(target, 'SELECT table_name, column_name, column_type, is_nullable, '
                       'column_default FROM information_schema.columns WHERE table_schema = '
                       'DATABASE() ORDER BY table_name, column_name')[1]
        return found + _query(target, 'SELECT table_name, index_name, non_unique, seq_in_index, '
                              'column_name FROM information_schema.statistics WHERE '
                              'table_schema = DATABASE() ORDER BY table_name, index_name, '
                              'seq_in_index')[1] + _query(
            target, "SELECT 'trigger', trigger_name, action_statement FROM "
            'information_schema.triggers WHERE trigger_schema = DATABASE() ORDER BY '
            'trigger_name')[1]
    found = _query(target, 'SELECT table_name, column_name, data_type, is_nullable, '
                   'column_default FROM information_schema.columns WHERE table_schema = '
                   "'public' ORDER BY table_name, column_name")[1]
    return found + _query(target, "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE "
                          "schemaname = 'public' ORDER BY tablename, indexname")[1]


def dump(target):
    """Schema and every row of every table, to compare a database before and after -- but the
    rows of the clients table, which every connect() and close() change by design (each
    store's own registration, modelstore.engine.clients; tests/test_clients.py checks them)."""
    definitions = schema(target)
    if _is_sqlite(target):
        names = [r[1] for r in definitions if r[0] == 'table']
    else:
        names = sorted(tables(target))
    rows = {}
    for name in names:
        if name == 'modelstore_clients':
            continue
        ncols = len(columns(target, name))
        order = ', '.join(str(i + 1) for i in range(ncols))
        rows[name] = _query(target, 'SELECT * FROM "%s" ORDER BY %s' % (name, order))[1]
    return definitions, rows


def history(target):
    names, rows = _query(target, 'SELECT * FROM schema_migration ORDER BY id')
    return [dict(zip(names, row)) for row in rows]


def as_datetime(value):
    """A history timestamp as a datetime: SQLite returns text, the servers a datetime."""
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else value


def query(target, sql, params=()):
    """The rows of one query, through the plain driver (``?`` placeholders on both)."""
    return [tuple(r) for r in _query(target, sql, params)[1]]
