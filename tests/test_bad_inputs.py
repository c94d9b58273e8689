"""The bad-input table (harness/bad_inputs.py) on the backend under test.

Each case must raise the expected error class or exit code with a message naming the problem,
and leave the database dump and every other file exactly as they were (the SQL-metacharacter
cases must store their strings verbatim and change nothing else).
"""
import pytest

from bad_inputs import CASES, prepare, run_case
from conftest import BACKEND

SELECTED = [c for c in CASES if BACKEND in c.backends]


def test_the_table_is_at_least_thirty_cases_on_every_backend():
    for backend in ('sqlite', 'postgresql'):
        assert len([c for c in CASES if backend in c.backends]) >= 30


@pytest.mark.parametrize('case', SELECTED, ids=[c.name for c in SELECTED])
def test_bad_input_is_refused_clearly_and_changes_nothing(case, db_url, tmp_path):
    prepare(db_url)
    handled, changed, detail = run_case(case, db_url, str(tmp_path), BACKEND)
    assert handled, detail
    assert not changed, detail
