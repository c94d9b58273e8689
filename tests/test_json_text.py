"""JSON text every backend stores alike (issue 26, item 8): a NUL character or an unpaired
surrogate in a JSON value or key is a ValidationError naming the field and the place, on every
backend -- PostgreSQL's jsonb refuses them, SQLite and MariaDB stored them -- and nothing is
written; any other text is stored and read back exactly."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import modelstore

MODEL = dict(model_name='m', base_model='b', task='t', model_path='/m/m_1')
TASK = dict(base_runtime='sglang', model_config={}, parameters={}, optimization_config={},
            benchmark_config={})
TASK_JSON = ('model_config', 'parameters', 'optimization_config', 'benchmark_config',
             'slo_config', 'quant_config', 'parallel_config', 'task_metadata')
BAD = ['\x00', 'a\x00b', '\ud800', 'x\udfff', '\ud83d\ude00']  # The last: a pair as 2 points.


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url) as s:
        yield s


def _places(text):
    """The same bad text as a value, as a key, and nested in lists and objects."""
    return [({'v': text}, "['v']"), ({text: 1}, 'the key %r' % text),
            ({'a': [1, {'b': text}]}, "['a'][1]['b']"), ({'a': {'b': [{text: None}]}},
                                                        'the key %r' % text)]


def _expect(call, field, where):
    with pytest.raises(modelstore.ValidationError) as info:
        call()
    assert info.value.field == field
    assert where in str(info.value)
    assert 'NUL' in str(info.value) or 'surrogate' in str(info.value)


@pytest.mark.parametrize('text', BAD, ids=ascii)
def test_add_and_update_model_refuse_nul_and_surrogates_in_json(store, text):
    kept = store.add_model(**MODEL, hyperparameters={'lr': 0.1}, metrics={'loss': [1.0]})
    for value, where in _places(text):
        _expect(lambda: store.add_model(**MODEL, hyperparameters=value), 'hyperparameters',
                where)
        _expect(lambda: store.update_model(kept.id, hyperparameters=value), 'hyperparameters',
                where)
        _expect(lambda: store.add_models([MODEL, dict(MODEL, hyperparameters=value)]),
                'models[1].hyperparameters', where)
    _expect(lambda: store.add_model(**MODEL, metrics={text: 1.0}), 'metrics', 'the key')
    _expect(lambda: store.update_model(kept.id, metrics={'loss': 1.0, text: [2.0]}), 'metrics',
            'the key')
    assert store.count_models() == 1
    again = store.get_model(kept.id)
    assert (again.hyperparameters, again.metrics) == ({'lr': 0.1}, {'loss': [1.0]})


@pytest.mark.parametrize('text', BAD, ids=ascii)
def test_add_and_update_task_refuse_nul_and_surrogates_in_every_json_field(store, text):
    kept = store.add_task(task_name='kept', **TASK)
    for field in TASK_JSON:
        for value, where in _places(text):
            _expect(lambda: store.add_task(task_name='new', **dict(TASK, **{field: value})),
                    field, where)
            _expect(lambda: store.update_task(kept.id, **{field: value}), field, where)
    _expect(lambda: store.add_task(task_name='new', metadata={'k': text}, **TASK),
            'task_metadata', "['k']")
    preset = {'preset': 'llama-3-2-1b-instruct', 'labels': {'team': text}}
    _expect(lambda: store.update_task(kept.id, clusterbasemodel_config=preset),
            'clusterbasemodel_config', "['labels']['team']")
    assert store.count_tasks() == 1
    assert store.get_task(kept.id).parameters == {}


# Text that is not NUL-free valid Unicode: some text with one bad character put inside.
_good_text = st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00'),
                     max_size=12)
_bad_char = st.sampled_from(['\x00']) | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@st.composite
def _bad_text(draw):
    text = draw(_good_text)
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(_bad_char) + text[at:]


def _json(leaves, keys):
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        keys, inner, max_size=3), max_leaves=6)


_values = _json(st.none() | st.booleans() | st.integers(-10 ** 6, 10 ** 6) | _good_text,
                _good_text)


@st.composite
def _document_with_bad_text(draw):
    """A JSON object with one bad string somewhere: as a key or a value, nested."""
    bad = draw(_bad_text())
    inner = draw(st.sampled_from(['key', 'value']))
    planted = {bad: draw(_values)} if inner == 'key' else {'k': bad}
    for _ in range(draw(st.integers(0, 3))):
        planted = draw(st.sampled_from([lambda v: [v], lambda v: {'n': v}]))(planted)
    document = draw(st.dictionaries(_good_text, _values, max_size=3))
    document[draw(_good_text)] = planted
    return document


SLOW = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@SLOW
@given(document=_document_with_bad_text())
@pytest.mark.slow
def test_any_json_holding_a_nul_or_a_surrogate_is_refused_alike_everywhere(store, document):
    with pytest.raises(modelstore.ValidationError) as info:
        store.add_task(task_name='t', **dict(TASK, parameters=document))
    assert info.value.field == 'parameters'
    assert store.count_tasks() == 0


@SLOW
@given(document=st.dictionaries(_good_text, _values, max_size=4))
@pytest.mark.slow
def test_any_other_json_text_is_stored_and_read_back_exactly(store, document):
    model = store.add_model(**MODEL, hyperparameters=document)
    try:
        assert store.get_model(model.id).hyperparameters == document
    finally:
        store.delete_model(model.id)
