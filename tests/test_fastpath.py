"""The registry's fast paths (modelstore.registry.fastpath) against the plain peewee query.

list_models runs SQL peewee built once and makes models without peewee's per-row work; these
tests hold it to what ``Model.select()`` gives, on random data, on both backends -- and so fail
if a peewee upgrade changes the private attributes it relies on (``__data__``, ``_dirty``).
"""
import datetime

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
import peewee
from peewee import BooleanField, SqliteDatabase, TextField

import modelstore
from modelstore.fields import EnumNameField, IsoTimestampField
from modelstore.registry.fastpath import ModelQueries
from modelstore.shared.tables import TaskStatus

NAMES = st.text(alphabet='aAb%_\\-Z', min_size=1, max_size=4)
JSON_TEXT = 'a é"\\\n{}[]'  # (JSON columns refuse NUL and lone surrogates: validation's.)
HOURS = st.integers(0, 5).map(lambda h: datetime.datetime(2026, 1, 1) + datetime.timedelta(hours=h))
ROW = st.fixed_dictionaries({
    'model_name': NAMES, 'base_model': st.sampled_from(['b', 'c']),
    'task': st.sampled_from(['qa', 'sum']),
    'model_path': st.just('/p'), 'description': st.one_of(st.none(), st.just('d')),
    'is_custom_base_model': st.booleans(),
    # Few distinct times, so that ties (broken by id) are common.
    'creation_date': HOURS,
    # JSON columns: read by the listing's JSON fast path, by peewee's json.loads here.
    'metrics': st.one_of(st.none(), st.dictionaries(
        st.text(JSON_TEXT, max_size=3), st.one_of(st.floats(allow_nan=False,
                                                            allow_infinity=False),
                                                  st.lists(st.integers(), max_size=3)),
        max_size=2)),
    'hyperparameters': st.one_of(st.none(), st.dictionaries(
        st.text(JSON_TEXT, max_size=3), st.text(JSON_TEXT, max_size=3), max_size=2))})
CALL = st.fixed_dictionaries({}, optional={
    'task': st.sampled_from(['qa', 'sum', 'none']), 'is_custom_base_model': st.booleans(),
    'name_prefix': NAMES, 'base_model': st.sampled_from(['b', 'c', 'x']), 'model_name': NAMES,
    'name_contains': NAMES, 'created_after': HOURS, 'created_before': HOURS,
    'order': st.sampled_from(['newest', 'oldest', 'name']),
    'limit': st.integers(1, 12), 'offset': st.integers(0, 12),
    'archived': st.sampled_from([False, True, None])})


def _ascii_lower(text):
    # SQLite's LIKE ignores the case of ASCII letters only (the test server is --no-locale).
    return text.translate(str.maketrans('ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                                        'abcdefghijklmnopqrstuvwxyz'))


def oracle(store, task=None, is_custom_base_model=None, name_prefix=None, base_model=None,
           model_name=None, name_contains=None, created_after=None, created_before=None,
           archived=False, order='newest', limit=None, offset=0):
    """list_models as a reader would define it: plain peewee models, filtered and sorted in
    Python."""
    M = store.FineTunedModel
    rows = list(M.select())
    keep = [m for m in rows
            if (task is None or m.task == task)
            and (is_custom_base_model is None or m.is_custom_base_model == is_custom_base_model)
            and (name_prefix is None or m.model_name.startswith(name_prefix))
            and (base_model is None or m.base_model == base_model)
            and (model_name is None or m.model_name == model_name)
            and (name_contains is None
                 or _ascii_lower(name_contains) in _ascii_lower(m.model_name))
            and (created_after is None or m.creation_date >= created_after)
            and (created_before is None or m.creation_date < created_before)
            and (archived is None or (m.archived_at is not None) == archived)]
    if order == 'name':
        keep.sort(key=lambda m: (m.model_name, m.id))
    elif order == 'oldest':
        keep.sort(key=lambda m: (m.creation_date, m.id))
    else:
        keep.sort(key=lambda m: (m.creation_date, m.id), reverse=True)
    keep = keep[offset:]
    return keep if limit is None else keep[:limit]


def same(got, want):
    assert [type(m) for m in got] == [type(m) for m in want]
    assert [m.__data__ for m in got] == [m.__data__ for m in want]
    for a, b in zip(got, want):
        assert {k: type(v) for k, v in a.__data__.items()} == \
            {k: type(v) for k, v in b.__data__.items()}
        assert not a.is_dirty() and a.dirty_fields == []


def same_rows(got, want):
    """list_models(rows=True): named tuples of the models' fields, with the same values."""
    assert all(type(r).__name__ == 'ModelRow' and isinstance(r, tuple) for r in got)
    assert [r._asdict() for r in got] == [m.__data__ for m in want]
    for a, b in zip(got, want):
        assert [type(v) for v in a] == [type(b.__data__[k]) for k in a._fields]


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url) as s:
        yield s


def _only_these(store, rows):
    """The store holding only ``rows``, every third one archived (archive_model's column,
    written here without its events)."""
    M = store.FineTunedModel
    M.delete().execute()
    store.add_models(rows)
    third = [i for (i,) in M.select(M.id).tuples() if i % 3 == 0]
    M.update(archived_at=datetime.datetime(2026, 2, 1)).where(M.id.in_(third)).execute()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=25), calls=st.lists(CALL, min_size=1, max_size=6))
@pytest.mark.slow
def test_every_listing_equals_the_plain_peewee_query(store, rows, calls):
    _only_these(store, rows)
    for call in calls:
        if call.get('created_after') and call.get('created_before') and \
                call['created_after'] > call['created_before']:
            with pytest.raises(modelstore.ValidationError, match='created_before'):
                store.list_models(**call)
            continue
        want = oracle(store, **call)
        same(store.list_models(**call), want)
        same_rows(store.list_models(rows=True, **call), want)
        filters = {k: v for k, v in call.items() if k not in ('order', 'limit', 'offset')}
        assert store.count_models(**filters) == len(oracle(store, **filters))


@pytest.mark.parametrize('text', [
    '{"eval_loss": [0.5, 0.25]}', ' {"a": 1} ', '{"a": 1}\n', '[1, 2]', '"12"', '12', '1.5e3',
    'null', 'true', '"caf\u00e9 \\u00e9"', 'not json', '{"a": 1} {"b": 2}', '{"a":', '',
    'NaN', '{"a": {"b": [{"c": null}]}}', '"\\ud800"'])
def test_json_text_written_behind_our_back_reads_as_peewee_reads_it(store, text):
    """The listing decodes a JSON column without json.loads' whitespace matches; any text it
    cannot take as one JSON value goes to peewee's python_value, so that every text -- padded,
    two values, not JSON at all -- comes back as the plain peewee query returns it."""
    store.add_model(model_name='m', base_model='b', task='t', model_path='/p')
    M = store.FineTunedModel
    # The servers' JSON columns hold JSON only (PostgreSQL's JSONB, MariaDB's JSON_VALID check:
    # no NaN, no lone surrogate, no padding on MariaDB...). On PostgreSQL psycopg2 returns JSONB
    # decoded: a JSON string comes back as a str, which peewee leaves as it is -- and so must
    # the listing ('"12"' is '12', not 12).
    try:
        with store.database.atomic():
            M.update(metrics=peewee.Value(text, converter=False)).execute()
    except peewee.DatabaseError:
        assert not isinstance(store.database, SqliteDatabase), text
        pytest.skip('this server refuses this text in a JSON column')
    same(store.list_models(), list(M.select()))
    same(store.list_models(metric=None), list(M.select()))


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


LOOKUP = st.one_of(st.tuples(st.just('id'), st.integers(0, 30)),
                   st.tuples(st.just('version'), NAMES, st.integers(1, 4)),
                   st.tuples(st.sampled_from(['latest', 'latest archived too']), NAMES))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=25), lookups=st.lists(LOOKUP, min_size=1, max_size=8))
@pytest.mark.slow
def test_every_lookup_equals_the_plain_peewee_query(store, rows, lookups):
    """get_model, get_model_version and get_latest_model run a statement built once: the same
    model (or none) as their plain peewee query's get_or_none, archived models included."""
    _only_these(store, rows)
    for lookup in lookups:
        want = store.queries.lookup_query(*lookup).get_or_none()
        got = store.queries.lookup(*lookup)
        same([got] if got else [], [want] if want else [])


def test_the_lookups_send_one_statement_built_once(store):
    for i in range(3):
        store.add_model(model_name='a', base_model='b', task='t', model_path='/p')
    store.set_alias('a', 'prod', 2)
    store.archive_model(store.get_model('a@3').id)
    store.archive_model(store.add_model(model_name='c', base_model='b', task='t',
                                        model_path='/p').id)
    sent = []
    store.database.query_hooks.append(sent.append)
    try:
        for _ in range(2):
            assert store.get_latest_model('a').version == 2
            assert store.get_latest_model('a', include_archived=True).version == 3
            assert store.get_model('a@prod').version == 2  # The alias, then the version.
            assert store.get_model(store.get_model('a@1').id).version == 1
    finally:
        store.database.query_hooks.remove(sent.append)
    assert len(sent) == 12 and [e.sql for e in sent[:6]] == [e.sql for e in sent[6:]]
    assert len({e.sql for e in sent}) == 5  # latest, latest archived too, alias, version, id
    with pytest.raises(modelstore.NotFound, match="every version of the model named 'c'"):
        store.get_latest_model('c')
    with pytest.raises(modelstore.NotFound, match="no model named 'zzz'"):
        store.get_latest_model('zzz')
    with pytest.raises(modelstore.NotFound, match="model 'a' has no alias 'dev'"):
        store.get_model('a@dev')


@pytest.mark.sqlite_only
def test_values_of_unexpected_types_are_read_as_peewee_reads_them(store, db_path):
    """SQLite keeps whatever a legacy writer stored: a column is read value by value through
    its field when its values are not all of the type the fast readers expect."""
    from conftest import execute
    for i in range(4):
        store.add_model(model_name='m%d' % i, base_model='b', task='t', model_path='/p',
                        training_seconds=1.5, creation_date='2026-01-0%dT00:00:00' % (i + 1))
    execute(db_path, "UPDATE fine_tuned_models SET description = X'6869', "
                     "is_custom_base_model = 'yes', training_seconds = 'slow', "
                     "creation_date = '2026-01-02 03:04:05 ' WHERE id = 2")
    execute(db_path, "UPDATE fine_tuned_models SET is_custom_base_model = 2, "
                     "peak_vram_bytes = 7.0, updated_at = '2026-01-05T00:00:00' WHERE id = 3")
    got = store.list_models(order='oldest')
    want = list(store.FineTunedModel.select().order_by(store.FineTunedModel.creation_date))
    same(got, want)
    same_rows(store.list_models(order='oldest', rows=True), want)
    assert got[1].description == 'hi' and got[1].training_seconds == 'slow'
    assert got[1].creation_date == datetime.datetime(2026, 1, 2, 3, 4, 5)
    assert got[2].is_custom_base_model is True and got[0].is_custom_base_model is False


def test_rows_are_the_models_fields_as_named_tuples_in_pages_too(store):
    for i in range(7):
        store.add_model(model_name='r%d' % (i % 3), base_model='b', task='t', model_path='/p',
                        metrics={'loss': [1.0, 0.5 / (i + 1)]}, hyperparameters={'lr': i})
    want = store.list_models(order='oldest')
    rows = store.list_models(order='oldest', rows=True)
    assert rows[0]._fields == tuple(f.name for f in store.FineTunedModel._meta.sorted_fields)
    same_rows(rows, want)
    assert rows[3].metrics == {'loss': [1.0, 0.125]} and rows[3].version == want[3].version
    with pytest.raises(AttributeError):
        rows[0].model_name = 'changed'  # Read-only: a row is a value, not a model to save.
    # iter_models pages by the rows' ids just as by the models'.
    same_rows(list(store.iter_models(order='oldest', page=2, rows=True)), want)
    same_rows(list(store.iter_models(order='name', page=3, rows=True, model_name='r1')),
              store.list_models(order='name', model_name='r1'))


def test_a_listing_whose_values_cannot_be_placed_runs_the_plain_query(monkeypatch):
    """If peewee ever renders a filter's value where the cached template cannot place it (here:
    two filters given the same sentinel), list_models runs the plain peewee query instead of
    raising RuntimeError at the caller."""
    from modelstore.registry import listings
    db = SqliteDatabase(':memory:')

    class Listed(db.Model):
        model_name = TextField()
        task = TextField()
        base_model = TextField()
        creation_date = IsoTimestampField()

        class Meta:
            table_name = 'listed'

    db.create_tables([Listed])
    for n in range(3):
        Listed.create(model_name='m%d' % n, task='t', base_model='b' if n else 'c',
                      creation_date=datetime.datetime(2026, 1, 1 + n))
    monkeypatch.setitem(listings._SENTINELS, 'base_model', listings._SENTINELS['task'])
    queries = ModelQueries(Listed, ('model_name', 'task', 'base_model', 'creation_date'))
    rows = queries.listing({'task': 't', 'base_model': 'b'}, limit=5)
    assert queries._cache[('list', frozenset({'task', 'base_model'}), 0, None, True, False,
                           'newest')] \
        == (None, None)
    same(rows, list(Listed.select().where((Listed.task == 't') & (Listed.base_model == 'b'))
                    .order_by(Listed.creation_date.desc(), Listed.id.desc())))
    assert [r.model_name for r in rows] == ['m2', 'm1']
