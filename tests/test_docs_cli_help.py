"""The ``--help`` texts in the docs are the parser's: generated, and checked against it.

Every command and subcommand of ``modelstore`` (found by reading ``modelstore --help`` and each
command's own, so a new command is found too) has a transcript block in docs/cli.md holding
exactly ``$ modelstore COMMAND --help`` and what it prints, in the environment the transcripts
run in (``COLUMNS=80``; tests/test_docs_transcripts.py runs the blocks as well). Any block in
README.md or docs/ made of one ``$ modelstore ... --help`` line is checked the same way.

When the parser changes, regenerate the blocks (and add those of new commands at the end of
docs/cli.md)::

    python tests/test_docs_cli_help.py      # with the changed modelstore installed
"""
import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from functools import lru_cache

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), 'harness')]

from test_docs_transcripts import DOCS, FENCE, ROOT, environment  # noqa: E402

from modelstore.cli import main  # noqa: E402

pytestmark = pytest.mark.sqlite_only  # the parser is the same on every backend

CLI_PAGE = 'docs/cli.md'
HELP = re.compile(r'^\$ (modelstore(?: [a-z][a-z0-9-]*)*) --help$')
SUBCOMMAND = re.compile(r'^    ([a-z][a-z0-9-]*)(?:\s{2,}|$)')


@lru_cache(maxsize=None)
def helped(command):
    """What ``COMMAND --help`` prints in the transcripts' environment, as lines: the parser run
    in-process (one subprocess per command cost ~3 s; test_help_in_process_is_what_the_command_
    prints checks the two agree)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = os.path.join(tmp, 'home', 'u')
        os.makedirs(home)
        saved, wanted = dict(os.environ), environment(home)
        out = io.StringIO()
        try:
            os.environ.clear()
            os.environ.update(wanted)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = main(command.split()[1:] + ['--help'])
        finally:
            os.environ.clear()
            os.environ.update(saved)
    assert code == 0, (command, out.getvalue())
    return tuple(line.rstrip() for line in out.getvalue().rstrip('\n').splitlines())


def helped_by_the_command(command):
    """``helped``, through the installed ``modelstore`` in a subprocess, as a user runs it."""
    with tempfile.TemporaryDirectory() as tmp:
        home = os.path.join(tmp, 'home', 'u')
        os.makedirs(home)
        done = subprocess.run(['bash', '-c', command + ' --help'], cwd=home,
                              env=environment(home), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=60)
    assert done.returncode == 0, (command, done.stdout)
    return tuple(line.rstrip() for line in done.stdout.rstrip('\n').splitlines())


@pytest.mark.parametrize('command', ['modelstore', 'modelstore models list'])
def test_help_in_process_is_what_the_command_prints(command):
    assert helped(command) == helped_by_the_command(command)


def commands(command='modelstore'):
    """``command`` and every command below it, as the parser lists them."""
    found, section = [command], None
    for line in helped(command):
        if line and not line.startswith(' '):
            section = line
        elif section == 'positional arguments:' and SUBCOMMAND.match(line):
            found += commands(command + ' ' + SUBCOMMAND.match(line).group(1))
    return found


def help_blocks(doc):
    """(command, first line, end line) of each console block of ``doc`` that is one
    ``$ modelstore ... --help`` and its output: the block's lines ``first`` to ``end`` - 1."""
    with open(os.path.join(ROOT, doc), encoding='utf-8') as f:
        lines = f.read().splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence and fence.group(2) == 'console':
            end = i + 1
            while lines[end].strip() != '```':
                end += 1
            body = lines[i + 1:end]
            first = HELP.match(body[0]) if body else None
            if first and not any(line.startswith('$ ') for line in body[1:]):
                found.append((first.group(1), i + 1, end))
            i = end
        i += 1
    return lines, found


def test_every_command_has_its_help_in_the_cli_page():
    listed = [command for command, _, _ in help_blocks(CLI_PAGE)[1]]
    missing = [c for c in commands() if c not in listed]
    assert not missing, ('%s lacks the --help of %s: run python tests/test_docs_cli_help.py'
                         % (CLI_PAGE, ', '.join(missing)))
    assert len(commands()) >= 15  # migrate ... import modelforge: the discovery works


def test_every_help_block_is_what_the_parser_prints():
    stale = []
    for doc in DOCS:
        lines, found = help_blocks(doc)
        for command, first, end in found:
            if lines[first + 1:end] != list(helped(command)):
                stale.append('%s:%d %s --help' % (doc, first + 1, command))
    assert not stale, ('help text differs from the parser in %s: run python '
                       'tests/test_docs_cli_help.py' % ', '.join(stale))


def regenerate():
    """Rewrite every help block from the parser; add the missing ones to the CLI page."""
    for doc in DOCS:
        lines, found = help_blocks(doc)
        for command, first, end in reversed(found):
            lines[first + 1:end] = list(helped(command))
        if doc == CLI_PAGE:
            listed = [command for command, _, _ in found]
            for command in commands():
                if command not in listed:
                    lines += ['', '### `%s`' % command, '', '```console',
                              '$ %s --help' % command] + list(helped(command)) + ['```']
        with open(os.path.join(ROOT, doc), 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines) + '\n')
        print('%s: %d help blocks' % (doc, len(found)))


if __name__ == '__main__':
    regenerate()
