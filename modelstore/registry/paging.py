"""Reading a listing a page at a time by its sort key (keyset).

Never by OFFSET past the first page: ``iter_models`` and ``iter_tasks`` keep the memory of one
page at any table size."""

__all__ = ['keyset', 'pages']


def keyset(M, listing, keys, stored, down):
    """``listing`` (a query of model ``M``) ordered by ``keys`` (the sort key, then a column
    holding the row's id as the tie-break; descending if ``down``), and ``after(id)``: the
    condition selecting the rows past the row ``id`` in that order. ``stored``: the sort key's
    value as the row ``id`` holds it, an expression on ``M``."""
    key, tie = keys
    base = listing.order_by(*[k.desc() if down else k for k in keys])

    def after(last_id):
        # The key's stored value is read by a subquery: it compares exactly as stored,
        # whatever its format (legacy timestamps). Written as a range on the key AND-ed with
        # the tie-break (not an OR of the two), so the (key, id) index serves it.
        value = M.select(stored).where(M.id == last_id)
        if down:
            return (key <= value) & ((key < value) | (tie < last_id))
        return (key >= value) & ((key > value) | (tie > last_id))
    return base, after


def pages(run, what, base, after, limit, offset, page, read):
    """Yield the rows of ``base`` a page at a time, each page read by ``read(query)`` in a call
    of its own (``run(what, body)``); ``after(id)`` selects the rows past the row ``id``."""
    last = None
    while limit is None or limit > 0:
        size = page if limit is None else min(page, limit)
        query = (base if last is None else base.where(after(last))).limit(size)
        if last is None and offset:
            query = query.offset(offset)
        rows = run(what, lambda q=query: read(q))
        yield from rows
        if len(rows) < size:
            return
        last = rows[-1].id
        limit = None if limit is None else limit - len(rows)
