"""What a value must be to be stored: one checker per kind of value.

A checker is called as ``check(name, value)`` and returns what to store, or raises
ValidationError naming the field and the problem. ``check.fast(value)`` is the same rule for the
common case alone, at a fraction of the cost (``add_models`` checks a million rows): it returns
what ``check`` would return, or SLOW when the value needs the whole rule (which then names the
problem). tests/test_rules.py holds the two equal on random values. Nothing here touches the
database; which checker a field gets is modelstore.registry.rules' business.
"""
import datetime
import decimal
import math

from ..exceptions import ValidationError
from ..fields import parse_timestamp
from .documents import json_object, type_name

__all__ = ['SLOW', 'Text', 'Flag', 'Sha256', 'Whole', 'Number', 'Moment', 'Day', 'Decimal', 'Choice',
           'Json', 'Metrics', 'Custom', 'NAME_LIMIT', 'PATH_LIMIT', 'TEXT_LIMIT']

NAME_LIMIT = 255            # VARCHAR(255) on every backend.
PATH_LIMIT = 4096           # PATH_MAX on Linux.
TEXT_LIMIT = 64 * 1024      # Descriptions.

SLOW = object()  # fast(): this value needs the whole rule.
_DOUBLE_MAX = int(1.7976931348623157e308)  # The largest finite double, as an integer.


class Checker:
    takes_none = True  # None is "no value" (the default, or NULL), not an error.

    def fast(self, value):
        return SLOW


class Text(Checker):
    """Text of at most ``limit`` characters, valid UTF-8, without NUL; ``required``: not
    empty or blank."""

    def __init__(self, limit, required=False):
        self.limit = limit
        self.required = required

    def __call__(self, name, value):
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValidationError(name, 'must be a string, got %s' % type_name(value))
        if self.required and not value.strip():
            raise ValidationError(name, 'must not be empty')
        if '\x00' in value:
            raise ValidationError(name, 'must not contain NUL characters')
        try:
            value.encode('utf-8')
        except UnicodeEncodeError:
            raise ValidationError(name, 'is not valid UTF-8 text (it holds unpaired surrogates, '
                                        'as decoding non-UTF-8 bytes leaves)') from None
        if len(value) > self.limit:
            raise ValidationError(name, 'is %d characters long; the limit is %d'
                                  % (len(value), self.limit))
        return value

    def fast(self, value):
        # ASCII: valid UTF-8, and str.strip() removes exactly what isspace() finds.
        if type(value) is str and value.isascii() and '\x00' not in value \
                and len(value) <= self.limit \
                and not (self.required and (not value or value.isspace())):
            return value
        return SLOW


class Flag(Checker):
    """True or False; ``nullable``: None too (a NULL)."""

    def __init__(self, nullable=False):
        self.takes_none = nullable

    def __call__(self, name, value):
        if value is None and self.takes_none:
            return None
        if not isinstance(value, bool):
            raise ValidationError(name, 'must be True or False, got %s' % type_name(value))
        return value

    def fast(self, value):
        return value if value is True or value is False else SLOW


class Sha256(Checker):
    """A SHA-256 digest: 64 hexadecimal digits, stored in lower case."""

    def __call__(self, name, value):
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValidationError(name, 'must be a string, got %s' % type_name(value))
        if len(value) != 64 or not value.isascii() or \
                value.strip('0123456789abcdefABCDEF'):
            raise ValidationError(name, 'must be a SHA-256 digest: 64 hexadecimal digits, got '
                                  '%r' % value[:80])
        return value.lower()

    def fast(self, value):
        if type(value) is str and len(value) == 64 and value.isascii() and \
                not value.strip('0123456789abcdef'):
            return value
        return SLOW


class Whole(Checker):
    """An integer from ``low`` to ``high``; ``what`` names the kind in the error."""

    def __init__(self, low, high, what='an integer'):
        self.low, self.high, self.what = low, high, what

    def __call__(self, name, value):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(name, 'must be %s, got %s' % (self.what, type_name(value)))
        if not self.low <= value <= self.high:
            shown = '%d' % value if abs(value) < 10 ** 30 else 'an integer of %d digits' % len(
                str(abs(value))) if value.bit_length() < 14000 else 'a larger integer'
            raise ValidationError(name, 'must be between %s and %s, got %s'
                                  % (_power(self.low), _power(self.high), shown))
        return value

    def fast(self, value):
        if type(value) is int and self.low <= value <= self.high:
            return value
        return SLOW


def _power(number):
    """-2**31, 2**63-1 and 0 as the errors write them."""
    for bits in (15, 31, 63):
        if number == 2 ** bits - 1:
            return '2**%d-1' % bits
        if number == -2 ** bits:
            return '-2**%d' % bits
    return str(number)


class Number(Checker):
    """A finite number, stored as a float; ``non_negative`` refuses negatives."""

    def __init__(self, what='a number', non_negative=False):
        self.what = what
        self.non_negative = non_negative

    def __call__(self, name, value):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(name, 'must be %s, got %s' % (self.what, type_name(value)))
        try:
            number = float(value)
        except OverflowError:
            raise ValidationError(name, 'must be a finite number, got an integer too large for '
                                        'one') from None
        if not math.isfinite(number) or (self.non_negative and number < 0):
            raise ValidationError(name, 'must be a finite%s number, got %r' % (
                ', non-negative' if self.non_negative else '', value))
        return number

    def fast(self, value):
        if type(value) is float and math.isfinite(value) \
                and not (self.non_negative and value < 0):
            return value
        return SLOW


class Moment(Checker):
    """A timestamp; aware values (and ISO text with an offset) are converted to the naive time
    the column stores: ``'local'`` (creation_date, as ModelForge writes it) or ``'utc'`` (task
    timestamps). A value that falls outside year 1..9999 once converted is refused here, not
    left to overflow in the driver."""

    def __init__(self, zone):
        self.zone = zone

    def __call__(self, name, value):
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
            if self.zone == 'utc':
                return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return value.astimezone().replace(tzinfo=None)
        except (OverflowError, ValueError):
            raise ValidationError(name, '%s is outside the years 1 to 9999 once converted to %s'
                                  % (value.isoformat(), 'UTC' if self.zone == 'utc'
                                     else 'local time')) from None

    def fast(self, value):
        if type(value) is datetime.datetime and value.tzinfo is None:
            return value
        return SLOW


class Choice(Checker):
    """A member of ``enum_class``, from the member, its NAME or its value."""

    def __init__(self, enum_class, what):
        self.enum_class = enum_class
        self.what = what  # 'status'

    def __call__(self, name, value):
        if value is None:
            return None
        if isinstance(value, self.enum_class):
            return value
        if isinstance(value, str):
            for member in self.enum_class:
                if value in (member.name, member.value):
                    return member
        raise ValidationError(name, 'unknown %s %r; use one of %s' % (
            self.what, value, ', '.join(m.name for m in self.enum_class)))

    def fast(self, value):
        return value if type(value) is self.enum_class else SLOW


class Day(Checker):
    """A date: a ``datetime.date`` (not a datetime) or ISO-8601 date text."""

    def __call__(self, name, value):
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return datetime.date.fromisoformat(value.strip())
            except ValueError:
                raise ValidationError(name, 'is not an ISO-8601 date: %r' % value[:64]) from None
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
            raise ValidationError(name, 'must be a date or ISO-8601 date text, got %s'
                                  % type_name(value))
        return value


class Decimal(Checker):
    """A finite decimal number: an int, a Decimal, a finite float or decimal text."""

    def __call__(self, name, value):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str, decimal.Decimal)):
            raise ValidationError(name, 'must be a decimal number, got %s' % type_name(value))
        try:
            number = decimal.Decimal(value.strip() if isinstance(value, str) else value)
        except decimal.InvalidOperation:
            raise ValidationError(name, 'is not a decimal number: %r' % value[:64]) from None
        if not number.is_finite():
            raise ValidationError(name, 'must be a finite decimal number, got %r' % (value,))
        return number


class Json(Checker):
    """A JSON object within the limits (modelstore.registry.documents)."""

    def __call__(self, name, value):
        return json_object(name, value)


class Metrics(Checker):
    """Training metrics: a JSON object of name -> a finite number or a list of them (a loss
    curve, one value per step)."""

    def __call__(self, name, value):
        stored = json_object(name, value)
        for key, metric in (value or {}).items():
            where = '%s[%r]' % (name, key)
            points = metric if isinstance(metric, list) else [metric]
            for i, point in enumerate(points):
                at = where if points is not metric else '%s[%d]' % (where, i)
                if isinstance(point, bool) or not isinstance(point, (int, float)):
                    raise ValidationError(
                        at, 'must be a number or a list of numbers, got %s' % type_name(point))
                if isinstance(point, int) and abs(point) > _DOUBLE_MAX:
                    # A double is what metric search compares, on every backend.
                    raise ValidationError(at, 'is an integer too large for a double')
        return stored


class Custom(Checker):
    """A field of a type no other checker knows: what its own ``db_value`` accepts (a value
    it cannot convert is refused here, naming the field, not left to fail in the driver)."""

    def __init__(self, field):
        self.field = field

    def __call__(self, name, value):
        if value is None:
            return None
        try:
            self.field.db_value(value)
        except Exception as exc:  # noqa: BLE001 -- whatever the field's conversion raises.
            raise ValidationError(name, 'cannot be stored in a %s: %s'
                                  % (type(self.field).__name__, exc)) from None
        return value

