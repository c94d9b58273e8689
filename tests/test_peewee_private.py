"""Every private part of peewee the package touches is listed in docs/architecture.md.

A private use is an attribute access, on anything but the package's own objects, whose name is
one peewee keeps private: a name with a leading underscore that peewee (or playhouse.migrate)
defines on a class, assigns on ``self``, or at module level, and the model's own ``__data__``
and ``__rel__``. ``_meta`` is left out: peewee's documentation uses it as the way to read a
model's fields. Each use found must appear, in backticks, in the table of section "Peewee:
public API, and the private parts still used" -- with the test that catches a break.

What this cannot see (a method of peewee's overridden, a transaction entered by hand) is listed
in the same table by hand.
"""
import ast
import inspect
import os
import re

import peewee
import playhouse.migrate

import modelstore

ROOT = os.path.dirname(os.path.abspath(modelstore.__file__))
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs',
                    'architecture.md')
# namedtuple's public methods have a leading underscore too (urllib's SplitResult._replace).
NAMEDTUPLE = {'_replace', '_asdict', '_fields', '_make'}


def peewee_private_names():
    names = {'__data__', '__rel__'}
    for module in (peewee, playhouse.migrate):
        names |= set(re.findall(r'self\.(_[a-z]\w*)\s*=', inspect.getsource(module)))
        for name, value in vars(module).items():
            if name.startswith('_') and not name.startswith('__'):
                names.add(name)
            if isinstance(value, type):
                names |= {n for n in vars(value) if n.startswith('_') and not n.startswith('__')}
    return names - NAMEDTUPLE - {'_meta'}


def trees():
    for directory, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in ('migrations', '__pycache__')]
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(directory, name)
                with open(path) as fh:
                    yield os.path.relpath(path, ROOT), ast.parse(fh.read())


def private_uses():
    """{(name, module path)} of every private peewee name the package reads or sets."""
    private = peewee_private_names()
    parsed = dict(trees())
    own = set()  # Names the package gives its own objects: self.x = ..., def x in a class.
    for tree in parsed.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                    isinstance(node.value, ast.Name) and node.value.id in ('self', 'cls'):
                own.add(node.attr)
            elif isinstance(node, ast.ClassDef):
                own |= {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
    return {(node.attr, path) for path, tree in parsed.items() for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in private - own}


def private_table():
    with open(DOCS) as fh:
        text = fh.read()
    start = text.index('## Peewee: public API, and the private parts still used')
    end = text.find('\n## ', start + 1)
    return text[start:end if end > 0 else None]


def test_every_private_peewee_use_is_listed_with_its_reason_and_its_test():
    table = private_table()
    unlisted = sorted((name, path) for name, path in private_uses()
                      if not re.search(r'`[^`]*\b%s\b[^`]*`' % re.escape(name), table))
    assert not unlisted, ('private peewee names used but not in docs/architecture.md\'s '
                          'table (say where, why, and which test catches a break)', unlisted)


def test_the_scan_finds_the_uses_it_is_for():
    found = private_uses()
    for name, path in (('__data__', 'registry/fastpath.py'), ('_dirty', 'registry/fastpath.py'),
                       ('_where', 'authoring/script_text.py')):
        assert (name, path) in found, (name, path, sorted(found))
    assert not any(name in NAMEDTUPLE or name == '_meta' for name, _ in found)
