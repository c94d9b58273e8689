"""The shipped scripts: what `modelstore migrate` builds, undoes and reports, on real files."""
import datetime
import os
import sqlite3
import subprocess
import sys

import pytest

import modelstore
from modelstore import Engine, FineTunedModel, Task, detect_drift
from modelstore.shared.database import open_database
from modelstore.shared.urls import mask_url
from modelstore.engine.scripts import checksum, default_directory

from conftest import ON_MYSQL, ON_POSTGRES, SHIPPED, as_datetime, columns, dump, execute, history, tables

ADDED_COLUMNS = {
    '0002_add_is_custom_base_model': ('fine_tuned_models', ['is_custom_base_model']),
    '0003_task_slo_quant_parallel_metadata': ('tasks', ['slo_config', 'quant_config',
                                                        'parallel_config', 'metadata']),
    '0004_task_cluster_columns': ('tasks', ['clusterbasemodel_config',
                                            'clusterservingruntime_config',
                                            'created_clusterbasemodel',
                                            'created_clusterservingruntime']),
}


def test_the_four_required_scripts_ship_in_order():
    assert SHIPPED[0] == '0001_initial'
    assert SHIPPED[1:4] == list(ADDED_COLUMNS)


def test_migrate_creates_both_tables_with_every_column(cli, db_url):
    code, out, err = cli('migrate', '--database', db_url)
    assert code == 0, err
    assert out.splitlines()[0] == 'Migrating database: ' + mask_url(db_url)
    assert {'fine_tuned_models', 'tasks', 'schema_migration'} <= tables(db_url)
    for model in (FineTunedModel, Task):
        expected = [f.column_name for f in model._meta.sorted_fields]
        assert sorted(columns(db_url, model._meta.table_name)) == sorted(expected)


def test_migrate_prints_one_check_line_per_operation(cli, db_url):
    code, out, _ = cli('migrate', '--database', db_url)
    assert code == 0
    ticks = [line.strip() for line in out.splitlines() if line.strip().startswith('✓')]
    # 0001: two tables and three indexes; then 1 + 4 + 4 added columns; 0005's index; 0006's
    # nine columns; 0007's two indexes; 0008's table and column; 0009's index; 0010's batches;
    # 0011's table and its unique index; 0012's table and its index; 0013's three tables and
    # their three indexes; 0014's six columns; 0015's index; 0016's table and two indexes;
    # 0017's index.
    assert len(ticks) == 5 + 1 + 4 + 4 + 1 + 9 + 2 + 2 + 1 + 1 + 2 + 2 + 6 + 6 + 1 + 3 + 1
    assert "✓ Added column 'clusterbasemodel_config' (JSON) to 'tasks'" in ticks
    assert "✓ Added column 'created_clusterbasemodel' (VARCHAR) to 'tasks'" in ticks
    assert "✓ Created table 'fine_tuned_models'" in ticks
    assert ("✓ Added column 'is_custom_base_model' (BOOLEAN NOT NULL DEFAULT FALSE) to "
            "'fine_tuned_models'") in ticks
    listing = ("✓ Created index 'ix_fine_tuned_models_listing' on 'fine_tuned_models' (task, "
               "is_custom_base_model, creation_date, model_name)")
    assert listing + (' concurrently (writers are not blocked)' if ON_POSTGRES else '') in ticks
    assert 'Applied 17 scripts (51 operations)' in out


def test_history_has_a_complete_row_per_script(cli, db_url):
    before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    cli('migrate', '--database', db_url)
    rows = history(db_url)
    assert [r['name'] for r in rows] == SHIPPED
    for row in rows:
        path = os.path.join(default_directory(), row['name'] + '.py')
        assert row['checksum'] == checksum(path)
        assert row['method'] == 'ran'
        assert row['tool_version'] == modelstore.__version__
        assert '@' in row['applied_by']
        assert row['duration'] >= 0
        applied_utc = as_datetime(row['applied_utc'])
        assert before - datetime.timedelta(seconds=1) <= applied_utc
        assert applied_utc <= before + datetime.timedelta(minutes=1)


def test_second_migrate_changes_nothing_and_says_so(cli, db_url):
    cli('migrate', '--database', db_url)
    snapshot = dump(db_url)
    code, out, _ = cli('migrate', '--database', db_url)
    assert code == 0
    assert 'Nothing to migrate' in out and '%d scripts applied' % len(SHIPPED) in out
    assert dump(db_url) == snapshot


@pytest.mark.slow
def test_pwmigrate_lists_the_same_applied_scripts(cli, db_path, db_url):
    cli('migrate', '--database', db_url)
    result = subprocess.run([sys.executable, '-m', 'playhouse.migrations', db_path, 'status',
                             '-d', default_directory()], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines] == SHIPPED
    assert all(line.startswith('[x]') for line in lines)


@pytest.mark.slow
def test_pwmigrate_runs_the_scripts_unchanged_and_modelstore_reads_its_history(cli, db_url):
    result = subprocess.run([sys.executable, '-m', 'playhouse.migrations', db_url, 'up',
                             '-d', default_directory()], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    code, out, _ = cli('check', '--database', db_url)
    assert code == 0, out
    code, out, _ = cli('history', '--database', db_url, '--json')
    import json
    assert [r['name'] for r in json.loads(out)['history']] == SHIPPED


def test_a_legacy_writer_omitting_the_flag_reads_back_false(cli, db_url):
    cli('migrate', '--database', db_url)
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, description, "
                    "creation_date, model_path) VALUES ('legacy', 'gpt2', 'summarization', '', "
                    "'2025-10-30T14:03:11.512345', '/models/legacy')")
    with modelstore.connect(db_url) as store:
        (model,) = store.list_models()
        assert model.model_name == 'legacy'
        assert model.is_custom_base_model is False


def test_column_adds_are_one_alter_each_with_no_update_or_rebuild(db_url):
    database = open_database(db_url, mode='migrate')
    runs = {r.name: r for r in Engine(database).migrate().runs}
    for name, (table, added) in ADDED_COLUMNS.items():
        statements = [sql for step in runs[name].steps for sql, _ in step.sql]
        assert len(statements) == len(added), statements
        for sql, column in zip(statements, added):
            q = '`' if ON_MYSQL else '"'
            assert sql.startswith('ALTER TABLE {q}%s{q} ADD COLUMN {q}%s{q}'.format(q=q)
                                  % (table, column))
    (flag_sql,) = [sql for s in runs['0002_add_is_custom_base_model'].steps for sql, _ in s.sql]
    assert flag_sql.endswith('NOT NULL DEFAULT FALSE')


def test_shipped_scripts_on_an_empty_database_leave_no_drift(db_url):
    database = open_database(db_url, mode='migrate')
    assert detect_drift(database)  # Empty: both tables missing.
    Engine(database).migrate()
    drift = detect_drift(database)
    assert not drift, str(drift)


def test_dry_run_on_a_fresh_file_prints_the_sql_and_leaves_no_tables(cli, db_path, db_url):
    open(db_path, 'wb').close()
    code, out, err = cli('migrate', '--database', db_url, '--dry-run')
    assert code == 0, err
    assert 'CREATE TABLE "fine_tuned_models"' in out
    assert 'ALTER TABLE "tasks" ADD COLUMN "clusterbasemodel_config"' in out
    assert 'nothing was changed' in out
    assert tables(db_url) == set()
    assert os.path.getsize(db_path) == 0


def test_dry_run_does_not_create_a_missing_file(cli, db_path, db_url):
    code, out, _ = cli('migrate', '--database', db_url, '--dry-run')
    assert code == 0 and 'CREATE TABLE' in out
    assert not os.path.exists(db_path)


def test_dry_run_on_a_partial_database_changes_nothing(cli, db_url):
    cli('migrate', '--database', db_url, '--to', '0001_initial')
    snapshot = dump(db_url)
    code, out, _ = cli('migrate', '--database', db_url, '--dry-run')
    assert code == 0
    assert '0001_initial' not in out and '0004_task_cluster_columns' in out
    assert dump(db_url) == snapshot


def test_migrate_to_first_then_gate_check_status_and_complete(cli, db_url):
    code, _, _ = cli('migrate', '--database', db_url, '--to', SHIPPED[0])
    assert code == 0
    with pytest.raises(modelstore.SchemaOutOfDate) as info:
        modelstore.connect(db_url)
    assert 'modelstore migrate' in str(info.value)
    assert info.value.pending == SHIPPED[1:]
    assert cli('check', '--database', db_url)[0] == 1
    code, out, _ = cli('status', '--database', db_url, '--json')
    import json
    status = json.loads(out)
    assert status['pending'] == SHIPPED[1:] and status['applied'] == SHIPPED[:1]
    assert status['database'] == mask_url(db_url)
    assert cli('migrate', '--database', db_url)[0] == 0
    assert cli('check', '--database', db_url)[0] == 0
    modelstore.connect(db_url).close()


def test_rollback_everything_then_up_again_leaves_no_drift(cli, db_url):
    cli('migrate', '--database', db_url)
    code, out, err = cli('rollback', '--database', db_url, '--to', SHIPPED[0])
    assert code == 0, err
    assert tables(db_url) == {'schema_migration'}
    assert history(db_url) == []
    assert cli('migrate', '--database', db_url)[0] == 0
    database = open_database(db_url, mode='inspect')
    assert not detect_drift(database)


@pytest.mark.parametrize('index', range(len(SHIPPED)))
def test_each_down_restores_the_schema_before_its_up(cli, db_url, index):
    if index:
        cli('migrate', '--database', db_url, '--to', SHIPPED[index - 1])
    before = dump(db_url)[0] if index else []
    assert cli('migrate', '--database', db_url, '--to', SHIPPED[index])[0] == 0
    code, out, err = cli('rollback', '--database', db_url)
    assert code == 0, err
    assert SHIPPED[index] in out
    # sqlite_sequence is SQLite's own: created with the first AUTOINCREMENT table, never dropped.
    ours = lambda rows: [r for r in rows if 'schema_migration' not in r[:3] and
                         not str(r[1]).startswith('sqlite_')]
    assert ours(dump(db_url)[0]) == ours(before)


def test_check_reports_a_column_dropped_by_hand(cli, db_url):
    cli('migrate', '--database', db_url)
    execute(db_url, 'ALTER TABLE tasks DROP COLUMN metadata',
            'ALTER TABLE tasks ADD COLUMN notes TEXT')
    code, out, _ = cli('check', '--database', db_url)
    assert code == 1
    assert 'drift: missing column tasks.metadata' in out
    assert 'note: extra column tasks.notes (not in the model; left as it is)' in out


def test_a_column_added_by_hand_is_reported_but_is_not_drift(cli, db_url):
    cli('migrate', '--database', db_url)
    execute(db_url, "ALTER TABLE fine_tuned_models ADD COLUMN owner TEXT DEFAULT 'ml-team'")
    code, out, _ = cli('check', '--database', db_url)
    assert code == 0, out
    assert 'note: extra column fine_tuned_models.owner (not in the model; left as it is)' in out


# 0005's index, which the model declares.
LISTING = ('CREATE INDEX ix_listing ON fine_tuned_models (task, is_custom_base_model, '
           'creation_date, model_name)')
# 0007_search_indexes, 0009_model_version_index, 0015 and 0017.
SEARCH = ('CREATE INDEX ix_created ON fine_tuned_models (creation_date, id)',
          'CREATE INDEX ix_base ON fine_tuned_models (base_model, creation_date, id)',
          'CREATE UNIQUE INDEX fine_tuned_models_model_name_version ON fine_tuned_models '
          '(model_name, version)' + ('' if ON_MYSQL else ' WHERE version IS NOT NULL'),
          'CREATE INDEX ix_parent ON fine_tuned_models (parent_id)',  # 0015's.
          'CREATE INDEX fine_tuned_models_archived_at ON fine_tuned_models (archived_at)'
          + ('' if ON_MYSQL else ' WHERE archived_at IS NOT NULL'))  # 0017's.


def hand_made(sql):
    """A hand-made table's DDL for this backend: on MySQL the indexed text columns are
    VARCHAR, as 0001 makes them (TEXT cannot be indexed there)."""
    if not ON_MYSQL:
        return sql
    for column in ('model_name', 'base_model', 'task', 'creation_date'):
        sql = sql.replace('%s TEXT' % column, '%s VARCHAR(255)' % column)
    return sql


def table_lines(drift):
    """Drift but the line on 0010's triggers, which a table made by hand lacks (that line is
    test_versions' business)."""
    return [line for line in drift.lines if not line.startswith('trigger')]


# 0006_training_metadata's and 0008_model_versions' columns, for the hand-made tables below.
METADATA = (', training_seconds REAL, peak_vram_bytes BIGINT, dataset_rows BIGINT, '
            'dataset_bytes BIGINT, metrics TEXT, hyperparameters TEXT, strategy VARCHAR(255), '
            'provider VARCHAR(255), updated_at TEXT, version INTEGER'
            # 0014_lineage_and_archive.
            ', parent_id BIGINT, dataset_uri TEXT, dataset_sha256 VARCHAR(64), '
            'source_commit VARCHAR(255), run_id VARCHAR(255), archived_at ' +
            ('TIMESTAMP' if ON_POSTGRES else 'DATETIME'))


def test_a_hand_added_not_null_column_without_default_is_drift(db_url):
    # Every insert modelstore makes would be refused, so this is not harmless.
    execute(db_url, hand_made('''
        CREATE TABLE fine_tuned_models (id INTEGER PRIMARY KEY,
            model_name TEXT NOT NULL, base_model TEXT NOT NULL, task TEXT NOT NULL,
            description TEXT, creation_date TEXT NOT NULL, model_path TEXT NOT NULL,
            is_custom_base_model BOOLEAN NOT NULL DEFAULT FALSE, owner TEXT NOT NULL''' +
            METADATA + ')'), LISTING, *SEARCH)
    drift = detect_drift(open_database(db_url, mode='inspect'), [FineTunedModel])
    assert table_lines(drift) == ['extra column fine_tuned_models.owner is NOT NULL without a '
                           'default: inserts that do not name it fail']


def test_drift_sees_types_nullability_and_database_defaults(db_url):
    # A hand-made table may get types, nullability and defaults wrong.
    execute(db_url, hand_made('''
        CREATE TABLE fine_tuned_models (id INTEGER PRIMARY KEY,
            model_name TEXT NOT NULL, base_model TEXT, task TEXT NOT NULL,
            description TEXT, creation_date TEXT NOT NULL, model_path INTEGER NOT NULL,
            is_custom_base_model BOOLEAN''' + METADATA + ')'), LISTING, *SEARCH)
    drift = detect_drift(open_database(db_url, mode='inspect'), [FineTunedModel])
    assert 'fine_tuned_models.model_path has type %s, expected TEXT' % (
        'INT' if ON_MYSQL else 'INTEGER') in drift.lines
    assert 'fine_tuned_models.base_model is nullable, expected NOT NULL' in drift.lines
    assert ('fine_tuned_models.is_custom_base_model has default none, expected FALSE'
            in drift.lines)
    assert len(table_lines(drift)) == 3, drift.lines


def test_modelforge_v11_nullable_flag_is_a_known_variant_not_drift(db_path, db_url):
    conn = sqlite3.connect(db_path)
    conn.executescript('''
        CREATE TABLE fine_tuned_models (id INTEGER PRIMARY KEY AUTOINCREMENT,
            model_name TEXT NOT NULL, base_model TEXT NOT NULL, task TEXT NOT NULL,
            description TEXT, creation_date TEXT NOT NULL, model_path TEXT NOT NULL,
            is_custom_base_model BOOLEAN DEFAULT 0''' + METADATA + ');' + LISTING + ';'
                       + ';'.join(SEARCH))
    conn.close()
    drift = detect_drift(open_database(db_url, mode='inspect'), [FineTunedModel])
    assert not table_lines(drift), drift.lines
    assert drift.notes == ['fine_tuned_models.is_custom_base_model is nullable, as the legacy '
                           'app created it; modelstore always writes a value there']


def test_tables_modelstore_does_not_model_are_never_drift(cli, db_url):
    cli('migrate', '--database', db_url)
    execute(db_url, 'CREATE TABLE experiments (id INTEGER PRIMARY KEY, task_id INTEGER '
                    'REFERENCES tasks (id))', 'CREATE TABLE models (id INTEGER PRIMARY KEY)')
    assert cli('check', '--database', db_url)[0] == 0
