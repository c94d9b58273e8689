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

Every process is bounded: one still running after its time dumps its stack to stderr
(faulthandler, SIGUSR1), is killed and reported, as is one that died. Code that hangs or crashes
fails the run; it does not hang the harness.

    PYTHONPATH=harness .venv/bin/python harness/race_delete.py --models 1000 [--database URL]
"""
import argparse
import contextlib
import ctypes
import faulthandler
import hashlib
import multiprocessing
import os
import queue
import random
import shutil
import signal
import sys
import tempfile
import time

import modelstore

FILES = 3
GRACE = 20  # Seconds a process gets beyond its own limit before it is called hung.


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


def put_back(root, names):
    """Undo the swap a killed swapper was in the middle of (the team first)."""
    team = os.path.join(root, 'team')
    for real in [team] + [os.path.join(team, name) for name in names]:
        link = real + '.link'
        with contextlib.suppress(OSError):
            if os.path.islink(real) and os.path.isdir(link) and not os.path.islink(link):
                exchange(real, link)
            if os.path.islink(link):
                os.unlink(link)


def _swapper_main(root, outside, names, stop, seed, out):
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    out.put(('swapper', swapper(root, outside, names, stop, seed), []))


def _recovery_main(url, root, stop, out, kind='recovery'):
    """``empty_trash()`` until ``stop``, once at least (the final pass: ``stop`` already set)."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    rounds = busy = 0
    errors = []
    with modelstore.connect(url, models_root=root) as store:
        while rounds == 0 or not stop.is_set():
            try:
                busy += sum(1 for action, _, _ in store.empty_trash() if action == 'busy')
            except Exception as exc:  # A raw exception is a finding; a ModelStoreError too.
                errors.append('%s: empty_trash: %s: %s' % (kind, type(exc).__name__, exc))
            rounds += 1
    out.put((kind, (rounds, busy), errors[:10]))


def _deleter_main(url, root, ids, limit, out):
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    refused = 0
    errors = []
    with modelstore.connect(url, models_root=root) as store:
        pending = list(ids)
        deadline = time.monotonic() + limit
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
    found = ['raw exception: ' + e for e in errors[:10]]
    found += ['... %d raw exceptions in all' % len(errors)] if len(errors) > 10 else []
    found += ['%d models were never deleted' % len(pending)] if pending else []
    out.put(('deleter', refused, found))


def bounded(procs, seconds, results, found, problems):
    """Wait up to ``seconds`` for ``procs``, moving what they send (one small ``(kind, counts,
    [problems])`` each) to ``found`` meanwhile: a child whose message fills the pipe cannot exit
    until it is read, so joining first can deadlock. Then kill each one still running."""
    deadline = time.monotonic() + seconds
    while True:
        done = not any(p.is_alive() for p in procs) or time.monotonic() > deadline
        with contextlib.suppress(queue.Empty):
            while True:  # (Once they are done, all they sent is in the pipe.)
                found.append(results.get(timeout=0.1))
        if done:
            break
    for p in procs:
        if p.is_alive():
            with contextlib.suppress(OSError):
                os.kill(p.pid, signal.SIGUSR1)  # Where it is stuck, to stderr.
                time.sleep(0.5)
            p.kill()
            p.join(5)
            problems.append('%s hung: still running after %d s, killed' % (p.name, seconds))
        elif p.exitcode != 0:
            problems.append('%s died (exit code %s)' % (p.name, p.exitcode))


def run(models=1000, deleters=2, seed=None, database=None, out=sys.stdout, limit=120):
    """The problems found (each printed to ``out``); deleters give up after ``limit`` s."""
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
        before = snapshot(outside)
        stop, results, found = ctx.Event(), ctx.Queue(), []
        started = time.monotonic()
        helpers = [ctx.Process(target=_swapper_main, name='swapper',
                               args=(root, outside, names, stop, seed, results)),
                   ctx.Process(target=_recovery_main, name='recovery loop',
                               args=(url, root, stop, results))]
        workers = [ctx.Process(target=_deleter_main, name='deleter %d' % k,
                               args=(url, root, ids[k::deleters], limit, results))
                   for k in range(deleters)]
        for p in helpers + workers:
            p.start()
        bounded(workers, limit + GRACE, results, found, problems)
        stop.set()
        bounded(helpers, GRACE, results, found, problems)
        elapsed = time.monotonic() - started
        put_back(root, names)  # (Needed only if the swapper was stopped mid-swap.)
        final = ctx.Process(target=_recovery_main, name='final empty_trash',
                            args=(url, root, stop, results, 'final'))
        final.start()
        bounded([final], GRACE, results, found, problems)
        swaps = sum(n for kind, n, _ in found if kind == 'swapper')
        refused = sum(n for kind, n, _ in found if kind == 'deleter')
        rounds = sum(n[0] for kind, n, _ in found if kind == 'recovery')
        busy = sum(n[1] for kind, n, _ in found if kind == 'recovery')
        for _, _, reported in found:
            problems += reported
        with modelstore.connect(url, models_root=root) as store:
            stored = {m.id for m in store.list_models(limit=None)}
        after = snapshot(outside)
        if after != before:
            changed = sorted(set(before.items()) ^ set(after.items()))
            problems.append('%d files outside the models root changed, e.g. %s'
                            % (len(changed), changed[:3]))
        for model_id, name in zip(ids, names):
            path = os.path.join(root, 'team', name)
            here = snapshot(path) if os.path.lexists(path) else None
            if model_id in stored and here != expected[model_id]:
                problems.append('model %d is stored without its files whole' % model_id)
            if model_id not in stored and here is not None:
                problems.append('model %d was deleted but %s is still there' % (model_id, path))
        left = snapshot(root)
        if left != {'team': 'dir'}:
            problems.append('the models root is not empty after every delete: %s'
                            % sorted(left.items())[:5])
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
    parser.add_argument('--limit', type=int, default=120, help='seconds the deleters get')
    parser.add_argument('--database', metavar='URL',
                        help='a registry on a server (its models are deleted), not a SQLite file')
    args = parser.parse_args(argv)
    return 1 if run(args.models, args.deleters, args.seed, args.database, limit=args.limit) else 0


if __name__ == '__main__':
    sys.exit(main())
