"""Old code against the new schema: ``check_migrations(..., previous=...)`` installs the previous
release in a throwaway venv and runs its registry calls, and the legacy apps' statements, after
each expand script of the new release (modelstore.testing.previous).

"The new release" is a scripts directory built as tests/test_phases.py builds one: the shipped
scripts plus the scripts of the test. The previous release is this checkout (a path) or an older
commit of this repository (``git:REF``). On a server the throwaway database is made on the
server of ``db_url``.
"""
import logging
import os
import shutil
import subprocess

import pytest
from peewee import SQL, BooleanField, IntegerField, TextField

from modelstore.engine.scripts import default_directory, discover
from modelstore.models import MODELS, FineTunedModel, Task
from modelstore.testing import check_migrations

from conftest import SHIPPED


def nxt(k, slug):
    """The name of the new release's k-th script: numbered right after the shipped ones."""
    return '%04d_%s' % (len(SHIPPED) + k, slug)


NOTE, DEPLOYMENTS, PRIORITY, DROP, LABEL = (nxt(1, 'deploy_note'), nxt(2, 'deployments'),
                                           nxt(3, 'task_priority'), nxt(4, 'drop_deploy_note'),
                                           nxt(5, 'task_label'))
REVIEWED = nxt(2, 'reviewed')

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The commit before phases (issue 28): its gate refuses any database with a newer script.
BEFORE_PHASES = 'f8a201a'
# The release before this one (issue 29): it shipped 0001..0012; this one adds these four.
PREVIOUS_RELEASE, PREVIOUS_HEAD = '775a493', '0012_clients'
THIS_RELEASE = ['0013_aliases_and_events', '0014_lineage_and_archive',
                '0015_lineage_and_archive_indexes', '0016_model_tags']

ADD_NOTE = '''
def up(migrator, db):
    migrator.migrate(migrator.add_column('fine_tuned_models', 'deploy_note',
                                         TextField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'deploy_note'))
'''

# A new table: the previous release never names it.
ADD_DEPLOYMENTS = '''
def up(migrator, db):
    class Deployment(Model):
        model_id = IntegerField()
        note = TextField(null=True)

        class Meta:
            database = db
            table_name = 'deployments'
    db.create_tables([Deployment])


def down(migrator, db):
    db.execute_sql('DROP TABLE deployments')
'''

# NOT NULL with a database default, in one ADD COLUMN: writers that omit it still insert.
ADD_PRIORITY = '''
def up(migrator, db):
    migrator.migrate(migrator.add_column(
        'tasks', 'priority', IntegerField(default=0, constraints=[SQL('DEFAULT 0')]),
        allow_not_null=True))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('tasks', 'priority'))
'''

DROP_NOTE = '''
phase = 'contract'


def up(migrator, db):
    # modelstore: allow MS002 -- run once the rollout is done; SQLite rebuilds to drop a column
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'deploy_note'))


def down(migrator, db):
    migrator.migrate(migrator.add_column('fine_tuned_models', 'deploy_note',
                                         TextField(null=True)))
'''

ADD_LABEL = '''
def up(migrator, db):
    migrator.migrate(migrator.add_column('tasks', 'label', TextField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('tasks', 'label'))
'''

# Mislabelled: declared expand (the default), but peewee's add_column for a NOT NULL field adds
# the column nullable, fills it, then sets NOT NULL -- no database default is left, so every
# INSERT that does not name the column (the previous release's, ModelForge's) is refused.
ADD_REVIEWED = '''
def up(migrator, db):
    migrator.migrate(migrator.add_column('fine_tuned_models', 'reviewed',
                                         BooleanField(default=False)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'reviewed'))
'''


def release(tmp_path, extra):
    """A scripts directory: the shipped scripts plus ``extra`` ({filename: body})."""
    directory = tmp_path / 'next'
    directory.mkdir()
    for script in SHIPPED:
        shutil.copy(os.path.join(default_directory(), script + '.py'), directory)
    for filename, body in extra.items():
        (directory / filename).write_text('from peewee import *\n' + body)
    return str(directory)


def models(models_fields=(), tasks_fields=(), tables=()):
    """The new release's models: modelstore's, with fields added ({name: field})."""
    fine_tuned = type('FineTunedModel', (FineTunedModel,), dict(
        models_fields, Meta=type('Meta', (), {'table_name': 'fine_tuned_models'}),
        __module__=__name__))
    tasks = type('Task', (Task,), dict(tasks_fields, Meta=type(
        'Meta', (), {'table_name': 'tasks'}), __module__=__name__))
    return [fine_tuned, tasks] + [m for m in MODELS if m not in (FineTunedModel, Task)] + \
        list(tables)


def problems(err):
    return str(err.value).splitlines()[1:]


def needs_commit(ref):
    """Skip unless the tests run from a git checkout; fail if ``ref`` is not in it."""
    inside = subprocess.run(['git', '-C', CHECKOUT, 'rev-parse', '--is-inside-work-tree'],
                            capture_output=True, text=True)
    if inside.returncode != 0:
        pytest.skip('the tests do not run from a git checkout')
    known = subprocess.run(['git', '-C', CHECKOUT, 'cat-file', '-e', ref + '^{commit}'],
                           capture_output=True)
    assert known.returncode == 0, ('commit %s is not in this clone: a shallow clone lacks it '
                                   '(git fetch --unshallow)' % ref)


@pytest.mark.slow
def test_the_previous_release_keeps_working_after_sound_expand_scripts(db_url, tmp_path, caplog):
    from peewee import Model

    class Deployment(Model):
        model_id = IntegerField()
        note = TextField(null=True)

        class Meta:
            table_name = 'deployments'
    directory = release(tmp_path, {NOTE + '.py': ADD_NOTE,
                                   DEPLOYMENTS + '.py': ADD_DEPLOYMENTS,
                                   PRIORITY + '.py': ADD_PRIORITY,
                                   DROP + '.py': DROP_NOTE,
                                   LABEL + '.py': ADD_LABEL})
    head = models(tasks_fields={'priority': IntegerField(default=0,
                                                         constraints=[SQL('DEFAULT 0')]),
                                'label': TextField(null=True)}, tables=[Deployment])
    caplog.set_level(logging.INFO, logger='modelstore.testing')
    check_migrations(directory, url=db_url, models=head, previous=CHECKOUT)
    said = [r.getMessage() for r in caplog.records if r.name == 'modelstore.testing']
    works = ['%s: the previous release (%s) works' % (after, CHECKOUT) for after in (
        'at its own head, before any newer script', 'after %s (expand)' % NOTE,
        'after %s (expand)' % DEPLOYMENTS, 'after %s (expand)' % PRIORITY)]
    assert [line for line in said if line.endswith(' works')] == works
    assert 'the previous release (%s) migrated to its head, %s' % (CHECKOUT, SHIPPED[-1]) in said
    # The contract script ends the check: the previous release is not meant to work after it,
    # and the expand script after it is for the release after this one.
    assert ('stopped before %s, a contract script: the previous release is ' % DROP +
            'not expected to work after it') in said
    assert not [line for line in said if LABEL in line]


@pytest.mark.slow
def test_an_expand_script_that_breaks_old_writers_is_named(db_url, tmp_path):
    directory = release(tmp_path, {NOTE + '.py': ADD_NOTE, REVIEWED + '.py': ADD_REVIEWED})
    head = models(models_fields={'deploy_note': TextField(null=True),
                                 'reviewed': BooleanField(default=False)})
    with pytest.raises(AssertionError) as err:
        check_migrations(directory, url=db_url, models=head, previous=CHECKOUT)
    # The linter (check_migrations runs it too) sees the cause in the statements: MS004, a NOT
    # NULL column with no database default, plus the backend's costs of peewee's path (MS002,
    # MS005). Running the previous release shows what it breaks.
    lint = [line for line in problems(err) if line.startswith('  - lint: ')]
    lines = [line for line in problems(err) if not line.startswith('  - lint: ')]
    assert str(err.value).splitlines()[0] == "check_migrations(%r): %d problems" % (
        directory, len(lint) + 2)
    assert all(line.startswith('  - lint: %s:' % REVIEWED) for line in lint), lint
    assert [line for line in lint if ' MS004 adds NOT NULL column fine_tuned_models.reviewed '
            'with no database default' in line], lint
    broke = '  - after %s (expand): the previous release (%s) fails ' % (REVIEWED, CHECKOUT)
    assert all(line.startswith(broke) and 'reviewed' in line for line in lines), lines
    # The writers of fine_tuned_models; reading, tasks and the autotuner's INSERT (another
    # table) still work, and 0012 broke nothing.
    assert [line[len(broke):].split(':')[0] for line in lines] == ['add_model',
                                                                   'ModelForge INSERT']


@pytest.mark.slow
def test_a_release_from_before_phases_refuses_a_newer_expand_script(db_url, tmp_path,
                                                                    monkeypatch):
    needs_commit(BEFORE_PHASES)
    directory = release(tmp_path, {NOTE + '.py': ADD_NOTE})
    head = models(models_fields={'deploy_note': TextField(null=True)})
    monkeypatch.chdir(CHECKOUT)  # git:REF of the current directory's repository
    with pytest.raises(AssertionError) as err:
        check_migrations(directory, url=db_url, models=head, previous='git:' + BEFORE_PHASES)
    lines = problems(err)
    assert len(lines) == 1, lines
    # Its gate predates phases: any newer script is one it refuses -- the first is the shipped
    # 0012_clients, itself newer than that release. A rolling deploy from it is not possible;
    # deploy a release with phases first.
    assert lines[0].startswith(
        '  - after 0012_clients (expand): the previous release (git:%s) fails connect: '
        'SchemaNewerThanCode: ' % BEFORE_PHASES), lines
    assert '(0012_clients)' in lines[0]


@pytest.mark.slow
def test_the_release_before_this_one_keeps_working_during_the_upgrade(db_url, caplog,
                                                                      monkeypatch):
    """Issue 29: the shipped scripts themselves, with the release that shipped 0001..0012 as
    the previous one -- its registry calls and the legacy apps' statements after each of this
    release's scripts, on the backend under test."""
    needs_commit(PREVIOUS_RELEASE)
    previous = 'git:' + PREVIOUS_RELEASE
    monkeypatch.chdir(CHECKOUT)  # git:REF of the current directory's repository
    caplog.set_level(logging.INFO, logger='modelstore.testing')
    # Raises AssertionError listing every problem: a script that breaks the previous release
    # (or fails its round trip, its lint, or leaves drift from modelstore.models).
    check_migrations(default_directory(), url=db_url, previous=previous)
    # check_migrations returns nothing; its log says what the previous-release check ran.
    said = [r.getMessage() for r in caplog.records if r.name == 'modelstore.testing']
    assert 'the previous release (%s) migrated to its head, %s' % (
        previous, PREVIOUS_HEAD) in said, said
    # The shipped scripts after its head, up to the first contract script (none yet).
    phases = {script.name: script.phase for script in discover(default_directory())}
    expand = []
    for name in SHIPPED[SHIPPED.index(PREVIOUS_HEAD) + 1:]:
        if phases[name] == 'contract':
            break
        expand.append(name)
    assert expand[:len(THIS_RELEASE)] == THIS_RELEASE, expand
    probed = [line for line in said
              if line.startswith(('at its own head', 'after ')) and previous in line]
    assert probed == ['%s: the previous release (%s) works' % (after, previous) for after in
                      ['at its own head, before any newer script'] +
                      ['after %s (expand)' % name for name in expand]], said


def test_a_previous_release_that_is_none_of_the_forms_is_a_problem(tmp_path):
    directory = release(tmp_path, {})
    with pytest.raises(AssertionError) as err:
        check_migrations(directory, previous=str(tmp_path / 'nowhere.txt'))
    assert problems(err) == ['  - previous=%r is neither a wheel or sdist, a source directory, '
                             'nor git:REF' % str(tmp_path / 'nowhere.txt')]


def test_an_unknown_git_ref_is_a_problem(tmp_path, monkeypatch):
    directory = release(tmp_path, {})
    monkeypatch.chdir(CHECKOUT)
    if subprocess.run(['git', 'rev-parse'], capture_output=True).returncode != 0:
        pytest.skip('the tests do not run from a git checkout')
    with pytest.raises(AssertionError) as err:
        check_migrations(directory, previous='git:no-such-ref')
    [line] = problems(err)
    assert line.startswith("  - previous='git:no-such-ref': git archive in %s fails (" % CHECKOUT)
