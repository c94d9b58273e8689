"""The clients table: which workers use the registry, and which schema their code was built for.

A rolling deploy runs two releases side by side. ``modelstore.connect()`` registers its process
in ``modelstore_clients`` (created by the expand script 0012): the application's release, the
last script its code knows (``schema_head``), host, pid, when it started and when it was last
seen -- both on the *database server's* clock (``Dialect.epoch``), so machines whose clocks
disagree still agree on who is alive. A store refreshes ``last_seen`` on use, at most every
``HEARTBEAT`` seconds (one UPDATE, no extra round trip on the other calls), and removes its row
when closed. A row not refreshed for ``LIFE`` seconds is a client that is gone (killed, or idle
that long: it registers again at its next call); rows gone for a day are deleted by the next
registration.

``migrate`` refuses a contract script while a client whose ``schema_head`` comes before that
script is alive, naming each one (modelstore.engine.run); ``--force`` overrides it, and the
history row says so. ``modelstore clients`` lists them.

The other way round: a heartbeat also reads the history (``Registration.newer_contract``, one
small SELECT every HEARTBEAT seconds, never per call). A script numbered after ``schema_head``
that is not recorded as an expand script -- a contract script, or one whose phase is unknown --
has changed the schema in a way this code cannot know, so the store turns read-only
(modelstore.registry.calls): what ``connect()`` would have refused at startup, found while
running.

Workers of a release from before this table (modelstore before 0012) do not register: nothing
can see them.
"""
import functools
import os
import random
import socket
import time
from dataclasses import dataclass

from peewee import SQL, CharField, DatabaseError, DoubleField, IntegerField, Model

from ..dialects import dialect_of, is_busy
from .history import History
from .scripts import EXPAND
from .status import script_number

__all__ = ['TABLE', 'HEARTBEAT', 'LIFE', 'Clients', 'ClientRow', 'Registration']

TABLE = 'modelstore_clients'
HEARTBEAT = 30.0  # seconds between two refreshes of a client's last_seen, at most
LIFE = 120.0  # seconds after its last refresh that a client counts as alive
FORGOTTEN = 86400.0  # seconds after which a gone client's row is deleted


def _model(database):
    class Client(Model):
        release = CharField(max_length=255)
        schema_head = CharField(max_length=255)
        host = CharField(max_length=255)
        pid = IntegerField()
        started = DoubleField()
        last_seen = DoubleField(index=True)

        class Meta:
            table_name = TABLE

    Client.bind(database, bind_refs=False, bind_backrefs=False)
    return Client


@dataclass(frozen=True)
class ClientRow:
    """One registered client, with ``age``: seconds since it was last seen (server clock)."""
    id: int
    release: str
    schema_head: str
    host: str
    pid: int
    started: float
    last_seen: float
    age: float

    life = LIFE

    @property
    def alive(self):
        return self.age <= LIFE

    def describe(self):
        return '%s (built for %s) on %s pid %d, last seen %.0f s ago' % (
            self.release, self.schema_head, self.host, self.pid, max(self.age, 0.0))

    def as_dict(self):
        return {'id': self.id, 'release': self.release, 'schema_head': self.schema_head,
                'host': self.host, 'pid': self.pid, 'started': self.started,
                'last_seen': self.last_seen, 'age': round(self.age, 3), 'alive': self.alive}


class Clients:
    """The clients table of one database."""

    def __init__(self, database):
        self.database = database
        self.model = _model(database)
        self.epoch = dialect_of(database).epoch

    @functools.cached_property
    def history(self):
        """The history's model, read by the heartbeat's check: made at the first heartbeat,
        not at every connect() (~0.15 ms)."""
        return History(self.database).model

    def exists(self):
        return self.model.table_exists()

    def now(self):
        """The server's clock, in seconds since 1970."""
        return float(self.database.execute_sql('SELECT %s' % self.epoch).fetchone()[0])

    def rows(self, *, all=False):
        """The registered clients, alive ones only unless ``all``; [] without the table."""
        if not self.exists():
            return []
        now = self.now()
        C = self.model
        query = C.select().order_by(C.last_seen.desc(), C.id)
        if not all:
            query = query.where(C.last_seen >= now - LIFE)
        return [ClientRow(c.id, c.release, c.schema_head, c.host, c.pid, c.started, c.last_seen,
                          now - c.last_seen) for c in query]

    def alive_before(self, script_name):
        """The alive clients built for a schema before ``script_name``: code that does not know
        it, nor what it changes."""
        number = script_number(script_name)
        return [c for c in self.rows() if script_number(c.schema_head) < number]

    def register(self, release, schema_head):
        """Insert this process's row; returns its Registration. Forgets long-gone clients."""
        registration = Registration(self, release, schema_head)
        for attempt in range(1, 6):
            try:
                with dialect_of(self.database).write_transaction(self.database):
                    C = self.model
                    C.delete().where(C.last_seen < self.now() - FORGOTTEN).execute()
                    registration.insert()
                return registration
            except DatabaseError as exc:
                # Workers starting at once: MariaDB's range locks of the DELETE deadlock (1213)
                # and roll one back whole; it is safe to run again.
                if attempt == 5 or not is_busy(exc):
                    raise
                time.sleep(0.02 * attempt * random.random())


class Registration:
    """This process's row in the clients table: refreshed on use, removed at close."""

    def __init__(self, clients, release, schema_head):
        self.clients = clients
        self.release = release
        self.schema_head = schema_head
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = None
        self.next_beat = 0.0

    def insert(self):
        now = self.clients.now()
        self.id = self.clients.model.insert(
            release=self.release, schema_head=self.schema_head, host=self.host, pid=self.pid,
            started=now, last_seen=now).execute()
        self.next_beat = time.monotonic() + HEARTBEAT

    def due(self):
        """Whether the next call should refresh the row (one clock read)."""
        return time.monotonic() >= self.next_beat

    def beat(self):
        """Refresh last_seen; insert the row again if it is gone (closed, or forgotten)."""
        self.next_beat = time.monotonic() + HEARTBEAT
        if self.pid != os.getpid():  # A forked worker is a client of its own.
            self.pid, self.id = os.getpid(), None
        if self.id is not None:
            C = self.clients.model
            if C.update(last_seen=SQL(self.clients.epoch)).where(C.id == self.id).execute():
                return
        self.insert()

    def newer_contract(self):
        """The scripts the history records that come after the last one this code knows
        (``schema_head``) and are not recorded as expand scripts: contract scripts, or scripts
        whose phase is unknown. One SELECT of the history's names and phases."""
        H = self.clients.history
        number = script_number(self.schema_head)
        return [name for name, phase in H.select(H.name, H.phase).order_by(H.id).tuples()
                if script_number(name) > number and phase != EXPAND]

    def leave(self):
        """Remove the row (the store is closed); a later call registers again."""
        if self.id is not None:
            C = self.clients.model
            C.delete().where(C.id == self.id).execute()
            self.id = None
            self.next_beat = 0.0
