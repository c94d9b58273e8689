"""Bad inputs across the API and the CLI: each must fail clearly and change nothing.

Every case runs against a fresh registry at head holding a model and a task. A case passes when
the call raises the expected error class (API) or exits with the expected code (CLI), the
message names the problem, and the database dump -- and every other file in the case's
directory -- is unchanged. The SQL-metacharacter cases are the exception that proves the rule:
they must be *stored verbatim* (parameterised queries), changing nothing else.

    .venv/bin/python harness/bad_inputs.py [--database POSTGRES_ADMIN_URL]

prints one line per case and the totals, and exits 1 if any case was not handled.
"""
import argparse
import contextlib
import datetime
import hashlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import modelstore
from modelstore.cli import main as cli_main
from modelstore.exceptions import ConfigError, NotFound, ValidationError

from dbtools import dump, execute, new_database, query

BACKENDS = ('sqlite', 'postgresql', 'mysql')
MB = 1024 * 1024
NASTY = ["'; DROP TABLE fine_tuned_models; --", 'Robert"); DELETE FROM tasks; --',
         "x' OR '1'='1", '%s %(x)s ? :name $1 \\', '`backtick` [bracket] /* c */']
MODEL = dict(model_name='m', base_model='b', task='t', model_path='/p')
TASK = dict(base_runtime='sglang', model_config={}, parameters={}, optimization_config={},
            benchmark_config={})


@dataclass
class Case:
    name: str
    action: Callable        # action(ctx) -> None for the API, or a CLI argv list
    expect: object          # an exception class (API) or an exit code (CLI)
    message: str            # a regular expression the message must match
    backends: Tuple[str, ...] = BACKENDS
    verbatim: Optional[Callable] = None  # For metacharacter cases: check(ctx) -> bool
    setup: Optional[Callable] = None     # setup(ctx): done before the "before" snapshot


class Context:
    def __init__(self, url, directory, backend):
        self.url = url
        self.dir = directory
        self.backend = backend

    def store(self):
        return modelstore.connect(self.url)

    def mark(self):
        """Fingerprint every file in the case's directory but the registry's own."""
        self.files = _files(self.dir, os.path.join(self.dir, 'registry.db'))

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(self.path(name), 'w') as fh:
            fh.write(textwrap.dedent(text))
        return self.path(name)


def api(method, **fields):
    def action(ctx):
        with ctx.store() as store:
            getattr(store, method)(**fields)
    return action


def model(**changes):
    return api('add_model', **dict(MODEL, **changes))


def task(**changes):
    fields = dict(TASK, task_name='new')
    fields.update(changes)
    return api('add_task', **fields)


def _connect(url_of):
    def action(ctx):
        url = url_of(ctx)
        ctx.mark()  # The file the URL names must be left exactly as it is now.
        modelstore.connect(url).close()
    return action


def _file(name, content):
    def url_of(ctx):
        path = ctx.path(name)
        if content is None:
            os.mkdir(path)
        else:
            with open(path, 'wb') as fh:
                fh.write(content)
        return 'sqlite:///' + path
    return url_of


def _truncated(ctx):
    path = ctx.path('truncated.db')
    with modelstore.connect('sqlite:///' + path) as store:
        for i in range(400):
            store.add_model(**dict(MODEL, model_name='m%d' % i, description='d' * 400))
    with open(path, 'r+b') as fh:
        fh.truncate(os.path.getsize(path) // 2)
    return 'sqlite:///' + path


def _read_only(ctx):
    """migrate on a file its user may not write; run as `nobody` when we are root."""
    shared = tempfile.mkdtemp(prefix='modelstore-ro-')
    os.chmod(shared, 0o755)
    path = os.path.join(shared, 'ro.db')
    try:
        with modelstore.connect('sqlite:///' + path) as store:
            store.add_model(**MODEL)
        with modelstore.connect('sqlite:///' + path) as store:  # Let it hold a pending script.
            store.database.execute_sql("DELETE FROM schema_migration WHERE name LIKE '0004%'")
            store.database.execute_sql('ALTER TABLE tasks DROP COLUMN created_clusterbasemodel')
        os.chmod(path, 0o444)
        before = open(path, 'rb').read()
        command = [sys.executable, '-m', 'modelstore', 'migrate', '--database', path]
        if os.getuid() == 0:
            command = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] + command
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60,
                              cwd=shared)
        if open(path, 'rb').read() != before:
            raise AssertionError('the read-only file changed')
        if proc.returncode != 2:
            raise AssertionError('exit %d: %s' % (proc.returncode, proc.stderr))
        raise ConfigError(proc.stderr.strip())
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _locked_cli(ctx):
    """migrate while another connection holds the database's lock past --lock-timeout."""
    scripts = ctx.path('scripts')
    os.mkdir(scripts)
    for name in os.listdir(_shipped()):
        if name.endswith('.py'):
            shutil.copy(os.path.join(_shipped(), name), scripts)
    with open(os.path.join(scripts, '0099_more.py'), 'w') as fh:
        fh.write('def up(migrator, db):\n    db.execute_sql("CREATE TABLE more (x INTEGER)")\n')
    ctx.mark()
    with modelstore.connect(ctx.url) as holder:
        db = holder.database
        name = "CONCAT('modelstore:', SHA1(DATABASE()))"  # MySQL: the run lock's name.
        if ctx.backend == 'sqlite':
            db.execute_sql('BEGIN EXCLUSIVE')
        elif ctx.backend == 'mysql':
            db.execute_sql('SELECT GET_LOCK(%s, 0)' % name)
        else:
            db.execute_sql('SELECT pg_advisory_lock(%s)', (0x6D6F64656C737472,))
        try:
            return _cli(ctx, ['migrate', '--database', ctx.url, '--migrations', scripts,
                              '--lock-timeout', '0.3'])
        finally:
            if ctx.backend == 'sqlite':
                db.execute_sql('ROLLBACK')
            elif ctx.backend == 'mysql':
                db.execute_sql('SELECT RELEASE_LOCK(%s)' % name)
            else:
                db.execute_sql('SELECT pg_advisory_unlock(%s)', (0x6D6F64656C737472,))


def _shipped():
    from modelstore.engine.scripts import default_directory
    return default_directory()


def _scripts_cli(files, extra=()):
    """migrate with a scripts directory holding the shipped scripts plus ``files``."""
    def argv(ctx):
        scripts = ctx.path('scripts')
        shutil.copytree(_shipped(), scripts, ignore=shutil.ignore_patterns('__pycache__'))
        for name, body in files.items():
            ctx.write(os.path.join('scripts', name), body)
        return ['migrate', '--database', ctx.url, '--migrations', scripts] + list(extra)
    return argv


def _stored_verbatim(fields, table, columns):
    def check(ctx):
        rows = query(ctx.url, 'SELECT %s FROM %s ORDER BY id DESC LIMIT 1'
                     % (', '.join(columns), table))
        return list(rows[0]) == [fields[c] for c in columns]
    return check


def _deep(levels):
    value = {}
    for _ in range(levels):
        value = {'x': value}
    return value


def _cycle():
    value = {'a': []}
    value['a'].append(value)
    return value


PLUS5 = datetime.timezone(datetime.timedelta(hours=5))
MINUS5 = datetime.timezone(datetime.timedelta(hours=-5))


def _hand_made_unique_index(ctx):
    execute(ctx.url, 'CREATE UNIQUE INDEX hand_made ON fine_tuned_models (model_name)')


def _bulk(rows):
    return api('add_models', models=rows)


def _garbage_history(ctx):
    execute(ctx.url, "UPDATE schema_migration SET applied_utc = 'garbage', duration = 'slow' "
            "WHERE name LIKE '0002%'")


def _with_lock_timeout(command, value):
    def argv(ctx):
        target = [ctx.path('nope.bak')] if command == 'restore' else []
        return [command] + target + ['--database', ctx.url, '--lock-timeout', value]
    return argv


def _silent_server(ctx):
    """connect() to a server that accepts TCP and never answers (connect_timeout=2)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        sock.listen(4)
        port = sock.getsockname()[1]
        ctx.mark()
        modelstore.connect('postgresql://u:secret@127.0.0.1:%d/db?connect_timeout=2' % port)


CASES = [
    # -- the registry API: every field rule ----------------------------------------------------
    Case('empty model_name', model(model_name=''), ValidationError, r'model_name: must not be '
         'empty'),
    Case('blank base_model', model(base_model='   '), ValidationError, r'base_model: must not'),
    Case('model_name of the wrong type', model(model_name=42), ValidationError,
         r'model_name: must be a string, got int'),
    Case('missing model_path', api('add_model', model_name='m', base_model='b', task='t'),
         ValidationError, r'model_path: is required'),
    Case('None for a required field', model(task=None), ValidationError,
         r'task: is required'),
    Case('unknown field', model(colour='red'), ValidationError, r"unknown field 'colour'"),
    Case('1 MB model_name', model(model_name='x' * MB), ValidationError,
         r'model_name: is 1048576 characters long; the limit is 255'),
    Case('1 MB description', model(description='x' * MB), ValidationError,
         r'description: is 1048576 characters long; the limit is 65536'),
    Case('1 MB JSON column', task(parameters={'blob': 'x' * MB}), ValidationError,
         r'parameters: serialises to \d+ bytes; the limit is 262144'),
    Case('non-UTF-8 bytes', model(model_path=b'/models/\xff\xfe'), ValidationError,
         r'model_path: must be a string, got bytes'),
    Case('non-UTF-8 bytes decoded with surrogateescape',
         model(base_model=b'llama\xff'.decode('utf-8', 'surrogateescape')), ValidationError,
         r'base_model: is not valid UTF-8'),
    Case('NUL character', model(task='text\x00generation'), ValidationError,
         r'task: must not contain NUL'),
    Case('flag that is not a bool', model(is_custom_base_model='yes'), ValidationError,
         r'is_custom_base_model: must be True or False, got str'),
    Case('creation_date that is not a timestamp', model(creation_date='yesterday'),
         ValidationError, r"creation_date: is not an ISO-8601 timestamp: 'yesterday'"),
    Case('JSON that will not serialise', task(model_config={'obj': object()}), ValidationError,
         r'model_config: is not JSON-serialisable'),
    Case('JSON with non-string keys', task(model_config={1: 'a'}), ValidationError,
         r'model_config: JSON object keys must be strings'),
    Case('JSON column given a list', task(parameters=[1, 2]), ValidationError,
         r'parameters: must be a JSON object \(dict\), got list'),
    Case('NaN inside JSON', task(parameters={'lr': float('nan')}), ValidationError,
         r'parameters: contains NaN'),
    Case('NaN elapsed_time', task(elapsed_time=float('nan')), ValidationError,
         r'elapsed_time: must be a finite'),
    Case('negative experiment count', task(total_experiments=-1), ValidationError,
         r'total_experiments: must be between 0'),
    Case('unknown status', task(status='EXPLODED'), ValidationError, r"status: .*'EXPLODED'"),
    Case('cluster config: unknown preset', task(clusterbasemodel_config={'preset': 'gpt-17'}),
         ValidationError, r"clusterbasemodel_config: .*'gpt-17'"),
    Case('cluster config: neither preset nor custom spec',
         task(clusterservingruntime_config={'colour': 'red'}), ValidationError,
         r'clusterservingruntime_config: .*preset.*spec'),
    Case('duplicate task_name', task(task_name='t1'), ValidationError,
         r"task_name: a task named 't1' already exists"),
    Case('id of the wrong type', api('get_model', model_id='1'), ValidationError,
         r"model_id: must be an integer id or a reference \(NAME, NAME@VERSION, NAME@ALIAS\), "
         r"got the text '1'"),
    Case('update of a task that does not exist', api('update_task', task_id=999999,
                                                      status='RUNNING'),
         NotFound, r'no task with id 999999'),
    Case('delete of a model that does not exist', api('delete_model', model_id=999999),
         NotFound, r'no fine-tuned model with id 999999'),
    # Issue 11 (B10-B12): each used to escape as a raw OverflowError, RecursionError or
    # driver error, or was stored wrong.
    Case('aware timestamp at year 1 that overflows in UTC',
         task(started_at=datetime.datetime(1, 1, 1, tzinfo=PLUS5)), ValidationError,
         r'started_at: .*outside the years 1 to 9999 once converted to UTC'),
    Case('aware timestamp at year 9999 that overflows in UTC (ISO text)',
         task(completed_at='9999-12-31T23:00:00-05:00'), ValidationError,
         r'completed_at: .*outside the years 1 to 9999'),
    Case('update with an overflowing aware timestamp',
         api('update_task', task_id=1, started_at=datetime.datetime(9999, 12, 31, 23,
                                                                    tzinfo=MINUS5)),
         ValidationError, r'started_at: .*outside the years'),
    Case('model id of 2**63', api('get_model', model_id=2 ** 63), ValidationError,
         r'model_id: must be a positive id of at most 2\*\*63-1'),
    Case('delete of id 2**64', api('delete_model', model_id=2 ** 64), ValidationError,
         r'model_id: must be a positive id'),
    Case('task id of 2**63', api('get_task', task_id=2 ** 63), ValidationError,
         r'task_id: must be a positive id'),
    Case('update of task id 2**63', api('update_task', task_id=2 ** 63, status='RUNNING'),
         ValidationError, r'task_id: must be a positive id'),
    Case('negative id', api('get_model', model_id=-1), ValidationError,
         r'model_id: must be a positive id'),
    Case('JSON nested 5000 deep', task(parameters=_deep(5000)), ValidationError,
         r'parameters: is nested more than 100 levels deep'),
    Case('JSON that contains itself', task(slo_config=_cycle()), ValidationError,
         r'slo_config: contains itself at .* \(a reference cycle\)'),
    Case('JSON integer of 5001 digits', task(parameters={'n': 10 ** 5000}), ValidationError,
         r'parameters: holds an integer of more than 4300 digits'),
    Case('clearing a task status', api('update_task', task_id=1, status=None),
         ValidationError, r'status: cannot be cleared'),
    Case('duplicate under a hand-made unique index', model(), ValidationError,
         r'model_name: the database refused the row', setup=_hand_made_unique_index),
    Case('bulk duplicate under a hand-made unique index',
         _bulk([dict(MODEL, model_name='fresh'), MODEL]), ValidationError,
         r'model_name: the database refused the row', setup=_hand_made_unique_index),
    # -- SQL metacharacters: stored verbatim, nothing else touched ------------------------------
    ] + [
    Case('SQL metacharacters in every model string field (%d)' % i,
         model(model_name=s, base_model=s, task=s, model_path=s, description=s), None, '',
         verbatim=_stored_verbatim(dict(model_name=s, base_model=s, task=s,
                                                      model_path=s, description=s),
                                   'fine_tuned_models', ['model_name', 'base_model', 'task',
                                                         'model_path', 'description']))
    for i, s in enumerate(NASTY)] + [
    Case('SQL metacharacters in every task string field',
         task(task_name=NASTY[0], description=NASTY[1], base_runtime=NASTY[2],
              runtime_image_tag=NASTY[3], deployment_mode=NASTY[4],
              created_clusterbasemodel=NASTY[0], created_clusterservingruntime=NASTY[1],
              model_config={NASTY[0]: NASTY[1]}), None, '',
         verbatim=_stored_verbatim(dict(
             task_name=NASTY[0], description=NASTY[1], base_runtime=NASTY[2],
             runtime_image_tag=NASTY[3], deployment_mode=NASTY[4],
             created_clusterbasemodel=NASTY[0], created_clusterservingruntime=NASTY[1]),
             'tasks', ['task_name', 'description', 'base_runtime', 'runtime_image_tag',
                       'deployment_mode', 'created_clusterbasemodel',
                       'created_clusterservingruntime'])),
    # -- URLs and files ------------------------------------------------------------------------
    Case('malformed URL', _connect(lambda ctx: 'postgresql://u:secret@[::1/db'), ConfigError,
         r'malformed database URL'),
    Case('unknown scheme', _connect(lambda ctx: 'mongodb://127.0.0.1/registry'), ConfigError,
         r"unsupported database URL scheme 'mongodb'"),
    Case('URL of the wrong type', _connect(lambda ctx: 42), ConfigError,
         r'database URL must be a string, got int'),
    Case('a directory given as the SQLite file', _connect(_file('dir.db', None)), ConfigError,
         r'is a directory, not a SQLite database file', ('sqlite',)),
    Case('a file that is not a database', _connect(_file('notes.txt', b'hello\n' * 1000)),
         ConfigError, r'file is not a database', ('sqlite',)),
    Case('a truncated database file', _connect(_truncated), ConfigError,
         r'malformed', ('sqlite',)),
    Case('a SQLite file in a directory that does not exist',
         _connect(lambda ctx: 'sqlite:///' + ctx.path('no/such/dir/r.db')), ConfigError,
         r'directory .* does not exist', ('sqlite',)),
    Case('a read-only file', _read_only, ConfigError, r'read-only \(mode 444\)', ('sqlite',)),
    Case('SQLite URL with a # in the name', _connect(lambda ctx: 'sqlite:///' + ctx.path('r#2.db')),
         ConfigError, r'has a fragment \(#2.db\)', ('sqlite',)),
    Case('SQLite URL with a ? in the name', _connect(lambda ctx: 'sqlite:///' + ctx.path(
        'r?x.db')), ConfigError, r"query parameters \('x.db'\)", ('sqlite',)),
    Case('empty URL', _connect(lambda ctx: ''), ConfigError, r'the database URL is empty'),
    Case('a device as the database', _connect(lambda ctx: '/dev/null'), ConfigError,
         r'not a regular file', ('sqlite',)),
    Case('PostgreSQL parameter libpq does not know',
         _connect(lambda ctx: ctx.url + ('&' if '?' in ctx.url else '?') + 'bogus=1'),
         ConfigError, r'does not understand: bogus', ('postgresql',)),
    Case('MySQL parameter PyMySQL is not given', _connect(
        lambda ctx: ctx.url + ('&' if '?' in ctx.url else '?') + 'bogus=1'),
         ConfigError, r"query parameters modelstore does not take: 'bogus'", ('mysql',)),
    Case('MySQL connect_timeout that is not a number', _connect(
        lambda ctx: ctx.url + ('&' if '?' in ctx.url else '?') + 'connect_timeout=soon'),
         ConfigError, r"connect_timeout must be a whole number of seconds, got 'soon'",
         ('mysql',)),
    Case('MySQL wrong password', _connect(lambda ctx: re.sub(r':[^:@/]*@', ':not-the-password@',
                                                             ctx.url)), ConfigError,
         r'^(?!.*not-the-password)cannot (connect to|open) mysql://[^:/]+:\*\*\*@.*Access denied',
         ('mysql',)),
    Case('a server that never answers', _silent_server, ConfigError,
         r'127\.0\.0\.1.*within 2 s', ('postgresql',)),
    Case('wrong password', _connect(lambda ctx: re.sub(r':[^:@/]*@', ':not-the-password@',
                                                       ctx.url)), ConfigError,
         r'^(?!.*not-the-password)cannot (connect to|open) postgresql://[^:/]+:\*\*\*@',
         ('postgresql',)),
    # -- the CLI -------------------------------------------------------------------------------
    Case('CLI: unknown migration target', lambda ctx: ['migrate', '--database', ctx.url, '--to',
                                                        '9999_nope'],
         2, r"unknown migration target '9999_nope'"),
    Case('CLI: rollback to an unknown target', lambda ctx: ['rollback', '--database', ctx.url,
                                                            '--to', '0042_nope'],
         2, r"unknown migration target '0042_nope'"),
    Case('CLI: a script with a syntax error', _scripts_cli({'0099_broken.py': 'def up(:\n'}),
         2, r'0099_broken: syntax error at line 1'),
    Case('CLI: a script without up', _scripts_cli({'0099_noup.py': 'X = 1\n'}),
         2, r'0099_noup: does not define up\(migrator, db\)'),
    Case('CLI: two scripts with the same number',
         _scripts_cli({'0004_again.py': 'def up(migrator, db):\n    pass\n'}),
         2, r'two migration scripts share the number 4'),
    Case('CLI: locked database past the timeout', _locked_cli, 2,
         r'held its lock for more than 0.3 s'),
    Case('CLI: unknown scheme', lambda ctx: ['status', '--database', 'oracle://x/y'], 2,
         r"unsupported database URL scheme 'oracle'"),
    Case('CLI: accept a script that is not applied', lambda ctx: ['accept', '--database',
                                                                  ctx.url, '0099_nope'],
         2, r'cannot accept 0099_nope: it is not an applied script'),
    Case('CLI: --keep-backups that is not a number', lambda ctx: [
        'migrate', '--database', ctx.url, '--keep-backups', 'many'], 2,
        r"--keep-backups: must be a whole number of at least 1, got 'many'"),
    Case('CLI: restore from a backup that does not exist', lambda ctx: [
        'restore', ctx.path('nope.bak'), '--database', ctx.url], 2, r'backup .* does not exist'),
    Case('CLI: --lock-timeout that is not a number', lambda ctx: [
        'migrate', '--database', ctx.url, '--lock-timeout', 'soon'], 2,
        r"--lock-timeout: invalid float value: 'soon'"),
    ] + [
    Case('CLI: %s --lock-timeout %s' % (command, value), _with_lock_timeout(command, value), 2,
         r'--lock-timeout: ' + message)
    for command, value, message in (
        ('migrate', 'nan', 'must be a finite number of seconds'),
        ('rollback', 'inf', 'must be a finite number of seconds'),
        ('migrate', '-3', 'must be a finite number of seconds, at least 0'),
        ('migrate', '1e9', 'must be at most 2147483 s'),
        ('restore', 'nan', 'must be a finite number'))] + [
    Case('CLI: --database ""', lambda ctx: ['migrate', '--database', ''], 2,
         r'the database URL is empty'),
    Case('CLI: check on a damaged history', lambda ctx: ['check', '--database', ctx.url], 1,
         r"damaged history: 0002_add_is_custom_base_model: applied_utc holds 'garbage'",
         ('sqlite',), setup=_garbage_history),
    Case('CLI: status on a damaged history', lambda ctx: ['status', '--database', ctx.url], 0,
         r"unreadable: 'garbage'", ('sqlite',), setup=_garbage_history),
]

# Issue 26's cases, one section per area so that they can be added side by side.
# --- issue 26: generator and replay ---
_GEN_MODELS = tempfile.mkdtemp(prefix='modelstore-bad-models-')  # Outside the cases' dirs: an
# import leaves __pycache__ beside the module.
_HOSTILE = 'x"""\nimport os; os.system("touch /tmp/modelstore-pwned")\n"""'


def _generate(field, *extra, database=False, table='fine_tuned_models'):
    """`new --auto` on the shipped scripts and a models module adding ``field`` to ``table``
    (another name: a new table), written outside the case's directory; ``extra`` options
    follow."""
    def argv(ctx):
        scripts = ctx.path('scripts')
        shutil.copytree(_shipped(), scripts, ignore=shutil.ignore_patterns('__pycache__'))
        name = 'bad_models_%s' % hashlib.sha1((table + field).encode(
            'utf-8', 'backslashreplace')).hexdigest()[:12]
        with open(os.path.join(_GEN_MODELS, name + '.py'), 'w', encoding='utf-8') as fh:
            fh.write(textwrap.dedent("""
                import peewee
                from peewee import *
                from modelstore.models import MODELS as _MODELS, FineTunedModel as _F, Task


                class FineTunedModel(_F):
                    %s

                    class Meta:
                        table_name = 'fine_tuned_models'


                class Extra(Model):
                    %s

                    class Meta:
                        table_name = %r


                MODELS = [FineTunedModel] + [m for m in _MODELS if m is not _F] + (
                    [Extra] if Extra._meta.table_name != 'fine_tuned_models' else [])
            """) % ((field, 'pass', table) if table == 'fine_tuned_models' else
                    ('pass', field, table)))
        if _GEN_MODELS not in sys.path:
            sys.path.insert(0, _GEN_MODELS)
        ctx.mark()
        return ['new', '--auto', 'bad', '--migrations', scripts, '--models', name] + list(
            extra) + (['--database', ctx.url] if database else [])
    return argv


CASES += [
    Case('new --auto: a NOT NULL default with NUL', _generate(
        'note = CharField(default="a\\x00b")'), 2,
         r'fine_tuned_models\.note: its default contains NUL \(\\x00\), which PostgreSQL '
         r'cannot store in text; modelstore refuses it on every backend; nothing was written',
         ('sqlite',)),
    Case('new --auto: a NOT NULL default with an unpaired surrogate', _generate(
        'note = CharField(default="a\\udc80")'), 2,
         r'its default contains an unpaired surrogate \(\\udc80 at 2\)', ('sqlite',)),
    Case('new --auto: a column name with NUL', _generate(
        'note = CharField(null=True, column_name="n\\x00")'), 2,
         r'fine_tuned_models\.n\\x00: the column name contains NUL', ('sqlite',)),
    Case('new --auto: a field name a script cannot declare', _generate(
        'locals()["two words"] = CharField(null=True)', table='extra'), 2,
         r"the field 'two words' cannot be declared in a script's model class \(not a Python "
         r"identifier\)", ('sqlite',)),
    Case('new --auto: a field hiding a name the script uses', _generate(
        'CharField = peewee.IntegerField(null=True)\n    other = peewee.CharField(null=True)',
        table='extra'), 2,
         r"the field 'CharField' cannot be declared .*\(the script uses that name\)",
         ('sqlite',)),
    # A default that would end the docstring and run code: a value, shown with its escapes
    # (exit 0, written nowhere with --dry-run; replayed on the case's server, nothing left).
    Case('new --auto --dry-run: a default holding """ and code', _generate(
        'note = CharField(default=%r)' % _HOSTILE, '--dry-run'), 0,
         r"NOT NULL DEFAULT 'x\\\"\\\"\\\"\\\\nimport os; os\.system", ('sqlite',)),
    Case('new --auto --dry-run --database: replayed on the server, nothing left', _generate(
        'note = CharField(default=%r)' % _HOSTILE, '--dry-run', database=True), 0,
         r'replayed|dry run: not written', ('postgresql', 'mysql')),
    Case('new --auto --check: a default holding a newline is shown escaped', _generate(
        'note = CharField(default="a\\nb")', '--check'), 1,
         r"\+ add column fine_tuned_models\.note NOT NULL DEFAULT 'a\\nb'\n", ('sqlite',)),
]
# --- issue 26: MariaDB literals and repair ---
_BACKSLASHES = ["C:\\new\\dir", "ends with \\", "quote \\' and \\\" \\0 \\Z \\%_"]


def _failed_partway(ctx):
    """setup (MySQL): a script that added a column and then failed, recorded `failed`; writers
    have since put a value in the column."""
    scripts = ctx.path('scripts')
    shutil.copytree(_shipped(), scripts, ignore=shutil.ignore_patterns('__pycache__'))
    ctx.write('scripts/0099_partway.py', """
        from peewee import IntegerField

        def up(migrator, db):
            migrator.migrate(migrator.add_column('fine_tuned_models', 'partway',
                                                 IntegerField(null=True)))
            raise RuntimeError('boom')

        def down(migrator, db):
            pass
    """)
    code, _, err = _cli(ctx, ['migrate', '--database', ctx.url, '--migrations', scripts])
    assert code == 2 and 'modelstore repair' in err, err
    execute(ctx.url, 'UPDATE fine_tuned_models SET partway = 7')


def _repair(*extra):
    return lambda ctx: ['repair', '--database', ctx.url, '--migrations',
                        ctx.path('scripts')] + list(extra)


def _engine(**kwargs):
    def action(ctx):
        with ctx.store() as store:
            from modelstore.engine import Engine
            Engine(store.database).repair(**kwargs)
    return action


CASES += [
    Case('backslashes in every model string field (%d)' % i,
         model(model_name=s, base_model=s, task=s, model_path=s, description=s), None, '',
         verbatim=_stored_verbatim(dict(model_name=s, base_model=s, task=s, model_path=s,
                                        description=s), 'fine_tuned_models',
                                   ['model_name', 'base_model', 'task', 'model_path',
                                    'description']))
    for i, s in enumerate(_BACKSLASHES)] + [
    Case('Engine.repair(mode=...) not a mode', _engine(mode='bogus'), ValidationError,
         r"mode: must be None \(revert\), 'applied' or 'reverted', got 'bogus'"),
    Case('Engine.repair(allow_data_loss=...) not a bool', _engine(allow_data_loss='yes'),
         ValidationError, r"allow_data_loss: must be True or False, got 'yes'"),
    Case('CLI: repair --mark-applied --mark-reverted',
         lambda ctx: ['repair', '--database', ctx.url, '--mark-applied', '--mark-reverted'], 2,
         r'--mark-reverted: not allowed with argument --mark-applied'),
    Case('CLI: repair that would drop a column holding values', _repair(), 2,
         r'refusing to repair .*: it would destroy:\n  column fine_tuned_models\.partway and '
         r'the values of 1 row .*\nNothing was changed\. Run again with --yes',
         ('mysql',), setup=_failed_partway),
]
# --- issue 26: import and read-only commands ---
_FORGE_TABLE = ('CREATE TABLE models (id VARCHAR(64) NOT NULL, name VARCHAR(255) NOT NULL, '
                'base_model VARCHAR(255) NOT NULL, task VARCHAR(255) NOT NULL, '
                'path VARCHAR(255) NOT NULL, created_at %s, config %s, is_active BOOLEAN)')


def _forge(*rows, raw=()):
    """setup: ModelForge v2's `models` table (no primary key, as one made by hand) holding
    ``rows`` (id, name, created_at, config) and ``raw`` INSERT statements."""
    def setup(ctx):
        kinds = {'sqlite': ('DATETIME', 'TEXT'), 'postgresql': ('TIMESTAMP', 'TEXT'),
                 'mysql': ('DATETIME(6)', 'LONGTEXT')}[ctx.backend]
        execute(ctx.url, _FORGE_TABLE % kinds, *[
            ('INSERT INTO models (id, name, base_model, task, path, created_at, config, '
             'is_active) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
             (i, n, 'gpt2', 'summarization', '/m/' + i, c, g, True)) for i, n, c, g in rows],
            *raw)
    return setup


def _import(*extra):
    return lambda ctx: ['import', 'modelforge', '--database', ctx.url] + list(extra)


def _untouched(argv):
    """A read-only command on a file in its rollback journal (as ModelForge leaves it): its
    bytes and journal mode must be as they were (the dump alone would not see WAL)."""
    def action(ctx):
        import sqlite3
        path = ctx.url[len('sqlite:///'):]
        conn = sqlite3.connect(path)
        conn.execute('PRAGMA journal_mode=DELETE')
        conn.close()
        ctx.mark()
        before = open(path, 'rb').read()
        result = _cli(ctx, argv + ['--database', ctx.url])
        conn = sqlite3.connect(path)
        mode = conn.execute('PRAGMA journal_mode').fetchone()[0]
        conn.close()
        if open(path, 'rb').read() != before or mode != 'delete':
            raise AssertionError('the file changed (journal mode now %s)' % mode)
        return result
    return action


CASES += [
    Case('CLI: import a created_at that leaves the years 1-9999 in local time', _import(), 0,
         r'early  early: created_at: 0001-01-01 05:00:00\+14:00 is outside the years 1 to 9999'
         r'(.|\n)*late  late: created_at: 9999-12-31 23:00:00-14:00 is outside',
         ('sqlite',), setup=_forge(('late', 'late', '9999-12-31T23:00:00-14:00', None),
                                   ('early', 'early', '0001-01-01T05:00:00+14:00', None))),
    # (PostgreSQL's year 20000 is in tests/test_import.py: psycopg2, which the harness's own
    # dump reads the tables with, cannot fetch it.)
    # (Bytes, not TEXT: the harness's own dump reads the table with sqlite3, which cannot
    # decode them; tests/test_import.py has the TEXT case.)
    Case('CLI: import a name that is not UTF-8', _import(), 0,
         r'bad  n\\xff: name: is not UTF-8 text \(byte 1 of n\\xff\)', ('sqlite',),
         setup=_forge(raw=["INSERT INTO models VALUES ('bad', X'6EFF', 'b', 't', '/m', NULL, "
                           "NULL, 1)"])),
    Case('CLI: import two rows sharing an id', _import(), 0,
         r'twin  a: its id is held by 2 rows(.|\n)*twin  b: its id is held by 2 rows',
         setup=_forge(('twin', 'a', None, None), ('twin', 'b', None, None))),
    Case('CLI: import a config nested 5,000 deep', _import('--json'), 0,
         r'"why": "config: is JSON nested too deep to read"',
         setup=_forge(('deep', 'deep', None, '[' * 5000 + ']' * 5000),
                      ('deeper', 'deeper', None, '{"a": ' * 5000 + '1' + '}' * 5000))),
    Case('CLI: import a config holding \\u0000 and a lone surrogate', _import(), 0,
         r'nul  nul: config \(as hyperparameters\): holds a NUL character(.|\n)*'
         r'sur  sur: config \(as hyperparameters\): .*unpaired surrogate',
         setup=_forge(('nul', 'nul', None, '{"a": "\\u0000"}'),
                      ('sur', 'sur', None, '{"\\udc80": 1}'))),
    Case('CLI: import --dry-run leaves a rollback-journal file as it was',
         _untouched(['import', 'modelforge', '--dry-run']), 0, r'Would import 1 model',
         ('sqlite',), setup=_forge(('ok', 'ok', '2025-11-20 10:00:00', '{}'))),
    Case('CLI: models list leaves a rollback-journal file as it was',
         _untouched(['models', 'list']), 0, r'ID  NAME', ('sqlite',)),
    Case('CLI: tasks show leaves a rollback-journal file as it was',
         _untouched(['tasks', 'show', 't1']), 0, r'task_name\s+t1', ('sqlite',)),
    Case('JSON value holding NUL', task(parameters={'a': 'x\x00y'}), ValidationError,
         r"parameters: holds a NUL character \(\\u0000\) in parameters\['a'\]"),
    Case('JSON key holding NUL, nested', model(hyperparameters={'opt': [{'b\x00': 1}]}),
         ValidationError, r"hyperparameters: holds a NUL character .* in the key 'b\\x00' in "
         r"hyperparameters\['opt'\]\[0\]"),
    Case('JSON value holding a lone surrogate', task(model_config={'a': ['\ud800']}),
         ValidationError, r"model_config: holds text that is not valid UTF-8 in "
         r"model_config\['a'\]\[0\]: an unpaired surrogate"),
    Case('JSON: a surrogate pair given as two code points',
         task(slo_config={'emoji': '\ud83d\ude00'}), ValidationError,
         r"slo_config: .*unpaired surrogate \('\\ud83d'\)"),
    Case('update_task: a JSON key with a lone surrogate',
         lambda ctx: _update(ctx, 'task', task_metadata={'\udc80k': 1}), ValidationError,
         r"task_metadata: .*the key '\\udc80k' in task_metadata"),
    Case('update_model: NUL in a metrics key',
         lambda ctx: _update(ctx, 'model', metrics={'lo\x00ss': 1.0}), ValidationError,
         r"metrics: holds a NUL character"),
]


def _update(ctx, what, **fields):
    with ctx.store() as store:
        if what == 'task':
            store.update_task(store.get_task_by_name('t1').id, **fields)
        else:
            store.update_model(store.get_latest_model('m').id, **fields)
# --- issue 26: the CLI as a new user tries it ---
def _pyproject(body):
    """setup: a pyproject.toml with [tool.modelstore] ``body`` in the case's directory."""
    def setup(ctx):
        with open(os.path.join(ctx.dir, 'pyproject.toml'), 'w') as fh:
            fh.write('[tool.modelstore]\n' + body)
    return setup


def _in_dir(argv):
    """Run the CLI from the case's directory (where its pyproject.toml is)."""
    def action(ctx):
        here = os.getcwd()
        os.chdir(ctx.dir)
        try:
            return _cli(ctx, argv(ctx))
        finally:
            os.chdir(here)
    return action


def _named_one(ctx):
    with modelstore.connect(ctx.url) as store:
        store.add_model(**dict(MODEL, model_name='1'))


CASES += [
    Case('CLI: models show of a number that is an id and a name', lambda ctx: [
        'models', 'show', '1', '--database', ctx.url], 2, r'--id 1 or --name 1',
        setup=_named_one),
    Case('CLI: models show with --id and --name', lambda ctx: [
        'models', 'show', '--id', '1', '--name', 'm', '--database', ctx.url], 2, r'one of'),
    Case('CLI: models show --id that is not a number', lambda ctx: [
        'models', 'show', '--id', 'one', '--database', ctx.url], 2, r'--id: a whole number'),
    Case('CLI: tasks show of an id and name that do not exist', lambda ctx: [
        'tasks', 'show', '424242', '--database', ctx.url], 2,
        r"no task with id 424242, and none named '424242'"),
    Case('CLI: --to a prefix several scripts fit', lambda ctx: [
        'migrate', '--database', ctx.url, '--to', '00'], 2, r'--to 00 fits \d+ scripts: 0001_'),
    Case('CLI: --limit past the maximum', lambda ctx: [
        'models', 'list', '--database', ctx.url, '--limit', str(2 ** 63)], 2,
        r'--limit: must be a whole number from 1 to 4611686018427387904'),
    Case('CLI: negative --offset', lambda ctx: [
        'tasks', 'list', '--database', ctx.url, '--offset', '-5'], 2,
        r'--offset: must be a whole number from 0'),
    Case('CLI: --limit and --all together', lambda ctx: [
        'models', 'list', '--database', ctx.url, '--limit', '3', '--all'], 2, r'not allowed'),
    Case('CLI: a bad filter is named as its option', lambda ctx: [
        'models', 'list', '--database', ctx.url, '--created-after', 'soon'], 2,
        r'error: --created-after: '),
    Case('CLI: models delete --files without a models root', lambda ctx: [
        'models', 'delete', '1', '--files', '--yes', '--database', ctx.url], 2,
        r'--files .*--models-root DIR'),
    Case('CLI: accept without names', lambda ctx: ['accept', '--database', ctx.url], 2,
         r'names of the scripts to accept, or --all'),
    Case('CLI: pyproject.toml with an unknown key', _in_dir(lambda ctx: ['status']), 2,
         r"pyproject.toml: \[tool.modelstore\] has an unknown key 'databse'",
         setup=_pyproject('databse = "x.db"\n')),
    Case('CLI: pyproject.toml with a value of the wrong type', _in_dir(lambda ctx: ['status']),
         2, r'pyproject.toml: \[tool.modelstore\] migrations must be a non-empty string, got 3',
         setup=_pyproject('migrations = 3\n')),
    Case('CLI: pyproject.toml that is not TOML', _in_dir(lambda ctx: ['status']), 2,
         r'pyproject.toml is not valid TOML', setup=_pyproject('database = "x.db\n')),
]
# --- issue 26: scripts, errors and the online migration ---
CASES += [
    Case('CLI: a script calling sys.exit(0) at import',
         _scripts_cli({'0099_exits.py': 'import sys\nsys.exit(0)\n'}),
         2, r'0099_exits: failed to load: it called sys.exit\(0\)'),
    # (MySQL records a failed script in its history: the dump changes there, by design.)
    Case('CLI: a script calling sys.exit() in up()',
         _scripts_cli({'0099_exits.py': 'import sys\n\ndef up(migrator, db):\n    sys.exit()\n'}),
         2, r'0099_exits: up failed and was rolled back: ScriptExited: up\(\) called '
            r'sys.exit\(None\)', ('sqlite', 'postgresql')),
    Case('CLI: a dry run of a script calling sys.exit(3) in up()',
         _scripts_cli({'0099_exits.py': 'import sys\n\ndef up(migrator, db):\n    sys.exit(3)\n'},
                      ['--dry-run']),
         2, r'0099_exits.*up\(\) called sys.exit\(3\)'),
    Case('API: empty_trash(dry_run=...) that is not a bool', lambda ctx: _empty_trash(ctx, 'yes'),
         ValidationError, r"dry_run: must be True or False, got 'yes'"),
]


def _empty_trash(ctx, dry_run):
    root = ctx.path('models')
    os.makedirs(root, exist_ok=True)
    with modelstore.connect(ctx.url, models_root=root) as store:
        store.empty_trash(dry_run=dry_run)


def _cli(ctx, argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _files(directory, skip):
    found = {}
    for root, dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            if not path.startswith(skip):
                with open(path, 'rb') as fh:
                    found[os.path.relpath(path, directory)] = hashlib.sha256(fh.read()).digest()
    return found


def prepare(url):
    """A registry at head with one model and one task."""
    with modelstore.connect(url) as store:
        store.add_model(**MODEL)
        store.add_task(task_name='t1', **TASK)


def run_case(case, url, directory, backend):
    """Run one case on a prepared database; returns (handled, changed, detail)."""
    ctx = Context(url, directory, backend)
    if case.setup is not None:
        case.setup(ctx)
    ctx.mark()
    before = dump(url)
    detail = ''
    handled = False
    try:
        result = case.action(ctx)
        if isinstance(result, list):  # A CLI argv, after any setup: run it.
            ctx.mark()
            result = _cli(ctx, result)
        if isinstance(result, tuple):
            code, out, err = result
            text = err if code == 2 else out + err  # An error on stderr; a finding on stdout.
            handled = code == case.expect and re.search(case.message, text) is not None
            detail = 'exit %d: %s' % (code, (text.strip().splitlines() or [''])[-1][:200])
        elif case.verbatim is not None:
            handled = case.verbatim(ctx)
            detail = 'stored verbatim' if handled else 'stored something else'
        else:
            detail = 'no error raised'
    except Exception as exc:
        message = str(exc)
        handled = case.expect is not None and not isinstance(case.expect, int) and \
            isinstance(exc, case.expect) and re.search(case.message, message) is not None
        detail = '%s: %s' % (type(exc).__name__, message[:200])
    after = dump(url)
    if case.verbatim is not None:  # Exactly one row more in one table, nothing else.
        # (sqlite_sequence holds the AUTOINCREMENT counter, model_version_counters the version
        # counters, which a new row moves on, registry_event_counter the events' number; the
        # new row's model.added event is the one row registry_events may gain.)
        counters = ('sqlite_sequence', 'model_version_counters', 'registry_event_counter',
                    'registry_events')
        data = [t for t in before[1] if t not in counters]
        events = [len(after[1][t]) - len(before[1][t]) for t in before[1]
                  if t == 'registry_events']
        changed = after[0] != before[0] or sum(
            len(after[1][t]) - len(before[1][t]) for t in data) != 1 or any(
            row not in after[1][t] for t in data for row in before[1][t]) or any(
            grown not in (0, 1) for grown in events)
    else:
        changed = after != before or _files(directory, os.path.join(directory, 'registry.db')) \
            != ctx.files
    return handled, changed, detail


def cases_for(backend):
    return [c for c in CASES if backend in c.backends]


def run_all(backend, admin_url=None, out=sys.stdout):
    """Run every case of ``backend``; returns (tried, handled, changes)."""
    tried = handled = changes = 0
    for case in cases_for(backend):
        directory = tempfile.mkdtemp(prefix='modelstore-bad-')
        drop = None
        try:
            if backend == 'sqlite':
                url = 'sqlite:///' + os.path.join(directory, 'registry.db')
            else:
                url, drop = new_database(admin_url)
            prepare(url)
            ok, changed, detail = run_case(case, url, directory, backend)
        finally:
            if drop is not None:
                drop()
            shutil.rmtree(directory, ignore_errors=True)
        tried += 1
        handled += ok
        changes += changed
        print('%-4s %-7s %-60s %s' % ('ok' if ok and not changed else 'FAIL',
                                      'CHANGED' if changed else '', case.name, detail), file=out)
    return tried, handled, changes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--database', metavar='ADMIN_URL',
                        help='run on PostgreSQL (a role that may CREATE DATABASE) or MySQL (a '
                        'user that may CREATE and DROP databases)')
    args = parser.parse_args(argv)
    backend = ('mysql' if args.database.split(':')[0] in ('mysql', 'mariadb') else
               'postgresql') if args.database else 'sqlite'
    tried, handled, changes = run_all(backend, args.database)
    print('bad inputs on %s: %d tried, %d handled, %d changed the database'
          % (backend, tried, handled, changes))
    return 0 if handled == tried and changes == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
