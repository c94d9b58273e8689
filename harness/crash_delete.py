"""kill -9 during delete_model(files=True): a model keeps its row and all its files, or loses both.

Each trial makes a models root of MODELS model directories (nested folders, a few files each,
rows pointing at them), starts a child process that deletes them one by one with their files,
and kills it with SIGKILL after a random delay. Then, before any repair, it checks what the
crash left:

* a model whose row is still stored has every one of its files, in place or (moved in one
  rename) in the trash under a manifest naming its row;
* a model whose row is gone has nothing left in place, and whatever is left of its files is in
  the trash under a manifest;

then runs ``empty_trash`` (``modelstore doctor --empty-trash``) and checks that every stored
model has its files in place, no deleted one has any, and the trash is empty.

    PYTHONPATH=harness .venv/bin/python harness/crash_delete.py --trials 200
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import modelstore
from modelstore.registry.modelfiles import TRASH, ModelsRoot

CHILD = '''
import sys, modelstore
store = modelstore.connect(sys.argv[1], models_root=sys.argv[2])
print('ready', flush=True)
for model_id in sys.argv[3:]:
    store.delete_model(int(model_id), files=True)
print('done', flush=True)
'''


def tree(directory):
    """{relative path: size} of every file below ``directory``."""
    out = {}
    for base, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            out[os.path.relpath(path, directory)] = os.path.getsize(path)
    return out


def make_models(root, url, count, rng):
    expected = {}
    with modelstore.connect(url, models_root=root) as store:
        for i in range(count):
            path = os.path.join(root, 'model-%d_%032x' % (i, rng.getrandbits(128)))
            for depth in range(rng.randint(1, 3)):
                folder = os.path.join(path, *['sub%d' % d for d in range(depth)])
                os.makedirs(folder, exist_ok=True)
                # Many files: removing a directory then takes long enough to be killed in.
                for j in range(rng.randint(5, 80)):
                    with open(os.path.join(folder, 'part-%d.bin' % j), 'wb') as f:
                        f.write(os.urandom(rng.randint(1, 8 * 1024)))
            model = store.add_model(model_name='model-%d' % i, base_model='b', task='t',
                                    model_path=path)
            expected[model.id] = (path, tree(path))
    return expected


def trashed(root):
    """{model id: [(token, files)]} of the trash's directories, by their manifests."""
    out = {}
    for token, entry in ModelsRoot(root).trash_entries():
        if entry is None:
            raise AssertionError('trash entry %s has no manifest' % token)
        directory = os.path.join(root, TRASH, token)
        files = tree(directory) if os.path.isdir(directory) else None
        out.setdefault(entry['id'], []).append((token, files))
    return out


def check_crashed(root, url, expected):
    """What a crash may leave (before repair); returns the problems found."""
    problems = []
    in_trash = trashed(root)
    with modelstore.connect(url, models_root=root) as store:
        stored = {m.id for m in store.list_models()}
    for model_id, (path, files) in expected.items():
        here = tree(path) if os.path.isdir(path) else None
        moved = [f for _, f in in_trash.get(model_id, []) if f is not None]
        if model_id in stored:
            whole = here == files or (here is None and moved == [files])
            if not whole:
                problems.append('model %d is stored but its files are not whole' % model_id)
        elif here is not None:  # (What is left of it is in the trash: trashed() checked.)
            problems.append('model %d was deleted but %s is still there' % (model_id, path))
    return problems


def check_repaired(root, url, expected):
    problems = []
    with modelstore.connect(url, models_root=root) as store:
        store.empty_trash()
        stored = {m.id for m in store.list_models()}
    for model_id, (path, files) in expected.items():
        here = tree(path) if os.path.isdir(path) else None
        if model_id in stored and here != files:
            problems.append('after repair, model %d is stored without its files' % model_id)
        if model_id not in stored and here is not None:
            problems.append('after repair, deleted model %d still has files' % model_id)
    if os.path.exists(os.path.join(root, TRASH)):
        problems.append('after repair the trash is still there: %s'
                        % os.listdir(os.path.join(root, TRASH)))
    return problems


def trial(workdir, n, models, rng, database=None):
    base = os.path.join(workdir, 'trial-%d' % n)
    root = os.path.join(base, 'models')
    os.makedirs(root)
    url = database or 'sqlite:///' + os.path.join(base, 'registry.db')
    if database:  # One server database for every trial: start each from no models.
        with modelstore.connect(url) as store:
            store.FineTunedModel.delete().execute()
    expected = make_models(root, url, models, rng)
    # cwd: not the checkout, so the child imports the installed modelstore, as this process does.
    child = subprocess.Popen([sys.executable, '-c', CHILD, url, root] + list(map(str, expected)),
                             stdout=subprocess.PIPE, text=True, cwd=base)
    assert child.stdout.readline().strip() == 'ready'
    time.sleep(rng.uniform(0, 0.004 * models))
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    caught = bool(os.path.isdir(os.path.join(root, TRASH)) and os.listdir(os.path.join(root,
                                                                                    TRASH)))
    problems = check_crashed(root, url, expected)
    problems += check_repaired(root, url, expected)
    shutil.rmtree(base)
    return problems, caught


def run(trials, models=12, seed=None, database=None, out=sys.stdout):
    """Returns how many trials found a problem (each printed to ``out``). ``database``: a
    registry on a server to use instead of a SQLite file per trial (its models are deleted)."""
    seed = random.randrange(2 ** 32) if seed is None else seed
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp(prefix='crash-delete-')
    failed = caught = 0
    try:
        for n in range(trials):
            problems, mid_delete = trial(workdir, n, models, rng, database)
            caught += mid_delete
            if problems:
                failed += 1
                print('trial %d: %s' % (n, '; '.join(problems)), file=out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print('delete with files: %d/%d trials consistent (seed %d, %d models each, %s; %d killed '
          'in the middle of a delete, leaving trash)' % (
              trials - failed, trials, seed, models, 'server' if database else 'SQLite', caught),
          file=out)
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--trials', type=int, default=200)
    parser.add_argument('--models', type=int, default=12)
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('--database', metavar='URL',
                        help='a registry on a server (its models are deleted), not SQLite files')
    args = parser.parse_args(argv)
    return 1 if run(args.trials, args.models, args.seed, args.database) else 0


if __name__ == '__main__':
    sys.exit(main())
