"""Issue 26 items 13, 14 and 10's --json: models show by id or name, --to by number or prefix,
check on a database that is behind, listings streamed a page at a time, errors' real class."""
import io
import json

import pytest

import modelstore
from modelstore.cli import Output
from modelstore.cli import registry_commands as cli_registry
from modelstore.cli.render import render

from conftest import SHIPPED

MODEL = dict(base_model='b', task='t', model_path='/m/x')


@pytest.fixture
def url(migrated_url):
    db_url = migrated_url
    with modelstore.connect(db_url) as store:
        for name in ('first', '7', 'team@corp', 'run@3', 'run', '2'):
            store.add_model(**dict(MODEL, model_name=name))
    return db_url


def _shown(cli, url, *argv):
    code, out, err = cli('models', 'show', '--database', url, '--json', *argv)
    return code, (json.loads(out)[0] if code == 0 else json.loads(out)['error']), err


def test_a_number_is_an_id_and_else_a_name(cli, url):
    assert _shown(cli, url, '1')[1]['model_name'] == 'first'
    assert _shown(cli, url, '7')[1]['model_name'] == '7'  # No id 7: the model named "7".
    assert _shown(cli, url, '--name', '7')[1]['id'] == 2
    assert _shown(cli, url, '--id', '2')[1]['model_name'] == '7'


def test_a_number_that_is_an_id_and_a_name_is_refused_naming_both(cli, url):
    code, error, err = _shown(cli, url, '2')  # Model 2 is "7"; model 6 is named "2".
    assert code == 2 and error['type'] == 'UsageError'
    assert '--id 2 or --name 2' in err
    assert _shown(cli, url, '--name', '2')[1]['id'] == 6


def test_at_splits_on_the_last_at_only_before_a_version(cli, url):
    assert _shown(cli, url, 'team@corp')[1]['model_name'] == 'team@corp'
    assert _shown(cli, url, 'run@1')[1]['model_name'] == 'run'
    assert _shown(cli, url, 'run@3')[1]['model_name'] == 'run@3'  # run has no version 3.
    code, error, _ = _shown(cli, url, 'nobody@2')
    assert code == 2 and error['type'] == 'NotFound'


def test_show_takes_one_way_of_naming(cli, url):
    code, error, _ = _shown(cli, url, '1', '--id', '1')
    assert code == 2 and error['type'] == 'UsageError'
    code, error, err = _shown(cli, url, '--id', 'x')
    assert code == 2 and error['type'] == 'UsageError' and '--id' in err


def test_tasks_show_a_number_that_is_no_id_is_a_name(cli, url):
    code, _, err = cli('tasks', 'show', '--database', url, '5')
    assert code == 2 and "no task with id 5, and none named '5'" in err


def test_to_takes_a_number_or_a_unique_prefix(cli, db_url):
    code, out, _ = cli('migrate', '--database', db_url, '--to', '2', '--json')
    assert code == 0 and json.loads(out)['applied'] == SHIPPED[:2]
    code, out, _ = cli('migrate', '--database', db_url, '--to', '0003_task', '--json')
    assert code == 0 and json.loads(out)['applied'] == SHIPPED[:3]
    code, out, err = cli('migrate', '--database', db_url, '--to', '000', '--json')
    assert code == 2 and json.loads(out)['error']['type'] == 'UsageError'
    assert 'fits' in err and SHIPPED[3] in err and SHIPPED[8] in err
    code, out, _ = cli('rollback', '--database', db_url, '--to', '3', '--json')
    assert code == 0 and json.loads(out)['applied'] == SHIPPED[:2]


def test_check_on_a_database_behind_lists_pending_not_drift(cli, db_url):
    cli('migrate', '--database', db_url, '--to', SHIPPED[0])
    code, out, _ = cli('check', '--database', db_url)
    assert code == 1 and 'drift:' not in out
    assert [line.strip() for line in out.splitlines()
            if line.strip().startswith('pending:')] == [
        'pending: %s' % name for name in SHIPPED[1:]]
    code, out, _ = cli('check', '--database', db_url, '--json')
    data = json.loads(out)
    assert code == 1 and data['drift'] == [] and data['pending'] == SHIPPED[1:]


def test_check_up_to_date_still_reports_drift(cli, db_url):
    cli('migrate', '--database', db_url)
    from modelstore.shared.database import open_database
    database = open_database(db_url, mode='migrate')
    index = [i.name for i in database.get_indexes('fine_tuned_models') if not i.unique][0]
    database.execute_sql('DROP INDEX %s%s' % (index, '' if 'mysql' not in db_url
                                              else ' ON fine_tuned_models'))
    database.close()
    code, out, _ = cli('check', '--database', db_url, '--json')
    assert code == 1 and any('missing index' in line for line in json.loads(out)['drift'])


# -- listings ----------------------------------------------------------------------------------

def test_json_listing_is_the_same_array_streamed(cli, url, monkeypatch):
    monkeypatch.setattr(cli_registry, 'PAGE', 2)  # Several pages: keyset paging.
    for order in ('newest', 'oldest', 'name'):
        code, out, _ = cli('models', 'list', '--database', url, '--json', '--order', order)
        with modelstore.connect(url) as store:
            expected = [cli_registry.columns(m) for m in store.list_models(order=order)]
        assert code == 0 and json.loads(out) == json.loads(json.dumps(expected, default=str))
        assert out == json.dumps(json.loads(out), indent=2) + '\n'
    code, out, _ = cli('models', 'list', '--database', url, '--jsonl', '--offset', '1',
                       '--limit', '3', '--order', 'name')
    assert [json.loads(line)['model_name'] for line in out.splitlines()] == ['7', 'first', 'run']
    code, out, _ = cli('tasks', 'list', '--database', url, '--json')
    assert code == 0 and json.loads(out) == []


def test_same_creation_date_pages_neither_repeat_nor_skip(cli, db_url, monkeypatch):
    cli('migrate', '--database', db_url)
    import datetime
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    with modelstore.connect(db_url) as store:
        for n in range(7):
            store.add_model(**dict(MODEL, model_name='m%d' % n, creation_date=when))
    monkeypatch.setattr(cli_registry, 'PAGE', 3)
    code, out, _ = cli('models', 'list', '--database', db_url, '--jsonl')
    ids = [json.loads(line)['id'] for line in out.splitlines()]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 7


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_page_and_how_to_see_more(url, monkeypatch):
    monkeypatch.setattr(cli_registry, 'TERMINAL_LIMIT', 4)
    stream = _Terminal()
    from modelstore.cli.parser import build_parser
    args = build_parser().parse_args(['models', 'list', '--database', url])
    out = Output(stream, False)
    render(out, cli_registry.cmd_models_list(args, out))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 + 4 + 1 and '--all' in lines[-1] and '--offset 4' in lines[-1]
    stream = _Terminal()
    args = build_parser().parse_args(['models', 'list', '--database', url, '--all'])
    out = Output(stream, False)
    render(out, cli_registry.cmd_models_list(args, out))
    assert len(stream.getvalue().splitlines()) == 1 + 6


def test_limit_past_the_maximum_says_the_maximum(cli, url):
    code, _, err = cli('models', 'list', '--database', url, '--limit', str(2 ** 63))
    assert code == 2 and 'from 1 to %d' % 2 ** 62 in err


# -- errors: the class raised, in CLI words -----------------------------------------------------

@pytest.mark.parametrize('argv, kind', [
    (['accept'], 'UsageError'),
    (['models', 'list', '--database', 'sqlite:////nonexistent/x.db'], 'ConfigError'),
    (['models', 'show', '999'], 'NotFound'),
    (['models', 'delete', '1', '--files', '--yes'], 'UsageError'),
    (['doctor'], 'ConfigError'),
])
def test_json_errors_name_the_class_raised(cli, url, monkeypatch, argv, kind):
    monkeypatch.delenv('MODELSTORE_MODELS_ROOT', raising=False)
    if '--database' not in argv:
        argv = argv + ['--database', url]
    code, out, err = cli(*argv, '--json')
    assert code == 2 and json.loads(out)['error']['type'] == kind, err
    assert 'connect(' not in err and 'models_root=' not in err


def test_a_bad_value_is_named_as_its_option(cli, url):
    code, _, err = cli('models', 'list', '--database', url, '--created-before', 'soon')
    assert code == 2 and err.startswith('error: --created-before: ')
