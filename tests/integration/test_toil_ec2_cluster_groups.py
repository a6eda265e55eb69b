"""The toil_ec2 inventory for AWX (issue #19): per-cluster role groups, AWS_SECURITY_TOKEN, the leader hop's arguments.

Against the embedded endpoint through ``ansible-inventory`` and ``ansible`` (which renders the connection arguments
without connecting: ``debug`` runs on the controller). Reaching a worker through the leader for real is
test_private_worker_jump.py's, on podman hosts.
"""

from __future__ import annotations

import json
import shlex
import subprocess

from harness.paths import venv_executable
from harness.playbooks import ansible_environment, unwrap_unsafe
from harness.toil_interop import purge_toil_cluster
from harness.toil_shapes import make_toil_cluster

# "grp-a" has a leader and a worker; a cluster named "grp-a-leaders" would give "grp-a"'s leaders group's name.
CLUSTERS = ("grp-a", "grp-a-leaders")


def _run(command, aws_env, tmp_path, extra=None):
    proc = subprocess.run(
        command,
        env=ansible_environment(aws_env, tmp_path, extra),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-4000:]
    return proc.stdout


def test_per_cluster_groups_security_token_and_jump(aws, aws_calls, tmp_path):
    for name in CLUSTERS:
        aws.add_cleanup(purge_toil_cluster, aws.env, name, aws.region)
    first = make_toil_cluster(aws, CLUSTERS[0], workers=1)
    second = make_toil_cluster(aws, CLUSTERS[1], workers=1)
    config = tmp_path / "awx.toil_ec2.yml"
    config.write_text(json.dumps({"plugin": "toil.cluster.toil_ec2", "leader_as_bastion": True, "use_private_ip": True}))
    # Older AWX gives its AWS credential's token as AWS_SECURITY_TOKEN only.
    env = dict(aws_calls.env, AWS_SECURITY_TOKEN="awx-token-1", AWS_SESSION_TOKEN=None)
    listing = unwrap_unsafe(json.loads(_run([venv_executable("ansible-inventory"), "-i", str(config), "--list"], aws.env, tmp_path, env)))
    assert aws_calls.session_tokens and set(aws_calls.session_tokens) == {"awx-token-1"}

    def hosts(group):
        return sorted(listing.get(group, {}).get("hosts", []))

    def children(group):
        return sorted(listing.get(group, {}).get("children", []))

    assert hosts("toil_cluster_grp_a_workers") == first.worker_ids
    assert hosts("toil_cluster_grp_a_leaders_workers") == second.worker_ids
    # "grp-a"'s leaders and "grp-a-leaders" both would be toil_cluster_grp_a_leaders: neither takes it, each has its own.
    assert "toil_cluster_grp_a_leaders" not in listing
    (first_leaders,) = [g for g in listing if hosts(g) == [first.leader_id]]
    (second_cluster,) = [g for g in listing if hosts(g) == sorted([second.leader_id, *second.worker_ids])]
    assert first_leaders.startswith("toil_cluster_grp_a_leaders_") and second_cluster.startswith("toil_cluster_grp_a_leaders_")
    assert first_leaders != second_cluster
    assert children("toil_leaders") == sorted([first_leaders, "toil_cluster_grp_a_leaders_leaders"])
    assert children(second_cluster) == ["toil_cluster_grp_a_leaders_leaders", "toil_cluster_grp_a_leaders_workers"]
    assert children("toil_workers") == ["toil_cluster_grp_a_leaders_workers", "toil_cluster_grp_a_workers"]
    assert first_leaders in children("toil_cluster_grp_a") and "toil_cluster_grp_a_workers" in children("toil_cluster_grp_a")

    # The worker's connection arguments: the leader hop gets the key from --private-key and the run's host key checking.
    (worker,) = first.worker_ids
    hostvars = listing["_meta"]["hostvars"][worker]
    leader_ip = aws.client("ec2").describe_instances(InstanceIds=[first.leader_id])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    assert hostvars["toil_jump"] == {"host": leader_ip, "user": "core", "instance_id": first.leader_id}
    key = tmp_path / "my key"
    key.write_text("")
    command = [
        venv_executable("ansible"),
        "-i",
        str(config),
        worker,
        "--private-key",
        str(key),
        "-m",
        "ansible.builtin.debug",
        "-a",
        "var=ansible_ssh_common_args",
    ]
    output = _run(command, aws.env, tmp_path, {**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})
    rendered = json.loads(output.split("=>", 1)[1])["ansible_ssh_common_args"]
    (option, proxy) = shlex.split(rendered)
    assert option == "-o" and proxy.startswith("ProxyCommand=ssh -W '[%h]:%p' ")
    words = shlex.split(proxy.removeprefix("ProxyCommand="))
    assert words[words.index("-i") + 1] == str(key)
    assert "StrictHostKeyChecking=no" in words  # ANSIBLE_HOST_KEY_CHECKING=false in the tests' environment, as on the worker hop
    assert words[-2:] == ["--", leader_ip] and words[words.index("-l") + 1] == "core"
