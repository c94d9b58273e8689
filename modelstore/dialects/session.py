"""A migration run's session, the interface: its lock, transaction, checkpoints and FK watch.

Each backend's module has its own (SqliteRunSession, PostgresRunSession, MySQLRunSession), made
by ``Dialect.run_session``. Entering one takes the lock that keeps runs apart, with a bounded
wait (LockTimeout after it); the engine reads the applied set only *after* that, so a runner that
waited finds the work done. The lock dies with its process on every backend (a lock row would
outlive a kill -9). What differs:

* SQLite: one write transaction around the whole run, each script a savepoint in it, so a kill
  rolls the run back (``commits_at_exit``); ``checkpoint``/``resume`` end it and begin the next
  around an online script's batches; foreign keys are checked by the ``watch`` instead of
  enforced (a rebuild's DROP TABLE would cascade).
* PostgreSQL: each script commits by itself; ``verify`` checks the lock's own connection is alive.
* MySQL/MariaDB: each script's operations commit one by one; ``verify`` checks the named lock is
  still this connection's.
"""
import time

from ..exceptions import LockTimeout, MigrationError

__all__ = ['RunSession', 'NoWatch', 'NeedBaseline', 'poll', 'lock_held']


class NeedBaseline(Exception):
    """Violations were found before the ones already there were read: undo, read, run again."""


class NoWatch:
    """Where the database enforces foreign keys itself: nothing to watch."""

    def mark(self):
        """Called before each script, inside its transaction."""

    def check(self):
        """Called after each script, inside its transaction; raises to roll it back."""

    def read_baseline(self):
        """Record the violations that exist now."""


class RunSession:
    """Context manager: take the lock on enter (or raise LockTimeout), release it on exit."""

    # True when every script of the run is committed only as the lock is released.
    commits_at_exit = False

    def __init__(self, database, timeout):
        self.database = database
        self.timeout = float(timeout)  # Checked by the caller (modelstore.shared.timeouts).
        # Checks each script for new foreign-key violations (SQLite's ForeignKeyWatch).
        self.watch = NoWatch()

    def _refuse_open_transaction(self):
        if self.database.in_transaction():
            raise MigrationError('a migration run cannot start inside an open transaction')

    def discard(self):
        """Undo everything done under the lock (a dry run); the lock stays held."""

    def still_open(self):
        """SQLite: the lock's transaction was not rolled back by SQLite itself."""
        return True

    def checkpoint(self):
        """Commit what the run did so far and hold the lock without a transaction (for an
        online script's batches); True if that committed anything (SQLite)."""
        return False

    def resume(self):
        """After ``checkpoint``: the next scripts' transaction (SQLite)."""

    def verify(self):
        """Before each script: the lock is still held, else MigrationError."""


def poll(attempt, timeout, delay, longest):
    """Call ``attempt()`` until it returns true, sleeping ``delay`` seconds, doubled each time
    up to ``longest``, in between; False once ``timeout`` seconds have passed without it."""
    deadline = time.monotonic() + timeout
    while not attempt():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, longest)
    return True


def lock_held(timeout, what='its lock', holder=''):
    """The LockTimeout of a run that waited ``timeout`` seconds for another's lock."""
    return LockTimeout('another modelstore migration on this database held %s for more than '
                       '%g s%s; try again when it has finished' % (what, timeout, holder))
