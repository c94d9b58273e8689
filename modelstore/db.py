"""Resolve a database URL and open it with the settings modelstore relies on.

URL resolution: the explicit argument, then ``MODELSTORE_DATABASE_URL`` (unset or empty: not
used), then a SQLite file at ``${XDG_DATA_HOME:-~/.local/share}/modelstore/modelstore.db`` (its
directory is created). An empty string given as the URL is an error, never "the default".
URLs are ``playhouse.db_url`` URLs (``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
``postgresql://user:pass@host:5432/db``) and follow URL rules: ``%XX`` escapes are decoded, and
``?`` and ``#`` start the query and the fragment. A bare path (no ``://``) is a path, every
character of it: it becomes a SQLite URL with ``%``, ``?`` and ``#`` escaped.

Query parameters: a SQLite URL takes none (modelstore sets the busy timeout and pragmas
itself); a PostgreSQL URL takes libpq's connection keywords (``sslmode``, ``connect_timeout``,
``application_name``, ...), each checked by the driver before connecting. A URL with a
fragment, or a parameter that is not understood, is refused before any file is created.
PostgreSQL connections give up after ``connect_timeout`` seconds (default 10) when the server
does not answer.

Every SQLite connection gets a busy timeout and ``foreign_keys=ON``. Three modes:

* ``app`` (the default, what ``connect()`` uses): also WAL (persistent) and ``synchronous=NORMAL``
  -- measured: 8 writer processes x 1000 inserts in 0.63 s with 0 lost, against 7.1 s with
  SQLite's defaults. A missing file is created.
* ``migrate``: a missing file is created, but the journal mode is left alone, so a refused
  migration leaves a legacy file byte-for-byte as it was.
* ``inspect``: for status, history, check and dry runs. Nothing persistent is changed: a SQLite
  file that does not exist (or is empty) is left so, and an in-memory database stands in for it.
"""
import os
import re
import sqlite3
import stat
import time
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from peewee import DatabaseError, ImproperlyConfigured, SqliteDatabase
from playhouse import db_url

from .backup import create_private, file_uri_path
from .exceptions import ConfigError

__all__ = ['ENV_VAR', 'default_url', 'resolve_url', 'mask_url', 'sqlite_path', 'sqlite_url',
           'open_database', 'write_transaction', 'database_exists']

ENV_VAR = 'MODELSTORE_DATABASE_URL'
BUSY_TIMEOUT = 5.0  # seconds a writer waits for SQLite's lock before "database is locked".
CONNECT_TIMEOUT = 10  # seconds a PostgreSQL connect waits for the server (URL: connect_timeout).
_SECRET_KEYS = {'password', 'passwd', 'pass'}


def default_path():
    base = os.environ.get('XDG_DATA_HOME') or os.path.join(os.path.expanduser('~'), '.local',
                                                           'share')
    return os.path.join(base, 'modelstore', 'modelstore.db')


def default_url():
    """The embedded default: a SQLite file under the XDG data directory."""
    return sqlite_url(default_path())


def sqlite_url(path):
    """The SQLite URL of the file ``path`` (made absolute), exactly that file: the characters
    a URL gives a meaning to (``%``, ``?``, ``#``) are escaped."""
    path = os.path.abspath(path)
    return 'sqlite:///' + path.replace('%', '%25').replace('?', '%3F').replace('#', '%23')


def resolve_url(url=None):
    """Pick the URL: argument, then $MODELSTORE_DATABASE_URL, then the embedded default.

    A bare path (no ``://``) is a SQLite file path, taken literally; ``''`` is an error.
    """
    if url is None:
        url = os.environ.get(ENV_VAR) or default_url()
    if not isinstance(url, str):
        raise ConfigError('database URL must be a string, got %s' % type(url).__name__)
    if url.strip() == '':
        raise ConfigError('the database URL is empty; give a URL or a file path (or leave it '
                          'out to use $%s or the default)' % ENV_VAR)
    if '://' not in url:
        url = sqlite_url(os.path.expanduser(url))  # A bare SQLite path.
    return url


def mask_url(url):
    """Return the URL with any password (in the userinfo or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        secret_query = any(k.lower() in _SECRET_KEYS for k, _ in pairs)
        if parts.password is None and not secret_query:
            return url  # urlunsplit would drop the empty netloc of sqlite:////abs/path.
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostport = netloc.rpartition('@')
            netloc = '%s:***@%s' % (userinfo.split(':', 1)[0], hostport)
        query = urlencode([(k, '***' if k.lower() in _SECRET_KEYS else v) for k, v in pairs],
                          safe='*/:') if secret_query else parts.query
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # Unparseable (an unclosed [IPv6]): mask what looks like a password.
        return re.sub(r'(://[^:/@]*:)[^@]*@', r'\1***@', url)


def sqlite_path(url):
    """The file path of a SQLite URL (``%XX`` decoded), ``':memory:'``, or None for other
    backends."""
    parts = urlsplit(url)
    if 'sqlite' not in parts.scheme:
        return None
    path = unquote(parts.path[1:] if parts.path.startswith('/') else parts.path)
    return path or ':memory:'


def database_exists(url):
    """False only for a SQLite file that is not there yet."""
    path = sqlite_path(url)
    return path is None or path == ':memory:' or os.path.exists(path)


MODES = ('app', 'migrate', 'inspect')


def _check_sqlite_path(url, path, mode):
    if path == ':memory:':
        return
    if os.path.isdir(path):
        raise ConfigError('%s is a directory, not a SQLite database file' % path)
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        # /dev/null and the like: SQLite "writes" to it, and every commit then fails.
        raise ConfigError('%s is not a regular file (a device, pipe or socket), so it cannot '
                          'hold a SQLite database' % path)
    # Through a dangling symlink, the file is created where the link points.
    real = os.path.realpath(path) if os.path.islink(path) else path
    parent = os.path.dirname(os.path.abspath(real))
    if not os.path.isdir(parent) and mode != 'inspect':
        if os.path.abspath(path) != os.path.abspath(default_path()):
            raise ConfigError('cannot create %s: directory %s does not exist'
                              % (mask_url(url), parent))
        os.makedirs(parent, mode=0o700, exist_ok=True)
    if mode != 'inspect' and os.path.exists(path):
        parent = os.path.dirname(os.path.realpath(path))
        for what, target in (('file', path), ('directory', parent)):
            # SQLite writes the file, and a -journal or -wal file beside it.
            if not os.access(target, os.W_OK):
                raise ConfigError('cannot write to %s: the %s %s is read-only (mode %s); '
                                  'status, history and check only read'
                                  % (mask_url(url), what, target,
                                     oct(os.stat(target).st_mode & 0o777)[2:]))
    if mode != 'inspect' and not os.path.exists(path):
        # Registry rows are nobody else's business: the file (and the -wal/-shm/-journal files,
        # which SQLite creates with the database's mode) is readable by its owner only.
        create_private(path)


def _sqlite_pragmas():
    return {'foreign_keys': 1, 'busy_timeout': int(BUSY_TIMEOUT * 1000)}


def use_for_app(database):
    """Switch an open database to the settings for many writers (SQLite: WAL, synchronous=NORMAL).

    ``journal_mode=wal`` is written into the file, so the startup gate calls this only after the
    schema check passed: a refused file is left byte-identical. Switching needs the file to
    itself for an instant, and SQLite answers "database is locked" at once (no busy wait) while
    another connection reads; so the switch is retried for up to the busy timeout, and skipped
    when the file is in WAL already. ``synchronous`` is per connection: every later connection
    of this database (one per thread) gets it too.
    """
    if isinstance(database, SqliteDatabase) and database.database != ':memory:':
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                if database.pragma('journal_mode').lower() != 'wal':
                    database.pragma('journal_mode', 'wal')
                break
            except (DatabaseError, sqlite3.Error) as exc:
                if 'locked' not in str(exc) and 'busy' not in str(exc) \
                        or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        database.pragma('synchronous', 1, permanent=True)
    return database


class _SafeRollback:
    """SQLite: roll back only what is still there, so the error that ended a transaction is the
    one reported.

    On SQLITE_FULL, IOERR, NOMEM or CORRUPT, SQLite may roll the whole transaction back by
    itself. peewee's atomic() then sends ROLLBACK (or ROLLBACK TO SAVEPOINT), which fails with
    "cannot rollback - no transaction is active" and replaces the real error ("database or disk
    is full"). Here a rollback is skipped when the connection is no longer in a transaction.
    """

    def _in_transaction(self):
        return not self.is_closed() and self.connection().in_transaction

    def rollback(self):
        if self._in_transaction():
            super().rollback()

    def savepoint(self):
        return _Savepoint(self)


class _Savepoint:
    """A savepoint as peewee's atomic() nests one, whose rollback survives SQLite's own."""

    def __init__(self, db):
        self.db = db
        self.quoted_sid = 's%s' % os.urandom(8).hex()

    def _begin(self):
        self.db.execute_sql('SAVEPOINT %s' % self.quoted_sid)

    def commit(self, begin=True):
        self.db.execute_sql('RELEASE SAVEPOINT %s' % self.quoted_sid)
        if begin:
            self._begin()

    def rollback(self, begin=True):
        if self.db._in_transaction():
            self.db.execute_sql('ROLLBACK TO SAVEPOINT %s' % self.quoted_sid)
        if begin:
            self._begin()

    def __enter__(self):
        self._begin()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.rollback(False)
            return False
        try:
            self.commit(False)
        except Exception:
            self.rollback(False)
            raise
        return False


_SAFE = {}


def _safe_class(cls):
    """``cls`` (a SqliteDatabase class from playhouse.db_url) with _SafeRollback mixed in."""
    if cls not in _SAFE:
        _SAFE[cls] = type(cls.__name__, (_SafeRollback, cls), {'__module__': __name__})
    return _SAFE[cls]


def _check_query(url, shown, parts, cls):
    """Refuse a fragment, and query parameters that would not be understood, before anything
    is opened or created."""
    if parts.fragment or url.endswith('#'):
        raise ConfigError('database URL %s has a fragment (#%s), which means nothing here; a '
                          '"#" in a file name is written %%23 in a URL (or give the bare path)'
                          % (shown, parts.fragment))
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not pairs and parts.query:
        pairs = [(parts.query, '')]
    if issubclass(cls, SqliteDatabase):
        if pairs:
            raise ConfigError('SQLite URL %s has query parameters (%s), which modelstore does '
                              'not take: it sets the busy timeout and pragmas itself. A "?" in '
                              'a file name is written %%3F in a URL (or give the bare path)'
                              % (shown, ', '.join(repr(k) for k, _ in pairs)))
        return
    if 'postgres' in parts.scheme:
        try:
            from psycopg2.extensions import parse_dsn
        except ImportError:  # Reported when connecting, with the install command.
            return
        for key, value in pairs:
            try:
                parse_dsn('%s=%s' % (key, _dsn_quote(value)))
            except Exception as exc:
                raise ConfigError('PostgreSQL URL %s has a query parameter libpq does not '
                                  'understand: %s (%s)' % (shown, key, _one_line(exc))) from None
        timeout = dict(pairs).get('connect_timeout')
        if timeout is not None and not re.fullmatch(r'\s*\d+\s*', timeout):
            raise ConfigError('PostgreSQL URL %s: connect_timeout must be a whole number of '
                              'seconds, got %r' % (shown, timeout))


def _dsn_quote(value):
    return "'%s'" % value.replace('\\', '\\\\').replace("'", "\\'")


def _one_line(exc):
    return ' '.join(str(exc).split()) or type(exc).__name__


def open_database(url, *, mode='app'):
    """Open (and verify) the database at ``url``; raise ConfigError saying what is wrong."""
    if mode not in MODES:
        raise ValueError('mode must be one of %s' % ', '.join(MODES))
    shown = mask_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError('malformed database URL %s: %s' % (shown, exc)) from None
    cls = db_url.schemes.get(parts.scheme)
    if cls is None:
        raise ConfigError('unsupported database URL scheme %r in %s; use sqlite:///path, '
                          'postgresql://user:password@host/db or mysql://user:password@host/db'
                          % (parts.scheme, shown))
    _check_query(url, shown, parts, cls)
    try:
        kwargs = db_url.parseresult_to_dict(parts, unquote_password=True, unquote_user=True)
    except ValueError as exc:  # A port that is not a number.
        raise ConfigError('invalid database URL %s: %s' % (shown, exc)) from None
    read_only = False
    if issubclass(cls, SqliteDatabase):
        cls = _safe_class(cls)
        path = sqlite_path(url)
        _check_sqlite_path(url, path, mode)
        if mode == 'inspect' and path != ':memory:' and (
                not os.path.exists(path) or os.path.getsize(path) == 0):
            # An empty database we must not create, or write a header into: stand in for it.
            path = ':memory:'
        read_only = mode == 'inspect' and path != ':memory:' and not _writable(path)
        kwargs = {'database': path, 'pragmas': _sqlite_pragmas(), 'timeout': BUSY_TIMEOUT}
    elif 'postgres' in parts.scheme:
        kwargs.setdefault('connect_timeout', CONNECT_TIMEOUT)
    if not kwargs.get('database'):
        raise ConfigError('invalid database URL %s: it names no database (local databases take '
                          'three slashes, sqlite:///file.db; servers postgresql://host/db)'
                          % shown)
    try:
        database = _connect(cls, kwargs, read_only, url, shown)
    except ImproperlyConfigured as exc:
        extra = 'mysql' if 'mysql' in parts.scheme else 'postgres'
        raise ConfigError('cannot open %s: %s Install it with: pip install "modelstore[%s]"'
                          % (shown, str(exc).rstrip('.') + '.', extra)) from None
    return use_for_app(database) if mode == 'app' else database


def _writable(path):
    """Can SQLite write the file and create its -journal/-wal/-shm beside it?"""
    return os.access(path, os.W_OK) and os.access(os.path.dirname(os.path.realpath(path)),
                                                  os.W_OK)


def _connect(cls, kwargs, read_only, url, shown):
    """Open ``cls(**kwargs)`` and read its table list (a non-database file fails here)."""
    if read_only:
        return _connect_read_only(cls, kwargs, url, shown)
    try:
        database = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError('invalid database URL %s: %s' % (shown, _masked(exc, url, shown))) \
            from None
    started = time.monotonic()
    try:
        database.connect(reuse_if_open=True)
        database.get_tables()
    except ImproperlyConfigured:
        raise
    except (DatabaseError, sqlite3.Error) as exc:
        database.close()
        raise ConfigError('cannot open %s: %s%s' % (
            shown, _masked(exc, url, shown), _timeout_hint(kwargs, started))) from None
    except Exception as exc:  # Driver errors (refused connection, bad password) vary by driver.
        raise ConfigError('cannot connect to %s: %s%s' % (
            shown, _masked(exc, url, shown), _timeout_hint(kwargs, started))) from None
    return database


def _timeout_hint(kwargs, started):
    """Why a connect that took its whole connect_timeout failed: the server never answered."""
    timeout = kwargs.get('connect_timeout')
    if timeout is None or time.monotonic() - started < max(int(timeout), 2) * 0.9:
        return ''
    return ' (no answer from %s:%s within %s s; connect_timeout=N in the URL changes the wait)' \
        % (kwargs.get('host', 'localhost'), kwargs.get('port', 5432), timeout)


def _connect_read_only(cls, kwargs, url, shown):
    """Open a SQLite file this process cannot write, for reading (status, history, check).

    An ordinary read-only reader sees the write-ahead log, but needs the -shm file; in a
    read-only directory, where it cannot be created, SQLite refuses. When the log is absent or
    empty there is nothing in it to miss -- and nobody can write the file in WAL mode without
    creating it -- so the file is opened ``immutable``. A log with content that cannot be read
    is reported, naming what is missing.
    """
    path = kwargs['database']
    uri = 'file:%s?mode=ro' % file_uri_path(path)
    attempts = [uri]
    if not os.path.exists(path + '-wal') or os.path.getsize(path + '-wal') == 0:
        attempts.append(uri + '&immutable=1')
    error = None
    for attempt in attempts:
        database = cls(**dict(kwargs, database=attempt, uri=True))
        try:
            database.connect()
            database.get_tables()
            return database
        except (DatabaseError, sqlite3.Error) as exc:
            database.close()
            error = error or exc
    wal = path + '-wal'
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        shm = path + '-shm'
        missing = ('%s is missing and cannot be created in the read-only directory %s'
                   % (shm, os.path.dirname(os.path.realpath(path))) if not os.path.exists(shm)
                   else '%s is not readable by this user' % shm if not os.access(shm, os.R_OK)
                   else '%s is not readable by this user' % wal)
        raise ConfigError('cannot read %s: it is in WAL mode and its write-ahead log holds '
                          'committed changes, which SQLite reads only through the -shm file: '
                          '%s. Run this as a user who may write the directory, or ask its '
                          'owner to open the database once (that folds the log into the file)'
                          % (shown, missing))
    raise ConfigError('cannot open %s: %s' % (shown, _masked(error, url, shown)))


def _masked(exc, url, shown):
    password = urlsplit(url).password
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.replace(url, shown)
    return text.replace(password, '***') if password else text


def write_transaction(database):
    """A transaction that takes the write lock up front (SQLite: BEGIN IMMEDIATE).

    A read-then-write in a deferred SQLite transaction fails with SQLITE_BUSY when another
    writer got there first; taking the lock first makes it wait out the busy timeout instead.
    """
    if isinstance(database, SqliteDatabase):
        return database.atomic('IMMEDIATE')
    return database.atomic()
