"""The scripts ship inside the package: a non-editable install in a fresh venv can migrate."""
import os
import subprocess
import venv

import pytest

import modelstore
from modelstore.engine.scripts import default_directory

from conftest import SHIPPED

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Packaging does not depend on the backend: checked once, in the SQLite run.
pytestmark = pytest.mark.sqlite_only


def test_the_scripts_are_found_where_modelstore_is_imported_from():
    directory = default_directory()
    assert os.path.isfile(os.path.join(directory, '0001_initial.py'))
    package = os.path.dirname(modelstore.__file__)
    if os.path.dirname(package) != ROOT:  # Installed (not the checkout): inside the package.
        assert directory == os.path.join(package, 'migrations')


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_gives_a_working_migrate(tmp_path):
    env_dir = tmp_path / 'venv'
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / 'bin'
    install = subprocess.run([str(bin_dir / 'pip'), 'install', '-q', ROOT],
                             capture_output=True, text=True, cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    db = tmp_path / 'fresh.db'
    env = dict(os.environ, NO_COLOR='1')
    result = subprocess.run([str(bin_dir / 'modelstore'), 'migrate', '--database',
                             'sqlite:///%s' % db], capture_output=True, text=True, cwd=tmp_path,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert 'Applied %d scripts' % len(SHIPPED) in result.stdout
    check = subprocess.run([str(bin_dir / 'modelstore'), 'check', '--database',
                            'sqlite:///%s' % db], capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
