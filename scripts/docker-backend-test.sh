#!/usr/bin/env bash
# Really exercises `migproof --backend docker` on a Debian machine that has no Docker engine and
# cannot pull images from a registry:
#   1. installs Debian's docker.io and debootstrap if they are missing;
#   2. starts dockerd if no engine answers (host networking only: no bridge, no iptables), and
#      stops it again at the end;
#   3. builds a PostgreSQL image without a registry: a minimal Debian root file system made with
#      debootstrap, Debian's postgresql package, and an entrypoint that behaves like the official
#      image's (scripts/postgres-image/docker-entrypoint.sh), imported with `docker import` and
#      tagged `migproof/postgres:<major>` (kept and reused by later runs);
#   4. runs the docker backend's tests (tests/docker.rs) against that image, where they must run
#      (MIGPROOF_DOCKER_TESTS=1 turns their "no engine, skipped" into a failure).
#
# Usage: scripts/docker-backend-test.sh [--image-only] [-- extra cargo test arguments]
# Needs root (apt-get, dockerd, debootstrap). Env: SUITE (default bookworm), KEEP_DOCKERD=1 to
# leave a dockerd started here running.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE="${SUITE:-bookworm}"
REPO=migproof/postgres
DATA_ROOT=/var/lib/migproof-docker
DOCKERD_LOG=/var/log/migproof-dockerd.log
ENTRYPOINT=scripts/postgres-image/docker-entrypoint.sh

image_only=0
if [ "${1:-}" = --image-only ]; then
    image_only=1
    shift
fi
[ "${1:-}" = -- ] && shift

say() { echo "docker-backend-test: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    say "must run as root (it installs packages and starts dockerd)"
    exit 2
fi

# 1. Packages.
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    say "installing docker.io and debootstrap"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io debootstrap
fi

# 2. An engine. Debian's docker client is used explicitly: another `docker` on PATH may be a
# client of another version or another engine.
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER="$(command -v docker)"
engine_answers() { timeout 10 "$DOCKER" version >/dev/null 2>&1; }

dockerd_pid=
mounted_proc=
rootfs=
cleanup() {
    if [ -n "$mounted_proc" ]; then umount "$mounted_proc" 2>/dev/null || true; fi
    if [ -n "$rootfs" ]; then rm -rf "$rootfs"; fi
    if [ -n "$dockerd_pid" ] && [ "${KEEP_DOCKERD:-0}" != 1 ]; then
        say "stopping the dockerd started here (pid $dockerd_pid)"
        kill "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 1 30); do
            kill -0 "$dockerd_pid" 2>/dev/null || break
            sleep 1
        done
    fi
}
trap cleanup EXIT

if engine_answers; then
    say "using the Docker engine that answers at ${DOCKER_HOST:-/var/run/docker.sock}"
else
    say "no Docker engine answers; starting dockerd (data root $DATA_ROOT, log $DOCKERD_LOG)"
    mkdir -p "$DATA_ROOT"
    # migproof's containers use the host's network, so dockerd needs neither a bridge nor
    # iptables rules (which fail where the kernel or sandbox has no netfilter).
    dockerd --data-root "$DATA_ROOT" --iptables=false --ip6tables=false --bridge=none \
        --host unix:///var/run/docker.sock >>"$DOCKERD_LOG" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 1 60); do
        engine_answers && break
        if ! kill -0 "$dockerd_pid" 2>/dev/null; then
            say "dockerd exited; the end of $DOCKERD_LOG:"
            tail -20 "$DOCKERD_LOG" >&2
            exit 3
        fi
        sleep 1
    done
    if ! engine_answers; then
        say "dockerd did not answer within 60 seconds; the end of $DOCKERD_LOG:"
        tail -20 "$DOCKERD_LOG" >&2
        exit 3
    fi
fi

# 3. The image. Its tag is the PostgreSQL major version the suite's postgresql package brings,
# and a label records the entrypoint it was built with, so an edited entrypoint rebuilds it.
entry_sum="$(sha256sum "$ENTRYPOINT" | cut -c1-16)"
image=
for tag in $("$DOCKER" images "$REPO" --format '{{.Tag}}'); do
    built_with="$("$DOCKER" image inspect "$REPO:$tag" \
        --format '{{index .Config.Labels "org.migproof.entrypoint"}} {{index .Config.Labels "org.migproof.suite"}}')"
    if [ "$built_with" = "$entry_sum $SUITE" ]; then
        image="$REPO:$tag"
        break
    fi
done

debian_mirror() {
    # The mirror apt already uses: deb822 `URIs:` lines first, then one-line `deb` entries.
    local uri
    uri="$(grep -hs -m1 -E '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true)"
    [ -n "$uri" ] || uri="$(grep -hs -E '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]+/debian/? ' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list | head -1 |
        sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' || true)"
    echo "${uri:-http://deb.debian.org/debian}"
}

if [ -n "$image" ]; then
    say "reusing image $image"
else
    mirror="$(debian_mirror)"
    rootfs="$(mktemp -d /var/tmp/migproof-rootfs.XXXXXX)"
    say "building the PostgreSQL image: debootstrap $SUITE from $mirror into $rootfs"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >/var/log/migproof-debootstrap.log 2>&1 || {
        say "debootstrap failed; the end of /var/log/migproof-debootstrap.log:"
        tail -20 /var/log/migproof-debootstrap.log >&2
        exit 3
    }
    # No services start inside the chroot, and no cluster is made at install time: the
    # entrypoint makes one in the container.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod +x "$rootfs/usr/sbin/policy-rc.d"
    mkdir -p "$rootfs/etc/postgresql-common/createcluster.d"
    echo 'create_main_cluster = false' >"$rootfs/etc/postgresql-common/createcluster.d/migproof.conf"
    mount -t proc proc "$rootfs/proc"
    mounted_proc="$rootfs/proc"
    say "installing Debian's postgresql package in the root file system"
    chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends postgresql >/var/log/migproof-image-apt.log 2>&1 || {
        say "apt-get install postgresql failed; the end of /var/log/migproof-image-apt.log:"
        tail -20 /var/log/migproof-image-apt.log >&2
        exit 3
    }
    chroot "$rootfs" apt-get clean
    umount "$mounted_proc"
    mounted_proc=
    major="$(ls "$rootfs/usr/lib/postgresql" | sort -n | tail -1)"
    [ -x "$rootfs/usr/lib/postgresql/$major/bin/postgres" ] || {
        say "no postgres binary under $rootfs/usr/lib/postgresql"
        exit 3
    }
    rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/usr/share/doc" "$rootfs/usr/share/man" \
        "$rootfs/usr/sbin/policy-rc.d"
    install -m 0755 "$ENTRYPOINT" "$rootfs/usr/local/bin/docker-entrypoint.sh"
    image="$REPO:$major"
    say "importing the root file system as $image"
    tar -C "$rootfs" --numeric-owner -c . | "$DOCKER" import \
        --change "ENV PATH=/usr/lib/postgresql/$major/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "ENV PGDATA=/var/lib/postgresql/data" \
        --change "ENV LANG=C.UTF-8" \
        --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
        --change 'CMD ["postgres"]' \
        --change "LABEL org.migproof.entrypoint=$entry_sum org.migproof.suite=$SUITE" \
        - "$image" >/dev/null
    rm -rf "$rootfs"
    rootfs=
fi
pg_version="${image##*:}"
say "image $image (PostgreSQL $pg_version)"

if [ "$image_only" = 1 ]; then
    KEEP_DOCKERD=1
    say "image ready; dockerd left running. Run: MIGPROOF_DOCKER_IMAGE=$image migproof check --backend docker --pg-version $pg_version ..."
    exit 0
fi

# 4. The docker backend's tests, which must run here.
say "running tests/docker.rs with --backend docker --pg-version $pg_version"
MIGPROOF_DOCKER_TESTS=1 MIGPROOF_DOCKER_IMAGE="$image" MIGPROOF_PG_VERSION="$pg_version" \
    cargo test --locked --test docker "$@" -- --include-ignored --test-threads=2
