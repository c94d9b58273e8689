"""Validation rules for the registry API: each field's checker and the tables of fields (the
JSON columns' rules are in modelstore.registry.documents).

A checker takes the value and returns what to store, or raises ValidationError naming the field
and the problem. Nothing here touches the database.
"""
import datetime
import math

from ..exceptions import ValidationError
from ..fields import IsoTimestampField, parse_timestamp
from ..shared.models import TaskStatus
from .documents import (CLUSTER_BASE_MODEL_PRESETS, CLUSTER_SERVING_RUNTIME_PRESETS,
                        base_model_spec, cluster_config, json_object, serving_runtime_spec,
                        type_name)
from .likes import like_pattern

__all__ = ['Field', 'MODEL_FIELDS', 'TASK_FIELDS', 'check_fields', 'check_id', 'check_status',
           'check_text', 'check_flag', 'check_page', 'bulk_model_row', 'inline_model_row',
           'BULK_MODEL_COLUMNS']

NAME_LIMIT = 255            # VARCHAR(255) on every backend.
PATH_LIMIT = 4096           # PATH_MAX on Linux.
TEXT_LIMIT = 64 * 1024      # Descriptions.


def text(limit, required=False):
    def check(name, value):
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValidationError(name, 'must be a string, got %s' % type_name(value))
        if required and not value.strip():
            raise ValidationError(name, 'must not be empty')
        if '\x00' in value:
            raise ValidationError(name, 'must not contain NUL characters')
        try:
            value.encode('utf-8')
        except UnicodeEncodeError:
            raise ValidationError(name, 'is not valid UTF-8 text (it holds unpaired surrogates, '
                                        'as decoding non-UTF-8 bytes leaves)') from None
        if len(value) > limit:
            raise ValidationError(name, 'is %d characters long; the limit is %d'
                                  % (len(value), limit))
        return value
    return check


def boolean(name, value):
    if not isinstance(value, bool):
        raise ValidationError(name, 'must be True or False, got %s' % type_name(value))
    return value


def count(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, 'must be an integer, got %s' % type_name(value))
    if value < 0 or value > 2 ** 63 - 1:
        raise ValidationError(name, 'must be between 0 and 2**63-1, got %d' % value)
    return value


def seconds(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(name, 'must be a number of seconds, got %s' % type_name(value))
    if not math.isfinite(value) or value < 0:
        raise ValidationError(name, 'must be a finite, non-negative number, got %r' % value)
    return float(value)


def metrics_object(name, value):
    """Training metrics: a JSON object of name -> a finite number or a list of them (a loss
    curve, one value per step)."""
    value = json_object(name, value)
    for key, metric in (value or {}).items():
        where = '%s[%r]' % (name, key)
        points = metric if isinstance(metric, list) else [metric]
        for i, point in enumerate(points):
            if isinstance(point, bool) or not isinstance(point, (int, float)):
                raise ValidationError(where if points is not metric else '%s[%d]' % (where, i),
                                      'must be a number or a list of numbers, got %s'
                                      % type_name(point))
    return value


def moment(zone):
    """A timestamp checker; aware values (and ISO text with an offset) are converted to the
    naive time the column stores: ``'local'`` (creation_date, as ModelForge writes it) or
    ``'utc'`` (task timestamps). A value that falls outside year 1..9999 once converted is
    refused here, not left to overflow in the driver."""
    def check(name, value):
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = parse_timestamp(value)
            except ValueError:
                raise ValidationError(name, 'is not an ISO-8601 timestamp: %r'
                                      % value[:64]) from None
        elif not isinstance(value, datetime.datetime):
            raise ValidationError(name, 'must be a datetime or ISO-8601 text, got %s'
                                  % type_name(value))
        if value.tzinfo is None:
            return value
        try:
            if zone == 'utc':
                return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return value.astimezone().replace(tzinfo=None)
        except (OverflowError, ValueError):
            raise ValidationError(name, '%s is outside the years 1 to 9999 once converted to %s'
                                  % (value.isoformat(), 'UTC' if zone == 'utc'
                                     else 'local time')) from None
    return check


def check_status(name, value):
    """A TaskStatus from a member, its NAME or its value."""
    if value is None:
        return None
    if isinstance(value, TaskStatus):
        return value
    if isinstance(value, str):
        for member in TaskStatus:
            if value in (member.name, member.value):
                return member
    raise ValidationError(name, 'unknown status %r; use one of %s'
                          % (value, ', '.join(m.name for m in TaskStatus)))


class Field:
    """One API field: its checker, whether it is required, and its default."""

    def __init__(self, check, required=False, default=None, keep=False):
        self.check = check
        self.required = required
        self.default = default
        self.keep = keep  # An update may change it but not set it to None (status).


MODEL_FIELDS = {
    'model_name': Field(text(NAME_LIMIT, True), required=True),
    'base_model': Field(text(NAME_LIMIT, True), required=True),
    'task': Field(text(NAME_LIMIT, True), required=True),
    'model_path': Field(text(PATH_LIMIT, True), required=True),
    'description': Field(text(TEXT_LIMIT), default=''),
    'creation_date': Field(moment('local'), default=datetime.datetime.now),
    'is_custom_base_model': Field(boolean, default=False),
    # 0006_training_metadata.
    'training_seconds': Field(seconds),
    'peak_vram_bytes': Field(count),
    'dataset_rows': Field(count),
    'dataset_bytes': Field(count),
    'metrics': Field(metrics_object),
    'hyperparameters': Field(json_object),
    'strategy': Field(text(NAME_LIMIT)),
    'provider': Field(text(NAME_LIMIT)),
    'updated_at': Field(moment('local'), default=datetime.datetime.now, keep=True),
}

TASK_FIELDS = {
    'task_name': Field(text(NAME_LIMIT, True), required=True),
    'base_runtime': Field(text(NAME_LIMIT, True), required=True),
    'model_config': Field(json_object, required=True),
    'parameters': Field(json_object, required=True),
    'optimization_config': Field(json_object, required=True),
    'benchmark_config': Field(json_object, required=True),
    'description': Field(text(TEXT_LIMIT)),
    'status': Field(check_status, default=TaskStatus.PENDING, keep=True),
    'runtime_image_tag': Field(text(NAME_LIMIT)),
    # The autotuner's defaults, which its API's TaskResponse relies on (never NULL there).
    'deployment_mode': Field(text(NAME_LIMIT), default='docker', keep=True),
    'slo_config': Field(json_object),
    'quant_config': Field(json_object),
    'parallel_config': Field(json_object),
    'clusterbasemodel_config': Field(cluster_config(CLUSTER_BASE_MODEL_PRESETS,
                                                     base_model_spec)),
    'clusterservingruntime_config': Field(cluster_config(CLUSTER_SERVING_RUNTIME_PRESETS,
                                                          serving_runtime_spec)),
    'created_clusterbasemodel': Field(text(NAME_LIMIT)),
    'created_clusterservingruntime': Field(text(NAME_LIMIT)),
    'task_metadata': Field(json_object),
    'total_experiments': Field(count, default=0, keep=True),
    'successful_experiments': Field(count, default=0, keep=True),
    'best_experiment_id': Field(count),
    # Naive UTC, as the autotuner's SQLAlchemy model writes it.
    'created_at': Field(moment('utc'), default=lambda: datetime.datetime.now(
        datetime.timezone.utc).replace(tzinfo=None), keep=True),
    'started_at': Field(moment('utc')),
    'completed_at': Field(moment('utc')),
    'elapsed_time': Field(seconds),
}

_ALIASES = {'metadata': 'task_metadata'}


def check_fields(spec, values, *, partial=False):
    """Validate ``values`` against ``spec``; fill defaults unless ``partial`` (an update)."""
    values = dict(values)
    for alias, real in _ALIASES.items():
        if alias in values and alias not in spec and real in spec:
            if real in values:
                raise ValidationError(alias, 'give %s or %s, not both' % (alias, real))
            values[real] = values.pop(alias)
    unknown = sorted(set(values) - set(spec))
    if spec is MODEL_FIELDS and 'version' in values:
        raise ValidationError('version', 'is numbered by the database: a model gets the next '
                              'version of its model_name; it cannot be given')
    if unknown:
        raise ValidationError(None, 'unknown field%s %s; known fields: %s' % (
            's' if len(unknown) > 1 else '', ', '.join(repr(u) for u in unknown),
            ', '.join(spec)))
    out = {}
    for name, rule in spec.items():
        if name not in values:
            if partial:
                continue
            if rule.required:
                raise ValidationError(name, 'is required')
            out[name] = rule.default() if callable(rule.default) else rule.default
            continue
        value = rule.check(name, values[name])
        if value is None:
            if rule.required:
                raise ValidationError(name, 'is required and must not be None')
            if partial and rule.keep:
                raise ValidationError(name, 'cannot be cleared (None); a row always has one: '
                                            'give a value')
            if not partial and rule.default is not None:
                value = rule.default() if callable(rule.default) else rule.default
        out[name] = value
    return out


check_text = text(NAME_LIMIT, required=True)  # A filter argument: a non-empty string.
check_flag = boolean


def check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValidationError(name, 'must be one of %s, got %r' % (', '.join(map(repr, choices)),
                                                                  value))
    return value


def _bound(name, value):
    """A created_after/created_before bound as the creation_date text it compares with.

    Whole seconds are written without a fraction: the stored text of a row created on that
    second ('...T14:03:11', as isoformat() writes it, or '...T14:03:11.000000') then compares
    at or after the bound, as the time it holds does.
    """
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        value = datetime.datetime.combine(value, datetime.time())
    value = moment('local')(name, value)
    return value.isoformat(timespec='microseconds' if value.microsecond else 'seconds')


def listing_filters(*, task=None, is_custom_base_model=None, name_prefix=None, base_model=None,
                    model_name=None, name_contains=None, created_after=None,
                    created_before=None):
    """list_models' and count_models' filters, checked, as the listing query takes them."""
    values = {}
    for name, value in (('task', task), ('base_model', base_model),
                        ('model_name', model_name), ('name_prefix', name_prefix)):
        if value is not None:
            values[name] = check_text(name, value)
    if is_custom_base_model is not None:
        values['is_custom_base_model'] = check_flag('is_custom_base_model',
                                                    is_custom_base_model)
    if name_contains is not None:
        values['name_contains'] = like_pattern(check_text('name_contains', name_contains))
    for name, value in (('created_after', created_after), ('created_before', created_before)):
        if value is not None:
            values[name] = _bound(name, value)
    if 'created_after' in values and 'created_before' in values and \
            values['created_after'] > values['created_before']:
        raise ValidationError('created_before', 'is earlier than created_after (%s < %s)'
                              % (values['created_before'], values['created_after']))
    return values


MAX_PAGE = 2 ** 62  # The largest limit or offset: within every backend's 64-bit integers.


def check_page(name, value, minimum):
    """``limit`` or ``offset``: a whole number from ``minimum`` to MAX_PAGE."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, 'must be an integer, got %s' % type_name(value))
    if value < minimum or value > MAX_PAGE:
        raise ValidationError(name, 'must be from %d to %d, got %d' % (minimum, MAX_PAGE, value))
    return value


# The first eight are what a row without training metadata fills (the inline check's rows stop
# there; the optional columns are then left NULL, as their defaults).
BULK_MODEL_COLUMNS = ('model_name', 'base_model', 'task', 'description', 'creation_date',
                      'model_path', 'is_custom_base_model', 'updated_at', 'training_seconds',
                      'peak_vram_bytes', 'dataset_rows', 'dataset_bytes', 'metrics',
                      'hyperparameters', 'strategy', 'provider')
# The columns the inline check of add_models covers; a row with any other field is checked by
# check_fields.
_INLINE_KEYS = frozenset(('model_name', 'base_model', 'task', 'model_path', 'description',
                          'creation_date', 'is_custom_base_model'))


def bulk_model_row(index, values, now, now_text):
    """One add_models row as a tuple in BULK_MODEL_COLUMNS order, stored values.

    The common case -- ASCII text within the limits, a bool flag, a naive datetime or no date --
    is checked inline (``inline_model_row``); anything else goes through check_fields, which
    accepts exactly what add_model accepts and names the problem. Errors name the row's index.
    """
    row = inline_model_row(values, now, now_text)
    if row is not None:
        return row
    if not isinstance(values, dict):
        raise ValidationError('models[%d]' % index, 'must be a dict of add_model fields, got %s'
                              % type_name(values))
    try:
        checked = check_fields(MODEL_FIELDS, values)
    except ValidationError as exc:
        raise ValidationError('models[%d].%s' % (index, exc.field) if exc.field else
                              'models[%d]' % index, exc.message) from None
    for stamp in ('creation_date', 'updated_at'):
        if values.get(stamp) is None:
            checked[stamp] = now
    return tuple(_STORED.get(name, _same)(checked[name]) for name in BULK_MODEL_COLUMNS)


def inline_model_row(values, now, now_text):
    """The first eight BULK_MODEL_COLUMNS of a row in the common case (see bulk_model_row),
    stored values, with ``now`` for a date not given; None when the row is anything else, for
    check_fields to check (and name the problem)."""
    if type(values) is dict and values.keys() <= _INLINE_KEYS:
        get = values.get
        name, base, task, path = get('model_name'), get('base_model'), get('task'), \
            get('model_path')
        description = get('description', '')
        flag = get('is_custom_base_model', False)
        created = get('creation_date', now)
        if type(name) is str and type(base) is str and type(task) is str \
                and type(path) is str and type(description) is str \
                and type(created) is datetime.datetime and (flag is True or flag is False):
            text = name + base + task + path + description
            if text.isascii() and '\x00' not in text and created.tzinfo is None \
                    and 0 < len(name) <= NAME_LIMIT and 0 < len(base) <= NAME_LIMIT \
                    and 0 < len(task) <= NAME_LIMIT and 0 < len(path) <= PATH_LIMIT \
                    and len(description) <= TEXT_LIMIT and not name.isspace() \
                    and not base.isspace() and not task.isspace() and not path.isspace():
                stamp = created.isoformat()  # As IsoTimestampField writes it, faster.
                return (name, base, task, description,
                        stamp if created.microsecond else stamp + '.000000', path, flag,
                        now_text)
    return None


def _same(value):
    return value


# How add_models stores the timestamps (JSON stays a Python value: ModelQueries.insert_many
# encodes it for the backend).
_STORED = dict.fromkeys(('creation_date', 'updated_at'), IsoTimestampField().db_value)


ID_LIMIT = 2 ** 63 - 1  # The largest id any backend stores (SQLite's INTEGER, BIGINT).


VERSION_LIMIT = 2 ** 31 - 1  # version is an INTEGER column (int4 on PostgreSQL).


def _whole(name, value, what, limit, limit_text):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, 'must be an integer %s, got %s' % (what, type_name(value)))
    if not 1 <= value <= limit:
        raise ValidationError(name, 'must be a %s, got %d' % (limit_text, value))
    return value


def check_version(name, value):
    """A model version: a positive integer."""
    return _whole(name, value, 'version', VERSION_LIMIT, 'version from 1 to 2**31-1')


def check_id(name, value):
    """A row id: a positive integer that fits a 64-bit signed column."""
    return _whole(name, value, 'id', ID_LIMIT, 'positive id of at most 2**63-1')
