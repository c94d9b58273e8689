"""Reads never write (issue 26, item 6): every read-only command leaves a SQLite file as it
found it -- its bytes, its journal mode (a ModelForge file keeps its rollback journal), and no
file beside it. The first write of a store is what switches a file to WAL."""
import hashlib
import os
import shutil
import sqlite3

import pytest

import modelstore
from legacy import build, modelforge_v10, modelforge_v2_models

pytestmark = pytest.mark.sqlite_only

MODEL = dict(model_name='m', base_model='b', task='t', model_path='/m/m_1')
TASK = dict(task_name='tk', base_runtime='sglang', model_config={}, parameters={},
            optimization_config={}, benchmark_config={})
FORGE_MODELS = '''CREATE TABLE models (
  id VARCHAR NOT NULL, name VARCHAR NOT NULL, base_model VARCHAR NOT NULL, task VARCHAR NOT NULL,
  strategy VARCHAR, provider VARCHAR, path VARCHAR NOT NULL, created_at DATETIME,
  updated_at DATETIME, compute_profile VARCHAR, config TEXT, is_active BOOLEAN,
  PRIMARY KEY (id))'''

# Every command of modelstore/cli/parser.py that only reads (doctor without a fixing option;
# --dry-run of those that write). `new` reads no database.
READ_ONLY = [
    ('status',), ('status', '--json'), ('history',), ('check',), ('migrate', '--dry-run'),
    ('rollback', '--dry-run'), ('rollback', '--dry-run', '--to', '0001_initial'),
    ('models', 'list'), ('models', 'list', '--json'), ('models', 'show', '1'),
    ('models', 'show', 'm'), ('tasks', 'list'), ('tasks', 'show', '1'), ('tasks', 'show', 'tk'),
    ('doctor', '--models-root', '{root}'), ('doctor', '--json', '--models-root', '{root}'),
    ('import', 'modelforge', '--dry-run'), ('import', 'modelforge', '--dry-run', '--json'),
]


def _registry(path):
    """A registry at head with a model, a task and ModelForge v2's `models` table."""
    with modelstore.connect(path) as store:
        store.add_model(**MODEL)
        store.add_task(**TASK)
    conn = sqlite3.connect(path)
    conn.execute(FORGE_MODELS)
    conn.execute("INSERT INTO models VALUES ('a1', 'forge', 'gpt2', 'summarization', NULL, "
                 "NULL, '/m/forge_1', '2025-11-20 10:00:00', NULL, NULL, '{}', 1)")
    conn.commit()
    conn.close()


def _legacy(path):
    """A ModelForge file modelstore never opened: no history, tables to adopt."""
    build(path, modelforge_v10, modelforge_v2_models)


def _journal(path, mode):
    conn = sqlite3.connect(path)
    assert conn.execute('PRAGMA journal_mode=%s' % mode).fetchone()[0] == mode
    conn.close()


def state(path):
    """The file's bytes, its journal mode (read without changing it) and the directory."""
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    conn = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
    mode = conn.execute('PRAGMA journal_mode').fetchone()[0]
    conn.close()
    return digest, mode, sorted(os.listdir(os.path.dirname(path)))


@pytest.fixture(scope='module')
def templates(tmp_path_factory):
    made = {}
    for kind, builder in (('registry', _registry), ('legacy', _legacy)):
        for mode in ('delete', 'wal'):
            path = str(tmp_path_factory.mktemp('%s-%s' % (kind, mode)) / 'file.db')
            builder(path)
            _journal(path, mode)
            made[kind, mode] = path
    return made


@pytest.mark.parametrize('mode', ['delete', 'wal'])
@pytest.mark.parametrize('kind', ['registry', 'legacy'])
@pytest.mark.parametrize('command', READ_ONLY, ids=' '.join)
def test_a_read_only_command_leaves_the_file_as_it_was(cli, tmp_path, templates, kind, mode,
                                                       command):
    folder = tmp_path / 'db'
    folder.mkdir()
    path = str(folder / 'file.db')
    shutil.copy(templates[kind, mode], path)
    root = tmp_path / 'root'
    root.mkdir()
    before = state(path)
    code, out, err = cli(*[part.format(root=root) for part in command], '--database', path)
    assert 'unexpected' not in err
    if kind == 'registry' and command[0] != 'doctor':
        assert code == 0, err
    assert state(path) == before
    assert before[1] == mode


def test_the_first_write_switches_the_file_to_wal(cli, tmp_path, templates):
    path = str(tmp_path / 'file.db')
    shutil.copy(templates['registry', 'delete'], path)
    with modelstore.connect(path) as store:
        assert store.list_models() and store.count_tasks() == 1
        assert state(path)[1] == 'delete'  # Reading leaves the journal mode alone.
        store.add_model(**MODEL)
        assert store.database.pragma('journal_mode') == 'wal'
        assert store.database.pragma('synchronous') == 1  # NORMAL, as WAL allows.
    shutil.copy(templates['registry', 'delete'], path)
    code, _, err = cli('import', 'modelforge', '--database', path)
    assert code == 0, err
    assert state(path)[1] == 'wal'


def test_a_store_that_only_reads_keeps_synchronous_full_in_a_rollback_journal(tmp_path,
                                                                              templates):
    path = str(tmp_path / 'file.db')
    shutil.copy(templates['registry', 'delete'], path)
    with modelstore.connect(path) as store:
        store.list_models()
        assert store.database.pragma('synchronous') == 2  # FULL: NORMAL is for WAL only.
        assert store.database.pragma('temp_store') == 2
