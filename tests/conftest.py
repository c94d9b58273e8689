"""Fixtures: a fresh database per test, the CLI run through main(), throwaway scripts.

``db_url`` is empty; ``head_url`` is the same database at head as ``connect()`` leaves it, and
``migrated_url`` as ``modelstore migrate`` leaves it (on SQLite the journal mode differs: WAL
after connect(), rollback journal after the CLI). On SQLite both are a copy of a template file
migrated once per session (~2 ms instead of ~70 ms for the 11 scripts); on a server they migrate
the test's fresh database. A test of the migration itself -- its output, its timing, its effect
on an empty database -- starts from ``db_url``.

The suite runs on SQLite by default. With MODELSTORE_TEST_DATABASE_URL set to a PostgreSQL or a
MySQL/MariaDB URL (scripts/test.sh starts throwaway servers and sets it), ``db_url`` is a fresh
database on that server instead, created for the test and dropped after it, and tests marked
``sqlite_only`` -- or that use ``db_path``, a SQLite file -- are deselected: they test SQLite
itself (files, pragmas, the legacy apps' SQLite files). ``postgres_only`` tests run on
PostgreSQL only, ``mysql_only`` ones on MySQL only, ``server_only`` ones on either server, and
``transactional_ddl`` ones (a failed script leaves nothing behind) everywhere but MySQL, whose
DDL commits (tests/test_mysql.py has that case there).
"""
import contextlib
import io
import os
import shutil
import subprocess
import tempfile
import textwrap
from urllib.parse import urlsplit, urlunsplit

import pytest

from modelstore.cli import main
from modelstore.engine.scripts import default_directory

# The harnesses (harness/, run on their own for the full figures) share these helpers and run
# in reduced sizes inside the suite; pyproject.toml puts harness/ on pytest's path.
from dbtools import (as_datetime, columns, dump, execute, history, new_database,  # noqa
                     new_postgres_database, query, tables)

SHIPPED = [os.path.basename(p)[:-3] for p in sorted(os.listdir(default_directory()))
           if p[0].isdigit() and p.endswith('.py')]

TEST_URL = os.environ.get('MODELSTORE_TEST_DATABASE_URL') or None
ON_POSTGRES = bool(TEST_URL) and urlsplit(TEST_URL).scheme.startswith('postgres')
ON_MYSQL = bool(TEST_URL) and urlsplit(TEST_URL).scheme.split('+')[0] in ('mysql', 'mariadb')
ON_SERVER = ON_POSTGRES or ON_MYSQL
BACKEND = 'postgresql' if ON_POSTGRES else 'mysql' if ON_MYSQL else 'sqlite'
if TEST_URL and not ON_SERVER:
    raise RuntimeError('MODELSTORE_TEST_DATABASE_URL must be a postgresql:// or mysql:// URL, '
                       'got %r' % urlsplit(TEST_URL).scheme)


def pytest_configure(config):
    config.addinivalue_line('markers', 'sqlite_only: tests SQLite itself; not run on a server')
    config.addinivalue_line('markers', 'postgres_only: needs a PostgreSQL server')
    config.addinivalue_line('markers', 'mysql_only: needs a MySQL/MariaDB server')
    config.addinivalue_line('markers', 'server_only: needs a PostgreSQL or MySQL server')
    config.addinivalue_line('markers', 'not_mysql(why): does not apply to MySQL, for the reason '
                            'given')
    config.addinivalue_line('markers', 'transactional_ddl: relies on DDL rolling back (SQLite, '
                            'PostgreSQL); MySQL has its own tests of the same cases '
                            '(test_mysql.py: failed scripts, repair)')


def pytest_report_header(config):
    return 'modelstore test backend: %s' % (
        BACKEND if not ON_SERVER else '%s (%s)' % (BACKEND, _masked(TEST_URL)))


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
        mysql_only = item.get_closest_marker('mysql_only')
        server_only = item.get_closest_marker('server_only')
        transactional = item.get_closest_marker('transactional_ddl') or \
            item.get_closest_marker('not_mysql')
        if (ON_SERVER and sqlite_only) or (not ON_POSTGRES and postgres_only) or (
                not ON_MYSQL and mysql_only) or (not ON_SERVER and server_only) or (
                ON_MYSQL and transactional):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test sees the user's database, environment URL or terminal colours -- and none leaves
    a file in the directory the suite runs from (empty ``ms_test_*`` files, SQLite files opened
    by a database's bare name, were once committed from there)."""
    monkeypatch.setenv('XDG_DATA_HOME', str(tmp_path / 'xdg'))
    monkeypatch.delenv('MODELSTORE_DATABASE_URL', raising=False)
    monkeypatch.setenv('NO_COLOR', '1')
    here = os.getcwd()
    before = _files_in(here)
    yield
    left = sorted(_files_in(here) - before)
    if left:
        pytest.fail('this test left %s in %s' % (', '.join(left), here))


def _files_in(directory):
    """The regular files directly in ``directory`` (not hidden ones: tools' caches)."""
    try:
        with os.scandir(directory) as entries:
            return {e.name for e in entries if not e.name.startswith('.')
                    and e.is_file(follow_symlinks=False)}
    except OSError:
        return set()


@pytest.fixture
def db_path(tmp_path):
    """A SQLite file path: a test that uses it is SQLite-specific."""
    return str(tmp_path / 'registry.db')


@pytest.fixture
def db_url(tmp_path):
    """A fresh, empty database of the backend under test."""
    if not ON_SERVER:
        yield 'sqlite:///' + str(tmp_path / 'registry.db')
        return
    url, drop = new_database(TEST_URL)
    yield url
    drop()


def _sqlite_file(url):
    return url[len('sqlite:///'):]


def _migrate_like_connect(url):
    from modelstore.registry import connect
    connect(url).close()


def _migrate_like_the_cli(url):
    # Its output is not the test's: a test reading capsys would find it.
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(['migrate', '--database', url])
    if code != 0:
        raise RuntimeError('modelstore migrate failed on %s: %s' % (url, out.getvalue()))


HOW = {'head': _migrate_like_connect, 'migrated': _migrate_like_the_cli}


def copy_database(template, path):
    """``template`` copied to ``path`` with its mode: modelstore creates a database 0600."""
    shutil.copyfile(template, path)
    shutil.copymode(template, path)


@pytest.fixture(scope='session')
def head_templates(tmp_path_factory):
    """SQLite files migrated to head once per session, one per way of migrating (``HOW``),
    made on first use: ``head_templates('head')`` is the path of the one connect() made."""
    made = {}

    def template(how):
        if how not in made:
            path = str(tmp_path_factory.mktemp('templates') / ('%s.db' % how))
            HOW[how]('sqlite:///' + path)
            # Closed: a WAL file would hold part of it. Copy the main file only if it is whole.
            assert not os.path.exists(path + '-wal'), path
            made[how] = path
        return made[how]
    return template


def _at_head(how, db_url, head_templates):
    if ON_SERVER:
        HOW[how](db_url)
    else:
        copy_database(head_templates(how), _sqlite_file(db_url))
    return db_url


@pytest.fixture
def head_url(db_url, head_templates):
    """``db_url`` at head as ``connect(db_url)`` leaves it (on SQLite: a copy of a template)."""
    return _at_head('head', db_url, head_templates)


@pytest.fixture
def migrated_url(db_url, head_templates):
    """``db_url`` at head as ``modelstore migrate`` leaves it (on SQLite: a copy of a
    template)."""
    return _at_head('migrated', db_url, head_templates)


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


POSTGRES_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts',
                           'postgres.sh')


@pytest.fixture
def private_server():
    """A server of this test's own, so that killing it disturbs no other test."""
    # Not under tmp_path: as root the server runs as `postgres`, which cannot enter it.
    directory = tempfile.mkdtemp(prefix='modelstore-pg-')
    url = subprocess.run(['bash', POSTGRES_SH, 'start', directory], check=True,
                         capture_output=True, text=True).stdout.strip()
    yield url, _Control(directory)
    _Control(directory)('stop')


class _Control:
    """``control('restart')``: scripts/postgres.sh on a private server; ``.directory`` is its
    directory (its socket is there)."""

    def __init__(self, directory):
        self.directory = directory

    def __call__(self, command):
        subprocess.run(['bash', POSTGRES_SH, command, self.directory], check=True,
                       capture_output=True)


def changes(store):
    """A store's events but the model.added ones (every add_model writes one)."""
    return [e for e in store.events(limit=1000) if e.kind != 'model.added']
