"""The Kubernetes API of a stand-in host's control plane, from the test process (tests only).

On the podman test hosts, the kubeadm double's ``init`` serves harness.kube_api on the leader's address, port 6443,
with the cluster's CA; its admin.conf holds a client certificate of that CA. ``RemoteKube`` reads and writes that API
through the real ``kubernetes`` client with a copy of admin.conf, and offers the few test methods of
harness.kube_api.KubeApi that harness.kube_workloads uses (``create``, ``objects``, ``get``, ``update_status``,
``delete``, ``bind``), so the same workloads run in-process and on the hosts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubernetes import config
from kubernetes.client.exceptions import ApiException

PATHS = {  # plural -> (API prefix, namespaced)
    "nodes": ("/api/v1", False),
    "pods": ("/api/v1", True),
    "jobs": ("/apis/batch/v1", True),
    "leases": ("/apis/coordination.k8s.io/v1", True),
}


class RemoteKube:
    def __init__(self, admin_conf_text: str, path: Path) -> None:
        """``admin_conf_text``: the leader's /etc/kubernetes/admin.conf, kept at ``path`` (0600, as kubeadm writes it)."""
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(admin_conf_text)
        self.kubeconfig = str(path)
        self.client = config.new_client_from_config(config_file=self.kubeconfig)

    def _path(self, kind: str, name: str | None = None, namespace: str = "default", sub: str | None = None) -> str:
        prefix, namespaced = PATHS[kind]
        path = f"{prefix}/namespaces/{namespace}/{kind}" if namespaced else f"{prefix}/{kind}"
        return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    def _call(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        headers = {"Accept": "application/json", **({"Content-Type": "application/json"} if body is not None else {})}
        response = self.client.call_api(
            path, method, query_params=list((query or {}).items()), header_params=headers, body=body, _preload_content=False, _return_http_data_only=True
        )
        return json.loads(response.data or b"null")

    def create(self, kind: str, obj: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
        return self._call("POST", self._path(kind, namespace=namespace), body=obj)

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        prefix, namespaced = PATHS[kind]
        path = self._path(kind, namespace=namespace) if namespaced and namespace else f"{prefix}/{kind}"
        return self._call("GET", path)["items"]

    def get(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        try:
            return self._call("GET", self._path(kind, name, namespace))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def update_status(self, kind: str, name: str, status: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
        current = self._call("GET", self._path(kind, name, namespace))
        current["status"] = status
        return self._call("PUT", self._path(kind, name, namespace, "status"), body=current)

    def delete(self, kind: str, name: str, namespace: str = "default", propagation: str | None = None) -> Any:
        query = {"propagationPolicy": propagation} if propagation else None
        return self._call("DELETE", self._path(kind, name, namespace), query=query)

    def bind(self, pod: str, node: str, namespace: str = "default") -> Any:
        """What the scheduler does: POST the pod's binding to ``node``."""
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod}, "target": {"kind": "Node", "name": node}}
        return self._call("POST", self._path("pods", pod, namespace, "binding"), body=binding)

    def node_of(self, instance_id: str) -> dict[str, Any] | None:
        """The Node whose providerID names ``instance_id`` (as the kubelet registered it), or None."""
        found = [n for n in self.objects("nodes") if n["spec"].get("providerID", "").endswith(f"/{instance_id}")]
        return found[0] if found else None
