"""modelstore import modelforge: ModelForge v2's `models` table, written by the app's own
SQLAlchemy model, copied into the registry once, without touching `models`."""
import datetime
import hashlib
import json
import os
import time
import uuid

import pytest
from sqlalchemy import Boolean, DateTime, String, Text, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import modelstore

from conftest import BACKEND, execute

# ModelForge is a SQLite app: the tests that use a SQLite file (``forge``, ``db_path``) run on
# SQLite only; those on ``db_url`` (a `models` table on a server) on every backend.


class Base(DeclarativeBase):
    pass


class ForgeModel(Base):
    """ModelForge v2's model, as ../shared/reference/legacy-databases.md gives it."""
    __tablename__ = 'models'
    id: Mapped[str] = mapped_column(String, primary_key=True,
                                    default=lambda: str(uuid.uuid4()))
    name: Mapped[str] = mapped_column(String, nullable=False)
    base_model: Mapped[str] = mapped_column(String, nullable=False)
    task: Mapped[str] = mapped_column(String, nullable=False)
    strategy: Mapped[str] = mapped_column(String, nullable=True, default='sft')
    provider: Mapped[str] = mapped_column(String, nullable=True, default='huggingface')
    path: Mapped[str] = mapped_column(String, nullable=False)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, nullable=True,
                                                          default=datetime.datetime.utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime, nullable=True,
                                                          default=datetime.datetime.utcnow)
    compute_profile: Mapped[str] = mapped_column(String, nullable=True)
    config: Mapped[str] = mapped_column(Text, nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=True, default=True)


CREATED = datetime.datetime(2025, 11, 20, 10, 0, 0, 123456)


@pytest.fixture
def forge(db_path, head_url):
    """A registry file that ModelForge v2 also writes its `models` table into."""
    engine = create_engine('sqlite:///' + db_path)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([
            ForgeModel(id='a1', name='support-bot', base_model='meta-llama/Llama-3.2-1B',
                       task='text-generation', path='/m/support-bot_1', created_at=CREATED,
                       updated_at=CREATED + datetime.timedelta(hours=1),
                       compute_profile='gpu-24g',
                       config=json.dumps({'lr': 2e-4, 'epochs': 3, 'lora': {'r': 16}})),
            ForgeModel(id='b2', name='support-bot', base_model='meta-llama/Llama-3.2-1B',
                       task='text-generation', path='/m/support-bot_2', strategy='dpo',
                       provider='unsloth', created_at=CREATED + datetime.timedelta(days=1)),
            ForgeModel(id='c3', name='retired', base_model='gpt2', task='summarization',
                       path='/m/retired_1', is_active=False),
            ForgeModel(id='d4', name='x' * 300, base_model='gpt2', task='summarization',
                       path='/m/long_1'),
        ])
        session.commit()
    engine.dispose()
    return db_path


def table_hash(path):
    import sqlite3
    conn = sqlite3.connect(path)
    rows = conn.execute('SELECT * FROM models ORDER BY id').fetchall()
    schema = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'models'").fetchone()
    conn.close()
    return hashlib.sha256(repr((rows, schema)).encode()).hexdigest()


def run(cli, path, *extra):
    code, out, err = cli('import', 'modelforge', '--database', path, '--json', *extra)
    assert code == 0, err
    return json.loads(out)


def test_each_row_is_imported_once_with_its_columns_and_models_is_untouched(cli, forge):
    before = table_hash(forge)
    dry = run(cli, forge, '--dry-run')
    assert [r['source_id'] for r in dry['import']] == ['a1', 'b2']
    with modelstore.connect(forge) as store:
        assert store.count_models() == 0  # A dry run writes nothing.
    done = run(cli, forge)
    assert [r['source_id'] for r in done['import']] == ['a1', 'b2']
    skipped = {s['source_id']: s['why'] for s in done['skipped']}
    assert 'inactive' in skipped['c3'] and 'model_name' in skipped['d4']
    with modelstore.connect(forge) as store:
        first, second = [store.get_model(r['id']) for r in done['import']]
        assert (first.model_name, first.version, second.version) == ('support-bot', 1, 2)
        assert (first.base_model, first.task, first.model_path) == (
            'meta-llama/Llama-3.2-1B', 'text-generation', '/m/support-bot_1')
        assert (first.strategy, first.provider, second.strategy, second.provider) == (
            'sft', 'huggingface', 'dpo', 'unsloth')
        assert first.hyperparameters == {'lr': 2e-4, 'epochs': 3, 'lora': {'r': 16}}
        local = CREATED.replace(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None)
        assert first.creation_date == local
        assert first.updated_at == local + datetime.timedelta(hours=1)
    again = run(cli, forge)
    assert again['import'] == [] and {s['why'] for s in again['skipped']} >= {
        'imported already'}
    inactive = run(cli, forge, '--include-inactive')
    assert [r['source_id'] for r in inactive['import']] == ['c3']
    assert table_hash(forge) == before


def test_a_deleted_import_is_not_brought_back(cli, forge):
    done = run(cli, forge)
    with modelstore.connect(forge) as store:
        store.delete_model(done['import'][0]['id'])
    assert run(cli, forge)['import'] == []


def test_created_at_is_utc_and_becomes_local_time(cli, forge, monkeypatch):
    monkeypatch.setenv('TZ', 'America/New_York')
    time.tzset()
    try:
        done = run(cli, forge)
        with modelstore.connect(forge) as store:
            model = store.get_model(done['import'][0]['id'])
        assert model.creation_date == datetime.datetime(2025, 11, 20, 5, 0, 0, 123456)
        import sqlite3
        conn = sqlite3.connect(forge)
        [text] = conn.execute('SELECT creation_date FROM fine_tuned_models WHERE id = ?',
                              (model.id,)).fetchone()
        conn.close()
        assert text == '2025-11-20T05:00:00.123456'  # ModelForge v1's format.
    finally:
        monkeypatch.delenv('TZ')
        time.tzset()


def test_the_human_output_says_what_it_imported_and_skipped(cli, forge):
    code, out, _ = cli('import', 'modelforge', '--database', forge)
    assert code == 0
    assert out.splitlines()[0] == "Imported 2 models from ModelForge's `models` table:"
    assert '  a1  support-bot  /m/support-bot_1 -> model 1' in out
    assert 'Skipped 2 rows:' in out and 'c3  retired: inactive' in out


def test_no_models_table_or_another_apps_is_an_error(cli, db_path, head_url, tmp_path):
    code, _, err = cli('import', 'modelforge', '--database', db_path)
    assert code == 2 and 'no ModelForge `models` table' in err
    import sqlite3
    conn = sqlite3.connect(db_path)
    conn.execute('CREATE TABLE models (id INTEGER PRIMARY KEY, name TEXT, source TEXT)')
    conn.commit()
    conn.close()
    code, _, err = cli('import', 'modelforge', '--database', db_path)
    assert code == 2 and 'no base_model, task, path columns' in err
    missing = str(tmp_path / 'absent.db')
    code, _, err = cli('import', 'modelforge', '--database', missing)
    assert code == 2 and not os.path.exists(missing)


# -- one bad source row is skipped with its reason; the rest import (issue 26, item 7) ----------

FORGE_DDL = {
    'sqlite': 'CREATE TABLE models (id VARCHAR NOT NULL, name VARCHAR NOT NULL, base_model '
              'VARCHAR NOT NULL, task VARCHAR NOT NULL, strategy VARCHAR, provider VARCHAR, '
              'path VARCHAR NOT NULL, created_at DATETIME, updated_at DATETIME, '
              'compute_profile VARCHAR, config TEXT, is_active BOOLEAN)',
    'postgresql': 'CREATE TABLE models (id VARCHAR NOT NULL, name VARCHAR NOT NULL, base_model '
                  'VARCHAR NOT NULL, task VARCHAR NOT NULL, strategy VARCHAR, provider VARCHAR, '
                  'path VARCHAR NOT NULL, created_at TIMESTAMP, updated_at TIMESTAMP, '
                  'compute_profile VARCHAR, config TEXT, is_active BOOLEAN)',
    'mysql': 'CREATE TABLE models (id VARCHAR(64) NOT NULL, name VARCHAR(255) NOT NULL, '
             'base_model VARCHAR(255) NOT NULL, task VARCHAR(255) NOT NULL, strategy VARCHAR(64), '
             'provider VARCHAR(64), path VARCHAR(255) NOT NULL, created_at DATETIME(6), '
             'updated_at DATETIME(6), compute_profile VARCHAR(64), config LONGTEXT, '
             'is_active BOOLEAN)',
}
# No PRIMARY KEY, as a table made by hand (or by an older ModelForge) may have none: ids repeat.
INSERT = ("INSERT INTO models (id, name, base_model, task, path, created_at, config, is_active) "
          "VALUES ('{id}', '{name}', 'gpt2', 'summarization', '/m/{id}', {created}, {config}, "
          "TRUE)")


def forge_rows(target, backend, *rows):
    """``rows`` (id, name, created_at SQL, config) put in a `models` table of the registry at
    ``target`` (at head: the caller takes ``head_url``)."""
    execute(target, FORGE_DDL[backend], *[
        INSERT.format(id=i, name=n, created=c, config=("'%s'" % g) if g is not None else 'NULL')
        for i, n, c, g in rows])
    return target


def outcome(cli, target, *extra):
    """(source ids imported, {source id: why skipped}) of an import, with --json."""
    code, out, err = cli('import', 'modelforge', '--database', target, '--json', *extra)
    assert code == 0, err
    done = json.loads(out)
    return [r['source_id'] for r in done['import']], {s['source_id']: s['why']
                                                       for s in done['skipped']}


def test_bad_rows_are_skipped_with_their_reason_on_every_backend(cli, db_url, head_url):
    deep = '[' * 5000 + ']' * 5000
    rows = [('good', 'good', "'2025-11-20 10:00:00'", '{"lr": 0.1}'),
            ('twin', 'twin-a', 'NULL', None), ('twin', 'twin-b', 'NULL', None),
            ('deep', 'deep', 'NULL', deep), ('deep-object', 'deep-object', 'NULL',
                                              '{"a": ' * 5000 + '1' + '}' * 5000),
            ('nul', 'nul', 'NULL', '{"a": "\\u0000"}'),
            ('surrogate', 'surrogate', 'NULL', '{"a": "\\udc80"}'),
            # After `good` (created later), whose name a unique index added by hand then holds.
            ('refused', 'good', "'2025-11-21 10:00:00'", None)]
    if BACKEND == 'postgresql':
        rows.append(('y20000', 'y20000', "'20000-01-01 00:00:00'", None))
    forge_rows(db_url, BACKEND, *rows)
    execute(db_url, 'CREATE UNIQUE INDEX by_hand ON fine_tuned_models (model_name)')
    for extra in (('--dry-run',), ()):
        imported, skipped = outcome(cli, db_url, *extra)
        assert imported == (['good', 'refused'] if extra else ['good'])
        assert 'held by 2 rows' in skipped['twin']
        assert skipped['deep'] == skipped['deep-object'] == \
            'config: is JSON nested too deep to read'
        assert 'NUL' in skipped['nul'] and 'surrogate' in skipped['surrogate']
        if BACKEND == 'postgresql':
            assert skipped['y20000'] == "created_at: is not a timestamp in the years 1 to " \
                "9999: '20000-01-01 00:00:00'"
    assert 'refused by the database' in skipped['refused']
    with modelstore.connect(db_url) as store:
        [model] = store.list_models()
        assert (model.model_name, model.hyperparameters) == ('good', {'lr': 0.1})
        assert store.ModelImport.select().count() == 1  # The refused row left nothing behind.
    assert outcome(cli, db_url) == ([], dict(skipped, good='imported already'))


@pytest.fixture
def zone(monkeypatch):
    """Set the local time zone (TZ) for the test; restored after it."""
    def set_zone(name):
        monkeypatch.setenv('TZ', name)
        time.tzset()
    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize('tz, created', [
    ('Asia/Tokyo', '9999-12-31 20:00:00'),        # Past 9999 once 9 hours are added.
    ('America/New_York', '0001-01-01 02:00:00'),  # Before year 1 once 5 hours are taken.
    ('UTC', '0001-01-01T05:00:00+14:00'),         # Before year 1 in UTC already.
    ('Asia/Tokyo', '9999-12-31T23:59:59-14:00'),
])
def test_a_timestamp_that_overflows_in_local_time_skips_its_row(cli, db_path, head_url, zone, tz,
                                                                 created):
    zone(tz)
    forge_rows(db_path, 'sqlite', ('good', 'good', "'2025-11-20 10:00:00'", None),
               ('edge', 'edge', "'%s'" % created, None))
    imported, skipped = outcome(cli, db_path)
    assert imported == ['good']
    assert skipped['edge'].startswith('created_at (as creation_date): ') or \
        skipped['edge'].startswith('created_at: ')
    assert 'outside the years 1 to 9999 once converted to local time' in skipped['edge']


@pytest.mark.parametrize('column', ['id', 'name', 'base_model', 'task', 'path', 'strategy',
                                    'provider', 'created_at', 'config'])
def test_a_value_that_is_not_utf8_skips_its_row_naming_the_column(cli, db_path, column, head_url):
    forge_rows(db_path, 'sqlite', ('good', 'good', 'NULL', None), ('bad', 'bad', 'NULL', None))
    import sqlite3
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE models SET %s = CAST(X'62FF61' AS TEXT) WHERE id = 'bad'" % column)
    conn.commit()
    conn.close()
    code, out, err = cli('import', 'modelforge', '--database', db_path)
    assert code == 0, err
    assert 'b\\xffa' in out and 'is not UTF-8 text' in out
    imported, skipped = outcome(cli, db_path, '--dry-run')
    assert imported == [] and len(skipped) == 2 and skipped['good'] == 'imported already'
    [why] = [why for source_id, why in skipped.items() if source_id != 'good']
    assert why.startswith(column + ': is not UTF-8 text') or why.startswith(column + ' (as ')


def test_a_duplicate_id_skips_every_row_that_holds_it_run_after_run(cli, db_path, head_url):
    forge_rows(db_path, 'sqlite', ('a', 'first', 'NULL', None), ('a', 'second', 'NULL', None),
               ('b', 'other', 'NULL', None))
    for _ in range(2):
        code, out, err = cli('import', 'modelforge', '--database', db_path)
        assert code == 0, err
        assert out.count("its id is held by 2 rows of `models`") == 2
    with modelstore.connect(db_path) as store:
        assert [m.model_name for m in store.list_models()] == ['other']


@pytest.mark.parametrize('config, why', [
    ('[' * 5000 + ']' * 5000, 'is JSON nested too deep to read'),
    ('{"a": ' * 101 + '1' + '}' * 101, 'nested more than 100 levels'),
    ('{"a": "\\u0000"}', 'NUL'), ('{"\\ud800": 1}', 'surrogate'),
    ('[1]', 'not a JSON object'), ('{"a": 1e999}', 'infinity'), ('{', 'is not JSON'),
    ('{"a": %s}' % ('9' * 5000), 'is not JSON'),
])
def test_a_config_that_cannot_be_the_hyperparameters_skips_its_row(cli, db_path, head_url, config,
                                                                    why):
    forge_rows(db_path, 'sqlite', ('good', 'good', 'NULL', '{}'), ('bad', 'bad', 'NULL', config))
    imported, skipped = outcome(cli, db_path)
    assert imported == ['good']
    assert skipped['bad'].startswith('config') and why in skipped['bad']
