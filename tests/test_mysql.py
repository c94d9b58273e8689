"""MySQL/MariaDB: what differs there, on a real server (scripts/mariadb.sh).

DDL commits on MySQL, so a script that fails partway leaves what it did: the history records it
``failed`` with its completed operations, status and check show it, migrate refuses to go on,
and ``modelstore repair`` reverts it (or records a manual fix). Also: the schema's types and
collation, GET_LOCK, dry runs on a throwaway database, and values MySQL would otherwise change.
"""
import json
import subprocess
import sys
import threading

import pytest

import modelstore
from modelstore import ValidationError
from modelstore.engine import Engine
from modelstore.exceptions import LockTimeout, MigrationError, ScriptFailedPartway
from modelstore.shared.database import open_database

from conftest import SHIPPED, columns, dump, execute, history, query, tables
from test_engine import CREATE_A  # The table 'a' (id, name) the engine's tests use too.

pytestmark = pytest.mark.mysql_only

# Two operations complete (a column, an index), then the script fails.
HALFWAY = '''
    from peewee import *

    def up(migrator, db):
        migrator.migrate(migrator.add_column('a', 'b', IntegerField(null=True)),
                         migrator.add_index('a', ('b',), False, name='a_b'))
        raise RuntimeError('boom halfway')

    def down(migrator, db):
        migrator.migrate(migrator.drop_index('a', 'a_b'), migrator.drop_column('a', 'b'))
'''


def _migrate(cli, db_url, scripts, *extra):
    return cli('migrate', '--database', db_url, '--migrations', scripts.dir, *extra)


def _failed_setup(cli, scripts, db_url, second=HALFWAY):
    scripts('0001_create_a.py', CREATE_A)
    assert _migrate(cli, db_url, scripts)[0] == 0
    before = dump(db_url)
    scripts('0002_halfway.py', second)
    code, out, err = _migrate(cli, db_url, scripts)
    assert code == 2, err
    return before, err


def test_a_script_that_fails_partway_is_recorded_failed_with_what_completed(cli, scripts,
                                                                             db_url):
    _, err = _failed_setup(cli, scripts, db_url)
    assert err.count('\n') == 1 and '0002_halfway' in err and 'boom halfway' in err
    assert "after 2 operations had completed (Added column 'b'" in err
    assert 'modelstore repair' in err
    # What completed is there, and the history says so.
    assert columns(db_url, 'a') == ['id', 'name', 'b']
    row = [r for r in history(db_url) if r['name'] == '0002_halfway'][0]
    assert row['method'] == 'failed' and row['error'] == 'RuntimeError: boom halfway'
    log = json.loads(row['operations'])
    assert [op['description'] for op in log['done']] == [
        "Added column 'b' (INTEGER) to 'a'", "Created index 'a_b' on 'a' (b)"]
    assert log['direction'] == 'up' and log['doing'] is None
    # status and check show it; migrate and rollback refuse to go on.
    code, out, _ = cli('status', '--database', db_url, '--migrations', scripts.dir)
    assert code == 1 and 'failed   expand    0002_halfway' in out and '1 failed partway' in out, out
    assert 'modelstore repair' in out
    code, out, _ = cli('status', '--database', db_url, '--migrations', scripts.dir, '--json')
    assert json.loads(out)['failed'] == ['0002_halfway']
    code, out, _ = cli('check', '--database', db_url, '--migrations', scripts.dir)
    assert code == 1 and 'failed partway: 0002_halfway' in out, out
    for argv in (['migrate'], ['rollback']):
        code, _, err = cli(*argv, '--database', db_url, '--migrations', scripts.dir)
        assert code == 2 and '0002_halfway: failed partway (RuntimeError: boom halfway)' in err
    with pytest.raises(ScriptFailedPartway):
        Engine(open_database(db_url, mode='migrate'), scripts.dir).migrate()


def test_repair_reverts_the_completed_operations_and_migrate_runs_it_again(cli, scripts,
                                                                            db_url):
    before, _ = _failed_setup(cli, scripts, db_url)
    code, out, err = cli('repair', '--database', db_url, '--migrations', scripts.dir)
    assert code == 0, err
    assert '0002_halfway (up): reverted 2 operations' in out
    assert "Dropped index 'a_b' from 'a'" in out and "Dropped column 'b' from 'a'" in out
    assert dump(db_url) == before  # Schema and history exactly as before the script.
    scripts('0002_halfway.py', HALFWAY.replace("        raise RuntimeError('boom halfway')\n",
                                               ''))
    code, out, err = _migrate(cli, db_url, scripts)
    assert code == 0, err
    assert columns(db_url, 'a') == ['id', 'name', 'b']
    assert [r['method'] for r in history(db_url)] == ['ran', 'ran']
    assert cli('repair', '--database', db_url, '--migrations', scripts.dir)[1].startswith(
        'Nothing to repair')


def test_repair_mark_applied_and_mark_reverted_record_a_manual_fix(cli, scripts, db_url):
    _failed_setup(cli, scripts, db_url)
    code, out, _ = cli('repair', '--database', db_url, '--migrations', scripts.dir,
                       '--mark-applied', '--json')
    assert code == 0
    assert json.loads(out)['repaired'][0]['action'] == 'marked applied'
    assert [r['method'] for r in history(db_url)] == ['ran', 'repaired']
    code, out, _ = cli('status', '--database', db_url, '--migrations', scripts.dir)
    assert code == 0 and '2 applied, 0 pending.' in out
    # The same failure, undone by hand this time.
    execute(db_url, 'DELETE FROM schema_migration WHERE name = %s' % "'0002_halfway'",
            'DROP INDEX a_b ON a', 'ALTER TABLE a DROP COLUMN b')
    _migrate(cli, db_url, scripts)
    execute(db_url, 'DROP INDEX a_b ON a', 'ALTER TABLE a DROP COLUMN b')  # By hand.
    assert cli('repair', '--database', db_url, '--migrations', scripts.dir,
               '--mark-reverted')[0] == 0
    assert [r['name'] for r in history(db_url)] == ['0001_create_a']
    assert cli('status', '--database', db_url, '--migrations', scripts.dir)[0] == 1  # Pending.


def test_an_operation_without_an_inverse_makes_repair_refuse_and_change_nothing(cli, scripts,
                                                                              db_url):
    lossy = '''
        from peewee import *

        def up(migrator, db):
            migrator.migrate(migrator.add_column('a', 'b', IntegerField(null=True)))
            migrator.migrate(migrator.drop_column('a', 'name'))
            raise RuntimeError('boom')

        def down(migrator, db):
            pass
    '''
    _failed_setup(cli, scripts, db_url, lossy)
    snapshot = dump(db_url)
    code, _, err = cli('repair', '--database', db_url, '--migrations', scripts.dir)
    assert code == 2
    assert "cannot repair 0002_halfway automatically: this operation has no known inverse " \
           "(Dropped column 'name' from 'a')" in err
    assert '--mark-reverted' in err and '--mark-applied' in err
    assert dump(db_url) == snapshot


def test_a_script_that_fails_before_anything_completed_leaves_nothing_behind(cli, scripts,
                                                                             db_url):
    scripts('0001_create_a.py', CREATE_A)
    assert _migrate(cli, db_url, scripts)[0] == 0
    before = dump(db_url)
    scripts('0002_bad.py', '''
        from peewee import *

        def up(migrator, db):
            migrator.migrate(migrator.add_column('no_such_table', 'b', IntegerField(null=True)))

        def down(migrator, db):
            pass
    ''')
    code, _, err = _migrate(cli, db_url, scripts)
    assert code == 2 and '0002_bad' in err and 'partway' not in err
    assert dump(db_url) == before  # No failed row: nothing of it was applied.


def test_a_run_killed_mid_script_is_at_a_recorded_state_that_repair_reverts(db_url, scripts,
                                                                            tmp_path):
    """kill -9 during a script: the row stays ``running`` with its log; status names it; repair
    reverts exactly what the log says completed (crash harness: many instants)."""
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_slow.py', '''
        import os, time
        from peewee import *

        def up(migrator, db):
            migrator.migrate(migrator.add_column('a', 'b', IntegerField(null=True)))
            open(os.environ['MARK'], 'w').close()
            time.sleep(60)
            migrator.migrate(migrator.add_column('a', 'c', IntegerField(null=True)))

        def down(migrator, db):
            pass
    ''')
    mark = tmp_path / 'mark'
    env = dict(__import__('os').environ, MARK=str(mark))
    proc = subprocess.Popen([sys.executable, '-m', 'modelstore', 'migrate', '--database',
                             db_url, '--migrations', scripts.dir], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import time
    deadline = time.time() + 60
    while not mark.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert columns(db_url, 'a') == ['id', 'name', 'b']
    assert [(r['name'], r['method']) for r in history(db_url)] == [('0001_create_a', 'ran'),
                                                                  ('0002_slow', 'running')]
    engine = Engine(open_database(db_url, mode='migrate'), scripts.dir)
    entry = [e for e in engine.status().entries if e.name == '0002_slow'][0]
    assert entry.state == 'failed'
    [(name, direction, action, steps)] = engine.repair()
    assert (name, action) == ('0002_slow', 'reverted 1 operation')
    assert columns(db_url, 'a') == ['id', 'name']
    assert [r['name'] for r in history(db_url)] == ['0001_create_a']


def test_the_shipped_schema_on_mysql(db_url):
    database = open_database(db_url, mode='migrate')
    Engine(database).migrate()

    def column(table, name):
        return query(db_url, 'SELECT column_type, collation_name FROM information_schema.columns '
                     'WHERE table_schema = DATABASE() AND table_name = %s AND column_name = %s',
                     (table, name))[0]
    assert column('fine_tuned_models', 'model_name')[0] == 'varchar(255)'
    assert column('fine_tuned_models', 'model_name')[1].endswith('_bin')
    assert column('fine_tuned_models', 'description')[0] == 'mediumtext'
    assert column('tasks', 'created_at')[0] == 'datetime(6)'
    assert column('fine_tuned_models', 'is_custom_base_model')[0] == 'tinyint(1)'
    assert column('tasks', 'parameters')[0] in ('json', 'longtext')  # MySQL / MariaDB
    engines = query(db_url, 'SELECT table_name, engine, table_collation FROM '
                    'information_schema.tables WHERE table_schema = DATABASE()')
    assert {e for _, e, _ in engines} == {'InnoDB'}
    assert all(c.startswith('utf8mb4_') for _, _, c in engines), engines
    assert {name for (name,) in query(
        db_url, 'SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = '
        'DATABASE()')} == {'fine_tuned_models_version_insert', 'fine_tuned_models_version_update'}
    # Every shipped script's log is in its history row: the adds were single statements.
    rows = {r['name']: json.loads(r['operations']) for r in history(db_url) if r['operations']}
    adds = [sql for op in rows['0006_training_metadata']['done'] for sql in op['sql']]
    assert len(adds) == 9 and all(s.startswith('ALTER TABLE `fine_tuned_models` ADD COLUMN')
                                  for s in adds)


def test_names_compare_exactly_and_text_is_all_of_unicode(db_url):
    with modelstore.connect(db_url) as store:
        a = store.add_model(model_name='Bot', base_model='b', task='t', model_path='/1')
        b = store.add_model(model_name='bot', base_model='b', task='t', model_path='/2')
        c = store.add_model(model_name='bot ', base_model='b', task='t', model_path='/3')
        assert (a.version, b.version, c.version) == (1, 1, 1)  # Three names, as elsewhere.
        emoji = store.add_model(model_name='🦙-ft', base_model='b', task='t',
                                model_path='/models/🦙', description='naïve ✓')
        assert store.get_model(emoji.id).description == 'naïve ✓'
        assert [m.model_name for m in store.list_models(name_contains='BOT')] == ['bot ', 'bot',
                                                                                  'Bot']
        assert store.reconnects == 0  # An idle PyMySQL connection is seen as alive.


def test_a_value_too_long_for_its_column_is_a_validation_error_not_truncated(db_url):
    with modelstore.connect(db_url) as store:
        with pytest.raises(ValidationError) as info:
            store.add_model(model_name='m' * 256, base_model='b', task='t', model_path='/p')
        assert info.value.field == 'model_name' and 'the limit is 255' in str(info.value)
        assert store.list_models() == []


def test_dry_run_shows_the_sql_on_a_throwaway_database_and_changes_nothing(cli, db_url):
    assert cli('migrate', '--database', db_url, '--to', SHIPPED[0])[0] == 0
    snapshot = dump(db_url)
    code, out, err = cli('migrate', '--database', db_url, '--dry-run')
    assert code == 0, err
    assert 'ALTER TABLE `tasks` ADD COLUMN `clusterbasemodel_config`' in out
    assert dump(db_url) == snapshot
    leftovers = query(db_url, "SELECT schema_name FROM information_schema.schemata WHERE "
                      "schema_name LIKE 'modelstore_shadow_%%'")
    assert leftovers == []


def test_get_lock_keeps_racing_runs_apart_and_times_out(db_url):
    from modelstore.dialects import MYSQL
    holder = open_database(db_url, mode='migrate')
    with MYSQL.run_session(holder, 5):
        with pytest.raises(LockTimeout, match='held its lock for more than 0.2 s'):
            with MYSQL.run_session(open_database(db_url, mode='migrate'), 0.2):
                pass
    with MYSQL.run_session(open_database(db_url, mode='migrate'), 0.2):  # Released.
        pass
    # Racing migrates: each script applied once.
    errors = []

    def run():
        try:
            Engine(open_database(db_url, mode='migrate')).migrate()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r['name'] for r in history(db_url)) == SHIPPED
    assert 'schema_migration' in tables(db_url)


def test_rollback_to_empty_and_back_and_check_finds_no_drift(cli, db_url):
    assert cli('migrate', '--database', db_url)[0] == 0
    assert cli('rollback', '--database', db_url, '--to', SHIPPED[0])[0] == 0
    assert tables(db_url) == {'schema_migration'}
    assert cli('migrate', '--database', db_url)[0] == 0
    code, out, _ = cli('check', '--database', db_url)
    assert code == 0, out


def test_a_dry_run_of_a_failed_database_is_refused_too(cli, scripts, db_url):
    _failed_setup(cli, scripts, db_url)
    code, _, err = _migrate(cli, db_url, scripts, '--dry-run')
    assert code == 2 and 'failed partway' in err
    with pytest.raises(MigrationError):
        Engine(open_database(db_url, mode='migrate'), scripts.dir).rollback(dry_run=True)


def test_every_shipped_column_add_is_one_instant_alter(db_url):
    """Each ADD COLUMN of the shipped scripts is one ALTER that MariaDB 10.3+/MySQL 8 run with
    ALGORITHM=INSTANT (metadata only, O(1) in the table's size): run again with that clause,
    which the server refuses for anything it would have to copy the table for."""
    database = open_database(db_url, mode='migrate')
    Engine(database).migrate()
    logs = {r['name']: json.loads(r['operations']) for r in history(db_url) if r['operations']}
    adds = {name: [sql for op in log['done'] for sql in op['sql'] if ' ADD COLUMN ' in sql]
            for name, log in logs.items()}
    adds = {name: sqls for name, sqls in adds.items() if sqls}
    assert set(adds) == {'0002_add_is_custom_base_model', '0003_task_slo_quant_parallel_metadata',
                         '0004_task_cluster_columns', '0006_training_metadata',
                         '0008_model_versions', '0014_lineage_and_archive'}
    for name, statements in adds.items():
        assert all(len(op['sql']) == 1 for op in logs[name]['done']
                   if ' ADD COLUMN ' in op['sql'][0])  # One statement each: no UPDATE, no copy.
        for sql in statements:
            table, column = sql.split('`')[1], sql.split('`')[3]
            if column == 'version':  # (0009's unique index covers it.)
                continue
            database.execute_sql('ALTER TABLE `%s` DROP COLUMN `%s`' % (table, column))
            database.execute_sql(sql + ', ALGORITHM=INSTANT')  # Refused if not instant.
    database.close()


def test_add_model_is_one_transaction_with_its_event(db_url):
    """One BEGIN/COMMIT a call (the server's own counters say so): the event counter's
    upsert (its new value back as the insert id), the INSERT, the read of the version the
    trigger gave, the event."""
    with modelstore.connect(db_url) as store:
        store.add_model(model_name='warm', base_model='b', task='t', model_path='/0')

        def counters():
            return dict(store.database.execute_sql(
                "SHOW SESSION STATUS WHERE Variable_name IN ('Com_begin', 'Com_commit', "
                "'Com_insert', 'Com_select')").fetchall())
        before = counters()
        models = [store.add_model(model_name='m', base_model='b', task='t', model_path='/%d' % i)
                  for i in range(3)]
        after = counters()
        delta = {k: int(after[k]) - int(before[k]) for k in after}
        assert delta['Com_begin'] == 3 and delta['Com_commit'] == 3, delta
        # Four INSERTs a call: the event counter's upsert, the model's (and the trigger's
        # upsert of the name's counter), the event's; one read: the version (the counter's
        # number comes back with its upsert, by LAST_INSERT_ID(expr)).
        assert delta['Com_insert'] == 12 and delta['Com_select'] == 3, delta
        assert [e.model_id for e in store.events(after=1)] == [m.id for m in models]
        assert [m.version for m in models] == [1, 2, 3]


def test_a_history_table_a_kill_left_without_its_unique_index_gets_it(db_url):
    """DDL commits on MySQL: a run killed between the history table's CREATE TABLE and its
    CREATE UNIQUE INDEX (the crash harness found it) leaves the table without it; the next run
    adds it."""
    execute(db_url, 'CREATE TABLE schema_migration (id INTEGER AUTO_INCREMENT PRIMARY KEY, '
                    'name VARCHAR(255) NOT NULL, applied DATETIME(6) NOT NULL)')
    Engine(open_database(db_url, mode='migrate')).migrate()
    assert query(db_url, "SELECT non_unique, column_name FROM information_schema.statistics "
                 "WHERE table_schema = DATABASE() AND table_name = 'schema_migration' AND "
                 "index_name = 'schema_migration_name'") == [(0, 'name')]
    assert sorted(r['name'] for r in history(db_url)) == SHIPPED
