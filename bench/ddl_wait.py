"""Writers' latency while an ADD COLUMN migrates behind a long reader (PostgreSQL).

Three runs on fresh databases, each with 8 writer processes calling add_model in a loop and a
reader that opens a transaction on fine_tuned_models and keeps it open for HOLD seconds:

* ``none``: no migration (the baseline);
* ``ours``: ``modelstore migrate`` of a script adding a column, started 1 s into the hold,
  with its defaults (lock_timeout 2 s per try, rolled back and retried with backoff);
* ``peewee``: the same column added by plain ``playhouse.migrate.migrate()``, which waits
  for the reader with its ACCESS EXCLUSIVE request queued -- and every writer behind it.

Reported: the writers' p99 and longest call during the migration (for ``none``: the same
window), and how long the migration took.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

WRITER = '''
import json, sys, time
import modelstore
url, who, until, start, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), \\
    float(sys.argv[4]), sys.argv[5]
store = modelstore.connect(url)
time.sleep(max(0.0, start - time.time()))
calls, i = [], 0
while time.time() < until:
    began = time.time()
    store.add_model(model_name='%s-%d' % (who, i), base_model='b', task='t', model_path='/m')
    calls.append((began, time.time() - began))
    i += 1
json.dump(calls, open(out, 'w'))
'''

ADD_NOTES = '''
from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column('fine_tuned_models', 'notes', TextField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'notes'))
'''

PLAIN_PEEWEE = '''
import sys
from peewee import PostgresqlDatabase, TextField
from playhouse.db_url import connect
from playhouse.migrate import PostgresqlMigrator, migrate
db = connect(sys.argv[1])
migrate(PostgresqlMigrator(db).add_column('fine_tuned_models', 'notes', TextField(null=True)))
'''


def _p99(values):
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def one_run(url, mode, hold, writers, workdir):
    """Writers' (p99, longest, calls) in the migration window, and the migration's seconds."""
    import psycopg2
    from modelstore.engine.scripts import default_directory
    directory = os.path.join(workdir, 'migrations-%s' % mode)
    shutil.copytree(default_directory(), directory, ignore=shutil.ignore_patterns('__pycache__'))
    with open(os.path.join(directory, '0090_add_notes.py'), 'w') as f:
        f.write(ADD_NOTES)
    start = time.time() + 2.0
    until = start + hold + 10
    outs = [os.path.join(workdir, '%s-%d.json' % (mode, n)) for n in range(writers)]
    procs = [subprocess.Popen([sys.executable, '-c', WRITER, url, 'w%d' % n, repr(until),
                               repr(start), outs[n]]) for n in range(writers)]
    time.sleep(max(0.0, start + 1.0 - time.time()))
    reader = psycopg2.connect(url)
    reader.cursor().execute('SELECT COUNT(*) FROM fine_tuned_models')  # Opens the transaction.
    threading.Timer(hold, reader.commit).start()
    time.sleep(1.0)
    began = time.time()
    if mode == 'ours':
        subprocess.run([sys.executable, '-m', 'modelstore', 'migrate', '--database', url,
                        '--migrations', directory], check=True, stdout=subprocess.DEVNULL)
    elif mode == 'peewee':
        subprocess.run([sys.executable, '-c', PLAIN_PEEWEE, url], check=True)
    ended = time.time() if mode != 'none' else began + hold - 1.0
    for proc in procs:
        proc.wait()
    reader.close()
    latencies = []
    for path in outs:
        with open(path) as f:
            latencies += [took for at, took in json.load(f) if began <= at + took and at <= ended]
    return _p99(latencies), max(latencies), len(latencies), ended - began


def bench_ddl_wait(new_url, result, fact, hold=20.0, writers=8):
    from modelstore.engine.ddlwait import DDL_LOCK_TIMEOUT
    import modelstore
    workdir = tempfile.mkdtemp(prefix='modelstore-ddlwait-')
    figures = {}
    try:
        for mode in ('none', 'ours', 'peewee'):
            url = new_url()
            modelstore.connect(url).close()
            figures[mode] = one_run(url, mode, hold, writers, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    section = 'ddl wait PostgreSQL'
    label = ('%d writers, a reader holding fine_tuned_models %g s, ADD COLUMN' % (writers, hold))
    (p99, longest, calls, took), (p99_0, longest_0, calls_0, _) = figures['ours'], figures['none']
    result(section, '%s: writers p99 during modelstore migrate vs no migration' % label, p99,
           p99_0, 2.0, note='%d and %d calls; migrate took %.1f s' % (calls, calls_0, took))
    fact(section, '%s: longest writer call during modelstore migrate' % label,
         longest, DDL_LOCK_TIMEOUT + 0.1, unit='s', met=longest <= DDL_LOCK_TIMEOUT + 0.1,
         note='lock_timeout %g s + 100 ms; without a migration: %.3f s'
         % (DDL_LOCK_TIMEOUT, longest_0))
    p99_p, longest_p, calls_p, took_p = figures['peewee']
    fact(section, '%s: plain peewee migrate(), for comparison: writers p99 / longest call'
         % label, '%.3f s / %.3f s' % (p99_p, longest_p),
         note='%d calls; the ALTER took %.1f s, queued behind the reader' % (calls_p, took_p))
