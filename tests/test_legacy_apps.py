"""After adoption, the legacy apps keep working on the same file, beside modelstore.

The autotuner is modelled here with SQLAlchemy from its DDL (``Enum`` stored as member names,
``JSON`` columns, ``DateTime``), and ModelForge by its own SQL statements.
"""
import datetime
import enum
import sqlite3
from typing import Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (JSON, DateTime, Enum, Float, ForeignKey, Integer, String, create_engine,
                        select)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import modelstore
from modelstore import TaskStatus

import legacy
from conftest import SHIPPED, history

pytestmark = pytest.mark.sqlite_only  # The legacy apps use SQLite files.


class AutotunerStatus(str, enum.Enum):
    """The autotuner's own enum: SQLAlchemy stores the NAME, its API shows the value."""
    PENDING = 'pending'
    RUNNING = 'running'
    COMPLETED = 'completed'
    FAILED = 'failed'
    CANCELLED = 'cancelled'


class Base(DeclarativeBase):
    pass


class AutotunerTask(Base):
    __tablename__ = 'tasks'
    id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    task_name: Mapped[str] = mapped_column(String, unique=True, index=True, nullable=False)
    description = mapped_column(String)
    status = mapped_column(Enum(AutotunerStatus), default=AutotunerStatus.PENDING, index=True)
    model_config = mapped_column(JSON, nullable=False)
    base_runtime = mapped_column(String, nullable=False)
    runtime_image_tag = mapped_column(String)
    parameters = mapped_column(JSON, nullable=False)
    optimization_config = mapped_column(JSON, nullable=False)
    benchmark_config = mapped_column(JSON, nullable=False)
    slo_config = mapped_column(JSON, nullable=True)
    quant_config = mapped_column(JSON, nullable=True)
    parallel_config = mapped_column(JSON, nullable=True)
    clusterbasemodel_config = mapped_column(JSON, nullable=True)
    clusterservingruntime_config = mapped_column(JSON, nullable=True)
    created_clusterbasemodel = mapped_column(String, nullable=True)
    created_clusterservingruntime = mapped_column(String, nullable=True)
    deployment_mode = mapped_column(String, default='docker')
    task_metadata = mapped_column('metadata', JSON, nullable=True)
    total_experiments = mapped_column(Integer, default=0)
    successful_experiments = mapped_column(Integer, default=0)
    best_experiment_id = mapped_column(Integer, ForeignKey('experiments.id'), nullable=True)
    created_at = mapped_column(DateTime, default=datetime.datetime.utcnow)
    started_at = mapped_column(DateTime, nullable=True)
    completed_at = mapped_column(DateTime, nullable=True)
    elapsed_time = mapped_column(Float, nullable=True)


class AutotunerExperiment(Base):
    __tablename__ = 'experiments'
    id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    task_id = mapped_column(Integer, ForeignKey('tasks.id'), nullable=False, index=True)
    experiment_id = mapped_column(Integer, nullable=False)
    parameters = mapped_column(JSON, nullable=False)
    status = mapped_column(String(12))
    error_message = mapped_column(String)
    metrics = mapped_column(JSON)
    objective_score = mapped_column(Float, index=True)


class TaskResponse(BaseModel):
    """The autotuner API's response schema for a task (GET /api/tasks/{id}), as the app declares
    it: deployment_mode is a str and the counters ints, so a NULL there fails validation."""
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())
    id: int
    task_name: str
    description: Optional[str] = None
    status: AutotunerStatus
    # `model_config` is pydantic's own name: the app reads the column through an alias.
    config: dict = Field(validation_alias='model_config')
    base_runtime: str
    runtime_image_tag: Optional[str] = None
    parameters: dict
    optimization_config: dict
    benchmark_config: dict
    slo_config: Optional[dict] = None
    quant_config: Optional[dict] = None
    parallel_config: Optional[dict] = None
    clusterbasemodel_config: Optional[dict] = None
    clusterservingruntime_config: Optional[dict] = None
    created_clusterbasemodel: Optional[str] = None
    created_clusterservingruntime: Optional[str] = None
    deployment_mode: str
    total_experiments: int
    successful_experiments: int
    best_experiment_id: Optional[int] = None
    created_at: datetime.datetime
    started_at: Optional[datetime.datetime] = None
    completed_at: Optional[datetime.datetime] = None
    elapsed_time: Optional[float] = None


@pytest.fixture
def autotuner_file(tmp_path, cli):
    """An autotuner file from 2025-11-18, adopted by modelstore."""
    path = legacy.build(str(tmp_path / 'autotuner.db'), legacy.autotuner_2025_11_18)
    code, _, err = cli('migrate', '--database', path)
    assert code == 0, err
    return path


def _engine(path):
    return create_engine('sqlite:///' + path)


def test_the_autotuner_loads_every_legacy_task_after_adoption(autotuner_file):
    engine = _engine(autotuner_file)
    with Session(engine) as session:
        tasks = session.scalars(select(AutotunerTask).order_by(AutotunerTask.id)).all()
        assert [t.id for t in tasks] == [1, 2, 3, 4, 5, 6, 7]
        assert tasks[0].status is AutotunerStatus.COMPLETED
        assert tasks[0].created_at == datetime.datetime(2025, 10, 24, 9, 12, 33, 123456)
        assert tasks[3].slo_config == {'ttft': 0.5, 'tpot': 0.05, 'steepness': 0.1}
        assert tasks[6].clusterbasemodel_config is None
        assert len(session.scalars(select(AutotunerExperiment)).all()) == len(
            legacy.EXPERIMENT_ROWS)
    engine.dispose()


def test_the_autotuner_loads_tasks_modelstore_wrote(autotuner_file):
    cluster = {'preset': 'llama-3-2-1b-instruct', 'overrides': {'storage': {'path': '/raid'}}}
    started = datetime.datetime(2026, 1, 2, 3, 4, 5, 600000)
    with modelstore.connect(autotuner_file) as store:
        ours = store.add_task(
            task_name='from-modelstore', base_runtime='sglang', description='déjà vu',
            model_config={'model_name': 'llama-3-2-1b-instruct', 'namespace': 'ns'},
            parameters={'tp-size': [1, 2]}, optimization_config={'strategy': 'grid_search'},
            benchmark_config={'num_concurrency': [1, 8]}, status=TaskStatus.RUNNING,
            slo_config={'ttft': 1.0}, clusterbasemodel_config=cluster,
            created_clusterbasemodel='llama-3-2-1b-instruct', deployment_mode='ome',
            metadata={'checkpoint': None}, started_at=started)
        bare = store.add_task(task_name='bare', base_runtime='vllm', model_config={},
                              parameters={}, optimization_config={}, benchmark_config={})
    engine = _engine(autotuner_file)
    with Session(engine) as session:
        theirs = session.get(AutotunerTask, ours.id)
        assert theirs.task_name == 'from-modelstore'
        assert theirs.status is AutotunerStatus.RUNNING
        assert theirs.model_config == {'model_name': 'llama-3-2-1b-instruct', 'namespace': 'ns'}
        assert theirs.parameters == {'tp-size': [1, 2]}
        assert theirs.clusterbasemodel_config == cluster
        assert theirs.created_clusterbasemodel == 'llama-3-2-1b-instruct'
        assert theirs.clusterservingruntime_config is None
        assert theirs.task_metadata == {'checkpoint': None}
        assert theirs.started_at == started
        assert theirs.created_at == ours.created_at  # Naive UTC on both sides.
        assert theirs.description == 'déjà vu'
        plain = session.get(AutotunerTask, bare.id)
        assert plain.status is AutotunerStatus.PENDING
        assert (plain.slo_config, plain.clusterbasemodel_config,
                plain.created_clusterservingruntime) == (None, None, None)
        # Its own status filter finds our row.
        names = session.scalars(select(AutotunerTask.task_name).where(
            AutotunerTask.status == AutotunerStatus.RUNNING)).all()
        assert 'from-modelstore' in names
    engine.dispose()


def test_modelstore_loads_tasks_the_autotuner_writes(autotuner_file):
    engine = _engine(autotuner_file)
    custom = {'name': 'my-runtime', 'spec': {
        'supportedModelFormats': [{'name': 'safetensors'}], 'protocolVersions': ['openAI'],
        'engineConfig': {'runner': {'name': 'r', 'image': 'vllm:latest', 'resources': {}}}}}
    with Session(engine) as session:
        task = AutotunerTask(task_name='from-sqlalchemy', base_runtime='vllm',
                             model_config={'model_name': 'mistral-7b-instruct'},
                             parameters={'max-num-seqs': [64]},
                             optimization_config={'strategy': 'random'},
                             benchmark_config={}, status=AutotunerStatus.FAILED,
                             clusterservingruntime_config=custom,
                             created_clusterservingruntime='my-runtime',
                             task_metadata={'error': 'boom'}, elapsed_time=1.5)
        session.add(task)
        session.commit()
        task_id, created = task.id, task.created_at
    engine.dispose()
    with modelstore.connect(autotuner_file) as store:
        ours = store.get_task(task_id)
        assert ours.task_name == 'from-sqlalchemy'
        assert ours.status is TaskStatus.FAILED
        assert ours.model_config == {'model_name': 'mistral-7b-instruct'}
        assert ours.clusterservingruntime_config == custom
        assert ours.clusterbasemodel_config is None
        assert ours.task_metadata == {'error': 'boom'}
        assert ours.deployment_mode == 'docker'
        assert ours.created_at == created
        assert ours.elapsed_time == 1.5
        assert task_id in [t.id for t in store.list_tasks(status='failed')]
        # And update it the way the autotuner would see it.
        store.update_task(task_id, status='completed', successful_experiments=1)
    engine = _engine(autotuner_file)
    with Session(engine) as session:
        assert session.get(AutotunerTask, task_id).status is AutotunerStatus.COMPLETED
    engine.dispose()


def test_a_task_with_only_the_required_fields_is_one_the_autotuners_api_serves(autotuner_file):
    before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    with modelstore.connect(autotuner_file) as store:
        bare = store.add_task(task_name='minimal', base_runtime='sglang', model_config={},
                              parameters={}, optimization_config={}, benchmark_config={})
        again = store.get_task(bare.id)
    after = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    for task in (bare, again):
        assert (task.deployment_mode, task.total_experiments, task.successful_experiments,
                task.status) == ('docker', 0, 0, TaskStatus.PENDING)
        assert before <= task.created_at <= after  # The UTC time of the call.
    engine = _engine(autotuner_file)
    with Session(engine) as session:
        response = TaskResponse.model_validate(session.get(AutotunerTask, bare.id))
        assert (response.deployment_mode, response.total_experiments,
                response.successful_experiments, response.status) == (
            'docker', 0, 0, AutotunerStatus.PENDING)
        assert before <= response.created_at <= after
        assert response.config == {}
    engine.dispose()


def test_the_counters_and_deployment_mode_cannot_be_cleared(autotuner_file):
    with modelstore.connect(autotuner_file) as store:
        task = store.add_task(task_name='t', base_runtime='sglang', model_config={},
                              parameters={}, optimization_config={}, benchmark_config={},
                              deployment_mode=None, total_experiments=None)
        assert (task.deployment_mode, task.total_experiments) == ('docker', 0)
        for name in ('deployment_mode', 'total_experiments', 'successful_experiments',
                     'created_at'):
            with pytest.raises(modelstore.ValidationError, match=name):
                store.update_task(task.id, **{name: None})
        assert store.get_task(task.id).deployment_mode == 'docker'


def test_a_json_column_the_autotuner_stored_as_null_text_reads_as_none(autotuner_file):
    engine = _engine(autotuner_file)
    with Session(engine) as session:
        task = AutotunerTask(task_name='nulls', base_runtime='vllm', model_config={},
                             parameters={}, optimization_config={}, benchmark_config={},
                             slo_config=None, quant_config=None, task_metadata=None)
        session.add(task)
        session.commit()
        task_id = task.id
    engine.dispose()
    conn = sqlite3.connect(autotuner_file)
    stored = conn.execute('SELECT slo_config, quant_config, metadata FROM tasks WHERE id = ?',
                          (task_id,)).fetchone()
    conn.close()
    assert stored == ('null', 'null', 'null')  # SQLAlchemy's JSON None.
    with modelstore.connect(autotuner_file) as store:
        ours = store.get_task(task_id)
        assert (ours.slo_config, ours.quant_config, ours.task_metadata) == (None, None, None)
        assert [t for t in store.list_tasks() if t.id == task_id][0].slo_config is None


# -- ModelForge ---------------------------------------------------------------------------------

MODELFORGE_SELECT = 'SELECT * FROM fine_tuned_models ORDER BY creation_date DESC'


def test_modelforge_orders_its_rows_and_ours_together(tmp_path, cli):
    path = legacy.build(str(tmp_path / 'modelforge.sqlite'), legacy.modelforge_v11_altered)
    assert cli('migrate', '--database', path)[0] == 0
    with modelstore.connect(path) as store:
        # Between legacy rows, on an exact second (isoformat() would drop the fraction), and now.
        store.add_model(model_name='mid', base_model='b', task='summarization',
                        model_path='/m/mid',
                        creation_date=datetime.datetime(2025, 10, 30, 14, 3, 11, 600000))
        store.add_model(model_name='exact', base_model='b', task='summarization',
                        model_path='/m/exact',
                        creation_date=datetime.datetime(2025, 10, 30, 9, 0, 0))
        store.add_model(model_name='now', base_model='b', task='text-generation',
                        model_path='/m/now', is_custom_base_model=True)
        ours = [(m.model_name, m.creation_date) for m in store.list_models()]
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(MODELFORGE_SELECT).fetchall()
    finally:
        conn.close()
    names = [r[1] for r in rows]
    moments = [datetime.datetime.fromisoformat(r[5]) for r in rows]
    assert moments == sorted(moments, reverse=True)
    assert names[0] == 'now'
    assert names.index('mid') == names.index('llama-sum') - 1
    # The same instant written with and without a fraction sorts side by side.
    assert abs(names.index('exact') - names.index('qa-bert')) == 1
    # Every value is a 'T' timestamp, as ModelForge writes them.
    assert all('T' in r[5] and ' ' not in r[5] for r in rows)
    # modelstore lists newest first in exactly the same order.
    assert [n for n, _ in ours] == names


def test_modelforge_keeps_writing_after_adoption_and_we_read_its_rows(tmp_path, cli):
    path = legacy.build(str(tmp_path / 'modelforge.sqlite'), legacy.modelforge_v10)
    assert cli('migrate', '--database', path)[0] == 0
    conn = sqlite3.connect(path)
    # A v1.0 app still running names six columns; a v1.1 app names the flag.
    conn.execute('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
                 'creation_date, model_path) VALUES (?,?,?,?,?,?)',
                 ('old-app', 'gpt2', 'text-generation', '', '2025-12-01T10:00:00.000001', '/p1'))
    conn.execute('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
                 'creation_date, model_path, is_custom_base_model) VALUES (?,?,?,?,?,?,?)',
                 ('new-app', '/bases/x', 'summarization', 'x (Custom Model)',
                  '2025-12-02T10:00:00', '/p2', True))
    conn.commit()
    # Its probe for the column succeeds, so it does not try to add it again.
    conn.execute('SELECT is_custom_base_model FROM fine_tuned_models LIMIT 1').fetchall()
    conn.close()
    with modelstore.connect(path) as store:
        models = {m.model_name: m for m in store.list_models()}
    assert models['old-app'].is_custom_base_model is False
    assert models['new-app'].is_custom_base_model is True
    assert models['new-app'].creation_date == datetime.datetime(2025, 12, 2, 10, 0, 0)
    assert list(models)[:2] == ['new-app', 'old-app']


# -- both apps beside the registry's features (issue 29) ----------------------------------------

MODELFORGE_INSERT = ('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
                     'creation_date, model_path, is_custom_base_model) VALUES (?,?,?,?,?,?,?)')
MODELFORGE_COLUMNS = ('id', 'model_name', 'base_model', 'task', 'description', 'creation_date',
                      'model_path', 'is_custom_base_model')


def test_both_apps_keep_working_beside_aliases_tags_archive_and_lineage(tmp_path, cli):
    """A file both apps wrote, migrated to head (0013-0016: aliases and events, lineage and
    archive, tags), with those features in use: ModelForge's SELECTs and INSERT and the
    autotuner's SQLAlchemy model still work, and modelstore sees the rows they write."""
    path = legacy.build(str(tmp_path / 'both.db'), *legacy.STATES['both-apps-current'][0])
    assert cli('migrate', '--database', path)[0] == 0
    assert [r['name'] for r in history(path)] == SHIPPED
    assert {'0013_aliases_and_events', '0014_lineage_and_archive',
            '0015_lineage_and_archive_indexes', '0016_model_tags'} <= set(SHIPPED)
    conn = sqlite3.connect(path)
    before = conn.execute(MODELFORGE_SELECT).fetchall()
    conn.close()
    with modelstore.connect(path) as store:
        base = store.get_model_version('llama-sum', 1)  # A row ModelForge wrote.
        child = store.add_model(model_name='llama-sum', base_model=base.base_model,
                                task=base.task, model_path='/m/llama-sum-2', parent_id=base.id,
                                creation_date=datetime.datetime(2025, 12, 1, 9, 0, 0, 250000))
        assert child.version == 2
        store.set_alias('llama-sum', 'champion', 2)
        assert store.set_tags(child.id, {'stage': 'prod'}) == {'stage': 'prod'}
        store.set_tags(base.id, {'stage': 'retired'})
        archived = store.archive_model(store.get_model_version('qa-bert', 1).id)
        assert archived.archived_at is not None

    # ModelForge: its listing and column probe, then its v1.1 INSERT of another version.
    conn = sqlite3.connect(path)
    rows = conn.execute(MODELFORGE_SELECT).fetchall()
    # It reads rows by position: its eight columns come first, as they were.
    cursor = conn.execute(MODELFORGE_SELECT)
    assert tuple(d[0] for d in cursor.description[:8]) == MODELFORGE_COLUMNS
    cursor.fetchall()
    assert [r[:8] for r in rows if r[0] != child.id] == [r[:8] for r in before]
    # It knows nothing of archiving: the archived row is still in its list, and ours is too.
    assert {r[1] for r in rows} == {r[1] for r in before}
    assert child.id in [r[0] for r in rows]
    assert [r[5] for r in rows] == sorted((r[5] for r in rows), reverse=True)
    conn.execute('SELECT is_custom_base_model FROM fine_tuned_models LIMIT 1').fetchall()
    forge_id = conn.execute(MODELFORGE_INSERT, (
        'llama-sum', 'meta-llama/Llama-3.2-1B', 'summarization',
        'Retrained on new tickets (Recommended Model)', '2025-12-02T10:00:00.123456',
        '/home/u/.local/share/ModelForge/models/llama-sum_5d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6',
        False)).lastrowid
    conn.commit()
    assert forge_id in [r[0] for r in conn.execute(MODELFORGE_SELECT).fetchall()]
    conn.close()

    # The autotuner: its load of every task, then a new task through its ORM.
    engine = _engine(path)
    with Session(engine) as session:
        assert [t.id for t in session.scalars(select(AutotunerTask).order_by(
            AutotunerTask.id)).all()] == [1, 2, 3, 4, 5, 6, 7]
        task = AutotunerTask(task_name='tune-llama-sum', base_runtime='sglang',
                             model_config={'model_name': 'llama-sum'}, parameters={},
                             optimization_config={'strategy': 'grid_search'},
                             benchmark_config={})
        session.add(task)
        session.commit()
        task_id = task.id
    engine.dispose()

    with modelstore.connect(path) as store:
        forge = store.get_model(forge_id)
        # Their row is the name's next version, outside the registry's features...
        assert (forge.model_name, forge.version, forge.parent_id, forge.archived_at) == (
            'llama-sum', 3, None, None)
        assert store.get_tags(forge_id) == {}
        assert store.get_latest_model('llama-sum').id == forge_id
        assert [m.id for m in store.list_models(model_name='llama-sum')] == [
            forge_id, child.id, base.id]
        # ... which it left as they were.
        assert store.get_model('llama-sum@champion').id == child.id
        assert [m.id for m in store.lineage(child.id)] == [child.id, base.id]
        assert [m.id for m in store.list_models(tags={'stage': 'prod'})] == [child.id]
        assert store.get_tags(base.id) == {'stage': 'retired'}
        assert 'qa-bert' not in [m.model_name for m in store.list_models()]
        assert [m.model_name for m in store.list_models(archived=True)] == ['qa-bert']
        task = store.get_task(task_id)
        assert (task.task_name, task.status, task.model_config) == (
            'tune-llama-sum', TaskStatus.PENDING, {'model_name': 'llama-sum'})
