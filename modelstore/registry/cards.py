"""Hugging Face model cards: a model's README.md written from its row, and read back by doctor.

``render(model, tags, parent)`` is the card: YAML front matter the Hub reads -- ``base_model``,
``datasets`` (``dataset_uri``), ``pipeline_tag`` (the task), ``tags`` (``key:value``) and a
``model-index`` of the model's numeric metrics (a curve's final value) -- then a short body with
the lineage, and a last line ``<!-- modelstore-card {...} -->`` holding the row's fields as JSON.
Every YAML scalar is written as a JSON string or number (YAML 1.2 reads JSON's), so no value
-- a newline, a quote, a ``---`` -- can end the front matter or add a key.

The modelstore line also holds the SHA-256 of the text above it: a card is modelstore's own
(``is_ours``: export_model_card replaces it without ``overwrite``) only as it was written, and
a card edited by hand is anyone's. ``parse(text)`` reads a card back for ``doctor --register``:
the modelstore line when it is sealed so, else the plain keys of any Hugging Face card's front matter
(``base_model``, ``datasets``, ``pipeline_tag``, ``tags``; each a scalar or a list of scalars).
Writing the file into the model's folder is modelstore.registry.modelfiles' ``write_into``.
"""
import hashlib
import json
import math
import re

__all__ = ['CARD', 'MARK', 'render', 'parse', 'is_ours']

CARD = 'README.md'
SEAL = 'card_sha256'  # The modelstore line's hash of the text above it.
MARK = '<!-- modelstore-card '  # The line that says modelstore wrote the card, and its fields.
# The row's fields the modelstore line carries (doctor --register gives them back).
CARRIED = ('model_name', 'base_model', 'task', 'description', 'dataset_uri', 'dataset_sha256',
           'source_commit', 'run_id', 'strategy', 'provider', 'metrics', 'hyperparameters')


def _scalar(value):
    """A YAML scalar: JSON's (YAML 1.2 reads it), ASCII (no control or non-character YAML
    refuses reaches it), '<' escaped (nothing reads as HTML)."""
    return json.dumps(value, ensure_ascii=True).replace('<', '\\u003c')


def _final(value):
    """A metric's number: itself, or a curve's last element; None for anything else."""
    if isinstance(value, list):
        value = value[-1] if value else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def render(model, tags, parent=None):
    """The card of ``model`` (a FineTunedModel) with its ``tags`` ({key: value}) and its
    registry ``parent`` (a FineTunedModel or None)."""
    lines = ['---', 'base_model: ' + _scalar(model.base_model)]
    if model.dataset_uri:
        lines += ['datasets:', '- ' + _scalar(model.dataset_uri)]
    lines.append('pipeline_tag: ' + _scalar(model.task))
    if tags:
        lines.append('tags:')
        lines += ['- ' + _scalar('%s:%s' % (key, value)) for key, value in sorted(tags.items())]
    metrics = [(name, _final(value)) for name, value in sorted((model.metrics or {}).items())]
    metrics = [(name, value) for name, value in metrics if value is not None]
    if metrics:
        lines += ['model-index:', '- name: ' + _scalar(model.model_name), '  results:',
                  '  - task:', '      type: ' + _scalar(model.task),
                  '    dataset:', '      type: ' + _scalar(model.dataset_uri or 'unknown'),
                  '      name: ' + _scalar(model.dataset_uri or 'unknown'), '    metrics:']
        for name, value in metrics:
            lines += ['    - type: ' + _scalar(name), '      name: ' + _scalar(name),
                      '      value: ' + _scalar(value)]
    lines += ['---', '', '# %s' % _line(model.model_name), '',
              'Version %s of `%s` in the modelstore registry (model %d), fine-tuned from `%s` '
              'for %s.' % (model.version, _line(model.model_name), model.id,
                           _line(model.base_model), _line(model.task))]
    if model.description:
        lines += ['', _line(model.description)]
    facts = [('Parent', parent and 'model %d (`%s` version %s)' % (
        parent.id, _line(parent.model_name), parent.version)),
        ('Dataset', model.dataset_uri and '`%s`' % _line(model.dataset_uri)),
        ('Dataset SHA-256', model.dataset_sha256),
        ('Source commit', model.source_commit and '`%s`' % _line(model.source_commit)),
        ('Run', model.run_id and '`%s`' % _line(model.run_id))]
    facts = [(what, value) for what, value in facts if value]
    if facts:
        lines += ['', '## Lineage', ''] + ['- %s: %s' % fact for fact in facts]
    if metrics:
        lines += ['', '## Metrics', '', '| metric | value |', '|---|---|'] + [
            '| %s | %s |' % (_line(name).replace('|', '\\|'), _scalar(value))
            for name, value in metrics]
    carried = {name: getattr(model, name) for name in CARRIED if getattr(model, name)
               not in (None, '', {})}
    carried['tags'] = dict(tags)
    body = '\n'.join(lines + ['', ''])
    # The text above it, by its hash: a card edited by hand is no longer modelstore's own.
    carried[SEAL] = hashlib.sha256(body.encode('utf-8')).hexdigest()
    # JSON with '<' and '>' escaped (they occur only inside its strings): no value can close
    # the comment.
    note = json.dumps(carried, ensure_ascii=True, sort_keys=True, default=str)
    note = note.replace('<', '\\u003c').replace('>', '\\u003e')
    return body + MARK + note + ' -->\n'


def _line(text):
    """Text for one line of the body: line breaks become spaces, and '<' an entity (no text
    opens an HTML comment or tag)."""
    return ' '.join(str(text).splitlines()).replace('<', '&lt;')


def _sealed(text):
    """The fields of the modelstore line ending ``text`` if the text above it is what was
    rendered with it (its hash), else None."""
    body, _, last = text.rstrip('\n').rpartition('\n')
    if not (last.startswith(MARK) and last.endswith(' -->')):
        return None
    try:
        found = json.loads(last[len(MARK):-len(' -->')])
    except ValueError:
        return None
    if not isinstance(found, dict) or found.get(SEAL) != hashlib.sha256(
            (body + '\n').encode('utf-8')).hexdigest():
        return None
    return found


def is_ours(text):
    """The card is one modelstore wrote, as it wrote it (not edited since)."""
    return _sealed(text) is not None


def parse(text):
    """{field: value} of a card, for add_model (and ``tags``: {key: value}); {} if it says
    nothing we use. Raises ValueError for a modelstore line that is not its JSON."""
    found = _sealed(text)
    if found is None:  # Not modelstore's, or edited since: its front matter alone.
        return _front_matter(text)
    fields = {name: found[name] for name in CARRIED + ('tags',) if name in found}
    if not isinstance(fields.get('tags', {}), dict):
        raise ValueError('the modelstore-card line\'s tags are not an object')
    return fields


_KEY = re.compile(r'^([A-Za-z_][A-Za-z0-9_-]*):\s*(.*)$')


def _front_matter(text):
    """The plain keys of a card's YAML front matter we use: each a scalar or a block list of
    scalars; anything else there is passed over."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != '---':
        return {}
    values, key = {}, None
    for line in lines[1:]:
        if line.strip() in ('---', '...'):
            break
        match = _KEY.match(line)
        if match:
            key, rest = match.group(1), match.group(2).strip()
            values[key] = _plain(rest) if rest else []
        elif key is not None and line.startswith('- ') and isinstance(values.get(key), list):
            values[key].append(_plain(line[2:].strip()))
        elif line.strip() and not line.startswith((' ', '-', '#')):
            key = None
    fields = {}
    for name, field in (('base_model', 'base_model'), ('datasets', 'dataset_uri'),
                        ('pipeline_tag', 'task')):
        value = values.get(name)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, str) and value.strip():
            fields[field] = value.strip()
    tags = values.get('tags')
    tags = tags if isinstance(tags, list) else [tags] if isinstance(tags, str) else []
    fields['tags'] = dict(tag.split(':', 1) if ':' in tag else (tag, '') for tag in tags
                          if isinstance(tag, str) and tag and not tag.startswith(':'))
    if not fields['tags']:
        del fields['tags']
    return fields


def _plain(text):
    """A YAML scalar as written by hand: quoted ("..." as JSON, '...' as YAML) or bare."""
    if text.startswith('"'):
        try:
            return json.loads(text)
        except ValueError:
            return text.strip('"')
    if text.startswith("'") and text.endswith("'") and len(text) > 1:
        return text[1:-1].replace("''", "'")
    if text.startswith(('[', '{', '&', '*', '!', '|', '>')):
        return None  # Flow collections, anchors, block scalars: not read here.
    return text.split(' #')[0].strip()
