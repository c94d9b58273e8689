#!/usr/bin/env bash
# A throwaway MariaDB server for the tests, listening on 127.0.0.1 only, with its own datadir,
# socket and port (nothing of a system MariaDB is touched).
#
#   scripts/mariadb.sh start DIR     mariadb-install-db in DIR, start, create a user and a
#                                    database; print the URL
#   scripts/mariadb.sh stop DIR      stop the server and delete DIR
#   scripts/mariadb.sh restart DIR   stop and start again (same data, same port)
#   scripts/mariadb.sh kill DIR      SIGKILL the server (a crash), leave the data
#
# Uses Debian's MariaDB binaries; installs the `mariadb-server` package first if they are missing
# and we are root (the package's own service is stopped and disabled again: the tests start
# theirs). As root the server runs as the `mysql` user, so DIR's parent must be one it can enter
# (e.g. from mktemp -d).
# The test server does not flush its log at each commit: it holds throwaway data and its speed
# matters more.
set -euo pipefail

die() { echo "mariadb.sh: $*" >&2; exit 1; }

install_server() {
    if command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; then return; fi
    [ "$(id -u)" = 0 ] || die "MariaDB is not installed; install Debian's 'mariadb-server' package, or set MODELSTORE_TEST_MYSQL_URL to a server of yours"
    echo "mariadb.sh: installing MariaDB from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d: the package must not start a system server of its own on port 3306.
    local policy=/usr/sbin/policy-rc.d had_policy=1
    [ -e "$policy" ] || { had_policy=0; printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; }
    apt-get install -y -q --no-install-recommends mariadb-server mariadb-client >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends mariadb-server mariadb-client >&2; }
    [ "$had_policy" = 1 ] || rm -f "$policy"
}

server_user() {
    if [ "$(id -u)" = 0 ]; then echo mysql; else id -un; fi
}

client() {  # client DIR ARGS...: the server's root over its socket.
    local dir=$1; shift
    mariadb --no-defaults -uroot --socket="$dir/mysqld.sock" "$@"
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start|stop|restart|kill DIR"

case "$cmd" in
start)
    install_server
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown mysql: "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    mariadb-install-db --no-defaults --user="$(server_user)" --datadir="$dir/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1 \
        || { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
    bash "$0" restart "$dir" >/dev/null
    client "$dir" -e "CREATE USER 'modelstore'@'127.0.0.1' IDENTIFIED BY 'modelstore';
        CREATE DATABASE modelstore CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
        GRANT ALL PRIVILEGES ON *.* TO 'modelstore'@'127.0.0.1';" >&2 \
        || die "could not create the modelstore user"
    echo "mysql://modelstore:modelstore@127.0.0.1:$port/modelstore"
    ;;
restart)
    port=$(cat "$dir/port")
    bash "$0" _stop "$dir"
    # --no-defaults: no /etc/mysql configuration leaks in. The settings are the ones a server
    # for modelstore needs (utf8mb4, InnoDB, strict) plus test speed (no flush per commit).
    server=$(command -v mariadbd || echo /usr/sbin/mariadbd)
    (umask 007; nohup "$server" --no-defaults --user="$(server_user)" --datadir="$dir/data" \
        --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --bind-address=127.0.0.1 \
        --port="$port" --log-error="$dir/server.log" --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --default-storage-engine=InnoDB --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
        --innodb-buffer-pool-size=256M --max-connections=300 \
        >/dev/null 2>&1 &)
    for _ in $(seq 1 600); do
        client "$dir" -e 'SELECT 1' >/dev/null 2>&1 && exit 0
        sleep 0.1
    done
    tail -n 20 "$dir/server.log" >&2
    die "the server did not start"
    ;;
_stop)
    if [ -f "$dir/mysqld.pid" ]; then
        pid=$(cat "$dir/mysqld.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$dir/mysqld.pid"
    fi
    ;;
kill)
    pid=$(cat "$dir/mysqld.pid")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$dir/mysqld.pid"
    ;;
stop)
    if [ -f "$dir/mysqld.pid" ]; then
        pid=$(cat "$dir/mysqld.pid")
        kill -9 "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
    rm -rf "$dir"
    ;;
*)
    die "unknown command $cmd"
    ;;
esac
