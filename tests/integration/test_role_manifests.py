"""The kubernetes and metrics_server roles' manifests, on this machine (no container host).

ansible-playbook (``-c local``) runs the metrics_server role itself with ``metrics_server_apply: false`` (its CA and
serving certificate made by community.crypto into a temp directory, its manifest rendered there; the apt task is
skipped by tag) and renders the kubernetes role's CSR approver and NVIDIA device plugin manifests. Every document must pass the pinned
Kubernetes version's schemas (kubernetes-validate); then what issue #16 asks of them is checked: the APIService
verifies metrics-server (caBundle, never insecureSkipTLSVerify) and a TLS client holding only that caBundle accepts
the serving certificate for ``metrics-server.kube-system.svc`` (the name the API server's aggregator checks); the
approver, on the host network, listens on loopback only and is probed there; the device plugin runs only on the nodes
the role labels as NVIDIA GPU nodes, pinned by digest.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import ssl
import stat
import threading
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from harness.paths import REPO
from harness.playbooks import PlaybookResult, run_ansible_playbook

K8S_VERSION = "1.35.2"
KUBERNETES = REPO / "roles" / "kubernetes"


def _play(out: Path) -> list[dict[str, Any]]:
    return [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [
                {
                    "role": "toil.cluster.metrics_server",
                    "metrics_server_apply": False,
                    "metrics_server_pki_dir": str(out / "pki"),
                    "metrics_server_manifest_dir": str(out / "manifests"),
                }
            ],
            "tasks": [
                {
                    "name": f"Render the kubernetes role's {manifest}",
                    "ansible.builtin.template": {
                        "src": str(KUBERNETES / "templates" / f"{manifest}.yml.j2"),
                        "dest": str(out / "manifests" / f"{manifest}.yml"),
                        "mode": "0644",
                    },
                    "vars": yaml.safe_load((KUBERNETES / "defaults" / "main.yml").read_text()),
                }
                for manifest in ("kubelet-csr-approver", "nvidia-device-plugin")
            ],
        }
    ]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[PlaybookResult]]:
    out = tmp_path_factory.mktemp("rendered")
    runs = [
        run_ansible_playbook(_play(out), dict(os.environ), tmp_path_factory.mktemp(run), args=["--skip-tags", "metrics_server_install"], timeout=180)
        for run in ("first", "second")
    ]
    return out, runs


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _by_kind(path: Path, kind: str) -> dict[str, Any]:
    return next(doc for doc in _docs(path) if doc["kind"] == kind)


@pytest.mark.parametrize("manifest", ["kubelet-csr-approver.yml", "metrics-server.yml", "nvidia-device-plugin.yml"])
def test_manifests_validate_against_the_pinned_kubernetes_schemas(rendered: tuple[Path, list[PlaybookResult]], manifest: str) -> None:
    docs = _docs(rendered[0] / "manifests" / manifest)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_certificate_is_made_once(rendered: tuple[Path, list[PlaybookResult]]) -> None:
    out, (first, second) = rendered
    assert first.stats["localhost"]["changed"] > 0
    assert second.stats["localhost"]["changed"] == 0, [e["task"]["name"] for e in second.tasks() if e["hosts"]["localhost"].get("changed")]
    pki = out / "pki"
    assert stat.S_IMODE(pki.stat().st_mode) == 0o700
    for key in ("ca.key", "tls.key"):
        assert stat.S_IMODE((pki / key).stat().st_mode) == 0o600


def test_the_apiservice_verifies_metrics_server(rendered: tuple[Path, list[PlaybookResult]]) -> None:
    out = rendered[0]
    api = _by_kind(out / "manifests" / "metrics-server.yml", "APIService")
    assert "insecureSkipTLSVerify" not in api["spec"]
    bundle = base64.b64decode(api["spec"]["caBundle"])
    assert bundle == (out / "pki" / "ca.crt").read_bytes()
    ca = x509.load_pem_x509_certificate(bundle)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    serving = x509.load_pem_x509_certificate((out / "pki" / "tls.crt").read_bytes())
    serving.verify_directly_issued_by(ca)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert f"{api['spec']['service']['name']}.{api['spec']['service']['namespace']}.svc" in names
    deployment = _by_kind(out / "manifests" / "metrics-server.yml", "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert "--tls-cert-file=/etc/metrics-server/tls/tls.crt" in args
    assert "--tls-private-key-file=/etc/metrics-server/tls/tls.key" in args
    assert "--kubelet-insecure-tls" not in args
    assert {"name": "tls", "secret": {"secretName": "metrics-server-tls", "defaultMode": 0o440}} in pod["volumes"]
    assert "PRIVATE KEY" not in (out / "manifests" / "metrics-server.yml").read_text()  # the key goes in a Secret only


def test_a_client_trusting_only_the_ca_bundle_accepts_metrics_server(rendered: tuple[Path, list[PlaybookResult]]) -> None:
    """What the aggregator does: TLS to the service with caBundle as the only root and the .svc name as server name."""
    out = rendered[0]
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(out / "pki" / "tls.crt", out / "pki" / "tls.key")
    client_ctx = ssl.create_default_context(cadata=(out / "pki" / "ca.crt").read_text())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _address = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

        for name, ok in (("metrics-server.kube-system.svc", True), ("kubernetes.default.svc", False)):
            thread = threading.Thread(target=serve, daemon=True)
            thread.start()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                if ok:
                    with client_ctx.wrap_socket(raw, server_hostname=name) as tls:
                        tls.sendall(b"x")
                else:
                    with pytest.raises(ssl.SSLCertVerificationError):
                        client_ctx.wrap_socket(raw, server_hostname=name)
            thread.join(timeout=10)


def test_the_csr_approver_listens_on_loopback_only(rendered: tuple[Path, list[PlaybookResult]]) -> None:
    """On the host network, ":8080" would be every address of the control plane, open to every node and pod."""
    deployment = _by_kind(rendered[0] / "manifests" / "kubelet-csr-approver.yml", "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    (container,) = pod["containers"]
    args = container["args"]
    flags = dict(zip(args[0::2], args[1::2], strict=False))
    assert flags["-metrics-bind-address"] == "127.0.0.1:8080"
    assert flags["-health-probe-bind-address"] == "127.0.0.1:8081"
    # The kubelet probes from the host's namespace, which the pod shares: the probe goes to loopback too.
    assert container["livenessProbe"]["httpGet"] == {"host": "127.0.0.1", "path": "/healthz", "port": 8081}
    assert {e["name"] for e in container["env"]} == {"PROVIDER_REGEX", "PROVIDER_IP_PREFIXES", "MAX_EXPIRATION_SEC"}  # ff's names of the flags


def test_the_nvidia_device_plugin_runs_on_gpu_nodes_only_pinned_by_digest(rendered: tuple[Path, list[PlaybookResult]]) -> None:
    """Its DaemonSet selects the label the role gives GPU nodes at registration (vars/main.yml), tolerates the GPU
    taint, and pulls one image digest, never a moving tag."""
    role_vars = yaml.safe_load((KUBERNETES / "vars" / "main.yml").read_text())
    assert "nvidia-device-plugin" in role_vars["_kubernetes_manifests"]  # the control plane renders and applies it
    daemonset = _by_kind(rendered[0] / "manifests" / "nvidia-device-plugin.yml", "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == role_vars["_kubernetes_nvidia_label"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    (container,) = pod["containers"]
    assert re.fullmatch(r"nvcr\.io/nvidia/k8s-device-plugin:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", container["image"]), container["image"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert container["volumeMounts"] == [{"name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins"}]
