#!/usr/bin/env bash
# A throwaway PgBouncer in transaction pooling mode in front of a PostgreSQL server, listening
# on 127.0.0.1 only.
#
#   scripts/pgbouncer.sh start DIR SERVER_URL [POOL]  start one in DIR for the server, role and
#                                                     password of SERVER_URL, with a pool of
#                                                     POOL server connections (default 8);
#                                                     print SERVER_URL with its address
#   scripts/pgbouncer.sh stop DIR                     stop it and delete DIR
#
# Installs Debian's `pgbouncer` package first if it is missing and we are root. PgBouncer
# refuses to run as root, so as root it runs as the `postgres` user.
set -euo pipefail

die() { echo "pgbouncer.sh: $*" >&2; exit 1; }

as_server_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start DIR SERVER_URL [POOL] | stop DIR"

case "$cmd" in
start)
    server=${3:-}; pool=${4:-8}
    [ -n "$server" ] || die "usage: $0 start DIR SERVER_URL [POOL]"
    if ! command -v pgbouncer >/dev/null; then
        [ "$(id -u)" = 0 ] || die "PgBouncer is not installed; install Debian's 'pgbouncer' package"
        echo "pgbouncer.sh: installing PgBouncer from Debian's packages" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends pgbouncer >&2 \
            || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends pgbouncer >&2; }
    fi
    mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # host port user password, and the URL again with PgBouncer's address.
    read -r server_host server_port user password pooled < <(python3 - "$server" "$port" <<'PY'
import sys
from urllib.parse import unquote, urlsplit
url, port = sys.argv[1], sys.argv[2]
parts = urlsplit(url)
print(parts.hostname or '127.0.0.1', parts.port or 5432, unquote(parts.username or ''),
      unquote(parts.password or ''),
      url.replace(parts.netloc.rpartition('@')[2], '127.0.0.1:%s' % port, 1))
PY
)
    printf '"%s" "%s"\n' "$user" "$password" >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$server_host port=$server_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $pool
max_client_conn = 500
max_db_connections = $pool
server_reset_query =
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"/*
    as_server_user pgbouncer -d "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log" >&2; die "PgBouncer did not start"; }
    for _ in $(seq 1 100); do
        python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null && break
        sleep 0.05
    done
    echo "$port" >"$dir/port"
    echo "$pooled"
    ;;
stop)
    if [ -f "$dir/pgbouncer.pid" ]; then
        pid=$(cat "$dir/pgbouncer.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    fi
    rm -rf "$dir"
    ;;
*)
    die "unknown command $cmd"
    ;;
esac
