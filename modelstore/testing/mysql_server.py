"""Throwaway MySQL/MariaDB databases for tests: created on a server, dropped afterwards.

``MODELSTORE_TEST_DATABASE_URL`` may name a MySQL or MariaDB server (``mysql://`` or
``mariadb://``) with a user that may CREATE and DROP databases; every database made here is
``modelstore_test_<random>`` on it, in utf8mb4.
"""
import uuid
from urllib.parse import unquote

from ..exceptions import ConfigError
from ..dialects import MYSQL_SCHEMES, SQL_MODE
from ..shared.urls import DatabaseURL

__all__ = ['is_mysql_url', 'driver_connect', 'create_database', 'drop_database',
           'throwaway_database']


def is_mysql_url(url):
    return DatabaseURL.of(url).scheme.split('+')[0] in MYSQL_SCHEMES


def driver_connect(url, **kwargs):
    """A PyMySQL connection to ``url`` (its database, if it names one), with modelstore's
    session (ANSI_QUOTES, strict, utf8mb4, UTC)."""
    url = DatabaseURL.of(url)
    try:
        import pymysql
    except ImportError:
        raise ConfigError('%s names a MySQL server, but PyMySQL is not installed: pip install '
                          '"modelstore[mysql]"' % url.masked) from None
    parts = url.parts
    database = unquote(parts.path.lstrip('/')) or None
    return pymysql.connect(host=parts.hostname or '127.0.0.1', port=parts.port or 3306,
                           user=unquote(parts.username or ''),
                           password=unquote(parts.password or ''), database=database,
                           charset='utf8mb4', sql_mode=SQL_MODE,
                           init_command="SET time_zone = '+00:00'", **kwargs)


def _admin(admin_url, sql):
    try:
        conn = driver_connect(admin_url, autocommit=True)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError('cannot connect to the test server %s: %s'
                          % (DatabaseURL.of(admin_url).masked, exc)) from None
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


def create_database(admin_url, name):
    _admin(admin_url, 'CREATE DATABASE "%s" CHARACTER SET utf8mb4' % name)


def drop_database(admin_url, name):
    _admin(admin_url, 'DROP DATABASE IF EXISTS "%s"' % name)


def throwaway_database(admin_url, prefix='modelstore_test'):
    """Create an empty database on ``admin_url``'s server; returns (its URL, a
    DatabaseURL; drop)."""
    admin_url = DatabaseURL.of(admin_url)
    name = '%s_%s' % (prefix, uuid.uuid4().hex[:16])
    create_database(admin_url, name)
    return admin_url.replace(path='/' + name), lambda: drop_database(admin_url, name)
