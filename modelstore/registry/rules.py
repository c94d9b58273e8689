"""Each field's rule, derived from the model: the one validation path of every write.

What a call may give, what it must give, its default, and its checker.

A field's rule comes from its peewee declaration (its type, ``null``, ``default``,
``max_length``, ``column_name``), so a field added to ``FineTunedModel`` or ``Task`` is
validated, written and read with no edit here or anywhere else. ``_OVERRIDES`` holds what the
declaration cannot say (a path's length, a count that is never negative, the time a model was
made); a test fails if it names a field its model does not have.

``Rules.check`` is the whole rule. ``Rules.fast_row`` is the same rule for the common row of
``add_model``/``add_models`` (each value within its checker's ``fast`` form), returning exactly
what ``check`` would, or None to send the row through ``check`` (which names the problem).
"""
import datetime

import peewee

from ..exceptions import ValidationError
from ..fields import EnumNameField, IsoTimestampField, UtcDateTimeField
from .checks import (NAME_LIMIT, PATH_LIMIT, SLOW, TEXT_LIMIT, Choice, Custom, Day, Decimal,
                     Flag, Json, Metrics, Moment, Number, Sha256, Text, Whole)
from .documents import (CLUSTER_BASE_MODEL_PRESETS, CLUSTER_SERVING_RUNTIME_PRESETS,
                        base_model_spec, cluster_config, serving_runtime_spec)

__all__ = ['Rule', 'Rules']

_UNSET = object()


class Rule:
    """One field of the API: its checker, whether it is required, its default (a value or a
    callable), and ``keep``: an update may change it but not clear it (None)."""

    def __init__(self, check, required=False, default=None, keep=False, refuse=None):
        self.check = check
        self.required = required
        self.default = default
        self.keep = keep
        self.refuse = refuse  # Set by the database alone: the message refusing a given value.

    @property
    def filled(self):
        """Whether every new row holds a value of its own here (given or the default)."""
        return self.required or self.default is not None


def checker(field):
    """The checker a field's declaration calls for."""
    if isinstance(field, EnumNameField):
        return Choice(field.enum_class, field.name)
    if isinstance(field, peewee.BooleanField):
        return Flag(nullable=field.null)
    if isinstance(field, UtcDateTimeField):
        return Moment('utc')
    if isinstance(field, (IsoTimestampField, peewee.DateTimeField)):
        return Moment('local')
    if isinstance(field, peewee.JSONField):
        return Json()
    if isinstance(field, peewee.DecimalField):
        return Decimal()
    if isinstance(field, peewee.DateField):
        return Day()
    plain = type(field).db_value is peewee.Field.db_value  # Not TimestampField, IPField...
    for kind, bits in ((peewee.BigIntegerField, 63), (peewee.SmallIntegerField, 15),
                       (peewee.IntegerField, 31)):
        if isinstance(field, kind) and plain:
            return Whole(-2 ** bits, 2 ** bits - 1)
    if isinstance(field, peewee.FloatField) and plain:  # (DoubleField too.)
        return Number()
    if isinstance(field, (peewee.CharField, peewee.TextField)):
        return Text(getattr(field, 'max_length', None) or TEXT_LIMIT,
                    required=not field.null and field.default is None)
    return Custom(field)


def derived(field):
    """A field's rule from its declaration alone."""
    default = field.default
    # keep: an update may not clear a column that always holds a value (NOT NULL, or a default).
    return Rule(checker(field), required=not field.null and default is None, default=default,
                keep=default is not None or not field.null)


def _count(bits=63):
    return Whole(0, 2 ** bits - 1)


def _seconds():
    return Number('a number of seconds', non_negative=True)


# What the declarations cannot say, by model and field: Rule arguments replacing the derived.
_OVERRIDES = {
    'FineTunedModel': {
        'model_name': dict(check=Text(NAME_LIMIT, required=True)),
        'base_model': dict(check=Text(NAME_LIMIT, required=True)),
        'task': dict(check=Text(NAME_LIMIT, required=True)),
        'model_path': dict(check=Text(PATH_LIMIT, required=True)),
        'description': dict(default='', keep=False),
        'creation_date': dict(required=False, default=datetime.datetime.now),
        'training_seconds': dict(check=_seconds()),
        'peak_vram_bytes': dict(check=_count()),
        'dataset_rows': dict(check=_count()),
        'dataset_bytes': dict(check=_count()),
        'metrics': dict(check=Metrics()),
        'updated_at': dict(default=datetime.datetime.now, keep=True),
        'version': dict(refuse='is numbered by the database: a model gets the next version of '
                               'its model_name; it cannot be given'),
        'parent_id': dict(check=Whole(1, 2 ** 63 - 1, 'a model id')),
        'dataset_sha256': dict(check=Sha256()),
        'archived_at': dict(refuse='is set by archive_model and cleared by restore_model'),
    },
    'Task': {
        'clusterbasemodel_config': dict(check=cluster_config(CLUSTER_BASE_MODEL_PRESETS,
                                                             base_model_spec)),
        'clusterservingruntime_config': dict(check=cluster_config(
            CLUSTER_SERVING_RUNTIME_PRESETS, serving_runtime_spec)),
        # INTEGER columns (int4 on PostgreSQL).
        'total_experiments': dict(check=_count(31)),
        'successful_experiments': dict(check=_count(31)),
        'best_experiment_id': dict(check=_count(31)),
        'elapsed_time': dict(check=_seconds()),
    },
}


def _slow(value):
    return SLOW


def _fast(rule):
    """The fast form of a rule's checker (a plain function has none: every value is slow)."""
    return getattr(rule.check, 'fast', _slow)


def _rules_of(model):
    """{field name: Rule} of every field of ``model`` but its primary key, in field order: the
    derived rule with ``_OVERRIDES`` applied."""
    overrides = _OVERRIDES.get(model.__name__, {})
    unknown = set(overrides) - set(model._meta.fields)
    if unknown:
        raise AssertionError('rules for %s name no field of it: %s'
                             % (model.__name__, ', '.join(sorted(unknown))))
    rules = {}
    for field in model._meta.sorted_fields:
        if not field.primary_key:
            rule = rules[field.name] = derived(field)
            for key, value in overrides.get(field.name, {}).items():
                setattr(rule, key, value)
    return rules


def _partition(items, first):
    """``items`` with those ``first`` says yes to first, each part in its order."""
    items = list(items)
    return [i for i in items if first(i)] + [i for i in items if not first(i)]


def _none_is_slow(rule):
    """Whether a None needs the whole rule: required, or a checker that refuses None."""
    return rule.required or not getattr(rule.check, 'takes_none', False)


class Rules:
    """The rules of one model's fields (every field but the primary key), in field order, as
    the model is declared when they are made (a store makes its own)."""

    def __init__(self, model):
        self.rules = _rules_of(model)
        # The required fields first (their errors come first, and lead the list of fields).
        given = [(n, r) for n, r in self.rules.items() if r.refuse is None]
        self.given = dict(_partition(given, lambda item: item[1].required))
        self.refused = {n: r.refuse for n, r in self.rules.items() if r.refuse is not None}
        # A column named unlike its field (Task's 'metadata') is accepted by either name.
        self.aliases = {f.column_name: f.name for f in model._meta.sorted_fields
                        if f.column_name != f.name and f.name in self.given}
        # What a new row writes: the columns every row fills first, then the optional ones
        # (NULL by default), so that a row that stops early leaves the rest to their default.
        self.columns = tuple(_partition(self.given, lambda name: self.given[name].filled))
        self.filled = sum(r.filled for r in self.given.values())
        first, rest = self.columns[:self.filled], self.columns[self.filled:]
        self._first = tuple((n, _fast(self.given[n]), _none_is_slow(self.given[n]))
                            for n in first)
        self._first_names = frozenset(first)
        self._rest = {n: (i, _fast(self.given[n])) for i, n in enumerate(rest, self.filled)}

    def __iter__(self):
        return iter(self.given)

    def __contains__(self, name):
        return name in self.given

    def __getitem__(self, name):
        return self.given[name]

    def defaults(self):
        """Each default's value for one call: a callable is called, as peewee calls it (the
        same callable gives its fields one value -- a new model's creation_date and updated_at
        are the same moment -- unless the value is a container, which each field gets anew)."""
        made = {}
        out = {}
        for name, rule in self.given.items():
            default = rule.default
            if callable(default):
                value = made.get(default, _UNSET)
                if value is _UNSET or isinstance(value, (dict, list, set, bytearray)):
                    value = made[default] = default()
                out[name] = value
            elif default is not None:
                out[name] = default
        return out

    def check(self, values, *, partial=False, defaults=None):
        """Validate ``values`` (a dict by field name); fill defaults unless ``partial`` (an
        update). ``defaults``: the call's (``defaults()``), else made here."""
        values = self._named(values)
        if defaults is None and not partial:
            defaults = self.defaults()
        out = {}
        for name, rule in self.given.items():
            if name not in values:
                if partial:
                    continue
                if rule.required:
                    raise ValidationError(name, 'is required')
                out[name] = defaults.get(name)
                continue
            value = rule.check(name, values[name])
            if value is None:
                if rule.required:
                    raise ValidationError(name, 'is required and must not be None')
                if partial and rule.keep:
                    raise ValidationError(name, 'cannot be cleared (None); a row always has '
                                                'one: give a value')
                if not partial:
                    value = defaults.get(name)
            out[name] = value
        return out

    def _named(self, values):
        """``values`` by field name (an alias replaced); ValidationError for a field the
        database sets or no field at all."""
        values = dict(values)
        for alias, real in self.aliases.items():
            if alias in values and alias not in self.given:
                if real in values:
                    raise ValidationError(alias, 'give %s or %s, not both' % (alias, real))
                values[real] = values.pop(alias)
        for name, message in self.refused.items():
            if name in values:
                raise ValidationError(name, message)
        unknown = sorted(set(values) - set(self.given), key=repr)
        if unknown:
            raise ValidationError(None, 'unknown field%s %s; known fields: %s' % (
                's' if len(unknown) > 1 else '', ', '.join(repr(u) for u in unknown),
                ', '.join(self.given)))
        return values

    def row(self, checked):
        """A checked new row (``check``'s dict) as a tuple in ``columns`` order, ending at its
        last optional value that is not None (the rest are NULL by default)."""
        row = [checked.get(name) for name in self.columns]
        while len(row) > self.filled and row[-1] is None:
            row.pop()
        return tuple(row)

    def fast_row(self, values, defaults):
        """``row(check(values))`` for a common row, at a fraction of the cost; None when a
        value needs the whole rule."""
        if type(values) is not dict:
            return None
        get = values.get
        row = []
        append = row.append
        for name, fast, none_is_slow in self._first:
            value = get(name, _UNSET)
            if value is _UNSET or value is None:
                if value is None and none_is_slow or name not in defaults:
                    return None
                append(defaults[name])
                continue
            value = fast(value)
            if value is SLOW:
                return None
            append(value)
        if values.keys() <= self._first_names:
            return tuple(row)
        rest = self._rest
        for name in values.keys() - self._first_names:
            if name not in rest:
                return None  # Unknown, an alias, or refused: check() says which.
            index, fast = rest[name]
            value = values[name]
            if value is not None:
                value = fast(value)
                if value is SLOW:
                    return None
                row.extend([None] * (index + 1 - len(row)))
                row[index] = value
        return tuple(row)

