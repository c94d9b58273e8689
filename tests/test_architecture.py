"""The package's structure, as a newcomer meets it, checked rather than described.

* Layers import downward only, and within a layer a unit imports another only where SIBLINGS
  allows it (the registry and the authoring tools never import each other; shared modules import
  lower layers and the siblings listed).
* No import cycle, between packages or between the modules of one package; no import of
  modelstore hidden inside a function to dodge one.
* A package is used through its face (its ``__init__``): ``from modelstore.engine import Engine``,
  never ``modelstore.engine.runner`` from another package; inside a package, modules import each
  other, never their own face. ``modelstore.shared`` has no face: it is a shelf of separate
  modules, each used by its own path.
* Every module has one role: a docstring whose first line states it (a one-line summary), and a
  row in docs/architecture.md's module table. Not a line count: a 400-line cap had modules
  pressed against it, split where the count said rather than where the roles part.

The checkers are functions of a package on disk, and test_the_checkers_see_every_planted_fault
runs each of them on a small package with one fault of each kind planted.

The allow-lists below hold what is wrong today. They may only shrink: an entry that no longer
occurs fails the test too, so that whoever fixes the code deletes it here.
"""
import ast
import os
import re

import modelstore

ROOT = os.path.dirname(os.path.abspath(modelstore.__file__))
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs',
                    'architecture.md')

# Each unit (a package, or a module standing alone) and its layer. Lower layers never import
# higher ones. The dialects (what differs by backend) stand below everything that opens or uses
# a database. The registry asks the engine for the schema's status (the gate applies scripts),
# so it stands above it; the engine never imports the registry.
LAYERS = [('modelstore.exceptions', 0), ('modelstore.version', 0), ('modelstore.dialects', 1),
          ('modelstore.fields', 2), ('modelstore.shared', 2), ('modelstore.models', 2),
          ('modelstore.online', 2),
          ('modelstore.engine', 3),
          ('modelstore.registry', 4), ('modelstore.authoring', 4), ('modelstore.testing', 5),
          ('modelstore.cli', 5), ('modelstore.__main__', 6), ('modelstore', 6)]

# Packages without a face: each of their modules is a unit of its own (for SIBLINGS) and is
# imported by its own path.
FACELESS = {'modelstore.shared'}

# Within a layer, which unit may import which; any other same-layer import fails. Layer 4
# (registry, authoring) and layer 5 (cli, testing) have none: what a pipeline imports stays free
# of the code that writes scripts, and the reverse.
SIBLINGS = {
    # Opening a database: its URL, its waits, the files beside.
    'modelstore.shared.database': {'modelstore.shared.files', 'modelstore.shared.timeouts',
                                   'modelstore.shared.urls'},
    # The models are built of the legacy-format field types.
    'modelstore.shared.tables': {'modelstore.fields'},
    # modelstore.models is the public path of shared/tables.py's classes.
    'modelstore.models': {'modelstore.shared.tables'},
}

# Imports that reach past another package's face today, {(importer, imported module)}: each
# either goes through the face (`from ..engine import detect_drift`), or the name moves into the
# face, or the importer should not need it. The lead shrinks this list; nothing is added to it.
FACE_EXCEPTIONS = set()

# Modules with no row of their own in docs/architecture.md's table today (the `cli/` and
# `testing/` rows name their modules in prose). The lead gives each a row and shrinks this.
MISSING_FROM_TABLE = set()

# Modules whose docstring's first line is not a one-line summary today (the sentence runs on
# into the second line). The lead rewrites each first line and shrinks this.
NO_SUMMARY_LINE = set()

# A backstop, not the rule: the roles are judged above, by docstring and table. A module past
# 600 lines holds more than one role whatever its docstring says (the largest today has 400),
# and reading it whole stops being possible; the number is far enough out that no one splits a
# module to dodge it.
MAX_LINES = 600

# The modules that load a module by its name (importlib.import_module, __import__), on purpose:
# the package's face loads connect() and the others on first use, and the CLI's grammar a
# command's module when it runs, so that `modelstore --help` loads neither peewee nor the
# engine (issue 30); the engine's face its names, and its runner the run's modules, on first
# use, so that `status` loads neither the run nor backups nor drift (issue 30); and the
# authoring tools load a user's models (`--models package.module`), not modelstore's. Anywhere
# else, loading by name would hide an import from these checks.
LOADERS = {'modelstore', 'modelstore.cli.parser', 'modelstore.authoring.model_classes',
           'modelstore.engine', 'modelstore.engine.runner'}


class Package:
    """A Python package on disk, its modules and the imports between them."""

    def __init__(self, root, layers=LAYERS, faceless=FACELESS, siblings=SIBLINGS):
        self.root = root
        self.name = os.path.basename(root)
        self.layers = layers
        self.faceless = faceless
        self.siblings = siblings
        self.modules = self._modules()
        self.edges = {m: self._imports(m, p) for m, p in self.modules.items()}

    def _modules(self):
        """{dotted name: path} of every module but the shipped scripts."""
        found = {}
        for directory, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if d not in ('migrations', '__pycache__'))
            for name in files:
                if name.endswith('.py'):
                    path = os.path.join(directory, name)
                    parts = os.path.relpath(path, os.path.dirname(self.root))[:-3].split(os.sep)
                    if parts[-1] == '__init__':
                        parts.pop()
                    found['.'.join(parts)] = path
        return found

    def _resolve(self, target):
        """The module ``target`` names: ``pkg.mod.name`` of a name in a module is ``pkg.mod``."""
        while target not in self.modules and '.' in target:
            target = target.rpartition('.')[0]
        return target

    def _imports(self, module, path):
        """[(imported module, line, at module level?)] for each import of one of ours."""
        package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
        with open(path) as fh:
            tree = ast.parse(fh.read())
        top = set(map(id, tree.body))
        out = []
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split('.')
                    base = '.'.join(parts[:len(parts) - node.level + 1])
                else:
                    base = ''
                base = '.'.join(p for p in (base, node.module) if p)
                if base.split('.')[0] == self.name:
                    # `from pkg import mod` imports the module pkg.mod, not pkg's face.
                    targets = [self._resolve(base + '.' + a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [self._resolve(a.name) for a in node.names
                           if a.name.split('.')[0] == self.name]
            for target in targets:
                if (target, node.lineno, id(node) in top) not in out:
                    out.append((target, node.lineno, id(node) in top))
        return out

    def layer(self, module):
        return self._unit_and_layer(module)[1]

    def unit(self, module):
        """The package or lone module ``module`` belongs to (in a faceless package: itself)."""
        return self._unit_and_layer(module)[0]

    def _unit_and_layer(self, module):
        for prefix, number in self.layers:
            if module == prefix or (prefix != self.name and module.startswith(prefix + '.')):
                if prefix in self.faceless and module != prefix:
                    return '.'.join(module.split('.')[:prefix.count('.') + 2]), number
                return prefix, number
        raise AssertionError('module %s is in no layer: add its package to LAYERS' % module)

    def _all(self):
        return [(m, t, line, top) for m, targets in sorted(self.edges.items())
                for t, line, top in targets]

    # -- the checkers: each returns a list of problems, one line each, naming the culprit ----

    def layerless(self):
        out = []
        for module in sorted(self.modules):
            try:
                self.layer(module)
            except AssertionError as exc:
                out.append(str(exc))
        return out

    def upward_imports(self):
        return ['%s:%d imports %s (layer %d above %d)' % (m, line, t, self.layer(t),
                                                          self.layer(m))
                for m, t, line, _ in self._all() if self.layer(t) > self.layer(m)]

    def same_layer_imports(self):
        out = []
        for m, t, line, _ in self._all():
            mine, theirs = self.unit(m), self.unit(t)
            if (mine != theirs and self.layer(m) == self.layer(t)
                    and theirs not in self.siblings.get(mine, ())):
                out.append('%s:%d imports %s: %s and %s are both layer %d, and SIBLINGS does '
                           'not let the first import the second'
                           % (m, line, t, mine, theirs, self.layer(m)))
        return out

    def face_bypasses(self, exceptions=frozenset()):
        out = []
        for m, t, line, _ in self._all():
            mine, theirs = self.unit(m), self.unit(t)
            if mine != theirs and t != theirs and (m, t) not in exceptions:
                out.append('%s:%d imports %s: import it from %s (its face), or add the name '
                           'there' % (m, line, t, theirs))
            elif mine == theirs and t == mine and m != mine:
                out.append('%s:%d imports its own package\'s face %s: import the module that '
                           'holds the name' % (m, line, t))
        return out

    def loaders(self):
        """The modules that call importlib.import_module or __import__."""
        found = set()
        for module, path in self.modules.items():
            with open(path) as fh:
                tree = ast.parse(fh.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(
                        func, 'id', None)
                    if name in ('import_module', '__import__'):
                        found.add(module)
        return found

    def hidden_imports(self):
        return ['%s:%d imports %s inside a function or block' % (m, line, t)
                for m, t, line, top in self._all() if not top]

    def cycles(self):
        """One line per import cycle found, its modules in order."""
        state, found = {}, []

        def visit(node, path):
            state[node] = 'open'
            for target, _, _ in self.edges[node]:
                if target == node:
                    continue
                if state.get(target) == 'open':
                    found.append('import cycle: %s' % ' -> '.join(
                        path[path.index(target):] + [target]))
                elif target not in state:
                    visit(target, path + [target])
            state[node] = 'done'

        for module in sorted(self.edges):
            if module not in state:
                visit(module, [module])
        return found

    def without_summary_line(self):
        """Modules whose docstring is missing, or does not open with a one-line summary."""
        out = {}
        for module, path in sorted(self.modules.items()):
            with open(path) as fh:
                doc = ast.get_docstring(ast.parse(fh.read()), clean=True)
            lines = (doc or '').splitlines()
            if not lines or not lines[0].strip():
                out[module] = 'no docstring stating its role'
            elif len(lines) > 1 and lines[1].strip():
                out[module] = ('the docstring\'s first line runs on into the second: %r'
                               % lines[0])
        return out

    def too_long(self, limit):
        out = {}
        for module, path in sorted(self.modules.items()):
            with open(path) as fh:
                count = sum(1 for _ in fh)
            if count > limit:
                out[module] = count
        return out

    def table_names(self, markdown):
        """{row's first cell: [module each backticked path in it names, or None]} of the
        markdown's tables headed ``| module | role |`` (one, or one per layer); paths are
        relative to the package (``engine/runner.py``, a package's face as ``engine/`` or
        ``engine/__init__.py``)."""
        rows, inside = {}, False
        for line in markdown.splitlines():
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if not inside or not line.startswith('|'):
                inside = line.startswith('|') and [c.lower() for c in cells[:2]] == [
                    'module', 'role']
                continue
            if set(cells[0]) <= set('-: ') or [c.lower() for c in cells[:2]] == ['module',
                                                                                  'role']:
                continue
            rows[cells[0]] = [self._module_of_path(p) for p in re.findall(r'`([^`]+)`',
                                                                           cells[0])]
        return rows

    def _module_of_path(self, path):
        parts = [self.name] + [p for p in path.strip('/').split('/') if p]
        if parts[-1].endswith('.py'):
            parts[-1] = parts[-1][:-3]
            if parts[-1] == '__init__':
                parts.pop()
        module = '.'.join(parts)
        return module if module in self.modules else None

    def table_problems(self, markdown):
        """(modules with no row, rows naming no module of the package)."""
        rows = self.table_names(markdown)
        named = {m for modules in rows.values() for m in modules if m}
        stale = sorted(cell for cell, modules in rows.items()
                       if not modules or None in modules)
        return sorted(set(self.modules) - named), stale


PACKAGE = Package(ROOT)


def test_every_module_is_in_a_layer():
    problems = PACKAGE.layerless()
    assert not problems, problems


def test_imports_go_only_downward():
    problems = PACKAGE.upward_imports()
    assert not problems, problems


def test_within_a_layer_units_import_each_other_only_as_listed():
    problems = PACKAGE.same_layer_imports()
    assert not problems, problems


def test_the_engine_never_imports_the_registry_or_the_cli():
    for module, target, _, _ in PACKAGE._all():
        if module.startswith(('modelstore.engine', 'modelstore.shared')):
            assert not target.startswith(('modelstore.registry', 'modelstore.cli',
                                          'modelstore.authoring', 'modelstore.testing')), module


def test_the_registry_and_the_authoring_tools_never_import_each_other():
    # What a pipeline imports stays free of the code that writes scripts, and the reverse.
    for mine, theirs in (('modelstore.registry', 'modelstore.authoring'),
                         ('modelstore.authoring', 'modelstore.registry')):
        assert theirs not in SIBLINGS.get(mine, ())
        assert not [t for m, t, _, _ in PACKAGE._all()
                    if PACKAGE.unit(m) == mine and PACKAGE.unit(t) == theirs]


def test_packages_are_used_through_their_faces():
    problems = PACKAGE.face_bypasses(FACE_EXCEPTIONS)
    assert not problems, problems
    # The allow-list only shrinks: an exception that no longer occurs is deleted from it.
    still = {(m, t) for m, t, _, _ in PACKAGE._all()}
    assert not FACE_EXCEPTIONS - still, ('these imports are gone: delete them from '
                                         'FACE_EXCEPTIONS', sorted(FACE_EXCEPTIONS - still))


def test_no_import_of_modelstore_inside_a_function():
    problems = PACKAGE.hidden_imports()
    assert not problems, problems


def test_only_the_listed_modules_load_a_module_by_its_name():
    assert PACKAGE.loaders() == LOADERS


def test_there_is_no_import_cycle():
    problems = PACKAGE.cycles()
    assert not problems, problems


def test_every_module_states_its_one_role_in_its_docstring():
    found = PACKAGE.without_summary_line()
    problems = {m: why for m, why in found.items() if m not in NO_SUMMARY_LINE}
    assert not problems, problems
    fixed = NO_SUMMARY_LINE - set(found)
    assert not fixed, ('these modules have a summary line now: delete them from '
                       'NO_SUMMARY_LINE', sorted(fixed))


def test_every_module_has_a_row_in_the_architecture_table_and_every_row_a_module():
    with open(DOCS) as fh:
        markdown = fh.read()
    assert PACKAGE.table_names(markdown), 'no | module | role | table in %s' % DOCS
    missing, stale = PACKAGE.table_problems(markdown)
    assert not set(missing) - MISSING_FROM_TABLE, (
        'modules with no row in docs/architecture.md: give each a row (`engine/x.py` | its '
        'role)', sorted(set(missing) - MISSING_FROM_TABLE))
    assert not stale, ('rows of docs/architecture.md naming no module of the package (a '
                       'path that is gone or misspelt)', stale)
    assert not MISSING_FROM_TABLE - set(missing), (
        'these modules have a row now: delete them from MISSING_FROM_TABLE',
        sorted(MISSING_FROM_TABLE - set(missing)))


def test_no_module_is_past_the_backstop():
    long = PACKAGE.too_long(MAX_LINES)
    assert not long, long


# -- the checkers can fail ----------------------------------------------------------------------

PLANTED = {
    # The face, and a module of layer 0 that imports one of layer 2: the upward import.
    '__init__.py': '"""The face."""\nfrom .top import run\n',
    'base.py': '"""Layer 0: what everything stands on."""\nfrom .top import run\n',
    # A package of layer 1 whose two modules import each other: the cycle.
    'mid/__init__.py': '"""Layer 1\'s face."""\nfrom .one import ONE\n',
    'mid/one.py': '"""One."""\nfrom .two import TWO\n\nONE = 1\n',
    'mid/two.py': '"""Two."""\nfrom . import one\n\nTWO = 2\n',
    # Layer 2: past mid's face, a same-layer import, and one hidden in a function.
    'top.py': '"""Top."""\nfrom .mid.one import ONE\n\n\ndef run():\n    return ONE\n',
    'side.py': '"""Side.\nruns on."""\nfrom .top import run\n\n\ndef later():\n'
               '    from .base import run\n    return run\n\n\ndef by_name():\n'
               '    return __import__("fake.base")\n',
    # No docstring.
    'bare.py': 'from .mid import ONE\n' + 'X = 1\n' * 20,
}
PLANTED_LAYERS = [('fake.base', 0), ('fake.mid', 1), ('fake.top', 2), ('fake.side', 2),
                  ('fake.bare', 2), ('fake', 3)]
PLANTED_TABLE = ('| module | role |\n|---|---|\n| `base.py`, `mid/` | things |\n'
                 '| `mid/one.py` | one |\n| `mid/two.py` | two |\n\nLayer 2:\n\n'
                 '| module | role |\n|---|---|\n| `top.py` | top |\n'
                 '| `side.py` | side |\n| `gone.py` | was here |\n\n| other | table |\n'
                 '|---|---|\n| `bare.py` | not the module table |\n')


def test_the_checkers_see_every_planted_fault(tmp_path):
    """Each checker run on a small package with its fault planted fails, naming the culprit,
    and only the culprit."""
    for name, text in PLANTED.items():
        path = tmp_path / 'fake' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    fake = Package(str(tmp_path / 'fake'), layers=PLANTED_LAYERS, faceless=set(), siblings={})

    assert fake.upward_imports() == ['fake.base:2 imports fake.top (layer 2 above 0)']
    assert fake.cycles() == ['import cycle: fake.mid.one -> fake.mid.two -> fake.mid.one']
    assert fake.same_layer_imports() == [
        'fake.side:3 imports fake.top: fake.side and fake.top are both layer 2, and SIBLINGS '
        'does not let the first import the second']
    assert fake.face_bypasses() == [
        'fake.top:2 imports fake.mid.one: import it from fake.mid (its face), or add the name '
        'there']
    assert fake.hidden_imports() == ['fake.side:7 imports fake.base inside a function or block']
    assert fake.loaders() == {'fake.side'}
    assert set(fake.without_summary_line()) == {'fake.bare', 'fake.side'}
    assert fake.too_long(20) == {'fake.bare': 21}
    assert fake.table_problems(PLANTED_TABLE) == (['fake', 'fake.bare'], ['`gone.py`'])

    # Allowed, the same imports pass: the checkers flag the faults, not the package.
    allowed = Package(str(tmp_path / 'fake'), layers=PLANTED_LAYERS, faceless=set(),
                      siblings={'fake.side': {'fake.top'}})
    assert allowed.same_layer_imports() == []
    assert fake.face_bypasses({('fake.top', 'fake.mid.one')}) == []
    flat = [(prefix, 0) for prefix, _ in PLANTED_LAYERS]
    assert Package(str(tmp_path / 'fake'), layers=flat).upward_imports() == []
    (tmp_path / 'fake' / 'mid' / 'two.py').write_text('"""Two."""\nTWO = 2\n')
    assert Package(str(tmp_path / 'fake'), layers=PLANTED_LAYERS).cycles() == []
    assert Package(str(tmp_path / 'fake'), layers=[('fake.base', 0)]).layerless() == [
        'module %s is in no layer: add its package to LAYERS' % m
        for m in ('fake', 'fake.bare', 'fake.mid', 'fake.mid.one', 'fake.mid.two', 'fake.side',
                  'fake.top')]
