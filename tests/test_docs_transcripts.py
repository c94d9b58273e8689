"""Docs are code: every ```console transcript in README.md and docs/*.md runs here.

Each block's ``$ command`` lines run in order, through bash, in a fresh directory that is also
``$HOME`` (``<tmp>/home/u``, so ``~`` and the ``/home/u/...`` paths of the docs are the same
place), with ``XDG_DATA_HOME`` inside it, ``NO_COLOR=1``, ``COLUMNS=80``, ``TZ=UTC``, no
``MODELSTORE_*`` variable and the installed ``modelstore`` first on ``PATH``. What a command
prints -- stdout and stderr together, as a terminal shows them -- must be the lines that follow it
in the block (blank lines after a command's output are only spacing). ``$ echo $?`` prints the
previous command's exit code. A line ``...`` matches any run of lines, for long output.

Only what cannot be fixed is normalised, in the docs and in the output alike: timestamps,
durations, backup file stamps, the host name, and the temporary directory (removed, so that
``<tmp>/home/u`` reads ``/home/u``).

An HTML comment right before a block says how to run it (one directive per comment):

    <!-- transcript: not run (the reason) -->        listed as skipped, with the reason
    <!-- transcript: continues -->                   in the previous block's directory
    <!-- transcript: setup NAME [PATH] -->           prepare a state first
                                                     (tests/transcript_states.py)
    <!-- transcript: on mysql -->                    only when the suite runs on MariaDB/MySQL,
                                                     with $URL a fresh database there

Every other block runs on the SQLite pass. A block with no ``$`` line, or an unknown directive,
fails: nothing in the docs is silently left out.
"""
import os
import re
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from conftest import TEST_URL, new_database
from transcript_states import setup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ['README.md'] + ['docs/' + name for name in sorted(os.listdir(os.path.join(ROOT, 'docs')))
                        if name.endswith('.md')]
FENCE = re.compile(r'^(\s*)```console\s*$')
DIRECTIVE = re.compile(r'^\s*<!--\s*transcript:\s*(.*?)\s*-->\s*$')
BIN = os.path.dirname(sys.executable)


# -- reading the docs -------------------------------------------------------------------------

class Block:
    """One ```console block: where it is, its directives and its (command, expected) pairs."""

    def __init__(self, doc, line, directives, lines):
        self.doc, self.line, self.directives = doc, line, directives
        self.commands = []
        self.stray = []  # lines before the first command
        for text in lines:
            if text.startswith('$ '):
                self.commands.append((text[2:], []))
            elif self.commands:
                self.commands[-1][1].append(text)
            elif text.strip():
                self.stray.append(text)

    names = ()  # (actual, as shown) pairs: a server block's URL and database

    @property
    def id(self):
        return '%s:%d' % (self.doc, self.line)

    def directive(self, word):
        return [d[len(word):].strip() for d in self.directives
                if d == word or d.startswith(word + ' ')]


def blocks():
    found = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding='utf-8') as f:
            lines = f.read().splitlines()
        i = 0
        while i < len(lines):
            fence = FENCE.match(lines[i])
            if not fence:
                i += 1
                continue
            directives, j = [], i - 1
            while j >= 0 and (DIRECTIVE.match(lines[j]) or not lines[j].strip()):
                if lines[j].strip():
                    directives.insert(0, DIRECTIVE.match(lines[j]).group(1))
                j -= 1
            indent, body, i = len(fence.group(1)), [], i + 1
            while i < len(lines) and lines[i].strip() != '```':
                body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
                i += 1
            found.append(Block(doc, i - len(body), directives, body))
            i += 1
    return found


BLOCKS = blocks()


# -- normalising ------------------------------------------------------------------------------

NORMALISE = [
    (re.compile(r'\d{8}T\d{6}\.\d{6}Z'), '<stamp>'),
    (re.compile(r'\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?: UTC)?'), '<time>'),
    (re.compile(r' *\b\d+(?:\.\d+)? ?(?:ms|s)\b'), ' <duration>'),
]


def normalise(lines, tmp=None, names=()):
    """``lines`` with what cannot be fixed normalised; ``names``: (actual, as the docs show it)
    pairs replaced first (a throwaway server's URL and database)."""
    out = []
    for line in lines:
        for actual, shown in names:
            line = line.replace(actual, shown)
        if tmp:
            for path in {tmp, os.path.realpath(tmp)}:
                line = line.replace(path, '')
        line = re.sub('@%s\\b' % re.escape(socket.gethostname()), '@host', line)
        for pattern, replacement in NORMALISE:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


DOCS_MYSQL_URL = 'mysql://registry:s3cret@db.internal:3306/registry'


def served_as(url, shown):
    """Pairs that show a throwaway server's ``url`` as the docs' ``shown`` one: the URL masked
    and quoted as modelstore prints it, and the database's name."""
    actual, docs = urlsplit(url), urlsplit(shown)

    def masked(parts):
        return parts._replace(netloc='%s:***@%s' % (parts.username, parts.hostname) + (
            ':%d' % parts.port if parts.port else '')).geturl()
    return [(masked(actual), masked(docs)), (url, shown),
            ("'%s." % actual.path.strip('/'), "'%s." % docs.path.strip('/'))]


def matches(expected, actual):
    """Whether ``actual`` is ``expected`` with each ``...`` line standing for any run of
    lines."""
    memo = {}

    def match(i, j):
        if (i, j) not in memo:
            if i == len(expected):
                memo[i, j] = j == len(actual)
            elif expected[i].strip() == '...':
                memo[i, j] = any(match(i + 1, k) for k in range(j, len(actual) + 1))
            else:
                memo[i, j] = j < len(actual) and expected[i] == actual[j] and match(i + 1, j + 1)
        return memo[i, j]
    return match(0, 0)


# -- running ----------------------------------------------------------------------------------

def environment(home):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('MODELSTORE_', 'PYTHON', 'COLUMNS', 'LINES'))}
    env.update(HOME=home, XDG_DATA_HOME=os.path.join(home, '.local', 'share'), NO_COLOR='1',
               COLUMNS='80', LINES='24', TZ='UTC', USER='u', LOGNAME='u', LANG='C.UTF-8',
               LC_ALL='C.UTF-8', PYTHONUNBUFFERED='1', PATH=BIN + os.pathsep + env['PATH'])
    return env


def run(block, home, env):
    """Run the block's commands; returns the transcript they print, normalised, and the
    failures (expected vs actual, per command)."""
    code, transcript, failures = 0, [], []
    for command, expected in block.commands:
        done = subprocess.run(['bash', '-c', '(exit %d); %s' % (code, command)], cwd=home,
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=300)
        code = done.returncode
        actual = normalise(done.stdout.splitlines(), tmp=os.path.dirname(os.path.dirname(home)),
                           names=block.names)
        transcript += ['$ ' + command] + actual
        if not matches(normalise(expected), actual):
            failures.append('$ %s\n--- expected:\n%s\n--- actual (exit %d):\n%s' % (
                command, '\n'.join(normalise(expected)), code, '\n'.join(actual)))
    return transcript, failures


def _marks(block):
    if block.directive('on') == ['mysql']:
        return [pytest.mark.mysql_only]
    return [pytest.mark.sqlite_only]


def chain(block):
    """The blocks a block runs after, in its directory: those it continues, then itself."""
    index = BLOCKS.index(block)
    if not block.directive('continues'):
        return [block]
    earlier = [b for b in BLOCKS[:index] if b.doc == block.doc and not b.directive('not run')]
    assert earlier, '%s continues no block' % block.id
    return chain(earlier[-1]) + [block]


@pytest.mark.parametrize('block', [pytest.param(b, id=b.id, marks=_marks(b)) for b in BLOCKS])
def test_transcript(block, tmp_path):
    known = ('not run', 'continues', 'setup', 'on')
    unknown = [d for d in block.directives if not d.startswith(known)]
    assert not unknown, '%s: unknown transcript directive %s (known: %s)' % (
        block.id, unknown, ', '.join(known))
    if block.directive('not run'):
        pytest.skip('%s not run: %s' % (block.id, block.directive('not run')[0].strip('()')))
    assert block.commands, ('%s: a console block without a `$ command` line: mark it '
                            '<!-- transcript: not run (why) --> or give it commands' % block.id)
    assert not block.stray, '%s: lines before the first command: %s' % (block.id, block.stray)
    home = str(tmp_path / 'home' / 'u')
    os.makedirs(home)
    env = environment(home)
    drop = None
    if block.directive('on') == ['mysql']:
        env['URL'], drop = new_database(TEST_URL)
        block.names = served_as(env['URL'], DOCS_MYSQL_URL)
    try:
        for each in chain(block):
            for words in each.directive('setup'):
                setup(home, env, words.split())
            transcript, failures = run(each, home, env)
    finally:
        if drop:
            drop()
    if failures:
        pytest.fail('%s: the transcript is not what the commands print.\n\n%s\n\n'
                    'The whole block as it runs now (normalised):\n%s' % (
                        block.id, '\n\n'.join(failures), '\n'.join(transcript)), pytrace=False)


def test_every_console_block_is_found_and_run_or_marked():
    """The parser sees every fence: a ```console it missed would silently go untested."""
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding='utf-8') as f:
            fences = sum(1 for line in f if FENCE.match(line))
        assert fences == sum(1 for b in BLOCKS if b.doc == doc), doc
    assert sum(not b.directive('not run') for b in BLOCKS) >= 8


def test_matching_and_normalising():
    assert matches(['a', '...', 'd'], ['a', 'b', 'c', 'd'])
    assert matches(['a', '...'], ['a'])
    assert not matches(['a', '...', 'd'], ['a', 'b'])
    assert not matches(['a'], ['a', 'b'])
    assert normalise(['Applied 3 scripts (9 operations) in 12 ms.']) == \
        normalise(['Applied 3 scripts (9 operations) in 1 ms.'])
    assert normalise(['x  2026-11-21 07:39:19 UTC  ran     45.5 ms  u@%s'
                      % socket.gethostname()]) == ['x  <time>  ran <duration>  u@host']
    assert normalise(['/t/home/u/r.db.20261121T101500.123456Z.schema-0004.bak'], tmp='/t') == \
        ['/home/u/r.db.<stamp>.schema-0004.bak']
