"""`modelstore new SLUG`: an empty script with the next free number, or a clear refusal that
writes nothing."""
import os

import pytest

from modelstore.engine.scripts import discover

from conftest import SHIPPED


@pytest.fixture
def mdir(tmp_path):
    """A project's migrations directory holding copies of the shipped scripts."""
    directory = tmp_path / 'migrations'
    directory.mkdir()
    for script in discover():
        (directory / os.path.basename(script.path)).write_bytes(open(script.path, 'rb').read())
    return directory


def test_new_writes_the_next_number_with_a_docstring_up_and_down(cli, mdir):
    code, out, err = cli('new', 'add_notes', '--migrations', mdir)
    assert code == 0, err
    path = mdir / ('%04d_add_notes.py' % (len(SHIPPED) + 1))
    assert out.strip() == str(path)
    text = path.read_text()
    assert text.startswith('"""Add notes: TODO')
    [script] = [s for s in discover(str(mdir)) if s.name.endswith('add_notes')]
    module = script.load(('up', 'down'))
    assert module.__doc__.startswith('Add notes')


def test_an_empty_directory_starts_at_0001(cli, tmp_path):
    (tmp_path / 'm').mkdir()
    code, out, _ = cli('new', 'initial', '--migrations', tmp_path / 'm')
    assert code == 0 and out.strip().endswith('0001_initial.py')


def test_a_number_is_never_reused_even_after_a_gap_or_a_disabled_script(cli, tmp_path):
    directory = tmp_path / 'm'
    directory.mkdir()
    (directory / '0001_a.py').write_text('def up(m, db): pass\n')
    (directory / '0004_b.py').write_text('def up(m, db): pass\n')
    (directory / '0007_c.py.disabled').write_text('')
    code, out, _ = cli('new', 'd', '--migrations', directory)
    assert code == 0 and out.strip().endswith('0008_d.py')


def test_the_default_directory_is_migrations_under_the_current_one(cli, tmp_path, monkeypatch):
    (tmp_path / 'migrations').mkdir()
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli('new', 'first')
    assert code == 0 and out.strip() == os.path.join('migrations', '0001_first.py')
    assert (tmp_path / 'migrations' / '0001_first.py').exists()


def test_json_names_the_path(cli, mdir):
    code, out, _ = cli('new', 'x', '--migrations', mdir, '--json')
    assert code == 0 and '"paths"' in out and 'x.py' in out


@pytest.mark.parametrize('slug', ['Add_Notes', 'add-notes', 'add notes', '../escape', '', 'é',
                                  'a.b', 'x' * 81])
def test_a_bad_slug_is_refused_and_nothing_is_written(cli, mdir, slug):
    before = sorted(os.listdir(mdir))
    code, _, err = cli('new', slug, '--migrations', mdir)
    assert code == 2
    assert 'slug' in err and err.count('\n') == 1
    assert sorted(os.listdir(mdir)) == before


def test_a_slug_that_exists_is_refused(cli, mdir):
    before = sorted(os.listdir(mdir))
    code, _, err = cli('new', 'add_is_custom_base_model', '--migrations', mdir)
    assert code == 2
    assert 'a script named add_is_custom_base_model already exists' in err
    assert sorted(os.listdir(mdir)) == before


def test_a_directory_that_is_not_a_migrations_directory_is_refused(cli, tmp_path):
    source = tmp_path / 'src'
    source.mkdir()
    (source / 'app.py').write_text('x = 1\n')
    (source / '0001_ok.py').write_text('def up(m, db): pass\n')
    code, _, err = cli('new', 'x', '--migrations', source)
    assert code == 2 and 'is not a migrations directory' in err and 'app.py' in err
    assert sorted(os.listdir(source)) == ['0001_ok.py', 'app.py']
    code, _, err = cli('new', 'x', '--migrations', tmp_path / 'absent')
    assert code == 2 and 'does not exist' in err and not (tmp_path / 'absent').exists()
    (tmp_path / 'file').write_text('')
    code, _, err = cli('new', 'x', '--migrations', tmp_path / 'file')
    assert code == 2 and 'is not a directory' in err


def test_the_installed_package_scripts_are_never_written_to(cli):
    directory = os.path.dirname(discover()[0].path)
    before = sorted(os.listdir(directory))
    code, _, err = cli('new', 'x', '--migrations', directory)
    assert code == 2
    assert 'lost on upgrade' in err or 'not a migrations directory' in err
    assert sorted(os.listdir(directory)) == before


def test_models_and_dry_run_need_auto(cli, mdir):
    code, _, err = cli('new', 'x', '--migrations', mdir, '--models', 'modelstore.models')
    assert code == 2 and 'go with --auto' in err
