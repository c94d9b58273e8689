"""The clients table (script 0012, modelstore.engine.clients): every connect() registers its
process, a store refreshes its row as it works and removes it when closed, and ``migrate``
refuses a contract script while a client built for an earlier schema is alive -- the guard that
keeps a rolling deploy's contract step from dropping what release N still uses
(docs/rolling-upgrades.md)."""
import json
import os
import socket
from urllib.parse import urlsplit

import pytest

from modelstore import __version__, connect
from modelstore.engine import Clients, Engine, scripts
from modelstore.engine.clients import LIFE, TABLE
from modelstore.exceptions import (ClientsAlive, SchemaNewerThanCode, SchemaOutOfDate,
                                   ValidationError)
from modelstore.shared.database import open_database
from modelstore.shared.urls import migrate_command, parse_url

from conftest import SHIPPED
from test_phases import ADD_NOTE, DROP_NOTE, release

MODEL = dict(model_name='m', base_model='b', task='t', model_path='/p')


@pytest.fixture
def migrated(db_url):
    Engine(open_database(db_url, mode='migrate')).migrate()
    return db_url


def clients_of(url, **kwargs):
    database = open_database(url, mode='inspect')
    try:
        return Clients(database).rows(**kwargs)
    finally:
        database.close()


def age_all(url, seconds):
    """Make every client look last seen ``seconds`` ago, on the server's clock."""
    database = open_database(url, mode='migrate')
    try:
        clients = Clients(database)
        clients.model.update(last_seen=clients.now() - seconds).execute()
    finally:
        database.close()


def next_release(tmp_path):
    """Release N+1: the shipped scripts, an expand script adding a column and a contract
    script dropping it."""
    return release(tmp_path, 'next', {'0098_add_note.py': ADD_NOTE,
                                      '0099_drop_note.py': DROP_NOTE})


def test_connect_registers_the_process_and_close_removes_it(migrated):
    store = connect(migrated)
    try:
        [row] = clients_of(migrated)
        assert row.release == 'modelstore %s' % __version__
        assert row.schema_head == SHIPPED[-1]
        assert (row.host, row.pid) == (socket.gethostname(), os.getpid())
        assert row.alive and 0 <= row.age < LIFE and row.started <= row.last_seen
        assert store.registration.id == row.id
    finally:
        store.close()
    assert clients_of(migrated, all=True) == []


def test_the_application_names_its_release(migrated):
    with connect(migrated, release='trainer 4.2') as store:
        store.add_model(**MODEL)
        assert [c.release for c in clients_of(migrated)] == ['trainer 4.2']


@pytest.mark.parametrize('bad', ['', 'x' * 256, 42, b'trainer'])
def test_a_bad_release_is_refused_and_registers_nothing(migrated, bad):
    with pytest.raises(ValidationError) as err:
        connect(migrated, release=bad)
    assert 'release' in str(err.value)
    assert clients_of(migrated, all=True) == []


def test_register_false_and_a_read_only_store_write_nothing(migrated, tmp_path):
    with connect(migrated, register=False) as store:
        assert store.registration is None
        store.add_model(**MODEL)
        assert clients_of(migrated, all=True) == []
    directory = release(tmp_path, 'next', {'0099_drop_note.py': ADD_NOTE.replace(
        'deploy_note', 'x') + "\nphase = 'contract'\n"})
    Engine(open_database(migrated, mode='migrate'), directory).migrate()
    with connect(migrated, allow_newer=True) as store:  # Reads only: no registration.
        assert store.registration is None and store.list_models()
        assert clients_of(migrated, all=True) == []


def test_a_store_refreshes_its_row_and_registers_again_if_it_was_removed(migrated):
    with connect(migrated) as store:
        [first] = clients_of(migrated)
        age_all(migrated, 100)
        store.list_models()  # Not due yet: no write on this call.
        assert clients_of(migrated)[0].age >= 99
        store.registration.next_beat = 0.0  # Due: the next call refreshes the row.
        store.list_models()
        [row] = clients_of(migrated)
        assert row.id == first.id and row.age < 50
        # Removed by someone else (a cleanup, a restored database): the next beat inserts it.
        database = open_database(migrated, mode='migrate')
        Clients(database).model.delete().execute()
        database.close()
        store.registration.next_beat = 0.0
        store.add_model(**MODEL)
        [again] = clients_of(migrated)
        assert again.pid == os.getpid() and again.started >= first.started
        assert store.registration.id == again.id
    assert clients_of(migrated, all=True) == []


def test_a_contract_script_waits_for_the_clients_of_the_previous_release(migrated, tmp_path,
                                                                         cli):
    directory = next_release(tmp_path)
    engine = Engine(open_database(migrated, mode='migrate'), directory)
    engine.migrate(phase='expand')
    old = connect(migrated, release='trainer 4.1')  # Release N: built for SHIPPED[-1].
    try:
        old.add_model(**MODEL)
        with pytest.raises(ClientsAlive) as err:
            engine.migrate(phase='contract')
        message = str(err.value)
        assert '0099_drop_note' in message and 'trainer 4.1' in message
        assert 'built for %s' % SHIPPED[-1] in message and 'pid %d' % os.getpid() in message
        assert '--force' in message and 'Nothing was changed' in message
        assert [c.release for c in err.value.clients] == ['trainer 4.1']
        assert engine.status().pending == ['0099_drop_note']
        assert 'deploy_note' in [c.name for c in engine.database.get_columns(
            'fine_tuned_models')]
        # The CLI: exit 1 (refused), the same message, and JSON with the clients.
        code, out, errtext = cli('migrate', '--database', migrated, '--migrations', directory,
                                 '--json')
        report = json.loads(out)
        assert code == 2 and report['error']['type'] == 'ClientsAlive'
        assert report['error']['scripts'] == ['0099_drop_note']
        assert [(c['release'], c['schema_head'], c['pid'], c['alive'])
                for c in report['error']['clients']] == [('trainer 4.1', SHIPPED[-1],
                                                          os.getpid(), True)]
        assert 'trainer 4.1' in errtext
        assert engine.status().pending == ['0099_drop_note']
        # Release N keeps working meanwhile.
        old.update_model(old.list_models()[0].id, description='still writing')
    finally:
        old.close()
    # Gone: the contract script runs.
    assert engine.migrate().names == ['0099_drop_note']
    assert engine.history.read()[-1].note is None


def test_clients_built_for_the_new_schema_do_not_hold_it_back(migrated, tmp_path):
    directory = next_release(tmp_path)
    engine = Engine(open_database(migrated, mode='migrate'), directory)
    engine.migrate(phase='expand')
    database = open_database(migrated, mode='migrate')
    try:
        Clients(database).register('trainer 4.2', '0099_drop_note')
        Clients(database).register('trainer 4.2', '0100_later')
    finally:
        database.close()
    assert engine.migrate().names == ['0099_drop_note']


def test_a_client_not_seen_for_its_life_is_gone(migrated, tmp_path, cli):
    directory = next_release(tmp_path)
    engine = Engine(open_database(migrated, mode='migrate'), directory)
    engine.migrate(phase='expand')
    old = connect(migrated, release='killed worker')
    try:
        age_all(migrated, LIFE + 5)  # Killed without a close: its row stays, ageing.
        assert clients_of(migrated) == []
        code, out, _ = cli('clients', '--database', migrated)
        assert code == 0 and 'Clients of %s: 0 alive' % parse_url(migrated).masked in out
        assert 'killed worker' not in out
        code, out, _ = cli('clients', '--database', migrated, '--all')
        assert code == 0 and '0 alive, 1 gone' in out and 'killed worker' in out
        assert '(gone)' in out
        assert engine.migrate().names == ['0099_drop_note']
    finally:
        old.close()


def test_force_runs_the_contract_script_and_the_history_says_so(migrated, tmp_path, cli):
    directory = next_release(tmp_path)
    engine = Engine(open_database(migrated, mode='migrate'), directory)
    engine.migrate(phase='expand')
    with connect(migrated, release='trainer 4.1'):
        code, out, err = cli('migrate', '--database', migrated, '--migrations', directory,
                             '--force')
        assert code == 0, err
        [record] = [r for r in engine.history.read() if r.name == '0099_drop_note']
        assert record.phase == 'contract'
        assert record.note.startswith('run with --force while 1 client built for an earlier '
                                      'schema was alive: trainer 4.1 (built for %s)'
                                      % SHIPPED[-1])
        code, out, _ = cli('history', '--database', migrated, '--migrations', directory,
                           '--json')
        rows = {r['name']: r for r in json.loads(out)['history']}
        assert rows['0099_drop_note']['note'] == record.note


def test_expand_scripts_never_wait_for_clients(migrated, tmp_path):
    directory = release(tmp_path, 'next', {'0098_add_note.py': ADD_NOTE})
    with connect(migrated, release='trainer 4.1'):
        result = Engine(open_database(migrated, mode='migrate'), directory).migrate()
        assert result.names == ['0098_add_note']


def test_the_clients_command_lists_them(migrated, cli):
    with connect(migrated, release='trainer 4.1'), connect(migrated, release='trainer 4.2'):
        code, out, _ = cli('clients', '--database', migrated)
        assert code == 0
        lines = out.splitlines()
        assert lines[0] == 'Clients of %s: 2 alive' % parse_url(migrated).masked
        assert 'release' in lines[1] and 'built for' in lines[1]
        assert sorted(l.split()[1:3] for l in lines[2:]) == [['trainer', '4.1'],
                                                             ['trainer', '4.2']]
        code, out, _ = cli('clients', '--database', migrated, '--json')
        report = json.loads(out)
        assert code == 0 and report['table'] is True
        assert sorted(c['release'] for c in report['clients']) == ['trainer 4.1', 'trainer 4.2']
        assert all(c['alive'] and c['schema_head'] == SHIPPED[-1] and c['pid'] == os.getpid()
                   for c in report['clients'])


def test_the_clients_command_before_0012(db_url, cli):
    Engine(open_database(db_url, mode='migrate')).migrate(
        target=SHIPPED[SHIPPED.index('0012_clients') - 1])
    code, out, _ = cli('clients', '--database', db_url)
    assert code == 0 and 'no clients table yet' in out and '0012_clients' in out
    # The hint is the whole command, for the database it looked at (password masked).
    assert 'run `%s`' % migrate_command(db_url) in out
    assert '--database' in out and parse_url(db_url).masked in out
    password = urlsplit(db_url).password
    assert not password or ':%s@' % password not in out
    code, out, _ = cli('clients', '--database', db_url, '--migrations', 'my_scripts')
    assert 'run `%s`' % migrate_command(db_url, 'my_scripts') in out
    assert TABLE not in open_database(db_url, mode='inspect').get_tables()


def test_the_new_release_connects_while_its_contract_scripts_wait(migrated, tmp_path,
                                                                  monkeypatch):
    """The runbook's step 3: release N+1's workers start after the expand step, before the
    contract step, which waits for release N's workers and not for N+1's."""
    directory = next_release(tmp_path)
    engine = Engine(open_database(migrated, mode='migrate'), directory)
    engine.migrate(phase='expand')
    old = connect(migrated, release='trainer 4.1')  # Release N: built for SHIPPED[-1].
    try:
        monkeypatch.setattr(scripts, 'default_directory', lambda: directory)  # N+1's code.
        with connect(migrated, release='trainer 4.2') as new:
            assert new.registration.schema_head == '0099_drop_note'
            stored = new.add_model(**MODEL)
            assert new.get_model(stored.id).model_name == 'm'
            assert engine.status().pending == ['0099_drop_note']  # Nothing ran.
            with pytest.raises(ClientsAlive) as err:
                engine.migrate(phase='contract')
            assert [c.release for c in err.value.clients] == ['trainer 4.1']
            old.close()
            assert engine.migrate(phase='contract').names == ['0099_drop_note']
            new.update_model(stored.id, description='after the contract step')
            assert new.count_models() == 1
    finally:
        old.close()


def test_an_expand_script_still_pending_refuses_the_new_release(migrated, tmp_path,
                                                                monkeypatch):
    directory = next_release(tmp_path)
    monkeypatch.setattr(scripts, 'default_directory', lambda: directory)
    with pytest.raises(SchemaOutOfDate) as err:
        connect(migrated)
    assert '0098_add_note' in str(err.value)
    assert Engine(open_database(migrated, mode='migrate'), directory).status().pending == [
        '0098_add_note', '0099_drop_note']


def test_auto_migrate_runs_the_contract_step_once_the_old_clients_are_gone(migrated, tmp_path,
                                                                          monkeypatch):
    directory = next_release(tmp_path)
    engine = Engine(open_database(migrated, mode='migrate'), directory)
    old = connect(migrated, release='trainer 4.1')
    try:
        monkeypatch.setattr(scripts, 'default_directory', lambda: directory)
        with connect(migrated, auto_migrate=True, release='trainer 4.2') as new:
            # The expand script ran; the contract script waits for release N.
            assert engine.status().pending == ['0099_drop_note']
            new.add_model(**MODEL)
    finally:
        old.close()
    with connect(migrated, auto_migrate=True) as store:
        assert engine.status().pending == [] and store.count_models() == 1
    assert 'deploy_note' not in [c.name for c in engine.database.get_columns(
        'fine_tuned_models')]


RENAME_PROVIDER = '''
phase = 'contract'


def up(migrator, db):
    migrator.migrate(migrator.rename_column('fine_tuned_models', 'provider', 'vendor'))


def down(migrator, db):
    migrator.migrate(migrator.rename_column('fine_tuned_models', 'vendor', 'provider'))
'''


def test_a_release_whose_contract_step_renames_a_column_it_uses_waits_for_it(
        migrated, tmp_path, monkeypatch):
    """Release N+1 maps ``vendor``, which its contract script renames ``provider`` to: the
    schema before that step lacks it, so N+1 cannot work there. connect() refuses up front,
    naming the column and the contract step -- instead of connecting and failing every call --
    and auto_migrate waits for release N like the contract step itself."""
    from modelstore.shared.tables import FineTunedModel
    directory = release(tmp_path, 'next', {'0098_rename_provider.py': RENAME_PROVIDER})
    engine = Engine(open_database(migrated, mode='migrate'), directory)
    old = connect(migrated, release='trainer 4.1')  # Release N, which maps provider.
    try:
        monkeypatch.setattr(scripts, 'default_directory', lambda: directory)  # N+1's code,
        monkeypatch.setattr(FineTunedModel._meta.fields['provider'], 'column_name', 'vendor')
        with pytest.raises(SchemaOutOfDate) as err:
            connect(migrated, release='trainer 4.2')
        message = str(err.value)
        assert err.value.pending == ['0098_rename_provider']
        assert 'this code maps fine_tuned_models.vendor, which is not in the schema' in message
        assert message.endswith('Run: ' + migrate_command(migrated).replace(
            'migrate', 'migrate --phase contract', 1))
        with pytest.raises(ClientsAlive):  # The contract step waits for release N.
            connect(migrated, auto_migrate=True, release='trainer 4.2')
        assert engine.status().pending == ['0098_rename_provider']  # Nothing ran.
        assert clients_of(migrated) and [c.release for c in clients_of(migrated)] == [
            'trainer 4.1']  # The refused connects registered nothing.
    finally:
        old.close()
    with connect(migrated, auto_migrate=True, release='trainer 4.2'):
        assert engine.status().pending == []
    columns = [c.name for c in engine.database.get_columns('fine_tuned_models')]
    assert 'vendor' in columns and 'provider' not in columns


DROP_BASE_MODEL = '''
phase = 'contract'


def up(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'base_model'))
'''


def test_a_release_that_no_longer_writes_a_not_null_column_waits_for_its_drop(
        migrated, tmp_path, monkeypatch):
    """Release N+1 no longer maps base_model (NOT NULL, no default), which its contract
    script drops: before that step every INSERT of N+1 would fail, so connect() refuses,
    saying why -- the expand step should have dropped the NOT NULL."""
    from modelstore.shared.tables import FineTunedModel
    directory = release(tmp_path, 'next', {'0098_drop_base_model.py': DROP_BASE_MODEL})
    monkeypatch.setattr(scripts, 'default_directory', lambda: directory)
    monkeypatch.setattr(FineTunedModel._meta, 'sorted_fields', [
        f for f in FineTunedModel._meta.sorted_fields if f.name != 'base_model'])
    with pytest.raises(SchemaOutOfDate) as err:
        connect(migrated)
    assert 'this code does not write fine_tuned_models.base_model, which is NOT NULL without ' \
        'a default' in str(err.value) and 'migrate --phase contract' in str(err.value)


# -- A store of the previous release under a contract script newer than its code ------------

DROP_PROVIDER = '''
phase = 'contract'


def up(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'provider'))
'''


def count_models(url):
    database = open_database(url, mode='inspect')
    try:
        return database.execute_sql('SELECT COUNT(*) FROM fine_tuned_models').fetchone()[0]
    finally:
        database.close()


def test_a_contract_script_forced_past_a_live_store_turns_it_read_only(migrated, tmp_path,
                                                                        caplog):
    with connect(migrated, release='trainer 4.1') as old:  # Release N: built for SHIPPED[-1].
        old.add_model(**MODEL)
        # Release N+1's operator forces its contract script while N is still running.
        result = Engine(open_database(migrated, mode='migrate'), next_release(tmp_path)).migrate(
            force=True)
        assert result.names == ['0098_add_note', '0099_drop_note']
        assert old.refuse_writes is None  # Not known before its next heartbeat.
        old.registration.next_beat = 0.0  # Due: the next call beats, and reads the history.
        before = count_models(migrated)
        with caplog.at_level('WARNING', logger='modelstore'):
            with pytest.raises(SchemaNewerThanCode) as err:
                old.add_model(**MODEL)
        assert err.value.unknown == ['0099_drop_note']  # The expand script 0098 is not named.
        # It says what happened to a store that was running, not what a CLI user should pass.
        message = str(err.value)
        assert err.value.running and '0099_drop_note' in message
        assert 'applied the contract script 0099_drop_note while this store was open' in message
        assert 'this write was not made' in message and '--migrations' not in message
        assert 'only reads' in caplog.text
        assert isinstance(old.refuse_writes, SchemaNewerThanCode)
        assert count_models(migrated) == before  # Nothing was written.
        # Every write is refused from now on, up front; reads go on.
        with pytest.raises(SchemaNewerThanCode):
            old.update_model(old.list_models()[0].id, description='x')
        with pytest.raises(SchemaNewerThanCode):
            old.add_task(task_name='t1', base_runtime='sglang', model_config={}, parameters={},
                         optimization_config={}, benchmark_config={},
                         clusterbasemodel_config={'preset': 'llama-3-2-1b-instruct'})
        assert [m.model_name for m in old.list_models()] == ['m']
        assert old.get_model(old.list_models()[0].id).model_name == 'm'
        assert count_models(migrated) == before
        # It is still a client (its heartbeat is its own write): it goes on being seen.
        age_all(migrated, 100)
        old.registration.next_beat = 0.0
        old.list_models()
        assert [c.age < 50 for c in clients_of(migrated)] == [True]


def test_an_expand_script_newer_than_the_code_does_not(migrated, tmp_path):
    with connect(migrated, release='trainer 4.1') as old:
        directory = release(tmp_path, 'next', {'0098_add_note.py': ADD_NOTE})
        assert Engine(open_database(migrated, mode='migrate'), directory).migrate().names == [
            '0098_add_note']
        old.registration.next_beat = 0.0
        old.add_model(**MODEL)
        assert old.refuse_writes is None and count_models(migrated) == 1
        assert old.registration.next_beat > 0  # It did beat (and read the history).


def test_a_write_failing_on_a_newer_contract_script_says_so(migrated, tmp_path):
    """Before any heartbeat reads the history: the write runs, fails on what the contract
    script dropped, and the error names that script instead of a bare database error -- in a
    store that registered and in one that did not."""
    registered, unregistered = connect(migrated), connect(migrated, register=False)
    try:
        registered.registration.next_beat = float('inf')  # No heartbeat in this test.
        directory = release(tmp_path, 'next', {'0099_drop_provider.py': DROP_PROVIDER})
        Engine(open_database(migrated, mode='migrate'), directory).migrate(force=True)
        for store in (registered, unregistered):
            with pytest.raises(SchemaNewerThanCode) as err:
                store.add_model(provider='hf', **MODEL)  # A column 0099 dropped.
            assert err.value.unknown == ['0099_drop_provider']
            assert err.value.__cause__ is not None  # The database's own error, kept.
            with pytest.raises(SchemaNewerThanCode):  # Refused up front from now on.
                store.add_model(**MODEL)
        assert count_models(migrated) == 0
    finally:
        registered.close()
        unregistered.close()


def test_writes_go_on_once_the_newer_contract_script_is_rolled_back(migrated, tmp_path):
    contract = ADD_NOTE.replace('deploy_note', 'x') + "\nphase = 'contract'\n"
    engine = Engine(open_database(migrated, mode='migrate'),
                    release(tmp_path, 'next', {'0099_contract.py': contract}))
    with connect(migrated) as old:
        engine.migrate(force=True)
        old.registration.next_beat = 0.0
        with pytest.raises(SchemaNewerThanCode):
            old.add_model(**MODEL)
        assert engine.rollback().names == ['0099_contract']
        old.registration.next_beat = 0.0
        old.add_model(**MODEL)
        assert old.refuse_writes is None and count_models(migrated) == 1


def test_a_store_opened_read_only_stays_so(migrated, tmp_path):
    """allow_newer's refusal is connect()'s, not a heartbeat's: nothing lifts it."""
    engine = Engine(open_database(migrated, mode='migrate'), next_release(tmp_path))
    engine.migrate()
    with connect(migrated, allow_newer=True) as store:
        assert store.registration is None
        with pytest.raises(SchemaNewerThanCode):
            store.add_model(**MODEL)
        assert store.list_models() == []
