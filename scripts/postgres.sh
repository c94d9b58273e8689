#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, listening on 127.0.0.1 only.
#
#   scripts/postgres.sh start DIR     initdb in DIR, start, create role+database; print the URL
#   scripts/postgres.sh stop DIR      stop the server and delete DIR
#   scripts/postgres.sh restart DIR   stop and start again (same data, same port)
#   scripts/postgres.sh kill DIR      SIGKILL the server (a crash), leave the data
#
# Uses Debian's PostgreSQL binaries; installs the `postgresql` package first if they are missing
# and we are root. The server refuses to run as root, so as root it runs as the `postgres` user.
# As root, DIR's parent must be one the postgres user can enter (e.g. from mktemp -d).
# The test server runs with fsync=off: it holds throwaway data and its speed matters more.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
        [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; install Debian's 'postgresql' package, or set MODELSTORE_TEST_DATABASE_URL to a server of yours"
        echo "postgres.sh: installing PostgreSQL from Debian's packages" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends postgresql >&2
        dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    echo "$dir"
}

german_locale() {
    # A locale the server can switch its messages to; generated once, as root (Debian's
    # `locales` package ships the definitions). Must exist before the server starts.
    if ! locale -a 2>/dev/null | grep -qi '^de_DE\.utf-\?8$' && [ "$(id -u)" = 0 ] \
        && command -v localedef >/dev/null; then
        localedef -i de_DE -f UTF-8 de_DE.UTF-8 >&2 \
            || echo "postgres.sh: could not generate de_DE.UTF-8" >&2
    fi
}

as_server_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start|stop|restart|kill DIR"

case "$cmd" in
start)
    bin=$(bindir)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_server_user "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    echo "$port" >"$dir/port"
    echo "$bin" >"$dir/bindir"
    german_locale
    "$0" restart "$dir" >/dev/null
    psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres)
    as_server_user "${psql[@]}" -c "CREATE ROLE modelstore LOGIN PASSWORD 'modelstore' CREATEDB" >&2
    as_server_user "${psql[@]}" -c "CREATE DATABASE modelstore OWNER modelstore" >&2
    # The error-contract tests run sessions with German server messages (?options=-c
    # lc_messages=de_DE.UTF-8): errors must be classified by SQLSTATE, not by English words.
    # PostgreSQL 15 lets a role be granted that setting; older servers skip those tests.
    as_server_user "${psql[@]}" -c "GRANT SET ON PARAMETER lc_messages TO modelstore" >&2 \
        2>/dev/null || echo "postgres.sh: cannot grant lc_messages (PostgreSQL < 15)" >&2
    echo "postgresql://modelstore:modelstore@127.0.0.1:$port/modelstore"
    ;;
restart)
    bin=$(cat "$dir/bindir"); port=$(cat "$dir/port")
    as_server_user "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || { tail -n 20 "$dir/server.log" >&2; die "the server did not start"; }
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30 || die "the server is not ready"
    ;;
kill)
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    ;;
stop)
    if [ -f "$dir/bindir" ]; then
        as_server_user "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    die "unknown command $cmd"
    ;;
esac
