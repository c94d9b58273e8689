"""The registry: what a training pipeline imports.

``connect()`` (the startup gate, ``gate``) returns a ``ModelStore`` (``store``) only when schema
and code agree; every call validates its input (``rules``, ``validate``) before it writes. The
registry stands on the shared layers and asks the engine for the schema's status; the engine
never imports it. The rest of this face is what the command line uses: ``doctor``'s comparison
and reads, the ModelForge import, the models root.
"""
from .aliases import ALIAS_RULE, is_alias
from .doctor import MAX_MIN_AGE, MIN_AGE, changed_at, examine, orphan_model
from .doctordb import forge_present, read_forge, read_rows, rows_naming
from .gate import connect
from .importer import import_modelforge, plan_modelforge
from .modelfiles import ENV_VAR as MODELS_ROOT_ENV, resolve_root
from .store import ModelStore
from .validate import MAX_PAGE

__all__ = ['connect', 'ModelStore', 'MAX_MIN_AGE', 'MIN_AGE', 'changed_at', 'examine',
           'orphan_model', 'forge_present', 'read_forge', 'read_rows', 'rows_naming',
           'import_modelforge', 'plan_modelforge', 'MODELS_ROOT_ENV', 'resolve_root',
           'MAX_PAGE', 'is_alias', 'ALIAS_RULE']
