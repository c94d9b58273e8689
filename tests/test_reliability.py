"""The fault harnesses (harness/) in reduced sizes, and foreign keys through every script.

The full runs -- 100 kill trials per backend, 8 x 1000 writers -- are `scripts/reliability.sh`;
their figures are in docs/reliability.md. Here each harness runs small enough for CI and fails the
build if a single trial is inconsistent or a single row is lost.
"""
import io
import random

import pytest

import modelstore
from conftest import BACKEND, SHIPPED, TEST_URL, execute, query

import crash
import race
import rolling


@pytest.mark.slow
def test_kill_9_during_migrate_never_loses_a_row_or_half_applies_a_script(tmp_path):
    target = crash.target_for(TEST_URL, str(tmp_path))
    seed = random.randrange(1 << 30)
    out = io.StringIO()
    trials, consistent, lost = crash.Harness(target, rows=2000, seed=seed).run(12, out=out)
    assert (trials, consistent, lost) == (12, 12, 0), 'seed %d\n%s' % (seed, out.getvalue())


@pytest.mark.slow
def test_racing_runners_and_writers_during_a_migration():
    out = io.StringIO()
    figures, problems = race.run(BACKEND, TEST_URL, n_runners=8, n_writers=8, writes=150,
                                 out=out, app_rows=20000, app_writers=4, app_runs=1)
    assert problems == [], out.getvalue()
    assert figures['exit_0'] == 8 and figures['history_rows'] == len(SHIPPED)
    assert figures['stored'] == 8 * 150 and figures['lost'] == 0 and figures['errors'] == 0
    if BACKEND == 'sqlite':  # The legacy app inserting through plain sqlite3 meanwhile.
        assert figures['app_failed_runs'] == 0 and figures['app_errors'] == 0
        assert figures['app_committed'] > 0


# -- foreign keys: child rows that reference tasks survive every script and every rollback ------

EXPERIMENTS = {
    'sqlite': 'CREATE TABLE experiments (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL '
              'REFERENCES tasks (id), score FLOAT)',
    'postgresql': 'CREATE TABLE experiments (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL '
                  'REFERENCES tasks (id), score FLOAT)',
    # (InnoDB ignores an inline REFERENCES: the key is a table constraint.)
    'mysql': 'CREATE TABLE experiments (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, '
             'score FLOAT, FOREIGN KEY (task_id) REFERENCES tasks (id)) ENGINE=InnoDB',
}


def _with_children(url):
    with modelstore.connect(url) as store:
        for n in range(5):
            store.add_task(task_name='t%d' % n, base_runtime='sglang', model_config={},
                           parameters={}, optimization_config={}, benchmark_config={})
    execute(url, EXPERIMENTS[BACKEND])
    execute(url, *['INSERT INTO experiments (id, task_id, score) VALUES (%d, %d, 0.5)'
                   % (n, 1 + n % 5) for n in range(1, 21)])
    return query(url, 'SELECT * FROM experiments ORDER BY id')


def _orphans(url):
    return query(url, 'SELECT COUNT(*) FROM experiments e LEFT JOIN tasks t ON t.id = e.task_id '
                 'WHERE t.id IS NULL')[0][0]


@pytest.mark.slow
def test_every_script_and_every_rollback_keeps_child_rows(cli, db_url):
    children = _with_children(db_url)
    # Down one script at a time (--yes: the cluster columns are empty, but say it anyway), then
    # up again; the child rows and their references survive every step.
    for name in reversed(SHIPPED[1:]):
        code, out, err = cli('rollback', '--database', db_url, '--yes')
        assert code == 0, err
        assert query(db_url, 'SELECT * FROM experiments ORDER BY id') == children, name
        assert _orphans(db_url) == 0
        if BACKEND == 'sqlite':
            assert query(db_url, 'PRAGMA foreign_key_check') == []
    for name in SHIPPED[1:]:
        assert cli('migrate', '--database', db_url, '--to', name)[0] == 0
        assert query(db_url, 'SELECT * FROM experiments ORDER BY id') == children, name
        assert _orphans(db_url) == 0
    assert cli('check', '--database', db_url)[0] == 0


def test_dropping_a_parent_table_is_refused_even_with_yes(cli, db_url):
    children = _with_children(db_url)
    code, _, err = cli('rollback', '--database', db_url, '--to', SHIPPED[0])
    assert code == 2
    if BACKEND != 'postgresql':  # (MySQL: the downs run on a shadow, which has no children.)
        assert 'table tasks and its 5 rows' in err
    else:  # PostgreSQL refuses the DROP itself while the probe runs: nothing changes.
        assert 'cannot drop table tasks because other objects depend on it' in err
    code, _, err = cli('rollback', '--database', db_url, '--to', SHIPPED[0], '--yes')
    assert code == 2
    assert {'sqlite': '0001_initial' in err and 'foreign key check failed' in err,
            'postgresql': 'depend on it' in err,
            # The DROP is refused before it changed anything: 0001 stays applied, not failed.
            'mysql': '0001_initial' in err and 'foreign key' in err.lower()}[BACKEND], err
    # 0001's down is rolled back whole; like any failing script, the ones before it (the
    # emptied cluster and config columns) stay rolled back.
    assert query(db_url, 'SELECT * FROM experiments ORDER BY id') == children
    assert query(db_url, 'SELECT COUNT(*) FROM tasks') == [(5,)]
    assert _orphans(db_url) == 0
    assert SHIPPED[0] in [r[0] for r in query(db_url, 'SELECT name FROM schema_migration')]


@pytest.mark.sqlite_only
def test_foreign_keys_stay_enforced_after_a_run(cli, db_path):
    _with_children('sqlite:///' + db_path)
    assert cli('rollback', '--database', db_path, '--yes')[0] == 0
    with modelstore.connect(db_path, auto_migrate=True) as store:
        with pytest.raises(Exception, match='FOREIGN KEY'):
            store.database.execute_sql('INSERT INTO experiments (id, task_id) VALUES (99, 999)')


@pytest.mark.slow
def test_a_rolling_deploy_loses_nothing_and_the_contract_step_waits_for_release_n():
    """Issue 28's proof, small: 8 workers of release N write, release N+1's expand step runs,
    8 of its workers start, the contract step is refused while N's live, N's stop, the contract
    step drops the column N wrote while N+1's write (harness/rolling.py; full size in
    scripts/reliability.sh)."""
    out = io.StringIO()
    figures, problems = rolling.run(BACKEND, TEST_URL, workers=8, seconds=0.5, min_writes=5,
                                    out=out)
    assert problems == [], out.getvalue()
    assert figures['errors'] == 0 and figures['lost'] == 0, out.getvalue()
    assert figures['rows_n'] >= 8 * 5 and figures['rows_n1'] >= 8 * 5
    assert figures['n1_head'] == [rolling.CONTRACT]  # N+1 connected before its contract step.
    assert figures['contract_refused_exit'] == 2 and figures['contract_refused_naming'] == 8
    assert figures['contract_exit'] == 0
