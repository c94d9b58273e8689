"""modelstore: the model-registry layer training pipelines import.

    import modelstore
    with modelstore.connect() as store:          # checks the schema first
        store.add_model(model_name='m', base_model='meta-llama/Llama-3.2-1B',
                        task='text-generation', model_path='/models/m',
                        is_custom_base_model=True)

Schema changes are playhouse.migrations scripts, applied by hand with ``modelstore migrate``.
"""
from .engine import Drift, Engine, detect_drift
from .exceptions import (AdoptionRefused, ChecksumMismatch, ConfigError, DataLossRefused,
                         FilesLeft, LockTimeout, MigrationError, ModelStoreError, NotFound,
                         OutcomeUnknown, SchemaNewerThanCode, SchemaOutOfDate, ScriptBlocked,
                         ScriptError, ScriptFailedPartway, StorageError, UnreadableValue,
                         UsageError, ValidationError)
from .registry import ModelStore, connect
from .shared.tables import FineTunedModel, Task, TaskStatus
from .version import __version__

__all__ = [
    'connect', 'ModelStore', 'FineTunedModel', 'Task', 'TaskStatus', 'Engine', 'Drift',
    'detect_drift', 'ModelStoreError', 'ConfigError', 'ValidationError', 'NotFound',
    'UsageError', 'StorageError', 'FilesLeft', 'OutcomeUnknown', 'UnreadableValue',
    'MigrationError', 'ScriptError', 'ScriptBlocked', 'ScriptFailedPartway', 'ChecksumMismatch',
    'LockTimeout', 'DataLossRefused', 'AdoptionRefused', 'SchemaOutOfDate', 'SchemaNewerThanCode',
    '__version__',
]
