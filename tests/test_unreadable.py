"""No silent change of type: a stored value the registry cannot read as its column's type is an
error naming table, row and column -- never handed back as a string -- and an adoption analysis
that cannot run is a warning naming the script and why."""
import json

import pytest

import modelstore
from modelstore import UnreadableValue

from conftest import SHIPPED, execute

MODEL = dict(model_name='m', base_model='b', task='t', model_path='/p')
TASK = dict(base_runtime='sglang', model_config={}, parameters={}, optimization_config={},
            benchmark_config={})


@pytest.fixture
def store(head_url):
    with modelstore.connect(head_url) as s:
        yield s


def test_an_unknown_status_name_names_the_task_row_and_column(store, db_url):
    good = store.add_task(task_name='good', **TASK)
    bad = store.add_task(task_name='bad', **TASK)
    execute(db_url, "UPDATE tasks SET status = 'EXPLODED' WHERE id = %d" % bad.id)
    for call in (lambda: store.get_task(bad.id), lambda: store.get_task_by_name('bad'),
                 store.list_tasks, lambda: store.update_task(bad.id, description='x')):
        with pytest.raises(UnreadableValue) as info:
            call()
        error = info.value
        assert (error.table, error.column, error.value, error.row_ids) == \
            ('tasks', 'status', 'EXPLODED', [bad.id])
        assert "tasks row %d: column status holds 'EXPLODED', which is not one of PENDING" \
            % bad.id in str(error)
        assert isinstance(error, modelstore.StorageError)
    assert store.get_task(good.id).status is modelstore.TaskStatus.PENDING  # Others read.


@pytest.mark.sqlite_only
def test_a_timestamp_that_is_not_one_names_the_model_row(store, db_path):
    store.add_model(**MODEL)
    bad = store.add_model(**dict(MODEL, model_name='bad'))
    execute(db_path, "UPDATE fine_tuned_models SET creation_date = 'yesterday' WHERE id = %d"
            % bad.id)
    for call in (store.list_models, lambda: store.list_models(task='t', limit=5),
                 lambda: store.get_model(bad.id)):
        with pytest.raises(UnreadableValue, match=r"fine_tuned_models row %d: column "
                                                  r"creation_date holds 'yesterday', which is "
                                                  r"not a timestamp" % bad.id):
            call()
    assert store.get_model(1).model_name == 'm'


@pytest.mark.sqlite_only
def test_a_task_timestamp_that_is_not_one_is_reported_too(store, db_path):
    task = store.add_task(task_name='t', **TASK)
    execute(db_path, "UPDATE tasks SET started_at = 'soon' WHERE id = %d" % task.id)
    with pytest.raises(UnreadableValue, match=r"tasks row %d: column started_at holds 'soon'"
                                              % task.id):
        store.list_tasks()


@pytest.mark.sqlite_only
def test_a_disabled_adoption_analysis_is_a_warning_naming_the_script(cli, db_path, scripts):
    scripts('0001_base.py', '''
        def up(migrator, db):
            db.execute_sql('CREATE TABLE base (x INTEGER)')
        ''')
    scripts('0002_alter_legacy.py', '''
        def up(migrator, db):
            db.execute_sql('ALTER TABLE legacy ADD COLUMN y INTEGER')
        ''')
    execute(db_path, 'CREATE TABLE legacy (x INTEGER)')
    code, out, _ = cli('status', '--json', '--database', db_path, '--migrations', scripts.dir)
    [warning] = json.loads(out)['adoption']['warnings']
    assert warning.startswith('adoption analysis is off: 0002_alter_legacy: ')
    assert 'no such table: legacy' in warning
    for command in ('status', 'migrate'):
        code, out, err = cli(command, '--database', db_path, '--migrations', scripts.dir)
        assert 'warning: adoption analysis is off: 0002_alter_legacy: cannot tell what this ' \
               'script changes' in out, (command, out, err)
        assert 'every pending script will run as written' in out
    assert code == 0  # migrate ran both scripts, as written.


def test_the_shipped_scripts_never_disable_adoption(cli, db_url):
    assert cli('migrate', '--database', db_url, '--to', SHIPPED[0])[0] == 0
    code, out, _ = cli('status', '--json', '--database', db_url)
    assert json.loads(out)['adoption']['warnings'] == []


@pytest.mark.sqlite_only
@pytest.mark.parametrize('form', ['--json', '--jsonl'])
def test_a_listing_that_meets_an_unreadable_row_midway_says_so_in_json(cli, store, db_path,
                                                                       form):
    # Streamed: the rows before the bad one are out already. --json closes its array and
    # prints the error object after it (two values: no reader takes a part for the whole);
    # --jsonl's lines stay JSON lines, the error on stderr.
    store.add_models([dict(MODEL, model_name='m%d' % i) for i in range(2500)])
    execute(db_path, "UPDATE fine_tuned_models SET creation_date = '2025-01-01Tgarbage' "
                     "WHERE id = 1")
    code, out, err = cli('models', 'list', '--database', db_path, '--all', form)
    assert code == 2 and 'fine_tuned_models row 1: column creation_date' in err, err
    if form == '--jsonl':
        rows = [json.loads(line) for line in out.splitlines()]
        assert len(rows) >= 1000 and 1 not in {row['id'] for row in rows}
        return
    decoder, values, at = json.JSONDecoder(), [], 0
    while out[at:].strip():
        at += len(out[at:]) - len(out[at:].lstrip())  # (raw_decode takes no whitespace.)
        value, at = decoder.raw_decode(out, at)
        values.append(value)
    rows, failure = values
    assert len(rows) >= 1000 and 1 not in {row['id'] for row in rows}
    assert failure['ok'] is False and failure['error']['type'] == 'UnreadableValue'
    with pytest.raises(ValueError):
        json.loads(out)
