"""The autotuner's 2025-11-18 columns on tasks: ClusterBaseModel and ClusterServingRuntime.

The two configs hold a preset (`{"preset": name}`) or a custom spec (`{"name": ..., "spec": ...}`);
the two `created_*` columns name the resource a task created. All nullable.
"""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column('tasks', 'clusterbasemodel_config', JSONField(null=True)),
        migrator.add_column('tasks', 'clusterservingruntime_config', JSONField(null=True)),
        migrator.add_column('tasks', 'created_clusterbasemodel', CharField(null=True)),
        migrator.add_column('tasks', 'created_clusterservingruntime', CharField(null=True)),
    )


def down(migrator, db):
    migrator.migrate(*[migrator.drop_column('tasks', name) for name in (
        'created_clusterservingruntime', 'created_clusterbasemodel',
        'clusterservingruntime_config', 'clusterbasemodel_config')])
