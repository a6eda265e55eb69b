#!/usr/bin/env bash
# Build the test-host image localhost/toil-cluster-test:bookworm (Debian 12 + systemd + sshd), no registry:
# debootstrap a minbase rootfs, import it, then build image/Containerfile on top.
# Idempotent: the image carries a hash of its inputs; when it matches, nothing is rebuilt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
image=${TEST_HOST_IMAGE:-localhost/toil-cluster-test:bookworm}
base=localhost/toil-cluster-test:bookworm-minbase
hash=$(cat "$here/build-image.sh" "$here"/image/* | sha256sum | cut -c1-16)

current=$(podman image inspect --format '{{ index .Labels "toil.cluster.test-host" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$hash" ]; then
    echo "test-host image $image is up to date ($hash)"
    exit 0
fi

if ! podman image exists "$base"; then
    mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)}
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d /var/tmp/toil-cluster-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    echo "debootstrap bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log"; rm -f "$rootfs.log"; exit 1; }
    rm -f "$rootfs.log"
    tar -C "$rootfs" -c . | podman import -q - "$base" > /dev/null
    rm -rf "$rootfs"
fi
old=$(podman image inspect --format '{{ .Id }}' "$image" 2>/dev/null || true)
echo "building $image ($hash)"
log=$(mktemp)
podman build --build-arg "BASE=$base" --label "toil.cluster.test-host=$hash" -t "$image" "$here/image" > "$log" 2>&1 \
    || { tail -n 40 "$log"; rm -f "$log"; exit 1; }
rm -f "$log"
if [ -n "$old" ] && [ "$old" != "$(podman image inspect --format '{{ .Id }}' "$image")" ]; then
    podman rmi "$old" > /dev/null 2>&1 || true   # the superseded build of this image (only that one)
fi
echo "built $image"
