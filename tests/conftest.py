"""Fixtures: a fresh database per test, the CLI run through main(), throwaway scripts.

The suite runs on SQLite by default. With MODELSTORE_TEST_DATABASE_URL set to a PostgreSQL URL
(scripts/test.sh starts a throwaway server and sets it), ``db_url`` is a fresh database on that
server instead, created for the test and dropped after it, and tests marked ``sqlite_only`` -- or
that use ``db_path``, a SQLite file -- are deselected: they test SQLite itself (files, pragmas,
the legacy apps' SQLite files).
"""
import datetime
import os
import sqlite3
import textwrap
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from modelstore.cli import main
from modelstore.loader import default_directory

SHIPPED = [os.path.basename(p)[:-3] for p in sorted(os.listdir(default_directory()))
           if p[0].isdigit() and p.endswith('.py')]

TEST_URL = os.environ.get('MODELSTORE_TEST_DATABASE_URL') or None
ON_POSTGRES = bool(TEST_URL) and urlsplit(TEST_URL).scheme.startswith('postgres')
BACKEND = 'postgresql' if ON_POSTGRES else 'sqlite'
if TEST_URL and not ON_POSTGRES:
    raise RuntimeError('MODELSTORE_TEST_DATABASE_URL must be a postgresql:// URL, got %r'
                       % urlsplit(TEST_URL).scheme)


def pytest_configure(config):
    config.addinivalue_line('markers', 'sqlite_only: tests SQLite itself; not run on PostgreSQL')
    config.addinivalue_line('markers', 'postgres_only: needs a PostgreSQL server')


def pytest_report_header(config):
    return 'modelstore test backend: %s' % (
        BACKEND if not ON_POSTGRES else 'postgresql (%s)' % _masked(TEST_URL))


def _masked(url):
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(':%s@' % parts.password, ':***@'))
    return urlunsplit(parts)


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        sqlite_only = item.get_closest_marker('sqlite_only') or 'db_path' in getattr(
            item, 'fixturenames', ())
        postgres_only = item.get_closest_marker('postgres_only')
        if (ON_POSTGRES and sqlite_only) or (not ON_POSTGRES and postgres_only):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test sees the user's database, environment URL or terminal colours."""
    monkeypatch.setenv('XDG_DATA_HOME', str(tmp_path / 'xdg'))
    monkeypatch.delenv('MODELSTORE_DATABASE_URL', raising=False)
    monkeypatch.setenv('NO_COLOR', '1')


def _admin():
    import psycopg2
    conn = psycopg2.connect(TEST_URL)
    conn.autocommit = True
    return conn


def new_postgres_database():
    """Create an empty database on the test server; returns (url, drop)."""
    name = 'ms_test_%s' % uuid.uuid4().hex[:16]
    conn = _admin()
    try:
        conn.cursor().execute('CREATE DATABASE %s' % name)
    finally:
        conn.close()
    parts = urlsplit(TEST_URL)

    def drop():
        conn = _admin()
        try:
            conn.cursor().execute('DROP DATABASE IF EXISTS %s WITH (FORCE)' % name)
        finally:
            conn.close()
    return urlunsplit(parts._replace(path='/' + name)), drop


@pytest.fixture
def db_path(tmp_path):
    """A SQLite file path: a test that uses it is SQLite-specific."""
    return str(tmp_path / 'registry.db')


@pytest.fixture
def db_url(tmp_path):
    """A fresh, empty database of the backend under test."""
    if not ON_POSTGRES:
        yield 'sqlite:///' + str(tmp_path / 'registry.db')
        return
    url, drop = new_postgres_database()
    yield url
    drop()


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def scripts(tmp_path):
    """Write throwaway migration scripts: scripts('0001_x.py', body); scripts.dir is the path."""
    directory = tmp_path / 'scripts'
    directory.mkdir()

    def write(name, body):
        path = directory / name
        path.write_text(textwrap.dedent(body))
        return path

    write.dir = str(directory)
    return write


def _is_sqlite(target):
    return '://' not in target or target.startswith('sqlite:')


def _sqlite_path(target):
    return target[len('sqlite:///'):] if target.startswith('sqlite:') else target


def _query(target, sql, params=()):
    """Rows of ``sql`` on a SQLite path or any database URL, through the plain driver."""
    if _is_sqlite(target):
        conn = sqlite3.connect(_sqlite_path(target))
    else:
        import psycopg2
        conn = psycopg2.connect(target)
        sql = sql.replace('?', '%s')
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
        names = [d[0] for d in cur.description] if cur.description else []
        conn.commit()
        return names, rows
    finally:
        conn.close()


def execute(target, *statements):
    """Run statements (raw SQL) in one transaction on a SQLite path or a database URL."""
    if _is_sqlite(target):
        conn = sqlite3.connect(_sqlite_path(target))
    else:
        import psycopg2
        conn = psycopg2.connect(target)
    try:
        cur = conn.cursor()
        for sql in statements:
            cur.execute(sql)
        conn.commit()
    finally:
        conn.close()


def tables(target):
    if _is_sqlite(target):
        sql = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    return {r[0] for r in _query(target, sql)[1]}


def columns(target, table):
    if _is_sqlite(target):
        return [r[1] for r in _query(target, 'PRAGMA table_info("%s")' % table)[1]]
    return [r[0] for r in _query(target, 'SELECT column_name FROM information_schema.columns '
                                 'WHERE table_schema = %s AND table_name = %s ORDER BY '
                                 'ordinal_position', ('public', table))[1]]


def dump(target):
    """Schema and every row of every table, to compare a database before and after."""
    if _is_sqlite(target):
        schema = _query(target, 'SELECT type, name, tbl_name, sql FROM sqlite_master '
                        'ORDER BY type, name')[1]
        names = [r[1] for r in schema if r[0] == 'table']
    else:
        schema = _query(target, 'SELECT table_name, column_name, data_type, is_nullable, '
                        'column_default FROM information_schema.columns WHERE table_schema = '
                        "'public' ORDER BY table_name, column_name")[1]
        schema += _query(target, "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE "
                         "schemaname = 'public' ORDER BY tablename, indexname")[1]
        names = sorted(tables(target))
    rows = {}
    for name in names:
        ncols = len(columns(target, name))
        order = ', '.join(str(i + 1) for i in range(ncols))
        rows[name] = _query(target, 'SELECT * FROM "%s" ORDER BY %s' % (name, order))[1]
    return schema, rows


def history(target):
    names, rows = _query(target, 'SELECT * FROM schema_migration ORDER BY id')
    return [dict(zip(names, row)) for row in rows]


def as_datetime(value):
    """A history timestamp as a datetime: SQLite returns text, PostgreSQL a datetime."""
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else value


def query(target, sql, params=()):
    """The rows of one query, through the plain driver (``?`` placeholders on both)."""
    return [tuple(r) for r in _query(target, sql, params)[1]]
