"""Rolling deploy harness: two releases of an application writing side by side through an
expand step and a contract step (docs/rolling-upgrades.md).

Release N and release N+1 are two copies of the installed modelstore package, each with its
own scripts and its own model -- what two builds of one training pipeline are:

* release N adds ``fine_tuned_models.deploy_note`` (``0090_add_deploy_note``, expand) and its
  workers write it on every ``add_model``;
* release N+1 adds ``fine_tuned_models.reviewer`` (``0091_add_reviewer``, expand), which its
  workers write, no longer has ``deploy_note`` in its model, and drops that column
  (``0092_drop_deploy_note``, contract).

The run: the database is migrated by release N; ``--workers`` processes of release N write
(add, update, get, list) while release N+1's ``migrate --phase expand`` runs; as many workers of
release N+1 start; ``migrate --phase contract`` is tried while N's workers are alive and must be
refused (ClientsAlive, naming them, nothing changed); N's workers stop (closing their stores);
the contract step runs while N+1's workers write; they stop. Then, through the plain driver:
every write a worker saw succeed is stored with what it wrote (``deploy_note`` checked before
the contract step), no other row is, no worker saw an error, and the schema is release N+1's.

    .venv/bin/python harness/rolling.py [--workers 8 --seconds 10 --min-writes 200]
                                        [--database ADMIN_URL]

prints the figures and exits 1 if a target is missed.
"""
import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPTS_N = {'0090_add_deploy_note.py': '''\
"""Release N: a note its workers write on every model."""
from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column('fine_tuned_models', 'deploy_note',
                                         TextField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'deploy_note'))
'''}

SCRIPTS_N1 = dict(SCRIPTS_N, **{'0091_add_reviewer.py': '''\
"""Release N+1: who reviewed a model (release N never names it: nullable)."""
from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column('fine_tuned_models', 'reviewer',
                                         TextField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'reviewer'))
''', '0092_drop_deploy_note.py': '''\
"""Release N+1: release N's note, which N+1 no longer writes."""
from peewee import TextField

phase = 'contract'


def up(migrator, db):
    # modelstore: allow MS002 -- the rolling deploy's contract step; SQLite rebuilds the table
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'deploy_note'))


def down(migrator, db):
    migrator.migrate(migrator.add_column('fine_tuned_models', 'deploy_note',
                                         TextField(null=True)))
'''})

FIELD_LINE = '    # 0010 has not numbered yet.\n    version = IntegerField(null=True)\n'  # FineTunedModel's
RELEASES = {'N': ('deploy_note', SCRIPTS_N), 'N+1': ('reviewer', SCRIPTS_N1)}
CONTRACT = '0092_drop_deploy_note'

WORKER = '''
import json, os, sys, time
import modelstore
url, release, column, tag, stop, out = sys.argv[1:7]
log = open(out, 'a')
def say(**event):
    log.write(json.dumps(event) + '\\n')
    log.flush()
try:
    store = modelstore.connect(url, release='trainer ' + release)
except Exception as exc:
    say(error='connect: %s: %s' % (type(exc).__name__, exc))
    sys.exit(1)
say(started=store.registration.schema_head)
n = 0
while not os.path.exists(stop):
    n += 1
    try:
        began = time.time()
        model = store.add_model(model_name=tag, base_model='base', task='rolling',
                                model_path='/models/%s/%d' % (tag, n), **{column: tag})
        say(id=model.id, n=n, t=began, ms=round((time.time() - began) * 1000, 2))
        if n % 5 == 0:
            store.update_model(model.id, description='updated %d' % n)
            say(updated=model.id, n=n)
        if n % 10 == 0:
            assert store.get_model(model.id).model_path == '/models/%s/%d' % (tag, n)
            assert store.list_models(model_name=tag, limit=5)
    except Exception as exc:
        say(error='%s: %s' % (type(exc).__name__, exc), n=n)
    time.sleep(0.002)
store.close()
say(stopped=n)
'''


def build_release(workdir, name):
    """A copy of the installed package with release ``name``'s scripts and model field; the
    directory to put first on PYTHONPATH."""
    import modelstore
    from modelstore.engine.scripts import default_directory
    column, scripts = RELEASES[name]
    root = os.path.join(workdir, 'release-' + name.replace('+', 'plus'))
    package = os.path.join(root, 'modelstore')
    shutil.copytree(os.path.dirname(os.path.abspath(modelstore.__file__)), package,
                    ignore=shutil.ignore_patterns('__pycache__', 'migrations'))
    migrations = os.path.join(root, 'migrations')  # Beside the package, as in a checkout.
    shutil.copytree(default_directory(), migrations,
                    ignore=shutil.ignore_patterns('__pycache__'))
    for filename, text in scripts.items():
        with open(os.path.join(migrations, filename), 'w') as fh:
            fh.write(text)
    tables = os.path.join(package, 'shared', 'tables.py')
    with open(tables) as fh:
        source = fh.read()
    if source.count(FIELD_LINE) != 1:
        raise SystemExit('rolling: cannot find where to add %s in %s' % (column, tables))
    with open(tables, 'w') as fh:
        fh.write(source.replace(FIELD_LINE, FIELD_LINE + '    %s = TextField(null=True)\n'
                                % column))
    return root


class Release:
    def __init__(self, name, root, url, workdir):
        self.name, self.root, self.url, self.workdir = name, root, url, workdir
        self.column = RELEASES[name][0]
        self.env = dict(os.environ, PYTHONPATH=root)
        self.stop = os.path.join(workdir, 'stop-' + root.rsplit('-', 1)[1])
        self.procs, self.logs = [], []

    def cli(self, *args):
        """``modelstore ARGS --database URL --json`` of this release: (exit code, JSON, stderr)."""
        done = subprocess.run([sys.executable, '-m', 'modelstore'] + list(args) +
                              ['--database', self.url, '--json'], env=self.env,
                              cwd=self.root, capture_output=True, text=True, timeout=600)
        try:
            report = json.loads(done.stdout)
        except ValueError:
            report = {'unparsed': done.stdout[-500:]}
        return done.returncode, report, done.stderr

    def start(self, count):
        for i in range(count):
            tag = '%s-w%d' % (self.name, i)
            log = os.path.join(self.workdir, tag + '.jsonl')
            self.logs.append((tag, log))
            self.procs.append(subprocess.Popen(
                [sys.executable, '-c', WORKER, self.url, self.name, self.column, tag, self.stop,
                 log], env=self.env, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True))

    def events(self):
        """{tag: [event, ...]} so far."""
        out = {}
        for tag, log in self.logs:
            with contextlib.suppress(FileNotFoundError), open(log) as fh:
                out[tag] = [json.loads(line) for line in fh if line.endswith('\n')]
        return out

    def wait_for_writes(self, count, timeout):
        """Until every worker stored ``count`` rows (or one stopped, or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) == len(self.logs) and all(
                    sum('id' in e for e in ev) >= count for ev in events.values()):
                return True
            if any(p.poll() is not None for p in self.procs):
                return False
            time.sleep(0.05)
        return False

    def finish(self):
        """Stop the workers; their stderr, joined."""
        open(self.stop, 'w').close()
        return [p.communicate(timeout=120)[1] for p in self.procs]


def run(backend, admin_url=None, workers=8, seconds=5.0, min_writes=50, out=sys.stdout):
    """The whole deploy on ``backend``; returns (figures, problems)."""
    sys.path.insert(0, HERE)
    from dbtools import new_database, query
    workdir = tempfile.mkdtemp(prefix='modelstore-rolling-')
    drop = None
    problems = []
    figures = {'backend': backend, 'workers': workers}
    try:
        if backend == 'sqlite':
            url = 'sqlite:///' + os.path.join(workdir, 'registry.db')
        else:
            url, drop = new_database(admin_url)
        old = Release('N', build_release(workdir, 'N'), url, workdir)
        new = Release('N+1', build_release(workdir, 'N+1'), url, workdir)
        timeout = 60 + 20 * seconds

        def step(what, release, *args, expect=0):
            code, report, err = release.cli(*args)
            figures[what + '_exit'] = code
            if code != expect:
                problems.append('%s exited %d (expected %d): %s' % (
                    what, code, expect, (err or json.dumps(report))[-400:]))
            return report

        step('setup', old, 'migrate', '--no-backup')
        old.start(workers)
        if not old.wait_for_writes(min_writes, timeout):
            problems.append('release N workers did not all write %d rows' % min_writes)
        time.sleep(seconds)
        started, began = time.monotonic(), time.time()
        step('expand', new, 'migrate', '--phase', 'expand')
        figures['expand_seconds'] = time.monotonic() - started
        windows = {'expand': (began, time.time())}
        new.start(workers)
        if not new.wait_for_writes(min_writes, timeout):
            problems.append('release N+1 workers did not all write %d rows' % min_writes)
        figures['n1_head'] = sorted({e.get('started') for ev in new.events().values()
                                     for e in ev if 'started' in e})
        # The contract step while release N is alive: refused, naming its workers.
        report = step('contract_refused', new, 'migrate', '--phase', 'contract', expect=2)
        error = report.get('error') or {}
        named = [c for c in error.get('clients') or [] if c.get('release') == 'trainer N']
        figures['contract_refused_naming'] = len(named)
        if error.get('type') != 'ClientsAlive' or len(named) != workers:
            problems.append('the contract step was not refused naming the %d workers of '
                            'release N: %s' % (workers, json.dumps(report)[:400]))
        time.sleep(seconds)
        stderr = old.finish()
        # Release N's rows, with the column the contract step drops, before it does.
        wrote_n = {e['id']: tag for tag, ev in old.events().items() for e in ev if 'id' in e}
        notes = dict(query(url, 'SELECT id, deploy_note FROM fine_tuned_models WHERE '
                                'deploy_note IS NOT NULL'))
        wrong = [i for i, tag in wrote_n.items() if notes.get(i) != tag]
        if wrong or len(notes) != len(wrote_n):
            problems.append('release N: %d rows acknowledged, %d with a note, %d wrong (%s)'
                            % (len(wrote_n), len(notes), len(wrong), wrong[:5]))
        started, began = time.monotonic(), time.time()
        step('contract', new, 'migrate', '--phase', 'contract')
        figures['contract_seconds'] = time.monotonic() - started
        windows['contract'] = (began, time.time())
        time.sleep(seconds)
        stderr += new.finish()
        problems += ['a worker wrote to stderr: %s' % s.strip()[-400:] for s in stderr
                     if s.strip()]
        _check(url, old, new, figures, problems, query)
        writes = [e for release in (old, new) for ev in release.events().values()
                  for e in ev if 'ms' in e]
        figures['longest_write_ms'] = max(e['ms'] for e in writes)
        for step_name, (first, last) in windows.items():  # Writes that overlapped the step.
            figures['longest_write_in_%s_ms' % step_name] = max(
                [e['ms'] for e in writes if e['t'] + e['ms'] / 1000 >= first and e['t'] <= last]
                or [0])
    finally:
        if drop is not None:
            drop()
        shutil.rmtree(workdir, ignore_errors=True)
    print('rolling deploy on %s: %d + %d workers; release N stored %d rows, N+1 %d; %d errors; '
          '%d lost; contract refused while N lived: %s (naming %d); expand %.2f s, contract '
          '%.2f s; longest add_model %.0f ms (%.0f ms during the expand step, %.0f ms during '
          'the contract step)'
          % (backend, workers, workers, figures.get('rows_n', 0),
                      figures.get('rows_n1', 0), figures.get('errors', 0),
                      figures.get('lost', 0), 'yes' if figures.get('contract_refused_exit') == 2
                      else 'NO', figures.get('contract_refused_naming', 0),
                      figures.get('expand_seconds', 0), figures.get('contract_seconds', 0),
                      figures.get('longest_write_ms', 0),
                      figures.get('longest_write_in_expand_ms', 0),
                      figures.get('longest_write_in_contract_ms', 0)), file=out)
    for problem in problems:
        print('  problem: %s' % problem, file=out)
    return figures, problems


def _check(url, old, new, figures, problems, query):
    """Every acknowledged write stored as written, nothing else, no error, N+1's schema."""
    acknowledged, errors = {}, []
    for release in (old, new):
        for tag, events in release.events().items():
            errors += ['%s: %s' % (tag, e['error']) for e in events if 'error' in e]
            if not any('stopped' in e for e in events):
                problems.append('%s never stopped cleanly' % tag)
            for e in events:
                if 'id' in e:
                    acknowledged[e['id']] = (tag, '/models/%s/%d' % (tag, e['n']))
    figures['errors'] = len(errors)
    problems += ['a worker saw %s' % e for e in errors[:10]]
    stored = {row[0]: (row[1], row[2], row[3]) for row in query(
        url, 'SELECT id, model_name, model_path, reviewer FROM fine_tuned_models')}
    lost = [i for i in acknowledged if i not in stored]
    wrong = [i for i, (tag, path) in acknowledged.items()
             if i in stored and stored[i][:2] != (tag, path)]
    reviewers = [i for i, (tag, _) in acknowledged.items() if i in stored and
                 stored[i][2] != (tag if tag.startswith('N+1-') else None)]
    extra = [i for i in stored if i not in acknowledged]
    figures.update(lost=len(lost), rows_n=sum(t.startswith('N-') for t, _ in
                                              acknowledged.values()),
                   rows_n1=sum(t.startswith('N+1-') for t, _ in acknowledged.values()))
    for what, ids in (('lost', lost), ('stored with other values', wrong),
                      ('with a wrong reviewer', reviewers), ('stored but never acknowledged',
                                                             extra)):
        if ids:
            problems.append('%d rows %s: %s' % (len(ids), what, sorted(ids)[:5]))
    columns = _columns(url)
    if 'deploy_note' in columns or 'reviewer' not in columns:
        problems.append('the schema is not release N+1\'s: %s' % columns)
    history = query(url, 'SELECT name, phase, note FROM schema_migration WHERE name = ?',
                    (CONTRACT,))
    if history != [(CONTRACT, 'contract', None)]:
        problems.append('the contract step\'s history row: %s' % history)


def _columns(url):
    from dbtools import _query
    return _query(url, 'SELECT * FROM fine_tuned_models WHERE 1 = 0')[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--workers', type=int, default=8, help='workers of each release')
    parser.add_argument('--seconds', type=float, default=10.0,
                        help='how long each side-by-side stage lasts')
    parser.add_argument('--min-writes', type=int, default=200,
                        help='rows every worker stores before the next step')
    parser.add_argument('--database', metavar='ADMIN_URL',
                        help='run on PostgreSQL or MariaDB: a role that may CREATE DATABASE')
    args = parser.parse_args(argv)
    backend = ('mysql' if args.database.split(':')[0] in ('mysql', 'mariadb') else
               'postgresql') if args.database else 'sqlite'
    _, problems = run(backend, args.database, args.workers, args.seconds, args.min_writes)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
