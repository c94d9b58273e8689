"""The registry calls' arguments other than fields: ids, versions, pages, filters.

Ids, versions, pages, choices and the listing filters (a field's value is checked by its rule:
modelstore.registry.rules).

A checker takes the value and returns what to use, or raises ValidationError naming the
argument and the problem. Nothing here touches the database.
"""
import datetime
import re

from ..exceptions import ValidationError
from ..shared.defaults import MAX_PAGE
from ..shared.tables import TaskStatus
from .checks import NAME_LIMIT, Choice, Flag, Moment, Number, Text
from .documents import type_name
from .likes import like_pattern

__all__ = ['check_id', 'check_version', 'check_status', 'check_text', 'check_flag',
           'check_page', 'check_choice', 'check_order', 'check_tags', 'check_metric_name',
           'listing_filters']

check_text = Text(NAME_LIMIT, required=True)  # A filter argument: a non-empty string.
check_flag = Flag()
check_status = Choice(TaskStatus, 'status')  # A member, its NAME or its value.


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
    value = Moment('local')(name, value)
    return value.isoformat(timespec='microseconds' if value.microsecond else 'seconds')


def listing_filters(*, task=None, is_custom_base_model=None, name_prefix=None, base_model=None,
                    model_name=None, name_contains=None, created_after=None,
                    created_before=None, archived=False, tags=None, metric=None,
                    metric_below=None, metric_above=None):
    """list_models' and count_models' filters, checked, as the listing query takes them.
    ``archived``: False (the default) leaves archived models out, True lists only them, None
    both. ``tags``: a dict of key -> value a model must all carry. ``metric``: only models
    whose ``metrics`` hold a number (or a list ending in one) under that name, strictly below
    ``metric_below`` and above ``metric_above``."""
    values = {}
    if tags is not None:
        checked = check_tags('tags', tags)
        if checked:
            values['tags'] = checked
    if metric is not None:
        values['metric'] = check_metric_name('metric', metric)
    for name, bound in (('metric_below', metric_below), ('metric_above', metric_above)):
        if bound is not None:
            if metric is None:
                raise ValidationError(name, 'needs metric=NAME: the metric it bounds')
            values[name] = _metric_bound(name, bound)
    if archived is False:
        values['not_archived'] = True
    elif archived is True:
        values['only_archived'] = True
    elif archived is not None:
        raise ValidationError('archived', 'must be True, False or None, got %s'
                              % type_name(archived))
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




def check_page(name, value, minimum):
    """``limit`` or ``offset``: a whole number from ``minimum`` to MAX_PAGE."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, 'must be an integer, got %s' % type_name(value))
    if value < minimum or value > MAX_PAGE:
        raise ValidationError(name, 'must be from %d to %d, got %d' % (minimum, MAX_PAGE, value))
    return value


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


_tag_key = Text(NAME_LIMIT, required=True)
_tag_value = Text(NAME_LIMIT)


def check_tags(name, tags, values=True):
    """``tags``: a dict of key -> value text (``values``), or an iterable of keys."""
    if values:
        if not isinstance(tags, dict):
            raise ValidationError(name, 'must be a dict of tag key -> value, got %s'
                                  % type_name(tags))
        checked = {}
        for key, value in tags.items():
            _tag_key('%s key' % name, key)
            if value is None:
                raise ValidationError('%s[%r]' % (name, key), 'must be text, got None')
            checked[key] = _tag_value('%s[%r]' % (name, key), value)
        return checked
    if isinstance(tags, (str, bytes, dict)) or not hasattr(tags, '__iter__'):
        raise ValidationError(name, 'must be a list of tag keys, got %s' % type_name(tags))
    return sorted({_tag_key('%s key' % name, key) for key in tags})


_METRIC = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_ ./:-]*\Z')
_metric_bound = Number('a number')


def check_metric_name(name, value):
    """A metric's name as list_models takes it: letters, digits and ``_ . / : -`` and spaces
    (it is placed in a JSON path), at most NAME_LIMIT characters."""
    if not isinstance(value, str) or not _METRIC.match(value) or len(value) > NAME_LIMIT:
        raise ValidationError(name, 'must be a metric name: a letter, digit or "_", then '
                              'letters, digits, spaces or "_ . / : -", at most %d characters; '
                              'got %s' % (NAME_LIMIT, repr(value)[:80] if isinstance(value, str)
                                          else type_name(value)))
    return value


def check_order(order, values, orders):
    """list_models' ``order`` (one of ``orders``); 'metric' needs a metric filter."""
    order = check_choice('order', order, orders)
    if order == 'metric' and 'metric' not in values:
        raise ValidationError('order', "'metric' sorts by a metric: give metric=NAME")
    return order
