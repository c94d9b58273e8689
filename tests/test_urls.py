"""Which file or server a URL or path names, and what is refused before anything is created
(issue 11: B3, B5, B8)."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import modelstore
from modelstore import ConfigError
from modelstore.shared.database import open_database
from modelstore.shared.urls import resolve_url, sqlite_path

from conftest import ON_POSTGRES, TEST_URL, query

MODEL = dict(model_name='m', base_model='b', task='t', model_path='/p')


# -- a bare path is a path (B5) ----------------------------------------------------------------

@pytest.mark.sqlite_only
@pytest.mark.parametrize('name', ['reg#2.db', 'reg?x.db', '50%.db', 'a%23b.db', 'sp ace.db'])
def test_a_bare_path_names_exactly_that_file(cli, tmp_path, name):
    path = str(tmp_path / name)
    code, out, err = cli('migrate', '--database', path)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == sorted([name, 'xdg'] if os.path.exists(
        tmp_path / 'xdg') else [name])
    assert query(path, 'SELECT count(*) FROM schema_migration')[0][0] > 0
    # What is printed is a URL naming the same file: given back, it reaches the same file.
    shown = out.splitlines()[0].split(': ', 1)[1]
    assert sqlite_path(shown) == path
    assert cli('check', '--database', shown)[0] == 0
    with modelstore.connect(path) as store:  # The API takes the same bare path.
        store.add_model(**MODEL)
    assert query(path, 'SELECT count(*) FROM fine_tuned_models') == [(1,)]


@pytest.mark.sqlite_only
@pytest.mark.parametrize('url, message', [
    ('sqlite:///{dir}/reg?x.db', "query parameters ('x.db')"),
    ('sqlite:///{dir}/reg.db?timeout=5', "query parameters ('timeout')"),
    ('sqlite:///{dir}/reg#2.db', 'has a fragment (#2.db)'),
    ('sqlite:///{dir}/reg.db#', 'has a fragment'),
])
def test_a_url_part_that_is_not_understood_is_refused_before_any_file_exists(cli, tmp_path, url,
                                                                            message):
    url = url.format(dir=str(tmp_path))
    for argv in (['migrate', '--database', url], ['status', '--database', url]):
        code, _, err = cli(*argv)
        assert code == 2 and message in err, err
    with pytest.raises(ConfigError, match=message.replace('(', r'\(').replace(')', r'\)')):
        modelstore.connect(url)
    assert [p for p in os.listdir(tmp_path) if p != 'xdg'] == []


def test_an_empty_database_argument_is_an_error_not_the_default(cli, tmp_path, monkeypatch):
    env = tmp_path / 'env.db'
    monkeypatch.setenv('MODELSTORE_DATABASE_URL', 'sqlite:///' + str(env))
    for command in ('migrate', 'status', 'check'):
        code, _, err = cli(command, '--database', '')
        assert code == 2 and 'the database URL is empty' in err
    with pytest.raises(ConfigError, match='the database URL is empty'):
        modelstore.connect('')
    with pytest.raises(ConfigError, match='empty'):
        resolve_url('   ')
    assert not env.exists() and not (tmp_path / 'xdg' / 'modelstore').exists()


def test_an_empty_environment_variable_means_unset(tmp_path, monkeypatch):
    monkeypatch.setenv('MODELSTORE_DATABASE_URL', '')
    modelstore.connect().close()
    assert (tmp_path / 'xdg' / 'modelstore' / 'modelstore.db').exists()


@pytest.mark.sqlite_only
def test_a_device_is_not_a_database_file(cli):
    before = os.stat('/dev/null')
    code, out, err = cli('migrate', '--database', '/dev/null')
    assert code == 2 and 'not a regular file' in err
    assert '✓' not in out
    assert os.stat('/dev/null').st_mode == before.st_mode


# -- PostgreSQL: query parameters and the connect timeout (B3, B5) -----------------------------

class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never says a word."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def __exit__(self, *exc):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.mark.slow
def test_a_server_that_never_answers_times_out_naming_host_and_port(cli):
    pytest.importorskip('psycopg2')
    with SilentServer() as server:
        url = 'postgresql://u:secret@127.0.0.1:%d/db?connect_timeout=2' % server.port
        started = time.monotonic()
        with pytest.raises(ConfigError) as info:
            modelstore.connect(url)
        waited = time.monotonic() - started
        message = str(info.value)
        assert '127.0.0.1' in message and str(server.port) in message
        assert 'within 2 s' in message and 'secret' not in message
        assert waited < 30  # Bounded (the exact figure is libpq's business).
        code, _, err = cli('status', '--database', url)
        assert code == 2 and str(server.port) in err and 'connect_timeout' in err
        assert server.accepted  # It really reached the silent server.


def test_the_connect_timeout_defaults_to_ten_seconds_and_the_url_overrides_it(monkeypatch):
    pytest.importorskip('psycopg2')
    from modelstore.shared import database as dbmodule
    assert dbmodule.CONNECT_TIMEOUT == 10
    seen = {}

    def spy(cls, kwargs, read_only, url, shown):  # What the driver would be given.
        seen.update(kwargs)
        raise ConfigError('stopped before connecting')
    monkeypatch.setattr(dbmodule, '_connect', spy)
    for url, expected in (('postgresql://u@127.0.0.1:1/db', 10),
                          ('postgresql://u@127.0.0.1:1/db?connect_timeout=3', 3)):
        with pytest.raises(ConfigError, match='stopped before connecting'):
            open_database(url, mode='inspect')
        assert int(seen['connect_timeout']) == expected


@pytest.mark.parametrize('query_string, message', [
    ('bogus=1', 'does not understand: bogus'),
    ('connect_timeout=soon', 'connect_timeout must be a whole number'),
])
def test_postgresql_parameters_libpq_does_not_take_are_refused(cli, query_string, message):
    pytest.importorskip('psycopg2')
    url = 'postgresql://u:secret@127.0.0.1:1/db?' + query_string
    with pytest.raises(ConfigError, match=message):
        modelstore.connect(url)
    code, _, err = cli('status', '--database', url)
    assert code == 2 and message in err and 'secret' not in err


@pytest.mark.postgres_only
def test_libpq_parameters_are_passed_on(db_url):
    url = db_url + ('&' if '?' in db_url else '?') + 'application_name=ms-test&connect_timeout=5'
    with modelstore.connect(url) as store:
        name = store.database.execute_sql('SHOW application_name').fetchone()[0]
    assert name == 'ms-test'


# -- a WAL registry in a read-only directory can be read (B8) ----------------------------------

def _as_nobody(argv, cwd):
    """Run the CLI as an unprivileged user (as root, permissions would not apply)."""
    command = [sys.executable, '-m', 'modelstore'] + argv
    if os.getuid() == 0:
        command = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] + command
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture
def shared_dir():
    """A directory other users may enter, removed afterwards."""
    directory = tempfile.mkdtemp(prefix='modelstore-ro-')
    os.chmod(directory, 0o755)
    yield directory
    for root, dirs, files in os.walk(directory):
        os.chmod(root, 0o755)
    shutil.rmtree(directory, ignore_errors=True)


def _wal_registry(directory, rows=3):
    path = os.path.join(directory, 'r.db')
    store = modelstore.connect('sqlite:///' + path)
    store.add_models([dict(MODEL, model_name='m%d' % i) for i in range(rows)])
    return path, store


@pytest.mark.sqlite_only
@pytest.mark.slow
def test_a_wal_registry_in_a_read_only_directory_can_be_read(shared_dir):
    path, store = _wal_registry(shared_dir)
    store.close()  # The last connection folds the log into the file and removes it.
    assert not os.path.exists(path + '-wal')
    os.chmod(path, 0o644)
    os.chmod(shared_dir, 0o555)
    before = open(path, 'rb').read()
    for command in ('status', 'history', 'check'):
        proc = _as_nobody([command, '--database', path], '/')
        assert proc.returncode == 0, (command, proc.stderr)
        assert 'readonly' not in proc.stderr
    assert '0005_index_model_listing' in _as_nobody(['history', '--database', path], '/').stdout
    assert open(path, 'rb').read() == before and sorted(os.listdir(shared_dir)) == ['r.db']
    # A write is still refused, saying why.
    proc = _as_nobody(['migrate', '--database', path], '/')
    assert proc.returncode == 2 and 'read-only' in proc.stderr


@pytest.mark.sqlite_only
def test_a_read_only_reader_sees_rows_still_in_a_readable_wal(shared_dir):
    path, store = _wal_registry(shared_dir)
    try:
        assert os.path.getsize(path + '-wal') > 0
        for suffix in ('', '-wal', '-shm'):
            os.chmod(path + suffix, 0o644)
        os.chmod(shared_dir, 0o555)
        proc = _as_nobody(['check', '--database', path], '/')
        assert proc.returncode == 0, proc.stderr
    finally:
        os.chmod(shared_dir, 0o755)
        store.close()


@pytest.mark.sqlite_only
@pytest.mark.slow
def test_a_wal_it_cannot_read_is_reported_precisely(shared_dir):
    path, store = _wal_registry(shared_dir)
    try:
        os.chmod(path, 0o644)
        os.chmod(path + '-wal', 0o644)
        os.chmod(path + '-shm', 0o600)  # The owner's only.
        os.chmod(shared_dir, 0o555)
        proc = _as_nobody(['status', '--database', path], '/')
        assert proc.returncode == 2
        assert 'write-ahead log holds committed changes' in proc.stderr
        assert path + '-shm is not readable' in proc.stderr
    finally:
        os.chmod(shared_dir, 0o755)
        store.close()


@pytest.mark.parametrize('url, message', [
    ('sqlite://a,b/x.db', 'only PostgreSQL URLs may'),
    ('postgresql://u:p@127.0.0.1:5432,,127.0.0.1:5433/db', "'' in its host list is not host[:port]"),
    ('postgresql://u:p@127.0.0.1:5432,127.0.0.1:x/db', "'127.0.0.1:x' in its host list"),
])
def test_a_bad_host_list_is_refused_before_connecting(url, message):
    with pytest.raises(ConfigError) as caught:
        open_database(url)
    assert message in str(caught.value) and 'u:p@' not in str(caught.value)


def test_a_multi_host_url_maps_to_libpqs_host_and_port_lists():
    from modelstore.shared.urls import mask_url, server_hosts
    url = 'postgresql://u:s3cret@db1:5433,[::1],db3:6000/registry?target_session_attrs=read-write'
    assert server_hosts(url) == [('db1', '5433'), ('::1', ''), ('db3', '6000')]
    assert mask_url(url) == ('postgresql://u:***@db1:5433,[::1],db3:6000/registry'
                             '?target_session_attrs=read-write')


@pytest.mark.parametrize('value', [-1, float('nan'), 'soon', True])
def test_a_bad_reconnect_timeout_is_refused(tmp_path, value):
    with pytest.raises(ConfigError) as caught:
        modelstore.connect(str(tmp_path / 'r.db'), reconnect_timeout=value)
    assert 'reconnect_timeout' in str(caught.value)
    assert not (tmp_path / 'r.db').exists()


# -- a URL is parsed once, into a value (issue 27) ---------------------------------------------

def test_a_url_is_parsed_once_into_a_value_that_knows_its_parts(tmp_path, monkeypatch):
    from modelstore.shared.urls import DatabaseURL, ENV_VAR, parse_url
    url = parse_url('postgresql://u:s3cr%40t@db1:5433,db2/registry?sslmode=require&password=x')
    assert isinstance(url, DatabaseURL) and url == url.text
    assert type(url.text) is str and url.text.startswith('postgresql://u:s3cr%40t@')
    assert (url.scheme, url.backend, url.sqlite_path) == ('postgresql', 'postgresql', None)
    assert url.masked == 'postgresql://u:***@db1:5433,db2/registry?sslmode=require&password=***'
    assert url.hosts == [('db1', '5433'), ('db2', '')]
    assert url.query == (('sslmode', 'require'), ('password', 'x'))
    assert parse_url(url) is url and DatabaseURL.of(url) is url
    with pytest.raises(AttributeError):
        url.masked = 'leak'
    assert parse_url('mariadb://u@h/db').backend == 'mysql'
    assert parse_url('mysql+pool://u@h/db').backend == 'mysql'
    assert parse_url('sqlite://').sqlite_path == ':memory:'
    # Resolved as resolve_url does: a bare path, the environment, the default.
    bare = parse_url(str(tmp_path / 'a#b.db'))
    assert (bare.backend, bare.sqlite_path) == ('sqlite', str(tmp_path / 'a#b.db'))
    monkeypatch.setenv(ENV_VAR, 'sqlite:///' + str(tmp_path / 'env.db'))
    assert parse_url().sqlite_path == str(tmp_path / 'env.db')
    with pytest.raises(ConfigError, match='empty'):
        parse_url('')
    with pytest.raises(ConfigError, match='must be a string'):
        DatabaseURL(None)


def test_a_value_given_is_not_parsed_again(tmp_path, monkeypatch):
    import modelstore.shared.urls as urls
    url = urls.parse_url(str(tmp_path / 'once.db'))
    calls = []
    real = urls.urlsplit
    monkeypatch.setattr(urls, 'urlsplit', lambda *a, **k: calls.append(a) or real(*a, **k))
    open_database(url, mode='migrate').close()
    with modelstore.connect(url) as store:
        assert store.url == url.masked
    assert urls.command('status', database=url) == 'modelstore status --database ' + url
    assert calls == []
    open_database(url.text, mode='inspect').close()  # A string is parsed (once).
    assert len(calls) == 1


def test_only_the_password_field_is_masked_not_the_same_text_elsewhere():
    from modelstore.shared.database import _masked
    from modelstore.shared.urls import parse_url
    # The password is also the user's name, the database's and part of the host's.
    url = parse_url('postgresql://registry:registry@registry.db:5432/registry')
    assert url.masked == 'postgresql://registry:***@registry.db:5432/registry'
    url = parse_url('postgresql://u:server@127.0.0.1:1/db')
    message = ('connection to server at "127.0.0.1", port 1 failed: Connection refused; '
               'invalid dsn: password=server host=x; see %s and u:server@h' % url)
    assert _masked(ValueError(message), url, url.masked) == (
        'connection to server at "127.0.0.1", port 1 failed: Connection refused; '
        'invalid dsn: password=*** host=x; see %s and u:***@h' % url.masked)


def test_a_driver_message_keeps_words_that_happen_to_be_the_password():
    pytest.importorskip('psycopg2')
    with SilentServer() as server:
        port = server.port
    # Nobody listens on the port now: the connection is refused at once.
    with pytest.raises(ConfigError) as info:
        open_database('postgresql://u:server@127.0.0.1:%d/db?connect_timeout=2' % port)
    message = str(info.value)
    assert 'connection to server' in message and 'u:***@' in message
    assert ':server@' not in message
