"""Initial schema: fine_tuned_models as ModelForge v1.0, tasks as the autotuner's 2025-10-24 state.

Frozen copies of the tables as they were then (18 columns for tasks), deliberately independent
of modelstore.models. The indexes keep the autotuner's names so a fresh database and an adopted
legacy file look the same. The autotuner's FOREIGN KEY (best_experiment_id) REFERENCES
experiments is not created: modelstore does not own `experiments`.
"""
from peewee import *

from modelstore.fields import AutoIncrementField


def _tables(db):
    class FineTunedModel(Model):
        id = AutoIncrementField()
        model_name = TextField()
        base_model = TextField()
        task = TextField()
        description = TextField(null=True)
        creation_date = TextField()
        model_path = TextField()

        class Meta:
            database = db
            table_name = 'fine_tuned_models'

    class Task(Model):
        task_name = CharField()
        description = TextField(null=True)
        status = CharField(max_length=9, null=True)
        model_config = JSONField()
        base_runtime = CharField()
        runtime_image_tag = CharField(null=True)
        parameters = JSONField()
        optimization_config = JSONField()
        benchmark_config = JSONField()
        deployment_mode = CharField(null=True)
        total_experiments = IntegerField(null=True)
        successful_experiments = IntegerField(null=True)
        best_experiment_id = IntegerField(null=True)
        created_at = DateTimeField(null=True)
        started_at = DateTimeField(null=True)
        completed_at = DateTimeField(null=True)
        elapsed_time = FloatField(null=True)

        class Meta:
            database = db
            table_name = 'tasks'

    return [FineTunedModel, Task]


def up(migrator, db):
    # safe=False: an existing table is an error here, never silently kept.
    db.create_tables(_tables(db), safe=False)
    migrator.migrate(
        migrator.add_index('tasks', ('id',), name='ix_tasks_id'),
        migrator.add_index('tasks', ('status',), name='ix_tasks_status'),
        migrator.add_index('tasks', ('task_name',), unique=True, name='ix_tasks_task_name'),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_table('tasks'),
        migrator.drop_table('fine_tuned_models'),
    )
