"""The autotuner's mid-November 2025 columns on tasks: slo, quant, parallel configs and metadata.

All nullable JSON, added in the order the autotuner's own ALTER scripts used.
"""
from peewee import *

COLUMNS = ('slo_config', 'quant_config', 'parallel_config', 'metadata')


def up(migrator, db):
    migrator.migrate(*[migrator.add_column('tasks', name, JSONField(null=True))
                       for name in COLUMNS])


def down(migrator, db):
    migrator.migrate(*[migrator.drop_column('tasks', name) for name in reversed(COLUMNS)])
