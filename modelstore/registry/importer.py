"""``modelstore import modelforge``: ModelForge v2's ``models`` table into fine_tuned_models.

ModelForge's current releases write new models through SQLAlchemy to a table ``models`` beside
the legacy ``fine_tuned_models`` (../shared/reference/legacy-databases.md). Each of its rows
becomes a registry model:

========================  ===================================================================
``models``                fine_tuned_models
========================  ===================================================================
name, base_model, task    model_name, base_model, task
path                      model_path
created_at (UTC)          creation_date (local time, ISO 'T' text, as ModelForge v1 wrote it)
updated_at (UTC)          updated_at (local time)
strategy, provider        strategy, provider
config (JSON text)        hyperparameters (the training configuration)
id                        recorded in model_imports (0011), so no row is imported twice
========================  ===================================================================

``compute_profile`` has no column and is not copied. Rows with ``is_active`` false (ModelForge's
soft delete) are skipped unless asked for. A row the registry's validation refuses is skipped
with the reason. Everything imported is written in one transaction with its records, so a
crash imports all of a run or none of it; ``models`` itself is only read.
"""
import datetime
import json

from peewee import Table

from ..exceptions import ModelStoreError, ValidationError
from ..shared.database import write_transaction
from .validate import MODEL_FIELDS, check_fields

__all__ = ['SOURCE', 'Plan', 'plan_modelforge', 'import_modelforge']

SOURCE = 'modelforge'
TABLE = 'models'
REQUIRED = ('id', 'name', 'base_model', 'task', 'path')
OPTIONAL = ('strategy', 'provider', 'created_at', 'updated_at', 'config', 'is_active')


class Plan:
    """What an import would do: ``rows`` to import ((source id, add_model fields)) and
    ``skipped`` ((source id, name, why))."""

    def __init__(self):
        self.rows = []
        self.skipped = []

    def as_dict(self):
        return {'import': [dict(fields, source_id=source_id,
                                creation_date=fields['creation_date'].isoformat(),
                                updated_at=fields['updated_at'].isoformat())
                           for source_id, fields in self.rows],
                'skipped': [{'source_id': s, 'name': n, 'why': w} for s, n, w in self.skipped]}


def _local(value, column):
    """A SQLAlchemy ``datetime.utcnow()`` (naive UTC; text on SQLite) as naive local time."""
    if value is None or value == '':
        return None
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(column, 'is not a timestamp: %r' % value) from None
    if not isinstance(value, datetime.datetime):
        raise ValidationError(column, 'is not a timestamp: %r' % (value,))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone().replace(tzinfo=None)


def _config(value):
    if value is None or value == '':
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValidationError('config', 'is not JSON: %s' % exc) from None
    if not isinstance(value, dict):
        raise ValidationError('config', 'is not a JSON object, so it cannot be the '
                              'hyperparameters: %s' % type(value).__name__)
    return value


def _source_rows(store):
    db = store.database
    if TABLE not in db.get_tables():
        raise ModelStoreError('%s holds no ModelForge `models` table: nothing to import'
                              % store.url)
    have = {c.name for c in db.get_columns(TABLE)}
    missing = [c for c in REQUIRED if c not in have]
    if missing:
        raise ModelStoreError('the `models` table has no %s column%s: it is not ModelForge\'s'
                              % (', '.join(missing), 's' if len(missing) > 1 else ''))
    names = list(REQUIRED) + [c for c in OPTIONAL if c in have]
    source = Table(TABLE).bind(db)
    order = [source.c[c] for c in ('created_at', 'id') if c in have]
    return list(source.select(*[source.c[c] for c in names]).order_by(*order).dicts())


def plan_modelforge(store, include_inactive=False):
    """What ``import_modelforge`` would import and skip; reads only."""
    Import = store.ModelImport
    done = {r[0] for r in Import.select(Import.source_id).where(Import.source == SOURCE)
            .tuples()}
    plan = Plan()
    now = datetime.datetime.now()
    for row in _source_rows(store):
        source_id, name = str(row['id']), row['name']
        if source_id in done:
            plan.skipped.append((source_id, name, 'imported already'))
            continue
        if row.get('is_active') in (0, False, '0', 'false') and not include_inactive:
            plan.skipped.append((source_id, name, 'inactive (deleted in ModelForge); '
                                 '--include-inactive imports it'))
            continue
        try:
            fields = dict(model_name=name, base_model=row['base_model'], task=row['task'],
                          model_path=row['path'],
                          creation_date=_local(row.get('created_at'), 'created_at') or now,
                          updated_at=_local(row.get('updated_at'), 'updated_at') or now,
                          strategy=row.get('strategy'), provider=row.get('provider'),
                          hyperparameters=_config(row.get('config')),
                          description='imported from ModelForge (models.id %s)' % source_id)
            check_fields(MODEL_FIELDS, fields)
        except ValidationError as exc:
            plan.skipped.append((source_id, name, str(exc)))
            continue
        plan.rows.append((source_id, fields))
    return plan


def import_modelforge(store, include_inactive=False):
    """Import what ``plan_modelforge`` plans, in one transaction; returns the plan and the ids
    of the models made, in its order."""
    Import = store.ModelImport
    ids = []
    with write_transaction(store.database):
        # Planned inside the write lock: another import may run at the same time.
        plan = plan_modelforge(store, include_inactive)
        for source_id, fields in plan.rows:
            model = store.add_model(**fields)
            Import.insert(source=SOURCE, source_id=source_id, model_id=model.id,
                          imported_at=datetime.datetime.now()).execute()
            ids.append(model.id)
    return plan, ids

