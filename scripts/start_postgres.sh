#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for tests and demos; print its URL.
#
#   scripts/start_postgres.sh [DATA_DIR]     start (DATA_DIR: a new temporary folder by default)
#   scripts/start_postgres.sh stop DATA_DIR  stop it and delete DATA_DIR
#
# The server listens on 127.0.0.1 only, on a free port, with a fresh data folder, a database
# `kpinb` and a login role `kpinb` with a random password. Durability is switched off (fsync,
# synchronous_commit): never keep data you care about in it. pg_stat_statements is loaded so
# tests can check which queries ran and how many rows they returned.
#
# stdout: exactly one line, the URL  postgresql://kpinb:PASSWORD@127.0.0.1:PORT/kpinb
# stderr: where the data folder and the server log are, and how to stop it.
# Uses Debian's PostgreSQL (/usr/lib/postgresql/<version>/bin); as root on a machine without
# it, installs it with `apt-get install -y postgresql`. PG_BIN=/path/to/bin overrides.
set -euo pipefail

log() { printf '%s\n' "$*" >&2; }

find_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        printf '%s\n' "$PG_BIN"
        return
    fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z "$d" ]] && command -v pg_ctl >/dev/null 2>&1; then
        d=$(dirname "$(command -v pg_ctl)")
    fi
    printf '%s\n' "$d"
}

# Run a command as the server's owner: PostgreSQL refuses to run as root.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

if [[ "${1:-}" == "stop" ]]; then
    dir=${2:?usage: $0 stop DATA_DIR}
    bin=$(find_bin)
    if [[ -f "$dir/PG_VERSION" ]]; then
        as_owner "$bin/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf -- "$dir"
    fi
    exit 0
fi

bin=$(find_bin)
if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "PostgreSQL not found: installing Debian's package (apt-get install -y postgresql)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
        bin=$(find_bin)
    fi
fi
if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
    log "PostgreSQL server binaries not found. Install them (Debian/Ubuntu: apt-get install -y postgresql) or set PG_BIN."
    exit 1
fi

if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    log "running as root needs a 'postgres' user to own the server (Debian's package creates it)."
    exit 1
fi

dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/kpinb-pg.XXXXXX")}
mkdir -p "$dir"
if [[ -n "$(ls -A "$dir")" ]]; then
    log "data folder $dir is not empty; give a new or empty folder."
    exit 1
fi
[[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
chmod 700 "$dir"

port=$(python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF
)
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

# Local socket connections (only the owner can reach the socket in $dir) are trusted, so
# the set-up below needs no password; TCP needs the role's password.
as_owner "$bin/initdb" -D "$dir" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >"$dir.initdb.log" 2>&1 || {
    cat "$dir.initdb.log" >&2
    exit 1
}
rm -f "$dir.initdb.log"

as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start -o "\
 -c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$dir'\
 -c fsync=off -c synchronous_commit=off -c full_page_writes=off\
 -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top\
 -c max_connections=50 -c shared_buffers=128MB" >/dev/null || {
    tail -n 20 "$dir/server.log" >&2
    exit 1
}

as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres <<SQL >/dev/null
CREATE ROLE kpinb LOGIN PASSWORD '$password';
CREATE DATABASE kpinb OWNER kpinb;
\connect kpinb
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
GRANT pg_read_all_stats TO kpinb;
GRANT EXECUTE ON FUNCTION pg_stat_statements_reset(oid, oid, bigint) TO kpinb;
SQL

log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data folder $dir"
log "server log: $dir/server.log"
log "stop with: $0 stop $dir"
printf 'postgresql://kpinb:%s@127.0.0.1:%s/kpinb\n' "$password" "$port"
