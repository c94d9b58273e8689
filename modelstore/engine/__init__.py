"""The migration engine: what an operator runs (``modelstore migrate`` and the other commands).

Scripts are found and fingerprinted (``scripts``), their history kept (``history``), a run
serialised by the dialect's run session (its lock, transaction and foreign-key watch), planned
against the live schema (``status``, ``adopt``), applied or reverted (``runner``'s facade, one
``run`` per call, told to an ``observer``; ``steps``), its losses foreseen (``losses``), the
database backed up first and restorable (``backup``, ``restore``), and the schema compared with
the models (``drift``). It imports the shared layers only, never the registry.
"""
from importlib import import_module

# Each public name, loaded on first use (``__getattr__``), and the module it comes from: a
# command loads what it runs (``status`` neither backups, drift, shadows nor the run), so the
# CLI starts as fast as peewee's own (start-up: issue 30).
_LAZY = {
    **dict.fromkeys(('KEEP', 'Backup', 'Backups'), 'backup'),
    **dict.fromkeys(('ClientRow', 'Clients', 'Registration'), 'clients'),
    **dict.fromkeys(('DDL_LOCK_TIMEOUT', 'DDL_RETRIES'), 'ddlwait'),
    **dict.fromkeys(('Drift', 'declared_default', 'detect_drift', 'invalid_index_lines'),
                    'drift'),
    **dict.fromkeys(('failure_note',), 'history'),
    'Observer': 'observer', 'restore_database': 'restore', 'Run': 'run',
    **dict.fromkeys(('RunResult', 'ScriptRun'), 'run_results'),
    **dict.fromkeys(('LOCK_TIMEOUT', 'Engine'), 'runner'),
    **dict.fromkeys(('CONTRACT', 'EXPAND', 'discover', 'installed_directory'), 'scripts'),
    **dict.fromkeys(('apply', 'replay', 'schema_differences', 'schema_of', 'shadow_database'),
                    'shadow'),
    **dict.fromkeys(('OWNED_TABLES', 'Entry', 'Status', 'schema_version', 'script_number'),
                    'status'),
}
# The bookkeeping tables' names, as their modules spell them (checked by the tests).
HISTORY_TABLE, CLIENTS_TABLE = 'schema_migration', 'modelstore_clients'
# Tables modelstore keeps for itself beside the registry's: no model describes them, so
# `new --auto` must not drop them, nor adoption take them for an application's.
BOOKKEEPING = frozenset({HISTORY_TABLE, CLIENTS_TABLE})


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    value = getattr(import_module('.' + _LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ['Engine', 'Run', 'Observer', 'Entry', 'Status', 'ScriptRun', 'RunResult',
           'Clients', 'ClientRow', 'Registration', 'BOOKKEEPING', 'OWNED_TABLES', 'Backups',
           'Backup', 'KEEP', 'restore_database', 'Drift', 'EXPAND', 'CONTRACT',
           'detect_drift', 'invalid_index_lines', 'declared_default', 'schema_version',
           'script_number', 'failure_note', 'HISTORY_TABLE', 'discover', 'installed_directory',
           'apply', 'replay', 'shadow_database', 'schema_of', 'schema_differences',
           'DDL_LOCK_TIMEOUT', 'DDL_RETRIES', 'LOCK_TIMEOUT']
