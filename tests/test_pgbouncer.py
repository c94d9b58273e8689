"""Through PgBouncer in transaction pooling mode (scripts/pgbouncer.sh, started per test): many
writers on few server connections, a migration lock that holds there, and no session state left
on a pooled connection for the next client.
"""
import os
import subprocess
import sys
import tempfile
import threading

import pytest

import modelstore
from modelstore.dialects.postgresql import PostgresRunSession
from modelstore.shared.database import open_database

from conftest import SHIPPED, history, query

pytestmark = pytest.mark.postgres_only

PGBOUNCER_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts',
                            'pgbouncer.sh')
MODEL = dict(base_model='b', task='t', model_path='/m')


def _pooler(db_url, pool):
    directory = tempfile.mkdtemp(prefix='modelstore-pgbouncer-')
    os.rmdir(directory)
    url = subprocess.run(['bash', PGBOUNCER_SH, 'start', directory, db_url, str(pool)],
                         check=True, capture_output=True, text=True).stdout.strip()
    return url, lambda: subprocess.run(['bash', PGBOUNCER_SH, 'stop', directory], check=True)


@pytest.fixture
def pooled(db_url):
    """db_url through PgBouncer, transaction pooling, 8 server connections."""
    url, stop = _pooler(db_url, 8)
    yield url
    stop()


@pytest.fixture
def two_connections(db_url):
    """db_url through PgBouncer with two server connections (a run needs two: its lock's and
    its own), which every client shares."""
    url, stop = _pooler(db_url, 2)
    yield url
    stop()


WRITER = '''
import sys, modelstore
store = modelstore.connect(sys.argv[1])
for i in range(int(sys.argv[3])):
    store.add_model(model_name='%s-%d' % (sys.argv[2], i), base_model='b', task='t',
                    model_path='/m')
print('done')
'''


@pytest.mark.slow
def test_thirty_two_writers_through_eight_server_connections_lose_nothing(db_url, pooled):
    modelstore.connect(pooled).close()  # Migrated through the pooler, too.
    writers = [subprocess.Popen([sys.executable, '-c', WRITER, pooled, 'w%d' % n, '40'],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for n in range(32)]
    outcomes = [(p.wait(timeout=300),) + p.communicate() for p in writers]
    assert [(code, out.strip()) for code, out, _ in outcomes] == [(0, 'done')] * 32, \
        [err for _, _, err in outcomes if err]
    names = {r[0] for r in query(db_url, 'SELECT model_name FROM fine_tuned_models')}
    assert names == {'w%d-%d' % (n, i) for n in range(32) for i in range(40)}
    assert query(db_url, 'SELECT COUNT(*) FROM fine_tuned_models')[0][0] == 32 * 40


def test_racing_migrations_through_the_pooler_apply_each_script_once(db_url, pooled):
    runners = [subprocess.Popen([sys.executable, '-m', 'modelstore', 'migrate', '--database',
                                 pooled], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(6)]
    codes = [p.wait(timeout=300) for p in runners]
    errors = [p.stderr.read() for p in runners]
    for p in runners:
        p.stdout.close()
        p.stderr.close()
    assert codes == [0] * 6, errors
    names = [row['name'] for row in history(db_url)]
    assert names == SHIPPED  # Each once, in order.


def test_the_lock_taken_through_the_pooler_holds_for_every_client(cli, db_url, pooled):
    """A lock held by one client excludes migrate through the pooler and directly alike."""
    database = open_database(pooled, mode='migrate')
    with PostgresRunSession(database, timeout=5):
        for url in (pooled, db_url):
            code, _, err = cli('migrate', '--database', url, '--lock-timeout', '0.5')
            assert code == 2 and 'held its lock for more than 0.5 s' in err, err
    database.close()
    # Released: the next run takes it.
    assert cli('migrate', '--database', pooled)[0] == 0


def test_a_run_leaves_no_session_state_on_the_shared_connections(cli, two_connections):
    import psycopg2
    url = two_connections
    code, _, err = cli('migrate', '--database', url, '--ddl-lock-timeout', '0.5')
    assert code == 0, err
    with modelstore.connect(url) as store:
        store.add_model(model_name='m', **MODEL)
        store.update_model(1, strategy='lora')
    # The next clients: two open transactions hold both server connections, so both are seen.
    clients = [psycopg2.connect(url) for _ in range(2)]
    pids = set()
    for conn in clients:
        cur = conn.cursor()
        cur.execute('SELECT pg_backend_pid(), current_setting(%s), current_setting(%s)',
                    ('lock_timeout', 'idle_in_transaction_session_timeout'))
        pid, lock_timeout, idle = cur.fetchone()
        pids.add(pid)
        assert (lock_timeout, idle) == ('0', '0')
        cur.execute('SELECT COUNT(*) FROM pg_prepared_statements')
        assert cur.fetchone()[0] == 0
    assert len(pids) == 2
    cur.execute("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'")
    assert cur.fetchone()[0] == 0  # No lock left behind on a pooled connection.
    for conn in clients:
        conn.close()


def test_a_migration_killed_through_the_pooler_releases_its_lock(db_url, pooled):
    """kill -9 of a run holding the lock: the pooler ends its server transaction, so the next
    run does not wait for the lock."""
    code = ('import sys, time\n'
            'from modelstore.shared.database import open_database\n'
            'from modelstore.dialects.postgresql import PostgresRunSession\n'
            'db = open_database(sys.argv[1], mode="migrate")\n'
            'with PostgresRunSession(db, timeout=5):\n'
            '    print("held", flush=True)\n'
            '    time.sleep(60)\n')
    holder = subprocess.Popen([sys.executable, '-c', code, pooled], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == 'held'
    holder.kill()
    holder.wait()
    holder.stdout.close()
    done = []
    thread = threading.Thread(target=lambda: done.append(subprocess.run(
        [sys.executable, '-m', 'modelstore', 'migrate', '--database', pooled, '--lock-timeout',
         '10'], capture_output=True, text=True)))
    thread.start()
    thread.join(60)
    assert done and done[0].returncode == 0, done and done[0].stderr
