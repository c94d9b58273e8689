"""Issue 26 items 11 and 12: every hint repeats the options that chose the database and the
scripts; a database migrated with another set of scripts says so; pyproject.toml's
[tool.modelstore] sets a project's options once (command line, then environment, then file)."""
import json
import os
import shlex
import sys

import pytest

from modelstore.cli.settings import find_config, read_config
from modelstore.exceptions import ConfigError, SchemaNewerThanCode
from modelstore.shared.urls import command, mask_url

from conftest import SHIPPED

TWO = {'0001_a.py': 'def up(migrator, db):\n    db.execute_sql("CREATE TABLE a (x INTEGER)")\n'
                    'def down(migrator, db):\n    db.execute_sql("DROP TABLE a")\n',
       '0002_b.py': 'def up(migrator, db):\n    db.execute_sql("CREATE TABLE b (x INTEGER)")\n'
                    'def down(migrator, db):\n    db.execute_sql("DROP TABLE b")\n'}


@pytest.fixture
def project(scripts):
    for name, body in TWO.items():
        scripts(name, body)
    return scripts.dir


def _run_line(text):
    """The command after 'Run: ' in ``text``, split as a shell would."""
    line = [line for line in text.splitlines() if line.startswith('Run: ')][-1]
    return shlex.split(line[len('Run: '):])


def test_status_hint_repeats_migrations_and_following_it_applies_the_same_scripts(
        cli, db_url, project):
    cli('migrate', '--migrations', project, '--database', db_url, '--to', '0001_a')
    code, out, _ = cli('status', '--migrations', project, '--database', db_url)
    argv = _run_line(out)
    assert code == 1 and argv[:2] == ['modelstore', 'migrate']
    assert argv[argv.index('--migrations') + 1] == project
    at = argv.index('--database') + 1
    assert argv[at] == mask_url(db_url)
    argv[at] = db_url  # (A server's password is shown as ***: the operator types it.)
    code, out, _ = cli(*argv[1:])
    assert code == 0
    code, out, _ = cli('status', '--migrations', project, '--database', db_url, '--json')
    assert code == 0 and json.loads(out)['applied'] == ['0001_a', '0002_b']


def test_check_hint_repeats_migrations(cli, db_url, project):
    cli('migrate', '--migrations', project, '--database', db_url, '--to', '0001_a')
    code, out, _ = cli('check', '--migrations', project, '--database', db_url)
    assert code == 1 and '--migrations' in _run_line(out)


def test_changed_script_hint_repeats_migrations(cli, db_url, project):
    cli('migrate', '--migrations', project, '--database', db_url)
    with open(os.path.join(project, '0001_a.py'), 'a') as fh:
        fh.write('# edited\n')
    code, _, err = cli('migrate', '--migrations', project, '--database', db_url)
    assert code == 2 and 'modelstore accept NAME --database' in err
    assert '--migrations %s' % shlex.quote(project) in err
    code, out, _ = cli('status', '--migrations', project, '--database', db_url)
    assert '--migrations %s' % shlex.quote(project) in out.split('Changed since applied')[1]


def test_a_hint_quotes_what_the_shell_would_split():
    text = command('migrate', database='sqlite:////tmp/a b.db', migrations='/tmp/my scripts')
    assert shlex.split(text) == ['modelstore', 'migrate', '--database', 'sqlite:////tmp/a b.db',
                                 '--migrations', '/tmp/my scripts']
    assert 'p4ss' not in command('repair', database='postgresql://u:p4ss@h/db')


def test_check_repeats_models_in_its_own_hint_only():
    assert '--models' in command('check', database='sqlite:///x', models='m:M')
    assert '--models' not in command('migrate', database='sqlite:///x', models='m:M')


# -- two sets of scripts in one database -------------------------------------------------------

def test_another_script_set_is_named_with_its_directory_not_blamed_on_newer_code(
        cli, db_url, project):
    cli('migrate', '--migrations', project, '--database', db_url)
    code, _, err = cli('migrate', '--database', db_url)
    assert code == 2
    assert '0001_a, 0002_b' in err and 'shipped with modelstore' in err
    assert '--migrations' in err and 'newer code migrated it' not in err
    err = str(SchemaNewerThanCode('db', ['0003_x'], '/p/migrations'))
    assert '/p/migrations does not hold (0003_x)' in err


# -- pyproject.toml ---------------------------------------------------------------------------

needs_tomllib = pytest.mark.skipif(sys.version_info < (3, 11), reason='tomllib: Python 3.11+')


def _pyproject(directory, body):
    path = directory / 'pyproject.toml'
    path.write_text('[project]\nname = "p"\n\n[tool.modelstore]\n' + body)
    return str(path)


@needs_tomllib
def test_pyproject_sets_database_and_migrations_found_from_a_subdirectory(
        cli, tmp_path, project, monkeypatch):
    _pyproject(tmp_path, 'database = "reg.db"\nmigrations = %s\n' % json.dumps(project))
    below = tmp_path / 'src' / 'pkg'
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    code, out, _ = cli('migrate', '--json')
    data = json.loads(out)
    assert code == 0 and data['names'] == ['0001_a', '0002_b']
    assert data['database'] == 'sqlite:///' + str(tmp_path / 'reg.db')


@needs_tomllib
def test_command_line_then_environment_then_pyproject(cli, tmp_path, monkeypatch, project):
    _pyproject(tmp_path, 'database = "file.db"\nmigrations = %s\n' % json.dumps(project))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('MODELSTORE_DATABASE_URL', 'sqlite:///' + str(tmp_path / 'env.db'))
    _, out, _ = cli('status', '--json')
    assert json.loads(out)['database'].endswith('/env.db')
    _, out, _ = cli('status', '--json', '--database', str(tmp_path / 'cli.db'))
    assert json.loads(out)['database'].endswith('/cli.db')
    monkeypatch.delenv('MODELSTORE_DATABASE_URL')
    _, out, _ = cli('status', '--json')
    assert json.loads(out)['database'].endswith('/file.db')
    _, out, _ = cli('status', '--json', '--migrations', os.path.dirname(project))
    assert json.loads(out)['pending'] == []  # The command line's directory: no scripts.


@needs_tomllib
@pytest.mark.parametrize('body, said', [
    ('databse = "x.db"\n', "unknown key 'databse'"),
    ('migrations = 3\n', 'migrations must be a non-empty string, got 3'),
    ('models = ""\n', 'models must be a non-empty string'),
    ('database = [1\n', 'is not valid TOML'),
])
def test_bad_pyproject_is_a_config_error_naming_file_and_key(cli, tmp_path, monkeypatch, body,
                                                              said):
    path = _pyproject(tmp_path, body)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli('status', '--json')
    assert code == 2 and said in err and path in err
    assert json.loads(out)['error']['type'] == 'ConfigError'
    assert os.listdir(tmp_path) == ['pyproject.toml']  # Nothing created.


def test_a_pyproject_without_the_table_is_not_used(tmp_path):
    (tmp_path / 'pyproject.toml').write_text('[tool.other]\nmodelstore = 1\n')
    assert find_config(str(tmp_path)) is None


def test_without_tomllib_the_table_is_refused_not_ignored(tmp_path, monkeypatch):
    import modelstore.cli.settings as settings
    path = _pyproject(tmp_path, 'database = "x.db"\n')
    monkeypatch.setattr(settings, 'tomllib', None)
    with pytest.raises(ConfigError, match='Python 3.11'):
        read_config(path)
