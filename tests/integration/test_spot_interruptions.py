"""Spot interruptions (issue 18) on a podman test host: the kubernetes role's interruption handler, converged over real
SSH on a spot worker (Debian 12, systemd), cordons, taints and drains its Node when the metadata endpoint announces
an interruption, and leaves it alone on a rebalance recommendation (the role's default).

One host. The API server is the stand-in (harness.kube_api) and the metadata service the IMDS stand-in
(harness.imds), both on this machine at the podman network's gateway address, which the host reaches. The control
plane's part of the role (``kubeadm kubeconfig user``, which cannot run without the kubeadm double's cluster) is
played by the test: it signs the handler's client certificate with the stand-in API server's CA, as kubeadm signs it
with the cluster CA, and puts the kubeconfig where the control plane keeps it, on an inventory alias of the same
host (``tcl-cp``), from which the worker's tasks read it as they read it from the real control plane. The worker's
tasks are the role's own (``tasks_from: interruption_handler``), run twice: the second run changes nothing.
Nothing is created on AWS. The container and network are removed at the end, also after a failure.
"""

from __future__ import annotations

import base64
import calendar
import json
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness import kube_api
from harness.hosts import podman_hosts
from harness.hosts.role_hosts import ansible_env, assert_converged_then_unchanged, base_env
from harness.imds import Imds
from harness.playbooks import PlaybookResult, run_ansible_playbook

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

WORKER, CONTROL_PLANE = "tcl-spot", "tcl-cp"  # one container: the control plane's name is an alias of the worker's
NODE = "ip-10-0-3-7.us-west-2.compute.internal"
CONVERGE = """\
- name: The interruption handler on a spot worker
  hosts: toil_workers
  tasks:
    - name: The kubernetes role's handler tasks
      ansible.builtin.include_role:
        name: toil.cluster.kubernetes
        tasks_from: interruption_handler
"""


def kubeconfig(server: str, ca: str, cert: str, key: str) -> str:
    """What ``kubeadm kubeconfig user`` prints (JSON is YAML)."""
    data = {name: base64.b64encode(Path(path).read_bytes()).decode() for name, path in (("ca", ca), ("cert", cert), ("key", key))}
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "handler",
        "clusters": [{"name": "kubernetes", "cluster": {"server": server, "certificate-authority-data": data["ca"]}}],
        "contexts": [{"name": "handler", "context": {"cluster": "kubernetes", "user": "toil.cluster:interruption-handler"}}],
        "users": [{"name": "toil.cluster:interruption-handler", "user": {"client-certificate-data": data["cert"], "client-key-data": data["key"]}}],
    })  # fmt: skip


@dataclass
class Spot:
    lab: podman_hosts.PodmanLab
    api: kube_api.KubeApi
    imds: Imds
    runs: list[PlaybookResult] = field(default_factory=list)

    @property
    def host(self) -> podman_hosts.Host:
        return self.lab.hosts[WORKER]

    def pods(self) -> set[str]:
        return {p["metadata"]["name"] for p in self.api.objects("pods")}

    def evictions(self, pod: str) -> int:
        return sum(c == f"POST /api/v1/namespaces/default/pods/{pod}/eviction" for c in self.api.calls())


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    """Until ``condition`` holds (polling; the handler polls IMDS every 2 s), else fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def spot(tmp_path_factory: pytest.TempPathFactory) -> Generator[Spot, None, None]:
    podman_hosts.build_image()
    workdir = tmp_path_factory.mktemp("spot-interruptions")
    lab = podman_hosts.PodmanLab(workdir / "lab")
    api: kube_api.KubeApi | None = None
    imds: Imds | None = None
    try:
        lab.start([WORKER])
        (network,) = json.loads(podman_hosts.podman("network", "inspect", lab.network).stdout)
        gateway = network["subnets"][0]["gateway"]
        certs = workdir / "pki"
        ca, _server_cert, _server_key = kube_api.make_certificates(str(certs), (gateway,))
        cert, key = kube_api.sign_client_certificate(str(certs), "toil.cluster:interruption-handler", kube_api.INTERRUPTION_HANDLERS)
        api = kube_api.KubeApi(host=gateway, cert_dir=str(certs), client_ca=ca, mark_unschedulable=False).start()
        imds = Imds(host=gateway).start()
        api.add_node(NODE, provider_id="aws:///us-west-2a/i-0123456789abcdef0", labels={"toil.cluster/pool": "c5-large-spot"})
        spot = Spot(lab, api, imds)
        # The control plane's part: the handler's kubeconfig where `kubeadm kubeconfig user` leaves it (root, 0600).
        text = base64.b64encode(kubeconfig(api.url, ca, cert, key).encode()).decode()
        spot.host.sh(f"install -d -m 0755 /etc/kubernetes && umask 077 && echo {text} | base64 -d > /etc/kubernetes/toil-interruption-handler.conf")
        inventory = json.loads(lab.inventory({"toil_workers": [WORKER]}).read_text())
        inventory["all"]["children"]["toil_leaders"] = {"hosts": {CONTROL_PLANE: {"ansible_host": spot.host.address}}}
        (workdir / "inventory.json").write_text(json.dumps(inventory))
        overrides: dict[str, Any] = {
            "kubernetes_control_plane_host": CONTROL_PLANE,
            "kubernetes_api_address": gateway,
            "kubernetes_api_port": api.port,
            "kubernetes_node_name": NODE,
            "kubernetes_interruption_handler_enabled": True,
            "kubernetes_interruption_handler_metadata_endpoint": imds.url,
        }
        env = ansible_env(workdir / "cp")
        for run in ("first", "second"):
            spot.runs.append(
                run_ansible_playbook(
                    CONVERGE, base_env(), workdir / run, inventory=str(workdir / "inventory.json"), extra_vars=overrides, env=env, expect_rc=None, timeout=600
                )
            )
            if spot.runs[-1].rc != 0:
                break
        yield spot
    finally:
        if api is not None:
            api.stop()
        if imds is not None:
            imds.stop()
        errors = lab.close([workdir / "cp"])
        assert not errors, f"test hosts were not cleaned up: {errors}"


def test_converges_then_changes_nothing(spot: Spot) -> None:
    assert_converged_then_unchanged(spot.runs, WORKER)


def test_the_handler_runs_as_installed(spot: Spot) -> None:
    host = spot.host
    journal = host.sh("journalctl -u toil-interruption-handler.service -o cat --no-pager")
    assert host.sh("systemctl is-active toil-interruption-handler.service", check=False).strip() == "active", journal
    assert host.sh("systemctl is-enabled toil-interruption-handler.service").strip() == "enabled"
    assert host.sh("stat -c '%U %G %a' /usr/local/sbin/toil-interruption-handler").split() == ["root", "root", "755"]
    for name in ("key.pem", "cert.pem", "config.json", "environment"):
        assert host.sh(f"stat -c '%U %a' /etc/toil-cluster/interruption-handler/{name}").split() == ["root", "600"], name
    config = json.loads(host.read("/etc/toil-cluster/interruption-handler/config.json"))
    assert config["node"] == NODE and config["server"] == spot.api.url and config["drain_on_rebalance"] is False
    assert (config["poll_seconds"], config["retry_seconds"]) == (2, 5)
    # It asks IMDS the IMDSv2 way: a session token first, then the notice with it (404: none yet).
    wait_for(lambda: "GET /latest/meta-data/spot/instance-action 404" in spot.imds.requests, "the handler polls IMDS")
    assert spot.imds.requests[0] == "PUT /latest/api/token 200"


def test_a_rebalance_recommendation_leaves_the_node_alone_by_default(spot: Spot) -> None:
    before = spot.api.get("nodes", NODE)
    spot.imds.recommend_rebalance()
    wait_for(lambda: "GET /latest/meta-data/events/recommendations/rebalance 200" in spot.imds.requests, "the handler reads the recommendation")
    wait_for(lambda: "drain_on_rebalance is off" in spot.host.sh("journalctl -u toil-interruption-handler.service -o cat --no-pager"), "it is logged")
    assert spot.api.get("nodes", NODE) == before


def test_an_interruption_cordons_taints_and_drains_the_node_within_its_budgets(spot: Spot) -> None:
    api = spot.api
    api.add_pod("web-1", node=NODE, phase="Running", owner="ReplicaSet/web")
    api.add_pod("toil-job-1", node=NODE, phase="Running", owner="Job/toil-job-1", annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"})
    api.add_pod("db-0", node=NODE, phase="Running", owner="StatefulSet/db", labels={"app": "db"})
    api.add_pod("flannel-x", node=NODE, phase="Running", owner="DaemonSet/kube-flannel-ds")
    api.create("poddisruptionbudgets", {"metadata": {"name": "db"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})
    moment = spot.imds.announce("terminate", seconds=120)

    wait_for(lambda: api.get("nodes", NODE)["spec"].get("unschedulable") is True, "the node is cordoned")
    wait_for(lambda: not {"web-1", "toil-job-1"} & spot.pods(), "its pods are evicted")
    taints = api.get("nodes", NODE)["spec"]["taints"]
    epoch = calendar.timegm(time.strptime(moment, "%Y-%m-%dT%H:%M:%SZ"))
    assert taints == [{"key": "aws-node-termination-handler/spot-itn", "value": str(epoch), "effect": "NoSchedule"}]
    # The pod its budget protects is retried, never deleted past the budget; once the budget allows, it goes.
    wait_for(lambda: spot.evictions("db-0") >= 2, "the refused eviction is retried")
    assert "db-0" in spot.pods()
    api.delete("poddisruptionbudgets", "db")
    wait_for(lambda: "db-0" not in spot.pods(), "the pod goes once its budget allows")
    assert spot.pods() == {"flannel-x"}  # a DaemonSet's pod goes with the node
    assert not [c for c in api.calls() if c.startswith("DELETE")]  # only evictions
    journal = spot.host.sh("journalctl -u toil-interruption-handler.service -o cat --no-pager")
    assert "spot-itn for " + NODE in journal and "evicted default/db-0" in journal, journal
