"""Find the models to compare with the scripts: ``--models package.module[:NAME]``.

The module is imported with the current directory on ``sys.path`` (as ``pwmigrate`` does), so
``--models myapp.models`` works from a project's root. Which models:

* ``module:NAME`` -- the model, or the list of models, that ``NAME`` holds;
* else the module's ``MODELS``, if it defines one (``modelstore.models`` does);
* else every model class defined in the module itself (not imported into it), except a bare base
  class -- one with no field but the implicit ``id`` and no indexes.
"""
import importlib
import os
import sys

from peewee import AutoField, Model

from ..exceptions import ConfigError

__all__ = ['DEFAULT_MODELS', 'load_models']

DEFAULT_MODELS = 'modelstore.models'


def _is_model(value):
    return isinstance(value, type) and issubclass(value, Model) and value is not Model


def _is_bare_base(model):
    fields = model._meta.sorted_fields
    return (len(fields) == 1 and type(fields[0]) is AutoField and fields[0].name == 'id'
            and not model._meta.indexes)


def _import(name):
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ConfigError('cannot import the models module %r: %s (run from the project\'s '
                          'root, or put it on PYTHONPATH)' % (name, exc)) from None
    except Exception as exc:
        raise ConfigError('importing the models module %r failed: %s: %s'
                          % (name, type(exc).__name__, exc)) from exc


def load_models(spec=None):
    """The model classes ``spec`` names, in declaration order; ConfigError if there are none.
    ``spec`` may also be the model classes themselves (a list), returned as a list."""
    if spec is not None and not isinstance(spec, str):
        return list(spec)
    spec = spec or DEFAULT_MODELS
    name, _, attribute = spec.partition(':')
    if not name or not all(part.isidentifier() for part in name.split('.')):
        raise ConfigError('--models must be a dotted module path such as myapp.models '
                          '(optionally :NAME), got %r' % spec)
    module = _import(name)
    if attribute or hasattr(module, 'MODELS'):
        models = _named(module, name, attribute or 'MODELS')
    else:
        models = _defined(module, name)
    tables = {}
    for model in models:
        other = tables.setdefault(model._meta.table_name, model)
        if other is not model:
            raise ConfigError('two models map to the table %s: %s and %s'
                              % (model._meta.table_name, other.__name__, model.__name__))
    return list(dict.fromkeys(models))


def _named(module, name, attribute):
    """The model, or the list of models, that ``module.attribute`` holds."""
    if not hasattr(module, attribute):
        raise ConfigError('the models module %s has no %s' % (name, attribute))
    value = getattr(module, attribute)
    models = [value] if _is_model(value) else _as_list(value)
    if not models or not all(_is_model(m) for m in models):
        raise ConfigError('%s:%s must be a model class or a list of model classes'
                          % (name, attribute))
    return models


def _defined(module, name):
    """The model classes the module defines itself, bare base classes left out."""
    models = [v for v in vars(module).values() if _is_model(v)
              and v.__module__ == module.__name__ and not _is_bare_base(v)]
    if not models:
        raise ConfigError('the module %s defines no peewee models' % name)
    return models


def _as_list(value):
    try:
        return list(value)
    except TypeError:
        return []
