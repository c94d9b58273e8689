"""Which database a URL, a path or the environment names, and how to show it safely.

Resolution: the explicit argument, then ``MODELSTORE_DATABASE_URL`` (unset or empty: not used),
then a SQLite file at ``${XDG_DATA_HOME:-~/.local/share}/modelstore/modelstore.db``. An empty
string given as the URL is an error, never "the default". URLs are ``playhouse.db_url`` URLs
(``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``postgresql://user:pass@host:5432/db``)
and follow URL rules: ``%XX`` escapes are decoded, and ``?`` and ``#`` start the query and the
fragment. A bare path (no ``://``) is a path, every character of it: it becomes a SQLite URL
with ``%``, ``?`` and ``#`` escaped.

A PostgreSQL URL may name several servers, as libpq does:
``postgresql://u:p@10.0.0.1:5432,10.0.0.2:5432/db?target_session_attrs=read-write`` tries them in
order and, with that parameter, takes the one that accepts writes (the primary). Python's URL
parser (and so ``playhouse.db_url``) reads one host and fails on the port, so modelstore splits
the host list itself (``server_hosts``) and hands libpq ``host=10.0.0.1,10.0.0.2
port=5432,5432``: libpq's own multi-host connection keywords.

Passwords (in the userinfo or the query) are shown as ``***`` wherever a URL is printed.

``parse_url(url)`` resolves the URL as above and parses it once, into a ``DatabaseURL``: the
text itself (a ``str``, what is connected with) that also knows its ``scheme``, its
``backend`` ('sqlite', 'postgresql', 'mysql' or None), its ``masked`` form, its SQLite
``sqlite_path``, its server ``hosts`` and its ``query`` pairs. Every function here, and
``open_database`` and ``connect``, takes a plain string or such a value, and a value given
is not parsed again.
"""
import os
import re
import shlex
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..exceptions import ConfigError

__all__ = ['ENV_VAR', 'DatabaseURL', 'parse_url', 'default_path', 'default_url', 'sqlite_url',
           'resolve_url', 'mask_url', 'sqlite_path', 'database_exists', 'command',
           'migrate_command', 'server_hosts']

ENV_VAR = 'MODELSTORE_DATABASE_URL'


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
    if isinstance(url, DatabaseURL):
        return url
    if '://' not in url:
        url = sqlite_url(os.path.expanduser(url))  # A bare SQLite path.
    return url


_BACKENDS = {'sqlite': 'sqlite', 'postgres': 'postgresql', 'mysql': 'mysql',
             'mariadb': 'mysql'}


class DatabaseURL(str):
    """A database URL parsed once: the text (for connecting) with what modelstore reads from it.

    Immutable, and a ``str`` equal to the URL, so it goes wherever a URL string goes.
    ``parts`` is the ``urlsplit`` result, or None when the URL cannot be split (``error``, the
    ValueError, says why; ``masked`` then hides what looks like a password).
    """

    def __new__(cls, text):
        if not isinstance(text, str):
            raise ConfigError('database URL must be a string, got %s' % type(text).__name__)
        self = super().__new__(cls, text)
        set_ = object.__setattr__
        try:
            parts, error = urlsplit(text), None
        except ValueError as exc:  # An unclosed [IPv6].
            parts, error = None, exc
        set_(self, 'parts', parts)
        set_(self, 'error', error)
        set_(self, 'scheme', parts.scheme if parts else text.partition(':')[0])
        word = re.match(r'[a-z]*', self.scheme).group()
        set_(self, 'backend', next((name for prefix, name in _BACKENDS.items()
                                    if word.startswith(prefix)), None))
        pairs = parse_qsl(parts.query, keep_blank_values=True) if parts else []
        set_(self, 'query', tuple(pairs))
        set_(self, 'masked', _mask(text, parts, pairs))
        path = None
        if parts and 'sqlite' in parts.scheme:
            path = unquote(parts.path[1:] if parts.path.startswith('/') else parts.path)
            path = path or ':memory:'
        set_(self, 'sqlite_path', path)
        set_(self, '_hosts', None)
        return self

    @property
    def text(self):
        """The URL as a plain string."""
        return str.__str__(self)

    @property
    def password(self):
        """The password of the userinfo (``%XX`` kept), or None."""
        return self.parts.password if self.parts else None

    @property
    def host_list(self):
        """The netloc's host part (after any userinfo), as written: one host or several."""
        return self.parts.netloc.rpartition('@')[2] if self.parts else ''

    @property
    def hosts(self):
        """The (host, port) pairs the URL names (see ``server_hosts``), parsed once, on first
        use: ConfigError for a host list that is not ``host[:port],...``."""
        if self._hosts is None:
            object.__setattr__(self, '_hosts', tuple(_hosts(self)))
        return list(self._hosts)

    @classmethod
    def of(cls, url):
        """``url`` as a DatabaseURL, as given (not resolved: see ``parse_url``); a DatabaseURL is
        returned as it is."""
        return url if isinstance(url, DatabaseURL) else cls(url)

    def replace(self, **parts):
        """Another DatabaseURL: this one with ``urlsplit`` fields replaced (``path='/db'``)."""
        return DatabaseURL(urlunsplit(self.parts._replace(**parts)))

    def __setattr__(self, name, value):
        raise AttributeError('a DatabaseURL is immutable')

    __delattr__ = __setattr__

    def __reduce__(self):
        return DatabaseURL, (self.text,)


def parse_url(url=None):
    """The ``DatabaseURL`` of ``url`` resolved as ``resolve_url`` does (argument, environment,
    default; a bare path is a SQLite file); a DatabaseURL is returned as it is."""
    if isinstance(url, DatabaseURL):
        return url
    return DatabaseURL(resolve_url(url))


def _mask(url, parts, pairs):
    if parts is None:  # Unparseable: mask what looks like a password.
        return re.sub(r'(://[^:/@]*:)[^@]*@', r'\1***@', url)
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


def mask_url(url):
    """Return the URL with any password (in the userinfo or the query) replaced by ``***``."""
    return DatabaseURL.of(url).masked


def sqlite_path(url):
    """The file path of a SQLite URL (``%XX`` decoded), ``':memory:'``, or None for other
    backends."""
    url = DatabaseURL.of(url)
    if url.error is not None:
        raise url.error
    return url.sqlite_path


def database_exists(url):
    """False only for a SQLite file that is not there yet."""
    url = DatabaseURL.of(url)
    path = url.sqlite_path
    return path is None or path == ':memory:' or os.path.exists(path)


# The options of each command that choose what it acts on (the database, the scripts, the
# models, the models root), in the order a hint repeats them.
_SELECTING = {'check': ('database', 'migrations', 'models'),
              'new': ('migrations', 'models'),
              'doctor': ('database', 'models_root'),
              'models delete': ('database', 'models_root'),
              'models': ('database',), 'tasks': ('database',), 'import': ('database',)}
_DEFAULT_SELECTING = ('database', 'migrations')  # migrate, rollback, status, repair, ...


def command(verb, *words, database=None, migrations=None, models=None, models_root=None):
    """The command line a message tells an operator to run, shell-quoted: ``modelstore VERB
    WORDS``, then every option given here that VERB takes and that chose the database or the
    scripts (the URL with its password masked), after ``words``. Every hint modelstore prints is
    built here, so that following one acts on the same database with the same scripts."""
    given = {'database': DatabaseURL.of(database).masked if database is not None else None,
             'migrations': migrations, 'models': models, 'models_root': models_root}
    takes = _SELECTING.get(verb, _SELECTING.get(verb.split()[0], _DEFAULT_SELECTING))
    parts = ['modelstore'] + verb.split() + [w if w.isupper() else shlex.quote(w)
                                             for w in words]
    for name in takes:
        if given[name] is not None:
            parts += ['--' + name.replace('_', '-'), shlex.quote(str(given[name]))]
    return ' '.join(parts)


def migrate_command(url, migrations=None):
    """The command an operator runs to bring ``url`` up to date (password masked)."""
    return command('migrate', database=url, migrations=migrations)


_HOST = re.compile(r'(\[[^\]]*\]|[^:\[\]]*)(?::(\d*))?')


def server_hosts(url):
    """The (host, port) pairs a server URL names, in order: one for ``postgresql://h:5432/db``,
    several for libpq's multi-host form ``postgresql://h1:p1,h2:p2/db``. A port not given is
    ``''`` (libpq's default); ``[::1]`` brackets are removed. ConfigError for an item that is
    not ``host[:port]``."""
    url = DatabaseURL.of(url)
    if url.error is not None:
        raise url.error
    return url.hosts


def _hosts(url):
    netloc = url.host_list
    hosts = []
    for item in netloc.split(','):
        match = _HOST.fullmatch(item)
        if match is None or (not match.group(1) and ',' in netloc):
            raise ConfigError('database URL %s: %r in its host list is not host[:port] (hosts '
                              'are separated by commas: host1:5432,host2:5432)'
                              % (url.masked, item))
        host = match.group(1)
        hosts.append((unquote(host[1:-1] if host.startswith('[') else host),
                      match.group(2) or ''))
    return hosts
