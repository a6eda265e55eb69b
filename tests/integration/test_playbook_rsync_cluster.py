"""rsync_cluster against a stand-in leader: a podman test host (Debian 12, sshd, no rsync; tests/harness/hosts) takes the
place of the leader that launch_cluster made on the embedded endpoint, found by its instance ID through harness.hosts.
role_hosts.stand_in_leader. Real rsync on both ends (ansible.posix.synchronize over ssh): the playbook installs
it on the leader first (apt, from the Debian mirror). What is proven: check mode copies and installs nothing; a
push of a tree (a name with spaces, a relative symlink, nested directories, modes) arrives as it was; a second
identical push changes nothing; ``delete: true`` removes what the source lacks (and is needed for that); a pull
brings the tree back byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from harness.hosts import role_hosts

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

ZONE, CLUSTER = "us-west-2a", "pb-r"
REMOTE = "/home/admin/tree"
# relative path -> (mode, content) for files, (mode, None) for directories, ("link", target) for symlinks
TREE = {
    "top.txt": (0o644, b"top\n"),
    "with space.txt": (0o600, b"a name with spaces\n"),
    "run.sh": (0o750, b"#!/bin/sh\necho hi\n"),
    "sub": (0o750, None),
    "sub/deep": (0o700, None),
    "sub/deep/nested.bin": (0o640, bytes(range(256)) * 4),
    "link": ("link", "sub/deep/nested.bin"),
}


def make_tree(root: Path) -> None:
    root.mkdir()
    for rel, (mode, content) in sorted(TREE.items()):  # parents before children
        path = root / rel
        if mode == "link":
            path.symlink_to(content)
        elif content is None:
            path.mkdir()
        else:
            path.write_bytes(content)
    for rel, (mode, _content) in sorted(TREE.items(), reverse=True):  # children before a directory closes
        if mode != "link":
            (root / rel).chmod(mode)


def snapshot(root: Path) -> dict[str, tuple]:
    """relative path -> (kind, mode, content or link target), for every entry under root."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("link", None, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ("dir", stat.S_IMODE(info.st_mode), None)
            else:
                found[rel] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return found


def remote_listing(host) -> dict[str, tuple]:
    """The same view of REMOTE on the host: kind, mode, sha256 of files, link targets (as the ssh user sees it)."""
    out = host.sh(f"cd {REMOTE} && find . -mindepth 1 -printf '%y\\t%m\\t%l\\t%P\\n'")
    sums = dict(reversed(line.split("  ./", 1)) for line in host.sh(f"cd {REMOTE} && find . -type f -exec sha256sum {{}} +").splitlines())
    listing = {}
    for line in out.splitlines():
        kind, mode, target, rel = line.split("\t")
        listing[rel] = {"l": ("link", None, target), "d": ("dir", int(mode, 8), None), "f": ("file", int(mode, 8), sums.get(rel))}[kind]
    return listing


def expected_listing() -> dict[str, tuple]:
    listing = {}
    for rel, (mode, content) in TREE.items():
        if mode == "link":
            listing[rel] = ("link", None, content)
        elif content is None:
            listing[rel] = ("dir", mode, None)
        else:
            listing[rel] = ("file", mode, hashlib.sha256(content).hexdigest())
    return listing


@pytest.fixture
def stand_in_leader(aws, run_playbook, key_pair, tmp_path):
    with role_hosts.stand_in_leader(aws, run_playbook, key_pair, tmp_path, CLUSTER, ZONE) as leader:
        yield leader


def test_rsync_cluster_installs_rsync_pushes_deletes_and_pulls_a_tree_unchanged(run_playbook, stand_in_leader, tmp_path):
    host, inventory, env = stand_in_leader
    local = tmp_path / "tree"
    make_tree(local)
    push = {"cluster_name": CLUSTER, "zone": ZONE, "src": f"{local}/", "dest": f"{REMOTE}/", "mode": "push"}

    def rsync(extra, check=False):
        result = run_playbook("playbooks/rsync_cluster.yml", extra_vars=extra, inventory=inventory, env=env, check=check, expect_rc=None)
        assert result.rc == 0, role_hosts.failures(result)
        return result

    assert host.sh("command -v rsync || true").strip() == "", "the test image must lack rsync for this test to mean anything"

    # Check mode: says rsync would be installed, installs and copies nothing.
    result = rsync(push, check=True)
    assert result.task("Report that rsync would be installed on the leader", host=host.name).get("changed") is True
    assert result.task("Install rsync on the leader", host=host.name).get("skipped") is True
    assert result.task("Rsync push", host=host.name).get("skipped") is True
    assert host.sh(f"command -v rsync || true; test -e {REMOTE} && echo exists || true").strip() == ""

    # Push: rsync is installed on the leader, then the tree arrives with its names, link and modes.
    result = rsync(push)
    assert result.task("Install rsync on the leader", host=host.name).get("changed") is True
    assert result.task("Rsync push", host=host.name).get("changed") is True
    assert remote_listing(host) == expected_listing()
    assert host.sh(f"stat -c %U {REMOTE}/sub/deep/nested.bin").strip() == "admin"

    # The same push again: nothing to do.
    result = rsync(push)
    assert result.task("Look for rsync on the leader", host=host.name)["rc"] == 0
    assert result.task("Install rsync on the leader", host=host.name).get("skipped") is True
    assert result.task("Rsync push", host=host.name).get("changed") is False
    assert [task for task, name in role_hosts.changed_tasks(result) if name == host.name] == []  # add_host always "changes"

    # A file the source lacks stays without delete, goes with delete: true.
    # (sub keeps its mtime, so that the stale file is the only difference)
    host.sh(f'cd {REMOTE}/sub && runuser -u admin -- sh -c \'t=$(stat -c %y .); echo stale > "stale file.txt"; touch -d "$t" .\'')
    result = rsync(push)
    assert result.task("Rsync push", host=host.name).get("changed") is False
    assert "sub/stale file.txt" in remote_listing(host)
    result = rsync(dict(push, delete=True))
    assert result.task("Rsync push", host=host.name).get("changed") is True
    assert remote_listing(host) == expected_listing()

    # Pull into a new directory: the same tree, byte for byte, modes and link included.
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    result = rsync({"cluster_name": CLUSTER, "zone": ZONE, "src": f"{REMOTE}/", "dest": f"{pulled}/", "mode": "pull"})
    assert result.task("Rsync pull", host=host.name).get("changed") is True
    assert snapshot(pulled) == snapshot(local)
    assert len(snapshot(local)) == len(TREE)
