"""The registry's events (0013): an append-only record of what changed, and a feed to poll.

Each change a deployer cares about -- an alias set, moved or removed, a model deleted -- writes
one ``registry_events`` row in the transaction of the change itself, so an event exists exactly
when its change committed. Nothing here updates or deletes an event.

Numbering: the writer first adds 1 to ``registry_event_counter``'s one row, which holds that
row's lock until its transaction ends, and gives the event that number (``seq``). A second
writer waits on the row until the first commits or rolls back, then reads the committed value:
events are numbered in the order they committed. A reader following ``seq`` (``after(cursor)``)
therefore never passes over an event that commits later with a lower number -- the trap of an
auto-increment id on PostgreSQL or MySQL, where ids are taken at INSERT and committed in any
order. A refused call rolls its number back with it; a call that took the lock and then had
nothing to record (an alias set where it already was) leaves its number unused: numbers ascend
in commit order, and one may be skipped.

The actor is ``connect(actor=...)``, by default ``user@host`` of the process.
"""
import datetime
import getpass
import logging
import socket
import time

from peewee import Value, fn

from ..dialects import dialect_of
from ..exceptions import ValidationError
from .checks import NAME_LIMIT, Text
from .fastpath import encoder
from .validate import check_page

log = logging.getLogger('modelstore')

__all__ = ['Events', 'default_actor', 'check_actor', 'state', 'KINDS', 'ADDED', 'CHANNEL']

# What an event's ``kind`` says. ``before``/``after`` hold the state on either side.
KINDS = ('alias.set', 'alias.moved', 'alias.removed', 'model.added', 'model.updated',
         'model.deleted', 'model.archived', 'model.restored', 'tags.changed')

# What a model.added event's ``after`` holds besides the name and version columns.
ADDED = ('model_path', 'base_model', 'task', 'parent_id')
# PostgreSQL: each commit that writes events NOTIFYs this channel, with the last seq written;
# events(wait=...) LISTENs on it, so a waiting deployer wakes at the commit.
CHANNEL = 'modelstore_events'
WAIT_LIMIT = 3600.0  # events(wait=...) at most, in seconds.
POLL = 0.5  # Without LISTEN (SQLite, MySQL): how often events(wait=...) looks again.
_PAGE = 1000  # add_models' events are read back (for on_event hooks) this many at a time.

check_actor = Text(NAME_LIMIT, required=True)


def default_actor():
    """``user@host`` of this process (``unknown`` for a user the system cannot name)."""
    try:
        user = getpass.getuser()
    except Exception:  # No login name and no $USER (a container's bare uid).
        user = 'unknown'
    return ('%s@%s' % (user, socket.gethostname()))[:NAME_LIMIT]


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Events:
    """Writes events inside a caller's write transaction, and reads them."""

    def __init__(self, event_model, counter_model, model, actor):
        self.Event = event_model
        self.Counter = counter_model
        self.Model = model  # FineTunedModel: add_models' rows are read back for their events.
        self.database = event_model._meta.database
        self.dialect = dialect_of(self.database)
        self._fields = event_model._meta.sorted_fields
        self._names = [f.name for f in self._fields]
        self._slots = {name: i for i, name in enumerate(self._names)}  # write_encoded's.
        self._encoders = [encoder(f) for f in self._fields]
        self._cache = {}
        self.actor = actor
        self.hooks = []  # on_event callbacks, called after the commit (ModelStore.on_event).

    def _statement(self, key, build):
        """(SQL, parameters) of the query ``build()`` makes, built once per ``key``: the
        statements of add_model's path, which peewee took ~100 us each to build."""
        if key not in self._cache:
            self._cache[key] = build().sql()
        return self._cache[key]

    def lock(self, count=1):
        """Take the next number (the last of the next ``count``; 0: only the lock), holding
        the counter's row lock until the transaction ends. Called first in a transaction that
        may record an event: writers of events (and what they read before writing) run one at
        a time."""
        C = self.Counter
        # One upsert: the first event writes the row (not 0013, so that rolling 0013 back over
        # a registry without events destroys nothing), the others add ``count``. Racing first
        # writers: one inserts, the others wait for it and update -- an UPDATE then an INSERT
        # IGNORE deadlocked there on MySQL (gap locks).
        # The number comes back with the upsert where the backend can: PostgreSQL's RETURNING;
        # MySQL's insert id, set to the new value by LAST_INSERT_ID(expr) -- one round trip
        # fewer while the lock is held, which every writer of events waits for (bench/run.py's
        # "writers mysql" rows). SQLite reads it back: its RETURNING (through a temporary
        # table) took longer than a second statement (8.6 us vs 7.2, the "event counter" row).
        cursor = self.database.execute_sql(*self.lock_statement(count))
        if self.database.returning_clause:
            return cursor.fetchone()[0]
        if self.dialect.insert_id_value and cursor.lastrowid:  # (0: the number is 0, or a
            return cursor.lastrowid  # server that did not say: the SELECT answers either way.)
        return self.database.execute_sql(*self._statement('last', lambda: C.select(
            C.last_seq).where(C.id == 1))).fetchone()[0]

    def lock_statement(self, count):
        """(SQL, parameters) of ``lock(count)``'s upsert, built once."""
        C = self.Counter
        named, returning = self.dialect.upsert_names_key, self.database.returning_clause
        value = fn.LAST_INSERT_ID if self.dialect.insert_id_value else (lambda expr: expr)

        def upsert():
            query = C.insert(id=1, last_seq=value(count)).on_conflict(
                conflict_target=[C.id] if named else None,
                update={C.last_seq: value(C.last_seq + count)})
            return query.returning(C.last_seq) if returning else query
        return self._statement(('lock', count), upsert)

    def record(self, seq, kind, *, model_name=None, model_id=None, version=None, alias=None,
               before=None, after=None):
        """Append event ``seq`` (from ``lock()``, in the same transaction); returns it."""
        values = self.values(kind, model_name=model_name, model_id=model_id, version=version,
                             alias=alias, before=before, after=after)
        values['seq'] = seq
        self.write(values)
        return self.Event(**values)

    def values(self, kind, **fields):
        """An event's values but its number: ``kind``, now, this store's actor, ``fields``."""
        assert kind in KINDS, kind
        return dict(dict.fromkeys(self._names), **fields, at=utc_now(), actor=self.actor,
                    kind=kind)

    def write(self, values):
        """Insert the event ``values`` (every field, its number too)."""
        self.write_encoded(self.encoded(values), values['seq'])

    def encoded(self, values):
        """The event ``values`` as the INSERT of ``write_encoded`` takes them: encoded before
        the transaction that writes them, so that the writer's lock is not held for it."""
        return [value if encode is None or value is None else encode(value)
                for value, encode in zip(map(values.__getitem__, self._names), self._encoders)]

    def write_encoded(self, params, seq, **numbers):
        """Insert an event ``encoded`` earlier, numbered ``seq``, with ``numbers`` (model_id,
        version: known once its model's row is) in place."""
        E = self.Event
        sql, _ = self._statement('insert', lambda: E.insert_many(
            [tuple(range(len(self._names)))], fields=self._fields))
        slots = self._slots
        params[slots['seq']] = seq
        for name, value in numbers.items():
            params[slots[name]] = value
        self.database.execute_sql(sql, params)
        self.dialect.notify(self.database, CHANNEL, str(seq))

    def record_added(self, last, which):
        """add_models: a ``model.added`` event for each row ``which`` (a condition on the
        models) selects, numbered from ``last + 1`` in id order, in one INSERT ... SELECT;
        returns how many. ``moved_past`` then moves the counter past them all."""
        M, E = self.Model, self.Event
        fields = M._meta.fields
        numbered = M.select(
            Value(last, converter=False) + fn.ROW_NUMBER().over(order_by=[M.id]),
            Value(E.at.db_value(utc_now()), converter=False),
            Value(self.actor, converter=False), Value('model.added', converter=False),
            M.model_name, M.id, M.version,
            self.dialect.json_object([(Value(name, converter=False), fields[name])
                                      for name in ADDED])).where(which)
        return self.database.execute(E.insert_from(numbered, fields=[
            E.seq, E.at, E.actor, E.kind, E.model_name, E.model_id, E.version, E.after
        ])).rowcount

    def moved_past(self, last):
        """The counter (locked by ``lock(0)`` in this transaction) past event ``last``."""
        C = self.Counter
        C.update(last_seq=last).where(C.id == 1).execute()
        self.dialect.notify(self.database, CHANNEL, str(last))

    def numbered(self, first, last):
        """The events numbered ``first`` to ``last``, a page at a time (a generator)."""
        E = self.Event
        while first <= last:
            page = list(E.select().where((E.seq >= first) & (E.seq <= last))
                        .order_by(E.seq).limit(_PAGE))
            if not page:
                return
            yield from page
            first = page[-1].seq + 1

    def read(self, run, after, limit, wait=None):
        """ModelStore.events: the arguments checked, ``after`` read through ``run``; with
        ``wait``, waiting for a first event up to that many seconds."""
        after = check_cursor(after)
        limit = check_page('limit', limit, minimum=1)
        if wait is None:
            return run('events', lambda: self.after(after, limit))
        wait = check_wait(wait)
        return run('events', lambda: self._waiting(after, limit, wait))

    def _waiting(self, cursor, limit, wait):
        """The events after ``cursor``, waiting until one commits or ``wait`` seconds pass.
        PostgreSQL: LISTEN first, then read -- a commit between the read and the wait has
        notified already, and the wait returns at once. Elsewhere: read every POLL seconds."""
        deadline = time.monotonic() + wait
        listening = self.dialect.listen(self.database, CHANNEL)
        try:
            while True:
                events = self.after(cursor, limit)
                left = deadline - time.monotonic()
                if events or left <= 0:
                    return events
                if listening:
                    self.dialect.wait_notified(self.database, left)
                else:
                    time.sleep(min(POLL, left))
        finally:
            if listening:
                self.dialect.unlisten(self.database, CHANNEL)

    def add_hook(self, hook):
        self.hooks.append(check_hook(hook))

    def after(self, cursor, limit):
        """The events numbered after ``cursor``, oldest first, at most ``limit``."""
        E = self.Event
        return list(E.select().where(E.seq > cursor).order_by(E.seq).limit(limit))

    def notify(self, events):
        """Call every on_event hook with each event (after its commit). A hook that raises is
        logged (logger ``modelstore``, with its traceback) and the others still run: the
        change is committed, and the call that made it must say so, not fail -- a caller
        that saw an error would retry, and store the row twice."""
        for event in events:
            for hook in list(self.hooks):
                try:
                    hook(event)
                except Exception:  # noqa: BLE001 -- a hook's failure is not the change's.
                    log.exception('modelstore: an on_event hook (%r) raised on event %s (%s); '
                                  'the change itself is committed', hook, event.seq,
                                  event.kind)


def state(model, names):
    """{name: value} of these fields of ``model``, as JSON holds them (a time as ISO text)."""
    out = {}
    for name in names:
        value = getattr(model, name)
        out[name] = value.isoformat() if isinstance(value, datetime.datetime) else value
    return out


def check_cursor(value):
    """A feed cursor: 0 (from the start) or an event's ``seq``."""
    return check_page('after', value, minimum=0)


def check_wait(value):
    """events(wait=...): seconds, 0 to WAIT_LIMIT."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not \
            0 <= value <= WAIT_LIMIT:
        raise ValidationError('wait', 'must be a number of seconds from 0 to %d, got %r'
                              % (WAIT_LIMIT, value))
    return float(value)


def check_hook(hook):
    if not callable(hook):
        raise ValidationError('hook', 'must be callable, got %s' % type(hook).__name__)
    return hook
