"""Role ``autoscaler`` converged on a podman test host (Debian 12, systemd) over real SSH; one run of its unit plans.

The role installs ansible-core, boto3 and kubernetes into its virtual environment from a wheelhouse on this machine
(harness.wheelhouses: ``pip wheel`` into .venv/wheelhouse/autoscaler, made by ``make setup``, mounted read-only; the
role's default is PyPI) and, by the role's default, this collection from the controller's copy (this checkout: the
role builds its tarball on the controller and copies it over), with its dependencies (amazon.aws, kubernetes.core,
ansible.posix, community.crypto) as tarballs of the copies installed here, all ``--offline``: Galaxy is never asked.

The embedded AWS endpoint (moto on 127.0.0.1, behind the recording proxy harness.proxy) is reached from the
host through a TCP relay on the podman network's gateway address, a network this test creates; nothing else is
reachable as AWS. The timer is enabled and active; one ``systemctl start`` of the service runs
``ansible-playbook toil.cluster.autoscale`` with the role's toil_ec2 inventory and variables in plan-only mode,
with a given demand (no Kubernetes here): the plan it logs to the journal must be a resize (3 new nodes for 3
pending pods), and it must make no mutating AWS call. The container and network are removed at the end, also
after a failure, and no AWS resource is left.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import wheelhouses
from harness.aws import AwsContext
from harness.endpoint import EmbeddedAWS
from harness.hosts import podman_hosts
from harness.hosts.role_hosts import ansible_env, assert_converged_then_unchanged, base_env
from harness.netns import Forwarder
from harness.paths import REPO
from harness.playbooks import PlaybookResult, run_ansible_playbook
from harness.proxy import AWSProxy

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

LEADER = "tcl-scaler-leader"
DEPENDENCIES = ["amazon/aws", "kubernetes/core", "ansible/posix", "community/crypto"]
HOSTVARS = {LEADER: {"toil_cluster": "lab", "toil_region": "us-west-2", "toil_zone": "us-west-2a", "toil_node_type": "leader"}}
CONVERGE = """\
- name: The scaler on the leader
  hosts: toil_leaders
  roles:
    - role: toil.cluster.autoscaler
"""
DEMAND = {"pods": [{"name": "align", "cpu": "2", "memory": "4Gi", "ephemeral_storage": "10Gi", "preemptible": False, "count": 3}]}
METRICS = "/var/lib/prometheus/node-exporter/toil-autoscaler.prom"  # the role's default


def logged_plan(journal: str) -> dict[str, Any]:
    """The playbook's "Show the plan" result, as ansible's default callback printed it to the journal."""
    lines = journal.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TASK [Show the plan]"))
    body = []
    for line in lines[start + 1 :]:
        if line.startswith(("TASK [", "PLAY [", "PLAY RECAP")):
            break
        body.append(line)
    text = "\n".join(body).strip()
    return json.loads(text[text.index("{") :])["msg"]


def dependency_artifacts(dest: Path) -> list[str]:
    """The dependencies as artifacts of the copies installed here; returns their names. This collection itself
    comes from the role's default: the controller's copy (this checkout), built and copied by the role."""
    return [dependency_artifact(name, dest) for name in DEPENDENCIES]


def dependency_artifact(name: str, dest: Path) -> str:
    """An artifact of the copy installed here (from the `ansible` bundle, which drops CI files and tests): its
    files as FILES.json lists them with their sha256, FILES.json cut to what is there, MANIFEST.json re-summed."""
    installed = (REPO / ".venv" / "collections" / "ansible_collections" / name).resolve()
    manifest = json.loads((installed / "MANIFEST.json").read_text())
    files = json.loads((installed / "FILES.json").read_text())
    files["files"] = [f for f in files["files"] if f["name"] == "." or (installed / f["name"]).exists()]
    files_json = json.dumps(files).encode()
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files_json).hexdigest()
    artifact = dest / f"{name.replace('/', '-')}-{manifest['collection_info']['version']}.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:
        for member, data in (("MANIFEST.json", json.dumps(manifest).encode()), ("FILES.json", files_json)):
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for entry in files["files"]:
            if entry["name"] != ".":
                tar.add(installed / entry["name"], arcname=entry["name"], recursive=False)
    return artifact.name


@dataclass
class Leader:
    lab: podman_hosts.PodmanLab
    proxy: AWSProxy
    runs: list[PlaybookResult] = field(default_factory=list)
    run_output: str = ""

    @property
    def host(self) -> podman_hosts.Host:
        return self.lab.hosts[LEADER]


@pytest.fixture(scope="module")
def leader(aws_endpoint: EmbeddedAWS, tmp_path_factory: pytest.TempPathFactory) -> Generator[Leader, None, None]:
    if not podman_hosts.have_podman():
        pytest.fail("podman is missing: run `make setup` (it installs the test hosts' Debian packages)", pytrace=False)
    podman_hosts.build_image()
    aws_endpoint.reset()
    workdir = tmp_path_factory.mktemp("autoscaler-role")
    artifacts = workdir / "collections"
    artifacts.mkdir()
    deps = dependency_artifacts(artifacts)
    lab = podman_hosts.PodmanLab(workdir / "lab", mounts=[(str(wheelhouses.autoscaler()), "/srv/wheelhouse"), (str(artifacts), "/srv/collections")])
    proxy = AWSProxy(aws_endpoint.url).start()
    relay: Forwarder | None = None
    try:
        lab.start([LEADER], HOSTVARS)
        (network,) = json.loads(podman_hosts.podman("network", "inspect", lab.network).stdout)
        gateway = network["subnets"][0]["gateway"]
        # toil_interop's relay: each connection to the gateway address is relayed to the proxy on 127.0.0.1.
        relay = Forwarder(socket.create_server((gateway, 0)), ("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])))
        relay_port = relay._listener.getsockname()[1]
        inventory = lab.inventory({"toil_leaders": [LEADER]})
        overrides: dict[str, Any] = {
            "autoscaler_pip_extra_args": "--no-index --find-links /srv/wheelhouse",
            "autoscaler_collection_dependencies": [f"/srv/collections/{d}" for d in deps],
            "autoscaler_node_types": "t3.large,c5.large:0.2",
            "autoscaler_workers": "0-4,0-3",
            "autoscaler_plan_only": True,
            "autoscaler_interval": 3600,  # the timer must not start a run of its own during the test
            "autoscaler_extra_vars": {"demand": DEMAND},
            # The instance profile's part: where AWS is (the relay to the embedded endpoint) and its fake credentials.
            "autoscaler_environment": {
                "AWS_ENDPOINT_URL": f"http://{gateway}:{relay_port}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            },
        }
        result = Leader(lab, proxy)
        env = ansible_env(workdir / "cp")
        for run in ("first", "second"):
            result.runs.append(
                run_ansible_playbook(CONVERGE, base_env(), workdir / run, inventory=str(inventory), extra_vars=overrides, env=env, expect_rc=None, timeout=900)
            )
            if result.runs[-1].rc != 0:
                break
        if all(run.rc == 0 for run in result.runs):
            proxy.clear()
            host = result.host
            result.run_output = host.sh("systemctl start toil-autoscaler.service 2>&1; echo rc=$?", check=False)
        yield result
    finally:
        if relay is not None:
            relay.close()
        proxy.stop()
        errors = lab.close([workdir / "cp"])
        leftovers = AwsContext(aws_endpoint).leftovers()
        assert not errors, f"test hosts were not cleaned up: {errors}"
        assert not leftovers, leftovers


def test_converges_then_changes_nothing(leader: Leader) -> None:
    assert_converged_then_unchanged(leader.runs, LEADER)


def test_the_timer_is_active(leader: Leader) -> None:
    host = leader.host
    assert host.sh("systemctl is-active toil-autoscaler.timer").strip() == "active"
    assert host.sh("systemctl is-enabled toil-autoscaler.timer").strip() == "enabled"
    assert host.sh("systemctl show -p Triggers --value toil-autoscaler.timer").strip() == "toil-autoscaler.service"


def test_the_venv_holds_ansible_and_the_collection_without_galaxy(leader: Leader) -> None:
    host = leader.host
    assert host.sh("/opt/toil-cluster/bin/ansible --version | head -1").split()[-1].rstrip("]") == "2.19.14"
    listed = host.sh("ANSIBLE_COLLECTIONS_PATH=/opt/toil-cluster/collections /opt/toil-cluster/bin/ansible-galaxy collection list --format json")
    found = {name: info["version"] for path in json.loads(listed).values() for name, info in path.items()}
    assert {"toil.cluster", "amazon.aws", "kubernetes.core", "ansible.posix", "community.crypto"} <= set(found)
    assert found["toil.cluster"] == yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]  # the controller's
    variables = yaml.safe_load(host.read("/etc/toil-cluster/autoscale.yml"))
    public_key = host.read("/etc/toil-cluster/id_ed25519.pub").split()[:2]  # type and key; the file adds a comment
    assert [k.split()[:2] for k in variables.pop("authorized_keys")] == [public_key]
    assert variables == {
        "cluster_name": "lab", "zone": "us-west-2a", "node_types": "t3.large,c5.large:0.2", "workers": "0-4,0-3",
        "kubeconfig": "/etc/kubernetes/admin.conf", "scaler_state_path": "/var/lib/toil-cluster/scaler-state.json",
        "scaler_metrics_path": METRICS, "plan_only": True, "demand": DEMAND,
    }  # fmt: skip
    inventory = yaml.safe_load(host.read("/etc/toil-cluster/toil_ec2.yml"))
    assert inventory == {"plugin": "toil.cluster.toil_ec2", "clusters": ["lab"], "regions": ["us-west-2"]}


def test_one_run_plans_a_resize_and_changes_nothing(leader: Leader) -> None:
    host = leader.host
    journal = host.sh("journalctl -u toil-autoscaler.service -o cat --no-pager", check=False)
    assert leader.run_output.strip().endswith("rc=0"), leader.run_output + journal[-5000:]
    assert host.sh("systemctl show -p Result --value toil-autoscaler.service").strip() == "success"
    assert "toil.cluster.autoscale" in host.sh("systemctl show -p ExecStart --value toil-autoscaler.service")
    assert "PLAY RECAP" in journal and "failed=0" in journal, journal[-5000:]
    plan = logged_plan(journal)
    assert plan["plan_only"] is True
    assert int(plan["queue_size"]) == 3
    sizes = {pool["name"]: (pool["current"], pool["desired"]) for pool in plan["pools"]}
    assert sizes == {"t3-large": (0, 3), "c5-large-spot": (0, 0)}, plan  # 3 pending pods: 3 new on-demand nodes
    # The run had the user-given environment (it reached the endpoint), from the root-only EnvironmentFile: no local
    # user reads the credentials in the unit (systemctl cat and /etc/systemd/system are open to all).
    assert host.sh("stat -c '%U %G %a' /etc/toil-cluster/environment").split() == ["root", "root", "600"]
    assert host.sh("stat -c '%U %a' /etc/systemd/system/toil-autoscaler.service").split() == ["root", "644"]
    assert "AWS_SECRET_ACCESS_KEY" not in host.sh("systemctl cat toil-autoscaler.service")
    assert "AWS_SECRET_ACCESS_KEY" not in host.sh("systemctl show -p Environment --value toil-autoscaler.service")
    assert host.sh("su -s /bin/sh nobody -c 'cat /etc/toil-cluster/environment' 2>&1 || echo refused", check=False).strip().endswith("refused")
    # It asked the endpoint (through the relay) and, planning only, changed nothing there.
    assert ("ec2", "DescribeInstances") in leader.proxy.calls, leader.proxy.calls
    assert leader.proxy.mutating_calls() == []
