"""The prepared states a transcript's ``<!-- transcript: setup NAME [ARGS] -->`` comment names
(tests/test_docs_transcripts.py runs the transcripts).

A PATH is read as the block's shell reads it: ``~/...`` is the block's home, a relative path is
relative to it. NAME is one of SETUPS below, or a legacy file: harness/legacy.py's STATES
(``setup modelforge-v1.1-altered ~/.local/share/ModelForge/database/modelforge.sqlite``),
``modelforge-v2-models`` (ModelForge v2's own ``models`` table beside v1.1's) or
``odd-modelforge`` (a table no script produces).
"""
import json
import os
import shutil
import subprocess

import modelstore
from modelstore.engine.scripts import discover

from legacy import STATES, build, modelforge_v11_altered


def _path(home, path):
    """``path`` as the block's shell would read it (``~`` is ``home``, relative to ``home``),
    its folder created."""
    path = os.path.join(home, path[2:] if path.startswith('~/') else path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


# ModelForge v2's own table, as its SQLAlchemy model creates it
# (../shared/reference/legacy-databases.md), and three rows: one to import, one it soft-deleted,
# one whose config the registry refuses as hyperparameters.
FORGE_V2_MODELS = '''
CREATE TABLE models (
    id VARCHAR NOT NULL, name VARCHAR NOT NULL, base_model VARCHAR NOT NULL,
    task VARCHAR NOT NULL, strategy VARCHAR, provider VARCHAR, path VARCHAR NOT NULL,
    created_at DATETIME, updated_at DATETIME, compute_profile VARCHAR, config TEXT,
    is_active BOOLEAN, PRIMARY KEY (id))'''
FORGE_V2_ROWS = [
    ('a1b2', 'bot', 'meta-llama/Llama-3.2-1B', 'text-generation', 'sft', 'huggingface',
     '/home/u/.local/share/ModelForge/models/bot_1', '2025-11-20 10:00:00.000000',
     '2025-11-20 11:00:00.000000', 'gpu-24g', '{"lr": 0.0002, "epochs": 3}', 1),
    ('c3d4', 'old', 'gpt2', 'summarization', 'sft', 'huggingface',
     '/home/u/.local/share/ModelForge/models/old_1', '2025-11-01 09:00:00.000000',
     '2025-11-01 09:00:00.000000', None, None, 0),
    ('e5f6', 'bad', 'gpt2', 'summarization', 'sft', 'huggingface',
     '/home/u/.local/share/ModelForge/models/bad_1', '2025-11-02 09:00:00.000000',
     '2025-11-02 09:00:00.000000', None, '[1, 2]', 1),
]


def forge_v2(conn):
    modelforge_v11_altered(conn)
    conn.execute(FORGE_V2_MODELS)
    conn.executemany('INSERT INTO models VALUES (?,?,?,?,?,?,?,?,?,?,?,?)', FORGE_V2_ROWS)


def odd_modelforge(conn):
    """A fine_tuned_models no script produces: model_path is an INTEGER."""
    conn.execute('CREATE TABLE fine_tuned_models (id INTEGER PRIMARY KEY AUTOINCREMENT, '
                 'model_name TEXT NOT NULL, base_model TEXT NOT NULL, task TEXT NOT NULL, '
                 'description TEXT, creation_date TEXT NOT NULL, model_path INTEGER NOT NULL)')


def setup_legacy(home, env, name, path):
    """A legacy file (harness/legacy.py's STATES, or the two below) at ``path``."""
    parts = {'modelforge-v2-models': (forge_v2,), 'odd-modelforge': (odd_modelforge,)}
    build(_path(home, path), *(parts[name] if name in parts else STATES[name][0]))


def setup_migrated(home, env, path):
    """``modelstore migrate`` of ``path``, output not shown."""
    run = subprocess.run(['modelstore', 'migrate', '--no-backup', '--database', _path(home, path)],
                         cwd=home, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


SUPPORT_BOT = 'support-bot_3f2a9c1e-1b2c-4d3e-8f40-123456789abc'
QA_BERT = 'qa-bert_4b1d2c3e-0f9a-4c8b-a7d6-5e4f3a2b1c0d'
SUMMARIZER = 'summarizer_7c9e6679-7425-40de-944b-e07fc1f90ae7'
LONG_AGO = 1764651420  # 2025-12-02 04:57 UTC: older than doctor's --min-age


def setup_models_root(home, env, database, root):
    """A registry with two rows -- a model whose folder is there, one whose folder is gone --
    and a models root holding a folder no row names (a PEFT adapter of 3 MB)."""
    root = _path(home, root + '/x')[:-2]
    with modelstore.connect('sqlite:///' + _path(home, database)) as store:
        for name, base, task, folder in [
                ('summarizer', 'facebook/bart-large-cnn', 'summarization', SUMMARIZER),
                ('qa-bert', 'bert-base-uncased', 'question-answering', QA_BERT)]:
            store.add_model(model_name=name, base_model=base, task=task,
                            model_path=os.path.join(root, folder),
                            creation_date='2025-11-02T09:30:00',
                            updated_at='2025-11-02T09:30:00')
    for folder, config in [(SUMMARIZER, {'_name_or_path': 'facebook/bart-large-cnn'}),
                           (SUPPORT_BOT, {'base_model_name_or_path': 'meta-llama/Llama-3.2-1B',
                                          'task_type': 'CAUSAL_LM'})]:
        os.makedirs(os.path.join(root, folder))
        name = 'adapter_config.json' if 'task_type' in config else 'config.json'
        with open(os.path.join(root, folder, name), 'w') as f:
            json.dump(config, f)
        if folder == SUPPORT_BOT:
            with open(os.path.join(root, folder, 'adapter_model.safetensors'), 'wb') as f:
                f.truncate(3_000_000)
        for entry in os.listdir(os.path.join(root, folder)) + ['']:
            os.utime(os.path.join(root, folder, entry), (LONG_AGO, LONG_AGO))


MYAPP_MODELS = '''\
"""myapp's models: modelstore's, with three new fields on fine_tuned_models."""
from peewee import BooleanField, CharField, FloatField
from modelstore.models import MODELS as _MODELS, FineTunedModel as _FineTunedModel


class FineTunedModel(_FineTunedModel):
    eval_seconds = FloatField(null=True)
    is_archived = BooleanField(default=False)
    run_tag = CharField(null=True, index=True)

    class Meta:
        table_name = 'fine_tuned_models'


# modelstore's other tables, as they are: the registry's own.
MODELS = [FineTunedModel] + [m for m in _MODELS if m is not _FineTunedModel]
'''


def setup_project(home, env):
    """A project: ./migrations holds copies of the shipped scripts, and myapp/models.py adds
    three fields to modelstore's models."""
    os.makedirs(os.path.join(home, 'migrations'))
    for script in discover():
        shutil.copy(script.path, os.path.join(home, 'migrations'))
    os.makedirs(os.path.join(home, 'myapp'))
    open(os.path.join(home, 'myapp', '__init__.py'), 'w').close()
    with open(os.path.join(home, 'myapp', 'models.py'), 'w') as f:
        f.write(MYAPP_MODELS)


RUNS = {
    '0001_create_runs.py': """\
from peewee import *


def up(migrator, db):
    class Run(Model):
        name = CharField()

        class Meta:
            database = db
            table_name = 'runs'
    db.create_tables([Run], safe=False)


def down(migrator, db):
    migrator.migrate(migrator.drop_table('runs'))
""",
    # Two operations complete, then the third names a table that does not exist.
    '0002_run_owner.py': """\
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_column('runs', 'owner', CharField(null=True)),
                     migrator.add_index('runs', ('owner',), False, name='runs_owner'))
    migrator.migrate(migrator.add_column('no_such_table', 'x', IntegerField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_index('runs', 'runs_owner'),
                     migrator.drop_column('runs', 'owner'))
""",
}


def setup_failing_project(home, env):
    """./migrations: 0001 creates a table, 0002 fails after two operations."""
    os.makedirs(os.path.join(home, 'migrations'))
    for name, text in RUNS.items():
        with open(os.path.join(home, 'migrations', name), 'w') as f:
            f.write(text)


# The checkout the suite runs from: the source of the installed modelstore.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup_previous_release(home, env, path):
    """``path``: a source directory of a modelstore release (this checkout's files, as a
    checkout of the release before would hold them), for check_migrations(previous=...)."""
    shutil.copytree(CHECKOUT, _path(home, path), ignore=shutil.ignore_patterns(
        '.*', 'build', 'dist', '*.egg-info', '__pycache__'))


SETUPS = {'migrated': setup_migrated, 'models-root': setup_models_root,
          'project': setup_project, 'failing-project': setup_failing_project,
          'previous-release': setup_previous_release}


def setup(home, env, words):
    name, args = words[0], words[1:]
    if name in SETUPS:
        return SETUPS[name](home, env, *args)
    if name in STATES or name in ('modelforge-v2-models', 'odd-modelforge'):
        return setup_legacy(home, env, name, *args)
    raise AssertionError('unknown setup %r (known: %s, and harness/legacy.py STATES)'
                         % (name, ', '.join(sorted(SETUPS))))
