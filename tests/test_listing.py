"""list_models filters and paging, and the index (0005) that serves them."""
import datetime

import pytest

import modelstore
from modelstore.exceptions import ValidationError

from conftest import ON_MYSQL, ON_POSTGRES, ON_SERVER

BASE = datetime.datetime(2026, 1, 1)


@pytest.fixture
def added(head_url):
    """A store holding 60 models, and what the test added: (id, name, task, flag, date)."""
    rows = []
    with modelstore.connect(head_url) as store:
        for i in range(60):
            fields = dict(model_name='%s-%02d' % ('llama' if i % 3 else 'mistral', i),
                          base_model='b', task='summarization' if i % 2 else 'qa',
                          model_path='/m/%d' % i, is_custom_base_model=i % 4 == 0,
                          creation_date=BASE + datetime.timedelta(hours=i % 30))
            model = store.add_model(**fields)
            rows.append((model.id, fields['model_name'], fields['task'],
                         fields['is_custom_base_model'], fields['creation_date']))
        yield store, rows


@pytest.fixture
def store(added):
    return added[0]


def expected(rows, keep):
    """The ids the test's own records say a listing holds: newest first, id breaking ties."""
    kept = [r for r in rows if keep(*r[1:4])]
    return [r[0] for r in sorted(kept, key=lambda r: (r[4], r[0]), reverse=True)]


def test_filters_combine_and_keep_newest_first_with_id_breaking_ties(added):
    store, rows = added
    everything = store.list_models()
    assert [m.id for m in everything] == expected(rows, lambda name, task, flag: True)
    got = store.list_models(task='summarization', is_custom_base_model=False,
                            name_prefix='llama')
    assert [m.id for m in got] == expected(
        rows, lambda name, task, flag: task == 'summarization' and not flag
        and name.startswith('llama'))
    assert got and all(m.model_name.startswith('llama') for m in got)
    assert [m.id for m in store.list_models(is_custom_base_model=True)] == expected(
        rows, lambda name, task, flag: flag)
    assert store.list_models(name_prefix='LLAMA') == []  # Case-sensitive.
    assert store.list_models(name_prefix='%') == []  # No wildcards.


def test_pages_cover_the_list_once(store):
    full = [m.id for m in store.list_models(task='qa')]
    pages = [store.list_models(task='qa', limit=7, offset=o) for o in range(0, 35, 7)]
    assert [m.id for page in pages for m in page] == full
    assert len(store.list_models(limit=50)) == 50


@pytest.mark.parametrize('kwargs, message', [
    ({'task': ''}, 'task: must not be empty'),
    ({'task': 3}, 'task: must be a string'),
    ({'is_custom_base_model': 'yes'}, 'is_custom_base_model: must be True or False'),
    ({'name_prefix': 'x' * 300}, 'name_prefix: is 300 characters long'),
    ({'limit': 0}, 'limit: must be from 1 to %d, got 0' % 2 ** 62),
    ({'limit': '50'}, 'limit: must be an integer'),
    ({'offset': -1}, 'offset: must be from 0 to %d, got -1' % 2 ** 62),
])
def test_bad_filters_are_refused(store, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        store.list_models(**kwargs)


def plan_of_list_models(store, **filters):
    """EXPLAIN the statement list_models actually runs."""
    seen = []
    store.database.query_hooks.append(seen.append)
    try:
        store.list_models(**filters)
    finally:
        store.database.query_hooks.remove(seen.append)
    event = [e for e in seen if e.sql.lstrip().upper().startswith('SELECT')][-1]
    if ON_POSTGRES:
        # 60 rows: PostgreSQL would rightly scan the table; ask what it does when it cannot.
        store.database.execute_sql('SET enable_seqscan = off')
        rows = store.database.execute_sql('EXPLAIN ' + event.sql, event.params)
        return ' '.join(r[0] for r in rows)
    if ON_MYSQL:  # (table, type, possible_keys, key, ..., Extra)
        # 60 rows: MySQL would rightly scan the table; ask what it does when it cannot.
        sql = event.sql.replace('AS `t1`', 'AS `t1` FORCE INDEX (ix_fine_tuned_models_listing)', 1)
        cursor = store.database.execute_sql('EXPLAIN ' + sql, event.params)
        names = [d[0].lower() for d in cursor.description]
        return ' | '.join('key=%s extra=%s' % (row[names.index('key')], row[names.index('extra')])
                          for row in cursor.fetchall())
    rows = store.database.execute_sql('EXPLAIN QUERY PLAN ' + event.sql, event.params)
    return ' | '.join(str(r[-1]) for r in rows)


@pytest.mark.parametrize('filters', [
    dict(task='qa', is_custom_base_model=False, name_prefix='llama', limit=50),
    dict(task='qa', is_custom_base_model=True, limit=50),
])
def test_a_filtered_page_is_served_by_the_listing_index(store, filters):
    plan = plan_of_list_models(store, **filters)
    assert 'ix_fine_tuned_models_listing' in plan, plan
    if not ON_SERVER:  # The index gives the order; at most ties on creation_date are sorted.
        assert 'USE TEMP B-TREE FOR ORDER BY' not in plan, plan
    # (MySQL sorts the index's matches by (creation_date, id): its secondary index ends with
    # model_name before the primary key. docs/performance.md, issue 17.)
