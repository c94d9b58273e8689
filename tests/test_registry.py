"""The registry API a pipeline calls: round trips, ordering, validation, threads."""
import datetime
import sqlite3
import threading

import pytest

import modelstore
from modelstore import NotFound, TaskStatus, ValidationError

from conftest import BACKEND, dump, execute, query

MODEL = dict(model_name='llama-ft', base_model='meta-llama/Llama-3.2-1B', task='text-generation',
             model_path='/models/llama-ft_1', description='Fine-tuned (Custom Model)',
             is_custom_base_model=True)
TASK = dict(task_name='tune-1', base_runtime='sglang', model_config={'id': 'llama'},
            parameters={'tp-size': [1, 2]}, optimization_config={'objective': 'latency'},
            benchmark_config={'num_concurrency': [1, 4]})


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url) as s:
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


# -- every bad value is a ValidationError naming the field (issue 11: B10) ---------------------

PLUS5 = datetime.timezone(datetime.timedelta(hours=5))
MINUS5 = datetime.timezone(datetime.timedelta(hours=-5))


@pytest.mark.parametrize('value', [
    datetime.datetime(1, 1, 1, tzinfo=PLUS5), datetime.datetime(9999, 12, 31, 23, tzinfo=MINUS5),
    '0001-01-01T00:00:00+05:00', '9999-12-31T23:00:00-05:00'])
def test_aware_timestamps_that_overflow_once_converted_are_refused(store, db_url, value):
    before = dump(db_url)
    with pytest.raises(ValidationError, match='started_at: .* outside the years 1 to 9999 '
                                              'once converted to UTC'):
        store.add_task(**dict(TASK, started_at=value))
    task = store.add_task(**TASK)
    with pytest.raises(ValidationError, match='completed_at: .*outside the years'):
        store.update_task(task.id, completed_at=value)
    try:  # creation_date is stored in local time: the machine's zone decides if it fits.
        store.add_model(**dict(MODEL, creation_date=value))
    except ValidationError as exc:
        assert exc.field == 'creation_date' and 'local time' in str(exc)
    assert store.get_task(task.id).completed_at is None
    assert len(dump(db_url)[1]['tasks']) == len(before[1]['tasks']) + 1


@pytest.mark.parametrize('bad', [2 ** 63, 2 ** 64 + 5, 0, -1])
def test_ids_outside_the_64_bit_range_are_refused(store, bad):
    for call in (store.get_model, store.delete_model, store.get_task,
                 lambda i: store.update_task(i, status='RUNNING')):
        with pytest.raises(ValidationError, match=r'_id: must be a positive id of at most '
                                                  r'2\*\*63-1, got %d' % bad):
            call(bad)


def test_the_largest_id_is_simply_not_found(store):
    with pytest.raises(NotFound):
        store.get_model(2 ** 63 - 1)


def _deep(levels):
    value = {}
    for _ in range(levels):
        value = {'x': value}
    return value


def test_json_nested_thousands_deep_is_refused_without_recursion(store):
    with pytest.raises(ValidationError, match=r'parameters: is nested more than 100 levels '
                                              r"deep \(at parameters\['x'\]"):
        store.add_task(**dict(TASK, parameters=_deep(5000)))
    deep_list = []
    for _ in range(5000):
        deep_list = [deep_list]
    with pytest.raises(ValidationError, match='model_config: is nested more than 100'):
        store.add_task(**dict(TASK, model_config={'l': deep_list}))
    if BACKEND == 'mysql' and 'mariadb' in store.database.execute_sql(
            'SELECT VERSION()').fetchone()[0].lower():
        # MariaDB's JSON_VALID() check refuses more than 31 levels: named, as a ValidationError.
        store.add_task(**dict(TASK, task_name='t31', parameters=_deep(30)))
        with pytest.raises(ValidationError, match='parameters: the database refused the row: .*'
                                                  'nested more than 31 levels deep') as info:
            store.add_task(**dict(TASK, task_name='t99', parameters=_deep(99)))
        assert info.value.field == 'parameters'
        return
    store.add_task(**dict(TASK, parameters=_deep(99)))  # Within the limit: stored.


def test_json_that_contains_itself_is_refused(store):
    cycle = {'a': [1, 2]}
    cycle['a'].append(cycle)
    with pytest.raises(ValidationError, match=r"slo_config: contains itself at "
                                              r"slo_config\['a'\]\[2\] \(a reference cycle\)"):
        store.add_task(**dict(TASK, slo_config=cycle))
    shared = [1, 2]  # The same list twice is no cycle: JSON writes it twice.
    task = store.add_task(**dict(TASK, slo_config={'a': shared, 'b': shared}))
    assert store.get_task(task.id).slo_config == {'a': [1, 2], 'b': [1, 2]}


def test_json_numbers_are_reported_for_what_is_wrong_with_them(store):
    with pytest.raises(ValidationError, match=r"parameters: holds an integer of more than 4300 "
                                              r"digits at parameters\['n'\]"):
        store.add_task(**dict(TASK, parameters={'n': 10 ** 5000}))
    with pytest.raises(ValidationError, match=r"parameters: contains NaN or infinity at "
                                              r"parameters\['lr'\]\[1\]"):
        store.add_task(**dict(TASK, parameters={'lr': [0.1, float('inf')]}))
    with pytest.raises(ValidationError, match=r"is not JSON-serialisable: set at "
                                              r"model_config\['s'\]"):
        store.add_task(**dict(TASK, model_config={'s': {1, 2}}))
    task = store.add_task(**dict(TASK, parameters={'n': 10 ** 40}))  # Big, but fine.
    assert store.get_task(task.id).parameters == {'n': 10 ** 40}


# -- constraint failures are ValidationErrors; the bulk path guards the schema (B11) -----------

def test_a_hand_made_unique_index_refuses_a_duplicate_as_a_validation_error(store, db_url):
    store.add_model(**MODEL)
    execute(db_url, 'CREATE UNIQUE INDEX hand_made ON fine_tuned_models (model_name)')
    before = dump(db_url)
    with pytest.raises(ValidationError) as one:
        store.add_model(**MODEL)
    with pytest.raises(ValidationError) as bulk:
        store.add_models([dict(MODEL, model_name='fresh'), MODEL])
    for info in (one, bulk):
        assert info.value.field == 'model_name'
        assert 'the database refused the row' in str(info.value)
    assert dump(db_url) == before  # The bulk call stored none of its rows.
    store.add_model(**dict(MODEL, model_name='other'))  # The store is still usable.


@pytest.mark.sqlite_only
def test_add_models_on_a_database_behind_the_code_raises_schema_out_of_date(tmp_path):
    from legacy import build, modelforge_v10
    from modelstore import SchemaOutOfDate
    from modelstore.shared.database import open_database
    path = str(tmp_path / 'forge.db')
    build(path, modelforge_v10)
    store = modelstore.ModelStore(open_database('sqlite:///' + path, mode='migrate'), path)
    before = dump(path)
    for call in (lambda: store.add_model(**MODEL), lambda: store.add_models([MODEL])):
        with pytest.raises(SchemaOutOfDate, match='modelstore migrate --database'):
            call()
    store.close()
    assert dump(path) == before


# -- every representable task timestamp round-trips exactly (B12) ------------------------------

@pytest.mark.parametrize('moment', [
    datetime.datetime(1, 6, 15, 10, 30), datetime.datetime.min, datetime.datetime.max,
    datetime.datetime(999, 12, 31, 23, 59, 59, 999999), datetime.datetime(1000, 1, 1),
    datetime.datetime(2026, 12, 1, 8, 0, 0, 1)])
def test_task_timestamps_of_every_year_round_trip(store, moment):
    task = store.add_task(**dict(TASK, started_at=moment, completed_at=moment,
                                 created_at=moment))
    for got in (store.get_task(task.id), store.list_tasks()[0]):
        assert (got.started_at, got.completed_at, got.created_at) == (moment,) * 3
        assert type(got.started_at) is datetime.datetime
    model = store.add_model(**dict(MODEL, creation_date=moment))
    assert store.get_model(model.id).creation_date == moment
    assert [m.creation_date for m in store.list_models()] == [moment]


# -- an update cannot clear a task's status ----------------------------------------------------

def test_update_task_refuses_to_clear_the_status(store, db_url):
    task = store.add_task(**dict(TASK, status=None))
    assert task.status is TaskStatus.PENDING  # add_task: None means the default.
    before = dump(db_url)
    with pytest.raises(ValidationError, match='status: cannot be cleared'):
        store.update_task(task.id, status=None)
    assert dump(db_url) == before
    store.update_task(task.id, description=None)  # A nullable field may be cleared.
