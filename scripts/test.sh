#!/usr/bin/env bash
# Install modelstore with its test, postgres and mysql extras into ./.venv -- non-editable, as
# users get it, so the suite tests the installed package and its shipped scripts -- and run the
# whole test suite three times: on SQLite, on PostgreSQL, then on MariaDB.
#
# PostgreSQL: the server MODELSTORE_TEST_DATABASE_URL names (a role that may CREATE DATABASE),
# else a throwaway one that scripts/postgres.sh starts on 127.0.0.1 (installing Debian's
# `postgresql` package first if needed, as root) and stops at the end.
# MariaDB/MySQL: the server MODELSTORE_TEST_MYSQL_URL names (a user that may CREATE and DROP
# databases), else a throwaway MariaDB that scripts/mariadb.sh starts on 127.0.0.1 (installing
# Debian's `mariadb-server` first if needed, as root) and stops at the end.
# MODELSTORE_TEST_BACKENDS=sqlite (or =postgresql, =mysql, or a list) runs those only.
# Extra arguments go to pytest (e.g. scripts/test.sh -k gate -x).
set -euo pipefail
cd "$(dirname "$0")/.."
backends=${MODELSTORE_TEST_BACKENDS:-sqlite postgresql mysql}
given_url=${MODELSTORE_TEST_DATABASE_URL:-}
given_mysql=${MODELSTORE_TEST_MYSQL_URL:-}
unset MODELSTORE_TEST_DATABASE_URL MODELSTORE_TEST_MYSQL_URL

python3 -m venv .venv
# A stale build/ from an older layout would be copied into the install: start clean.
rm -rf build
.venv/bin/python -m pip install --quiet --disable-pip-version-check '.[test,postgres,mysql]'

# pytest, not `python -m pytest`: the latter puts the checkout on sys.path and would test it
# instead of the installed package.
run() {
    local rc=0
    .venv/bin/pytest "$@" || rc=$?
    # With a filter (-k ...), one backend may have nothing selected: that is not a failure.
    if [ "$rc" = 5 ] && [ "$#" -gt 0 ]; then rc=0; fi
    return "$rc"
}

# on_server BACKEND GIVEN_URL SCRIPT NAME [pytest args]: the suite on GIVEN_URL's server, else on
# a throwaway one that scripts/SCRIPT starts (and the EXIT trap stops).
on_server() {
    local backend=$1 url=$2 script=$3 name=$4 dir
    shift 4
    if [ -z "$url" ]; then
        dir=$(mktemp -d "/tmp/modelstore-$backend.XXXXXX")
        stops+=("bash scripts/$script stop '$dir'")
        url=$(bash "scripts/$script" start "$dir")
        echo "== started a throwaway $name server in $dir"
    fi
    echo "== tests on $name"
    MODELSTORE_TEST_DATABASE_URL=$url run "$@" || failed+=("$backend")
}

failed=()
stops=()
trap 'for stop in "${stops[@]}"; do eval "$stop"; done' EXIT
for backend in $backends; do
    case "$backend" in
    sqlite)
        echo "== tests on SQLite"
        run "$@" || failed+=(sqlite)
        ;;
    postgresql)
        on_server postgresql "$given_url" postgres.sh PostgreSQL "$@"
        ;;
    mysql)
        on_server mysql "$given_mysql" mariadb.sh MariaDB "$@"
        ;;
    *)
        echo "unknown backend '$backend' in MODELSTORE_TEST_BACKENDS (use sqlite, postgresql, mysql)" >&2
        exit 2
        ;;
    esac
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "== FAILED on: ${failed[*]}" >&2
    exit 1
fi
echo "== passed on: $backends"
