"""Old code against the new schema: the previous release, run after each new expand script.

``check_migrations(directory, url=None, models=None, previous=...)`` calls ``check_previous``.
In a rolling deploy the new release's expand scripts run while the previous release's workers
are still writing (docs/migrations.md, "Old code against the new schema"). This checks that
they can, by running them:

1. **The previous release** is installed into a throwaway venv. ``previous`` is

   * a path to a wheel (``.whl``) or an sdist (``.tar.gz``, ``.zip``): installed as it is;
   * a path to a source directory (a checkout of the previous release): copied first -- without
     hidden entries (``.git``, ``.venv``), ``build``, ``dist``, ``*.egg-info`` and
     ``__pycache__`` -- so that building it writes nothing into the checkout;
   * ``git:REF`` (a tag, branch or commit): ``git archive REF`` of the repository the migrations
     directory is in (else of the current directory's), unpacked into a temporary directory.
     The commit must be there: a shallow clone lacks old ones.

   It is installed with ``pip install --no-deps``: the venv sees the running environment's
   packages (peewee, the drivers) through a ``.pth`` file, after its own, so its ``modelstore``
   is the previous release and nothing is downloaded but what the build needs -- nothing at
   all when this environment can build a wheel (``wheel`` installed, or setuptools 70.1+): the
   build is then ``--no-build-isolation``; otherwise pip builds in isolation, fetching
   setuptools from the index (or its cache). The trade-off: the previous release runs with this
   environment's peewee and drivers, not the versions its own release pinned. It runs with
   ``python -I``: no checkout on ``sys.path`` can stand in for it.

2. **A throwaway database**: a SQLite file in a temporary directory; with ``url`` (PostgreSQL,
   MySQL/MariaDB) a database of its own on that server, as the shadow replay makes it
   (modelstore.engine.shadow), dropped afterwards. The previous release runs in a process of its
   own, so on PostgreSQL the role needs ``CREATEDB`` (a schema inside this process's
   transaction, the shadow's fallback, is invisible to it).

3. **The previous release's own ``migrate``** (``python -m modelstore migrate``, from its venv)
   brings the database to its head; the history then says which scripts it shipped. A script it
   applied that ``directory`` lacks is a problem, and ends the check.

4. **At its head, then after each newer script of ``directory``** in order (applied by this
   code, ``Engine.migrate(target=name)``), while the scripts are expand scripts: the probe. The
   previous release, in its venv, runs ``modelstore.connect(url)``, ``add_model``,
   ``get_model``, ``list_models``, ``update_model``, ``add_task``, ``get_task``, ``list_tasks``
   and ``update_task``, each checked by reading back what it wrote. Then the legacy apps'
   statements run, from this process, through the backend's driver: ModelForge's INSERT (its
   v1.1 column list) and its SELECTs, the inference-autotuner's INSERT as SQLAlchemy emits it
   for a new task and its SELECT by id -- their value formats as in
   ../shared/reference/legacy-databases.md. The run stops before the first contract script:
   the previous release is expected to stop working there (its gate refuses the schema).

Each failure is one problem line naming the script after which it broke, the operation and the
error. An operation that failed is not reported again after later scripts. A failure at the
previous release's own head is reported too: then the probe, not a script, is what fails.
"""
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import venv
from importlib import metadata

from ..engine import Engine, discover, shadow_database
from ..exceptions import ConfigError, ModelStoreError
from ..shared.database import open_database
from ..shared.urls import DatabaseURL

__all__ = ['check_previous']

log = logging.getLogger('modelstore.testing')

INSTALL_SECONDS = 600
RUN_SECONDS = 300
SKIPPED = ('.*', 'build', 'dist', '*.egg-info', '__pycache__')
ARCHIVES = ('.whl', '.tar.gz', '.tgz', '.zip')

# Run by the previous release's Python: only calls every release has had. One JSON line per
# operation: {"op": name, "error": None or "Type: message"}.
PROBE = r'''
import json
import sys

url, tag = sys.argv[1], sys.argv[2]


class NotReadBack(Exception):
    pass


def report(op, error=None):
    print(json.dumps({'op': op, 'error': error}), flush=True)


def run(op, call):
    try:
        value = call()
    except Exception as exc:
        report(op, '%s: %s' % (type(exc).__name__, ' '.join(str(exc).split())))
        return None
    report(op)
    return value if value is not None else True


def same(what, got, want):
    if got != want:
        raise NotReadBack('%s reads back %r, not the %r written' % (what, got, want))


def status_name(value):
    return str(getattr(value, 'value', value)).lower()


def main():
    try:
        import modelstore
    except Exception as exc:
        report('import modelstore', '%s: %s' % (type(exc).__name__, exc))
        return
    store = run('connect', lambda: modelstore.connect(url))
    if store is None:
        return
    name = 'previous-release-' + tag
    fields = dict(model_name=name, base_model='base/model', task='text-generation',
                  model_path='/models/' + name, description='written by the previous release')
    model = run('add_model', lambda: store.add_model(**fields))
    if model is not None:
        def get_model():
            got = store.get_model(model.id)
            for key, value in fields.items():
                same('get_model(%d).%s' % (model.id, key), getattr(got, key), value)
        run('get_model', get_model)

        def list_models():
            if model.id not in [m.id for m in store.list_models()]:
                raise NotReadBack('list_models() does not list model %d' % model.id)
        run('list_models', list_models)

        def update_model():
            store.update_model(model.id, description='updated by the previous release')
            same('get_model(%d).description' % model.id, store.get_model(model.id).description,
                 'updated by the previous release')
        run('update_model', update_model)
    config = {'model_name': name}
    task = run('add_task', lambda: store.add_task(
        task_name=name, base_runtime='sglang', model_config=config, parameters={},
        optimization_config={}, benchmark_config={}))
    if task is not None:
        def get_task():
            got = store.get_task(task.id)
            same('get_task(%d).task_name' % task.id, got.task_name, name)
            same('get_task(%d).model_config' % task.id, got.model_config, config)
        run('get_task', get_task)

        def list_tasks():
            if task.id not in [t.id for t in store.list_tasks()]:
                raise NotReadBack('list_tasks() does not list task %d' % task.id)
        run('list_tasks', list_tasks)

        def update_task():
            store.update_task(task.id, status='running')
            same('get_task(%d).status' % task.id, status_name(store.get_task(task.id).status),
                 'running')
        run('update_task', update_task)
    store.close()


main()
'''

# ModelForge (hand-written sqlite3 SQL): its v1.1 INSERT, its listing and its column probe.
MODELFORGE_INSERT = ('INSERT INTO fine_tuned_models (model_name, base_model, task, description, '
                     'creation_date, model_path, is_custom_base_model) VALUES (?,?,?,?,?,?,?)')
MODELFORGE_SELECTS = ('SELECT * FROM fine_tuned_models ORDER BY creation_date DESC',
                      'SELECT is_custom_base_model FROM fine_tuned_models LIMIT 1')
# The inference-autotuner (SQLAlchemy 2): the INSERT its ORM emits for a new task (JSON columns
# left unset are not named) and its load by primary key.
AUTOTUNER_INSERT = (
    'INSERT INTO tasks (task_name, description, status, model_config, base_runtime, '
    'runtime_image_tag, parameters, optimization_config, benchmark_config, '
    'created_clusterbasemodel, created_clusterservingruntime, deployment_mode, '
    'total_experiments, successful_experiments, best_experiment_id, created_at, started_at, '
    'completed_at, elapsed_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
AUTOTUNER_SELECT = (
    'SELECT tasks.id, tasks.task_name, tasks.description, tasks.status, tasks.model_config, '
    'tasks.base_runtime, tasks.runtime_image_tag, tasks.parameters, tasks.optimization_config, '
    'tasks.benchmark_config, tasks.slo_config, tasks.quant_config, tasks.parallel_config, '
    'tasks.clusterbasemodel_config, tasks.clusterservingruntime_config, '
    'tasks.created_clusterbasemodel, tasks.created_clusterservingruntime, '
    'tasks.deployment_mode, tasks.metadata, tasks.total_experiments, '
    'tasks.successful_experiments, tasks.best_experiment_id, tasks.created_at, tasks.started_at, '
    'tasks.completed_at, tasks.elapsed_time \nFROM tasks \nWHERE tasks.id = ?')


def check_previous(previous, directory, url=None):
    """Problem lines (an empty list when none): the previous release ``previous`` run on the
    schema after each expand script of ``directory`` (see the module's docstring)."""
    label = str(previous)
    with tempfile.TemporaryDirectory(prefix='modelstore-previous-') as work:
        python = _install(previous, directory, work)
        with _throwaway(url, work) as target:
            database = open_database(target, mode='migrate')
            try:
                return _steps(Steps(python, target, database, directory, label, work))
            finally:
                database.close()


class Steps:
    """What each step of one check needs: the previous release's Python, the throwaway database
    (its URL and this process's connection), the new release's scripts."""

    def __init__(self, python, url, database, directory, label, work):
        self.python, self.url, self.database = python, url, database
        self.directory, self.label, self.work = directory, label, work
        self.env = _environment(work)
        self.broken = set()  # operations already reported

    def run(self, *args, what):
        """Run the previous release's Python (isolated: ``-I``) with ``args``."""
        try:
            return subprocess.run([self.python, '-I'] + list(args), cwd=self.work,
                                  env=self.env, capture_output=True, text=True,
                                  timeout=RUN_SECONDS)
        except subprocess.TimeoutExpired:
            raise ConfigError('the previous release (%s) did not finish %s within %d s'
                              % (self.label, what, RUN_SECONDS)) from None

    def probe(self, after, tag):
        """Problem lines for the operations that fail now (and did not before)."""
        failures = self._registry(tag) + _legacy_writers(self.database, tag)
        lines = []
        for op, error in failures:
            if op not in self.broken:
                self.broken.add(op)
                lines.append('%s: the previous release (%s) fails %s: %s'
                             % (after, self.label, op, error))
        log.info('%s: the previous release (%s) %s', after, self.label,
                 'fails %s' % ', '.join(op for op, _ in failures) if failures else 'works')
        return lines

    def _registry(self, tag):
        probe = os.path.join(self.work, 'probe.py')
        if not os.path.exists(probe):
            with open(probe, 'w') as fh:
                fh.write(PROBE)
        done = self.run(probe, self.url, tag, what='the registry calls')
        reported = [json.loads(line) for line in done.stdout.splitlines()
                    if line.startswith('{')]
        failures = [(r['op'], r['error']) for r in reported if r['error']]
        if done.returncode != 0:
            failures.append(('the registry calls', 'the program ended with exit code %d: %s'
                             % (done.returncode, _tail(done.stderr))))
        return failures


def _steps(steps):
    done = steps.run('-m', 'modelstore', 'migrate', '--database', steps.url,
                     what='its migrate')
    if done.returncode != 0:
        return ['the previous release (%s) cannot migrate an empty database to its head: %s'
                % (steps.label, _tail(done.stderr or done.stdout))]
    engine = Engine(steps.database, steps.directory)
    status = engine.status()
    if status.missing:
        return ['the previous release (%s) applies %s, which %s does not hold: a release never '
                'drops a script its previous release shipped'
                % (steps.label, ', '.join(status.missing), steps.directory)]
    log.info('the previous release (%s) migrated to its head, %s', steps.label,
             status.applied[-1] if status.applied else 'no script')
    problems = steps.probe('at its own head, before any newer script', 'head')
    phases = {script.name: script.phase for script in discover(steps.directory)}
    for name in status.pending:
        if phases[name] == 'contract':
            log.info('stopped before %s, a contract script: the previous release is not '
                     'expected to work after it', name)
            break
        try:
            engine.migrate(target=name)
        except ModelStoreError as exc:
            problems.append('%s: applying it on the previous release\'s database fails: %s'
                            % (name, exc))
            break
        problems += steps.probe('after %s (expand)' % name, name.partition('_')[0])
    return problems


def _environment(work):
    """The subprocesses' environment: no modelstore setting of the caller's, data under
    ``work``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('MODELSTORE_')}
    env['XDG_DATA_HOME'] = os.path.join(work, 'data')
    return env


def _tail(text, lines=3):
    kept = [line.strip() for line in (text or '').strip().splitlines()[-lines:]]
    return ' | '.join(line for line in kept if line) or '(no output)'


# -- the previous release in a venv -------------------------------------------------------------

def _install(previous, directory, work):
    """A venv under ``work`` with ``previous`` installed; returns its Python."""
    source = _source(previous, directory, work)
    home = os.path.join(work, 'venv')
    venv.create(home, with_pip=False)
    python = os.path.join(home, 'bin', 'python')
    site = subprocess.run([python, '-I', '-c', 'import sysconfig; '
                           'print(sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Read after the venv's own site-packages: its modelstore comes first, the rest is shared.
    with open(os.path.join(site, '_modelstore_shared_packages.pth'), 'w') as fh:
        fh.write(''.join(path + '\n' for path in _shared_packages()))
    command = [sys.executable, '-m', 'pip', '--python', python, 'install', '--no-deps',
               '--no-input', '--disable-pip-version-check', '--quiet']
    if _can_build_wheels():
        command.append('--no-build-isolation')
    log.info('installing the previous release (%s)', previous)
    try:
        done = subprocess.run(command + [source], cwd=work, capture_output=True, text=True,
                              timeout=INSTALL_SECONDS)
    except subprocess.TimeoutExpired:
        raise ConfigError('installing the previous release (%s) took more than %d s'
                          % (previous, INSTALL_SECONDS)) from None
    if done.returncode != 0:
        raise ConfigError('cannot install the previous release (%s): %s'
                          % (previous, _tail(done.stderr or done.stdout, 5)))
    return python


def _shared_packages():
    """The running environment's site-packages directories, in its order."""
    found = []
    for path in sys.path:
        if os.path.basename(path) in ('site-packages', 'dist-packages') and \
                os.path.isdir(path) and path not in found:
            found.append(path)
    return found


def _can_build_wheels():
    """Can setuptools build a wheel here without downloading anything (``wheel`` installed, or
    setuptools 70.1+, which has bdist_wheel itself)?"""
    def version(name):
        try:
            return tuple(int(p) for p in metadata.version(name).split('.')[:2] if p.isdigit())
        except metadata.PackageNotFoundError:
            return None
    setuptools = version('setuptools')
    return setuptools is not None and (version('wheel') is not None or setuptools >= (70, 1))


def _source(previous, directory, work):
    """What pip installs: an archive as it is, a directory or a git ref copied under ``work``."""
    text = str(previous)
    copy = os.path.join(work, 'source')
    if text.startswith('git:'):
        _git_archive(text[len('git:'):], directory, work, copy)
        return copy
    path = os.path.abspath(text)
    if os.path.isdir(path):
        shutil.copytree(path, copy, ignore=shutil.ignore_patterns(*SKIPPED), symlinks=True)
        return copy
    if os.path.isfile(path) and path.endswith(ARCHIVES):
        return path
    raise ConfigError('previous=%r is neither a wheel or sdist, a source directory, nor git:REF'
                      % text)


def _git_archive(ref, directory, work, into):
    """``git archive ref`` of the repository ``directory`` is in (else the current
    directory's), unpacked into ``into``."""
    if not ref:
        raise ConfigError("previous='git:' names no ref: git:TAG, git:BRANCH or git:COMMIT")
    top = None
    for start in (directory, '.'):
        found = subprocess.run(['git', '-C', start, 'rev-parse', '--show-toplevel'],
                               capture_output=True, text=True) if os.path.isdir(start) else None
        if found is not None and found.returncode == 0:
            top = found.stdout.strip()
            break
    if top is None:
        raise ConfigError("previous='git:%s': neither %s nor the current directory is in a git "
                          "repository" % (ref, directory))
    archive = os.path.join(work, 'source.tar')
    with open(archive, 'wb') as fh:
        done = subprocess.run(['git', '-C', top, 'archive', '--format=tar', ref + '^{commit}'],
                              stdout=fh, stderr=subprocess.PIPE)
    if done.returncode != 0:
        raise ConfigError("previous='git:%s': git archive in %s fails (%s); a shallow clone "
                          "lacks older commits"
                          % (ref, top, _tail(done.stderr.decode(errors='replace'))))
    os.mkdir(into)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, 'data_filter'):
            tar.extractall(into, filter='data')
        else:  # Python without the filters: git archive writes no absolute or '..' names.
            tar.extractall(into)


# -- the throwaway database -------------------------------------------------------------------

@contextlib.contextmanager
def _throwaway(url, work):
    """Yield the URL of an empty database of ``url``'s backend, gone afterwards."""
    url = DatabaseURL.of(url) if url else None
    if url is None or url.backend == 'sqlite':
        yield DatabaseURL('sqlite:///' + os.path.join(work, 'previous.db'))
        return
    with shadow_database(url) as shadow:
        if shadow.database == url.parts.path.lstrip('/'):
            raise ConfigError('check_migrations(previous=...) on %s needs a role that may '
                              'create databases (CREATEDB): the previous release runs in a '
                              'process of its own, which cannot see a throwaway schema inside '
                              "this one's transaction" % url.masked)
        yield url.replace(path='/' + shadow.database)


# -- the legacy apps' own statements ----------------------------------------------------------

def _legacy_writers(database, tag):
    """[(operation, error)] for the legacy apps' statements that fail on ``database`` now."""
    failures = []
    name = 'legacy-%s' % tag

    def run(op, statements):
        """Run (SQL or a callable, parameters, check of the rows) in order; False on failure."""
        try:
            for sql, params, check in statements:
                rows = sql() if callable(sql) else _rows(database, sql, params)
                if check is not None and not check(rows):
                    raise LookupError('its SELECT does not return the row it wrote')
        except Exception as exc:  # Whatever the driver raises is the finding.
            failures.append((op, '%s: %s' % (type(exc).__name__, ' '.join(str(exc).split()))))
            return False
        return True

    # datetime.now().isoformat(): a 'T', local time, no zone; the flag a Python bool.
    if run('ModelForge INSERT', [(MODELFORGE_INSERT, (
            name, 'meta-llama/Llama-3.2-1B', 'summarization', 'Summariser (Recommended Model)',
            '2025-10-30T14:03:11.512345', '/models/%s_0c7f1f0e' % name, False), None)]):
        run('ModelForge SELECT', [
            (MODELFORGE_SELECTS[0], (), lambda rows: any(name in row for row in rows)),
            (MODELFORGE_SELECTS[1], (), None)])

    def task_row():
        found = _rows(database, 'SELECT id FROM tasks WHERE task_name = ?', (name,))
        if not found:
            raise LookupError('no task named %r after its INSERT' % name)
        return _rows(database, AUTOTUNER_SELECT, (found[0][0],))
    # Enum names, JSON text, SQLAlchemy's DATETIME text (UTC), its Python-side defaults.
    if run('autotuner INSERT', [(AUTOTUNER_INSERT, (
            name, None, 'PENDING', '{"model_name": "llama-3-2-1b-instruct"}', 'sglang', None,
            '{"tp-size": [1, 2]}', '{"strategy": "grid_search"}', '{}', None, None, 'docker', 0,
            0, None, '2025-11-18 08:00:00.000000', None, None, None), None)]):
        run('autotuner SELECT', [(task_row, None, lambda rows: len(rows) == 1
                                  and rows[0][1] == name and rows[0][3] == 'PENDING')])
    return failures


def _rows(database, sql, params):
    """The rows ``sql`` (``?`` placeholders, as the apps write it) returns; [] for a write."""
    cursor = database.execute_sql(sql.replace('?', database.param), params)
    return list(cursor.fetchall()) if cursor.description else []
