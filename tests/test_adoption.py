"""Adopting the legacy ModelForge and autotuner files: every historical state, no row lost."""
import datetime
import hashlib
import json
import os
import re
import shutil
import sqlite3

import pytest

import modelstore
from modelstore import ModelStore, SchemaOutOfDate, TaskStatus, detect_drift
from modelstore.shared.database import open_database
from modelstore.engine.scripts import checksum, default_directory

import legacy
from conftest import SHIPPED, as_datetime, dump, history, tables

# The legacy apps wrote SQLite files: adoption is tested on them.
pytestmark = pytest.mark.sqlite_only

# Columns each script adds, and the value legacy rows must read back in them.
ADDED = {
    'fine_tuned_models': {'is_custom_base_model': ('integer', 0)},
    'tasks': {c: ('null', None) for c, _ in legacy.AUTOTUNER_MID_NOVEMBER
              + legacy.AUTOTUNER_2025_11_18},
}


def sha256(path):
    with open(path, 'rb') as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def values(path, table):
    """{column: [(typeof, value) per row in rowid order]}: every stored value, exactly."""
    conn = sqlite3.connect(path)
    try:
        cols = [r[1] for r in conn.execute('PRAGMA table_info("%s")' % table)]
        out = {}
        for col in cols:
            out[col] = conn.execute('SELECT typeof("%s"), "%s" FROM "%s" ORDER BY rowid'
                                    % (col, col, table)).fetchall()
        return out
    finally:
        conn.close()


def unmodelled(path):
    """Schema and rows of the tables modelstore must never touch."""
    schema, rows = dump(path)
    return ([s for s in schema if s[2] in legacy.UNMODELLED],
            {t: r for t, r in rows.items() if t in legacy.UNMODELLED})


@pytest.fixture(params=sorted(legacy.STATES))
def state(request, tmp_path):
    parts, expected = legacy.STATES[request.param]
    path = legacy.build(str(tmp_path / ('%s.db' % request.param)), *parts)
    return request.param, path, 'sqlite:///' + path, expected


def test_every_legacy_state_is_adopted_with_no_value_lost(cli, state):
    name, path, url, expected = state
    owned = {t: values(path, t) for t in ('fine_tuned_models', 'tasks') if t in tables(path)}
    others = unmodelled(path)
    started = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    code, out, err = cli('migrate', '--database', url)
    assert code == 0, err

    # History: complete, each script marked adopted or ran, with the time and checksum.
    rows = history(path)
    assert [r['name'] for r in rows] == SHIPPED
    assert {r['name']: r['method'] for r in rows} == expected
    for row in rows:
        assert row['checksum'] == checksum(os.path.join(default_directory(), row['name'] + '.py'))
        when = as_datetime(row['applied_utc'])
        assert started - datetime.timedelta(seconds=1) <= when <= started + \
            datetime.timedelta(minutes=1)
    # The output says which were adopted and which ran.
    for script, method in expected.items():
        marked = '%s  (adopted)' % script in out
        assert marked == (method == 'adopted'), (script, out)

    database = open_database(url, mode='inspect')
    drift = detect_drift(database)
    assert not drift, drift.lines

    # Every legacy value is unchanged, byte for byte and type for type; new columns hold their
    # defaults in legacy rows.
    for table, before in owned.items():
        after = values(path, table)
        for col, cells in before.items():
            assert after[col] == cells, (table, col)
        for col, (kind, value) in ADDED[table].items():
            if col not in before:
                assert set(after[col]) == {(kind, value)}, (table, col)
    assert unmodelled(path) == others

    # Both tables exist now, whichever app the file came from.
    assert {'fine_tuned_models', 'tasks'} <= tables(path)

    # Again: nothing to do, nothing changed.
    snapshot = dump(path)
    code, out, _ = cli('migrate', '--database', url)
    assert code == 0 and 'Nothing to migrate' in out
    assert dump(path) == snapshot


def test_status_and_dry_run_show_what_would_be_adopted_and_change_nothing(cli, state):
    name, path, url, expected = state
    digest = sha256(path)
    to_adopt = sorted(n for n, m in expected.items() if m == 'adopted')

    code, out, _ = cli('status', '--database', url, '--json')
    assert code == 1
    report = json.loads(out)
    assert sorted(report['to_adopt']) == to_adopt
    assert report['pending'] == SHIPPED
    for script in report['scripts']:
        wanted = {'adopt'} if expected[script['name']] == 'adopted' else {'run', 'partial'}
        assert script['plan'] in wanted, script

    code, out, _ = cli('status', '--database', url)
    assert code == 1
    assert 'no modelstore history' in out
    for script in to_adopt:
        assert any(script in line and 'will be adopted' in line for line in out.splitlines())

    code, out, _ = cli('migrate', '--dry-run', '--database', url)
    assert code == 0
    for script in to_adopt:
        assert '%s  (would be adopted)' % script in out
    assert 'nothing was changed' in out
    assert sha256(path) == digest
    assert 'schema_migration' not in tables(path)


def test_a_file_with_one_app_gets_the_other_table_created(cli, tmp_path):
    for parts, created in (((legacy.modelforge_v10,), 'tasks'),
                           ((legacy.autotuner_original,), 'fine_tuned_models')):
        path = legacy.build(str(tmp_path / ('%s.db' % created)), *parts)
        code, out, _ = cli('migrate', '--database', 'sqlite:///' + path)
        assert code == 0
        assert "Created table '%s'" % created in out
        kept = 'tasks' if created == 'fine_tuned_models' else 'fine_tuned_models'
        assert '%s already holds this script\'s effect: kept as it is' % kept in out


# -- refusing what cannot be proven -----------------------------------------------------------

V10_WITHOUT_PATH = legacy.MODELFORGE_V10.replace(',\n    model_path TEXT NOT NULL', '')
UNRECOGNISABLE = {
    'required column missing': (
        [V10_WITHOUT_PATH], 'column fine_tuned_models.model_path is missing'),
    'incompatible type': (
        [legacy.MODELFORGE_V10.replace('model_path TEXT', 'model_path INTEGER')],
        'column fine_tuned_models.model_path has type INTEGER, expected TEXT'),
    'half of a script': (
        [legacy.AUTOTUNER_ORIGINAL, 'ALTER TABLE tasks ADD COLUMN slo_config JSON',
         'ALTER TABLE tasks ADD COLUMN quant_config JSON'],
        '2 columns are missing from tasks: parallel_config, metadata'),
    'a later script without an earlier one': (
        [legacy.AUTOTUNER_ORIGINAL] + ['ALTER TABLE tasks ADD COLUMN %s %s' % c
                                       for c in legacy.AUTOTUNER_2025_11_18],
        '4 columns are missing from tasks: slo_config, quant_config, parallel_config, metadata'),
    'unique index missing': (
        [legacy.AUTOTUNER_ORIGINAL.replace(
            'CREATE UNIQUE INDEX ix_tasks_task_name ON tasks (task_name);', '')],
        'unique index on tasks(task_name) is missing'),
    'nullable column made NOT NULL': (
        [legacy.AUTOTUNER_ORIGINAL.replace('description VARCHAR,',
                                           'description VARCHAR NOT NULL,')],
        'column tasks.description is NOT NULL, expected nullable'),
    'a different default': (
        [legacy.MODELFORGE_V11_FRESH.replace('BOOLEAN DEFAULT 0', 'BOOLEAN DEFAULT 1')],
        'column fine_tuned_models.is_custom_base_model has default 1, expected FALSE'),
    'id is not the primary key': (
        [legacy.MODELFORGE_V10.replace('id INTEGER PRIMARY KEY AUTOINCREMENT', 'id INTEGER')],
        'column fine_tuned_models.id is not the primary key'),
    'hand-added NOT NULL column without a default': (
        [legacy.MODELFORGE_V10.replace('model_path TEXT NOT NULL',
                                       'model_path TEXT NOT NULL, owner TEXT NOT NULL')],
        'column fine_tuned_models.owner (not part of modelstore\'s schema) is NOT NULL without '
        'a default'),
}


@pytest.mark.parametrize('case', sorted(UNRECOGNISABLE))
def test_an_unrecognisable_table_is_refused_with_a_report_and_the_file_unchanged(cli, db_path,
                                                                               case):
    statements, expected_line = UNRECOGNISABLE[case]
    conn = sqlite3.connect(db_path)
    for sql in statements:
        conn.executescript(sql)
    conn.execute(legacy.MODELFORGE_V10)  # IF NOT EXISTS: a second table for some cases.
    conn.commit()
    conn.close()
    digest = sha256(db_path)
    code, out, err = cli('migrate', '--database', db_path)
    assert code == 2, out
    assert err.startswith('error: cannot adopt sqlite:///%s' % db_path)
    assert expected_line in err, err
    assert 'nothing was changed' in err and 'modelstore migrate --fake' in err
    assert sha256(db_path) == digest
    # status shows the same report and does not change the file either.
    code, out, _ = cli('status', '--database', db_path)
    assert code == 1 and expected_line in out and 'migrate will refuse' in out
    assert sha256(db_path) == digest
    with pytest.raises(modelstore.MigrationError) as info:
        modelstore.connect(db_path, auto_migrate=True)
    assert expected_line in info.value.problems[-1] or expected_line in '\n'.join(
        info.value.problems)
    assert sha256(db_path) == digest


def test_columns_and_indexes_added_by_hand_are_kept_and_reported(cli, db_path, db_url):
    legacy.build(db_path, legacy.modelforge_v10)
    conn = sqlite3.connect(db_path)
    conn.execute("ALTER TABLE fine_tuned_models ADD COLUMN owner TEXT DEFAULT 'ml'")
    conn.execute("UPDATE fine_tuned_models SET owner = 'alice' WHERE id = 1")
    conn.execute('CREATE INDEX my_owner_idx ON fine_tuned_models (owner)')
    conn.commit()
    conn.close()
    owners = values(db_path, 'fine_tuned_models')['owner']

    code, out, err = cli('migrate', '--database', db_url)
    assert code == 0, err
    assert ("note: column fine_tuned_models.owner is not part of modelstore's schema: kept as "
            "it is") in out
    assert ("note: index on fine_tuned_models(owner) is not part of modelstore's schema: kept "
            "as it is") in out
    assert values(db_path, 'fine_tuned_models')['owner'] == owners
    code, out, _ = cli('check', '--database', db_url)
    assert code == 0, out
    assert 'note: extra column fine_tuned_models.owner' in out
    with modelstore.connect(db_url) as store:  # Our inserts work beside the extra column.
        store.add_model(model_name='m', base_model='b', task='text-generation',
                        model_path='/m')


def test_tables_modelstore_does_not_model_are_never_reported(cli, tmp_path):
    parts, _ = legacy.STATES['both-apps-current']
    path = legacy.build(str(tmp_path / 'both.db'), *parts)
    for command in ('status', 'migrate', 'check'):
        code, out, err = cli(command, '--database', path)
        for table in legacy.UNMODELLED:
            assert not re.search(r'\b%s\b' % table, out + err), (command, table)
    assert code == 0


def test_a_run_that_fails_halfway_through_adoption_finishes_on_the_next_run(cli, tmp_path):
    # 0002 fails on the real file (not on the in-memory replay), after 0001 has run.
    directory = tmp_path / 'scripts'
    shutil.copytree(default_directory(), directory,
                    ignore=shutil.ignore_patterns('__pycache__', '__init__.py'))
    script = directory / '0002_add_is_custom_base_model.py'
    good = script.read_text()
    script.write_text(good.replace('def up(migrator, db):\n', 'def up(migrator, db):\n'
                                   '    if db.database != ":memory:":\n'
                                   '        raise RuntimeError("disk on fire")\n'))
    path = legacy.build(str(tmp_path / 'at.db'), legacy.autotuner_mid_november)
    code, _, err = cli('migrate', '--database', path, '--migrations', directory)
    assert code == 2 and 'disk on fire' in err
    assert [r['name'] for r in history(path)] == ['0001_initial']

    script.write_text(good)
    code, out, err = cli('migrate', '--database', path, '--migrations', directory)
    assert code == 0, err
    assert {r['name']: r['method'] for r in history(path)} == legacy.STATES[
        'autotuner-mid-november'][1]


# -- foreign keys -----------------------------------------------------------------------------

def test_the_autotuner_file_keeps_every_experiment_row_with_foreign_keys_on(cli, tmp_path):
    path = legacy.build(str(tmp_path / 'at.db'), legacy.autotuner_original)
    before = dump(path)[1]['experiments']
    assert len(before) == len(legacy.EXPERIMENT_ROWS)
    code, _, err = cli('migrate', '--database', path)
    assert code == 0, err
    conn = sqlite3.connect(path)
    conn.execute('PRAGMA foreign_keys = ON')
    try:
        assert conn.execute('SELECT * FROM experiments ORDER BY rowid').fetchall() == before
        assert conn.execute('PRAGMA foreign_key_check').fetchall() == []
        # The constraint itself survived: a child row without its task is still refused.
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO experiments (task_id, experiment_id, parameters) "
                         "VALUES (999, 1, '{}')")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute('DELETE FROM tasks WHERE id = 1')
    finally:
        conn.close()


# -- reading legacy rows through modelstore ---------------------------------------------------

def test_legacy_rows_read_back_through_the_registry(cli, tmp_path):
    parts, _ = legacy.STATES['both-apps-current']
    path = legacy.build(str(tmp_path / 'both.db'), *parts)
    assert cli('migrate', '--database', path)[0] == 0
    with modelstore.connect(path) as store:
        models = {m.model_name: m for m in store.list_models()}
        assert models['llama-sum'].creation_date == datetime.datetime(2025, 10, 30, 14, 3, 11,
                                                                     512345)
        assert models['qa-bert'].creation_date == datetime.datetime(2025, 10, 30, 9, 0, 0)
        assert models['gen-small'].description.endswith(' (Custom Model)')
        assert models['no-desc'].description is None
        assert models['qa-bert'].description == ''
        assert models['custom-gen'].is_custom_base_model is True
        assert models['llama-sum'].is_custom_base_model is False  # Predates the column.
        assert [m.model_name for m in store.list_models()][:2] == ['rec-sum', 'custom-gen']

        done = store.get_task(1)
        assert done.status is TaskStatus.COMPLETED
        assert done.model_config == {'model_name': 'llama-3-2-1b-instruct',
                                     'namespace': 'autotuner'}
        assert done.created_at == datetime.datetime(2025, 10, 24, 9, 12, 33, 123456)
        assert done.elapsed_time == 2961.5
        assert store.get_task(3).benchmark_config == {'unicode': 'déjà vu ✓'}
        assert store.get_task(3).description == 'OOM — déjà vu'
        unset = store.get_task_by_name('ome-unset')
        assert unset.status is TaskStatus.PENDING
        assert (unset.clusterbasemodel_config, unset.clusterservingruntime_config,
                unset.created_clusterbasemodel, unset.created_clusterservingruntime) == (
            None, None, None, None)
        custom = store.get_task(6)
        assert custom.clusterbasemodel_config['spec']['storage']['path'] == '/raid/my-model'
        assert custom.created_clusterservingruntime == 'my-runtime'
        assert store.get_task(4).task_metadata == {'checkpoint': {'iteration': 3}}
        assert [t.id for t in store.list_tasks(status='pending')] == [2, 7]
        assert [t.task_name for t in store.list_tasks(TaskStatus.CANCELLED)] == ['ome-preset']


# -- the seeds' own failure ---------------------------------------------------------------------

def test_the_seed_failure_on_a_modelforge_v10_file(cli, db_path, db_url):
    legacy.build(db_path, legacy.modelforge_v10)
    digest = sha256(db_path)
    fields = dict(model_name='custom-llama', base_model='/home/u/bases/llama-ft',
                  task='text-generation', description='Own base (Custom Model)',
                  model_path='/home/u/.local/share/ModelForge/models/custom-llama_1',
                  is_custom_base_model=True)

    # The startup gate refuses, naming the command.
    with pytest.raises(SchemaOutOfDate) as info:
        modelstore.connect(db_url)
    assert info.value.pending == SHIPPED
    assert 'modelstore migrate --database' in str(info.value)
    assert sha256(db_path) == digest
    # A store built by hand, past the gate, still gets SchemaOutOfDate, not a raw sqlite error.
    before = dump(db_path)
    store = ModelStore(open_database(db_url), db_url)
    with pytest.raises(SchemaOutOfDate):
        store.add_model(**fields)
    store.close()
    assert dump(db_path) == before

    assert cli('migrate', '--database', db_url)[0] == 0
    with modelstore.connect(db_url) as store:
        stored = store.add_model(**fields)
        listed = {m.id: m for m in store.list_models()}
    assert listed[stored.id].is_custom_base_model is True
    assert listed[stored.id].model_name == 'custom-llama'
    assert len(listed) == len(legacy.MODELFORGE_ROWS_V10) + 1
    conn = sqlite3.connect(db_path)
    flag = conn.execute('SELECT typeof(is_custom_base_model), is_custom_base_model FROM '
                        'fine_tuned_models WHERE id = ?', (stored.id,)).fetchone()
    conn.close()
    assert flag == ('integer', 1)


def test_connect_with_auto_migrate_adopts_a_legacy_file(tmp_path):
    parts, expected = legacy.STATES['autotuner-2025-11-18']
    path = legacy.build(str(tmp_path / 'autotuner.db'), *parts)
    with modelstore.connect(path, auto_migrate=True) as store:
        assert len(store.list_tasks()) == 7
    assert {r['name']: r['method'] for r in history(path)} == expected
