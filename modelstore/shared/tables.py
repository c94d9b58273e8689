"""The two registry tables, as the shipped migrations leave them at head.

The classes here are unbound (no database): every ``ModelStore`` binds its own subclasses with
``bind_models()``, so two stores in one process never share state, and nothing mutates these
classes' ``_meta`` at run time.
"""
import copy
import datetime
import enum

from peewee import (AutoField, BigIntegerField, BooleanField, CharField, DoubleField,
                    FieldAccessor, IntegerField, Model, SQL, TextField)

from ..fields import (AutoIncrementField, EnumNameField, IsoTimestampField,
                      IsoTimestampKeyField, KeyTextField, StrictJSONField, UtcDateTimeField)

__all__ = ['FineTunedModel', 'ModelAlias', 'ModelTag', 'ModelVersionCounter', 'RegistryEvent',
           'RegistryEventCounter', 'Task', 'TaskStatus', 'MODELS', 'VERSION_TRIGGERS',
           'bind_models']


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class TaskStatus(str, enum.Enum):
    """Task states; the database stores the NAME, the autotuner's API shows the value."""
    PENDING = 'pending'
    RUNNING = 'running'
    COMPLETED = 'completed'
    FAILED = 'failed'
    CANCELLED = 'cancelled'


class FineTunedModel(Model):
    """One fine-tuned model (ModelForge's ``fine_tuned_models``)."""
    id = AutoIncrementField()
    # (Key text: VARCHAR on MySQL, where TEXT cannot be indexed -- see 0001.)
    model_name = KeyTextField()
    base_model = KeyTextField()
    task = KeyTextField()
    description = TextField(null=True)
    creation_date = IsoTimestampKeyField(max_length=64)
    model_path = TextField()
    # The DEFAULT lives in the DDL so legacy writers that omit the column still insert rows.
    is_custom_base_model = BooleanField(default=False, constraints=[SQL('DEFAULT FALSE')])
    # 0006_training_metadata: what the training run reports, all optional.
    training_seconds = DoubleField(null=True)
    peak_vram_bytes = BigIntegerField(null=True)
    dataset_rows = BigIntegerField(null=True)
    dataset_bytes = BigIntegerField(null=True)
    metrics = StrictJSONField(null=True)  # name -> number or list of numbers (a loss curve)
    hyperparameters = StrictJSONField(null=True)
    strategy = CharField(null=True)  # e.g. 'sft'
    provider = CharField(null=True)  # e.g. 'huggingface'
    updated_at = IsoTimestampField(null=True)  # local time, as creation_date
    # 0008_model_versions: 1, 2, 3... per model_name, in creation order. The database numbers
    # every inserted row (0010's triggers), whoever writes it; NULL only for a legacy row that
    # 0010 has not numbered yet.
    version = IntegerField(null=True)
    # 0014_lineage_and_archive (issue 29), all optional: where the model came from -- the
    # registry model it was fine-tuned from, its data, its code, its run -- and when it was
    # archived (NULL: it is not; archive_model and restore_model set it).
    parent_id = BigIntegerField(null=True, index=True)
    dataset_uri = TextField(null=True)
    dataset_sha256 = CharField(max_length=64, null=True)
    source_commit = CharField(null=True)
    run_id = CharField(null=True)
    archived_at = UtcDateTimeField(null=True)  # UTC

    class Meta:
        table_name = 'fine_tuned_models'
        # 0005_index_model_listing: list_models(task, is_custom_base_model, name_prefix).
        # 0007_search_indexes: newest/oldest first, a creation window; by base model.
        indexes = ((('task', 'is_custom_base_model', 'creation_date', 'model_name'), False),
                   (('creation_date', 'id'), False),
                   (('base_model', 'creation_date', 'id'), False))

    def __repr__(self):
        return '<FineTunedModel %s %r v%s>' % (self.id, self.model_name, self.version)


# 0009_model_version_index: unique per name. Partial (numbered rows only), so that building it
# on a legacy table, where every row is still unnumbered, writes nothing: 0010 fills it batch by
# batch instead of one long build holding SQLite's write lock.
FineTunedModel.add_index(FineTunedModel.index(
    FineTunedModel.model_name, FineTunedModel.version, unique=True,
    where=FineTunedModel.version.is_null(False), name='fine_tuned_models_model_name_version'))
# 0017_archived_index: the archived models only (partial; plain on MySQL, which has no partial
# indexes), so that count_models() is the table's count less theirs.
FineTunedModel.add_index(FineTunedModel.index(
    FineTunedModel.archived_at, where=FineTunedModel.archived_at.is_null(False),
    name='fine_tuned_models_archived_at'))


class ModelVersionCounter(Model):
    """The last version given to each model_name (0008). Versions come from here, not from
    MAX(version): a deleted or renamed model's number is never given again. Kept by the
    database's own triggers (0010), so legacy apps' INSERTs are numbered too; modelstore's
    code never writes it."""
    model_name = KeyTextField(primary_key=True)
    last_version = IntegerField()

    class Meta:
        table_name = 'model_version_counters'


class ModelImport(Model):
    """Each row ``modelstore import`` copied into fine_tuned_models (0011): the source (e.g.
    ``'modelforge'``, ModelForge v2's ``models`` table) and its key there, so that an import
    run again copies nothing twice -- not even a model deleted since."""
    id = AutoField()
    source = CharField(max_length=64)
    source_id = CharField()
    model_id = IntegerField()  # The fine_tuned_models row it became (it may be deleted since).
    imported_at = IsoTimestampField()

    class Meta:
        table_name = 'model_imports'
        indexes = ((('source', 'source_id'), True),)


class Task(Model):
    """One autotuning task (the inference-autotuner's ``tasks``)."""
    id = AutoField()
    task_name = CharField(unique=True)
    description = TextField(null=True)
    status = EnumNameField(TaskStatus, max_length=9, null=True, index=True,
                           default=TaskStatus.PENDING)
    model_config = StrictJSONField()
    base_runtime = CharField()
    runtime_image_tag = CharField(null=True)
    parameters = StrictJSONField()
    optimization_config = StrictJSONField()
    benchmark_config = StrictJSONField()
    slo_config = StrictJSONField(null=True)
    quant_config = StrictJSONField(null=True)
    parallel_config = StrictJSONField(null=True)
    clusterbasemodel_config = StrictJSONField(null=True)
    clusterservingruntime_config = StrictJSONField(null=True)
    created_clusterbasemodel = CharField(null=True)
    created_clusterservingruntime = CharField(null=True)
    # The autotuner's Python-side defaults (not in the DDL: its own rows carry them).
    deployment_mode = CharField(null=True, default='docker')
    # "metadata" clashes with SQLAlchemy's declarative attribute and reads ambiguously next to
    # peewee's _meta, so Python code calls it task_metadata; the column keeps its name.
    task_metadata = StrictJSONField(null=True, column_name='metadata')
    total_experiments = IntegerField(null=True, default=0)
    successful_experiments = IntegerField(null=True, default=0)
    best_experiment_id = IntegerField(null=True)
    created_at = UtcDateTimeField(null=True, default=_utc_now)
    started_at = UtcDateTimeField(null=True)
    completed_at = UtcDateTimeField(null=True)
    elapsed_time = DoubleField(null=True)

    class Meta:
        table_name = 'tasks'
        # The autotuner's redundant ix_tasks_id; declared so drift sees it as expected.
        indexes = ((('id',), False),)

    def __repr__(self):
        return '<Task %s %r>' % (self.id, self.task_name)


class RegistryEvent(Model):
    """One change to the registry (0013), appended and never changed: an alias set, moved or
    removed, a model deleted. ``seq`` numbers the events in the order they committed (taken
    from RegistryEventCounter's row, locked until the commit), so a reader that follows
    ``seq`` never passes over an event still being written (modelstore.registry.events)."""
    seq = BigIntegerField(primary_key=True)
    at = UtcDateTimeField()  # UTC
    actor = CharField()  # connect(actor=...), default user@host
    kind = CharField(max_length=32)  # e.g. 'alias.moved'
    model_name = KeyTextField(null=True)
    model_id = IntegerField(null=True)
    version = IntegerField(null=True)
    alias = CharField(null=True)
    before = StrictJSONField(null=True)  # the state before, as a JSON object
    after = StrictJSONField(null=True)

    class Meta:
        table_name = 'registry_events'
        # alias_history(name, alias): one alias's moves in order.
        indexes = ((('model_name', 'alias', 'seq'), False),)


class RegistryEventCounter(Model):
    """One row (id 1, written by the first event): the last event's ``seq``. An event's writer updates it
    first, which holds its row lock until the commit: events get their numbers in commit
    order."""
    id = IntegerField(primary_key=True)
    last_seq = BigIntegerField()

    class Meta:
        table_name = 'registry_event_counter'


class ModelAlias(Model):
    """A name for one version of a model name (0013): ``NAME@ALIAS``, e.g. ``chat@champion``.
    ``model_id`` is the fine_tuned_models row; a model an alias points at is not deleted."""
    id = AutoField()
    model_name = KeyTextField()
    alias = CharField()
    model_id = IntegerField()
    version = IntegerField()
    protected = BooleanField(default=False, constraints=[SQL('DEFAULT FALSE')])
    updated_at = UtcDateTimeField()  # UTC
    updated_by = CharField()

    class Meta:
        table_name = 'model_aliases'
        indexes = ((('model_name', 'alias'), True), (('model_id',), False))


class ModelTag(Model):
    """A key/value tag of one model version (0016). ``list_models(tags={...})`` walks the
    (key, value, creation_date, model_id) index: ``creation_date`` is the model's own, copied
    (set_tags, update_model), so that index is in the listing's order -- a page of the newest
    models carrying a tag reads about a page of rows."""
    id = AutoField()
    model_id = BigIntegerField()
    key = CharField()
    value = CharField()
    creation_date = IsoTimestampKeyField(max_length=64, null=True)  # as fine_tuned_models'

    class Meta:
        table_name = 'model_tags'
        indexes = ((('model_id', 'key'), True),
                   (('key', 'value', 'creation_date', 'model_id'), False))


MODELS = (FineTunedModel, Task, ModelVersionCounter, ModelImport, RegistryEvent,
          RegistryEventCounter, ModelAlias, ModelTag)

# The triggers 0010 installs on fine_tuned_models to number every inserted row (check reports
# them missing: a table rebuilt by hand, or by a script that copies the table, loses them).
VERSION_TRIGGERS = {
    'sqlite': ('fine_tuned_models_version_new', 'fine_tuned_models_version_given',
               'fine_tuned_models_version_renamed', 'fine_tuned_models_version_set'),
    'postgresql': ('fine_tuned_models_version',),
    'mysql': ('fine_tuned_models_version_insert', 'fine_tuned_models_version_update'),
}


def bind_models(database):
    """Return subclasses of MODELS bound to ``database``, keyed by class name.

    Each subclass is given a shallow copy of each of its model's fields: left to peewee, a
    subclass deep-copies every field it inherits (its constraints, default, choices...), which
    with the registry's 8 models took 2.5 ms of ``connect()``'s 9 (1.2 ms now). A copy shares with
    the field it copies only what nothing changes once a class is made; the classes are the
    same as peewee's inheritance makes them (tests/test_models.py)."""
    bound = {}
    for model in MODELS:
        attrs = {name: copy.copy(value.field) for name, value in vars(model).items()
                 if isinstance(value, FieldAccessor) and not value.field.primary_key}
        attrs['Meta'] = type('Meta', (), {'database': database,
                                          'table_name': model._meta.table_name})
        attrs['__module__'] = model.__module__
        bound[model.__name__] = type(model.__name__, (model,), attrs)
    return bound
