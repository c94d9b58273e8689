"""The statements of list_models and iter_models: filters, the tag walked, the keyset.

Part of ModelQueries (modelstore.registry.fastpath, whose cache of statements and whose
``models()`` they use): a listing's statement is built once per shape of call by peewee from
the models, with sentinels for its values (``_placed``).

Tags: a listing by date walks one tag's rows in the (key, value, creation_date, model_id)
index, newest or oldest first, and looks each of those models up for any other tag by
(model_id, key). Among two tags or more it walks the one the fewest models carry (``walked``:
one statement counting each tag's index entries, up to CARRIERS), so a page reads at most that
tag's rows; past CARRIERS every tag is common and any is walked (the first by key). The
choice is kept for WALK_SECONDS per set of tags: it steers only how fast a page is read, never
what it holds, and counting cost a two-tag page a third of its time.
"""
from time import monotonic

import peewee
from peewee import fn

from ..dialects import dialect_of
from .likes import contains
from .paging import keyset

__all__ = ['Listings', 'LISTING_FILTERS', 'ORDERS', 'CARRIERS', 'WALK_SECONDS']

# The filters list_models offers, in the order their conditions are added.
LISTING_FILTERS = ('task', 'is_custom_base_model', 'name_prefix', 'base_model', 'model_name',
                   'name_contains', 'created_after', 'created_before', 'not_archived',
                   'only_archived')
# Filters whose presence is the whole condition (no value is sent): archived_at IS [NOT] NULL.
_FLAGS = frozenset({'not_archived', 'only_archived'})
# Sentinels: distinct from each other, and from the constants peewee adds (SUBSTR's 1, -1).
_SENTINELS = {'task': '\x00task', 'is_custom_base_model': False, 'name_prefix': '\x00' * 999,
              'prefix_length': 1000, 'base_model': '\x00base_model', 'model_name': '\x00name',
              'name_contains': '\x00contains', 'created_after': '\x00after',
              'created_before': '\x00before', 'limit': 1000003, 'offset': 1000033,
              'model_id': 1000037, 'version': 1000039}
ORDERS = ('newest', 'oldest', 'name', 'metric')
# A listing with two tags or more walks the one the fewest models carry, each counted up to
# this many index entries: past it, a tag is "common" and the first by key is walked.
CARRIERS = 1000
WALK_SECONDS = 30.0  # How long a set of tags keeps the tag it walks before it is counted again.
_WALKS_KEPT = 1024  # Sets of tags remembered at most (all forgotten when there are more).


def _tag_sentinels(count):
    """``count`` tags of sentinels whose order by key is their index's: {'tags': the tags,
    'slots': slot name -> sentinel}."""
    tags, slots = {}, {}
    for index in range(count):
        key, value = '\x00tag_key%03d' % index, '\x00tag_value%03d' % index
        tags[key] = value
        slots['tag_key%d' % index], slots['tag_value%d' % index] = key, value
    return {'tags': tags, 'slots': slots}


def _tag_slots(tags):
    """The slots of ``tags`` (sorted (key, value) pairs): the values their sentinels stand for."""
    given = {}
    for index, (key, value) in enumerate(tags):
        given['tag_key%d' % index], given['tag_value%d' % index] = key, value
    return given


def _params(slots, given):
    """A cached statement's parameters: each slot's value from ``given``, the constants kept."""
    return [given[slot] if kind == 'slot' else slot for kind, slot in slots]


class Listings:
    """ModelQueries' listing statements (``self.model``, ``self.tags``, ``self.database``,
    ``self._cache`` and ``self.models`` are ModelQueries')."""

    def listing_query(self, values, limit=None, offset=0, order='newest', walked=None):
        """The plain peewee query of list_models: the oracle, and what the cache is built from.

        ``values`` maps filter names (LISTING_FILTERS) to their checked, stored values
        (``name_contains`` as its LIKE pattern, the dates as the text they compare with).
        ``walked``: the key of the tag to walk (``walked()``; None: the first by key).
        """
        query, walk = self._filtered(values, order, walked)
        M = self.model
        if order == 'metric':  # The lowest first (a loss): values['metric'] is checked.
            query = query.order_by(self.metric(values['metric']), M.id)
        elif 'model_name' in values:
            # A name's versions, by version: 0009's partial index (every row has a version
            # once 0010 has run; the condition lets the planner use the index).
            query = query.where(M.version.is_null(False)).order_by(
                M.version.desc() if order == 'newest' else M.version)
        elif order == 'name':
            query = query.order_by(M.model_name, M.id)
        else:  # By date: on the walked tag, its copy of creation_date (the index's order).
            keys = self._date_keys(walk)
            query = query.order_by(*[k if order == 'oldest' else k.desc() for k in keys])
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return query

    def count_query(self, values, walked=None):
        """count_models' statement: COUNT(*) over the listing's conditions, unordered. Not
        peewee's ``count()``, which wraps the query in a subquery (``SELECT COUNT(1) FROM
        (SELECT 1 ...)``); a model carries one row per tag key, so the walked tag's join
        counts each model once. With no filter but the default (archived models left out):
        the table's count less the archived ones' (0017's index of them), in one statement,
        where counting the rows whose archived_at is NULL reads every row."""
        M = self.model
        if set(values) == {'not_archived'}:
            every = M.select(fn.COUNT(peewee.SQL('*')))
            archived = M.select(fn.COUNT(peewee.SQL('*'))).where(M.archived_at.is_null(False))
            return peewee.Select(columns=[peewee.NodeList((every, peewee.SQL('-'), archived))]
                                 ).bind(self.database)
        return self.listing_query(values, walked=walked).order_by().select(
            fn.COUNT(peewee.SQL('*')))

    def keyset(self, values, order):
        """The listing ordered by its keyset and ``after(id)``, the condition selecting the
        rows past the row ``id`` (modelstore.registry.paging): iter_models' pages. Walking a
        tag, the keys are the walked rows' copies, so each page is a range of its index."""
        query, walk = self._filtered(values, order)
        M = self.model
        if order == 'metric':
            final = self.metric(values['metric'])
            return keyset(M, query, (final, M.id), final, down=False)
        if 'model_name' in values:  # A name's versions.
            return keyset(M, query.where(M.version.is_null(False)), (M.version, M.id),
                          M.version, down=order == 'newest')
        if order == 'name':
            return keyset(M, query, (M.model_name, M.id), M.model_name, down=False)
        return keyset(M, query, self._date_keys(walk), M.creation_date,
                      down=order == 'newest')

    def _date_keys(self, walk):
        M = self.model
        return (M.creation_date, M.id) if walk is None else (walk.creation_date, walk.model_id)

    @staticmethod
    def walks(values, order):
        """Does a listing by these filters walk a tag's rows (by date, not one name's)?"""
        return order in ('newest', 'oldest') and 'model_name' not in values

    def walked(self, values, order):
        """The key of the tag a listing walks among two or more: the one the fewest models
        carry (each counted up to CARRIERS, by one statement), so that each of its rows is
        checked for the others and a page reads at most that many; None: the first by key."""
        tags = sorted(values.get('tags', {}).items())
        if len(tags) < 2 or not self.walks(values, order):
            return None
        memo = tuple(tags)
        now = monotonic()
        kept = self._walks.get(memo)
        if kept is not None and now < kept[1]:
            return kept[0]
        sentinels = _tag_sentinels(len(tags))
        sql, slots = self._placed(('carriers', len(tags)),
                                  dict(sentinels['slots'], sample={'tags': sentinels['tags']}),
                                  self._carriers_query)
        given = _tag_slots(tags)
        counts = self.database.execute_sql(sql, [given[slot] if kind == 'slot' else slot
                                                 for kind, slot in slots]).fetchone()
        key = tags[min(range(len(tags)), key=lambda i: counts[i])][0]
        if len(self._walks) >= _WALKS_KEPT:
            self._walks.clear()
        self._walks[memo] = (key, now + WALK_SECONDS)
        return key

    def _carriers_query(self, sample):
        T = self.tags
        counted = []
        for index, (key, value) in enumerate(sorted(sample['tags'].items())):
            carriers = T.select(T.id).where((T.key == key) & (T.value == value)).limit(
                peewee.SQL(str(CARRIERS)))
            counted.append(peewee.Select([carriers.alias('c%d' % index)],
                                         [fn.COUNT(peewee.SQL('*'))]))
        return peewee.Select(columns=counted).bind(self.database)

    def _filtered(self, values, order, walked=None):
        """The listing's conditions, unordered, and the alias of the tag it walks (None):
        ``walked``, the key of that tag (None: the first by key)."""
        M = self.model
        query = M.select()
        for name in ('task', 'is_custom_base_model', 'base_model', 'model_name'):
            if name in values:
                query = query.where(getattr(M, name) == values[name])
        if 'name_prefix' in values:
            prefix = values['name_prefix']
            length = values.get('prefix_length', len(prefix))
            query = query.where(fn.SUBSTR(M.model_name, 1, length) == prefix)
        if 'name_contains' in values:
            query = query.where(contains(M.model_name, values['name_contains']))
        # The bounds are compared as the stored text: IsoTimestampField's db_value would turn a
        # sentinel into a timestamp.
        if 'created_after' in values:
            query = query.where(M.creation_date >= peewee.Value(values['created_after'],
                                                                converter=False))
        if 'created_before' in values:
            query = query.where(M.creation_date < peewee.Value(values['created_before'],
                                                               converter=False))
        T = self.tags
        tags = sorted(values.get('tags', {}).items())
        walk = None  # By date: one tag's rows, walked in the (key, value, date) index.
        if tags and self.walks(values, order):
            index = [k for k, _ in tags].index(walked) if walked is not None else 0
            (key, value) = tags.pop(index)
            walk = T.alias('walk')
            query = query.join(walk, on=(walk.model_id == M.id)).where(
                (walk.key == key) & (walk.value == value))
        for key, value in tags:
            if walk is None:  # Every carrier read: from the (key, value, ...) index.
                query = query.where(M.id.in_(T.select(T.model_id).where(
                    (T.key == key) & (T.value == value))))
            else:  # Walking a tag: each of its models looked up by (model_id, key).
                query = query.where(fn.EXISTS(dialect_of(self.database).probed_per_row(T.select(T.id).where(
                    (T.model_id == walk.model_id) & (T.key == key) & (T.value == value)))))
        if 'metric' in values:
            final = self.metric(values['metric'])
            query = query.where(final.is_null(False))
            if 'metric_below' in values:
                query = query.where(final < values['metric_below'])
            if 'metric_above' in values:
                query = query.where(final > values['metric_above'])
        if 'not_archived' in values:
            query = query.where(M.archived_at.is_null())
        if 'only_archived' in values:
            query = query.where(M.archived_at.is_null(False))
        return query, walk

    def metric(self, name):
        """The final value of metric ``name`` (checked) in ``metrics``, as a double, or NULL
        (the dialect's JSON functions: the same semantics on every backend)."""
        return dialect_of(self.database).final_number(self.model.metrics, name)

    def listing(self, values, limit=None, offset=0, order='newest', rows=False):
        """The models list_models returns for these filters and page (``rows``: as tuples)."""
        return self.models(self._execute(values, limit, offset, order, counted=False), rows)

    def count(self, values):
        """How many models list_models lists for these filters: count_query's statement,
        walking the rarest of several tags as a listing does."""
        return self._execute(values, None, 0, 'newest', counted=True).fetchone()[0]

    def _execute(self, values, limit, offset, order, counted):
        """The cursor of the listing's statement (its COUNT(*) if ``counted``), from the
        cache when it can be placed there."""
        tags = sorted(values.get('tags', {}).items())
        walked = self.walked(values, order)
        sql, slots = (None, None) if 'metric' in values else self._listing_sql(
            frozenset(values), len(tags), None if walked is None else
            [k for k, _ in tags].index(walked), limit is not None, bool(offset), order,
            counted)
        if sql is None:  # A metric, or a value the cache cannot place: the plain query.
            query = self.count_query(values, walked) if counted else \
                self.listing_query(values, limit, offset, order, walked)
            return self.database.execute(query)
        given = dict(values, limit=limit, offset=offset, **_tag_slots(tags))
        if 'name_prefix' in values:
            given['prefix_length'] = len(values['name_prefix'])
        return self.database.execute_sql(sql, _params(slots, given))

    def _listing_sql(self, filters, tags, walked, paged, offset, order, counted=False):
        """The listing's statement for these filters (``tags``: how many tags; ``walked``:
        the index of the walked one, by key; ``counted``: its COUNT(*)), and where each of
        its parameters comes from; (None, None) if the statement cannot be cached."""
        sample = {name: _SENTINELS[name] for name in filters - _FLAGS - {'tags'}}
        if 'name_prefix' in filters:
            sample['prefix_length'] = _SENTINELS['prefix_length']
        wanted = dict(sample, **_tag_sentinels(tags)['slots'])
        if paged:
            wanted['limit'] = _SENTINELS['limit']
        if offset:
            wanted['offset'] = _SENTINELS['offset']
        sample.update(dict.fromkeys(filters & _FLAGS, True))
        if tags:
            sample['tags'] = _tag_sentinels(tags)['tags']

        def build(sample):
            walk = None if walked is None else sorted(sample['tags'])[walked]
            if counted:
                return self.count_query(sample, walk)
            return self.listing_query(sample, _SENTINELS['limit'] if paged else None,
                                      _SENTINELS['offset'] if offset else 0, order, walk)
        return self._placed(('count' if counted else 'list', filters, tags, walked, paged,
                             offset, order), dict(wanted, sample=sample), build)

    # -- one model: get_model (by id), get_model_version, get_latest_model ----------------------

    def lookup_query(self, what, value, version=None):
        """The plain peewee query of a lookup (the oracle, and what the cache is built from):
        ``what`` 'id' (``value`` the id), 'version' (of the name ``value``), 'latest' (the
        highest version of the name ``value`` that is not archived) or 'latest archived too'."""
        M = self.model
        if what == 'id':
            query = M.select().where(M.id == value)
        elif what == 'version':
            query = M.select().where((M.model_name == value) & (M.version == version))
        else:
            query = M.select().where((M.model_name == value) & M.version.is_null(False))
            if what == 'latest':
                query = query.where(M.archived_at.is_null())
            query = query.order_by(M.version.desc())
        return query.limit(1)

    def lookup(self, what, value, version=None):
        """The model lookup_query finds, or None: its statement built once (each lookup built
        its query per call: 3.2-3.6x the SQL it sends at 10M models, issue 30)."""
        sentinel = _SENTINELS['model_id'] if what == 'id' else _SENTINELS['model_name']
        sql, slots = self._placed(('lookup', what), {
            'sample': {}, 'value': sentinel, **({'version': _SENTINELS['version']} if
                                                what == 'version' else {})},
            lambda sample: self.lookup_query(what, sentinel, _SENTINELS['version']))
        if sql is None:
            found = self.database.execute(self.lookup_query(what, value, version))
        else:  # Each value as its field stores it, as peewee's query would send it.
            M = self.model
            given = {'value': (M.id if what == 'id' else M.model_name).db_value(value),
                     'version': M.version.db_value(version)}
            found = self.database.execute_sql(sql, _params(slots, given))
        models = self.models(found)
        return models[0] if models else None

    def _placed(self, key, wanted, build):
        """A statement kept in the cache under ``key``: ``build(sample)`` renders it with
        sentinel values (``wanted['sample']``), and each parameter is traced back to the one
        sentinel (the other items of ``wanted``: slot name -> sentinel) it equals, else kept
        as a constant. (sql, slots), or (None, None) if not every slot was placed once."""
        if key not in self._cache:
            wanted = dict(wanted)
            sample = wanted.pop('sample')
            query = build(sample)
            sql, params = query.sql()
            slots = []
            for param in params:
                names = [n for n, v in wanted.items() if type(v) is type(param) and v == param]
                slots.append(('slot', names[0]) if len(names) == 1 else ('constant', param))
            found = [slot for kind, slot in slots if kind == 'slot']
            self._cache[key] = (sql, slots) if sorted(found) == sorted(wanted) else (None, None)
        return self._cache[key]
