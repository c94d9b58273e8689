"""The history table: which scripts are applied, and how.

It is ``playhouse.migrations``' own table (``schema_migration``: ``name`` unique, ``applied``), so
``pwmigrate DB status`` and ``modelstore status`` agree, plus nullable columns modelstore fills:

==============  =========================================================
checksum        SHA-256 of the script as applied (line endings normalised)
applied_utc     when, in UTC (``applied`` keeps pwmigrate's local time)
duration        seconds the script took
applied_by      user@host
tool_version    the modelstore version that applied it
method          ``ran``, ``adopted`` (effect found already present) or ``faked``; ``running``
                while a script that cannot run in a transaction (``atomic = False`` on
                PostgreSQL) runs -- left behind if the run dies, it means "run me again";
                ``failed`` (MySQL) for a script that failed partway; ``repaired`` for one an
                operator finished by hand (``modelstore repair --mark-applied``)
operations      MySQL/MariaDB, where DDL commits: the script's operations, each recorded as
                it completes (JSON, ``is_log``; modelstore.engine.nontx writes it,
                ``failure_note`` tells it). NULL elsewhere
error           why a ``failed`` script failed
phase           ``expand`` or ``contract``, as the script declared (modelstore.engine.scripts):
                how a release that lacks the script tells whether it may keep working
note            what an operator overrode to apply it (``migrate --force``)
==============  =========================================================

A table created by ``pwmigrate`` first is upgraded in place (nullable ``ADD COLUMN`` only).
A value that cannot be read back as its column's type (text edited by hand into a SQLite file:
``applied_utc = 'garbage'``) is read as None and listed in ``Record.unreadable`` with the text
that is there, so ``status`` and ``history`` show it as unreadable and ``check`` reports the
damaged history instead of crashing or passing. Reading never creates or alters the table;
writing happens in the caller's transaction, the same one as the script's own work.
"""
from __future__ import annotations  # No typing at start-up (issue 30).

import datetime
import functools
import getpass
import json
import math
import os
import re
import socket
from dataclasses import dataclass, fields as dc_fields

from peewee import CharField, DateTimeField, FloatField, Model, TextField
from playhouse.migrate import SchemaMigrator

from ..exceptions import shown_value
from ..fields import UtcDateTimeField
from ..dialects import dialect_of
from .scripts import PHASES

__all__ = ['TABLE', 'RUNNING', 'FAILED', 'REPAIRED', 'Record', 'History', 'is_log',
           'failure_note']

TABLE = 'schema_migration'
RUNNING = 'running'  # method of a non-transactional script while (or if killed while) it runs


@dataclass(frozen=True)
class Record:
    name: str
    applied: datetime.datetime | None = None
    checksum: str | None = None
    applied_utc: datetime.datetime | None = None
    duration: float | None = None
    applied_by: str | None = None
    tool_version: str | None = None
    method: str | None = None
    operations: str | None = None  # JSON text (MySQL: modelstore.engine.nontx)
    error: str | None = None
    phase: str | None = None  # expand | contract; None when applied before phases existed
    note: str | None = None
    # (field, the stored value as text) for each value that could not be read as its type.
    unreadable: tuple[tuple[str, str], ...] = ()

    def as_dict(self):
        out = {}
        for f in dc_fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime.datetime) else value
        out['unreadable'] = dict(self.unreadable)
        return out

    def problems(self):
        """One line per damaged value, for ``check``."""
        return ['%s: %s holds %s, which is not %s' % (self.name, name, raw, _EXPECTED[name])
                for name, raw in self.unreadable]


FAILED = 'failed'  # MySQL: a script that failed (or died) partway; see modelstore.engine.nontx
REPAIRED = 'repaired'  # finished by hand, recorded by `modelstore repair --mark-applied`
METHODS = ('ran', 'adopted', 'faked', RUNNING, FAILED, REPAIRED)
_EXPECTED = {'applied': 'a timestamp', 'applied_utc': 'a timestamp',
             'duration': 'a number of seconds', 'checksum': 'a SHA-256 hex digest',
             'method': 'one of %s' % ', '.join(METHODS), 'applied_by': 'text',
             'tool_version': 'text', 'operations': 'text', 'error': 'text',
             'phase': 'expand or contract', 'note': 'text'}


class _Unreadable(Exception):
    pass


def _timestamp(value):
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _Unreadable()


def _seconds(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value) and value >= 0:
        return float(value)
    raise _Unreadable()


def _checksum(value):
    if isinstance(value, str) and re.fullmatch(r'[0-9a-f]{64}', value):
        return value
    raise _Unreadable()


def _method(value):
    if value in METHODS:
        return value
    raise _Unreadable()


def _phase(value):
    if value in PHASES:
        return value
    raise _Unreadable()


def _text(value):
    if isinstance(value, str):
        return value
    raise _Unreadable()


_READERS = {'applied': _timestamp, 'applied_utc': _timestamp, 'duration': _seconds,
            'checksum': _checksum, 'method': _method, 'applied_by': _text,
            'tool_version': _text, 'operations': _text, 'error': _text, 'phase': _phase,
            'note': _text}


def _record(names, row):
    """A Record from one row of raw driver values; what does not read is set aside."""
    values, unreadable = {}, []
    for name, value in zip(names, row):
        if name == 'name':
            values[name] = str(value)
        elif value is None:
            values[name] = None
        else:
            try:
                values[name] = _READERS[name](value)
            except _Unreadable:
                values[name] = None
                unreadable.append((name, shown_value(value)))
    return Record(unreadable=tuple(unreadable), **values)


def _model(database=None):
    class History(Model):
        name = CharField(unique=True)
        applied = DateTimeField(default=datetime.datetime.now)
        checksum = CharField(max_length=64, null=True)
        applied_utc = UtcDateTimeField(null=True)
        duration = FloatField(null=True)
        applied_by = CharField(null=True)
        tool_version = CharField(max_length=32, null=True)
        method = CharField(max_length=16, null=True)
        operations = TextField(null=True)
        error = TextField(null=True)
        phase = CharField(max_length=16, null=True)
        note = TextField(null=True)

        class Meta:
            table_name = TABLE
            legacy_table_names = False

    if database is not None:
        History.bind(database, bind_refs=False, bind_backrefs=False)
    return History


# The table's fields, for any database: reads and the INSERT use this one class with the
# database named (Query.bind); a History's bound ``model`` is made only to create the table
# and for the rarer writes. A model class is ~0.1 ms to make, and every Engine and status made
# one (issue 30).
_FIELDS = _model()


def who():
    """user@host of this process, for the history's applied_by column."""
    try:
        user = getpass.getuser()
    except Exception:  # No login name in some containers.
        user = 'uid%d' % os.getuid()
    return '%s@%s' % (user, socket.gethostname())


class History:
    """Read and write the history table of one database."""

    def __init__(self, database):
        self.database = database
        self._insert = None
        self._ensured = False  # Set once the table is known to be complete (cleared on error).
        self._exists = None  # expect(): whether the table is there, for the next ensure()

    def _columns(self):
        # From an empty result's description: PostgreSQL's information_schema (what
        # get_columns reads) takes ~5 ms, and this runs on every status and migrate.
        q = self.database.quote[0]
        cursor = self.database.execute_sql('SELECT * FROM %s WHERE 1 = 0' % (q + TABLE + q))
        return {d[0] for d in cursor.description}

    @functools.cached_property
    def model(self):
        """The table's model, bound to this database."""
        return _model(self.database)

    def exists(self):
        return self.database.table_exists(TABLE)

    def read(self, exists=None):
        """Applied records in the order they were applied; [] when there is no table.
        ``exists``: whether the table is there, if the caller has just read the table list."""
        if not (self.exists() if exists is None else exists):
            return []
        present = self._columns()
        wanted = [f for f in _FIELDS._meta.sorted_fields
                  if f.column_name in present and f.name != 'id']
        # The driver's own values, not the fields' conversions, which hand back text they
        # cannot parse as it is: each value is read, or set aside as unreadable, in _record.
        cursor = self.database.execute_sql(
            *_FIELDS.select(*wanted).order_by(_FIELDS.id).bind(self.database).sql())
        names = [f.name for f in wanted]
        return [_record(names, row) for row in cursor]

    def ensure(self):
        """Create the table, or add the columns a pwmigrate-made table lacks.

        Called in every script's transaction; after the first success in a run the table is
        known to be there (``forget()`` is called when a transaction is rolled back).
        """
        if self._ensured:
            return
        exists, self._exists = self._exists, None
        if not (self.exists() if exists is None else exists):
            # Through the database's create_tables: MySQL's sets the table's engine, charset
            # and binary collation on the model (dialects/mysql.py), so a bound model of its own.
            self.database.create_tables([self.model], safe=False)
        else:
            self._complete()
        # Only once it is done: a retry after a lock wait in here (the transaction undone)
        # must not take the table for made.
        self._ensured = True

    def _complete(self):
        """Add what a pwmigrate-made table lacks."""
        present = self._columns()
        migrator = SchemaMigrator.from_database(self.database)
        missing = [f for f in _FIELDS._meta.sorted_fields if f.column_name not in present]
        migrator.migrate(*[migrator.add_column(TABLE, f.column_name, f) for f in missing])
        if not dialect_of(self.database).transactional_ddl and not any(
                i.unique and i.columns == ['name'] for i in self.database.get_indexes(TABLE)):
            # DDL commits on MySQL: a run killed between the CREATE TABLE and its CREATE UNIQUE
            # INDEX left the table without it. (Elsewhere both were one transaction.)
            migrator.migrate(migrator.add_index(TABLE, ('name',), True))

    @functools.cached_property
    def _applied_by(self):
        """who(), read once per History: the login name costs a passwd lookup where $USER is
        not set (issue 30)."""
        return who()

    def expect(self, exists):
        """Whether the table is there, as the caller just read it under the run lock (no other
        run can create or drop it): the next ensure() does not read the table list again
        (issue 30). None: not known (a script has run since, and may have made or dropped it).
        """
        self._exists = None if exists is None else bool(exists)

    def forget(self):
        """The table may have been rolled back: check again at the next ensure()."""
        self._ensured = False
        self._exists = None

    def mark_running(self, name, *, checksum, version, operations=None, phase=None):
        """Say, committed, that ``name`` is running outside a transaction."""
        with self.database.atomic():
            self.model.delete().where(self.model.name == name).execute()
            self.record(name, checksum=checksum, method=RUNNING, duration=None,
                        version=version, operations=operations, phase=phase)

    def running_note(self, name):
        """The note on ``name``'s ``running`` row (what its run must undo when resumed), or
        None."""
        if not self.exists():
            return None
        M = self.model
        row = M.select(M.note).where((M.name == name) & (M.method == RUNNING)).first()
        return row.note if row is not None else None

    def set_running_note(self, name, note):
        """Note on ``name``'s ``running`` row what a resumed run must undo (committed)."""
        with self.database.atomic():
            self.model.update(note=note).where(
                (self.model.name == name) & (self.model.method == RUNNING)).execute()

    def set_operations(self, name, operations, *, method=None, error=None):
        """MySQL: the operations log of ``name``'s row (and its method and error, if given)."""
        values = {'operations': operations}
        if method is not None:
            values.update(method=method, error=error)
        self.model.update(**values).where(self.model.name == name).execute()

    def record(self, name, *, checksum, method, duration, version, replace=False,
               operations=None, phase=None, note=None):
        """Insert the row for ``name``; ``replace``: first delete its ``running`` row."""
        if replace:
            # One transaction (a savepoint inside the script's): outside one, a kill between
            # the DELETE and the INSERT would leave the script's effect without any row.
            M = self.model
            with self.database.atomic():
                M.delete().where((M.name == name) & (M.method == RUNNING)).execute()
                self.record(name, checksum=checksum, method=method, duration=duration,
                            version=version, operations=operations, phase=phase, note=note)
            return
        values = dict(name=name, applied=datetime.datetime.now(), checksum=checksum,
                      method=method, duration=duration,
                      applied_utc=datetime.datetime.now(datetime.timezone.utc),
                      applied_by=self._applied_by, tool_version=version, phase=phase, note=note)
        if operations is not None:
            self.model.insert(operations=operations, **values).execute()
            return
        M = _FIELDS
        if self._insert is None:
            q = self.database.quote[0]
            self._insert = 'INSERT INTO %s (%s) VALUES (%s)' % (
                q + TABLE + q, ', '.join(q + M._meta.fields[n].column_name + q for n in values),
                ', '.join([self.database.param] * len(values)))
            self._order = list(values)
        self.database.execute_sql(self._insert, [M._meta.fields[n].db_value(values[n])
                                                 for n in self._order])

    def remove(self, name):
        self.model.delete().where(self.model.name == name).execute()

    def set_checksum(self, name, value):
        self.model.update(checksum=value).where(self.model.name == name).execute()


def is_log(text):
    """Whether ``text`` (a history row's ``operations``) is an operations log."""
    try:
        log = json.loads(text) if text else None
    except ValueError:
        return False
    return isinstance(log, dict) and 'done' in log


def failure_note(entry):
    """One line on a failed script: how far it got, and why it stopped."""
    record = entry.record
    log = json.loads(record.operations) if is_log(record.operations) else {'done': []}
    done, doing = log['done'], log.get('doing')
    return '%s after %d completed operation%s%s%s%s' % (
        'failed' if record.method == FAILED else 'its run died (or is still running)',
        len(done), '' if len(done) == 1 else 's',
        ' (%s)' % '; '.join(op['description'] for op in done) if done else '',
        ', during: %s' % doing['description'] if doing else '',
        ': %s' % record.error if record.error else '')
