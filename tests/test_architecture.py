"""The package's structure, as a newcomer meets it: layers that import downward only, no import
cycle, no import hidden inside a function to dodge one, and no module past ~400 lines."""
import ast
import os

import modelstore

ROOT = os.path.dirname(os.path.abspath(modelstore.__file__))
# Lower layers never import higher ones. The registry asks the engine for the schema's status
# (the gate applies scripts), so it stands above it; the engine never imports the registry.
LAYERS = [('modelstore.exceptions', 0), ('modelstore.version', 0), ('modelstore.fields', 1),
          ('modelstore.shared', 1), ('modelstore.models', 1), ('modelstore.online', 1),
          ('modelstore.dialects', 1),
          ('modelstore.engine', 2),
          ('modelstore.registry', 3), ('modelstore.authoring', 3), ('modelstore.testing', 4),
          ('modelstore.cli', 4), ('modelstore.__main__', 5), ('modelstore', 5)]
MAX_LINES = 400


def layer(module):
    for prefix, number in LAYERS:
        if module == prefix or module.startswith(prefix + '.'):
            return number
    raise AssertionError('module %s is in no layer' % module)


def modules():
    """{dotted name: path} of every module of the package but the shipped scripts."""
    found = {}
    for directory, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in ('migrations', '__pycache__')]
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(directory, name)
                parts = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
                if parts[-1] == '__init__':
                    parts.pop()
                found['.'.join(parts)] = path
    return found


def imports(module, path):
    """(imported module, line, at module level?) for each import of a modelstore module."""
    package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
    tree = ast.parse(open(path).read())
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(base)
                targets = [base + '.' + node.module if node.module else base]
                if not node.module:
                    targets = [base + '.' + a.name for a in node.names]
            elif node.module and node.module.split('.')[0] == 'modelstore':
                targets = [node.module]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.split('.')[0] == 'modelstore']
        out += [(t, node.lineno, id(node) in top) for t in targets]
    return out


def graph():
    known = modules()
    edges = {}
    for module, path in known.items():
        edges[module] = []
        for target, line, top in imports(module, path):
            while target not in known:  # ``from .x import name`` of a name, not a module.
                target = target.rpartition('.')[0]
            edges[module].append((target, line, top))
    return known, edges


def test_every_module_is_in_a_layer_and_imports_only_downward():
    known, edges = graph()
    wrong = ['%s:%d imports %s (layer %d above %d)' % (m, line, t, layer(t), layer(m))
             for m, targets in edges.items() for t, line, _ in targets if layer(t) > layer(m)]
    assert not wrong, wrong


def test_the_engine_never_imports_the_registry_or_the_cli():
    _, edges = graph()
    for module, targets in edges.items():
        if module.startswith(('modelstore.engine', 'modelstore.shared')):
            assert not [t for t, _, _ in targets
                        if t.startswith(('modelstore.registry', 'modelstore.cli',
                                         'modelstore.authoring', 'modelstore.testing'))], module


def test_the_registry_and_the_authoring_tools_never_import_each_other():
    # What a pipeline imports stays free of the code that writes scripts, and the reverse.
    _, edges = graph()
    for module, targets in edges.items():
        for mine, theirs in (('modelstore.registry', 'modelstore.authoring'),
                             ('modelstore.authoring', 'modelstore.registry')):
            if module.startswith(mine):
                assert not [t for t, _, _ in targets if t.startswith(theirs)], module


def test_no_import_of_modelstore_inside_a_function():
    _, edges = graph()
    hidden = ['%s:%d imports %s' % (m, line, t) for m, targets in edges.items()
              for t, line, top in targets if not top]
    assert not hidden, hidden


def test_there_is_no_import_cycle():
    _, edges = graph()
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for target, _, _ in edges[node]:
            if target == node:
                continue
            if state.get(target) == 'open':
                raise AssertionError('import cycle: %s' % ' -> '.join(
                    path[path.index(target):] + [target]))
            if target not in state:
                visit(target, path + [target])
        state[node] = 'done'

    for module in edges:
        if module not in state:
            visit(module, [module])


def test_no_module_is_longer_than_about_400_lines():
    known = modules()
    long = {m: n for m, n in ((m, sum(1 for _ in open(p))) for m, p in known.items())
            if n > MAX_LINES}
    assert not long, long


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path):
    """The checks above can fail: a planted upward import is in the wrong layer."""
    assert layer('modelstore.engine.runner') < layer('modelstore.registry.store')
    assert ('modelstore.engine', 24, True) in imports(
        'modelstore.registry.store', _write(tmp_path, 'x\n' * 23 + 'from ..engine import E\n'))


def _write(tmp_path, text):
    path = tmp_path / 'store.py'
    path.write_text(text)
    return str(path)
