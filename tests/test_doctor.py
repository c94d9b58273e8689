"""modelstore doctor on a real folder tree: orphan folders (seed 000's lost models), dangling rows,
rows outside the root, trash; the fixes, each saying what it changed; reads that never write."""
import datetime
import hashlib
import json
import os
import shutil
import tempfile

import pytest

import modelstore
from modelstore.registry.doctor import examine
from modelstore.registry.modelfiles import TRASH, ModelsRoot

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
def registry(db_url, tree, tmp_path):
    root, _ = tree
    old = dict(creation_date=OLD, updated_at=OLD)
    with modelstore.connect(db_url) as store:
        known = store.add_model(model_name='known', base_model='b', task='t',
                                model_path=os.path.join(root, 'known_1'), **old)
        gone = store.add_model(model_name='gone', base_model='b', task='t',
                               model_path=os.path.join(root, 'gone_2'), **old)
        far = store.add_model(model_name='far', base_model='b', task='t',
                              model_path=str(tmp_path / 'elsewhere'), **old)
    return db_url, root, known.id, gone.id, far.id


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
    assert 'Fix: --register records the orphans' in out
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
