"""MySQL/MariaDB: string literals mean what they say (issue 26, item 2).

Every modelstore connection adds ``NO_BACKSLASH_ESCAPES`` (and its other modes) to the server's
``sql_mode``: a backslash in a literal is a backslash, as in standard SQL and on SQLite and
PostgreSQL. A default round-trips exactly, and ``check`` compares a string default exactly with
what the server reports (information_schema.COLUMNS.COLUMN_DEFAULT, quoted by MariaDB).
"""
import pytest
from peewee import SQL, CharField, IntegerField, Model, TextField

import modelstore
from modelstore.dialects import MYSQL
from modelstore.engine import Engine
from modelstore.engine.drift import detect_drift
from modelstore.engine.shadow import mysql_shadow
from modelstore.shared.database import open_database

from conftest import execute, query

pytestmark = pytest.mark.mysql_only

# Each (column, the DEFAULT clause as a script and a model write it, the value it stores).
DEFAULTS = [
    ('path', r"'C:\new\dir'", 'C:\\new\\dir'),           # \n and \d are not escapes.
    ('tail', "'ends with \\'", 'ends with \\'),           # A backslash before the quote.
    ('quote', r"'it''s \'' ''x'", "it's \\' 'x"),
    ('mixed', "'Tab\\t \"dq\" \\\\ \\0'", 'Tab\\t "dq" \\\\ \\0'),
    ('emoji', "'🦙 naïve'", '🦙 naïve'),             # Reported as '? naïve' (utf8mb3).
]

CREATE = '''
    from peewee import *

    def up(migrator, db):
        db.execute_sql('CREATE TABLE a (id INTEGER AUTO_INCREMENT PRIMARY KEY, '
                       'name VARCHAR(20))')

    def down(migrator, db):
        db.execute_sql('DROP TABLE a')
'''

ADD = '''
    from peewee import *

    DEFAULTS = %r

    def up(migrator, db):
        for column, clause, _ in DEFAULTS:
            migrator.migrate(migrator.add_column('a', column, CharField(
                max_length=40, null=True, constraints=[SQL('DEFAULT ' + clause)])))

    def down(migrator, db):
        for column, _, _ in DEFAULTS:
            migrator.migrate(migrator.drop_column('a', column))
''' % (DEFAULTS,)


def _model(database, defaults=DEFAULTS):
    fields = {column: CharField(max_length=40, null=True, constraints=[SQL('DEFAULT ' + clause)])
              for column, clause, _ in defaults}
    fields['name'] = CharField(max_length=20, null=True)
    meta = type('Meta', (), {'database': database, 'table_name': 'a'})
    return type('A', (Model,), dict(fields, Meta=meta, __module__=__name__))


def _migrated(scripts, db_url):
    scripts('0001_create_a.py', CREATE)
    scripts('0002_defaults.py', ADD)
    database = open_database(db_url, mode='migrate')
    Engine(database, scripts.dir).migrate()
    return database


def test_a_default_with_backslashes_and_quotes_is_stored_exactly(scripts, db_url):
    database = _migrated(scripts, db_url)
    execute(db_url, "INSERT INTO a (name) VALUES ('row')")
    [row] = query(db_url, 'SELECT %s FROM a' % ', '.join(c for c, _, _ in DEFAULTS))
    assert list(row) == [value for _, _, value in DEFAULTS]
    # The model that declares the same defaults finds no drift.
    assert not detect_drift(database, [_model(database)])
    # Migrate's session and the test's (plain PyMySQL, the same modes) agree on every value.
    assert [r[0] for r in database.execute_sql(
        "SELECT path FROM a WHERE path = 'C:\\new\\dir'")] == ['C:\\new\\dir']
    database.close()


@pytest.mark.parametrize('column, stored', [
    ('path', "'C:\\newdir'"),          # What the old session made of 'C:\new\dir' (\d is d).
    ('path', "'c:\\new\\dir'"),        # Case counts in a string.
    ('tail', "'ends with '"),
    ('quote', "'it''s \\ ''x'"),
    ('mixed', "'Tab\\t \"dq\" \\ \\0'"),
    ('emoji', "'🦊 naïve'"),           # Both reported as '? naïve'.
])
def test_check_sees_a_string_default_that_differs(scripts, db_url, column, stored):
    database = _migrated(scripts, db_url)
    execute(db_url, 'ALTER TABLE a ALTER COLUMN %s SET DEFAULT %s' % (column, stored))
    drift = detect_drift(database, [_model(database)])
    assert [line for line in drift.lines if line.startswith('a.%s has default' % column)], \
        drift.lines
    assert len(drift.lines) == 1, drift.lines
    database.close()


def test_defaults_that_are_not_strings_compare_as_before(db_url):
    """FALSE and 0 are one default; a number in a text column is the same text."""
    execute(db_url, 'CREATE TABLE a (id INTEGER AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20), '
                    "flag BOOL NOT NULL DEFAULT 0, n INTEGER DEFAULT '5', t VARCHAR(9) DEFAULT 7, "
                    'body TEXT)')
    database = open_database(db_url, mode='migrate')

    class A(Model):
        name = CharField(max_length=20, null=True)
        flag = IntegerField(constraints=[SQL('DEFAULT FALSE')])
        n = IntegerField(null=True, constraints=[SQL("DEFAULT '5'")])
        t = CharField(max_length=9, null=True, constraints=[SQL("DEFAULT '7'")])
        body = TextField(null=True)

        class Meta:
            table_name = 'a'
    A._meta.set_database(database)
    assert not detect_drift(database, [A])
    execute(db_url, "ALTER TABLE a ALTER COLUMN t SET DEFAULT '8'")
    assert detect_drift(database, [A]).lines == ["a.t has default '8', expected '7'"]
    database.close()


def test_every_connection_adds_the_modes_to_the_servers_own(db_url):
    """The registry's, the engine's (the lock is taken on its connection), the shadow's: each
    keeps the server's own modes and adds modelstore's."""
    server = set(query(db_url, 'SELECT @@GLOBAL.sql_mode')[0][0].split(','))
    assert server - {''}, 'the server has modes of its own to keep'
    ours = {'NO_BACKSLASH_ESCAPES', 'ANSI_QUOTES', 'STRICT_ALL_TABLES'}

    def modes(database):
        return set(database.execute_sql('SELECT @@SESSION.sql_mode').fetchone()[0].split(','))

    with modelstore.connect(db_url) as store:
        assert modes(store.database) >= server | ours
    database = open_database(db_url, mode='migrate')
    with MYSQL.run_session(database, 5):
        assert modes(database) >= server | ours
    with mysql_shadow(database) as shadow:
        assert modes(shadow) >= server | ours
    database.close()
    database.connect()  # A reconnection runs the same init command.
    assert modes(database) >= server | ours
    database.close()


NASTY = ['C:\\new\\dir', 'ends with \\', "it's \\' ", '\\%_\\_', '\\0 \\n \\Z']


def test_values_with_backslashes_round_trip_through_the_registry(db_url):
    with modelstore.connect(db_url) as store:
        models = [store.add_model(model_name='m%s' % text, base_model='b', task='t',
                                  model_path='/p%d' % i, description=text)
                  for i, text in enumerate(NASTY)]
        assert [store.get_model(m.id).description for m in models] == NASTY
        assert sorted(m.model_name for m in store.list_models()) == sorted('m' + t for t in NASTY)
        # LIKE's own escape character is a backslash there too: wildcards match themselves.
        assert [m.model_name for m in store.list_models(name_contains='\\%_\\')] == ['m\\%_\\_']
        assert [m.model_name for m in store.list_models(name_contains='S \\')] == [
            "mit's \\' "]
        assert [m.model_name for m in store.list_models(name_prefix='mC:\\')] == ['mC:\\new\\dir']
        store.add_models([dict(model_name='bulk', base_model='b', task='t', model_path='/q',
                               description=text) for text in NASTY])
        bulk = [m.description for m in store.list_models(model_name='bulk', order='oldest')]
        assert bulk == NASTY
