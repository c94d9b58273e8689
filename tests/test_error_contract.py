"""The error contract, closed: every public call raises only ModelStoreError subclasses, on
both backends, and PostgreSQL errors are classified by SQLSTATE -- proven with a session whose
server messages are German as well as with the server's default.

Each failure class is provoked for real: bad input, absent rows, a schema behind the code (for
every read and write path), a constraint the database enforces, a lock held past the timeout.
"""
import contextlib
import sqlite3
from urllib.parse import quote

import pytest

import modelstore
from modelstore import (ModelStoreError, NotFound, SchemaOutOfDate, StorageError,
                        ValidationError)
from modelstore.engine import Engine, detect_drift
from modelstore.shared.database import open_database

from conftest import ON_MYSQL, ON_POSTGRES, ON_SERVER, SHIPPED, dump, execute

MODEL = dict(model_name='m', base_model='b', task='t', model_path='/p')
TASK = dict(task_name='t1', base_runtime='sglang', model_config={}, parameters={},
            optimization_config={}, benchmark_config={})
GERMAN = '-c lc_messages=de_DE.UTF-8'


def _with_options(url, options):
    return url + ('&' if '?' in url else '?') + 'options=' + quote(options)


@pytest.fixture(params=['default messages'] + (['German messages'] if ON_POSTGRES else []))
def url(request, head_url):
    db_url = head_url
    if request.param == 'default messages':
        return db_url
    url = _with_options(db_url, GERMAN)
    import psycopg2
    from modelstore.shared.urls import mask_url  # noqa: F401  (the URL is ours: no secret)
    try:
        conn = psycopg2.connect(url.replace('postgresql://', 'postgres://', 1))
    except psycopg2.Error as exc:
        pytest.skip('this server cannot switch lc_messages to German (scripts/postgres.sh '
                    'sets that up): %s' % str(exc).strip())
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.Error) as info:
            cur.execute('SELECT * FROM no_such_table')
        assert 'existiert nicht' in str(info.value)  # The server really speaks German.
    finally:
        conn.close()
    return url


@pytest.fixture
def store(url, tmp_path):
    root = tmp_path / 'models'
    root.mkdir()
    with modelstore.connect(url, models_root=str(root)) as s:
        s.add_model(**MODEL)
        s.add_task(**TASK)
        (root / 'carded').mkdir()  # A model whose folder is inside the root: its card.
        s.add_model(**dict(MODEL, model_name='carded', model_path=str(root / 'carded')))
        yield s


def calls(store):
    """Every public registry call, with arguments that would otherwise succeed."""
    return {
        'add_model': lambda: store.add_model(**dict(MODEL, model_name='new')),
        'add_models': lambda: store.add_models([dict(MODEL, model_name='bulk')]),
        'get_model': lambda: store.get_model(1),
        'get_model_version': lambda: store.get_model_version('m', 1),
        'get_latest_model': lambda: store.get_latest_model('m'),
        'list_models': lambda: store.list_models(task='t', limit=5),
        'iter_models': lambda: list(store.iter_models(task='t', page=2)),
        'iter_tasks': lambda: list(store.iter_tasks(page=2)),
        'count_models': lambda: store.count_models(task='t', is_custom_base_model=False),
        'update_model': lambda: store.update_model(1, description='d'),
        'add_task': lambda: store.add_task(**dict(TASK, task_name='t2')),
        'get_task': lambda: store.get_task(1),
        'get_task_by_name': lambda: store.get_task_by_name('t1'),
        'list_tasks': lambda: store.list_tasks(),
        'count_tasks': lambda: store.count_tasks(),
        'update_task': lambda: store.update_task(1, status='RUNNING'),
        'delete_model': lambda: store.delete_model(
            store.add_model(**dict(MODEL, model_name='gone')).id),
        'empty_trash': lambda: store.empty_trash(),
        'set_alias': lambda: store.set_alias('m', 'champion', 1),
        'delete_alias': lambda: (store.set_alias('m', 'old', 1), store.delete_alias('m', 'old')),
        'list_aliases': lambda: store.list_aliases('m'),
        'alias_history': lambda: store.alias_history('m', 'champion'),
        'events': lambda: store.events(after=0, limit=10),
        'on_event': lambda: store.on_event(print),
        'archive_model': lambda: store.archive_model(
            store.add_model(**dict(MODEL, model_name='shelved')).id),
        'restore_model': lambda: store.restore_model(1),
        'lineage': lambda: store.lineage(1),
        'set_tags': lambda: store.set_tags(1, {'stage': 'eval'}),
        'delete_tags': lambda: (store.set_tags(1, {'old': 'x'}), store.delete_tags(1, ['old'])),
        'get_tags': lambda: store.get_tags(1),
        'model_card': lambda: store.model_card(1),
        'export_model_card': lambda: store.export_model_card('carded'),  # (The fixture's.)
    }


# Calls that touch no table when there is nothing to do: an empty trash is read from the
# models root alone, so a schema behind the code or a locked table cannot fail it.
NO_TABLE = {'empty_trash', 'on_event'}  # (on_event: a hook kept in this process.)
# Calls that touch none of the tables locked() locks on a server (the aliases and events).
OTHER_TABLES = {'list_aliases', 'alias_history', 'events'}
# A count of all tasks reads no column that the older schema lacks: its answer is still right.
RIGHT_WHEN_BEHIND = NO_TABLE | {'count_tasks'}


def test_every_public_method_is_driven():
    """A public method added to ModelStore or Engine without a case here fails this test."""
    public = {n for n in dir(modelstore.ModelStore)
              if not n.startswith('_') and callable(getattr(modelstore.ModelStore, n))}
    assert public - {'close'} == set(calls(None)), public ^ set(calls(None))
    assert set(BAD) | set(ABSENT) <= public
    engine = {n for n in dir(Engine) if not n.startswith('_') and callable(getattr(Engine, n))}
    assert engine == set(ENGINE_BAD), engine ^ set(ENGINE_BAD)


def test_every_call_works_before_it_is_made_to_fail(store):
    for name, call in calls(store).items():
        call()


BAD = {
    'add_model': lambda s: s.add_model(**dict(MODEL, model_name=7)),
    'add_models': lambda s: s.add_models([dict(MODEL, task=None)]),
    'get_model': lambda s: s.get_model(2 ** 64),
    'list_models': lambda s: s.list_models(limit=0),
    'iter_models': lambda s: s.iter_models(page=0),
    'iter_tasks': lambda s: s.iter_tasks(status='EXPLODED'),
    'delete_model': lambda s: s.delete_model(-3),
    'add_task': lambda s: s.add_task(**dict(TASK, parameters=[1])),
    'get_task': lambda s: s.get_task('1'),
    'get_task_by_name': lambda s: s.get_task_by_name(None),
    'list_tasks': lambda s: s.list_tasks(status='EXPLODED'),
    'update_task': lambda s: s.update_task(1, elapsed_time=float('nan')),
    'update_model': lambda s: s.update_model(1, model_name=''),
    'get_model_version': lambda s: s.get_model_version('m', 0),
    'get_latest_model': lambda s: s.get_latest_model(''),
    'count_models': lambda s: s.count_models(task=3),
    'count_tasks': lambda s: s.count_tasks(status='EXPLODED'),
    'empty_trash': lambda s: s.empty_trash(dry_run='yes'),
    'set_alias': lambda s: s.set_alias('m', '7', 1),  # A whole number is a version.
    'delete_alias': lambda s: s.delete_alias('m', None),
    'list_aliases': lambda s: s.list_aliases(''),
    'alias_history': lambda s: s.alias_history('m', 'champion', at='last week'),
    'events': lambda s: s.events(after=-1),
    'on_event': lambda s: s.on_event('print'),
    'archive_model': lambda s: s.archive_model('1'),
    'restore_model': lambda s: s.restore_model(0),
    'lineage': lambda s: s.lineage(None),
    'set_tags': lambda s: s.set_tags(1, {'k': 7}),
    'delete_tags': lambda s: s.delete_tags(1, 'k'),
    'get_tags': lambda s: s.get_tags('1'),
    'model_card': lambda s: s.model_card(0),
    'export_model_card': lambda s: s.export_model_card(1, overwrite='yes'),
}


@pytest.mark.parametrize('method', sorted(BAD))
def test_bad_input_is_a_validation_error(store, method):
    with pytest.raises(ValidationError):
        BAD[method](store)


ABSENT = {
    'get_model': lambda s: s.get_model(999),
    'delete_model': lambda s: s.delete_model(999),
    'get_task': lambda s: s.get_task(999),
    'get_task_by_name': lambda s: s.get_task_by_name('nobody'),
    'update_task': lambda s: s.update_task(999, status='RUNNING'),
    'update_model': lambda s: s.update_model(999, description='d'),
    'get_model_version': lambda s: s.get_model_version('m', 999),
    'get_latest_model': lambda s: s.get_latest_model('nobody'),
    'set_alias': lambda s: s.set_alias('m', 'champion', 999),
    'delete_alias': lambda s: s.delete_alias('m', 'nope'),
    'archive_model': lambda s: s.archive_model(999),
    'restore_model': lambda s: s.restore_model(999),
    'get_tags': lambda s: s.get_tags(999),
    'delete_tags': lambda s: s.delete_tags(1, ['never-set']),
    'model_card': lambda s: s.model_card(999),
    'export_model_card': lambda s: s.export_model_card(999),
}


@pytest.mark.parametrize('method', sorted(ABSENT))
def test_an_absent_row_is_not_found(store, method):
    with pytest.raises(NotFound):
        ABSENT[method](store)


def test_a_schema_behind_the_code_is_schema_out_of_date_on_every_path(store, url):
    # Another process rolls the database back past 0002 (is_custom_base_model) and 0003
    # (tasks' slo_config, ...): a store opened before is now behind it.
    # (Without updated_at values and version numbers, rolling back 0006 and 0008 destroys
    # nothing, so it needs no backup; 0010's triggers go first, or they would renumber.)
    database = open_database(url, mode='migrate')
    try:
        # The models' model.added events first: rolling 0013 back then destroys nothing.
        execute(url, 'DELETE FROM registry_events', 'DELETE FROM registry_event_counter')
        Engine(database).rollback('0009_model_version_index')
        execute(url, 'UPDATE fine_tuned_models SET updated_at = NULL, version = NULL',
                'DELETE FROM model_version_counters')
        Engine(database).rollback(SHIPPED[1], allow_data_loss=True)
    finally:
        database.close()
    wrong = {}
    for name, call in calls(store).items():
        try:
            call()
            if name not in RIGHT_WHEN_BEHIND:
                wrong[name] = 'no error'
        except SchemaOutOfDate as exc:
            assert 'modelstore migrate --database' in str(exc)
        except Exception as exc:  # noqa: BLE001 -- the point is which class it is.
            wrong[name] = '%s: %s' % (type(exc).__name__, exc)
    assert not wrong, wrong


def test_a_constraint_failure_is_a_validation_error_naming_the_column(store, url):
    execute(url, 'CREATE UNIQUE INDEX hand_made ON fine_tuned_models (model_name)')
    for call in (lambda: store.add_model(**MODEL), lambda: store.add_models([MODEL])):
        with pytest.raises(ValidationError) as info:
            call()
        assert info.value.field == 'model_name'


@contextlib.contextmanager
def locked(store, url):
    """Another connection holds both tables (and the history) locked; the store waits 0.1 s
    (MySQL: 1 s, its shortest)."""
    if ON_MYSQL:
        from modelstore.testing.mysql_server import driver_connect
        other = driver_connect(url, autocommit=True)
        other.cursor().execute('LOCK TABLES fine_tuned_models WRITE, tasks WRITE, '
                               'schema_migration WRITE')
        store.database.execute_sql('SET SESSION lock_wait_timeout = 1, '
                                   'innodb_lock_wait_timeout = 1')
        try:
            yield
        finally:
            other.close()
            store.database.execute_sql('SET SESSION lock_wait_timeout = DEFAULT, '
                                       'innodb_lock_wait_timeout = DEFAULT')
    elif ON_POSTGRES:
        import psycopg2
        other = psycopg2.connect(url.replace('postgresql://', 'postgres://', 1))
        cur = other.cursor()
        cur.execute('LOCK TABLE fine_tuned_models, tasks, schema_migration IN ACCESS '
                    'EXCLUSIVE MODE')
        store.database.execute_sql("SET lock_timeout = '100ms'")
        try:
            yield
        finally:
            other.rollback()
            other.close()
            store.database.execute_sql('RESET lock_timeout')
    else:
        other = sqlite3.connect(store.database.database, isolation_level=None)
        other.execute('BEGIN EXCLUSIVE')
        store.database.pragma('busy_timeout', 100)
        try:
            yield
        finally:
            other.execute('ROLLBACK')
            other.close()
            store.database.pragma('busy_timeout', 5000)


WRITES = ('add_model', 'add_models', 'add_task', 'update_task', 'update_model', 'delete_model',
          'set_alias', 'delete_alias', 'archive_model', 'restore_model', 'set_tags',
          'delete_tags')


@pytest.mark.slow
def test_a_lock_held_past_the_timeout_is_a_storage_error(store, url):
    """PostgreSQL's ACCESS EXCLUSIVE lock blocks every call; SQLite's write lock blocks the
    writes, while a WAL reader is never blocked (its reads must go on working)."""
    with locked(store, url):
        wrong = {}
        for name, call in calls(store).items():
            blocked = (ON_SERVER or name in WRITES) and name not in NO_TABLE and not (
                ON_SERVER and name in OTHER_TABLES)
            try:
                call()
                if blocked:
                    wrong[name] = 'no error'
            except StorageError as exc:
                if not blocked:
                    wrong[name] = 'a reader was blocked: %s' % exc
            except Exception as exc:  # noqa: BLE001
                wrong[name] = '%s: %s' % (type(exc).__name__, exc)
        assert not wrong, wrong
    store.add_model(**dict(MODEL, model_name='after'))  # Released: the store carries on.


def test_engine_calls_raise_modelstore_errors_when_the_database_fails(store, url):
    engine = Engine(store.database, lock_timeout=0.1)
    with locked(store, url):
        if ON_SERVER:
            with pytest.raises(StorageError):
                engine.status()
        else:
            assert engine.status().up_to_date  # A WAL reader is not blocked.
            assert not detect_drift(store.database)
        for call in (engine.accept, engine.rollback, lambda: engine.migrate(dry_run=True)):
            with pytest.raises(ModelStoreError):
                call()


ENGINE_BAD = {
    'migrate': lambda e: e.migrate('0099_nope'),
    'rollback': lambda e: e.rollback('0099_nope'),
    'accept': lambda e: e.accept(['0099_nope']),
    'repair': lambda e: e.repair(mode='bogus'),
    'status': lambda e: Engine(e.database, '/nonexistent/migrations').status(),
    'scripts': lambda e: Engine(e.database, '/nonexistent/migrations').scripts(),
}


@pytest.mark.parametrize('method', sorted(ENGINE_BAD))
def test_bad_engine_input_is_a_modelstore_error_that_changes_nothing(store, url, method):
    before = dump(url)
    with pytest.raises(ModelStoreError):
        ENGINE_BAD[method](Engine(store.database))
    assert dump(url) == before
