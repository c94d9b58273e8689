"""Defaults and bounds the command line states before it loads anything else: their one home.

`modelstore --help` (and every command's parsing) needs these values, but not peewee, the
engine or the registry that use them; each of those imports its value from here and re-exports
it where it always did (``modelstore.engine.KEEP``, ``modelstore.registry.MIN_AGE``, ...).
"""
import re

__all__ = ['LOCK_TIMEOUT', 'DDL_LOCK_TIMEOUT', 'DDL_RETRIES', 'KEEP', 'MIN_AGE', 'MAX_MIN_AGE',
           'MAX_PAGE', 'ALIAS_PATTERN', 'ALIAS_RULE', 'MODELS_ROOT_ENV']

LOCK_TIMEOUT = 30.0  # seconds a run waits for another run's lock by default.
DDL_LOCK_TIMEOUT = 2.0  # seconds a script's DDL waits for a table lock before it backs off,
DDL_RETRIES = 10  # and how many times it tries again (modelstore.engine.ddlwait).
KEEP = 5  # backups of a SQLite file kept, newest first (modelstore.engine.backup).
MIN_AGE = 60  # minutes: see modelstore.registry.doctor and docs/cli.md's `modelstore doctor`.
MAX_MIN_AGE = 10 * 365 * 24 * 60  # ten years: more is a typo (and can overflow a datetime).
MAX_PAGE = 2 ** 62  # The largest limit or offset: within every backend's 64-bit integers.
# What an alias may be called (modelstore.registry.aliases), and that rule in words.
ALIAS_PATTERN = re.compile(r'[A-Za-z][A-Za-z0-9_.-]*\Z')
ALIAS_RULE = ('a letter, then letters, digits, "_", "." or "-" (never a whole number, which is '
              'a version)')
MODELS_ROOT_ENV = 'MODELSTORE_MODELS_ROOT'  # The models root when none is given.
