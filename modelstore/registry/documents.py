"""The JSON columns' rules: a JSON object within limits, and the cluster-config shapes.

A JSON object within the limits, and the two cluster-config shapes (a preset by name, or a
custom spec) the autotuner accepts.

A checker takes the field's name and the value and returns what to store, or raises
ValidationError naming the field and the place (``parameters['lr'][1]``).
"""
import json
import math

from ..exceptions import ValidationError
from ..fields import dumps

__all__ = ['json_object', 'cluster_config', 'base_model_spec', 'serving_runtime_spec',
           'JSON_LIMIT', 'JSON_DEPTH', 'JSON_DIGITS', 'CLUSTER_BASE_MODEL_PRESETS',
           'CLUSTER_SERVING_RUNTIME_PRESETS', 'type_name']


JSON_LIMIT = 256 * 1024     # Serialised size of one JSON column.


CLUSTER_BASE_MODEL_PRESETS = (
    'llama-3-2-1b-instruct', 'llama-3-2-3b-instruct', 'llama-3-1-70b-instruct',
    'llama-3-3-70b-instruct', 'mistral-7b-instruct', 'mixtral-8x7b-instruct', 'deepseek-v3')


CLUSTER_SERVING_RUNTIME_PRESETS = (
    'sglang-llama-small', 'sglang-llama-large', 'vllm-llama-small', 'vllm-llama-large',
    'sglang-mixtral-moe')


def type_name(value):
    return type(value).__name__


JSON_DEPTH = 100            # Levels of nested objects and arrays in one JSON column.


JSON_DIGITS = 4300          # Digits of one JSON integer (Python's own str() limit).


_JSON_BIG = 10 ** JSON_DIGITS


_CLOSE = object()


def _json_path(name, where):
    parts = []
    while where is not None:
        where, key = where
        parts.append('[%r]' % key)
    return name + ''.join(reversed(parts))


def _check_text(name, text, where, what=''):
    """A JSON string (a value, or a key: ``what``) every backend stores as it is given.

    PostgreSQL's jsonb refuses ``\\u0000`` and unpaired surrogates ("unsupported Unicode escape
    sequence") where SQLite and MariaDB store them: refused here, the same on every backend.
    """
    if text.isascii() and '\x00' not in text:
        return
    if '\x00' in text:
        raise ValidationError(name, 'holds a NUL character (\\u0000) in %s%s, which JSON '
                                    'columns do not store' % (what, _json_path(name, where)))
    try:
        text.encode('utf-8')
    except UnicodeEncodeError as exc:
        raise ValidationError(name, 'holds text that is not valid UTF-8 in %s%s: an unpaired '
                                    'surrogate (%r), as decoding non-UTF-8 bytes leaves'
                              % (what, _json_path(name, where), exc.object[exc.start])) \
            from None


def _check_json(name, value):
    """Walk a JSON value without recursion: string keys, finite numbers of sane size, text
    without NUL or unpaired surrogates, no reference cycles, at most JSON_DEPTH levels. Errors
    name the place (``parameters['lr']``)."""
    open_ids = set()
    opened = []
    stack = [(value, None)]
    while stack:
        item = stack.pop()
        if item is _CLOSE:
            open_ids.discard(id(opened.pop()))
            continue
        obj, where = item
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in open_ids:
                raise ValidationError(name, 'contains itself at %s (a reference cycle), which '
                                            'JSON cannot represent' % _json_path(name, where))
            if len(opened) >= JSON_DEPTH:
                raise ValidationError(name, 'is nested more than %d levels deep (at %s)'
                                      % (JSON_DEPTH, _json_path(name, where)))
            opened.append(obj)
            open_ids.add(id(obj))
            stack.append(_CLOSE)
            if isinstance(obj, dict):
                for key, child in obj.items():
                    if not isinstance(key, str):
                        raise ValidationError(name, 'JSON object keys must be strings, got %s '
                                                    'key %r at %s' % (type_name(key), key,
                                                                      _json_path(name, where)))
                    _check_text(name, key, where, 'the key %r in ' % key)
                    stack.append((child, (where, key)))
            else:
                stack.extend((child, (where, i)) for i, child in enumerate(obj))
        elif isinstance(obj, float):
            if not math.isfinite(obj):
                raise ValidationError(name, 'contains NaN or infinity at %s, which JSON cannot '
                                            'represent' % _json_path(name, where))
        elif isinstance(obj, int) and not isinstance(obj, bool):
            if not -_JSON_BIG < obj < _JSON_BIG:
                raise ValidationError(name, 'holds an integer of more than %d digits at %s'
                                      % (JSON_DIGITS, _json_path(name, where)))
        elif isinstance(obj, str):
            _check_text(name, obj, where)
        elif not (obj is None or isinstance(obj, bool)):
            raise ValidationError(name, 'is not JSON-serialisable: %s at %s is not a JSON value'
                                  % (type_name(obj), _json_path(name, where)))


def json_object(name, value):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(name, 'must be a JSON object (dict), got %s' % type_name(value))
    _check_json(name, value)
    try:
        encoded = dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:  # Subclasses with odd behaviour.
        raise ValidationError(name, 'is not JSON-serialisable: %s' % exc) from None
    if len(encoded) > JSON_LIMIT:
        raise ValidationError(name, 'serialises to %d bytes; the limit is %d'
                              % (len(encoded), JSON_LIMIT))
    # A copy, as the column will hold it (tuples become lists): what is stored is the value at
    # the call, not whatever the caller's object holds by the time a batch is sent.
    return json.loads(encoded)


def _require_keys(name, spec, keys, where='spec'):
    missing = [k for k in keys if k not in spec]
    if missing:
        raise ValidationError(name, '%s is missing %s' % (where, ', '.join(repr(k)
                                                                          for k in missing)))


def cluster_config(presets, spec_check):
    def check(name, value):
        value = json_object(name, value)
        if value is None:
            return None
        if 'preset' in value:
            extra = set(value) - {'preset', 'overrides', 'labels', 'annotations'}
            if extra:
                raise ValidationError(name, 'a preset config takes only preset, overrides, '
                                            'labels and annotations; got %s'
                                      % ', '.join(sorted(extra)))
            if value['preset'] not in presets:
                raise ValidationError(name, 'unknown preset %r; known presets: %s'
                                      % (value['preset'], ', '.join(presets)))
            for key in ('overrides', 'labels', 'annotations'):
                if key in value and not isinstance(value[key], dict):
                    raise ValidationError(name, '%s must be an object' % key)
            return value
        if 'name' in value and 'spec' in value:
            if not isinstance(value['name'], str) or not value['name'].strip():
                raise ValidationError(name, 'a custom config needs a non-empty "name"')
            if not isinstance(value['spec'], dict):
                raise ValidationError(name, 'a custom config\'s "spec" must be an object')
            spec_check(name, value['spec'])
            return value
        raise ValidationError(name, 'must be a preset {"preset": NAME} or a custom spec '
                                    '{"name": NAME, "spec": {...}}')
    return check


def base_model_spec(name, spec):
    _require_keys(name, spec, ('displayName', 'vendor', 'version', 'storage'))
    if not isinstance(spec['storage'], dict):
        raise ValidationError(name, 'spec.storage must be an object')
    _require_keys(name, spec['storage'], ('storageUri', 'path'), 'spec.storage')


def serving_runtime_spec(name, spec):
    _require_keys(name, spec, ('supportedModelFormats', 'protocolVersions', 'engineConfig'))
    engine = spec['engineConfig']
    if not isinstance(engine, dict) or not isinstance(engine.get('runner'), dict):
        raise ValidationError(name, 'spec.engineConfig.runner must be an object')
    _require_keys(name, engine['runner'], ('name', 'image', 'resources'),
                  'spec.engineConfig.runner')
