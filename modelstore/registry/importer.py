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
soft delete) are skipped unless asked for. A row that cannot be imported is skipped with its
source id and the reason, and the rest import: a value the registry's validation refuses, a
timestamp outside the years 1 to 9999 once converted to local time (``9999-12-31`` east of UTC,
year 1 west of it, PostgreSQL's year 20000), text that is not UTF-8 (SQLite stores any bytes),
a ``config`` that is not a JSON object or is nested too deep, an id that several rows share (the
import records a row by its id, so none of them is imported until each has its own), or a row
the database refuses. Everything imported is written in one transaction with its records, so a
crash imports all of a run or none of it; ``models`` itself is only read.
"""
import collections
import datetime
import json

from peewee import Cast, DataError, IntegrityError, Table

from ..dialects import POSTGRESQL, SQLITE, dialect_of
from ..exceptions import ModelStoreError, ValidationError, one_line
from ..shared.database import write_transaction

__all__ = ['SOURCE', 'Plan', 'plan_modelforge', 'import_modelforge']

SOURCE = 'modelforge'
TABLE = 'models'
REQUIRED = ('id', 'name', 'base_model', 'task', 'path')
OPTIONAL = ('strategy', 'provider', 'created_at', 'updated_at', 'config', 'is_active')
ID_LIMIT = 255  # model_imports.source_id is a VARCHAR(255).


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


def _text(value, column):
    """A column read as text (bytes from SQLite, see _source_rows) as str; other values as
    they are."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode('utf-8')
        except UnicodeDecodeError as exc:
            raise ValidationError(column, 'is not UTF-8 text (byte %d of %s)'
                                  % (exc.start, _shown(value))) from None
    return value


def _shown(value):
    """A source value for a report: undecodable bytes as \\x.., never an exception."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode('utf-8', 'backslashreplace')
    return value if value is None or isinstance(value, str) else str(value)


def _local(value, column):
    """A SQLAlchemy ``datetime.utcnow()`` (naive UTC; text on SQLite) as naive local time."""
    value = _text(value, column)
    if value is None or value == '':
        return None
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(column, 'is not a timestamp in the years 1 to 9999: %r'
                                  % value[:64]) from None
    if not isinstance(value, datetime.datetime):
        raise ValidationError(column, 'is not a timestamp: %r' % (value,))
    given = value.isoformat(sep=' ') + (' UTC' if value.tzinfo is None else '')
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    try:
        return value.astimezone().replace(tzinfo=None)
    except (OverflowError, ValueError, OSError):
        raise ValidationError(column, '%s is outside the years 1 to 9999 once converted to '
                                      'local time' % given) from None


def _config(value):
    value = _text(value, 'config')
    if value is None or value == '':
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValidationError('config', 'is not JSON: %s' % exc) from None
        except RecursionError:
            raise ValidationError('config', 'is JSON nested too deep to read') from None
    if not isinstance(value, dict):
        raise ValidationError('config', 'is not a JSON object, so it cannot be the '
                              'hyperparameters: %s' % type(value).__name__)
    return value


def _as_text(db, column, name):
    """Read ``column`` so that no value can fail the whole fetch: as bytes on SQLite (which
    holds any bytes in a TEXT column, and whose driver raises on those that are not UTF-8),
    as text on PostgreSQL (whose driver raises on a timestamp past the year 9999)."""
    if dialect_of(db) is SQLITE:
        return Cast(column, 'BLOB').alias(name)
    if dialect_of(db) is POSTGRESQL:
        return Cast(column, 'TEXT').alias(name)
    return column.alias(name)


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
    columns = [source.c[c] if c == 'is_active' else _as_text(db, source.c[c], c) for c in names]
    order = [source.c[c] for c in ('created_at', 'id') if c in have]
    return list(source.select(*columns).order_by(*order).dicts())


def _source_id(value):
    """A row's id as model_imports records it."""
    value = _text(value, 'id')
    if value is None:
        raise ValidationError('id', 'is NULL')
    value = str(value)
    if '\x00' in value or len(value) > ID_LIMIT:
        raise ValidationError('id', 'cannot be recorded in model_imports (at most %d '
                                    'characters, no NUL): %r' % (ID_LIMIT, value[:64]))
    return value


# The registry's fields that a `models` column of another name fills.
_FROM = {'model_name': 'name', 'model_path': 'path', 'creation_date': 'created_at',
         'hyperparameters': 'config'}


def _reason(error):
    """Why a row is skipped, naming the `models` column (and the registry field it fills)."""
    if error.field in _FROM:
        return '%s (as %s): %s' % (_FROM[error.field], error.field, error.message)
    return str(error)


def plan_modelforge(store, include_inactive=False):
    """What ``import_modelforge`` would import and skip; reads only."""
    Import = store.ModelImport
    done = {r[0] for r in Import.select(Import.source_id).where(Import.source == SOURCE)
            .tuples()}
    plan = Plan()
    now = datetime.datetime.now()
    rows = _source_rows(store)
    held = collections.Counter(_shown(row['id']) for row in rows)
    for row in rows:
        shown_id, name = _shown(row['id']), _shown(row['name'])
        if shown_id in done:
            plan.skipped.append((shown_id, name, 'imported already'))
            continue
        if held[shown_id] > 1:
            plan.skipped.append((shown_id, name, 'its id is held by %d rows of `models`: the '
                                 'import records a row by its id, so it imports none of them '
                                 'until each has its own' % held[shown_id]))
            continue
        if row.get('is_active') in (0, False, '0', 'false') and not include_inactive:
            plan.skipped.append((shown_id, name, 'inactive (deleted in ModelForge); '
                                 '--include-inactive imports it'))
            continue
        try:
            source_id = _source_id(row['id'])
            fields = dict(model_name=_text(row['name'], 'name'),
                          base_model=_text(row['base_model'], 'base_model'),
                          task=_text(row['task'], 'task'), model_path=_text(row['path'], 'path'),
                          creation_date=_local(row.get('created_at'), 'created_at') or now,
                          updated_at=_local(row.get('updated_at'), 'updated_at') or now,
                          strategy=_text(row.get('strategy'), 'strategy'),
                          provider=_text(row.get('provider'), 'provider'),
                          hyperparameters=_config(row.get('config')),
                          description='imported from ModelForge (models.id %s)' % source_id)
            store.rules.check(fields)
        except ValidationError as exc:
            plan.skipped.append((shown_id, name, _reason(exc)))
            continue
        plan.rows.append((source_id, fields))
    return plan


def import_modelforge(store, include_inactive=False):
    """Import what ``plan_modelforge`` plans, in one transaction; returns the plan and the ids
    of the models made, in its order. A row the database refuses is skipped (its savepoint
    rolled back) and moved to ``plan.skipped`` with the reason."""
    Import = store.ModelImport
    db = store.database
    ids = []
    with write_transaction(db):
        # Planned inside the write lock: another import may run at the same time.
        plan = plan_modelforge(store, include_inactive)
        imported = []
        for source_id, fields in plan.rows:
            try:
                with db.atomic():  # A savepoint: a refused row leaves nothing behind.
                    model = store.add_model(**fields)
                    Import.insert(source=SOURCE, source_id=source_id, model_id=model.id,
                                  imported_at=datetime.datetime.now()).execute()
            except (ValidationError, IntegrityError, DataError) as exc:
                plan.skipped.append((source_id, fields['model_name'],
                                     'refused by the database: %s' % one_line(exc)))
                continue
            imported.append((source_id, fields))
            ids.append(model.id)
        plan.rows = imported
    return plan, ids
