"""How ``migrate`` runs an online script's batches (see modelstore.online for the protocol).

* Sized by time: each batch aims at TARGET seconds (SQLite) and the next one's size follows the
  last one's duration, so a slow disk gets smaller batches instead of longer lock holds.
* Paced on SQLite: after each commit the runner sleeps twice as long as the batch took (at
  least PAUSE), so writers waiting in SQLite's busy handler -- which polls at growing intervals,
  it is not a queue -- find the lock free at their next poll: a writer waits about one batch.
  PostgreSQL batches take row locks on rows no writer is adding, so they run back to back, with
  a longer target.
* SQLite's history writes and batches take the write lock first (``BEGIN IMMEDIATE``) and wait
  for it as long as the run waits for its lock: an app's writer committing between a read and
  a write would otherwise fail the run ("database is locked") instead of delaying it.
* ``synchronous=NORMAL`` on SQLite in WAL mode while the batches run: a commit then appends to
  the WAL without an fsync. With FULL, a batch's commit fsyncs while it holds the write lock, and
  on a disk busy with a checkpoint's flush that fsync took 250 ms, with every writer waiting
  (bench/: "versions online"). The database stays consistent on power loss; the last batches
  may be undone, and the next migrate redoes them (they are found from the data).
* The final batch on PostgreSQL takes its table lock with ``lock_timeout`` 20 ms, retried: a
  LOCK TABLE that waited behind a long transaction would queue every writer behind it.
* Progress: ``on_progress(Progress)`` after each batch.
"""
import time
from dataclasses import dataclass
from typing import Optional

from peewee import DatabaseError

from ..dialects import dialect_of, is_busy
from ..exceptions import LockTimeout, ScriptError
from ..online import Batches
from ..shared.database import busy_ms, write_transaction
from ..version import __version__
from .run_results import ScriptRun
from .steps import Step

__all__ = ['PacedBatches', 'Progress', 'run_online']

TARGET = {'sqlite': 0.01, 'postgres': 0.05}  # seconds a batch aims at
PAUSE = 0.02  # the least a SQLite run sleeps between batches
MIN_SIZE, MAX_SIZE, FIRST_SIZE = 20, 50000, 200
LOCK_WAIT = 0.02  # PostgreSQL: how long the final LOCK TABLE may wait before it retries


@dataclass(frozen=True)
class Progress:
    """Where an online script stands after a batch."""
    name: str
    rows: int  # changed so far
    total: Optional[int]  # the script's estimate (never below rows), or None
    batches: int
    elapsed: float  # seconds since it started
    size: Optional[int] = None  # rows the next batch takes (its pace: sized by the last one)
    pause: Optional[float] = None  # seconds the run now leaves the lock free (SQLite), or None

    @property
    def rate(self):
        """Rows per second so far."""
        return self.rows / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def left(self):
        """Seconds left at the rate so far, or None when that cannot be told."""
        if self.total is None or not self.rate:
            return None
        return max(self.total - self.rows, 0) / self.rate


class PacedBatches(Batches):
    """Batches as ``migrate`` runs them: timed, sized, paced, reported."""

    def __init__(self, database, name, *, on_progress=None, lock_timeout=30.0, sleep=time.sleep):
        super().__init__(database)
        self.name = name
        self.on_progress = on_progress
        self.lock_timeout = lock_timeout
        self._sleep = sleep
        # SQLite: one writer at a time, so the run pauses between batches for the others.
        self._sqlite = dialect_of(database).embedded
        self.target = TARGET[dialect_of(database).batch_target]
        self.size = FIRST_SIZE
        self._started = time.perf_counter()
        self._began = self._started

    def __enter__(self):
        self._synchronous = self._busy = None
        if self._sqlite:
            # A batch waits for the apps' writers as long as the run waits for its lock (not
            # the registry's 5 s): a burst of them must delay the run, never fail it.
            self._busy = self.database.pragma('busy_timeout')
            self.database.pragma('busy_timeout', busy_ms(self.lock_timeout))
            if self.database.pragma('journal_mode').lower() == 'wal':
                self._synchronous = self.database.pragma('synchronous')
                self.database.pragma('synchronous', 1)
        return self

    def __exit__(self, *exc):
        if self._synchronous is not None:
            self.database.pragma('synchronous', self._synchronous)
        if self._busy is not None:
            self.database.pragma('busy_timeout', self._busy)
        return False

    def _transaction(self):
        self._began = time.perf_counter()
        return super()._transaction()

    def _committed(self):
        took = time.perf_counter() - self._began
        # The next size from this one's rate, changing by at most 2x a step.
        factor = min(max(self.target / took, 0.5), 2.0) if took > 0 else 2.0
        self.size = int(min(max(self.size * factor, MIN_SIZE), MAX_SIZE))
        pause = max(2 * took, PAUSE) if self._sqlite else None
        if self.on_progress is not None:
            total = None if self.total is None else max(self.total, self.rows)
            self.on_progress(Progress(self.name, self.rows, total, self.batches,
                                      time.perf_counter() - self._started, self.size, pause))
        if pause is not None:
            self._sleep(pause)

    def _lock_table(self, table):
        """PostgreSQL: each try waits at most LOCK_WAIT, then undoes only itself."""
        self._retry_lock(table, lambda: dialect_of(self.database).lock_table(
            self.database, table, wait=LOCK_WAIT))

    def _lock_tables(self, tables):
        """MySQL/MariaDB: LOCK TABLES waits at most a second (the shortest lock_wait_timeout
        there is) before it is tried again: a LOCK waiting behind a long transaction queues the
        writers behind it."""
        with dialect_of(self.database).lock_wait(self.database, 1):
            self._retry_lock(tables[0], lambda: super(PacedBatches, self)._lock_tables(tables))

    def _retry_lock(self, table, attempt):
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        while True:
            try:
                attempt()
                return
            except DatabaseError as exc:
                if not is_busy(exc):
                    raise
            if time.monotonic() + delay > deadline:
                raise LockTimeout('%s could not lock %s for its last batch within %g s: '
                                  'another transaction kept it; run migrate again to finish'
                                  % (self.name, table, self.lock_timeout))
            self._sleep(delay)
            delay = min(delay * 2, 0.5)


def run_online(run, script, module):
    """An online script: recorded ``running`` (committed), then its batches, each its own
    transaction, then recorded applied. A run that dies between stays ``running``, so the
    next migrate calls ``online`` again and it resumes where the data says it stopped."""
    db = run.database
    # The history's writes take SQLite's write lock up front (BEGIN IMMEDIATE): a deferred
    # transaction that reads it first would fail outright ("database is locked") when one of
    # the apps' writers commits between its read and its write, instead of waiting its turn.
    with write_transaction(db):
        run.history.ensure()
        run.history.mark_running(script.name, checksum=script.checksum, version=__version__,
                                 phase=script.phase)
    batches = PacedBatches(db, script.name, on_progress=run.observer.progress,
                           lock_timeout=run.lock_timeout)
    start = time.perf_counter()
    try:
        with batches:
            module.online(db, batches)
    except Exception as exc:
        raise ScriptError(script.name, 'stopped after %d rows in %d batches: %s: %s; the '
                          'batches that committed are kept, and the next migrate resumes '
                          'it' % (batches.rows, batches.batches, type(exc).__name__, exc)
                          ) from exc
    duration = time.perf_counter() - start
    with write_transaction(db):
        run.history.record(script.name, checksum=script.checksum, method='ran',
                           duration=duration, version=__version__, replace=True,
                           phase=script.phase, note=run.note(script))
    run.lock.resume()
    step = Step('Changed %d rows in %d online batches' % (batches.rows, batches.batches))
    return ScriptRun(script.name, 'up', 'ran', duration, [step], [])
