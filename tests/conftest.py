"""Fixtures: a fresh SQLite file per test, the CLI run through main(), throwaway scripts."""
import os
import sqlite3
import textwrap

import pytest

from modelstore.cli import main
from modelstore.loader import default_directory

SHIPPED = [os.path.basename(p)[:-3] for p in sorted(os.listdir(default_directory()))
           if p[0].isdigit() and p.endswith('.py')]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test sees the user's database, environment URL or terminal colours."""
    monkeypatch.setenv('XDG_DATA_HOME', str(tmp_path / 'xdg'))
    monkeypatch.delenv('MODELSTORE_DATABASE_URL', raising=False)
    monkeypatch.setenv('NO_COLOR', '1')


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / 'registry.db')


@pytest.fixture
def db_url(db_path):
    return 'sqlite:///' + db_path


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def scripts(tmp_path):
    """Write throwaway migration scripts: scripts('0001_x.py', body); scripts.dir is the path."""
    directory = tmp_path / 'scripts'
    directory.mkdir()

    def write(name, body):
        path = directory / name
        path.write_text(textwrap.dedent(body))
        return path

    write.dir = str(directory)
    return write


def dump(path):
    """Schema and every row of every table, to compare a file before and after."""
    conn = sqlite3.connect(path)
    try:
        schema = conn.execute('SELECT type, name, tbl_name, sql FROM sqlite_master '
                              'ORDER BY type, name').fetchall()
        rows = {}
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            rows[name] = conn.execute('SELECT * FROM "%s" ORDER BY rowid' % name).fetchall()
        return schema, rows
    finally:
        conn.close()


def tables(path):
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}
    finally:
        conn.close()


def columns(path, table):
    conn = sqlite3.connect(path)
    try:
        return [r[1] for r in conn.execute('PRAGMA table_info("%s")' % table)]
    finally:
        conn.close()


def history(path):
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute('SELECT * FROM schema_migration ORDER BY id')]
    finally:
        conn.close()
