"""Peak memory of `modelstore models list` on a large registry (issue 26, item 13).

    PYTHONPATH=harness .venv/bin/python bench/list_memory.py [--rows 200000]
        [--python OTHER/bin/python]... [--keep DIR]

Builds a SQLite registry of ``--rows`` models (add_models, in batches), then runs each
listing -- the table with ``--all``, ``--json``, ``--jsonl`` -- as its own process with stdout to
/dev/null, and prints the peak resident memory of that process (``wait4``'s ru_maxrss, of the
process alone: bench/rss.py) and its wall time, one Markdown table row per Python given (the
first is this one; another is, say, a virtualenv holding an earlier modelstore, for a
before/after). Options an interpreter's
modelstore does not know are reported as such.
"""
import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time

import rss

LISTINGS = [('table', ['--all']), ('--json', ['--json']), ('--jsonl', ['--jsonl'])]


def build(url, rows):
    import modelstore
    start = datetime.datetime(2020, 1, 1)
    with modelstore.connect(url, auto_migrate=True) as store:
        for first in range(0, rows, 10000):
            store.add_models([dict(model_name='model-%06d' % n, base_model='llama-3-8b',
                                   task='text-generation', model_path='/models/m%06d' % n,
                                   description='bench row %d' % n,
                                   creation_date=start + datetime.timedelta(seconds=n))
                              for n in range(first, min(first + 10000, rows))])


def measure(python, url, argv):
    """(peak RSS in MiB, seconds, exit code) of one listing run: its own memory, not this
    process's (which built the registry; bench/rss.py)."""
    mib, seconds, code, _ = rss.peak_rss([python, '-m', 'modelstore', 'models', 'list',
                                          '--database', url] + argv,
                                         cwd=tempfile.gettempdir(), stderr=subprocess.DEVNULL)
    return mib, seconds, code


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rows', type=int, default=200000)
    parser.add_argument('--python', action='append', default=[],
                        help='another interpreter to compare (its own modelstore)')
    parser.add_argument('--keep', metavar='DIR', help='build the registry here and keep it')
    args = parser.parse_args(argv)
    directory = args.keep or tempfile.mkdtemp(prefix='ms_bench_list_')
    path = os.path.join(directory, 'registry.db')
    url = 'sqlite:///' + path
    if not os.path.exists(path):
        began = time.monotonic()
        build(url, args.rows)
        print('built %d rows in %.1f s' % (args.rows, time.monotonic() - began), file=sys.stderr)
    print('| python | listing | peak RSS | time |')
    print('|---|---|---:|---:|')
    for python in [sys.executable] + args.python:
        for name, extra in LISTINGS:
            rss, seconds, code = measure(python, url, extra)
            if code == 2 and extra == ['--all']:  # Before --all, a listing was every row.
                rss, seconds, code = measure(python, url, [])
            shown = '%.0f MiB' % rss if code == 0 else 'exit %d (option unknown?)' % code
            print('| %s | %s | %s | %.1f s |' % (python, name, shown, seconds), flush=True)
    if not args.keep:
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        os.rmdir(directory)
    return 0


if __name__ == '__main__':
    sys.exit(main())
