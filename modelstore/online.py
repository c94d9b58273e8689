"""Online data migrations: many rows changed in short batches while the application writes.

A script that changes many rows does it in short batches, each its own transaction, so the
application keeps writing while it runs.

A script opts in by defining ``online(db, batches)`` beside ``up`` and ``down``::

    def online(db, batches):
        batches.expect(rows_to_do)             # for the progress line; optional
        while True:
            with batches.batch() as batch:     # one transaction
                done = work_on_at_most(batch.size)
                batch.done(done)               # rows changed, counted once it commits
            if nothing_left:
                break
        with batches.final('table'):           # one transaction no writer of 'table' can join
            finish()                           # the stragglers; triggers; ...

    def up(migrator, db):                      # playhouse.migrations and dry runs: all at once
        online(db, Batches(db))

``batch.size`` is the rows this batch should take; it holds after the batch too, until the
next one starts, so ``if done < batch.size: break`` after the ``with`` tells the last batch
(the runner picks the next size from how long this one took).

Each batch must leave the database consistent on its own and be safe to repeat: a run killed
between two batches is resumed by the next ``migrate`` calling ``online`` again from the start
(the script is recorded ``running`` until it returns), so ``online`` must find its own place
again -- typically "the rows still unnumbered", never a counter kept in memory.

``modelstore migrate`` runs ``online`` with its own ``Batches`` (modelstore.engine.batch_runner):
outside the run's transaction, sized to a target time per batch, pausing between batches so
waiting writers get the lock, reporting progress. Work a batch pays whatever its size (a scan
of an unindexed column to find its rows) makes its batches longer, not smaller: the runner
fits that fixed part and gives it rows to match. Each batch still holds the write lock for
that long, so index what a batch looks its rows up by. This plain one -- what ``up`` uses outside
the engine, and inside a dry run's transaction -- runs them back to back.

This module lives at ``modelstore.online``, beside ``modelstore.fields``, because shipped
scripts import it and a shipped script's text cannot change.
"""
import contextlib

from .dialects import dialect_of

__all__ = ['Batches']

# MySQL/MariaDB: the aliases a shipped script's statements give a table inside its final batch.
# Under LOCK TABLES a table named by an alias must be locked under that alias too, and 0010
# numbers the rows written behind its walk with ``UPDATE fine_tuned_models AS f JOIN ...``
# ("Table 'f' was not locked with LOCK TABLES" once a writer had inserted one); its text cannot
# change, so the lock does.
LOCKED_ALIASES = {'fine_tuned_models': ('f',)}


class Batches:
    """Runs an online script's batches: each in a transaction, one after another."""

    size = 1000  # Rows a batch should handle (the engine's runner adapts it).

    def __init__(self, database):
        self.database = database
        self.total = None  # Rows the script expects to change (its estimate), or None.
        self.rows = 0  # Rows changed by committed batches.
        self.batches = 0
        self._pending = 0
        self._next_size = None  # The next batch's size, once a runner has picked it.

    def expect(self, total):
        """Say how many rows the script expects to change (progress and time left)."""
        self.total = max(int(total), 0)

    def done(self, rows):
        """Count ``rows`` changed by the current batch (they count once it commits)."""
        self._pending += int(rows)

    def batch(self):
        """One batch: a write transaction (BEGIN IMMEDIATE on SQLite)."""
        return self._counted(None)

    def final(self, table, *also):
        """The last batch, in a transaction no other writer of ``table`` runs beside: SQLite's
        write lock; on PostgreSQL ``LOCK TABLE ... IN SHARE ROW EXCLUSIVE MODE`` (readers go on;
        writers wait for this transaction, which should be short).

        On MySQL/MariaDB, where DDL (such as CREATE TRIGGER) commits, it is no transaction but
        ``LOCK TABLES table WRITE`` and each of ``also`` (the other tables it uses: under
        LOCK TABLES no other can be read); each statement commits as it runs."""
        return self._counted(table, also)

    @contextlib.contextmanager
    def _counted(self, table, also=()):
        # A batch's size holds until the next batch starts: a script may compare the rows it
        # got with ``batch.size`` after its batch to tell the last one.
        if self._next_size is not None:
            self.size, self._next_size = self._next_size, None
        self._pending = 0
        lock = dialect_of(self.database).final_batch_lock if table is not None else ''
        if lock == 'tables':
            tables = (table,) + tuple(also)
            self._lock_tables(tables + tuple((t, alias) for t in tables
                                             for alias in LOCKED_ALIASES.get(t, ())))
            try:
                yield self
            finally:
                dialect_of(self.database).unlock_tables(self.database)
        else:
            with self._transaction():
                if lock == 'table':
                    self._lock_table(table)
                yield self
        self.batches += 1
        self.rows += self._pending
        self._committed()

    # -- what the engine's runner changes -----------------------------------------------------

    def _transaction(self):
        return dialect_of(self.database).write_transaction(self.database)

    def _lock_table(self, table):
        dialect_of(self.database).lock_table(self.database, table)

    def _lock_tables(self, tables):
        dialect_of(self.database).lock_tables(self.database, tables)

    def _committed(self):
        """Called after each batch commits."""
