"""Waits given in seconds (lock, busy and reconnect timeouts), checked once for every caller.

Re-exported by modelstore.shared.database, where they were first defined.
"""
import math

from ..exceptions import ConfigError

__all__ = ['MAX_TIMEOUT', 'busy_ms', 'check_timeout']

# SQLite's busy timeout is an int of milliseconds.
MAX_TIMEOUT = (2 ** 31 - 1) // 1000


def busy_ms(timeout):
    """``timeout`` seconds as SQLite's busy-timeout milliseconds (validated by check_timeout)."""
    return int(check_timeout(timeout) * 1000)


def check_timeout(value, what='lock timeout'):
    """A wait in seconds: a finite number from 0 to MAX_TIMEOUT; ConfigError otherwise.

    The message starts with ``what`` (None: with the predicate, for a CLI option's error).
    """
    subject = what + ' ' if what else ''
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError('%smust be a number of seconds, got %s'
                          % (subject, type(value).__name__))
    if not math.isfinite(value) or value < 0:
        raise ConfigError('%smust be a finite number of seconds, at least 0, got %r'
                          % (subject, value))
    if value > MAX_TIMEOUT:
        raise ConfigError('%smust be at most %d s (about 24 days, the longest SQLite can wait), '
                          'got %g' % (subject, MAX_TIMEOUT, value))
    return float(value)
