"""Lineage and archived models (0014, issue 29): parent_id walked by lineage(), kept sound on
every write; archive_model sets a model aside -- out of listings and of NAME (its latest),
still found by id and NAME@VERSION -- and restore_model brings it back, each an event."""
import json

import pytest

import modelstore
from modelstore import NotFound, ValidationError

from conftest import changes, execute

MODEL = dict(base_model='b', task='t', model_path='/p')
SHA = 'ab' * 32


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url, actor='ci') as s:
        yield s


def _chain(store):
    base = store.add_model(model_name='base', **MODEL)
    tuned = store.add_model(model_name='tuned', parent_id=base.id, dataset_uri='s3://d/v1',
                            dataset_sha256=SHA.upper(), source_commit='c0ffee',
                            run_id='run-7', **MODEL)
    again = store.add_model(model_name='tuned', parent_id=tuned.id, **MODEL)
    return base, tuned, again


def test_lineage_walks_from_the_model_to_its_first_ancestor(store):
    base, tuned, again = _chain(store)
    assert [m.id for m in store.lineage(again.id)] == [again.id, tuned.id, base.id]
    got = store.get_model(tuned.id)
    assert (got.dataset_uri, got.dataset_sha256, got.source_commit, got.run_id) == (
        's3://d/v1', SHA, 'c0ffee', 'run-7')  # The digest is stored in lower case.
    assert store.lineage(999) == []
    store.delete_model(base.id)  # A parent deleted since ends the walk.
    chain = store.lineage(again.id)
    assert [m.id for m in chain] == [again.id, tuned.id] and chain[-1].parent_id == base.id


@pytest.mark.parametrize('call, says', [
    (lambda s, ids: s.add_model(model_name='x', parent_id=999, **MODEL),
     'no model with id 999 to be the parent'),
    (lambda s, ids: s.update_model(ids[0], parent_id=ids[2]),
     'cannot be the parent of model %(0)d: it descends from it'),
    (lambda s, ids: s.update_model(ids[0], parent_id=ids[0]), 'cannot be its own parent'),
    (lambda s, ids: s.add_models([dict(model_name='y', **MODEL),
                                  dict(model_name='z', parent_id=777, **MODEL)]),
     'no model with id 777 to be the parent of a row of add_models'),
    # A row of the same call as a parent: the ids it is about to get could close a loop.
    (lambda s, ids: s.add_models([dict(model_name='y', parent_id=ids[2] + 2, **MODEL),
                                  dict(model_name='z', parent_id=ids[2] + 1, **MODEL)]),
     'no model with id %(3)d to be the parent of a row of add_models'),
    (lambda s, ids: s.add_model(model_name='x', dataset_sha256='xyz', **MODEL),
     'must be a SHA-256 digest'),
    (lambda s, ids: s.add_model(model_name='x', parent_id=0, **MODEL), 'between 1 and'),
])
def test_a_bad_parent_or_digest_is_refused_and_nothing_changes(store, call, says):
    ids = [m.id for m in _chain(store)]
    before = [(m.id, m.parent_id) for m in store.list_models(archived=None)]
    with pytest.raises(ValidationError) as err:
        call(store, ids)
    assert says % {'0': ids[0], '3': ids[2] + 2} in str(err.value)
    assert [(m.id, m.parent_id) for m in store.list_models(archived=None)] == before


def test_a_loop_made_by_hand_is_reported_not_followed(store, head_url):
    base, tuned, again = _chain(store)
    execute(head_url, 'UPDATE fine_tuned_models SET parent_id = %d WHERE id = %d'
            % (again.id, base.id))
    with pytest.raises(ValidationError, match='the lineage of model %d loops back to model'
                                              % again.id):
        store.lineage(again.id)


def test_an_archived_model_is_left_out_but_keeps_its_number(store):
    base, tuned, again = _chain(store)
    archived = store.archive_model(again.id)
    assert archived.archived_at is not None and archived.version == 2
    assert [m.id for m in store.list_models()] == [tuned.id, base.id]
    assert store.count_models() == 2 and store.count_models(archived=True) == 1
    assert [m.id for m in store.list_models(archived=True)] == [again.id]
    assert len(store.list_models(archived=None)) == 3
    assert [m.id for m in store.iter_models(archived=None)] == [again.id, tuned.id, base.id]
    assert store.get_latest_model('tuned').id == tuned.id  # v1: v2 is archived.
    assert store.get_latest_model('tuned', include_archived=True).id == again.id
    assert store.get_model(again.id).id == again.id
    assert store.get_model('tuned@2').id == again.id  # Still resolves by NAME@VERSION.
    store.archive_model(tuned.id)
    with pytest.raises(NotFound, match="every version of the model named 'tuned' is "
                                       "archived"):
        store.get_latest_model('tuned')
    store.archive_model(tuned.id)  # Again: nothing to do, no event.
    store.restore_model(again.id)
    assert store.get_latest_model('tuned').id == again.id
    assert [(e.kind, e.model_id) for e in changes(store)] == [
        ('model.archived', again.id), ('model.archived', tuned.id),
        ('model.restored', again.id)]
    assert changes(store)[0].actor == 'ci' and changes(store)[0].before == {
        'archived_at': None}


def test_a_model_an_alias_points_at_is_not_archived(store):
    base, tuned, again = _chain(store)
    store.set_alias('tuned', 'prod', 2)
    with pytest.raises(ValidationError, match='tuned@prod points at: .*nothing was archived'):
        store.archive_model(again.id)
    assert store.get_model(again.id).archived_at is None
    with pytest.raises(ValidationError, match='archived_at: is set by archive_model'):
        store.update_model(again.id, archived_at='2026-01-01T00:00:00')
    with pytest.raises(NotFound):
        store.archive_model(999)


def test_the_archive_and_lineage_commands(store, head_url, cli):
    base, tuned, again = _chain(store)
    code, out, err = cli('models', 'archive', 'tuned@2', '--database', head_url, '--json')
    assert code == 0 and json.loads(out)[0]['archived_at'], err
    code, out, err = cli('models', 'list', '--database', head_url, '--json')
    assert [m['id'] for m in json.loads(out)] == [tuned.id, base.id]
    code, out, err = cli('models', 'list', '--archived', '--database', head_url, '--json')
    assert [m['id'] for m in json.loads(out)] == [again.id]
    code, out, err = cli('models', 'list', '--include-archived', '--database', head_url,
                         '--json')
    assert len(json.loads(out)) == 3
    code, out, err = cli('models', 'restore', str(again.id), '--database', head_url)
    assert code == 0 and 'archived_at' in out
    code, out, err = cli('models', 'lineage', 'tuned@2', '--database', head_url)
    lines = out.splitlines()
    assert lines[0].split() == ['ID', 'NAME', 'VER', 'PARENT', 'DATASET', 'COMMIT', 'RUN']
    assert [line.split()[0] for line in lines[1:]] == [str(again.id), str(tuned.id),
                                                      str(base.id)]
    code, out, err = cli('models', 'lineage', 'tuned@9', '--database', head_url)
    assert code == 2 and 'no version 9' in err
