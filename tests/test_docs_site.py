"""The documentation site builds strictly, every page is in it, and the README stays a front page.

``mkdocs build --strict`` with mkdocs.yml's validation turns a link to a missing page, a missing
anchor, or a page left out of the nav into a failed build. mkdocs is in the ``test`` extra: a
suite without it fails here rather than skipping the check.
"""
import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, 'docs')
LINK = re.compile(r'\]\(([^)\s]+)\)')

pytestmark = pytest.mark.sqlite_only  # nothing here depends on the backend under test


def build(config, site):
    """``mkdocs build --strict`` of ``config`` into ``site``: (exit code, output)."""
    if importlib.util.find_spec('mkdocs') is None:
        pytest.fail('mkdocs is not installed: it is in the test extra (pip install '
                    '".[test]"); the docs site cannot be checked without it', pytrace=False)
    done = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '--config-file',
                           config, '--site-dir', site], cwd=os.path.dirname(config),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    return done.returncode, done.stdout


def test_the_site_builds_strictly(tmp_path):
    code, out = build(os.path.join(ROOT, 'mkdocs.yml'), str(tmp_path / 'site'))
    assert code == 0 and 'WARNING' not in out, out
    assert (tmp_path / 'site' / 'cli' / 'index.html').exists()


def test_every_page_is_in_the_nav():
    with open(os.path.join(ROOT, 'mkdocs.yml'), encoding='utf-8') as f:
        config = f.read()
    listed = set(re.findall(r':\s*([\w-]+\.md)\s*$', config, re.M))
    pages = {name for name in os.listdir(DOCS) if name.endswith('.md')}
    assert pages - listed == set(), 'pages not in mkdocs.yml nav: %s' % (pages - listed)
    assert listed - pages == set(), 'nav names missing pages: %s' % (listed - pages)


def test_a_broken_link_or_anchor_fails_the_build(tmp_path):
    """The same validation on a two-page site with one broken link and one broken anchor."""
    with open(os.path.join(ROOT, 'mkdocs.yml'), encoding='utf-8') as f:
        config = f.read().split('\nnav:')[0].replace('docs_dir: docs', 'docs_dir: pages')
    (tmp_path / 'pages').mkdir()
    (tmp_path / 'pages' / 'index.md').write_text('# Home\n\n[fine](other.md#there)\n')
    (tmp_path / 'pages' / 'other.md').write_text('# Other\n\n## There\n')
    (tmp_path / 'mkdocs.yml').write_text(config + '\nnav:\n  - index.md\n  - other.md\n')
    assert build(str(tmp_path / 'mkdocs.yml'), str(tmp_path / 'site'))[0] == 0
    for broken in ('[gone](gone.md)', '[gone](other.md#not-there)'):
        (tmp_path / 'pages' / 'index.md').write_text('# Home\n\n%s\n' % broken)
        code, out = build(str(tmp_path / 'mkdocs.yml'), str(tmp_path / 'site'))
        assert code != 0 and 'WARNING' in out, (broken, out)


def test_the_readme_is_a_front_page_whose_links_lead_somewhere():
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    assert len(text.splitlines()) <= 200, 'README.md: keep it a front page; the rest in docs/'
    for target in LINK.findall(text):
        if '://' in target:
            continue
        path = target.split('#')[0]
        assert os.path.exists(os.path.join(ROOT, path)), 'README.md links to %s' % target
    # Its quick start is the one .ci/run runs.
    with open(os.path.join(ROOT, '.ci', 'run'), encoding='utf-8') as f:
        ci = f.read()
    assert 'python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/modelstore migrate' \
        in text
    assert 'python3 -m venv .venv && .venv/bin/pip install' in ci and \
        '.venv/bin/modelstore migrate' in ci
    assert '\n./scripts/test.sh\n' in text and '\n./scripts/test.sh\n' in ci
