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
from modelstore.shared.urls import mask_url

import modelstore

from conftest import SHIPPED, execute


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


@pytest.mark.slow
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


# Start-up (issue 30): what each command line loads, in a fresh interpreter. `--help` prints
# the grammar only; `status` needs peewee and the engine, never the registry or the authoring
# tools; `check` loads the authoring tools (its --models), `models list` the registry.
LOADED = """
import sys
from modelstore.cli import main
code = main(sys.argv[1:])
print('\\n'.join(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize('argv, loads, not_loaded', [
    (['--help'], set(), {'peewee', 'modelstore.engine', 'modelstore.registry',
                         'modelstore.authoring', 'modelstore.dialects'}),
    (['migrate', '--help'], set(), {'peewee', 'modelstore.engine'}),
    (['status'], {'peewee', 'modelstore.engine'}, {'modelstore.registry',
                                                  'modelstore.authoring'}),
    (['check'], {'modelstore.authoring'}, {'modelstore.registry'}),
    (['models', 'list'], {'modelstore.registry'}, {'modelstore.authoring'}),
])
def test_a_command_loads_only_what_it_uses(tmp_path, argv, loads, not_loaded):
    env = dict(os.environ, NO_COLOR='1', XDG_DATA_HOME=str(tmp_path / 'xdg'))
    url = 'sqlite:///' + str(tmp_path / 'registry.db')
    database = [] if '--help' in argv else ['--database', url]
    if argv[0] == 'models':
        with modelstore.connect(url):
            pass
    result = subprocess.run([sys.executable, '-c', LOADED] + argv + database,
                            capture_output=True, text=True, env=env)
    loaded = set(result.stderr.split())
    assert result.returncode in (0, 1), result.stderr[-2000:]
    assert loads <= loaded, sorted(loads - loaded)
    assert not not_loaded & loaded, sorted(not_loaded & loaded)


def test_every_command_names_a_function_that_exists():
    from modelstore.cli import parser
    for name in parser._MODULES:
        function = parser.Command(name).load()
        assert callable(function) and function.__name__ == name, name


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


# -- --lock-timeout is validated (issue 11: B6) ------------------------------------------------

@pytest.mark.parametrize('value, message', [
    ('nan', 'must be a finite number of seconds, at least 0, got nan'),
    ('inf', 'must be a finite number of seconds, at least 0, got inf'),
    ('-1', 'must be a finite number of seconds, at least 0, got -1.0'),
    ('1e7', 'must be at most 2147483 s'),
    ('soon', "invalid float value: 'soon'"),
])
@pytest.mark.parametrize('command', ['migrate', 'rollback', 'restore', 'accept'])
def test_lock_timeout_must_be_a_sane_number_of_seconds(cli, db_path, tmp_path, command, value,
                                                       message):
    extra = {'restore': [str(tmp_path / 'x.bak')], 'accept': ['--all']}.get(command, [])
    code, out, err = cli(command, *extra, '--database', db_path, '--lock-timeout', value)
    assert code == 2 and '--lock-timeout: ' + message in err
    assert not os.path.exists(db_path) and out == ''


def test_the_api_refuses_a_lock_timeout_it_cannot_honour(db_url):
    import math
    from modelstore import ConfigError, Engine
    from modelstore.engine.backup import Backups
    with modelstore.connect(db_url) as store:
        for bad in (math.nan, math.inf, -0.5, 10 ** 7, '30', True):
            with pytest.raises(ConfigError, match='lock timeout'):
                Engine(store.database, lock_timeout=bad)
            with pytest.raises(ConfigError, match='lock timeout'):
                Backups('/tmp/x.db', timeout=bad)


def test_a_zero_lock_timeout_is_allowed(cli, db_url):
    assert cli('migrate', '--database', db_url, '--lock-timeout', '0')[0] == 0


# -- a damaged history table is shown, and fails check (B4) ------------------------------------

@pytest.mark.sqlite_only
def test_garbage_in_the_history_is_shown_as_unreadable_and_fails_check(cli, db_path):
    assert cli('migrate', '--database', db_path)[0] == 0
    execute(db_path,
            "UPDATE schema_migration SET applied_utc = 'garbage' WHERE name = '%s'" % SHIPPED[1],
            "UPDATE schema_migration SET duration = 'slow', method = 'zzz' WHERE name = '%s'"
            % SHIPPED[2],
            "UPDATE schema_migration SET applied = 'x', applied_utc = NULL WHERE name = '%s'"
            % SHIPPED[3])
    code, out, err = cli('status', '--database', db_path)
    assert code == 0, err  # Nothing is pending: the history is damaged, not behind.
    assert "unreadable: 'garbage'" in out and "unreadable: 'zzz'" in out
    assert 'damaged history: %s: applied_utc holds' % SHIPPED[1] in out
    code, out, err = cli('history', '--database', db_path)
    assert code == 0, err
    assert "unreadable: 'slow'" in out and "unreadable: 'x'" in out
    code, out, _ = cli('check', '--database', db_path)
    assert code == 1
    assert "damaged history: %s: applied_utc holds 'garbage', which is not a timestamp" \
        % SHIPPED[1] in out
    assert "duration holds 'slow', which is not a number of seconds" in out
    assert "method holds 'zzz'" in out and "applied holds 'x'" in out
    code, out, _ = cli('check', '--json', '--database', db_path)
    data = json.loads(out)
    assert code == 1 and not data['ok'] and len(data['damaged_history']) == 4
    code, out, _ = cli('history', '--json', '--database', db_path)
    rows = {r['name']: r for r in json.loads(out)['history']}
    assert rows[SHIPPED[1]]['applied_utc'] is None
    assert rows[SHIPPED[1]]['unreadable'] == {'applied_utc': "'garbage'"}
    # The damage does not stop the engine: nothing is pending, so nothing runs.
    code, out, _ = cli('migrate', '--database', db_path)
    assert code == 0 and 'Nothing to migrate' in out


@pytest.mark.sqlite_only
def test_a_checksum_that_is_not_one_is_damage_too(cli, db_path):
    assert cli('migrate', '--database', db_path)[0] == 0
    execute(db_path, "UPDATE schema_migration SET checksum = 42 WHERE name = '%s'" % SHIPPED[0])
    code, out, _ = cli('check', '--database', db_path)
    assert code == 1 and "checksum holds '42', which is not a SHA-256 hex digest" in out


# -- --json on an error: one JSON object on stdout too -----------------------------------------

def test_json_errors_are_a_json_object_on_stdout(cli, db_url):
    cli('migrate', '--database', db_url, '--to', SHIPPED[0])
    code, out, err = cli('migrate', '--json', '--database', db_url, '--to', '9999_nope')
    data = json.loads(out)
    assert code == 2 and err.startswith('error: ')
    assert data['ok'] is False and data['error']['type'] == 'MigrationError'
    assert '9999_nope' in data['error']['message'] and data['error']['exit_code'] == 2
    code, out, _ = cli('status', '--json', '--database', 'oracle://x/y')
    assert code == 2 and json.loads(out)['error']['type'] == 'ConfigError'
    code, out, err = cli('migrate', '--json', '--keep-backups', 'many')
    data = json.loads(out)
    assert code == 2 and data['error']['type'] == 'UsageError'
    assert '--keep-backups' in data['error']['message'] and 'usage:' in err


def test_json_error_of_a_refused_rollback_lists_the_losses(cli, db_url):
    with modelstore.connect(db_url) as store:
        store.add_model(model_name='m', base_model='b', task='t', model_path='/p',
                        is_custom_base_model=True)
    code, out, _ = cli('rollback', '--json', '--database', db_url, '--to', SHIPPED[1])
    data = json.loads(out)
    assert code == 2 and data['error']['type'] == 'DataLossRefused'
    assert any('is_custom_base_model' in loss for loss in data['error']['losses'])


def test_repair_with_nothing_to_repair_says_so_and_creates_no_file(cli, tmp_path, db_url):
    missing = tmp_path / 'nope.db'
    code, out, _ = cli('repair', '--database', str(missing))
    assert code == 0 and out.startswith('Nothing to repair') and not missing.exists()
    assert cli('migrate', '--database', db_url)[0] == 0
    code, out, _ = cli('repair', '--database', db_url, '--json')
    assert code == 0 and json.loads(out)['repaired'] == []
