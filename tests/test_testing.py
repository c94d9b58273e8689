"""modelstore.testing: check_migrations' report, and the pytest plugin as a user's suite gets
it -- a throwaway project run under pytest in a subprocess, with nothing configured."""
import os
import stat
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree

import pytest

from modelstore.engine.scripts import default_directory
from modelstore.testing import check_migrations

from conftest import (HOW, ON_MYSQL, ON_POSTGRES, SHIPPED, TEST_URL, columns, copy_database,
                      dump, history, query)

APP_MODELS = '''
from peewee import *


class Dataset(Model):
    name = CharField(unique=True)
    rows = IntegerField(null=True)
    public = BooleanField(default=False)

    class Meta:
        table_name = 'datasets'
'''
INITIAL = '''
"""datasets: name and size."""
from peewee import *


def up(migrator, db):
    class Dataset(Model):
        name = CharField(unique=True)
        rows = IntegerField(null=True)

        class Meta:
            database = db
            table_name = 'datasets'
    db.create_tables([Dataset], safe=False)


def down(migrator, db):
    migrator.migrate(migrator.drop_table('datasets'))
'''
PUBLIC = '''
"""datasets.public."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column(
        'datasets', 'public', BooleanField(default=False, constraints=[SQL('DEFAULT FALSE')]),
        allow_not_null=True))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('datasets', 'public'))
'''


def write(directory, files):
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text).lstrip())
    return str(directory)


@pytest.fixture
def app(tmp_path, monkeypatch):
    """A project with its own models (``app_models``) and two good scripts."""
    (tmp_path / 'app_models.py').write_text(APP_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, 'app_models', raising=False)
    return write(tmp_path / 'migrations', {'0001_initial.py': INITIAL,
                                           '0002_public.py': PUBLIC})


def report(directory, **kw):
    with pytest.raises(AssertionError) as caught:
        check_migrations(directory, **kw)
    return str(caught.value)


# The templates behind the fast fixtures (conftest's head_url and migrated_url, the plugin's
# modelstore_store on SQLite): a copy must be the database migrating afresh gives.
WHEN = {'applied', 'applied_utc', 'duration'}  # What differs between any two runs.


def described(path):
    """A SQLite file's header fields, schema and rows; the history's timestamps left out."""
    with open(path, 'rb') as fh:
        header = fh.read(100)
    settings = {'journal (1 rollback, 2 WAL)': header[18:20], 'page size': header[16:18],
                'user_version': header[60:64], 'application_id': header[68:72],
                'text encoding': header[56:60], 'auto_vacuum': header[52:56],
                'mode': oct(stat.S_IMODE(os.stat(path).st_mode))}
    definitions, rows = dump(path)
    names = columns(path, 'schema_migration')
    rows['schema_migration'] = [tuple(v for n, v in zip(names, row) if n not in WHEN)
                                for row in rows['schema_migration']]
    return settings, definitions, rows


@pytest.mark.sqlite_only
@pytest.mark.parametrize('how', sorted(HOW))
def test_a_copy_of_a_template_is_what_migrating_afresh_gives(how, head_templates, tmp_path):
    fresh, copy = str(tmp_path / 'fresh.db'), str(tmp_path / 'copy.db')
    HOW[how]('sqlite:///' + fresh)
    copy_database(head_templates(how), copy)
    assert described(copy) == described(fresh)
    assert [r['name'] for r in history(copy)] == SHIPPED
    # The history as phases (99b51fb) record it: the shipped scripts are all expand scripts.
    assert {(r['phase'], r['note']) for r in history(copy)} == {('expand', None)}
    assert described(copy)[0]['journal (1 rollback, 2 WAL)'] == (
        b'\x02\x02' if how == 'head' else b'\x01\x01')


@pytest.mark.sqlite_only
def test_the_plugins_store_on_sqlite_is_a_copy_of_what_migrating_afresh_gives(
        modelstore_url, modelstore_store, request, tmp_path):
    assert request.getfixturevalue('_modelstore_head_template') is not None  # A copy, then.
    fresh = str(tmp_path / 'fresh.db')
    HOW['head']('sqlite:///' + fresh)
    modelstore_store.close()
    assert described(modelstore_url[len('sqlite:///'):]) == described(fresh)


def test_the_shipped_scripts_pass_against_the_shipped_models(db_url):
    check_migrations(default_directory())
    check_migrations(default_directory(), url=db_url)


def test_a_good_project_passes(app, db_url):
    check_migrations(app, models='app_models')
    check_migrations(app, models='app_models', url=db_url)


def test_head_that_differs_from_the_models_is_reported(app, tmp_path):
    os.remove(os.path.join(app, '0002_public.py'))
    text = report(app, models='app_models')
    assert "check_migrations('%s'): 1 problem" % app in text
    assert 'head does not match the models: add column datasets.public NOT NULL DEFAULT FALSE ' \
           '(modelstore new --auto would generate it)' in text


def test_numbering_gaps_and_duplicates_are_reported(app):
    os.rename(os.path.join(app, '0002_public.py'), os.path.join(app, '0003_public.py'))
    assert 'numbering: a gap between 0001_initial and 0003_public (no 0002)' in report(
        app, models='app_models')
    write_dir = os.path.join(app, '0003_again.py')
    open(write_dir, 'w').write(PUBLIC)
    assert 'numbering: 0003_again and 0003_public share the number 3' in report(
        app, models='app_models')


def test_a_stray_python_file_is_reported(app):
    open(os.path.join(app, 'helpers.py'), 'w').write('x = 1\n')
    assert 'is not a migrations directory' in report(app, models='app_models')


def test_a_script_without_down_is_reported(app):
    open(os.path.join(app, '0003_no_down.py'), 'w').write('def up(migrator, db):\n    pass\n')
    assert '0003_no_down: does not define down(migrator, db)' in report(app, models='app_models')


def test_a_down_that_does_not_restore_the_schema_is_reported(app):
    open(os.path.join(app, '0003_leaky.py'), 'w').write(textwrap.dedent('''
        from peewee import *

        def up(migrator, db):
            migrator.migrate(migrator.add_column('datasets', 'owner', TextField(null=True)),
                             migrator.add_index('datasets', ('rows',)))

        def down(migrator, db):
            migrator.migrate(migrator.drop_index('datasets', 'datasets_rows'))
        '''))
    text = report(app, models='app_models')
    assert '0003_leaky: up then down does not restore the schema: column datasets.owner: ' \
           'absent became' in text
    assert 'up run again' not in text  # The second up fails instead: reported as such.
    assert '0003_leaky: up() fails' in text


def test_an_up_that_gives_another_schema_the_second_time_is_reported(app):
    open(os.path.join(app, '0003_flaky.py'), 'w').write(textwrap.dedent('''
        from peewee import *
        RUNS = []

        def up(migrator, db):
            RUNS.append(1)
            name = 'first' if len(RUNS) == 1 else 'second'
            migrator.migrate(migrator.add_column('datasets', name, TextField(null=True)))

        def down(migrator, db):
            name = 'first' if len(RUNS) == 1 else 'second'
            migrator.migrate(migrator.drop_column('datasets', name))
        '''))
    text = report(app, models='app_models')
    assert '0003_flaky: up run again gives another schema: column datasets.first: ' in text


def test_a_script_that_fails_is_reported_with_its_error(app):
    open(os.path.join(app, '0003_bad.py'), 'w').write(
        'def up(migrator, db):\n    db.execute_sql("ALTER TABLE nowhere ADD COLUMN x INT")\n'
        'def down(migrator, db):\n    pass\n')
    text = report(app, models='app_models')
    assert '0003_bad: up() fails on' in text and 'nowhere' in text


PROJECT_TESTS = '''
import os

from modelstore.testing import check_migrations


def test_migrations():
    check_migrations('migrations', models='myapp.models')


def test_broken_migrations():
    check_migrations('broken', models='myapp.models')


def test_url_is_fresh_and_of_the_configured_backend(modelstore_url):
    server = os.environ.get('MODELSTORE_TEST_DATABASE_URL')
    assert modelstore_url.startswith('postgresql://' if server else 'sqlite:///')
    with open('urls.txt', 'a') as fh:
        fh.write(modelstore_url + '\\n')


def test_store_writes(modelstore_store):
    model = modelstore_store.add_model(model_name='m', base_model='b', task='t',
                                       model_path='/m')
    assert modelstore_store.get_model(model.id).model_name == 'm'


def test_each_test_gets_its_own_database(modelstore_store):
    assert modelstore_store.list_models() == []
'''


@pytest.mark.slow
def test_the_plugin_gives_a_users_suite_fixtures_and_check_migrations(tmp_path):
    project = tmp_path / 'project'
    write(project / 'myapp', {'__init__.py': '', 'models.py': APP_MODELS})
    write(project / 'migrations', {'0001_initial.py': INITIAL, '0002_public.py': PUBLIC})
    leaky = PUBLIC.replace("migrator.migrate(migrator.drop_column('datasets', 'public'))",
                           'pass')
    write(project / 'broken', {'0001_initial.py': INITIAL, '0002_public.py': leaky})
    write(project / 'tests', {'test_app.py': PROJECT_TESTS})
    env = dict(os.environ)
    env.pop('MODELSTORE_TEST_DATABASE_URL', None)
    if ON_POSTGRES:
        env['MODELSTORE_TEST_DATABASE_URL'] = TEST_URL
    run = subprocess.run([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider',
                          '--junitxml', str(tmp_path / 'report.xml'), 'tests'],
                         cwd=str(project), env=env, capture_output=True, text=True, timeout=300)
    outcomes = {}
    for case in ElementTree.parse(str(tmp_path / 'report.xml')).iter('testcase'):
        failure = case.find('failure')
        outcomes[case.get('name')] = failure.get('message') if failure is not None else 'passed'
    assert run.returncode == 1, run.stdout + run.stderr
    broken = outcomes.pop('test_broken_migrations')
    assert '0002_public: up then down does not restore the schema: column datasets.public' \
        in broken, broken
    assert outcomes == {name: 'passed' for name in (
        'test_migrations', 'test_url_is_fresh_and_of_the_configured_backend',
        'test_store_writes', 'test_each_test_gets_its_own_database')}, run.stdout
    assert 'modelstore fixtures: ' in run.stdout
    [url] = (project / 'urls.txt').read_text().split()
    if ON_POSTGRES:  # The throwaway database was dropped after the test.
        name = url.rsplit('/', 1)[1].split('?')[0]
        assert query(TEST_URL, 'SELECT 1 FROM pg_database WHERE datname = %s', (name,)) == []
    if ON_MYSQL:
        name = url.rsplit('/', 1)[1].split('?')[0]
        assert query(TEST_URL, 'SELECT 1 FROM information_schema.schemata WHERE schema_name = '
                     '%s', (name,)) == []


@pytest.mark.slow
def test_a_server_url_of_another_kind_is_a_usage_error(tmp_path):
    write(tmp_path / 'tests', {'test_x.py': 'def test_x(modelstore_url):\n    pass\n'})
    env = dict(os.environ, MODELSTORE_TEST_DATABASE_URL='oracle://u@127.0.0.1/x')
    run = subprocess.run([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-q',
                          'tests'], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    assert 'MODELSTORE_TEST_DATABASE_URL must name a PostgreSQL server (postgresql://...) or ' \
        'a MySQL/MariaDB one' in ' '.join((run.stdout + run.stderr).split())
