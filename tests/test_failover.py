"""PostgreSQL in production: multi-host URLs, reconnecting through a restart or a failover, and
the "outcome unknown" error for a call cut off while committing.

Servers of the tests' own (scripts/postgres.sh), killed and restarted at will.
"""
import io
import random
import threading
import time

import pytest

import modelstore
from modelstore import OutcomeUnknown, StorageError

import failover

pytestmark = pytest.mark.postgres_only

MODEL = dict(base_model='b', task='t', model_path='/m')


def _port(url):
    return url.rsplit(':', 1)[1].split('/')[0]


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _multi(url, *ports, attrs='read-write'):
    """``url`` with its host list replaced by 127.0.0.1 at each of ``ports``."""
    head, tail = url.split('@', 1)
    rest = tail.split('/', 1)[1]
    return '%s@%s/%s%s' % (head, ','.join('127.0.0.1:%s' % p for p in ports), rest,
                           '?target_session_attrs=' + attrs if attrs else '')


def _superuser(directory):
    """A superuser connection over the server's socket (trusted locally)."""
    import psycopg2
    port = open(directory + '/port').read().strip()
    conn = psycopg2.connect(host=directory, port=port, user='postgres', dbname='modelstore')
    conn.autocommit = True
    return conn


def test_a_multi_host_url_skips_a_host_that_is_down(db_url):
    dead = _free_port()
    url = _multi(db_url, dead, _port(db_url), attrs=None)
    with modelstore.connect(url) as store:
        model = store.add_model(model_name='m', **MODEL)
        assert store.get_model(model.id).model_name == 'm'
        assert ('127.0.0.1:%s,127.0.0.1:%s' % (dead, _port(db_url))) in store.url
        assert 'modelstore:***@' in store.url  # The password is masked in the store's URL.


def test_migrate_and_check_on_a_multi_host_url(cli, db_url):
    url = _multi(db_url, _free_port(), _port(db_url))
    assert cli('migrate', '--database', url)[0] == 0
    code, out, err = cli('check', '--database', url)
    assert code == 0, err
    assert 'modelstore:modelstore@' not in out + err


def test_a_multi_host_url_with_no_host_up_names_every_host(cli, db_url):
    first, second = _free_port(), _free_port()
    code, _, err = cli('status', '--database', _multi(db_url, first, second))
    assert code == 2
    assert 'port %d failed' % first in err and 'port %d failed' % second in err, err


def test_a_call_waits_for_a_restarting_server_and_then_succeeds(private_server):
    url, control = private_server
    with modelstore.connect(url, reconnect_timeout=60) as store:
        store.add_model(model_name='before', **MODEL)
        control('crash')
        restarted = threading.Timer(1.5, control, ('restart',))
        restarted.start()
        started = time.monotonic()
        store.add_model(model_name='during', **MODEL)  # Waits, reconnects, is stored.
        waited = time.monotonic() - started
        restarted.join()
        assert waited >= 1.0, waited
        assert store.reconnects == 1 and store.retried_calls == 1
        assert sorted(m.model_name for m in store.list_models()) == ['before', 'during']
        assert store.get_latest_model('during').version == 1  # Stored once.


def test_reads_reconnect_too(private_server):
    url, control = private_server
    with modelstore.connect(url, reconnect_timeout=60) as store:
        store.add_model(model_name='m', **MODEL)
        control('restart')  # A clean restart ends our session too.
        assert store.count_models() == 1
        assert store.reconnects == 1


def test_an_add_models_cut_off_before_commit_says_nothing_was_stored(private_server):
    url, control = private_server
    with modelstore.connect(url, reconnect_timeout=5) as store:
        store.add_model(model_name='first', **MODEL)
        conn = _superuser(control.directory)

        def rows():
            yield dict(model_name='bulk-1', **MODEL)
            # The batch is sent after this row: end our session while the generator runs.
            cur = conn.cursor()
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                        "datname = 'modelstore' AND usename = 'modelstore'")
            yield dict(model_name='bulk-2', **MODEL)
        with pytest.raises(StorageError) as caught:
            store.add_models(rows())
        assert not isinstance(caught.value, OutcomeUnknown)
        assert 'nothing of it was stored' in str(caught.value)
        assert [m.model_name for m in store.list_models()] == ['first']  # The next call works.
        conn.close()


def _cut_off_while_committing(private_server, call):
    """Run ``call(store)`` while the server waits at COMMIT for a standby that does not exist,
    and end its session there. Returns (the error, the store)."""
    url, control = private_server
    admin = _superuser(control.directory)
    store = modelstore.connect(url, reconnect_timeout=5)
    first = store.add_model(model_name='first', **MODEL)
    cur = admin.cursor()
    cur.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
    cur.execute('SELECT pg_reload_conf()')
    errors = []

    def run():
        try:
            call(store, first)
        except Exception as exc:
            errors.append(exc)
    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
        waiting = [row[0] for row in cur.fetchall()]
        if waiting:
            break
        time.sleep(0.05)
    assert waiting, 'the call never waited at COMMIT'
    cur.execute('SELECT pg_terminate_backend(%s)', (waiting[0],))
    thread.join(30)
    cur.execute('ALTER SYSTEM RESET synchronous_standby_names')
    cur.execute('SELECT pg_reload_conf()')
    admin.close()
    assert len(errors) == 1
    return errors[0], store


def test_add_model_cut_off_while_committing_raises_outcome_unknown(private_server):
    error, store = _cut_off_while_committing(
        private_server, lambda store, _: store.add_model(model_name='cut', **MODEL))
    assert isinstance(error, OutcomeUnknown) and error.what == 'add_model'
    assert 'whether the change was stored is unknown' in str(error)
    # It had committed locally: stored exactly once, never again by a retry.
    with store:
        assert [m.model_name for m in store.list_models(model_name='cut')] == ['cut']
        assert store.retried_calls == 0


def test_an_update_cut_off_while_committing_raises_outcome_unknown(private_server):
    error, store = _cut_off_while_committing(
        private_server, lambda store, first: store.update_model(first.id, strategy='lora'))
    assert isinstance(error, OutcomeUnknown) and error.what == 'update_model'
    with store:
        assert store.get_model(1).strategy == 'lora'


@pytest.mark.slow
def test_failover_harness_small():
    """harness/failover.py, one trial: 0 acknowledged rows lost, no duplicates, the same
    stores carry on against the promoted standby."""
    out = io.StringIO()
    failed = failover.run(1, writers=4, detect=0.5, after=1.0,
                          seed=random.randrange(1 << 30), out=out)
    assert failed == 0, out.getvalue()
    text = out.getvalue()
    assert '1/1 trials consistent' in text and ', 0 lost, 0 duplicates' in text, text
