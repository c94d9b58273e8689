"""Initial schema: fine_tuned_models as ModelForge v1.0, tasks as the autotuner's 2025-10-24 state.

Frozen copies of the tables as they were then (18 columns for tasks), deliberately independent
of modelstore.models. The indexes keep the autotuner's names so a fresh database and an adopted
legacy file look the same. The autotuner's FOREIGN KEY (best_experiment_id) REFERENCES
experiments is not created: modelstore does not own `experiments`.

On MySQL and MariaDB the text columns that are indexed later (0005, 0007, 0009) are VARCHAR(255)
(creation_date VARCHAR(64)): a TEXT column cannot be indexed there without a prefix length, and a
prefix index can neither order by the whole value nor keep it unique.
"""
from peewee import *

from modelstore.fields import AutoIncrementField


def _key_text(db, max_length=255):
    """TEXT; VARCHAR on MySQL/MariaDB, where TEXT cannot be indexed."""
    return CharField(max_length=max_length) if isinstance(db, MySQLDatabase) else TextField()


def _tables(db):
    class FineTunedModel(Model):
        id = AutoIncrementField()
        model_name = _key_text(db)
        base_model = _key_text(db)
        task = _key_text(db)
        description = TextField(null=True)
        creation_date = _key_text(db, 64)
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
        elapsed_time = DoubleField(null=True)

        class Meta:
            database = db
            table_name = 'tasks'

    return [FineTunedModel, Task]


def up(migrator, db):
    # A legacy file may hold one of the two tables already (a ModelForge file has only
    # fine_tuned_models, an autotuner file only tasks). modelstore runs this script over such a
    # file only after adoption has proved that the existing table holds this script's effect
    # (or a later state); that table is kept and only the missing one is created. Everything
    # else is safe=False: a table that appears meanwhile is an error, never silently kept.
    existing = set(db.get_tables())
    db.create_tables([t for t in _tables(db) if t._meta.table_name not in existing], safe=False)
    if 'tasks' not in existing:
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
