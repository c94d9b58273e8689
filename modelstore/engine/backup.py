"""Online backups of a SQLite registry, taken before a run changes it.

Restoring one is modelstore.engine.restore.

A backup is a full copy made with SQLite's online backup API from a connection of its own, so it
holds exactly what was committed when it was taken (a run takes it while holding the run lock,
before its first script). It lies beside the database, named after it, the time (UTC) and the
schema version -- the number of the last applied script, ``legacy`` for a file with tables but no
history::

    registry.db.20261121T101500.123456Z.schema-0002.bak

It is written under a ``.partial`` name and renamed when complete, so a run killed halfway
leaves no backup that looks whole; stale partials (and the ``-journal`` SQLite leaves beside one)
are removed by the next backup. Backups are created ``0600``. Only the newest ``KEEP`` backups of a
database are kept.

A file a command is using is never deleted by retention: a backup being written or restored from
is held under a shared ``flock`` for as long as it is used, and retention deletes only the files it
can lock exclusively, without waiting (a lock dies with its process, so a killed command leaves
nothing locked). ``restore`` also names its source explicitly, so it is kept even where advisory
locks are not available.

PostgreSQL is not backed up here: use ``pg_dump`` (the server's own tool) before a risky change.
"""
import datetime
import os
import re
import sqlite3
import time
from dataclasses import dataclass

from ..dialects import cannot_open
from ..exceptions import ConfigError, LockTimeout, MigrationError
from ..shared.database import busy_ms, check_timeout
from ..shared.defaults import KEEP
from ..shared.files import (create_private, file_uri_path, has_wal, in_use, remove,
                            remove_unused, sync_directory)

__all__ = ['KEEP', 'Backups', 'Backup', 'check_backup', 'restore']

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


def _open_backup(path):
    """Open a backup (or any database named as a restore source) read-only, as a reader of it
    sees it.

    A file modelstore wrote as a backup has no ``-wal``: it is opened ``immutable``, so SQLite
    need not lock it or create ``-shm``/``-wal`` files. A live database named as the source
    may hold its newest commits in its ``-wal`` file, which ``immutable`` would ignore: it is
    opened as an ordinary reader, which reads the WAL (and needs its ``-shm``).
    """
    if not has_wal(path):
        return sqlite3.connect('file:%s?mode=ro&immutable=1' % file_uri_path(path), uri=True)
    conn = sqlite3.connect('file:%s?mode=ro' % file_uri_path(path), uri=True, timeout=5.0)
    try:
        conn.execute('SELECT count(*) FROM sqlite_master').fetchone()
        return conn
    except sqlite3.Error as exc:
        conn.close()
        if not cannot_open(exc):
            return sqlite3.connect('file:%s?mode=ro' % file_uri_path(path), uri=True)  # Reported
            # by the caller's first query, as for any other damaged file.
        raise ConfigError('%s has committed changes in its write-ahead log %s-wal that cannot '
                          'be read (%s): SQLite needs to read and create %s-shm in that '
                          'directory. Open it once with write access (which checkpoints the '
                          'log), or copy the file together with its -wal and -shm files'
                          % (path, path, exc, path)) from None


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
        'file:%s?mode=ro' % file_uri_path(source), uri=True, timeout=timeout)
    if source_is_backup:
        src.execute('PRAGMA busy_timeout = %d' % busy_ms(timeout))
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


class Backups:
    """The backups of one SQLite database file."""

    def __init__(self, path, keep=KEEP, timeout=30.0):
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ConfigError('keep must be a whole number of at least 1, got %r' % (keep,))
        self.path = os.path.abspath(path)
        self.keep = keep
        self.timeout = check_timeout(timeout)

    def list(self):
        """This database's backups, oldest first."""
        directory, base = os.path.split(self.path)
        found = []
        for name in os.listdir(directory):
            backup = Backup.parse(os.path.join(directory, name))
            if backup is not None and os.path.basename(backup.source) == base:
                found.append(backup)
        return sorted(found, key=lambda b: b.taken)

    def take(self, version, protect=()):
        """Copy the database now; returns the backup's path. Prunes older ones afterwards,
        never deleting a path in ``protect`` (or one another command holds, see in_use)."""
        self.remove_partials()
        now = datetime.datetime.now(datetime.timezone.utc)
        final = '%s.%s.schema-%s.bak' % (self.path, now.strftime('%Y%m%dT%H%M%S.%fZ'), version)
        partial = final + '.partial'
        try:
            create_private(partial)
            with in_use(partial):  # Another run's _remove_partials leaves it alone.
                _copy(self.path, partial, self.timeout)
                with open(partial, 'rb+') as fh:
                    os.fsync(fh.fileno())
                os.replace(partial, final)
            sync_directory(os.path.dirname(final))
        except BaseException as exc:
            for leftover in _with_journals(partial):
                remove(leftover)
            if isinstance(exc, (OSError, sqlite3.Error, LockTimeout)):
                raise MigrationError('could not back up %s to %s: %s; nothing was changed '
                                     '(--no-backup skips the backup)'
                                     % (self.path, final, exc)) from exc
            raise
        self.prune(protect=protect)
        return final

    def prune(self, protect=()):
        """Delete all but the newest ``keep`` backups; returns the deleted paths.

        A path in ``protect``, or a backup another command is using (a restore reading it), is
        kept and does not count against ``keep``.
        """
        protected = {os.path.abspath(p) for p in protect}
        deleted = []
        for backup in self.list()[:-self.keep]:
            if backup.path not in protected and remove_unused(backup.path):
                deleted.append(backup.path)
        return deleted

    def remove_partials(self):
        """Delete what a backup killed halfway left: the ``.partial`` file and its journal."""
        # Left by a run killed while copying, with the rollback journal SQLite kept beside it
        # while writing. One being written right now is held (in_use) and is skipped.
        directory, base = os.path.split(self.path)
        for name in os.listdir(directory):
            if name.startswith(base + '.') and name.endswith('.bak.partial'):
                path = os.path.join(directory, name)
                if remove_unused(path):
                    for leftover in _with_journals(path)[1:]:
                        remove(leftover)
            elif name.startswith(base + '.') and re.search(r'\.bak\.partial-(journal|wal|shm)$',
                                                           name):
                if not os.path.exists(os.path.join(directory, name.rsplit('-', 1)[0])):
                    remove(os.path.join(directory, name))  # Its partial is gone already.


def _with_journals(path):
    return [path] + [path + suffix for suffix in ('-journal', '-wal', '-shm')]


def check_backup(path):
    """Verify that ``path`` is an intact SQLite database holding a modelstore registry.

    Returns its table names; raises ConfigError naming what is wrong.
    """
    if not os.path.exists(path):
        raise ConfigError('backup %s does not exist' % path)
    if not os.path.isfile(path):
        raise ConfigError('backup %s is not a file' % path)
    conn = _open_backup(path)  # ConfigError if its write-ahead log cannot be read.
    try:
        result = [row[0] for row in conn.execute('PRAGMA integrity_check').fetchall()]
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise ConfigError('backup %s is not a usable SQLite database: %s' % (path, exc)) \
            from None
    finally:
        conn.close()
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


