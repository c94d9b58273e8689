"""Training metadata (0006): recorded with add_model/add_models, set later with update_model,
refreshing updated_at; bad values refused, naming the field."""
import datetime
import math

import pytest

import modelstore
from modelstore import NotFound, ValidationError

from conftest import execute, query

MODEL = dict(model_name='m', base_model='meta-llama/Llama-3.2-1B', task='text-generation',
             model_path='/models/m')
METADATA = dict(training_seconds=812.5, peak_vram_bytes=23 * 2 ** 30, dataset_rows=120000,
                dataset_bytes=2 ** 40, metrics={'loss': [2.1, 1.4, 0.9], 'eval_accuracy': 0.81},
                hyperparameters={'lr': 2e-5, 'epochs': 3, 'lora': {'r': 16}}, strategy='sft',
                provider='huggingface')


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url) as s:
        yield s


def test_add_model_records_the_metadata_and_reads_it_back(store):
    before = datetime.datetime.now()
    model = store.add_model(**MODEL, **METADATA)
    again = store.get_model(model.id)
    for name, value in METADATA.items():
        assert getattr(again, name) == value, name
    assert before <= again.updated_at <= datetime.datetime.now()
    plain = store.add_model(**dict(MODEL, model_name='plain'))
    assert (plain.metrics, plain.training_seconds, plain.strategy) == (None, None, None)


def test_add_models_records_the_metadata_on_both_paths(store):
    rows = [dict(MODEL, model_name='fast'),  # The inline check: no metadata.
            dict(MODEL, model_name='full', **METADATA),
            dict(MODEL, model_name='fast2'), dict(MODEL, model_name='fast3')]
    assert store.add_models(rows) == 4
    assert store.count_models() == 4
    by_name = {m.model_name: m for m in store.list_models()}
    assert by_name['fast'].metrics is None and by_name['fast'].updated_at is not None
    for name, value in METADATA.items():
        assert getattr(by_name['full'], name) == value, name


def test_update_model_sets_metadata_later_and_refreshes_updated_at(store):
    model = store.add_model(**MODEL)
    first = store.get_model(model.id).updated_at
    updated = store.update_model(model.id, metrics={'loss': [0.5]}, training_seconds=60)
    assert updated.metrics == {'loss': [0.5]} and updated.training_seconds == 60.0
    assert updated.updated_at > first
    assert store.get_model(model.id).metrics == {'loss': [0.5]}
    assert store.update_model(model.id, metrics=None).metrics is None  # Optional: cleared.
    fixed = datetime.datetime(2026, 1, 1, 12, 0)
    assert store.update_model(model.id, updated_at=fixed).updated_at == fixed


@pytest.mark.parametrize('fields, field', [
    ({'training_seconds': -1}, 'training_seconds'),
    ({'training_seconds': math.nan}, 'training_seconds'),
    ({'training_seconds': True}, 'training_seconds'),
    ({'peak_vram_bytes': -5}, 'peak_vram_bytes'),
    ({'dataset_rows': 1.5}, 'dataset_rows'),
    ({'dataset_bytes': 2 ** 63}, 'dataset_bytes'),
    ({'metrics': {'loss': 'low'}}, "metrics['loss']"),
    ({'metrics': {'loss': [1.0, None]}}, "metrics['loss'][1]"),
    ({'metrics': {'loss': math.inf}}, 'metrics'),
    ({'metrics': [1, 2]}, 'metrics'),
    ({'hyperparameters': 'lr=1'}, 'hyperparameters'),
    ({'strategy': 'x' * 256}, 'strategy'),
    ({'provider': 3}, 'provider'),
])
def test_bad_metadata_is_refused_naming_the_field_and_nothing_is_written(store, fields, field):
    with pytest.raises(ValidationError) as caught:
        store.add_model(**MODEL, **fields)
    if field:
        assert caught.value.field.startswith(field.split('[')[0])
        assert field in str(caught.value) or caught.value.field == field
    model = store.add_model(**MODEL)
    with pytest.raises(ValidationError):
        store.update_model(model.id, **fields)
    assert store.count_models() == 1


def test_update_model_refuses_unknown_fields_clearing_required_ones_and_absent_ids(store):
    model = store.add_model(**MODEL)
    with pytest.raises(ValidationError, match="unknown field 'vram'"):
        store.update_model(model.id, vram=1)
    for name in ('model_name', 'model_path', 'updated_at'):
        with pytest.raises(ValidationError, match=name):
            store.update_model(model.id, **{name: None})
    with pytest.raises(NotFound):
        store.update_model(model.id + 100, strategy='sft')
    with pytest.raises(ValidationError):
        store.update_model(0, strategy='sft')
    assert store.get_model(model.id).model_name == 'm'


def test_modelforge_inserts_without_the_new_columns_still_work(store, db_url):
    # ModelForge v1.0's six columns and v1.1's seven.
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, description, "
                    "creation_date, model_path) VALUES ('v10', 'b', 't', '', "
                    "'2025-10-30T14:03:11.512345', '/m/v10')",
            "INSERT INTO fine_tuned_models (model_name, base_model, task, description, "
            "creation_date, model_path, is_custom_base_model) VALUES ('v11', 'b', 't', '', "
            "'2025-10-30T14:03:12.512345', '/m/v11', TRUE)")
    assert sorted(m.model_name for m in store.list_models()) == ['v10', 'v11']
    assert query(db_url, "SELECT metrics, updated_at FROM fine_tuned_models") == [(None, None)] * 2
