"""Race harness: many migrate runners at once, and writers that keep writing through a migration.

1. Runners: ``--runners`` processes start ``modelstore migrate`` on the same fresh database at the
   same instant. All must exit 0; every script is recorded exactly once, by exactly one runner;
   no "database is locked", duplicate-key or other error reaches the user.
2. Writers: ``--writers`` processes each call ``add_model`` ``--writes`` times on a registry at
   head. While they write, an operator applies a new script that adds a column and an index to
   the very table they write (``migrate --migrations DIR``) and then rolls it back. Every write
   must be stored exactly once; no writer sees an error.

    .venv/bin/python harness/race.py [--runners 8 --writers 8 --writes 1000] [--database ADMIN_URL]

prints the figures and exits 1 if a target is missed.
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from dbtools import new_database, query

from modelstore.engine.scripts import default_directory, discover

SCRIPTS = [s.name for s in discover()]
EXTRA = '''\
"""Added by the race harness: a column and an index on the table the writers write."""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column('fine_tuned_models', 'race_note', TextField(null=True)),
        migrator.add_index('fine_tuned_models', ('task', 'model_name'), False),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index('fine_tuned_models', 'fine_tuned_models_task_model_name'),
        migrator.drop_column('fine_tuned_models', 'race_note'),
    )
'''

RUNNER = '''
import sys, time
from modelstore.cli import main
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
sys.exit(main(['migrate', '--database', sys.argv[1]]))
'''

WRITER = '''
import json, sys, modelstore
url, who, count, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
errors = []
written = 0
with modelstore.connect(url) as store:
    open(ready, 'w').close()
    for i in range(count):
        try:
            store.add_model(model_name='%s-%d' % (who, i), base_model='b', task='t',
                            model_path='/models/%s/%d' % (who, i))
            written += 1
        except Exception as exc:
            errors.append('%s: %s' % (type(exc).__name__, exc))
print(json.dumps({'written': written, 'errors': errors[:5], 'error_count': len(errors)}))
'''


def _python(code, *args, **kw):
    return subprocess.Popen([sys.executable, '-c', code] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def runners(url, count):
    """Start ``count`` migrate runners at one instant; returns (figures, problems)."""
    start = time.time() + 1.0  # Enough for every interpreter to have started.
    procs = [_python(RUNNER, url, start) for _ in range(count)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    problems = []
    for code, out, err in results:
        if code != 0 or err.strip():
            problems.append('runner exited %d: %s' % (code, err.strip()[:300]))
    names = [r[0] for r in query(url, 'SELECT name FROM schema_migration')]
    if sorted(names) != sorted(SCRIPTS):
        problems.append('history holds %s' % names)
    appliers = sum('Database is up to date.' in out for _, out, _ in results)
    if appliers != 1:
        problems.append('%d runners applied scripts (expected exactly one)' % appliers)
    figures = {'runners': count, 'exit_0': sum(r[0] == 0 for r in results),
               'history_rows': len(names), 'scripts': len(SCRIPTS), 'appliers': appliers,
               'errors_shown': sum(bool(r[2].strip()) for r in results)}
    return figures, problems


def writers(url, count, writes, workdir):
    """``count`` writers x ``writes`` add_model while a migration and a rollback run."""
    from modelstore.cli import main as cli
    scripts = os.path.join(workdir, 'scripts')
    shutil.copytree(default_directory(), scripts, ignore=shutil.ignore_patterns('__pycache__'))
    with open(os.path.join(scripts, '9001_race_note.py'), 'w') as fh:
        fh.write(EXTRA)
    with contextlib.redirect_stdout(io.StringIO()):
        cli(['migrate', '--database', url, '--no-backup'])
    ready = [os.path.join(workdir, 'ready-w%d' % n) for n in range(count)]
    procs = [_python(WRITER, url, 'w%d' % n, writes, ready[n]) for n in range(count)]
    # Writers connected before the migration, as a running pipeline is: one that connects after
    # it is refused by the startup gate (the history names a script its code lacks).
    deadline = time.monotonic() + 120
    while not all(map(os.path.exists, ready)) and time.monotonic() < deadline \
            and not any(p.poll() not in (None, 0) for p in procs):
        time.sleep(0.005)
    total = count * writes
    deadline = time.monotonic() + 120
    while query(url, 'SELECT COUNT(*) FROM fine_tuned_models')[0][0] < total // 5:
        if time.monotonic() > deadline or all(p.poll() is not None for p in procs):
            break
        time.sleep(0.01)
    during = query(url, 'SELECT COUNT(*) FROM fine_tuned_models')[0][0]
    problems = []
    codes = []
    for argv in (['migrate', '--migrations', scripts], ['rollback', '--migrations', scripts]):
        with contextlib.redirect_stdout(io.StringIO()):
            codes.append(cli(argv + ['--database', url]))
    if codes != [0, 0]:
        problems.append('migrate/rollback during the writes exited %s' % codes)
    outputs = [p.communicate(timeout=300) for p in procs]
    written = errors = 0
    for (out, err), proc in zip(outputs, procs):
        if proc.returncode != 0:
            problems.append('writer exited %d: %s' % (proc.returncode,
                                                       (err.strip().splitlines() or [''])[-1]))
            continue
        result = json.loads(out)
        written += result['written']
        errors += result['error_count']
        problems += result['errors']
    stored = query(url, 'SELECT COUNT(*) FROM fine_tuned_models')[0][0]
    distinct = query(url, 'SELECT COUNT(DISTINCT model_name) FROM fine_tuned_models')[0][0]
    lost = total - distinct
    if stored != total or distinct != total:
        problems.append('%d writes, %d rows stored (%d distinct)' % (total, stored, distinct))
    figures = {'writers': count, 'writes': total, 'stored': stored, 'lost': lost,
               'errors': errors, 'rows_when_migration_started': during}
    return figures, problems


def run(backend, admin_url=None, n_runners=8, n_writers=8, writes=1000, out=sys.stdout):
    """Both races on ``backend``; returns (figures, problems)."""
    workdir = tempfile.mkdtemp(prefix='modelstore-race-')
    drops = []

    def fresh():
        if backend == 'sqlite':
            drops.append(None)
            return 'sqlite:///' + os.path.join(workdir, 'r%d.db' % len(drops))
        url, drop = new_database(admin_url)
        drops.append(drop)
        return url
    try:
        figures, problems = runners(fresh(), n_runners)
        print('racing runners on %s: %d started at once, %d exited 0, %d of %d scripts '
              'recorded (each once: %s), applied by %d runner, %d errors shown to the user'
              % (backend, figures['runners'], figures['exit_0'], figures['history_rows'],
                 figures['scripts'], 'yes' if figures['history_rows'] == figures['scripts']
                 else 'NO', figures['appliers'], figures['errors_shown']), file=out)
        more, more_problems = writers(fresh(), n_writers, writes, workdir)
        print('writers during migrate + rollback on %s: %d x %d add_model, %d stored, %d lost, '
              '%d errors (migration started at row %d)'
              % (backend, more['writers'], more['writes'] // more['writers'], more['stored'],
                 more['lost'], more['errors'], more['rows_when_migration_started']), file=out)
        figures.update(more)
        problems += more_problems
    finally:
        for drop in drops:
            if drop is not None:
                drop()
        shutil.rmtree(workdir, ignore_errors=True)
    for problem in problems:
        print('  problem: %s' % problem, file=out)
    return figures, problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runners', type=int, default=8)
    parser.add_argument('--writers', type=int, default=8)
    parser.add_argument('--writes', type=int, default=1000, help='add_model calls per writer')
    parser.add_argument('--database', metavar='POSTGRES_ADMIN_URL',
                        help='run on PostgreSQL: a role that may CREATE DATABASE')
    args = parser.parse_args(argv)
    backend = ('mysql' if args.database.split(':')[0] in ('mysql', 'mariadb') else
               'postgresql') if args.database else 'sqlite'
    _, problems = run(backend, args.database, args.runners, args.writers, args.writes)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
