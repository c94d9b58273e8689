"""Field formats: what the legacy apps wrote must read back, what we write they must read."""
import datetime

import peewee
import pytest

import modelstore
from modelstore import TaskStatus
from modelstore.fields import parse_timestamp
from modelstore.models import MODELS, bind_models

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


@pytest.mark.parametrize('database', [
    peewee.SqliteDatabase(':memory:'), peewee.PostgresqlDatabase('unused'),
    peewee.MySQLDatabase('unused')], ids=['sqlite', 'postgresql', 'mysql'])
def test_bound_models_are_the_classes_peewees_inheritance_makes(database):
    """bind_models gives each subclass shallow copies of its fields (peewee's inheritance
    deep-copies them: half of connect()'s time). The classes must be the same: each field's
    settings, the DDL and the statements -- and no field shared with the unbound class or with
    another store's classes."""
    bound, again = bind_models(database), bind_models(database)
    for model in MODELS:
        ours = bound[model.__name__]
        theirs = type(model.__name__, (model,), {'Meta': type('Meta', (), {
            'database': database, 'table_name': model._meta.table_name}),
            '__module__': model.__module__})
        assert issubclass(ours, model) and ours._meta.database is database
        assert [f.name for f in ours._meta.sorted_fields] == \
            [f.name for f in theirs._meta.sorted_fields]
        for name, field in ours._meta.fields.items():
            other = theirs._meta.fields[name]
            assert type(field) is type(other) and field.model is ours
            assert field is not model._meta.fields[name]
            assert field is not again[model.__name__]._meta.fields[name]
            for setting in ('column_name', 'null', 'unique', 'index', 'default',
                            'primary_key', 'sequence', 'choices', 'field_type', 'help_text',
                            'verbose_name', 'index_type', 'collation', 'unindexed'):
                assert getattr(field, setting, None) == getattr(other, setting, None), \
                    (model.__name__, name, setting)
        # (peewee keys a model's defaults by field object.)
        assert {f.name: v for f, v in ours._meta.defaults.items()} == \
            {f.name: v for f, v in theirs._meta.defaults.items()}

        def ddl(cls):
            return [database.get_sql_context().sql(q).query() for q in
                    [cls._schema._create_table()] + cls._schema._create_indexes(False)]
        assert ddl(ours) == ddl(theirs)
        values = {f.name: None for f in ours._meta.sorted_fields if not f.primary_key}
        assert ours.insert(**values).sql() == theirs.insert(**values).sql()
        assert ours.select().sql() == theirs.select().sql()
