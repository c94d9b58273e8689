"""The engine with throwaway scripts: plan-then-run, failures, checksums, lock, foreign keys."""
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading

import pytest

from modelstore import Engine, LockTimeout, MigrationError, ScriptError
from modelstore.shared.database import open_database

from conftest import SHIPPED, columns, dump, execute, history, query, tables

CREATE_A = '''
    from peewee import *

    def up(migrator, db):
        class A(Model):
            name = TextField()
            class Meta:
                database = db
                table_name = 'a'
        db.create_tables([A], safe=False)

    def down(migrator, db):
        migrator.migrate(migrator.drop_table('a'))
'''

ADD_B = '''
    from peewee import *

    def up(migrator, db):
        migrator.migrate(migrator.add_column('a', 'b', IntegerField(null=True)))

    def down(migrator, db):
        migrator.migrate(migrator.drop_column('a', 'b'))
'''

FAILS_HALFWAY = '''
    from peewee import *

    def up(migrator, db):
        migrator.migrate(migrator.add_column('a', 'c', IntegerField(null=True)))
        db.execute_sql("INSERT INTO a (name) VALUES ('half')")
        raise RuntimeError('boom halfway')
'''


def engine(url, directory, **kw):
    return Engine(open_database(url, mode='migrate'), directory, **kw)


@pytest.mark.transactional_ddl
def test_a_script_that_raises_halfway_leaves_schema_and_history_as_before(cli, scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    assert cli('migrate', '--database', db_url, '--migrations', scripts.dir)[0] == 0
    before = dump(db_url)
    scripts('0002_fails.py', FAILS_HALFWAY)
    code, out, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    assert code == 2
    assert err.count('\n') == 1 and err.startswith('error: ')
    assert '0002_fails' in err and 'boom halfway' in err
    assert dump(db_url) == before


@pytest.mark.transactional_ddl
def test_a_failing_first_script_does_not_even_create_the_history_table(cli, scripts, db_url):
    execute(db_url, 'CREATE TABLE z (id INTEGER PRIMARY KEY)')
    before = dump(db_url)
    scripts('0001_create_a.py', CREATE_A.replace("db.create_tables([A], safe=False)",
                                                 "db.create_tables([A], safe=False)\n"
                                                 "        raise RuntimeError('boom after create')"))
    code, _, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    assert code == 2 and '0001_create_a' in err and 'boom after create' in err
    assert dump(db_url) == before


def test_a_table_in_a_shape_no_script_produces_is_refused_not_adopted(cli, scripts, db_url):
    execute(db_url, 'CREATE TABLE a (id INTEGER PRIMARY KEY)')
    before = dump(db_url)
    scripts('0001_create_a.py', CREATE_A)
    code, out, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    assert code == 2
    assert 'cannot adopt' in err and 'column a.name is missing' in err
    assert dump(db_url) == before


@pytest.mark.transactional_ddl
def test_scripts_before_the_failing_one_stay_applied(cli, scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_add_b.py', ADD_B)
    scripts('0003_fails.py', FAILS_HALFWAY)
    code, out, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    assert code == 2 and '0003_fails' in err
    assert [r['name'] for r in history(db_url)] == ['0001_create_a', '0002_add_b']
    assert columns(db_url, 'a') == ['id', 'name', 'b']
    assert '0002_add_b' in out  # Reported as applied before the failure.


def test_a_script_without_up_fails_before_any_script_runs(scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_no_up.py', 'def down(migrator, db):\n    pass\n')
    with pytest.raises(ScriptError, match=r'0002_no_up: does not define up'):
        engine(db_url, scripts.dir).migrate()
    assert tables(db_url) == set()


def test_a_script_with_a_syntax_error_is_named_and_nothing_runs(scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_broken.py', 'def up(migrator, db)\n    pass\n')
    with pytest.raises(ScriptError, match=r'0002_broken: syntax error at line 1'):
        engine(db_url, scripts.dir).migrate()
    assert tables(db_url) == set()


def test_an_unknown_target_fails_and_changes_nothing(cli, scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    code, _, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir,
                       '--to', '0009_nope')
    assert code == 2 and "unknown migration target '0009_nope'" in err
    assert tables(db_url) == set()


def test_two_scripts_with_the_same_number_are_refused(scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0001_other.py', ADD_B)
    with pytest.raises(MigrationError, match='share the number 1'):
        engine(db_url, scripts.dir).migrate()
    assert tables(db_url) == set()


def test_an_applied_script_whose_file_is_gone_blocks_migrate_and_rollback(cli, scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    path = scripts('0002_add_b.py', ADD_B)
    cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    path.unlink()
    scripts('0003_more.py', ADD_B.replace("'b'", "'c'"))
    before = dump(db_url)
    code, _, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    assert code == 2 and '0002_add_b' in err
    code, _, err = cli('rollback', '--database', db_url, '--migrations', scripts.dir)
    assert code == 2 and '0002_add_b' in err and 'missing' in err
    code, out, _ = cli('status', '--database', db_url, '--migrations', scripts.dir, '--json')
    assert code == 1 and json.loads(out)['missing'] == ['0002_add_b']
    assert dump(db_url) == before


def test_an_edited_applied_script_blocks_migrate_until_accepted(cli, scripts, db_url):
    path = scripts('0001_create_a.py', CREATE_A)
    args = ('--database', db_url, '--migrations', scripts.dir)
    cli('migrate', *args)
    path.write_text(path.read_text() + '\n# edited after it ran\n')
    scripts('0002_add_b.py', ADD_B)
    code, out, _ = cli('check', *args)
    assert code == 1 and 'changed since applied: 0001_create_a' in out
    before = dump(db_url)
    code, _, err = cli('migrate', *args)
    assert code == 2 and '0001_create_a' in err and 'modelstore accept' in err
    assert dump(db_url) == before
    code, out, _ = cli('accept', '0001_create_a', *args)
    assert code == 0 and '0001_create_a' in out
    assert cli('migrate', *args)[0] == 0
    assert cli('status', *args)[0] == 0  # (check would also report drift: no registry tables)


def test_line_endings_do_not_count_as_an_edit(cli, scripts, db_url):
    path = scripts('0001_create_a.py', CREATE_A)
    args = ('--database', db_url, '--migrations', scripts.dir)
    cli('migrate', *args)
    path.write_bytes(path.read_bytes().replace(b'\n', b'\r\n'))
    code, out, _ = cli('status', *args, '--json')
    assert code == 0 and json.loads(out)['changed'] == []


def test_status_and_history_never_create_the_history_table(cli, db_url):
    execute(db_url, 'CREATE TABLE unrelated (x INTEGER)')
    before = dump(db_url)
    assert cli('status', '--database', db_url)[0] == 1
    assert cli('history', '--database', db_url)[0] == 0
    assert cli('check', '--database', db_url)[0] == 1
    assert dump(db_url) == before


def test_status_of_a_missing_file_does_not_create_it(cli, db_path, db_url):
    code, out, _ = cli('status', '--database', db_url)
    assert code == 1 and 'does not exist yet' in out
    assert not os.path.exists(db_path)


def test_migrate_waits_for_the_lock_then_times_out_clearly(scripts, db_path, db_url):
    scripts('0001_create_a.py', CREATE_A)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute('BEGIN IMMEDIATE')
    try:
        with pytest.raises(LockTimeout, match='held its lock for more than 0.2 s'):
            engine(db_url, scripts.dir, lock_timeout=0.2).migrate()
    finally:
        holder.execute('ROLLBACK')
        holder.close()
    assert [r.name for r in engine(db_url, scripts.dir).migrate().runs] == ['0001_create_a']


HOLD_FLOCK = (
    'import fcntl, os, sys, time\n'
    'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n'
    'fcntl.flock(fd, fcntl.LOCK_EX)\n'
    'print("held", flush=True)\n'
    'time.sleep(60)\n')


def test_a_process_holding_the_run_file_keeps_migrate_out_and_is_named(scripts, db_path,
                                                                        db_url):
    """Another process holds the flock on <file>.migrate-lock (an online script's batches run
    under it alone): migrate waits, then times out naming the file; once that process is
    gone (killed: the kernel drops its lock), migrate runs and leaves no lock file behind."""
    scripts('0001_create_a.py', CREATE_A)
    lock_file = db_path + '.migrate-lock'
    holder = subprocess.Popen([sys.executable, '-c', HOLD_FLOCK, lock_file],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(LockTimeout, match=r'held its lock \(%s\) for more than 0.3 s'
                           % re.escape(lock_file)):
            engine(db_url, scripts.dir, lock_timeout=0.3).migrate()
    finally:
        holder.kill()
        holder.wait()
    assert tables(db_url) == set()  # The refused run changed nothing.
    assert engine(db_url, scripts.dir).migrate().names == ['0001_create_a']
    assert not os.path.lexists(lock_file)


@pytest.mark.parametrize('target', ['existing', 'dangling', 'directory'])
def test_a_planted_link_or_directory_at_the_run_file_is_refused_untouched(
        scripts, db_path, db_url, tmp_path, target):
    """Someone put a symlink (to a file of theirs, or to nowhere) or a directory where the run
    takes its lock: migrate refuses, names it, and neither follows the link nor creates or
    writes anything; the database is not changed."""
    scripts('0001_create_a.py', CREATE_A)
    sqlite3.connect(db_path).close()
    lock_file = db_path + '.migrate-lock'
    victim = tmp_path / 'victim'
    if target == 'existing':
        victim.write_text('keep me')
        victim.chmod(0o644)
    if target == 'directory':
        os.mkdir(lock_file)
    else:
        os.symlink(str(victim), lock_file)
    with pytest.raises(MigrationError, match='%s is not a plain file' % re.escape(lock_file)):
        engine(db_url, scripts.dir).migrate()
    assert tables(db_url) == set()
    if target == 'existing':
        assert victim.read_text() == 'keep me' and victim.stat().st_mode & 0o777 == 0o644
    else:
        assert not victim.exists()
    assert os.path.islink(lock_file) or os.path.isdir(lock_file)  # Left for its owner.


@pytest.mark.slow
def test_a_runner_that_waited_for_the_lock_finds_nothing_to_do(scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_slow.py', '''
        import time
        def up(migrator, db):
            time.sleep(0.5)
    ''')
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        engine(db_url, scripts.dir).migrate().names)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=len) == [[], [], ['0001_create_a', '0002_slow']]
    assert [r['name'] for r in history(db_url)] == ['0001_create_a', '0002_slow']


@pytest.mark.slow
def test_processes_racing_to_migrate_record_each_script_once(db_url):
    procs = [subprocess.Popen([sys.executable, '-m', 'modelstore', 'migrate', '--database',
                               db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outcomes = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in outcomes), outcomes
    names = [r['name'] for r in history(db_url)]
    assert len(names) == len(set(names)) == len(SHIPPED)


REBUILD_TASKS = '''
    from peewee import *

    def up(migrator, db):
        # legacy=True forces SQLite's copy-drop-rename rebuild of the parent table.
        migrator.migrate(migrator.drop_column('tasks', 'note', legacy=True))
'''


def test_a_table_rebuild_keeps_child_rows_with_foreign_keys_on(scripts, db_path, db_url):
    conn = sqlite3.connect(db_path)
    conn.executescript('''
        PRAGMA foreign_keys = ON;
        CREATE TABLE tasks (id INTEGER PRIMARY KEY, note TEXT);
        CREATE TABLE experiments (id INTEGER PRIMARY KEY,
            task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE);
        INSERT INTO tasks VALUES (1, 'x'), (2, 'y');
        INSERT INTO experiments (task_id) VALUES (1), (1), (2);
    ''')
    conn.close()
    scripts('0001_rebuild.py', REBUILD_TASKS)
    database = open_database(db_url, mode='migrate')
    assert database.pragma('foreign_keys') == 1
    Engine(database, scripts.dir).migrate()
    assert database.pragma('foreign_keys') == 1  # Restored after the run.
    conn = sqlite3.connect(db_path)
    assert conn.execute('SELECT task_id FROM experiments ORDER BY id').fetchall() == \
        [(1,), (1,), (2,)]
    assert [r[1] for r in conn.execute('PRAGMA table_info(tasks)')] == ['id']


def test_a_script_that_orphans_child_rows_is_rolled_back(scripts, db_path, db_url):
    conn = sqlite3.connect(db_path)
    conn.executescript('''
        CREATE TABLE tasks (id INTEGER PRIMARY KEY);
        CREATE TABLE experiments (id INTEGER PRIMARY KEY, task_id INTEGER REFERENCES tasks (id));
        INSERT INTO tasks VALUES (1); INSERT INTO experiments (task_id) VALUES (1);
    ''')
    conn.close()
    before = dump(db_url)
    scripts('0001_orphan.py', '''
        def up(migrator, db):
            db.execute_sql('DELETE FROM tasks')
    ''')
    with pytest.raises(ScriptError, match='foreign key check failed'):
        engine(db_url, scripts.dir).migrate()
    assert dump(db_url)[1]['tasks'] == before[1]['tasks']


ORPHAN_FILE = '''
    CREATE TABLE tasks (id INTEGER PRIMARY KEY, note TEXT);
    CREATE TABLE experiments (id INTEGER PRIMARY KEY, task_id INTEGER REFERENCES tasks (id));
    INSERT INTO tasks VALUES (1, 'a'), (2, 'b');
    INSERT INTO experiments (task_id) VALUES (1), (2), (99);
'''  # experiments 3 was orphaned before modelstore ever saw the file.


@pytest.mark.parametrize('body', [
    # Through peewee, and through the raw driver connection (no query hook sees that one).
    "db.execute_sql('DELETE FROM tasks WHERE id = 2')",
    "db.connection().execute('DELETE FROM tasks WHERE id = 2')",
])
def test_orphans_already_there_are_tolerated_but_new_ones_refused(scripts, db_path, db_url,
                                                                   body):
    conn = sqlite3.connect(db_path)
    conn.executescript(ORPHAN_FILE)
    conn.close()
    scripts('0001_rebuild.py', REBUILD_TASKS)  # A rebuild: checked, finds the old orphan only.
    Engine(open_database(db_url, mode='migrate'), scripts.dir).migrate()
    assert query(db_path, 'SELECT task_id FROM experiments ORDER BY id') == [(1,), (2,), (99,)]
    before = dump(db_url)
    scripts('0002_orphan.py', 'def up(migrator, db):\n    %s\n' % body)
    with pytest.raises(ScriptError, match=r'foreign key check failed: 1 row'):
        Engine(open_database(db_url, mode='migrate'), scripts.dir).migrate()
    assert dump(db_url) == before


def _work(tmp_path, scripts_dir, children, target=None, setup=ORPHAN_FILE):
    """SQLite VM instructions a migrate executes on a file with ``children`` experiments rows
    (counted with a progress handler, in steps of 100): what the run reads, observed."""
    path = str(tmp_path / ('work-%d-%s.db' % (children, target)))
    conn = sqlite3.connect(path)
    conn.executescript(setup)
    conn.executemany('INSERT INTO experiments (task_id) VALUES (?)',
                     [(1 + i % 2,) for i in range(children)])
    conn.commit()
    conn.close()
    return _steps(path, lambda database: Engine(database, scripts_dir).migrate(target=target))


def _steps(path, run):
    """SQLite VM instructions ``run(database)`` executes on the file (in steps of 100)."""
    database = open_database('sqlite:///' + path, mode='migrate')
    steps = [0]

    def count():
        steps[0] += 1
        return 0
    database.connection().set_progress_handler(count, 100)
    try:
        run(database)
    finally:
        database.close()
    return steps[0] * 100


def test_adding_columns_and_indexes_never_scans_for_orphans(scripts, tmp_path):
    """foreign_key_check reads every child row; a script that cannot orphan one skips it: the
    run's work does not grow with the child table."""
    scripts('0001_add.py', '''
        from peewee import *
        def up(migrator, db):
            migrator.migrate(migrator.add_column('tasks', 'flag', BooleanField(
                default=False, constraints=[SQL('DEFAULT FALSE')]), allow_not_null=True),
                migrator.add_index('tasks', ('note',)))
            db.execute_sql('CREATE TABLE extra (id INTEGER PRIMARY KEY)')
    ''')
    scripts('0002_references.py', '''
        from peewee import *
        def up(migrator, db):
            db.execute_sql('ALTER TABLE experiments ADD COLUMN other INTEGER REFERENCES tasks (id)')
    ''')
    small = _work(tmp_path, scripts.dir, 10, '0001_add')
    large = _work(tmp_path, scripts.dir, 20000, '0001_add')
    assert large - small < 20000  # Not one step per child row: no scan.
    # A column with REFERENCES is checked: the scan reads every child row.
    small = _work(tmp_path, scripts.dir, 10)
    large = _work(tmp_path, scripts.dir, 20000)
    assert large - small > 20000


def test_a_pwmigrate_history_table_is_upgraded_in_place(scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_add_b.py', ADD_B)
    result = subprocess.run([sys.executable, '-m', 'playhouse.migrations', db_url, 'up',
                             '0001_create_a', '-d', scripts.dir], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert columns(db_url, 'schema_migration') == ['id', 'name', 'applied']
    engine(db_url, scripts.dir).migrate()
    rows = history(db_url)
    assert [r['name'] for r in rows] == ['0001_create_a', '0002_add_b']
    assert rows[0]['method'] is None and rows[1]['method'] == 'ran'
    assert 'checksum' in columns(db_url, 'schema_migration')


def test_the_history_table_is_made_and_read_as_peewee_makes_and_reads_it(db_url):
    """History finds and reads its table through one model class for every database (issue 30),
    and makes it through the database's own create_tables (MySQL's sets the engine, charset and
    binary collation there): the SQL is what peewee's calls on a model bound to the database
    send, and ensure() after expect() reads no table list."""
    from modelstore.engine.history import TABLE, History, _model

    def sent(database, action):
        statements = []
        database.query_hooks.append(lambda event: statements.append((event.sql,
                                                                     tuple(event.params or ()))))
        try:
            action()
        finally:
            database.query_hooks.pop()
        return statements

    database = open_database(db_url, mode='migrate')
    try:
        history = History(database)
        assert history.exists() is _model(database).table_exists() is False
        history.expect(False)  # As a run does, from the table list its status just read.
        made = sent(database, history.ensure)
        assert history.exists() is _model(database).table_exists() is True
        execute(db_url, 'DROP TABLE %s' % TABLE)
        assert made == sent(database, lambda: database.create_tables([_model(database)],
                                                                     safe=False))
        history.record('0001_a', checksum='ab' * 32, method='ran', duration=0.5, version='v')
        [record] = history.read()
        assert (record.name, record.checksum, record.method) == ('0001_a', 'ab' * 32, 'ran')
        bound = _model(database)
        wanted = [f for f in bound._meta.sorted_fields if f.name != 'id']
        assert sent(database, history.read)[-1][0] == \
            bound.select(*wanted).order_by(bound.id).sql()[0]
    finally:
        database.close()


def test_an_ensure_that_failed_is_done_again(db_path):
    """A script's transaction undone after its ensure() failed (a lock wait, retried) must not
    leave the history taking its table for made."""
    import peewee
    from modelstore.engine.history import History
    database = open_database('sqlite:///' + db_path, mode='migrate')
    try:
        history, real, calls = History(database), database.create_tables, []

        def create_tables(*args, **kwargs):
            calls.append(args)
            if len(calls) == 1:
                raise peewee.OperationalError('canceling statement due to lock timeout')
            return real(*args, **kwargs)
        database.create_tables = create_tables
        with pytest.raises(peewee.OperationalError):
            history.ensure()
        history.ensure()
        assert len(calls) == 2 and history.exists()
    finally:
        database.close()


MAKES_HISTORY = """
from peewee import CharField, DateTimeField, Model


def up(migrator, db):
    class Legacy(Model):  # pwmigrate's own history table, made by the script itself.
        name = CharField(unique=True)
        applied = DateTimeField()

        class Meta:
            database = db
            table_name = 'schema_migration'
    db.create_tables([Legacy])


def down(migrator, db):
    pass
"""


def test_a_script_that_makes_the_history_table_itself_is_recorded_in_it(scripts, db_url):
    """The run knows, from its status, that the file has no history table; a script run since
    may have made one (here pwmigrate's), so the first history row does not trust that."""
    scripts('0001_make_history.py', MAKES_HISTORY)
    engine(db_url, scripts.dir).migrate()
    assert [(r['name'], r['method']) for r in history(db_url)] == [('0001_make_history', 'ran')]
    assert 'checksum' in columns(db_url, 'schema_migration')


def test_fake_records_without_running(cli, scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    code, out, _ = cli('migrate', '--database', db_url, '--migrations', scripts.dir, '--fake')
    assert code == 0
    assert tables(db_url) == {'schema_migration'}
    assert history(db_url)[0]['method'] == 'faked'


def test_rollback_refuses_an_unapplied_target(cli, scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_add_b.py', ADD_B)
    args = ('--database', db_url, '--migrations', scripts.dir)
    cli('migrate', *args, '--to', '0001_create_a')
    code, _, err = cli('rollback', *args, '--to', '0002_add_b')
    assert code == 2 and "unknown migration target '0002_add_b' (applied scripts" in err


def test_a_script_without_down_cannot_be_rolled_back_and_nothing_changes(cli, scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_up_only.py', 'def up(migrator, db):\n    pass\n')
    args = ('--database', db_url, '--migrations', scripts.dir)
    cli('migrate', *args)
    before = dump(db_url)
    code, _, err = cli('rollback', *args, '--to', '0001_create_a')
    assert code == 2 and '0002_up_only: does not define down' in err
    assert dump(db_url) == before


@pytest.mark.slow
def test_migrating_a_legacy_file_with_child_rows_never_scans_for_orphans(tmp_path):
    """The autotuner's tasks (PRIMARY KEY as a table constraint, experiments referencing it):
    the shipped scripts add columns and an index, which cannot orphan a row -- the run's work
    does not grow with the experiments table."""
    from legacy import autotuner_original, build, modelforge_v10
    work = {}
    for children in (10, 20000):
        path = str(tmp_path / ('legacy-%d.db' % children))
        build(path, modelforge_v10, autotuner_original)
        conn = sqlite3.connect(path)
        task = conn.execute('SELECT id FROM tasks LIMIT 1').fetchone()[0]
        start = conn.execute('SELECT coalesce(max(id), 0) FROM experiments').fetchone()[0]
        conn.executemany('INSERT INTO experiments (id, task_id, experiment_id, parameters) '
                         "VALUES (?, ?, ?, '{}')", [(start + 1 + i, task, i)
                                                    for i in range(children)])
        conn.commit()
        conn.close()
        results = []
        work[children] = _steps(path, lambda database: results.append(
            Engine(database).migrate()))
        assert results[0].by_method('ran')[-1] == SHIPPED[-1]
    assert work[20000] - work[10] < 20000, work
