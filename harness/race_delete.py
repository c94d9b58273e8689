"""delete_model(files=True) racing a symlink swapper and an empty_trash loop: nothing outside the
models root is ever touched, and every model keeps its row with all its files, or loses both.

A models root holds MODELS model folders under ``<root>/team/`` (a few files each). Beside the
root, an outside directory holds folders of the same names with canary files: a delete that
followed a link would remove them. Three kinds of process run at once, for real (no patching):

* a **swapper** that, in a tight loop, replaces ``<root>/team`` with a symlink to the outside
  directory and back, and replaces single model folders with symlinks to their outside twins
  and back (each swap is one atomic exchange, Linux's ``renameat2(RENAME_EXCHANGE)``, so the
  path never stops existing: a checker sees the directory or the link, never nothing);
* a **recovery loop**: ``empty_trash()`` over and over, as ``doctor --empty-trash`` run from cron
  beside a working pipeline would;
* **deleters** that call ``delete_model(id, files=True)`` on their share of the models until each
  succeeds (a refusal -- "is a symlink", "changed while it was being deleted" -- is a correct
  answer to a swap; they try again).

Then it stops the swapper (everything put back), runs ``empty_trash()`` once more, and checks:
the outside directory is byte for byte as it was; every model whose row is gone has no folder,
and every model whose row is stored has its folder whole; the trash is gone.

    PYTHONPATH=harness .venv/bin/python harness/race_delete.py --models 1000 [--database URL]
"""
import argparse
import contextlib
import ctypes
import hashlib
import multiprocessing
import os
import queue
import random
import shutil
import sys
import tempfile
import time

import modelstore

FILES = 3


def snapshot(top):
    """{relative path: sha256 (or 'dir' / 'link -> target')} of everything below ``top``."""
    out = {}
    for base, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, top)
            if os.path.islink(path):
                out[rel] = 'link -> ' + os.readlink(path)
            elif os.path.isdir(path):
                out[rel] = 'dir'
            elif not os.path.isfile(path):  # A FIFO, a socket: never opened.
                out[rel] = 'special'
            else:
                with open(path, 'rb') as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def make_folder(path, tag):
    os.makedirs(os.path.join(path, 'checkpoint'))
    for i in range(FILES):
        with open(os.path.join(path, 'checkpoint', 'part-%d.bin' % i), 'wb') as f:
            f.write(('%s %d\n' % (tag, i)).encode() * 20)


_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a, b):
    """Swap the entries ``a`` and ``b`` in one step (Linux renameat2 RENAME_EXCHANGE): the path
    never stops existing, so a checker can only ever see the directory or the link."""
    if _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                       _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)


def swapper(root, outside, names, stop, seed):
    """Swap ``team`` and single model folders for links outside, and back, until ``stop``."""
    rng = random.Random(seed)
    team = os.path.join(root, 'team')
    swaps = 0
    while not stop.is_set():
        if rng.random() < 0.5:
            real, target = team, outside
        else:
            name = rng.choice(names)
            real, target = os.path.join(team, name), os.path.join(outside, name)
        link = real + '.link'
        try:
            os.symlink(target, link)
            exchange(real, link)  # Now ``real`` is the link and ``link`` the directory.
        except OSError:  # Deleted already, or the team is swapped right now.
            with contextlib.suppress(OSError):
                os.unlink(link)
            continue
        time.sleep(rng.choice((0, 0, 0.0005, 0.002)))
        for _ in range(1000):  # A delete may hold the link in its trash for a moment.
            try:
                exchange(real, link)
                break
            except OSError:
                time.sleep(0.001)
        else:  # A delete took it for good (what the checks below then report).
            with contextlib.suppress(OSError):
                os.unlink(link)
            continue
        os.unlink(link)
        swaps += 1
    return swaps


def _swapper_main(root, outside, names, stop, seed, out):
    out.put(('swapper', swapper(root, outside, names, stop, seed)))


def _recovery_main(url, root, stop, out):
    rounds = busy = 0
    errors = []
    with modelstore.connect(url, models_root=root) as store:
        while not stop.is_set():
            try:
                busy += sum(1 for action, _, _ in store.empty_trash() if action == 'busy')
            except Exception as exc:  # A raw exception is a finding; a ModelStoreError too.
                errors.append('empty_trash: %s: %s' % (type(exc).__name__, exc))
            rounds += 1
    out.put(('recovery', (rounds, busy, errors[:10])))


def _deleter_main(url, root, ids, out):
    refused = 0
    errors = []
    with modelstore.connect(url, models_root=root) as store:
        pending = list(ids)
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            model_id = pending.pop(0)
            try:
                store.delete_model(model_id, files=True)
            except (modelstore.ValidationError, modelstore.StorageError):
                refused += 1
                pending.append(model_id)
            except Exception as exc:  # A raw exception is a finding.
                errors.append('%d: %s: %s' % (model_id, type(exc).__name__, exc))
                pending.append(model_id)
    out.put(('deleter', (refused, errors, pending)))


def run(models=1000, deleters=2, seed=None, database=None, out=sys.stdout):
    """Returns the list of problems found (each printed to ``out``)."""
    seed = random.randrange(2 ** 32) if seed is None else seed
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix='race-delete-')
    ctx = multiprocessing.get_context('fork')
    problems = []
    try:
        root = os.path.join(work, 'models')
        outside = os.path.join(work, 'outside')
        url = database or 'sqlite:///' + os.path.join(work, 'registry.db')
        names = ['m-%d_%08x' % (i, rng.getrandbits(32)) for i in range(models)]
        for name in names:
            make_folder(os.path.join(root, 'team', name), 'model ' + name)
            make_folder(os.path.join(outside, name), 'OUTSIDE ' + name)
        with modelstore.connect(url, models_root=root) as store:
            if database:
                store.FineTunedModel.delete().execute()
            ids = [store.add_model(model_name=name.split('_')[0], base_model='b', task='t',
                                   model_path=os.path.join(root, 'team', name)).id
                   for name in names]
        expected = {i: snapshot(os.path.join(root, 'team', n)) for i, n in zip(ids, names)}
        paths = dict(zip(ids, names))
        before = snapshot(outside)
        stop = ctx.Event()
        results = ctx.Queue()
        started = time.monotonic()
        helpers = [ctx.Process(target=_swapper_main, args=(root, outside, names, stop, seed,
                                                           results)),
                   ctx.Process(target=_recovery_main, args=(url, root, stop, results))]
        workers = [ctx.Process(target=_deleter_main, args=(url, root, ids[k::deleters], results))
                   for k in range(deleters)]
        for p in helpers + workers:
            p.start()
        for p in workers:
            p.join()
        stop.set()
        for p in helpers:
            p.join()
        elapsed = time.monotonic() - started
        found = []
        for p in helpers + workers:
            if p.exitcode:
                problems.append('a harness process died (exit code %s)' % p.exitcode)
        while True:
            try:
                found.append(results.get(timeout=2))
            except queue.Empty:
                break
        swaps = sum(data for kind, data in found if kind == 'swapper')
        rounds = sum(data[0] for kind, data in found if kind == 'recovery')
        busy = sum(data[1] for kind, data in found if kind == 'recovery')
        refused = 0
        for kind, data in found:
            if kind == 'recovery':
                problems += data[2]
            if kind == 'deleter':
                refused += data[0]
                problems += ['raw exception: ' + e for e in data[1][:10]]
                if data[2]:
                    problems.append('%d models were never deleted' % len(data[2]))
        with modelstore.connect(url, models_root=root) as store:
            store.empty_trash()
            stored = {m.id for m in store.list_models(limit=None)}
        after = snapshot(outside)
        if after != before:
            changed = sorted(set(before.items()) ^ set(after.items()))
            problems.append('%d files outside the models root changed, e.g. %s'
                            % (len(changed), changed[:3]))
        for model_id, name in paths.items():
            path = os.path.join(root, 'team', name)
            here = snapshot(path) if os.path.lexists(path) else None
            if model_id in stored and here != expected[model_id]:
                problems.append('model %d is stored without its files whole' % model_id)
            if model_id not in stored and here is not None:
                problems.append('model %d was deleted but %s is still there' % (model_id, path))
        left = sorted(os.listdir(root))
        if left != ['team'] or os.listdir(os.path.join(root, 'team')):
            problems.append('the models root is not empty after every delete: %s' % left)
        for problem in problems:
            print(problem, file=out)
        print('race delete: %d deletes of %d, %d refused and retried during %d swaps; %d '
              'empty_trash rounds (%d busy entries left alone); outside files touched: %d; '
              'rows inconsistent: %d; %.1f s (seed %d, %s)' % (
                  models - len(stored), models, refused, swaps, rounds, busy,
                  0 if after == before else len(set(before.items()) ^ set(after.items())),
                  sum(1 for p in problems if p.startswith('model ')), elapsed, seed,
                  'server' if database else 'SQLite'), file=out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', type=int, default=1000)
    parser.add_argument('--deleters', type=int, default=2)
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('--database', metavar='URL',
                        help='a registry on a server (its models are deleted), not a SQLite file')
    args = parser.parse_args(argv)
    return 1 if run(args.models, args.deleters, args.seed, args.database) else 0


if __name__ == '__main__':
    sys.exit(main())
