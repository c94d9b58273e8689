"""PostgreSQL: a script's DDL waits at most ddl_lock_timeout for its locks, is rolled back and
tried again, and never leaves the writers queued behind it; past its tries it fails naming the
session that held the lock.

(The figures -- writers' p99 and longest wait during such a migrate -- are in bench/.)
"""
import json
import shutil
import threading
import time

import pytest

import modelstore
from modelstore import Engine, ScriptBlocked
from modelstore.engine.scripts import default_directory
from modelstore.shared.database import open_database

from conftest import history, query

pytestmark = pytest.mark.postgres_only

ADD_NOTES = '''
from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column('fine_tuned_models', 'notes', TextField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'notes'))
'''
MODEL = dict(base_model='b', task='t', model_path='/m')


@pytest.fixture
def with_add_column(tmp_path, db_url):
    """The shipped scripts applied, and a directory of them plus 0090_add_notes."""
    directory = tmp_path / 'migrations'
    shutil.copytree(default_directory(), directory,
                    ignore=shutil.ignore_patterns('__pycache__'))
    (directory / '0090_add_notes.py').write_text(ADD_NOTES)
    modelstore.connect(db_url).close()
    return str(directory)


@pytest.fixture
def reader(db_url):
    """A session that read fine_tuned_models in a transaction it keeps open (a notebook's
    forgotten BEGIN); ``reader.end()`` commits it."""
    import psycopg2

    class Reader:
        conn = psycopg2.connect(db_url)
        cur = conn.cursor()
        cur.execute('SELECT COUNT(*) FROM fine_tuned_models')
        cur.execute('SELECT pg_backend_pid()')
        pid = cur.fetchone()[0]
        end = conn.commit
    yield Reader
    Reader.conn.close()


def test_a_blocked_script_gives_up_naming_the_session_and_is_rolled_back(cli, db_url,
                                                                         with_add_column,
                                                                         reader):
    code, out, err = cli('migrate', '--database', db_url, '--migrations', with_add_column,
                         '--ddl-lock-timeout', '0.2', '--ddl-retries', '2')
    assert code == 2, err
    # Each wait is reported, naming the session; then the failure, naming it again.
    waits = [line for line in out.splitlines() if 'waited' in line]
    assert len(waits) == 2, out
    assert all('pid %d (idle in transaction' % reader.pid in line for line in waits), waits
    assert 'attempt 2 of 3' in waits[0] and 'attempt 3 of 3' in waits[1]
    assert '0090_add_notes' in err and 'gave up taking its locks after 3 attempts' in err
    assert 'pid %d' % reader.pid in err and 'SELECT pg_backend_pid()' in err
    assert 'pg_terminate_backend(%d)' % reader.pid in err
    # Rolled back: no column, no history row; the earlier scripts stay applied.
    columns = {r[0] for r in query(db_url, "SELECT column_name FROM information_schema.columns "
                                           "WHERE table_name = 'fine_tuned_models'")}
    assert 'notes' not in columns
    names = [row['name'] for row in history(db_url)]
    assert '0090_add_notes' not in names and '0012_clients' in names


def test_json_reports_the_blockers_and_keeps_waits_off_stdout(cli, db_url, with_add_column,
                                                            reader):
    code, out, err = cli('migrate', '--database', db_url, '--migrations', with_add_column,
                         '--ddl-lock-timeout', '0.1', '--ddl-retries', '1', '--json')
    assert code == 2
    error = json.loads(out)['error']
    assert error['type'] == 'ScriptBlocked' and error['script'] == '0090_add_notes'
    assert [b['pid'] for b in error['blockers']] == [reader.pid]
    assert error['blockers'][0]['tables'] == ['fine_tuned_models']
    # stderr: each wait a JSON line, as progress is; the error's own line last.
    *events, last = err.splitlines()
    waits = [json.loads(line) for line in events]
    assert [(w['event'], w['script'], w['attempt'], w['attempts']) for w in waits] == [
        ('lock_wait', '0090_add_notes', 2, 2)], err
    assert [b['pid'] for b in waits[0]['blockers']] == [reader.pid]
    assert 'waited' in waits[0]['message'] and last.startswith('error: ')


def test_the_script_runs_once_the_reader_is_gone(db_url, with_add_column, reader):
    waits = []
    threading.Timer(1.0, reader.end).start()
    database = open_database(db_url, mode='migrate')
    try:
        result = Engine(database, with_add_column, ddl_lock_timeout=0.2,
                        ddl_retries=20).migrate(on_wait=waits.append)
    finally:
        database.close()
    assert result.names == ['0090_add_notes']
    assert waits and all(w.script == '0090_add_notes' for w in waits)
    assert waits[0].blockers[0].pid == reader.pid
    assert [w.attempt for w in waits] == list(range(1, len(waits) + 1))


def test_writers_go_on_while_a_script_waits(db_url, with_add_column, reader):
    """While migrate keeps retrying, an add_model never waits for the reader to finish."""
    stored, failures = [], []
    database = open_database(db_url, mode='migrate')
    engine = Engine(database, with_add_column, ddl_lock_timeout=0.2, ddl_retries=4)
    store = modelstore.connect(db_url)
    done = threading.Event()

    def migrate():
        try:
            engine.migrate()
        except ScriptBlocked as exc:
            failures.append(exc)
        finally:
            done.set()
    thread = threading.Thread(target=migrate)
    thread.start()
    while not done.is_set():
        store.add_model(model_name='w-%d' % len(stored), **MODEL)
        stored.append(time.monotonic())
    thread.join()
    store.close()
    database.close()
    assert failures and 'pid %d' % reader.pid in str(failures[0])
    # Writes kept landing while the script was being tried (5 waits of 0.2 s, 7.5 s of backoff between).
    assert len(stored) > 20, len(stored)
    assert query(db_url, 'SELECT COUNT(*) FROM fine_tuned_models')[0][0] == len(stored)


def test_the_option_rejects_a_wait_of_zero(cli, db_url):
    code, _, err = cli('migrate', '--database', db_url, '--ddl-lock-timeout', '0')
    assert code == 2 and '0 would wait forever' in err
    code, _, err = cli('migrate', '--database', db_url, '--ddl-retries', '-1')
    assert code == 2 and 'at least 0' in err
