#!/usr/bin/env bash
# Install modelstore with its test and postgres extras into ./.venv -- non-editable, as users get
# it, so the suite tests the installed package and its shipped scripts -- and run the whole test
# suite twice: on SQLite, then on PostgreSQL.
#
# PostgreSQL: the server MODELSTORE_TEST_DATABASE_URL names (a role that may CREATE DATABASE),
# else a throwaway one that scripts/postgres.sh starts on 127.0.0.1 (installing Debian's
# `postgresql` package first if needed, as root) and stops at the end.
# MODELSTORE_TEST_BACKENDS=sqlite (or =postgresql) runs one backend only.
# Extra arguments go to pytest (e.g. scripts/test.sh -k gate -x).
set -euo pipefail
cd "$(dirname "$0")/.."
backends=${MODELSTORE_TEST_BACKENDS:-sqlite postgresql}
given_url=${MODELSTORE_TEST_DATABASE_URL:-}
unset MODELSTORE_TEST_DATABASE_URL

python3 -m venv .venv
# A stale build/ from an older layout would be copied into the install: start clean.
rm -rf build
.venv/bin/python -m pip install --quiet --disable-pip-version-check '.[test,postgres]'

# pytest, not `python -m pytest`: the latter puts the checkout on sys.path and would test it
# instead of the installed package.
run() {
    local rc=0
    .venv/bin/pytest "$@" || rc=$?
    # With a filter (-k ...), one backend may have nothing selected: that is not a failure.
    if [ "$rc" = 5 ] && [ "$#" -gt 0 ]; then rc=0; fi
    return "$rc"
}

failed=()
for backend in $backends; do
    case "$backend" in
    sqlite)
        echo "== tests on SQLite"
        run "$@" || failed+=(sqlite)
        ;;
    postgresql)
        url=$given_url
        if [ -z "$url" ]; then
            server_dir=$(mktemp -d /tmp/modelstore-pg.XXXXXX)
            trap 'bash scripts/postgres.sh stop "$server_dir"' EXIT
            url=$(bash scripts/postgres.sh start "$server_dir")
            echo "== started a throwaway PostgreSQL server in $server_dir"
        fi
        echo "== tests on PostgreSQL"
        MODELSTORE_TEST_DATABASE_URL=$url run "$@" || failed+=(postgresql)
        ;;
    *)
        echo "unknown backend '$backend' in MODELSTORE_TEST_BACKENDS (use sqlite, postgresql)" >&2
        exit 2
        ;;
    esac
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "== FAILED on: ${failed[*]}" >&2
    exit 1
fi
echo "== passed on: $backends"
