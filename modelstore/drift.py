"""Compare the models with the live database.

Built on ``playhouse.schema_diff.diff_models`` (missing tables, missing or extra columns and
indexes), extended with what it does not look at:

* the column's type family (TEXT, VARCHAR and JSON are all text on SQLite; JSON may be JSONB;
  a BOOLEAN may be stored as INTEGER) -- an INTEGER where text is expected is drift;
* nullability -- a NOT NULL field over a nullable column, or the reverse;
* database-side defaults declared with ``constraints=[SQL('DEFAULT ...')]`` -- legacy writers
  that omit the column depend on them.

Tables modelstore does not model are never reported. ``detect_drift()`` returns a Drift that is
falsy when the database matches.
"""
import re
from dataclasses import dataclass, field
from typing import List

from peewee import SQL
from playhouse.schema_diff import diff_models

from .models import MODELS

__all__ = ['Drift', 'detect_drift']

_FAMILIES = {
    'integer': {'INTEGER', 'INT', 'BIGINT', 'SMALLINT', 'SERIAL', 'BIGSERIAL', 'INT4', 'INT8'},
    'text': {'TEXT', 'VARCHAR', 'CHARACTER VARYING', 'CHAR', 'CHARACTER', 'CLOB', 'NVARCHAR'},
    'json': {'JSON', 'JSONB', 'TEXT'},
    'boolean': {'BOOLEAN', 'BOOL', 'INTEGER', 'TINYINT', 'SMALLINT'},
    'float': {'FLOAT', 'REAL', 'DOUBLE', 'DOUBLE PRECISION', 'NUMERIC'},
    'datetime': {'DATETIME', 'TIMESTAMP', 'TIMESTAMP WITHOUT TIME ZONE'},
}
_FIELD_FAMILY = {'AUTO': 'integer', 'BIGAUTO': 'integer', 'INT': 'integer', 'BIGINT': 'integer',
                 'SMALLINT': 'integer', 'VARCHAR': 'text', 'TEXT': 'text', 'CHAR': 'text',
                 'JSON': 'json', 'BOOL': 'boolean', 'FLOAT': 'float', 'DOUBLE': 'float',
                 'DATETIME': 'datetime'}


def _base_type(declared):
    return re.sub(r'\s*\(.*\)\s*$', '', (declared or '').strip()).upper()


def _default_key(text):
    value = (text or '').strip().strip('()').strip("'\"").lower()
    return {'false': '0', 'true': '1'}.get(value, value)


def _declared_default(fld):
    for constraint in fld.constraints or ():
        if isinstance(constraint, SQL):
            match = re.match(r'\s*DEFAULT\s+(.+)$', constraint.sql, re.I)
            if match:
                return match.group(1)
    return None


@dataclass
class Drift:
    """Differences between the models and the database; falsy when there are none."""
    lines: List[str] = field(default_factory=list)

    def __bool__(self):
        return bool(self.lines)

    def __str__(self):
        return '\n'.join(self.lines) if self.lines else 'schema matches the models'


def _schema_lines(diff):
    lines = ['missing table %s' % m._meta.table_name for m in diff.create_tables]
    lines += ['missing column %s.%s' % (f.model._meta.table_name, f.column_name)
              for f in diff.add_columns]
    lines += ['extra column %s.%s (not in the model; left as it is)' % tc
              for tc in diff.drop_columns]
    lines += ['missing %s' % idx.display('')[1:].strip() for idx in diff.add_indexes]
    lines += ['extra %s' % idx.display('')[1:].strip() for idx in diff.drop_indexes]
    return lines


def _column_lines(database, model):
    table = model._meta.table_name
    columns = {c.name: c for c in database.get_columns(table)}
    lines = []
    for fld in model._meta.sorted_fields:
        col = columns.get(fld.column_name)
        if col is None:
            continue  # Reported by diff_models.
        where = '%s.%s' % (table, fld.column_name)
        family = _FIELD_FAMILY.get(fld.field_type)
        found = _base_type(col.data_type)
        if family and found not in _FAMILIES[family]:
            lines.append('%s has type %s, expected %s' % (where, col.data_type or 'none',
                                                          family.upper()))
        if not fld.primary_key and fld.null != col.null:
            lines.append('%s is %s, expected %s' % (
                where, 'nullable' if col.null else 'NOT NULL',
                'nullable' if fld.null else 'NOT NULL'))
        expected = _declared_default(fld)
        if expected is not None and _default_key(col.default) != _default_key(expected):
            lines.append('%s has default %s, expected %s' % (where, col.default or 'none',
                                                             expected))
    return lines


def detect_drift(database, models=MODELS):
    """Compare ``models`` with ``database``; returns a Drift (falsy when clean)."""
    diff = diff_models(database, list(models))
    lines = _schema_lines(diff)
    missing = {m for m in diff.create_tables}
    for model in models:
        if model not in missing:
            lines.extend(_column_lines(database, model))
    return Drift(lines)
