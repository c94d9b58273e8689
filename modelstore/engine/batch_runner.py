"""How ``migrate`` runs an online script's batches (see modelstore.online for the protocol).

* Sized by time: each batch aims at a target duration and the next one's size follows the last
  one's rate, so a slow disk gets smaller batches instead of longer lock holds. A batch whose
  time does not shrink with its rows (a script that scans an unindexed table in each batch) is
  not shrunk towards nothing: its fixed part is fitted from the last batches (time = fixed +
  per row x rows) and, once it passes the target by itself, the batch aims at that part plus
  the target -- its rows get the time a batch without it would. Shrunk to 20 rows, such a
  script ran at 1/80 of its speed.
* Paced by contention on SQLite, where one writer at a time holds the lock and a waiting
  writer's busy handler polls (after 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, then 100 ms of
  sleep; it is no queue):
  - *nobody waiting*: batches of TARGET (75 ms), each followed by GAP (25 ms) with the lock free
    -- the busy handler's longest sleep in a writer's first 100 ms, so a writer that arrives
    gets in within ~80 ms, and its commit is how the run learns it is there;
  - *nobody else there*: no other connection has the file open (``Board.alone``, Linux: the
    kernel asked whether another process holds the lock every connection to a file in WAL
    holds on its ``-shm``, and this process's descriptors of the ``-wal`` counted): the same
    batches, back to back -- the gaps were a fifth of an idle run. A connection holds both
    from its first statement, and the run looks after each batch: a writer that comes waits
    at most the batch it came during, then finds GAP after it, as above.
  - *an app's writers about* (a commit by another connection seen between two batches --
    ``PRAGMA data_version`` -- or the run's own BEGIN waiting), for COOL seconds after the last
    sign of one: batches of CONTENDED (10 ms), each followed by twice its time free and at
    least PAUSE (30 ms: more than the busy handler's 25 ms sleeps, so a writer that has waited
    a while still polls once inside it);
  - *modelstore's writers* announce themselves on the run's board (dialects/writers.py): after
    each batch the run stays out until they have written (YIELD at most), and while they are
    about its batches are CONTENDED long. They poll every millisecond, so they need no pause.
    Only a writer that holds or takes the write lock is waited for, and only one that commits
    sets the pace (anyone who can read the database can lock the board: ``_make_room``); with
    only modelstore's writers about, the lock is still left free GAP after each batch, for an
    app's writer that may come.
  A batch that overruns TARGET holds the lock longer: past ~100 ms, a writer that arrived at
  its start sleeps 50 ms between polls, and its wait can pass 100 ms.
* PostgreSQL and MariaDB batches take row locks on rows no writer is adding: back to back,
  TARGET long. Before each commit a batch asks whether a session waits for a lock it holds
  (``pg_blocking_pids``; InnoDB's lock waits, where the PROCESS privilege allows): if one does,
  batches are CONTENDED long for COOL seconds, so it waits less.
* ``offline`` (``migrate --offline``, a maintenance window): no board, no pause, batches of
  OFFLINE (250 ms) -- the fewest commits; a writer that does come waits up to a batch.
* SQLite's history writes and batches take the write lock first (``BEGIN IMMEDIATE``) and wait
  for it as long as the run waits for its lock: an app's writer committing between a read and
  a write would otherwise fail the run ("database is locked") instead of delaying it.
* ``synchronous=NORMAL`` on SQLite in WAL mode while the batches run: a commit then appends to
  the WAL without an fsync. With FULL, a batch's commit fsyncs while it holds the write lock, and
  on a disk busy with a checkpoint's flush that fsync took 250 ms, with every writer waiting
  (bench/: "versions online"). The database stays consistent on power loss; the last batches
  may be undone, and the next migrate redoes them (they are found from the data).
* The run checkpoints the WAL itself after each batch (PASSIVE: no writer waits for it), with
  the lock free, and its connection's autocheckpoint off: left to SQLite, an app's writer whose
  commit crossed 1,000 WAL pages would copy a batch's pages (and fsync) inside its own write.
* The final batch on PostgreSQL takes its table lock with ``lock_timeout`` 20 ms, retried: a
  LOCK TABLE that waited behind a long transaction would queue every writer behind it.
* Progress: ``on_progress(Progress)`` after each batch, with the pace it runs at.
"""
import collections
import contextlib
import re
import time
from dataclasses import dataclass
from typing import Optional

from peewee import DatabaseError

from ..dialects import Board, busy_timeout, dialect_of, is_busy
from ..exceptions import LockTimeout, ScriptError
from ..online import Batches
from ..shared.database import busy_ms, try_journal, write_transaction
from ..version import __version__
from .run_results import ScriptRun
from .steps import Step

__all__ = ['PacedBatches', 'Progress', 'run_online']

TARGET = {'sqlite': 0.075, 'postgres': 0.05}  # seconds a batch aims at when nobody waits
GAP = 0.025  # SQLite, nobody waiting: the lock left free after each batch
CONTENDED = 0.01  # seconds a batch aims at while another writer is about
PAUSE = 0.03  # the least a contended SQLite run leaves the lock free between batches
COOL = 2.0  # seconds after the last sign of another writer before the full pace again
YIELD = 0.1  # the longest a SQLite run stays out for modelstore's announced writers
POLL = 0.0005  # seconds between two looks at the board while it stays out
PROBE_AFTER = 0.005  # an announced writer not writing after this long is no writer
BOARD_POLL = 0.002  # seconds between two looks at the board during a pause
OFFLINE = 0.25  # seconds an offline batch aims at
WAL_WITHIN = 1.0  # SQLite: how long the run tries to switch a file to WAL while others read it
BACK_WITHIN = 0.25  # SQLite: how long it tries to switch the file back at the end
WAL_ROWS = 10000  # SQLite: an online script expecting this many rows switches the file to WAL
MIN_SIZE, MAX_SIZE, FIRST_SIZE = 20, 50000, 200
# On the running row of a script whose batches switched the file to WAL (journal_mode=...).
SWITCH_NOTE = 'its batches switched the file from journal_mode=%s to WAL'
SWITCH_NOTED = re.compile(re.escape(SWITCH_NOTE) % r'(\w+)')
FIT_OVER = 8  # the last batches a batch's fixed cost is fitted from
FIT_SPREAD = 1.5  # ... once their sizes differ by this factor at least
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
    # Why it runs at that pace: 'full' (nobody waiting: SQLite's TARGET then GAP, the servers
    # back to back), 'writers' (another writer seen within COOL seconds), 'offline'; or None.
    pace: Optional[str] = None

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
    """Batches as ``migrate`` runs them: timed, sized, paced by contention, reported."""

    def __init__(self, database, name, *, on_progress=None, lock_timeout=30.0, sleep=time.sleep,
                 offline=False, journal_before=None, on_switch=None):
        super().__init__(database)
        self.name = name
        # SQLite: the journal mode an interrupted run of this script switched the file from,
        # and what to call with the mode when this run switches it (run_online notes it in the
        # script's history row, so that a run killed in WAL is switched back when resumed).
        self.journal_before, self.on_switch = journal_before, on_switch
        self.on_progress = on_progress
        self.lock_timeout = lock_timeout
        self.offline = offline
        self._sleep = sleep
        # SQLite: one writer at a time, so the run makes room for the others.
        self._sqlite = dialect_of(database).embedded
        self._full_target = TARGET[dialect_of(database).batch_target]
        self.size = FIRST_SIZE
        self._target = None  # the target the last batch was sized for
        self._started = time.perf_counter()
        self._began = self._started
        self._board = None
        self._version = None  # SQLite's data_version at the last batch's start
        self._others_at = self._announced_at = float('-inf')  # the last sign of a writer
        self._yielded = False  # modelstore's writers wrote since the last batch
        self._ask_waiters = True  # the servers: ask before each commit who waits on the batch
        self._seen = collections.deque(maxlen=FIT_OVER)  # (rows, seconds) of the last batches
        self.fixed = 0.0  # seconds of a batch that do not grow with its rows, as last fitted
        self.switched_to_wal = False  # SQLite: the run switched the file from its journal
        self.switched_back = False  # ... and back to it at the end (nobody else had it open)
        self.resumed_in_wal = False  # ... or an interrupted run had, and this one took it on
        self._wal_tried, self.journal = False, None  # the file's own mode

    def __enter__(self):
        self._synchronous = self._busy = self._autocheckpoint = None
        try:
            self._set_up()
        except BaseException as exc:  # Whatever was changed already comes back.
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _wal(self):
        """SQLite, before a batch: switch a file in its rollback journal (every legacy app's)
        to WAL for the run once the work is seen to be large -- ``expect``ed at WAL_ROWS rows
        or more, or not said and past two batches. In its journal a batch commits with its
        pages written twice and three fsyncs, and readers block the commit: 0010 on 1M rows
        took 3.5x the floor instead of 1.4x. At the end the file goes back to its journal if
        nobody else has it open (``migrate`` leaves the journal mode); if the apps still do, it
        stays in WAL, as the registry's first write would leave it, and on_switch has noted the
        mode for a resumed run. A file that cannot switch (others hold it for WAL_WITHIN, no
        shared memory) runs in its journal. Tried once."""
        large = self.total >= WAL_ROWS if self.total is not None else self.batches >= 2
        if not large or self._wal_tried or self.database.in_transaction():
            return
        self._wal_tried = True
        journal = self.database.pragma('journal_mode').lower()
        if journal != 'wal' and try_journal(self.database, 'wal', WAL_WITHIN):
            self._switched(journal)
            self._wal_settings()
            if self._version is not None:  # The switch moved this connection's data_version:
                self._version = self._data_version()  # no other writer's commit.

    def _switched(self, journal):
        self.switched_to_wal, self.journal, self._wal_tried = True, journal, True
        if self.on_switch is not None:
            self.on_switch(journal)

    def _wal_settings(self):
        """In WAL: synchronous=NORMAL, and the run checkpoints after each batch itself
        (_checkpoint), not in its commit; the connection's own values back at the end."""
        self._synchronous = self.database.pragma('synchronous')
        self.database.pragma('synchronous', 1)
        self._autocheckpoint = self.database.pragma('wal_autocheckpoint')
        self.database.pragma('wal_autocheckpoint', 0)

    def _set_up(self):
        if self._sqlite:
            # A batch waits for the apps' writers as long as the run waits for its lock (not
            # the registry's 5 s): a burst of them must delay the run, never fail it.
            self._busy = self.database.pragma('busy_timeout')
            self.database.pragma('busy_timeout', busy_ms(self.lock_timeout))
            if self.database.pragma('journal_mode').lower() == 'wal':
                self._wal_settings()
                if self.journal_before not in (None, 'wal'):  # An interrupted run's switch.
                    self.resumed_in_wal = True
                    self._switched(self.journal_before)
            if not self.offline:
                self._board = Board(self.database)

    def __exit__(self, exc_type, exc, tb):
        """The connection's settings back, each on its own: one that cannot be set (a script
        that left its transaction open: ``synchronous`` is refused inside one) keeps neither
        the others nor the script's own error from their turn; its error is raised only when
        the script raised none."""
        if self._board is not None:
            self._board.close()
        failed = None
        for name, value in (('synchronous', self._synchronous),
                            ('wal_autocheckpoint', self._autocheckpoint),
                            ('busy_timeout', self._busy)):
            if value is None:
                continue
            try:
                self.database.pragma(name, value)
            except DatabaseError as error:
                failed = failed or error
        if self.switched_to_wal and not self.database.in_transaction():
            try:
                self.switched_back = try_journal(self.database, self.journal, BACK_WITHIN)
            except DatabaseError as error:
                failed = failed or error
        if failed is not None and exc_type is None:
            raise failed
        return False

    @contextlib.contextmanager
    def _transaction(self):
        if not self._sqlite:
            with super()._transaction():
                self._began = time.perf_counter()
                yield
                # Before the commit, while its locks are held: does a session wait for them?
                if not self.offline and self._ask_waiters:
                    waiting = dialect_of(self.database).waiting_on_me(self.database)
                    if waiting is None:  # (Not allowed to see: never asked again.)
                        self._ask_waiters = False
                    elif waiting:
                        self._others_at = time.perf_counter()
            return
        self._wal()
        asked = time.perf_counter()
        with self.database.atomic('IMMEDIATE'):  # (Not announced: the board is its own.)
            self._began = time.perf_counter()
            version = self._data_version()
            # Another connection committed since the last batch, or held the lock just now:
            # an app's writer, unless modelstore's announced writers account for it.
            others = (self._version is not None and version != self._version
                      or self._began - asked > 0.002)
            if others and not self._yielded:
                self._others_at = self._began
            self._version, self._yielded = version, False
            yield

    def _fit(self):
        """The seconds of a batch that do not grow with its rows: a least-squares line
        through the last batches' (rows, seconds), refitted once their sizes differ enough to
        tell (FIT_SPREAD; sizes held steady keep the last fit), never more than the quickest
        batch took."""
        sizes = [rows for rows, _ in self._seen]
        if len(sizes) < 4 or max(sizes) < FIT_SPREAD * max(min(sizes), 1):
            return self.fixed
        mean_rows = sum(sizes) / len(sizes)
        mean_took = sum(took for _, took in self._seen) / len(sizes)
        spread = sum((rows - mean_rows) ** 2 for rows in sizes)
        per_row = max(sum((rows - mean_rows) * (took - mean_took)
                          for rows, took in self._seen) / spread, 0.0)
        self.fixed = min(max(mean_took - per_row * mean_rows, 0.0),
                         min(took for _, took in self._seen))
        return self.fixed

    def pace(self, now=None):
        """'offline', 'writers' (another writer within COOL seconds) or 'full'."""
        if self.offline:
            return 'offline'
        now = time.perf_counter() if now is None else now
        if now - max(self._others_at, self._announced_at) < COOL:
            return 'writers'
        return 'full'

    def _committed(self):
        now = time.perf_counter()
        took = now - self._began
        # A batch inside the script's own transaction: the lock stays held, no room to make.
        held = self.database.in_transaction()
        free = 0.0 if held else self._checkpoint()
        pace = self.pace(now)
        if pace == 'offline':
            target, pause = OFFLINE, None
        elif not self._sqlite:  # A session waited for a batch's row locks: shorter batches.
            target, pause = self._full_target if pace == 'full' else CONTENDED, None
        elif pace == 'full':  # No gap while no other connection has the file open.
            target = self._full_target
            pause = 0.0 if self._board is not None and self._board.alone() else GAP
        else:  # Room for an app's writers; modelstore's also get the board's wait below.
            target = CONTENDED
            pause = max(2 * took, PAUSE) if now - self._others_at < COOL else GAP
        # The next size from this one's rate: at most 2x a step at one pace, at once to a new.
        # A batch whose fixed cost alone passes the target (shrinking cannot reach it) gives
        # its rows the target's time on top of that cost.
        self._seen.append((self._pending if 0 < self._pending < self.size else self.size, took))
        fixed = self._fit()
        factor = (target + fixed if fixed > target else target) / took if took > 0 else 2.0
        if self._target in (None, target):  # (From FIRST_SIZE: doubling.)
            factor = min(max(factor, 0.5), 2.0)
        self._target = target
        self._next_size = int(min(max(self.size * factor, MIN_SIZE), MAX_SIZE))
        if self.on_progress is not None:
            total = None if self.total is None else max(self.total, self.rows)
            self.on_progress(Progress(self.name, self.rows, total, self.batches,
                                      now - self._started, self._next_size, pause, pace))
        if not held:
            self._make_room(max((pause or 0.0) - free, 0.0))

    def _make_room(self, pause):
        """Leave the lock free ``pause`` seconds, watching the board (SQLite: modelstore's
        writers announce themselves on it, modelstore.dialects.writers); then stay out while
        an announced writer waits for the lock or writes, YIELD at most.

        Only a writer is waited for: anyone who can read the database can lock the board, so
        an announcement whose writer neither holds the write lock nor takes it within
        PROBE_AFTER seconds (the run tries it itself, and lets go at once) ends the wait. And
        only a commit counts: commits made while a writer was announced are taken for
        modelstore's, not an app's (no longer pause for them); an announcement that commits
        nothing changes no pace."""
        board = self._board
        if board is None:
            if pause:
                self._sleep(pause)
            return
        version, announced = self._data_version(), False
        steps = max(int(pause / BOARD_POLL + 0.5), 1) if pause else 0
        for _ in range(steps):
            announced = announced or board.waiting()
            self._sleep(pause / steps)
        if board.waiting():
            announced = True
            for step in range(int(YIELD / POLL)):
                if step >= PROBE_AFTER / POLL and self._write_lock_free():
                    break  # Announced, but not writing.
                self._sleep(POLL)
                if not board.waiting():
                    break
        if announced and self._data_version() != version:
            self._yielded = True
            self._announced_at = time.perf_counter()

    def _write_lock_free(self):
        """Whether nobody holds SQLite's write lock: taken (never waited for) and let go."""
        with busy_timeout(self.database, 0):
            try:
                self.database.execute_sql('BEGIN IMMEDIATE')
            except DatabaseError:
                return False
        self.database.execute_sql('ROLLBACK')
        return True

    def _data_version(self):
        return self.database.execute_sql('PRAGMA data_version').fetchone()[0]

    def _checkpoint(self):
        """SQLite in WAL mode: copy the batch's pages into the database file now, with the
        write lock free (a PASSIVE checkpoint blocks no writer); returns the seconds it took.

        Left to SQLite, the commit that finds the WAL past 1,000 pages checkpoints -- an app's
        writer's commit as often as the run's, and that writer then waits for a batch's worth
        of pages to be written (and, with synchronous=FULL, fsynced) after its own INSERT.
        Checkpointed here, the WAL starts over at the next writer's transaction."""
        if self._synchronous is None:
            return 0.0
        start = time.perf_counter()
        self.database.execute_sql('PRAGMA wal_checkpoint(PASSIVE)')
        return time.perf_counter() - start

    def _lock_table(self, table):
        """PostgreSQL: each try waits at most LOCK_WAIT, then undoes only itself -- or, when an
        autovacuum of the table holds it, as long as PostgreSQL takes to cancel that vacuum
        (``deadlock_timeout``, 1 s by default): a 20 ms request never would, and on a large
        table (10M rows just numbered) the vacuum outlasts the run's lock timeout. Writers
        that come meanwhile wait behind the request that once."""
        dialect, wait = dialect_of(self.database), [LOCK_WAIT]

        def attempt():
            try:
                dialect.lock_table(self.database, table, wait=wait[0])
            except DatabaseError as exc:
                if is_busy(exc):
                    wait[0] = dialect.autovacuum_wait(self.database, table) or LOCK_WAIT
                raise
        self._retry_lock(table, attempt)

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
    journal_before = None
    if dialect_of(db).embedded:  # A run killed while its batches had the file in WAL.
        found = SWITCH_NOTED.fullmatch(run.history.running_note(script.name) or '')
        journal_before = found.group(1).lower() if found else None
    # The history's writes take SQLite's write lock up front (BEGIN IMMEDIATE): a deferred
    # transaction that reads it first would fail outright ("database is locked") when one of
    # the apps' writers commits between its read and its write, instead of waiting its turn.
    with write_transaction(db):
        run.history.ensure()
        run.history.mark_running(script.name, checksum=script.checksum, version=__version__,
                                 phase=script.phase)
    batches = PacedBatches(db, script.name, on_progress=run.observer.progress,
                           lock_timeout=run.lock_timeout, offline=run.offline,
                           journal_before=journal_before,
                           on_switch=lambda journal: _note_switch(run, script, journal))
    start = time.perf_counter()
    try:
        with batches:
            module.online(db, batches)
    except Exception as exc:
        raise ScriptError(script.name, 'stopped after %d rows in %d batches: %s: %s; the '
                          'batches that committed are kept, and the next migrate resumes '
                          'it%s' % (batches.rows, batches.batches, type(exc).__name__, exc,
                                    _left_in_wal(batches))) from exc
    duration = time.perf_counter() - start
    with write_transaction(db):
        run.history.record(script.name, checksum=script.checksum, method='ran',
                           duration=duration, version=__version__, replace=True,
                           phase=script.phase, note=run.note(script))
    run.lock.resume()
    steps = [Step('Changed %d rows in %d %s' % (
        batches.rows, batches.batches, 'batches, offline' if run.offline else 'online batches'))]
    notes = []
    if batches.switched_back:
        notes.append('Ran its batches in WAL%s; the file is back in its rollback journal '
                     '(journal_mode=%s)' % (' (where an interrupted run had left the file)'
                                            if batches.resumed_in_wal else '', batches.journal))
    elif batches.switched_to_wal:
        notes.append("Ran its batches in WAL, and left the file in WAL (as the registry's "
                     'first write does): SQLite switches it back only when no other '
                     'connection has it open, and another does')
    return ScriptRun(script.name, 'up', 'ran', duration, steps, [], notes)


def _note_switch(run, script, journal):
    """Note in the script's ``running`` row the journal mode its batches switched the file
    from: a run killed before it could switch back leaves it for the next one."""
    with write_transaction(run.database):
        run.history.set_running_note(script.name, SWITCH_NOTE % journal)


def _left_in_wal(batches):
    if not batches.switched_to_wal or batches.switched_back:
        return ''
    return ('; its batches switched the file to WAL, and the next migrate switches it back to '
            'journal_mode=%s' % batches.journal)
