"""The kubernetes role's tags, on this machine (no container host): ``--list-tasks --tags`` over the role.

The role's task files are imported, not included, so that their tags apply to what is inside: ``--tags
kubernetes_install`` reaches the node's preparation and the packages, ``--tags kubernetes_configure`` the control
plane's init, the workers' join and the manifests. The converges themselves run in the molecule scenario
extensions/molecule/kubernetes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.hosts.role_hosts import base_env
from harness.playbooks import run_ansible_playbook


@pytest.mark.parametrize(
    ("tag", "inside", "outside"),
    [
        ("kubernetes_configure", ["Initialise the control plane", "Join with the token and the pinned CA hash", "Apply the manifests"], "Turn swap off"),
        ("kubernetes_install", ["Turn swap off", "Download the apt key", "Hold the Kubernetes packages"], "Initialise the control plane"),
    ],
)
def test_tags_reach_the_tasks_inside_the_task_files(tmp_path: Path, tag: str, inside: list[str], outside: str) -> None:
    """``--tags`` selects the tasks of the role's task files (imported, so that their tags apply to what is inside)."""
    play = "- hosts: all\n  gather_facts: false\n  roles:\n    - role: toil.cluster.kubernetes\n"
    listing = run_ansible_playbook(play, base_env(), tmp_path, args=["--list-tasks", "--tags", tag]).stdout
    listed = [line.split(" : ", 1)[1].split("\tTAGS:")[0] for line in listing.splitlines() if " : " in line and "\tTAGS:" in line]
    assert set(inside) <= set(listed), listing
    assert outside not in listed, listing
