"""Docs are code: every ```console transcript and every ```python example in README.md and
docs/*.md runs here, and what it prints must be what the docs show.

**Where.** Each block runs in a fresh directory that is also ``$HOME`` (``<tmp>/home/u``, so ``~``
and the ``/home/u/...`` paths of the docs are the same place), with ``XDG_DATA_HOME`` inside it
(so ``modelstore.connect()`` and ``modelstore migrate`` with no URL use a file there),
``NO_COLOR=1``, ``COLUMNS=80``, ``TZ=UTC``, no ``MODELSTORE_*`` variable and the installed
``modelstore`` first on ``PATH``.

**```console blocks.** The ``$ command`` lines run in order, through bash. What a command prints
-- stdout and stderr together, as a terminal shows them -- must be the lines that follow it in the
block (blank lines after a command's output are only spacing). ``$ echo $?`` prints the previous
command's exit code. A line ``...`` matches any run of lines, for long output.

**```python blocks.** The block is one program, run with the suite's Python in that directory.
What it prints (stdout and stderr together) must be the ```text block that directly follows it
(nothing but blank lines between them); a python block without one must print nothing. It must
exit 0, unless its output block shows a ``Traceback``. ``...`` works as in transcripts.

**Normalising.** Only what cannot be fixed is normalised, in the docs and in the output alike:
timestamps, durations, backup file stamps, the host name, and the temporary directory (removed,
so that ``<tmp>/home/u`` reads ``/home/u``).

**Directives.** HTML comments right before a block say how to run it (one directive per comment):

    <!-- transcript: not run (the reason) -->        listed as skipped, with the reason
    <!-- transcript: continues -->                   in the directory the previous block of the
                                                     same page left (its files, its database)
    <!-- transcript: setup NAME [PATH] -->           prepare a state first
                                                     (tests/transcript_states.py)
    <!-- transcript: file PATH -->                   the block (any language) is written to
                                                     PATH and not run; a later block that
                                                     `continues` uses it
    <!-- transcript: slow (the reason) -->           marked slow (CONTRIBUTING.md): not in the
                                                     fast loop, still run by CI
    <!-- transcript: on mysql -->                    only when the suite runs on MariaDB/MySQL,
    <!-- transcript: on postgresql -->               or on PostgreSQL, with $URL a fresh
                                                     database there

On a server, the docs show the database as ``DOCS_URLS`` below (``registry`` on
``db.internal``): that URL, in a command or in Python source, is replaced by the fresh database's
before running, and the fresh database's URL, masked or not, and its name are shown as the docs'
in the output.

Every other block runs on the SQLite pass. A block with nothing to run, an unknown directive, or
a ``file`` block no later block continues, fails: nothing in the docs is silently left out. When
output changes on purpose, the failure prints the whole block as it runs now, normalised: paste
it back, restoring a real-looking time where it shows ``<time>``. ``--help`` blocks can be
regenerated with ``python tests/test_docs_cli_help.py``.
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
FENCE = re.compile(r'^(\s*)```([\w+-]*)\s*$')
DIRECTIVE = re.compile(r'^\s*<!--\s*transcript:\s*(.*?)\s*-->\s*$')
BIN = os.path.dirname(sys.executable)
KNOWN = ('not run', 'continues', 'setup', 'file', 'on', 'slow')
DOCS_URLS = {'mysql': 'mysql://registry:s3cret@db.internal:3306/registry',
             'postgresql': 'postgresql://registry:s3cret@db.internal:5432/registry'}


# -- reading the docs -------------------------------------------------------------------------

class Block:
    """One fenced block: where it is, its language, its directives and its text; for a
    console block its (command, expected) pairs, for a python block its expected output."""

    def __init__(self, doc, line, lang, directives, lines):
        self.doc, self.line, self.lang, self.directives = doc, line, lang, directives
        self.text = lines
        self.output = None  # a python block's ```text block
        self.commands = []
        self.stray = []  # lines before the first command
        if lang == 'console':
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

    @property
    def file(self):
        return (self.directive('file') or [None])[0]

    @property
    def server(self):
        return (self.directive('on') or [None])[0]


def fences(path):
    """(line, lang, directives, body, follows) for each fenced block of the page at ``path``;
    ``follows``: only blank lines and directives between it and the block before."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    i, end = 0, -1
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
        follows = j == end  # nothing but blank lines (and directives) since the last block
        indent, body, i = len(fence.group(1)), [], i + 1
        while i < len(lines) and lines[i].strip() != '```':
            body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
            i += 1
        yield i - len(body), fence.group(2), directives, body, follows
        end = i
        i += 1


def blocks(docs=DOCS, root=ROOT):
    found = []
    for doc in docs:
        previous = None
        for line, lang, directives, body, follows in fences(os.path.join(root, doc)):
            if (lang == 'text' and follows and not directives and previous is not None
                    and previous.lang == 'python' and previous.output is None
                    and not previous.file):
                previous.output = body
                continue
            if lang in ('console', 'python') or any(d.startswith('file') for d in directives):
                previous = Block(doc, line, lang, directives, body)
                found.append(previous)
            else:
                previous = None
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
           if not k.startswith(('MODELSTORE_', 'PYTHON', 'PYTEST_', 'COLUMNS', 'LINES'))}
    env.update(HOME=home, XDG_DATA_HOME=os.path.join(home, '.local', 'share'), NO_COLOR='1',
               COLUMNS='80', LINES='24', TZ='UTC', USER='u', LOGNAME='u', LANG='C.UTF-8',
               LC_ALL='C.UTF-8', PYTHONUNBUFFERED='1', PATH=BIN + os.pathsep + env['PATH'])
    return env


def served(block, text):
    """``text`` (a command, a program) with the docs' URL of the block's server replaced by the
    fresh database's."""
    for actual, shown in block.names[1:2]:
        text = text.replace(shown, actual)
    return text


def execute(argv, home, env):
    done = subprocess.run(argv, cwd=home, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    return done.returncode, done.stdout


def run_console(block, home, env):
    """Run the block's commands; returns the transcript they print, normalised, and the
    failures (expected vs actual, per command)."""
    code, transcript, failures = 0, [], []
    tmp = os.path.dirname(os.path.dirname(home))
    for command, expected in block.commands:
        code, out = execute(['bash', '-c', '(exit %d); %s' % (code, served(block, command))],
                            home, env)
        actual = normalise(out.splitlines(), tmp=tmp, names=block.names)
        transcript += ['$ ' + command] + actual
        if not matches(normalise(expected), actual):
            failures.append('$ %s\n--- expected:\n%s\n--- actual (exit %d):\n%s' % (
                command, '\n'.join(normalise(expected)), code, '\n'.join(actual)))
    return transcript, failures


def run_python(block, home, env):
    """Run the block as a program; returns its output, normalised, and the failures."""
    tmp = os.path.dirname(os.path.dirname(home))
    program = os.path.join(tmp, 'example_%d.py' % block.line)
    with open(program, 'w', encoding='utf-8') as f:
        f.write(served(block, '\n'.join(block.text)) + '\n')
    code, out = execute([sys.executable, program], home, env)
    actual = normalise(out.splitlines(), tmp=tmp, names=block.names)
    expected = normalise(block.output or [])
    failures = []
    if not matches(expected, actual) or (
            code and not any(line.startswith('Traceback') for line in expected)):
        failures.append('--- expected:\n%s\n--- actual (exit %d):\n%s' % (
            '\n'.join(expected), code, '\n'.join(actual)))
    return actual, failures


def write_file(block, home):
    path = os.path.join(home, block.file[2:] if block.file.startswith('~/') else block.file)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(block.text) + '\n')


def chain(block):
    """The blocks a block runs after, in its directory: those it continues, then itself."""
    index = BLOCKS.index(block)
    if not block.directive('continues'):
        return [block]
    earlier = [b for b in BLOCKS[:index] if b.doc == block.doc and not b.directive('not run')]
    assert earlier, '%s continues no block' % block.id
    return chain(earlier[-1]) + [block]


def server(block):
    """The server a block runs on: its own ``on`` directive, or that of a block it continues."""
    return next((b.server for b in chain(block) if b.server), None)


def _marks(block):
    slow = [pytest.mark.slow] if any(b.directive('slow') for b in chain(block)) else []
    if server(block) == 'mysql':
        return [pytest.mark.mysql_only] + slow
    if server(block) == 'postgresql':
        return [pytest.mark.postgres_only] + slow
    return [pytest.mark.sqlite_only] + slow


RUN = [b for b in BLOCKS if not b.file]


@pytest.mark.parametrize('block', [pytest.param(b, id=b.id, marks=_marks(b)) for b in RUN])
def test_example(block, tmp_path):
    """The block runs and prints what the docs show."""
    unknown = [d for d in block.directives if not d.startswith(KNOWN)]
    assert not unknown, '%s: unknown transcript directive %s (known: %s)' % (
        block.id, unknown, ', '.join(KNOWN))
    if block.directive('not run'):
        pytest.skip('%s not run: %s' % (block.id, block.directive('not run')[0].strip('()')))
    if block.lang == 'console':
        assert block.commands, ('%s: a console block without a `$ command` line: mark it '
                                '<!-- transcript: not run (why) --> or give it commands'
                                % block.id)
        assert not block.stray, '%s: lines before the first command: %s' % (block.id,
                                                                            block.stray)
    else:
        assert any(line.strip() for line in block.text), '%s: an empty block' % block.id
    home = str(tmp_path / 'home' / 'u')
    os.makedirs(home)
    env = environment(home)
    drop, on = None, server(block)
    if on:
        assert on in DOCS_URLS, '%s: on what? (%s)' % (block.id, ', '.join(DOCS_URLS))
        env['URL'], drop = new_database(TEST_URL)
        block.names = served_as(env['URL'], DOCS_URLS[on])
    try:
        for each in chain(block):
            each.names = block.names
            for words in each.directive('setup'):
                setup(home, env, words.split())
            if each.file:
                write_file(each, home)
            elif each.lang == 'console':
                shown, failures = run_console(each, home, env)
            else:
                shown, failures = run_python(each, home, env)
    finally:
        if drop:
            drop()
    if failures:
        pytest.fail('%s: the %s is not what %s prints.\n\n%s\n\n'
                    'What it prints now (normalised):\n%s' % (
                        block.id, 'transcript' if block.lang == 'console' else 'example',
                        'the commands' if block.lang == 'console' else 'the program',
                        '\n\n'.join(failures), '\n'.join(shown)), pytrace=False)


def test_every_block_is_found_and_run_or_marked():
    """The parser sees every fence: a ```console or ```python it missed would silently go
    untested; a file block is used by a block that continues it; python files compile."""
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding='utf-8') as f:
            lines = f.read().splitlines()
        counted = sum(1 for line in lines if FENCE.match(line) and
                      FENCE.match(line).group(2) in ('console', 'python'))
        broken = [n for n, line in enumerate(lines, 1)
                  if line.lstrip().startswith('<!--') and 'transcript:' in line
                  and not DIRECTIVE.match(line)]
        assert not broken, '%s:%s: a directive must be one line <!-- transcript: ... -->' % (
            doc, broken)
        assert counted == sum(1 for b in BLOCKS if b.doc == doc and b.lang in (
            'console', 'python')), doc
    for block in BLOCKS:
        if block.file:
            later = [b for b in BLOCKS[BLOCKS.index(block) + 1:] if b.doc == block.doc]
            assert later and later[0].directive('continues'), (
                '%s: file %s is written for the block after it, which must continue it'
                % (block.id, block.file))
        if block.lang == 'python':
            compile('\n'.join(block.text), block.id, 'exec')
    assert sum(not b.directive('not run') for b in RUN) >= 8
    # What cannot run here is the exception: today one block (a standby and a session holding a
    # lock, which tests/test_ddl_wait.py runs). A new one needs a reason good enough to raise this.
    assert sum(bool(b.directive('not run')) for b in RUN) <= 1
    assert sum(b.lang == 'python' and not b.file and not b.directive('not run')
               for b in BLOCKS) >= 5


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
    shown = served_as('mysql://root:pw@127.0.0.1:3307/ms_t1', DOCS_URLS['mysql'])
    assert normalise(["error: mysql://root:***@127.0.0.1:3307/ms_t1 'ms_t1.x'"], names=shown) \
        == ["error: mysql://registry:***@db.internal:3306/registry 'registry.x'"]


def test_python_blocks_and_their_output_are_paired(tmp_path):
    """A ```text block right after a python block is its output; one after prose is not, nor
    one after a file block."""
    (tmp_path / 'page.md').write_text(
        '```python\nprint(1)\n```\n\n```text\n1\n```\n\nProse.\n\n```text\nx\n```\n'
        '```python\nprint(2)\n```\nProse.\n```text\n2\n```\n'
        '<!-- transcript: file a.py -->\n```python\nx = 1\n```\n```text\ny\n```\n')
    found = blocks(['page.md'], str(tmp_path))
    assert [(b.lang, b.output, b.file) for b in found] == [
        ('python', ['1'], None), ('python', None, None), ('python', None, 'a.py')]
