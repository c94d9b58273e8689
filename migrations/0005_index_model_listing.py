"""An index for listing models: by task and custom flag, newest first, filtered by a name prefix.

``list_models(task=..., is_custom_base_model=..., name_prefix=..., limit=50)`` walks this index
in ``creation_date`` order and tests the name prefix on the index entry itself, so a page costs
about as many index entries as it skips plus 50 row reads, at any table size.

On PostgreSQL the index is built with ``CREATE INDEX CONCURRENTLY``, so pipelines keep writing
while it builds. That cannot run inside a transaction, hence ``atomic = False``: the build and
the history row cannot commit together. While it builds, the history row says ``running``; a
run that dies leaves it so, and the next ``migrate`` runs the script again (or adopts the index
if the build had finished). If it dies during the build, PostgreSQL leaves an INVALID index
under the name; modelstore ignores invalid indexes when it inspects a table, and this script
drops one before building. (A dry run is a transaction: it shows the plain
``CREATE INDEX``.) On SQLite the build holds the write lock like any script.
"""
from peewee import PostgresqlDatabase

atomic = False

NAME = 'ix_fine_tuned_models_listing'
TABLE = 'fine_tuned_models'
COLUMNS = ('task', 'is_custom_base_model', 'creation_date', 'model_name')


def up(migrator, db):
    if isinstance(db, PostgresqlDatabase) and not db.in_transaction():
        invalid = db.execute_sql(
            'SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid '
            'WHERE c.relname = %s AND NOT i.indisvalid', (NAME,)).fetchone()
        if invalid:
            db.execute_sql('DROP INDEX CONCURRENTLY IF EXISTS "%s"' % NAME)
        # IF NOT EXISTS: a build that completed in a run killed before its history row.
        db.execute_sql('CREATE INDEX CONCURRENTLY IF NOT EXISTS "%s" ON "%s" (%s)' % (
            NAME, TABLE, ', '.join('"%s"' % c for c in COLUMNS)))
    else:
        migrator.migrate(migrator.add_index(TABLE, COLUMNS, False, name=NAME))


def down(migrator, db):
    migrator.migrate(migrator.drop_index(TABLE, NAME))
