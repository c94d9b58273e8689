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

Each batch must leave the database consistent on its own and be safe to repeat: a run killed
between two batches is resumed by the next ``migrate`` calling ``online`` again from the start
(the script is recorded ``running`` until it returns), so ``online`` must find its own place
again -- typically "the rows still unnumbered", never a counter kept in memory.

``modelstore migrate`` runs ``online`` with its own ``Batches`` (modelstore.engine.online):
outside the run's transaction, sized to a target time per batch, pausing between batches so
waiting writers get the lock, reporting progress. This plain one -- what ``up`` uses outside
the engine, and inside a dry run's transaction -- runs them back to back.

This module lives at ``modelstore.online``, beside ``modelstore.fields``, because shipped
scripts import it and a shipped script's text cannot change.
"""
import contextlib

from peewee import MySQLDatabase, PostgresqlDatabase, SqliteDatabase

__all__ = ['Batches']


class Batches:
    """Runs an online script's batches: each in a transaction, one after another."""

    size = 1000  # Rows a batch should handle (the engine's runner adapts it).

    def __init__(self, database):
        self.database = database
        self.total = None  # Rows the script expects to change (its estimate), or None.
        self.rows = 0  # Rows changed by committed batches.
        self.batches = 0
        self._pending = 0

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
        self._pending = 0
        if table is not None and isinstance(self.database, MySQLDatabase):
            self._lock_tables((table,) + tuple(also))
            try:
                yield self
            finally:
                self.database.execute_sql('UNLOCK TABLES')
        else:
            with self._transaction():
                if table is not None and isinstance(self.database, PostgresqlDatabase):
                    self._lock_table(table)
                yield self
        self.batches += 1
        self.rows += self._pending
        self._committed()

    # -- what the engine's runner changes -----------------------------------------------------

    def _transaction(self):
        if isinstance(self.database, SqliteDatabase):
            return self.database.atomic('IMMEDIATE')
        return self.database.atomic()

    def _lock_table(self, table):
        self.database.execute_sql('LOCK TABLE "%s" IN SHARE ROW EXCLUSIVE MODE' % table)

    def _lock_tables(self, tables):
        q = self.database.quote[0]  # (A backtick: pwmigrate's session has no ANSI_QUOTES.)
        self.database.execute_sql('LOCK TABLES %s' % ', '.join('%s%s%s WRITE' % (q, t, q)
                                                               for t in tables))

    def _committed(self):
        """Called after each batch commits."""
