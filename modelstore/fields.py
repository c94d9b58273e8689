"""Portable field types that keep the legacy apps' value formats.

Migration scripts import these too (``from modelstore.fields import AutoIncrementField``, as
0001 does), so this module keeps its path, outside the ``shared`` package it belongs to by
layer: a shipped script's text -- and so its checksum -- cannot change. For the same reason a
field's DDL must never change once a script uses it: add a new class instead of editing one.

* ``AutoIncrementField``: ``INTEGER PRIMARY KEY AUTOINCREMENT`` on SQLite (ModelForge's ids are
  never reused after a delete), the backend's serial type elsewhere.
* ``IsoTimestampField``: TEXT holding ``datetime.isoformat()`` with a 'T', local time, no zone,
  exactly as ModelForge writes ``creation_date``; ordering by the text stays chronological.
* ``UtcDateTimeField``: DATETIME holding ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC, as SQLAlchemy
  writes the autotuner's ``created_at``; aware datetimes are converted to UTC first.
* ``EnumNameField``: the enum member's NAME (``COMPLETED``), as SQLAlchemy's ``Enum`` stores it.
* ``StrictJSONField``: core ``JSONField`` (TEXT on SQLite, JSONB on PostgreSQL) that refuses NaN
  and infinities, which neither JSON nor PostgreSQL accept.
* ``KeyTextField``, ``IsoTimestampKeyField``: TextField and IsoTimestampField, but
  ``VARCHAR(max_length)`` on MySQL/MariaDB, where TEXT cannot be indexed: the columns 0001 and
  0008 create so there (model_name, base_model, task, creation_date), as the models declare them.
"""
import datetime
import functools
import json

from peewee import AutoField, CharField, DateTimeField, JSONField, NodeList, SQL
from peewee import TextField

from .dialects import SQLITE, dialect_of
from .exceptions import UnreadableValue

__all__ = ['AutoIncrementField', 'EnumNameField', 'IsoTimestampField', 'StrictJSONField',
           'UtcDateTimeField', 'KeyTextField', 'IsoTimestampKeyField', 'parse_timestamp']

dumps = functools.partial(json.dumps, allow_nan=False)


def _is_sqlite(database):
    return dialect_of(database) is SQLITE


class AutoIncrementField(AutoField):
    def ddl(self, ctx):
        node = super().ddl(ctx)
        if _is_sqlite(self.model._meta.database):
            return NodeList((node, SQL('AUTOINCREMENT')))
        return node


def parse_timestamp(value):
    """Parse ISO-8601 text with a 'T' or a space, with or without microseconds."""
    return datetime.datetime.fromisoformat(value.strip())


def _read_timestamp(field, value):
    if type(value) is str:
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
        try:
            return parse_timestamp(value)
        except ValueError:
            raise _unreadable(field, value, 'a timestamp') from None
    return value


def _unreadable(field, value, expected):
    return UnreadableValue(field.model._meta.table_name, field.column_name, value, expected)


class IsoTimestampField(TextField):
    # Equal to python_value on the text it parses (it raises ValueError on the rest): the
    # registry's listings read a column of text through it (modelstore.registry.fastpath).
    read_text = staticmethod(datetime.datetime.fromisoformat)

    def db_value(self, value):
        if isinstance(value, datetime.datetime):
            if value.tzinfo is not None:
                value = value.astimezone().replace(tzinfo=None)
            return value.isoformat(timespec='microseconds')
        return value

    def python_value(self, value):
        return _read_timestamp(self, value)


class _KeyText:
    """TEXT, but VARCHAR(max_length) on MySQL (whose DDL context quotes with backticks)."""

    def __init__(self, *args, max_length=255, **kwargs):
        self.max_length = max_length
        super().__init__(*args, **kwargs)

    def ddl_datatype(self, ctx):
        if ctx is not None and ctx.state.quote == '``':
            return SQL('VARCHAR(%d)' % self.max_length)
        return super().ddl_datatype(ctx)


class KeyTextField(_KeyText, TextField):
    pass


class UtcDateTimeField(DateTimeField):
    read_text = IsoTimestampField.read_text  # As IsoTimestampField's.

    def db_value(self, value):
        value = self.adapt(value)
        if isinstance(value, datetime.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            # Not strftime('%Y'): it does not pad years before 1000 ('1-06-15'), which
            # PostgreSQL reads as 2001 and SQLite's readers as text.
            return value.isoformat(sep=' ', timespec='microseconds')
        return value

    def python_value(self, value):
        return _read_timestamp(self, value)


class IsoTimestampKeyField(_KeyText, IsoTimestampField):
    pass


class EnumNameField(CharField):
    def __init__(self, enum_class, *args, **kwargs):
        self.enum_class = enum_class
        super().__init__(*args, **kwargs)

    def db_value(self, value):
        if isinstance(value, self.enum_class):
            return value.name
        return value

    def python_value(self, value):
        if value is None:
            return None
        try:
            return self.enum_class[value]
        except (KeyError, TypeError):
            raise _unreadable(self, value, 'one of %s' % ', '.join(
                m.name for m in self.enum_class)) from None


_scan_json = json.JSONDecoder().scan_once


def _read_json_text(text):
    """``json.loads(text)`` for one JSON value with no whitespace around it (what
    ``json.dumps`` writes), without loads' two whitespace matches; any other text raises
    ValueError and is left to the field's python_value (peewee's: a text that is not JSON is
    returned as it is)."""
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        raise ValueError('not JSON') from None
    if end != len(text):
        raise ValueError('not one JSON value')
    return value


class StrictJSONField(JSONField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault('dumps', dumps)
        self._own_loads = kwargs.get('loads', json.loads) is not json.loads
        super().__init__(*args, **kwargs)

    @property
    def read_text(self):
        """How a listing reads a column of JSON text (modelstore.registry.fastpath): the scanner,
        where python_value decodes text with json.loads -- not on PostgreSQL, where psycopg2
        hands JSONB over decoded and a str is a JSON string, returned as it is -- else None."""
        if self._own_loads:
            return None
        try:
            decodes = self.python_value('[0]') == [0]
        except Exception:  # noqa: BLE001 -- not bound to a database yet: no fast path.
            return None
        return _read_json_text if decodes else None
