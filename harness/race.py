"""Race harness: many migrate runners at once, and writers that keep writing through a migration.

1. Runners: ``--runners`` processes start ``modelstore migrate`` on the same fresh database at the
   same instant. All must exit 0; every script is recorded exactly once, by exactly one runner;
   no "database is locked", duplicate-key or other error reaches the user.
2. Writers: ``--writers`` processes each call ``add_model`` ``--writes`` times on a registry at
   head. While they write, an operator applies a new script that adds a column and an index to
   the very table they write (``migrate --migrations DIR``) and then rolls it back. Every write
   must be stored exactly once; no writer sees an error.
3. The legacy app (SQLite): ``--app-writers`` processes insert as ModelForge does -- plain
   sqlite3, its default deferred transactions and 5 s timeout, one INSERT every 5 ms -- while
   ``modelstore migrate`` takes a ModelForge file of ``--app-rows`` rows (a spread of names, a
   few with many versions) to head, ``--app-runs`` times. Every migrate must exit 0 (0010
   numbers the rows online: it must wait for the app, never fail), every row the app committed
   must be there, and every row must have a version afterwards.

    .venv/bin/python harness/race.py [--runners 8 --writers 8 --writes 1000] [--database ADMIN_URL]
                                     [--app-writers 4 --app-rows 300000 --app-runs 2]

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


APP_WRITER = r'''
import datetime, json, os, sqlite3, sys, time
path, stop, who = sys.argv[1:4]
conn = sqlite3.connect(path)  # As ModelForge: deferred transactions, the 5 s default timeout.
committed, errors, i = 0, [], 0
while not os.path.exists(stop):
    try:
        conn.execute('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
                     'creation_date, model_path) VALUES (?, ?, ?, ?, ?, ?)',
                     ('%s-%d' % (who, i % 40), 'b', 't', '',
                      datetime.datetime.now().isoformat(), '/models/%s/%d' % (who, i)))
        conn.commit()
        committed += 1
    except sqlite3.Error as exc:
        conn.rollback()
        errors.append('%s: %s' % (type(exc).__name__, exc))
    i += 1
    time.sleep(0.005)
print(json.dumps({'committed': committed, 'errors': errors[:5], 'error_count': len(errors)}))
'''


def legacy_app(workdir, rows, processes=4, runs=2):
    """The legacy app writing while ``migrate`` takes its file to head, ``runs`` times;
    returns (figures, problems)."""
    import sqlite3
    from legacy import build, modelforge_v10
    template = os.path.join(workdir, 'forge.db')
    build(template, modelforge_v10)
    with contextlib.closing(sqlite3.connect(template)) as conn:
        # ~1/10 of the rows under a few names with many versions, the rest spread thin.
        conn.executemany(
            'INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
            'creation_date, model_path) VALUES (?, ?, ?, ?, ?, ?)',
            (('hot-%d' % (i % 7) if i % 10 == 0 else 'model-%d' % (i % (rows // 10 + 1)),
              'meta-llama/Llama-3.2-1B', 'text-generation', 'a fine-tuned model, row %d' % i,
              '2025-11-%02dT10:00:00.%06d' % (1 + i % 28, i % 999999),
              '/models/model-%d_%032x' % (i, i)) for i in range(rows)))
        conn.commit()
    problems, durations, committed, errors = [], [], 0, 0
    for n in range(runs):
        path = os.path.join(workdir, 'forge-%d.db' % n)
        shutil.copy(template, path)
        stop = os.path.join(workdir, 'stop-app')
        with contextlib.suppress(FileNotFoundError):
            os.remove(stop)
        before = query('sqlite:///' + path, 'SELECT COUNT(*) FROM fine_tuned_models')[0][0]
        procs = [_python(APP_WRITER, path, stop, 'app%d' % w) for w in range(processes)]
        time.sleep(0.5)
        started = time.monotonic()
        migrate = subprocess.run([sys.executable, '-m', 'modelstore', 'migrate', '--no-backup',
                                  '--database', 'sqlite:///' + path], capture_output=True,
                                 text=True, timeout=1800)
        durations.append(time.monotonic() - started)
        time.sleep(0.3)
        open(stop, 'w').close()
        results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
        if migrate.returncode != 0:
            problems.append('run %d: migrate exited %d: %s' % (
                n, migrate.returncode, migrate.stderr.strip()[-300:]))
        wrote = sum(r['committed'] for r in results)
        committed += wrote
        errors += sum(r['error_count'] for r in results)
        problems += ['run %d: the app saw %s' % (n, e) for r in results for e in r['errors']]
        url = 'sqlite:///' + path
        stored = query(url, 'SELECT COUNT(*) FROM fine_tuned_models')[0][0]
        if stored != before + wrote:
            problems.append('run %d: %d rows + %d committed by the app, %d stored'
                            % (n, before, wrote, stored))
        if migrate.returncode == 0:
            left = query(url, 'SELECT COUNT(*) FROM fine_tuned_models WHERE version IS NULL')
            if left[0][0]:
                problems.append('run %d: %d rows without a version' % (n, left[0][0]))
        os.remove(path)
    figures = {'app_runs': runs, 'app_rows': rows, 'app_committed': committed,
               'app_errors': errors, 'app_failed_runs': sum(p.startswith('run ') and
                                                            'migrate exited' in p
                                                            for p in problems),
               'app_longest_migrate': max(durations)}
    return figures, problems


def run(backend, admin_url=None, n_runners=8, n_writers=8, writes=1000, out=sys.stdout,
        app_rows=300000, app_writers=4, app_runs=2):
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
        if backend == 'sqlite' and app_runs:
            app, app_problems = legacy_app(workdir, app_rows, app_writers, app_runs)
            print('the legacy app writing during migrate on sqlite: %d x migrate of %s rows '
                  'with %d app writers, %d failed, longest %.1f s; %d app rows committed, '
                  '%d app errors' % (app['app_runs'], format(app_rows, ','), app_writers,
                                      app['app_failed_runs'], app['app_longest_migrate'],
                                      app['app_committed'], app['app_errors']), file=out)
            figures.update(app)
            problems += app_problems
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
    parser.add_argument('--app-writers', type=int, default=4,
                        help='legacy app processes inserting through plain sqlite3 (SQLite)')
    parser.add_argument('--app-rows', type=int, default=300000,
                        help='rows of the ModelForge file migrated while the app writes')
    parser.add_argument('--app-runs', type=int, default=2, help='migrations of that file')
    parser.add_argument('--database', metavar='POSTGRES_ADMIN_URL',
                        help='run on PostgreSQL: a role that may CREATE DATABASE')
    args = parser.parse_args(argv)
    backend = ('mysql' if args.database.split(':')[0] in ('mysql', 'mariadb') else
               'postgresql') if args.database else 'sqlite'
    _, problems = run(backend, args.database, args.runners, args.writers, args.writes,
                      app_rows=args.app_rows, app_writers=args.app_writers,
                      app_runs=args.app_runs)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
