"""Tags (0016, issue 29): key/value pairs per model version, set and removed as events, and
list_models(tags=...) held to a Python oracle on random data on every backend."""
import datetime
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import modelstore
from modelstore import NotFound, ValidationError
from modelstore.registry import listings

from conftest import changes

MODEL = dict(base_model='b', task='t', model_path='/p')


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url, actor='ci') as s:
        yield s


def test_tags_are_set_changed_removed_and_recorded(store):
    m = store.add_model(model_name='m', **MODEL)
    assert store.set_tags(m.id, {'stage': 'eval', 'team': 'nlp'}) == {'stage': 'eval',
                                                                       'team': 'nlp'}
    assert store.set_tags(m.id, {'stage': 'prod'}) == {'stage': 'prod', 'team': 'nlp'}
    assert store.set_tags(m.id, {'stage': 'prod'}) == {'stage': 'prod', 'team': 'nlp'}
    assert store.delete_tags(m.id, ['team']) == {'stage': 'prod'}
    assert store.get_tags(m.id) == {'stage': 'prod'}
    events = changes(store)
    assert [(e.kind, e.before, e.after) for e in events] == [
        ('tags.changed', {}, {'stage': 'eval', 'team': 'nlp'}),
        ('tags.changed', {'stage': 'eval', 'team': 'nlp'}, {'stage': 'prod', 'team': 'nlp'}),
        ('tags.changed', {'stage': 'prod', 'team': 'nlp'}, {'stage': 'prod'})]
    assert events[0].model_name == 'm' and events[0].version == 1 and events[0].actor == 'ci'


@pytest.mark.parametrize('call, error, says', [
    (lambda s, i: s.set_tags(i, {'': 'x'}), ValidationError, 'tags key: must not be empty'),
    (lambda s, i: s.set_tags(i, {'k': None}), ValidationError, "tags['k']: must be text"),
    (lambda s, i: s.set_tags(i, {'k': 'v' * 256}), ValidationError, 'the limit is 255'),
    (lambda s, i: s.set_tags(i, ['k']), ValidationError, 'must be a dict'),
    (lambda s, i: s.delete_tags(i, 'k'), ValidationError, 'must be a list of tag keys'),
    (lambda s, i: s.delete_tags(i, ['k', 'nope']), NotFound, "has no tag 'nope'"),
    (lambda s, i: s.set_tags(999, {'a': 'b'}), NotFound, 'no fine-tuned model with id 999'),
    (lambda s, i: s.list_models(tags={'k': 1}), ValidationError, "tags['k']: must be a string"),
])
def test_bad_tags_say_what_was_wrong_and_change_nothing(store, call, error, says):
    m = store.add_model(model_name='m', **MODEL)
    store.set_tags(m.id, {'k': 'v'})
    with pytest.raises(error) as err:
        call(store, m.id)
    assert says in str(err.value)
    assert store.get_tags(m.id) == {'k': 'v'} and len(changes(store)) == 1


def test_setting_and_removing_is_one_change(store):
    m = store.add_model(model_name='m', **MODEL)
    store.set_tags(m.id, {'owner': 'a', 'stage': 'eval'})
    with pytest.raises(ValidationError):
        store.set_tags(m.id, {'stage': 'x' * 300}, remove=['owner'])
    assert store.get_tags(m.id) == {'owner': 'a', 'stage': 'eval'}  # Nothing removed.
    assert store.set_tags(m.id, {'stage': 'prod'}, remove=['owner']) == {'stage': 'prod'}
    assert len(changes(store)) == 2
    with pytest.raises(ValidationError, match='also set: stage'):
        store.set_tags(m.id, {'stage': 'x'}, remove=['stage'])


def test_a_deleted_models_tags_go_with_it(store):
    a = store.add_model(model_name='a', **MODEL)
    b = store.add_model(model_name='b', **MODEL)
    store.set_tags(a.id, {'k': 'v'})
    store.set_tags(b.id, {'k': 'v'})
    store.delete_model(a.id)
    assert [m.id for m in store.list_models(tags={'k': 'v'})] == [b.id]
    with pytest.raises(NotFound):
        store.get_tags(a.id)


TAGS = st.dictionaries(st.sampled_from(['stage', 'team', 'Stage']),
                       st.sampled_from(['eval', 'prod', '', 'é']), max_size=3)


DAY = datetime.datetime(2026, 1, 1)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tagged=st.lists(st.tuples(TAGS, st.integers(0, 3)), min_size=1, max_size=8),
       wanted=TAGS, archived=st.booleans(), moved=st.none() | st.integers(0, 3))
def test_a_tag_filter_is_what_python_finds(store, tagged, wanted, archived, moved):
    """Every order, with dates that tie, and a model's date changed after it was tagged (the
    tags' copy of it follows): what Python finds, in Python's order."""
    M = store.FineTunedModel
    store.tags.Tag.delete().execute()
    M.delete().execute()
    dates = [DAY + datetime.timedelta(days=day) for _, day in tagged]
    ids = [store.add_model(model_name='m%d' % i, creation_date=date, **MODEL).id
           for i, date in enumerate(dates)]
    for model_id, (tags, _) in zip(ids, tagged):
        if tags:
            store.set_tags(model_id, tags)
    if moved is not None:
        dates[-1] = DAY + datetime.timedelta(days=moved, hours=12)
        store.update_model(ids[-1], creation_date=dates[-1])
    if archived:
        store.archive_model(ids[0])
    found = [(date, i) for i, (tags, _), date in zip(ids, tagged, dates)
             if wanted.items() <= tags.items() and not (archived and i == ids[0])]
    oldest = [i for _, i in sorted(found)]
    orders = {'name': [i for _, i in found], 'oldest': oldest, 'newest': oldest[::-1]}
    for order, expected in orders.items():
        assert [m.id for m in store.list_models(tags=wanted, order=order)] == expected, order
        assert [m.id for m in store.list_models(tags=wanted, order=order, limit=2,
                                                offset=1)] == expected[1:3], order
        assert [m.id for m in store.iter_models(tags=wanted, order=order, page=2)] == \
            expected, order
    assert store.count_models(tags=wanted) == len(found)


def test_a_changed_date_moves_the_model_in_a_tag_listing(store):
    ids = [store.add_model(model_name='m', creation_date=DAY + datetime.timedelta(days=d),
                           **MODEL).id for d in range(3)]
    for model_id in ids:
        store.set_tags(model_id, {'stage': 'prod'})
    store.update_model(ids[0], creation_date=DAY + datetime.timedelta(days=9))
    assert [m.id for m in store.list_models(tags={'stage': 'prod'})] == [ids[0], ids[2], ids[1]]
    assert [m.id for m in store.list_models(tags={'stage': 'prod'}, order='oldest',
                                            limit=2)] == [ids[1], ids[2]]


@pytest.mark.sqlite_only
def test_a_tag_page_by_date_walks_the_tag_index(store):
    """The newest (or oldest) models carrying a tag: read from the (key, value, creation_date,
    model_id) index in its order -- no sort of every carrier (the plan SQLite shows)."""
    query = store.queries.listing_query({'tags': {'stage': 'prod'}, 'not_archived': True},
                                        limit=50, order='newest')
    sql, params = query.sql()
    plan = ' | '.join(row[-1] for row in store.database.execute_sql(
        'EXPLAIN QUERY PLAN ' + sql, params))
    assert 'modeltag_key_value_creation_date_model_id' in plan, plan
    assert 'TEMP B-TREE' not in plan, plan


@pytest.mark.sqlite_only
def test_iter_models_pages_on_the_walked_tags_index(store):
    """iter_models' next page is a range of the walked tag's index too (its keyset is the
    tag rows' copy of creation_date, then model_id): no sort of every carrier per page."""
    base, after = store.queries.keyset({'tags': {'stage': 'prod'}, 'not_archived': True},
                                       'newest')
    sql, params = base.where(after(1)).limit(1000).sql()
    plan = ' | '.join(row[-1] for row in store.database.execute_sql(
        'EXPLAIN QUERY PLAN ' + sql, params))
    assert 'modeltag_key_value_creation_date_model_id' in plan, plan
    assert 'TEMP B-TREE' not in plan, plan


def test_two_tags_walk_the_one_fewer_models_carry(store):
    """The rarer tag's rows are walked, whatever its key's place: a page reads at most them
    (walking the common one read every model until 50 carried the rare one too)."""
    ids = [store.add_model(model_name='m%d' % i, **MODEL).id for i in range(6)]
    for model_id in ids:
        store.set_tags(model_id, {'a': 'common', 'z': 'rare' if model_id == ids[2] else 'x'})
    store.set_tags(ids[4], {'b': 'rarer'})
    queries = store.queries
    assert queries.walked({'tags': {'a': 'common', 'z': 'rare'}}, 'newest') == 'z'
    assert queries.walked({'tags': {'b': 'rarer', 'z': 'x'}}, 'oldest') == 'b'
    assert queries.walked({'tags': {'a': 'common', 'z': 'x'}}, 'newest') == 'z'  # 5 < 6
    assert queries.walked({'tags': {'a': 'none', 'z': 'rare'}}, 'newest') == 'a'  # 0
    # Not walked: one tag (the only one), a name's versions, by name.
    assert queries.walked({'tags': {'z': 'rare'}}, 'newest') is None
    assert queries.walked({'tags': {'a': 'common', 'z': 'rare'}, 'model_name': 'm2'},
                          'newest') is None
    assert queries.walked({'tags': {'a': 'common', 'z': 'rare'}}, 'name') is None
    assert [m.id for m in store.list_models(tags={'a': 'common', 'z': 'rare'})] == [ids[2]]
    assert [m.id for m in store.iter_models(tags={'z': 'x', 'a': 'common'}, page=2)] == \
        [i for i in reversed(ids) if i != ids[2]]


def test_the_tag_walked_is_counted_again_after_a_while_and_never_changes_a_page(store,
                                                                                monkeypatch):
    """The choice is kept WALK_SECONDS (counting cost a two-tag page a third of its time);
    kept while the counts change, the page is still exactly the models carrying both."""
    ids = [store.add_model(model_name='m%d' % i, **MODEL).id for i in range(8)]
    for model_id in ids:
        store.set_tags(model_id, {'a': 'common', 'z': 'rare' if model_id == ids[0] else 'x'})
    wanted = {'tags': {'a': 'common', 'z': 'rare'}}
    assert store.queries.walked(wanted, 'newest') == 'z'
    for model_id in ids[1:]:  # Now every model carries z=rare, and a=common only one.
        store.set_tags(model_id, {'a': 'gone', 'z': 'rare'})
    store.set_tags(ids[0], {'a': 'common'})
    store.set_tags(ids[5], {'a': 'common'})
    assert store.queries.walked(wanted, 'newest') == 'z'  # Kept...
    assert [m.id for m in store.list_models(**wanted)] == [ids[5], ids[0]]  # ...and right.
    later = listings.monotonic() + listings.WALK_SECONDS + 1
    monkeypatch.setattr(listings, 'monotonic', lambda: later)
    assert store.queries.walked(wanted, 'newest') == 'a'  # Counted again: 2 against 8.
    assert [m.id for m in store.list_models(**wanted)] == [ids[5], ids[0]]


@pytest.mark.postgres_only
def test_postgresql_looks_the_other_tags_up_per_walked_row(store):
    """PostgreSQL turned the EXISTS into a hash join reading every carrier of the other tag
    (100,000 rows for a page of 50 at 1M models, bench/): it stays a SubPlan, an index probe
    per walked row."""
    query = store.queries.listing_query({'tags': {'a': '1', 'b': '2'}}, limit=50)
    sql, params = query.sql()
    plan = '\n'.join(row[0] for row in store.database.execute_sql(
        'EXPLAIN (COSTS OFF) ' + sql, params))
    assert 'SubPlan' in plan and 'Hash' not in plan, plan


def test_a_tag_listings_statement_is_built_once_per_shape(store, monkeypatch):
    """Built by peewee for the first listing with two tags, then taken from the cache with
    other keys and values (sorted by key, as the query takes them)."""
    a = store.add_model(model_name='a', **MODEL)
    b = store.add_model(model_name='b', **MODEL)
    store.set_tags(a.id, {'stage': 'prod', 'team': 'x'})
    store.set_tags(b.id, {'owner': 'me', 'zone': 'eu'})
    assert [m.id for m in store.list_models(tags={'team': 'x', 'stage': 'prod'}, limit=5)] \
        == [a.id]

    def built(*args, **kwargs):
        raise AssertionError('the statement was built again')
    monkeypatch.setattr(store.queries, 'listing_query', built)
    assert [m.id for m in store.list_models(tags={'zone': 'eu', 'owner': 'me'}, limit=5)] \
        == [b.id]
    assert store.list_models(tags={'zone': 'me', 'owner': 'eu'}, limit=5) == []


def test_the_tag_command_and_the_tag_filter(store, head_url, cli):
    m = store.add_model(model_name='m', **MODEL)
    store.add_model(model_name='other', **MODEL)
    code, out, err = cli('models', 'tag', 'm', 'stage=prod', 'note=a=b', '--database',
                         head_url)
    assert (code, out.splitlines()) == (0, ['note=a=b', 'stage=prod']), err
    code, out, err = cli('models', 'tag', str(m.id), '--rm', 'note', '--database', head_url,
                         '--json')
    assert json.loads(out) == {'model_id': m.id, 'tags': {'stage': 'prod'}, 'ok': True}
    code, out, err = cli('models', 'list', '--tag', 'stage=prod', '--database', head_url,
                         '--json')
    assert [r['id'] for r in json.loads(out)] == [m.id]
    code, out, err = cli('models', 'tag', 'm', 'oops', '--database', head_url)
    assert code == 2 and "expected KEY=VALUE, got 'oops'" in err
    code, out, err = cli('models', 'list', '--tag', 'a=1', '--tag', 'a=2', '--database',
                         head_url)
    assert code == 2 and "a is given twice, as '1' and '2'" in err
    code, out, err = cli('models', 'tag', 'm', 'stage=' + 'x' * 300, '--rm', 'stage',
                         '--database', head_url)
    assert code == 2 and store.get_tags(m.id) == {'stage': 'prod'}
