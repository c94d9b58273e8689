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

pytestmark = pytest.mark.sqlite_only  # ModelForge is a SQLite app.


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
def forge(db_path):
    """A registry file that ModelForge v2 also writes its `models` table into."""
    modelstore.connect(db_path).close()
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


def test_no_models_table_or_another_apps_is_an_error(cli, db_path, tmp_path):
    modelstore.connect(db_path).close()
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
