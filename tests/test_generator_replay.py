"""Replaying the scripts on a server leaves nothing behind (issue 26, item 4).

``new --auto --database URL`` and ``check_migrations(url=URL)`` replay every script on a
throwaway database of that server (modelstore.engine.shadow). A script that commits halfway,
one that runs ``atomic = False`` and commits, and one that leaves a transaction open must all
leave the user's database as it was: no ``modelstore_shadow_*`` schema or database, no table
the replay made, the user's rows unchanged. Without CREATEDB, PostgreSQL falls back to a
throwaway schema, and a second connection drops it.
"""
import os
import subprocess
import textwrap
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from modelstore.engine.shadow import mysql_shadow, postgres_shadow
from modelstore.shared.database import open_database
from modelstore.testing import check_migrations, schema_of

from conftest import ON_POSTGRES, execute, query

SCRIPTS = {
    '0001_base.py': '''
        def up(migrator, db):
            db.execute_sql('CREATE TABLE base (id INTEGER PRIMARY KEY, name VARCHAR(20))')

        def down(migrator, db):
            db.execute_sql('DROP TABLE base')
    ''',
    # Commits in the middle of up(): what follows runs outside any transaction of the replay.
    '0002_commits.py': '''
        def up(migrator, db):
            db.execute_sql('CREATE TABLE c1 (id INTEGER PRIMARY KEY)')
            db.commit()
            db.execute_sql('CREATE TABLE c2 (id INTEGER PRIMARY KEY)')

        def down(migrator, db):
            db.execute_sql('DROP TABLE c2')
            db.execute_sql('DROP TABLE c1')
    ''',
    '0003_not_atomic.py': '''
        atomic = False

        def up(migrator, db):
            db.execute_sql('COMMIT')
            db.execute_sql('CREATE TABLE c3 (id INTEGER PRIMARY KEY)')

        def down(migrator, db):
            db.execute_sql('DROP TABLE c3')
    ''',
}
MODELS = '''
from peewee import *


def _table(table, **fields):
    meta = type('Meta', (), {'table_name': table})
    return type(table.title(), (Model,), dict(fields, id=IntegerField(primary_key=True),
                                              Meta=meta))


MODELS = [_table('base', name=CharField(max_length=20, null=True))] + [
    _table(name) for name in ('c1', 'c2', 'c3')]
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    directory = tmp_path / 'scripts'
    directory.mkdir()
    for name, body in SCRIPTS.items():
        (directory / name).write_text(textwrap.dedent(body))
    module = 'replay_%s' % uuid.uuid4().hex[:8]
    (tmp_path / (module + '.py')).write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return str(directory), module


def _state(url):
    """The user's database as a user sees it: schema, rows, and any throwaway left."""
    database = open_database(url, mode='inspect')
    try:
        schema = schema_of(database)
    finally:
        database.close()
    if ON_POSTGRES:
        left = query(url, "SELECT nspname FROM pg_namespace WHERE nspname LIKE "
                          "'modelstore_shadow%%'") + \
            query(url, "SELECT datname FROM pg_database WHERE datname LIKE "
                       "'modelstore_shadow%%'") + \
            query(url, "SELECT table_schema, table_name FROM information_schema.tables WHERE "
                       "table_schema NOT IN ('pg_catalog', 'information_schema', 'public')")
    else:
        left = query(url, "SHOW DATABASES LIKE 'modelstore\\_shadow%%'")
    return schema, query(url, 'SELECT id, name FROM base ORDER BY id'), left


@pytest.mark.server_only
def test_a_replay_of_scripts_that_commit_leaves_the_database_as_it_was(cli, project, db_url):
    directory, models = project
    assert cli('migrate', '--database', db_url, '--migrations', directory, '--to',
               '0001_base')[0] == 0
    execute(db_url, "INSERT INTO base (id, name) VALUES (1, 'kept')")
    before = _state(db_url)
    assert before[2] == [] and sorted(before[0]) == ['base']
    code, out, err = cli('new', '--auto', 'x', '--migrations', directory, '--models', models,
                         '--database', db_url)
    assert code == 0 and out.startswith('Nothing to generate'), out + err
    assert 'a throwaway database on ' in out
    assert _state(db_url) == before
    check_migrations(directory, url=db_url, models=models)
    assert _state(db_url) == before


@pytest.mark.server_only
@pytest.mark.parametrize('left_open', ['transaction', 'error'])
def test_a_shadow_is_dropped_when_a_script_leaves_a_transaction_open(db_url, left_open):
    """peewee refuses to close a connection inside a transaction; the drop must not depend on
    that close (it used to be skipped, leaving the database behind)."""
    database = open_database(db_url, mode='migrate')
    shadow_of = postgres_shadow if ON_POSTGRES else mysql_shadow
    try:
        with pytest.raises(RuntimeError, match='boom') if left_open == 'error' else \
                _nothing():
            with shadow_of(database) as shadow:
                shadow.atomic().__enter__()  # Never left.
                shadow.execute_sql('CREATE TABLE x (id INTEGER)')
                if left_open == 'error':
                    raise RuntimeError('boom')
        assert _state_left(db_url) == []
    finally:
        database.close()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _state_left(url):
    if ON_POSTGRES:
        return query(url, "SELECT datname FROM pg_database WHERE datname LIKE "
                          "'modelstore_shadow%%'")
    return query(url, "SHOW DATABASES LIKE 'modelstore\\_shadow%%'")


# --- PostgreSQL without CREATEDB: the schema fallback, on a server of the test's own ---

def _superuser(url, control):
    """Run SQL as the server's superuser (over its socket, as scripts/postgres.sh sets up)."""
    port = str(urlsplit(url).port)

    def run(sql, database='modelstore'):
        subprocess.run(['runuser', '-u', 'postgres', '--', _psql(control), '-q', '-h',
                        control.directory, '-p', port, '-d', database, '-c', sql],
                       check=True, capture_output=True)
    return run


def _psql(control):
    with open(os.path.join(control.directory, 'bindir')) as fh:
        return os.path.join(fh.read().strip(), 'psql')


def _as(url, role):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc='%s:pw-%s@%s:%s' % (role, role, parts.hostname,
                                                                  parts.port)))


@pytest.mark.postgres_only
def test_without_createdb_the_replay_falls_back_to_a_schema_it_drops(cli, project,
                                                                      private_server):
    url, control = private_server
    if os.getuid() != 0:
        pytest.skip('needs root to act as the server\'s superuser')
    directory, models = project
    sql = _superuser(url, control)
    sql("CREATE ROLE nocdb LOGIN PASSWORD 'pw-nocdb'; CREATE ROLE nothing LOGIN PASSWORD "
        "'pw-nothing'; GRANT CREATE ON DATABASE modelstore TO nocdb; "
        "GRANT USAGE, CREATE ON SCHEMA public TO nocdb")
    limited = _as(url, 'nocdb')
    assert cli('migrate', '--database', limited, '--migrations', directory, '--to',
               '0001_base')[0] == 0
    execute(limited, "INSERT INTO base (id, name) VALUES (1, 'kept')")
    before = _state(limited)
    # A script that commits cannot be replayed inside the fallback's transaction: it is named
    # as failing there -- and what it made before and after its commit is gone all the same.
    with pytest.raises(AssertionError, match=r'0002_commits: up\(\) fails on PostgreSQL'):
        check_migrations(directory, url=limited, models=models)
    assert _state(limited) == before
    code, out, err = cli('new', '--auto', 'x', '--migrations', directory, '--models', models,
                         '--database', limited)
    assert code == 2 and '0002_commits' in err
    assert _state(limited) == before
    os.unlink(os.path.join(directory, '0002_commits.py'))
    os.unlink(os.path.join(directory, '0003_not_atomic.py'))
    code, out, err = cli('new', '--auto', 'x', '--migrations', directory, '--models', models,
                         '--database', limited, '--dry-run')
    assert code == 0 and 'create table c1' in out, out + err  # Replayed: 0001; c1-c3 to make.
    assert _state(limited) == before
    with pytest.raises(AssertionError, match=r'may neither create a throwaway database '
                                             r'\(CREATEDB\) nor a throwaway schema'):
        check_migrations(directory, url=_as(url, 'nothing'), models=models)
    code, _, err = cli('new', '--auto', 'x', '--migrations', directory, '--models', models,
                       '--database', _as(url, 'nothing'))
    assert code == 2 and 'grant CREATEDB' in err, err
    assert _state(limited) == before
