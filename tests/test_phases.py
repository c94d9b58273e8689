"""Expand and contract phases: what a script declares, what status shows, what the history
records, ``migrate --phase``, and the gate that lets the previous release keep working while
only expand scripts are newer than its code (docs/rolling-upgrades.md)."""
import json
import os
import shutil

import pytest

from modelstore import connect
from modelstore.engine import Engine
from modelstore.engine.scripts import default_directory, discover, read_phase
from modelstore.exceptions import MigrationError, SchemaNewerThanCode, ScriptError
from modelstore.shared.database import open_database

from conftest import SHIPPED

ADD_NOTE = '''
def up(migrator, db):
    migrator.migrate(migrator.add_column('fine_tuned_models', 'deploy_note',
                                         TextField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'deploy_note'))
'''

DROP_NOTE = '''
phase = 'contract'


def up(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'deploy_note'))
'''


def release(tmp_path, name, extra):
    """A scripts directory: the shipped scripts plus ``extra`` ({filename: body})."""
    directory = tmp_path / name
    directory.mkdir()
    for script in SHIPPED:
        shutil.copy(os.path.join(default_directory(), script + '.py'), directory)
    for filename, body in extra.items():
        (directory / filename).write_text('from peewee import *\n' + body)
    return str(directory)


def engine_on(url, directory):
    return Engine(open_database(url, mode='migrate'), directory)


def test_the_phase_is_read_from_the_text_without_running_it():
    assert read_phase('s', 'def up(m, db): pass\n') == 'expand'
    assert read_phase('s', "phase = 'contract'\nraise SystemExit\n") == 'contract'
    assert read_phase('s', "phase: str = 'expand'\n") == 'expand'
    # A phase inside a function is not the module's.
    assert read_phase('s', "def up(m, db):\n    phase = 'contract'\n") == 'expand'
    for bad in ("phase = 'Contract'\n", "phase = PHASE\n", "phase = 1\n"):
        with pytest.raises(ScriptError) as err:
            read_phase('0012_x', bad)
        assert '0012_x' in str(err.value) and "'expand' or 'contract'" in str(err.value)


def test_every_shipped_script_is_an_expand_script():
    assert [s.phase for s in discover()] == ['expand'] * len(SHIPPED)


def test_a_bad_phase_is_refused_before_anything_runs(db_url, tmp_path):
    directory = release(tmp_path, 'next', {'0099_bad.py': "phase = 'drop'\n" + ADD_NOTE})
    engine = engine_on(db_url, directory)
    with pytest.raises(ScriptError) as err:
        engine.migrate()
    assert "0099_bad" in str(err.value) and "'drop'" in str(err.value)
    assert engine.database.get_tables() == []


def test_history_and_status_carry_the_phase(db_url, tmp_path, cli):
    directory = release(tmp_path, 'next', {'0098_add_note.py': ADD_NOTE,
                                           '0099_drop_note.py': DROP_NOTE})
    engine = engine_on(db_url, directory)
    engine.migrate()
    phases = {r.name: r.phase for r in engine.history.read()}
    assert phases['0098_add_note'] == 'expand' and phases['0099_drop_note'] == 'contract'
    assert set(phases.values()) == {'expand', 'contract'}
    code, out, _ = cli('status', '--database', db_url, '--migrations', directory, '--json')
    assert code == 0
    entries = {e['name']: e for e in json.loads(out)['scripts']}
    assert entries['0099_drop_note']['phase'] == 'contract'
    assert entries['0099_drop_note']['history']['phase'] == 'contract'
    code, out, _ = cli('status', '--database', db_url, '--migrations', directory)
    line = next(l for l in out.splitlines() if '0099_drop_note' in l)
    assert line.split()[:3] == ['applied', 'contract', '0099_drop_note']


def test_migrate_phase_stops_before_the_other_phase(db_url, tmp_path, cli):
    directory = release(tmp_path, 'next', {'0098_add_note.py': ADD_NOTE,
                                           '0099_drop_note.py': DROP_NOTE})
    engine = engine_on(db_url, directory)
    result = engine.migrate(phase='expand')
    assert result.names == SHIPPED + ['0098_add_note']
    assert result.held_back == ['0099_drop_note']
    assert engine.status().pending == ['0099_drop_note']
    # Nothing of the expand phase is left: the run does nothing and says what waits.
    code, out, _ = cli('migrate', '--database', db_url, '--migrations', directory,
                       '--phase', 'expand')
    assert code == 0
    assert 'Nothing to migrate in the expand phase.' in out
    assert 'Held back: 1 script (0099_drop_note, starting with the contract script' in out
    assert '--phase contract' in out
    code, out, _ = cli('migrate', '--database', db_url, '--migrations', directory,
                       '--phase', 'contract', '--json')
    assert code == 0, out
    report = json.loads(out)
    assert report['ran'] == ['0099_drop_note'] and report['held_back'] == []
    assert engine.status().pending == []


def test_contract_phase_does_not_jump_over_an_expand_script(db_url, tmp_path, cli):
    directory = release(tmp_path, 'next', {'0097_drop_name.py': DROP_NOTE.replace(
        "drop_column('fine_tuned_models', 'deploy_note')",
        "add_column('tasks', 'x', IntegerField(null=True))"),
        '0098_add_note.py': ADD_NOTE, '0099_drop_note.py': DROP_NOTE})
    engine = engine_on(db_url, directory)
    engine.migrate(target=SHIPPED[-1])
    result = engine.migrate(phase='expand')
    # The first pending script is a contract script: expand stops before it, leaving the
    # expand script after it too -- scripts run in their order, never around each other.
    assert result.names == [] and result.held_back == ['0097_drop_name', '0098_add_note',
                                                       '0099_drop_note']
    result = engine.migrate(phase='contract')
    assert result.names == ['0097_drop_name']
    assert result.held_back == ['0098_add_note', '0099_drop_note']
    code, out, _ = cli('migrate', '--database', db_url, '--migrations', directory,
                       '--phase', 'contract')
    assert code == 0 and 'starting with the expand script 0098_add_note' in out
    assert '--phase expand' in out and 'first: an expand script comes before them' in out


def test_an_unknown_phase_is_refused(db_url):
    engine = engine_on(db_url, None)
    with pytest.raises(MigrationError) as err:
        engine.migrate(phase='both')
    assert "unknown phase 'both'" in str(err.value)
    assert engine.status().applied == []


def test_the_previous_release_keeps_working_after_expand_scripts(db_url, tmp_path):
    directory = release(tmp_path, 'next', {'0098_add_note.py': ADD_NOTE})
    engine_on(db_url, directory).migrate()
    # This code (release N: the shipped scripts) on the schema of release N+1.
    store = connect(db_url)
    try:
        added = store.add_model(model_name='m', base_model='b', task='t', model_path='/p')
        store.update_model(added.id, description='still here')
        assert store.get_model(added.id).description == 'still here'
        assert [m.id for m in store.list_models()] == [added.id]
    finally:
        store.close()


def test_the_previous_release_refuses_after_a_contract_script(db_url, tmp_path):
    directory = release(tmp_path, 'next', {'0098_add_note.py': ADD_NOTE,
                                           '0099_drop_note.py': DROP_NOTE})
    engine_on(db_url, directory).migrate()
    with pytest.raises(SchemaNewerThanCode) as err:
        connect(db_url)
    assert err.value.unknown == ['0099_drop_note'] and err.value.contract
    message = str(err.value)  # What a library user can do: not the CLI's --migrations.
    assert 'has applied a script of a newer release not known to be expand' in message
    assert 'allow_newer=True' in message and '--migrations' not in message
    store = connect(db_url, allow_newer=True)  # reads only, as before phases
    try:
        with pytest.raises(SchemaNewerThanCode):
            store.add_model(model_name='m', base_model='b', task='t', model_path='/p')
    finally:
        store.close()


def test_a_newer_script_recorded_without_a_phase_counts_as_contract(db_url, tmp_path):
    directory = release(tmp_path, 'next', {'0098_add_note.py': ADD_NOTE})
    engine = engine_on(db_url, directory)
    engine.migrate()
    # As a release from before phases records it: no phase. Unknown is not safe.
    engine.history.model.update(phase=None).where(
        engine.history.model.name == '0098_add_note').execute()
    with pytest.raises(SchemaNewerThanCode) as err:
        connect(db_url)
    assert err.value.unknown == ['0098_add_note']


def test_an_add_then_a_drop_of_the_same_column_both_run(db_url, tmp_path):
    """The schema after 0099 (drop) equals the one before 0098 (add): adoption must not take
    the live table for 'after both' and record them adopted without running them."""
    directory = release(tmp_path, 'next', {'0098_add_note.py': ADD_NOTE,
                                           '0099_drop_note.py': DROP_NOTE})
    engine = engine_on(db_url, directory)
    engine.migrate(target=SHIPPED[-1])
    engine.migrate(phase='expand')
    assert 'deploy_note' in [c.name for c in engine.database.get_columns('fine_tuned_models')]
    engine.migrate(phase='contract')
    assert 'deploy_note' not in [c.name for c in engine.database.get_columns(
        'fine_tuned_models')]
    methods = {r.name: r.method for r in engine.history.read()}
    assert methods['0098_add_note'] == methods['0099_drop_note'] == 'ran'
