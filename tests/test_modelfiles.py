"""delete_model(files=True): only a directory strictly inside the models root goes, with its row,
in an order no crash can break; anything else is refused and nothing is deleted."""
import io
import json
import os
import random

import pytest

import modelstore
from modelstore.registry.modelfiles import TRASH

import crash_delete

MODEL = dict(base_model='b', task='t')


def make_dir(path, files=3):
    os.makedirs(os.path.join(path, 'checkpoint'))
    for i in range(files):
        with open(os.path.join(path, 'checkpoint', 'part-%d.bin' % i), 'wb') as f:
            f.write(b'x' * (100 + i))
    with open(os.path.join(path, 'adapter_config.json'), 'w') as f:
        json.dump({'base_model_name_or_path': 'b'}, f)
    return path


@pytest.fixture
def root(tmp_path):
    path = tmp_path / 'models'
    path.mkdir()
    return str(path)


@pytest.fixture
def store(head_url, root):
    with modelstore.connect(head_url, models_root=root) as s:
        yield s


def add(store, path):
    return store.add_model(model_name=os.path.basename(path) or 'm', model_path=path, **MODEL)


def test_the_directory_goes_with_the_row_and_the_root_is_left_as_it_was(store, root):
    keep = make_dir(os.path.join(root, 'keep_1'))
    gone = make_dir(os.path.join(root, 'gone_2'))
    a, b = add(store, keep), add(store, gone)
    assert store.delete_model(b.id, files=True) == gone
    assert not os.path.exists(gone) and sorted(os.listdir(root)) == ['keep_1']
    with pytest.raises(modelstore.NotFound):
        store.get_model(b.id)
    assert store.get_model(a.id).model_path == keep and os.path.isdir(keep)


def test_without_files_the_directory_stays(store, root):
    path = make_dir(os.path.join(root, 'm_1'))
    assert store.delete_model(add(store, path).id) is None
    assert os.path.isdir(path) and store.count_models() == 0


def test_a_row_whose_directory_is_already_gone_is_deleted(store, root):
    model = add(store, os.path.join(root, 'never-written'))
    assert store.delete_model(model.id, files=True) is None
    assert store.count_models() == 0


@pytest.mark.parametrize('case', ['outside', 'root', 'dotdot', 'symlink', 'through-symlink',
                                  'relative', 'file', 'trash', 'empty'])
def test_a_path_not_strictly_inside_the_root_is_refused_and_nothing_is_deleted(
        store, root, tmp_path, case):
    outside = make_dir(str(tmp_path / 'elsewhere' / 'victim'))
    os.symlink(os.path.dirname(outside), os.path.join(root, 'link'))
    inside = make_dir(os.path.join(root, 'real_1'))
    os.symlink(inside, os.path.join(root, 'alias'))
    with open(os.path.join(root, 'notes.txt'), 'w') as f:
        f.write('x')
    os.makedirs(os.path.join(root, TRASH, 'x'))
    path, why = {
        'outside': (outside, 'is outside the models root'),
        'root': (root, 'is the models root itself'),
        'dotdot': (os.path.join(root, '..', 'elsewhere', 'victim'), "'..'"),
        'symlink': (os.path.join(root, 'alias'), 'is a symlink'),
        'through-symlink': (os.path.join(root, 'link', 'victim'),
                            "is refused: '%s' is a symlink" % os.path.join(root, 'link')),
        'relative': ('models/real_1', 'is not an absolute path'),
        'file': (os.path.join(root, 'notes.txt'), 'is not a directory'),
        'trash': (os.path.join(root, TRASH, 'x'), 'trash'),
        'empty': ('', 'is not a path'),
    }[case]
    model = store.add_model(model_name='m', model_path=path or 'placeholder', **MODEL)
    if not path:  # A row whose path is empty (written by another app).
        store.FineTunedModel.update(model_path='').where(
            store.FineTunedModel.id == model.id).execute()
    before = sorted(os.walk(str(tmp_path)))
    with pytest.raises(modelstore.ValidationError, match='model_path') as info:
        store.delete_model(model.id, files=True)
    assert why in str(info.value)
    assert store.get_model(model.id).model_path == path  # The row stays,
    assert sorted(os.walk(str(tmp_path))) == before      # and so does every file.


def test_no_models_root_refuses_deleting_files(db_url, tmp_path, monkeypatch):
    monkeypatch.delenv('MODELSTORE_MODELS_ROOT', raising=False)
    path = make_dir(str(tmp_path / 'm_1'))
    with modelstore.connect(db_url) as store:
        model = add(store, path)
        with pytest.raises(modelstore.ValidationError, match='models root'):
            store.delete_model(model.id, files=True)
        assert store.get_model(model.id) and os.path.isdir(path)
        with pytest.raises(modelstore.ValidationError, match='files'):
            store.delete_model(model.id, files='yes')


def test_the_root_comes_from_the_environment_and_may_be_a_symlink(db_url, tmp_path,
                                                                  monkeypatch):
    real = tmp_path / 'real-root'
    real.mkdir()
    os.symlink(str(real), str(tmp_path / 'root-link'))
    monkeypatch.setenv('MODELSTORE_MODELS_ROOT', str(tmp_path / 'root-link'))
    path = make_dir(str(tmp_path / 'root-link' / 'm_1'))
    with modelstore.connect(db_url) as store:
        assert store.delete_model(add(store, path).id, files=True) == str(real / 'm_1')
    assert os.listdir(str(real)) == []
    with pytest.raises(modelstore.ValidationError, match='models_root'):
        modelstore.connect(db_url, models_root='')


def test_a_missing_root_is_named(db_url, tmp_path):
    with modelstore.connect(db_url, models_root=str(tmp_path / 'nowhere')) as store:
        model = add(store, str(tmp_path / 'nowhere' / 'm'))
        with pytest.raises(modelstore.ValidationError, match='nowhere is not a directory'):
            store.delete_model(model.id, files=True)


def interrupted(store, root, model, row_deleted):
    """The state a kill -9 leaves after the rename into the trash (and maybe the row's
    delete): the directory in the trash under a manifest."""
    trash = os.path.join(root, TRASH)
    os.makedirs(trash, exist_ok=True)
    os.chmod(trash, 0o700)  # (A trash is private, or unused.)
    token = '%d-feedbeef' % model.id
    with open(os.path.join(trash, token + '.json'), 'w') as f:
        json.dump({'id': model.id, 'model_path': model.model_path,
                   'directory': model.model_path}, f)
    os.rename(model.model_path, os.path.join(trash, token))
    if row_deleted:
        store.delete_model(model.id)
    return token


def test_empty_trash_restores_a_stored_models_files_and_removes_a_deleted_ones(store, root):
    kept = add(store, make_dir(os.path.join(root, 'kept_1')))
    gone = add(store, make_dir(os.path.join(root, 'gone_2')))
    interrupted(store, root, kept, row_deleted=False)
    interrupted(store, root, gone, row_deleted=True)
    with open(os.path.join(root, TRASH, '9-cafe.json.partial'), 'w') as f:
        f.write('{"id": 9')
    os.makedirs(os.path.join(root, TRASH, 'mystery'))
    planned = store.empty_trash(dry_run=True)
    assert os.path.isdir(os.path.join(root, TRASH, '%d-feedbeef' % kept.id))  # Dry: unchanged.
    done = store.empty_trash()
    assert [a for a, _, _ in planned] == [a for a, _, _ in done]
    assert sorted((action, token) for action, token, _ in done) == sorted([
        ('discard', '9-cafe.json.partial'), ('keep', 'mystery'),
        ('restore', '%d-feedbeef' % kept.id), ('remove', '%d-feedbeef' % gone.id)])
    assert os.path.isdir(os.path.join(kept.model_path, 'checkpoint'))
    assert not os.path.exists(gone.model_path)
    assert os.listdir(os.path.join(root, TRASH)) == ['mystery']  # Not ours: left alone.


def test_a_failed_row_delete_puts_the_files_back(store, root, monkeypatch):
    model = add(store, make_dir(os.path.join(root, 'm_1')))

    real = store.calls.run

    def run(what, body, **kwargs):
        if what == 'delete_model' and kwargs.get('write'):  # The row's DELETE, after the move.
            assert os.path.isdir(os.path.join(root, TRASH))
            raise modelstore.StorageError('disk full')
        return real(what, body, **kwargs)
    monkeypatch.setattr(store.calls, 'run', run)
    with pytest.raises(modelstore.StorageError, match='disk full'):
        store.delete_model(model.id, files=True)
    monkeypatch.undo()
    assert os.path.isdir(os.path.join(model.model_path, 'checkpoint'))
    assert store.get_model(model.id) and not os.path.exists(os.path.join(root, TRASH))


@pytest.mark.slow
def test_kill_9_during_delete_with_files_leaves_the_row_with_its_files_or_neither(db_url):
    if db_url.startswith('sqlite'):
        db_url = None  # A file per trial.
    seed = random.randrange(1 << 30)
    out = io.StringIO()
    failed = crash_delete.run(12, models=8, seed=seed, database=db_url, out=out)
    assert failed == 0, out.getvalue()
