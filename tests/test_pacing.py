"""Online batches paced by contention (modelstore.engine.batch_runner) and the board that
modelstore's SQLite writers announce themselves on (modelstore.dialects.writers).

Speeds and waits are measured in bench/ ("versions online"); here: that the run switches pace
on the signs it is meant to see, that a writer announces itself and stops announcing, that no
descriptor or setting is left behind, and that nothing planted at the board's path is ever
followed, chmodded or removed -- with a hostile second process swapping it."""
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from peewee import OperationalError

from modelstore.cli.output import progress_line
from modelstore.dialects import Board, dialect_of
from modelstore.engine import Engine, batch_runner
from modelstore.engine.batch_runner import GAP, PAUSE, PacedBatches
from modelstore.shared.database import open_database, write_transaction

from conftest import ON_MYSQL, query
from legacy import build, modelforge_v11_altered


def _fds():
    return len(os.listdir('/proc/self/fd'))


def _wal(path, rows=2000):
    """A WAL file with a table of ``rows`` rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute('PRAGMA journal_mode=WAL')
    conn.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)')
    conn.executemany('INSERT INTO t (id) VALUES (?)', ((i,) for i in range(1, rows + 1)))
    conn.close()


def _walk(db, batches, rows, between=None, hold=0.0):
    """A tiny online script: set v on every row, in batches, calling ``between()`` after
    each; each batch holds the write lock ``hold`` seconds more (a slow batch's work)."""
    after = 0
    while True:
        with batches.batch() as batch:
            size = batch.size
            if hold:
                time.sleep(hold)
            ids = [r[0] for r in db.execute_sql('SELECT id FROM t WHERE id > ? ORDER BY id '
                                                'LIMIT ?', (after, size)).fetchall()]
            db.execute_sql('UPDATE t SET v = 1 WHERE id > ? AND id <= ?',
                           (after, ids[-1] if ids else after))
            batch.done(len(ids))
        if between is not None:
            between()
        if len(ids) < size:
            return
        after = ids[-1]


# -- the board ---------------------------------------------------------------------------------

HOLDER = r"""
import sys
from modelstore.shared.database import open_database, write_transaction
db = open_database('sqlite:///' + sys.argv[1])
db.pragma('busy_timeout', int(sys.argv[2]))
try:
    with write_transaction(db):
        db.execute_sql('INSERT INTO t (v) VALUES (3)')
        print('in', flush=True)
        sys.stdin.readline()
except Exception as exc:
    print('failed %s' % exc, flush=True)
    sys.exit(0)
print('busy_timeout', db.pragma('busy_timeout'), flush=True)
"""


def _holder(db_path, busy_ms=5000):
    """A modelstore writer in another process, inside its write transaction (announced when a
    live board is there) until it is sent a line."""
    proc = subprocess.Popen([sys.executable, '-c', HOLDER, db_path, str(busy_ms)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline().strip()
    return proc, first


def _finish(proc):
    out, _ = proc.communicate('go\n', timeout=30)
    return out


def test_a_writer_announces_itself_only_while_an_online_run_keeps_a_live_board(db_path):
    _wal(db_path)
    runner = open_database('sqlite:///' + db_path, mode='migrate')
    app = open_database('sqlite:///' + db_path)
    board_path = db_path + '.writers'
    runner.execute_sql('SELECT count(*) FROM t')  # (Each connection's -wal and -shm open.)
    with write_transaction(app):  # No board: a plain BEGIN IMMEDIATE.
        app.execute_sql('INSERT INTO t (v) VALUES (2)')
    before = _fds()
    with write_transaction(app):
        app.execute_sql('INSERT INTO t (v) VALUES (2)')
    assert not os.path.exists(board_path) and _fds() == before
    board = Board(runner)
    try:
        assert os.path.isfile(board_path) and not board.waiting()
        proc, first = _holder(db_path, 1234)
        assert first == 'in' and board.waiting(), 'a writer in its transaction is announced'
        assert _finish(proc).split() == ['busy_timeout', '1234']
        assert not board.waiting()
        app.pragma('busy_timeout', 1001)  # (Given back exactly, in milliseconds.)
        with pytest.raises(ZeroDivisionError):  # A failed write ends its announcement too.
            with write_transaction(app):
                1 / 0
        assert app.pragma('busy_timeout') == 1001
        assert _fds() == before + 1  # (the board's own descriptor, in this process)
    finally:
        board.close()
    assert not os.path.exists(board_path) and _fds() == before
    assert query(db_path, 'SELECT count(*) FROM t WHERE v = 3') == [(1,)]


def test_a_board_nobody_runs_is_no_announcement_and_the_next_run_takes_it_over(db_path):
    """A killed runner leaves its board: writers then write as without one (no polling every
    millisecond), and the next online run takes the empty file over and removes it."""
    _wal(db_path)
    board_path = db_path + '.writers'
    open(board_path, 'w').close()  # What a killed runner leaves: an empty file of its user.
    runner = open_database('sqlite:///' + db_path, mode='migrate')
    app = open_database('sqlite:///' + db_path)
    from modelstore.dialects import writers
    assert writers._announce(app) is None
    with write_transaction(app):
        app.execute_sql('INSERT INTO t (v) VALUES (2)')
    board = Board(runner)
    proc, first = _holder(db_path)
    assert first == 'in' and board.waiting()  # Live again: announced.
    _finish(proc)
    second = Board(runner)  # Another run's live board is not taken over.
    assert not second.waiting() and second._fd is None
    second.close()
    assert os.path.exists(board_path)
    board.close()
    assert not os.path.exists(board_path)


def test_an_announced_writer_still_gives_up_after_its_busy_timeout(db_path):
    _wal(db_path)
    runner = open_database('sqlite:///' + db_path, mode='migrate')
    holder = sqlite3.connect(db_path, isolation_level=None)
    board = Board(runner)
    try:
        holder.execute('BEGIN IMMEDIATE')
        start = time.monotonic()
        proc, first = _holder(db_path, 300)
        waited = time.monotonic() - start
        assert first.startswith('failed') and 'locked' in first, first
        assert 0.25 <= waited < 5.0, waited
        proc.communicate(timeout=30)
        assert not board.waiting()
        holder.execute('ROLLBACK')
        proc, first = _holder(db_path, 300)  # And the lock, once free, is taken at once.
        assert first == 'in'
        assert _finish(proc).split() == ['busy_timeout', '300']
    finally:
        board.close()
        holder.close()


def test_the_runner_steps_aside_until_an_announced_writer_has_written(db_path, monkeypatch):
    monkeypatch.setattr(batch_runner, 'YIELD', 5.0)  # (A loaded machine: the writer may be slow.)
    _wal(db_path)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db, sleep=time.sleep)
    with batches:
        proc, first = _holder(db_path)
        assert first == 'in'
        threading.Timer(0.05, lambda: (proc.stdin.write('go\n'), proc.stdin.flush())).start()
        start = time.monotonic()
        batches._make_room(0.0)
        assert 0.04 <= time.monotonic() - start < 5.0
        assert batches._yielded and not batches._board.waiting()
        proc.communicate(timeout=30)
    assert not os.path.exists(db_path + '.writers')


def test_a_board_locked_by_no_writer_costs_a_few_milliseconds_a_batch(db_path):
    """Anyone who can read the database can lock the board. A lock whose holder neither holds
    nor takes SQLite's write lock is no writer: the run stops waiting for it after
    PROBE_AFTER, and it sets no pace."""
    _wal(db_path, rows=20000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db, sleep=time.sleep)
    hostile = []

    def between():
        if not hostile:  # A reader of the database, in another process, locks the board.
            hostile.append(subprocess.Popen(
                [sys.executable, '-c', 'import fcntl, os, sys, time\n'
                 'fd = os.open(sys.argv[1], os.O_RDONLY)\n'
                 'fcntl.lockf(fd, fcntl.LOCK_SH)\nprint("held", flush=True)\ntime.sleep(60)',
                 db_path + '.writers'], stdout=subprocess.PIPE, text=True))
            assert hostile[0].stdout.readline().strip() == 'held'
    try:
        with batches:
            _walk(db, batches, 20000, between)
            assert batches._board.waiting()
    finally:
        hostile[0].kill()
        hostile[0].wait()
    assert {e.pace for e in events} == {'full'} and not batches._yielded
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


def test_with_only_modelstore_writers_about_the_lock_is_still_left_free_a_gap(db_path):
    """Their commits set the 'writers' pace (short batches) but an app's writer that comes
    must still find the lock free between batches."""
    _wal(db_path, rows=3000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)

    def between():
        batches._announced_at = time.perf_counter()  # (As _make_room notes a writer.)
    with batches:
        _walk(db, batches, 3000, between)
    assert events[-1].pace == 'writers' and events[-1].pause == GAP


HOLDERS = r"""
import sys
from modelstore.shared.database import open_database, write_transaction
a = open_database('sqlite:///' + sys.argv[1])
b = open_database('sqlite:///' + sys.argv[1])
b.pragma('busy_timeout', 50)
with write_transaction(a):
    a.execute_sql('INSERT INTO t (v) VALUES (8)')
    try:
        with write_transaction(b):  # Announced too; locked out by a; gives up.
            pass
    except Exception as exc:
        print('b failed', type(exc).__name__, flush=True)
    sys.stdin.readline()
"""


def test_one_writers_end_keeps_another_writers_announcement_in_the_same_process(db_path):
    """A POSIX record lock belongs to the process and closing any descriptor of the file drops
    it: the writers of a process share one descriptor, closed with the last of them."""
    _wal(db_path)
    runner = open_database('sqlite:///' + db_path, mode='migrate')
    board = Board(runner)
    try:
        proc = subprocess.Popen([sys.executable, '-c', HOLDERS, db_path], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().split() == ['b', 'failed', 'OperationalError']
        assert board.waiting(), 'a is still in its transaction: still announced'
        proc.communicate('go\n', timeout=30)
        assert not board.waiting()
    finally:
        board.close()


FAKE_LIVE = r"""
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)  # "Live", with no runner behind it.
print('held', flush=True)
time.sleep(60)
"""


def test_a_board_kept_live_by_no_runner_costs_a_writer_only_a_short_fast_poll(db_path):
    """Anyone who can open the board can hold its flock; a writer then polls every
    millisecond for FAST seconds at most, and waits through its busy handler after that."""
    from modelstore.dialects import writers
    _wal(db_path)
    fake = subprocess.Popen([sys.executable, '-c', FAKE_LIVE, db_path + '.writers'],
                            stdout=subprocess.PIPE, text=True)
    holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    try:
        assert fake.stdout.readline().strip() == 'held'
        app = open_database('sqlite:///' + db_path)
        begins = []
        app.connection().set_trace_callback(
            lambda sql: begins.append(sql) if sql.startswith('BEGIN') else None)
        holder.execute('BEGIN IMMEDIATE')
        threading.Timer(1.0, lambda: holder.execute('ROLLBACK')).start()
        start = time.monotonic()
        with write_transaction(app):
            app.execute_sql('INSERT INTO t (v) VALUES (9)')
        assert 0.9 < time.monotonic() - start < 3.0
        # Every POLL for FAST seconds, then one request through the busy handler.
        assert len(begins) <= writers.FAST / writers.POLL + 5, len(begins)
    finally:
        fake.kill()
        fake.wait()
        holder.close()


def test_the_board_follows_the_database_object_to_another_file(tmp_path):
    from peewee import SqliteDatabase
    from modelstore.dialects import writers
    db = SqliteDatabase(str(tmp_path / 'a.db'))
    assert writers._path(db) == str(tmp_path / 'a.db') + '.writers'
    db.close()
    db.init(str(tmp_path / 'b.db'))
    assert writers._path(db) == str(tmp_path / 'b.db') + '.writers'


def test_a_file_system_without_locks_means_no_board_and_writers_still_write(db_path,
                                                                        monkeypatch):
    import errno
    import fcntl
    from modelstore.dialects import writers

    def no_locks(fd, how):
        raise OSError(errno.ENOLCK, 'No locks available')
    _wal(db_path, rows=2000)
    monkeypatch.setattr(writers.fcntl, 'flock', no_locks)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)
    with batches:
        assert batches._board._fd is None
        _walk(db, batches, 2000)
    assert not os.path.exists(db_path + '.writers')
    app = open_database('sqlite:///' + db_path)
    with write_transaction(app):
        app.execute_sql('INSERT INTO t (v) VALUES (10)')
    assert fcntl.flock is no_locks


@pytest.mark.parametrize('planted', ['symlink', 'directory', 'fifo', 'hardlink', 'foreign',
                                     'own file'])
def test_nothing_planted_at_the_board_path_is_followed_chmodded_or_removed(db_path, tmp_path,
                                                                          planted):
    _wal(db_path)
    victim = tmp_path / 'victim'
    victim.write_text('keep me')
    os.chmod(victim, 0o600)
    board_path = db_path + '.writers'
    if planted == 'symlink':
        os.symlink(victim, board_path)
    elif planted == 'directory':
        os.mkdir(board_path)
    elif planted == 'fifo':
        os.mkfifo(board_path)
    elif planted == 'hardlink':
        os.link(victim, board_path)
    elif planted == 'own file':  # The user's own private file, renamed there by someone.
        os.rename(victim, board_path)
        victim = board_path
    else:  # A plain file, but not this user's: as good as planted.
        if os.geteuid() != 0:
            pytest.skip('needs root to give a file to another user')
        with open(board_path, 'w') as f:
            f.write('theirs')
        os.chown(board_path, 12345, 12345)
    kind = os.lstat(board_path)
    runner = open_database('sqlite:///' + db_path, mode='migrate')
    app = open_database('sqlite:///' + db_path)
    board = Board(runner)
    assert not board.waiting()
    with write_transaction(app):  # Writers still write.
        app.execute_sql('INSERT INTO t (v) VALUES (6)')
    board.close()
    assert open(victim).read() == 'keep me' and (os.stat(victim).st_mode & 0o777) == 0o600
    now = os.lstat(board_path)
    assert (now.st_ino, now.st_mode) == (kind.st_ino, kind.st_mode), 'left alone'


SWAPPER = r'''
import os, sys, time
path, victim, stop = sys.argv[1:4]
i = 0
while not os.path.exists(stop):
    tmp = '%s.swap%d' % (path, i % 2)
    try:
        if i % 3 == 0:
            os.symlink(victim, tmp)
        else:
            with open(tmp, 'w') as f:
                f.write('swapper %d' % i)
        os.replace(tmp, path)  # Over whatever is there: the runner's board, or ours.
    except OSError:
        pass
    i += 1
    time.sleep(0.0005)
print(i)
'''


def test_a_second_process_swapping_the_board_path_never_gets_another_file_changed(db_path,
                                                                                  tmp_path):
    """The hostile case: while runners open and close boards and writers announce, a second
    process keeps replacing ``<db>.writers`` with links to a victim file and with files of its
    own. The victim is never written, chmodded or removed; the run's own board is only ever
    removed while the path still names it (what the swapper put there may be removed only as
    a name, never followed)."""
    _wal(db_path)
    victim = tmp_path / 'victim'
    victim.write_text('keep me')
    os.chmod(victim, 0o600)
    stop = tmp_path / 'stop'
    swapper = subprocess.Popen([sys.executable, '-c', SWAPPER, db_path + '.writers',
                                str(victim), str(stop)], stdout=subprocess.PIPE, text=True)
    runner = open_database('sqlite:///' + db_path, mode='migrate')
    app = open_database('sqlite:///' + db_path)
    try:
        deadline = time.monotonic() + 2.0
        rounds = 0
        while time.monotonic() < deadline:
            board = Board(runner)
            with write_transaction(app):
                app.execute_sql('INSERT INTO t (v) VALUES (7)')
            board.waiting()
            board.close()
            rounds += 1
    finally:
        stop.touch()
        out, _ = swapper.communicate(timeout=30)
    assert rounds > 20 and int(out) > 100
    assert victim.read_text() == 'keep me' and (os.stat(victim).st_mode & 0o777) == 0o600
    assert query(db_path, 'SELECT count(*) FROM t WHERE v = 7') == [(rounds,)]


# -- the pace ----------------------------------------------------------------------------------

def _paced(db, sleep=None, **kw):
    events, slept = [], []
    batches = PacedBatches(db, 'walk', on_progress=events.append,
                           sleep=sleep or slept.append, **kw)
    return batches, events, slept


OPENER = r"""
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute('SELECT count(*) FROM t').fetchall()  # (Its first statement: its locks taken.)
print('open', flush=True)
sys.stdin.readline()
"""


def _opener(db_path):
    """Another process with the file open, idle (an app's connection between its writes)."""
    proc = subprocess.Popen([sys.executable, '-c', OPENER, db_path], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'open'
    return proc


def test_nobody_waiting_means_long_batches_and_the_gap_between(db_path):
    _wal(db_path, rows=20000)
    opener = _opener(db_path)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)
    try:
        with batches:
            assert os.path.isfile(db_path + '.writers')
            _walk(db, batches, 20000)
    finally:
        _finish(opener)
    assert not os.path.exists(db_path + '.writers')
    assert {e.pace for e in events} == {'full'} and {e.pause for e in events} == {GAP}
    assert all(0 <= s <= GAP for s in slept)  # (less the checkpoint's time, lock-free too)
    assert events[-1].rows == 20000
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


def test_nobody_else_there_means_the_same_batches_back_to_back(db_path):
    _wal(db_path, rows=20000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)
    with batches:
        assert batches._board.alone()
        _walk(db, batches, 20000)
    assert {e.pace for e in events} == {'full'} and {e.pause for e in events} == {0.0}
    assert slept == [] and events[-1].rows == 20000
    assert progress_line(events[-1]).endswith('back to back (nobody waiting)')
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


def test_a_process_that_opens_the_file_during_the_run_gets_the_gap_from_the_next_batch(
        db_path):
    """Seen after the batch it came during; gone again, the batches run back to back."""
    _wal(db_path, rows=40000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)
    opened = {}

    def between():
        done = len(events)
        if done == 3:
            opened['proc'] = _opener(db_path)
        elif done == 5:
            _finish(opened['proc'])
    with batches:
        _walk(db, batches, 40000, between)
    # (A batch whose BEGIN waited on a loaded machine takes the writers' pace instead.)
    expected = [0.0, 0.0, 0.0, GAP, GAP, 0.0]
    assert len(events) > 6 and all(e.pause == want for e, want in zip(events, expected)
                                   if e.pace == 'full'), events
    assert [e.pace for e in events[:6]].count('full') >= 4, events
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


APP_WRITER = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=2.0)  # Its busy handler.
print('ready', flush=True)
sys.stdin.readline()
start = time.perf_counter()
conn.execute('BEGIN IMMEDIATE')  # Its first statement: a write, while a batch runs.
conn.execute('INSERT INTO t (id, v) VALUES (9000000, 5)')
conn.execute('COMMIT')
print('wrote %.3f' % (time.perf_counter() - start), flush=True)
"""


def test_an_apps_writer_that_comes_while_the_batches_run_back_to_back_gets_in(
        db_path, monkeypatch):
    """A connection opened before the run but never used holds no lock: the run cannot see
    it. Its first write, during a batch, waits for that batch, is seen, and gets in at the
    gap after it -- not at the end of the run, which a writer that is never seen would wait
    for (its batches here hold the lock 40 ms each, 100 of them); its commit then sets the
    pace for the apps' writers."""
    _wal(db_path, rows=4000)
    monkeypatch.setattr(batch_runner, 'COOL', 0.3)
    monkeypatch.setattr(batch_runner, 'MAX_SIZE', 40)
    monkeypatch.setattr(batch_runner, 'FIRST_SIZE', 40)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    writer = subprocess.Popen([sys.executable, '-c', APP_WRITER, db_path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == 'ready'
    batches, events, slept = _paced(db, sleep=time.sleep)
    state = {}

    def between():
        if len(events) == 2:  # Its write comes as the third batch begins.
            assert batches._board.alone()
            writer.stdin.write('go\n')
            writer.stdin.flush()
            state['sent'] = len(events)
    with batches:
        _walk(db, batches, 4000, between, hold=0.04)
    out, _ = writer.communicate(timeout=30)
    assert out.startswith('wrote '), out
    waited = float(out.split()[1])
    # About one batch (40 ms) and the busy handler's next poll; never seen, it would have
    # waited for the run's 4 s or failed at its busy timeout (2 s).
    assert waited < 1.0, out
    paces = [e.pace for e in events]
    assert 'writers' in paces[state['sent']:], paces
    assert query(db_path, 'SELECT count(*) FROM t WHERE id = 9000000') == [(1,)]


def test_others_open_asks_the_kernel_and_counts_this_processs_connections(db_path,
                                                                           monkeypatch):
    from modelstore.dialects import writers
    _wal(db_path, rows=10)
    journal = db_path + '.journal.db'
    sqlite3.connect(journal).execute('CREATE TABLE t (v)').connection.commit()
    in_journal = sqlite3.connect(journal)  # (No -wal, no -shm: it cannot tell.)
    in_journal.execute('SELECT count(*) FROM t').fetchall()
    assert writers.others_open(journal) is None
    conn = sqlite3.connect(db_path)  # The caller's own connection.
    conn.execute('SELECT count(*) FROM t').fetchall()
    assert writers.others_open(db_path) is False
    # Another connection of this process: seen from its first statement until it closes.
    second = sqlite3.connect(db_path)
    assert writers.others_open(db_path) is False
    second.execute('SELECT count(*) FROM t').fetchall()
    assert writers.others_open(db_path) is True
    second.close()
    assert writers.others_open(db_path) is False
    # Another process: seen while it has the file open.
    opener = _opener(db_path)
    try:
        assert writers.others_open(db_path) is True
    finally:
        _finish(opener)
    assert writers.others_open(db_path) is False
    # Where this process's descriptors cannot be listed: it cannot tell.
    monkeypatch.setattr(writers, 'FDS', db_path + '.no-such-directory')
    assert writers.others_open(db_path) is None
    conn.close()
    in_journal.close()


def test_others_open_sees_a_process_in_another_pid_namespace(db_path):
    """A container's process: invisible in this one's /proc, but its lock is the kernel's."""
    _wal(db_path, rows=10)
    conn = sqlite3.connect(db_path)
    conn.execute('SELECT count(*) FROM t').fetchall()
    try:
        proc = subprocess.Popen(['unshare', '--pid', '--fork', '--mount-proc', sys.executable,
                                 '-c', OPENER, db_path], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError:
        pytest.skip('no unshare(1) here')
    if proc.stdout.readline().strip() != 'open':
        proc.kill()
        pytest.skip('unshare --pid not permitted here: %s' % proc.communicate()[1].strip())
    try:
        from modelstore.dialects.writers import others_open
        assert others_open(db_path) is True
    finally:
        _finish(proc)
    conn.close()


def test_another_connections_commit_makes_the_run_yield_then_it_speeds_up_again(
        db_path, monkeypatch):
    _wal(db_path, rows=30000)
    monkeypatch.setattr(batch_runner, 'COOL', 0.3)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    other = sqlite3.connect(db_path, isolation_level=None)
    batches, events, slept = _paced(db)
    calls = [0]

    def between():
        calls[0] += 1
        if calls[0] == 3:  # An app's writer (not modelstore's: no board) commits.
            other.execute('INSERT INTO t (id, v) VALUES (1000000, 9)')
        if calls[0] == 4:
            time.sleep(0.35)  # Nobody for longer than COOL.
    with batches:
        _walk(db, batches, 30000, between)
    paces = [e.pace for e in events]
    assert paces[:3] == ['full'] * 3 and paces[3] == 'writers', paces
    assert events[3].pause >= PAUSE
    assert paces[4] == 'full', paces  # After COOL without a sign: full pace again.
    other.close()


def test_a_batchs_size_is_the_same_after_it_commits(db_path):
    # A script may read batch.size after its batch ("fewer rows than asked for: the last
    # one"); the size the run picks for the next batch must not show through before that
    # batch starts, or such a script stops after its first batch with the rest undone.
    _wal(db_path, rows=20000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)
    sizes, after = [], 0
    with batches:
        while True:
            with batches.batch() as batch:
                inside = batch.size
                ids = [r[0] for r in db.execute_sql('SELECT id FROM t WHERE id > ? ORDER BY '
                                                    'id LIMIT ?', (after, inside)).fetchall()]
                db.execute_sql('UPDATE t SET v = 1 WHERE id IN (%s)' % ','.join(
                    map(str, ids)) if ids else 'SELECT 1')
                batch.done(len(ids))
            sizes.append((inside, batch.size, batches.size))
            if len(ids) < batch.size:
                break
            after = ids[-1]
    assert all(a == b == c for a, b, c in sizes), sizes
    assert len({inside for inside, _, _ in sizes}) > 1  # (The run did resize its batches.)
    assert [e.size for e in events[:-1]] == [inside for inside, _, _ in sizes[1:]]
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


def test_a_batch_mostly_fixed_cost_grows_instead_of_shrinking_to_nothing(db_path):
    """A script whose every batch pays a cost its rows do not change (here 100 ms, more than
    the 75 ms a batch aims at: an unindexed scan) -- shrinking cannot reach the target, and at
    20 rows a batch it ran at 1/80 of its speed."""
    _wal(db_path, rows=20000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)
    after = 0
    with batches:
        while batches.batches < 40:
            with batches.batch() as batch:
                time.sleep(0.1)  # The scan.
                ids = [r[0] for r in db.execute_sql('SELECT id FROM t WHERE id > ? ORDER BY '
                                                    'id LIMIT ?', (after, batch.size))]
                db.execute_sql('UPDATE t SET v = 1 WHERE id > ? AND id <= ?',
                               (after, ids[-1] if ids else after))
                batch.done(len(ids))
            if len(ids) < batch.size:
                break
            after = ids[-1]
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]
    assert batches.batches <= 15, [e.size for e in events]
    assert 0.09 <= batches.fixed <= 0.15  # What it fitted: the scan's 100 ms.


def test_offline_makes_no_room_and_keeps_no_board(db_path):
    _wal(db_path, rows=5000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db, offline=True)
    with batches:
        assert not os.path.exists(db_path + '.writers')
        _walk(db, batches, 5000)
    assert {e.pace for e in events} == {'offline'} and {e.pause for e in events} == {None}
    assert slept == []


def test_the_run_checkpoints_itself_and_gives_the_connection_back_as_it_was(db_path):
    _wal(db_path, rows=20000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    before = {name: db.pragma(name) for name in ('busy_timeout', 'synchronous',
                                                 'wal_autocheckpoint', 'cache_size')}
    batches, events, slept = _paced(db)
    with batches:
        assert db.pragma('wal_autocheckpoint') == 0
        _walk(db, batches, 20000)
    assert {name: db.pragma(name) for name in before} == before
    # Every batch's pages were copied back by the run itself: nothing left for a writer's
    # commit to checkpoint.
    busy, frames, copied = db.execute_sql('PRAGMA wal_checkpoint(PASSIVE)').fetchone()
    assert busy == 0 and frames == copied


# -- a legacy file in its rollback journal runs its batches in WAL ---------------------------

def _journal_file(path, rows):
    """What a legacy app leaves: a file in its rollback journal (journal_mode=delete)."""
    _wal(path, rows)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute('PRAGMA journal_mode=DELETE')
    conn.close()


def _file_mode(path):
    """The file's own journal mode, from its header: WAL is (2, 2), a rollback journal (1, 1)."""
    with open(path, 'rb') as fh:
        return {b'\x02\x02': 'wal', b'\x01\x01': 'journal'}[fh.read(100)[18:20]]


def test_a_large_run_on_a_rollback_journal_file_runs_in_wal_and_switches_back(db_path):
    _journal_file(db_path, 20000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    before = {name: db.pragma(name) for name in ('busy_timeout', 'synchronous',
                                                 'wal_autocheckpoint', 'journal_mode')}
    batches, events, slept = _paced(db)
    modes = []
    with batches:
        _walk(db, batches, 20000, between=lambda: modes.append(db.pragma('journal_mode')))
    # Not said how many rows: the first two batches in the journal, the rest in WAL; the
    # switch (which moves this connection's data_version) is not taken for another's commit.
    assert modes[:2] == ['delete', 'delete'] and set(modes[2:]) == {'wal'}, modes
    assert {e.pace for e in events} == {'full'}, [e.pace for e in events]
    assert batches.switched_to_wal and batches.switched_back and batches.journal == 'delete'
    assert {name: db.pragma(name) for name in before} == before
    db.close()
    assert _file_mode(db_path) == 'journal' and not os.path.exists(db_path + '-wal')
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


def test_a_small_run_leaves_the_file_in_its_journal(db_path):
    _journal_file(db_path, 3000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)
    with batches:
        batches.expect(3000)  # Fewer than WAL_ROWS: not worth a switch.
        _walk(db, batches, 3000)
    assert not batches.switched_to_wal and db.pragma('journal_mode') == 'delete'
    assert events[-1].rows == 3000


OPEN_APP = r"""
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
for line in sys.stdin:  # Open, idle between requests; each line a request.
    if line.strip() == 'read':
        print(conn.execute('SELECT count(*) FROM t').fetchall()[0][0], flush=True)
    else:
        conn.execute('INSERT INTO t (v) VALUES (7)')
        print(conn.execute('PRAGMA journal_mode').fetchone()[0],
              conn.execute('SELECT count(*) FROM t WHERE v IS NULL').fetchone()[0], flush=True)
        break
"""


def test_a_file_an_app_keeps_open_stays_in_wal_and_the_app_goes_on(db_path):
    _journal_file(db_path, 20000)
    app = subprocess.Popen([sys.executable, '-c', OPEN_APP, db_path], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)

    def request():  # The app reads between two batches, in WAL after the first.
        app.stdin.write('read\n')
        app.stdin.flush()
        assert app.stdout.readline().strip() == '20000'
    with batches:
        batches.expect(20000)
        _walk(db, batches, 20000, between=request)
        ending = time.monotonic()
    # Leaving WAL needs every other connection closed: it stays, and says so -- after trying
    # for BACK_WITHIN, not in a busy handler for the connection's whole busy timeout (5 s).
    assert time.monotonic() - ending < batch_runner.BACK_WITHIN + 2.0 < db.pragma(
        'busy_timeout') / 1000
    assert batches.switched_to_wal and not batches.switched_back
    assert db.pragma('journal_mode') == 'wal'
    out, _ = app.communicate('write\n', timeout=30)
    assert app.returncode == 0 and out.split() == ['wal', '0']  # It wrote, and saw every row.
    assert query(db_path, 'SELECT count(*) FROM t') == [(20001,)]


def test_a_reader_holding_the_file_delays_the_switch_as_it_would_a_commit(db_path,
                                                                         monkeypatch):
    """The switch needs the file to itself for an instant: it waits for a reader in the
    lock's busy timeout (as the batch's commit would), then the run goes on in WAL."""
    _journal_file(db_path, 5000)
    reader = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    reader.execute('BEGIN')
    reader.execute('SELECT count(*) FROM t').fetchone()  # A read lock, held for 0.5 s.
    release = threading.Timer(0.5, reader.execute, ('COMMIT',))
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)
    release.start()
    with batches:
        batches.expect(20000)  # (More than it has: the switch is tried at the first batch.)
        _walk(db, batches, 5000)
    release.join()
    reader.close()
    assert batches.switched_to_wal and batches.switched_back
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


def test_a_reader_holding_the_file_longer_than_wal_within_leaves_the_run_in_its_journal(
        db_path, monkeypatch):
    """The switch waits WAL_WITHIN, not the run's lock timeout: while it waits, no new reader
    can start, and a switch that then failed left the batch to wait a lock timeout again."""
    _journal_file(db_path, 5000)
    monkeypatch.setattr(batch_runner, 'WAL_WITHIN', 0.2)
    tries = []

    def timed(*args):
        start = time.monotonic()
        try:
            return batch_runner.try_journal.__wrapped__(*args)
        finally:
            tries.append(time.monotonic() - start)
    timed.__wrapped__ = batch_runner.try_journal
    monkeypatch.setattr(batch_runner, 'try_journal', timed)
    reader = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    reader.execute('BEGIN')
    reader.execute('SELECT count(*) FROM t').fetchone()
    release = threading.Timer(1.5, reader.execute, ('COMMIT',))
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)  # (Its lock timeout: 30 s.)
    release.start()
    with batches:
        batches.expect(20000)
        _walk(db, batches, 5000)  # Its first commit waits for the reader.
    release.join()
    reader.close()
    assert len(tries) == 1 and tries[0] < 1.0, tries
    assert not batches.switched_to_wal and db.pragma('journal_mode') == 'delete'
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


def test_a_file_that_cannot_switch_runs_in_its_journal(db_path, monkeypatch):
    # As a file system without shared memory answers, or a switch still busy after
    # WAL_WITHIN: nothing changes, and the batches commit in the journal as before.
    _journal_file(db_path, 5000)
    monkeypatch.setattr(batch_runner, 'try_journal', lambda *args: False)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)
    with batches:
        batches.expect(20000)
        _walk(db, batches, 5000)
    assert not batches.switched_to_wal and not batches.switched_back
    assert db.pragma('journal_mode') == 'delete' and db.pragma('synchronous') == 2
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


def test_batches_inside_the_scripts_own_transaction_run_without_making_room(db_path):
    """A script may wrap its batches in a transaction of its own (they are then savepoints):
    the lock stays held, so the run neither checkpoints (SQLite refuses one inside a
    transaction) nor pauses."""
    _wal(db_path, rows=3000)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    batches, events, slept = _paced(db)
    with batches:
        with write_transaction(db):
            _walk(db, batches, 3000)
    assert slept == [] and events[-1].rows == 3000
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


def test_a_script_that_fails_with_its_transaction_open_keeps_its_error(db_path):
    """The settings the run changed come back one by one; the one SQLite refuses inside a
    transaction (synchronous) does not hide the script's own error nor keep the others."""
    _wal(db_path)
    db = open_database('sqlite:///' + db_path, mode='migrate')
    before = {name: db.pragma(name) for name in ('busy_timeout', 'wal_autocheckpoint')}
    batches, events, slept = _paced(db)
    with pytest.raises(ValueError, match='the script'):
        with batches:
            db.execute_sql('BEGIN')
            raise ValueError('the script')
    assert {name: db.pragma(name) for name in before} == before
    db.execute_sql('ROLLBACK')
    assert not os.path.exists(db_path + '.writers')


# -- 0010 with both kinds of writers, and offline ---------------------------------------------

def _legacy_file(path, rows, journal='WAL'):
    build(path, modelforge_v11_altered)
    conn = sqlite3.connect(path)
    conn.execute('PRAGMA journal_mode=%s' % journal)
    conn.executemany(
        'INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
        'creation_date, model_path) VALUES (?, ?, ?, ?, ?, ?)',
        (('n%d' % (i % 50), 'b', 't', '', '2025-11-01T00:00:00', '/m/%d' % i)
         for i in range(rows)))
    conn.commit()
    conn.close()


@pytest.mark.parametrize('as_json', [False, True])
def test_migrate_offline_runs_the_numbering_without_pausing(db_path, cli, monkeypatch, as_json):
    from modelstore.cli import output
    _legacy_file(db_path, 3000)
    monkeypatch.setattr(output, 'PROGRESS_EVERY', 0.0)
    code, out, err = cli('migrate', '--database', db_path, '--no-backup', '--offline',
                         *(['--json'] if as_json else []))
    assert code == 0, err
    if as_json:
        events = [json.loads(line) for line in err.splitlines() if line.startswith('{')]
        assert events and {(e['pace'], e['pause']) for e in events} == {('offline', None)}
    else:
        lines = [line for line in out.splitlines() if 'rows/s' in line]
        assert lines and all(line.endswith(' rows (offline)') for line in lines), lines
        assert re.search(r'Changed 3006 rows in \d+ batches, offline$', out, re.M), out
    assert not os.path.exists(db_path + '.writers')
    assert query(db_path, 'SELECT count(*) FROM fine_tuned_models WHERE version IS NULL') \
        == [(0,)]


KILLED_IN_WAL = """
    import os

    def up(migrator, db):
        pass

    def online(db, batches):
        batches.expect(30000)
        while True:
            with batches.batch() as batch:
                ids = [r[0] for r in db.execute_sql(
                    'SELECT id FROM t WHERE v IS NULL ORDER BY id LIMIT ?', (batch.size,))]
                db.execute_sql('UPDATE t SET v = 1 WHERE id IN (%s)' % ','.join(
                    map(str, ids)) if ids else 'SELECT 1')
                batch.done(len(ids))
            if os.environ.get('KILL_AFTER') and batches.batches >= int(os.environ['KILL_AFTER']):
                os._exit(9)  # As a SIGKILL: nothing of the run's own clean-up runs.
            if len(ids) < batch.size:
                break
"""


def test_a_run_killed_in_wal_is_switched_back_by_the_run_that_resumes_it(db_path, cli,
                                                                          scripts):
    _journal_file(db_path, 30000)
    scripts('0001_number.py', KILLED_IN_WAL)
    argv = ['migrate', '--database', db_path, '--migrations', scripts.dir, '--no-backup']
    killed = subprocess.run([sys.executable, '-m', 'modelstore'] + argv, capture_output=True,
                            text=True, env=dict(os.environ, KILL_AFTER='2'))
    assert killed.returncode == 9, killed.stderr
    assert query(db_path, 'PRAGMA journal_mode') == [('wal',)]  # Left so by the kill,
    assert query(db_path, "SELECT method, note FROM schema_migration") == [  # and noted.
        ('running', 'its batches switched the file from journal_mode=delete to WAL')]
    code, out, err = cli(*argv)
    assert code == 0, err
    assert 'Ran its batches in WAL (where an interrupted run had left the file); the file is ' \
        'back in its rollback journal (journal_mode=delete)' in out, out
    assert _file_mode(db_path) == 'journal' and not os.path.exists(db_path + '-wal')
    assert query(db_path, "SELECT method, note FROM schema_migration") == [('ran', None)]
    assert query(db_path, 'SELECT count(*) FROM t WHERE v IS NULL') == [(0,)]


@pytest.mark.parametrize('rows', [3000, 12000])
@pytest.mark.parametrize('as_json', [False, True])
def test_migrate_says_when_0010_ran_in_wal_on_a_legacy_apps_journal_file(db_path, cli, rows,
                                                                          as_json):
    _legacy_file(db_path, rows, journal='DELETE')
    code, out, err = cli('migrate', '--database', db_path, '--no-backup',
                         *(['--json'] if as_json else []))
    assert code == 0, err
    switched = 'Ran its batches in WAL; the file is back in its rollback journal ' \
        '(journal_mode=delete)'
    if as_json:  # A note of the run's, not one of the script's operations.
        run = [r for r in json.loads(out)['scripts'] if r['name'].startswith('0010')][0]
        assert run['notes'] == ([switched] if rows >= batch_runner.WAL_ROWS else [])
        assert [s['description'][:8] for s in run['steps']] == ['Changed ']
    else:
        assert (('· ' + switched) in out) == (rows >= batch_runner.WAL_ROWS), out
    assert query(db_path, 'PRAGMA journal_mode') == [('delete',)]  # migrate leaves it so.
    assert query(db_path, 'SELECT count(*) FROM fine_tuned_models WHERE version IS NULL') \
        == [(0,)]


WRITER = r'''
import datetime, json, os, sys, time
kind, path, who, stop = sys.argv[1:5]
sql = ('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
       'creation_date, model_path, is_custom_base_model) VALUES (?, ?, ?, ?, ?, ?, ?)')
if kind == 'modelstore':
    from modelstore.shared.database import open_database, write_transaction
    db = open_database('sqlite:///' + path)
    def write(row):
        with write_transaction(db):
            db.execute_sql(sql, row)
else:  # A legacy app: plain sqlite3, its own busy handler.
    import sqlite3
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    def write(row):
        conn.execute('BEGIN IMMEDIATE')
        conn.execute(sql, row)
        conn.execute('COMMIT')
longest, errors, i = 0.0, [], 0
while not os.path.exists(stop):
    row = ('%s-%d' % (who, i % 5), 'b', 't', '', datetime.datetime.now().isoformat(),
           '/m/%s/%d' % (who, i), False)
    start = time.perf_counter()
    try:
        write(row)
    except Exception as exc:
        errors.append(repr(exc))
    longest = max(longest, time.perf_counter() - start)
    i += 1
    time.sleep(0.01)
print(json.dumps({'writes': i, 'errors': errors, 'longest': longest}))
'''


@pytest.mark.sqlite_only
def test_0010_numbers_every_row_while_modelstore_and_legacy_writers_write(db_path, tmp_path):
    """Both kinds of writers through a whole 0010 run: none fails (a starved writer would
    give up after its 5 s busy timeout), every row -- theirs too -- ends up numbered once, and
    the run yielded to them."""
    _legacy_file(db_path, 40000)
    Engine(open_database('sqlite:///' + db_path, mode='migrate')).migrate(
        '0009_model_version_index')
    stop = tmp_path / 'stop'
    writers = [subprocess.Popen([sys.executable, '-c', WRITER, kind, db_path, kind, str(stop)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for kind in ('modelstore', 'legacy', 'modelstore', 'legacy')]
    time.sleep(1.0)
    events = []
    db = open_database('sqlite:///' + db_path, mode='migrate')
    try:
        Engine(db).migrate('0010_number_model_versions', on_progress=events.append)
    finally:
        time.sleep(0.3)
        stop.touch()
        results = []
        for proc in writers:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            results.append(json.loads(out))
    assert all(r['writes'] > 0 and not r['errors'] for r in results), results
    assert 'writers' in {e.pace for e in events}
    assert query(db_path, 'SELECT count(*) FROM fine_tuned_models WHERE version IS NULL') \
        == [(0,)]
    assert query(db_path, 'SELECT count(*) FROM (SELECT model_name, version FROM '
                          'fine_tuned_models GROUP BY 1, 2 HAVING count(*) > 1)') == [(0,)]


# -- the servers: who waits for a batch's locks ------------------------------------------------

@pytest.mark.server_only
def test_a_batch_sees_a_session_waiting_for_its_row_locks(migrated_url):
    """Asked inside its transaction, the batch counts the sessions blocked on its locks:
    none, then the one updating the same row."""
    db = open_database(migrated_url, mode='migrate')
    other = open_database(migrated_url, mode='migrate')
    dialect = dialect_of(db)
    with db.atomic():
        db.execute_sql('INSERT INTO fine_tuned_models (model_name, base_model, task, '
                       'description, creation_date, model_path, is_custom_base_model) VALUES '
                       "('w', 'b', 't', '', '2025-11-01T00:00:00', '/m/w', %s)" % (
                           'false' if not ON_MYSQL else '0'))
    row = db.execute_sql("SELECT id FROM fine_tuned_models WHERE model_name = 'w'").fetchone()[0]
    done = threading.Event()

    def blocked():
        with other.atomic():
            other.execute_sql("UPDATE fine_tuned_models SET description = 'b' WHERE id = %s"
                              % row)
        done.set()
    with db.atomic():
        assert dialect.waiting_on_me(db) in (0, None)
        db.execute_sql("UPDATE fine_tuned_models SET description = 'a' WHERE id = %s" % row)
        thread = threading.Thread(target=blocked)
        thread.start()
        deadline = time.monotonic() + 10
        seen = 0
        while time.monotonic() < deadline:
            seen = dialect.waiting_on_me(db)
            if seen is None or seen:
                break
            time.sleep(0.02)
        assert not done.is_set()
    thread.join(10)
    assert done.is_set()
    assert seen == 1


@pytest.mark.postgres_only
def test_the_last_batch_waits_long_enough_for_an_autovacuum_to_be_cancelled(migrated_url,
                                                                          monkeypatch):
    """A 20 ms LOCK TABLE never gets a table an autovacuum holds (PostgreSQL cancels the
    vacuum only after a request has waited deadlock_timeout behind it): seen at 10M rows,
    0010's last batch gave up after 30 s. When the holder is an autovacuum, the next request
    waits that long."""
    from modelstore.dialects import POSTGRESQL
    db = open_database(migrated_url, mode='migrate')
    assert POSTGRESQL.autovacuum_wait(db, 'fine_tuned_models') is None  # None runs here.
    holder = open_database(migrated_url, mode='migrate')
    waits = []
    real = POSTGRESQL.lock_table

    def lock_table(database, table, wait=None):
        if wait is not None:  # (Not its own inner call, inside the savepoint.)
            waits.append(wait)
        return real(database, table, wait=wait)
    monkeypatch.setattr(POSTGRESQL, 'lock_table', lock_table)
    # (Stands in for the autovacuum: a real one cannot be made to run on cue.)
    monkeypatch.setattr(POSTGRESQL, 'autovacuum_wait', lambda database, table: 1.2)
    release = threading.Event()

    def hold():
        with holder.atomic():
            holder.execute_sql('LOCK TABLE fine_tuned_models IN SHARE UPDATE EXCLUSIVE MODE')
            release.wait(10)
    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(0.3)
    threading.Timer(0.5, release.set).start()
    batches = PacedBatches(db, 'final')
    with batches:
        with batches.final('fine_tuned_models'):
            pass
    thread.join()
    assert waits[0] == batch_runner.LOCK_WAIT and waits[1] == 1.2 and len(waits) == 2


@pytest.mark.mysql_only
def test_a_row_written_behind_the_walk_is_numbered_under_lock_tables(db_url, monkeypatch):
    """MySQL/MariaDB: 0010's last batch numbers, under LOCK TABLES, the rows a writer inserted
    after its last unlocked read -- with ``UPDATE fine_tuned_models AS f ...``, refused unless
    the table is locked under that alias too (found by the bench's writers on MariaDB)."""
    db = open_database(db_url, mode='migrate')
    Engine(db).migrate('0009_model_version_index')
    row = ("INSERT INTO fine_tuned_models (model_name, base_model, task, description, "
           "creation_date, model_path, is_custom_base_model) VALUES "
           "('%s', 'b', 't', '', '2025-11-01T00:00:00', '/m', 0)")
    for i in range(30):
        db.execute_sql(row % ('n%d' % (i % 3)))
    real = PacedBatches._lock_tables

    def writer_first(self, tables):  # A writer's INSERT just before the last batch's lock.
        other = open_database(db_url)
        other.execute_sql(row % 'late')
        other.close()
        return real(self, tables)
    monkeypatch.setattr(PacedBatches, '_lock_tables', writer_first)
    Engine(db).migrate('0010_number_model_versions')
    assert db.execute_sql('SELECT count(*) FROM fine_tuned_models WHERE version IS NULL'
                          ).fetchone()[0] == 0
    assert db.execute_sql("SELECT version FROM fine_tuned_models WHERE model_name = 'late'"
                          ).fetchone()[0] == 1
