"""Issue 25: deleting model files never touches anything outside the models root -- links in
every spelling, races with a second process, forged trash manifests, mount points, folders other
rows use, system roots, a recovery running beside live deletes, and errors that say what is
left where. Each case is a hostile input; each asserts that nothing outside was touched."""
import contextlib
import fcntl
import io
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

import modelstore
from modelstore.registry.modelfiles import TRASH
from modelstore.shared import confine

import race_delete

from test_modelfiles import MODEL, add, make_dir, root, store  # noqa: F401 (fixtures)

AS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not AS_ROOT, reason='needs root (mount, chattr, another uid)')


@pytest.fixture
def outside(tmp_path):
    """A directory beside the root, with files a wrong delete would remove."""
    return make_dir(str(tmp_path / 'outside' / 'victim'))


def everything(top):
    """Every file under ``top`` by content -- except SQLite's wal-index (``-shm``), which a
    reader rewrites (its read marks) once the registry's WAL holds a write, such as the
    client registration of modelstore.engine.clients: it is no data."""
    return {path: digest for path, digest in race_delete.snapshot(top).items()
            if not path.endswith('-shm')}


@contextlib.contextmanager
def bind_mount(source, target):
    os.makedirs(target, exist_ok=True)
    subprocess.run(['mount', '--bind', source, target], check=True)
    try:
        yield
    finally:
        subprocess.run(['umount', target], check=True)


# -- 1. links, in every spelling ---------------------------------------------------------------

@pytest.mark.parametrize('spelling', ['link/', 'link/.', 'link//', 'link/./', 'link'])
def test_a_link_to_another_model_in_any_spelling_deletes_nothing(store, root, spelling):
    b = add(store, make_dir(os.path.join(root, 'b_1')))
    os.symlink(b.model_path, os.path.join(root, 'link'))
    a = store.add_model(model_name='a', model_path=os.path.join(root, spelling), **MODEL)
    before = everything(root)
    with pytest.raises(modelstore.ValidationError, match='model_path') as info:
        store.delete_model(a.id, files=True)
    assert 'symlink' in str(info.value) or 'model %d' % b.id in str(info.value)
    assert everything(root) == before
    assert store.get_model(a.id) and store.get_model(b.id)


def test_a_link_on_the_way_down_is_refused_in_any_spelling(store, root, outside):
    os.symlink(os.path.dirname(outside), os.path.join(root, 'team'))
    for spelling in ('team/victim', 'team/victim/', 'team//victim/.'):
        model = store.add_model(model_name='m', model_path=os.path.join(root, spelling), **MODEL)
        with pytest.raises(modelstore.ValidationError, match="'%s' is a symlink"
                           % os.path.join(root, 'team')):
            store.delete_model(model.id, files=True)
        store.delete_model(model.id)  # (The next spelling would share its folder.)
    assert os.path.isdir(os.path.join(outside, 'checkpoint'))


# -- 2. and 7. a real race: swapper, recovery loop, deleters ---------------------------------

@pytest.mark.slow
def test_deletes_racing_a_symlink_swapper_and_an_empty_trash_loop(db_url):
    out = io.StringIO()
    problems = race_delete.run(models=120, deleters=2, seed=random.randrange(1 << 30),
                               database=None if db_url.startswith('sqlite') else db_url,
                               out=out)
    assert problems == [], out.getvalue()
    assert 'outside files touched: 0; rows inconsistent: 0' in out.getvalue()


def test_a_delete_in_progress_is_left_alone_by_empty_trash(store, root):
    """Its owner holds the manifest's lock: the entry is 'busy', whatever it looks like."""
    model = add(store, make_dir(os.path.join(root, 'm_1')))
    trash = os.path.join(root, TRASH)
    os.makedirs(trash)
    os.chmod(trash, 0o700)  # (A trash is private, or unused.)
    token = '%d-0123456789ab' % model.id
    manifest = os.path.join(trash, token + '.json')
    with open(manifest, 'w') as f:
        json.dump({'id': model.id, 'model_path': model.model_path,
                   'directory': model.model_path}, f)
    os.rename(model.model_path, os.path.join(trash, token))
    store.FineTunedModel.delete().where(store.FineTunedModel.id == model.id).execute()
    held = os.open(manifest, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # What a live delete holds (another open: a conflict).
    try:
        assert [a for a, _, _ in store.empty_trash()] == ['busy']
        assert os.path.isdir(os.path.join(trash, token, 'checkpoint'))
    finally:
        os.close(held)
    assert [a for a, _, _ in store.empty_trash()] == ['remove']  # Its owner died: finished.
    assert os.listdir(root) == []


# -- 3. forged and malformed manifests ---------------------------------------------------------

def _forge(root, outside, kind):
    trash = os.path.join(root, TRASH)
    os.makedirs(os.path.join(trash, '7-forged', 'checkpoint'))
    os.chmod(trash, 0o700)
    good = {'id': 7, 'model_path': '/x', 'directory': os.path.join(root, 'back')}
    path = os.path.join(trash, '7-forged.json')
    content = {
        'outside': dict(good, directory=os.path.join(os.path.dirname(outside), 'new')),
        'dotdot': dict(good, directory=os.path.join(root, '..', 'escaped')),
        'list': [7, '/x'], 'id-text': dict(good, id='7'), 'id-bool': dict(good, id=True),
        'id-huge': dict(good, id=10 ** 40), 'no-directory': {'id': 7, 'model_path': '/x'},
        'trash': dict(good, directory=os.path.join(root, TRASH, 'x')),
        'other-id': dict(good, id=8), 'surrogate': dict(good, directory=root + '/\ud800'),
        'other-folder': dict(good, model_path=os.path.join(root, 'm2'),
                             directory=os.path.join(root, 'm2', 'planted')),
    }.get(kind)
    if kind == 'nested':
        content = '[' * 60000
    elif kind == 'huge':
        content = json.dumps(dict(good, pad='x' * 100000))
    elif kind == 'fifo':
        os.mkfifo(path)
        return
    elif kind == 'link':
        os.symlink(os.path.join(os.path.dirname(outside), 'x.json'), path)
        return
    elif kind == 'directory':
        os.mkdir(path)
        return
    with open(path, 'w') as f:
        f.write(content if isinstance(content, str) else json.dumps(content))


@pytest.mark.parametrize('kind', ['outside', 'dotdot', 'list', 'id-text', 'id-bool', 'id-huge',
                                  'no-directory', 'trash', 'other-id', 'surrogate', 'nested',
                                  'other-folder',
                                  'huge', 'fifo', 'link', 'directory'])
def test_a_forged_manifest_moves_nothing_and_is_reported_by_name(store, root, outside, kind,
                                                                 cli, db_url):
    _forge(root, outside, kind)
    before = everything(os.path.dirname(root))
    for dry_run in (True, False):
        actions = store.empty_trash(dry_run=dry_run)
        assert [(a, t) for a, t, _ in actions] == [('keep', '7-forged')], actions
        assert everything(os.path.dirname(root)) == before
    code, out, err = cli('doctor', '--database', db_url, '--models-root', root, '--empty-trash',
                         '--min-age', '0')
    assert code == 1 and 'unexpected' not in err, err  # Reported, not a crash.
    assert '7-forged' in out
    assert everything(os.path.dirname(root)) == before


# -- 4. mount points ---------------------------------------------------------------------------

@needs_root
def test_a_bind_mount_inside_a_model_folder_refuses_the_delete(store, root, outside):
    model = add(store, make_dir(os.path.join(root, 'm_1')))
    before = everything(outside)
    with bind_mount(outside, os.path.join(model.model_path, 'data')):
        with pytest.raises(modelstore.ValidationError, match='mount point'):
            store.delete_model(model.id, files=True)
        assert store.get_model(model.id)
    assert everything(outside) == before and os.path.isdir(model.model_path)


@needs_root
def test_removal_never_enters_a_mount_of_the_same_filesystem(tmp_path, outside):
    """The check below the pre-check: a mount that appears during the removal is told by its
    mount id (same device), left, and named."""
    top = make_dir(str(tmp_path / 'doomed'))
    before = everything(outside)
    with bind_mount(os.path.dirname(outside), os.path.join(top, 'deep', 'mnt')):
        fd = confine.open_top(str(tmp_path))
        try:
            left = confine.remove_tree(fd, 'doomed', confine.where(fd), str(top))
        finally:
            os.close(fd)
        assert left and 'mount point' in left[0] and '/deep/mnt' in left[0]
    assert everything(outside) == before
    assert not os.path.exists(os.path.join(top, 'checkpoint'))  # The rest went.


@needs_root
def test_a_bind_mounted_trash_is_not_used(store, root, outside):
    model = add(store, make_dir(os.path.join(root, 'm_1')))
    before = everything(os.path.dirname(outside))
    with bind_mount(os.path.dirname(outside), os.path.join(root, TRASH)):
        with pytest.raises(modelstore.StorageError, match='mount point'):
            store.delete_model(model.id, files=True)
        with pytest.raises(modelstore.StorageError, match='mount point'):
            store.empty_trash()
    assert everything(os.path.dirname(outside)) == before
    assert store.get_model(model.id) and os.path.isdir(model.model_path)


# -- 5. a folder another row uses -------------------------------------------------------------

@pytest.mark.parametrize('other', ['same', 'same-slash', 'inside', 'holds', 'alias', 'dotdot',
                                   'root'])
def test_a_folder_another_row_uses_is_refused_naming_the_row(store, root, other):
    path = make_dir(os.path.join(root, 'team', 'm_1'))
    os.symlink(path, os.path.join(root, 'alias'))
    model = add(store, path)
    other_path = {
        'same': path, 'same-slash': path + '/', 'inside': os.path.join(path, 'checkpoint'),
        'holds': os.path.join(root, 'team'), 'alias': os.path.join(root, 'alias'),
        'dotdot': os.path.join(root, 'team', 'x', '..', 'm_1'), 'root': root + '/.',
    }[other]
    other_model = store.add_model(model_name='other', model_path=other_path, **MODEL)
    before = everything(root)
    with pytest.raises(modelstore.ValidationError, match='model %d' % other_model.id):
        store.delete_model(model.id, files=True)
    assert everything(root) == before and store.get_model(model.id)


@pytest.mark.parametrize('where', ['outside', 'sibling'])
def test_a_row_reaching_the_folder_through_a_link_anywhere_refuses_the_delete(
        store, root, tmp_path, where):
    """A 'current -> model' link, outside the root or in another folder of it."""
    path = make_dir(os.path.join(root, 'victim_1'))
    model = add(store, path)
    links = str(tmp_path / 'deployments') if where == 'outside' else os.path.join(root,
                                                                              'serving', 'prod')
    os.makedirs(links)
    os.symlink(path, os.path.join(links, 'current'))
    other = store.add_model(model_name='serving', model_path=os.path.join(links, 'current'),
                            **MODEL)
    with pytest.raises(modelstore.ValidationError, match='model %d' % other.id):
        store.delete_model(model.id, files=True)
    assert os.path.isdir(os.path.join(path, 'checkpoint'))


def test_a_row_for_the_folder_added_during_the_delete_keeps_the_files(store, root,
                                                                      monkeypatch):
    """The check runs again in the row delete's transaction; the files go back."""
    model = add(store, make_dir(os.path.join(root, 'm_1')))
    real = store.calls.run

    def run(what, body, **kwargs):
        if what == 'delete_model' and kwargs.get('write'):
            monkeypatch.undo()
            add(store, model.model_path)  # Registered again meanwhile.
        return real(what, body, **kwargs)
    monkeypatch.setattr(store.calls, 'run', run)
    with pytest.raises(modelstore.ValidationError, match='also the folder of'):
        store.delete_model(model.id, files=True)
    assert os.path.isdir(os.path.join(model.model_path, 'checkpoint'))
    assert store.get_model(model.id) and os.listdir(root) == ['m_1']


def test_a_folder_above_that_is_missing_deletes_nothing(store, root):
    """A parent renamed away for an instant looks like a tree that is gone: refused."""
    model = store.add_model(model_name='m', model_path=os.path.join(root, 'team', 'm_1'),
                            **MODEL)
    with pytest.raises(modelstore.StorageError, match='a folder above .* is missing'):
        store.delete_model(model.id, files=True)
    assert store.get_model(model.id)


def test_a_second_delete_of_the_same_model_removes_the_files_it_holds(store, root,
                                                                     monkeypatch):
    """Two deletes of one model: the one that finds the row gone after moving the folder does
    not put the folder back for a row that is no more."""
    model = add(store, make_dir(os.path.join(root, 'm_1')))
    real = store.calls.run

    def run(what, body, **kwargs):
        if what == 'delete_model' and kwargs.get('write'):
            store.FineTunedModel.delete().where(store.FineTunedModel.id == model.id).execute()
        return real(what, body, **kwargs)
    monkeypatch.setattr(store.calls, 'run', run)
    assert store.delete_model(model.id, files=True) == model.model_path
    assert os.listdir(root) == [] and store.count_models() == 0


# -- 6. roots ----------------------------------------------------------------------------------

@pytest.mark.parametrize('bad', ['/', '//', '/usr', '/usr/local/lib', '/etc/ssl', '/var/lib',
                                 '/var/lib/dpkg', '/var/mail', '/run/user',
                                 '/home/someone', '~', '/tmp/a\0b', '/proc/self/root'])
def test_a_system_directory_or_a_home_is_never_a_models_root(db_url, bad):
    with pytest.raises(modelstore.ValidationError, match='models_root'):
        modelstore.connect(db_url, models_root=bad)


@needs_root
def test_a_bind_mount_of_the_filesystem_root_is_refused(db_url, tmp_path):
    with bind_mount('/', str(tmp_path / 'slash')):
        with pytest.raises(modelstore.ValidationError, match='the system directory / by'):
            modelstore.connect(db_url, models_root=str(tmp_path / 'slash'))


# -- 8. errors that say what is left where ----------------------------------------------------

@pytest.mark.slow
def test_a_tree_1100_levels_deep_is_removed_without_recursion(store, root):
    path = make_dir(os.path.join(root, 'deep_1'))
    fd = os.open(path, os.O_RDONLY)
    for _ in range(1100):  # (Built through handles: the path is longer than PATH_MAX.)
        os.mkdir('d', dir_fd=fd)
        child = os.open('d', os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open('leaf', os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)
    model = add(store, path)
    assert store.delete_model(model.id, files=True) == path
    assert os.listdir(root) == [] and store.count_models() == 0


@needs_root
def test_files_that_cannot_be_removed_are_named_never_reported_removed(store, root, cli,
                                                                       db_url):
    model = add(store, make_dir(os.path.join(root, 'm_1')))
    stuck = os.path.join(model.model_path, 'checkpoint', 'part-0.bin')
    subprocess.run(['chattr', '+i', stuck], check=True)
    try:
        with pytest.raises(modelstore.FilesLeft) as info:
            store.delete_model(model.id, files=True)
        message = str(info.value)
        assert 'model %d was deleted' % model.id in message and 'part-0.bin' in message
        assert info.value.entry.startswith(os.path.join(root, TRASH))
        with pytest.raises(modelstore.NotFound):
            store.get_model(model.id)
        assert [a for a, _, _ in store.empty_trash()] == ['keep']  # Never 'remove'd.
        code, out, _ = cli('doctor', '--database', db_url, '--models-root', root,
                           '--min-age', '0')
        assert code == 1 and '%d-' % model.id in out  # Still in the trash: never clean.
    finally:
        for base, _, files in os.walk(os.path.join(root, TRASH)):
            for name in files:
                subprocess.run(['chattr', '-i', os.path.join(base, name)], check=True)
    assert [a for a, _, _ in store.empty_trash()] == ['remove']
    assert os.listdir(root) == []


@needs_root
def test_models_delete_files_exits_non_zero_naming_what_is_left(store, root, cli, db_url):
    model = add(store, make_dir(os.path.join(root, 'm_1')))
    stuck = os.path.join(model.model_path, 'adapter_config.json')
    subprocess.run(['chattr', '+i', stuck], check=True)
    try:
        code, out, err = cli('models', 'delete', str(model.id), '--files', '--yes',
                             '--models-root', root, '--database', db_url)
        assert code != 0 and 'removed' not in out
        assert 'model %d was deleted' % model.id in err and 'adapter_config.json' in err
    finally:
        for base, _, files in os.walk(os.path.join(root, TRASH)):
            for name in files:
                subprocess.run(['chattr', '-i', os.path.join(base, name)], check=True)
    store.empty_trash()


def test_a_trash_others_can_write_in_is_not_trusted(store, root, outside):
    model = add(store, make_dir(os.path.join(root, 'm_1')))
    _forge(root, outside, 'outside')
    os.chmod(os.path.join(root, TRASH), 0o777)  # Anyone could have planted its manifests.
    before = everything(root), everything(os.path.dirname(outside))
    with pytest.raises(modelstore.StorageError, match='mode 777'):
        store.delete_model(model.id, files=True)
    with pytest.raises(modelstore.StorageError, match='mode 777'):
        store.empty_trash()
    assert [a for a, _, _ in store.empty_trash(dry_run=True)] == ['keep']
    assert (everything(root), everything(os.path.dirname(outside))) == before


def test_a_trash_that_cannot_be_used_is_a_storage_error_and_nothing_is_deleted(store, root):
    model = add(store, make_dir(os.path.join(root, 'm_1')))
    with open(os.path.join(root, TRASH), 'w') as f:
        f.write('not a directory')
    with pytest.raises(modelstore.StorageError, match='is not a directory; it is not used; '
                                                      'nothing was deleted'):
        store.delete_model(model.id, files=True)
    assert store.get_model(model.id) and os.path.isdir(model.model_path)
    assert [a for a, _, _ in store.empty_trash(dry_run=True)] == ['keep']


@needs_root
def test_an_unwritable_root_is_a_storage_error_naming_it(db_url, root):
    """Run without capabilities (root would bypass the permissions): no raw PermissionError,
    and nothing deleted, row included."""
    if shutil.which('setpriv') is None:
        pytest.skip('setpriv (util-linux) is needed to drop capabilities')
    with modelstore.connect(db_url, models_root=root) as store:
        model = add(store, make_dir(os.path.join(root, 'm_1')))
    os.chmod(root, 0o555)
    code = ('import modelstore, sys\n'
            's = modelstore.connect(sys.argv[1], models_root=sys.argv[2])\n'
            'try:\n    s.delete_model(%d, files=True)\n'
            'except modelstore.StorageError as e:\n    print(e)\n' % model.id)
    try:
        done = subprocess.run(['setpriv', '--bounding-set=-all', '--inh-caps=-all',
                               sys.executable, '-c', code, db_url, root],
                              capture_output=True, text=True, cwd=os.path.dirname(root))
    finally:
        os.chmod(root, 0o755)
    assert done.returncode == 0, done.stderr
    assert 'Permission denied' in done.stdout and 'nothing was deleted' in done.stdout
    with modelstore.connect(db_url, models_root=root) as store:
        assert store.get_model(model.id)
    assert os.path.isdir(os.path.join(root, 'm_1', 'checkpoint'))


@pytest.mark.sqlite_only  # (A server refuses NUL in text; the check is the same code.)
def test_a_nul_byte_is_refused_by_name(store, root):
    model = add(store, make_dir(os.path.join(root, 'm_1')))
    store.FineTunedModel.update(model_path=model.model_path + '\0x').where(
        store.FineTunedModel.id == model.id).execute()
    with pytest.raises(modelstore.ValidationError, match='NUL byte'):
        store.delete_model(model.id, files=True)
    assert os.path.isdir(os.path.join(root, 'm_1'))


def test_doctor_prints_control_characters_escaped(cli, db_url, root):
    """A folder name carrying terminal escapes cannot retitle the terminal or rewrite lines."""
    evil = 'evil\x1b]0;pwned\x07\x1b[2K_1'
    make_dir(os.path.join(root, evil))
    modelstore.connect(db_url).close()  # (A registry to compare with.)
    code, out, err = cli('doctor', '--database', db_url, '--models-root', root, '--min-age', '0')
    assert code == 1 and '\x1b' not in out and '\x07' not in out, out
    assert 'evil\\x1b]0;pwned\\x07\\x1b[2K_1' in out
