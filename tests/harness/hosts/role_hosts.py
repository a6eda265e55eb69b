"""Shared by the tests on podman hosts (test_playbook_*.py, test_spot_interruptions.py, ...): the environment, the failure
report, the idempotence check and a stand-in leader."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.hosts import podman_hosts
from harness.playbooks import PlaybookResult


def base_env() -> dict[str, str]:
    """This process's environment without AWS settings, with the repository's podman configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EC2_", "S3_"))}
    env.setdefault("CONTAINERS_CONF", str(podman_hosts.CONTAINERS_CONF))
    return env


def ansible_env(control_dir: Path) -> dict[str, str | None]:
    """ansible's ssh masters kept in ``control_dir`` (ended by PodmanLab.close), and the remote temp directory left
    at its default in the remote user's home: harness.playbooks' controller-side path would be created on the host by the
    first task that needs it, as root when that task becomes root, and then be unusable for the ssh user."""
    return {"ANSIBLE_SSH_CONTROL_PATH_DIR": podman_hosts.control_path_dir(control_dir), "ANSIBLE_REMOTE_TEMP": None}


def failures(run: PlaybookResult) -> str:
    """The failed tasks of a run with what the host said (msg, stderr, module_stderr), for assertion messages."""
    out = [f"rc={run.rc}", run.stderr[-2000:]]
    for entry in run.tasks():
        for host, res in entry.get("hosts", {}).items():
            if res.get("failed") or res.get("unreachable"):
                details = {k: str(res.get(k, ""))[-1500:] for k in ("msg", "stderr", "module_stderr", "module_stdout") if res.get(k)}
                out.append(f"{entry['task']['name']} [{host}]: {json.dumps(details, indent=1)}")
    return "\n".join(out)


StandIn = tuple[podman_hosts.Host, str, dict[str, str | None]]  # the host, the inventory's path, run_playbook's env


def launch_provisioned_leader(aws: Any, run_playbook: Any, key_pair: str, cluster: str, zone: str) -> str:
    """A leader launched on the endpoint by launch_cluster (provisioning only; destroyed by the aws fixture's
    cleanups): its instance ID."""
    cluster_vars = {"cluster_name": cluster, "zone": zone}
    run_playbook("playbooks/launch_cluster.yml", extra_vars=dict(cluster_vars, leader_node_type="t3.large", key_pair_name=key_pair, provision_only=True))
    aws.add_cleanup(run_playbook, "playbooks/destroy_cluster.yml", extra_vars=cluster_vars)
    return aws.client("ec2").describe_instances(Filters=[{"Name": "tag:clusterName", "Values": [cluster]}])["Reservations"][0]["Instances"][0]["InstanceId"]


def stand_in_inventory(host: podman_hosts.Host, key: Path, instance_id: str, cluster: str, path: Path) -> str:
    """An inventory at ``path`` mapping the leader's instance ID to ``host`` (as a toil_ec2 source's ``compose``
    would), so the playbooks find the podman host the way they find a real leader. Host variables on the host
    itself: the implicit localhost (AWS modules) keeps the controller's Python."""
    hostvars = {
        "ansible_connection": "ssh",  # run_playbook passes -c local for localhost
        "ansible_host": host.address,
        "ansible_user": "admin",
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
        "toil_instance_id": instance_id,
        "toil_cluster": cluster,
    }
    path.write_text(json.dumps({"toil_nodes": {"hosts": {host.name: hostvars}}}))
    return str(path)


@contextmanager
def stand_in_leader(aws: Any, run_playbook: Any, key_pair: str, tmp_path: Path, cluster: str, zone: str) -> Iterator[StandIn]:
    """A leader launched on the endpoint (provisioning only) and a podman host standing in for it: yields the host,
    the inventory (stand_in_inventory) and the env for run_playbook. The cluster is destroyed by the aws fixture's
    cleanups; the host and network are removed here."""
    instance_id = launch_provisioned_leader(aws, run_playbook, key_pair, cluster, zone)
    podman_hosts.build_image()
    lab = podman_hosts.PodmanLab(tmp_path / "lab")
    control_dir = tmp_path / "cp"
    try:
        host = lab.start(["standin-leader"])["standin-leader"]
        yield host, stand_in_inventory(host, lab.key, instance_id, cluster, tmp_path / "inventory.json"), ansible_env(control_dir)
    finally:
        errors = lab.close([control_dir])
        assert not errors, f"test hosts were not cleaned up: {errors}"


def assert_converged_then_unchanged(runs: list[PlaybookResult], host: str) -> None:
    """Both converges succeeded and the second changed nothing on ``host``."""
    for run in runs:
        assert run.rc == 0, failures(run)
    assert len(runs) == 2
    assert runs[1].stats[host]["changed"] == 0, changed_tasks(runs[1])


def changed_tasks(run: PlaybookResult) -> list[tuple[str, str]]:
    """(task, host) of every changed result: what a second converge must not have."""
    return [(entry["task"]["name"], host) for entry in run.tasks() for host, res in entry["hosts"].items() if res.get("changed")]
