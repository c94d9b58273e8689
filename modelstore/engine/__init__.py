"""The migration engine: what an operator runs (``modelstore migrate`` and the other commands).

Scripts are found and fingerprinted (``scripts``), their history kept (``history``), a run
serialised by the dialect's run session (its lock, transaction and foreign-key watch), planned
against the live schema (``status``, ``adopt``), applied or reverted (``runner``'s facade, one
``run`` per call, told to an ``observer``; ``steps``), its losses foreseen (``losses``), the
database backed up first and restorable (``backup``, ``restore``), and the schema compared with
the models (``drift``). It imports the shared layers only, never the registry.
"""
from .backup import KEEP, Backup, Backups
from .clients import TABLE as CLIENTS_TABLE, ClientRow, Clients, Registration
from .ddlwait import DDL_LOCK_TIMEOUT, DDL_RETRIES
from .drift import Drift, declared_default, detect_drift, invalid_index_lines
from .history import TABLE as HISTORY_TABLE
from .nontx import failure_note
from .observer import Observer
from .restore import restore_database
from .run import Run
from .run_results import RunResult, ScriptRun
from .runner import LOCK_TIMEOUT, Engine
from .scripts import CONTRACT, EXPAND, discover, installed_directory
from .shadow import apply, replay, schema_differences, schema_of, shadow_database
from .status import OWNED_TABLES, Entry, Status, schema_version, script_number

# Tables modelstore keeps for itself beside the registry's: no model describes them, so
# `new --auto` must not drop them, nor adoption take them for an application's.
BOOKKEEPING = frozenset({HISTORY_TABLE, CLIENTS_TABLE})

__all__ = ['Engine', 'Run', 'Observer', 'Entry', 'Status', 'ScriptRun', 'RunResult',
           'Clients', 'ClientRow', 'Registration', 'BOOKKEEPING', 'OWNED_TABLES', 'Backups',
           'Backup', 'KEEP', 'restore_database', 'Drift', 'EXPAND', 'CONTRACT',
           'detect_drift', 'invalid_index_lines', 'declared_default', 'schema_version',
           'script_number', 'failure_note', 'HISTORY_TABLE', 'discover', 'installed_directory',
           'apply', 'replay', 'shadow_database', 'schema_of', 'schema_differences',
           'DDL_LOCK_TIMEOUT', 'DDL_RETRIES', 'LOCK_TIMEOUT']
