"""The API a training pipeline calls: record fine-tuned models and autotuning tasks.

Get a ``ModelStore`` from ``modelstore.connect()``, which has already checked that the schema
matches this code. Every call validates its input first (``ValidationError``, nothing written),
writes in one transaction that takes the write lock up front, and wraps database failures in
``StorageError`` -- a call that did not store its row raises; it never drops it silently.

A ModelStore may be shared between threads: peewee gives each thread its own connection.
"""
import datetime
import sqlite3

from peewee import Case, DatabaseError, IntegrityError, InterfaceError, SqliteDatabase

from ..engine import Engine
from ..exceptions import (NotFound, SchemaOutOfDate, StorageError, UnreadableValue,
                          ValidationError)
from ..fields import IsoTimestampField
from ..shared.database import write_transaction
from ..shared.dberrors import constraint_error, is_constraint, is_schema_missing, raising
from ..shared.models import bind_models
from ..shared.urls import migrate_command
from .fastpath import ORDERS, ModelQueries
from .modelfiles import ENV_VAR as MODELS_ROOT_ENV
from .tasks import TaskCalls
from .validate import (BULK_MODEL_COLUMNS, MODEL_FIELDS, bulk_model_row, check_choice,
                       check_fields, check_id, check_page, check_version,
                       listing_filters)

__all__ = ['ModelStore']


class _guard:
    """Turn a database failure into StorageError naming the operation.

    A missing table or column means the schema is behind the code (the seeds' failure): that
    becomes SchemaOutOfDate naming the pending scripts and the command, when scripts are pending.
    """

    def __init__(self, what, store):
        self.what = what
        self.store = store

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return False
        if issubclass(exc_type, UnreadableValue) and not exc.row_ids:
            raise exc.at(self.store._rows_holding(exc)) from None
        # sqlite3's own errors too: add_models' executemany runs on the driver's cursor.
        if not issubclass(exc_type, (DatabaseError, InterfaceError, sqlite3.Error)):
            return False
        if is_constraint(exc):
            raise constraint_error(exc) from exc
        if is_schema_missing(exc):
            self.store._raise_if_out_of_date()
        raise StorageError('%s failed: %s' % (self.what, exc)) from exc


def _model_name(value):
    """A model_name to look up: as add_model checks it, and not None."""
    if value is None:
        raise ValidationError('model_name', 'is required, got None')
    return MODEL_FIELDS['model_name'].check('model_name', value)


class ModelStore(TaskCalls):
    """A model registry on one database. Use ``modelstore.connect()`` to get one."""

    def __init__(self, database, url, refuse_writes=None, models_root=None):
        self.database = database
        self.url = url  # Masked: safe to print.
        # The folder model directories live under (modelfiles.ModelsRoot), or None.
        self.models_root = models_root
        # An exception every write raises (SchemaNewerThanCode from connect(allow_newer=True)).
        self.refuse_writes = refuse_writes
        bound = bind_models(database)
        self.FineTunedModel = bound['FineTunedModel']
        self.Task = bound['Task']
        self.ModelImport = bound['ModelImport']  # What `modelstore import` copied (0011).
        self.queries = ModelQueries(self.FineTunedModel, BULK_MODEL_COLUMNS,
                                    bound['ModelVersionCounter'])

    def __repr__(self):
        return '<ModelStore %s>' % self.url

    def _run(self, what, body, write=False, retry=True):
        """Run ``body()``, in a write transaction if ``write``, and return its result.

        A database server may drop the connection (a restart, a failover, an idle timeout).
        A call that finds its connection dead before anything could have been committed gets a
        new connection and is retried once, so a long-running pipeline carries on. If the
        connection is lost while committing, nobody knows whether the row was stored: that
        raises StorageError saying so, and is never retried (a retry could store it twice).
        """
        if write and self.refuse_writes is not None:
            raise self.refuse_writes.with_traceback(None)
        for attempt in (1, 2):
            committing = False
            try:
                with _guard(what, self):
                    if not write:
                        return body()
                    with write_transaction(self.database):
                        result = body()
                        committing = True
                    return result
            except StorageError as exc:
                if attempt == 2 or not retry or not self._connection_lost():
                    raise
                if committing:
                    raise StorageError(
                        '%s: the connection to the database was lost while committing, so '
                        'whether the change was stored is unknown; check before retrying'
                        % what) from exc.__cause__
                self._drop_connection()

    def _connection_lost(self):
        db = self.database
        if isinstance(db, SqliteDatabase):
            return False  # A file, not a server: there is no connection to lose.
        # A server connection that died reports an unknown transaction status: not usable.
        return not db.is_closed() and not db.is_connection_usable()

    def _drop_connection(self):
        try:
            self.database.close()
        except Exception:  # A broken connection may fail even to close: forget it.
            self.database.dispose()

    def _rows_holding(self, error, limit=5):
        """The ids of the rows whose ``error.column`` holds ``error.value`` (peewee's own
        queries convert values before a row is complete, so the error does not know them)."""
        model = {m._meta.table_name: m for m in (self.FineTunedModel, self.Task)}.get(
            error.table)
        if model is None:
            return []
        column = model._meta.columns[error.column]
        try:
            query = (model.select(model._meta.primary_key).where(column == error.value)
                     .order_by(model._meta.primary_key).limit(limit).tuples())
            return [row[0] for row in query]
        except Exception:  # Reporting the original problem matters more.
            return []

    def _raise_if_out_of_date(self):
        try:
            pending = Engine(self.database, label=self.url).status().pending
        except Exception:  # Reporting the original failure matters more.
            return
        if pending:
            raise SchemaOutOfDate(self.url, pending, migrate_command(self.url)) from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close this thread's connection (others close when their threads end)."""
        with raising(StorageError, 'close'):
            if not self.database.is_closed():
                self.database.close()

    # -- fine-tuned models -------------------------------------------------------------------

    def add_model(self, **fields):
        """Record a fine-tuned model; returns the stored FineTunedModel.

        Fields: model_name, base_model, task, model_path (required); description (default
        ''), creation_date (datetime or ISO text, default now), is_custom_base_model (bool,
        default False); the training metadata (all optional): training_seconds,
        peak_vram_bytes, dataset_rows, dataset_bytes (finite, >= 0), metrics (a JSON object of
        name -> number or list of numbers), hyperparameters (a JSON object), strategy,
        provider, updated_at (default now).
        """
        values = check_fields(MODEL_FIELDS, fields)
        M = self.FineTunedModel
        row = self.queries.stored_row(values)
        model = M(**values)
        # The INSERT peewee built once (fastpath): building it per call took ~100 us, while
        # holding the database's write lock.
        model.id, model.version = self._run('add_model', lambda: self.queries.insert(row),
                                            write=True)
        return self.queries.clean(model)

    def add_models(self, models):
        """Record many fine-tuned models in one transaction; returns how many were stored.

        ``models`` is any iterable of dicts with add_model's fields; it is consumed once, as it
        is written, so a generator of millions of rows needs no memory for them. Every row is
        validated as add_model validates it; a bad row raises ValidationError naming its index
        and field, and then *no* row is stored. Rows without ``creation_date`` get the time of
        the call. For importers: on SQLite this is one ``executemany`` of a prepared INSERT.
        """
        if isinstance(models, (dict, str, bytes)) or not hasattr(models, '__iter__'):
            raise ValidationError('models', 'must be an iterable of dicts, got %s'
                                  % type(models).__name__)
        counted = [0]

        def rows():
            now = datetime.datetime.now()
            now_text = IsoTimestampField().db_value(now)
            for index, values in enumerate(models):
                yield bulk_model_row(index, values, now, now_text)
                counted[0] = index + 1

        def write():
            counted[0] = 0
            self.queries.insert_many(rows())
            return counted[0]
        # Never retried: the iterable has been (partly) consumed.
        return self._run('add_models', write, write=True, retry=False)

    def update_model(self, model_id, **fields):
        """Change the given fields of a model (training metadata arrives after training);
        refreshes ``updated_at`` unless it is given. Returns the updated FineTunedModel.

        A new ``model_name`` makes it the next version of that name (its old number is not
        given again). ``version`` itself is the database's to set.
        """
        check_id('model_id', model_id)
        values = check_fields(MODEL_FIELDS, fields, partial=True)
        values.setdefault('updated_at', datetime.datetime.now())
        M = self.FineTunedModel
        if 'model_name' in values:
            # Renamed: the next version of its new name (the database's trigger numbers a row
            # left without one; on SQLite the old number could collide under the new name).
            values['version'] = Case(None, [(M.model_name == values['model_name'], M.version)],
                                     None)

        def update():
            try:
                with self.database.atomic():
                    if not M.update(**values).where(M.id == model_id).execute():
                        raise NotFound('no fine-tuned model with id %d' % model_id)
            except IntegrityError as exc:
                raise constraint_error(exc) from None
            return M.get_by_id(model_id)
        return self._run('update_model', update, write=True)

    def _one(self, what, query, missing):
        row = self._run(what, query.get_or_none)
        if row is None:
            raise NotFound(missing)
        return row

    def get_model(self, model_id):
        """The model with this id, or NotFound."""
        check_id('model_id', model_id)
        M = self.FineTunedModel
        return self._one('get_model', M.select().where(M.id == model_id),
                         'no fine-tuned model with id %d' % model_id)

    def get_model_version(self, model_name, version):
        """Version ``version`` of ``model_name``, or NotFound."""
        name = _model_name(model_name)
        version = check_version('version', version)
        M = self.FineTunedModel
        return self._one('get_model_version',
                         M.select().where((M.model_name == name) & (M.version == version)),
                         'no version %d of a model named %r' % (version, name))

    def get_latest_model(self, model_name):
        """The highest version of ``model_name`` -- the one added (or renamed to it) last --
        or NotFound."""
        name = _model_name(model_name)
        M = self.FineTunedModel
        query = (M.select().where((M.model_name == name) & M.version.is_null(False))
                 .order_by(M.version.desc()).limit(1))
        return self._one('get_latest_model', query, 'no model named %r' % name)

    def list_models(self, *, task=None, is_custom_base_model=None, name_prefix=None,
                    base_model=None, model_name=None, name_contains=None, created_after=None,
                    created_before=None, order='newest', limit=None, offset=0):
        """Models matching every filter given, ``order``-ed: ``'newest'`` first (by
        creation_date, as ModelForge orders them; the default), ``'oldest'`` first, or by
        ``'name'``; ``limit``/``offset`` page through them.

        Filters: ``task``, ``base_model`` and ``model_name`` (exact), ``is_custom_base_model``,
        ``name_prefix`` (case-sensitive), ``name_contains`` (a substring, ignoring case),
        ``created_after`` (inclusive) and ``created_before`` (exclusive): datetimes (aware ones
        converted to local time, as creation_date is stored), dates, or ISO-8601 text.

        With ``model_name`` it lists that name's versions: ``'newest'`` is the highest version
        first, ``'oldest'`` and ``'name'`` version 1 first (0009's index serves it).

        Task, custom flag and name prefix are served by 0005's index (task,
        is_custom_base_model, creation_date, model_name): a page of 50 reads about 50 rows at
        any table size.
        """
        values = listing_filters(task=task, is_custom_base_model=is_custom_base_model,
                                 name_prefix=name_prefix, base_model=base_model,
                                 model_name=model_name, name_contains=name_contains,
                                 created_after=created_after, created_before=created_before)
        order = check_choice('order', order, ORDERS)
        if limit is not None:
            limit = check_page('limit', limit, minimum=1)
        offset = check_page('offset', offset, minimum=0)
        return self._run('list_models',
                         lambda: self.queries.listing(values, limit, offset, order))

    def count_models(self, **filters):
        """How many models list_models would return for these filters (without a page)."""
        values = listing_filters(**filters)
        query = self.queries.listing_query(values).order_by()
        return self._run('count_models', query.count)

    def delete_model(self, model_id, files=False):
        """Delete the model's row; NotFound if there is none. With ``files=True`` its
        directory (``model_path``) goes too -- only a directory strictly inside the models
        root: anything else raises ValidationError and deletes nothing, row included. Crash-safe
        (see modelstore.registry.modelfiles); returns the directory removed, or None."""
        check_id('model_id', model_id)
        if not isinstance(files, bool):
            raise ValidationError('files', 'must be True or False, got %r' % (files,))
        M = self.FineTunedModel
        if not files:
            def delete():
                if not M.delete().where(M.id == model_id).execute():
                    raise NotFound('no fine-tuned model with id %d' % model_id)
            return self._run('delete_model', delete, write=True)
        root = self._root('delete_model(files=True)')
        path = self.get_model(model_id).model_path

        def delete_row():
            def delete():
                if not M.delete().where((M.id == model_id) & (M.model_path == path)).execute():
                    raise StorageError('delete_model: model %d changed or went while it was '
                                       'being deleted; nothing was deleted' % model_id)
            self._run('delete_model', delete, write=True, retry=False)
        return root.delete(model_id, path, delete_row)

    def empty_trash(self, dry_run=False):
        """Finish the deletes with files that a crash interrupted (modelstore doctor
        --empty-trash): a model still stored gets its files back, a deleted one's are removed.
        Returns [(action, token, detail)]; ``dry_run`` only says what it would do."""
        root = self._root('empty_trash')
        M = self.FineTunedModel

        def row_exists(model_id, path):
            query = M.select().where((M.id == model_id) & (M.model_path == path))
            return self._run('empty_trash', query.exists)
        return root.recover(row_exists, dry_run=dry_run)

    def _root(self, what):
        if self.models_root is None:
            raise ValidationError('models_root', '%s needs a models root: pass '
                                  'connect(models_root=...) or set $%s' % (what, MODELS_ROOT_ENV))
        return self.models_root.check()
