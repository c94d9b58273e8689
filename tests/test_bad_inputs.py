"""The bad-input table (harness/bad_inputs.py) on the backend under test.

Each case must raise the expected error class or exit code with a message naming the problem,
and leave the database dump and every other file exactly as they were (the SQL-metacharacter
cases must store their strings verbatim and change nothing else).
"""
import pytest

from bad_inputs import CASES, prepare, run_case
from conftest import BACKEND

SELECTED = [c for c in CASES if BACKEND in c.backends]


@pytest.mark.parametrize('case', SELECTED, ids=[c.name for c in SELECTED])
@pytest.mark.slow
def test_bad_input_is_refused_clearly_and_changes_nothing(case, db_url, tmp_path):
    prepare(db_url)
    handled, changed, detail = run_case(case, db_url, str(tmp_path), BACKEND)
    assert handled, detail
    assert not changed, detail


def test_values_are_always_parameters_never_sql_text(db_url):
    """Every value an API caller passes travels as a query parameter (peewee's query hooks see
    each statement's SQL text and parameters)."""
    import modelstore
    marker = "zz'marker\"; --"
    seen = []
    with modelstore.connect(db_url) as store:
        store.database.query_hooks.append(lambda event: seen.append(event))
        model = store.add_model(model_name=marker, base_model=marker, task=marker,
                                model_path=marker, description=marker)
        store.get_model(model.id)
        store.list_models()
        task = store.add_task(task_name=marker, base_runtime=marker, model_config={marker: 1},
                              parameters={}, optimization_config={}, benchmark_config={},
                              description=marker, runtime_image_tag=marker)
        store.update_task(task.id, description=marker + '2', status='RUNNING')
        store.get_task_by_name(marker)
        store.list_tasks(status='RUNNING')
        store.delete_model(model.id)
    assert len(seen) >= 8
    assert not [e.sql for e in seen if 'marker' in e.sql]
    assert any(marker in map(str, e.params or ()) for e in seen)
