"""The catalogue of operations (modelstore.engine.operations), on the backend under test.

* Every playhouse.migrate method the shipped scripts and ``new --auto`` call has an entry, with
  a description and a state that shows it took effect.
* Each inverse, run through the migrator after its operation, gives the schema back as it was,
  as peewee's introspection sees it -- on SQLite, PostgreSQL and MariaDB alike.
* Each took-effect check tells the schema before the operation from the schema after it.
* The fallback for raw SQL: a statement that makes a table, an index or a column is undone by
  an operation of the catalogue, and its effect is seen the same way.
"""
import json
import os
import re

import pytest
from peewee import IntegerField, TextField
from playhouse.migrate import SchemaMigrator

from modelstore.engine import operations
from modelstore.engine.operations import (CATALOGUE, RawSQL, describe_operation, destroys,
                                          effect_of_operation, target, took_effect,
                                          undo_of_operation)
from modelstore.engine.scripts import default_directory
from modelstore.shared.database import open_database

AUTHORING = os.path.join(os.path.dirname(os.path.dirname(operations.__file__)), 'authoring',
                         'script_text.py')


def _called_methods(path):
    with open(path) as fh:
        text = fh.read()
    return set(re.findall(r'migrator\.(\w+)\(', text)) - {'migrate', 'migration_context'}


def test_every_operation_the_shipped_scripts_and_new_auto_use_is_in_the_catalogue():
    directory = default_directory()
    used = set()
    for name in sorted(os.listdir(directory)):
        if name[0].isdigit() and name.endswith('.py'):
            used |= _called_methods(os.path.join(directory, name))
    from_auto = _called_methods(AUTHORING)
    assert {'add_column', 'drop_column', 'add_index', 'drop_table'} <= used
    assert {'add_column', 'drop_column', 'add_index', 'drop_index', 'drop_table',
            'add_not_null', 'drop_not_null'} <= from_auto
    for method in sorted(used | from_auto):
        assert method in CATALOGUE, method
        assert CATALOGUE[method].effect is not None, method
        assert hasattr(SchemaMigrator, method), method


@pytest.fixture
def db(db_url):
    database = open_database(db_url, mode='migrate')
    database.execute_sql('CREATE TABLE t (id INTEGER NOT NULL PRIMARY KEY, a INTEGER, '
                         'b INTEGER NOT NULL, c VARCHAR(20))')
    database.execute_sql('CREATE INDEX t_c ON t (c)')
    database.execute_sql("INSERT INTO t (id, a, b, c) VALUES (1, 10, 20, 'x')")
    yield database
    database.close()


def schema(database):
    """The schema as peewee's introspection sees it: every table's columns (name, null, a
    default or not) and indexes (name, columns, unique)."""
    shape = {}
    for table in sorted(database.get_tables()):
        columns = sorted((c.name, c.null, c.default is not None)
                         for c in database.get_columns(table))
        indexes = sorted((i.name, tuple(i.columns), i.unique)
                         for i in database.get_indexes(table))
        shape[table] = columns, indexes
    return shape


# (operation, what must hold before it: a preparing operation or None).
REVERSIBLE = {
    'add_column, nullable': lambda m: m.add_column('t', 'd', IntegerField(null=True)),
    'add_column, NOT NULL with a default': lambda m: m.add_column(
        't', 'd', IntegerField(default=3)),
    'add_column, text': lambda m: m.add_column('t', 'notes', TextField(null=True)),
    'rename_column': lambda m: m.rename_column('t', 'a', 'renamed'),
    'rename_table': lambda m: m.rename_table('t', 'u'),
    'add_not_null': lambda m: m.add_not_null('t', 'a'),
    'drop_not_null': lambda m: m.drop_not_null('t', 'b'),
    'add_column_default': lambda m: m.add_column_default('t', 'a', 7),
    'add_index, named': lambda m: m.add_index('t', ('a', 'b'), True, name='t_ab'),
    'add_index, the name playhouse gives it': lambda m: m.add_index('t', ('b',)),
}


@pytest.mark.parametrize('case', sorted(REVERSIBLE))
def test_each_inverse_run_after_its_operation_gives_the_schema_back(db, case):
    migrator = SchemaMigrator.from_database(db)
    op = REVERSIBLE[case](migrator)
    effect = effect_of_operation(op)
    before = schema(db)
    assert not took_effect(db, effect), effect
    migrator.migrate(op)
    assert took_effect(db, effect), effect
    assert schema(db) != before
    undo = undo_of_operation(op)
    assert undo is not None and undo['op'] in CATALOGUE
    inverse = getattr(migrator, undo['op'])(*undo['args'])
    migrator.migrate(inverse)
    assert schema(db) == before
    assert not took_effect(db, effect), effect
    # The inverse's own effect is the state before: it shows now.
    assert took_effect(db, effect_of_operation(inverse))


IRREVERSIBLE = {
    'drop_column': lambda m: m.drop_column('t', 'a'),
    'drop_index': lambda m: m.drop_index('t', 't_c'),
    'drop_table': lambda m: m.drop_table('t'),
    'drop_column_default': lambda m: m.drop_column_default('t', 'a'),
}
PREPARE = {'drop_column_default': lambda m: m.add_column_default('t', 'a', 7)}


@pytest.mark.parametrize('case', sorted(IRREVERSIBLE))
def test_each_took_effect_check_tells_before_from_after(db, case):
    migrator = SchemaMigrator.from_database(db)
    if case in PREPARE:
        migrator.migrate(PREPARE[case](migrator))
    op = IRREVERSIBLE[case](migrator)
    effect = effect_of_operation(op)
    assert not took_effect(db, effect), effect
    migrator.migrate(op)
    assert took_effect(db, effect), effect
    assert undo_of_operation(op) is None  # What it dropped cannot be made again.


def test_an_undo_step_names_what_it_acts_on_and_whether_it_drops_data():
    assert target({'op': 'drop_column', 'args': ['t', 'c']}) == ['column', 't', 'c']
    assert destroys({'op': 'drop_column', 'args': ['t', 'c']})
    assert target({'op': 'drop_index', 'args': ['t', 'i']}) == ['index', 't', 'i']
    assert not destroys({'op': 'drop_index', 'args': ['t', 'i']})
    assert target({'op': 'rename_column', 'args': ['t', 'new', 'old']}) == ['column', 't', 'new']
    assert target({'op': 'rename_table', 'args': ['u', 't']}) == ['table', 'u']
    assert destroys({'op': 'drop_table', 'args': ['t']})
    assert target({'op': 'add_constraint', 'args': ['t', 'n', 'x']}) is None


def test_operations_are_described_from_their_arguments_not_their_sql(db):
    migrator = SchemaMigrator.from_database(db)
    assert describe_operation(migrator.add_column('t', 'd', IntegerField(null=True))) == \
        "Added column 'd' (INTEGER) to 't'"
    assert describe_operation(migrator.add_index('t', ('a', 'b'), True, name='t_ab')) == \
        "Created unique index 't_ab' on 't' (a, b)"
    assert describe_operation(migrator.add_index('t', ('a',))) == "Created index on 't' (a)"
    assert describe_operation(migrator.rename_column('t', 'a', 'z')) == \
        "Renamed column 't.a' to 'z'"
    assert describe_operation(migrator.drop_table('t')) == "Dropped table 't'"
    # An operation outside the catalogue is named with its arguments.
    fk = migrator.drop_foreign_key_constraint('t', 'a')
    assert describe_operation(fk) == "drop_foreign_key_constraint('t', 'a')"


RAW = {
    'CREATE TABLE': ('CREATE TABLE made (id INTEGER PRIMARY KEY)', ['table', 'made']),
    'CREATE INDEX': ('CREATE UNIQUE INDEX t_ab ON t (a, b)', ['index', 't', 't_ab']),
    'ADD COLUMN': ('ALTER TABLE t ADD COLUMN d INTEGER', ['column', 't', 'd']),
}


@pytest.mark.parametrize('case', sorted(RAW))
def test_raw_sql_is_undone_by_an_operation_of_the_catalogue(db, case):
    sql, effect = RAW[case]
    before = schema(db)
    assert RawSQL.effect(sql) == effect and not took_effect(db, effect)
    db.execute_sql(sql)
    assert took_effect(db, effect)
    [undo] = RawSQL.undo([sql])
    assert undo['op'] in CATALOGUE and target(undo) == effect
    migrator = SchemaMigrator.from_database(db)
    migrator.migrate(getattr(migrator, undo['op'])(*undo['args']))
    assert schema(db) == before and not took_effect(db, effect)


def test_raw_sql_without_a_known_inverse():
    assert RawSQL.undo(['UPDATE t SET a = 1']) is None
    assert RawSQL.undo(['SELECT 1']) == []
    assert RawSQL.effect('UPDATE t SET a = 1') is None
    assert RawSQL.guarded('CREATE TABLE IF NOT EXISTS x (id INTEGER)')


@pytest.mark.mysql_only
def test_a_raw_trigger_is_undone_by_sql_built_with_peewee_and_names_its_target(db):
    sql = 'CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW SET NEW.a = NEW.a + 1'
    effect = ['trigger', 't_touch']
    assert not took_effect(db, effect)
    db.execute_sql(sql)
    assert took_effect(db, effect)
    [undo] = RawSQL.undo([sql])
    assert undo == {'sql': 'DROP TRIGGER `t_touch`', 'target': effect}
    assert target(undo) == effect and not destroys(undo)
    db.execute_sql(undo['sql'])
    assert not took_effect(db, effect)


def test_an_operation_a_run_stopped_in_is_undone_if_its_effect_shows(db):
    """repair's plan for the operation in progress: its inverse if the catalogue's effect shows,
    nothing if it does not, nothing if the effect was there before it started."""
    from modelstore.engine.repair import pending_undo
    migrator = SchemaMigrator.from_database(db)
    op = migrator.add_column('t', 'd', IntegerField(default=3))
    doing = {'description': describe_operation(op), 'sql': [], 'undo': undo_of_operation(op),
             'statement': 'ALTER TABLE t ADD COLUMN d INTEGER', 'effect': effect_of_operation(op)}
    log = {'direction': 'up', 'done': [], 'doing': doing}
    interrupted = "Added column 'd' (INTEGER NOT NULL) to 't' (interrupted)"
    assert pending_undo(db, json.dumps(log)) == [(interrupted, [], 'doing')]
    migrator.migrate(op)
    # Its statements past the first have no inverse of their own (an UPDATE): the operation's
    # inverse undoes them all.
    doing.update(sql=['ALTER TABLE t ADD COLUMN d INTEGER', 'UPDATE t SET d = 3'],
                 statement=None)
    assert pending_undo(db, json.dumps(log)) == [
        (interrupted, [{'op': 'drop_column', 'args': ['t', 'd']}], 'doing')]
    doing['there'] = True
    assert pending_undo(db, json.dumps(log)) == [(interrupted, [], 'doing')]


KILLED_AFTER_THE_UPDATE = '''
    from peewee import *

    def up(migrator, db):
        migrator.migrate(migrator.add_column('t', 'd', IntegerField(default=3)))

    def down(migrator, db):
        migrator.migrate(migrator.drop_column('t', 'd'))
'''


@pytest.mark.mysql_only
def test_a_run_killed_inside_an_operation_is_repaired_by_its_inverse(cli, scripts, db_url, db):
    """MySQL: ADD COLUMN and the UPDATE of its default completed, the run died before the
    NOT NULL: the catalogue sees the column the operation made, and its inverse drops it."""
    from test_mysql_repair import _run_killed
    before = schema(db)['t']
    scripts('0001_add.py', KILLED_AFTER_THE_UPDATE)
    _run_killed(db_url, scripts, 'migrate', '''
        from peewee import Database
        original = Database._notify_hooks

        def notify(self, sql, params, start, exc):
            original(self, sql, params, start, exc)
            if exc is None and sql.startswith('UPDATE `t`'):
                os.kill(os.getpid(), signal.SIGKILL)
        Database._notify_hooks = notify
    ''')
    assert schema(db)['t'] != before
    args = ('--database', db_url, '--migrations', scripts.dir)
    # The values the UPDATE wrote are no database default: dropping them is a loss, refused
    # as a rollback's would be.
    code, _, err = cli('repair', *args)
    assert code == 2 and 'column t.d and the values of 1 row' in err, err
    code, out, err = cli('repair', *args, '--yes')
    assert code == 0, err
    assert "0001_add (up): reverted 1 operation" in out, out
    assert "Dropped column 'd' from 't'" in out, out
    assert schema(db)['t'] == before


@pytest.mark.parametrize('sql', ['DROP INDEX "ix"', 'DROP INDEX IF EXISTS "ix"',
                                 'DROP INDEX CONCURRENTLY IF EXISTS "ix"',
                                 'drop index concurrently ix'])
def test_a_dropped_index_is_named_however_the_statement_drops_it(sql):
    # PostgreSQL's rollback of an index script drops it CONCURRENTLY: the run said
    # "Dropped index 'CONCURRENTLY'".
    assert RawSQL.describe(sql) == "Dropped index 'ix'"
