"""Model versions (0008-0010): 1, 2, 3... per model_name, given by the database to every row
whoever inserts it, and the legacy rows numbered by an online migration that resumes."""
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import textwrap
import threading
import time

import pytest

import modelstore
from modelstore import NotFound, ScriptError, ValidationError
from modelstore.engine import Engine
from modelstore.shared.database import open_database

from conftest import BACKEND, ON_POSTGRES, ON_SERVER, execute, history, query
from legacy import build, modelforge_v11_altered

MODEL = dict(base_model='meta-llama/Llama-3.2-1B', task='text-generation', model_path='/m')
P = '%s' if ON_SERVER else '?'
# ModelForge's own INSERTs (v1.0: six columns; v1.1: seven), as it runs them.
FORGE_6 = ('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
           'creation_date, model_path) VALUES (%s)' % ', '.join([P] * 6))
FORGE_7 = ('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
           'creation_date, model_path, is_custom_base_model) VALUES (%s)' % ', '.join([P] * 7))


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url) as s:
        yield s


def versions(url, name=None):
    """{model_name: [version, ...] in id order}."""
    rows = query(url, 'SELECT model_name, version FROM fine_tuned_models ORDER BY id')
    out = {}
    for model_name, version in rows:
        out.setdefault(model_name, []).append(version)
    return out if name is None else out.get(name, [])


def forge_row(name, i=0, custom=None):
    row = (name, 'b', 'text-generation', '', '2025-10-30T14:03:%02d.512345' % (i % 60), '/p')
    return row if custom is None else row + (custom,)


def test_versions_count_per_name_in_creation_order(store):
    added = [store.add_model(model_name=n, **MODEL) for n in ('a', 'b', 'a', 'a', 'b')]
    assert [(m.model_name, m.version) for m in added] == [('a', 1), ('b', 1), ('a', 2),
                                                          ('a', 3), ('b', 2)]
    assert store.get_model(added[2].id).version == 2
    assert store.get_model_version('a', 2).id == added[2].id
    assert store.get_latest_model('a').id == added[3].id
    assert store.get_latest_model('b').version == 2
    assert [m.version for m in store.list_models(model_name='a')] == [3, 2, 1]
    assert [m.version for m in store.list_models(model_name='a', order='oldest')] == [1, 2, 3]
    assert [m.version for m in store.list_models(model_name='a', limit=1, offset=1)] == [2]
    assert store.count_models(model_name='a') == 3


def test_bulk_rows_are_numbered_in_order(store, db_url):
    store.add_model(model_name='x', **MODEL)
    assert store.add_models(dict(model_name='x' if i % 2 else 'y', **MODEL)
                            for i in range(6)) == 6
    assert versions(db_url, 'x') == [1, 2, 3, 4]
    assert [m.version for m in store.list_models(model_name='y', order='oldest')] == [1, 2, 3]


def test_absent_versions_are_not_found_and_bad_arguments_are_refused(store):
    store.add_model(model_name='a', **MODEL)
    with pytest.raises(NotFound, match="no version 2 of a model named 'a'"):
        store.get_model_version('a', 2)
    with pytest.raises(NotFound, match="no model named 'zzz'"):
        store.get_latest_model('zzz')
    for bad in (0, -1, True, '1', 1.0, 2 ** 31, None):
        with pytest.raises(ValidationError) as info:
            store.get_model_version('a', bad)
        assert info.value.field == 'version'
    for bad in ('', 5, None, 'x\x00'):
        with pytest.raises(ValidationError) as info:
            store.get_latest_model(bad)
        assert info.value.field == 'model_name'


def test_a_version_cannot_be_given(store, db_url):
    with pytest.raises(ValidationError, match='numbered by the database') as info:
        store.add_model(model_name='a', version=7, **MODEL)
    assert info.value.field == 'version'
    with pytest.raises(ValidationError, match='numbered by the database'):
        store.add_models([dict(model_name='a', **MODEL), dict(model_name='a', version=2,
                                                              **MODEL)])
    with pytest.raises(ValidationError, match='numbered by the database'):
        store.update_model(store.add_model(model_name='b', **MODEL).id, version=9)
    assert versions(db_url) == {'b': [1]}


def test_a_deleted_version_is_never_given_again(store):
    first, second = (store.add_model(model_name='a', **MODEL) for _ in range(2))
    store.delete_model(second.id)
    assert store.add_model(model_name='a', **MODEL).version == 3
    assert store.get_latest_model('a').version == 3
    with pytest.raises(NotFound):
        store.get_model_version('a', 2)


def test_a_renamed_model_becomes_the_next_version_of_its_new_name(store):
    a1, a2 = (store.add_model(model_name='a', **MODEL) for _ in range(2))
    b1 = store.add_model(model_name='b', **MODEL)
    # a2 has version 2, which 'b' has not got: without renumbering it would keep it; a1's 1
    # would collide with b's 1.
    for model, want in ((a1, 2), (a2, 3)):
        renamed = store.update_model(model.id, model_name='b')
        assert (renamed.model_name, renamed.version) == ('b', want)
    assert [m.id for m in store.list_models(model_name='b', order='oldest')] == [b1.id, a1.id,
                                                                                  a2.id]
    # Same name again: nothing changes. The freed 'a' numbers are not reused.
    assert store.update_model(a2.id, model_name='b').version == 3
    assert store.add_model(model_name='a', **MODEL).version == 3


def test_the_legacy_apps_own_inserts_get_versions(store, db_url):
    store.add_model(model_name='m', **MODEL)
    execute(db_url, (FORGE_6, forge_row('m')), (FORGE_7, forge_row('m', 1, True)),
            (FORGE_6, forge_row('other')))
    assert versions(db_url) == {'m': [1, 2, 3], 'other': [1]}
    assert store.add_model(model_name='m', **MODEL).version == 4


def test_a_row_inserted_with_a_version_keeps_it_and_the_counter_moves_past(store, db_url):
    # An import or a restore by hand, naming the version.
    execute(db_url, 'INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
                    "creation_date, model_path, version) VALUES ('m', 'b', 't', '', "
                    "'2025-01-01T00:00:00', '/p', 5)")
    assert store.add_model(model_name='m', **MODEL).version == 6
    with pytest.raises(Exception, match='(?i)unique|duplicate'):  # Unique per name.
        execute(db_url, 'INSERT INTO fine_tuned_models (model_name, base_model, task, '
                        "description, creation_date, model_path, version) VALUES ('m', 'b', "
                        "'t', '', '2025-01-01T00:00:00', '/p', 6)")


WRITER = textwrap.dedent('''
    import sys, time, modelstore
    url, count, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    store = modelstore.connect(url)
    time.sleep(max(0, start - time.time()))
    for i in range(count):
        store.add_model(model_name='shared', base_model='b', task='t', model_path='/p')
    store.close()
''')


@pytest.mark.slow
def test_eight_processes_adding_versions_of_one_name_get_no_duplicate_and_no_gap(db_url):
    modelstore.connect(db_url).close()
    start = time.time() + 2
    procs = [subprocess.Popen([sys.executable, '-c', WRITER, db_url, '25', repr(start)],
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    assert sorted(versions(db_url, 'shared')) == list(range(1, 201))
    if not ON_SERVER:  # Writers take turns: a later row (id) never has a lower version.
        assert versions(db_url, 'shared') == sorted(versions(db_url, 'shared'))
    # (PostgreSQL: an id is drawn before the name's counter is locked, so two inserts at the
    # same moment may take versions in the other order than their ids. Either is "creation
    # order"; the version is the order in which their inserts took the counter.)


# -- the online numbering of legacy rows (0010) ----------------------------------------------

def _forge_file(path, rows, names=7):
    build(path, modelforge_v11_altered)
    execute(path, *[(FORGE_7, forge_row('n%d' % (i % names), i, bool(i % 3)))
                    for i in range(rows)])


def _expected(path):
    """What numbering in id order gives: {model_name: [1..k]}."""
    out = {}
    for (name,) in query(path, 'SELECT model_name FROM fine_tuned_models ORDER BY id'):
        out.setdefault(name, []).append(len(out.get(name, [])) + 1)
    return out


@pytest.mark.sqlite_only
def test_a_legacy_file_is_numbered_in_creation_order(db_path):
    _forge_file(db_path, 3000)
    expected = _expected(db_path)
    events = []
    result = Engine(open_database('sqlite:///' + db_path, mode='migrate')).migrate(
        on_progress=events.append)
    assert versions(db_path) == expected
    assert len(events) > 3, 'the rows were numbered in one batch'
    rows = sum(len(v) for v in expected.values())  # (The fixture's own rows, and ours.)
    assert rows > 3000 and events[-1].rows == rows and events[-1].total == rows
    assert all(a.rows <= b.rows for a, b in zip(events, events[1:]))
    assert '0010_number_model_versions' in [r.name for r in result.runs]
    with modelstore.connect(db_path) as store:
        assert store.add_model(model_name='n0', **MODEL).version == len(expected['n0']) + 1


PROGRESS = re.compile(r'  0010_number_model_versions: [\d,]+ of [\d,]+ rows \(\d+%\), [\d,]+ rows/s'
                      r'(, .+ left)?; batches of [\d,]+ rows, (\d+ ms apart|back to back) '
                      r'\((nobody waiting|yielding to writers)\)')


@pytest.mark.sqlite_only
@pytest.mark.parametrize('as_json', [False, True])
def test_a_run_off_a_terminal_logs_its_progress_and_pace(db_path, cli, monkeypatch, as_json):
    """In a CI log (no terminal) numbering a legacy file prints where it stands every
    PROGRESS_EVERY seconds -- rows, rows/s, the batch size and the pause between batches;
    with --json each is a JSON object on stderr, and stdout stays the one result object."""
    from modelstore.cli import output
    _forge_file(db_path, 3000)
    monkeypatch.setattr(output, 'PROGRESS_EVERY', 0.0)
    code, out, err = cli('migrate', '--database', db_path, '--no-backup',
                         *(['--json'] if as_json else []))
    assert code == 0, err
    if as_json:
        assert '0010_number_model_versions' in [s['name'] for s in json.loads(out)['scripts']]
        events = [json.loads(line) for line in err.splitlines() if line.startswith('{')]
        assert len(events) > 3 and {e['event'] for e in events} == {'progress'}
        assert [e['rows'] for e in events] == sorted(e['rows'] for e in events)
        last = events[-1]
        assert last['script'] == '0010_number_model_versions' and last['rows'] == last['total']
        assert last['batch_size'] > 0 and last['rows_per_second'] > 0
        # Back to back (nobody else has the file open), or a pause for writers.
        assert last['pause'] == 0 or last['pause'] >= 0.02
        assert last['pace'] in ('full', 'writers')
    else:
        lines = [line for line in out.splitlines() if 'rows/s' in line]
        assert len(lines) > 3 and all(PROGRESS.fullmatch(line) for line in lines), lines
        assert out.index(lines[0]) < out.index('Applied ')


class _GoneReader:
    """A stderr whose reader went away (a log shipper that died)."""
    def write(self, text):
        raise BrokenPipeError(32, 'Broken pipe')

    def flush(self):
        raise BrokenPipeError(32, 'Broken pipe')


@pytest.mark.sqlite_only
@pytest.mark.parametrize('stderr', [None, _GoneReader()], ids=['closed', 'broken-pipe'])
def test_progress_events_never_reach_stdout_nor_stop_the_run(db_path, cli, monkeypatch,
                                                              stderr):
    """--json's progress goes to stderr as a log: a closed stderr (2>&-) must not turn it
    into stdout lines before the one result object, and a reader gone from it must not stop
    the script (it did: BrokenPipeError, the script left interrupted)."""
    from modelstore.cli import output
    _forge_file(db_path, 3000)
    monkeypatch.setattr(output, 'PROGRESS_EVERY', 0.0)
    monkeypatch.setattr(sys, 'stderr', stderr)
    code, out, _ = cli('migrate', '--database', db_path, '--no-backup', '--json')
    assert code == 0
    assert '0010_number_model_versions' in [s['name'] for s in json.loads(out)['scripts']]
    done = {r['name']: r['method'] for r in history(db_path)}
    assert done['0010_number_model_versions'] == 'ran' and versions(db_path)


@pytest.mark.sqlite_only
def test_a_short_run_off_a_terminal_logs_no_progress(db_path, cli):
    _forge_file(db_path, 300)
    code, out, err = cli('migrate', '--database', db_path, '--no-backup')
    assert code == 0 and 'rows/s' not in out + err


class Stop(Exception):
    pass


def _interrupt_after(batches):
    def on_progress(progress):
        if progress.batches == batches:
            raise Stop('killed after batch %d' % batches)
    return on_progress


def _writer_during(url, after_batches):
    """on_progress that inserts legacy rows from another connection between batches."""
    def on_progress(progress):
        if progress.batches in after_batches:
            execute(url, (FORGE_6, forge_row('n1', progress.batches)),
                    (FORGE_6, forge_row('late', progress.batches)))
    return on_progress


@pytest.mark.slow
def test_an_interrupted_numbering_resumes_with_no_row_numbered_twice_or_skipped(db_url):
    migrate_to(db_url, '0009_model_version_index')
    execute(db_url, *[(FORGE_6, forge_row('n%d' % (i % 5), i)) for i in range(2500)])
    database = open_database(db_url, mode='migrate')
    with pytest.raises(ScriptError, match='the batches that committed are kept'):
        Engine(database).migrate(on_progress=_interrupt_after(3))
    numbered = [v for vs in versions(db_url).values() for v in vs if v is not None]
    assert 0 < len(numbered) < 2500  # Partway.
    assert [r['method'] for r in history(db_url) if r['name'] == '0010_number_model_versions'] == \
        ['running']
    # Rows a legacy app inserts while nothing numbers them, then a second run, with more
    # rows arriving between its batches.
    execute(db_url, (FORGE_6, forge_row('n1', 1)))
    Engine(database).migrate(on_progress=_writer_during(db_url, {1, 2}))
    assert versions(db_url) == _expected(db_url)
    assert [r['method'] for r in history(db_url) if r['name'] == '0010_number_model_versions'] == ['ran']
    assert Engine(database).status().pending == []
    database.close()


def migrate_to(url, target):
    database = open_database(url, mode='migrate')
    try:
        Engine(database).migrate(target)
    finally:
        database.close()


@pytest.mark.postgres_only
def test_a_row_committed_behind_the_walk_is_numbered_by_the_last_batch(db_url):
    """PostgreSQL: an INSERT that took its id before the walk passed it, and committed after."""
    import psycopg2
    migrate_to(db_url, '0009_model_version_index')
    execute(db_url, *[(FORGE_6, forge_row('n%d' % (i % 3), i)) for i in range(1500)])
    held = psycopg2.connect(db_url)
    state = {}

    def on_progress(progress):
        if progress.batches == 1:
            cur = held.cursor()
            cur.execute(FORGE_6, forge_row('behind', 0))  # Its id is taken now...
            execute(db_url, (FORGE_6, forge_row('ahead', 0)))
            # ...and it commits while the last batch waits for its table lock.
            state['timer'] = threading.Timer(0.5, held.commit)
            state['timer'].start()
    database = open_database(db_url, mode='migrate')
    Engine(database).migrate(on_progress=on_progress)
    state['timer'].join()
    held.close()
    assert versions(db_url) == _expected(db_url)
    assert versions(db_url)['behind'] == [1]
    assert query(db_url, "SELECT count(*) FROM pg_class WHERE relname = "
                         "'fine_tuned_models_unnumbered'") == [(0,)]
    database.close()


def test_rolling_0010_back_and_forth_keeps_the_numbers(db_url, store):
    store.add_model(model_name='a', **MODEL)
    database = open_database(db_url, mode='migrate')
    # Back through 0013, whose tables hold the model.added event: dropped first (no data lost).
    execute(db_url, 'DELETE FROM registry_events', 'DELETE FROM registry_event_counter')
    Engine(database).rollback('0010_number_model_versions')
    execute(db_url, (FORGE_6, forge_row('a')))  # No trigger: left unnumbered.
    assert versions(db_url) == {'a': [1, None]}
    Engine(database).migrate()
    assert versions(db_url) == {'a': [1, 2]}
    database.close()


# -- a worker of the previous release, during a rolling upgrade -----------------------------

# The last commit before versions (stop 19): what a worker started before the upgrade runs.
PREVIOUS_RELEASE = 'a4f79b9'
OLD_WORKER = textwrap.dedent('''
    import json, sys, time
    import modelstore
    url, until = sys.argv[1], float(sys.argv[2])
    store = modelstore.connect(url)  # At 0007: this release's head.
    print(json.dumps({'ready': True}), flush=True)
    ids = []
    while time.time() < until or len(ids) < 20:
        ids.append(store.add_model(model_name='old-worker', base_model='b', task='t',
                                   model_path='/p').id)
        time.sleep(0.005)
    print(json.dumps({'ids': ids}), flush=True)
''')


@pytest.fixture(scope='module')
def previous_release(tmp_path_factory):
    """The previous release's package: tests/data holds it as `git archive PREVIOUS_RELEASE
    modelstore migrations` made it, so the test needs no git history."""
    archive = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                           'previous-release-%s.tar.gz' % PREVIOUS_RELEASE)
    target = tmp_path_factory.mktemp('previous')
    with tarfile.open(archive) as tar:
        tar.extractall(str(target), **({'filter': 'data'} if hasattr(tarfile, 'data_filter')
                                       else {}))
    models = open(os.path.join(str(target), 'modelstore', 'shared', 'models.py')).read()
    assert 'version = ' not in models  # A release from before versions.
    return str(target)


@pytest.mark.not_mysql('the previous release did not support MySQL')
@pytest.mark.slow
def test_a_worker_of_the_previous_release_keeps_writing_and_its_rows_get_versions(
        db_url, previous_release):
    migrate_to(db_url, '0007_search_indexes')
    execute(db_url, *[(FORGE_6, forge_row('old-worker', i)) for i in range(300)])
    env = dict(os.environ, PYTHONPATH=previous_release)
    worker = subprocess.Popen([sys.executable, '-c', OLD_WORKER, db_url, repr(time.time() + 4)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=previous_release)
    assert json.loads(worker.stdout.readline()) == {'ready': True}, worker.stderr.read()
    time.sleep(0.3)
    migrate_to(db_url, None)  # While it writes.
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    ids = json.loads(out.splitlines()[-1])['ids']
    assert len(ids) >= 20
    assert versions(db_url) == _expected(db_url)
    assert len(versions(db_url, 'old-worker')) == 300 + len(ids)


# -- progress: on a terminal only -------------------------------------------------------------

def _migrate_output(path, *extra, terminal):
    """migrate's stdout, through a pseudo-terminal or a pipe."""
    import pty
    argv = [sys.executable, '-m', 'modelstore', 'migrate', '--database', path, '--no-backup']
    argv += list(extra)
    if not terminal:
        return subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdout=follower, stderr=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its end.
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=120)
    os.close(leader)
    return b''.join(chunks).decode()


@pytest.mark.sqlite_only
@pytest.mark.parametrize('how', ['terminal', 'terminal --json', 'pipe'])
@pytest.mark.slow
def test_the_numbering_shows_progress_on_a_terminal_only(tmp_path, how):
    path = str(tmp_path / 'forge.db')
    _forge_file(path, 4000)
    out = _migrate_output(path, *(['--json'] if '--json' in how else []),
                          terminal=how.startswith('terminal'))
    shown = '0010_number_model_versions: ' in out and ' rows/s' in out
    assert shown == (how == 'terminal'), out[-2000:]
    if how == 'terminal':
        assert re.search(r'\r  0010_number_model_versions: [\d,]+ of 4,0\d\d rows \(\d+%\), '
                         r'[\d,]+ rows/s, \d+ s left', out), out
    assert versions(path) == _expected(path)


def test_check_reports_missing_triggers_and_says_how_to_reinstall_them(cli, db_url):
    assert cli('migrate', '--database', db_url)[0] == 0
    assert cli('check', '--database', db_url)[0] == 0
    name = {'postgresql': 'fine_tuned_models_version', 'sqlite': 'fine_tuned_models_version_new',
            'mysql': 'fine_tuned_models_version_insert'}[BACKEND]
    execute(db_url, 'DROP TRIGGER %s%s' % (name, ' ON fine_tuned_models' if ON_POSTGRES
                                           else ''))
    execute(db_url, (FORGE_6, forge_row('lost')))  # Left unnumbered.
    code, out, _ = cli('check', '--database', db_url)
    assert code == 1 and 'trigger %s on fine_tuned_models is missing' % name in out, out
    assert 'rollback --to 0010_number_model_versions' in out
    assert cli('rollback', '--database', db_url, '--to', '0010_number_model_versions')[0] == 0
    assert cli('migrate', '--database', db_url)[0] == 0
    assert cli('check', '--database', db_url)[0] == 0
    assert versions(db_url) == {'lost': [1]}


@pytest.mark.sqlite_only
def test_an_app_committing_between_the_runs_read_and_write_does_not_fail_0010(db_path,
                                                                              monkeypatch):
    """Issue 26, item 5: the online script's history row was written in a deferred SQLite
    transaction that read the history first; an app's INSERT committed in between made the
    write fail outright ("database is locked": SQLite does not wait for a stale snapshot) and
    migrate ended with 0010 rolled back. The write lock is taken first now: the app's writer
    waits (here, with no wait allowed, it is turned away), and migrate goes on."""
    import sqlite3
    from modelstore.engine.history import History
    url = 'sqlite:///' + db_path
    migrate_to(url, '0009_model_version_index')
    execute(url, *[(FORGE_6, forge_row('n%d' % (i % 3), i)) for i in range(50)])
    with contextlib.closing(sqlite3.connect(db_path)) as conn:  # As connect() leaves it.
        assert conn.execute('PRAGMA journal_mode=WAL').fetchone() == ('wal',)
    original = History._columns
    app = {'committed': 0, 'turned_away': 0}

    def columns_then_an_app_commits(self):
        found = original(self)
        conn = sqlite3.connect(db_path, timeout=0)
        try:
            conn.execute(FORGE_6.replace('%s', '?'), forge_row('app', 0))
            conn.commit()
            app['committed'] += 1
        except sqlite3.OperationalError:  # The run holds the write lock: wait your turn.
            app['turned_away'] += 1
        finally:
            conn.close()
        return found
    monkeypatch.setattr(History, '_columns', columns_then_an_app_commits)
    database = open_database(url, mode='migrate')
    try:
        Engine(database).migrate()
    finally:
        database.close()
    assert app['turned_away'] >= 1
    assert [r['method'] for r in history(url) if r['name'] == '0010_number_model_versions'] \
        == ['ran']
    assert versions(url) == _expected(url)
