"""A command's start-up loads what it runs (issue 30): the grammar of its command only, the
engine modules it uses, and no server driver for a SQLite database -- and parses, runs and
fails exactly as it did when everything was loaded."""
import argparse
import contextlib
import io
import importlib.util
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

import modelstore.engine
from modelstore.cli import parser as cli_parser, results
from modelstore.engine import scripts
from modelstore.exceptions import ScriptError, UsageError

# Run a command in a fresh interpreter; print what it loaded, and what peewee holds for the
# drivers, as JSON on stderr's last line.
LOADED = """
import json, sys
from modelstore.cli import command
code = command()
import peewee
print(json.dumps({'modules': sorted(sys.modules), 'code': code,
                  'psycopg2': peewee.psycopg2 is not None, 'mysql': peewee.mysql is not None}),
      file=sys.stderr)
"""
DRIVERS = [name for name in ('psycopg2', 'pymysql') if importlib.util.find_spec(name)]


def loaded(tmp_path, *argv):
    env = dict(os.environ, NO_COLOR='1', XDG_DATA_HOME=str(tmp_path / 'xdg'))
    result = subprocess.run([sys.executable, '-c', LOADED] + list(argv), capture_output=True,
                            text=True, env=env)
    return json.loads(result.stderr.strip().splitlines()[-1])


def test_status_on_sqlite_loads_neither_the_run_nor_a_server_driver(tmp_path):
    url = 'sqlite:///' + str(tmp_path / 'registry.db')
    assert subprocess.run([sys.executable, '-m', 'modelstore', 'migrate', '--database', url],
                          capture_output=True).returncode == 0
    got = loaded(tmp_path, 'status', '--database', url)
    assert got['code'] == 0
    modules = set(got['modules'])
    assert {'peewee', 'modelstore.engine.status', 'modelstore.engine.history'} <= modules
    never = {'modelstore.engine.run', 'modelstore.engine.backup', 'modelstore.engine.drift',
             'modelstore.engine.clients', 'playhouse.db_url', 'typing', 'tomllib'} | set(DRIVERS)
    assert not never & modules, sorted(never & modules)
    assert not got['psycopg2'] and not got['mysql']


@pytest.mark.skipif(not DRIVERS, reason='no server driver installed to be loaded')
def test_a_server_url_loads_peewee_with_its_drivers(tmp_path):
    # Nothing listens on port 1: the command fails to connect, after loading what it needs.
    got = loaded(tmp_path, 'status', '--database', 'postgresql://u@127.0.0.1:1/x')
    assert got['code'] == 2
    assert set(DRIVERS) <= set(got['modules'])
    assert got['psycopg2'] == ('psycopg2' in DRIVERS) and got['mysql'] == ('pymysql' in DRIVERS)


@pytest.mark.skipif(not DRIVERS, reason='no server driver installed to be left out')
def test_a_program_that_runs_main_can_open_a_server_after_a_sqlite_command(tmp_path):
    """main() is the command line embedded in a program that goes on: it loads the drivers as
    usual, so that a server opened later (by main() or the library) finds them."""
    script = ('import peewee\nfrom modelstore.cli import main\n'
              'main(["status", "--database", %r])\n'
              'import peewee\nprint(peewee.psycopg2 is not None, peewee.mysql is not None)\n'
              'main(["status", "--database", "postgresql://u@127.0.0.1:1/x"])\n'
              % ('sqlite:///' + str(tmp_path / 'r.db')))
    script = script.replace('import peewee\nfrom', 'from', 1)  # peewee: not loaded before.
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            env=dict(os.environ, NO_COLOR='1'))
    assert result.stdout.split()[-2:] == [str('psycopg2' in DRIVERS), str('pymysql' in DRIVERS)]
    if 'psycopg2' in DRIVERS:  # The driver's own error, not "driver not found".
        assert 'Connection refused' in result.stderr or 'could not connect' in result.stderr, \
            result.stderr


def test_the_drivers_stay_importable_after_a_sqlite_command(tmp_path):
    script = ('import sys\nfrom modelstore.cli import command\n'
              'sys.argv[1:] = ["status", "--database", %r]\ncommand()\n'
              'assert all(sys.modules.get(n, 0) is not None for n in %r)\n'
              'for name in %r:\n    __import__(name)\nprint("ok")\n'
              % ('sqlite:///' + str(tmp_path / 'r.db'), DRIVERS, DRIVERS))
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            env=dict(os.environ, NO_COLOR='1'))
    assert result.stdout.strip().endswith('ok'), result.stderr[-2000:]


# -- the grammar: the command's parsers only, parsed to the same namespace --------------------

COMMAND_LINES = [
    ['status'], ['status', '--json', '-v'], ['--database', 'sqlite:///x.db', 'status'],
    ['--data', 'sqlite:///x.db', 'history'], ['--database=sqlite:///x.db', 'migrate', '--to',
                                              '0003'],
    ['--migrations', 'status', 'status'], ['--database', 'status', 'migrate'],
    ['--mig', 'models', 'tasks', 'list'], ['--json', 'migrate', '--offline', '--phase',
                                            'expand'],
    ['rollback', '--to', '0002', '--yes', '--dry-run'], ['restore', 'backup.db'],
    ['new', 'add_x', '--auto', '--dry-run'], ['check', '--models', 'a.b:C'],
    ['lint', '--database', 'sqlite:///a', '--database', 'sqlite:///b'],
    ['accept', 'x', 'y'], ['accept', '--all'], ['repair', '--mark-applied'],
    ['clients', '--all'], ['doctor', '--register', '--min-age', '0'],
    ['models', 'list', '--limit', '3', '--tag', 'a=b', '--tag', 'c=d'],
    ['models', 'show', 'm@2'], ['models', 'delete', '7', '--files', '--yes'],
    ['models', 'alias', 'set', 'm', 'prod', '3', '--protected'],
    ['models', 'alias', 'ls', 'm'], ['models', 'archive', 'm@1'], ['models', 'restore', 'm@1'],
    ['models', 'tag', 'm', 'a=b', '--rm', 'c'], ['models', 'lineage', '3'],
    ['models', 'card', '3', '--print'], ['models', 'events', '--after', '4', '--follow'],
    ['tasks', 'list', '--status', 'done'], ['tasks', 'show', '2'],
    ['import', 'modelforge', '--dry-run'], ['models', '--json', 'list'],
    # Usage errors: the same message either way, the choices listed in full.
    ['stauts'], ['models', 'lst'], ['models'], ['status', '--bogus'], ['migrate', '--to'],
    ['--', 'status'], ['tasks', 'show'], ['models', 'alias', 'mv', 'a'], [], ['-', 'migrate'],
    ['-1', 'status'], ['-a b', 'status'], ['status', '-', 'x'], ['models', '-1', 'list'],
    ['--he', 'models', 'list'], ['-vh', 'models'], ['--json', '-hv', 'tasks', 'list'],
    ['--hel', 'import', 'modelforge'], ['models', '--he', 'list'], ['status', '-vh'],
    ['--ver', 'status'], ['migrate', '--dry-run', '--fake', '--keep-backups', '0'],
]


def _parse(parser, argv, capsys):
    try:
        namespace = parser.parse_args(argv)
    except UsageError as exc:
        return 'error', str(exc), capsys.readouterr().err
    except SystemExit as exc:  # Help: printed whole, then exit 0.
        return 'exit', exc.code, capsys.readouterr().out
    return 'parsed', {k: repr(v) for k, v in vars(namespace).items()}


@pytest.mark.parametrize('argv', COMMAND_LINES, ids=' '.join)
def test_the_command_only_grammar_parses_as_the_whole_one(argv, capsys):
    assert _parse(cli_parser.build_parser(argv), argv, capsys) == \
        _parse(cli_parser.build_parser(), argv, capsys)


TOKENS = sorted({token for line in COMMAND_LINES for token in line} | {
    '-h', '--help', '--version', '--json', '-v', '--database', '--migrations', '--d', '--mig',
    '--data=sqlite:///y', '--', '-', 'alias', 'set', 'rm', 'ls', 'modelforge', 'list', 'show',
    '-1', '-.5', '-a b', '--x y', '', '-x', '--json=1', '--h', '--he', '--help=1', '-vh', '-hv',
    '-jh'})


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=6))
def test_any_command_line_parses_or_fails_as_with_the_whole_grammar(argv):
    """Random words, options and values in any order: the command-only grammar parses them
    to the same namespace, or refuses them with the same message, as the whole one."""
    results_ = []
    for parser in (cli_parser.build_parser(argv), cli_parser.build_parser()):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                got = ('parsed', {k: repr(v) for k, v in vars(parser.parse_args(argv)).items()})
        except UsageError as exc:
            got = ('error', str(exc))
        except SystemExit as exc:  # --help, --version: printed, then exit 0.
            got = ('exit', exc.code)
        results_.append((got, printed.getvalue()))  # The usage or help printed too.
    assert results_[0] == results_[1]


def test_the_grammar_built_for_status_holds_no_other_command():
    subparsers = [a for a in cli_parser.build_parser(['status'])._actions
                  if isinstance(a, argparse._SubParsersAction)]
    assert list(subparsers[0].choices) == ['status']
    models = [a for a in cli_parser.build_parser(['models', 'list'])._actions
              if isinstance(a, argparse._SubParsersAction)][0].choices['models']
    actions = [a for a in models._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(actions[0].choices) == ['list']


# -- results: a dataclass's constructor without its code generation ----------------------------

def test_a_result_takes_its_fields_by_position_or_name_and_checks_them():
    rows = iter(())
    listing = results.Listing(rows, 'models', False, None, 0, 50)
    assert (listing.rows, listing.what, listing.page, listing.more) == (rows, 'models', 50,
                                                                         [False])
    other = results.Listing(rows=rows, what='tasks', jsonl=True, limit=3, offset=0, page=50)
    assert other.more == [False] and other.more is not listing.more
    report = results.DoctorReport('db', object(), None)
    assert report.final is True and report.fixes == [] and \
        report.fixes is not results.DoctorReport('db', object(), None).fixes
    with pytest.raises(TypeError, match="missing value 'offset'"):
        results.Listing(rows, 'models', False, None)
    with pytest.raises(TypeError, match="unexpected or repeated value 'pages'"):
        results.Listing(rows, 'models', False, None, 0, 50, pages=1)
    with pytest.raises(TypeError, match="unexpected or repeated value 'rows'"):
        results.Listing(rows, 'models', False, None, 0, 50, rows=rows)
    with pytest.raises(TypeError, match='takes 2 values, got 3'):
        results.Accepted('db', [], 'extra')
    assert repr(results.Accepted('db', ['a'])) == "Accepted(database='db', names=['a'])"


# -- the engine's names, each loaded on first use ---------------------------------------------

def test_every_engine_name_resolves_and_the_table_names_are_their_modules():
    for name in modelstore.engine.__all__:
        assert getattr(modelstore.engine, name) is not None, name
    assert set(modelstore.engine.__all__) <= set(dir(modelstore.engine))
    from modelstore.engine import clients, history
    assert modelstore.engine.HISTORY_TABLE == history.TABLE
    assert modelstore.engine.CLIENTS_TABLE == clients.TABLE
    with pytest.raises(AttributeError, match='no attribute'):
        modelstore.engine.not_a_name  # noqa: B018


# -- a script's phase: read without parsing when no name can declare it ------------------------

@pytest.mark.parametrize('text, phase', [
    ('def up(migrator, database, fake=False):\n    pass\n', 'expand'),
    ("phase = 'contract'\n", 'contract'),
    ("'''phase = 'contract' in a docstring'''\n", 'expand'),
    # NFKC: the fullwidth letter is the name `phase` to Python; the text is not ASCII.
    ("\uff50hase = 'contract'\n", 'contract'),
])
def test_the_phase_is_what_python_binds(text, phase):
    assert scripts.read_phase('0001_x', text) == phase


def test_a_bad_phase_is_still_refused():
    with pytest.raises(ScriptError, match="phase must be 'expand' or 'contract'"):
        scripts.read_phase('0001_x', "phase = 'later'\n")
