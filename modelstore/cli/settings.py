"""Where the command's settings come from, and the commands its hints tell an operator to run.

A project sets its options once in ``pyproject.toml``::

    [tool.modelstore]
    database = "sqlite:///var/registry.db"   # a URL, or a file path (relative: to this file)
    migrations = "migrations"                # the project's scripts directory (relative: ...)
    models = "myproject.db:MODELS"           # what check and new --auto compare with
    models_root = "/srv/models"              # doctor, models delete --files

The file is the nearest ``pyproject.toml`` holding a ``[tool.modelstore]`` table, found by
walking up from the current directory (as pytest finds its configuration). Each setting is
taken, first found wins: the command line (``--database``, ``--migrations``, ``--models``,
``--models-root``), then the environment (``MODELSTORE_DATABASE_URL``,
``MODELSTORE_MODELS_ROOT``), then the file, then the built-in default. Reading the file needs
Python 3.11 or later (``tomllib``; modelstore depends on peewee only): on an older Python a
``[tool.modelstore]`` table is refused with ConfigError rather than silently ignored. An
unknown key, or a value that is not a non-empty string, is a ConfigError naming the file and
the key.

``hint(args, verb, *words)`` is what every hint of the command line goes through: the command,
with the options that chose this database and these scripts (modelstore.shared.urls.command).
"""
import os
import re

from ..exceptions import ConfigError
from ..shared.defaults import MODELS_ROOT_ENV as ROOT_ENV
from ..shared.urls import ENV_VAR as DATABASE_ENV, command, parse_url

# tomllib, imported by the first read_config (most commands find no table to read: issue 30's
# start-up); None on Python < 3.11 (see the module's docstring).
tomllib = NotImplemented

__all__ = ['KEYS', 'find_config', 'read_config', 'apply_config', 'database_url', 'hint']

# key in [tool.modelstore] -> (the command's attribute, environment variable, is a path)
KEYS = {'database': ('database', DATABASE_ENV, False),
        'migrations': ('migrations', None, True),
        'models': ('models', None, False),
        'models_root': ('models_root', ROOT_ENV, True)}
_TABLE = re.compile(r'^\s*\[\s*tool\s*\.\s*modelstore\s*[\].]', re.M)


def find_config(start=None):
    """The nearest pyproject.toml at or above ``start`` (default: the current directory) that
    has a [tool.modelstore] table, or None."""
    directory = os.path.abspath(start or os.getcwd())
    while True:
        path = os.path.join(directory, 'pyproject.toml')
        if os.path.isfile(path) and _has_table(path):
            return path
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _has_table(path):
    try:
        with open(path, 'rb') as fh:
            text = fh.read().decode('utf-8', 'replace')
    except OSError as exc:
        raise ConfigError('%s: cannot be read: %s' % (path, exc.strerror or exc)) from None
    return bool(_TABLE.search(text))


def read_config(path):
    """The [tool.modelstore] settings of ``path``: {key: value}, relative paths made absolute
    against the file's directory."""
    global tomllib
    if tomllib is NotImplemented:
        try:
            import tomllib
        except ImportError:
            tomllib = None
    if tomllib is None:
        raise ConfigError('%s has a [tool.modelstore] table, and reading it needs Python 3.11 '
                          'or later (tomllib); give the settings on the command line instead, '
                          'or run modelstore on a newer Python' % path)
    try:
        with open(path, 'rb') as fh:
            document = tomllib.load(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError('%s: cannot be read: %s' % (path, exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError('%s is not valid TOML: %s' % (path, exc)) from None
    table = document.get('tool', {}).get('modelstore', {})
    if not isinstance(table, dict):
        raise ConfigError('%s: tool.modelstore must be a table, got %s'
                          % (path, type(table).__name__))
    base = os.path.dirname(path)
    settings = {}
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError('%s: [tool.modelstore] has an unknown key %r (known: %s)'
                              % (path, key, ', '.join(sorted(KEYS))))
        if not isinstance(value, str) or not value.strip() or '\0' in value:
            raise ConfigError('%s: [tool.modelstore] %s must be a non-empty string, got %r'
                              % (path, key, value))
        if KEYS[key][2] or (key == 'database' and '://' not in value):
            value = os.path.join(base, os.path.expanduser(value))
        settings[key] = value
    return settings


def apply_config(args, start=None):
    """Fill the settings ``args`` lacks (not given on the command line, not in the
    environment) from pyproject.toml; returns the file's path, or None."""
    wanted = [key for key, (attr, env, _) in KEYS.items()
              if getattr(args, attr, None) is None and not (env and os.environ.get(env))]
    if not wanted:
        return None
    path = find_config(start)
    if path is None:
        return None
    settings = read_config(path)
    for key in wanted:
        if key in settings:
            setattr(args, KEYS[key][0], settings[key])
    return path


def database_url(args):
    """The database of this command line, parsed once (modelstore.shared.urls.DatabaseURL):
    ``args.database`` resolved (option, environment, file, default) and kept on ``args``, so
    that its hints and its messages read the same value."""
    args.database = parse_url(args.database)
    return args.database


def hint(args, verb, *words):
    """``modelstore VERB WORDS`` with the options of this invocation that chose the database,
    the scripts, the models and the models root (those VERB takes)."""
    database = getattr(args, 'database', None)
    return command(verb, *words, database=parse_url(database),
                   migrations=getattr(args, 'migrations', None),
                   models=getattr(args, 'models', None),
                   models_root=getattr(args, 'models_root', None))
