"""SQLite as modelstore uses it: a file on this machine, one writer at a time.

Opening mixes ``_SafeRollback`` into playhouse.db_url's class: a rollback skipped when SQLite
already rolled the transaction back by itself. A write transaction takes the write lock first
(``BEGIN IMMEDIATE``). A migration run is one write transaction with a savepoint per script
(modelstore.engine.lock). DDL is transactional; no concurrent index builds (there is no other
writer to let through), partial indexes yes.
"""
import contextlib
import os
import sqlite3

from peewee import SqliteDatabase

from .base import Dialect

__all__ = ['SQLITE', 'SqliteDialect']


class _SafeRollback:
    """SQLite: roll back only what is still there, so the error that ended a transaction is the
    one reported.

    On SQLITE_FULL, IOERR, NOMEM or CORRUPT, SQLite may roll the whole transaction back by
    itself. peewee's atomic() then sends ROLLBACK (or ROLLBACK TO SAVEPOINT), which fails with
    "cannot rollback - no transaction is active" and replaces the real error ("database or disk
    is full"). Here a rollback is skipped when the connection is no longer in a transaction.
    """

    def _in_transaction(self):
        return not self.is_closed() and self.connection().in_transaction

    def rollback(self):
        if self._in_transaction():
            super().rollback()

    def savepoint(self):
        return _Savepoint(self)


class _Savepoint:
    """A savepoint as peewee's atomic() nests one, whose rollback survives SQLite's own."""

    def __init__(self, db):
        self.db = db
        self.quoted_sid = 's%s' % os.urandom(8).hex()

    def _begin(self):
        self.db.execute_sql('SAVEPOINT %s' % self.quoted_sid)

    def commit(self, begin=True):
        self.db.execute_sql('RELEASE SAVEPOINT %s' % self.quoted_sid)
        if begin:
            self._begin()

    def rollback(self, begin=True):
        if self.db._in_transaction():
            self.db.execute_sql('ROLLBACK TO SAVEPOINT %s' % self.quoted_sid)
        if begin:
            self._begin()

    def __enter__(self):
        self._begin()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.rollback(False)
            return False
        try:
            self.commit(False)
        except Exception:
            self.rollback(False)
            raise
        return False


class SqliteDialect(Dialect):
    name = 'sqlite'
    label = 'SQLite'
    database_class = SqliteDatabase
    transactional_ddl = True
    returning = sqlite3.sqlite_version_info >= (3, 35)
    partial_indexes = True
    embedded = True
    one_transaction_per_run = True
    batch_target = 'sqlite'
    session_mixin = _SafeRollback

    def write_transaction(self, database):
        return database.atomic('IMMEDIATE')

    @contextlib.contextmanager
    def shadow(self, database=None):
        """A fresh in-memory database (``database``, the user's, is not needed)."""
        shadow = SqliteDatabase(':memory:')
        try:
            yield shadow
        finally:
            shadow.close()

    def trigger_names(self, database, table):
        return {r[0] for r in database.execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,))}


SQLITE = SqliteDialect()
