"""Open a database with the settings modelstore relies on (URLs: modelstore.shared.urls).

Query parameters: a SQLite URL takes none (modelstore sets the busy timeout and pragmas); a
PostgreSQL URL libpq's connection keywords (``sslmode``, ``connect_timeout``...), each checked
by the driver before connecting; a MySQL/MariaDB URL the few PyMySQL takes (see
modelstore.dialects.mysql, which sets its session too). Anything else, or a fragment, is refused
before any file is created. Servers are given up on after ``connect_timeout`` s (default 10).

Every SQLite connection gets a busy timeout and ``foreign_keys=ON``, and a rollback that is
skipped when SQLite already rolled the transaction back by itself (see
``modelstore.dialects.sqlite``).
Three modes:

* ``app`` (the default): also WAL (persistent) and ``synchronous=NORMAL`` -- measured: 8 writer
  processes x 1000 inserts in 0.63 s with 0 lost, against 7.1 s with SQLite's defaults. A
  missing file is created. ``connect()`` opens in ``migrate`` mode and calls ``use_for_app``
  once the schema check passed, deferring the switch to WAL to the first write: reading never
  changes the file (``models list`` on a ModelForge file leaves it as the app left it).
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
from urllib.parse import unquote

from peewee import DatabaseError, ImproperlyConfigured

from ..dialects import (BUSY_TIMEOUT, MYSQL_SCHEMES, busy_timeout, check_mysql_query,
                        database_class, dialect_of, is_busy, mysql_kwargs)
from ..exceptions import ConfigError, one_line
from .files import create_private, file_uri_path, has_wal
from .timeouts import MAX_TIMEOUT, busy_ms, check_timeout
from .urls import DatabaseURL, default_path

__all__ = ['BUSY_TIMEOUT', 'CONNECT_TIMEOUT', 'MAX_TIMEOUT', 'MODES', 'open_database',
           'use_for_app', 'write_transaction', 'check_timeout', 'busy_ms', 'try_journal']

CONNECT_TIMEOUT = 10  # seconds a PostgreSQL connect waits for the server (URL: connect_timeout).


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
    # Through a symlink (dangling or not), SQLite writes where the link points.
    parent = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(parent) and mode != 'inspect':
        if os.path.abspath(path) != os.path.abspath(default_path()):
            raise ConfigError('cannot create %s: directory %s does not exist'
                              % (url.masked, parent))
        os.makedirs(parent, mode=0o700, exist_ok=True)
    if mode != 'inspect' and os.path.exists(path):
        for what, target in (('file', path), ('directory', parent)):
            # SQLite writes the file, and a -journal or -wal file beside it.
            if not os.access(target, os.W_OK):
                raise ConfigError('cannot write to %s: the %s %s is read-only (mode %s); '
                                  'status, history and check only read'
                                  % (url.masked, what, target,
                                     oct(os.stat(target).st_mode & 0o777)[2:]))
    if mode != 'inspect' and not os.path.exists(path):
        # Registry rows are nobody else's business: the file (and the -wal/-shm/-journal files,
        # which SQLite creates with the database's mode) is readable by its owner only.
        create_private(path)


def use_for_app(database, *, at_first_write=False):
    """Switch an open database to the settings for many writers (SQLite: WAL, synchronous=NORMAL,
    temp_store=MEMORY).

    ``journal_mode=wal`` is written into the file, so the startup gate calls this only after the
    schema check passed, and with ``at_first_write`` (the switch then waits for the first
    ``write_transaction``): a refused file, and a file that is only read, are left
    byte-identical, in the journal mode they had. ``synchronous`` is per connection: every later
    connection of this database (one per thread) gets it too.
    """
    if dialect_of(database).embedded and database.database != ':memory:':
        # Statement journals in memory, not in a temporary file: a table with triggers (0010's
        # on fine_tuned_models) makes SQLite journal every INSERT's pages, which on disk cost
        # add_models ~15 us a row (docs/performance.md).
        database.pragma('temp_store', 2, permanent=True)
        database.wal_pending = True
        if not at_first_write:
            _switch_to_wal(database)
    return database


def _switch_to_wal(database):
    """WAL and synchronous=NORMAL, outside any transaction.

    Switching needs the file to itself for an instant, and SQLite answers "database is locked"
    at once (no busy wait) while another connection reads; so the switch is retried for up to
    the busy timeout, and skipped when the file is in WAL already.
    """
    busy = _to_journal(database, 'wal', BUSY_TIMEOUT)
    if busy is not None:
        raise busy
    # NORMAL is safe with WAL only: a file left in its rollback journal keeps SQLite's FULL.
    database.pragma('synchronous', 1, permanent=True)
    database.wal_pending = False


def try_journal(database, mode, seconds):
    """Switch a SQLite file's journal mode (``wal``, or back to the ``delete`` it was in),
    trying for ``seconds`` while other connections hold the file; True if the file is in
    ``mode`` after. Nothing changes when it is not: leaving WAL needs every other connection
    closed, not only idle, and a file system without shared memory refuses WAL. Each try
    waits in the busy handler for at most ``seconds`` too (the switch back, refused while an
    app has the file open, waited the whole busy timeout: 5 s and more)."""
    if database.database == ':memory:':
        return False
    with busy_timeout(database, min(database.pragma('busy_timeout'), int(seconds * 1000))):
        if _to_journal(database, mode, seconds) is not None:
            return False
        return database.pragma('journal_mode').lower() == mode


def _to_journal(database, mode, seconds):
    """``journal_mode=mode`` unless it is already, retried while another connection holds the
    file; None when done, else the last "database is locked" once ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if database.pragma('journal_mode').lower() != mode:
                database.pragma('journal_mode', mode)
            return None
        except (DatabaseError, sqlite3.Error) as exc:
            if not is_busy(exc):
                raise
            if time.monotonic() > deadline:
                return exc
            time.sleep(0.01)


def _check_query(url, cls):
    """Refuse a fragment, and query parameters that would not be understood, before anything
    is opened or created."""
    parts, shown = url.parts, url.masked
    if parts.fragment or url.endswith('#'):
        raise ConfigError('database URL %s has a fragment (#%s), which means nothing here; a '
                          '"#" in a file name is written %%23 in a URL (or give the bare path)'
                          % (shown, parts.fragment))
    pairs = list(url.query)
    if not pairs and parts.query:
        pairs = [(parts.query, '')]
    if dialect_of(cls).embedded:
        if pairs:
            raise ConfigError('SQLite URL %s has query parameters (%s), which modelstore does '
                              'not take: it sets the busy timeout and pragmas itself. A "?" in '
                              'a file name is written %%3F in a URL (or give the bare path)'
                              % (shown, ', '.join(repr(k) for k, _ in pairs)))
        return
    if url.backend == 'postgresql':
        try:
            from psycopg2.extensions import make_dsn
        except ImportError:  # Reported when connecting, with the install command.
            return
        for key, value in pairs:
            try:
                make_dsn(**{key: value})  # libpq's own check of the keyword.
            except Exception as exc:
                raise ConfigError('PostgreSQL URL %s has a query parameter libpq does not '
                                  'understand: %s (%s)' % (shown, key, one_line(exc))) from None
        timeout = dict(pairs).get('connect_timeout')
        if timeout is not None and not re.fullmatch(r'\s*\d+\s*', timeout):
            raise ConfigError('PostgreSQL URL %s: connect_timeout must be a whole number of '
                              'seconds, got %r' % (shown, timeout))
    elif url.scheme.split('+')[0] in MYSQL_SCHEMES:
        check_mysql_query(shown, pairs)


def open_database(url, *, mode='app'):
    """Open (and verify) the database at ``url`` (a string, or a DatabaseURL as
    modelstore.shared.urls.parse_url makes it); raise ConfigError saying what is wrong."""
    if mode not in MODES:
        raise ValueError('mode must be one of %s' % ', '.join(MODES))
    url = DatabaseURL.of(url)  # Parsed once, here (or by the caller).
    if url.error is not None:
        raise ConfigError('malformed database URL %s: %s' % (url.masked, url.error)) from None
    cls = _database_class(url)
    _check_query(url, cls)
    dialect = dialect_of(cls)
    if dialect.embedded:
        _hosts(url)
        cls = dialect.session_class(cls)
        kwargs, read_only = _sqlite_kwargs(url, mode)
    else:
        kwargs, read_only = _url_kwargs(url), False
        if url.backend == 'postgresql':
            kwargs.setdefault('connect_timeout', CONNECT_TIMEOUT)
        elif url.scheme.split('+')[0] in MYSQL_SCHEMES:
            cls, kwargs = dialect.session_class(cls), mysql_kwargs(kwargs, CONNECT_TIMEOUT)
    if not kwargs.get('database'):
        raise ConfigError('invalid database URL %s: it names no database (local databases take '
                          'three slashes, sqlite:///file.db; servers postgresql://host/db)'
                          % url.masked)
    try:
        database = _connect(cls, kwargs, read_only, url, url.masked)
    except ImproperlyConfigured as exc:
        extra = 'mysql' if 'mysql' in url.parts.scheme else 'postgres'
        raise ConfigError('cannot open %s: %s Install it with: pip install "modelstore[%s]"'
                          % (url.masked, str(exc).rstrip('.') + '.', extra)) from None
    return use_for_app(database) if mode == 'app' else database


def _database_class(url):
    """playhouse.db_url's database class for the URL's scheme."""
    scheme = url.parts.scheme
    cls = database_class(scheme)  # peewee's own; playhouse.db_url's only for the others.
    if cls is None:
        cls = _db_url().schemes.get(scheme)
    if cls is None:
        raise ConfigError('unsupported database URL scheme %r in %s; use sqlite:///path, '
                          'postgresql://user:password@host/db or mysql://user:password@host/db '
                          '(mariadb://... is the same)' % (scheme, url.masked))
    return cls


def _db_url():
    """playhouse.db_url, imported when first needed: it imports every playhouse extension and
    its driver, a fifth of a SQLite command's start-up (issue 30)."""
    from playhouse import db_url
    return db_url


def _url_kwargs(url):
    """The connect arguments the URL spells; several hosts (PostgreSQL only) as libpq's
    multi-host keywords: a list of hosts, and a port for each (or none)."""
    hosts, parts = _hosts(url), url.parts
    kwargs = _db_url().parseresult_to_dict(
        parts._replace(netloc=parts.netloc.split(',')[0]) if hosts else parts,
        unquote_password=True, unquote_user=True)
    if hosts:
        kwargs['host'] = ','.join(host for host, _ in hosts)
        kwargs.pop('port', None)
        if any(port for _, port in hosts):
            kwargs['port'] = ','.join(port for _, port in hosts)
    return kwargs


def _hosts(url):
    """The URL's hosts if it names several (PostgreSQL only), else None; ConfigError for
    several hosts elsewhere, or a port that is not a number. Checked for every URL, SQLite's
    too, whose other parts need no parsing."""
    hosts = url.hosts if ',' in url.host_list else None
    if hosts and url.backend != 'postgresql':
        raise ConfigError('database URL %s names several hosts; only PostgreSQL URLs may '
                          '(libpq tries them in order)' % url.masked)
    try:
        url.parts._replace(netloc=url.parts.netloc.split(',')[0]).port
    except ValueError as exc:  # A port that is not a number.
        raise ConfigError('invalid database URL %s: %s' % (url.masked, exc)) from None
    return hosts


def _sqlite_kwargs(url, mode):
    """SQLite's connect arguments for the checked file, and whether it is opened read-only."""
    path = url.sqlite_path
    _check_sqlite_path(url, path, mode)
    if mode == 'inspect' and path != ':memory:' and (
            not os.path.exists(path) or os.path.getsize(path) == 0):
        # An empty database we must not create, or write a header into: stand in for it.
        path = ':memory:'
    read_only = mode == 'inspect' and path != ':memory:' and not _writable(path)
    pragmas = {'foreign_keys': 1, 'busy_timeout': int(BUSY_TIMEOUT * 1000)}
    return {'database': path, 'pragmas': pragmas, 'timeout': BUSY_TIMEOUT}, read_only


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
    hosts = str(kwargs.get('host', 'localhost')).split(',')
    ports = str(kwargs.get('port', 5432)).split(',')
    where = ', '.join('%s:%s' % (host, (ports[i] if len(ports) > 1 else ports[0]) or 5432)
                      for i, host in enumerate(hosts))
    return ' (no answer from %s within %s s; connect_timeout=N in the URL changes the wait)' \
        % (where, timeout)


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
    attempts = [uri] if has_wal(path) else [uri, uri + '&immutable=1']
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
    if has_wal(path):
        wal, shm = path + '-wal', path + '-shm'
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
    """The driver's message, one line, with the URL's password hidden where it stands as a
    password: in the URL itself, in a ``user:password@`` netloc, or as ``password=...`` (a
    libpq DSN). The same text elsewhere in the message (a password ``post`` in "postgresql")
    is left alone."""
    password = url.password
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    # libpq reports each host of a multi-host URL on a line of its own: keep them all.
    text = '; '.join([lines[0]] + [line for line in lines[1:]
                                   if line.startswith('connection to server')])
    text = text.replace(url, shown)
    if not password:
        return text
    for secret in {password, unquote(password)}:
        quoted = re.escape(secret)
        text = re.sub(r'(?<=:)%s(?=@)' % quoted, '***', text)
        text = re.sub(r"""(\bpassword\s*=\s*(['"]?))%s(?=\2(?:\s|$|[,;)]))""" % quoted,
                      r'\1***', text)
    return text


def write_transaction(database):
    """A transaction that takes the write lock up front (SQLite: BEGIN IMMEDIATE).

    A read-then-write in a deferred SQLite transaction fails with SQLITE_BUSY when another
    writer got there first; taking the lock first makes it wait out the busy timeout instead.
    """
    dialect = dialect_of(database)
    if dialect.embedded and getattr(database, 'wal_pending', False) \
            and not database.in_transaction():
        _switch_to_wal(database)  # Deferred by use_for_app(at_first_write=True).
    return dialect.write_transaction(database)
