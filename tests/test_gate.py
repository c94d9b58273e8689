"""connect(): URL resolution, fresh databases, behind/ahead schemas, connection settings."""
import os

import pytest

import modelstore
from modelstore.shared.urls import mask_url
from modelstore.shared.urls import migrate_command

from conftest import SHIPPED, execute, history, tables


def test_a_fresh_database_is_migrated_to_head(db_url):
    with modelstore.connect(db_url) as store:
        assert isinstance(store, modelstore.ModelStore)
    assert [r['name'] for r in history(db_url)] == SHIPPED
    assert {'fine_tuned_models', 'tasks'} <= tables(db_url)


@pytest.mark.sqlite_only
def test_sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys(db_url):
    with modelstore.connect(db_url) as store:
        db = store.database
        assert db.pragma('journal_mode') == 'wal'
        assert db.pragma('foreign_keys') == 1
        assert db.pragma('busy_timeout') >= 1000
        assert db.pragma('synchronous') == 1  # NORMAL


def test_url_argument_wins_over_the_environment(tmp_path, monkeypatch, db_path, db_url):
    monkeypatch.setenv('MODELSTORE_DATABASE_URL', 'sqlite:///' + str(tmp_path / 'env.db'))
    modelstore.connect(db_url).close()
    assert os.path.exists(db_path) and not os.path.exists(tmp_path / 'env.db')


def test_the_environment_wins_over_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv('MODELSTORE_DATABASE_URL', 'sqlite:///' + str(tmp_path / 'env.db'))
    modelstore.connect().close()
    assert os.path.exists(tmp_path / 'env.db')
    assert not os.path.exists(tmp_path / 'xdg' / 'modelstore')


def test_the_default_is_a_file_under_xdg_data_home_and_its_directory_is_created(tmp_path):
    with modelstore.connect() as store:
        assert store.url == 'sqlite:///' + str(tmp_path / 'xdg' / 'modelstore' / 'modelstore.db')
    assert os.path.isfile(tmp_path / 'xdg' / 'modelstore' / 'modelstore.db')


def test_without_xdg_data_home_the_default_is_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv('XDG_DATA_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    modelstore.connect().close()
    assert os.path.isfile(tmp_path / 'home' / '.local' / 'share' / 'modelstore' /
                          'modelstore.db')


def test_a_database_behind_the_code_raises_with_the_command(cli, db_url):
    cli('migrate', '--database', db_url, '--to', SHIPPED[1])
    with pytest.raises(modelstore.SchemaOutOfDate) as info:
        modelstore.connect(db_url)
    err = info.value
    assert err.pending == SHIPPED[2:]
    assert err.command == migrate_command(db_url)
    assert mask_url(db_url) in err.command
    assert err.command in str(err) and all(name in str(err) for name in SHIPPED[2:])
    assert isinstance(err, modelstore.ModelStoreError)


def test_auto_migrate_brings_it_up_to_date(cli, db_url):
    cli('migrate', '--database', db_url, '--to', SHIPPED[0])
    modelstore.connect(db_url, auto_migrate=True).close()
    assert [r['name'] for r in history(db_url)] == SHIPPED


def test_a_database_migrated_by_newer_code_is_refused(cli, db_url):
    cli('migrate', '--database', db_url)
    execute(db_url, "INSERT INTO schema_migration (name, applied) VALUES "
                    "('0099_from_the_future', '2027-01-01 00:00:00')")
    with pytest.raises(modelstore.SchemaNewerThanCode, match='0099_from_the_future'):
        modelstore.connect(db_url)


def test_the_seed_bug_fails_at_startup_not_silently(cli, db_url):
    """ModelForge's bug: code writes is_custom_base_model into a schema without the column."""
    cli('migrate', '--database', db_url, '--to', SHIPPED[0])
    with pytest.raises(modelstore.SchemaOutOfDate):
        with modelstore.connect(db_url) as store:
            store.add_model(model_name='m', base_model='b', task='text-generation',
                            model_path='/m', is_custom_base_model=True)
    cli('migrate', '--database', db_url)
    with modelstore.connect(db_url) as store:
        store.add_model(model_name='m', base_model='b', task='text-generation',
                        model_path='/m', is_custom_base_model=True)
        (model,) = store.list_models()
        assert model.is_custom_base_model is True


def test_passwords_are_masked_in_urls_and_commands():
    url = 'postgresql://trainer:s3cr%40t@db.internal:5432/registry'
    assert mask_url(url) == 'postgresql://trainer:***@db.internal:5432/registry'
    assert 's3cr' not in migrate_command(url)
    assert mask_url('mysql://u@h/db?password=hunter2&x=1') == 'mysql://u@h/db?password=***&x=1'
    assert mask_url('sqlite:////abs/path.db') == 'sqlite:////abs/path.db'


@pytest.mark.parametrize('url, message', [
    ('nosuch://x/y', "unsupported database URL scheme 'nosuch'"),
    ('postgresql://', 'names no database'),
])
def test_bad_urls_raise_config_errors(url, message):
    with pytest.raises(modelstore.ConfigError, match=message):
        modelstore.connect(url)


def test_sqlite_with_no_path_is_an_in_memory_registry_at_head():
    with modelstore.connect('sqlite://') as store:
        store.add_model(model_name='m', base_model='b', task='t', model_path='/p')
        assert [m.model_name for m in store.list_models()] == ['m']
        assert store.database.database == ':memory:'


def test_a_directory_is_not_a_database(tmp_path):
    with pytest.raises(modelstore.ConfigError, match='is a directory'):
        modelstore.connect('sqlite:///' + str(tmp_path))


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / 'notes.txt'
    path.write_bytes(b'these are not the pages you are looking for' * 100)
    before = path.read_bytes()
    with pytest.raises(modelstore.ConfigError, match='not a database'):
        modelstore.connect('sqlite:///' + str(path))
    assert path.read_bytes() == before


def test_a_missing_directory_is_reported(tmp_path):
    with pytest.raises(modelstore.ConfigError, match='does not exist'):
        modelstore.connect('sqlite:///' + str(tmp_path / 'nope' / 'x.db'))


CONNECT_AT = """
import sys, time, modelstore
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
with modelstore.connect(sys.argv[1]) as store:
    store.add_model(model_name='m', base_model='b', task='t', model_path='/p')
"""


@pytest.mark.sqlite_only
@pytest.mark.parametrize('round_', range(3))
@pytest.mark.slow
def test_processes_connecting_at_once_all_switch_the_file_to_wal(cli, tmp_path, round_):
    """Switching to WAL takes the file's exclusive lock; two connections that both hold a read
    lock and both want it deadlock, and SQLite fails one at once ("database is locked", no busy
    wait). connect() retries the switch instead of failing."""
    import subprocess
    import sys
    import time
    path = str(tmp_path / 'fresh.db')
    assert cli('migrate', '--database', path)[0] == 0  # migrate leaves the journal mode.
    start = time.time() + 1.0
    procs = [subprocess.Popen([sys.executable, '-c', CONNECT_AT, path, repr(start)],
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    with modelstore.connect(path) as store:
        assert len(store.list_models()) == 8
        assert store.database.pragma('journal_mode') == 'wal'


# -- another application's database is not silently taken over (issue 11) ----------------------

def test_connect_on_another_applications_database_asks_first(db_url):
    execute(db_url, 'CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)',
            'INSERT INTO invoices (id, total) VALUES (1, 9.5)')
    before = tables(db_url)
    with pytest.raises(modelstore.SchemaOutOfDate) as info:
        modelstore.connect(db_url)
    message = str(info.value)
    assert 'it holds 1 table of another application (invoices)' in message
    assert 'modelstore migrate --database' in message and info.value.reason
    assert tables(db_url) == before  # Nothing was added.
    with modelstore.connect(db_url, auto_migrate=True) as store:  # The operator's decision.
        store.add_model(model_name='m', base_model='b', task='t', model_path='/p')
    assert {'invoices', 'fine_tuned_models', 'schema_migration'} <= tables(db_url)


@pytest.mark.sqlite_only
def test_allow_newer_reads_without_switching_the_file_to_wal(cli, db_path):
    assert cli('migrate', '--database', db_path)[0] == 0  # migrate leaves the journal mode.
    execute(db_path, "INSERT INTO schema_migration (name, applied) VALUES "
            "('9999_from_the_future', '2030-01-01 00:00:00')")
    with open(db_path, 'rb') as fh:
        header = fh.read(100)
    with modelstore.connect(db_path, allow_newer=True) as store:
        assert store.list_models() == []
    with open(db_path, 'rb') as fh:
        assert fh.read(100)[18:20] == header[18:20] == b'\x01\x01'  # Not WAL (2, 2).
    assert not os.path.exists(db_path + '-wal')
