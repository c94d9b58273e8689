"""Metric search (issue 29): list_models(metric=..., metric_below=..., metric_above=...,
order='metric') over the metrics JSON -- a number, or a curve's final value -- with the same
semantics on SQLite, PostgreSQL and MariaDB, held to a Python oracle on random data."""
import json

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

import modelstore
from modelstore import ValidationError

MODEL = dict(base_model='b', task='t', model_path='/p')
NUMBER = st.integers(-3, 3) | st.floats(-2.0, 2.0, allow_nan=False).map(lambda f: round(f, 2))
VALUE = NUMBER | st.lists(NUMBER, max_size=3)
METRICS = st.none() | st.dictionaries(st.sampled_from(['eval_loss', 'acc', 'eval/loss']), VALUE,
                                      max_size=2)


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url) as s:
        yield s


def final(metrics, name):
    value = (metrics or {}).get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    return None if value is None else float(value)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(rows=[{}, {'eval/loss': [0]}], name='eval/loss', below=None, above=None)  # MariaDB's
# '[last]' path, resolved once, gave NULL after a row without the list.
@given(rows=st.lists(METRICS, min_size=1, max_size=10),
       name=st.sampled_from(['eval_loss', 'eval/loss', 'nope']),
       below=st.none() | NUMBER, above=st.none() | NUMBER)
def test_the_metric_filter_is_what_python_finds(store, rows, name, below, above):
    store.FineTunedModel.delete().execute()
    ids = [store.add_model(model_name='m%d' % i, metrics=m, **MODEL).id
           for i, m in enumerate(rows)]
    values = {i: final(m, name) for i, m in zip(ids, rows)}
    kept = [i for i in ids if values[i] is not None
            and (below is None or values[i] < below) and (above is None or values[i] > above)]
    expected = sorted(kept, key=lambda i: (values[i], i))
    got = store.list_models(metric=name, metric_below=below, metric_above=above,
                            order='metric')
    assert [m.id for m in got] == expected
    assert store.count_models(metric=name, metric_below=below, metric_above=above) == len(kept)
    paged = store.iter_models(metric=name, metric_below=below, metric_above=above,
                              order='metric', page=2)
    assert [m.id for m in paged] == expected
    newest = store.list_models(metric=name, metric_below=below, metric_above=above)
    assert sorted(m.id for m in newest) == sorted(kept)


def test_the_best_model_of_a_task_by_its_final_eval_loss(store):
    store.add_model(model_name='a', metrics={'eval_loss': [0.9, 0.41]}, **MODEL)
    best = store.add_model(model_name='b', metrics={'eval_loss': [1.2, 0.4, 0.38]}, **MODEL)
    store.add_model(model_name='c', metrics={'eval_loss': 0.5}, **dict(MODEL, task='other'))
    store.add_model(model_name='d', metrics={'accuracy': 0.1}, **MODEL)
    [top] = store.list_models(task='t', metric='eval_loss', order='metric', limit=1)
    assert top.id == best.id


def test_a_names_versions_by_metric_are_sorted_by_the_metric(store):
    for loss in (5.0, 0.01, 9.0):
        store.add_model(model_name='m', metrics={'loss': loss}, **MODEL)
    got = store.list_models(model_name='m', metric='loss', order='metric')
    assert [m.version for m in got] == [2, 1, 3]
    assert [m.version for m in store.iter_models(model_name='m', metric='loss',
                                                 order='metric', page=1)] == [2, 1, 3]


@pytest.mark.parametrize('call, field, says', [
    (lambda s: s.list_models(order='metric'), 'order', 'give metric=NAME'),
    (lambda s: s.list_models(metric_below=1), 'metric_below', 'needs metric=NAME'),
    (lambda s: s.list_models(metric='a"b'), 'metric', 'must be a metric name'),
    (lambda s: s.list_models(metric="x') OR 1=1 --"), 'metric', 'must be a metric name'),
    (lambda s: s.count_models(metric='x', metric_above=float('inf')), 'metric_above',
     'finite'),
    (lambda s: s.list_models(metric=3), 'metric', 'got int'),
    # Stored metrics are doubles where search compares them, on every backend.
    (lambda s: s.add_model(model_name='x', metrics={'loss': 10 ** 400}, **MODEL),
     "metrics['loss']", 'too large for a double'),
])
def test_bad_metric_arguments_name_what_was_wrong(store, call, field, says):
    with pytest.raises(ValidationError) as err:
        call(store)
    assert err.value.field == field and says in str(err.value)


def test_the_metric_options_of_models_list(store, head_url, cli):
    store.add_model(model_name='a', metrics={'eval_loss': [0.9, 0.2]}, **MODEL)
    store.add_model(model_name='b', metrics={'eval_loss': 0.1}, **MODEL)
    code, out, err = cli('models', 'list', '--metric', 'eval_loss', '--metric-below', '0.15',
                         '--database', head_url, '--json')
    assert code == 0 and [m['model_name'] for m in json.loads(out)] == ['b'], err
    code, out, err = cli('models', 'list', '--metric', 'eval_loss', '--order', 'metric',
                         '--database', head_url, '--json')
    assert [m['model_name'] for m in json.loads(out)] == ['b', 'a']
