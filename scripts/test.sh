#!/usr/bin/env bash
# Install modelstore with its test extras into ./.venv -- non-editable, as users get it, so the
# suite tests the installed package and its shipped scripts -- and run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k gate).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check '.[test]'
# pytest, not `python -m pytest`: the latter puts the checkout on sys.path and would test it
# instead of the installed package.
exec .venv/bin/pytest "$@"
