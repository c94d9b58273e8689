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
import socket

from ..dialects import dialect_of
from ..exceptions import ValidationError
from .checks import NAME_LIMIT, Text
from .validate import check_page

__all__ = ['Events', 'default_actor', 'check_actor', 'KINDS']

# What an event's ``kind`` says. ``before``/``after`` hold the state on either side.
KINDS = ('alias.set', 'alias.moved', 'alias.removed', 'model.deleted', 'model.archived',
         'model.restored', 'tags.changed')

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

    def __init__(self, event_model, counter_model, actor):
        self.Event = event_model
        self.Counter = counter_model
        self.actor = actor
        self.hooks = []  # on_event callbacks, called after the commit (ModelStore.on_event).

    def lock(self):
        """Take the next number, holding the counter's row lock until the transaction ends.
        Called first in a transaction that may record an event: writers of events (and what
        they read before writing) run one at a time."""
        C = self.Counter
        # One upsert: the first event writes the row (not 0013, so that rolling 0013 back over
        # a registry without events destroys nothing), the others add 1. Racing first writers:
        # one inserts, the others wait for it and update -- an UPDATE then an INSERT IGNORE
        # deadlocked there on MySQL (gap locks).
        named = dialect_of(C._meta.database).upsert_names_key
        C.insert(id=1, last_seq=1).on_conflict(
            conflict_target=[C.id] if named else None,
            update={C.last_seq: C.last_seq + 1}).execute()
        return C.select(C.last_seq).where(C.id == 1).scalar()

    def record(self, seq, kind, *, model_name=None, model_id=None, version=None, alias=None,
               before=None, after=None):
        """Append event ``seq`` (from ``lock()``, in the same transaction); returns it."""
        assert kind in KINDS, kind
        values = dict(seq=seq, at=utc_now(), actor=self.actor, kind=kind,
                      model_name=model_name, model_id=model_id, version=version, alias=alias,
                      before=before, after=after)
        self.Event.insert(**values).execute()
        return self.Event(**values)

    def read(self, run, after, limit):
        """ModelStore.events: the arguments checked, ``after`` read through ``run``."""
        after = check_cursor(after)
        limit = check_page('limit', limit, minimum=1)
        return run('events', lambda: self.after(after, limit))

    def add_hook(self, hook):
        self.hooks.append(check_hook(hook))

    def after(self, cursor, limit):
        """The events numbered after ``cursor``, oldest first, at most ``limit``."""
        E = self.Event
        return list(E.select().where(E.seq > cursor).order_by(E.seq).limit(limit))

    def notify(self, events):
        """Call every on_event hook with each event (after its commit). A hook that raises is
        the caller's error: the change itself is stored."""
        for event in events:
            for hook in list(self.hooks):
                hook(event)


def check_cursor(value):
    """A feed cursor: 0 (from the start) or an event's ``seq``."""
    return check_page('after', value, minimum=0)


def check_hook(hook):
    if not callable(hook):
        raise ValidationError('hook', 'must be callable, got %s' % type(hook).__name__)
    return hook
