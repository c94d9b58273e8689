#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, listening on 127.0.0.1 only.
#
#   scripts/postgres.sh start DIR     initdb in DIR, start, create role+database; print the URL
#   scripts/postgres.sh stop DIR      stop the server and delete DIR
#   scripts/postgres.sh restart DIR   stop and start again (same data, same port)
#   scripts/postgres.sh kill DIR      SIGKILL the server (a crash), leave the data
#   scripts/postgres.sh crash DIR     SIGKILL the server and every process of it at once (a
#                                     machine that died), leave the data
#   scripts/postgres.sh standby PRIMARY_DIR DIR
#                                     a streaming-replication standby of PRIMARY_DIR's server in
#                                     DIR, on a port of its own; the primary then waits for it at
#                                     each commit (synchronous_standby_names); print its URL
#   scripts/postgres.sh promote DIR   promote a standby to primary (waits until it accepts writes)
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
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start|stop|restart|kill|crash|promote DIR, or standby PRIMARY_DIR DIR"

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
    extra=$(cat "$dir/options" 2>/dev/null || true)
    as_server_user "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200 $extra" \
        start >/dev/null || { tail -n 20 "$dir/server.log" >&2; die "the server did not start"; }
    # (A standby answers "rejecting connections" until it has caught up: -t 30 waits.)
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30 || die "the server is not ready"
    ;;
kill)
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    ;;
crash)
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    # shellcheck disable=SC2046
    kill -9 "$pid" $(pgrep -P "$pid" || true) 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null || pgrep -P "$pid" >/dev/null; do sleep 0.02; done
    ;;
standby)
    primary=$(cd "$dir" && pwd); dir=${3:-}
    [ -n "$dir" ] || die "usage: $0 standby PRIMARY_DIR DIR"
    bin=$(cat "$primary/bindir"); primary_port=$(cat "$primary/port")
    mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"; echo "$bin" >"$dir/bindir"
    # -R: standby.signal and primary_conninfo (over the primary's socket, trusted locally),
    # named "standby1" so that the primary can wait for it by name.
    as_server_user "$bin/pg_basebackup" -h "$primary" -p "$primary_port" -U postgres \
        -D "$dir/data" -R -X stream -c fast \
        -d "application_name=standby1" >"$dir/basebackup.log" 2>&1 \
        || { cat "$dir/basebackup.log" >&2; die "pg_basebackup failed"; }
    # Promoted, it must not wait for a standby of its own that does not exist.
    echo "-c synchronous_standby_names=" >"$dir/options"
    "$0" restart "$dir" >/dev/null
    psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$primary" -p "$primary_port" -U postgres)
    as_server_user "${psql[@]}" -c "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" >&2
    as_server_user "${psql[@]}" -c "SELECT pg_reload_conf()" >/dev/null
    # Wait until the primary sees the standby as synchronous: from then on a commit is on both.
    for _ in $(seq 1 300); do
        state=$(as_server_user "${psql[@]}" -At -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")
        [ "$state" = sync ] && break
        sleep 0.1
    done
    [ "$state" = sync ] || die "the standby did not become synchronous (state: '$state')"
    echo "postgresql://modelstore:modelstore@127.0.0.1:$port/modelstore"
    ;;
promote)
    bin=$(cat "$dir/bindir")
    as_server_user "$bin/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null \
        || die "promotion failed"
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
