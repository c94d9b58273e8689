"""The startup gate: ``connect()`` returns a ModelStore only when schema and code agree.

* An empty database (no tables at all) is migrated to head.
* A database that holds other tables but no registry (another application's SQLite file, a
  shared PostgreSQL database) raises SchemaOutOfDate saying so: adding the registry's tables to
  it is the operator's decision (``modelstore migrate``, or ``auto_migrate=True``).
* A database behind the code raises SchemaOutOfDate naming the pending scripts and the exact
  ``modelstore migrate --database ...`` command (password masked) -- unless
  ``auto_migrate=True``, which migrates it.
* A database whose history names scripts this code does not have (migrated by a newer
  release), all of them expand scripts (modelstore.engine.scripts): the store works as usual,
  reading and writing -- this is the rolling deploy, where the previous release's workers run
  on after the new release's expand scripts (docs/rolling-upgrades.md). If any of them is a
  contract script (or one recorded before phases, whose phase is unknown), connect() raises
  SchemaNewerThanCode -- unless ``allow_newer=True``: the store then reads, and every write
  raises SchemaNewerThanCode (this code cannot know what the newer schema refuses).
  A database opened so is not switched to WAL: it is opened for reading, and the file is left
  in the journal mode it has.
* A database whose pending scripts are all contract scripts (a rolling deploy's new release,
  after the expand step and before the contract step): the store works as usual if the
  schema before them has every column this code's models map (a contract script only removes
  what its release no longer uses); a contract script that renames a column this code maps
  makes connect() raise SchemaOutOfDate, naming the column and the contract step.
  ``auto_migrate=True`` runs them, unless a client built for an earlier schema is alive
  (modelstore.engine.clients): then they wait and the store connects (ClientsAlive if its
  columns are not there yet), and the first ``auto_migrate`` connect after the old clients
  are gone runs them.
* A SQLite file is switched to WAL (the setting for many writers) by the store's first write,
  or at once when connect() migrated it: a store that only reads leaves the file's bytes and
  journal mode as they were.
* ``auto_migrate=True`` on a SQLite file that has tables backs it up first (see
  modelstore.engine.backup).

This is the check whose absence lost the seeds' data: a write against an old schema must fail
loudly at startup, not drop the row later.
"""
import sqlite3

from peewee import DatabaseError

from ..engine import EXPAND, OWNED_TABLES, Backups, Clients, Engine
from ..exceptions import (ClientsAlive, SchemaNewerThanCode, SchemaOutOfDate, StorageError,
                          ValidationError, shown_value)
from ..version import __version__
from ..shared.database import check_timeout, open_database, use_for_app
from ..shared.tables import MODELS
from ..shared.urls import command, migrate_command, parse_url
from .calls import RECONNECT_TIMEOUT
from .events import check_actor
from .modelfiles import resolve_root
from .store import ModelStore

__all__ = ['connect']


def _foreign(status):
    """Why a database with no registry is not simply created in: it holds others' tables."""
    if status.applied or status.tables & OWNED_TABLES:
        return None
    others = sorted(status.data_tables)
    return ('it holds %d table%s of another application (%s%s) and no modelstore registry; '
            'adding the registry\'s tables to it is for an operator to decide'
            % (len(others), '' if len(others) == 1 else 's', ', '.join(others[:5]),
               ', ...' if len(others) > 5 else ''))


def connect(url=None, *, auto_migrate=False, allow_newer=False, models_root=None,
            reconnect_timeout=RECONNECT_TIMEOUT, release=None, register=True, actor=None):
    """Open the registry at ``url`` (a string resolved as modelstore.shared.urls says, or a
    DatabaseURL from its parse_url) and check its schema.

    ``models_root`` (else ``$MODELSTORE_MODELS_ROOT``): the folder model directories live
    under; ``delete_model(id, files=True)`` removes only directories inside it.

    ``reconnect_timeout`` (seconds, default 30): on a server, how long a call that lost its
    connection keeps trying to reconnect -- through a restart or a failover -- before it raises
    StorageError (see modelstore.registry.calls).

    ``register`` (default True): record this process in the clients table -- ``release``
    (your application's, default ``modelstore <version>``), the last script this code knows,
    host and pid -- and keep it fresh while the store is used, so that ``migrate`` runs no
    contract script while it is alive (modelstore.engine.clients; docs/rolling-upgrades.md).
    It is a write: a store on a database it may not write (a read-only role or file) connects
    with ``register=False``. A store opened read-only (``allow_newer``) does not register.

    ``actor`` (default ``user@host``): who the registry's events say made this store's
    changes (modelstore.registry.events)."""
    check_timeout(reconnect_timeout, 'reconnect_timeout')
    if release is not None and not (isinstance(release, str) and 0 < len(release) <= 255):
        raise ValidationError('release', 'must be text of 1 to 255 characters, got %s'
                              % shown_value(release))
    if actor is not None:
        check_actor('actor', actor)
    root = resolve_root(models_root)
    url = parse_url(url)  # Parsed once: the calls below read the value, not the text.
    shown = url.masked
    # Opened without the app's settings: journal_mode=wal writes to the file, and a refused
    # database must be left exactly as it was.
    database = open_database(url, mode='migrate')
    newer = None
    try:
        path = url.sqlite_path
        backups = Backups(path) if path not in (None, ':memory:') else None
        engine = Engine(database, label=shown, backups=backups)
        status = engine.status()
        if status.missing and not status.newer_expand_only:
            newer = SchemaNewerThanCode(shown, status.newer_contract or status.missing,
                                        contract=bool(status.newer_contract))
            if not allow_newer:
                raise newer
        migrating = newer is None and bool(status.pending) and (
            auto_migrate or not status.held_back)  # Held back: contract scripts wait.
        if migrating:
            _migrate(engine, shown, url, auto_migrate)
        elif newer is None and status.pending:  # Held back: contract scripts wait.
            _refuse_unless_fits(database, shown, url, status.pending)
        if newer is None:  # allow_newer: reading only, so the journal mode is left alone.
            # WAL is written into the file: a store that only reads (`models list` on a
            # ModelForge file) must leave it as it was, so the switch waits for the first
            # write -- unless connect() just wrote the file itself, migrating it.
            use_for_app(database, at_first_write=not migrating)
        registration = _register(database, shown, engine, release) \
            if register and newer is None else None
    except (DatabaseError, sqlite3.Error) as exc:
        database.close()
        raise StorageError('cannot open the registry at %s: %s' % (shown, exc)) from exc
    except BaseException:
        database.close()
        raise
    return ModelStore(database, shown, refuse_writes=newer, models_root=root,
                      reconnect_timeout=reconnect_timeout, registration=registration,
                      actor=actor)


def _migrate(engine, shown, url, auto_migrate):
    """Migrate an empty database, or any with ``auto_migrate``; else SchemaOutOfDate.

    With ``auto_migrate``, a contract script refused because a client built for an earlier
    schema is alive (ClientsAlive) waits: the expand scripts before it run, and the store
    connects if only contract scripts are left -- a rolling deploy's new workers start while
    the old ones finish, and the first to start after them runs the contract step."""
    def precondition(current):
        # Re-checked under the lock: another process may have migrated meanwhile.
        if current.pending and not (auto_migrate or current.empty):
            raise SchemaOutOfDate(shown, current.pending, migrate_command(url),
                                  _foreign(current))
    try:
        engine.migrate(precondition=precondition)
    except ClientsAlive:
        if not auto_migrate:
            raise
        engine.migrate(precondition=precondition, phase=EXPAND)
        held = engine.status().held_back
        if not held or _misfit(engine.database):
            raise


def _misfit(database):
    """Why this code's models cannot work on the schema as it is, or None: a table or column
    they map that it lacks, or a column they do not map that refuses a row without it (NOT
    NULL, no default) -- each of their INSERTs would fail."""
    missing, refusing = [], []
    for model in MODELS:
        table = model._meta.table_name
        if not database.table_exists(table):  # (MySQL's column query fails on one.)
            missing.append('table %s' % table)
            continue
        columns = {c.name.lower(): c for c in database.get_columns(table)}
        mapped = {f.column_name.lower() for f in model._meta.sorted_fields}
        missing += ['%s.%s' % (table, f.column_name) for f in model._meta.sorted_fields
                    if f.column_name.lower() not in columns]
        refusing += ['%s.%s' % (table, c.name) for name, c in sorted(columns.items())
                     if name not in mapped and not c.null and c.default is None
                     and not c.primary_key]
    if missing:
        return ('this code maps %s, which %s not in the schema before its contract step -- a '
                'contract script renames or adds %s' % (
                    ', '.join(missing), 'is' if len(missing) == 1 else 'are',
                    'it' if len(missing) == 1 else 'them'))
    if refusing:
        return ('this code does not write %s, which %s NOT NULL without a default: each of '
                'its INSERTs would fail before the contract step drops %s (an expand script '
                'that drops %s NOT NULL lets the new release start first; `modelstore new '
                '--auto` writes one)' % (', '.join(refusing), 'is' if len(refusing) == 1
                                          else 'are', 'it' if len(refusing) == 1 else 'them',
                                          'its' if len(refusing) == 1 else 'their'))
    return None


def _refuse_unless_fits(database, shown, url, held):
    """The pending scripts are all contract scripts (``held``): this code connects before
    them only if the schema before them suits its models (``_misfit``); else SchemaOutOfDate
    saying why and naming the contract step -- which waits for the previous release's clients
    to stop -- as the command that lets it start."""
    misfit = _misfit(database)
    if misfit:
        raise SchemaOutOfDate(shown, held, command('migrate', '--phase', 'contract',
                                                   database=url),
                              misfit + '; so this release starts only after the contract '
                              'step, which waits until the previous release\'s clients have '
                              'stopped')


def _register(database, shown, engine, release):
    """This process's row in the clients table (modelstore.engine.clients)."""
    head = engine.scripts()[-1].name
    try:
        return Clients(database).register(release or 'modelstore %s' % __version__, head)
    except (DatabaseError, sqlite3.Error) as exc:
        raise StorageError('cannot register this client in the registry at %s: %s; a store '
                           'that may not write there connects with register=False'
                           % (shown, exc)) from exc
