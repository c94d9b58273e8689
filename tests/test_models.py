"""Field formats: what the legacy apps wrote must read back, what we write they must read."""
import datetime

import pytest

import modelstore
from modelstore import TaskStatus
from modelstore.fields import parse_timestamp

from conftest import execute, query


@pytest.mark.parametrize('text, expected', [
    ('2025-10-30T14:03:11.512345', datetime.datetime(2025, 10, 30, 14, 3, 11, 512345)),
    ('2025-10-30T14:03:11', datetime.datetime(2025, 10, 30, 14, 3, 11)),
    ('2025-11-18 09:15:00.000001', datetime.datetime(2025, 11, 18, 9, 15, 0, 1)),
    ('2025-11-18 09:15:00', datetime.datetime(2025, 11, 18, 9, 15)),
])
def test_timestamps_with_or_without_microseconds_parse(text, expected):
    assert parse_timestamp(text) == expected


def test_legacy_task_rows_read_through_modelstore(db_url):
    with modelstore.connect(db_url) as store:
        execute(
            db_url, "INSERT INTO tasks (task_name, status, model_config, base_runtime, parameters, "
            "optimization_config, benchmark_config, created_at, slo_config) VALUES "
            "('legacy', 'RUNNING', '{\"id\": \"m\"}', 'vllm', '{\"a\": [1, 2]}', '{}', '{}', "
            "'2025-10-24 10:00:00.123456', NULL)")
        task = store.get_task_by_name('legacy')
        assert task.status is TaskStatus.RUNNING and task.status == 'running'
        assert task.model_config == {'id': 'm'} and task.parameters == {'a': [1, 2]}
        assert task.created_at == datetime.datetime(2025, 10, 24, 10, 0, 0, 123456)
        assert task.slo_config is None and task.clusterbasemodel_config is None
        assert task.created_clusterservingruntime is None


def test_aware_datetimes_are_stored_in_each_columns_convention(db_url):
    with modelstore.connect(db_url) as store:
        aware = datetime.datetime(2025, 11, 18, 14, 0, tzinfo=datetime.timezone(
            datetime.timedelta(hours=2)))
        store.add_task(task_name='t', base_runtime='r', model_config={}, parameters={},
                       optimization_config={}, benchmark_config={}, started_at=aware)
        (stored,), = query(db_url, 'SELECT started_at FROM tasks')
        # SQLite keeps SQLAlchemy's text; PostgreSQL a timestamp without zone; both in UTC.
        assert stored in ('2025-11-18 12:00:00.000000', datetime.datetime(2025, 11, 18, 12, 0))


def test_status_is_stored_by_name_for_every_member(db_url):
    with modelstore.connect(db_url) as store:
        for member in TaskStatus:
            store.add_task(task_name=member.value, base_runtime='r', model_config={},
                           parameters={}, optimization_config={}, benchmark_config={},
                           status=member.value)
    rows = query(db_url, 'SELECT task_name, status FROM tasks ORDER BY id')
    assert rows == [(m.value, m.name) for m in TaskStatus]
