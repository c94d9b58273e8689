"""The archived models, indexed (issue 30): count_models() counts the table less these.

`count_models()` counts the models that are not archived. Without an index on archived_at that
is a read of every row (111 ms at 1M models on SQLite, where a bare COUNT(*) takes 3.7 ms); with
this one it is the table's count less the archived entries, each read from an index.

Partial -- archived rows only (archived_at IS NOT NULL) -- on SQLite and PostgreSQL: archived
models are few, so the index is small, and building it on SQLite is one read of the table under
the write lock that writes nothing for a registry without archived models (as 0009's). MySQL and
MariaDB have no partial indexes: there it is a plain index on archived_at, and
`archived_at IS NOT NULL` reads its non-NULL range.

Built CONCURRENTLY on PostgreSQL (atomic = False): writers keep writing while it builds; a build
that died leaves an INVALID index, dropped and built again. An expand script: an index, which
the previous release never notices.

Written by hand: `new --auto` does not generate partial indexes.
"""
from peewee import MySQLDatabase, PostgresqlDatabase


phase = 'expand'  # additive: the previous release keeps working beside it

atomic = False

TABLE = 'fine_tuned_models'
NAME = 'fine_tuned_models_archived_at'


def _concurrently(db):
    return 'CONCURRENTLY ' if isinstance(db, PostgresqlDatabase) and not db.in_transaction() \
        else ''


def up(migrator, db):
    if isinstance(db, MySQLDatabase):
        if NAME not in [index.name for index in db.get_indexes(TABLE)]:
            migrator.migrate(migrator.add_index(TABLE, ('archived_at',), False, name=NAME))
        return
    how = _concurrently(db)
    if how:
        invalid = db.execute_sql(
            'SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid '
            'WHERE c.relname = %s AND NOT i.indisvalid', (NAME,)).fetchone()
        if invalid:
            db.execute_sql('DROP INDEX CONCURRENTLY IF EXISTS "%s"' % NAME)
    db.execute_sql('CREATE INDEX %sIF NOT EXISTS "%s" ON "%s" ("archived_at") '
                   'WHERE "archived_at" IS NOT NULL' % (how, NAME, TABLE))


def down(migrator, db):
    if isinstance(db, MySQLDatabase):
        if NAME in [index.name for index in db.get_indexes(TABLE)]:
            migrator.migrate(migrator.drop_index(TABLE, NAME))
        return
    db.execute_sql('DROP INDEX %sIF EXISTS "%s"' % (_concurrently(db), NAME))
