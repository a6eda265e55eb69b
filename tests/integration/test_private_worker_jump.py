"""A private worker reached through its leader, as the toil_ec2 inventory and configure_cluster set it up (issue #19).

Two podman stand-in hosts (tests/harness/hosts): the leader on the lab network and on an internal one, the worker on
the internal one only, so this machine reaches the worker only through the leader. The worker gets the variables
toil_ec2 gives a worker with ``leader_as_bastion`` (``toil_jump``, and ``ansible_ssh_common_args`` the same template,
rendered by the ssh_jump_args filter); the key is given only as ``--private-key`` (no agent, no key in the inventory).
OpenSSH's ProxyJump would not give it to the leader hop (ssh.c passes -l, -p, -F and -v only): the control run shows it.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.ssh_jump import JUMP_ARGS_TEMPLATE
from harness.hosts import podman_hosts
from harness.hosts.role_hosts import ansible_env, base_env
from harness.paths import venv_executable
from harness.playbooks import ansible_environment

LEADER_ID = "i-0123456789abcdef0"

pytestmark = pytest.mark.hosts


def _ping(lab, workdir, worker_vars, *args):
    """``ansible worker -m ping``, with ssh masters of its own (a master from an earlier run would skip the hop)."""
    run = workdir / f"run-{len(list(workdir.glob('run-*')))}"
    run.mkdir()
    inventory = run / "hosts.json"
    worker = {"ansible_host": lab.hosts["worker"].address, "ansible_user": "admin", "ansible_python_interpreter": "/usr/bin/python3", **worker_vars}
    inventory.write_text(json.dumps({"all": {"hosts": {"worker": worker}}}))
    env = ansible_environment(base_env(), run, {**ansible_env(run / "cp"), "SSH_AUTH_SOCK": None, "ANSIBLE_SSH_RETRIES": "0"})
    command = [venv_executable("ansible"), "-i", str(inventory), "worker", "-m", "ansible.builtin.ping", "-T", "10", *args]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_ansible_pings_a_private_worker_through_the_leader_with_the_key_from_the_command_line(tmp_path):
    podman_hosts.build_image()
    lab = podman_hosts.PodmanLab(tmp_path / "lab")
    try:
        leader = lab.start(["leader"])["leader"]
        lab.start_private("worker", leader)
        key = ("--private-key", str(lab.key))
        jump = {"toil_jump": {"host": leader.address, "user": "admin", "instance_id": LEADER_ID}}

        # No direct route: without the jump the worker is unreachable, with the key and all.
        rc, out = _ping(lab, tmp_path, {}, *key)
        assert rc != 0 and "UNREACHABLE" in out, out
        # ProxyJump, as the inventory wrote it before: the leader hop never gets the key.
        rc, out = _ping(lab, tmp_path, {"ansible_ssh_common_args": f"-o ProxyJump=admin@{leader.address}"}, *key)
        assert rc != 0 and "UNREACHABLE" in out, out
        # The inventory's arguments: the leader hop gets --private-key (and the run's host key checking, off here).
        rc, out = _ping(lab, tmp_path, {**jump, "ansible_ssh_common_args": JUMP_ARGS_TEMPLATE}, *key)
        assert rc == 0 and '"ping": "pong"' in out, out
        # The leader's host key, pinned by instance ID as configure_cluster pins it, is checked on the hop: a wrong one fails.
        wrong = tmp_path / "wrong_known_hosts"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "not_the_leader")], check=True)
        wrong.write_text(f"{LEADER_ID} {(tmp_path / 'not_the_leader.pub').read_text()}")
        pinned = {**jump, "ansible_ssh_common_args": JUMP_ARGS_TEMPLATE, "toil_known_hosts_file": str(wrong)}
        rc, out = _ping(lab, tmp_path, pinned, *key, "-e", "ansible_ssh_host_key_checking=true")
        assert rc != 0 and "UNREACHABLE" in out, out
        right = tmp_path / "known_hosts"
        right.write_text(f"{LEADER_ID} {leader.sh('cat /etc/ssh/ssh_host_ed25519_key.pub')}")
        pinned["toil_known_hosts_file"] = str(right)
        # The worker hop keeps its own checking off (ansible_ssh_extra_args), so only the leader hop is tested here.
        pinned["ansible_ssh_extra_args"] = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        rc, out = _ping(lab, tmp_path, pinned, *key, "-e", "ansible_ssh_host_key_checking=true")
        assert rc == 0 and '"ping": "pong"' in out, out
    finally:
        errors = lab.close(sorted(tmp_path.glob("run-*/cp")))
        assert not errors, f"test hosts were not cleaned up: {errors}"
