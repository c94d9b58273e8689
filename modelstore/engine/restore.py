"""Restore a SQLite registry from a backup: check it, back up the current file, copy it back.

The library's ``restore_database`` is what ``modelstore restore`` runs. The source is held
(``in_use``) from the first check to the last page copied, and named as protected to the safety
backup's retention, so a restore never deletes the file it restores from.
"""
import os

from ..exceptions import ConfigError
from ..shared.database import check_timeout, open_database
from ..shared.files import in_use
from ..shared.urls import parse_url, sqlite_url
from .backup import KEEP, Backup, Backups, check_backup, restore
from .runner import Engine
from .status import schema_version

__all__ = ['restore_database']


def restore_database(backup, url=None, *, keep=KEEP, timeout=30.0, safety_backup=True,
                     directory=None):
    """Check ``backup`` and put it back into the SQLite database at ``url``.

    ``url`` defaults to the file the backup was taken from (its name says which);
    $MODELSTORE_DATABASE_URL is deliberately not consulted, so a restore never lands on a
    database the backup did not come from by accident. Unless ``safety_backup`` is false, the
    database as it is now is backed up first. Returns (url, that backup's path or None, the
    restored tables); raises ConfigError, changing nothing, if anything is wrong.
    """
    timeout = check_timeout(timeout)
    backup = os.path.abspath(os.path.expanduser(backup))
    with in_use(backup):  # Retention, here or in another process, must not delete it.
        tables = check_backup(backup)
        if url is not None:
            url = parse_url(url)
        else:
            described = Backup.parse(backup)
            if described is None:
                raise ConfigError('cannot tell which database %s is a backup of (its name is '
                                  'not DATABASE.TIME.schema-VERSION.bak); name it with '
                                  '--database' % backup)
            url = parse_url(sqlite_url(described.source))
        path = url.sqlite_path
        if path is None or path == ':memory:':
            raise ConfigError('restore puts back a SQLite backup into a SQLite file; %s is not '
                              'one (on PostgreSQL, use pg_dump and pg_restore)' % url.masked)
        path = os.path.abspath(path)
        if path == backup:
            raise ConfigError('%s is the backup itself; name the database to restore into'
                              % path)
        if os.path.isdir(path):
            raise ConfigError('%s is a directory, not a SQLite database file' % path)
        if not os.path.isdir(os.path.dirname(path)):
            raise ConfigError('cannot restore into %s: directory %s does not exist'
                              % (path, os.path.dirname(path)))
        safety = None
        if safety_backup and os.path.exists(path) and os.path.getsize(path) > 0:
            database = open_database(url, mode='inspect')
            try:
                status = Engine(database, directory).status()
            finally:
                database.close()
            safety = Backups(path, keep=keep, timeout=timeout).take(schema_version(status),
                                                                   protect=[backup])
        restore(backup, path, timeout=timeout)
    return url, safety, tables
