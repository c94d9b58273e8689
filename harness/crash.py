"""Crash harness: SIGKILL `modelstore migrate` at random instants; nothing may be lost.

The database is a populated legacy registry with a child table that references it:

* SQLite: ModelForge v1.0 + the autotuner's original state (the exact legacy DDL of
  harness/legacy.py, WAL, ``experiments.task_id -> tasks.id``), plus ``--rows`` generated rows in
  each of fine_tuned_models, tasks and experiments.
* PostgreSQL: the tables of 0001 without any history (a registry modelstore has never seen, which
  it adopts), an ``experiments`` table with a real FOREIGN KEY to tasks, and the same rows.
* MySQL/MariaDB: the same as PostgreSQL (InnoDB, a real FOREIGN KEY). DDL commits there, so a
  kill can leave a script partway: its history row says ``running`` with its operations log.
  Such a database must be at a *recorded* state: ``status`` names the partial script, and
  ``modelstore repair`` reverts exactly what the log says completed -- after it the schema is
  exactly the state of the scripts before it -- and the second migrate goes on from there.

Each trial copies that database, starts ``python -m modelstore migrate`` on it and kills it with
SIGKILL: 20 % of trials at a uniform instant during interpreter start-up, the rest at a uniform
instant within 1.1x the run's own working time (after it printed its first line, measured by an
unkilled calibration run). Then, through the plain driver:

1. the database opens; SQLite's ``PRAGMA integrity_check`` is ``ok`` and ``foreign_key_check``
   is empty;
2. the history names a prefix of the scripts, and the schema is exactly the schema that an
   unkilled ``migrate --to`` that prefix produces (no script half-applied, no history row without
   its effect, no effect without its row);
3. every row of every table is there, unchanged (its original columns);
4. every complete backup is intact and holds exactly the original rows;
5. a second ``migrate`` exits 0 and leaves the head schema, all rows and ``check`` clean.

    .venv/bin/python harness/crash.py --trials 100 [--rows 20000] [--database ADMIN_URL]

prints the figures and exits 1 if any trial was inconsistent or lost a row.
"""
import argparse
import glob
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

from dbtools import _query, create_database, drop_database, query, schema, tables

import legacy  # The legacy apps' exact DDL.

from modelstore.engine.scripts import discover

SCRIPTS = [s.name for s in discover()]
DATA_TABLES = ('fine_tuned_models', 'tasks', 'experiments')


# -- building the database ---------------------------------------------------------------------

def _generated_rows(rows):
    first_task = legacy.AUTOTUNER_ROWS_ORIGINAL[0]
    # Names repeat, so that 0010 numbers versions beyond 1.
    models = [('gen-%d' % (i % 97), 'meta-llama/Llama-3.2-1B', 'text-generation', 'row %d' % i,
               '2025-11-%02dT%02d:%02d:%02d.%06d' % (1 + i % 28, i % 24, i % 60, i % 60, i),
               '/models/gen-%d' % i) for i in range(rows)]
    tasks = [(1000 + i, 'gen-task-%d' % i) + first_task[2:] for i in range(rows)]
    experiments = [(1000 + i, 1000 + i, 1, '{"tp-size": %d}' % (i % 4), 'SUCCESS', None,
                    '{"throughput": %d}' % i, i / rows) for i in range(rows)]
    return models, tasks, experiments


def _fill(conn, rows, placeholder='?'):
    models, tasks, experiments = _generated_rows(rows)
    cur = conn.cursor()

    def insert(table, columns, values):
        cur.executemany('INSERT INTO %s (%s) VALUES (%s)' % (
            table, ', '.join(columns), ', '.join([placeholder] * len(columns))), values)
    insert('fine_tuned_models', ('model_name', 'base_model', 'task', 'description',
                                 'creation_date', 'model_path'), models)
    insert('tasks', legacy._TASK_ORIGINAL_COLUMNS, tasks)
    insert('experiments', ('id', 'task_id', 'experiment_id', 'parameters', 'status',
                           'error_message', 'metrics', 'objective_score'), experiments)


class SqliteTarget:
    backend = 'sqlite'

    def __init__(self, workdir):
        self.workdir = workdir

    def template(self, rows):
        path = os.path.join(self.workdir, 'template.db')
        legacy.build(path, legacy.modelforge_v10, legacy.autotuner_original)
        conn = sqlite3.connect(path)
        _fill(conn, rows)
        conn.commit()
        conn.close()
        return path

    def clone(self, template, name):
        directory = os.path.join(self.workdir, name)
        os.mkdir(directory)
        path = os.path.join(directory, 'registry.db')
        shutil.copy(template, path)
        return path

    def url(self, target):
        return 'sqlite:///' + target

    def discard(self, target):
        shutil.rmtree(os.path.dirname(target), ignore_errors=True)

    def health(self, target):
        """Problems with the file itself: integrity and foreign keys."""
        problems = []
        conn = sqlite3.connect(target)
        try:
            result = [r[0] for r in conn.execute('PRAGMA integrity_check')]
            if result != ['ok']:
                problems.append('integrity_check: %s' % '; '.join(result[:3]))
            orphans = conn.execute('PRAGMA foreign_key_check').fetchall()
            if orphans:
                problems.append('foreign_key_check: %d violations' % len(orphans))
        finally:
            conn.close()
        return problems

    def backups(self, target):
        return glob.glob(target + '.*.bak'), glob.glob(target + '.*.partial*')


def _populate(conn, rows, *ddl):
    """A server database at 0001: its history dropped (a registry to adopt), ``ddl`` (the
    experiments table) run, the rows added; ``conn`` is closed."""
    try:
        cur = conn.cursor()
        cur.execute('DROP TABLE schema_migration')
        for sql in ddl:
            cur.execute(sql)
        _fill(conn, rows, placeholder='%s')
        conn.commit()
    finally:
        conn.close()


class PostgresTarget:
    backend = 'postgresql'

    def __init__(self, admin_url):
        self.admin_url = admin_url
        self.prefix = 'ms_crash_%d' % os.getpid()

    def url(self, target):
        return urlunsplit(urlsplit(self.admin_url)._replace(path='/' + target))

    def template(self, rows):
        name = self.prefix + '_template'
        drop_database(self.admin_url, name)
        create_database(self.admin_url, name)
        url = self.url(name)
        _cli(['migrate', '--database', url, '--to', SCRIPTS[0]])
        import psycopg2
        _populate(psycopg2.connect(url), rows,
                  'CREATE TABLE experiments (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL '
                  'REFERENCES tasks (id), experiment_id INTEGER NOT NULL, parameters JSON NOT '
                  'NULL, status VARCHAR(12), error_message VARCHAR, metrics JSON, '
                  'objective_score FLOAT)',
                  'CREATE INDEX ix_experiments_task_id ON experiments (task_id)')
        return name

    def clone(self, template, name):
        target = '%s_%s' % (self.prefix, name)
        create_database(self.admin_url, target, template)
        return target

    def discard(self, target):
        drop_database(self.admin_url, target)

    def health(self, target):
        query(self.url(target), 'SELECT 1')  # Opens: raises if it does not.
        orphans = query(self.url(target), 'SELECT COUNT(*) FROM experiments e LEFT JOIN tasks t '
                        'ON t.id = e.task_id WHERE t.id IS NULL')[0][0]
        return ['%d orphaned experiments' % orphans] if orphans else []

    def backups(self, target):
        return [], []


class MySQLTarget(PostgresTarget):
    """MySQL/MariaDB: each database built afresh (there is no CREATE DATABASE ... TEMPLATE, and
    CREATE TABLE ... LIKE drops foreign keys); the rows are the same every time."""
    backend = 'mysql'

    def template(self, rows):
        self.rows = rows
        return self.clone(None, 'template')

    def clone(self, template, name):
        from modelstore.testing import mysql_server as mysql
        target = '%s_%s' % (self.prefix, name)
        mysql.drop_database(self.admin_url, target)
        mysql.create_database(self.admin_url, target)
        url = self.url(target)
        _cli(['migrate', '--database', url, '--to', SCRIPTS[0]])
        _populate(mysql.driver_connect(url), self.rows,
                  'CREATE TABLE experiments (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, '
                  'experiment_id INTEGER NOT NULL, parameters JSON NOT NULL, status '
                  'VARCHAR(12), error_message TEXT, metrics JSON, objective_score FLOAT, '
                  'FOREIGN KEY (task_id) REFERENCES tasks (id)) ENGINE=InnoDB')
        return target

    def discard(self, target):
        from modelstore.testing import mysql_server as mysql
        mysql.drop_database(self.admin_url, target)


# -- checks ------------------------------------------------------------------------------------

def _cli(argv, timeout=300):
    proc = subprocess.run([sys.executable, '-m', 'modelstore'] + argv, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError('modelstore %s exited %d: %s' % (' '.join(argv[:1]), proc.returncode,
                                                            proc.stderr.strip()))
    return proc


def fingerprint(target_url, columns):
    """{table: set of rows (original columns, as canonical JSON)}."""
    out = {}
    for table, cols in columns.items():
        rows = _query(target_url, 'SELECT %s FROM %s' % (', '.join(cols), table))[1]
        out[table] = {json.dumps(list(r), default=str, sort_keys=True) for r in rows}
    return out


def history_rows(url):
    """(name, method) of every history row, in order; a script that failed partway on MySQL
    (``running`` with an operations log, or ``failed``) is ``partial``."""
    if 'schema_migration' not in tables(url):
        return []
    names = _query(url, 'SELECT * FROM schema_migration WHERE 1 = 0')[0]
    if 'operations' not in names:
        return query(url, 'SELECT name, method FROM schema_migration ORDER BY id')
    return [(name, 'partial' if method == 'failed' or (method == 'running' and logged) else
             method) for name, method, logged in query(
        url, 'SELECT name, method, operations LIKE ? FROM schema_migration ORDER BY id',
        ('{%',))]


# What an online script keeps while it runs: 0010's index of the unnumbered rows (PostgreSQL).
ONLINE_LEFTOVERS = ('fine_tuned_models_unnumbered',)


def _between(found, before, after):
    """Whether schema ``found`` holds ``before`` and only parts of ``after`` besides that a
    script outside a transaction leaves: some of its index builds (PostgreSQL), or an online
    script's last batch committed before its history row (0010's triggers on SQLite); and an
    online script's temporary index."""
    found = [row for row in found if not (len(row) == 3 and row[1] in ONLINE_LEFTOVERS)]
    extra = set(found) - set(before)
    return set(before) <= set(found) <= set(after) and all(
        (len(row) == 3 and 'INDEX' in str(row[-1]).upper()) or row[0] == 'trigger'
        for row in extra)


def numbering_problems(url, complete):
    """Model versions (0010) as a batch boundary leaves them: for each model_name, its rows in
    id order numbered 1, 2, 3... up to some row and none after it (``complete``: all of them).
    A row numbered twice or skipped breaks that."""
    if 'version' not in [c for c in _query(url, 'SELECT * FROM fine_tuned_models '
                                               'WHERE 1 = 0')[0]]:
        return []
    names = {}
    for name, version in query(url, 'SELECT model_name, version FROM fine_tuned_models '
                                    'ORDER BY id'):
        names.setdefault(name, []).append(version)
    problems = []
    for name, found in sorted(names.items()):
        done = [v for v in found if v is not None]
        if done != list(range(1, len(done) + 1)) or found[:len(done)] != done \
                or (complete and len(done) != len(found)):
            problems.append('versions of %s are %s' % (name, found[:12]))
    return problems[:3]


def _lost(expected, found):
    return sum(len(rows - found.get(table, set())) for table, rows in expected.items())


class Harness:
    def __init__(self, target, rows, seed):
        self.target = target
        self.rows = rows
        self.random = random.Random(seed)

    def prepare(self):
        t = self.target
        self.template = t.template(self.rows)
        url = t.url(self.template)
        self.columns = {table: _query(url, 'SELECT * FROM %s WHERE 1 = 0' % table)[0]
                        for table in DATA_TABLES}
        self.original = fingerprint(url, self.columns)
        self.states = []  # Schema after each history prefix, from unkilled runs.
        for k in range(len(SCRIPTS) + 1):
            clone = t.clone(self.template, 'state%d' % k)
            if k:
                _cli(['migrate', '--database', t.url(clone), '--to', SCRIPTS[k - 1],
                      '--no-backup'])
            self.states.append(schema(t.url(clone)))
            t.discard(clone)
        # Calibration: how long the interpreter takes to start, and the run's working time.
        clone = t.clone(self.template, 'calibration')
        start = time.perf_counter()
        proc = self._spawn(clone)
        proc.stdout.readline()
        self.startup = time.perf_counter() - start
        proc.communicate()
        self.work = time.perf_counter() - start - self.startup
        if proc.returncode != 0:
            raise RuntimeError('the calibration migrate failed')
        t.discard(clone)

    def _spawn(self, clone):
        return subprocess.Popen([sys.executable, '-m', 'modelstore', 'migrate', '--database',
                                 self.target.url(clone)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)

    def trial(self, n):
        t = self.target
        clone = t.clone(self.template, 'trial%d' % n)
        url = t.url(clone)
        try:
            proc = self._spawn(clone)
            if self.random.random() < 0.2:
                time.sleep(self.random.uniform(0, self.startup))
            else:
                proc.stdout.readline()
                time.sleep(self.random.uniform(0, self.work * 1.1))
            finished = proc.poll() is not None
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            problems = t.health(clone)
            rows = history_rows(url)
            names = [name for name, method in rows if method not in ('running', 'partial')]
            running = [name for name, method in rows if method == 'running']
            partway = [name for name, method in rows if method == 'partial']
            k = len(names)
            # A script that cannot run in a transaction (0005, 0007, 0009 on PostgreSQL; 0010,
            # online, on both) is recorded as `running` while it runs: then its effect may be
            # absent, half-built (an INVALID index, which has the same definition), some of its
            # indexes built, its rows partly numbered, or complete -- and the next migrate
            # resolves it. Anything else must be exactly the
            # state the history claims.
            if partway:  # MySQL: status names it, and repair reverts exactly what was done.
                problems += self._repaired(url, partway)
            found = schema(url)
            if not rows and t.backend == 'mysql':
                # Killed between creating the history table (DDL commits there) and its first
                # row: an empty history table, which the next run takes as it is.
                found = [row for row in found if row[0] != 'schema_migration']
            if names != SCRIPTS[:k] or (running + partway) not in ([], SCRIPTS[k:k + 1]):
                problems.append('history %s is not a prefix of the scripts' % rows)
            elif found != self.states[k] and not (
                    running and _between(found, self.states[k], self.states[k + 1])):
                problems.append('schema differs from the state its history (%d scripts%s) '
                                'claims' % (k, ', %s running' % running[0] if running else ''))
            interrupted = bool(running or partway)
            problems += numbering_problems(url, complete=False)
            lost = _lost(self.original, fingerprint(url, self.columns))
            complete, partial = t.backups(clone)
            for backup in complete:
                if t.health(backup):
                    problems.append('backup %s is damaged' % backup)
                elif _lost(self.original, fingerprint('sqlite:///' + backup, self.columns)):
                    problems.append('backup %s lacks rows' % backup)
            # A second migrate finishes the job.
            rerun = subprocess.run([sys.executable, '-m', 'modelstore', 'migrate', '--database',
                                    url], capture_output=True, text=True, timeout=300)
            if rerun.returncode != 0:
                problems.append('second migrate exited %d: %s' % (rerun.returncode,
                                                                  rerun.stderr.strip()))
            elif schema(url) != self.states[-1]:
                problems.append('second migrate did not reach the head schema')
            elif t.backups(clone)[1]:  # A partial backup or its -journal, left by the kill.
                problems.append('second migrate left %s' % t.backups(clone)[1])
            else:
                problems += numbering_problems(url, complete=True)
            lost += _lost(self.original, fingerprint(url, self.columns))
            problems += t.health(clone)
            check = subprocess.run([sys.executable, '-m', 'modelstore', 'check', '--database',
                                    url], capture_output=True, text=True, timeout=300)
            if check.returncode != 0:
                problems.append('check after the second migrate: %s' % check.stdout.strip())
            phase = 'exited before the kill' if finished else (
                'killed partway through %s (recorded; repaired)' % SCRIPTS[k] if partway else
                'killed while %s ran outside a transaction' % SCRIPTS[k] if interrupted else
                'killed before any change' if k == 0 else
                'killed after all scripts committed' if k == len(SCRIPTS) else
                'killed between scripts (%d of %d committed)' % (k, len(SCRIPTS)))
            return phase, problems, lost, len(complete), len(partial)
        finally:
            t.discard(clone)

    def _repaired(self, url, partial):
        """MySQL, a script killed partway: status must name it, repair must succeed (the
        schema is then compared with the state of the scripts before it)."""
        status = subprocess.run([sys.executable, '-m', 'modelstore', 'status', '--database',
                                 url], capture_output=True, text=True, timeout=300)
        if not any(line.split()[:1] == ['failed'] and partial[0] in line.split()[1:3]
                   for line in status.stdout.splitlines()):
            return ['status does not name %s as failed partway: %s' % (partial[0],
                                                                       status.stdout.strip())]
        repair = subprocess.run([sys.executable, '-m', 'modelstore', 'repair', '--database',
                                 url], capture_output=True, text=True, timeout=300)
        if repair.returncode != 0:
            return ['repair exited %d: %s' % (repair.returncode, repair.stderr.strip())]
        return []

    def run(self, trials, out=sys.stdout):
        self.prepare()
        print('crash harness on %s: %d rows per table, %d trials; start-up %.0f ms, working '
              'time %.0f ms' % (self.target.backend, self.rows, trials, self.startup * 1000,
                                self.work * 1000), file=out)
        phases = {}
        consistent = lost_total = backups = partials = 0
        for n in range(trials):
            phase, problems, lost, complete, partial = self.trial(n)
            phases[phase] = phases.get(phase, 0) + 1
            consistent += not problems
            lost_total += lost
            backups += complete
            partials += partial
            if problems:
                print('  trial %d (%s): %s' % (n, phase, '; '.join(problems)), file=out)
        for phase, count in sorted(phases.items()):
            print('  %-64s %d' % (phase, count), file=out)
        if self.target.backend == 'sqlite':
            print('  backups left complete / partial (removed by the next run): %d / %d'
                  % (backups, partials), file=out)
        print('kill trials: %d run, %d consistent, %d rows lost' % (trials, consistent,
                                                                    lost_total), file=out)
        self.target.discard(self.template) if self.target.backend != 'sqlite' else None
        return trials, consistent, lost_total


def target_for(url, workdir):
    """The target of a database URL (None: SQLite files in ``workdir``)."""
    if not url:
        return SqliteTarget(workdir)
    return MySQLTarget(url) if urlsplit(url).scheme.split('+')[0] in ('mysql', 'mariadb') \
        else PostgresTarget(url)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--trials', type=int, default=100)
    parser.add_argument('--rows', type=int, default=20000, help='generated rows per table')
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('--database', metavar='ADMIN_URL',
                        help='run on PostgreSQL (a role that may CREATE DATABASE) or MySQL/'
                        'MariaDB (a user that may CREATE and DROP databases)')
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print('seed %d (--seed %d repeats this run)' % (seed, seed))
    workdir = tempfile.mkdtemp(prefix='modelstore-crash-')
    try:
        target = target_for(args.database, workdir)
        trials, consistent, lost = Harness(target, args.rows, seed).run(args.trials)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if consistent == trials and lost == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
