"""modelstore models list|show|delete and tasks list|show: what an operator sees without Python."""
import json
import os

import pytest

import modelstore

TASK = dict(base_runtime='sglang', model_config={'m': 1}, parameters={}, optimization_config={},
            benchmark_config={})


@pytest.fixture
def url(head_url, tmp_path):
    with modelstore.connect(head_url) as store:
        store.add_model(model_name='short', base_model='b', task='text-generation',
                        model_path=str(tmp_path / 'models' / 'short_1'),
                        creation_date='2026-01-01T10:00:00')
        for i in range(2):
            store.add_model(model_name='a-very-long-model-name-' + 'x' * 60,
                            base_model='meta-llama/' + 'Llama-3.2-1B-Instruct-' * 4,
                            task='extractive-question-answering', model_path='/m/%d' % i,
                            is_custom_base_model=True,
                            creation_date='2026-01-0%dT10:00:00' % (i + 2))
        store.add_task(task_name='tune-1', **TASK)
        task = store.add_task(task_name='tune-2', **dict(TASK, base_runtime='vllm'))
        store.update_task(task.id, status='running')
    return head_url


def test_models_list_is_a_table_that_fits_80_columns(cli, url):
    code, out, _ = cli('models', 'list', '--database', url)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ['ID', 'NAME', 'VER', 'BASE', 'MODEL', 'TASK',
                                              'CREATED']
    assert len(lines) == 4 and max(map(len, lines)) <= 80
    assert '…' in lines[1] and lines[1].split()[0] == '3'  # Newest first, long name cut.
    assert lines[3].split()[:3] == ['1', 'short', '1']


def test_models_list_json_is_every_column_of_every_row(cli, url):
    code, out, _ = cli('models', 'list', '--database', url, '--json', '--custom')
    rows = json.loads(out)
    assert code == 0 and [r['id'] for r in rows] == [3, 2]
    assert set(rows[0]) == {f.column_name for f in
                            modelstore.FineTunedModel._meta.sorted_fields}
    assert rows[0]['model_name'].endswith('x' * 60)  # Not cut.
    assert rows[0]['is_custom_base_model'] is True and rows[0]['version'] == 2
    code, out, _ = cli('models', 'list', '--database', url, '--json', '--task',
                       'text-generation', '--order', 'oldest', '--limit', '5')
    assert [r['model_name'] for r in json.loads(out)] == ['short']


@pytest.mark.parametrize('argv, message', [
    (['--limit', '0'], 'limit'), (['--created-after', 'yesterday'], '--created-after'),
    (['--order', 'random'], 'order'),
    (['--limit', 'ten'], "--limit: must be a whole number from 1 to %d, got 'ten'" % 2 ** 62),
    (['--limit', str(2 ** 70)], '--limit: must be a whole number from 1 to %d' % 2 ** 62),
    (['--offset', '-1'], '--offset: must be a whole number from 0 to %d' % 2 ** 62)])
def test_a_bad_filter_is_exit_2_with_error(cli, url, argv, message):
    code, out, err = cli('models', 'list', '--database', url, *argv)
    assert code == 2 and 'error:' in err and message in err and out == ''


def test_models_show_by_id_name_and_version(cli, url):
    code, out, _ = cli('models', 'show', '1', '--database', url)
    assert code == 0 and 'model_name            short' in out and 'version               1' in out
    name = 'a-very-long-model-name-' + 'x' * 60
    code, out, _ = cli('models', 'show', name, '--database', url, '--json')
    assert [r['id'] for r in json.loads(out)] == [3]  # The latest version.
    code, out, _ = cli('models', 'show', name + '@1', '--database', url, '--json')
    assert [r['version'] for r in json.loads(out)] == [1]
    # (What follows the last @ is a version only if it is a whole number: short@x is a name.)
    for ref, message in (('99', "no model with id 99, and none named '99'"),
                         ('nobody', 'nobody'), (name + '@9', 'version 9'),
                         ('short@x', "no model named 'short@x'")):
        code, _, err = cli('models', 'show', ref, '--database', url)
        assert code == 2 and 'error:' in err and message in err, (ref, err)


def test_models_delete_refuses_without_yes_off_a_terminal(cli, url):
    code, _, err = cli('models', 'delete', '1', '--database', url)
    assert code == 2 and 'needs --yes' in err
    with modelstore.connect(url) as store:
        assert store.get_model(1)
    code, out, _ = cli('models', 'delete', '1', '--database', url, '--yes')
    assert code == 0 and out.strip() == 'Deleted model 1 (short v1).'
    code, _, err = cli('models', 'delete', '1', '--database', url, '--yes')
    assert code == 2 and 'no fine-tuned model with id 1' in err
    code, _, err = cli('models', 'delete', 'one', '--database', url, '--yes')
    assert code == 2 and 'error: model id' in err


def test_models_delete_files_removes_the_directory_inside_the_root(cli, url, tmp_path):
    folder = tmp_path / 'models' / 'short_1'
    folder.mkdir(parents=True)
    (folder / 'adapter_model.safetensors').write_bytes(b'w' * 10)
    code, _, err = cli('models', 'delete', '1', '--files', '--yes', '--database', url)
    assert code == 2 and 'models root' in err and folder.exists()
    code, out, _ = cli('models', 'delete', '1', '--files', '--yes', '--database', url,
                       '--models-root', str(tmp_path / 'models'))
    assert code == 0 and 'removed %s' % folder in out and not folder.exists()
    code, out, _ = cli('models', 'delete', '2', '--files', '--yes', '--database', url,
                       '--models-root', str(tmp_path / 'models'))
    assert code == 2 and "'/m/0' is outside the models root" in out + _


def test_tasks_list_and_show(cli, url):
    code, out, _ = cli('tasks', 'list', '--database', url)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ['ID', 'NAME', 'STATUS', 'RUNTIME', 'MODE',
                                              'CREATED']
    assert [line.split()[:4] for line in lines[1:]] == [['1', 'tune-1', 'pending', 'sglang'],
                                                         ['2', 'tune-2', 'running', 'vllm']]
    code, out, _ = cli('tasks', 'list', '--database', url, '--status', 'running', '--json')
    [task] = json.loads(out)
    assert task['task_name'] == 'tune-2' and task['status'] == 'running'
    assert 'metadata' in task and task['model_config'] == {'m': 1}
    code, out, _ = cli('tasks', 'show', 'tune-1', '--database', url, '--json')
    assert json.loads(out)[0]['deployment_mode'] == 'docker'
    code, _, err = cli('tasks', 'list', '--database', url, '--status', 'exploded')
    assert code == 2 and 'error:' in err and 'status' in err
    code, _, err = cli('tasks', 'show', '7', '--database', url)
    assert code == 2 and 'error:' in err


def test_reading_commands_never_create_a_database(cli, tmp_path):
    path = str(tmp_path / 'absent.db')
    for argv in (['models', 'list'], ['models', 'show', '1'], ['tasks', 'list'],
                 ['models', 'delete', '1', '--yes']):
        code, _, err = cli(*argv, '--database', path)
        assert code == 2 and 'no registry at' in err
    assert not os.path.exists(path)


def _on_a_terminal(argv, answer):
    """Run the CLI with stdin and stdout on a pseudo-terminal, typing ``answer``."""
    import pty
    import subprocess
    import sys
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, '-m', 'modelstore'] + argv, stdin=follower,
                            stdout=follower, stderr=subprocess.PIPE, cwd='/')
    os.close(follower)
    seen = b''
    while b'[y/N]' not in seen:
        chunk = os.read(leader, 4096)  # EIO (OSError) if the child exits without asking.
        seen += chunk
    os.write(leader, answer.encode() + b'\n')
    _, err = proc.communicate(timeout=60)
    try:
        while True:
            chunk = os.read(leader, 4096)
            if not chunk:
                break
            seen += chunk
    except OSError:  # EIO: the child closed its end.
        pass
    os.close(leader)
    return proc.returncode, seen.decode(), err.decode()


@pytest.mark.parametrize('answer', ['n', 'y'])
def test_models_delete_asks_on_a_terminal(url, answer):
    code, out, err = _on_a_terminal(['models', 'delete', '1', '--database', url], answer)
    assert 'Delete model 1 (short v1)? [y/N]' in out
    with modelstore.connect(url) as store:
        stored = store.count_models(model_name='short')
    if answer == 'y':
        assert code == 0 and 'Deleted model 1 (short v1).' in out and stored == 0
    else:
        assert code == 2 and 'not deleted' in err and stored == 1
