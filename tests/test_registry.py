"""The registry API a pipeline calls: round trips, ordering, validation, threads."""
import datetime
import sqlite3
import threading

import pytest

import modelstore
from modelstore import NotFound, TaskStatus, ValidationError

from conftest import dump, execute, query

MODEL = dict(model_name='llama-ft', base_model='meta-llama/Llama-3.2-1B', task='text-generation',
             model_path='/models/llama-ft_1', description='Fine-tuned (Custom Model)',
             is_custom_base_model=True)
TASK = dict(task_name='tune-1', base_runtime='sglang', model_config={'id': 'llama'},
            parameters={'tp-size': [1, 2]}, optimization_config={'objective': 'latency'},
            benchmark_config={'num_concurrency': [1, 4]})


@pytest.fixture
def store(db_url):
    with modelstore.connect(db_url) as s:
        yield s


def test_add_and_get_a_model(store):
    added = store.add_model(**MODEL)
    got = store.get_model(added.id)
    for key, value in MODEL.items():
        assert getattr(got, key) == value
    assert isinstance(got.creation_date, datetime.datetime)


def test_models_are_listed_newest_first_beside_legacy_rows(store, db_url):
    store.add_model(**dict(MODEL, model_name='new',
                           creation_date=datetime.datetime(2025, 11, 2, 9, 0, 0)))
    insert = ('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
              "creation_date, model_path, is_custom_base_model) VALUES ('%s', 'b', "
              "'summarization', '', '%s', '/m', %s)")
    execute(db_url, insert % ('older', '2025-10-30T14:03:11.512345', 'FALSE'),
            insert % ('newest', '2025-11-05T08:00:00', 'TRUE'))
    names = [m.model_name for m in store.list_models()]
    assert names == ['newest', 'new', 'older']
    legacy_order = [r[0] for r in query(
        db_url, 'SELECT model_name FROM fine_tuned_models ORDER BY creation_date DESC')]
    assert legacy_order == names  # ModelForge's own query agrees.
    stored = query(db_url, "SELECT creation_date FROM fine_tuned_models WHERE model_name='new'")
    assert stored == [('2025-11-02T09:00:00.000000',)]


def test_delete_model_removes_the_row_only(store, tmp_path):
    folder = tmp_path / 'model-folder'
    folder.mkdir()
    model = store.add_model(**dict(MODEL, model_path=str(folder)))
    store.delete_model(model.id)
    assert folder.is_dir()
    with pytest.raises(NotFound):
        store.get_model(model.id)
    with pytest.raises(NotFound):
        store.delete_model(model.id)


def test_task_round_trip_in_the_autotuners_formats(store, db_path):
    task = store.add_task(**TASK, metadata={'owner': 'perf'},
                          clusterbasemodel_config={'preset': 'llama-3-2-1b-instruct'})
    assert task.status is TaskStatus.PENDING
    row = sqlite3.connect(db_path).execute(
        'SELECT status, metadata, clusterbasemodel_config, created_at, '
        'clusterservingruntime_config FROM tasks').fetchone()
    assert row[0] == 'PENDING'
    assert row[1] == '{"owner":"perf"}'
    assert row[2] == '{"preset":"llama-3-2-1b-instruct"}'
    datetime.datetime.strptime(row[3], '%Y-%m-%d %H:%M:%S.%f')
    assert row[4] is None
    got = store.get_task_by_name('tune-1')
    assert got.task_metadata == {'owner': 'perf'} and got.parameters == TASK['parameters']


def test_update_task_and_filter_by_status(store):
    a = store.add_task(**TASK)
    store.add_task(**dict(TASK, task_name='tune-2'))
    done = datetime.datetime(2025, 11, 18, 12, 0, 0)
    updated = store.update_task(a.id, status='completed', completed_at=done, elapsed_time=12.5,
                                successful_experiments=3)
    assert updated.status is TaskStatus.COMPLETED and updated.completed_at == done
    assert [t.task_name for t in store.list_tasks(status=TaskStatus.COMPLETED)] == ['tune-1']
    assert [t.task_name for t in store.list_tasks('PENDING')] == ['tune-2']
    assert [t.task_name for t in store.list_tasks()] == ['tune-1', 'tune-2']


def test_custom_cluster_specs_are_accepted(store):
    task = store.add_task(**TASK, clusterbasemodel_config={
        'name': 'my-model', 'spec': {'displayName': 'M', 'vendor': 'me', 'version': '1',
                                     'storage': {'storageUri': 'hf://x/y', 'path': '/m'}}},
        clusterservingruntime_config={'name': 'rt', 'spec': {
            'supportedModelFormats': [], 'protocolVersions': ['openAI'],
            'engineConfig': {'runner': {'name': 'r', 'image': 'img', 'resources': {}}}}},
        created_clusterbasemodel='my-model')
    assert store.get_task(task.id).created_clusterbasemodel == 'my-model'


BAD_MODELS = [
    ({'model_name': None}, 'model_name: is required'),
    ({'model_name': ''}, 'model_name: must not be empty'),
    ({'model_name': '   '}, 'model_name: must not be empty'),
    ({'base_model': 42}, 'base_model: must be a string, got int'),
    ({'task': b'\xff\xfe'}, 'task: must be a string, got bytes'),
    ({'model_path': 'x' * 5000}, 'model_path: is 5000 characters long'),
    ({'description': 'bad \udcff text'}, 'description: is not valid UTF-8'),
    ({'is_custom_base_model': 'yes'}, 'is_custom_base_model: must be True or False'),
    ({'creation_date': 'yesterday'}, 'creation_date: is not an ISO-8601 timestamp'),
    ({'colour': 'red'}, "unknown field 'colour'"),
]


@pytest.mark.parametrize('change, message', BAD_MODELS)
def test_bad_model_input_is_refused_and_nothing_is_written(store, change, message, db_url):
    values = dict(MODEL)
    values.update(change)
    if change.get('model_name', '') is None:
        del values['model_name']
    before = dump(db_url)
    with pytest.raises(ValidationError) as info:
        store.add_model(**values)
    assert message in str(info.value)
    assert dump(db_url) == before


BAD_TASKS = [
    ({'task_name': 'tune-1'}, "task_name: a task named 'tune-1' already exists"),
    ({'model_config': None}, 'model_config: is required'),
    ({'parameters': [1, 2]}, 'parameters: must be a JSON object'),
    ({'benchmark_config': {'x': float('nan')}}, 'benchmark_config: contains NaN'),
    ({'benchmark_config': {'x': {1, 2}}}, 'benchmark_config: is not JSON-serialisable'),
    ({'optimization_config': {1: 'a'}}, 'JSON object keys must be strings'),
    ({'status': 'DONE'}, "status: unknown status 'DONE'"),
    ({'clusterbasemodel_config': {'foo': 'bar'}}, 'must be a preset'),
    ({'clusterbasemodel_config': {'preset': 'gpt-9'}}, "unknown preset 'gpt-9'"),
    ({'clusterservingruntime_config': {'name': 'x', 'spec': {}}},
     "spec is missing 'supportedModelFormats'"),
    ({'total_experiments': -1}, 'total_experiments: must be between 0'),
    ({'elapsed_time': float('inf')}, 'elapsed_time: must be a finite'),
    ({'started_at': 17}, 'started_at: must be a datetime'),
    ({'metadata': {}, 'task_metadata': {}}, 'give metadata or task_metadata, not both'),
]


@pytest.mark.parametrize('change, message', BAD_TASKS)
def test_bad_task_input_is_refused_and_nothing_is_written(store, change, message, db_url):
    store.add_task(**TASK)
    before = dump(db_url)
    with pytest.raises(ValidationError) as info:
        store.add_task(**dict(TASK, task_name='other', **change)
                       if 'task_name' not in change else dict(TASK, **change))
    assert message in str(info.value)
    assert dump(db_url) == before


def test_update_task_validates_and_renames_uniquely(store, db_url):
    a = store.add_task(**TASK)
    store.add_task(**dict(TASK, task_name='tune-2'))
    before = dump(db_url)
    with pytest.raises(ValidationError, match='already exists'):
        store.update_task(a.id, task_name='tune-2')
    with pytest.raises(ValidationError, match="unknown field 'bogus'"):
        store.update_task(a.id, bogus=1)
    with pytest.raises(ValidationError, match='base_runtime: is required'):
        store.update_task(a.id, base_runtime=None)
    assert dump(db_url) == before
    assert store.update_task(a.id, task_name='tune-1b').task_name == 'tune-1b'


def test_unknown_ids_and_names_raise_not_found(store):
    for call in (lambda: store.get_model(404), lambda: store.get_task(404),
                 lambda: store.get_task_by_name('nope'), lambda: store.update_task(404)):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(ValidationError, match='must be an integer id'):
        store.get_model('1')


def test_every_error_derives_from_modelstore_error():
    for name in ('ValidationError', 'NotFound', 'SchemaOutOfDate', 'SchemaNewerThanCode',
                 'ConfigError', 'MigrationError', 'LockTimeout', 'ChecksumMismatch',
                 'StorageError', 'ScriptError'):
        assert issubclass(getattr(modelstore, name), modelstore.ModelStoreError)


def test_one_store_shared_by_threads_loses_nothing(store):
    errors = []

    def writer(n):
        try:
            for i in range(100):
                store.add_model(**dict(MODEL, model_name='t%d-%d' % (n, i)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list_models()) == 600


def test_two_stores_in_one_process_stay_separate(tmp_path):
    with modelstore.connect('sqlite:///' + str(tmp_path / 'a.db')) as a, \
            modelstore.connect('sqlite:///' + str(tmp_path / 'b.db')) as b:
        a.add_model(**MODEL)
        assert len(a.list_models()) == 1 and b.list_models() == []
