"""Online backups of a SQLite registry, taken before a run changes it, and restoring one.

A backup is a full copy made with SQLite's online backup API from a connection of its own, so it
holds exactly what was committed when it was taken (a run takes it while holding the run lock,
before its first script). It lies beside the database, named after it, the time (UTC) and the
schema version -- the number of the last applied script, ``legacy`` for a file with tables but no
history::

    registry.db.20261121T101500.123456Z.schema-0002.bak

It is written under a ``.partial`` name and renamed when complete, so a run killed halfway
leaves no backup that looks whole; stale partials are removed by the next backup. Backups are
created ``0600``. Only the newest ``KEEP`` backups of a database are kept.

PostgreSQL is not backed up here: use ``pg_dump`` (the server's own tool) before a risky change.
"""
import datetime
import os
import re
import sqlite3
import time
from dataclasses import dataclass

from .exceptions import ConfigError, LockTimeout, MigrationError

__all__ = ['KEEP', 'Backups', 'Backup', 'check_backup', 'restore', 'restore_database',
           'schema_version']

KEEP = 5
_NAME = re.compile(r'^(?P<base>.+)\.(?P<stamp>\d{8}T\d{6}\.\d{6}Z)\.schema-(?P<version>[\w-]+)'
                   r'\.bak$')


@dataclass(frozen=True)
class Backup:
    path: str
    source: str   # The database file it was taken from (by its name).
    taken: datetime.datetime
    version: str

    @classmethod
    def parse(cls, path):
        """The Backup a file name describes, or None if it is not named like one."""
        match = _NAME.match(os.path.basename(path))
        if match is None:
            return None
        taken = datetime.datetime.strptime(match['stamp'], '%Y%m%dT%H%M%S.%fZ').replace(
            tzinfo=datetime.timezone.utc)
        source = os.path.join(os.path.dirname(os.path.abspath(path)), match['base'])
        return cls(os.path.abspath(path), source, taken, match['version'])


def schema_version(status):
    """What a backup's name says about the schema: last applied number, legacy, or empty."""
    if status.applied:
        match = re.match(r'\d+', status.applied[-1])
        return match.group() if match else re.sub(r'[^\w-]', '_', status.applied[-1])
    return 'legacy' if status.data_tables else 'empty'


def _sync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def create_private(path):
    """Create ``path`` empty with mode 0600 if it does not exist (SQLite then keeps the mode
    for its -wal, -shm and -journal files)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def _open_backup(path):
    # immutable: nobody writes a backup, so SQLite need not lock it or create -shm/-wal files.
    return sqlite3.connect('file:%s?mode=ro&immutable=1' % _uri_path(path), uri=True)


def _copy(source, target, timeout, *, source_is_backup=False):
    """Copy the database file ``source`` into ``target`` with the backup API.

    Waits at most ``timeout`` seconds for locks (Python's backup() would retry forever).
    """
    deadline = time.monotonic() + timeout

    def progress(status, remaining, total):
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) \
                and time.monotonic() > deadline:
            raise LockTimeout('the database stayed locked for more than %g s' % timeout)

    src = _open_backup(source) if source_is_backup else sqlite3.connect(
        'file:%s?mode=ro' % _uri_path(source), uri=True, timeout=timeout)
    try:
        dst = sqlite3.connect(target, timeout=timeout)
        try:
            src.backup(dst, pages=1024, progress=progress, sleep=0.05)
            if not source_is_backup:
                # A copy of a WAL database would be WAL too: make the backup one self-contained
                # file.
                dst.execute('PRAGMA journal_mode=DELETE')
        finally:
            dst.close()
    finally:
        src.close()


def _uri_path(path):
    from urllib.parse import quote
    return quote(os.path.abspath(path))


class Backups:
    """The backups of one SQLite database file."""

    def __init__(self, path, keep=KEEP, timeout=30.0):
        if keep < 1:
            raise ConfigError('keep must be at least 1, got %r' % keep)
        self.path = os.path.abspath(path)
        self.keep = keep
        self.timeout = timeout

    def list(self):
        """This database's backups, oldest first."""
        directory, base = os.path.split(self.path)
        found = []
        for name in os.listdir(directory):
            backup = Backup.parse(os.path.join(directory, name))
            if backup is not None and os.path.basename(backup.source) == base:
                found.append(backup)
        return sorted(found, key=lambda b: b.taken)

    def take(self, version):
        """Copy the database now; returns the backup's path. Prunes older ones afterwards."""
        self._remove_partials()
        now = datetime.datetime.now(datetime.timezone.utc)
        final = '%s.%s.schema-%s.bak' % (self.path, now.strftime('%Y%m%dT%H%M%S.%fZ'), version)
        partial = final + '.partial'
        try:
            create_private(partial)
            _copy(self.path, partial, self.timeout)
            with open(partial, 'rb+') as fh:
                os.fsync(fh.fileno())
            os.replace(partial, final)
            _sync_directory(os.path.dirname(final))
        except BaseException as exc:
            _remove(partial)
            if isinstance(exc, (OSError, sqlite3.Error, LockTimeout)):
                raise MigrationError('could not back up %s to %s: %s; nothing was changed '
                                     '(--no-backup skips the backup)'
                                     % (self.path, final, exc)) from exc
            raise
        self.prune()
        return final

    def prune(self):
        """Delete all but the newest ``keep`` backups; returns the deleted paths."""
        old = self.list()[:-self.keep]
        for backup in old:
            _remove(backup.path)
        return [b.path for b in old]

    def _remove_partials(self):
        # Left by a run killed while copying: the run lock is held, so no copy is in progress.
        directory, base = os.path.split(self.path)
        for name in os.listdir(directory):
            if name.startswith(base + '.') and name.endswith('.bak.partial'):
                _remove(os.path.join(directory, name))


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def check_backup(path):
    """Verify that ``path`` is an intact SQLite database holding a modelstore registry.

    Returns its table names; raises ConfigError naming what is wrong.
    """
    if not os.path.exists(path):
        raise ConfigError('backup %s does not exist' % path)
    if not os.path.isfile(path):
        raise ConfigError('backup %s is not a file' % path)
    try:
        conn = _open_backup(path)
        try:
            result = [row[0] for row in conn.execute('PRAGMA integrity_check').fetchall()]
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ConfigError('backup %s is not a usable SQLite database: %s' % (path, exc)) \
            from None
    if result != ['ok']:
        raise ConfigError('backup %s is damaged (integrity_check: %s)'
                          % (path, '; '.join(result[:3])))
    if not tables & {'fine_tuned_models', 'tasks', 'schema_migration'}:
        raise ConfigError('backup %s holds no modelstore registry (no fine_tuned_models, tasks '
                          'or schema_migration table)' % path)
    return tables


def restore(backup, target, timeout=30.0):
    """Replace the contents of the database file ``target`` with ``backup`` (already checked).

    Done with the backup API into the live file, so connections that are open see the restored
    data and a WAL file stays consistent; waits at most ``timeout`` for other writers.
    """
    create_private(target)
    _copy(backup, target, timeout, source_is_backup=True)


def restore_database(backup, url=None, *, keep=KEEP, timeout=30.0, safety_backup=True,
                     directory=None):
    """Check ``backup`` and put it back into the SQLite database at ``url``.

    ``url`` defaults to the file the backup was taken from (its name says which);
    $MODELSTORE_DATABASE_URL is deliberately not consulted, so a restore never lands on a
    database the backup did not come from by accident. Unless ``safety_backup`` is false, the
    database as it is now is backed up first. Returns (url, that backup's path or None, the
    restored tables); raises ConfigError, changing nothing, if anything is wrong.
    """
    from .db import mask_url, open_database, resolve_url, sqlite_path
    from .engine import Engine
    backup = os.path.abspath(os.path.expanduser(backup))
    tables = check_backup(backup)
    if url is not None:
        url = resolve_url(url)
    else:
        described = Backup.parse(backup)
        if described is None:
            raise ConfigError('cannot tell which database %s is a backup of (its name is not '
                              'DATABASE.TIME.schema-VERSION.bak); name it with --database'
                              % backup)
        url = 'sqlite:///' + described.source
    path = sqlite_path(url)
    if path is None or path == ':memory:':
        raise ConfigError('restore puts back a SQLite backup into a SQLite file; %s is not one '
                          '(on PostgreSQL, use pg_dump and pg_restore)' % mask_url(url))
    path = os.path.abspath(path)
    if path == backup:
        raise ConfigError('%s is the backup itself; name the database to restore into' % path)
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
        safety = Backups(path, keep=keep, timeout=timeout).take(schema_version(status))
    restore(backup, path, timeout=timeout)
    return url, safety, tables
