"""Search: list_models' and list_tasks' filters, order and counts, and their bad values.
(tests/test_fastpath.py compares every combination with a Python oracle on random data.)"""
import datetime
import re
import sqlite3

import pytest

import modelstore
from modelstore import ValidationError

from conftest import execute

T0 = datetime.datetime(2025, 10, 30, 14, 3, 11)


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url) as s:
        yield s


def add(store, name, base='meta-llama/Llama-3.2-1B', task='text-generation', when=T0, **kw):
    return store.add_model(model_name=name, base_model=base, task=task, model_path='/m/' + name,
                           creation_date=when, **kw)


def names(models):
    return [m.model_name for m in models]


def test_name_contains_ignores_case_and_takes_wildcards_literally(store):
    for name in ('Llama-support', 'my-LLAMA', 'mistral', '50%_off', '50percent', 'a_b', 'axb'):
        add(store, name)
    assert sorted(names(store.list_models(name_contains='llama'))) == ['Llama-support',
                                                                       'my-LLAMA']
    assert names(store.list_models(name_contains='%')) == ['50%_off']
    assert sorted(names(store.list_models(name_contains='_'))) == ['50%_off', 'a_b']
    assert names(store.list_models(name_contains='a_b')) == ['a_b']
    assert store.count_models(name_contains='LLAMA') == 2


def test_exact_filters_and_their_combination(store):
    add(store, 'a', base='qwen', task='qa')
    add(store, 'a', base='llama', task='qa', is_custom_base_model=True)
    add(store, 'b', base='llama', task='summarization')
    assert sorted(names(store.list_models(base_model='llama'))) == ['a', 'b']
    assert len(store.list_models(model_name='a')) == 2
    assert [m.base_model for m in store.list_models(model_name='a', base_model='llama',
                                                    is_custom_base_model=True)] == ['llama']
    assert store.count_models(task='qa', base_model='qwen') == 1
    assert store.count_models() == 3 and store.count_models(model_name='zzz') == 0


def test_count_models_sends_one_plain_count_of_what_list_models_lists(store):
    """A COUNT(*) over the listing's conditions: peewee's count() wrapped the query in a
    subquery; two tags, an archived model and a metric filter count as list_models lists."""
    for i in range(6):
        model = add(store, 'm%d' % i, base='b%d' % (i % 2),
                    metrics={'eval_loss': [0.5, 0.1 * i]})
        store.set_tags(model.id, {'stage': 'prod' if i % 2 else 'dev', 'team': 'a'})
    store.archive_model(store.list_models(model_name='m5')[0].id)
    sent = []
    store.database.query_hooks.append(sent.append)
    try:
        for filters in ({}, {'base_model': 'b1'}, {'tags': {'stage': 'prod', 'team': 'a'}},
                        {'archived': True}, {'archived': None},
                        {'metric': 'eval_loss', 'metric_below': 0.35}):
            del sent[:]
            counted = store.count_models(**filters)
            event = sent[-1]  # (Before it, with two tags: the count of each tag's carriers.)
            if filters:
                assert event.sql.upper().startswith('SELECT COUNT(*) FROM'), event.sql
                assert event.sql.upper().count('SELECT') == \
                    1 + event.sql.upper().count('EXISTS'), event.sql
            else:  # Every model less the archived ones, each counted by an index.
                assert re.fullmatch(r'SELECT \(SELECT COUNT\(\*\) FROM \S+ AS \S+\) - '
                                    r'\(SELECT COUNT\(\*\) FROM .* IS NOT NULL\)\)', event.sql), \
                    event.sql
            assert counted == len(store.list_models(limit=1000, **filters)), filters
    finally:
        store.database.query_hooks.remove(sent.append)
    assert store.count_models(tags={'stage': 'prod', 'team': 'a'}) == 2  # m1, m3 (m5 archived)


def test_count_models_reads_the_archived_models_from_their_index(store, db_path):
    """count_models() at 1M models read every row for archived_at (111 ms on SQLite); 0017's
    partial index holds the archived ones, and the table's own count needs no row."""
    for i in range(3):
        add(store, 'm%d' % i)
    store.archive_model(store.list_models(model_name='m1')[0].id)
    assert store.count_models() == 2 and store.count_models(archived=True) == 1
    sent = []
    store.database.query_hooks.append(sent.append)
    store.count_models()
    store.database.query_hooks.remove(sent.append)
    plan = ' | '.join(row[-1] for row in sqlite3.connect(db_path).execute(
        'EXPLAIN QUERY PLAN ' + sent[-1].sql, sent[-1].params))
    assert 'fine_tuned_models_archived_at' in plan, plan
    assert 'SCAN t1 |' not in plan + ' |', plan  # (a COVERING INDEX scan counts no row)


def test_created_between_includes_the_start_and_excludes_the_end(store, db_url):
    add(store, 'before', when=T0 - datetime.timedelta(microseconds=1))
    add(store, 'start', when=T0)
    add(store, 'inside', when=T0 + datetime.timedelta(minutes=5))
    add(store, 'end', when=T0 + datetime.timedelta(hours=1))
    # A row as ModelForge writes it on an exact second: isoformat() without a fraction.
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, creation_date, "
                    "model_path) VALUES ('legacy', 'b', 't', '2025-10-30T14:03:11', '/l')")
    window = dict(created_after=T0, created_before=T0 + datetime.timedelta(hours=1))
    assert sorted(names(store.list_models(**window))) == ['inside', 'legacy', 'start']
    assert store.count_models(**window) == 3
    assert names(store.list_models(created_after=T0 + datetime.timedelta(hours=1))) == ['end']
    # Dates, ISO text and aware datetimes are bounds too.
    assert store.count_models(created_after=datetime.date(2025, 10, 30)) == 5
    assert store.count_models(created_before='2025-10-30T14:03:11') == 1
    aware = T0.astimezone(datetime.timezone.utc)  # The same instant, with its zone.
    assert store.count_models(created_after=aware) == 4


def test_order_newest_oldest_and_by_name(store):
    add(store, 'b', when=T0)
    add(store, 'a', when=T0 + datetime.timedelta(days=1))
    add(store, 'c', when=T0 - datetime.timedelta(days=1))
    assert names(store.list_models()) == ['a', 'b', 'c']
    assert names(store.list_models(order='oldest')) == ['c', 'b', 'a']
    assert names(store.list_models(order='name')) == ['a', 'b', 'c']
    assert names(store.list_models(order='name', limit=1, offset=1)) == ['b']


@pytest.mark.parametrize('kwargs, field', [
    ({'order': 'random'}, 'order'), ({'order': None}, 'order'),
    ({'name_contains': ''}, 'name_contains'), ({'name_contains': 3}, 'name_contains'),
    ({'base_model': ['x']}, 'base_model'), ({'model_name': ''}, 'model_name'),
    ({'created_after': 'yesterday'}, 'created_after'), ({'created_before': 5}, 'created_before'),
    ({'created_after': T0, 'created_before': T0 - datetime.timedelta(seconds=1)},
     'created_before'),
    ({'limit': 0}, 'limit'), ({'offset': -1}, 'offset'),
])
def test_bad_filter_values_are_validation_errors_naming_the_argument(store, kwargs, field):
    with pytest.raises(ValidationError) as caught:
        store.list_models(**kwargs)
    assert caught.value.field == field
    counting = {k: v for k, v in kwargs.items() if k not in ('order', 'limit', 'offset')}
    if counting:
        with pytest.raises(ValidationError):
            store.count_models(**counting)


TASK = dict(model_config={}, parameters={}, optimization_config={}, benchmark_config={})


def test_tasks_filter_by_runtime_and_name_page_and_count(store):
    for i, runtime in enumerate(['sglang', 'vllm', 'sglang', 'sglang']):
        store.add_task(task_name='Tune-%d_%s' % (i, runtime), base_runtime=runtime, **TASK)
    store.update_task(store.get_task_by_name('Tune-2_sglang').id, status='completed')
    assert [t.task_name for t in store.list_tasks(base_runtime='sglang')] == [
        'Tune-0_sglang', 'Tune-2_sglang', 'Tune-3_sglang']
    assert [t.task_name for t in store.list_tasks(name_contains='tune-1')] == ['Tune-1_vllm']
    assert [t.task_name for t in store.list_tasks(base_runtime='sglang', limit=1, offset=1)] \
        == ['Tune-2_sglang']
    assert store.count_tasks(base_runtime='sglang') == 3
    assert store.count_tasks('completed', base_runtime='sglang') == 1
    assert store.count_tasks(name_contains='_') == 4 and store.count_tasks() == 4
    for kwargs, field in (({'base_runtime': ''}, 'base_runtime'), ({'limit': 0}, 'limit'),
                          ({'name_contains': None, 'offset': 'x'}, 'offset')):
        with pytest.raises(ValidationError) as caught:
            store.list_tasks(**kwargs)
        assert caught.value.field == field
