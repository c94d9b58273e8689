"""Docs are code: every ```console transcript in README.md and docs/*.md runs here.

Each block's ``$ command`` lines run in order, through bash, in a fresh directory that is also
``$HOME`` (``<tmp>/home/u``, so ``~`` and the ``/home/u/...`` paths of the docs are the same
place), with ``XDG_DATA_HOME`` inside it, ``NO_COLOR=1``, ``COLUMNS=80``, ``TZ=UTC``, no
``MODELSTORE_*`` variable and the installed ``modelstore`` first on ``PATH``. What a command
prints -- stdout and stderr together, as a terminal shows them -- must be the lines that follow it
in the block (blank lines after a command's output are only spacing). ``$ echo $?`` prints the
previous command's exit code. A line ``...`` matches any run of lines, for long output.

Only what cannot be fixed is normalised, in the docs and in the output alike: timestamps,
durations, backup file stamps, the host name, and the temporary directory (removed, so that
``<tmp>/home/u`` reads ``/home/u``).

An HTML comment right before a block says how to run it (one directive per comment):

    <!-- transcript: not run (the reason) -->        listed as skipped, with the reason
    <!-- transcript: continues -->                   in the previous block's directory
    <!-- transcript: setup NAME [PATH] -->           prepare a state first (SETUPS below)
    <!-- transcript: on mysql -->                    only when the suite runs on MariaDB/MySQL,
                                                     with $URL a fresh database there

Every other block runs on the SQLite pass. A block with no ``$`` line, or an unknown directive,
fails: nothing in the docs is silently left out.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

import modelstore
from modelstore.engine.scripts import discover

from conftest import TEST_URL, new_database
from legacy import STATES, build, modelforge_v11_altered

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ['README.md'] + ['docs/' + name for name in sorted(os.listdir(os.path.join(ROOT, 'docs')))
                        if name.endswith('.md')]
FENCE = re.compile(r'^(\s*)```console\s*$')
DIRECTIVE = re.compile(r'^\s*<!--\s*transcript:\s*(.*?)\s*-->\s*$')
BIN = os.path.dirname(sys.executable)


# -- reading the docs -------------------------------------------------------------------------

class Block:
    """One ```console block: where it is, its directives and its (command, expected) pairs."""

    def __init__(self, doc, line, directives, lines):
        self.doc, self.line, self.directives = doc, line, directives
        self.commands = []
        self.stray = []  # lines before the first command
        for text in lines:
            if text.startswith('$ '):
                self.commands.append((text[2:], []))
            elif self.commands:
                self.commands[-1][1].append(text)
            elif text.strip():
                self.stray.append(text)

    @property
    def id(self):
        return '%s:%d' % (self.doc, self.line)

    def directive(self, word):
        return [d[len(word):].strip() for d in self.directives
                if d == word or d.startswith(word + ' ')]


def blocks():
    found = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding='utf-8') as f:
            lines = f.read().splitlines()
        i = 0
        while i < len(lines):
            fence = FENCE.match(lines[i])
            if not fence:
                i += 1
                continue
            directives, j = [], i - 1
            while j >= 0 and (DIRECTIVE.match(lines[j]) or not lines[j].strip()):
                if lines[j].strip():
                    directives.insert(0, DIRECTIVE.match(lines[j]).group(1))
                j -= 1
            indent, body, i = len(fence.group(1)), [], i + 1
            while i < len(lines) and lines[i].strip() != '```':
                body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
                i += 1
            found.append(Block(doc, i - len(body), directives, body))
            i += 1
    return found


BLOCKS = blocks()


# -- normalising ------------------------------------------------------------------------------

NORMALISE = [
    (re.compile(r'\d{8}T\d{6}\.\d{6}Z'), '<stamp>'),
    (re.compile(r'\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?: UTC)?'), '<time>'),
    (re.compile(r' *\b\d+(?:\.\d+)? ?(?:ms|s)\b'), ' <duration>'),
]


def normalise(lines, tmp=None):
    out = []
    for line in lines:
        if tmp:
            for path in {tmp, os.path.realpath(tmp)}:
                line = line.replace(path, '')
        line = re.sub('@%s\\b' % re.escape(socket.gethostname()), '@host', line)
        for pattern, replacement in NORMALISE:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


def matches(expected, actual):
    """Whether ``actual`` is ``expected`` with each ``...`` line standing for any run of
    lines."""
    memo = {}

    def match(i, j):
        if (i, j) not in memo:
            if i == len(expected):
                memo[i, j] = j == len(actual)
            elif expected[i].strip() == '...':
                memo[i, j] = any(match(i + 1, k) for k in range(j, len(actual) + 1))
            else:
                memo[i, j] = j < len(actual) and expected[i] == actual[j] and match(i + 1, j + 1)
        return memo[i, j]
    return match(0, 0)


# -- prepared states --------------------------------------------------------------------------

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
from modelstore.models import FineTunedModel as _FineTunedModel
from modelstore.models import ModelImport, ModelVersionCounter, Task


class FineTunedModel(_FineTunedModel):
    eval_seconds = FloatField(null=True)
    is_archived = BooleanField(default=False)
    run_tag = CharField(null=True, index=True)

    class Meta:
        table_name = 'fine_tuned_models'


MODELS = [FineTunedModel, Task, ModelVersionCounter, ModelImport]
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


SETUPS = {'migrated': setup_migrated, 'models-root': setup_models_root,
          'project': setup_project}


def setup(home, env, words):
    name, args = words[0], words[1:]
    if name in SETUPS:
        return SETUPS[name](home, env, *args)
    if name in STATES or name in ('modelforge-v2-models', 'odd-modelforge'):
        return setup_legacy(home, env, name, *args)
    raise AssertionError('unknown setup %r (known: %s, and harness/legacy.py STATES)'
                         % (name, ', '.join(sorted(SETUPS))))


# -- running ----------------------------------------------------------------------------------

def environment(home):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('MODELSTORE_', 'PYTHON', 'COLUMNS', 'LINES'))}
    env.update(HOME=home, XDG_DATA_HOME=os.path.join(home, '.local', 'share'), NO_COLOR='1',
               COLUMNS='80', LINES='24', TZ='UTC', USER='u', LOGNAME='u', LANG='C.UTF-8',
               LC_ALL='C.UTF-8', PYTHONUNBUFFERED='1', PATH=BIN + os.pathsep + env['PATH'])
    return env


def run(block, home, env):
    """Run the block's commands; returns the transcript they print, normalised, and the
    failures (expected vs actual, per command)."""
    code, transcript, failures = 0, [], []
    for command, expected in block.commands:
        done = subprocess.run(['bash', '-c', '(exit %d); %s' % (code, command)], cwd=home,
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=300)
        code = done.returncode
        actual = normalise(done.stdout.splitlines(), tmp=os.path.dirname(os.path.dirname(home)))
        transcript += ['$ ' + command] + actual
        if not matches(normalise(expected), actual):
            failures.append('$ %s\n--- expected:\n%s\n--- actual (exit %d):\n%s' % (
                command, '\n'.join(normalise(expected)), code, '\n'.join(actual)))
    return transcript, failures


def _marks(block):
    if block.directive('on') == ['mysql']:
        return [pytest.mark.mysql_only]
    return [pytest.mark.sqlite_only]


def chain(block):
    """The blocks a block runs after, in its directory: those it continues, then itself."""
    index = BLOCKS.index(block)
    if not block.directive('continues'):
        return [block]
    earlier = [b for b in BLOCKS[:index] if b.doc == block.doc and not b.directive('not run')]
    assert earlier, '%s continues no block' % block.id
    return chain(earlier[-1]) + [block]


@pytest.mark.parametrize('block', [pytest.param(b, id=b.id, marks=_marks(b)) for b in BLOCKS])
def test_transcript(block, tmp_path):
    known = ('not run', 'continues', 'setup', 'on')
    unknown = [d for d in block.directives if not d.startswith(known)]
    assert not unknown, '%s: unknown transcript directive %s (known: %s)' % (
        block.id, unknown, ', '.join(known))
    if block.directive('not run'):
        pytest.skip('%s not run: %s' % (block.id, block.directive('not run')[0].strip('()')))
    assert block.commands, ('%s: a console block without a `$ command` line: mark it '
                            '<!-- transcript: not run (why) --> or give it commands' % block.id)
    assert not block.stray, '%s: lines before the first command: %s' % (block.id, block.stray)
    home = str(tmp_path / 'home' / 'u')
    os.makedirs(home)
    env = environment(home)
    drop = None
    if block.directive('on') == ['mysql']:
        env['URL'], drop = new_database(TEST_URL)
    try:
        for each in chain(block):
            for words in each.directive('setup'):
                setup(home, env, words.split())
            transcript, failures = run(each, home, env)
    finally:
        if drop:
            drop()
    if failures:
        pytest.fail('%s: the transcript is not what the commands print.\n\n%s\n\n'
                    'The whole block as it runs now (normalised):\n%s' % (
                        block.id, '\n\n'.join(failures), '\n'.join(transcript)), pytrace=False)


def test_every_console_block_is_found_and_run_or_marked():
    """The parser sees every fence: a ```console it missed would silently go untested."""
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding='utf-8') as f:
            fences = sum(1 for line in f if FENCE.match(line))
        assert fences == sum(1 for b in BLOCKS if b.doc == doc), doc
    assert sum(not b.directive('not run') for b in BLOCKS) >= 8


def test_matching_and_normalising():
    assert matches(['a', '...', 'd'], ['a', 'b', 'c', 'd'])
    assert matches(['a', '...'], ['a'])
    assert not matches(['a', '...', 'd'], ['a', 'b'])
    assert not matches(['a'], ['a', 'b'])
    assert normalise(['Applied 3 scripts (9 operations) in 12 ms.']) == \
        normalise(['Applied 3 scripts (9 operations) in 1 ms.'])
    assert normalise(['x  2026-11-21 07:39:19 UTC  ran     45.5 ms  u@%s'
                      % socket.gethostname()]) == ['x  <time>  ran <duration>  u@host']
    assert normalise(['/t/home/u/r.db.20261121T101500.123456Z.schema-0004.bak'], tmp='/t') == \
        ['/home/u/r.db.<stamp>.schema-0004.bak']
