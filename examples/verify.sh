#!/usr/bin/env bash
# Developer aid: round-trips every migration of one sqlx project on an empty database.
#
#   examples/verify.sh examples/shop            (or the migrations folder itself)
#
# For each migration V in version order it applies V's up and dumps the schema, then (when
# there is a down) applies the down and checks the schema is exactly the one before V, then
# applies the up again and checks the schema is exactly the one after the first up.
# Schemas are compared as `pg_dump -s` text. No data is seeded: bugs that need rows (a NOT
# NULL column without default, a lossy type change, ...) are invisible here; that is what
# `migproof check` is for.
#
# Files are run as sqlx runs them: whole, in one transaction, unless the first line is
# `-- no-transaction` (then the file is sent as one multi-statement query).
#
# It creates its own database `migproof_verify_<pid>` and drops it on exit; it touches no
# other database. Connection: PGHOST (default 127.0.0.1), PGPORT, PGUSER (default postgres),
# and PGPASSWORD or ~/.pgpass as usual for libpq.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 <project folder or its migrations folder>" >&2
    exit 2
fi
dir=$1
[ -d "$dir/migrations" ] && dir=$dir/migrations
if [ ! -d "$dir" ]; then
    echo "no such folder: $dir" >&2
    exit 2
fi

export PGHOST=${PGHOST:-127.0.0.1}
export PGUSER=${PGUSER:-postgres}
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
db=migproof_verify_$$
work=$(mktemp -d)

cleanup() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql -X -q -d postgres -c "CREATE DATABASE $db" >/dev/null

dump_args=(-s -d "$db")
# (grep reads all of the help text: with -q it could exit early and, under pipefail, turn
# pg_dump's SIGPIPE into a false "no such option")
if pg_dump --help | grep -c -- --restrict-key >/dev/null; then
    dump_args+=(--restrict-key=migproof)
fi
dump() { pg_dump "${dump_args[@]}" >"$1"; }

run() { # run FILE: apply one migration file the way sqlx does
    if head -n 1 "$1" | grep -q '^-- no-transaction'; then
        psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "$(cat "$1")" >/dev/null
    else
        psql -X -q -v ON_ERROR_STOP=1 -1 -d "$db" -f "$1" >/dev/null
    fi
}

failures=0
fail() { echo "  FAIL: $*"; failures=$((failures + 1)); }

dump "$work/before.sql"
shopt -s nullglob
ups=("$dir"/*.up.sql)
if [ ${#ups[@]} -eq 0 ]; then
    echo "no *.up.sql files in $dir" >&2
    exit 2
fi
# Numeric version order, as sqlx sorts (versions are integers, not strings).
mapfile -t ups < <(for f in "${ups[@]}"; do b=$(basename "$f"); echo "$((10#${b%%_*})) $f"; done | sort -n | cut -d' ' -f2-)

for up in "${ups[@]}"; do
    name=$(basename "$up" .up.sql)
    down=${up%.up.sql}.down.sql
    echo "== $name"
    if ! run "$up"; then
        fail "up failed"
        break
    fi
    dump "$work/after.sql"
    if [ ! -f "$down" ]; then
        echo "  no down migration (irreversible)"
    elif ! run "$down"; then
        fail "down failed"
        break
    else
        step_failures=$failures
        dump "$work/down.sql"
        if ! diff -u "$work/before.sql" "$work/down.sql" >"$work/diff" ; then
            fail "schema after down differs from the schema before the up:"
            sed 's/^/    /' "$work/diff"
        fi
        if ! run "$up"; then
            fail "up failed when applied again after the down"
            break
        fi
        dump "$work/again.sql"
        if ! diff -u "$work/after.sql" "$work/again.sql" >"$work/diff"; then
            fail "schema after up, down, up differs from the schema after the first up:"
            sed 's/^/    /' "$work/diff"
        fi
        [ $failures -eq $step_failures ] && echo "  ok: up, down, up"
    fi
    cp "$work/after.sql" "$work/before.sql"
done

if [ $failures -ne 0 ]; then
    echo "$failures failure(s) in $dir"
    exit 1
fi
echo "all migrations of $dir round-trip"
