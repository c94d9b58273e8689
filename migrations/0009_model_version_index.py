"""Model versions are unique per name: a partial unique index on (model_name, version).

Partial -- only numbered rows (version IS NOT NULL) -- for two reasons. On a legacy table every
row is still unnumbered here, so the build writes nothing: on SQLite it is one read of the table
under the write lock (~0.13 s at 1M rows on the reference machine), where a full index took
0.86 s; 0010 then fills it batch by batch. And a row 0010 has not reached yet must not collide.
Queries by name say `version IS NOT NULL` (or `version = ?`), so they use it.

Built CONCURRENTLY on PostgreSQL (atomic = False): writers keep writing while it builds; a build
that died leaves an INVALID index, dropped and built again.

MySQL and MariaDB have no partial indexes, and need none here: their unique indexes never
compare NULLs, so a plain unique index on (model_name, version) lets any number of unnumbered
rows share a name, exactly as the partial one does.

Written by hand: `new --auto` does not generate partial indexes.
"""
from peewee import MySQLDatabase, PostgresqlDatabase


atomic = False

TABLE = 'fine_tuned_models'
NAME = 'fine_tuned_models_model_name_version'


def _concurrently(db):
    return 'CONCURRENTLY ' if isinstance(db, PostgresqlDatabase) and not db.in_transaction() \
        else ''


def up(migrator, db):
    if isinstance(db, MySQLDatabase):
        if NAME not in [index.name for index in db.get_indexes(TABLE)]:
            migrator.migrate(migrator.add_index(TABLE, ('model_name', 'version'), True,
                                                name=NAME))
        return
    how = _concurrently(db)
    if how:
        invalid = db.execute_sql(
            'SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid '
            'WHERE c.relname = %s AND NOT i.indisvalid', (NAME,)).fetchone()
        if invalid:
            db.execute_sql('DROP INDEX CONCURRENTLY IF EXISTS "%s"' % NAME)
    db.execute_sql('CREATE UNIQUE INDEX %sIF NOT EXISTS "%s" ON "%s" ("model_name", "version") '
                   'WHERE "version" IS NOT NULL' % (how, NAME, TABLE))


def down(migrator, db):
    if isinstance(db, MySQLDatabase):
        if NAME in [index.name for index in db.get_indexes(TABLE)]:
            migrator.migrate(migrator.drop_index(TABLE, NAME))
        return
    db.execute_sql('DROP INDEX %sIF EXISTS "%s"' % (_concurrently(db), NAME))
