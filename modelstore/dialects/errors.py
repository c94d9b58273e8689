"""What a driver's error means, read from its code, not from its message's words.

Every backend's codes are here: an error is classified by the driver that raised it, not by a
database.

PostgreSQL's messages follow the server's ``lc_messages`` (German: ``Relation »x« existiert
nicht``), so they are classified by SQLSTATE. SQLite's messages are not translated, but its
codes are still the contract: the primary result code (``sqlite_errorcode`` & 0xff, Python
3.11+) where the driver gives it. SQLite reports a missing table or column with the generic
SQLITE_ERROR, so for that one its (fixed, English) message is what distinguishes it; on Python
before 3.11, which has no codes, its fixed messages are matched instead.
"""
import re
import sqlite3

from peewee import IntegrityError, PeeweeException

from ..exceptions import ValidationError, one_line

__all__ = ['DRIVER_ERRORS', 'driver_error', 'sqlstate', 'mysql_errno', 'is_busy', 'is_deadlock',
           'cannot_open',
           'is_schema_missing', 'is_constraint', 'constraint_column', 'constraint_error',
           'raising']

SQLITE_ERROR, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_CANTOPEN = 1, 5, 6, 8, 14
SQLITE_CONSTRAINT = 19
# SQLSTATE: undefined_table, undefined_column; lock_not_available; class 23: constraints.
UNDEFINED = ('42P01', '42703')
DEADLOCK_DETECTED = '40P01'
LOCK_NOT_AVAILABLE = '55P03'
# MySQL/MariaDB error numbers: lock wait timeout, deadlock; no such table, unknown column.
MYSQL_LOCK_WAIT, MYSQL_DEADLOCK, MYSQL_NO_TABLE, MYSQL_NO_COLUMN = 1205, 1213, 1146, 1054
# A row refused: duplicate key, NULL, foreign key (2), CHECK (MariaDB, MySQL), too long, out of
# range, a value of the wrong type.
MYSQL_REFUSED = {1062: 'key', 1048: 'column', 1451: None, 1452: None, 4025: 'check',
                 3819: None, 1406: 'column', 1264: 'column', 1366: 'column'}

try:  # The optional drivers whose own cursors modelstore uses (executemany): their errors.
    from pymysql.err import MySQLError as _MySQLError
    DRIVER_ERRORS = (sqlite3.Error, _MySQLError)
except ImportError:
    DRIVER_ERRORS = (sqlite3.Error,)

_SQLITE_MISSING = re.compile(r'^(no such (table|column)|table \S+ has no column named)\b')
_SQLITE_BUSY = re.compile(r'^database (table )?is locked')


def driver_error(exc):
    """The driver's own exception under peewee's wrapper (peewee keeps it as ``orig``)."""
    return getattr(exc, 'orig', None) or exc


def sqlstate(exc):
    """PostgreSQL's SQLSTATE of ``exc``, or None."""
    return getattr(driver_error(exc), 'pgcode', None)


def mysql_errno(exc):
    """MySQL's error number of ``exc`` (PyMySQL: ``args[0]``), or None."""
    error = driver_error(exc)
    if type(error).__module__.split('.')[0] != 'pymysql':
        return None
    args = getattr(error, 'args', ())
    return args[0] if args and isinstance(args[0], int) else None


def _sqlite(exc):
    """(primary result code or None, message) of a SQLite error; None if it is not one."""
    error = driver_error(exc)
    if not isinstance(error, sqlite3.Error):
        return None
    code = getattr(error, 'sqlite_errorcode', None)
    return (code & 0xff if code is not None else None), str(error)


def is_busy(exc):
    """Another connection holds the lock this one needed (SQLite BUSY/LOCKED, PostgreSQL
    lock_not_available)."""
    found = _sqlite(exc)
    if found is not None:
        code, message = found
        if code is not None:
            return code in (SQLITE_BUSY, SQLITE_LOCKED)
        return bool(_SQLITE_BUSY.match(message))
    return sqlstate(exc) == LOCK_NOT_AVAILABLE or mysql_errno(exc) in (MYSQL_LOCK_WAIT,
                                                                        MYSQL_DEADLOCK)


def is_deadlock(exc):
    """The server chose this transaction as a deadlock's victim and rolled it back whole
    (PostgreSQL deadlock_detected; InnoDB 1213, "try restarting transaction"): nothing of it
    was stored, and running it again is the server's own advice."""
    return sqlstate(exc) == DEADLOCK_DETECTED or mysql_errno(exc) == MYSQL_DEADLOCK


def cannot_open(exc):
    """SQLite could not open, or not write, a file it needed (CANTOPEN, READONLY): a
    permission or a missing -shm, not a damaged database. Without codes (Python < 3.11):
    assumed."""
    found = _sqlite(exc)
    return found is not None and found[0] in (None, SQLITE_READONLY, SQLITE_CANTOPEN)


def is_schema_missing(exc):
    """A table or column the statement names is not there: the schema is behind the code."""
    found = _sqlite(exc)
    if found is not None:
        code, message = found
        return code in (None, SQLITE_ERROR) and bool(_SQLITE_MISSING.match(message))
    return sqlstate(exc) in UNDEFINED or mysql_errno(exc) in (MYSQL_NO_TABLE, MYSQL_NO_COLUMN)


def is_constraint(exc):
    """The database refused a row by a constraint (UNIQUE, NOT NULL, CHECK, FOREIGN KEY)."""
    if isinstance(exc, (IntegrityError, sqlite3.IntegrityError)) or mysql_errno(exc) in \
            MYSQL_REFUSED:
        return True
    found = _sqlite(exc)
    if found is not None:
        return found[0] == SQLITE_CONSTRAINT
    state = sqlstate(exc)
    return state is not None and state.startswith('23')


def constraint_column(exc, database=None):
    """The column a constraint failure names, where the database says which; else None.

    PostgreSQL: the error's own ``column_name`` field (NOT NULL), or the key of a unique
    violation's detail (``Key (model_name)=(m)``, also in translated messages). SQLite: the
    ``table.column`` its constraint messages end with. MySQL: the column its message quotes, a
    CHECK's ``table.column`` (MariaDB's JSON columns), or a duplicate key's first column (read
    from ``database``'s indexes).
    """
    error = driver_error(exc)
    kind = MYSQL_REFUSED.get(mysql_errno(exc))
    if kind is not None:
        return _mysql_column(kind, str(error.args[1] if len(error.args) > 1 else error),
                             database)
    diag = getattr(error, 'diag', None)
    if diag is not None:
        if getattr(diag, 'column_name', None):
            return diag.column_name
        match = re.search(r'\((\w+)\)=', getattr(diag, 'message_detail', None) or '')
        return match.group(1) if match else None
    match = re.search(r'constraint failed: \w+\.(\w+)', str(error))
    return match.group(1) if match else None


def _mysql_column(kind, message, database):
    if kind == 'column':
        match = re.search(r"column '([^']+)'", message, re.I)
        return match.group(1) if match else None
    if kind == 'check':
        match = re.search(r'CONSTRAINT `[^`.]*\.?([^`.]+)` failed', message)
        return match.group(1) if match else None
    match = re.search(r"for key '(?:([^'.]+)\.)?([^']+)'", message)
    if not match or database is None:
        return None
    for table in ([match.group(1)] if match.group(1) else database.get_tables()):
        for index in database.get_indexes(table):
            if index.name == match.group(2):
                return index.columns[0]
    return None


class raising:
    """Context manager: a driver or peewee error inside becomes ``cls(what: error)``, so that a
    public call raises only ModelStoreError subclasses."""

    def __init__(self, cls, what):
        self.cls = cls
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, (PeeweeException,) + DRIVER_ERRORS):
            raise self.cls('%s failed: %s' % (self.what, one_line(exc))) from exc
        return False


def constraint_error(exc, database=None):
    """A ValidationError for a row the database refused (a UNIQUE, NOT NULL or CHECK
    constraint, such as a unique index added by hand), naming the column where the database
    says which (MySQL: ``database`` to read a duplicate key's columns from). Nothing was
    written: the call's transaction is rolled back."""
    original = driver_error(exc)
    column = constraint_column(exc, database)
    text = ' '.join(str(original).split())
    if mysql_errno(exc) == 4025:  # MariaDB's CHECK (json_valid(...)) on a JSON column.
        text += (' (MariaDB checks a JSON column with JSON_VALID(), which also refuses a value '
                 'nested more than 31 levels deep)')
    return ValidationError(column, 'the database refused the row: %s' % text)
