"""The registry's models, by their public path: ``modelstore.models``.

``modelstore new --auto`` compares these with the schema the scripts produce, by default (a
project with its own models passes ``--models myapp.models``). They are defined in
``modelstore.shared.tables``; this module only names them.
"""
from .shared.tables import (MODELS, FineTunedModel, ModelAlias, ModelImport, ModelTag,
                            ModelVersionCounter, RegistryEvent, RegistryEventCounter, Task,
                            TaskStatus, bind_models)

__all__ = ['FineTunedModel', 'ModelAlias', 'ModelImport', 'ModelTag', 'ModelVersionCounter',
           'RegistryEvent', 'RegistryEventCounter', 'Task', 'TaskStatus', 'MODELS',
           'bind_models']
