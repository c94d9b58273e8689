"""PostgreSQL itself: its schema, its lock, concurrent runners and writers, a server restart.

Run against the server MODELSTORE_TEST_DATABASE_URL names (scripts/test.sh starts one).
"""
import subprocess
import sys
import time

import pytest

import modelstore
from modelstore import detect_drift
from modelstore.shared.database import open_database
from modelstore.dialects.postgresql import PostgresRunSession

from conftest import SHIPPED, execute, history, query

pytestmark = pytest.mark.postgres_only
# Imported where used: the suite collects with only the [test] extras (no driver).

MODEL = dict(base_model='meta-llama/Llama-3.2-1B', task='text-generation',
             model_path='/models/m')


def _types(url, table):
    return {r[0]: (r[1], r[2], r[3]) for r in query(
        url, 'SELECT column_name, data_type, is_nullable, column_default FROM '
        "information_schema.columns WHERE table_schema = 'public' AND table_name = ?", (table,))}


def test_the_shipped_scripts_build_the_postgres_schema_without_drift(cli, db_url):
    code, out, err = cli('migrate', '--database', db_url)
    assert code == 0, err
    tasks = _types(db_url, 'tasks')
    for column in ('model_config', 'parameters', 'slo_config', 'clusterbasemodel_config',
                   'metadata'):
        assert tasks[column][0] == 'jsonb', column
    assert tasks['created_at'][0] == 'timestamp without time zone'
    assert tasks['elapsed_time'][0] == 'double precision'
    assert tasks['status'][0] == 'character varying'
    flag = _types(db_url, 'fine_tuned_models')['is_custom_base_model']
    assert flag == ('boolean', 'NO', 'false')
    indexes = {r[0]: r[1] for r in query(
        db_url, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tasks'")}
    assert 'UNIQUE' in indexes['ix_tasks_task_name'] and 'ix_tasks_status' in indexes
    assert not detect_drift(open_database(db_url, mode='inspect'))
    assert [r['name'] for r in history(db_url)] == SHIPPED


def test_the_flag_column_is_added_in_one_metadata_only_statement(cli, db_url):
    cli('migrate', '--database', db_url, '--to', SHIPPED[0])
    code, out, _ = cli('migrate', '--database', db_url, '--to', SHIPPED[1], '--dry-run')
    sql = [line.strip() for line in out.splitlines() if line.strip().startswith(('ALTER',
                                                                               'UPDATE'))]
    assert sql == ['ALTER TABLE "fine_tuned_models" ADD COLUMN "is_custom_base_model" BOOLEAN '
                   'NOT NULL DEFAULT FALSE;']


def test_rows_written_before_a_column_add_read_its_default(cli, db_url):
    cli('migrate', '--database', db_url, '--to', SHIPPED[0])
    import psycopg2
    with psycopg2.connect(db_url) as conn:
        conn.cursor().execute(
            "INSERT INTO fine_tuned_models (model_name, base_model, task, creation_date, "
            "model_path) VALUES ('old', 'b', 't', '2025-10-30T14:03:11.512345', '/m')")
    conn.close()
    assert cli('migrate', '--database', db_url)[0] == 0
    with modelstore.connect(db_url) as store:
        (model,) = store.list_models()
        assert model.is_custom_base_model is False


def test_a_second_runner_waits_for_the_advisory_lock_then_times_out(cli, db_url):
    import psycopg2
    holder = psycopg2.connect(db_url)
    holder.autocommit = True
    holder.cursor().execute('SELECT pg_advisory_lock(%s)', (PostgresRunSession.KEY,))
    try:
        code, _, err = cli('migrate', '--database', db_url, '--lock-timeout', '0.5')
        assert code == 2 and 'held its lock for more than 0.5 s' in err
        assert 'schema_migration' not in {r[0] for r in query(
            db_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        holder.close()  # Its session ends, and with it the lock.
    assert cli('migrate', '--database', db_url)[0] == 0


def _spawn(code, *args):
    return subprocess.Popen([sys.executable, '-c', code] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_eight_runners_at_once_apply_each_script_exactly_once(db_url):
    runners = [subprocess.Popen([sys.executable, '-m', 'modelstore', 'migrate', '--database',
                                 db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(8)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in runners]
    for p in runners:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _, _ in results] == [0] * 8, [err for _, _, err in results]
    rows = history(db_url)
    assert sorted(r['name'] for r in rows) == SHIPPED
    applied = [out for _, out, _ in results if 'Applied %d scripts' % len(SHIPPED) in out]
    assert len(applied) == 1  # One ran them; the other seven waited and found nothing to do.


WRITER = '''
import sys, modelstore
url, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with modelstore.connect(url) as store:
    for i in range(n):
        store.add_model(model_name='%s-%d' % (tag, i), base_model='b', task='text-generation',
                        model_path='/m/%s/%d' % (tag, i))
print('done')
'''


def test_eight_writers_times_five_hundred_add_model_lose_nothing(db_url):
    modelstore.connect(db_url).close()
    writers = [_spawn(WRITER, db_url, 500, 'w%d' % i) for i in range(8)]
    outcomes = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in writers]
    for p in writers:
        p.stdout.close()
        p.stderr.close()
    assert [(c, o.strip()) for c, o, _ in outcomes] == [(0, 'done')] * 8, \
        [e for _, _, e in outcomes]
    names = {r[0] for r in query(db_url, 'SELECT model_name FROM fine_tuned_models')}
    assert names == {'w%d-%d' % (w, i) for w in range(8) for i in range(500)}


def test_a_server_crash_and_restart_does_not_need_a_new_store(private_server):
    url, control = private_server
    stored, failed = [], []
    with modelstore.connect(url, reconnect_timeout=1) as store:
        store.add_model(model_name='before', **MODEL)
        stored.append('before')
        control('kill')  # SIGKILL: the server crashes with our connection open.
        started = time.monotonic()
        try:
            store.add_model(model_name='while-down', **MODEL)
            stored.append('while-down')
        except modelstore.StorageError as exc:  # Down: the call raises, it does not vanish.
            failed.append(str(exc))
            waited = time.monotonic() - started
            assert not isinstance(exc, modelstore.OutcomeUnknown)  # Nothing was sent.
            assert 'no server accepted a new one' in str(exc) and 'reconnect_timeout=1' \
                in str(exc) and 'nothing of this call was stored' in str(exc)
            assert 0.9 < waited < 5, waited  # The bounded wait, then the error.
        control('restart')
        store.add_model(model_name='after', **MODEL)  # The same store reconnects.
        stored.append('after')
        names = [m.model_name for m in store.list_models()]
    assert failed and 'while-down' not in names
    assert sorted(names) == sorted(stored)
    assert '***' not in url and 'modelstore:modelstore@' in url  # The URL itself has it...
    assert all('modelstore:modelstore@' not in text for text in failed)  # ...messages do not.


def test_a_failing_statement_is_never_retried_and_never_silent(db_url):
    with modelstore.connect(db_url) as store:
        store.add_task(task_name='one', base_runtime='vllm', model_config={}, parameters={},
                       optimization_config={}, benchmark_config={})
        with pytest.raises(modelstore.ValidationError):
            store.add_task(task_name='one', base_runtime='vllm', model_config={},
                           parameters={}, optimization_config={}, benchmark_config={})
        assert len(store.list_tasks()) == 1


def test_the_password_never_appears_in_output_or_errors(cli, db_url):
    password = 'modelstore'
    wrong = db_url.replace(':%s@' % password, ':not-the-password@')
    commands = [['status'], ['migrate', '--to', '0002_add_is_custom_base_model'], ['check'],
                ['history'], ['migrate', '--dry-run'], ['migrate'], ['rollback', '--dry-run'],
                ['rollback', '--yes'], ['accept', '--all'], ['restore', '/nonexistent.bak']]
    for command in commands:
        for extra in ([], ['--json'], ['-v']):
            code, out, err = cli(*command, '--database', db_url, *extra)
            assert ':%s@' % password not in out + err, command
            assert ':***@' in out + err or command[0] in ('restore', 'accept'), command
        code, out, err = cli(*command, '--database', wrong, '-v')
        assert code == 2 and 'not-the-password' not in out + err, command
        assert 'password authentication failed' in err or 'cannot connect' in err \
            or 'does not exist' in err
    with pytest.raises(modelstore.ConfigError) as info:
        modelstore.connect(wrong)
    assert 'not-the-password' not in str(info.value)
    with pytest.raises(modelstore.SchemaOutOfDate) as info:
        modelstore.connect(db_url)
    assert ':%s@' % password not in str(info.value) and ':***@' in info.value.command
    with modelstore.connect(db_url, auto_migrate=True) as store:
        assert ':%s@' % password not in repr(store)


def test_a_concurrent_index_build_that_died_is_dropped_and_rebuilt(cli, db_url):
    """CREATE INDEX CONCURRENTLY that fails halfway leaves an INVALID index under the name."""
    assert cli('migrate', '--database', db_url, '--to', '0004_task_cluster_columns')[0] == 0
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, creation_date, "
            "model_path) VALUES ('a', 'b', 't', '2026', '/p'), ('a', 'b', 't', '2026', '/p')")
    import psycopg2
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    with pytest.raises(psycopg2.errors.UniqueViolation):
        conn.cursor().execute('CREATE UNIQUE INDEX CONCURRENTLY ix_fine_tuned_models_listing '
                              'ON fine_tuned_models (task, is_custom_base_model, creation_date, '
                              'model_name)')
    conn.close()
    assert query(db_url, "SELECT indisvalid FROM pg_index i JOIN pg_class c ON "
                 "c.oid = i.indexrelid WHERE c.relname = 'ix_fine_tuned_models_listing'") \
        == [(False,)]
    code, out, _ = cli('check', '--database', db_url)
    assert code == 1 and 'ix_fine_tuned_models_listing on fine_tuned_models is INVALID' in out
    code, out, _ = cli('status', '--database', db_url)
    assert '0005_index_model_listing' in out and 'will be adopted' not in out
    code, out, err = cli('migrate', '--database', db_url)
    assert code == 0, err
    assert 'concurrently (writers are not blocked)' in out
    assert query(db_url, "SELECT indisvalid, indisunique FROM pg_index i JOIN pg_class c ON "
                 "c.oid = i.indexrelid WHERE c.relname = 'ix_fine_tuned_models_listing'") \
        == [(True, False)]
    assert cli('check', '--database', db_url)[0] == 0


def test_an_index_built_without_its_history_row_is_adopted(cli, db_url):
    """A run killed between CREATE INDEX CONCURRENTLY and its history row (two steps)."""
    assert cli('migrate', '--database', db_url, '--to', '0004_task_cluster_columns')[0] == 0
    execute(db_url, 'CREATE INDEX ix_fine_tuned_models_listing ON fine_tuned_models (task, '
            'is_custom_base_model, creation_date, model_name)')
    code, out, _ = cli('migrate', '--database', db_url)
    assert code == 0 and '0005_index_model_listing  (adopted)' in out
    assert cli('check', '--database', db_url)[0] == 0


def test_the_catalog_snapshot_agrees_with_peewees_introspection(cli, db_url):
    """Adoption reads pg_catalog (fast); peewee reads information_schema (slow). Same answer."""
    from modelstore.shared.database import open_database
    from modelstore.shared.shape import kind, snapshot
    assert cli('migrate', '--database', db_url)[0] == 0
    db = open_database(db_url, mode='inspect')
    for table in ('fine_tuned_models', 'tasks', 'schema_migration'):
        shape = snapshot(db, table)
        expected = {c.name: (kind(c.data_type), bool(c.null), c.default, bool(c.primary_key))
                    for c in db.get_columns(table)}
        assert {n: (c.kind, c.null, c.default, c.primary_key)
                for n, c in shape.columns.items()} == expected, table
        assert list(shape.columns) == [c.name for c in db.get_columns(table)]
        pk = tuple(c.name for c in db.get_columns(table) if c.primary_key)
        assert shape.indexes == {(tuple(i.columns), bool(i.unique)) for i in db.get_indexes(table)
                                 if (tuple(i.columns), bool(i.unique)) != (pk, True)}, table


@pytest.mark.parametrize('index_built', [False, True])
def test_a_run_killed_during_the_concurrent_build_is_resumed(cli, db_url, index_built):
    """0005 runs outside a transaction; history says `running` meanwhile. A run killed then
    leaves that row: status shows the script as interrupted and pending, and migrate runs it
    again -- or adopts the index if the build had finished -- leaving one row."""
    assert cli('migrate', '--database', db_url, '--to', '0004_task_cluster_columns')[0] == 0
    execute(db_url, "INSERT INTO schema_migration (name, applied, method) VALUES "
            "('0005_index_model_listing', now(), 'running')")
    if index_built:
        execute(db_url, 'CREATE INDEX ix_fine_tuned_models_listing ON fine_tuned_models (task, '
                'is_custom_base_model, creation_date, model_name)')
    code, out, _ = cli('status', '--database', db_url)
    assert code == 1 and 'interrupted: a run died while it ran' in out
    with pytest.raises(modelstore.SchemaOutOfDate, match='0005_index_model_listing'):
        modelstore.connect(db_url)
    code, out, err = cli('migrate', '--database', db_url)
    assert code == 0, err
    assert ('(adopted)' in out) == index_built
    assert query(db_url, "SELECT method FROM schema_migration WHERE name = "
                 "'0005_index_model_listing'") == [('adopted' if index_built else 'ran',)]
    assert cli('check', '--database', db_url)[0] == 0
