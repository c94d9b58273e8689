"""No script may leave a foreign-key violation that was not there before (SQLite).

Enforcement is off during a run (see modelstore.engine.lock), so the watch checks instead,
inside each script's transaction, where raising rolls the script back. ``PRAGMA
foreign_key_check`` reads every child row, so it runs only after a script that could have
created a violation: one that changed rows, dropped or rebuilt a table (a new root page), or
changed a table other than by adding columns without foreign keys (its old columns and foreign
keys compared before and after). Adding columns and indexes -- what schema changes mostly are --
then costs no scan at all. The violations that were there before (legacy files may hold orphans)
are only read when one is found: ``check`` raises NeedBaseline, the engine undoes the script,
calls ``read_baseline`` and runs it again.
"""
import sqlite3

from ..exceptions import MigrationError

__all__ = ['ForeignKeyWatch', 'NoWatch', 'NeedBaseline']


class NeedBaseline(Exception):
    """Violations were found before the ones already there were read: undo, read, run again."""


class NoWatch:
    """Where the database enforces foreign keys itself (PostgreSQL): nothing to watch."""

    def mark(self):
        """Called before each script, inside its transaction."""

    def check(self):
        """Called after each script, inside its transaction; raises to roll it back."""

    def read_baseline(self):
        """Record the violations that exist now."""


class ForeignKeyWatch(NoWatch):
    def __init__(self, database):
        self.database = database
        self._known = None  # The violations accepted so far; None: not read yet.

    def _violations(self):
        # (table, rowid, parent): the constraint's number shifts when a table gains a foreign key.
        return {row[:3] for row in self.database.execute_sql('PRAGMA foreign_key_check')}

    def _state(self):
        tables = {name: (root, sql) for name, root, sql in self.database.execute_sql(
            "SELECT name, rootpage, sql FROM sqlite_master WHERE type = 'table'")}
        return self.database.connection().total_changes, tables

    def mark(self):
        self._before = self._state()

    def _cannot_orphan(self):
        """True when nothing since mark() can have created a foreign-key violation."""
        (changes, before), (changes_now, after) = self._before, self._state()
        if changes_now != changes:  # Rows were inserted, updated or deleted.
            return False
        for name, (root, sql) in before.items():
            if after.get(name) == (root, sql):
                continue
            if name not in after or after[name][0] != root:
                return False  # Dropped, or rebuilt under the name.
            if not self._only_columns_added(name, sql):
                return False
        return True  # New tables start empty: rows in them would have counted as changes.

    def _only_columns_added(self, table, old_sql):
        """The table kept its columns and foreign keys and gained columns (ADD COLUMN)."""
        quoted = table.replace('"', '""')
        shadow = sqlite3.connect(':memory:')
        try:
            shadow.execute(old_sql)
            old_columns = shadow.execute('PRAGMA table_info("%s")' % quoted).fetchall()
            old_keys = shadow.execute('PRAGMA foreign_key_list("%s")' % quoted).fetchall()
        except sqlite3.Error:
            return False
        finally:
            shadow.close()
        columns = self.database.execute_sql('PRAGMA table_info("%s")' % quoted).fetchall()
        keys = self.database.execute_sql('PRAGMA foreign_key_list("%s")' % quoted).fetchall()
        return (len(columns) > len(old_columns) and columns[:len(old_columns)] == old_columns
                and sorted(keys) == sorted(old_keys))

    def check(self):
        if self._cannot_orphan():
            return
        found = self._violations()
        if self._known is None:
            if found:
                raise NeedBaseline()
            self._known = found
            return
        new = sorted(found - self._known, key=repr)
        if new:
            tables = sorted({'%s -> %s' % (row[0], row[2]) for row in new})
            raise MigrationError('foreign key check failed: %d row(s) would reference missing '
                                 'rows (%s)' % (len(new), ', '.join(tables)))
        self._known = found

    def read_baseline(self):
        """Record the violations that exist now (the script that found some was undone)."""
        self._known = self._violations()
