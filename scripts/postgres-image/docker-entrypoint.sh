#!/bin/bash
# Entrypoint of the PostgreSQL image that scripts/docker-backend-test.sh builds from Debian's
# postgresql package. It starts PostgreSQL the way the official `postgres` image does, for
# everything migproof and the testcontainers postgres module rely on:
#   - POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, POSTGRES_HOST_AUTH_METHOD (trust or a
#     password method), POSTGRES_INITDB_ARGS;
#   - arguments starting with `-` are passed to `postgres` (so `-c port=N` is honoured);
#   - a first start initialises $PGDATA through a temporary server whose log goes to stdout,
#     then runs the real server in the foreground, logging to stderr. Both print "database
#     system is ready to accept connections", which is what the module waits for.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    user="${POSTGRES_USER:-postgres}"
    auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
        echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set;" \
            "set it, or POSTGRES_HOST_AUTH_METHOD=trust" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as in the official image
    initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"

    # A temporary server on the socket only, on PGPORT or 5432 whatever port was asked for, as
    # the official image runs it; without -l, pg_ctl sends its log to stdout.
    shift
    export PGPORT="${PGPORT:-5432}"
    pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@") -c listen_addresses='' -p $PGPORT" -w start
    db="${POSTGRES_DB:-$user}"
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username "$user" --no-password --dbname postgres \
            -c "CREATE DATABASE \"$db\""
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "PostgreSQL init process complete; ready for start up."
    set -- postgres "$@"
fi

exec "$@"
