"""What a driver's error means: moved to ``modelstore.dialects.errors`` (the dialect layer).

Kept for the registry's modules that still import it from here (store, calls, tasks: the lead
moves them); nothing else should.
"""
from ..dialects.errors import (DRIVER_ERRORS, LOCK_NOT_AVAILABLE, MYSQL_LOCK_WAIT, cannot_open,
                               constraint_column, constraint_error, driver_error, is_busy,
                               is_constraint, is_schema_missing, mysql_errno, raising, sqlstate)

__all__ = ['DRIVER_ERRORS', 'driver_error', 'sqlstate', 'mysql_errno', 'is_busy', 'cannot_open',
           'is_schema_missing', 'is_constraint', 'constraint_column', 'constraint_error',
           'raising', 'LOCK_NOT_AVAILABLE', 'MYSQL_LOCK_WAIT']
