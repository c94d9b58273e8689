"""The pytest plugin: fixtures for a fresh registry database per test.

Loaded through the ``pytest11`` entry point wherever modelstore is installed (nothing to
configure). Fixtures:

* ``modelstore_url`` -- a fresh, empty database per test: a SQLite file in the test's
  ``tmp_path``, or, when ``MODELSTORE_TEST_DATABASE_URL`` names a PostgreSQL server (a role that
  may CREATE DATABASE) or a MySQL/MariaDB one (a user that may CREATE and DROP databases), a
  throwaway database on it, dropped after the test.
* ``modelstore_store`` -- a ``ModelStore`` connected to that database at head, closed after
  the test. On SQLite the file is a copy of one migrated once per session (the startup gate's
  migration of an empty file, ~70 ms, paid once; the copy takes ~2 ms); on a server the gate
  migrates the throwaway database.

``modelstore.testing.check_migrations`` tests a project's scripts in one line.
"""
import os
import shutil

import pytest

from ..registry import connect
from ..shared.urls import DatabaseURL
from . import mysql_server, postgres_server
from .mysql_server import is_mysql_url
from .postgres_server import ENV, is_postgres_url

__all__ = ['modelstore_url', 'modelstore_store']


def _server():
    url = os.environ.get(ENV) or None
    url = DatabaseURL.of(url) if url is not None else None
    if url is not None and not (is_postgres_url(url) or is_mysql_url(url)):
        raise pytest.UsageError('%s must name a PostgreSQL server (postgresql://...) or a '
                                'MySQL/MariaDB one (mysql://...), got %s; unset it for SQLite '
                                'files' % (ENV, url.masked))
    return url


def pytest_report_header(config):
    server = os.environ.get(ENV) or None
    return 'modelstore fixtures: %s' % ('a throwaway database per test on %s'
                                        % DatabaseURL.of(server).masked
                                        if server else 'a SQLite file per test')


@pytest.fixture
def modelstore_url(tmp_path):
    """The URL of a fresh, empty database, thrown away after the test."""
    server = _server()
    if server is None:
        yield 'sqlite:///' + str(tmp_path / 'modelstore.db')
        return
    url, drop = (mysql_server if is_mysql_url(server) else postgres_server).throwaway_database(
        server)
    try:
        yield url
    finally:
        drop()


@pytest.fixture(scope='session')
def _modelstore_head_template(tmp_path_factory):
    """A SQLite file at head as connect() leaves it, made once per session; None if it cannot
    be copied whole (a WAL file left beside it)."""
    path = str(tmp_path_factory.mktemp('modelstore-template') / 'head.db')
    connect('sqlite:///' + path).close()
    return None if os.path.exists(path + '-wal') else path


@pytest.fixture
def modelstore_store(modelstore_url, request):
    """A ModelStore at head on ``modelstore_url``, closed after the test."""
    path = DatabaseURL.of(modelstore_url).sqlite_path
    if path is not None and not os.path.exists(path):  # (Not if a fixture wrote it first.)
        template = request.getfixturevalue('_modelstore_head_template')
        if template is not None:
            shutil.copyfile(template, path)
            shutil.copymode(template, path)  # 0600, as connect() creates it.
    store = connect(modelstore_url)
    try:
        yield store
    finally:
        store.close()
