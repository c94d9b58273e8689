"""The registry: what a training pipeline imports.

``connect()`` (the startup gate, ``gate``) returns a ``ModelStore`` (``store``) only when schema
and code agree; every call validates its input (``validate``) before it writes. The registry
stands on the shared layers and asks the engine for the schema's status; the engine never
imports it.
"""
from .gate import connect
from .store import ModelStore

__all__ = ['connect', 'ModelStore']
