"""The events of models added and updated (issue 29): add_model, add_models (one per row) and
update_model each write theirs in the change's own transaction -- a refused call none, and its
number goes back -- and the in-process hooks see each one once, after the commit."""
import json
import signal
import subprocess
import sys
import threading
import time

import pytest

import modelstore
from modelstore import NotFound, ValidationError

from conftest import ON_POSTGRES, ON_SERVER

MODEL = dict(base_model='b', task='t')


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url, actor='pipeline@ci') as s:
        yield s


def test_add_model_records_the_model_added(store):
    seen = []
    store.on_event(seen.append)
    parent = store.add_model(model_name='base', model_path='/m/base', **MODEL)
    child = store.add_model(model_name='tuned', model_path='/m/tuned', parent_id=parent.id,
                            **MODEL)
    events = store.events()
    assert [(e.seq, e.kind, e.model_name, e.model_id, e.version, e.actor) for e in events] == [
        (1, 'model.added', 'base', parent.id, 1, 'pipeline@ci'),
        (2, 'model.added', 'tuned', child.id, 1, 'pipeline@ci')]
    assert events[1].after == {'model_path': '/m/tuned', 'base_model': 'b', 'task': 't',
                               'parent_id': parent.id}
    assert events[0].before is None and [e.seq for e in seen] == [1, 2]


def test_add_models_records_one_event_a_row_in_order(store):
    store.add_model(model_name='a', model_path='/m/0', **MODEL)
    seen = []
    store.on_event(seen.append)
    rows = [dict(MODEL, model_name='a' if i % 2 else 'b', model_path='/m/%d' % i)
            for i in range(1, 2500)]  # More than one page of events (1000).
    assert store.add_models(iter(rows)) == len(rows)
    events = store.events(after=1, limit=5000)
    stored = store.list_models(order='oldest', limit=5000)[1:]
    assert [(e.model_id, e.model_name, e.version, e.after['model_path']) for e in events] == [
        (m.id, m.model_name, m.version, m.model_path) for m in stored]
    assert [e.seq for e in events] == list(range(2, 2 + len(rows)))
    assert [e.seq for e in seen] == [e.seq for e in events]
    # The counter moved past them: the next change is numbered after the last row's event.
    store.set_tags(stored[0].id, {'k': 'v'})
    assert store.events(after=len(rows) + 1)[0].seq == len(rows) + 2


def test_a_refused_add_records_nothing_and_gives_its_number_back(store):
    first = store.add_model(model_name='a', model_path='/m/a', **MODEL)
    with pytest.raises(ValidationError):
        store.add_models([dict(MODEL, model_name='b', model_path='/m/b'),
                          dict(MODEL, model_name='', model_path='/m/c')])
    with pytest.raises(ValidationError, match='parent'):
        store.add_model(model_name='c', model_path='/m/c', parent_id=999, **MODEL)
    with pytest.raises(ValidationError, match='parent'):  # Found after its rows were written.
        store.add_models([dict(MODEL, model_name='d', model_path='/m/d', parent_id=999)])
    assert [(e.seq, e.model_id) for e in store.events()] == [(1, first.id)]
    second = store.add_model(model_name='e', model_path='/m/e', **MODEL)
    assert [(e.seq, e.model_id) for e in store.events()] == [(1, first.id), (2, second.id)]


def test_the_event_counter_gives_its_number_in_one_statement_on_a_server(store, monkeypatch):
    """Every writer of events waits for the counter's lock while its holder works: on
    PostgreSQL (RETURNING) and MySQL (the upsert's insert id, by LAST_INSERT_ID(expr)) the
    number comes back with the upsert itself, one round trip; SQLite reads it back. The first
    number, a count of 0 (only the lock) and a count of several are each exact, and a rolled
    back transaction gives its numbers back."""
    log, sent = store.events_log, []
    execute_sql = store.database.execute_sql

    def watch():  # Every statement sent, until monkeypatch.undo().
        monkeypatch.setattr(store.database, 'execute_sql',
                            lambda sql, *a, **k: sent.append(sql) or execute_sql(sql, *a, **k))

    def lock(count):
        del sent[:]
        return log.lock(count), len(sent)
    watch()
    with store.database.atomic() as transaction:  # A registry without events: no row yet.
        assert lock(0)[0] == 0
        assert lock(1) == (1, 1 if ON_SERVER else 2)
        transaction.rollback()
    monkeypatch.undo()
    first = store.add_model(model_name='a', model_path='/m/a', **MODEL)
    watch()
    with store.database.atomic() as transaction:
        statements = 1 if ON_SERVER else 2
        assert lock(1) == (2, statements)
        assert lock(0) == (2, statements)
        assert lock(3) == (5, statements)
        transaction.rollback()
    monkeypatch.undo()
    second = store.add_model(model_name='b', model_path='/m/b', **MODEL)
    assert [(e.seq, e.model_id) for e in store.events()] == [(1, first.id), (2, second.id)]


def test_update_model_records_the_fields_it_changed(store):
    m = store.add_model(model_name='a', model_path='/m/a', description='first', **MODEL)
    store.add_model(model_name='b', model_path='/m/b', **MODEL)
    store.update_model(m.id, description='second', metrics={'eval_loss': [0.5, 0.4]})
    store.update_model(m.id, model_name='b')  # Renamed: version 2 of b.
    [changed, renamed] = [e for e in store.events() if e.kind == 'model.updated']
    assert changed.before['description'] == 'first' and changed.before['metrics'] is None
    assert changed.after['description'] == 'second'
    assert changed.after['metrics'] == {'eval_loss': [0.5, 0.4]}
    assert changed.after['updated_at'] > changed.before['updated_at']  # ISO text
    assert (renamed.model_name, renamed.version, renamed.model_id) == ('b', 2, m.id)
    assert (renamed.before['model_name'], renamed.before['version']) == ('a', 1)
    assert (renamed.after['model_name'], renamed.after['version']) == ('b', 2)


def test_an_update_refused_records_nothing(store):
    m = store.add_model(model_name='a', model_path='/m/a', **MODEL)
    with pytest.raises(NotFound):
        store.update_model(999, description='x')
    with pytest.raises(ValidationError):
        store.update_model(m.id, parent_id=m.id)
    with pytest.raises(ValidationError):
        store.update_model(m.id, training_seconds=-1)
    assert [e.kind for e in store.events()] == ['model.added']


# -- waiting for the next event ----------------------------------------------------------------

WAITER = r'''
import json, sys, time
import modelstore
url, after, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
store = modelstore.connect(url)
store.events(after=after)  # Connected before it says so.
print('ready', flush=True)
start = time.monotonic()
events = store.events(after=after, wait=wait)
print(json.dumps({'seconds': time.monotonic() - start, 'seqs': [e.seq for e in events]}))
'''


def test_a_waiting_reader_wakes_when_an_event_commits(store, head_url, tmp_path):
    """events(wait=) returns the event soon after its commit, long before the wait is over:
    on PostgreSQL woken by NOTIFY, elsewhere by looking every half second."""
    first = store.add_model(model_name='a', model_path='/m/a', **MODEL)
    script = tmp_path / 'waiter.py'
    script.write_text(WAITER)
    waiter = subprocess.Popen([sys.executable, str(script), head_url, '1', '60'],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert waiter.stdout.readline().strip() == 'ready', waiter.stderr.read()
        time.sleep(1.0)  # It is waiting now.
        store.set_tags(first.id, {'stage': 'prod'})
        out, err = waiter.communicate(timeout=60)
    finally:
        waiter.kill()
    result = json.loads(out)
    assert result['seqs'] == [2], err
    # Woken at the commit, not at the end of the 60 s wait.
    assert 0.9 < result['seconds'] < 10, result


def test_a_wait_with_nothing_new_ends_empty_and_bad_waits_are_refused(store):
    store.add_model(model_name='a', model_path='/m/a', **MODEL)
    start = time.monotonic()
    assert store.events(after=1, wait=0.3) == []
    assert 0.25 < time.monotonic() - start < 5
    assert [e.seq for e in store.events(after=0, wait=30)] == [1]  # One there: no wait.
    for bad in (-1, 'soon', True, 3601):
        with pytest.raises(ValidationError, match='wait: must be a number of seconds'):
            store.events(wait=bad)


def test_events_follow_wakes_at_the_commit_on_postgresql(store, head_url):
    """`models events --follow --interval 30`: on PostgreSQL each event is printed at its
    commit; elsewhere at the next look (the interval)."""
    store.add_model(model_name='a', model_path='/m/a', **MODEL)
    follower = subprocess.Popen(
        [sys.executable, '-m', 'modelstore', 'models', 'events', '--follow', '--interval',
         '30' if ON_POSTGRES else '0.2', '--jsonl', '--database', head_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(follower.stdout.readline())['seq'] == 1
        time.sleep(1.0)  # Waiting now.
        start = time.monotonic()
        store.add_model(model_name='b', model_path='/m/b', **MODEL)
        second = json.loads(follower.stdout.readline())
        assert (second['seq'], second['kind']) == (2, 'model.added')
        assert time.monotonic() - start < 10  # Not the 30 s interval.
    finally:
        follower.send_signal(signal.SIGINT)
        follower.communicate(timeout=30)
    assert follower.returncode == 130


@pytest.mark.skipif(not ON_POSTGRES, reason='PostgreSQL: add_models reads the ids RETURNING '
                    'gives (SQLite holds its write lock; MySQL reads the rows after the call)')
def test_add_models_records_only_its_own_rows(store, monkeypatch):
    """Another program's row numbered between add_models' batches gets no model.added."""
    from modelstore.registry import fastpath
    real = fastpath.ModelQueries._insert_batch

    def with_a_legacy_row_first(queries, batch, names, inserted):
        store.database.execute_sql(
            "INSERT INTO fine_tuned_models (model_name, base_model, task, description, "
            "creation_date, model_path, is_custom_base_model) VALUES ('legacy', 'b', 't', '', "
            "'2026-01-01T00:00:00', '/l', false)")
        return real(queries, batch, names, inserted)
    monkeypatch.setattr(fastpath.ModelQueries, '_insert_batch', with_a_legacy_row_first)
    store.add_models(dict(MODEL, model_name='bulk', model_path='/m/%d' % i)
                     for i in range(2500))
    events = store.events(limit=5000)
    assert len(events) == 2500 and {e.model_name for e in events} == {'bulk'}
    assert [e.seq for e in events] == list(range(1, 2501))
    assert store.count_models(model_name='legacy') == 3


# -- a deadlock's victim -----------------------------------------------------------------------

@pytest.mark.server_only  # SQLite's writers take the write lock at BEGIN IMMEDIATE: no deadlock.
def test_a_write_the_server_chose_as_a_deadlocks_victim_runs_again(store, head_url):
    """update_model takes the events' counter, then its model's row. Another session holds the
    row (and 20 more, so InnoDB rolls back the lighter update_model; PostgreSQL's check runs
    first in the session that waited first) and then asks for the counter: a deadlock. The
    update is run again and lands once, with one event -- it was raised before (on MariaDB as
    a missing SAVEPOINT)."""
    models = [store.add_model(model_name='m%d' % i, model_path='/m/%d' % i, **MODEL)
              for i in range(21)]
    target = models[0].id
    with modelstore.connect(head_url) as other:
        done = {}
        with other.database.atomic():
            for m in models:
                other.FineTunedModel.update(description='other').where(
                    other.FineTunedModel.id == m.id).execute()

            def update():
                try:
                    done['model'] = store.update_model(target, description='mine')
                except Exception as exc:  # Seen by the assertion below.
                    done['error'] = exc
            thread = threading.Thread(target=update)
            thread.start()
            time.sleep(0.5)  # update_model holds the counter and waits for the row.
            other.events_log.lock()  # The deadlock: update_model is its victim.
        thread.join(30)
    assert 'error' not in done, done.get('error')
    assert done['model'].description == 'mine' and store.retried_calls >= 1
    assert store.get_model(target).description == 'mine'
    updates = [e for e in store.events() if e.kind == 'model.updated']
    assert [(e.model_id, e.after['description']) for e in updates] == [(target, 'mine')]


@pytest.mark.server_only
def test_two_add_tasks_of_one_name_end_as_one_task_and_a_clear_refusal(store, head_url):
    """A third session inserts the name and rolls back while two add_task calls wait on it.
    On InnoDB both waiters then hold a shared lock on the key and ask for an exclusive one: a
    deadlock, whose victim used to surface as 'SAVEPOINT ... does not exist' (add_task's
    savepoint, gone with the rolled-back transaction). Now the victim runs again and is refused
    as a duplicate name, as on PostgreSQL, where the second waiter is refused directly."""
    task = dict(task_name='race', base_runtime='sglang', model_config={}, parameters={},
                optimization_config={}, benchmark_config={})
    with modelstore.connect(head_url) as a, modelstore.connect(head_url) as b:
        outcomes = []

        def add(s):
            try:
                outcomes.append(s.add_task(**task).task_name)
            except Exception as exc:  # Seen by the assertions below.
                outcomes.append(exc)
        T = store.Task
        with store.database.manual_commit():
            store.database.begin()
            T.insert(**dict(task, model_config='{}', parameters='{}', optimization_config='{}',
                            benchmark_config='{}')).execute()
            threads = [threading.Thread(target=add, args=(s,)) for s in (a, b)]
            for thread in threads:
                thread.start()
            time.sleep(1)  # Both wait for the uncommitted row's key.
            store.database.rollback()
        for thread in threads:
            thread.join(30)
    errors = [o for o in outcomes if not isinstance(o, str)]
    assert outcomes.count('race') == 1 and len(errors) == 1, outcomes
    assert isinstance(errors[0], ValidationError) and errors[0].field == 'task_name', errors[0]
    assert 'already exists' in str(errors[0])
    assert store.count_tasks() == 1
