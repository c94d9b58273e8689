#!/usr/bin/env bash
# The full fault harnesses behind docs/reliability.md, on SQLite, PostgreSQL and MariaDB:
# 100 SIGKILL trials per backend on a legacy database of 20,000 rows per table, 8 racing
# runners, 8 writers x 1000 add_model through a migrate and a rollback, 100 SIGKILL trials of
# delete_model(files=True), RACE_MODELS (default 2000) deletes racing a symlink swapper and an
# empty_trash loop, a rolling deploy (8 workers of release N, then 8 of N+1, through the expand
# and contract steps), and the bad-input table; then FAILOVERS (default 10) PostgreSQL
# failovers under 8 writers (a primary SIGKILLed, its synchronous standby promoted; servers of
# its own).
# Exits 1 if any target is missed. Uses ./.venv as scripts/test.sh leaves it (creating it if
# needed, and reinstalling this checkout into it) and MODELSTORE_TEST_DATABASE_URL or a throwaway
# PostgreSQL server, and MODELSTORE_TEST_MYSQL_URL or a throwaway MariaDB, as the tests do.
# TRIALS=N and ROWS=N change the crash harness's size.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${TRIALS:-100}
rows=${ROWS:-20000}
failovers=${FAILOVERS:-10}
race_models=${RACE_MODELS:-2000}
python3 -m venv .venv
# A stale build/ from an older layout would be copied into the install: start clean.
rm -rf build
.venv/bin/python -m pip install --quiet --disable-pip-version-check '.[test,postgres,mysql]'
stops=()
trap 'for stop in "${stops[@]}"; do eval "$stop"; done' EXIT
url=${MODELSTORE_TEST_DATABASE_URL:-}
if [ -z "$url" ]; then
    server_dir=$(mktemp -d /tmp/modelstore-pg.XXXXXX)
    stops+=("bash scripts/postgres.sh stop '$server_dir'")
    url=$(bash scripts/postgres.sh start "$server_dir")
fi
my_url=${MODELSTORE_TEST_MYSQL_URL:-}
if [ -z "$my_url" ]; then
    my_dir=$(mktemp -d /tmp/modelstore-my.XXXXXX)
    stops+=("bash scripts/mariadb.sh stop '$my_dir'")
    my_url=$(bash scripts/mariadb.sh start "$my_dir")
fi
py=.venv/bin/python
failed=0
echo "== $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -sr), $($py --version), SQLite $($py -c 'import sqlite3; print(sqlite3.sqlite_version)'), $($py -c 'import psycopg2, sys; cur = psycopg2.connect(sys.argv[1]).cursor(); cur.execute("SHOW server_version"); print("PostgreSQL", cur.fetchone()[0])' "$url")"
for db in "" "--database $url" "--database $my_url"; do
    $py harness/crash.py --trials "$trials" --rows "$rows" $db || failed=1
    case "$db" in
    *mysql:*) ;;  # (crash_delete: files and rows, the same on every server)
    *) $py harness/crash_delete.py --trials "$trials" $db || failed=1
       $py harness/race_delete.py --models "$race_models" --limit 900 $db || failed=1 ;;
    esac
    $py harness/race.py $db || failed=1
    $py harness/rolling.py $db || failed=1
    $py harness/bad_inputs.py $db | grep -v '^ok ' || failed=1
done
$py harness/failover.py --trials "$failovers" || failed=1
exit $failed
