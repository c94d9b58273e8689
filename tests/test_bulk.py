"""add_models: the bulk path for importers stores exactly what add_model would, or nothing."""
import datetime

import pytest

import modelstore
from modelstore.exceptions import ValidationError

from conftest import dump, query

ROW = dict(model_name='m', base_model='meta-llama/Llama-3.2-1B', task='text-generation',
           model_path='/models/m')


def stored(db_url):
    return query(db_url, 'SELECT model_name, base_model, task, description, creation_date, '
                 'model_path, is_custom_base_model FROM fine_tuned_models ORDER BY id')


@pytest.mark.parametrize('changes', [
    {},
    {'description': 'Custom Model', 'is_custom_base_model': True},
    {'creation_date': datetime.datetime(2026, 1, 2, 3, 4, 5)},
    {'creation_date': datetime.datetime(2026, 1, 2, 3, 4, 5, 6)},
    {'creation_date': '2025-10-30T09:00:00'},
    {'creation_date': datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)},
    {'model_name': 'modèle-ü', 'description': None},  # Not ASCII: the general path.
])
def test_a_bulk_row_is_stored_exactly_as_add_model_stores_it(head_url, changes):
    fields = dict(ROW, creation_date=datetime.datetime(2026, 5, 5, 5, 5, 5))
    fields.update(changes)
    with modelstore.connect(head_url) as store:
        store.add_model(**fields)
        assert store.add_models([fields]) == 1
    one, bulk = stored(head_url)
    assert one == bulk


def test_a_generator_of_many_rows_is_stored_in_order_with_defaults(head_url):
    rows = (dict(ROW, model_name='m%05d' % i) for i in range(2500))
    before = datetime.datetime.now()
    with modelstore.connect(head_url) as store:
        assert store.add_models(rows) == 2500
        assert store.add_models([]) == 0
        newest = store.list_models(limit=1)[0]
    names = [r[0] for r in stored(head_url)]
    assert names == ['m%05d' % i for i in range(2500)]
    assert newest.creation_date >= before.replace(microsecond=0)
    assert {r[3] for r in stored(head_url)} == {''} and {bool(r[6]) for r in stored(head_url)} == {
        False}


@pytest.mark.parametrize('bad, message', [
    (dict(ROW, model_name=''), r'models\[1\]\.model_name: must not be empty'),
    (dict(ROW, model_path=None), r'models\[1\]\.model_path: is required'),
    (dict(ROW, is_custom_base_model=1), r'models\[1\]\.is_custom_base_model: must be True'),
    (dict(ROW, colour='red'), r"models\[1\]: unknown field 'colour'"),
    (dict(ROW, task='x' * 256), r'models\[1\]\.task: is 256 characters long'),
    (dict(ROW, description='a\x00b'), r'models\[1\]\.description: must not contain NUL'),
    (['not', 'a', 'dict'], r'models\[1\]: must be a dict'),
])
def test_one_bad_row_stores_nothing_and_is_named(head_url, bad, message):
    with modelstore.connect(head_url) as store:
        store.add_model(**ROW)
        before = dump(head_url)
        rows = [ROW, bad] + [ROW] * 3000  # Rows before it were already sent: rolled back too.
        with pytest.raises(ValidationError, match=message):
            store.add_models(iter(rows))
        assert dump(head_url) == before
        with pytest.raises(ValidationError, match='must be an iterable of dicts, got dict'):
            store.add_models(ROW)
    assert dump(head_url) == before


def test_the_model_add_model_returns_is_stored_and_clean(head_url):
    with modelstore.connect(head_url) as store:
        model = store.add_model(**ROW)
        assert model.id == store.get_model(model.id).id and not model.is_dirty()
        model.description = 'edited'
        assert model.dirty_fields == [store.FineTunedModel.description]


def test_rows_giving_an_optional_value_or_not_are_one_statement_and_keep_their_values(head_url):
    """Rows alternating between giving ``provider`` and not: on a server one multi-row INSERT
    (not one a row); each row's JSON is the value at the time it was given, even when the
    caller reuses one dict."""
    with modelstore.connect(head_url) as store:
        calls = []
        real = store.queries.model.insert_many

        def counted(*args, **kwargs):
            calls.append(1)
            return real(*args, **kwargs)
        store.queries.model.insert_many = counted
        metrics = {}

        def rows():
            for i in range(10):
                metrics['step'] = i
                yield dict(model_name='alt', base_model='b', task='t', model_path='/m/%d' % i,
                           provider=None if i % 2 else 'p', metrics=metrics)
        assert store.add_models(rows()) == 10
        listed = store.list_models(model_name='alt', order='oldest')
        assert [(m.provider, m.metrics) for m in listed] == [
            (None if i % 2 else 'p', {'step': i}) for i in range(10)]
        assert len(calls) <= 1  # (SQLite writes through the driver's executemany.)
