"""A field added to FineTunedModel or Task needs no other edit: the registry's write and read
paths are derived from the models (modelstore.registry.rules, .fastpath).

As a developer of modelstore does it: a checkout (a copy of the installed package beside its
``migrations/``) has fields added to ``shared/tables.py``; ``modelstore new --auto`` writes the
script into ``migrations/``;
``modelstore migrate`` applies it; then a pipeline adds, lists, gets, updates and bulk-adds
models and tasks with the new fields -- in a subprocess, on the backend under test.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import modelstore

pytestmark = pytest.mark.slow

ADDED_MODEL_FIELDS = '''
    eval_seconds = DoubleField(null=True)
    is_archived = BooleanField(default=False)
    run_tag = CharField(null=True)
    priority = IntegerField(default=0)
    notes = TextField(null=True)
    labels = StrictJSONField(null=True)
'''
ADDED_TASK_FIELDS = '''
    queue = CharField(null=True)
    attempts = IntegerField(default=0)
'''

PIPELINE = r'''
import datetime, json, sys
import modelstore
assert modelstore.__file__.startswith(sys.argv[2]), modelstore.__file__
out = {}
store = modelstore.connect(sys.argv[1])
base = dict(base_model='b', task='t', model_path='/models/m')
plain = store.add_model(model_name='plain', **base)
out['plain'] = [plain.is_archived, plain.priority, plain.eval_seconds, plain.run_tag,
                plain.notes, plain.labels]
full = store.add_model(model_name='full', eval_seconds=1.5, is_archived=True, run_tag='r1',
                       priority=7, notes='n', labels={'a': [1, 2]}, **base)
got = store.get_model(full.id)
out['full'] = [got.eval_seconds, got.is_archived, got.run_tag, got.priority, got.notes,
               got.labels, got.version]
out['returned_equals_stored'] = full.__data__ == got.__data__
store.update_model(plain.id, priority=3, notes='later', run_tag=None)
again = store.get_model(plain.id)
out['updated'] = [again.priority, again.notes, again.run_tag]
out['bulk'] = store.add_models([dict(model_name='bulk', priority=i, run_tag='b%d' % i, **base)
                                for i in range(3)] + [dict(model_name='bulk', **base)])
out['listed'] = [(m.model_name, m.priority, m.run_tag, m.is_archived)
                 for m in store.list_models(order='oldest')]
out['count'] = store.count_models(model_name='bulk')
for bad in (dict(priority='high'), dict(is_archived=None), dict(eval_seconds=float('nan')),
            dict(run_tag='x' * 256), dict(labels=[1])):
    try:
        store.add_model(model_name='bad', **base, **bad)
    except modelstore.ValidationError as exc:
        out.setdefault('refused', []).append(exc.field)
task = store.add_task(task_name='t1', base_runtime='vllm', model_config={}, parameters={},
                      optimization_config={}, benchmark_config={}, queue='gpu')
store.update_task(task.id, attempts=2)
t = store.get_task(task.id)
out['task'] = [t.queue, t.attempts, store.list_tasks()[0].queue]
print(json.dumps(out))
'''


def _run(argv, env):
    # (In the copy's parent: the current directory comes first on sys.path.)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300,
                          cwd=env['PYTHONPATH'])
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_fields_added_to_the_models_work_in_every_call_with_no_other_edit(tmp_path, db_url):
    package = os.path.dirname(modelstore.__file__)
    # A checkout's layout: the package beside the top-level migrations/ it runs from.
    copy = tmp_path / 'site' / 'modelstore'
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns('__pycache__', 'migrations'))
    shutil.copytree(os.path.join(package, 'migrations'), tmp_path / 'site' / 'migrations',
                    ignore=shutil.ignore_patterns('__pycache__'))
    models = copy / 'shared' / 'tables.py'
    source = models.read_text()
    for cls, fields in (('class FineTunedModel(Model):', ADDED_MODEL_FIELDS),
                        ('class Task(Model):', ADDED_TASK_FIELDS)):
        # Right after the class's docstring line: the fields come first in the body.
        start = source.index(cls)
        end = source.index('\n', source.index('"""', source.index('"""', start) + 3)) + 1
        source = source[:end] + textwrap.dedent(fields).replace('\n', '\n    ')[1:] + '\n' \
            + source[end:]
    models.write_text(source)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / 'site'))
    env.pop('MODELSTORE_DATABASE_URL', None)
    cli = [sys.executable, '-m', 'modelstore']
    generated = _run(cli + ['new', '--auto', 'added_fields', '--json'], env)
    written = json.loads(generated)
    assert 'is_archived' in generated and 'queue' in generated, written
    _run(cli + ['migrate', '--database', db_url], env)
    assert _run(cli + ['check', '--database', db_url], env) is not None
    out = json.loads(_run([sys.executable, '-c', PIPELINE, db_url, str(copy)], env))
    assert out['plain'] == [False, 0, None, None, None, None]
    assert out['full'] == [1.5, True, 'r1', 7, 'n', {'a': [1, 2]}, 1]
    assert out['returned_equals_stored'] is True
    assert out['updated'] == [3, 'later', None]
    assert out['bulk'] == 4
    assert out['listed'] == [['plain', 3, None, False], ['full', 7, 'r1', True],
                             ['bulk', 0, 'b0', False], ['bulk', 1, 'b1', False],
                             ['bulk', 2, 'b2', False], ['bulk', 0, None, False]]
    assert out['count'] == 4
    assert out['refused'] == ['priority', 'is_archived', 'eval_seconds', 'run_tag', 'labels']
    assert out['task'] == ['gpu', 2, 'gpu']
