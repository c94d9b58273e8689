"""Backups before a run, restore, retention, destructive-rollback refusal and file modes."""
import glob
import os
import sqlite3
import stat

import pytest

import modelstore
from modelstore.engine.backup import Backup, Backups
from modelstore.exceptions import DataLossRefused, SchemaNewerThanCode

from conftest import SHIPPED, columns, dump, execute, query, tables
from legacy import build, modelforge_v10

MODEL = dict(model_name='m', base_model='b', task='t', model_path='/p')


def backups_of(path):
    return sorted(glob.glob(path + '.*.schema-*.bak'))


def populated(path, custom=True):
    with modelstore.connect('sqlite:///' + path) as store:
        store.add_model(is_custom_base_model=custom, **MODEL)
        store.add_task(task_name='t1', base_runtime='sglang', model_config={}, parameters={},
                       optimization_config={}, benchmark_config={},
                       clusterbasemodel_config={'preset': 'llama-3-2-1b-instruct'})


@pytest.mark.sqlite_only
def test_migrate_backs_up_a_legacy_file_first_and_prints_where(cli, tmp_path):
    path = str(tmp_path / 'forge.db')
    build(path, modelforge_v10)
    before = dump(path)
    code, out, _ = cli('migrate', '--database', path)
    assert code == 0
    [backup] = backups_of(path)
    assert 'Backup: %s' % backup in out
    assert out.index('Backup:') < out.index('0001_initial')
    assert '.schema-legacy.bak' in backup
    assert dump(backup) == before  # Exactly the file as it was before the run.
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert not glob.glob(path + '*.partial')


@pytest.mark.sqlite_only
def test_no_backup_skips_it_and_nothing_to_do_takes_none(cli, db_path):
    assert cli('migrate', '--database', db_path, '--to', SHIPPED[0])[0] == 0
    assert backups_of(db_path) == []  # A brand-new empty file has nothing to back up.
    assert cli('migrate', '--database', db_path, '--no-backup')[0] == 0
    assert backups_of(db_path) == []
    assert cli('migrate', '--database', db_path)[0] == 0  # Up to date: nothing changes.
    assert backups_of(db_path) == []
    assert cli('migrate', '--database', db_path, '--dry-run')[0] == 0
    assert backups_of(db_path) == []


@pytest.mark.sqlite_only
def test_backup_names_carry_the_schema_version_and_only_the_newest_are_kept(cli, db_path):
    assert cli('migrate', '--database', db_path, '--to', SHIPPED[0])[0] == 0
    for _ in range(4):
        assert cli('rollback', '--database', db_path, '--keep-backups', '3')[0] == 0
        assert cli('migrate', '--database', db_path, '--to', SHIPPED[0],
                   '--keep-backups', '3')[0] == 0
    kept = backups_of(db_path)
    assert len(kept) == 3
    versions = [Backup.parse(p).version for p in kept]
    assert set(versions) == {'0001'}  # Only runs over a database with tables back up.
    assert [Backup.parse(p).taken for p in kept] == sorted(Backup.parse(p).taken for p in kept)
    assert all(Backup.parse(p).source == os.path.abspath(db_path) for p in kept)


@pytest.mark.sqlite_only
def test_keep_backups_rejects_nonsense(cli, db_path):
    code, _, err = cli('migrate', '--database', db_path, '--keep-backups', '0')
    assert code == 2 and '--keep-backups' in err
    assert not os.path.exists(db_path)


@pytest.mark.sqlite_only
def test_restore_puts_the_backup_back_and_keeps_the_replaced_state(cli, db_path):
    populated(db_path)
    code, out, _ = cli('rollback', '--database', db_path, '--to', SHIPPED[1], '--yes')
    assert code == 0
    [backup] = backups_of(db_path)
    assert 'is_custom_base_model' not in columns(db_path, 'fine_tuned_models')
    after_rollback = dump(db_path)
    code, out, _ = cli('restore', backup)
    assert code == 0, out
    assert 'Restored' in out and '%d scripts applied' % len(SHIPPED) in out
    assert query(db_path, 'SELECT is_custom_base_model FROM fine_tuned_models') == [(1,)]
    assert query(db_path, 'PRAGMA integrity_check') == [('ok',)]
    # The state the restore replaced was itself backed up, and can be put back.
    previous = [p for p in backups_of(db_path) if p != backup]
    assert len(previous) == 1 and 'Backup of the database as it was: %s' % previous[0] in out
    assert cli('restore', previous[0], '--no-backup')[0] == 0
    assert dump(db_path) == after_rollback
    # And the store opens and writes after a restore.
    cli('restore', backup, '--no-backup')
    with modelstore.connect('sqlite:///' + db_path) as store:
        store.add_model(**MODEL)
        assert len(store.list_models()) == 2


@pytest.mark.sqlite_only
def test_restore_into_a_named_database(cli, db_path, tmp_path):
    populated(db_path)
    Backups(db_path).take('0004')
    [backup] = backups_of(db_path)
    other = str(tmp_path / 'copy.db')
    assert cli('restore', backup, '--database', other)[0] == 0
    assert dump(other)[1] == dump(db_path)[1]
    assert stat.S_IMODE(os.stat(other).st_mode) == 0o600


@pytest.mark.sqlite_only
@pytest.mark.parametrize('damage, message', [
    ('missing', 'does not exist'),
    ('garbage', 'not a usable SQLite database'),
    ('truncated', 'malformed'),
    ('foreign', 'holds no modelstore registry'),
    ('unnamed', 'cannot tell which database'),
])
def test_restore_checks_the_backup_and_changes_nothing_if_bad(cli, db_path, tmp_path, damage,
                                                               message):
    populated(db_path)
    backup = Backups(db_path).take('0004')
    if damage == 'missing':
        os.remove(backup)
    elif damage == 'garbage':
        with open(backup, 'wb') as fh:
            fh.write(b'not a database at all' * 200)
    elif damage == 'truncated':
        for i in range(300):  # Make it span many pages, then cut it.
            execute(backup, "INSERT INTO fine_tuned_models (model_name, base_model, task, "
                    "creation_date, model_path) VALUES ('%d', 'b', 't', 'x', '%s')"
                    % (i, 'p' * 500))
        with open(backup, 'r+b') as fh:
            fh.truncate(os.path.getsize(backup) // 2)
    elif damage == 'foreign':
        os.remove(backup)
        execute(backup, 'CREATE TABLE other (x)')
    elif damage == 'unnamed':
        os.rename(backup, str(tmp_path / 'mine.db'))
        backup = str(tmp_path / 'mine.db')
    before = dump(db_path)
    snapshot = sorted(os.listdir(tmp_path))
    code, _, err = cli('restore', backup)
    assert code == 2
    assert message in err and backup in err
    assert dump(db_path) == before
    assert sorted(os.listdir(tmp_path)) == snapshot


@pytest.mark.sqlite_only
def test_restore_refuses_postgresql_targets(cli, db_path):
    populated(db_path)
    backup = Backups(db_path).take('0004')
    code, _, err = cli('restore', backup, '--database', 'postgresql://u:secret@127.0.0.1:1/x')
    assert code == 2 and 'pg_dump' in err and 'secret' not in err


def _partial(db_path, content, stamp='20260101T000000.000000Z', suffix=''):
    """What a backup killed halfway leaves: the partial copy (or its -journal)."""
    path = '%s.%s.schema-0004.bak.partial%s' % (db_path, stamp, suffix)
    with open(path, 'wb') as fh:
        fh.write(content)
    return path


@pytest.mark.sqlite_only
def test_a_killed_backup_leaves_only_a_partial_that_the_next_backup_removes(db_path):
    populated(db_path)
    stale = _partial(db_path, b'half a copy')
    assert Backups(db_path).list() == []  # A partial is never taken for a backup.
    Backups(db_path).take('0004')
    assert not os.path.exists(stale)
    assert len(Backups(db_path).list()) == 1


@pytest.mark.sqlite_only
def test_database_and_its_wal_files_are_not_world_readable(db_path, tmp_path):
    os.umask(0o022)
    populated(db_path)
    with modelstore.connect('sqlite:///' + db_path) as store:
        store.add_model(**MODEL)
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(db_path + suffix):
                assert stat.S_IMODE(os.stat(db_path + suffix).st_mode) & 0o077 == 0, suffix
    default = modelstore.connect()
    default.close()
    path = os.path.join(str(tmp_path / 'xdg'), 'modelstore', 'modelstore.db')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


# -- destructive rollbacks (both backends) -----------------------------------------------------

def _store(url):
    return modelstore.connect(url)


def test_a_rollback_that_drops_values_refuses_and_lists_them(cli, db_url):
    with _store(db_url) as store:
        store.add_model(is_custom_base_model=True, **MODEL)
        store.add_model(**MODEL)  # The default: losing it loses nothing.
        store.add_task(task_name='t1', base_runtime='sglang', model_config={}, parameters={},
                       optimization_config={}, benchmark_config={}, slo_config={'p99': 1})
    before = dump(db_url)
    code, _, err = cli('rollback', '--database', db_url, '--to', SHIPPED[1])
    assert code == 2
    assert 'fine_tuned_models.is_custom_base_model and the values of 1 row' in err
    assert 'tasks.slo_config and the values of 1 row' in err
    assert 'tasks.quant_config' not in err  # NULL everywhere: nothing to lose.
    assert '--yes' in err
    assert dump(db_url) == before
    # The dry run shows the same losses and changes nothing.
    code, out, _ = cli('rollback', '--database', db_url, '--to', SHIPPED[1], '--dry-run')
    assert code == 0 and 'would destroy: column fine_tuned_models.is_custom_base_model' in out
    assert dump(db_url) == before
    code, out, _ = cli('rollback', '--database', db_url, '--to', SHIPPED[1], '--yes')
    assert code == 0 and 'destroyed: column tasks.slo_config' in out
    assert 'is_custom_base_model' not in columns(db_url, 'fine_tuned_models')


def test_a_rollback_that_loses_nothing_needs_no_yes(cli, db_url):
    # Before versions (0008): once a row is numbered, dropping the numbers is a loss.
    assert cli('migrate', '--database', db_url, '--to', '0007_search_indexes')[0] == 0
    # A row as ModelForge writes it: nothing in the columns the rolled-back scripts add.
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, creation_date, "
                    "model_path) VALUES ('m', 'b', 't', '2026-01-01T00:00:00', '/p')")
    assert cli('rollback', '--database', db_url, '--to', SHIPPED[1])[0] == 0
    assert query(db_url, 'SELECT model_name FROM fine_tuned_models') == [('m',)]


def test_rolling_back_versions_over_numbered_rows_is_refused(cli, db_url):
    assert cli('migrate', '--database', db_url)[0] == 0
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, creation_date, "
                    "model_path) VALUES ('m', 'b', 't', '2026-01-01T00:00:00', '/p')")
    # 0010 and 0009 only remove triggers and an index: nothing is lost.
    assert cli('rollback', '--database', db_url, '--to', '0009_model_version_index')[0] == 0
    code, _, err = cli('rollback', '--database', db_url, '--to', '0008_model_versions')
    assert code == 2 and 'column fine_tuned_models.version' in err, err
    assert 'table model_version_counters and its 1 row' in err, err


def test_rolling_back_the_initial_script_over_rows_is_refused(cli, db_url):
    with _store(db_url) as store:
        store.add_model(**MODEL)
    before = dump(db_url)
    code, _, err = cli('rollback', '--database', db_url, '--to', SHIPPED[0])
    assert code == 2 and 'table fine_tuned_models and its 1 row' in err
    assert 'table tasks' not in err  # Empty: dropping it loses nothing.
    assert dump(db_url) == before
    with pytest.raises(DataLossRefused) as info:
        modelstore.Engine(modelstore.connect(db_url).database).rollback(SHIPPED[0])
    assert info.value.losses == ['table fine_tuned_models and its 1 row',
                                 'table model_version_counters and its 1 row',
                                 'table registry_event_counter and its 1 row',
                                 'table registry_events and its 1 row']


@pytest.mark.sqlite_only
def test_yes_on_sqlite_backs_up_first_and_refuses_without_a_backup(cli, db_path):
    populated(db_path)
    before = dump(db_path)
    code, _, err = cli('rollback', '--database', db_path, '--to', SHIPPED[1], '--yes',
                       '--no-backup')
    assert code == 2 and 'takes a backup first' in err
    assert dump(db_path) == before
    code, out, _ = cli('rollback', '--database', db_path, '--to', SHIPPED[1], '--yes')
    assert code == 0
    [backup] = backups_of(db_path)
    assert dump(backup)[1] == before[1]


# -- a database migrated by newer code ---------------------------------------------------------

def test_newer_schema_reads_only_when_asked_and_never_writes(db_url):
    with _store(db_url) as store:
        store.add_model(**MODEL)
    execute(db_url, "INSERT INTO schema_migration (name, applied) VALUES "
            "('9999_from_the_future', '2030-01-01 00:00:00')")
    with pytest.raises(SchemaNewerThanCode) as info:
        modelstore.connect(db_url)
    assert '9999_from_the_future' in str(info.value)
    before = dump(db_url)
    with modelstore.connect(db_url, allow_newer=True) as store:
        assert [m.model_name for m in store.list_models()] == ['m']
        for write in (lambda: store.add_model(**MODEL),
                      lambda: store.delete_model(1),
                      lambda: store.add_task(task_name='x', base_runtime='r', model_config={},
                                             parameters={}, optimization_config={},
                                             benchmark_config={}),
                      lambda: store.update_task(1, status='RUNNING')):
            with pytest.raises(SchemaNewerThanCode, match='9999_from_the_future'):
                write()
    after = dump(db_url)
    assert after[1] == before[1]
    assert 'schema_migration' in tables(db_url)


@pytest.mark.sqlite_only
@pytest.mark.slow
def test_backup_waits_for_a_writer_at_most_the_timeout(db_path):
    populated(db_path)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute('PRAGMA journal_mode=DELETE')
    blocker.execute('BEGIN EXCLUSIVE')
    try:
        with pytest.raises(modelstore.MigrationError, match='could not back up'):
            Backups(db_path, timeout=0.3).take('0004')
    finally:
        blocker.execute('ROLLBACK')
        blocker.close()
    assert Backups(db_path).list() == []
    assert not glob.glob(db_path + '*.partial')


# -- restore never loses its source; retention never deletes a file in use (issue 11: B1) ------

def _five_backups(cli, path):
    """Five backups made the way an operator makes them: rollback --yes, then migrate."""
    populated(path)
    for _ in range(5):
        assert cli('rollback', '--database', path, '--yes')[0] == 0
        assert cli('migrate', '--database', path)[0] == 0
    kept = backups_of(path)
    assert len(kept) == 5
    return kept


@pytest.mark.sqlite_only
@pytest.mark.parametrize('keep', [None, '1'])
def test_restore_from_the_oldest_of_five_backups_keeps_it(cli, db_path, keep):
    oldest = _five_backups(cli, db_path)[0]
    expected = dump(oldest)[1]
    code, out, err = cli('restore', oldest, *(['--keep-backups', keep] if keep else []))
    assert code == 0, err
    assert os.path.exists(oldest)  # The source survived its own safety backup's retention.
    assert dump(db_path)[1] == expected
    [safety] = [line.split(': ', 1)[1] for line in out.splitlines()
                if line.startswith('Backup of the database as it was: ')]
    assert os.path.exists(safety)
    kept = backups_of(db_path)
    # The newest N, and the source beside them (retention deletes it on a later run).
    assert len(kept) == (2 if keep else 6) and oldest in kept and safety in kept


@pytest.mark.sqlite_only
def test_retention_skips_a_backup_another_command_is_using(db_path):
    from modelstore.shared.files import in_use
    populated(db_path)
    backups = Backups(db_path, keep=1)
    first = backups.take('0005')
    with in_use(first):  # As restore holds its source while it reads it.
        second = backups.take('0005')
        third = backups.take('0005')
        assert os.path.exists(first)  # In use: kept, though keep=1.
        assert not os.path.exists(second)
    assert backups.prune() == [first]  # Once released, retention applies to it again.
    assert backups_of(db_path) == [third]


@pytest.mark.sqlite_only
def test_retention_keeps_a_backup_held_by_another_process(db_path):
    import subprocess
    import sys
    populated(db_path)
    backups = Backups(db_path, keep=1)
    held = backups.take('0005')
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import fcntl, os, sys, time\n'
         'fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_SH)\n'
         'print("held", flush=True); time.sleep(60)', held], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        backups.take('0005')
        assert os.path.exists(held)
    finally:
        holder.kill()
        holder.wait()
    backups.take('0005')
    assert not os.path.exists(held)  # Its holder died: the lock went with it.


# -- restore reads what a reader of a live source sees (B7) ------------------------------------

@pytest.mark.sqlite_only
def test_restore_from_a_live_registry_includes_the_rows_still_in_its_wal(cli, tmp_path):
    source = str(tmp_path / 'live.db')
    target = str(tmp_path / 'target.db')
    with modelstore.connect('sqlite:///' + source) as live:
        live.add_models([dict(MODEL, model_name='m%d' % i) for i in range(50)])
        assert os.path.getsize(source + '-wal') > 0  # The rows are in the log, not the file.
        code, out, err = cli('restore', source, '--database', target)
        assert code == 0, err
        assert '5 scripts applied' in out or 'scripts applied' in out
        assert query(target, 'SELECT count(*) FROM fine_tuned_models') == [(50,)]
        assert query(target, 'PRAGMA integrity_check') == [('ok',)]


# -- leftovers and modes (B9) ------------------------------------------------------------------

@pytest.mark.sqlite_only
def test_a_killed_backups_journal_is_removed_by_the_next_run(cli, db_path):
    populated(db_path)
    _partial(db_path, b'half a copy', suffix='-journal')
    _partial(db_path, b'half a copy')
    # A journal whose partial an older modelstore removed.
    _partial(db_path, b'journal', stamp='20260102T000000.000000Z', suffix='-journal')
    # Even a run with nothing to do (no backup taken) cleans up.
    code, out, _ = cli('migrate', '--database', db_path)
    assert code == 0 and 'Nothing to migrate' in out
    assert not glob.glob(db_path + '*.partial*')


@pytest.mark.sqlite_only
def test_a_partial_being_written_by_another_run_is_left_alone(db_path):
    from modelstore.shared.files import in_use
    populated(db_path)
    busy = _partial(db_path, b'being copied')
    with in_use(busy):
        Backups(db_path).take('0005')
        assert os.path.exists(busy)
    Backups(db_path).take('0005')
    assert not os.path.exists(busy)


@pytest.mark.sqlite_only
def test_a_registry_created_through_a_dangling_symlink_is_private(tmp_path):
    os.umask(0o022)
    data = tmp_path / 'data'
    data.mkdir()
    link = tmp_path / 'registry.db'
    link.symlink_to(data / 'real.db')
    assert not link.exists()
    with modelstore.connect('sqlite:///' + str(link)) as store:
        store.add_model(**MODEL)
    assert os.path.islink(link)  # The link is kept; its target was created.
    assert stat.S_IMODE(os.stat(data / 'real.db').st_mode) == 0o600
    assert query(str(data / 'real.db'), 'SELECT count(*) FROM fine_tuned_models') == [(1,)]
