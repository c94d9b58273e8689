"""The dialect layer: every difference between the backends in modelstore/dialects/, and no
module outside it (or the shipped scripts) naming a backend's database class."""
import ast
import contextlib
import os
import re

import peewee
import pytest
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase
from playhouse.postgres_ext import PostgresqlExtDatabase

import modelstore
from modelstore.dialects import MYSQL, POSTGRESQL, SQLITE, UNKNOWN, dialect_of
from modelstore.dialects.base import like_pattern

ROOT = os.path.dirname(os.path.abspath(modelstore.__file__))

# A backend's database class: peewee's, playhouse's (the *Ext and Pooled* ones), MariaDB's.
BACKEND_NAME = re.compile(r'^(_?Pooled\w*|\w*(Sqlite|Postgresql|MySQL|MariaDB|Cockroach)\w*'
                          r'Database|MariaDB\w*)$')

# Places not converted yet, each with why: {path below modelstore/: number of references}. The
# lead converts them through modelstore.dialects and removes their line; the test below fails
# when a count is too high (a new reference) and when it is too low (shrink the list).
NOT_YET = {}


def references(path):
    """[(line, name)] of every backend class named in the module at ``path``: an import of one,
    a name or an attribute (``peewee.SqliteDatabase``) -- whatever the use (isinstance, a base
    class, a call). Text in strings (a generated script's source) is not a reference."""
    tree = ast.parse(open(path).read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name.rpartition('.')[2] for alias in node.names]
        elif isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
        else:
            continue
        found += [(node.lineno, name) for name in names if BACKEND_NAME.match(name)]
    return found


def outside_the_dialect_layer():
    """{path below modelstore/: [(line, name)]} for every module but dialects/ and migrations/."""
    found = {}
    for directory, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in ('migrations', 'dialects', '__pycache__'))
        for name in sorted(files):
            if name.endswith('.py'):
                path = os.path.join(directory, name)
                refs = references(path)
                if refs:
                    found[os.path.relpath(path, ROOT)] = refs
    return found


def test_no_module_outside_the_dialect_layer_names_a_backend_class():
    found = outside_the_dialect_layer()
    wrong = ['modelstore/%s:%d names %s' % (path, line, name)
             for path, refs in sorted(found.items()) if len(refs) > NOT_YET.get(path, 0)
             for line, name in refs]
    assert not wrong, 'ask modelstore.dialects.dialect_of(database) instead:\n' + \
        '\n'.join(wrong)


def test_the_list_of_places_not_converted_yet_only_shrinks():
    found = outside_the_dialect_layer()
    stale = ['%s: listed %d, names %d' % (path, count, len(found.get(path, ())))
             for path, count in sorted(NOT_YET.items()) if len(found.get(path, ())) < count]
    assert not stale, 'lower (or remove) these entries of NOT_YET: %s' % stale


def test_the_checker_sees_every_way_of_naming_one(tmp_path):
    path = tmp_path / 'planted.py'
    path.write_text('import peewee\n'
                    'from peewee import SqliteDatabase\n'
                    'from playhouse.pool import PooledPostgresqlDatabase as P\n'
                    'x = isinstance(db, peewee.MySQLDatabase)\n'
                    'class D(peewee.PostgresqlDatabase): pass\n'
                    "y = 'from peewee import PostgresqlDatabase'\n"  # Text: not a reference.
                    'z = SqliteExtDatabase\n')
    assert sorted(line for line, _ in references(str(path))) == [2, 3, 4, 5, 7]
    assert not BACKEND_NAME.match('Database') and not BACKEND_NAME.match('DatabaseProxy')


@pytest.mark.parametrize('database, dialect', [
    (peewee.SqliteDatabase(':memory:'), SQLITE),
    (type('Mine', (peewee.SqliteDatabase,), {})(':memory:'), SQLITE),
    (PooledSqliteDatabase(':memory:'), SQLITE),
    (peewee.PostgresqlDatabase('x'), POSTGRESQL),
    (PostgresqlExtDatabase('x'), POSTGRESQL),
    (PooledPostgresqlDatabase('x'), POSTGRESQL),
    (peewee.MySQLDatabase('x'), MYSQL),
    (peewee.Database('x'), UNKNOWN),
])
def test_dialect_of_a_database_its_class_and_a_proxy(database, dialect):
    assert dialect_of(database) is dialect
    assert dialect_of(type(database)) is dialect
    proxy = peewee.DatabaseProxy()
    proxy.initialize(database)
    assert dialect_of(proxy) is dialect


def test_capability_flags():
    assert (SQLITE.transactional_ddl, POSTGRESQL.transactional_ddl, MYSQL.transactional_ddl) == \
        (True, True, False)
    assert [d.name for d in (SQLITE, POSTGRESQL, MYSQL) if d.concurrent_indexes] == \
        ['postgresql']
    assert [d.name for d in (SQLITE, POSTGRESQL, MYSQL) if d.operation_log] == ['mysql']
    assert [d.name for d in (SQLITE, POSTGRESQL, MYSQL) if d.partial_indexes] == \
        ['sqlite', 'postgresql']
    assert POSTGRESQL.returning and not MYSQL.returning
    assert [d.final_batch_lock for d in (SQLITE, POSTGRESQL, MYSQL)] == ['', 'table', 'tables']
    assert UNKNOWN.name is None and not UNKNOWN.transactional_ddl


def test_like_escaping_and_operator():
    assert like_pattern('a_b%c\\') == '%a\\_b\\%c\\\\%'

    class M(peewee.Model):
        name = peewee.TextField()

    for database, sql in ((peewee.SqliteDatabase(':memory:'), '"t1"."name" LIKE ?'),
                          (peewee.PostgresqlDatabase('x'), '"t1"."name" ILIKE %s'),
                          (peewee.MySQLDatabase('x'), 'LOWER(`t1`.`name`) LIKE LOWER(%s)')):
        M._meta.set_database(database)
        query = M.select().where(dialect_of(database).contains(M.name, like_pattern('x')))
        text, params = query.sql()
        assert sql + " ESCAPE '\\'" in text and params == ['%x%']


def test_the_flags_are_what_the_backend_under_test_does(db_url):
    """transactional_ddl: a CREATE TABLE rolled back is gone; RETURNING and partial indexes are
    taken or refused as the flags say; the opened database's dialect is the URL's. (Run on each
    backend: MODELSTORE_TEST_DATABASE_URL.)"""
    from modelstore.shared.database import open_database
    database = open_database(db_url, mode='migrate')
    dialect = dialect_of(database)
    try:
        assert dialect.name == {'sqlite': 'sqlite', 'postgresql': 'postgresql',
                                'mysql': 'mysql', 'mariadb': 'mysql'}[db_url.split(':')[0]]
        with database.atomic() as transaction:
            database.execute_sql('CREATE TABLE flag_probe (id INTEGER PRIMARY KEY, n INTEGER)')
            transaction.rollback()
        assert ('flag_probe' in database.get_tables()) is not dialect.transactional_ddl
        if 'flag_probe' not in database.get_tables():
            database.execute_sql('CREATE TABLE flag_probe (id INTEGER PRIMARY KEY, n INTEGER)')
        for flag, sql in (('returning', 'INSERT INTO flag_probe (id, n) VALUES (1, 1) '
                                        'RETURNING id'),
                          ('partial_indexes', 'CREATE INDEX flag_probe_n ON flag_probe (n) '
                                              'WHERE n > 0')):
            try:
                database.execute_sql(sql)
                worked = True
            except peewee.DatabaseError:
                worked = False
                if database.in_transaction():
                    database.rollback()
            # (MariaDB 10.5+ takes INSERT ... RETURNING, MySQL does not: the flag is what every
            # server of the backend does.)
            if not (dialect is MYSQL and flag == 'returning'):
                assert worked is getattr(dialect, flag), flag
            elif dialect.returning:
                assert worked
    finally:
        with contextlib.suppress(Exception):
            database.execute_sql('DROP TABLE flag_probe')
        database.close()


def test_the_session_class_is_made_once_per_class_with_the_dialects_mixin():
    for dialect, cls in ((SQLITE, peewee.SqliteDatabase), (MYSQL, peewee.MySQLDatabase),
                         (SQLITE, PooledSqliteDatabase)):
        made = dialect.session_class(cls)
        assert made is dialect.session_class(cls) and made.__name__ == cls.__name__
        assert issubclass(made, cls) and issubclass(made, dialect.session_mixin)
        assert dialect_of(made) is dialect
    assert POSTGRESQL.session_class(peewee.PostgresqlDatabase) is peewee.PostgresqlDatabase
