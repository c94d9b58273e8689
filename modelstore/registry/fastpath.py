"""The registry's hot paths: statements built once from the model, rows made into models.

SQL that peewee builds once per shape of call, reused with new values, and rows made into models
without peewee's per-field work.

Building a peewee query costs ~100 us, more than the query itself at a page of 50 (~0.1 ms at
1M rows), and ``add_model`` would pay it while holding SQLite's write lock. So for each shape of
call -- which filters are given, whether a page is asked for -- peewee builds the query once,
from the models (no table or column name is written here), with a distinct sentinel for each
value; the sentinels' positions in peewee's parameter list say where each value goes. The SQL
text is never edited: a shape peewee renders differently (``LIMIT ALL`` on PostgreSQL, ``LIMIT
-1`` on SQLite) is simply another cache entry.

Rows become models as peewee's own cursor wrapper makes them (every field's ``python_value``
applied, nothing dirty), but without ``Model.__init__``'s setattr per field, and column by
column: no call for a column whose values already have the type peewee's own coercion would
give (a ``str`` from a TextField: derived from the field's class, so a field with a conversion
of its own -- an enum, JSON -- is always converted), and a C function mapped over a column its
field declares one for (``read_text``: ``fromisoformat`` for the timestamps, the JSON scanner
for JSON text). That, and the
clean model ``add_model`` returns, use peewee's private ``__data__``, ``_dirty`` and ``__rel__``
(and ``_StringField``, the base of its text fields);
docs/architecture.md lists them, and tests/test_fastpath.py fails if a peewee upgrade changes
what they mean (every listing equals the plain peewee query's models).
"""
import collections
import functools
import itertools

import peewee
from peewee import fn

from ..dialects import dialect_of
from ..exceptions import UnreadableValue
from ..fields import dumps
from .listings import LISTING_FILTERS, ORDERS, Listings

__all__ = ['ModelQueries', 'LISTING_FILTERS', 'ORDERS']

def encoder(field):
    """How a plain statement takes a value of ``field`` (None: as it is). A JSON column's
    value is the JSON text on SQLite and MySQL (peewee's own db_value on SQLite is a
    ``json(?)`` SQL function), the driver's JSONB adapter on PostgreSQL."""
    if isinstance(field, peewee.JSONField):
        if dialect_of(field.model._meta.database).json_as_text:
            return dumps
        return field.db_value
    if type(field).db_value is peewee.Field.db_value:
        return None  # adapt(): the checked value has its type already.
    return field.db_value


class ModelQueries(Listings):
    """The cached statements of one store's bound FineTunedModel."""

    def __init__(self, model, columns, filled=None, counters=None, tags=None, events=None):
        self.model = model
        # (RegistryEvent, RegistryEventCounter, the channel NOTIFYed) bound: add_model's event
        # on PostgreSQL.
        self.events = events
        self.database = model._meta.database
        # The INSERT's columns, in the order rows give them (modelstore.registry.rules): the
        # first ``filled`` in every row, the rest optional (NULL when a row stops before them).
        self.columns = columns
        self._optional = len(columns) if filled is None else filled
        # SQLite: modelstore numbers its own rows (see _numbered), from the bound
        # ModelVersionCounter; on PostgreSQL and MySQL 0010's BEFORE trigger does, in the row
        # itself.
        # (SQLite is the embedded backend: one writer, so reading a counter and inserting in
        # the write transaction cannot race.)
        sqlite = dialect_of(self.database).embedded
        self.counters = counters if sqlite else None
        self.tags = tags  # The bound ModelTag: list_models(tags=...) (modelstore.registry.tags).
        # MySQL has no RETURNING: the version the trigger gave is read back by id after the
        # INSERT, in the call's transaction (with its event: modelstore.registry.store).
        self._read_version = not sqlite and not self.database.returning_clause
        # PostgreSQL: add_model and its event are one statement (insert_added).
        self.added_in_one = bool(self.database.returning_clause and events)
        self._name_index = columns.index('model_name') if self.counters else None
        fields = model._meta.sorted_fields
        self._names = tuple(f.name for f in fields)
        self._readers = tuple(enumerate(map(_Reader, fields)))  # Derived once, here.
        self._skips = tuple(reader.skip for _, reader in self._readers)  # (A row alone.)
        self._ones = tuple(reader.one for _, reader in self._readers)
        # list_models(rows=True): a named tuple of the same fields and values (ModelRow).
        self.Row = collections.namedtuple('ModelRow', self._names)
        # The columns whose Python values the driver does not take as they are (timestamps,
        # enums, JSON), with how each is stored; derived from the fields' own db_value.
        by_name = model._meta.fields
        self._stored = tuple((i, self._encoder(by_name[name])) for i, name in enumerate(columns)
                             if self._encoder(by_name[name]) is not None)
        self._memo = [(None, None)] * len(columns)  # (value, stored): see stored().
        self._cache = {}
        self._walks = {}  # tags -> (the key walked, until when): see Listings.walked.

    # -- writes --------------------------------------------------------------------------

    def insert_sql(self, width=None, returning=False):
        """The INSERT of one row of ``columns``, or of its first ``width`` columns: a row that
        stops there leaves the rest to their defaults. With ``counters`` (SQLite) the row ends
        with its version (``_numbered``). ``returning`` (PostgreSQL): RETURNING the id and the
        version the database's trigger gave the row."""
        columns = self.columns[:width]
        key = ('insert', len(columns), returning)
        if key not in self._cache:
            M = self.model
            fields = [M._meta.fields[name] for name in columns]
            if self.counters is not None:
                fields.append(M.version)
            query = M.insert_many([tuple(range(len(fields)))], fields=fields)
            if returning:
                query = query.returning(M.id, M.version)
            self._cache[key] = query.sql()[0]
        return self._cache[key]

    def _numbered(self, rows):
        """SQLite: ``rows`` (a list, in order), each with its version appended -- the next of
        its name -- after moving the names' counters on.

        Inside the write transaction, so no other writer is between the read of a counter and
        the rows. 0010's 'given' trigger fires only for a version past its name's counter, so
        it does not fire for these rows: numbering by trigger cost ~10 us a row, and its
        'new row' path wrote each row twice (add_models of 100,000 rows: 2.8 s -> 7.4 s).
        """
        i = self._name_index
        names = list({row[i] for row in rows})
        # Padded to a power of two (the last name repeated): a few statements in the driver's
        # cache, not one large IN list per length (0010 measured +10 MB RSS that way).
        names += names[-1:] * ((1 << (len(names) - 1).bit_length()) - len(names))
        db = self.database
        last = dict(db.execute_sql(self._counters_sql(len(names)), names).fetchall())
        numbered = []
        for row in rows:
            name = row[i]
            version = last[name] = last.get(name, 0) + 1
            numbered.append(tuple(row) + (version,))
        db.cursor().executemany(self._counters_sql(), list(last.items()))
        return numbered

    def _counters_sql(self, names=None):
        """SQLite: the SELECT of ``names`` counters (name, last version), or with None the
        upsert of one (name, last version) pair."""
        key = ('counters', names)
        if key not in self._cache:
            C = self.counters
            if names is None:
                query = C.insert(model_name='', last_version=0).on_conflict(
                    conflict_target=[C.model_name],
                    update={C.last_version: peewee.EXCLUDED.last_version})
            else:
                query = C.select(C.model_name, C.last_version).where(
                    C.model_name.in_([''] * names))
            self._cache[key] = query.sql()[0]
        return self._cache[key]

    def _version_sql(self):
        """MySQL: the SELECT of one row's version, by id."""
        if 'version' not in self._cache:
            M = self.model
            self._cache['version'] = M.select(M.version).where(M.id == 0).sql()[0]
        return self._cache['version']

    def _width(self, row):
        """Trailing optional columns left NULL are left out: their default is NULL, and a
        shorter statement is parsed and planned faster (PostgreSQL: ~30 us of ~250 a row)."""
        width = len(row)
        while width > self._optional and row[width - 1] is None:
            width -= 1
        return width

    # The event's columns insert_added sends as values (the rest come from the CTEs).
    _EVENT_VALUES = ('at', 'actor', 'kind', 'model_name', 'after')

    def _added_sql(self, width):
        """PostgreSQL: (SQL, its first parameters) of insert_added for a row of ``width``."""
        key = ('added', width)
        if key not in self._cache:
            Event, C, channel = self.events
            counter = C.insert(id=1, last_seq=1).on_conflict(
                conflict_target=[C.id], update={C.last_seq: C.last_seq + 1}).returning(C.last_seq)
            counter_sql, counter_params = counter.sql()
            head, _, tail = self.insert_sql(width, returning=True).partition(' VALUES (')
            values, _, returning = tail.partition(') RETURNING ')
            quote = self.database.quote  # The two quote characters: '""'.

            def q(name):
                return quote[0] + name + quote[1]
            E = Event._meta
            sent = [q(E.fields[name].column_name) for name in self._EVENT_VALUES]
            sql = ('WITH "c" AS (%s), "m" AS (%s SELECT %s FROM "c" RETURNING %s) '
                   'INSERT INTO %s (%s, %s, %s, %s) SELECT "c".%s, %s, "m".%s, "m".%s FROM "c", '
                   '"m" RETURNING %s, %s, %s%s' % (
                       counter_sql, head, values, returning, q(E.table_name),
                       q(E.fields['seq'].column_name), ', '.join(sent),
                       q(E.fields['model_id'].column_name), q(E.fields['version'].column_name),
                       q(C._meta.fields['last_seq'].column_name),
                       ', '.join(['%s'] * len(sent)), q('id'), q('version'),
                       q(E.fields['model_id'].column_name), q(E.fields['version'].column_name),
                       q(E.fields['seq'].column_name), ''.join(
                           ', ' + notify for notify in [dialect_of(self.database).notify_sql(
                               channel, q(E.fields['seq'].column_name))] if notify)))
            self._cache[key] = (sql, list(counter_params))
        return self._cache[key]

    def insert_added(self, row, event):
        """PostgreSQL: insert one checked row and its model.added event (``event``: the
        event's values, modelstore.registry.events) in one statement, sent without
        BEGIN/COMMIT; returns (id, version, seq). The event counter's upsert runs first -- the
        model's INSERT reads from it -- so its lock is taken before the version trigger's lock
        on the name's counter, in the order every registry change takes them."""
        width = self._width(row)
        sql, params = self._added_sql(width)
        fields = self.events[0]._meta.fields
        params = params + self.stored(row[:width]) + [
            fields[name].db_value(event[name]) for name in self._EVENT_VALUES]
        return tuple(self.database.execute_sql(sql, params).fetchone()[:3])

    def insert(self, row):
        """Insert one checked row (``rules.Rules.row``); returns its (id, version). The
        version is the database's trigger's on PostgreSQL (returned by the INSERT),
        modelstore's own on SQLite (``_numbered``)."""
        return self.insert_prepared(self.prepare(row))

    def prepare(self, row):
        """A checked row as ``insert_prepared`` takes it: trailing NULLs cut (``_width``),
        values stored -- done before the write transaction, whose lock then waits less."""
        return self.stored(row[:self._width(row)])

    def insert_prepared(self, row):
        """``insert`` of a row ``prepare`` made."""
        db = self.database
        width = len(row)
        if db.returning_clause:
            return tuple(db.execute_sql(self.insert_sql(width, returning=True), row).fetchone())
        if self._read_version:
            id_ = db.execute_sql(self.insert_sql(width), row).lastrowid
            return id_, db.execute_sql(self._version_sql(), (id_,)).fetchone()[0]
        if self.counters is None:
            return db.execute_sql(self.insert_sql(width), row).lastrowid, None
        [row] = self._numbered([row])
        return db.execute_sql(self.insert_sql(width), row).lastrowid, row[-1]

    def insert_many(self, rows, inserted=None):
        """Insert checked rows (``rules.Rules.row``): on SQLite, numbered in chunks of 500
        (``_numbered``; its IN list stays within old SQLite's 999 parameters), one executemany
        per run of rows of the same width (a row may stop before the optional columns: see
        ``insert_sql``), and on MySQL; multi-row INSERTs of 1000 (one round trip each) on
        PostgreSQL, each batch's ids told to ``inserted(ids)`` (then True is returned)."""
        # SQLite: two widths at most, the columns every row fills or all of them (an
        # executemany each). A server: every row whole, so that rows alternating between giving
        # an optional value and not stay in one multi-row INSERT (one INSERT a row otherwise).
        full = len(self.columns)
        keep = (self._optional, full) if self.counters is not None else (full,)
        pad = (None,) * full
        rows = (row if len(row) in keep else tuple(row) + pad[len(row):] for row in rows)
        if not self.database.returning_clause:
            cursor = self.database.cursor()
            numbered = self._numbered if self.counters is not None else list
            extra = 1 if self.counters is not None else 0
            while True:
                chunk = list(map(self.stored, itertools.islice(rows, 500)))
                if not chunk:
                    return
                for width, group in itertools.groupby(numbered(chunk), len):
                    cursor.executemany(self.insert_sql(width - extra), group)
        # (peewee's insert_many stores each value through its field's db_value.)
        fields = self.model._meta.fields
        for width, group in itertools.groupby(rows, len):
            names = [fields[name] for name in self.columns[:width]]
            batch = []
            for row in group:
                batch.append(row)
                if len(batch) == 1000:
                    self._insert_batch(batch, names, inserted)
                    batch = []
            if batch:
                self._insert_batch(batch, names, inserted)
        return True

    def _insert_batch(self, batch, names, inserted):
        """PostgreSQL: one multi-row INSERT; ``inserted(ids)`` is told the ids RETURNING
        gave (another program's rows may be numbered between them)."""
        cursor = self.database.execute(self.model.insert_many(batch, fields=names))
        if inserted is not None:
            inserted([row[0] for row in cursor.fetchall()])

    def _encoder(self, field):
        return encoder(field)

    def stored(self, row):
        """A checked row (Python values, in ``columns`` order) as a plain statement takes it.

        The last value each column converted is remembered with what it became: the rows of
        one ``add_models`` call share their default timestamps (the call's time), converted
        once instead of once a row (2 us of a row's 3.4)."""
        row = list(row)
        width = len(row)
        memo = self._memo
        for i, encode in self._stored:
            if i < width:
                value = row[i]
                if value is not None:
                    last = memo[i]
                    if last[0] is value:
                        row[i] = last[1]
                    else:
                        row[i] = encode(value)
                        memo[i] = (value, row[i])
        return row

    def stored_model(self, data):
        """The model just stored with ``data`` (every field's Python value, by name): nothing
        dirty, as Model.create() leaves it, without Model.__init__'s setattr per field."""
        model = self.model.__new__(self.model)
        model.__data__ = data
        model._dirty = set()
        model.__rel__ = {}
        return model

    def models(self, cursor, rows=False):
        """Models from the rows of a SELECT of every column in field order; ``rows``: named
        tuples (``Row``) of the same fields and values instead.

        Column by column: a column whose values all have the type its field returns (or are
        NULLs it keeps) is taken as it is; one a C function reads (``fromisoformat`` for
        timestamps, ``bool`` for SQLite's 0 and 1) is mapped through it; any other value goes
        through its field's ``python_value``."""
        fetched = cursor.fetchall()
        if not fetched:
            return []
        if len(fetched) == 1:  # A lookup: value by value (columns of one cost ~3x as much).
            values = [self._row(fetched[0])]
        else:
            values = self._columns(fetched)
        if rows:  # (Row._make, without its Python-level call per row.)
            return list(map(functools.partial(tuple.__new__, self.Row), values))
        M = self.model
        new = M.__new__
        names = self._names
        out = []
        append = out.append
        for row in values:
            model = new(M)
            # As peewee's ModelObjectCursorWrapper makes it: a fetched row, nothing dirty.
            model.__data__ = dict(zip(names, row))
            model._dirty = set()
            model.__rel__ = {}
            append(model)
        return out

    def _row(self, row):
        """One fetched row's values, each read as its column would be."""
        try:
            return [value if type(value) in skip else one(value)
                    for value, skip, one in zip(row, self._skips, self._ones)]
        except UnreadableValue as exc:
            raise exc.at([row[self._names.index('id')]]) from None

    def _columns(self, fetched):
        """The fetched rows' values, read column by column: a column whose values' types
        its field keeps (``skip``, ~1 us a column of 50) is left as it is."""
        columns = list(zip(*fetched))
        nulls = (None,) * len(fetched)
        for (index, reader), column, skip in zip(self._readers, columns, self._skips):
            # A column of NULLs (most optional ones) compares equal in ~0.15 us.
            kinds = _NULL_KINDS if column == nulls else set(map(type, column))
            if kinds <= skip:
                continue
            try:
                columns[index] = reader.read(column, kinds)
            except UnreadableValue as exc:
                raise exc.at([self._unreadable_id(columns, reader, column)]) from None
        return zip(*columns)

    def _unreadable_id(self, columns, reader, column):
        """The id of the first row whose value in ``column`` its field cannot read."""
        for id_, value in zip(columns[self._names.index('id')], column):
            try:
                reader.read((value,), {type(value)})
            except UnreadableValue:
                return id_
        return None


_NULL_KINDS = frozenset({type(None)})


class _Reader:
    """How one field's column of fetched values becomes its Python values, derived from the
    field once: the types it takes as they are (``skip``), and a C function equal to
    ``python_value`` on values of one type (``fast``: that type -> the function), which raises
    ValueError on a value it cannot read (then ``python_value`` decides)."""

    def __init__(self, field):
        self.convert = field.python_value
        kept = {_already(field), type(None) if _keeps_none(field) else None}
        self.skip = frozenset(kept - {None})
        self.fast = {}
        text_reader = getattr(field, 'read_text', None)
        if text_reader is not None:
            self.fast[str] = text_reader
        adapt = getattr(type(field), 'adapt', None)
        if type(field).python_value is peewee.Field.python_value and isinstance(adapt, type):
            # peewee's python_value is adapt(value) here, adapt a builtin such as bool.
            self.fast.update(dict.fromkeys((int, float, str, bool), adapt))

    def one(self, value):
        """``read`` of a column holding only ``value`` (of a type not in ``skip``)."""
        convert = self.fast.get(type(value))
        if convert is not None:
            try:
                return convert(value)
            except ValueError:
                pass
        return self.convert(value)

    def read(self, column, kinds):
        none = type(None)
        values = kinds - {none}
        convert = self.fast.get(next(iter(values))) if len(values) == 1 else None
        if convert is not None and (none not in kinds or none in self.skip):
            try:
                if none in kinds:
                    return [None if v is None else convert(v) for v in column]
                return list(map(convert, column))
            except ValueError:
                pass
        skip, python_value = self.skip, self.convert
        return [v if type(v) in skip else python_value(v) for v in column]


# peewee's own conversions that return a value of this type unchanged (Field.python_value:
# None stays None, anything else goes through adapt).
# (Not BooleanField: SQLite returns its values as 0 and 1, so bool() is always called.)
_IDENTITY = {peewee.IntegerField.adapt: int, peewee._StringField.adapt: str}


def _keeps_none(field):
    """Whether ``field.python_value(None)`` is None (then a NULL is left as it is)."""
    try:
        return field.python_value(None) is None
    except Exception:  # noqa: BLE001 -- a field that cannot take None is always called.
        return False


def _already(field):
    """The type whose values ``field.python_value`` returns unchanged, or None when it must be
    called on every value (a field with a conversion of its own: timestamps, enums, JSON)."""
    if type(field).python_value is not peewee.Field.python_value:
        return None
    return _IDENTITY.get(type(field).adapt)
