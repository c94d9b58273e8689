"""The API a training pipeline calls: record fine-tuned models and autotuning tasks.

Get a ``ModelStore`` from ``modelstore.connect()``, which has already checked that the schema
matches this code. Every call validates its input first (``ValidationError``, nothing written),
writes in one transaction that takes the write lock up front, and wraps database failures in
``StorageError`` -- a call that did not store its row raises; it never drops it silently.

A ModelStore may be shared between threads: peewee gives each thread its own connection.
"""
import datetime
import stat

from peewee import Case, IntegrityError

from ..dialects import constraint_error, raising
from ..engine import Engine
from ..exceptions import NotFound, SchemaOutOfDate, StorageError, ValidationError
from ..shared.tables import bind_models
from ..shared.urls import migrate_command
from .aliases import Aliases, check_alias, split_reference
from .archive import Archive
from .lineage import Lineage
from .calls import RECONNECT_TIMEOUT, Calls
from .cards import CARD, is_ours as card_is_ours, render as render_card
from .deletes import Deletes, require_root
from .folderfiles import write_into
from .events import ADDED, CHANNEL, Events, default_actor, state
from .fastpath import ORDERS, ModelQueries
from .paging import pages
from .rules import Rules
from .tags import Tags
from .tasks import Tasks
from .validate import (check_id, check_order, check_page, check_tags,
                       check_version, listing_filters)

__all__ = ['ModelStore']

class ModelStore:
    """A model registry on one database. Use ``modelstore.connect()`` to get one.

    Its parts: ``Calls`` (how each call meets the database: its transaction, errors, a lost
    connection survived), ``Rules`` (each field's rule, derived from the model), ``ModelQueries``
    (the hot paths' SQL, built once from the model) and ``Tasks`` (the task calls)."""

    def __init__(self, database, url, refuse_writes=None, models_root=None,
                 reconnect_timeout=RECONNECT_TIMEOUT, registration=None, actor=None):
        self.database = database
        self.url = url  # Masked: safe to print.
        # The folder model directories live under (modelfiles.ModelsRoot), or None.
        self.models_root = models_root
        self.calls = Calls(database, url, refuse_writes=refuse_writes,
                           reconnect_timeout=reconnect_timeout, rows_holding=self._rows_holding,
                           out_of_date=self._raise_if_out_of_date, registration=registration,
                           newer_contract=self._newer_contract)
        bound = bind_models(database)
        self.FineTunedModel = bound['FineTunedModel']
        self.Task = bound['Task']
        self.ModelImport = bound['ModelImport']  # What `modelstore import` copied (0011).
        self.rules = Rules(self.FineTunedModel)
        self.queries = ModelQueries(self.FineTunedModel, self.rules.columns, self.rules.filled,
                                    counters=bound['ModelVersionCounter'],
                                    tags=bound['ModelTag'],
                                    events=(bound['RegistryEvent'],
                                            bound['RegistryEventCounter'], CHANNEL))
        self.tasks = Tasks(self.Task, self.calls)
        # Who the events say made a change (connect(actor=...)); 0013's tables.
        self.events_log = Events(bound['RegistryEvent'], bound['RegistryEventCounter'],
                                 self.FineTunedModel, actor or default_actor())
        self.aliases = Aliases(bound['ModelAlias'], self.FineTunedModel, self.calls,
                               self.events_log, self._model_name)
        self.lineage_of = Lineage(self.FineTunedModel)
        self.archive = Archive(self.FineTunedModel, self.calls, self.events_log, self.aliases)
        self.tags = Tags(bound['ModelTag'], self.FineTunedModel, self.calls, self.events_log)
        self.deletes = Deletes(self.FineTunedModel, self.calls, self.events_log, self.aliases,
                               self.tags, models_root, self.get_model)
        self._empty = dict.fromkeys(self.FineTunedModel._meta.fields)  # A model's every field.

    @property
    def refuse_writes(self):
        """The exception every write raises (SchemaNewerThanCode from
        connect(allow_newer=True)), or None."""
        return self.calls.refuse_writes

    @property
    def reconnect_timeout(self):
        return self.calls.reconnect_timeout

    @property
    def reconnects(self):
        """How often this store reconnected after losing its server."""
        return self.calls.reconnects

    @property
    def retried_calls(self):
        """How many calls ran again after a reconnect."""
        return self.calls.retried_calls

    def _run(self, what, body, **options):
        return self.calls.run(what, body, **options)

    def _model_name(self, value):
        """A model_name to look up: as add_model checks it, and not None."""
        if value is None:
            raise ValidationError('model_name', 'is required, got None')
        return self.rules['model_name'].check('model_name', value)

    def __repr__(self):
        return '<ModelStore %s>' % self.url

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

    def _newer_contract(self):
        """After a write failed: the contract scripts (or of unknown phase) the history
        records that this code does not have -- what connect() refuses at startup."""
        try:
            return Engine(self.database, label=self.url).status().newer_contract
        except Exception:  # Reporting the original failure matters more.
            return []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def registration(self):
        """This process's row in the clients table (modelstore.engine.clients), or None."""
        return self.calls.registration

    def close(self):
        """Close this thread's connection (others close when their threads end), and remove
        this process from the clients table (a later call registers it again)."""
        self.calls.leave()
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
        rules = self.rules
        defaults = rules.defaults()
        # The common row is checked by the rules' fast form (~5 us instead of ~40 in a process
        # that waits on a server between calls); anything else by the whole rule.
        row = rules.fast_row(fields, defaults)
        if row is None:
            row = rules.row(rules.check(fields, defaults=defaults))
        # The INSERT peewee built once (fastpath): building it per call took ~100 us, while
        # holding the database's write lock. Under the event lock, taken first (in turn with
        # every registry change): the model.added event commits with the row.
        parent = fields.get('parent_id')
        given = dict(zip(rules.columns, row))

        event = self.events_log.values('model.added', model_name=given['model_name'],
                                       after={name: given.get(name) for name in ADDED})
        if parent is None and self.queries.added_in_one:  # PostgreSQL: one statement.
            id_, version, event['seq'] = self._run(
                'add_model', lambda: self.queries.insert_added(row, event), write=True,
                single=True)
        else:
            # Encoded before the write transaction: its lock waits only for the statements.
            prepared, encoded = self.queries.prepare(row), self.events_log.encoded(event)

            def insert():
                event['seq'] = self.events_log.lock()
                if parent is not None:  # Its parent must be there, in the INSERT's transaction.
                    self.lineage_of.require(parent)
                id_, version = self.queries.insert_prepared(list(prepared))
                self.events_log.write_encoded(list(encoded), event['seq'], model_id=id_,
                                              version=version)
                return id_, version
            id_, version = self._run('add_model', insert, write=True)
        if self.events_log.hooks:
            self.events_log.notify([self.events_log.Event(**dict(event, model_id=id_,
                                                                 version=version))])
        return self.queries.stored_model(dict(self._empty, **dict(
            zip(rules.columns, row)), id=id_, version=version))

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

        rules = self.rules

        def rows():
            defaults = rules.defaults()  # One time for the whole call.
            for index, values in enumerate(models):
                yield rules.fast_row(values, defaults) or self._checked_row(index, values,
                                                                             defaults)
                counted[0] = index + 1

        M, log = self.FineTunedModel, self.events_log

        def write():
            counted[0] = 0
            last = log.lock(0)  # First: a model.added event for each row.
            before = self.lineage_of.last_id()
            added = [0]

            def batch(ids):  # A server's batch: these ids (others may be between them).
                added[0] += log.record_added(last + added[0], M.id.in_(ids))
            if not self.queries.insert_many(rows(), batch):
                # SQLite: every row after ``before`` is this call's (its write lock).
                added[0] = log.record_added(last, M.id > before)
            self.lineage_of.require_parents_after(before)  # Of the rows just written.
            if added[0]:
                log.moved_past(last + added[0])
            return counted[0], last, added[0]
        # Never retried: the iterable has been (partly) consumed.
        count, last, events = self._run('add_models', write, write=True, retry=False)
        if self.events_log.hooks:
            self.events_log.notify(self.events_log.numbered(last + 1, last + events))
        return count

    def _checked_row(self, index, values, defaults):
        """add_models' row ``index`` through the whole rule; errors name the row."""
        if not isinstance(values, dict):
            raise ValidationError('models[%d]' % index, 'must be a dict of add_model fields, '
                                  'got %s' % type(values).__name__)
        try:
            return self.rules.row(self.rules.check(values, defaults=defaults))
        except ValidationError as exc:
            raise ValidationError('models[%d].%s' % (index, exc.field) if exc.field else
                                  'models[%d]' % index, exc.message) from None

    def update_model(self, model_id, **fields):
        """Change the given fields of a model (training metadata arrives after training);
        refreshes ``updated_at`` unless it is given. Returns the updated FineTunedModel.

        A new ``model_name`` makes it the next version of that name (its old number is not
        given again). ``version`` itself is the database's to set.
        """
        check_id('model_id', model_id)
        values = self.rules.check(fields, partial=True)
        values.setdefault('updated_at', datetime.datetime.now())
        M = self.FineTunedModel
        if 'model_name' in values:
            # Renamed: the next version of its new name (the database's trigger numbers a row
            # left without one; on SQLite the old number could collide under the new name).
            values['version'] = Case(None, [(M.model_name == values['model_name'], M.version)],
                                     None)

        def update():
            seq = self.events_log.lock()  # First (MySQL's snapshot): in turn, as set_alias.
            before = M.get_or_none(M.id == model_id)
            if before is None:
                raise NotFound('no fine-tuned model with id %d' % model_id)
            if values.get('parent_id') is not None:
                self.lineage_of.require(values['parent_id'], child=model_id)
            if values.get('model_name', before.model_name) != before.model_name:
                self.aliases.refuse_if_held(model_id, 'rename')  # Not while aliased.
            try:  # No savepoint: a refusal ends the call (and a deadlock on MySQL, whose
                # rollback takes the whole transaction, would surface as a missing savepoint).
                M.update(**values).where(M.id == model_id).execute()
            except IntegrityError as exc:
                raise constraint_error(exc, self.database) from None
            if 'creation_date' in values:
                self.tags.follow_date(model_id)
            after = M.get_by_id(model_id)
            names = [name for name in values if name != 'version']
            if after.version != before.version:
                names.append('version')
            return after, self.events_log.record(
                seq, 'model.updated', model_name=after.model_name, model_id=model_id,
                version=after.version, before=state(before, names), after=state(after, names))
        model, event = self._run('update_model', update, write=True)
        self.events_log.notify([event])
        return model

    def _one(self, what, missing, *lookup):
        model = self._run(what, lambda: self.queries.lookup(*lookup))
        if model is None:
            raise NotFound(missing)
        return model

    def get_model(self, model_id):
        """The model with this id, or NotFound. Text is a reference instead: ``NAME@VERSION``
        (``'chat@3'``), ``NAME@ALIAS`` (``'chat@champion'``, see set_alias) or ``NAME`` (its
        latest version); the part after the last ``@`` decides."""
        if isinstance(model_id, str):
            name, ref = split_reference(model_id)
            return self.get_latest_model(name) if ref is None else \
                self.get_model_version(name, ref)
        check_id('model_id', model_id)
        return self._one('get_model', 'no fine-tuned model with id %d' % model_id, 'id',
                         model_id)

    def get_model_version(self, model_name, version):
        """Version ``version`` of ``model_name``, or NotFound. ``version`` may be an alias of
        that name (``'champion'``): the version it points at."""
        name = self._model_name(model_name)
        alias = None
        if isinstance(version, str):
            alias = check_alias('version', version)
            version = self.aliases.resolve(name, alias)
        version = check_version('version', version)
        return self._one('get_model_version', 'no version %d of a model named %r%s' % (
            version, name, '' if alias is None else ': %s@%s points at it, and it was deleted '
            'by a program that does not keep aliases (a legacy DELETE): move the alias with '
            'set_alias' % (name, alias)), 'version', name, version)

    def get_latest_model(self, model_name, *, include_archived=False):
        """The highest version of ``model_name`` -- the one added (or renamed to it) last --
        that is not archived (``include_archived=True``: of them all), or NotFound."""
        name = self._model_name(model_name)
        if not isinstance(include_archived, bool):
            raise ValidationError('include_archived', 'must be True or False, got %r'
                                  % (include_archived,))
        M = self.FineTunedModel
        try:
            return self._one('get_latest_model', 'no model named %r' % name, 'latest archived '
                             'too' if include_archived else 'latest', name)
        except NotFound:
            if include_archived or not self._run('get_latest_model', M.select().where(
                    M.model_name == name).exists):
                raise
        raise NotFound('every version of the model named %r is archived '
                       '(include_archived=True finds them)' % name)

    def list_models(self, *, task=None, is_custom_base_model=None, name_prefix=None,
                    base_model=None, model_name=None, name_contains=None, created_after=None,
                    created_before=None, archived=False, tags=None, metric=None,
                    metric_below=None, metric_above=None, order='newest', limit=None,
                    offset=0, rows=False):
        """Models matching every filter given, ``order``-ed: ``'newest'`` first (by
        creation_date, as ModelForge orders them; the default), ``'oldest'`` first, or by
        ``'name'``; ``limit``/``offset`` page through them.

        Filters: ``task``, ``base_model`` and ``model_name`` (exact), ``is_custom_base_model``,
        ``name_prefix`` (case-sensitive), ``name_contains`` (a substring, ignoring case),
        ``created_after`` (inclusive) and ``created_before`` (exclusive): datetimes (aware ones
        converted to local time, as creation_date is stored), dates, or ISO-8601 text.

        With ``model_name`` it lists that name's versions: ``'newest'`` is the highest version
        first, ``'oldest'`` and ``'name'`` version 1 first (0009's index serves it).

        ``archived``: archived models (archive_model) are left out by default; True lists
        only them, None both. ``tags``: {key: value, ...} a model must all carry (set_tags).
        ``metric``: only models whose ``metrics`` hold a number under that name -- a list's
        last element, a curve's final value -- optionally ``metric_below``/``metric_above``
        it (strictly); ``order='metric'``: by it, lowest first (the best by a loss).

        Task, custom flag and name prefix are served by 0005's index (task,
        is_custom_base_model, creation_date, model_name): a page of 50 reads about 50 rows at
        any table size. ``rows=True``: read-only named tuples (``ModelRow``) of the same fields
        and values, at close to the driver's cost (docs/registry.md).
        """
        values = listing_filters(task=task, is_custom_base_model=is_custom_base_model,
                                 name_prefix=name_prefix, base_model=base_model,
                                 model_name=model_name, name_contains=name_contains,
                                 created_after=created_after, created_before=created_before,
                                 archived=archived, tags=tags, metric=metric,
                                 metric_below=metric_below, metric_above=metric_above)
        order = check_order(order, values, ORDERS)
        if limit is not None:
            limit = check_page('limit', limit, minimum=1)
        offset = check_page('offset', offset, minimum=0)
        return self._run('list_models',
                         lambda: self.queries.listing(values, limit, offset, order, bool(rows)))

    def iter_models(self, *, order='newest', limit=None, offset=0, page=1000, rows=False,
                    **filters):
        """The models list_models returns, read ``page`` rows at a time: memory stays that of
        one page at any table size. Pages follow each other by their sort key (keyset, never
        OFFSET, which would re-read every row before the page): a row added meanwhile before
        the current position is not returned, and none is returned twice. With
        order='metric' the key is the metric's value when each page is read: a model whose
        metric changes meanwhile may be missed or returned again. ``rows``: as list_models."""
        values = listing_filters(**filters)
        order = check_order(order, values, ORDERS)
        if limit is not None:
            limit = check_page('limit', limit, minimum=1)
        offset = check_page('offset', offset, minimum=0)
        page = check_page('page', page, minimum=1)
        base, after = self.queries.keyset(values, order)
        return pages(self._run, 'list_models', base, after, limit, offset, page,
                     lambda q: self.queries.models(self.database.execute(q), bool(rows)))

    # -- aliases and events (modelstore.registry.aliases, .events) ------------------------------

    def set_alias(self, model_name, alias, version, *, protected=None, force=False):
        """Point ``model_name@alias`` at version ``version`` of that name, creating or moving
        the alias (an event records it); returns the alias (ModelAlias). ``protected``: True
        or False to change its protection (None: as it was; a new alias is not protected). A
        protected alias moves, or is unprotected, only with ``force=True``."""
        return self.aliases.set_alias(model_name, alias, version, protected, force)

    def delete_alias(self, model_name, alias, *, force=False):
        """Remove ``model_name@alias`` (an event records it); NotFound if there is none. A
        protected alias is removed only with ``force=True``."""
        self.aliases.delete_alias(model_name, alias, force)

    def list_aliases(self, model_name):
        """The aliases of ``model_name``, by alias: each with its version and model_id,
        ``protected``, ``updated_at`` (UTC) and ``updated_by``."""
        return self.aliases.list_aliases(model_name)

    def alias_history(self, model_name, alias, *, at=None):
        """Every set, move and removal of ``model_name@alias``, oldest first (RegistryEvent:
        ``seq``, ``at`` (UTC), ``actor``, ``kind``, ``version``, ``before``, ``after``).
        ``at`` (a datetime; naive means UTC, or ISO text): only those up to then -- the last
        one says what served at that time (``after`` None: the alias had been removed)."""
        return self.aliases.history(model_name, alias, at)

    def events(self, after=0, limit=100, *, wait=None):
        """The registry's events numbered after ``after`` (a cursor: 0, or the ``seq`` of the
        last event read), oldest first, at most ``limit``. Polling with the last ``seq``
        never misses an event: events are numbered in the order they committed. ``wait``
        (seconds): when there is none yet, wait for one that long -- on PostgreSQL woken at
        its commit (LISTEN/NOTIFY), elsewhere looking every half second -- then [] if none."""
        return self.events_log.read(self._run, after, limit, wait)

    def on_event(self, hook):
        """Call ``hook(event)`` after each change this store commits that writes an event
        (in this process; other processes' changes are read with events()). A hook that
        raises is logged (logger ``modelstore``) and the call still returns: its change is
        committed."""
        self.events_log.add_hook(hook)

    # -- lineage and archived models (modelstore.registry.lineage) --------------------------

    def lineage(self, model_id):
        """The model and its ancestors, following ``parent_id``: [the model, its parent, ...,
        the first one] (FineTunedModel rows). A parent that no longer exists ends the walk (the
        last row's ``parent_id`` names it); a loop -- only a hand-made ``UPDATE`` makes one --
        raises ValidationError naming it."""
        check_id('model_id', model_id)
        return self._run('lineage', lambda: self.lineage_of.walk(model_id))

    def set_tags(self, model_id, tags, *, remove=()):
        """Add or change the model's tags, {key: value} (text, at most 255 characters), and
        remove the keys ``remove``, in one change; returns all its tags. An event records it."""
        return self.tags.change(model_id, tags=check_tags('tags', tags),
                                remove=check_tags('remove', remove, values=False))

    def delete_tags(self, model_id, keys):
        """Remove these tag keys (NotFound naming any the model lacks: then none goes)."""
        return self.tags.change(model_id, remove=check_tags('keys', keys, values=False))

    def get_tags(self, model_id):
        return self.tags.get(model_id)  # {key: value}

    def model_card(self, model_id):
        """The model's Hugging Face model card (README.md text; modelstore.registry.cards):
        YAML with base_model, datasets, pipeline_tag, tags and a model-index of its metrics.
        ``model_id``: an id or a reference, as get_model takes."""
        model = self.get_model(model_id)
        M = self.FineTunedModel

        def read():
            parent = model.parent_id and M.get_or_none(M.id == model.parent_id)
            return render_card(model, self.tags.of([model.id]).get(model.id, {}), parent)
        return self._run('model_card', read)

    def export_model_card(self, model_id, *, overwrite=False):
        """Write model_card() as README.md into the model's folder, which must be strictly
        inside the models root (as delete_model(files=True) requires; a link is never
        followed). A README.md modelstore did not write is replaced only with
        ``overwrite=True``. Returns the path written."""
        if not isinstance(overwrite, bool):
            raise ValidationError('overwrite', 'must be True or False, got %r' % (overwrite,))
        root = require_root(self.models_root, 'export_model_card')
        model = self.get_model(model_id)
        text = self.model_card(model.id).encode('utf-8')

        def ours(head, there):
            return overwrite or (stat.S_ISREG(there.st_mode) and
                                 card_is_ours(head.decode('utf-8', 'replace')))
        return write_into(root, model.model_path, CARD, text, ours)

    def archive_model(self, model_id):
        """Set the model aside: list_models, count_models and get_latest_model leave it out
        (unless asked), while it keeps its version and still resolves by id and NAME@VERSION.
        Refused while an alias points at it. Returns the model; an event records it."""
        return self.archive.change(model_id, True)

    def restore_model(self, model_id):
        """Undo archive_model; returns the model; an event records it."""
        return self.archive.change(model_id, False)

    # -- tasks (modelstore.registry.tasks) -----------------------------------------------------

    def add_task(self, **fields):
        """Record an autotuning task; returns the stored Task.

        Required: task_name (unique), base_runtime, model_config, parameters,
        optimization_config, benchmark_config; the rest as the Task model declares them
        (``metadata`` is accepted for ``task_metadata``).
        """
        return self.tasks.add_task(**fields)

    def get_task(self, task_id):
        """The task with this id, or NotFound."""
        return self.tasks.get_task(task_id)

    def get_task_by_name(self, task_name):
        """The task with this name, or NotFound."""
        return self.tasks.get_task_by_name(task_name)

    def list_tasks(self, status=None, *, base_runtime=None, name_contains=None, limit=None,
                   offset=0):
        """Tasks in id order, optionally only those with ``status`` (member, NAME or value),
        ``base_runtime`` (exact) or a ``task_name`` containing ``name_contains`` (ignoring
        case); ``limit``/``offset`` page through them."""
        return self.tasks.list_tasks(status, base_runtime=base_runtime,
                                     name_contains=name_contains, limit=limit, offset=offset)

    def count_tasks(self, status=None, *, base_runtime=None, name_contains=None):
        """How many tasks list_tasks would return for these filters (without a page)."""
        return self.tasks.count_tasks(status, base_runtime=base_runtime,
                                      name_contains=name_contains)

    def update_task(self, task_id, **fields):
        """Change the given fields of a task; returns the updated Task."""
        return self.tasks.update_task(task_id, **fields)

    def iter_tasks(self, status=None, *, base_runtime=None, name_contains=None, limit=None,
                   offset=0, page=1000):
        """The tasks list_tasks returns, read ``page`` rows at a time (keyset on id)."""
        if limit is not None:
            limit = check_page('limit', limit, minimum=1)
        offset = check_page('offset', offset, minimum=0)
        page = check_page('page', page, minimum=1)
        T = self.Task
        base = self.tasks.query(status, base_runtime, name_contains).order_by(T.id)
        return pages(self._run, 'list_tasks', base, lambda last: T.id > last, limit, offset,
                     page, list)

    def count_models(self, **filters):
        """How many models list_models would return for these filters (without a page)."""
        values = listing_filters(**filters)
        return self._run('count_models', lambda: self.queries.count(values))

    def delete_model(self, model_id, files=False):
        """Delete the model's row; NotFound if there is none. With ``files=True`` its
        directory (``model_path``) goes too -- only a directory strictly inside the models
        root: anything else raises ValidationError and deletes nothing, row included. Crash-safe
        (see modelstore.registry.modelfiles); returns the directory removed, or None."""
        return self.deletes.delete_model(model_id, files)

    def empty_trash(self, dry_run=False):
        """Finish the deletes with files that a crash interrupted (modelstore doctor
        --empty-trash): a model still stored gets its files back, a deleted one's are removed.
        Returns [(action, token, detail)]; ``dry_run`` only says what it would do."""
        return self.deletes.empty_trash(dry_run)
