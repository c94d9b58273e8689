"""Throwaway PostgreSQL databases for tests: created on a server, dropped afterwards.

``MODELSTORE_TEST_DATABASE_URL`` names the server with a role that may CREATE DATABASE; every
database made here is ``modelstore_test_<random>`` on it, and is dropped ``WITH (FORCE)`` (on
servers older than 13, after ending the sessions still in it).
"""
import time
import uuid

from ..exceptions import ConfigError
from ..shared.urls import DatabaseURL

__all__ = ['ENV', 'is_postgres_url', 'create_database', 'drop_database', 'throwaway_database']

ENV = 'MODELSTORE_TEST_DATABASE_URL'


def is_postgres_url(url):
    return DatabaseURL.of(url).scheme in ('postgres', 'postgresql', 'postgresext', 'postgresqlext')


def _driver_url(url):
    return DatabaseURL.of(url).replace(scheme='postgresql')


def _admin(admin_url):
    try:
        import psycopg2
    except ImportError:
        raise ConfigError('%s names a PostgreSQL server, but psycopg2 is not installed: pip '
                          'install "modelstore[postgres]"' % ENV) from None
    try:
        conn = psycopg2.connect(_driver_url(admin_url).text)
    except psycopg2.Error as exc:
        raise ConfigError('cannot connect to the test server %s (%s): %s'
                          % (DatabaseURL.of(admin_url).masked, ENV, str(exc).strip())) from None
    conn.autocommit = True
    return psycopg2, conn


def _retrying(admin_url, sql, busy, seconds):
    """Run ``sql`` in autocommit, retried for ``seconds`` while it fails with one of ``busy``
    (the names of psycopg2.errors classes)."""
    deadline = time.monotonic() + seconds
    while True:
        psycopg2, conn = _admin(admin_url)
        try:
            conn.cursor().execute(sql)
            return
        except psycopg2.Error as exc:
            if type(exc).__name__ not in busy or time.monotonic() > deadline:
                raise
        finally:
            conn.close()
        time.sleep(0.1)


def create_database(admin_url, name, template=None):
    """CREATE DATABASE, retried while the template is busy (autovacuum visits template1 now and
    then: "source database is being accessed by other users")."""
    sql = 'CREATE DATABASE "%s"' % name + (' TEMPLATE "%s"' % template if template else '')
    _retrying(admin_url, sql, ('ObjectInUse',), 60)


def drop_database(admin_url, name):
    """DROP DATABASE ... WITH (FORCE), retried while an autovacuum worker is in it (a role
    without pg_signal_backend may not end that session)."""
    psycopg2, conn = _admin(admin_url)
    try:
        old = conn.server_version < 130000
    finally:
        conn.close()
    if old:
        _retrying(admin_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                  "datname = '%s' AND pid <> pg_backend_pid()" % name, (), 0)
        _retrying(admin_url, 'DROP DATABASE IF EXISTS "%s"' % name, ('ObjectInUse',), 120)
        return
    _retrying(admin_url, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name,
              ('InsufficientPrivilege', 'ObjectInUse'), 120)


def throwaway_database(admin_url, prefix='modelstore_test'):
    """Create an empty database on ``admin_url``'s server; returns (its URL, a
    DatabaseURL; drop)."""
    admin_url = DatabaseURL.of(admin_url)
    name = '%s_%s' % (prefix, uuid.uuid4().hex[:16])
    create_database(admin_url, name)
    return admin_url.replace(path='/' + name), lambda: drop_database(admin_url, name)
