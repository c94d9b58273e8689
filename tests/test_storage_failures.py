"""A full disk, an I/O error: the real error is reported, and nothing is claimed that did not
commit (issue 11: B2)."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import modelstore
from modelstore import MigrationError, ScriptError, StorageError
from modelstore.shared.database import open_database
from modelstore.engine import Engine

from conftest import dump, history
from legacy import build, modelforge_v10

MODEL = dict(model_name='m', base_model='b', task='t', model_path='/p')


def _cap(database, extra_pages=0):
    """SQLite may not grow the file past its current size: the next page it needs gives
    SQLITE_FULL ("database or disk is full"), exactly as a full disk does."""
    pages = database.execute_sql('PRAGMA page_count').fetchone()[0]
    database.execute_sql('PRAGMA max_page_count = %d' % (pages + extra_pages))


@pytest.mark.sqlite_only
def test_add_model_on_a_full_database_reports_the_real_error(db_path):
    with modelstore.connect('sqlite:///' + db_path) as store:
        store.add_model(**MODEL)
        before = dump(db_path)
        _cap(store.database)
        with pytest.raises(StorageError, match='add_model failed: database or disk is full'):
            store.add_model(**dict(MODEL, description='x' * 60000))
        with pytest.raises(StorageError, match='add_models failed: database or disk is full'):
            store.add_models([dict(MODEL, description='x' * 60000)] * 3)
        assert not store.database.in_transaction()
        store.database.execute_sql('PRAGMA max_page_count = 1073741823')
        store.add_model(**MODEL)  # The store carries on once there is room.
    assert len(dump(db_path)[1]['fine_tuned_models']) == len(before[1]['fine_tuned_models']) + 1


@pytest.mark.sqlite_only
def test_migrate_on_a_full_database_reports_it_and_claims_no_script(tmp_path):
    path = str(tmp_path / 'forge.db')
    build(path, modelforge_v10)
    before = dump(path)
    database = open_database('sqlite:///' + path, mode='migrate')
    _cap(database, extra_pages=1)
    reported = []
    with pytest.raises(MigrationError) as info:
        Engine(database).migrate(on_script=reported.append)
    assert 'database or disk is full' in str(info.value)
    assert 'cannot rollback' not in str(info.value)
    assert reported == []  # Nothing was committed, so nothing was reported done.
    database.close()
    assert dump(path) == before


@pytest.mark.sqlite_only
def test_a_failure_after_committed_scripts_reports_those_after_the_commit(tmp_path, scripts):
    scripts('0001_a.py', '''
        def up(migrator, db):
            db.execute_sql('CREATE TABLE a (x INTEGER)')
        ''')
    scripts('0002_b.py', '''
        def up(migrator, db):
            raise RuntimeError('b is broken')
        ''')
    path = str(tmp_path / 'r.db')
    database = open_database('sqlite:///' + path, mode='migrate')
    reported = []
    with pytest.raises(ScriptError, match='b is broken'):
        Engine(database, scripts.dir).migrate(on_script=lambda run: reported.append(
            (run.name, [r['name'] for r in history('sqlite:///' + path)])))
    database.close()
    # 0001 was reported once it was committed: a second connection already saw its row.
    assert reported == [('0001_a', ['0001_a'])]


@pytest.fixture
def tiny_disk():
    """A real filesystem of 96 KiB (a tmpfs), mounted for the test."""
    if os.geteuid() != 0 or not shutil.which('mount'):
        pytest.skip('mounting a tmpfs needs root; the max_page_count tests above cover the '
                    'same code path without it')
    directory = tempfile.mkdtemp(prefix='modelstore-full-')
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', directory],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        os.rmdir(directory)
        pytest.skip('cannot mount a tmpfs here: %s' % proc.stderr.strip())
    yield directory
    subprocess.run(['umount', directory], check=True)
    os.rmdir(directory)


@pytest.mark.sqlite_only
def test_migrate_on_a_full_disk_says_so_and_prints_no_check_mark(tiny_disk):
    import sqlite3
    path = os.path.join(tiny_disk, 'forge.db')
    build(path, modelforge_v10)
    conn = sqlite3.connect(path)
    try:  # Fill the disk.
        while True:
            conn.execute("INSERT INTO fine_tuned_models (model_name, base_model, task, "
                         "description, creation_date, model_path) VALUES ('m', 'b', 't', ?, "
                         "'2024-01-01T00:00:00', '/p')", ('x' * 3000,))
            conn.commit()
    except sqlite3.OperationalError as exc:
        assert 'full' in str(exc)
    conn.close()
    before = dump(path)
    proc = subprocess.run([sys.executable, '-m', 'modelstore', 'migrate', '--database', path,
                           '--no-backup'], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'database or disk is full' in proc.stderr, proc.stderr
    assert 'cannot rollback' not in proc.stderr and 'unexpected' not in proc.stderr
    assert '✓' not in proc.stdout
    assert dump(path) == before
