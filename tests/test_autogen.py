"""`modelstore new --auto`: scripts generated from the models against the replayed schema.

Each test writes a models module for a project whose scripts are copies of the shipped ones,
generates, and then uses the result the way an operator would: migrate, check, rollback,
migrate again, and (for the comparison with peewee's own tool) pwmigrate.
"""
import json
import os
import subprocess
import sys
import textwrap
import decimal
import uuid

import pytest

from modelstore.engine import detect_drift
from modelstore.engine.scripts import discover
from modelstore.models import TaskStatus
from modelstore.shared.database import open_database
from modelstore.testing import check_migrations, schema_of

from conftest import ON_POSTGRES, ON_SERVER, SHIPPED, execute, query, tables

HEAD = len(SHIPPED)
BASE = '''
import datetime
from peewee import *
from modelstore.models import FineTunedModel as _FineTunedModel, Task as _Task
from modelstore.models import (ModelAlias, ModelImport, ModelTag, ModelVersionCounter,
                               RegistryEvent, RegistryEventCounter)


class FineTunedModel(_FineTunedModel):
{fine_tuned}
    class Meta:
        table_name = 'fine_tuned_models'
{fine_tuned_meta}


class Task(_Task):
{task}
    class Meta:
        table_name = 'tasks'
{task_meta}

{extra}
MODELS = [FineTunedModel, Task, ModelVersionCounter, ModelImport, RegistryEvent,
          RegistryEventCounter, ModelAlias, ModelTag{more}]
'''
# 0009's partial unique index, for a models module that declares its own Meta.indexes.
PARTIAL_INDEX = '''
FineTunedModel.add_index(FineTunedModel.index(
    FineTunedModel.model_name, FineTunedModel.version, unique=True,
    where=FineTunedModel.version.is_null(False), name='fine_tuned_models_model_name_version'))
FineTunedModel.add_index(FineTunedModel.index(
    FineTunedModel.archived_at, where=FineTunedModel.archived_at.is_null(False),
    name='fine_tuned_models_archived_at'))
'''
# FineTunedModel's indexes but the partial ones (0009's, 0017's).
TUPLE_INDEXES = ('indexes = ((("task", "is_custom_base_model", "creation_date", "model_name"), '
                 'False), (("creation_date", "id"), False), '
                 '(("base_model", "creation_date", "id"), False))')
# The bench's change: a nullable FloatField, a BooleanField(default=False), an indexed CharField.
BENCH_CHANGE = dict(fine_tuned='''
    eval_seconds = FloatField(null=True)
    is_archived = BooleanField(default=False)
    run_tag = CharField(null=True, index=True)
''')


@pytest.fixture
def project(tmp_path, monkeypatch):
    """project(**parts) writes a models module (BASE filled in) and returns its name;
    project.dir is the migrations directory (copies of the shipped scripts)."""
    directory = tmp_path / 'migrations'
    directory.mkdir()
    for script in discover():
        (directory / os.path.basename(script.path)).write_bytes(open(script.path, 'rb').read())
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source=None, **parts):
        name = 'models_%s' % uuid.uuid4().hex[:8]
        if source is None:
            fill = {k: '' for k in ('fine_tuned', 'fine_tuned_meta', 'task', 'task_meta',
                                    'extra', 'more')}
            fill.update(parts)
            fill = {k: textwrap.indent(textwrap.dedent(v), '    ') if k in (
                'fine_tuned', 'task') else textwrap.dedent(v) for k, v in fill.items()}
            for k in ('fine_tuned_meta', 'task_meta'):
                fill[k] = textwrap.indent(fill[k], '        ')
            source = BASE.format(**fill)
        (tmp_path / (name + '.py')).write_text(textwrap.dedent(source))
        return name
    write.dir = directory
    write.tmp = tmp_path
    return write


def generated(project):
    return sorted(p for p in os.listdir(project.dir) if int(p[:4]) > HEAD)


def read(project, index=0):
    return (project.dir / generated(project)[index]).read_text()


def todos_in(text):
    """The TODO items of a script, unwrapped."""
    items = []
    for line in text.splitlines():
        if line.startswith('# TODO: '):
            items.append(line[len('# TODO: '):])
        elif line.startswith('#       ') and items:
            items[-1] += ' ' + line[len('#       '):]
    return items


def models_of(name):
    return __import__(name).MODELS


def test_no_difference_writes_nothing_and_exits_0(cli, project):
    for models in ('modelstore.models', project()):
        code, out, err = cli('new', '--auto', 'nothing', '--migrations', project.dir,
                             '--models', models)
        assert (code, err) == (0, '')
        assert out.startswith('Nothing to generate: %s match the schema' % models)
        assert generated(project) == []


def test_the_bench_change_is_one_add_column_each_and_a_concurrent_index_script(cli, project):
    models = project(**BENCH_CHANGE)
    code, out, err = cli('new', '--auto', 'training', '--migrations', project.dir,
                         '--models', models)
    assert (code, err) == (0, '')
    schema, indexes = generated(project)
    assert schema == '%04d_training.py' % (HEAD + 1)
    assert indexes == '%04d_training_indexes.py' % (HEAD + 2)
    assert out.splitlines()[:2] == [str(project.dir / schema), str(project.dir / indexes)]
    text = read(project)
    assert "migrator.add_column('fine_tuned_models', 'eval_seconds', FloatField(null=True))" \
        in text
    assert "BooleanField(default=False, constraints=[SQL('DEFAULT FALSE')])" in text
    assert text.count('allow_not_null=True') == 1
    assert "CharField(null=True, max_length=255)" in text  # Its index is the next script's.
    assert 'add_not_null' not in text and 'UPDATE' not in text and 'apply_default' not in text
    assert not [line for line in text.splitlines() if line.startswith(('import', 'from'))
                and (models in line or 'modelstore.models' in line)]
    index_text = read(project, 1)
    assert 'atomic = False' in index_text and 'CONCURRENTLY' in index_text
    assert "('fine_tuned_models', 'fine_tuned_models_run_tag', ('run_tag',), False)" in index_text


def test_generated_scripts_migrate_check_roll_back_and_migrate_unchanged(cli, project, db_url):
    models = project(**BENCH_CHANGE)
    assert cli('migrate', '--database', db_url)[0] == 0  # The shipped head, with a row.
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, creation_date, "
                    "model_path) VALUES ('m', 'b', 't', '2026-01-01T00:00:00', '/p')")
    assert cli('new', '--auto', 'training', '--migrations', project.dir, '--models', models)[0] \
        == 0
    code, out, err = cli('migrate', '--database', db_url, '--migrations', project.dir,
                         '--dry-run')
    assert code == 0, err
    sql = [line.strip() for line in out.splitlines() if line.startswith('      ')]
    archived = [s for s in sql if 'is_archived' in s]
    assert len(archived) == 1 and 'NOT NULL DEFAULT FALSE' in archived[0], sql
    assert not [s for s in sql if s.upper().startswith('UPDATE')], sql
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert query(db_url, 'SELECT is_archived, eval_seconds, run_tag FROM '
                         'fine_tuned_models') in ([(0, None, None)], [(False, None, None)])
    code, out, err = cli('check', '--database', db_url, '--migrations', project.dir,
                         '--models', models)
    assert code == 0, out + err
    head = _schema(db_url)
    assert cli('rollback', '--database', db_url, '--migrations', project.dir, '--to',
               generated(project)[0][:-3], '--yes')[0] == 0
    assert 'run_tag' not in _schema(db_url)['fine_tuned_models'][0]
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert _schema(db_url) == head
    code, out, _ = cli('new', '--auto', 'again', '--migrations', project.dir, '--models', models)
    assert code == 0 and out.startswith('Nothing to generate')


def _schema(url):
    database = open_database(url, mode='inspect')
    try:
        return schema_of(database)
    finally:
        database.close()


@pytest.mark.slow
def test_generated_scripts_run_under_pwmigrate_unchanged(cli, project, db_url):
    models = project(**BENCH_CHANGE)
    assert cli('new', '--auto', 'training', '--migrations', project.dir, '--models', models)[0] \
        == 0
    for command in (['up'], ['down', SHIPPED[-1]], ['up']):
        run = subprocess.run([sys.executable, '-m', 'playhouse.migrations', db_url] + command
                             + ['-d', str(project.dir)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
    database = open_database(db_url, mode='inspect')
    try:
        assert not detect_drift(database, models_of(models))
    finally:
        database.close()


TODO_CASES = {
    'type change': (dict(task='base_runtime = TextField()'),
                    'tasks.base_runtime changes type from VARCHAR(255) to TEXT'),
    'longer varchar': (dict(task='runtime_image_tag = CharField(max_length=64, null=True)'),
                       'tasks.runtime_image_tag changes type'),
    'rename': (dict(fine_tuned='base_model = TextField(column_name="base")'),
               'fine_tuned_models.base is NOT NULL and has no default'),
    'callable default': (dict(fine_tuned='retired_at = DateTimeField(default='
                                         'datetime.datetime.now)'),
                         'fine_tuned_models.retired_at is NOT NULL and its default '
                         'datetime.now is computed in Python'),
    'no default': (dict(fine_tuned='owner = TextField()'),
                   'fine_tuned_models.owner is NOT NULL and has no default'),
    'non-constant default': (dict(fine_tuned='since = DateTimeField(default=datetime.datetime('
                                             '2020, 1, 1, tzinfo=datetime.timezone.utc))'),
                             'is not a constant SQL can hold'),
    'non-constant database default': (dict(fine_tuned='seen = DateTimeField(constraints=[SQL('
                                                      '"DEFAULT CURRENT_TIMESTAMP")])'),
                                      'database default CURRENT_TIMESTAMP, which is not a '
                                      'constant'),
    'becomes not null': (dict(task='description = TextField()'),
                         'tasks.description becomes NOT NULL'),
    'dropped table': (dict(more='][:1'), 'table tasks is in the schema but no model maps it'),
    'changed database default': (dict(fine_tuned='is_custom_base_model = BooleanField('
                                                 'default=True, constraints=[SQL("DEFAULT '
                                                 'TRUE")])'),
                                 'changes its database default from FALSE to TRUE'),
}


@pytest.mark.parametrize('case', sorted(TODO_CASES))
def test_what_cannot_be_generated_safely_is_a_todo_and_the_script_refuses_to_run(
        cli, project, db_url, case):
    parts, todo = TODO_CASES[case]
    models = project(**parts)
    code, out, err = cli('new', '--auto', 'change', '--migrations', project.dir, '--models',
                         models)
    assert code == 1, out + err
    assert 'todo: ' in err and todo in err, err
    text = read(project)
    assert [t for t in todos_in(text) if todo in t]
    assert 'drop_column' not in text.split('def down')[0]
    assert 'drop_table' not in text.split('def down')[0]
    assert cli('migrate', '--database', db_url)[0] == 0
    before = _schema(db_url)
    code, out, err = cli('migrate', '--database', db_url, '--migrations', project.dir)
    assert code == 2 and 'has TODO items to resolve by hand' in err, out + err
    assert _schema(db_url) == before


def test_a_dropped_column_is_generated_only_as_a_contract_script(cli, project, db_url):
    models = project(extra="FineTunedModel._meta.remove_field('description')")
    code, out, err = cli('new', '--auto', 'drop', '--migrations', project.dir, '--models', models)
    assert code == 1 and generated(project) == []  # No expand change: no script at all.
    assert 'contract: column fine_tuned_models.description is in the schema but no field maps ' \
        'it' in err and '--contract' in err
    code, out, _ = cli('new', '--auto', '--check', '--migrations', project.dir, '--models',
                       models)  # CI's check: the models need a script.
    assert code == 1 and 'contract: column fine_tuned_models.description' in out
    code, out, err = cli('new', '--auto', 'drop', '--migrations', project.dir, '--models', models,
                         '--contract')
    assert (code, err) == (0, ''), out
    text = read(project)
    assert "phase = 'contract'" in text
    up, down = text.split('def down')
    assert "migrator.drop_column('fine_tuned_models', 'description')" in up
    assert "migrator.add_column('fine_tuned_models', 'description', TextField(null=True))" \
        in down
    assert '+ drop column fine_tuned_models.description' in out
    execute(db_url, *_migrated_with_a_model(cli, db_url, project))
    # The expand step holds it back; the contract step runs it.
    code, out, err = cli('migrate', '--database', db_url, '--migrations', project.dir,
                         '--phase', 'expand')
    assert code == 0 and 'description' in [c for c in _columns(db_url)]
    assert cli('migrate', '--database', db_url, '--migrations', project.dir, '--phase',
               'contract')[0] == 0
    assert 'description' not in _columns(db_url)
    assert query(db_url, 'SELECT model_name FROM fine_tuned_models') == [('m',)]
    assert cli('check', '--database', db_url, '--migrations', project.dir, '--models',
               models)[0] == 0
    assert cli('rollback', '--database', db_url, '--migrations', project.dir, '--yes')[0] == 0
    assert 'description' in _columns(db_url)  # Back, empty.


def _migrated_with_a_model(cli, db_url, project):
    assert cli('migrate', '--database', db_url)[0] == 0
    return ["INSERT INTO fine_tuned_models (model_name, base_model, task, description, "
            "creation_date, model_path) VALUES ('m', 'b', 't', 'kept', '2026-01-01T00:00:00', "
            "'/p')"]


def _columns(db_url):
    database = open_database(db_url, mode='inspect')
    try:
        return [c.name for c in database.get_columns('fine_tuned_models')]
    finally:
        database.close()


def test_a_not_null_column_no_field_maps_is_relaxed_in_the_expand_script(cli, project,
                                                                         db_url):
    """The new release no longer writes model_path (NOT NULL, no default): the expand script
    drops its NOT NULL, so the new release's INSERTs work before the contract step drops
    it."""
    models = project(extra="FineTunedModel._meta.remove_field('model_path')")
    code, out, err = cli('new', '--auto', 'relax', '--migrations', project.dir, '--models',
                         models)
    assert code == 1 and '+ drop NOT NULL on fine_tuned_models.model_path' in out, out + err
    assert 'contract: column fine_tuned_models.model_path' in err
    assert "migrator.drop_not_null('fine_tuned_models', 'model_path')" in read(project)
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, "
                    "creation_date) VALUES ('m', 'b', 't', '2026-01-01T00:00:00')")
    code, out, err = cli('new', '--auto', 'drop_path', '--migrations', project.dir, '--models',
                         models, '--contract')
    assert code == 0 and '+ drop column fine_tuned_models.model_path' in out, out + err


def test_an_index_over_a_dropped_column_goes_with_it_in_the_contract_script(cli, project,
                                                                           db_url):
    """The expand script leaves a unique index over a column no field maps alone (it is
    release N's constraint while N writes the column); the contract script drops it just
    before the column -- SQLite refuses to drop an indexed column -- and down() builds it
    again."""
    tagged = project(fine_tuned='run_tag = CharField(null=True)\nrun_day = IntegerField(null=True)',
                     extra='FineTunedModel.add_index(FineTunedModel.run_day, '
                           'FineTunedModel.run_tag, unique=True)')
    code, out, err = cli('new', '--auto', 'tag', '--migrations', project.dir, '--models', tagged)
    assert code == 0, out + err
    written = generated(project)
    untagged = project()  # Neither field any more.
    code, out, err = cli('new', '--auto', 'untag', '--migrations', project.dir, '--models',
                         untagged)
    assert code == 1 and generated(project) == written, out + err  # No expand script.
    assert 'contract: column fine_tuned_models.run_day' in err and 'drop index' not in out
    code, out, err = cli('new', '--auto', 'untag', '--migrations', project.dir, '--models',
                         untagged, '--contract')
    assert (code, err) == (0, ''), out
    up, down = read(project, len(written)).split('def down')
    drop_index = up.index("migrator.drop_index('fine_tuned_models', ")
    assert drop_index < up.index("migrator.drop_column('fine_tuned_models', 'run_day')")
    assert up.index('if not isinstance(db, PostgresqlDatabase):') < drop_index
    assert up.count('drop_index') == 1 and "('run_day', 'run_tag'), True," in down
    assert max(map(len, down.splitlines())) <= 99
    assert down.index("add_column('fine_tuned_models', 'run_tag'") < down.index(
        "add_column('fine_tuned_models', 'run_day'") < down.index('add_index')
    code, out, err = cli('lint', '--migrations', project.dir, *(
        ['--database', db_url] if ON_SERVER else []))
    assert 'MS003' not in out and 'MS006' not in out, out  # (MS002: SQLite's rebuild.)
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert 'run_day' not in _columns(db_url) and 'run_tag' not in _columns(db_url)
    assert cli('check', '--database', db_url, '--migrations', project.dir, '--models',
               untagged)[0] == 0
    assert cli('rollback', '--database', db_url, '--migrations', project.dir, '--yes')[0] == 0
    database = open_database(db_url, mode='inspect')
    try:
        assert [(i.columns, bool(i.unique)) for i in database.get_indexes('fine_tuned_models')
                if 'run_day' in i.columns] == [(['run_day', 'run_tag'], True)]
    finally:
        database.close()


def test_an_index_over_a_renamed_and_a_dropped_column_rolls_back(cli, project, db_url):
    """down() renames back before it builds the index again: the index spans both."""
    before = project(fine_tuned='old_name = CharField(null=True)\ngone = CharField(null=True)',
                     extra='FineTunedModel.add_index(FineTunedModel.old_name, '
                           'FineTunedModel.gone)')
    assert cli('new', '--auto', 'add', '--migrations', project.dir, '--models', before)[0] == 0
    after = project(fine_tuned='new_name = CharField(null=True)')
    code, out, err = cli('new', '--auto', 'ren', '--migrations', project.dir, '--models', after,
                         '--contract', '--rename', 'fine_tuned_models.old_name=new_name')
    assert code == 0, out + err
    code, out, err = cli('lint', '--migrations', project.dir, *(
        ['--database', db_url] if ON_SERVER else []))
    assert 'MS006' not in out and 'MS003' not in out, out
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert 'new_name' in _columns(db_url) and 'gone' not in _columns(db_url)
    code, out, err = cli('rollback', '--database', db_url, '--migrations', project.dir, '--yes')
    assert code == 0, out + err
    assert {'old_name', 'gone'} <= set(_columns(db_url))


def test_a_rename_beside_expand_changes_is_expand_with_rename_then_contract(cli, project,
                                                                           db_url):
    """An indexed column renamed while another is added: the expand run with --rename adds
    the other one only (the renamed column's index goes with it); the contract run renames,
    and the models then match -- index included."""
    before = project(fine_tuned='old_name = CharField(null=True, index=True)')
    assert cli('new', '--auto', 'add', '--migrations', project.dir, '--models', before)[0] == 0
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, "
                    "creation_date, model_path, old_name) VALUES ('m', 'b', 't', "
                    "'2026-01-01T00:00:00', '/p', 'kept')")
    after = project(fine_tuned='new_name = CharField(null=True, index=True)\n'
                               'extra_col = IntegerField(null=True)')
    rename = ['--rename', 'fine_tuned_models.old_name=new_name']
    code, out, err = cli('new', '--auto', 'extra', '--migrations', project.dir, '--models',
                         after, *rename)
    assert code == 1 and out.splitlines()[1:] == ['  + add column fine_tuned_models.extra_col'], \
        out + err
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    code, out, err = cli('new', '--auto', 'ren', '--migrations', project.dir, '--models', after,
                         '--contract', *rename)
    assert code == 0 and out.splitlines()[1:] == [
        '  + rename column fine_tuned_models.old_name to new_name'], out + err
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert query(db_url, 'SELECT new_name FROM fine_tuned_models') == [('kept',)]
    code, out, err = cli('check', '--database', db_url, '--migrations', project.dir,
                         '--models', after)
    assert code == 0, out + err


@pytest.mark.not_mysql('MySQL has no partial indexes')
def test_a_partial_index_over_a_dropped_column_waits_for_the_contract_script(cli, project):
    (project.dir / ('%04d_gone.py' % (HEAD + 1))).write_text(textwrap.dedent('''
        from peewee import CharField


        def up(migrator, db):
            migrator.migrate(migrator.add_column('fine_tuned_models', 'gone',
                                                 CharField(null=True)))
            db.execute_sql('CREATE INDEX ftm_gone_partial ON fine_tuned_models (gone) '
                           'WHERE gone IS NOT NULL')
        '''))
    written = generated(project)
    after = project()
    code, out, err = cli('new', '--auto', 'rm', '--migrations', project.dir, '--models', after)
    assert code == 1 and generated(project) == written, out + err  # No TODO-only expand script.
    assert 'todo:' not in err and 'contract: column fine_tuned_models.gone' in err
    code, out, err = cli('new', '--auto', 'rm', '--migrations', project.dir, '--models', after,
                         '--contract')
    assert code == 1 and 'index ftm_gone_partial on fine_tuned_models (partial or an ' \
        'expression) uses a column this script drops' in err, out + err


def test_a_rename_is_generated_with_contract_and_keeps_the_values(cli, project, db_url):
    models = project(fine_tuned='description = TextField(null=True, column_name="summary")')
    code, out, err = cli('new', '--auto', 'rename', '--migrations', project.dir, '--models',
                         models)
    assert code == 1 and "If it was renamed (to summary?), the expand script adds summary as " \
        "a new, empty column" in err
    [expand] = generated(project)  # The new nullable column alone: an expand script.
    # The hint says what works: the expand run again with --rename, once that script is gone.
    assert "with --rename fine_tuned_models.description=summary (remove one that adds it " \
        "first" in err
    assert "phase = 'expand'" in read(project)
    os.remove(project.dir / expand)
    code, out, err = cli('new', '--auto', 'rename', '--migrations', project.dir, '--models',
                         models, '--rename', 'fine_tuned_models.description=summary')
    assert code == 1 and generated(project) == [], out + err  # Nothing else to expand.
    assert 'column fine_tuned_models.description is renamed to summary (--rename)' in err
    code, out, err = cli('new', '--auto', 'rename', '--migrations', project.dir, '--models',
                         models, '--contract', '--rename', 'fine_tuned_models.description=summary')
    assert code == 0, out + err
    assert err == ('note: renaming fine_tuned_models.description to summary is not a rolling '
                   'change: the release that maps summary connects only after this contract '
                   'script has run, and the script waits for the previous release\'s clients '
                   'to stop (docs/rolling-upgrades.md, "Renames")\n')
    up, down = read(project).split('def down')
    assert "migrator.rename_column('fine_tuned_models', 'description', 'summary')" in up
    assert "migrator.rename_column('fine_tuned_models', 'summary', 'description')" in down
    execute(db_url, *_migrated_with_a_model(cli, db_url, project))
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert query(db_url, 'SELECT summary FROM fine_tuned_models') == [('kept',)]
    assert cli('check', '--database', db_url, '--migrations', project.dir, '--models',
               models)[0] == 0


@pytest.mark.parametrize('args, says', [
    (['--contract'], 'the models also need expand changes: add column fine_tuned_models.'
                     'eval_seconds'),
    (['--contract', '--rename', 'description=summary'], 'expected TABLE.OLD=NEW'),
    (['--contract', '--rename', 'fine_tuned_models.nope=eval_seconds'],
     'fine_tuned_models has no column nope that no field maps'),
])
def test_a_contract_script_holds_contract_changes_only(cli, project, args, says):
    models = project(**BENCH_CHANGE)
    code, out, err = cli('new', '--auto', 'c', '--migrations', project.dir, '--models', models,
                         *args)
    assert code == 2 and says in err, out + err
    assert generated(project) == []


NEW_TABLE = dict(extra='''
    class ModelVersion(Model):
        model = ForeignKeyField(FineTunedModel, on_delete='CASCADE')
        version = IntegerField()
        created = DateTimeField(default=datetime.datetime.now)
        metrics = JSONField(null=True)

        class Meta:
            table_name = 'model_versions'
            indexes = ((('model', 'version'), True),)
    ''', more=', ModelVersion')


def test_a_new_table_is_a_frozen_model_in_the_script_with_its_foreign_key(cli, project,
                                                                          db_url):
    models = project(**NEW_TABLE)
    code, out, err = cli('new', '--auto', 'versions', '--migrations', project.dir, '--models',
                         models)
    assert (code, err) == (0, ''), out
    [name] = generated(project)  # Indexes of a new table come with it: one script.
    text = read(project)
    assert 'def _models(db):' in text and 'class ModelVersion(Model):' in text
    assert "ForeignKeyField(FineTunedModel, field='id', on_delete='CASCADE')" in text
    assert not [line for line in text.splitlines() if line.startswith(('import', 'from'))
                and (models in line or 'modelstore.models' in line)]
    assert "migrator.drop_table('model_versions')" in text.split('def down')[1]
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, creation_date, "
                    "model_path) VALUES ('m', 'b', 't', '2026-01-01T00:00:00', '/p')")
    execute(db_url, "INSERT INTO model_versions (model_id, version, created) VALUES "
                    "(1, 1, '2026-01-01 00:00:00')")
    with pytest.raises(Exception):  # The unique (model, version) index is there.
        execute(db_url, "INSERT INTO model_versions (model_id, version, created) VALUES "
                        "(1, 1, '2026-01-01 00:00:00')")
    assert cli('check', '--database', db_url, '--migrations', project.dir, '--models',
               models)[0] == 0
    assert cli('rollback', '--database', db_url, '--migrations', project.dir, '--yes')[0] == 0
    assert 'model_versions' not in tables(db_url)


def test_an_index_only_change_is_one_non_transactional_script(cli, project, db_url):
    models = project(fine_tuned_meta='indexes = ((("task", "is_custom_base_model", '
                                     '"creation_date", "model_name"), False), '
                                     '(("base_model",), False))',
                     task_meta='indexes = ()',  # ix_tasks_id is no longer declared.
                     # Declaring indexes replaces the inherited ones, 0009's partial one too.
                     extra=PARTIAL_INDEX)
    code, out, err = cli('new', '--auto', 'indexes', '--migrations', project.dir, '--models',
                         models)
    assert (code, err) == (0, ''), out + err
    [name] = generated(project)
    text = read(project)
    assert 'atomic = False' in text
    assert "('fine_tuned_models', 'fine_tuned_models_base_model', ('base_model',), False)" in text
    assert "('tasks', 'ix_tasks_id', ('id',), False)" in text
    assert cli('migrate', '--database', db_url)[0] == 0
    before = _schema(db_url)
    code, out, err = cli('migrate', '--database', db_url, '--migrations', project.dir)
    assert code == 0, err
    if ON_POSTGRES:
        assert 'concurrently' in out.lower()
    assert cli('check', '--database', db_url, '--migrations', project.dir, '--models',
               models)[0] == 0
    assert cli('rollback', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert _schema(db_url) == before


def test_an_index_script_that_died_after_some_indexes_runs_again(cli, project, db_url):
    models = project(fine_tuned='''
        run_tag = CharField(null=True, index=True)
        owner = CharField(null=True, index=True)
        ''')
    assert cli('new', '--auto', 'tags', '--migrations', project.dir, '--models', models)[0] == 0
    schema, indexes = generated(project)
    assert cli('migrate', '--database', db_url, '--migrations', project.dir, '--to',
               schema[:-3])[0] == 0
    # What a run killed between the two CONCURRENTLY builds leaves: one index of two.
    execute(db_url, 'CREATE INDEX fine_tuned_models_owner ON fine_tuned_models (owner)')
    code, out, err = cli('migrate', '--database', db_url, '--migrations', project.dir)
    assert code == 0, out + err
    assert 'partway through %s' % indexes[:-3] in out
    assert cli('check', '--database', db_url, '--migrations', project.dir, '--models',
               models)[0] == 0


def test_dry_run_prints_the_script_and_writes_nothing(cli, project):
    models = project(**BENCH_CHANGE)
    code, out, _ = cli('new', '--auto', 'x', '--migrations', project.dir, '--models', models,
                       '--dry-run')
    assert code == 0 and generated(project) == []
    assert '(dry run: not written)' in out and 'def up(migrator, db):' in out


def test_json_lists_operations_todos_and_paths(cli, project):
    models = project(fine_tuned='owner = TextField()\nnote = TextField(null=True)')
    code, out, _ = cli('new', '--auto', 'x', '--migrations', project.dir, '--models', models,
                       '--json')
    import json
    payload = json.loads(out)
    assert code == 1 and payload['ok'] is False
    assert payload['operations'] == ['add column fine_tuned_models.note']
    assert len(payload['todos']) == 1 and 'owner' in payload['todos'][0]
    assert len(payload['paths']) == 1


@pytest.mark.parametrize('spec, message', [
    ('no_such_module_here', "cannot import the models module 'no_such_module_here'"),
    ('os', 'the module os defines no peewee models'),
    ('not a module!', '--models must be a dotted module path'),
    ('modelstore.models:NOPE', 'the models module modelstore.models has no NOPE'),
])
def test_a_bad_models_module_is_a_clear_error(cli, project, spec, message):
    code, _, err = cli('new', '--auto', 'x', '--migrations', project.dir, '--models', spec)
    assert code == 2 and message in err, err
    assert generated(project) == []


@pytest.mark.postgres_only
def test_replaying_on_postgres_touches_nothing_and_gives_the_same_script(cli, project, db_url):
    models = project(**BENCH_CHANGE)
    assert cli('migrate', '--database', db_url)[0] == 0
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, creation_date, "
                    "model_path) VALUES ('m', 'b', 't', '2026-01-01T00:00:00', '/p')")
    before = _schema(db_url), query(db_url, 'SELECT * FROM fine_tuned_models')
    code, sqlite_out, _ = cli('new', '--auto', 'x', '--migrations', project.dir, '--models',
                              models, '--dry-run')
    code, pg_out, err = cli('new', '--auto', 'x', '--migrations', project.dir, '--models',
                            models, '--dry-run', '--database', db_url)
    assert code == 0, err
    assert pg_out.split('.py (dry run')[1:] == sqlite_out.split('.py (dry run')[1:]
    assert (_schema(db_url), query(db_url, 'SELECT * FROM fine_tuned_models')) == before
    assert query(db_url, "SELECT nspname FROM pg_namespace WHERE nspname LIKE "
                         "'modelstore_shadow%%'") == []


@pytest.mark.parametrize('parts', [BENCH_CHANGE, NEW_TABLE], ids=['bench change', 'new table'])
def test_generated_scripts_pass_check_migrations(cli, project, db_url, parts):
    models = project(**parts)
    assert cli('new', '--auto', 'change', '--migrations', project.dir, '--models', models)[0] == 0
    check_migrations(str(project.dir), models=models)
    check_migrations(str(project.dir), models=models, url=db_url)


EVERY_TYPE = dict(fine_tuned='''
    a_uuid = UUIDField(null=True)
    a_dec = DecimalField(null=True, max_digits=12, decimal_places=3)
    a_date = DateField(null=True)
    a_time = TimeField(null=True)
    a_big = BigIntegerField(null=True)
    a_small = SmallIntegerField(null=True)
    a_blob = BlobField(null=True)
    a_fixed = FixedCharField(max_length=7, null=True)
    a_ip = IPField(null=True)
    a_ts = TimestampField(null=True)
    a_json = JSONField(null=True)
    a_double = DoubleField(null=True)
    n_int = IntegerField(default=-3)
    n_float = FloatField(default=1e-05)
    n_str = CharField(default="it's", max_length=20)
    n_dec = DecimalField(default=decimal.Decimal('1.50'))
    n_date = DateField(default=datetime.date(2020, 1, 2))
    n_dt = DateTimeField(default=datetime.datetime(2020, 1, 2, 3, 4, 5))
    n_uuid = UUIDField(default=uuid.UUID(int=5))
    n_bool = BooleanField(default=True)
    n_json = JSONField(default={'a': [1]})
    n_enum = EnumNameField(TaskStatus, max_length=9, default=TaskStatus.RUNNING)
    ''', extra='''
    class Tree(Model):
        name = CharField(primary_key=True)
        parent = ForeignKeyField('self', null=True, field='name')

        class Meta:
            table_name = 'trees'


    class Pair(Model):
        a = IntegerField()
        b = IntegerField()
        tree = ForeignKeyField(Tree, null=True, on_delete='SET NULL')

        class Meta:
            table_name = 'pairs'
            primary_key = CompositeKey('a', 'b')
    ''', more=', Tree, Pair')


def test_every_peewee_field_type_and_constant_default_round_trips(cli, project, db_url):
    models = project(**EVERY_TYPE)
    source = (project.tmp / (models + '.py')).read_text()
    (project.tmp / (models + '.py')).write_text(
        'import decimal, uuid\nfrom modelstore.fields import EnumNameField\n'
        'from modelstore.models import TaskStatus\n' + source)
    assert cli('migrate', '--database', db_url)[0] == 0
    execute(db_url, "INSERT INTO fine_tuned_models (model_name, base_model, task, creation_date, "
                    "model_path) VALUES ('m', 'b', 't', '2026-01-01T00:00:00', '/p')")
    code, out, err = cli('new', '--auto', 'types', '--migrations', project.dir, '--models',
                         models)
    assert (code, err) == (0, ''), out
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert cli('check', '--database', db_url, '--migrations', project.dir, '--models',
               models)[0] == 0
    # The existing row got each constant, read back through the models as the value.
    model = models_of(models)[0]
    database = open_database(db_url, mode='inspect')
    try:
        with database.bind_ctx([model]):
            row = model.select().get()
        assert (row.n_int, row.n_float, row.n_str, row.n_dec, row.n_bool, row.n_json,
                row.n_enum) == (-3, 1e-05, "it's", decimal.Decimal('1.50'), True, {'a': [1]},
                                TaskStatus.RUNNING)
        assert str(row.n_date) == '2020-01-02' and row.n_uuid == uuid.UUID(int=5)
    finally:
        database.close()
    assert cli('new', '--auto', 'again', '--migrations', project.dir, '--models',
               models)[1].startswith('Nothing to generate')
    head = _schema(db_url)
    assert cli('rollback', '--database', db_url, '--migrations', project.dir, '--yes')[0] == 0
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert _schema(db_url) == head


def test_a_new_tables_add_index_and_column_names_are_kept(cli, project, db_url):
    models = project(extra='''
    class Run(Model):
        name = CharField(column_name='run_name')
        step = IntegerField(index=True)
        owner = TextField(null=True)

        class Meta:
            table_name = 'runs'


    Run.add_index(Run.name, Run.owner, unique=True)
    ''', more=', Run')
    assert cli('new', '--auto', 'runs', '--migrations', project.dir, '--models', models)[0] == 0
    text = read(project)
    assert "column_name='run_name'" in text and "indexes = ((('name', 'owner'), True),)" in text
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert cli('check', '--database', db_url, '--migrations', project.dir, '--models',
               models)[0] == 0
    assert cli('new', '--auto', 'again', '--migrations', project.dir, '--models',
               models)[1].startswith('Nothing to generate')


def test_a_project_without_scripts_gets_its_initial_script(cli, project, tmp_path):
    empty = tmp_path / 'fresh'
    empty.mkdir()
    # Without 0009's partial index: `new --auto` does not generate partial indexes (a TODO).
    models = project(fine_tuned_meta=TUPLE_INDEXES, **NEW_TABLE)
    code, out, _ = cli('new', '--auto', 'initial', '--migrations', empty, '--models', models)
    assert code == 0 and out.splitlines()[0] == str(empty / '0001_initial.py')
    check_migrations(str(empty), models=models)


def test_check_writes_nothing_and_exits_1_when_a_script_is_missing(cli, project):
    code, out, _ = cli('new', '--auto', '--check', '--migrations', project.dir)
    assert code == 0 and out.startswith('Nothing to generate')
    models = project(**BENCH_CHANGE)
    code, out, _ = cli('new', '--auto', '--check', '--migrations', project.dir, '--models',
                       models)
    assert code == 1 and generated(project) == []
    assert '  + add column fine_tuned_models.is_archived NOT NULL DEFAULT FALSE' in out
    code, _, err = cli('new', '--migrations', project.dir)
    assert code == 2 and 'new needs a SLUG' in err
    code, _, err = cli('new', 'x', '--check', '--migrations', project.dir)
    assert code == 2 and 'go with --auto' in err
    # --check reports the contract changes itself; a flag it would ignore is refused.
    for flags in (['--contract'], ['--contract', '--rename', 'fine_tuned_models.a=b']):
        code, _, err = cli('new', '--auto', '--check', '--migrations', project.dir, *flags)
        assert code == 2 and 'it takes no --contract or --rename' in err, err


def test_json_of_nothing_to_generate_names_no_phase(cli, project):
    code, out, _ = cli('new', '--auto', 'c', '--migrations', project.dir, '--contract', '--json')
    payload = json.loads(out)
    assert code == 0 and payload['changed'] is False and payload['phase'] is None
    assert generated(project) == []


def test_a_column_is_renamed_once(cli, project):
    models = project(fine_tuned='description = TextField(null=True, column_name="summary")\n'
                                'other = TextField(null=True, column_name="summary2")')
    code, out, err = cli('new', '--auto', 'r', '--migrations', project.dir, '--models', models,
                         '--contract', '--rename', 'fine_tuned_models.description=summary',
                         '--rename', 'fine_tuned_models.description=summary2')
    assert code == 2 and 'each column is renamed once' in err, out + err
    assert generated(project) == []


def test_a_key_text_columns_length_is_kept_in_the_script(cli, project, db_url):
    # KeyTextField is TEXT but VARCHAR(max_length) on MySQL: a script that dropped the length
    # would make MySQL's column 255 long whatever the model said.
    models = project(fine_tuned='run_key = KeyTextField(null=True, max_length=100)')
    source = (project.tmp / (models + '.py')).read_text()
    (project.tmp / (models + '.py')).write_text(
        'from modelstore.fields import KeyTextField\n' + source)
    assert cli('new', '--auto', 'key', '--migrations', project.dir, '--models', models)[0] == 0
    assert 'KeyTextField(null=True, max_length=100)' in read(project)
    assert cli('migrate', '--database', db_url, '--migrations', project.dir)[0] == 0
    assert cli('check', '--database', db_url, '--migrations', project.dir, '--models',
               models)[0] == 0
    if db_url.startswith('mysql'):
        assert query(db_url, "SELECT character_maximum_length FROM information_schema.columns "
                             "WHERE table_schema = DATABASE() AND table_name = "
                             "'fine_tuned_models' AND column_name = 'run_key'") == [(100,)]
