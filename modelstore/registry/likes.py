"""Case-insensitive substring search, the same on every backend: ``name_contains=``."""
from ..dialects import dialect_of, like_pattern

__all__ = ['contains', 'like_pattern']


def contains(field, pattern):
    """``field`` holds the LIKE ``pattern`` (built by ``like_pattern``), ignoring case: ILIKE
    on PostgreSQL, LIKE on SQLite (which ignores the case of ASCII letters), LOWER() LIKE
    LOWER() on MySQL (modelstore.dialects)."""
    return dialect_of(field.model._meta.database).contains(field, pattern)
