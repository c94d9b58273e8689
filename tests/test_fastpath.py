"""The registry's fast paths (modelstore.registry.fastpath) against the plain peewee query.

list_models runs SQL peewee built once and makes models without peewee's per-row work; these
tests hold it to what ``Model.select()`` gives, on random data, on both backends -- and so fail
if a peewee upgrade changes the private attributes it relies on (``__data__``, ``_dirty``).
"""
import datetime

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from peewee import BooleanField, SqliteDatabase, TextField, fn

import modelstore
from modelstore.fields import EnumNameField, IsoTimestampField
from modelstore.registry.fastpath import ModelQueries
from modelstore.shared.models import TaskStatus

NAMES = st.text(alphabet='ab%_-Z', min_size=1, max_size=4)
ROW = st.fixed_dictionaries({
    'model_name': NAMES, 'base_model': st.just('b'), 'task': st.sampled_from(['qa', 'sum']),
    'model_path': st.just('/p'), 'description': st.one_of(st.none(), st.just('d')),
    'is_custom_base_model': st.booleans(),
    # Few distinct times, so that ties (broken by id) are common.
    'creation_date': st.integers(0, 5).map(
        lambda h: datetime.datetime(2026, 1, 1) + datetime.timedelta(hours=h))})
CALL = st.fixed_dictionaries({}, optional={
    'task': st.sampled_from(['qa', 'sum', 'none']), 'is_custom_base_model': st.booleans(),
    'name_prefix': NAMES, 'limit': st.integers(1, 12), 'offset': st.integers(0, 12)})


def oracle(store, task=None, is_custom_base_model=None, name_prefix=None, limit=None,
           offset=0):
    """list_models as the plain peewee query a reader would write."""
    M = store.FineTunedModel
    query = M.select()
    if task is not None:
        query = query.where(M.task == task)
    if is_custom_base_model is not None:
        query = query.where(M.is_custom_base_model == is_custom_base_model)
    if name_prefix is not None:
        query = query.where(fn.SUBSTR(M.model_name, 1, len(name_prefix)) == name_prefix)
    query = query.order_by(M.creation_date.desc(), M.id.desc())
    if limit is not None or offset:
        query = query.limit(limit).offset(offset)
    return list(query)


def same(got, want):
    assert [type(m) for m in got] == [type(m) for m in want]
    assert [m.__data__ for m in got] == [m.__data__ for m in want]
    for a, b in zip(got, want):
        assert {k: type(v) for k, v in a.__data__.items()} == \
            {k: type(v) for k, v in b.__data__.items()}
        assert not a.is_dirty() and a.dirty_fields == []


@pytest.fixture
def store(db_url):
    with modelstore.connect(db_url) as s:
        yield s


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=25), calls=st.lists(CALL, min_size=1, max_size=6))
def test_every_listing_equals_the_plain_peewee_query(store, rows, calls):
    store.FineTunedModel.delete().execute()
    store.add_models(rows)
    for call in calls:
        same(store.list_models(**call), oracle(store, **call))


def test_a_listed_model_tracks_changes_and_saves(store):
    store.add_model(model_name='m', base_model='b', task='t', model_path='/p')
    [model] = store.list_models()
    M = store.FineTunedModel
    model.description = 'changed'
    assert model.is_dirty() and model.dirty_fields == [M.description]
    assert model.save() == 1
    assert store.get_model(model.id).description == 'changed'


def test_add_model_returns_what_get_model_returns(store):
    added = store.add_model(model_name='m', base_model='b', task='t', model_path='/p',
                            creation_date='2026-02-03T04:05:06')
    same([added], [store.get_model(added.id)])


def test_a_field_with_a_conversion_of_its_own_is_converted_in_listings():
    """An enum column added to a model comes back as the enum from a listing, as from
    peewee's own query (a whitelist of field classes once returned it as text)."""
    db = SqliteDatabase(':memory:')

    class Listed(db.Model):
        model_name = TextField()
        task = TextField()
        is_custom_base_model = BooleanField(default=False)
        creation_date = IsoTimestampField()
        status = EnumNameField(TaskStatus, max_length=9)

        class Meta:
            table_name = 'listed'

    db.create_tables([Listed])
    Listed.create(model_name='m', task='t', creation_date=datetime.datetime(2026, 1, 1),
                  status=TaskStatus.RUNNING)
    queries = ModelQueries(Listed, ('model_name', 'task', 'is_custom_base_model',
                                    'creation_date', 'status'))
    [row] = queries.listing({'task': 't'}, limit=5)
    assert row.status is TaskStatus.RUNNING
    assert row.creation_date == datetime.datetime(2026, 1, 1)
    same([row], list(Listed.select()))
