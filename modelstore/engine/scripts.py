"""Find, fingerprint and load migration scripts.

Scripts are ``NNNN_slug.py`` files in the playhouse.migrations format: ``up(migrator, db)``,
optional ``down(migrator, db)``, optional module-level ``atomic = False``, and ``phase``:
``'expand'`` (additive: what the previous release's code keeps working with) or ``'contract'``
(drops, renames, tightening: run once no worker of the previous release is left). A script
without ``phase`` is an expand script -- the shipped scripts, frozen before phases existed, are
all additive. The phase is read from the file's text (a literal assignment at module level),
without executing it, so ``status`` knows it before a script is loaded. Discovery and loading
reuse ``playhouse.migrations.Migration`` (numeric order -- lexicographic order would run 10 before
2 -- and loading by exact path, without touching ``sys.path`` or ``sys.modules``).

The checksum is SHA-256 of the file with CRLF and CR normalised to LF, so a checkout on Windows
does not look like an edit.
"""
import ast
import functools
import hashlib
import os
from dataclasses import dataclass

from playhouse.migrations import Migration

from ..exceptions import MigrationError, ScriptError
from .revisions import EARLIER

__all__ = ['Script', 'default_directory', 'installed_directory', 'discover', 'checksum',
           'EXPAND', 'CONTRACT', 'PHASES', 'read_phase']

EXPAND, CONTRACT = 'expand', 'contract'
PHASES = (EXPAND, CONTRACT)

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # modelstore/
_checksums = {}  # (path, mtime_ns, size) -> checksum; scripts are re-hashed only when touched.
_modules = {}  # (path, checksum) -> loaded module: a script is executed once per process.
_phases = {}  # checksum -> phase


def installed_directory():
    """The shipped scripts inside the installed package, or None (running from a checkout)."""
    installed = os.path.join(_PACKAGE_DIR, 'migrations')
    return installed if os.path.isdir(installed) else None


def default_directory():
    """The shipped scripts: inside the installed package, else the checkout's migrations/."""
    return installed_directory() or os.path.join(os.path.dirname(_PACKAGE_DIR), 'migrations')


def checksum(path):
    """SHA-256 hex digest of the script with line endings normalised."""
    with open(path, 'rb') as fh:
        data = fh.read()
    return hashlib.sha256(data.replace(b'\r\n', b'\n').replace(b'\r', b'\n')).hexdigest()


def _cached_checksum(path):
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _checksums:
        _checksums[key] = checksum(path)
    return _checksums[key]


def read_phase(name, text):
    """The ``phase`` a script's text declares (EXPAND when it declares none); ScriptError for
    a value other than 'expand' or 'contract', or one that is not a plain string literal."""
    if text.isascii() and 'phase' not in text:
        return EXPAND  # No name ``phase`` can be bound: parsing (~0.3 ms a script) is moot.
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return EXPAND  # Loading the script reports the syntax error, where it is needed.
    phase = EXPAND
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
        if not any(isinstance(t, ast.Name) and t.id == 'phase' for t in targets):
            continue
        value = node.value
        if not (isinstance(value, ast.Constant) and value.value in PHASES):
            raise ScriptError(name, "phase must be 'expand' or 'contract', not %s (line %d)"
                              % (ast.get_source_segment(text, value) or '?', node.lineno))
        phase = value.value
    return phase


def _cached_phase(name, path, digest):
    if digest not in _phases:
        with open(path, 'rb') as fh:
            text = fh.read().decode('utf-8', 'replace')
        _phases[digest] = read_phase(name, text)
    return _phases[digest]


@dataclass(frozen=True)
class Script:
    """One script file. ``load()`` executes it and checks its entry points."""
    index: int
    name: str
    path: str
    checksum: str
    # Checksums of earlier texts that count as this one (shipped scripts: engine.revisions).
    earlier: frozenset = frozenset()
    phase: str = EXPAND  # EXPAND or CONTRACT (read from the text; see the module's docstring)

    def matches(self, applied):
        """Whether ``applied`` (a history checksum) is this text's, or an earlier equivalent."""
        return applied == self.checksum or applied in self.earlier

    def load(self, need=('up',)):
        """Execute the file and return the module; ScriptError names what is wrong.

        Modules are cached by path and checksum, so a file edited since is loaded afresh.
        """
        key = (self.path, self.checksum)
        module = _modules.get(key) or self._execute()
        for entry in need:
            if not callable(getattr(module, entry, None)):
                raise ScriptError(self.name, 'does not define %s(migrator, db)' % entry)
        _modules[key] = module
        return module

    def _execute(self):
        try:
            module = Migration(self.index, self.name, self.path, None).load()
        except SyntaxError as exc:
            raise ScriptError(self.name, 'syntax error at line %s: %s' % (exc.lineno, exc.msg)) \
                from None
        except SystemExit as exc:
            raise ScriptError(self.name, 'failed to load: it called sys.exit(%r); a script '
                              'fails by raising an exception' % (exc.code,)) from None
        except Exception as exc:
            raise ScriptError(self.name, 'failed to load: %s: %s'
                              % (type(exc).__name__, exc)) from exc
        for entry in ENTRY_POINTS:
            if callable(getattr(module, entry, None)):
                setattr(module, entry, _no_exit(getattr(module, entry)))
        return module


ENTRY_POINTS = ('up', 'down', 'online')


class ScriptExited(Exception):
    """A script's ``up``/``down``/``online`` called ``sys.exit()``: a failure of that script,
    reported like any exception it raises (never the process's silent exit with code 0)."""


def _no_exit(function):
    """``function``, with a SystemExit it raises turned into ScriptExited: every caller of a
    script's entry points (runs, dry runs, shadow replays, repair) then sees an ordinary
    failure that it rolls back and names."""
    @functools.wraps(function)
    def guarded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except SystemExit as exc:
            raise ScriptExited('%s() called sys.exit(%r); a script fails by raising an '
                               'exception' % (function.__name__, exc.code)) from None
    return guarded


def discover(directory=None):
    """Return the scripts in ``directory`` in numeric order; refuse duplicate numbers."""
    directory = directory or default_directory()
    if not os.path.isdir(directory):
        raise MigrationError('migrations directory %s does not exist' % directory)
    shipped = os.path.realpath(directory) == os.path.realpath(default_directory())
    scripts = []
    for m in Migration.load_directory(directory):
        digest = _cached_checksum(m.path)
        scripts.append(Script(m.idx, m.name, m.path, digest,
                              frozenset(EARLIER.get(m.name, ())) if shipped else frozenset(),
                              _cached_phase(m.name, m.path, digest)))
    seen = {}
    for script in scripts:
        if script.index in seen:
            raise MigrationError('two migration scripts share the number %d: %s and %s'
                                 % (script.index, seen[script.index], script.name))
        seen[script.index] = script.name
    return scripts
