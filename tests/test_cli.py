"""The command line: exit codes, JSON, colour, errors, and both entry points."""
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from modelstore.cli import Output
from modelstore.db import mask_url

from conftest import SHIPPED


def test_status_json_has_the_documented_keys(cli, db_url):
    cli('migrate', '--database', db_url, '--to', SHIPPED[0])
    code, out, _ = cli('status', '--json', '--database', db_url)
    data = json.loads(out)
    assert code == 1
    assert {'database', 'applied', 'pending'} <= set(data)
    assert data['applied'] == SHIPPED[:1] and data['pending'] == SHIPPED[1:]


def test_migrate_json_is_one_object(cli, db_url):
    code, out, _ = cli('migrate', '--database', db_url, '--json')
    data = json.loads(out)
    assert code == 0 and data['names'] == SHIPPED and data['pending'] == []
    assert data['scripts'][1]['steps'][0]['sql'][0].startswith('ALTER TABLE')


def test_check_json_reports_ok(cli, db_url):
    cli('migrate', '--database', db_url)
    code, out, _ = cli('check', '--database', db_url, '--json')
    assert code == 0 and json.loads(out)['ok'] is True


def test_history_lists_how_each_script_was_applied(cli, db_url):
    cli('migrate', '--database', db_url)
    code, out, _ = cli('history', '--database', db_url)
    assert code == 0
    assert all(name in out for name in SHIPPED) and ' ran ' in out


def test_errors_are_one_line_and_exit_2(cli):
    code, out, err = cli('status', '--database', 'nosuch://host/db')
    assert code == 2 and out == ''
    assert err.startswith('error: ') and err.count('\n') == 1


def test_verbose_adds_the_traceback(cli):
    code, _, err = cli('status', '--database', 'nosuch://host/db', '-v')
    assert code == 2 and 'Traceback' in err and err.rstrip().splitlines()[-1].startswith('error')


def test_usage_errors_exit_2(cli):
    assert cli('frobnicate')[0] == 2
    assert cli('migrate', '--to')[0] == 2


def test_dry_run_and_fake_together_are_refused(cli, db_url):
    code, _, err = cli('migrate', '--database', db_url, '--dry-run', '--fake')
    assert code == 2 and 'cannot be combined' in err


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv('NO_COLOR', raising=False)
    monkeypatch.setenv('TERM', 'xterm')
    assert Output(FakeTTY(), False).paint('✓', '32') == '\033[32m✓\033[0m'
    assert Output(io.StringIO(), False).paint('✓', '32') == '✓'
    monkeypatch.setenv('NO_COLOR', '1')
    assert Output(FakeTTY(), False).paint('✓', '32') == '✓'


def _console_script():
    found = shutil.which('modelstore', path=sysconfig.get_path('scripts'))
    if found is None:
        pytest.fail('the modelstore console script is not installed next to %s'
                    % sys.executable)
    return found


def test_console_script_and_python_dash_m_do_the_same(tmp_path):
    env = dict(os.environ, NO_COLOR='1', XDG_DATA_HOME=str(tmp_path / 'xdg'))
    outputs = []
    for argv in ([_console_script()], [sys.executable, '-m', 'modelstore']):
        url = 'sqlite:///' + str(tmp_path / ('%d.db' % len(outputs)))
        result = subprocess.run(argv + ['status', '--json', '--database', url],
                                capture_output=True, text=True, env=env)
        data = json.loads(result.stdout)
        outputs.append((result.returncode, data['pending'], data['applied']))
    assert outputs[0] == outputs[1] == (1, SHIPPED, [])


def test_the_default_database_is_used_without_database(tmp_path, cli):
    code, out, _ = cli('migrate')
    assert code == 0
    assert os.path.isfile(tmp_path / 'xdg' / 'modelstore' / 'modelstore.db')


def test_common_options_work_before_or_after_the_command(cli, db_url, tmp_path):
    code, out, _ = cli('--database', db_url, '--json', 'status')
    assert code == 1 and json.loads(out)['database'] == mask_url(db_url)
    other = 'sqlite:///' + str(tmp_path / 'other.db')
    code, out, _ = cli('--database', other, 'status', '--json', '--database', db_url)
    assert json.loads(out)['database'] == mask_url(db_url)  # After the command wins.


def test_rollback_of_a_missing_file_does_not_create_it(cli, db_path, db_url):
    code, out, _ = cli('rollback', '--database', db_url)
    assert code == 0 and 'Nothing to roll back' in out
    assert not os.path.exists(db_path)
