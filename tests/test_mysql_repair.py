"""MySQL/MariaDB ``repair`` (issue 26, item 3): it never destroys what the script did not make.

* A statement the server refused took no effect: it does not stay in the log "in progress", and
  repair reverts the rest right after migrate told the operator to run it.
* A statement refused because its object exists (1060, 1050, 1061) made nothing: repair leaves
  that object -- and its values -- alone; so does one in doubt whose object was there before.
* Undo is idempotent: a repair killed with -9 between steps is finished by the next one, and an
  object that is no longer the one the script made is not dropped.
* A revert that would drop values or rows is refused with DataLossRefused unless ``--yes``, as
  rollback refuses it.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from modelstore.engine import Engine
from modelstore.exceptions import DataLossRefused, MigrationError
from modelstore.shared.database import open_database

from conftest import columns, dump, execute, history, query, tables

pytestmark = pytest.mark.mysql_only

# A table holding data the scripts below must never lose: 'a' with values in 'description',
# and 'imports' with rows.
BASE = '''
    from peewee import *

    def up(migrator, db):
        db.execute_sql('CREATE TABLE a (id INTEGER AUTO_INCREMENT PRIMARY KEY, '
                       'name VARCHAR(20), description TEXT)')
        db.execute_sql('CREATE INDEX a_name ON a (name)')
        db.execute_sql('CREATE TABLE imports (id INTEGER PRIMARY KEY, source TEXT)')

    def down(migrator, db):
        db.execute_sql('DROP TABLE imports')
        db.execute_sql('DROP TABLE a')
'''

# The first operation completes, the second is refused by the server.
FAILING = '''
    from peewee import *

    def up(migrator, db):
        migrator.migrate(migrator.add_column('a', 'b', IntegerField(null=True)))
        %s

    def down(migrator, db):
        pass
'''

REFUSED = {
    'unknown column': "db.execute_sql('CREATE INDEX a_nope ON a (nope)')",
    'syntax error': "db.execute_sql('ALTER TABLE a FROBNICATE')",
    'missing table': "db.execute_sql('UPDATE no_such_table SET x = 1')",
    'existing column (1060)': "migrator.migrate(migrator.add_column('a', 'description', "
                              "TextField(null=True)))",
    'existing column, raw SQL': "db.execute_sql('ALTER TABLE a ADD COLUMN description TEXT')",
    'existing table (1050)': "db.execute_sql('CREATE TABLE imports (id INTEGER PRIMARY KEY)')",
    'existing index (1061)': "migrator.migrate(migrator.add_index('a', ('name',), False, "
                             "name='a_name'))",
}


def _cli_args(scripts, db_url, *extra):
    return ('--database', db_url, '--migrations', scripts.dir) + extra


def _setup(cli, scripts, db_url, second):
    scripts('0001_base.py', BASE)
    assert cli('migrate', *_cli_args(scripts, db_url))[0] == 0
    execute(db_url, "INSERT INTO a (name, description) VALUES ('m1', 'precious'), "
                    "('m2', 'C:\\dir\\')",
            "INSERT INTO imports VALUES (1, 'modelforge'), (2, 'legacy')")
    before = dump(db_url)
    scripts('0002_failing.py', second)
    code, _, err = cli('migrate', *_cli_args(scripts, db_url))
    assert code == 2 and 'modelstore repair' in err, err
    return before, err


@pytest.mark.parametrize('case', sorted(REFUSED))
def test_repair_reverts_what_completed_and_nothing_the_server_refused(cli, scripts, db_url,
                                                                      case):
    before, err = _setup(cli, scripts, db_url, FAILING % REFUSED[case])
    assert 'failed after 1 operation had completed' in err
    [row] = [r for r in history(db_url) if r['name'] == '0002_failing']
    log = json.loads(row['operations'])
    assert row['method'] == 'failed'
    assert not (log['doing'] or {}).get('statement')  # Refused: not in doubt.
    code, out, _ = cli('status', *_cli_args(scripts, db_url))
    assert 'after 1 completed operation' in out, out
    code, out, err = cli('repair', *_cli_args(scripts, db_url))
    assert code == 0, err
    assert '0002_failing (up): reverted 1 operation\n' in out, out
    assert "Dropped column 'b' from 'a'" in out and 'description' not in out
    assert dump(db_url) == before  # The values of a.description and imports' rows included.


def test_a_statement_in_doubt_whose_object_was_there_before_is_never_undone(scripts, db_url,
                                                                           tmp_path):
    """kill -9 while the server runs a CREATE TABLE of a table that exists: the log says the
    statement started, the schema shows the table; it was there before, so repair keeps it."""
    scripts('0001_base.py', BASE)
    Engine(open_database(db_url, mode='migrate'), scripts.dir).migrate()
    execute(db_url, "INSERT INTO imports VALUES (1, 'modelforge')")
    before = dump(db_url)
    scripts('0002_failing.py', FAILING % REFUSED['existing table (1050)'])
    # The log is written, then the process dies before the statement reaches the server.
    _run_killed(db_url, scripts, 'migrate', '''
        from modelstore.engine import nontx
        original = nontx.OperationLog.before_statement

        def before_statement(self, sql, description):
            original(self, sql, description)
            if sql.startswith('CREATE TABLE imports'):
                os.kill(os.getpid(), signal.SIGKILL)
        nontx.OperationLog.before_statement = before_statement
    ''')
    [row] = [r for r in history(db_url) if r['name'] == '0002_failing']
    assert row['method'] == 'running'
    assert json.loads(row['operations'])['doing']['statement'].startswith('CREATE TABLE imports')
    engine = Engine(open_database(db_url, mode='migrate'), scripts.dir)
    [(name, _, action, steps)] = engine.repair()
    assert action == 'reverted 1 operation'
    assert [s.description for s in steps] == ["Dropped column 'b' from 'a'"]
    assert dump(db_url) == before


def _run_killed(db_url, scripts, command, patch):
    """Run ``modelstore COMMAND`` in a subprocess with ``patch`` applied first (it kills the
    process with SIGKILL at its chosen instant); assert that it was killed."""
    program = textwrap.dedent('''
        import os, signal, sys
        from modelstore.cli import main
    ''') + textwrap.dedent(patch) + textwrap.dedent('''
        sys.exit(main(sys.argv[1:]))
    ''')
    proc = subprocess.run([sys.executable, '-c', program, command, '--database', db_url,
                           '--migrations', scripts.dir], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, NO_COLOR='1'))
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr)


TWO_ADDS = '''
    from peewee import *

    def up(migrator, db):
        migrator.migrate(migrator.add_column('a', 'b', IntegerField(null=True)),
                         migrator.add_index('a', ('b',), False, name='a_b'),
                         migrator.add_column('a', 'c', IntegerField(null=True)))
        db.execute_sql('CREATE TABLE made (id INTEGER PRIMARY KEY)')
        raise RuntimeError('boom')

    def down(migrator, db):
        pass
'''


@pytest.mark.parametrize('after', ['DROP TABLE `made`', 'ALTER TABLE `a` DROP COLUMN `c`',
                                   'DROP INDEX `a_b`'])
def test_a_repair_killed_between_steps_is_finished_by_the_next(cli, scripts, db_url, after):
    before, _ = _setup(cli, scripts, db_url, TWO_ADDS)
    # Killed right after the server dropped the object, before the log said so.
    _run_killed(db_url, scripts, 'repair', '''
        from peewee import Database
        original = Database._notify_hooks

        def notify(self, sql, params, start, exc):
            original(self, sql, params, start, exc)
            if exc is None and sql.startswith(%r):
                os.kill(os.getpid(), signal.SIGKILL)
        Database._notify_hooks = notify
    ''' % after)
    [row] = [r for r in history(db_url) if r['name'] == '0002_failing']
    assert row['method'] == 'failed'  # Still listed, although part of it is gone.
    code, out, err = cli('repair', *_cli_args(scripts, db_url))
    assert code == 0, err
    assert 'reverted' in out and 'found undone already' in out, out
    assert dump(db_url) == before
    assert cli('repair', *_cli_args(scripts, db_url))[1].startswith('Nothing to repair')


def test_an_object_that_is_not_the_one_the_script_made_is_not_dropped(cli, scripts, db_url):
    _setup(cli, scripts, db_url, TWO_ADDS)
    # By hand, after the failure: 'c' dropped and made again, another column holding values.
    execute(db_url, 'ALTER TABLE a DROP COLUMN c', 'ALTER TABLE a ADD COLUMN c VARCHAR(9)',
            "UPDATE a SET c = 'kept'")
    snapshot = dump(db_url)
    code, _, err = cli('repair', *_cli_args(scripts, db_url))
    assert code == 2
    assert 'column a.c is not the one the script made (it made int(11); it is now ' \
           'varchar(9))' in err, err
    assert '--mark-reverted' in err
    assert dump(db_url) == snapshot
    with pytest.raises(MigrationError, match='not the one the script made'):
        Engine(open_database(db_url, mode='migrate'), scripts.dir).repair(allow_data_loss=True)
    assert dump(db_url) == snapshot


LOSSY = '''
    from peewee import *

    def up(migrator, db):
        migrator.migrate(migrator.add_column('a', 'b', IntegerField(null=True)),
                         migrator.add_column('a', 'flag', BooleanField(
                             null=True, constraints=[SQL('DEFAULT FALSE')])))
        db.execute_sql('CREATE TABLE made (id INTEGER PRIMARY KEY)')
        raise RuntimeError('boom')

    def down(migrator, db):
        pass
'''


def test_a_revert_that_would_lose_values_is_refused_unless_yes(cli, scripts, db_url):
    before, _ = _setup(cli, scripts, db_url, LOSSY)
    # Writers used the new column and table before anyone ran repair; flag holds its default.
    execute(db_url, "UPDATE a SET b = 7 WHERE name = 'm1'", 'INSERT INTO made VALUES (1), (2)')
    snapshot = dump(db_url)
    code, _, err = cli('repair', *_cli_args(scripts, db_url))
    assert code == 2
    assert 'refusing to repair' in err and 'column a.b and the values of 1 row' in err, err
    assert 'table made and its 2 rows' in err and 'flag' not in err
    assert '--yes' in err
    assert dump(db_url) == snapshot
    engine = Engine(open_database(db_url, mode='migrate'), scripts.dir)
    with pytest.raises(DataLossRefused) as info:
        engine.repair()
    assert len(info.value.losses) == 2 and 'allow_data_loss=True' in str(info.value)
    assert dump(db_url) == snapshot
    code, out, err = cli('repair', *_cli_args(scripts, db_url, '--yes'))
    assert code == 0, err
    assert 'reverted 3 operations' in out
    assert dump(db_url) == before


def test_a_revert_that_drops_only_defaults_and_nulls_needs_no_yes(cli, scripts, db_url):
    before, _ = _setup(cli, scripts, db_url, LOSSY)
    code, out, err = cli('repair', *_cli_args(scripts, db_url))
    assert code == 0, err
    assert dump(db_url) == before
    assert 'made' not in tables(db_url) and columns(db_url, 'a') == ['id', 'name',
                                                                      'description']
    assert query(db_url, 'SELECT COUNT(*) FROM imports') == [(2,)]


def test_a_failed_row_without_its_operations_log_is_refused_not_guessed(cli, scripts, db_url):
    """A failed row whose log is gone (edited by hand, damaged): nothing says what the script
    did, so repair reverts nothing and forgets nothing; the manual marks still work."""
    before, _ = _setup(cli, scripts, db_url, FAILING % REFUSED['existing table (1050)'])
    execute(db_url, "UPDATE schema_migration SET operations = NULL WHERE name = '0002_failing'")
    after_failure = dump(db_url)
    code, _, err = cli('repair', *_cli_args(scripts, db_url))
    assert code == 2 and 'its history row holds no operations log' in err, err
    assert '--mark-reverted' in err and '--mark-applied' in err
    assert dump(db_url) == after_failure  # The row is still there, still failed.
    assert cli('repair', *_cli_args(scripts, db_url, '--mark-reverted'))[0] == 0
    assert '0002_failing' not in [r['name'] for r in history(db_url)]
