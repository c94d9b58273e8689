"""A script that calls sys.exit() fails that script, by name: never a silent exit 0.

``sys.exit()`` raises SystemExit, which ``except Exception`` does not catch: before, it left the
engine through every handler and ``modelstore migrate`` exited 0 with nothing applied and no
message. Every backend: a script's exit at import, in ``up()``, in ``down()`` and in an online
script's ``online()``, through the CLI and the API, also in a dry run.
"""
import pytest

from modelstore import ScriptError
from modelstore.engine import Engine
from modelstore.shared.database import open_database

from conftest import columns, history, query, tables

CREATE_A = '''
    from peewee import *

    def up(migrator, db):
        class A(Model):
            name = TextField()
            class Meta:
                database = db
                table_name = 'a'
        db.create_tables([A], safe=False)

    def down(migrator, db):
        migrator.migrate(migrator.drop_table('a'))
'''

EXIT_AT_IMPORT = '''
    import sys
    sys.exit(0)

    def up(migrator, db):
        pass
'''

EXIT_IN_UP = '''
    import sys

    def up(migrator, db):
        sys.exit(%s)
'''

EXIT_IN_DOWN = '''
    def up(migrator, db):
        pass

    def down(migrator, db):
        raise SystemExit('leaving')
'''


def _engine(url, directory):
    return Engine(open_database(url, mode='migrate'), directory)


@pytest.mark.parametrize('code', ['0', '3', '"bye"', ''])
def test_sys_exit_in_up_fails_the_script_by_name(cli, scripts, db_url, code):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_exits.py', EXIT_IN_UP % code)
    status, out, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    assert status == 2, (out, err)
    assert '0002_exits' in err and 'sys.exit(' in err, err
    assert [r['name'] for r in history(db_url)] == ['0001_create_a']


def test_sys_exit_at_import_fails_before_any_script_runs(cli, scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_exits.py', EXIT_AT_IMPORT)
    status, out, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    assert status == 2, (out, err)
    assert '0002_exits: failed to load: it called sys.exit(0)' in err
    assert 'a' not in tables(db_url)


def test_sys_exit_in_a_dry_run_is_named_too(cli, scripts, db_url):
    scripts('0001_exits.py', EXIT_IN_UP % '0')
    status, out, err = cli('migrate', '--dry-run', '--database', db_url, '--migrations',
                           scripts.dir)
    assert status == 2 and '0001_exits' in err and 'sys.exit(0)' in err, (out, err)


def test_sys_exit_in_down_fails_the_rollback_through_the_api(scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_exits.py', EXIT_IN_DOWN)
    _engine(db_url, scripts.dir).migrate()
    with pytest.raises(ScriptError, match=r"0002_exits.*down\(\) called sys.exit\('leaving'\)"):
        _engine(db_url, scripts.dir).rollback()
    assert [r['name'] for r in history(db_url)] == ['0001_create_a', '0002_exits']
    assert columns(db_url, 'a') == ['id', 'name']


def test_sys_exit_in_an_online_step_fails_the_script(cli, scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_online.py', '''
        import sys

        def up(migrator, db):
            pass

        def online(db, batches):
            sys.exit(1)
    ''')
    status, out, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    assert status == 2, (out, err)
    assert '0002_online' in err and 'online() called sys.exit(1)' in err, err


# -- Ctrl-C: exit 130, and a line that says what the interrupt left ---------------------------

INTERRUPTED_IN_UP = '''
    def up(migrator, db):
        migrator.migrate(migrator.add_column('a', 'b', __import__('peewee').TextField(
            null=True)))
        raise KeyboardInterrupt
'''

ONLINE_INTERRUPTED = '''
    def up(migrator, db):
        pass

    def online(db, batches):
        with batches.batch() as batch:
            db.execute_sql("INSERT INTO a (name) VALUES ('kept')")
            batch.done(1)
        %s
'''


def test_an_interrupt_in_a_script_exits_130_naming_it_and_what_it_left(cli, scripts, db_url):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_interrupted.py', INTERRUPTED_IN_UP)
    status, out, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    assert status == 130, (out, err)
    assert err.startswith('error: interrupted during 0002_interrupted: '), err
    if db_url.startswith('mysql'):  # DDL commits: the column stays, the row says so.
        assert 'what the script completed stays' in err, err
        assert columns(db_url, 'a') == ['id', 'name', 'b']
        assert [r['method'] for r in history(db_url)] == ['ran', 'failed']
    elif db_url.startswith('sqlite'):  # One transaction: the run's scripts with it.
        assert 'it was rolled back, with every script of this run not yet committed' in err
        assert 'a' not in tables(db_url)
    else:
        assert 'it was rolled back; the scripts before it stay applied' in err, err
        assert columns(db_url, 'a') == ['id', 'name']
        assert [r['name'] for r in history(db_url)] == ['0001_create_a']


@pytest.mark.parametrize('how', ['raise KeyboardInterrupt',
                                 # A cleanup that fails on the connection the interrupt broke
                                 # (MySQL's driver closes it) raises over the interrupt.
                                 'try:\n            raise KeyboardInterrupt\n        finally:\n'
                                 '            raise RuntimeError("the connection is gone")'])
def test_an_interrupt_in_an_online_script_says_its_batches_stay(cli, scripts, db_url, how):
    scripts('0001_create_a.py', CREATE_A)
    scripts('0002_online.py', ONLINE_INTERRUPTED % how)
    status, out, err = cli('migrate', '--database', db_url, '--migrations', scripts.dir)
    assert status == 130, (out, err)
    assert err.startswith('error: interrupted during 0002_online: an online script: the '
                          'batches it committed stay'), err
    assert 'unexpected' not in err and 'RuntimeError' not in err, err
    assert query(db_url, 'SELECT name FROM a') == [('kept',)]
    assert [(r['name'], r['method']) for r in history(db_url)] == [
        ('0001_create_a', 'ran'), ('0002_online', 'running')]
