"""modelstore: the model-registry layer training pipelines import.

    import modelstore
    with modelstore.connect() as store:          # checks the schema first
        store.add_model(model_name='m', base_model='meta-llama/Llama-3.2-1B',
                        task='text-generation', model_path='/models/m',
                        is_custom_base_model=True)

Schema changes are playhouse.migrations scripts, applied by hand with ``modelstore migrate``.

The names below the exceptions are loaded on first use (``__getattr__``): the ``modelstore``
command is ``modelstore.cli``, below this face, and ``modelstore --help`` must not load peewee,
the engine and the registry to print its help (start-up: issue 30).
"""
from importlib import import_module

from .exceptions import (AdoptionRefused, ChecksumMismatch, ConfigError, DataLossRefused,
                         FilesLeft, LockTimeout, MigrationError, ModelStoreError, NotFound,
                         OutcomeUnknown, SchemaNewerThanCode, SchemaOutOfDate, ScriptBlocked,
                         ScriptError, ScriptFailedPartway, StorageError, UnreadableValue,
                         UsageError, ValidationError)
from .version import __version__

__all__ = [
    'connect', 'ModelStore', 'FineTunedModel', 'Task', 'TaskStatus', 'Engine', 'Drift',
    'detect_drift', 'ModelStoreError', 'ConfigError', 'ValidationError', 'NotFound',
    'UsageError', 'StorageError', 'FilesLeft', 'OutcomeUnknown', 'UnreadableValue',
    'MigrationError', 'ScriptError', 'ScriptBlocked', 'ScriptFailedPartway', 'ChecksumMismatch',
    'LockTimeout', 'DataLossRefused', 'AdoptionRefused', 'SchemaOutOfDate', 'SchemaNewerThanCode',
    '__version__',
]

# Each public name loaded on first use, and the module (of this package) it comes from.
_LAZY = {'connect': 'registry', 'ModelStore': 'registry', 'Engine': 'engine',
         'Drift': 'engine', 'detect_drift': 'engine', 'FineTunedModel': 'shared.tables',
         'Task': 'shared.tables', 'TaskStatus': 'shared.tables'}
# The subpackages, as attributes: ``modelstore.engine`` after ``import modelstore``.
_PACKAGES = frozenset({'authoring', 'cli', 'dialects', 'engine', 'fields', 'models', 'online',
                       'registry', 'shared', 'testing'})


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module('.' + _LAZY[name], __name__), name)
    elif name in _PACKAGES:
        value = import_module('.' + name, __name__)
    else:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted((set(globals()) - {'import_module'}) | set(_LAZY) | _PACKAGES)
