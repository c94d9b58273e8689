"""Case-insensitive substring search, the same on every backend: ``name_contains=``."""
import peewee
from peewee import fn

__all__ = ['contains', 'like_pattern']


def contains(field, pattern):
    """``field`` holds the LIKE ``pattern`` (built by ``like_pattern``), ignoring case: ILIKE
    on PostgreSQL, LIKE on SQLite (which ignores the case of ASCII letters), LOWER() LIKE
    LOWER() on MySQL."""
    database = field.model._meta.database
    if isinstance(database, peewee.MySQLDatabase):  # Its columns compare binary (as elsewhere).
        # The session has NO_BACKSLASH_ESCAPES (modelstore.shared.mysql): the same ESCAPE text.
        return peewee.NodeList((fn.LOWER(field), peewee.SQL('LIKE'), fn.LOWER(pattern),
                                peewee.SQL("ESCAPE '\\'")))
    operator = 'ILIKE' if isinstance(database, peewee.PostgresqlDatabase) else 'LIKE'
    return peewee.NodeList((field, peewee.SQL(operator), pattern, peewee.SQL("ESCAPE '\\'")))


def like_pattern(needle):
    """``%needle%`` with LIKE's wildcards in ``needle`` escaped, so they match themselves."""
    return '%%%s%%' % needle.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_')
