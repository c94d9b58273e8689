"""modelstore doctor on a real folder tree: orphan folders (seed 000's lost models), dangling rows,
rows outside the root, trash; the fixes, each saying what it changed; reads that never write."""
import datetime
import hashlib
import json
import os
import shutil
import tempfile
import shlex

import pytest
from dbtools import execute

import modelstore
from modelstore.registry.doctor import examine
from modelstore.registry.modelfiles import TRASH, ModelsRoot
from modelstore.shared.urls import mask_url

UUID = '3f2a9c1e-1b2c-4d3e-8f40-123456789abc'
# Older than doctor's default --min-age (60 minutes): what the fixes may act on.
OLD = datetime.datetime.now() - datetime.timedelta(hours=3)


def age(top, when=OLD):
    """Give ``top`` and everything in it the mtime ``when`` (a folder written long ago)."""
    stamp = when.timestamp()
    for base, dirs, files in os.walk(top):
        for name in dirs + files:
            os.utime(os.path.join(base, name), (stamp, stamp), follow_symlinks=False)
    os.utime(top, (stamp, stamp), follow_symlinks=False)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb' if isinstance(data, bytes) else 'w') as f:
        f.write(data)
    return len(data)


@pytest.fixture
def tree(tmp_path):
    """A ModelForge models root: an adapter (PEFT), a full model (config.json), a folder with
    neither, one with broken JSON, a registered one, hidden entries, a file, a symlink."""
    root = tmp_path / 'models'
    r = str(root)
    sizes = {}
    sizes['adapter'] = sum([
        write(os.path.join(r, 'support-bot_' + UUID, 'adapter_config.json'), json.dumps(
            {'base_model_name_or_path': 'meta-llama/Llama-3.2-1B', 'task_type': 'CAUSAL_LM',
             'r': 16})),
        write(os.path.join(r, 'support-bot_' + UUID, 'adapter_model.safetensors'),
              os.urandom(3000)),
        write(os.path.join(r, 'support-bot_' + UUID, '.ipynb_checkpoints', 'x'), b'12345')])
    sizes['full'] = sum([
        write(os.path.join(r, 'summarizer_%s' % UUID.replace('-', ''), 'config.json'),
              json.dumps({'_name_or_path': 'google/flan-t5-base'})),
        write(os.path.join(r, 'summarizer_%s' % UUID.replace('-', ''), 'model.bin'),
              os.urandom(777))])
    sizes['plain'] = write(os.path.join(r, 'notes-folder', 'README'), 'hello')
    write(os.path.join(r, 'broken_1', 'adapter_config.json'), '{not json')
    write(os.path.join(r, 'known_1', 'adapter_config.json'), '{}')
    write(os.path.join(r, '.cache', 'x'), 'hidden: not a model')
    write(os.path.join(r, 'stray.txt'), 'a file is not a model')
    os.makedirs(str(tmp_path / 'elsewhere'))
    os.symlink(str(tmp_path / 'elsewhere'), os.path.join(r, 'linked'))
    age(r)
    return r, sizes


@pytest.fixture
def registry(head_url, tree, tmp_path):
    root, _ = tree
    old = dict(creation_date=OLD, updated_at=OLD)
    with modelstore.connect(head_url) as store:
        known = store.add_model(model_name='known', base_model='b', task='t',
                                model_path=os.path.join(root, 'known_1'), **old)
        gone = store.add_model(model_name='gone', base_model='b', task='t',
                               model_path=os.path.join(root, 'gone_2'), **old)
        far = store.add_model(model_name='far', base_model='b', task='t',
                              model_path=str(tmp_path / 'elsewhere'), **old)
    return head_url, root, known.id, gone.id, far.id


def doctor(cli, url, root, *extra):
    code, out, err = cli('doctor', '--database', url, '--models-root', root, '--json', *extra)
    return code, json.loads(out), err


def snapshot(*paths):
    """Every file and folder under ``paths`` with its bytes' hash and mtime."""
    seen = {}
    for top in paths:
        if os.path.isfile(top):
            with open(top, 'rb') as f:
                seen[top] = (hashlib.sha256(f.read()).hexdigest(), os.stat(top).st_mtime_ns)
            continue
        for base, dirs, files in os.walk(top):
            for name in dirs + files:
                path = os.path.join(base, name)
                data = b''
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, 'rb') as f:
                        data = f.read()
                seen[path] = (hashlib.sha256(data).hexdigest(), os.lstat(path).st_mtime_ns)
    return seen


def test_the_report_finds_orphans_dangling_rows_and_rows_outside_the_root(cli, registry,
                                                                          tree):
    url, root, known, gone, far = registry
    _, sizes = tree
    code, report, _ = doctor(cli, url, root)
    assert code == 1 and report['clean'] is False and report['rows'] == 3
    orphans = {os.path.basename(o['path']): o for o in report['orphans']}
    assert sorted(orphans) == ['broken_1', 'notes-folder', 'summarizer_' + UUID.replace('-', ''),
                               'support-bot_' + UUID]
    adapter = orphans['support-bot_' + UUID]
    assert (adapter['name'], adapter['base_model'], adapter['task'], adapter['size']) == \
        ('support-bot', 'meta-llama/Llama-3.2-1B', 'CAUSAL_LM', sizes['adapter'])
    full = orphans['summarizer_' + UUID.replace('-', '')]
    assert (full['name'], full['base_model'], full['task'], full['size']) == \
        ('summarizer', 'google/flan-t5-base', None, sizes['full'])
    plain = orphans['notes-folder']
    assert (plain['name'], plain['base_model'], plain['size']) == ('notes-folder', None, 5)
    assert 'adapter_config.json unreadable' in orphans['broken_1']['problems'][0]
    when = datetime.datetime.fromisoformat(adapter['modified'])
    assert abs((OLD - when).total_seconds()) < 1 and adapter['too_recent'] is False
    assert [r['id'] for r in report['dangling']] == [gone]
    assert [r['id'] for r in report['outside']] == [far]
    assert report['skipped'] == [{'path': os.path.join(root, 'linked'),
                                  'why': 'a symlink: not followed'}]
    assert report['trash'] == []


def test_reading_writes_nothing(cli, registry, tmp_path):
    url, root, *_ = registry
    files = [str(tmp_path)] if url.startswith('sqlite') else [root]
    before = snapshot(*files)
    code, out, _ = cli('doctor', '--database', url, '--models-root', root)
    assert code == 1 and 'Orphan folders (4)' in out and 'Dangling rows (1)' in out
    # The hint is the whole command, with the database and the models root (issue 26).
    assert 'Fix: `modelstore doctor --register --database ' in out
    assert '--models-root %s` records the orphans' % shlex.quote(root) in out
    assert snapshot(*files) == before


def test_register_records_the_orphans_from_what_their_folders_hold(cli, registry):
    url, root, *_ = registry
    code, report, _ = doctor(cli, url, root, '--register')
    registered = [f for f in report['fixes'] if f['fix'] == 'register']
    assert len(registered) == 4 and all(f['id'] for f in registered)
    assert report['orphans'] == [] and code == 1  # Still: the dangling row, the outside one.
    with modelstore.connect(url) as store:
        bot = store.get_latest_model('support-bot')
        assert (bot.base_model, bot.task, bot.model_path) == (
            'meta-llama/Llama-3.2-1B', 'CAUSAL_LM', os.path.join(root, 'support-bot_' + UUID))
        assert bot.creation_date == datetime.datetime.fromtimestamp(
            os.stat(bot.model_path).st_mtime)
        plain = store.get_latest_model('notes-folder')
        assert (plain.base_model, plain.task) == ('unknown', 'unknown')
    code, report, _ = doctor(cli, url, root, '--register')  # Nothing twice.
    assert [f for f in report['fixes'] if f['fix'] == 'register'] == []


def test_forget_dangling_asks_for_yes_then_deletes_only_those_rows(cli, registry, tmp_path):
    url, root, known, gone, far = registry
    code, out, err = cli('doctor', '--database', url, '--models-root', root,
                         '--forget-dangling')
    assert code == 2 and 'add --yes' in err
    with modelstore.connect(url) as store:
        assert store.get_model(gone)  # Refused: nothing deleted.
    code, report, _ = doctor(cli, url, root, '--forget-dangling', '--yes')
    forgot = [f for f in report['fixes'] if f['fix'] == 'forget']
    assert [f['id'] for f in forgot] == [gone] and forgot[0]['row']['model_name'] == 'gone'
    assert report['dangling'] == []
    with modelstore.connect(url) as store:
        with pytest.raises(modelstore.NotFound):
            store.get_model(gone)
        assert store.get_model(known) and store.get_model(far)
    if url.startswith('sqlite'):
        [backup] = [f for f in report['fixes'] if f['fix'] == 'backup']
        assert os.path.exists(backup['path'])
    with modelstore.connect(url) as store:
        store.add_model(model_name='lost', base_model='b', task='t',
                        model_path=os.path.join(root, 'lost_9'))
    code, out, _ = cli('doctor', '--database', url, '--models-root', root, '--forget-dangling',
                       '--yes', '--min-age', '0')  # A row added just now: no minimum age.
    assert 'forgot model 4 (lost)' in out
    # Reversible: a SQLite file is backed up first; a server's row is printed in full.
    assert ('backed up ' in out) if url.startswith('sqlite') else \
        ('the row was: {"id": 4, "model_name": "lost"' in out)


def test_empty_trash_finishes_an_interrupted_delete(cli, registry):
    url, root, known, *_ = registry
    trash = os.path.join(root, TRASH)
    os.makedirs(trash)
    os.chmod(trash, 0o700)  # (A trash is private, or unused.)
    with open(os.path.join(trash, '%d-abc.json' % known), 'w') as f:
        json.dump({'id': known, 'model_path': os.path.join(root, 'known_1'),
                   'directory': os.path.join(root, 'known_1')}, f)
    os.rename(os.path.join(root, 'known_1'), os.path.join(trash, '%d-abc' % known))
    code, report, _ = doctor(cli, url, root)
    assert [t['action'] for t in report['trash']] == ['restore']
    assert known in [r['id'] for r in report['dangling']]  # Its files are in the trash.
    code, report, _ = doctor(cli, url, root, '--empty-trash')
    assert [f['action'] for f in report['fixes']] == ['restore']
    assert report['trash'] == [] and report['dangling'][0]['model_name'] == 'gone'
    assert os.path.isfile(os.path.join(root, 'known_1', 'adapter_config.json'))


def test_a_clean_registry_exits_0(cli, db_url, tmp_path):
    root = str(tmp_path / 'models')
    write(os.path.join(root, 'm_1', 'config.json'), '{}')
    with modelstore.connect(db_url) as store:
        store.add_model(model_name='m', base_model='b', task='t',
                        model_path=os.path.join(root, 'm_1'))
    code, out, _ = cli('doctor', '--database', db_url, '--models-root', root)
    assert code == 0 and 'Rows and folders agree' in out


def test_doctor_needs_a_root_and_a_registry(cli, db_url, tmp_path, monkeypatch):
    monkeypatch.delenv('MODELSTORE_MODELS_ROOT', raising=False)
    code, _, err = cli('doctor', '--database', db_url)
    assert code == 2 and 'error: doctor needs the models root' in err
    code, _, err = cli('doctor', '--database', db_url, '--models-root', str(tmp_path / 'no'))
    assert code == 2 and 'is not a directory' in err
    empty = str(tmp_path / 'empty.db')
    code, _, err = cli('doctor', '--database', empty, '--models-root', str(tmp_path))
    assert code == 2 and 'no fine_tuned_models table' in err and not os.path.exists(empty)


def test_an_unreadable_folder_is_reported_with_what_could_be_read():
    """Permissions bind only a user other than root: examined in a child process that runs
    as nobody when the suite runs as root (in a directory nobody may enter)."""
    base = tempfile.mkdtemp(prefix='doctor-')
    try:
        _unreadable(base)
    finally:
        os.chmod(os.path.join(base, 'models', 'locked_1', 'private'), 0o755)
        shutil.rmtree(base)


def _unreadable(base):
    root = os.path.join(base, 'models')
    write(os.path.join(root, 'locked_1', 'config.json'), json.dumps({'_name_or_path': 'x/y'}))
    write(os.path.join(root, 'locked_1', 'private', 'weights.bin'), b'0' * 10)
    for path in (base, root, os.path.join(root, 'locked_1')):
        os.chmod(path, 0o755)
    os.chmod(os.path.join(root, 'locked_1', 'config.json'), 0o644)
    os.chmod(os.path.join(root, 'locked_1', 'private'), 0o000)
    read, written = os.pipe()
    pid = os.fork()
    if pid == 0:  # The child: examine as an ordinary user, report as JSON.
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            found = examine([], ModelsRoot(root).check(), lambda *a: False)
            os.write(written, json.dumps(found.as_dict()).encode())
        except BaseException as exc:
            os.write(written, json.dumps({'error': repr(exc)}).encode())
        finally:
            os._exit(0)
    os.close(written)
    with os.fdopen(read) as f:
        data = f.read()
    os.waitpid(pid, 0)
    found = json.loads(data)
    assert 'error' not in found, found
    [orphan] = found['orphans']
    assert orphan['base_model'] == 'x/y' and orphan['size'] == len('{"_name_or_path": "x/y"}')
    assert any('cannot read' in p and 'private' in p for p in orphan['problems'])



def test_forget_dangling_asks_on_a_terminal(registry):
    from test_registry_cli import _on_a_terminal
    url, root, known, gone, far = registry
    code, out, _ = _on_a_terminal(['doctor', '--database', url, '--models-root', root,
                                   '--forget-dangling'], 'y')
    assert '1 row whose files are gone:' in out and 'Delete them? [y/N]' in out
    assert 'forgot model %d (gone)' % gone in out
    with modelstore.connect(url) as store:
        with pytest.raises(modelstore.NotFound):
            store.get_model(gone)


# -- issue 25: O(rows + folders), bounded reads, bad rows, relative paths, --min-age, the race
# with the pipeline, ModelForge's `models` table, pipeline_task ---------------------------------

def old_model(store, name, path, **fields):
    return store.add_model(model_name=name, base_model='b', task='t', model_path=path,
                           **dict(dict(creation_date=OLD, updated_at=OLD), **fields))


def test_examine_compares_no_pairs_of_rows_and_folders(tmp_path, monkeypatch):
    """A folder is claimed by a set lookup of the first component of each row's path below the
    root: one ``relative`` per row, never a row against a folder (that was quadratic: 10,000
    rows never finished). Speed itself is measured in bench/ (``--only doctor``)."""
    root = str(tmp_path / 'models')
    n = 400
    rows = []
    for i in range(n):
        os.makedirs(os.path.join(root, 'm_%d' % i, 'ckpt'))
        rows.append((i + 1, 'm', os.path.join(root, 'm_%d' % i, 'ckpt' if i % 2 else ''),
                     OLD.isoformat()))
    calls = []

    class Counting(ModelsRoot):
        def relative(self, model_path):
            calls.append(model_path)
            return super().relative(model_path)

    def pairwise(*args):
        raise AssertionError('a row compared with a folder')
    monkeypatch.setattr(os.path, 'commonpath', pairwise)
    found = examine(rows, Counting(root).check(), lambda *a: False)
    assert found.clean and found.rows == n and len(calls) == n


@pytest.mark.parametrize('name, key', [('adapter_config.json', 'base_model_name_or_path'),
                                       ('config.json', '_name_or_path'),
                                       ('modelforge_config.json', 'pipeline_task')])
def test_a_config_file_over_1_mib_is_reported_and_not_read(tmp_path, monkeypatch, name, key):
    root = str(tmp_path / 'models')
    big = json.dumps({key: 'x/y', 'padding': ' ' * (2 << 20)})
    write(os.path.join(root, 'big_1', name), big)
    opened = []
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        opened.append(os.fstat(fd).st_size)
        return real_fdopen(fd, *args, **kwargs)
    monkeypatch.setattr(os, 'fdopen', fdopen)
    [orphan] = examine([], ModelsRoot(root).check(), lambda *a: False).orphans
    assert (orphan.base_model, orphan.task) == (None, None)
    assert orphan.problems == ['%s is %d bytes, more than 1048576: not read' % (name, len(big))]
    assert opened == []  # Not opened for reading at all.


def test_a_config_file_through_a_link_or_a_fifo_is_not_followed(tmp_path):
    root = str(tmp_path / 'models')
    write(str(tmp_path / 'secret.json'), json.dumps({'_name_or_path': 'leaked'}))
    os.makedirs(os.path.join(root, 'odd_1'))
    os.symlink(str(tmp_path / 'secret.json'), os.path.join(root, 'odd_1', 'config.json'))
    os.mkfifo(os.path.join(root, 'odd_1', 'adapter_config.json'))  # Would block a plain open.
    [orphan] = examine([], ModelsRoot(root).check(), lambda *a: False).orphans
    assert orphan.base_model is None
    assert sorted(orphan.problems) == ['adapter_config.json is not a regular file: not read',
                                       'config.json is a symlink: not followed']


def test_rows_that_are_not_text_are_reported_by_id_and_the_report_goes_on(tmp_path):
    root = str(tmp_path / 'models')
    write(os.path.join(root, 'kept_1', 'config.json'), '{}')
    write(os.path.join(root, 'lost_1', 'config.json'), '{}')
    rows = [(1, 'a', os.path.join(root, 'x\0y')), (2, 'b', 42), (3, 'c', None),
            (4, b'\xff', os.path.join(root, 'kept_1')), (5, 'e', os.path.join(root, 'gone_1'))]
    found = examine(rows, ModelsRoot(root).check(), lambda *a: False, min_age=0)
    assert [(r['id'], r['why']) for r in found.invalid] == [
        (1, 'model_path contains a NUL byte: %r' % os.path.join(root, 'x\0y')),
        (2, 'model_path is not text but int (42)'), (3, 'model_path is NULL'),
        (4, "model_name is not valid UTF-8 (byte 0xff at offset 0 of b'\\xff')")]
    # The rest goes on: row 4 still claims its folder, row 5 is dangling, lost_1 an orphan.
    assert [os.path.basename(o.path) for o in found.orphans] == ['lost_1']
    assert [r['id'] for r in found.dangling] == [5]


@pytest.mark.sqlite_only
def test_bad_bytes_and_types_written_behind_sqlite3s_back_are_reported(cli, db_path, tree):
    """sqlite3 raises "Could not decode to UTF-8 column" for the whole query on one such value:
    doctor reads the text columns as BLOB and decodes row by row."""
    import sqlite3
    root, _ = tree
    url = 'sqlite:///' + db_path
    with modelstore.connect(url) as store:
        ids = [old_model(store, 'm%d' % i, os.path.join(root, 'gone_%d' % i)).id
               for i in range(6)]
        known = old_model(store, 'known', os.path.join(root, 'known_1')).id
    conn = sqlite3.connect(db_path)
    conn.execute('UPDATE fine_tuned_models SET model_path = ? WHERE id = ?',
                 (os.path.join(root, 'a\0b'), ids[0]))
    conn.execute("UPDATE fine_tuned_models SET model_path = CAST(? AS TEXT) WHERE id = ?",
                 (os.path.join(root, 'caf').encode() + b'\xe9', ids[1]))
    # (A number becomes text in a TEXT column: judged as the relative path '42'.)
    conn.execute('UPDATE fine_tuned_models SET model_path = 42 WHERE id = ?', (ids[2],))
    conn.execute('UPDATE fine_tuned_models SET model_path = ? WHERE id = ?',
                 (os.path.join(root, 'blob').encode(), ids[3]))
    conn.execute("UPDATE fine_tuned_models SET model_name = CAST(X'ff41' AS TEXT), "
                 "creation_date = CAST(X'ff' AS TEXT) WHERE id = ?", (known,))
    conn.commit()
    conn.close()
    code, report, _ = doctor(cli, url, root)
    why = {r['id']: r['why'] for r in report['invalid']}
    assert sorted(why) == [ids[0], ids[1], ids[3], known], why
    assert 'NUL byte' in why[ids[0]]
    assert why[ids[1]].startswith('model_path is not valid UTF-8 (byte 0xe9 at offset ')
    assert why[ids[3]] == 'model_path is not text but blob'
    assert [(r['id'], r['model_path']) for r in report['relative']] == [(ids[2], '42')]
    assert why[known].startswith('model_name is not valid UTF-8')
    assert all(r['table'] == 'fine_tuned_models' for r in report['invalid'])
    # The rest of the report: the two good dangling rows, the orphans; known_1 still claimed.
    assert [r['id'] for r in report['dangling']] == ids[4:]
    assert 'known_1' not in [os.path.basename(o['path']) for o in report['orphans']]
    assert len(report['orphans']) == 4 and code == 1
    code, out, _ = cli('doctor', '--database', url, '--models-root', root)
    assert code == 1 and 'Rows that cannot be read (4)' in out
    assert '  fine_tuned_models #%d: model_path is not text but blob' % ids[3] in out
    # The fixes go on too, and never touch the unreadable rows.
    code, report, _ = doctor(cli, url, root, '--forget-dangling', '--yes', '--register')
    assert sorted(f['id'] for f in report['fixes'] if f['fix'] == 'forget') == ids[4:]
    assert len([f for f in report['fixes'] if f['fix'] == 'register' and f['id']]) == 4
    assert sorted(r['id'] for r in report['invalid']) == sorted([ids[0], ids[1], ids[3], known])


def test_a_relative_model_path_is_reported_apart_and_never_forgotten(cli, registry,
                                                                      monkeypatch, tmp_path):
    url, root, *_ = registry
    monkeypatch.chdir(str(tmp_path))
    os.makedirs(str(tmp_path / 'models' / 'rel_1'), exist_ok=True)  # It exists, from here.
    with modelstore.connect(url) as store:
        rel = old_model(store, 'rel', 'models/rel_1').id
        gone_rel = old_model(store, 'gone-rel', 'nowhere/x').id
    code, report, _ = doctor(cli, url, root)
    assert [(r['id'], r['why']) for r in report['relative']] == [
        (rel, 'cannot be judged: not an absolute path'),
        (gone_rel, 'cannot be judged: not an absolute path')]
    assert rel not in [r['id'] for r in report['dangling']]
    assert gone_rel not in [r['id'] for r in report['dangling']]
    code, report, _ = doctor(cli, url, root, '--forget-dangling', '--yes', '--min-age', '0')
    assert {f['id'] for f in report['fixes'] if f['fix'] == 'forget'} == {registry[3]}
    with modelstore.connect(url) as store:
        assert store.get_model(rel) and store.get_model(gone_rel)
    code, out, _ = cli('doctor', '--database', url, '--models-root', root)
    assert 'Rows with a relative model_path (2): cannot be judged: not an absolute path' in out


def test_register_leaves_a_young_folder_alone(cli, registry):
    """A pipeline writes its folder, then adds its row: --register must not race it. Young is
    the newest mtime of anything in the folder, not only the folder's own."""
    url, root, *_ = registry
    write(os.path.join(root, 'training_1', 'adapter_config.json'), '{}')  # Written just now.
    write(os.path.join(root, 'resumed_1', 'ckpt', 'step-10', 'weights.bin'), b'0')
    age(os.path.join(root, 'resumed_1'))
    os.utime(os.path.join(root, 'resumed_1', 'ckpt', 'step-10', 'weights.bin'))  # Still writing.
    code, report, _ = doctor(cli, url, root, '--register')
    left = {os.path.basename(f['path']): f['why'] for f in report['fixes']
            if f['fix'] == 'left_alone' and f['would'] == 'register'}
    assert left == {'training_1': 'too recent for a fix (younger than 60 min)',
                    'resumed_1': 'too recent for a fix (younger than 60 min)'}
    recent = {os.path.basename(o['path']): o['too_recent'] for o in report['orphans']}
    assert recent == {'training_1': True, 'resumed_1': True}
    with modelstore.connect(url) as store:
        assert store.count_models(model_name='training') == 0
    code, out, _ = cli('doctor', '--database', url, '--models-root', root, '--min-age', '30')
    assert 'training_1  base ?, task ?' in out and \
        'too recent for a fix (younger than 30 min)' in out
    assert 'the orphans are too recent for --register (--min-age)' in out
    code, report, _ = doctor(cli, url, root, '--register', '--min-age', '0')  # 0: no minimum.
    assert sorted(os.path.basename(f['path']) for f in report['fixes']
                  if f['fix'] == 'register' and f['id']) == ['resumed_1', 'training_1']


def test_forget_dangling_leaves_a_young_row_alone(cli, registry):
    """A pipeline may add its row first and write the folder while it trains: --forget-dangling
    must not delete that row. Young is the later of creation_date and updated_at."""
    url, root, known, gone, far = registry
    with modelstore.connect(url) as store:
        training = store.add_model(model_name='training', base_model='b', task='t',
                                   model_path=os.path.join(root, 'training_2')).id
        touched = old_model(store, 'touched', os.path.join(root, 'touched_2'),
                            updated_at=datetime.datetime.now()).id
    code, report, _ = doctor(cli, url, root, '--forget-dangling', '--yes')
    assert [f['id'] for f in report['fixes'] if f['fix'] == 'forget'] == [gone]
    left = [f for f in report['fixes'] if f['fix'] == 'left_alone']
    assert [(f['would'], f['id'], f['why']) for f in left] == [
        ('forget', training, 'too recent for a fix (younger than 60 min)'),
        ('forget', touched, 'too recent for a fix (younger than 60 min)')]
    assert {r['id']: r['too_recent'] for r in report['dangling']} == {training: True,
                                                                      touched: True}
    with modelstore.connect(url) as store:
        assert store.get_model(training) and store.get_model(touched)
    code, out, _ = cli('doctor', '--database', url, '--models-root', root)
    assert '#%d training  %s — too recent for a fix (younger than 60 min)' % (
        training, os.path.join(root, 'training_2')) in out


@pytest.mark.parametrize('value', ['-1', 'abc', 'nan', 'inf', '', '1e12'])
def test_min_age_must_be_minutes_of_at_least_0(cli, registry, value):
    url, root, known, gone, far = registry
    code, out, err = cli('doctor', '--database', url, '--models-root', root,
                         '--forget-dangling', '--yes', '--register', '--min-age', value)
    assert code == 2 and out == '' and "--min-age: must be a number of minutes from 0 to " \
        "5256000 (ten years), got %r" % value in err
    with modelstore.connect(url) as store:
        assert store.get_model(gone) and store.count_models() == 3  # Nothing changed.


def test_register_asks_again_right_before_adding_a_row(cli, registry, monkeypatch, tmp_path):
    """The pipeline's add_model lands between the report and the fix: its folder is not
    registered a second time -- the same folder, a path inside it, or another spelling of it."""
    from modelstore.cli import doctor_command as cli_doctor
    url, root, *_ = registry
    alias = str(tmp_path / 'alias')
    os.symlink(root, alias)
    landed = {'support-bot_' + UUID: os.path.join(root, 'support-bot_' + UUID),
              'broken_1': os.path.join(alias, 'broken_1', 'checkpoint-final') + '/'}
    real = cli_doctor.rows_naming

    def pipeline_first(database, models_root, folder, forge=False):
        if folder in landed:
            with modelstore.connect(url) as store:
                store.add_model(model_name='pipeline', base_model='b', task='t',
                                model_path=landed[folder])
        return real(database, models_root, folder, forge)
    monkeypatch.setattr(cli_doctor, 'rows_naming', pipeline_first)
    code, report, _ = doctor(cli, url, root, '--register')
    fixes = {os.path.basename(f['path']): f for f in report['fixes']}
    for folder, path in landed.items():
        assert fixes[folder]['fix'] == 'left_alone', fixes[folder]
        assert fixes[folder]['why'].startswith('a row names it now (fine_tuned_models #')
        assert path in fixes[folder]['why']
    assert fixes['notes-folder']['id'] and report['orphans'] == []
    with modelstore.connect(url) as store:
        assert [m.model_path for m in store.list_models(model_name='support-bot')] == []
        assert store.count_models(model_name='pipeline') == 2


FORGE_DDL = ('CREATE TABLE models (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT '
             'NULL, base_model VARCHAR(255) NOT NULL, task VARCHAR(255) NOT NULL, strategy '
             'VARCHAR(255), provider VARCHAR(255), path VARCHAR(4096) NOT NULL, config TEXT, '
             'is_active BOOLEAN)')


def forge_row(url, key, name, path, active=True):
    execute(url, ('INSERT INTO models (id, name, base_model, task, path, is_active) '
                  'VALUES (?, ?, ?, ?, ?, ?)', (key, name, 'gpt2', 'summarization', path,
                                                active)))


def test_modelforge_models_rows_wait_for_import_and_are_never_registered(cli, registry):
    """ModelForge's current release keeps its models in its own `models` table until
    `modelstore import modelforge`: their folders are not orphans, and --register leaves them
    to the import (else one folder, two rows)."""
    url, root, *_ = registry
    execute(url, FORGE_DDL)
    bot, summ = 'support-bot_' + UUID, 'summarizer_' + UUID.replace('-', '')
    forge_row(url, 'f1', 'support-bot', os.path.join(root, bot))
    forge_row(url, 'f2', 'retired', os.path.join(root, summ, 'final'), active=False)
    code, report, _ = doctor(cli, url, root, '--register')
    assert report['awaiting_import'] == [
        {'path': os.path.join(root, summ),
         'models': [{'id': 'f2', 'name': 'retired', 'active': False}]},
        {'path': os.path.join(root, bot),
         'models': [{'id': 'f1', 'name': 'support-bot', 'active': True}]}]
    registered = [os.path.basename(f['path']) for f in report['fixes'] if f.get('id')]
    assert sorted(registered) == ['broken_1', 'notes-folder'] and report['orphans'] == []
    assert code == 1 and report['clean'] is False
    code, out, _ = cli('doctor', '--database', url, '--models-root', root)
    assert "Waiting for `modelstore import modelforge --database %s` (2): folders that " \
        "ModelForge's models table names" % shlex.quote(mask_url(url)) in out
    assert 'models.id f2 retired (inactive: --include-inactive imports it)' in out
    assert '`modelstore import modelforge --database %s` records the folders waiting for it' \
        % shlex.quote(mask_url(url)) in out
    code, _, _ = cli('import', 'modelforge', '--database', url)
    assert code == 0
    code, report, _ = doctor(cli, url, root)
    assert [os.path.basename(a['path']) for a in report['awaiting_import']] == [summ]
    with modelstore.connect(url) as store:  # One row for the folder: the import's.
        assert [m.model_path for m in store.list_models(model_name='support-bot')] == [
            os.path.join(root, bot)]
    # A ModelForge row written between the report and the fix holds its folder too.
    write(os.path.join(root, 'late_1', 'config.json'), '{}')
    age(os.path.join(root, 'late_1'))
    from modelstore.cli import doctor_command as cli_doctor
    real = cli_doctor.rows_naming

    def forge_first(database, models_root, folder, forge=False):
        forge_row(url, 'f3', 'late', os.path.join(root, 'late_1'))
        return real(database, models_root, folder, forge)
    cli_doctor.rows_naming = forge_first
    try:
        code, report, _ = doctor(cli, url, root, '--register')
    finally:
        cli_doctor.rows_naming = real
    [fix] = report['fixes']
    assert fix['fix'] == 'left_alone' and 'models #f3' in fix['why']


def test_register_takes_the_task_from_modelforge_config(cli, registry):
    url, root, *_ = registry
    bot = os.path.join(root, 'support-bot_' + UUID)
    write(os.path.join(bot, 'modelforge_config.json'),
          json.dumps({'pipeline_task': 'summarization', 'strategy': 'sft'}))
    write(os.path.join(root, 'empty-task_1', 'adapter_config.json'),
          json.dumps({'task_type': 'SEQ_2_SEQ_LM'}))
    write(os.path.join(root, 'empty-task_1', 'modelforge_config.json'),
          json.dumps({'pipeline_task': ''}))
    age(root)
    code, report, _ = doctor(cli, url, root)
    tasks = {o['name']: (o['task'], o['task_from']) for o in report['orphans']}
    assert tasks['support-bot'] == ('summarization', 'modelforge_config.json')
    assert tasks['empty-task_1'] == ('SEQ_2_SEQ_LM', 'adapter_config.json')
    assert tasks['notes-folder'] == (None, None)
    code, report, _ = doctor(cli, url, root, '--register')
    with modelstore.connect(url) as store:
        assert store.get_latest_model('support-bot').task == 'summarization'
        assert store.list_models(task='summarization')[0].model_path == bot
        assert store.get_latest_model('empty-task_1').task == 'SEQ_2_SEQ_LM'


def test_a_delete_in_progress_is_listed_and_not_a_problem(cli, db_url, tmp_path):
    """The trash entry of a delete still running (its owner holds the manifest's lock) is
    'busy': listed, left alone, nothing to fix."""
    import fcntl
    root = str(tmp_path / 'models')
    write(os.path.join(root, 'm_1', 'config.json'), '{}')
    with modelstore.connect(db_url) as store:
        model = old_model(store, 'm', os.path.join(root, 'm_1'))
        doomed = old_model(store, 'doomed', os.path.join(root, 'doomed_1'))
    trash = os.path.join(root, TRASH)
    write(os.path.join(trash, '%d-abc' % doomed.id, 'w.bin'), b'0')
    write(os.path.join(trash, '%d-abc.json' % doomed.id), json.dumps(
        {'id': doomed.id, 'model_path': doomed.model_path, 'directory': doomed.model_path}))
    os.chmod(trash, 0o700)
    with open(os.path.join(trash, '%d-abc.json' % doomed.id)) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with modelstore.connect(db_url) as store:
            store.delete_model(doomed.id)  # As the delete in progress would, next.
        code, report, _ = doctor(cli, db_url, root)
        assert [t['action'] for t in report['trash']] == ['busy']
        assert code == 0 and report['clean'] is True and model
        code, out, _ = cli('doctor', '--database', db_url, '--models-root', root)
        assert '%d-abc: busy: a delete in progress holds it; left alone' % doomed.id in out
        assert 'Rows and folders agree' in out


@pytest.mark.slow
def test_a_folder_of_any_depth_is_walked_without_recursion(tmp_path):
    """A tree 1,100 levels deep (deeper than Python's recursion limit, which os.walk hit)."""
    root = str(tmp_path / 'models')
    levels = [os.path.join(root, 'deep_1')]
    os.makedirs(levels[0])
    for _ in range(1100):  # (os.makedirs and shutil.rmtree recurse too.)
        levels.append(os.path.join(levels[-1], 'd'))
        os.mkdir(levels[-1])
    write(os.path.join(levels[-1], 'w.bin'), b'0' * 7)
    try:
        [orphan] = examine([], ModelsRoot(root).check(), lambda *a: False, min_age=0).orphans
        assert (orphan.size, orphan.problems) == (7, [])
    finally:
        os.unlink(os.path.join(levels[-1], 'w.bin'))
        for level in reversed(levels):
            os.rmdir(level)


def test_a_folder_name_that_is_not_utf8_is_reported_and_not_registered(cli, registry):
    url, root, *_ = registry
    odd = os.path.join(root, os.fsdecode(b'caf\xe9_1'))
    write(os.path.join(odd, 'config.json'), json.dumps({'_name_or_path': 'x/y'}))
    age(odd)
    code, out, _ = cli('doctor', '--database', url, '--models-root', root)
    assert code == 1 and 'caf\\xe9_1  base x/y' in out
    code, report, _ = doctor(cli, url, root, '--register')
    [left] = [f for f in report['fixes'] if f['fix'] == 'left_alone']
    assert left['path'] == odd and left['why'] == (
        'its name is not valid UTF-8, so it cannot be a model_path')
    assert [o['path'] for o in report['orphans']] == [odd]
