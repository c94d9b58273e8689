"""A throwaway database (or schema) on a server, for the shadow replay.

For modelstore.engine.shadow: the parts the PostgreSQL and MySQL/MariaDB dialects' ``shadow`` share
-- a name, a connection like the user's to it, and the drop afterwards, retried while a session is
still in it."""
import contextlib
import logging
import time
import uuid

from peewee import DatabaseError

from ..exceptions import StorageError, one_line
from .errors import sqlstate

__all__ = ['throwaway_name', 'connection_to', 'throwaway']

log = logging.getLogger('modelstore.shadow')
OBJECT_IN_USE = '55006'
DROP_SECONDS = 10


def throwaway_name():
    return 'modelstore_shadow_%s' % uuid.uuid4().hex[:12]


def connection_to(database, name):
    """A new connection like ``database``'s (its class, host, user, options) to ``name``."""
    return type(database)(name, **database.connect_params)


def _closed(connection):
    """Close ``connection`` even when a script left a transaction open (peewee refuses then):
    the database it is in is dropped next, which its open session would block."""
    with contextlib.suppress(Exception):
        if connection.in_transaction():
            connection.rollback()
    while connection.in_transaction():
        connection.pop_transaction()
    with contextlib.suppress(Exception):
        connection.close()


@contextlib.contextmanager
def throwaway(database, shadow, name, drop):
    """Yield ``shadow``; then close it and run ``drop`` on ``database`` (retried for a few
    seconds while a session is still in it). If that fails, a StorageError names what is left
    -- unless the block failed already: that error is the one raised, and this one logged."""
    done = False
    try:
        yield shadow
        done = True
    finally:
        _closed(shadow)
        deadline = time.monotonic() + DROP_SECONDS
        while True:
            try:
                database.execute_sql(drop)
                break
            except DatabaseError as exc:
                if sqlstate(exc) == OBJECT_IN_USE and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                message = 'the throwaway %s could not be dropped (%s); drop it by hand' % (
                    name, one_line(exc))
                if done:
                    raise StorageError(message) from None
                log.error(message)
                break
