"""Each field's rule is derived from the model (modelstore.registry.rules), and the fast form of
the rules that add_model and add_models use equals the whole rule on any input."""
import datetime
import enum

import peewee
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelstore
from modelstore.fields import EnumNameField, IsoTimestampField, StrictJSONField
from modelstore.registry import checks, rules as rules_module
from modelstore.registry.rules import Rules
from modelstore.shared.tables import FineTunedModel, Task

MODEL_RULES = Rules(FineTunedModel)
TASK_RULES = Rules(Task)

texts = st.one_of(st.text(max_size=8), st.sampled_from(['', ' ', '\t', 'a\x00b', 'é', '\ud800',
                                                         'x' * 256, 'x' * 4097, 'model']))
values = st.one_of(
    st.none(), st.booleans(), texts, st.integers(min_value=-2 ** 64, max_value=2 ** 64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.datetimes(min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30)),
    st.datetimes(timezones=st.just(datetime.timezone(datetime.timedelta(hours=-5)))),
    st.dictionaries(st.text(max_size=3), st.integers() | st.floats(), max_size=2),
    st.lists(st.integers(), max_size=2), st.sampled_from(['2026-01-02T03:04:05', 'not a date']))
rows = st.dictionaries(st.sampled_from(list(MODEL_RULES) + ['version', 'id', 'nope']), values,
                       max_size=len(list(MODEL_RULES)))
# Values of each field's own kind (often valid, sometimes at or past a limit).
KINDS = {checks.Text: texts | st.just('ok'), checks.Flag: st.booleans() | st.none(),
         checks.Whole: st.integers(min_value=-1, max_value=2 ** 63) | st.none(),
         checks.Number: st.floats() | st.integers(0, 9) | st.none(),
         checks.Moment: st.datetimes() | st.none() | st.just('2026-01-02T03:04:05'),
         checks.Metrics: st.dictionaries(st.text(max_size=3), st.floats(0, 1) | st.lists(
             st.floats(0, 1), max_size=3), max_size=2) | st.none()}
KINDS[checks.Json] = KINDS[checks.Metrics]
KINDS[checks.Sha256] = st.text('0123456789abcdefABCDEFg', min_size=63, max_size=65) | st.none()
plausible = st.fixed_dictionaries(
    {'model_name': texts | st.just('m'), 'base_model': st.just('b'), 'task': st.just('t'),
     'model_path': st.just('/p')},
    optional={name: KINDS[type(MODEL_RULES[name].check)] for name in MODEL_RULES
              if not MODEL_RULES[name].required})


def _typed(row):
    return [(type(v), v) for v in row]


@pytest.mark.slow
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(plausible | rows)
def test_the_fast_form_returns_what_the_whole_rule_does_or_defers_to_it(values):
    defaults = MODEL_RULES.defaults()
    fast = MODEL_RULES.fast_row(values, defaults)
    try:
        whole = MODEL_RULES.row(MODEL_RULES.check(values, defaults=defaults))
    except modelstore.ValidationError:
        assert fast is None, 'the fast form took a row the whole rule refuses: %r' % (values,)
        return
    if fast is not None:
        assert _typed(fast) == _typed(whole)


def test_a_common_row_takes_the_fast_form():
    defaults = MODEL_RULES.defaults()
    row = dict(model_name='m', base_model='b', task='t', model_path='/p', strategy='sft',
               training_seconds=1.5, creation_date=datetime.datetime(2026, 1, 2))
    assert MODEL_RULES.fast_row(row, defaults) == MODEL_RULES.row(
        MODEL_RULES.check(row, defaults=defaults))
    assert MODEL_RULES.fast_row({**row, 'model_name': 'é'}, defaults) is None  # Not ASCII.


def test_the_columns_every_row_fills_come_first():
    filled = MODEL_RULES.columns[:MODEL_RULES.filled]
    assert set(filled) == {'model_name', 'base_model', 'task', 'description', 'creation_date',
                           'model_path', 'is_custom_base_model', 'updated_at'}
    assert 'version' not in MODEL_RULES.columns and 'id' not in MODEL_RULES.columns
    # Numbered by the database, and set by archive_model: never given to add_model.
    assert set(MODEL_RULES.columns) == set(FineTunedModel._meta.fields) - {'id', 'version',
                                                                            'archived_at'}


def test_one_moment_for_a_calls_defaults():
    defaults = MODEL_RULES.defaults()
    assert defaults['creation_date'] is defaults['updated_at']
    assert defaults['description'] == '' and defaults['is_custom_base_model'] is False


def test_a_column_named_unlike_its_field_is_accepted_by_either_name():
    assert TASK_RULES.aliases == {'metadata': 'task_metadata'}
    base = dict(task_name='t', base_runtime='r', model_config={}, parameters={},
                optimization_config={}, benchmark_config={})
    assert TASK_RULES.check(dict(base, metadata={'a': 1}))['task_metadata'] == {'a': 1}
    with pytest.raises(modelstore.ValidationError, match='not both'):
        TASK_RULES.check(dict(base, metadata={}, task_metadata={}))


def test_an_override_naming_no_field_is_refused(monkeypatch):
    monkeypatch.setitem(rules_module._OVERRIDES, 'FineTunedModel',
                        dict(rules_module._OVERRIDES['FineTunedModel'], renamed_away={}))
    with pytest.raises(AssertionError, match='renamed_away'):
        Rules(FineTunedModel)


class Colour(enum.Enum):
    RED = 'red'


class Point(peewee.Field):
    field_type = 'TEXT'

    def db_value(self, value):
        x, y = value
        return '%s,%s' % (x, y)


class Everything(peewee.Model):
    small = peewee.SmallIntegerField(null=True)
    whole = peewee.IntegerField(null=True)
    big = peewee.BigIntegerField(null=True)
    ratio = peewee.FloatField(null=True)
    flag = peewee.BooleanField(default=True)
    code = peewee.CharField(max_length=4)
    body = peewee.TextField(null=True)
    when = peewee.DateTimeField(null=True)
    stamp = IsoTimestampField(null=True)
    doc = StrictJSONField(null=True)
    colour = EnumNameField(Colour, null=True)
    point = Point(null=True)


@pytest.mark.parametrize('field, good, bad, message', [
    ('small', 2 ** 15 - 1, 2 ** 15, 'between -2\\*\\*15 and 2\\*\\*15-1'),
    ('whole', -2 ** 31, 2 ** 31, 'between -2\\*\\*31 and 2\\*\\*31-1'),
    ('big', 2 ** 63 - 1, 1.5, 'must be an integer, got float'),
    ('ratio', 2, float('inf'), 'finite'),
    ('flag', False, 1, 'True or False'),
    ('code', 'abcd', 'abcde', 'limit is 4'),
    ('body', 'é', 'a\x00', 'NUL'),
    ('when', '2026-01-02 03:04:05', 'soon', 'ISO-8601'),
    ('stamp', datetime.datetime(2026, 1, 2), 7, 'datetime or ISO-8601'),
    ('doc', {'a': [1]}, [1], 'JSON object'),
    ('colour', 'RED', 'BLUE', "unknown colour 'BLUE'"),
    ('point', (1, 2), 3, 'cannot be stored in a Point'),
])
def test_each_field_type_gets_its_checker(field, good, bad, message):
    rules = Rules(Everything)
    assert rules.check({'code': 'c', field: good})[field] is not None
    with pytest.raises(modelstore.ValidationError, match=message) as caught:
        rules.check({'code': 'c', field: bad})
    assert caught.value.field == field


def test_required_and_defaults_come_from_the_declaration():
    rules = Rules(Everything)
    assert [n for n in rules if rules[n].required] == ['code']
    with pytest.raises(modelstore.ValidationError, match='code.*is required'):
        rules.check({})
    assert rules.check({'code': 'c'})['flag'] is True
    with pytest.raises(modelstore.ValidationError, match='must not be empty'):
        rules.check({'code': ' '})
    with pytest.raises(modelstore.ValidationError, match='cannot be cleared'):
        TASK_RULES.check({'status': None}, partial=True)  # A default: kept on update.


class Defaults(peewee.Model):
    first = StrictJSONField(default=dict)
    second = StrictJSONField(default=dict)
    tags = StrictJSONField(default=list)
    made = IsoTimestampField(default=datetime.datetime.now)
    seen = IsoTimestampField(default=datetime.datetime.now)


def test_a_callable_default_is_called_and_a_container_is_never_shared():
    checked = Rules(Defaults).check({})
    assert checked['first'] == {} and checked['tags'] == [] and checked['first'] is not \
        checked['second']
    assert checked['made'] is checked['seen']  # One moment for one call.


class Later(peewee.Model):
    """Field types a model may gain later: each gets a checker that refuses what it cannot
    store, and one that takes None where the column does."""
    maybe = peewee.BooleanField(null=True)
    seen_at = peewee.TimestampField(null=True)
    day = peewee.DateField(null=True)
    price = peewee.DecimalField(null=True)


@pytest.mark.parametrize('field, good, bad, message', [
    ('maybe', None, 'yes', 'True or False'),
    ('day', '2026-01-02', 'not a date', 'ISO-8601 date'),
    ('day', datetime.date(2026, 1, 2), datetime.datetime(2026, 1, 2), 'date or ISO-8601'),
    ('price', '1.50', 'abc', 'not a decimal'),
    ('price', 3, float('nan'), 'finite decimal'),
])
def test_later_field_types_are_checked_as_their_columns_store_them(field, good, bad, message):
    rules = Rules(Later)
    rules.check({field: good})
    with pytest.raises(modelstore.ValidationError, match=message):
        rules.check({field: bad})


def test_a_field_converting_its_own_values_is_not_taken_for_its_base_type():
    # TimestampField is a BigIntegerField that stores a datetime: not an integer check.
    stamp = datetime.datetime(2026, 1, 2, 3, 4, 5)
    assert Rules(Later).check({'seen_at': stamp})['seen_at'] == stamp


def test_a_nullable_flag_takes_none_on_the_fast_form_and_the_whole_rule_alike():
    rules = Rules(Later)
    defaults = rules.defaults()  # (TimestampField's default is now.)
    assert rules.fast_row({'maybe': None}, defaults) == rules.row(
        rules.check({'maybe': None}, defaults=defaults))


@pytest.mark.parametrize('values, field, message', [
    (dict(training_seconds=10 ** 400), 'training_seconds', 'too large'),
    (dict(peak_vram_bytes=10 ** 5000), 'peak_vram_bytes', 'a larger integer'),
    (dict(peak_vram_bytes=-10 ** 40), 'peak_vram_bytes', 'an integer of 41 digits'),
])
def test_numbers_too_large_to_print_or_convert_are_refused_by_name(values, field, message):
    row = dict(model_name='m', base_model='b', task='t', model_path='/p', **values)
    with pytest.raises(modelstore.ValidationError, match=message) as caught:
        MODEL_RULES.check(row)
    assert caught.value.field == field


def test_unknown_keys_of_any_type_are_named():
    with pytest.raises(modelstore.ValidationError, match="unknown fields 'foo', 1"):
        MODEL_RULES.check({1: 2, 'foo': 1})


def test_required_fields_lead_and_are_checked_first():
    assert list(MODEL_RULES)[:4] == ['model_name', 'base_model', 'task', 'model_path']
    with pytest.raises(modelstore.ValidationError) as caught:
        MODEL_RULES.check(dict(model_name='m', base_model='b', task='t', creation_date='x'))
    assert caught.value.field == 'model_path'


def test_a_column_that_always_holds_a_value_cannot_be_cleared_by_an_update():
    with pytest.raises(modelstore.ValidationError, match='cannot be cleared'):
        MODEL_RULES.check({'creation_date': None}, partial=True)
    assert MODEL_RULES.check({'description': None}, partial=True) == {'description': None}
    with pytest.raises(modelstore.ValidationError, match='2\\*\\*31-1'):
        TASK_RULES.check({'total_experiments': 2 ** 40}, partial=True)  # int4 on PostgreSQL
