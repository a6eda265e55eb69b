#!/usr/bin/env bash
# ansible-test sanity, offline-safe.
# - ansible-test downloads get-pip.py from a host that is unreachable here; it uses a cached copy
#   when there is one, so a stand-in (tools/get_pip_offline.py) goes where it looks, under a HOME
#   kept inside .venv.
# - ansible-test must run from <root>/ansible_collections/toil/cluster and resolves symlinks, so the
#   checkout is bind-mounted there in a private mount namespace (root only); without that
#   privilege, the git-tracked files are copied there instead.
# - It checks the files git knows: `git add` new files before running it by hand.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv
export HOME=$venv/ansible-test-home
pip_version=$("$venv/bin/python" - <<'PY'
import inspect, re
from ansible_test._internal import python_requirements as p
print(re.search(r"pip='([0-9.]+)'", inspect.getsource(p.get_venv_packages)).group(1))
PY
)
cache=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
mkdir -p "$(dirname "$cache")"
cmp -s "$root/tools/get_pip_offline.py" "$cache" || cp "$root/tools/get_pip_offline.py" "$cache"

test_root=$venv/ansible-test-root/ansible_collections
content=$test_root/toil/cluster
mkdir -p "$content"
# The collections we depend on, next to ours (ansible-test imports them from the same root).
for dep in "$venv"/collections/ansible_collections/*/*; do
    name=${dep#"$venv"/collections/ansible_collections/}
    [ "$name" = toil/cluster ] && continue
    mkdir -p "$test_root/$(dirname "$name")"
    ln -sfn "$(readlink -f "$dep")" "$test_root/$name"
done

args=(sanity --venv --python 3.11 --color no "$@")
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
    # shellcheck disable=SC2016 # expanded by the inner bash
    exec unshare -m bash -c 'mount --bind "$1" "$2" && cd "$2" && shift 2 && exec "$0" "$@"' \
        "$venv/bin/ansible-test" "$root" "$content" "${args[@]}"
fi
echo "sanity: no mount namespace available; checking a copy of the git-tracked files" >&2
find "$content" -mindepth 1 -delete
git -C "$root" ls-files -z --cached --others --exclude-standard | (cd "$root" && xargs -0 cp --parents -t "$content")
cd "$content"
exec "$venv/bin/ansible-test" "${args[@]}"
