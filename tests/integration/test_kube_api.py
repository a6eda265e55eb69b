"""The Kubernetes API stand-in (harness.kube_api) driven by the real ``kubernetes`` client and the real ``kubectl``,
then the collection's own Kubernetes readers (kube_client, kube_demand, kube_drain) against it.

No AWS, no podman host: each test starts its own server on 127.0.0.1 (the certificate is made once per module).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from ansible_collections.toil.cluster.plugins.module_utils import kube_client, kube_demand, kube_drain
from harness import kube_api as kube_api_module
from harness.kube_api import KubeApi, client_certificate, make_certificates
from harness.kube_pod_runner import PodRunner
from harness.paths import TOIL_PYTHON

TOIL_SAFE_TO_EVICT = {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(str(tmp_path_factory.mktemp("kube-certs")))


@pytest.fixture
def api(certificates, tmp_path):
    with KubeApi(cert_dir=str(tmp_path), certificates=certificates) as server:
        yield server


def api_client(api, kubeconfig=None):
    configuration = client.Configuration()
    kube_config.load_kube_config(config_file=kubeconfig or api.kubeconfig, client_configuration=configuration)
    return client.ApiClient(configuration)


def kubectl(api, tmp_path, *args, check=True):
    env = {**os.environ, "KUBECONFIG": api.kubeconfig, "KUBECACHEDIR": str(tmp_path / "kube-cache"), "HOME": str(tmp_path)}
    result = subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode:
        raise AssertionError(f"kubectl {' '.join(args)}: rc {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def status_of(error):
    return json.loads(error.body)


# ----------------------------------------------------------------------------- the API's own behaviour


def test_a_wrong_token_is_401_and_the_kubeconfig_carries_the_ca(api, tmp_path):
    wrong = tmp_path / "wrong-token"
    wrong.write_text(api.kubeconfig_text().replace(api.token, "not-the-token"))
    with pytest.raises(ApiException) as raised:
        client.CoreV1Api(api_client(api, str(wrong))).list_node()
    assert raised.value.status == 401 and status_of(raised.value)["reason"] == "Unauthorized"
    with open(api.kubeconfig, encoding="utf-8") as handle:
        written = json.load(handle)
    with open(api.ca_path, "rb") as handle:
        assert base64.b64decode(written["clusters"][0]["cluster"]["certificate-authority-data"]) == handle.read()
    assert os.stat(api.kubeconfig).st_mode & 0o777 == 0o600
    assert client.VersionApi(api_client(api)).get_code().git_version == "v1.32.4"


def test_paging_with_continue_tokens_reads_one_revision_and_expires(api):
    for index in range(1200):
        api.create("pods", {"metadata": {"name": f"p-{index:04d}"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    core = client.CoreV1Api(api_client(api))
    first = core.list_pod_for_all_namespaces(limit=500)
    assert len(first.items) == 500 and first.metadata._continue and first.metadata.remaining_item_count == 700
    # Between pages: one pod not yet listed goes, one comes; the later pages still show the first page's revision.
    api.delete("pods", "p-0999")
    api.create("pods", {"metadata": {"name": "p-0998a"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    second = core.list_pod_for_all_namespaces(limit=500, _continue=first.metadata._continue)
    third = core.list_pod_for_all_namespaces(limit=500, _continue=second.metadata._continue)
    names = [p.metadata.name for page in (first, second, third) for p in page.items]
    assert len(second.items) == 500 and len(third.items) == 200 and third.metadata._continue is None
    assert names == sorted(f"p-{i:04d}" for i in range(1200))
    # A fresh list sees the change; the collection's own pager walks every page.
    listed = kube_client.list_all(core.list_pod_for_all_namespaces)
    assert len(listed) == 1200 and "p-0998a" in {p.metadata.name for p in listed} and "p-0999" not in {p.metadata.name for p in listed}
    assert [r.query.get("limit") for r in api.requests[-3:]] == ["500"] * 3
    # After a compaction an old token is 410 Gone, reason Expired, with a token for the inconsistent remainder.
    page = core.list_pod_for_all_namespaces(limit=2)
    api.delete("pods", "p-0998a")  # a write, then the compaction passes the page's revision
    api.compact()
    with pytest.raises(ApiException) as raised:
        core.list_pod_for_all_namespaces(limit=2, _continue=page.metadata._continue)
    body = status_of(raised.value)
    assert raised.value.status == 410 and body["reason"] == "Expired" and "too old to display a consistent list" in body["message"]
    rest = core.list_pod_for_all_namespaces(limit=2, _continue=body["metadata"]["continue"])
    assert [p.metadata.name for p in rest.items] == ["p-0002", "p-0003"] and rest.metadata.remaining_item_count == 1199 - 4


def test_the_collections_pager_lists_in_full_when_its_token_expires(api):
    """client-go's pager (FullListIfExpired): a continue token compacted away between pages (410 Expired) makes
    kube_client.list_all read the list again in one piece, which then shows the change made meanwhile."""
    for index in range(kube_client.LIST_PAGE_SIZE + 100):
        api.create("pods", {"metadata": {"name": f"p-{index:04d}"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    core = client.CoreV1Api(api_client(api))
    calls = []

    def list_pods(**kwargs):
        calls.append(sorted(kwargs))
        page = core.list_pod_for_all_namespaces(**kwargs)
        if len(calls) == 1:  # between the first and the second page: a write, then a compaction past the first page
            api.create("pods", {"metadata": {"name": "late"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
            api.compact()
        return page

    listed = kube_client.list_all(list_pods)
    assert calls == [["limit"], ["_continue", "limit"], []]
    assert len(listed) == kube_client.LIST_PAGE_SIZE + 101 and "late" in {p.metadata.name for p in listed}
    assert [r.status for r in api.requests[-3:]] == [200, 410, 200]


def test_selectors(api):
    api.add_node("n1")
    api.add_pod("bound", node="n1", labels={"app": "web", "tier": "a"})
    api.add_pod("waiting", labels={"app": "web"})
    api.add_pod("done", node="n1", phase="Succeeded", labels={"app": "batch"})
    core = client.CoreV1Api(api_client(api))

    def names(**kwargs):
        return sorted(p.metadata.name for p in core.list_pod_for_all_namespaces(**kwargs).items)

    assert names(field_selector="spec.nodeName=n1") == ["bound", "done"]
    assert names(field_selector="spec.nodeName=") == ["waiting"]
    assert names(field_selector="status.phase!=Succeeded,spec.nodeName==n1") == ["bound"]
    assert names(field_selector="metadata.name=waiting") == ["waiting"]
    assert names(label_selector="app in (web),tier") == ["bound"]
    assert names(label_selector="app=web,!tier") == ["waiting"]
    assert names(label_selector="app notin (web)") == ["done"]
    with pytest.raises(ApiException) as raised:
        core.list_pod_for_all_namespaces(field_selector="spec.hostname=x")
    assert raised.value.status == 400 and status_of(raised.value)["message"] == "field label not supported: spec.hostname"


def test_stale_resource_version_is_409(api):
    api.add_node("n1")
    core = client.CoreV1Api(api_client(api))
    seen = core.read_node("n1")
    changed = core.patch_node("n1", {"metadata": {"labels": {"toil.cluster/pool": "spot"}}})
    assert int(changed.metadata.resource_version) > int(seen.metadata.resource_version)
    seen.metadata.annotations = {"x": "y"}
    with pytest.raises(ApiException) as raised:
        core.replace_node("n1", seen)
    body = status_of(raised.value)
    assert raised.value.status == 409 and body["reason"] == "Conflict"
    assert (
        body["message"]
        == 'Operation cannot be fulfilled on nodes "n1": the object has been modified; please apply your changes to the latest version and try again'
    )
    with pytest.raises(ApiException) as raised:
        core.patch_node("n1", {"metadata": {"resourceVersion": seen.metadata.resource_version, "annotations": {"x": "y"}}})
    assert raised.value.status == 409
    fresh = core.read_node("n1")
    fresh.metadata.annotations = {"x": "y"}
    assert core.replace_node("n1", fresh).metadata.annotations == {"x": "y"}
    # A main-resource write keeps the status; /status changes only the status.
    fresh = core.read_node("n1")
    fresh.status.allocatable = {"cpu": "64"}
    assert core.replace_node("n1", fresh).status.allocatable["cpu"] == "2"
    assert core.patch_node_status("n1", {"status": {"allocatable": {"cpu": "4"}}}).status.allocatable["cpu"] == "4"


def test_eviction_refused_by_a_pdb_then_allowed(api):
    api.add_node("n1")
    for name in ("web-1", "web-2"):
        api.add_pod(name, node="n1", labels={"app": "web"}, owner="ReplicaSet/web")
    api.add_pod("web-pending", labels={"app": "web"}, owner="ReplicaSet/web")
    api_object = api_client(api)
    core, policy = client.CoreV1Api(api_object), client.PolicyV1Api(api_object)
    budget = client.V1PodDisruptionBudget(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1PodDisruptionBudgetSpec(min_available=2, selector=client.V1LabelSelector(match_labels={"app": "web"})),
    )
    policy.create_namespaced_pod_disruption_budget("default", budget)
    status = policy.read_namespaced_pod_disruption_budget("web", "default").status
    assert (status.current_healthy, status.desired_healthy, status.disruptions_allowed, status.expected_pods) == (2, 2, 0, 3)

    def evict(name):
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="default"))
        return core.create_namespaced_pod_eviction(name, "default", body)

    with pytest.raises(ApiException) as raised:
        evict("web-1")
    body = status_of(raised.value)
    assert raised.value.status == 429 and body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [{"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]
    assert kube_drain._pdb_of(raised.value, core.read_namespaced_pod("web-1", "default"), policy)[0] == "default/web"
    evict("web-pending")  # a Pending pod is evicted whatever its budget says
    policy.patch_namespaced_pod_disruption_budget("web", "default", {"spec": {"minAvailable": 1}})
    evict("web-1")
    assert api.get("pods", "web-1") is None
    with pytest.raises(ApiException) as raised:
        evict("web-2")
    assert raised.value.status == 429 and "needs 1 healthy pods and has 1 currently" in raised.value.body
    with pytest.raises(ApiException) as raised:
        evict("web-1")
    assert raised.value.status == 404


def test_lease_create_and_update_conflict(api):
    coordination = client.CoordinationV1Api(api_client(api))
    lease = client.V1Lease(metadata=client.V1ObjectMeta(name="toil-scaler"), spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=60))
    created = coordination.create_namespaced_lease("kube-system", lease)
    assert created.spec.holder_identity == "a" and created.metadata.uid and created.metadata.creation_timestamp
    with pytest.raises(ApiException) as raised:
        coordination.create_namespaced_lease("kube-system", lease)
    assert raised.value.status == 409 and status_of(raised.value)["reason"] == "AlreadyExists"
    # Two candidates read the same version; the first write wins, the second is refused.
    first, second = (coordination.read_namespaced_lease("toil-scaler", "kube-system") for _reader in range(2))
    first.spec.holder_identity, second.spec.holder_identity = "b", "c"
    coordination.replace_namespaced_lease("toil-scaler", "kube-system", first)
    with pytest.raises(ApiException) as raised:
        coordination.replace_namespaced_lease("toil-scaler", "kube-system", second)
    assert raised.value.status == 409 and 'leases.coordination.k8s.io "toil-scaler"' in status_of(raised.value)["message"]
    assert coordination.read_namespaced_lease("toil-scaler", "kube-system").spec.holder_identity == "b"
    with pytest.raises(ApiException) as raised:
        coordination.create_namespaced_lease("no-such-namespace", lease)
    assert raised.value.status == 404


def test_jobs_as_toil_creates_them(api):
    """Toil 9.6's calls: create_namespaced_job, list by ``toil_run`` label and ``status.successful==1``, delete Background."""
    batch, core = client.BatchV1Api(api_client(api)), client.CoreV1Api(api_client(api))
    container = client.V1Container(
        name="runner-container", image="quay.io/ucsc_cgl/toil:9.6.0", resources=client.V1ResourceRequirements(limits={"cpu": "1", "memory": "2684354560"})
    )
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(annotations=TOIL_SAFE_TO_EVICT), spec=client.V1PodSpec(containers=[container], restart_policy="Never")
    )
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="admin-toil-1", labels={"toil_run": "toil-r1"}), spec=client.V1JobSpec(template=template, backoff_limit=0)
    )
    batch.create_namespaced_job("default", job)
    assert [j.metadata.name for j in batch.list_namespaced_job("default", label_selector="toil_run=toil-r1").items] == ["admin-toil-1"]
    assert batch.list_namespaced_job("default", label_selector="toil_run=toil-r1", field_selector="status.successful==1").items == []
    (pod,) = core.list_namespaced_pod("default", label_selector="job-name=admin-toil-1").items
    assert pod.metadata.owner_references[0].kind == "Job" and pod.metadata.owner_references[0].controller
    assert pod.spec.containers[0].resources.requests == {"cpu": "1", "memory": "2684354560"}  # defaulted from limits
    assert kube_demand.is_unschedulable_pending(pod)
    api.update_status("jobs", "admin-toil-1", {"succeeded": 1})
    assert len(batch.list_namespaced_job("default", field_selector="status.successful==1").items) == 1
    batch.delete_namespaced_job("admin-toil-1", "default", propagation_policy="Background")
    assert api.objects("pods") == [] and api.objects("jobs") == []


def test_kubectl_get_drain_and_delete_node(api, tmp_path):
    api.add_node("leader", labels={"node-role.kubernetes.io/control-plane": ""}, addresses={"InternalIP": "10.0.0.4"})
    api.add_node("worker-1", provider_id="aws:///us-west-2a/i-0123456789abcdef0", addresses={"InternalIP": "10.0.0.5"})
    api.create("daemonsets", {"metadata": {"name": "kube-proxy"}, "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}}}}, namespace="kube-system")
    api.add_pod("kube-proxy-x", namespace="kube-system", node="worker-1", owner="DaemonSet/kube-proxy")
    api.add_pod("web-1", node="worker-1", owner="ReplicaSet/web", labels={"app": "web"})
    for index in range(520):  # more than kubectl's chunk size of 500
        api.create("pods", {"metadata": {"name": f"queued-{index:03d}"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    nodes = kubectl(api, tmp_path, "get", "nodes", "-o", "wide").stdout.splitlines()
    assert nodes[0].split()[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert nodes[1].split()[:3] == ["leader", "Ready", "control-plane"] and "10.0.0.5" in nodes[2]
    pods = kubectl(api, tmp_path, "get", "pods", "-A").stdout.splitlines()
    assert len(pods) == 1 + 522 and pods[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert any(r.path == "/api/v1/pods" and r.query.get("continue") for r in api.requests)  # kubectl paged
    refused = kubectl(api, tmp_path, "drain", "worker-1", "--timeout=5s", check=False)
    assert refused.returncode != 0 and "DaemonSet-managed" in refused.stderr
    drained = kubectl(api, tmp_path, "drain", "worker-1", "--ignore-daemonsets", "--timeout=20s")
    assert "node/worker-1 drained" in drained.stdout and "pod/web-1 evicted" in drained.stdout
    assert "POST /api/v1/namespaces/default/pods/web-1/eviction" in api.calls()
    assert api.get("nodes", "worker-1")["spec"]["unschedulable"] is True
    assert [p["metadata"]["name"] for p in api.objects("pods", "kube-system")] == ["kube-proxy-x"]
    assert "worker-1   Ready,SchedulingDisabled" in kubectl(api, tmp_path, "get", "nodes").stdout
    kubectl(api, tmp_path, "delete", "node", "worker-1")
    assert [n["metadata"]["name"] for n in api.objects("nodes")] == ["leader"]
    # No pod garbage collector: the DaemonSet pod of the deleted node stays listed.
    assert api.get("pods", "kube-proxy-x", "kube-system") is not None


def test_command_line_serves_with_the_standard_library_only(tmp_path):
    """``kube_api.py serve`` as a host runs it: the file alone, ``python3 -I -S`` (no site-packages, no harness)."""
    script = tmp_path / "kube_api.py"
    script.write_bytes(Path(kube_api_module.__file__).read_bytes())
    command = [sys.executable, "-I", "-S", str(script), "serve", "--port", "0", "--token", "host-token", "--cert-dir", str(tmp_path / "d")]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("serving https://127.0.0.1:"), line + server.stderr.read()
        kubeconfig = tmp_path / "d" / "kubeconfig"
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache"), "HOME": str(tmp_path)}
        listed = subprocess.run(["kubectl", "get", "namespaces", "-o", "name"], env=env, capture_output=True, text=True, timeout=60, check=True)
        assert listed.stdout.split() == ["namespace/default", "namespace/kube-node-lease", "namespace/kube-public", "namespace/kube-system"]
        assert '"token": "host-token"' in kubeconfig.read_text()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(timeout=30) == 0


# ----------------------------------------------------------------------------- authentication as kubeadm sets it up

BOOTSTRAP = "abcdef.0123456789abcdef"  # a kubeadm bootstrap token: id.secret
KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def user_kubeconfig(api, path, user):
    """A kubeconfig for the stand-in with ``user`` (``{"token": ...}``, ``{"client-certificate": ..., "client-key": ...}``)."""
    config = json.loads(api.kubeconfig_text())
    config["users"][0]["user"] = user
    path.write_text(json.dumps(config))
    return str(path)


def anonymous_get(api, path):
    """``(code, body)`` of a GET with no credentials at all, the CA verified."""
    context = ssl.create_default_context(cafile=api.ca_path)
    try:
        with urllib.request.urlopen(api.url + path, context=context, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture
def kubeadm_api(certificates, tmp_path):
    """The stand-in as kubeadm init runs it on a host: client certificates of the cluster CA, the live bootstrap
    tokens' file, the CA key signing kubelet client certificates."""
    tokens = tmp_path / "tokens-live"
    tokens.write_text(f"{BOOTSTRAP}\t15m\ttoil.cluster: join of a worker\n")
    ca_key = os.path.join(os.path.dirname(certificates[0]), "ca.key")
    server = KubeApi(cert_dir=str(tmp_path), certificates=certificates, client_ca=certificates[0], bootstrap_token_file=str(tokens), signer_key=ca_key)
    with server:
        yield server


def test_client_certificates_of_the_client_ca_are_users_and_others_are_refused(kubeadm_api, tmp_path):
    api = kubeadm_api
    (tmp_path / "mine").mkdir()
    crt, key = client_certificate(api._certificates, tmp_path / "mine", "/O=kubeadm:cluster-admins/CN=kubernetes-admin")
    admin = api_client(api, user_kubeconfig(api, tmp_path / "admin.conf", {"client-certificate": crt, "client-key": key}))
    core = client.CoreV1Api(admin)
    cluster_info = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cluster-info"), data={"kubeconfig": "apiVersion: v1\n"})
    core.create_namespaced_config_map("kube-public", cluster_info)
    assert core.read_namespaced_config_map("cluster-info", "kube-public").data == {"kubeconfig": "apiVersion: v1\n"}
    assert [n.metadata.name for n in core.list_namespace().items] == ["default", "kube-node-lease", "kube-public", "kube-system"]
    # kubectl too, and it finds configmaps in discovery.
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "admin.conf"), "KUBECACHEDIR": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    command = ["kubectl", "get", "configmaps", "-n", "kube-public", "-o", "name"]
    listed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert listed.stdout.split() == ["configmap/cluster-info"], listed.stderr
    # A certificate of another CA: the TLS handshake refuses it (the real server completes TLS and answers 401).
    (tmp_path / "other").mkdir()
    other_ca = make_certificates(str(tmp_path / "other"))
    crt, key = client_certificate(other_ca, tmp_path / "other", "/O=kubeadm:cluster-admins/CN=kubernetes-admin")
    context = ssl.create_default_context(cafile=api.ca_path)
    context.load_cert_chain(crt, key)
    connection = http.client.HTTPSConnection("127.0.0.1", api.port, context=context, timeout=10)
    before = len(api.requests)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        connection.request("GET", "/api/v1/nodes")
        connection.getresponse()
    connection.close()
    assert len(api.requests) == before


def test_a_bootstrap_token_gets_a_kubelet_client_certificate_which_then_authenticates(kubeadm_api, tmp_path):
    """The kubelet's TLS bootstrap against the stand-in: a CSR created with a bootstrap token is approved at once and
    signed by the CA, as kube-controller-manager does for kubeadm's clusters; the certificate is the node's user."""
    api = kubeadm_api
    bootstrap = client.CertificatesV1Api(api_client(api, user_kubeconfig(api, tmp_path / "bootstrap.conf", {"token": BOOTSTRAP})))
    key, csr = tmp_path / "kubelet.key", tmp_path / "kubelet.csr"
    requests = {}
    for name, subject in (("node", "/O=system:nodes/CN=system:node:worker-1"), ("other", "/O=system:masters/CN=mallory")):
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{key}.{name}", "-out", f"{csr}.{name}",
                "-subj", subject)  # fmt: skip
        body = client.V1CertificateSigningRequest(
            metadata=client.V1ObjectMeta(generate_name="csr-"),
            spec=client.V1CertificateSigningRequestSpec(
                request=base64.b64encode(Path(f"{csr}.{name}").read_bytes()).decode(),
                signer_name=KUBELET_SIGNER,
                usages=["digital signature", "client auth"],
                username="system:admin",  # set by the server from the requester, whatever the body says
                groups=["system:masters"],
            ),
        )
        requests[name] = bootstrap.create_certificate_signing_request(body).metadata.name
    signed = bootstrap.read_certificate_signing_request(requests["node"])
    assert signed.spec.username == "system:bootstrap:abcdef"
    assert {"system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token", "system:authenticated"} == set(signed.spec.groups)
    assert [(c.type, c.status, c.reason) for c in signed.status.conditions] == [("Approved", "True", "AutoApproved")]
    certificate = x509.load_pem_x509_certificate(base64.b64decode(signed.status.certificate))
    certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(Path(api.ca_path).read_bytes()))
    assert certificate.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    assert list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:worker-1"
    pending = bootstrap.read_certificate_signing_request(requests["other"])  # not a node's subject: left to a person
    assert pending.status.conditions is None and pending.status.certificate is None
    assert bootstrap.list_certificate_signing_request().items  # system:node-bootstrapper: create, get, list, watch
    # The signed certificate authenticates: the kubelet registers its Node with it.
    pem = tmp_path / "kubelet-client-current.pem"
    pem.write_bytes(base64.b64decode(signed.status.certificate) + Path(f"{key}.node").read_bytes())
    node = client.CoreV1Api(api_client(api, user_kubeconfig(api, tmp_path / "kubelet.conf", {"client-certificate": str(pem), "client-key": str(pem)})))
    node.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="worker-1"), spec=client.V1NodeSpec(provider_id="aws:///us-west-2a/i-0abc")))
    assert api.get("nodes", "worker-1")["spec"] == {"providerID": "aws:///us-west-2a/i-0abc"}


def test_a_bootstrap_token_may_only_make_csrs_and_a_revoked_one_is_401(kubeadm_api, tmp_path):
    api = kubeadm_api
    core = client.CoreV1Api(api_client(api, user_kubeconfig(api, tmp_path / "bootstrap.conf", {"token": BOOTSTRAP})))
    with pytest.raises(ApiException) as raised:
        core.list_pod_for_all_namespaces()
    body = status_of(raised.value)
    assert (raised.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == 'pods is forbidden: User "system:bootstrap:abcdef" cannot list resource "pods" in API group "" at the cluster scope'
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_config_map("cluster-info", "kube-public")
    assert status_of(raised.value)["message"] == (
        'configmaps "cluster-info" is forbidden: User "system:bootstrap:abcdef" cannot get resource "configmaps" in API group "" in the namespace "kube-public"'
    )
    assert client.VersionApi(core.api_client).get_code().git_version == "v1.32.4"  # system:discovery, as any user
    # kubeadm token delete: the token is gone from the file, and from then on unknown (401), as an unknown token.
    Path(api.bootstrap_token_file).write_text("")
    with pytest.raises(ApiException) as raised:
        core.list_node()
    assert raised.value.status == 401 and status_of(raised.value)["reason"] == "Unauthorized"


def test_anonymous_requests_get_cluster_info_and_nothing_else(kubeadm_api):
    """system:anonymous (no credentials at all) may read kube-public's cluster-info (kubeadm's Role
    kubeadm:bootstrap-signer-clusterinfo) and the public info paths; anything else is 403, never 401."""
    api = kubeadm_api
    info = {"metadata": {"name": "cluster-info"}, "data": {"kubeconfig": "apiVersion: v1\n"}}
    api.create("configmaps", info, namespace="kube-public")
    code, body = anonymous_get(api, "/api/v1/namespaces/kube-public/configmaps/cluster-info")
    assert code == 200 and body["data"] == info["data"]
    assert anonymous_get(api, "/version")[0] == 200
    code, body = anonymous_get(api, "/api/v1/namespaces/default/pods")
    assert (code, body["reason"]) == (403, "Forbidden")
    assert body["message"] == 'pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default"'
    code, body = anonymous_get(api, "/api/v1/namespaces/kube-public/configmaps")  # the one object, not the list
    assert code == 403
    code, body = anonymous_get(api, "/apis")
    assert (code, body["message"]) == (403, 'forbidden: User "system:anonymous" cannot get path "/apis"')


# ----------------------------------------------------------------------------- the collection's readers against it


def test_collection_reads_demand_and_drains(api):
    api.add_node("leader", labels={"node-role.kubernetes.io/control-plane": ""})
    api.add_node(
        "ip-10-0-0-5.us-west-2.compute.internal",
        provider_id="aws:///us-west-2a/i-0123456789abcdef0",
        labels={"toil.cluster/pool": "spot"},
        allocatable={"cpu": "2", "memory": "7Gi", "ephemeral-storage": "40Gi"},
    )
    api.add_node("busy", provider_id="aws:///us-west-2a/i-0123456789abcdef1", labels={"toil.cluster/pool": "spot"})
    api.add_pod("toil-job", node="busy", requests={"cpu": "1", "memory": "1Gi"}, annotations=TOIL_SAFE_TO_EVICT, owner="Job/toil-job")
    for index in range(3):
        api.add_pod(f"align-{index}", requests={"cpu": "1", "memory": "1Gi"}, annotations=TOIL_SAFE_TO_EVICT, owner=f"Job/align-{index}")
    api.add_pod("waiting-for-scheduler", requests={"cpu": "1"}, unschedulable=False)  # not looked at yet: not demand
    core_v1, policy_v1 = kube_client.load_clients(api.kubeconfig)
    pods, nodes = kube_client.read_cluster(core_v1)
    groups, workers, idle = kube_demand.read_demand(pods, nodes, datetime.now(UTC))
    assert [(g.name, g.count, g.request.cpu) for g in groups] == [("default/align-0 (+2)", 3, 1000)]
    by_name = {w.name: w for w in workers}
    assert set(by_name) == {"ip-10-0-0-5.us-west-2.compute.internal", "busy"}
    assert by_name["busy"].instance_id == "i-0123456789abcdef1" and not by_name["busy"].safe_to_evict and by_name["busy"].requested.cpu == 1000
    assert by_name["ip-10-0-0-5.us-west-2.compute.internal"].pool == "spot" and list(idle) == ["ip-10-0-0-5.us-west-2.compute.internal"]
    assert sum(1 for r in api.requests if r.path in ("/api/v1/pods", "/api/v1/nodes") and r.query.get("limit") == "500") == 2
    (pod_listing,) = [r for r in api.requests if r.path == "/api/v1/pods"]
    assert pod_listing.query.get("fieldSelector") == "status.phase!=Succeeded,status.phase!=Failed"  # finished pods stay on the server

    with pytest.raises(kube_drain.DrainRefusedError, match="safe-to-evict"):
        kube_drain.drain_node(core_v1, "busy", 10, policy_v1=policy_v1)
    assert not api.get("nodes", "busy")["spec"].get("unschedulable")  # refused before any change
    result = kube_drain.drain_node(core_v1, "ip-10-0-0-5.us-west-2.compute.internal", 10, policy_v1=policy_v1)
    assert result["deleted"] and result["cordoned"]
    assert api.get("nodes", "ip-10-0-0-5.us-west-2.compute.internal") is None


def test_collection_drain_waits_for_a_pdb_then_uncordons(api):
    api.add_node("w1", provider_id="aws:///us-west-2a/i-0123456789abcdef2")
    api.add_pod("web-1", node="w1", labels={"app": "web"}, owner="ReplicaSet/web")
    api.create("poddisruptionbudgets", {"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})
    core_v1, policy_v1 = kube_client.load_clients(api.kubeconfig)
    clock = iter(range(0, 1000, 5))
    with pytest.raises(kube_drain.DrainError, match="PodDisruptionBudget default/web") as raised:
        kube_drain.drain_node(core_v1, "w1", 12, sleep=lambda _s: None, policy_v1=policy_v1, clock=lambda: next(clock))
    assert "was uncordoned" in str(raised.value)
    assert not api.get("nodes", "w1")["spec"].get("unschedulable") and api.get("pods", "web-1") is not None
    assert api.calls().count("POST /api/v1/namespaces/default/pods/web-1/eviction") >= 2


# ----------------------------------------------------------------------------- Toil's own Kubernetes batch system

TOIL_WORKFLOW = """
import sys
from toil.common import Toil
from toil.job import Job

def hello(job):
    return "hello"

if __name__ == "__main__":
    options = Job.Runner.getDefaultOptions(sys.argv[1])
    options.batchSystem = "kubernetes"
    options.clean = "always"
    with Toil(options) as toil:
        toil.start(Job.wrapJobFn(hello, cores=1, memory="1G", disk="1G"))
"""


@pytest.mark.toil
def test_toil_kubernetes_batch_system_submits_to_the_stand_in(api, tmp_path):
    """Toil 9.6's KubernetesBatchSystem (.venv-toil, with .venv's kubernetes client: .venv-toil has no kubernetes
    extra) submits its Job to the stand-in; the collection reads the Job's pod as one pending request."""
    extra = tmp_path / "kubernetes-client"
    extra.mkdir()
    site = Path(client.__file__).resolve().parents[2]
    for package in ("kubernetes", "durationpy", "websocket", "requests_oauthlib", "oauthlib"):
        if (site / package).exists():
            (extra / package).symlink_to(site / package)
    (tmp_path / "workflow.py").write_text(TOIL_WORKFLOW)
    env = {**os.environ, "KUBECONFIG": api.kubeconfig, "HOME": str(tmp_path), "PYTHONPATH": str(extra)}
    env.pop("TOIL_APPLIANCE_SELF", None)  # Toil's default appliance names its own commit, so Toil does not ask quay.io about it
    command = [str(TOIL_PYTHON), str(tmp_path / "workflow.py"), f"file:{tmp_path / 'jobstore'}"]
    toil = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not api.objects("pods") and toil.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        pods = api.objects("pods")
        assert pods, f"Toil created no pod: {api.calls()}"
        core_v1, _policy = kube_client.load_clients(api.kubeconfig)
        groups, _workers, _idle = kube_demand.read_demand(*kube_client.read_cluster(core_v1), datetime.now(UTC))
    finally:
        os.killpg(toil.pid, signal.SIGTERM)  # Toil shuts down: it deletes its Jobs (deletecollection, Background)
        output = toil.communicate(timeout=60)[0]
    assert "POST /apis/batch/v1/namespaces/default/jobs" in api.calls(), output[-3000:]
    (job,) = [r for r in api.requests if r.method == "POST"]
    assert job.status == 201
    assert pods[0]["metadata"]["annotations"] == TOIL_SAFE_TO_EVICT
    # One pending group: 1 core, and memory and disk of 10^9 bytes each plus Toil's 512 MiB.
    assert [(g.count, g.request.cpu, g.request.memory, g.request.disk) for g in groups] == [(1, 1000, 10**9 + 2**29, 10**9 + 2**29)]


def command_job(api, name, command, cpu="1", spot_not_allowed=False):
    """A Job whose pod runs ``command`` (as Toil's run ``_toil_contained_executor``), 1 CPU and 1 GiB requested."""
    resources = {"cpu": cpu, "memory": "1Gi"}
    spec = {"restartPolicy": "Never", "containers": [{"name": "runner-container", "image": "x", "command": command, "resources": {"requests": resources}}]}
    if spot_not_allowed:
        term = {"matchExpressions": [{"key": "eks.amazonaws.com/capacityType", "operator": "NotIn", "values": ["SPOT"]}]}
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    api.create("jobs", {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": {"spec": spec}}})
    return next(p["metadata"]["name"] for p in api.objects("pods") if p["metadata"]["labels"].get("job-name") == name)


def wait_for(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_pod_runner_schedules_runs_and_reports_as_the_scheduler_kubelet_and_job_controller(api):
    """harness.kube_pod_runner, which runs the real Toil's pods in test_cluster_week.py, against the stand-in: a pod
    goes only to a node it fits (requests against what runs there, required node affinity, no cordoned node, no
    control plane); its command runs; the pod and its Job end as the kubelet and the job controller report them."""
    allocatable = {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi", "pods": "110"}
    # Named so that each node the runner must refuse comes before the one it must take (it takes the first that fits).
    api.add_node("a-control-plane", labels={"node-role.kubernetes.io/control-plane": ""}, allocatable=allocatable)
    api.add_node("b-spot", labels={"eks.amazonaws.com/capacityType": "SPOT"}, allocatable=allocatable)
    api.add_node("c-cordoned", allocatable=allocatable, unschedulable=True)
    api.add_node("d-not-ready", allocatable=allocatable, ready=False)
    api.add_node("e-small", allocatable=allocatable)
    with PodRunner(api, path=[]) as runner:
        ok = command_job(api, "ok", ["sh", "-c", "echo done; sleep 1"], spot_not_allowed=True)
        fails = command_job(api, "fails", ["sh", "-c", "echo broken >&2; exit 3"], spot_not_allowed=True)
        waits = command_job(api, "waits", ["true"], spot_not_allowed=True)  # 1 more CPU: e-small is full until one ends
        wait_for(lambda: api.get("jobs", "ok")["status"].get("succeeded") == 1 and api.get("jobs", "fails")["status"].get("failed") == 1)
        wait_for(lambda: api.get("jobs", "waits")["status"].get("succeeded") == 1)  # ran once e-small had room
        assert [runner.placements[pod] for pod in (ok, fails, waits)] == ["e-small"] * 3
        pod = api.get("pods", fails)
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (pod["status"]["phase"], terminated["exitCode"], terminated["reason"]) == ("Failed", 3, "Error")
        failed = api.get("jobs", "fails")["status"]
        assert [(c["type"], c["reason"]) for c in failed["conditions"]] == [("Failed", "BackoffLimitExceeded")] and "completionTime" not in failed
        assert api.get("pods", ok)["status"]["phase"] == "Succeeded" and "completionTime" in api.get("jobs", "ok")["status"]
        logs = client.CoreV1Api(kube_config.new_client_from_config(api.kubeconfig)).read_namespaced_pod_log(fails, "default")
        assert logs == "broken\n"
        big = command_job(api, "big", ["true"], cpu="3")  # no node has 3 CPUs: it stays Pending, Unschedulable
        time.sleep(1)
        assert big not in runner.placements and api.get("pods", big)["status"]["phase"] == "Pending"
    assert runner.errors == []
