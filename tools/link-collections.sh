#!/usr/bin/env bash
# Make this checkout visible to Ansible as ansible_collections/toil/cluster, without
# copying it: one collection root under .venv holding symlinks to this checkout and to the
# collections we depend on (which come from the `ansible` package on PyPI: Galaxy is
# unreachable). ansible-test needs them all under one root for its import checks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$root/.venv}
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
collections=$venv/collections/ansible_collections
link() {  # link TARGET NAME: replace NAME with a symlink to TARGET unless it already is one
    if [ "$(readlink "$2" 2>/dev/null)" != "$1" ]; then
        mkdir -p "$(dirname "$2")"
        rm -rf "$2"
        ln -s "$1" "$2"
    fi
}
link "$root" "$collections/toil/cluster"
for dep in amazon/aws community/aws kubernetes/core ansible/posix community/crypto containers/podman community/general ansible/utils; do
    [ -d "$site/ansible_collections/$dep" ] || { echo "missing collection $dep in $site" >&2; exit 1; }
    link "$site/ansible_collections/$dep" "$collections/$dep"
done
