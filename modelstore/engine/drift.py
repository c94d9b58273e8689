"""Compare the models with the live database.

Built on ``playhouse.schema_diff.diff_models`` (missing tables, missing or extra columns and
indexes), extended with what it does not look at:

* the column's type family (TEXT, VARCHAR and JSON are all text on SQLite; JSON may be JSONB;
  a BOOLEAN may be stored as INTEGER) -- an INTEGER where text is expected is drift;
* nullability -- a NOT NULL field over a nullable column, or the reverse;
* database-side defaults declared with ``constraints=[SQL('DEFAULT ...')]`` -- legacy writers
  that omit the column depend on them;
* 0010's triggers, where a model has fine_tuned_models' ``version``: without them a new row
  gets no version.

Tables modelstore does not model are never reported. ``detect_drift()`` returns a Drift that is
falsy when the database matches.
"""
import re
from dataclasses import dataclass, field
from typing import List

from peewee import SQL
from playhouse.schema_diff import diff_models

from ..dialects import dialect_of, MYSQL, raising, reported_default, string_literal
from ..exceptions import StorageError
from ..shared.tables import MODELS, VERSION_TRIGGERS
from ..shared.urls import command
from .history import RUNNING, History
from ..shared.shape import (FIELD_KINDS, LEGACY_NULLABLE, blocks_inserts, compatible, default_key,
                            invalid_indexes, kind)

__all__ = ['Drift', 'detect_drift', 'declared_default']

NUMBERING_SCRIPT = '0010_number_model_versions'  # The shipped script that installs them.


def declared_default(fld):
    """The value of a ``constraints=[SQL('DEFAULT ...')]`` on ``fld``, or None."""
    for constraint in fld.constraints or ():
        if isinstance(constraint, SQL):
            match = re.match(r'\s*DEFAULT\s+(.+)$', constraint.sql, re.I)
            if match:
                return match.group(1)
    return None


@dataclass
class Drift:
    """Differences between the models and the database; falsy when there are none.

    ``notes`` lists what differs but is harmless and left alone: columns and indexes added by
    hand, and known legacy variants (ModelForge v1.1's nullable is_custom_base_model).
    """
    lines: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def __bool__(self):
        return bool(self.lines)

    def __str__(self):
        return '\n'.join(self.lines) if self.lines else 'schema matches the models'


def _index(diff):
    """An index of a schema diff in words, from its own fields (table, name, columns,
    unique)."""
    if diff.columns is None:
        return 'index %s.%s' % (diff.table, diff.name)
    return 'index %s%s (%s)%s' % (diff.table, '.%s' % diff.name if diff.name else '',
                                  ', '.join(diff.columns), ' unique' if diff.unique else '')


def _schema_lines(database, diff):
    lines = ['missing table %s' % m._meta.table_name for m in diff.create_tables]
    lines += ['missing column %s.%s' % (f.model._meta.table_name, f.column_name)
              for f in diff.add_columns]
    lines += ['missing %s' % _index(idx) for idx in diff.add_indexes]
    notes = ['extra %s (not in the model; left as it is)' % _index(idx)
             for idx in diff.drop_indexes]
    for table, name in diff.drop_columns:
        col = {c.name: c for c in database.get_columns(table)}[name]
        if blocks_inserts(col):
            lines.append('extra column %s.%s is NOT NULL without a default: inserts that do '
                         'not name it fail' % (table, name))
        else:
            notes.append('extra column %s.%s (not in the model; left as it is)' % (table, name))
    return lines, notes


def _column_lines(database, model, notes):
    table = model._meta.table_name
    columns = {c.name: c for c in database.get_columns(table)}
    lines = []
    for fld in model._meta.sorted_fields:
        col = columns.get(fld.column_name)
        if col is None:
            continue  # Reported by diff_models.
        where = '%s.%s' % (table, fld.column_name)
        expected = FIELD_KINDS.get(fld.field_type)
        if expected and not compatible(expected, kind(col.data_type)):
            lines.append('%s has type %s, expected %s' % (where, (col.data_type or 'none').upper(),
                                                          expected.upper()))
        if not fld.primary_key and fld.null != col.null:
            if col.null and (table, fld.column_name) in LEGACY_NULLABLE:
                notes.append('%s is nullable, as the legacy app created it; modelstore always '
                             'writes a value there' % where)
            else:
                lines.append('%s is %s, expected %s' % (
                    where, 'nullable' if col.null else 'NOT NULL',
                    'nullable' if fld.null else 'NOT NULL'))
        default = declared_default(fld)
        if default is not None and not _same_default(database, table, col, default):
            lines.append('%s has default %s, expected %s' % (where, col.default or 'none',
                                                             default))
    return lines


def _same_default(database, table, col, expected):
    """Whether the column's default is the model's ``DEFAULT expected``. A string is compared
    exactly on MySQL/MariaDB -- case, quotes and backslashes counting -- with the value the server
    reports; other defaults by their normalised text (``FALSE``, ``0`` and ``'0'`` are one)."""
    if dialect_of(database) is MYSQL:
        wanted = string_literal(expected)
        found = reported_default(database, table, col.name, col.default) \
            if wanted is not None else None
        if found is not None:
            return found == wanted
    return default_key(col.default) == default_key(expected)


def detect_drift(database, models=MODELS, hint=command):
    """Compare ``models`` with ``database``; returns a Drift (falsy when clean). ``hint(verb,
    *words)`` builds the commands a line tells the operator to run (the CLI's adds the options
    that chose the database and the scripts)."""
    with raising(StorageError, 'comparing the schema with the models'):
        return _drift(database, models, hint)


def _drift(database, models, hint):
    diff = diff_models(database, list(models))
    lines, notes = _schema_lines(database, diff)
    missing = {m for m in diff.create_tables}
    for model in models:
        if model not in missing:
            lines.extend(_column_lines(database, model, notes))
            table = model._meta.table_name
            lines.extend(invalid_index_lines(database, [table]))
            if table == 'fine_tuned_models' and 'version' in model._meta.fields \
                    and _numbering_installed(database):
                lines.extend(_trigger_lines(database, hint))
    return Drift(lines, notes)


def invalid_index_lines(database, tables):
    """A line per INVALID index (PostgreSQL: a concurrent build that died halfway) on ``tables``
    -- a problem whether or not scripts are pending."""
    with raising(StorageError, 'reading the indexes'):
        return ['index %s on %s is INVALID (a concurrent build died halfway); rebuild it: '
                'REINDEX INDEX CONCURRENTLY %s' % (name, table, name)
                for table in tables for name in invalid_indexes(database, table)]


def _numbering_installed(database):
    """Whether the history records 0010 applied (a project with scripts of its own has not
    installed modelstore's triggers, and is not expected to)."""
    return any(r.name == NUMBERING_SCRIPT and r.method != RUNNING
               for r in History(database).read())


def _trigger_lines(database, hint):
    dialect = dialect_of(database)
    expected = VERSION_TRIGGERS[dialect.name]
    found = dialect.trigger_names(database, 'fine_tuned_models')
    missing = [name for name in expected if name not in found]
    if not missing:
        return []
    return ['trigger%s %s on fine_tuned_models %s missing: rows inserted now get no version; '
            'reinstall with `%s` then `%s`' % (
                's' if len(missing) > 1 else '', ', '.join(missing),
                'are' if len(missing) > 1 else 'is',
                hint('rollback', '--to', NUMBERING_SCRIPT), hint('migrate'))]
