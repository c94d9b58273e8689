"""``modelstore lint``: each script's statements, captured on a shadow replay, checked by rule.

``lint(directory, urls=(), released=None)`` replays the scripts (lint_replay) on SQLite in
memory and on a throwaway database of each server URL given, runs the rules (lint_rules) over
each backend's statements, and returns a ``LintReport``: the findings, each with its rule id,
script, line and the statement per backend (one finding seen on several backends is listed
once, naming them), and the ones an allow comment silenced, with their reasons.

An allow comment silences the findings of one rule at one place: ``# modelstore: allow MS003 --
reason`` on a line of the call that ran the statement (the migrator operation's call, or the
``db.execute_sql(...)``/``create_tables`` call) or alone on the line above it, or, for a finding
of a whole script (MS000, MS006, MS007), anywhere in it. One without a reason, or naming no
rule, is itself a finding (MS008); one that silences nothing is listed as a note.

MS007, a released script whose text changed: ``released`` is a JSON file in the format of
modelstore's own tests/data/released_scripts.json (``{"scripts": [{"name", "sha256",
"released", "earlier"}]}``, written by its record/release tool); an entry whose ``released``
is not null is frozen: a different checksum, or the file gone, is a finding. Without the
argument, ``released_scripts.json`` in the directory is read when it exists.
"""
import io
import json
import os
import re
import tokenize
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..engine import discover
from ..exceptions import ModelStoreError, UsageError
from ..shared.urls import DatabaseURL
from .lint_replay import replay_for_lint
from .lint_rules import RULES, Checks, check_replayed

__all__ = ['lint', 'lint_problems', 'LintReport', 'Finding', 'RULES', 'RELEASED_FILE']

RELEASED_FILE = 'released_scripts.json'
BACKENDS = ('sqlite', 'postgresql', 'mysql')
_ALLOW = re.compile(r'#\s*modelstore:\s*allow\b(.*)', re.I)
_ALLOW_BODY = re.compile(r'^\s*(MS\d{3})\s*(?:--\s*(.*?))?\s*$')
_WHOLE_SCRIPT = ('MS000', 'MS006', 'MS007')
_NOT_CODE = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)


@dataclass
class Finding:
    rule: str
    script: str
    message: str
    line: Optional[int] = None
    statements: Dict[str, str] = field(default_factory=dict)  # backend -> SQL
    backends: List[str] = field(default_factory=list)
    note: bool = False
    allowed: Optional[str] = None  # The reason of the allow comment that silenced it.
    # The lines an allow comment for it may stand on (None: a finding of the whole script).
    allow_lines: Optional[frozenset] = field(default=None, repr=False, compare=False)

    def as_json(self):
        return {'rule': self.rule, 'script': self.script, 'line': self.line,
                'message': self.message, 'backends': self.backends,
                'statements': self.statements, 'reason': self.allowed}


@dataclass
class LintReport:
    directory: str
    backends: List[str]  # Where the scripts were replayed, as shown.
    scripts: int
    findings: List[Finding] = field(default_factory=list)  # Not silenced, not notes.
    silenced: List[Finding] = field(default_factory=list)
    notes: List[Finding] = field(default_factory=list)

    @property
    def clean(self):
        return not self.findings

    def as_json(self):
        return {'ok': self.clean, 'directory': self.directory, 'backends': self.backends,
                'scripts': self.scripts,
                'findings': [f.as_json() for f in self.findings],
                'silenced': [f.as_json() for f in self.silenced],
                'notes': [f.as_json() for f in self.notes]}


class _Allow:
    def __init__(self, line, rule, reason):
        self.line, self.rule, self.reason, self.used = line, rule, reason, False


def _allows(script):
    """([_Allow], [Finding]): the allow comments of a script, and MS008 for the bad ones."""
    try:
        with open(script.path, 'rb') as fh:
            tokens = list(tokenize.tokenize(io.BytesIO(fh.read()).readline))
    except (OSError, SyntaxError, tokenize.TokenError):
        return [], []
    allows, bad = [], []
    for at, token in enumerate(tokens):
        if token.type != tokenize.COMMENT:
            continue
        said = _ALLOW.search(token.string)
        if not said:
            continue
        body = _ALLOW_BODY.match(said[1])
        line = token.start[0]
        if token.line.strip().startswith('#'):  # On a line of its own: for the next code line.
            line = next((t.start[0] for t in tokens[at + 1:] if t.type not in _NOT_CODE), line)
        if not body or body[1] not in RULES:
            bad.append(Finding('MS008', script.name, 'allow comment names no rule (write '
                               '"# modelstore: allow MS00N -- reason")', line))
        elif not body[2]:
            bad.append(Finding('MS008', script.name, 'allow %s without a reason (write "-- '
                               'why it is safe here")' % body[1], line))
        else:
            allows.append(_Allow(line, body[1], body[2]))
    return allows, bad


def _released(directory, released):
    """{name: (sha256, earlier, version)} of the released entries, or {}."""
    path = released or os.path.join(directory or '.', RELEASED_FILE)
    if released is None and not os.path.exists(path):
        return {}
    try:
        with open(path, encoding='utf-8') as fh:
            entries = json.load(fh)['scripts']
        return {e['name']: (e['sha256'], set(e.get('earlier') or ()), e['released'])
                for e in entries if e.get('released')}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError('cannot read the released scripts from %s: %s' % (path, exc)) \
            from None


def _frozen(scripts, recorded):
    found = []
    present = {s.name: s for s in scripts}
    for name, (digest, earlier, version) in sorted(recorded.items()):
        script = present.get(name)
        if script is None:
            found.append(Finding('MS007', name, 'released in %s, and its file is gone: a '
                                 'released script is never removed or renamed' % version))
        elif script.checksum != digest and script.checksum not in earlier:
            found.append(Finding('MS007', name, 'its text changed after its release in %s '
                                 '(recorded sha256 %s, now %s): databases that applied it '
                                 'refuse it; put the released text back and write a new script'
                                 % (version, digest[:12], script.checksum[:12])))
    return found


def _where(url):
    return 'SQLite in memory' if url is None else url.masked


def lint(directory=None, urls=(), released=None):
    """Replay and check the scripts in ``directory`` on SQLite in memory and on each of
    ``urls`` (DatabaseURLs of PostgreSQL or MySQL servers: a throwaway database each);
    ``released``: the released-scripts JSON file (see the module's docstring)."""
    scripts = discover(directory)  # (None: the shipped scripts.)
    directory = directory or os.path.dirname(scripts[0].path) if scripts else directory
    targets = [None] + [u for u in urls if u is not None and u.sqlite_path is None]
    raw = _frozen(scripts, _released(directory, released))
    for url in targets:
        checks = Checks()
        for replayed in replay_for_lint(scripts, url):
            for hit in check_replayed(replayed, checks):
                statement = hit.statement
                raw.append(Finding(hit.rule, replayed.script.name, hit.message,
                                   statement.line if statement else None,
                                   {replayed.backend: statement.sql} if statement else {},
                                   [replayed.backend], hit.note,
                                   allow_lines=statement.allow_lines if statement else None))
    report = LintReport(directory, [_where(u) for u in targets], len(scripts))
    _sort(report, _merged(raw), scripts)
    return report


def _merged(raw):
    merged = {}
    for finding in raw:
        key = (finding.rule, finding.script, finding.line, finding.message)
        if key not in merged:
            merged[key] = finding
            continue
        kept = merged[key]
        for backend in finding.backends:
            if backend not in kept.backends:
                kept.backends.append(backend)
        kept.statements.update(finding.statements)
    for finding in merged.values():
        finding.backends.sort(key=lambda b: BACKENDS.index(b) if b in BACKENDS else 9)
    return list(merged.values())


def _sort(report, findings, scripts):
    """Each finding into the report: silenced by an allow comment, a note, or a finding."""
    allows = {}
    for script in scripts:
        allows[script.name], bad = _allows(script)
        findings += bad
    for finding in sorted(findings, key=lambda f: (f.script, f.line or 0, f.rule)):
        lines = finding.allow_lines
        allow = next((a for a in allows.get(finding.script, ()) if a.rule == finding.rule
                      and (a.line in lines if lines else
                                          finding.rule in _WHOLE_SCRIPT)), None)
        if allow is not None:
            allow.used = True
            finding.allowed = allow.reason
            report.silenced.append(finding)
        elif finding.note:
            report.notes.append(finding)
        else:
            report.findings.append(finding)
    for name, script_allows in sorted(allows.items()):
        report.notes += [Finding('MS008', name, 'allow %s silences nothing (line %d): remove '
                                 'it' % (a.rule, a.line), a.line, note=True)
                         for a in script_allows if not a.used]


def lint_problems(directory, url=None, released=None, skip=()):
    """The findings of ``lint`` as lines, for check_migrations (a ModelStoreError: one line),
    but those of the rules in ``skip`` (what check_migrations reports itself)."""
    try:
        report = lint(directory, [DatabaseURL.of(url)] if url is not None else [], released)
    except ModelStoreError as exc:
        return ['lint: %s' % exc]
    return ['lint: %s%s: %s %s%s' % (f.script, ':%d' % f.line if f.line else '', f.rule,
                                     f.message, ' [%s]' % ', '.join(f.backends)
                                     if f.backends else '')
            for f in report.findings if f.rule not in skip]
