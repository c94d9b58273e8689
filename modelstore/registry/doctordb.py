"""What ``modelstore doctor`` reads from the database.

Every fine_tuned_models row (raw, so that one unreadable value is reported by its row, not
raised for the whole query), the rows of ModelForge's own ``models`` table not imported yet,
and, right before ``--register`` adds a row, the rows that name a folder now."""
from peewee import Case, Cast, Table, fn

from ..dialects import SQLITE, dialect_of
from .doctor import FORGE_SOURCE, FORGE_TABLE, NotText, as_text, first_folder, key_text

__all__ = ['forge_present', 'read_forge', 'read_rows', 'rows_naming']


def _columns(database, table, names, text=(), keys=()):
    """``table`` and its columns ``names``, read raw. The one place the backend matters: on
    SQLite, sqlite3 decodes every fetched text value, and one that is not UTF-8 fails the whole
    query without naming its row; so a ``text`` column comes back as the bytes of its text (a
    value of another type as its type name, made a NotText by ``_raw``) and a ``keys`` column
    as the bytes of its value; ``as_text`` and ``key_text`` decode them row by row."""
    t = Table(table).bind(database)
    if dialect_of(database) is not SQLITE:
        return t, [t.c[n] for n in names]

    def column(name):
        c = t.c[name]
        if name in text:
            return Case(None, [(fn.typeof(c) == 'text', Cast(c, 'BLOB'))], fn.typeof(c))
        return Cast(c, 'BLOB') if name in keys else c
    return t, [column(n) for n in names]


def _raw(value):
    return NotText(value) if isinstance(value, str) else value


def read_rows(database):
    """Every fine_tuned_models row as (id, model_name, model_path, creation_date[, updated_at]),
    raw, in id order (for ``examine``)."""
    have = {c.name for c in database.get_columns('fine_tuned_models')}
    names = ['id', 'model_name', 'model_path'] + [
        c for c in ('creation_date', 'updated_at') if c in have]
    t, columns = _columns(database, 'fine_tuned_models', names, text=names[1:])
    rows = t.select(*columns).order_by(t.c.id).tuples()
    if dialect_of(database) is not SQLITE:
        return list(rows)
    return [(i, _raw(name), _raw(path)) + tuple(stamps) for i, name, path, *stamps in rows]


def forge_present(database, tables=None):
    """Does the database hold ModelForge v2's ``models`` table (with its ``path`` column)?"""
    tables = database.get_tables() if tables is None else tables
    return FORGE_TABLE in tables and {'id', 'name', 'path'} <= {
        c.name for c in database.get_columns(FORGE_TABLE)}


def _imported(database, keys=None):
    """The ``models`` ids that ``import modelforge`` has copied (recorded in model_imports)."""
    if 'model_imports' not in database.get_tables():
        return set()
    t, columns = _columns(database, 'model_imports', ['source_id'], keys=['source_id'])
    query = t.select(*columns).where(t.c.source == FORGE_SOURCE)
    if keys is not None:
        query = query.where(t.c.source_id.in_([str(k) for k in keys]))
    return {key_text(r[0]) for r in query.tuples()}


def read_forge(database, tables=None):
    """The rows of ModelForge's ``models`` table that ``modelstore import modelforge`` has not
    imported yet, as (id, name, path, is_active); [] when there is no such table (or it is not
    ModelForge's: no ``path`` column)."""
    if not forge_present(database, tables):
        return []
    have = {c.name for c in database.get_columns(FORGE_TABLE)}
    names = ['id', 'name', 'path'] + (['is_active'] if 'is_active' in have else [])
    t, columns = _columns(database, FORGE_TABLE, names, text=['name', 'path'], keys=['id'])
    sqlite = dialect_of(database) is SQLITE
    done = _imported(database)
    rows = []
    for row in t.select(*columns).tuples():
        key, name, path = key_text(row[0]), row[1], row[2]
        if sqlite:
            name, path = _raw(name), _raw(path)
        if str(key) not in done:
            rows.append((key, name, path, row[3] if len(row) > 3 else True))
    return rows


def rows_naming(database, root, folder, forge=False):
    """The stored rows that name ``folder`` (a name directly under the root): the folder or a
    path inside it (nothing under the root contains it), however spelled; [(table, id, path)]
    -- ModelForge's ``models`` rows not imported yet too when ``forge``. One query per table,
    of the rows whose path holds the name: asked right before ``--register`` adds a row, so
    that a row added since the report counts."""
    found = []
    tables = [('fine_tuned_models', 'model_path')] + ([(FORGE_TABLE, 'path')] if forge else [])
    for table, column in tables:
        t, columns = _columns(database, table, ['id', column], text=[column], keys=['id'])
        hits = []
        for key, path in t.select(*columns).where(t.c[column].contains(folder)).tuples():
            path, _ = as_text(path, column)
            if path is not None and path.startswith('/') and first_folder(root, path) == folder:
                hits.append((table, key_text(key), path))
        if table == FORGE_TABLE and hits:
            done = _imported(database, [h[1] for h in hits])
            hits = [h for h in hits if str(h[1]) not in done]
        found += hits
    return found
