"""Roles ``kubernetes`` and ``metrics_server`` converged on podman test hosts over real SSH.

Three Debian 12 hosts with systemd (tests/harness/hosts): a leader, an on-demand worker and a spot worker, on a
private podman network, reached as ``admin`` with sudo, as the toil_ec2 inventory connects. kubeadm and
kubelet cannot be downloaded here, so the role installs the TEST DOUBLE from a local signed apt
repository (harness.hosts.kube_double_repo) through its real production path (repository URL, key
fingerprint and checksum, pinned and held packages). The double records its arguments and writes the
files real kubeadm writes; everything else (containerd, modules, sysctls, apt) is real. Objects that need
an API server are not applied (``kubernetes_apply_objects: false``); their manifests are rendered on the
leader and validated against the pinned Kubernetes version's schemas with kubernetes-validate.
Every container, volume and network is removed at the end, also after a failure.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.hosts import kube_double_repo, podman_hosts
from harness.playbooks import PlaybookResult, run_ansible_playbook

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

REPO_MOUNT = "/srv/kube-double-repo"
K8S_VERSION = "1.35.2"
TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
LEADER, WORKER, SPOT, LATE = "tcl-leader", "tcl-worker", "tcl-spot", "tcl-late"  # LATE joins in a third run


def ec2_host(node_type: str, pool: str | None, preemptible: bool, tags: dict[str, str], index: int) -> dict[str, Any]:
    """Host variables as the toil_ec2 inventory gives them (plugins/module_utils/inventory.py)."""
    return {
        "toil_cluster": "lab",
        "toil_node_type": node_type,
        "toil_leader": LEADER,
        "toil_pool": pool,
        "toil_preemptible": preemptible,
        "toil_instance_id": f"i-0{index:016x}",
        "toil_region": "us-west-2",
        "toil_zone": "us-west-2a",
        "ec2_tags": {"clusterName": "lab", "ToilNodeType": node_type, **tags},
    }


# A leader, two workers of two pools (tags written by toil_nodepool) and, joining late, one of Toil's own spot
# workers (no pool, no toil.cluster tags: only toil_preemptible says it is spot).
HOSTVARS = {
    LEADER: ec2_host("leader", None, False, {}, 1),
    WORKER: ec2_host(
        "worker", "t3.large", False, {"toil.cluster/pool": "t3.large", "toil.cluster/preemptible": "false", "toil.cluster/labels": "team=genomics"}, 2
    ),
    SPOT: ec2_host(
        "worker",
        "c5.large-spot",
        True,
        {"toil.cluster/pool": "c5.large-spot", "toil.cluster/preemptible": "true", "toil.cluster/labels": "eks.amazonaws.com/capacityType=SPOT"},
        3,
    ),
    LATE: ec2_host("worker", None, True, {}, 4),
}


def ec2_groups(workers: list[str]) -> dict[str, list[str]]:
    """The toil_ec2 inventory's groups for these hosts."""
    groups = {"toil_nodes": [LEADER, *workers], "toil_cluster_lab": [LEADER, *workers], "toil_leaders": [LEADER], "toil_workers": workers}
    groups["toil_preemptible"] = [w for w in workers if HOSTVARS[w]["toil_preemptible"]]
    for worker in workers:
        if HOSTVARS[worker]["toil_pool"]:
            groups.setdefault(f"toil_pool_lab_{HOSTVARS[worker]['toil_pool'].replace('.', '_').replace('-', '_')}", []).append(worker)
    return groups


CONVERGE = """\
- name: Kubernetes on every node
  hosts: toil_nodes
  roles:
    - role: toil.cluster.kubernetes
- name: metrics-server on the control plane
  hosts: toil_leaders
  roles:
    - role: toil.cluster.metrics_server
"""


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EC2_", "S3_"))}
    env.setdefault("CONTAINERS_CONF", str(podman_hosts.CONTAINERS_CONF))
    return env


@dataclass
class Cluster:
    lab: podman_hosts.PodmanLab
    repo: kube_double_repo.KubeDoubleRepo
    inventory: Path
    runs: list[PlaybookResult] = field(default_factory=list)
    calls_before_rebuild: dict[str, int] = field(default_factory=dict)  # kubeadm calls per host before the fourth run
    old_ca: str = ""  # the first control plane's CA certificate (PEM)

    def host(self, name: str) -> podman_hosts.Host:
        return self.lab.hosts[name]

    def all_kubeadm_calls(self, name: str) -> list[list[str]]:
        text = self.host(name).sh("cat /var/log/kube-double/kubeadm.log 2>/dev/null || true")
        return [line.split("\t")[1:] for line in text.splitlines() if line]

    def kubeadm_calls(self, name: str) -> list[list[str]]:
        """The calls of the first three runs (the cluster's first control plane)."""
        calls = self.all_kubeadm_calls(name)
        return calls[: self.calls_before_rebuild.get(name, len(calls))]

    def kubeadm_calls_of_rebuild(self, name: str) -> list[list[str]]:
        """The calls after the first control plane was reset, until the end of the fourth run."""
        return self.all_kubeadm_calls(name)[self.calls_before_rebuild[name] :]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Generator[Cluster, None, None]:
    if not podman_hosts.have_podman():
        pytest.fail("podman is missing: run `make setup` (it installs the test hosts' Debian packages)", pytrace=False)
    podman_hosts.build_image()
    workdir = tmp_path_factory.mktemp("kubernetes-role")
    repo = kube_double_repo.build(workdir / "repo", K8S_VERSION)
    lab = podman_hosts.PodmanLab(workdir / "lab", mounts=[(str(repo.path), REPO_MOUNT)])
    control_dirs: list[Path] = []  # ansible's ssh masters, kept apart from the user's ~/.ansible/cp and ended at the end
    try:
        lab.start([LEADER, WORKER, SPOT], HOSTVARS)
        inventory = lab.inventory(ec2_groups([WORKER, SPOT]))
        cluster = Cluster(lab, repo, inventory)
        overrides: dict[str, Any] = repo.role_vars(REPO_MOUNT)
        for run in ("first", "second", "late-worker", "rebuilt"):
            if run == "late-worker":  # a worker added to a running cluster: only it joins
                lab.start([LATE], HOSTVARS)
                inventory = lab.inventory(ec2_groups([WORKER, SPOT, LATE]))
            if run == "rebuilt":  # the control plane is rebuilt at the same address: a new cluster CA
                cluster.calls_before_rebuild = {name: len(cluster.all_kubeadm_calls(name)) for name in (LEADER, WORKER, SPOT, LATE)}
                cluster.old_ca = cluster.host(LEADER).read("/etc/kubernetes/pki/ca.crt")
                cluster.host(LEADER).sh("kubeadm reset -f >/dev/null")
            run_dir = workdir / f"converge-{run}"
            control_dirs.append(run_dir / "cp")
            env = {"ANSIBLE_SSH_CONTROL_PATH_DIR": podman_hosts.control_path_dir(control_dirs[-1])}
            cluster.runs.append(
                run_ansible_playbook(CONVERGE, base_env(), run_dir, inventory=str(inventory), extra_vars=overrides, env=env, expect_rc=None, timeout=900)
            )
            if cluster.runs[-1].rc != 0:
                break
        yield cluster
    finally:
        errors = lab.close(control_dirs)
        assert not errors, f"test hosts were not cleaned up: {errors}"


def test_first_converge_succeeds(cluster: Cluster) -> None:
    first = cluster.runs[0]
    assert first.rc == 0, first.describe()
    assert {h: s["failures"] for h, s in first.stats.items()} == {LEADER: 0, WORKER: 0, SPOT: 0}


def test_second_converge_changes_nothing(cluster: Cluster) -> None:
    assert len(cluster.runs) >= 2, "the first converge failed"
    second = cluster.runs[1]
    assert second.rc == 0, second.describe()
    changed = {host: stats["changed"] for host, stats in second.stats.items()}
    assert changed == {LEADER: 0, WORKER: 0, SPOT: 0}, [
        (entry["task"]["name"], host) for entry in second.tasks() for host, res in entry["hosts"].items() if res.get("changed")
    ]


def test_a_late_worker_joins_and_the_others_are_untouched(cluster: Cluster) -> None:
    assert len(cluster.runs) >= 3, "an earlier converge failed"
    late = cluster.runs[2]
    assert late.rc == 0, late.describe()
    changed = {host: stats["changed"] for host, stats in late.stats.items()}
    assert changed[LATE] > 0
    assert {h: c for h, c in changed.items() if h != LATE} == {LEADER: 0, WORKER: 0, SPOT: 0}, changed
    assert [c for c in cluster.kubeadm_calls(LATE) if c[:1] == ["join"]] == [["join", "--config", "/etc/kubernetes/kubeadm-join.yaml"]]


def test_a_control_plane_rebuilt_at_the_same_address_has_every_worker_reset_and_rejoin(cluster: Cluster) -> None:
    """The API server's address is the same, its CA is not (as for a replacement leader given the lost one's private
    IP): each worker's kubelet.conf names the right server under a CA that no longer exists, so it is reset and joins
    again, with the new CA's hash pinned (the double's join checks it against the CA the control plane serves)."""
    assert len(cluster.runs) == 4, "an earlier converge failed"
    rebuilt = cluster.runs[3]
    assert rebuilt.rc == 0, rebuilt.describe()
    new_ca = cluster.host(LEADER).read("/etc/kubernetes/pki/ca.crt")
    assert new_ca != cluster.old_ca
    assert [c[0] for c in cluster.kubeadm_calls_of_rebuild(LEADER) if c[:1] in (["init"], ["reset"])] == ["reset", "init"]  # the test, the role
    server = f"https://{cluster.host(LEADER).address}:6443"
    for name in (WORKER, SPOT, LATE):
        calls = [c[:2] for c in cluster.kubeadm_calls_of_rebuild(name) if c[:1] != ["config"]]  # config validate: the template's check
        assert calls == [["reset", "-f"], ["join", "--config"]], (name, calls)
        kubelet_conf = yaml.safe_load(cluster.host(name).read("/etc/kubernetes/kubelet.conf"))["clusters"][0]["cluster"]
        assert kubelet_conf["server"] == server
        assert base64.b64decode(kubelet_conf["certificate-authority-data"]).decode() == new_ca, name


@pytest.mark.parametrize("name", [LEADER, WORKER, SPOT])
def test_node_is_prepared(cluster: Cluster, name: str) -> None:
    host = cluster.host(name)
    assert host.sh("systemctl is-active containerd").strip() == "active"
    dump = host.sh("containerd config dump")
    assert "SystemdCgroup = true" in dump
    assert 'bin_dir = "/opt/cni/bin"' in dump
    assert 'sandbox_image = "registry.k8s.io/pause:3.10.1"' in dump
    assert host.read("/etc/modules-load.d/kubernetes.conf").split() == ["overlay", "br_netfilter"]
    sysctls = host.sh("sysctl -n net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables net.ipv4.ip_forward").split()
    assert sysctls == ["1", "1", "1"]
    assert "net.bridge.bridge-nf-call-iptables=1" in host.read("/etc/sysctl.d/90-kubernetes.conf").replace(" ", "")
    source = host.read("/etc/apt/sources.list.d/kubernetes.sources")
    assert f"URIs: file://{REPO_MOUNT}/" in source
    assert "Signed-By: /etc/apt/keyrings/kubernetes-apt-keyring.asc" in source
    assert host.sh("sha256sum /etc/apt/keyrings/kubernetes-apt-keyring.asc").split()[0] == cluster.repo.key_sha256
    assert sorted(host.sh("apt-mark showhold").split()) == ["kubeadm", "kubectl", "kubelet"]
    versions = host.sh("dpkg-query -W -f '${Package}=${Version}\\n' kubeadm kubelet kubectl").split()
    assert sorted(versions) == [f"{p}={K8S_VERSION}-1.1" for p in ("kubeadm", "kubectl", "kubelet")]
    assert host.sh("systemctl is-active kubelet").strip() == "active"
    assert host.sh("systemctl is-enabled kubelet").strip() == "enabled"


def test_init_runs_once_on_the_leader(cluster: Cluster) -> None:
    calls = cluster.kubeadm_calls(LEADER)
    inits = [c for c in calls if c[:1] == ["init"]]
    assert inits == [["init", "--config", "/etc/kubernetes/kubeadm-config.yaml", "--skip-token-print"]]
    for name in (WORKER, SPOT):
        assert not [c for c in cluster.kubeadm_calls(name) if c[:1] == ["init"]]
    config = list(yaml.safe_load_all(cluster.host(LEADER).read("/etc/kubernetes/kubeadm-config.yaml")))
    by_kind = {doc["kind"]: doc for doc in config}
    assert by_kind["ClusterConfiguration"]["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12"}
    assert by_kind["ClusterConfiguration"]["kubernetesVersion"] == f"v{K8S_VERSION}"
    assert by_kind["ClusterConfiguration"]["clusterName"] == "lab"
    assert by_kind["KubeletConfiguration"]["serverTLSBootstrap"] is True
    assert by_kind["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    assert by_kind["InitConfiguration"]["bootstrapTokens"][0]["ttl"] == "15m"
    scheduler = yaml.safe_load(cluster.host(LEADER).read("/etc/kubernetes/scheduler-config.yaml"))
    assert scheduler["profiles"][0]["pluginConfig"][0]["args"]["scoringStrategy"]["type"] == "MostAllocated"
    # kubelet reads the configuration kubeadm wrote (serverTLSBootstrap for metrics-server's secure path).
    assert yaml.safe_load(cluster.host(LEADER).read("/var/lib/kubelet/config.yaml"))["serverTLSBootstrap"] is True


def ca_hash(cluster: Cluster) -> str:
    cert = x509.load_pem_x509_certificate(cluster.host(LEADER).read("/etc/kubernetes/pki/ca.crt").encode())
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def test_each_worker_joins_once_with_a_fresh_token_and_the_pinned_ca_hash(cluster: Cluster) -> None:
    creates = [c for c in cluster.kubeadm_calls(LEADER) if c[:2] == ["token", "create"]]
    assert len(creates) == 3, creates  # one per joining worker: two in the first run, none in the second, one in the third
    assert all(c[2:4] == ["--ttl", "15m"] for c in creates), creates
    made = {line.split()[0] for line in cluster.host(LEADER).read("/etc/kubernetes/.double-tokens").splitlines() if "create" in line}
    used = set()
    for name in (WORKER, SPOT, LATE):
        host = cluster.host(name)
        joins = [c for c in cluster.kubeadm_calls(name) if c[:1] == ["join"]]
        assert joins == [["join", "--config", "/etc/kubernetes/kubeadm-join.yaml"]]
        # The double kept a copy of the join configuration; the role removed its own (it holds the token).
        copies = host.sh("ls /var/log/kube-double/ | grep 'kubeadm-join.yaml' || true").split()
        join = next(d for d in yaml.safe_load_all(host.read(f"/var/log/kube-double/{copies[-1]}")) if d["kind"] == "JoinConfiguration")
        token = join["discovery"]["bootstrapToken"]["token"]
        assert token in made
        used.add(token)
        assert join["discovery"]["bootstrapToken"]["caCertHashes"] == [ca_hash(cluster)]
        assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == f"{cluster.host(LEADER).address}:6443"
        assert host.sh("test -e /etc/kubernetes/kubeadm-join.yaml && echo present || echo absent").strip() == "absent"
        assert "server: https://" in host.read("/etc/kubernetes/kubelet.conf")
    assert len(used) == 3, "each worker gets its own token"


def test_workers_carry_their_pool_labels_and_spot_workers_the_spot_label(cluster: Cluster) -> None:
    def labels(name: str) -> dict[str, str]:
        env = cluster.host(name).read("/var/lib/kubelet/kubeadm-flags.env")
        match = re.search(r"--node-labels=([^\s\"]+)", env)
        return dict(item.split("=", 1) for item in match.group(1).split(",")) if match else {}

    assert labels(WORKER) == {"team": "genomics", "toil.cluster/pool": "t3.large"}
    assert labels(SPOT) == {"eks.amazonaws.com/capacityType": "SPOT", "toil.cluster/pool": "c5.large-spot"}
    assert labels(LEADER) == {}
    assert labels(LATE) == {"eks.amazonaws.com/capacityType": "SPOT"}  # from toil_preemptible alone


def test_every_node_registers_with_its_provider_id(cluster: Cluster) -> None:
    """spec.providerID comes only from the kubelet's --provider-id (no cloud controller runs): kubeadm gets it from
    the inventory's instance id and zone, writes it into the kubelet's flags, and the kubelet registers with it."""
    for name in (LEADER, WORKER, SPOT, LATE):
        expected = f"aws:///{HOSTVARS[name]['toil_zone']}/{HOSTVARS[name]['toil_instance_id']}"
        env = cluster.host(name).read("/var/lib/kubelet/kubeadm-flags.env")
        assert re.findall(r"--provider-id=([^\s\"]+)", env) == [expected], env
        node = json.loads(cluster.host(name).read("/var/lib/kubelet/double-node.json"))
        assert node["spec"] == {"providerID": expected}


# Run inside the leader: one GET to its API server as admin.conf's user (a client certificate of the cluster CA).
API_GET = """
import base64, json, re, ssl, sys, tempfile, urllib.request
text = open("/etc/kubernetes/admin.conf").read()
field = lambda key: re.search(r"^\\s*" + key + r":\\s*(\\S+)", text, re.M).group(1)
context = ssl.create_default_context(cadata=base64.b64decode(field("certificate-authority-data")).decode())
with tempfile.NamedTemporaryFile("wb") as pem:
    pem.write(base64.b64decode(field("client-certificate-data")) + b"\\n" + base64.b64decode(field("client-key-data")))
    pem.flush()
    context.load_cert_chain(pem.name)
with urllib.request.urlopen(field("server") + sys.argv[1], context=context, timeout=10) as answer:
    print(answer.read().decode())
"""


def leader_api(cluster: Cluster, path: str) -> dict[str, Any]:
    """GET ``path`` from the API server on the leader (kubeadm init's stand-in), from inside the leader."""
    return json.loads(cluster.host(LEADER).sh(f"python3 -c {shlex.quote(API_GET)} {shlex.quote(path)}"))


def test_kubelets_register_their_nodes_in_the_leaders_api(cluster: Cluster) -> None:
    """Over the real wire: the leader's kubelet with kubeadm init's kubelet.conf, each worker's with the client
    certificate its TLS bootstrap got (a CSR made with the join token, auto-approved and signed by the cluster CA), each
    Node with the providerID from the kubelet's flag; the control plane's Node is marked by kubeadm's mark-control-plane."""
    assert len(cluster.runs) == 4, "an earlier converge failed"
    nodes = {node["metadata"]["name"]: node for node in leader_api(cluster, "/api/v1/nodes")["items"]}
    assert sorted(nodes) == sorted((LEADER, WORKER, SPOT, LATE))
    for name, node in nodes.items():
        assert node["spec"].get("providerID") == f"aws:///{HOSTVARS[name]['toil_zone']}/{HOSTVARS[name]['toil_instance_id']}", node
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
        addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addresses == {"InternalIP": cluster.host(name).address, "Hostname": name}
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
    assert nodes[WORKER]["metadata"]["labels"]["toil.cluster/pool"] == "t3.large"
    assert nodes[LEADER]["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == ""
    assert nodes[LEADER]["spec"]["taints"] == [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    assert "node-role.kubernetes.io/control-plane" not in nodes[WORKER]["metadata"]["labels"] and "taints" not in nodes[WORKER]["spec"]
    ca = x509.load_pem_x509_certificate(cluster.host(LEADER).read("/etc/kubernetes/pki/ca.crt").encode())
    current = "/var/lib/kubelet/pki/kubelet-client-current.pem"
    for name in (WORKER, SPOT, LATE):
        host = cluster.host(name)
        assert host.sh("test -e /etc/kubernetes/bootstrap-kubelet.conf && echo present || echo absent").strip() == "absent"
        assert host.sh(f"stat -c '%U %a' /etc/kubernetes/kubelet.conf; stat -L -c '%U %a' {current}").split() == ["root", "600", "root", "600"]
        user = yaml.safe_load(host.read("/etc/kubernetes/kubelet.conf"))["users"][0]["user"]
        assert user == {"client-certificate": current, "client-key": current}, name
        certificate = x509.load_pem_x509_certificate(host.read(current).encode())
        certificate.verify_directly_issued_by(ca)
        assert certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == f"system:node:{name}"
        assert [o.value for o in certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)] == ["system:nodes"]
    csrs = leader_api(cluster, "/apis/certificates.k8s.io/v1/certificatesigningrequests")["items"]
    assert len(csrs) == 3, [c["spec"]["username"] for c in csrs]  # one per worker's join of the rebuilt control plane
    for csr in csrs:
        assert csr["spec"]["username"].startswith("system:bootstrap:") and "system:bootstrappers" in csr["spec"]["groups"]
        assert [(c["type"], c["reason"]) for c in csr["status"]["conditions"]] == [("Approved", "AutoApproved")] and csr["status"]["certificate"]


def test_no_secret_appears_in_the_output(cluster: Cluster) -> None:
    tokens = {line.split()[0] for line in cluster.host(LEADER).read("/etc/kubernetes/.double-tokens").splitlines()}
    assert tokens
    for run in cluster.runs:
        for token in tokens:
            assert token not in run.stdout and token not in run.stderr


def test_the_ssh_user_gets_a_kubeconfig(cluster: Cluster) -> None:
    host = cluster.host(LEADER)
    assert host.sh("stat -c '%U %a' /home/admin/.kube/config").split() == ["admin", "600"]
    assert host.read("/home/admin/.kube/config") == host.read("/etc/kubernetes/admin.conf")


def manifest_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize("manifest", ["flannel.yml", "kubelet-csr-approver.yml", "metrics-server.yml"])
def test_rendered_manifests_validate_against_the_pinned_kubernetes_schemas(cluster: Cluster, manifest: str) -> None:
    docs = manifest_docs(cluster.host(LEADER).read(f"/etc/kubernetes/toil.cluster/{manifest}"))
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_metrics_server_is_secure_by_default(cluster: Cluster) -> None:
    docs = manifest_docs(cluster.host(LEADER).read("/etc/kubernetes/toil.cluster/metrics-server.yml"))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--kubelet-insecure-tls" not in args
    assert any(a.startswith("--kubelet-preferred-address-types=") for a in args)
    service = next(d for d in docs if d["kind"] == "APIService")
    assert service["metadata"]["name"] == "v1beta1.metrics.k8s.io"
    # The aggregator verifies metrics-server: caBundle is the CA the leader made, which signed the serving certificate.
    host = cluster.host(LEADER)
    assert "insecureSkipTLSVerify" not in service["spec"]
    ca = host.read("/etc/kubernetes/pki/metrics-server/ca.crt")
    assert base64.b64decode(service["spec"]["caBundle"]).decode() == ca
    serving = x509.load_pem_x509_certificate(host.read("/etc/kubernetes/pki/metrics-server/tls.crt").encode())
    serving.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.encode()))
    assert "metrics-server.kube-system.svc" in serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    pki = "/etc/kubernetes/pki/metrics-server"
    assert host.sh(f"stat -c '%U %a' {pki} {pki}/ca.key {pki}/tls.key").split() == ["root", "700", "root", "600", "root", "600"]
    assert "PRIVATE KEY" not in host.read("/etc/kubernetes/toil.cluster/metrics-server.yml")


def test_the_csr_approver_listens_on_the_control_planes_loopback_only(cluster: Cluster) -> None:
    docs = manifest_docs(cluster.host(LEADER).read("/etc/kubernetes/toil.cluster/kubelet-csr-approver.yml"))
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    args = pod["containers"][0]["args"]
    assert args[args.index("-metrics-bind-address") + 1] == "127.0.0.1:8080"
    assert args[args.index("-health-probe-bind-address") + 1] == "127.0.0.1:8081"
    assert pod["containers"][0]["livenessProbe"]["httpGet"]["host"] == "127.0.0.1"


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
