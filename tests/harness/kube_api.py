"""A Kubernetes API server stand-in for the TESTS (test harness only, never shipped): the real REST API over HTTPS.

It serves what this collection (plugins/module_utils/kube_*.py, scaler.py) and Toil's Kubernetes batch system
send, in the shapes the real kube-apiserver answers with, so that the real ``kubernetes`` Python client and
the real ``kubectl`` can drive it. Standard library only (http.server, ssl, json): this one file can be copied
into a Debian 12 host and run there with ``python3 kube_api.py serve ...``; the TLS certificate is made once at
start-up with the ``openssl`` command (skipped when certificate files are given).

Library use::

    from harness.kube_api import KubeApi

    with KubeApi() as api:                       # a threaded server on 127.0.0.1, a free port
        api.add_node("ip-10-0-0-5", provider_id="aws:///us-west-2a/i-0abc", allocatable={"cpu": "2", "memory": "7Gi"})
        api.add_pod("job-1", requests={"cpu": "1"})          # pending, marked Unschedulable
        subprocess.run(["kubectl", "get", "nodes"], env={**os.environ, "KUBECONFIG": api.kubeconfig})
        api.objects("pods"), api.calls()                     # what the API holds, "METHOD /path" of each request

Command line (also inside a host)::

    python3 -m harness.kube_api serve --port 6443 --token T --cert-dir D [--host 0.0.0.0] [--san IP-or-name ...]
        [--client-ca CA.crt] [--bootstrap-token-file TOKENS] [--signer-key CA.key]

prints the kubeconfig path (``D/kubeconfig``) and serves until SIGTERM/SIGINT. The kubeadm TEST DOUBLE
(tests/harness/hosts/kube-double/kubeadm) runs it so on the podman hosts' control plane: ``--cert-dir`` holding the
cluster's ca.crt and the API server's certificate, ``--client-ca`` the cluster CA, ``--bootstrap-token-file`` its live
tokens, ``--signer-key`` the CA's key; the kubelet double then bootstraps its certificate and registers its Node here.

What the real API does, and what this stand-in implements (sources: kubernetes.io "Kubernetes API Concepts",
the API reference, and kubernetes/kubernetes: staging/src/k8s.io/apiserver storage and errors,
pkg/registry/core/pod/storage/eviction.go, pkg/registry/*/strategy.go):

- Resources: core/v1 nodes (+status), pods (+status, +eviction, +binding, +log: the text a test set, default
  empty), namespaces (default, kube-system, kube-public, kube-node-lease exist), events and configmaps (stored as
  given); batch/v1 jobs (+status); policy/v1 poddisruptionbudgets (+status); coordination.k8s.io/v1 leases;
  apps/v1 daemonsets (stored only: ``kubectl drain`` looks up the DaemonSet of a DaemonSet pod);
  certificates.k8s.io/v1 certificatesigningrequests (cluster-scoped, +status, +approval; below).
  metrics.k8s.io/v1beta1 lists of pods and nodes, empty, as metrics-server answers before it has scraped a pod
  (no discovery entry). Anything else is 404, as for a group the server does not serve.
- Discovery: /version, /api, /apis, /api/v1, /apis/<group>[/<version>] in the legacy (non-aggregated) JSON form;
  /api/v1 lists ``pods/eviction`` with group policy, version v1, kind Eviction, which is how kubectl drain finds
  the Eviction API. OpenAPI documents are not served (404): kubectl get/drain/delete do not need them.
- Authentication (staging/src/k8s.io/apiserver/pkg/authentication, plugin/pkg/auth/authenticator/token/bootstrap):
  ``Authorization: Bearer <token>`` with the token given at start (user kubernetes-admin, group system:masters);
  with ``client_ca`` (``--client-ca``, kube-apiserver's --client-ca-file) a client certificate signed by that CA,
  the user its CN and its groups its O values; with ``bootstrap_token_file`` (``--bootstrap-token-file``: lines
  ``token<TAB>ttl<TAB>description``, the kubeadm double's /etc/kubernetes/.double-tokens-live, read again at each
  request, so a deleted token stops working at once) a live bootstrap token ``<id>.<secret>`` is user
  ``system:bootstrap:<id>`` in the groups system:bootstrappers and system:bootstrappers:kubeadm:default-node-token
  (the groups kubeadm gives its tokens; their TTLs are not enforced). A request with no credentials at all is
  ``system:anonymous`` (anonymous auth is on, as on kubeadm's clusters); a bearer token none of these knows is 401
  Unauthorized, as the real server answers an unknown token. A client certificate of another CA is refused by the
  TLS handshake (Python's ``CERT_OPTIONAL``), where the real server completes TLS and answers 401.
- Authorization: RBAC as kubeadm's clusters bind it, for these users only. A client certificate of group
  toil.cluster:interruption-handlers gets only what the kubernetes role's ClusterRole for the spot interruption
  handler grants (get and patch nodes, list pods, create pods/eviction; RBAC matches verb, API group and
  resource/subresource) and discovery. The token's user and every other client
  certificate's user may do anything (the real Node authorizer would restrict a node's certificate). Bootstrap token
  users get ClusterRole system:node-bootstrapper (create, get, list, watch certificatesigningrequests; kubeadm's
  ClusterRoleBinding kubeadm:kubelet-bootstrap) and, as every authenticated user, system:discovery (GET /api*,
  /apis*, /version, /healthz, /livez, /readyz, /openapi*). system:anonymous gets the cluster-info ConfigMap in
  kube-public (kubeadm's Role kubeadm:bootstrap-signer-clusterinfo) and system:public-info-viewer (GET /version,
  /healthz, /livez, /readyz). Anything else is 403 Forbidden in the real server's words (responsewriters'
  forbiddenMessage): ``pods is forbidden: User "system:bootstrap:abcdef" cannot list resource "pods" in API group ""
  at the cluster scope`` (or ``in the namespace "NS"``), ``forbidden: User "system:anonymous" cannot get path "/apis"``.
- Certificate signing requests: creation sets ``spec.username``/``groups``/``uid``/``extra`` from the requester (the
  body's are ignored, as the CSR strategy does), checks ``spec.request`` is a PEM CERTIFICATE REQUEST and resets the
  status. Then kube-controller-manager's controllers run at once, as if they had just synced (``KubeApi.csr_controllers``):
  csrapproving approves (condition Approved, reason AutoApproved) a request for signer
  kubernetes.io/kube-apiserver-client-kubelet whose subject is ``O=system:nodes, CN=system:node:<name>`` and usages
  those of a kubelet client, from a user kubeadm lets have it (its tokens' group, a node renewing its own, an admin);
  any other request stays pending until approved through ``/approval``. With ``signer_key`` (``--signer-key``, the key
  of the ``client_ca`` certificate) csrsigning signs an approved request of the kubelet-client and kube-apiserver-client
  signers with the openssl command (one year, clientAuth) into ``status.certificate``.
- Lists: sorted by namespace then name (etcd key order), their items without ``apiVersion``/``kind``. ``limit``
  gives at most that many items and, when more remain, ``metadata.continue`` (an opaque base64 token holding the
  revision of the first page and the key to start after; ``remainingItemCount`` when no selector is given, as
  the real server). Every page of a paged list
  is read at the first page's revision: this server keeps each object's history (MVCC, like etcd), so an object
  created, changed or deleted between pages does not show up in the later pages. A continue token older than
  the last compaction is refused with 410 Gone, reason Expired, the real message, and in the Status's
  ``metadata.continue`` a token for the (inconsistent) remainder read at the latest revision. The real server
  compacts every 5 minutes; here ``compaction_interval`` seconds (default 300) or ``KubeApi.compact()``.
- Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``, comma-ANDed.
  Field selectors (``=``, ``==``, ``!=``): ``metadata.name`` and ``metadata.namespace`` for every kind; pods
  ``spec.nodeName``, ``spec.restartPolicy``, ``spec.schedulerName``, ``spec.serviceAccountName``,
  ``spec.hostNetwork``, ``status.phase``, ``status.podIP``, ``status.nominatedNodeName``; nodes
  ``spec.unschedulable``; jobs ``status.successful``; events ``involvedObject.*``, ``reason``, ``type``,
  ``source``. Any other field is 400 BadRequest ``field label not supported: <field>``, as the real server.
- Writes: every write gets the next ``metadata.resourceVersion`` (a global increasing revision, a string);
  creation sets ``uid``, ``creationTimestamp`` and ``generation`` (bumped when ``spec`` changes, except pods,
  nodes and leases, which have none here). ``generateName`` is honoured. A duplicate name is 409 AlreadyExists;
  a name that is not a DNS subdomain is 422 Invalid; a namespace that does not exist is 404.
- Optimistic concurrency: PUT, PATCH and DELETE (``preconditions.resourceVersion``) carrying a
  ``metadata.resourceVersion`` other than the current one are 409 Conflict, reason Conflict, "Operation cannot
  be fulfilled on <resource> "<name>": the object has been modified; please apply your changes to the latest
  version and try again". A PUT without ``resourceVersion`` is an unconditional update, as for these kinds.
- PATCH: ``application/json-patch+json`` (RFC 6902: add, remove, replace, move, copy, test),
  ``application/merge-patch+json`` (RFC 7386) and ``application/strategic-merge-patch+json`` (as a merge patch
  whose lists of objects merge by their key: conditions and addresses by ``type``, containers by ``name``,
  ownerReferences by ``uid``, taints by ``key``; ``$patch`` directives are not read). Server-side apply
  (``application/apply-patch+yaml``) is 415 Unsupported Media Type.
- Status: a write to the main resource keeps the old ``status`` and a write to ``/status`` changes only
  ``status`` (pods, nodes, jobs, PDBs, namespaces). Creating a pod resets its status to Pending with its QoS
  class, a job's and a PDB's to empty; a node keeps the status it was created with (kubelets register so).
  A pod's containers get requests copied from their limits when they give none (API defaulting). A pod's spec
  may not change after creation except containers' images, activeDeadlineSeconds, tolerations and
  terminationGracePeriodSeconds (422 Invalid, as the real server); it is bound only through ``/binding``.
- Evictions (POST pods/NAME/eviction, a policy/v1 or v1beta1 Eviction): a pod that is Pending, Succeeded,
  Failed or being deleted is deleted without looking at budgets; a pod matched by more than one PDB is refused
  with 500; by one PDB whose ``disruptionsAllowed`` is 0, 429 TooManyRequests "Cannot evict pod as it would
  violate the pod's disruption budget." with a cause of reason DisruptionBudget "The disruption budget NAME
  needs N healthy pods and has M currently"; otherwise deleted, 201 with a Status Success. An unready pod is
  evicted when the budget is met without it. A PDB's null selector matches no pod, an empty one (``{}``) every
  pod of its namespace (the policy/v1 API reference). ``unhealthyPodEvictionPolicy`` is not read: its default,
  IfHealthyBudget, always applies.
  This server is also the disruption controller, instantly: a PDB's status (currentHealthy: its pods with a
  Ready condition True; desiredHealthy: minAvailable, or the matched pods less maxUnavailable, percentages
  rounded up; disruptionsAllowed) is computed on every read, as if the controller had just synced. Its
  expectedPods is the number of pods it matches, where the real controller reads their controller's scale.
- Deletion: objects go at once (no graceful termination, no ``deletionTimestamp``, no finalizers). Deleting a
  pod answers the pod, other kinds a Status Success. Deleting a job with propagationPolicy Background or
  Foreground deletes its pods (by ownerReferences uid); without one, batch/v1's default orphans them
  (their ownerReferences are dropped), as the garbage collector does. Deleting a namespace deletes what it
  holds; ``default`` and the kube-* namespaces may not be deleted (403 Forbidden, as the real server).
  DELETE on a collection (``deletecollection``) deletes the selected objects and answers their list.
- Jobs: with ``job_pods=True`` (the default) creating a job also creates its pod, as the job controller does:
  named ``<job>-<5 characters>``, the template's labels plus ``batch.kubernetes.io/controller-uid``,
  ``batch.kubernetes.io/job-name``, ``controller-uid`` and ``job-name``, owned (controller) by the job.
  Jobs never run: their pods stay Pending until a test changes them, and job status stays as a test sets it.
- Scheduling: there is no scheduler. A pod created unbound gets, when ``mark_unschedulable`` (default True),
  the condition the real scheduler writes when no node fits (PodScheduled False, reason Unschedulable), so that
  it reads as demand; tests bind pods with ``KubeApi.add_pod(node=...)`` or POST pods/NAME/binding.
- Leases: stored objects; leader election is the clients' (client-go updates a Lease with its resourceVersion and
  retries on 409), so only resourceVersion conflicts are enforced, as by the real server.
- kubectl's tables: a GET asking for ``as=Table`` gets a meta.k8s.io/v1 Table: nodes (NAME, STATUS, ROLES, AGE,
  VERSION; wide: INTERNAL-IP, EXTERNAL-IP, OS-IMAGE, KERNEL-VERSION, CONTAINER-RUNTIME), pods (NAME, READY,
  STATUS, RESTARTS, AGE; wide: IP, NODE, NOMINATED NODE, READINESS GATES), other kinds NAME and CREATED AT.

Not implemented (said so here, and answered so when asked): watches (``watch=true`` is 405: list only), server-side
apply, ``dryRun`` (400), ``resourceVersion``/``resourceVersionMatch`` on reads (ignored: every read is of the
latest revision), managedFields, admission (quotas, limit ranges, service accounts), RBAC objects (the rules above
are built in), the Node authorizer, the node lifecycle controller (a Node stays as its kubelet wrote it), the pod garbage
collector (pods of a deleted node stay), graceful deletion, protobuf and CBOR (JSON only), HTTP/2.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import copy
import datetime
import http.server
import json
import math
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import namedtuple

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "stand-in",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T00:00:00Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
CONFLICT = "the object has been modified; please apply your changes to the latest version and try again"
CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the "
    "continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with "
    "the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time "
    "the first chunk was returned and now may show up in the list."
)
EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


class Resource(namedtuple("Resource", "group version plural kind namespaced subresources short_names")):
    """One served resource type: ``subresources`` are the names after ``NAME/`` it accepts."""

    @property
    def group_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self):
        """What error messages name it by: ``pods``, ``leases.coordination.k8s.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = (
    Resource("", "v1", "namespaces", "Namespace", False, ("status",), ("ns",)),
    Resource("", "v1", "nodes", "Node", False, ("status",), ("no",)),
    Resource("", "v1", "pods", "Pod", True, ("status", "eviction", "binding", "log"), ("po",)),
    Resource("", "v1", "events", "Event", True, (), ("ev",)),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ("status",), ("ds",)),
    Resource("batch", "v1", "jobs", "Job", True, ("status",), ()),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("status",), ("pdb",)),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True, (), ()),
    Resource("", "v1", "configmaps", "ConfigMap", True, (), ("cm",)),
    Resource("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", False, ("status", "approval"), ("csr",)),
)
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_NAME = {}
for _r in RESOURCES:
    for _alias in (_r.plural, _r.kind, _r.kind.lower(), *_r.short_names):
        BY_NAME[_alias] = _r
HAS_STATUS = {r.plural for r in RESOURCES if "status" in r.subresources}
# Kinds whose spec changes bump metadata.generation here (the real server does so for most kinds with a spec).
GENERATION_KINDS = ("daemonsets", "jobs", "poddisruptionbudgets")
POD_MUTABLE_SPEC = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")
MERGE_KEYS = {"conditions": "type", "addresses": "type", "containers": "name", "initContainers": "name", "ownerReferences": "uid", "taints": "key"}

Request = namedtuple("Request", "method path query status")


class ApiError(Exception):
    """An error answered as a meta/v1 Status."""

    def __init__(self, code, reason, message, details=None, continue_token=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details
        self.continue_token = continue_token
        self.headers = headers or {}

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        if self.continue_token:
            body["metadata"]["continue"] = self.continue_token
        return body


def _details(resource, name):
    details = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    return details


def not_found(resource, name):
    return ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found', _details(resource, name))


def conflict(resource, name):
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource.qualified} "{name}": {CONFLICT}', _details(resource, name))


def invalid(resource, name, field, why):
    details = {**_details(resource, name), "kind": resource.kind, "causes": [{"reason": "FieldValueInvalid", "message": why, "field": field}]}
    return ApiError(422, "Invalid", f'{resource.kind} "{name}" is invalid: {field}: {why}', details)


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def now_rfc3339():
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_age(timestamp):
    """kubectl's AGE (apimachinery's duration.HumanDuration, coarsely)."""
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except (TypeError, ValueError):
        return "<unknown>"
    seconds = max(0, int((datetime.datetime.now(datetime.UTC) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


# ----------------------------------------------------------------------------- selectors


def _split_top(text):
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SET_REQ = re.compile(r"^([A-Za-z0-9./_-]+)\s+(in|notin)\s*\(([^)]*)\)$")
_EQ_REQ = re.compile(r"^([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$")
_EXISTS_REQ = re.compile(r"^(!?)\s*([A-Za-z0-9./_-]+)$")


def parse_label_selector(text):
    """A list of ``(key, operator, values)``; 400 BadRequest on a malformed one."""
    requirements = []
    for part in _split_top(text or ""):
        match = _SET_REQ.match(part)
        if match:
            requirements.append((match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",") if v.strip()}))
            continue
        match = _EQ_REQ.match(part)
        if match:
            requirements.append((match.group(1), "!=" if match.group(2) == "!=" else "=", {match.group(3)}))
            continue
        match = _EXISTS_REQ.match(part)
        if match:
            requirements.append((match.group(2), "!" if match.group(1) else "exists", set()))
            continue
        raise bad_request(f"unable to parse requirement: {part!r}")
    return requirements


def labels_match(requirements, labels):
    for key, operator, values in requirements:
        present = key in labels
        value = labels.get(key)
        if (
            (operator == "=" and value not in values)
            or (operator == "!=" and present and value in values)
            or (operator == "in" and value not in values)
            or (operator == "notin" and present and value in values)
            or (operator == "exists" and not present)
            or (operator == "!" and present)
        ):
            return False
    return True


def _get_path(obj, dotted):
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _field_text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


FIELDS = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "nodes": ("spec.unschedulable",),
    "jobs": ("status.successful",),
    "certificatesigningrequests": ("spec.signerName",),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
}


def parse_field_selector(resource, text):
    requirements = []
    allowed = ("metadata.name", "metadata.namespace", *FIELDS.get(resource.plural, ()))
    for part in _split_top(text or ""):
        match = re.match(r"^([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, operator, value = match.groups()
        if field not in allowed:
            raise bad_request(f"field label not supported: {field}")
        requirements.append((field, operator != "!=", value))
    return requirements


def fields_match(requirements, obj):
    for field, equal, value in requirements:
        # the field labels of jobs and events name other paths (JobToSelectableFields, EventToSelectableFields)
        actual = _get_path(obj, {"source": "source.component", "status.successful": "status.succeeded"}.get(field, field))
        if field == "status.successful" and actual is None:
            actual = 0
        if (_field_text(actual) == value) != equal:
            return False
    return True


# ----------------------------------------------------------------------------- patches


def merge_patch(target, patch, strategic=False):
    """RFC 7386; ``strategic`` also merges lists of objects by their key (MERGE_KEYS)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif strategic and key in MERGE_KEYS and isinstance(value, list) and isinstance(result.get(key), list):
            merge_key = MERGE_KEYS[key]
            merged = copy.deepcopy(result[key])
            for item in value:
                index = next(
                    (i for i, old in enumerate(merged) if isinstance(old, dict) and isinstance(item, dict) and old.get(merge_key) == item.get(merge_key)), None
                )
                if index is None:
                    merged.append(copy.deepcopy(item))
                else:
                    merged[index] = merge_patch(merged[index], item, strategic)
            result[key] = merged
        else:
            result[key] = merge_patch(result.get(key), value, strategic)
    return result


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts):
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    return doc


def json_patch(doc, operations):
    """RFC 6902."""
    doc = copy.deepcopy(doc)
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a list of operations")
    for operation in operations:
        op = operation
        try:
            kind, parts = op["op"], _pointer(op["path"])
            if kind == "test":
                if _walk(doc, parts) != op.get("value"):
                    raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: test operation on {op['path']} failed")
                continue
            if kind in ("move", "copy"):
                source = _pointer(op["from"])
                value = copy.deepcopy(_walk(doc, source))
                if kind == "move":
                    parent = _walk(doc, source[:-1])
                    del parent[int(source[-1]) if isinstance(parent, list) else source[-1]]
                kind, op = "add", {"value": value}
            parent, last = _walk(doc, parts[:-1]), parts[-1]
            if kind == "add":
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
                else:
                    parent[last] = copy.deepcopy(op["value"])
            elif kind == "replace":
                _walk(doc, parts)
                parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            else:
                raise bad_request(f"unknown JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as error:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {op!r}: {error!r}") from None
    return doc


# ----------------------------------------------------------------------------- the store


class Store:
    """Every object's history by revision, as etcd keeps it: reads at a revision, compaction, one lock."""

    def __init__(self, compaction_interval=300.0, job_pods=True, mark_unschedulable=True):
        self.lock = threading.RLock()
        self.revision = 1
        self.compacted = 0
        self.compaction_interval = compaction_interval
        self._last_compaction = time.monotonic()
        self.job_pods = job_pods
        self.mark_unschedulable = mark_unschedulable
        self.history = {r.plural: {} for r in RESOURCES}  # plural -> (namespace, name) -> [(revision, object or None)]
        self.logs = {}
        for name in SYSTEM_NAMESPACES:
            self.create(BY_NAME["namespaces"], None, {"metadata": {"name": name}})

    # reads

    def _maybe_compact(self):
        if self.compaction_interval and time.monotonic() - self._last_compaction >= self.compaction_interval:
            self.compact()

    def compact(self):
        """Forget history before the current revision: older continue tokens now get 410 Gone."""
        with self.lock:
            self.compacted = self.revision
            self._last_compaction = time.monotonic()
            for objects in self.history.values():
                for key in list(objects):
                    versions = objects[key]
                    del versions[:-1]
                    if versions[-1][1] is None:
                        del objects[key]

    def current(self, resource, namespace, name):
        versions = self.history[resource.plural].get((namespace or "", name))
        return copy.deepcopy(versions[-1][1]) if versions and versions[-1][1] is not None else None

    def at(self, resource, revision, after=None):
        """Every object of a kind at ``revision``, sorted by key; with ``after``, only those whose key follows it."""
        history = self.history[resource.plural]
        keys = sorted(history)
        found = []
        for key in keys[bisect.bisect_right(keys, after) :] if after is not None else keys:
            versions, obj = history[key], None
            for written, value in versions:
                if written > revision:
                    break
                obj = value
            if obj is not None:
                found.append((key, obj))
        return found

    def get(self, resource, namespace, name):
        obj = self.current(resource, namespace, name)
        if obj is None:
            raise not_found(resource, name)
        return self._served(resource, obj)

    def _served(self, resource, obj):
        if resource.plural == "poddisruptionbudgets":
            obj["status"] = self.pdb_status(obj)
        return obj

    def list(self, resource, namespace, query):
        with self.lock:
            self._maybe_compact()
            labels = parse_label_selector(query.get("labelSelector", ""))
            fields = parse_field_selector(resource, query.get("fieldSelector", ""))
            limit = int(query.get("limit") or 0)
            token = query.get("continue")
            revision, start = self.revision, None
            if token:
                try:
                    decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                    revision, start = int(decoded["rv"]), tuple(decoded["start"])
                except (ValueError, KeyError, TypeError):
                    raise bad_request("continue key is not valid: the continue token is not valid") from None
                if revision == -1:  # the inconsistent remainder a 410 offered
                    revision = self.revision
                elif revision < self.compacted:
                    raise ApiError(410, "Expired", CONTINUE_EXPIRED, continue_token=self._token(-1, start))
            items = []
            remaining = 0
            next_key = None
            for key, obj in self.at(resource, revision, after=start):
                if namespace and key[0] != namespace:
                    continue
                if not labels_match(labels, obj["metadata"].get("labels") or {}) or not fields_match(fields, obj):
                    continue
                if limit and len(items) >= limit:
                    remaining += 1
                    continue
                # A stored version is never changed in place (writes store deep copies): a shallow copy serves it.
                # List items carry no TypeMeta, as the real server's.
                item = self._served(resource, {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
                items.append(item)
                next_key = key
            metadata = {"resourceVersion": str(revision)}
            if remaining:
                metadata["continue"] = self._token(revision, next_key)
                if not labels and not fields:
                    metadata["remainingItemCount"] = remaining
            return {"kind": f"{resource.kind}List", "apiVersion": resource.group_version, "metadata": metadata, "items": items}

    @staticmethod
    def _token(revision, key):
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": list(key)}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    # writes

    def _write(self, resource, obj):
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self.history[resource.plural].setdefault(key, []).append((self.revision, copy.deepcopy(obj)))
        return obj

    def _remove(self, resource, namespace, name):
        self.revision += 1
        self.history[resource.plural][(namespace or "", name)].append((self.revision, None))

    def create(self, resource, namespace, obj, subresource_of=None):
        with self.lock:
            if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
                raise bad_request("the body is not an object")
            obj = copy.deepcopy(obj)
            metadata = obj.setdefault("metadata", {})
            if not metadata.get("name") and metadata.get("generateName"):
                metadata["name"] = metadata["generateName"] + "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _letter in range(5))
            name = metadata.get("name") or ""
            if not name:
                raise invalid(resource, name, "metadata.name", "Required value: name or generateName is required")
            if not DNS_SUBDOMAIN.match(name) or len(name) > 253:
                raise invalid(
                    resource,
                    name,
                    "metadata.name",
                    f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                    "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                )
            if resource.namespaced:
                if metadata.get("namespace") not in (None, "", namespace):
                    raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
                if self.current(BY_NAME["namespaces"], None, namespace) is None:
                    raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"})
                metadata["namespace"] = namespace
            else:
                metadata.pop("namespace", None)
            if self.current(resource, namespace, name) is not None:
                raise ApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists', _details(resource, name))
            obj["apiVersion"], obj["kind"] = resource.group_version, resource.kind
            metadata.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
            for dropped in ("resourceVersion", "deletionTimestamp", "managedFields"):
                metadata.pop(dropped, None)
            if resource.plural in GENERATION_KINDS:
                metadata["generation"] = 1
            self._prepare_create(resource, obj)
            self._write(resource, obj)
            if resource.plural == "jobs" and self.job_pods:
                self._job_pod(obj)
            return self._served(resource, copy.deepcopy(obj))

    def _prepare_create(self, resource, obj):
        plural = resource.plural
        if plural == "pods":
            spec = obj.setdefault("spec", {})
            containers = spec.get("containers")
            if not isinstance(containers, list) or not containers:
                raise invalid(resource, obj["metadata"]["name"], "spec.containers", "Required value")
            for index, container in enumerate(containers + (spec.get("initContainers") or [])):
                if not isinstance(container, dict) or not container.get("name") or not container.get("image"):
                    raise invalid(resource, obj["metadata"]["name"], f"spec.containers[{index}]", "Required value: name and image")
                resources = container.setdefault("resources", {})
                for key, value in (resources.get("limits") or {}).items():
                    resources.setdefault("requests", {}).setdefault(key, value)
                container.setdefault("imagePullPolicy", "IfNotPresent")
                container.setdefault("terminationMessagePath", "/dev/termination-log")
                container.setdefault("terminationMessagePolicy", "File")
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("priority", 0)
            spec.setdefault("enableServiceLinks", True)
            spec.setdefault("securityContext", {})
            obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}
            if not spec.get("nodeName") and self.mark_unschedulable:
                nodes = len(self.at(BY_NAME["nodes"], self.revision))
                obj["status"]["conditions"] = [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": f"0/{nodes} nodes are available: the stand-in API has no scheduler.",
                        "lastProbeTime": None,
                        "lastTransitionTime": now_rfc3339(),
                    }
                ]
        elif plural == "jobs":
            spec = obj.setdefault("spec", {})
            uid = obj["metadata"]["uid"]
            name = obj["metadata"]["name"]
            job_labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name, "controller-uid": uid, "job-name": name}
            template = spec.setdefault("template", {})
            template.setdefault("metadata", {}).setdefault("labels", {}).update(job_labels)
            spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
            for key, value in (("parallelism", 1), ("completions", 1), ("backoffLimit", 6), ("completionMode", "NonIndexed"), ("suspend", False)):
                spec.setdefault(key, value)
            obj["status"] = {}
        elif plural == "poddisruptionbudgets":
            obj["status"] = {}
        elif plural == "certificatesigningrequests":
            spec = obj.setdefault("spec", {})
            name = obj["metadata"]["name"]
            if not spec.get("signerName"):
                raise invalid(resource, name, "spec.signerName", "Required value")
            if not isinstance(spec.get("usages"), list) or not spec["usages"]:
                raise invalid(resource, name, "spec.usages", "Required value")
            if csr_pem(spec.get("request")) is None:
                raise invalid(resource, name, "spec.request", "Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST")
            obj["status"] = {}
        elif plural == "namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]

    def _job_pod(self, job):
        template = copy.deepcopy(job["spec"].get("template") or {})
        metadata = template.get("metadata") or {}
        pod = {
            "metadata": {
                "generateName": f"{job['metadata']['name']}-",
                "labels": metadata.get("labels") or {},
                "annotations": metadata.get("annotations") or {},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job["metadata"]["name"],
                        "uid": job["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template.get("spec") or {},
        }
        self.create(BY_NAME["pods"], job["metadata"]["namespace"], pod)

    def update(self, resource, namespace, name, new, subresource=None, expected_version=None):
        """Replace an object (PUT, PATCH's result); ``expected_version`` is the caller's resourceVersion."""
        with self.lock:
            old = self.current(resource, namespace, name)
            if old is None:
                raise not_found(resource, name)
            if not isinstance(new, dict) or not isinstance(new.get("metadata", {}), dict):
                raise bad_request("the body is not an object")
            new = copy.deepcopy(new)
            metadata = new.setdefault("metadata", {})
            if metadata.get("name", name) != name:
                raise bad_request(f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({name})")
            if resource.namespaced and metadata.get("namespace", namespace) != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            version = expected_version if expected_version is not None else metadata.get("resourceVersion")
            if version and version != old["metadata"]["resourceVersion"]:
                raise conflict(resource, name)
            if subresource == "status":
                result = copy.deepcopy(old)
                result["status"] = new.get("status") or {}
            elif subresource == "approval":  # a CSR's approval: its conditions only (the approval strategy)
                result = copy.deepcopy(old)
                result.setdefault("status", {})["conditions"] = (new.get("status") or {}).get("conditions") or []
            else:
                result = new
                if resource.plural in HAS_STATUS:
                    result["status"] = old.get("status", {})
                if resource.plural == "pods":
                    self._check_pod_spec(resource, name, old.get("spec") or {}, result.get("spec") or {})
                for kept in ("uid", "creationTimestamp", "namespace", "generation"):
                    if kept in old["metadata"]:
                        metadata[kept] = old["metadata"][kept]
                    else:
                        metadata.pop(kept, None)
                metadata["name"] = name
                if resource.plural in GENERATION_KINDS and result.get("spec") != old.get("spec"):
                    metadata["generation"] = old["metadata"].get("generation", 1) + 1
            result["apiVersion"], result["kind"] = resource.group_version, resource.kind
            result["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if result == old:
                return self._served(resource, old)  # a no-op write keeps the resourceVersion, as etcd's guaranteed update
            self._write(resource, result)
            return self._served(resource, copy.deepcopy(result))

    @staticmethod
    def _check_pod_spec(resource, name, old, new):
        def comparable(spec):
            spec = copy.deepcopy(spec)
            for key in POD_MUTABLE_SPEC:
                spec.pop(key, None)
            for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                if isinstance(container, dict):
                    container.pop("image", None)
            return spec

        if comparable(old) != comparable(new):
            raise invalid(
                resource,
                name,
                "spec",
                "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, "
                "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), "
                "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            )

    def delete(self, resource, namespace, name, options=None):
        with self.lock:
            old = self.current(resource, namespace, name)
            if old is None:
                raise not_found(resource, name)
            options = options or {}
            preconditions = options.get("preconditions") or {}
            if preconditions.get("uid") and preconditions["uid"] != old["metadata"]["uid"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource.qualified} "{name}": Precondition failed: UID in precondition: '
                    f"{preconditions['uid']}, UID in object meta: {old['metadata']['uid']}",
                    _details(resource, name),
                )
            if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(resource, name)
            if resource.plural == "namespaces" and name in SYSTEM_NAMESPACES:
                raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted', _details(resource, name))
            self._remove(resource, namespace, name)
            if resource.plural == "namespaces":
                for other in RESOURCES:
                    if other.namespaced:
                        for key, _obj in self.at(other, self.revision):
                            if key[0] == name:
                                self._remove(other, name, key[1])
            if resource.plural == "jobs":
                self._job_dependents(old, options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents", True) else "Background"))
            self.logs.pop((namespace, name), None)
            return old

    def _job_dependents(self, job, policy):
        pods = BY_NAME["pods"]
        uid = job["metadata"]["uid"]
        for (namespace, name), stored in self.at(pods, self.revision):
            references = stored["metadata"].get("ownerReferences") or []
            if not any(ref.get("uid") == uid for ref in references):
                continue
            if policy in ("Background", "Foreground"):
                self._remove(pods, namespace, name)
            else:
                orphan = copy.deepcopy(stored)
                orphan["metadata"]["ownerReferences"] = [ref for ref in references if ref.get("uid") != uid]
                self._write(pods, orphan)

    # pods and budgets

    def pdb_status(self, pdb):
        """The disruption controller's view, computed now."""
        namespace = pdb["metadata"]["namespace"]
        pods = list(self._pdb_pods(pdb, namespace))
        expected = len(pods)
        healthy = sum(1 for pod in pods if is_ready(pod))
        spec = pdb.get("spec") or {}
        if spec.get("minAvailable") is not None:
            desired = _scaled(spec["minAvailable"], expected)
        elif spec.get("maxUnavailable") is not None:
            desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
        else:
            desired = expected
        allowed = max(0, healthy - desired)
        return {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": "True" if allowed else "False",
                    "reason": "SufficientPods" if allowed else "InsufficientPods",
                    "message": "",
                    "observedGeneration": pdb["metadata"].get("generation", 1),
                    "lastTransitionTime": pdb["metadata"]["creationTimestamp"],
                }
            ],
        }

    def _pdb_pods(self, pdb, namespace):
        selector = (pdb.get("spec") or {}).get("selector")
        if selector is None:  # policy/v1: a null selector matches no pod, an empty one every pod of the namespace
            return []
        requirements = [(k, "=", {v}) for k, v in (selector.get("matchLabels") or {}).items()]
        for expression in selector.get("matchExpressions") or []:
            operator = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(expression.get("operator"))
            requirements.append((expression.get("key"), operator, set(expression.get("values") or ())))
        return [
            pod
            for key, pod in self.at(BY_NAME["pods"], self.revision)
            if key[0] == namespace and labels_match(requirements, pod["metadata"].get("labels") or {})
        ]

    def evict(self, namespace, name, eviction):
        pods = BY_NAME["pods"]
        with self.lock:
            if not isinstance(eviction, dict) or eviction.get("kind") not in (None, "Eviction"):
                raise bad_request(f"not a Eviction object: {type(eviction).__name__}")
            if (eviction.get("metadata") or {}).get("name") != name:
                raise bad_request("name in URL does not match name in Eviction object")
            pod = self.current(pods, namespace, name)
            if pod is None:
                raise not_found(pods, name)
            phase = (pod.get("status") or {}).get("phase")
            if phase not in ("Pending", "Succeeded", "Failed"):
                budgets = [
                    pdb for key, pdb in self.at(BY_NAME["poddisruptionbudgets"], self.revision) if key[0] == namespace and pod in self._pdb_pods(pdb, namespace)
                ]
                if len(budgets) > 1:
                    raise ApiError(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
                if budgets:
                    status = self.pdb_status(budgets[0])
                    unready_ok = not is_ready(pod) and status["currentHealthy"] >= status["desiredHealthy"] > 0
                    if not unready_ok and status["disruptionsAllowed"] == 0:
                        budget = budgets[0]["metadata"]["name"]
                        cause = f"The disruption budget {budget} needs {status['desiredHealthy']} healthy pods and has {status['currentHealthy']} currently"
                        raise ApiError(429, "TooManyRequests", EVICTION_REFUSED, {"causes": [{"reason": "DisruptionBudget", "message": cause}]})
            self.delete(pods, namespace, name, eviction.get("deleteOptions"))
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}

    def bind(self, namespace, name, binding):
        pods = BY_NAME["pods"]
        with self.lock:
            pod = self.current(pods, namespace, name)
            if pod is None:
                raise not_found(pods, name)
            target = (binding or {}).get("target") or {}
            if target.get("kind", "Node") != "Node" or not target.get("name"):
                raise invalid(BY_NAME["pods"], name, "target", "Required value: a Node")
            if pod["spec"].get("nodeName"):
                raise conflict(pods, name)  # the real registry: "pod ... is already assigned to node ..."
            pod["spec"]["nodeName"] = target["name"]
            conditions = [c for c in pod["status"].get("conditions") or [] if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now_rfc3339()})
            pod["status"]["conditions"] = conditions
            self._write(pods, pod)
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def _scaled(value, total):
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def is_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def qos_class(spec):
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    requests = [((c.get("resources") or {}).get("requests") or {}) for c in containers]
    limits = [((c.get("resources") or {}).get("limits") or {}) for c in containers]
    if not any(r.get(k) for r in requests for k in ("cpu", "memory")) and not any(lim.get(k) for lim in limits for k in ("cpu", "memory")):
        return "BestEffort"
    guaranteed = all(lim.get(k) and r.get(k) == lim.get(k) for r, lim in zip(requests, limits, strict=True) for k in ("cpu", "memory"))
    return "Guaranteed" if guaranteed else "Burstable"


# ----------------------------------------------------------------------------- tables (kubectl get)


def _column(name, kind="string", priority=0, fmt=""):
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


def node_row(node):
    labels = node["metadata"].get("labels") or {}
    status = node.get("status") or {}
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Ready" if ready == "True" else "NotReady" if ready else "Unknown"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted(key.split("/", 1)[1] for key in labels if key.startswith("node-role.kubernetes.io/")) or ["<none>"]
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [
        node["metadata"]["name"],
        state,
        ",".join(roles),
        human_age(node["metadata"].get("creationTimestamp")),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def pod_row(pod):
    status = pod.get("status") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(containers)}",
        status.get("reason") or status.get("phase") or "Unknown",
        restarts,
        human_age(pod["metadata"].get("creationTimestamp")),
        status.get("podIP") or "<none>",
        (pod.get("spec") or {}).get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


TABLES = {
    "nodes": (
        [_column("Name", fmt="name"), _column("Status"), _column("Roles"), _column("Age"), _column("Version")]
        + [_column(n, priority=1) for n in ("Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime")],
        node_row,
    ),
    "pods": (
        [_column("Name", fmt="name"), _column("Ready"), _column("Status"), _column("Restarts", "string"), _column("Age")]
        + [_column(n, priority=1) for n in ("IP", "Node", "Nominated Node", "Readiness Gates")],
        pod_row,
    ),
}


def as_table(resource, body, include_object):
    columns, row = TABLES.get(resource.plural, ([_column("Name", fmt="name"), _column("Created At", "date")], None))
    items = body.get("items", [body])
    rows = []
    for obj in items:
        cells = row(obj) if row else [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp")]
        entry = {"cells": cells}
        if include_object == "Object":
            entry["object"] = {"apiVersion": resource.group_version, "kind": resource.kind, **obj}
        elif include_object != "None":
            entry["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        rows.append(entry)
    metadata = {k: v for k, v in body.get("metadata", {}).items() if k in ("resourceVersion", "continue", "remainingItemCount")} if "items" in body else {}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": columns, "rows": rows}


# ----------------------------------------------------------------------------- discovery


def resource_list(group, version):
    resources = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update"]
        resources.append(
            {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind, "verbs": verbs, "shortNames": list(r.short_names)}
        )
        for sub in r.subresources:
            entry = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}
            if sub == "eviction":
                entry.update(kind="Eviction", group="policy", version="v1", verbs=["create"])
            elif sub == "binding":
                entry.update(kind="Binding", verbs=["create"])
            elif sub == "log":
                entry.update(kind="Pod", verbs=["get"])
            resources.append(entry)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def api_groups():
    groups = []
    for group in dict.fromkeys(r.group for r in RESOURCES if r.group):
        version = next(r.version for r in RESOURCES if r.group == group)
        gv = {"groupVersion": f"{group}/{version}", "version": version}
        groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return groups


# ----------------------------------------------------------------------------- authentication and authorization

User = namedtuple("User", "name groups")
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
ADMIN = User("kubernetes-admin", ("system:masters", "system:authenticated"))
BOOTSTRAP_TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
# The groups kubeadm gives its bootstrap tokens (auth-extra-groups of the token's Secret) and their bindings:
# system:node-bootstrapper (ClusterRoleBinding kubeadm:kubelet-bootstrap) and the auto-approval of node client
# certificates (kubeadm:node-autoapprove-bootstrap), cmd/kubeadm/app/phases/bootstraptoken/node/tlsbootstrap.go.
BOOTSTRAPPERS = "system:bootstrappers"
KUBEADM_NODE_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
# ClusterRole system:node-bootstrapper (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).
NODE_BOOTSTRAPPER_VERBS = ("create", "get", "list", "watch")
# ClusterRole system:public-info-viewer, bound to system:authenticated and system:unauthenticated.
PUBLIC_INFO_PATHS = ("/healthz", "/livez", "/readyz", "/version")
# ClusterRole system:discovery, bound to system:authenticated.
DISCOVERY_PATHS = re.compile(r"^/(api|apis)(/.*)?$|^/(healthz|livez|readyz|version|openapi(/.*)?)$")


def request_attributes(method, path, query):
    """What the authorizer is asked (apiserver's RequestInfoFactory): ``(verb, group, resource, subresource, namespace,
    name)`` for a resource request, ``(verb, path)`` for any other path."""
    parts = [p for p in path.strip("/").split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return ({"GET": "get", "HEAD": "get", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower()), path)
    namespace = None
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    if method in ("GET", "HEAD"):
        verb = "get" if name else "watch" if query.get("watch") in ("true", "1") else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())
    return (verb, group, resource, sub, namespace, name)


def forbidden(user, attributes):
    """403 as the real server words it (apiserver's responsewriters.forbiddenMessage and errors.NewForbidden)."""
    if len(attributes) == 2:
        verb, path = attributes
        return ApiError(403, "Forbidden", f'forbidden: User "{user.name}" cannot {verb} path "{path}"', {})
    verb, group, resource, sub, namespace, name = attributes
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    what = f"{resource}/{sub}" if sub else resource
    reason = f'User "{user.name}" cannot {verb} resource "{what}" in API group "{group}" {scope}'
    qualified = f"{resource}.{group}" if group else resource
    details = {"kind": resource, **({"group": group} if group else {}), **({"name": name} if name else {})}
    return ApiError(403, "Forbidden", f'{qualified} "{name}" is forbidden: {reason}' if name else f"{qualified} is forbidden: {reason}", details)


# The role toil.cluster.kubernetes' ClusterRole toil.cluster:interruption-handler, bound to this group
# (templates/interruption-handler-rbac.yml.j2; a unit test keeps the two equal): (verbs, API group, resource).
INTERRUPTION_HANDLERS = "toil.cluster:interruption-handlers"
INTERRUPTION_HANDLER_RULES = ((("get", "patch"), "", "nodes"), (("list",), "", "pods"), (("create",), "", "pods/eviction"))


def _rbac_allows(rules, verb, group, resource, sub):
    """An RBAC PolicyRule match (plugin/pkg/auth/authorizer/rbac: verb, API group and resource[/subresource])."""
    what = f"{resource}/{sub}" if sub else resource
    return any(verb in verbs and group == rule_group and what == rule_resource for verbs, rule_group, rule_resource in rules)


def authorize(user, attributes):
    """RBAC as kubeadm's clusters bind it, for the users this server knows; raises 403 Forbidden."""
    if INTERRUPTION_HANDLERS in user.groups and user is not ANONYMOUS:
        # Only its ClusterRole, as RBAC grants it, and system:discovery / system:public-info-viewer as to any user.
        if len(attributes) == 2:
            verb, path = attributes
            if verb == "get" and (path in PUBLIC_INFO_PATHS or DISCOVERY_PATHS.match(path)):
                return
        elif _rbac_allows(INTERRUPTION_HANDLER_RULES, *attributes[:4]):
            return
        raise forbidden(user, attributes)
    if user is not ANONYMOUS and BOOTSTRAPPERS not in user.groups:
        return  # the stand-in's token and every other client certificate: everything (as cluster-admin)
    if len(attributes) == 2:
        verb, path = attributes
        if verb == "get" and (path in PUBLIC_INFO_PATHS or (user is not ANONYMOUS and DISCOVERY_PATHS.match(path))):
            return
        raise forbidden(user, attributes)
    verb, group, resource, sub, namespace, name = attributes
    # Role kubeadm:bootstrap-signer-clusterinfo in kube-public (cmd/kubeadm/app/phases/bootstraptoken/clusterinfo).
    cluster_info = (verb, group, resource, sub, namespace, name) == ("get", "", "configmaps", None, "kube-public", "cluster-info")
    node_bootstrapper = group == "certificates.k8s.io" and resource == "certificatesigningrequests" and sub is None and verb in NODE_BOOTSTRAPPER_VERBS
    if (user is ANONYMOUS and cluster_info) or (BOOTSTRAPPERS in user.groups and node_bootstrapper):
        return
    raise forbidden(user, attributes)


def read_bootstrap_tokens(path):
    """The live bootstrap tokens of the kubeadm double's file (``token<TAB>ttl<TAB>description`` lines)."""
    if not path:
        return set()
    try:
        with open(path, encoding="utf-8") as handle:
            return {line.split("\t", 1)[0].strip() for line in handle if line.strip()}
    except FileNotFoundError:
        return set()


def certificate_user(certificate):
    """The user of a verified client certificate, as the x509 authenticator: CN the name, each O a group."""
    attributes = [item for rdn in (certificate or {}).get("subject", ()) for item in rdn]
    common = [value for key, value in attributes if key == "commonName"]
    if not common:
        return None
    return User(common[0], (*(value for key, value in attributes if key == "organizationName"), "system:authenticated"))


# ----------------------------------------------------------------------------- certificate signing requests

KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CLIENT_SIGNERS = (KUBELET_CLIENT_SIGNER, "kubernetes.io/kube-apiserver-client")
KUBELET_CLIENT_USAGES = {"digital signature", "key encipherment", "client auth"}


def csr_pem(request):
    """The PEM text of a CSR's ``spec.request`` (base64 in JSON), or None when it is not a PEM certificate request."""
    try:
        pem = base64.b64decode(request or "", validate=True).decode("ascii")
    except (ValueError, TypeError):
        return None
    return pem if "-----BEGIN CERTIFICATE REQUEST-----" in pem else None


def _openssl(*args, stdin=None):
    try:
        return subprocess.run(["openssl", *args], input=stdin, check=True, capture_output=True, text=True, timeout=60).stdout
    except FileNotFoundError:
        raise RuntimeError("the openssl command is needed to sign certificate requests") from None


def csr_subject(pem):
    """``(CN, [O, ...])`` of a PEM certificate request whose self-signature verifies, else None."""
    try:
        _openssl("req", "-noout", "-verify", stdin=pem)
        text = _openssl("req", "-noout", "-subject", "-nameopt", "sep_multiline,sname,utf8,esc_ctrl", stdin=pem)
    except subprocess.CalledProcessError:
        return None
    pairs = [line.strip().split("=", 1) for line in text.splitlines()[1:] if "=" in line]
    common = [value for key, value in pairs if key == "CN"]
    return (common[0] if common else "", [value for key, value in pairs if key == "O"])


def sign_csr(pem, ca_cert, ca_key, usages, days=365):
    """csrsigning's local signer: the certificate (PEM) for a request, with the openssl command."""
    key_usage = ["digitalSignature"] + (["keyEncipherment"] if "key encipherment" in usages else [])
    extended = [u for u, name in (("clientAuth", "client auth"), ("serverAuth", "server auth")) if name in usages]
    with tempfile.TemporaryDirectory(prefix="kube-api-csr-") as work:
        request, ext, out = (os.path.join(work, n) for n in ("req.pem", "ext.cnf", "crt.pem"))
        with open(request, "w", encoding="ascii") as handle:
            handle.write(pem)
        with open(ext, "w", encoding="ascii") as handle:
            handle.write(f"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,{','.join(key_usage)}\nauthorityKeyIdentifier=keyid\n")
            if extended:
                handle.write(f"extendedKeyUsage={','.join(extended)}\n")
        _openssl("x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial", str(secrets.randbits(63)), "-days", str(days),
                 "-extfile", ext, "-out", out)  # fmt: skip
        with open(out, encoding="ascii") as handle:
            return handle.read()


def client_certificate(certificates, directory, subject):
    """A key and a certificate for ``subject`` (``/O=.../CN=...``) signed by the CA of ``certificates``
    (``make_certificates``' paths; its ``ca.key`` beside ``ca.crt``): ``(crt, key)`` paths in ``directory``."""
    ca = certificates[0]
    key, csr, crt = (os.path.join(directory, f"client.{ext}") for ext in ("key", "csr", "crt"))
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
    ext = os.path.join(directory, "client.ext")
    with open(ext, "w", encoding="ascii") as handle:
        handle.write("extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", os.path.join(os.path.dirname(ca), "ca.key"), "-set_serial", "7", "-days", "1",
             "-extfile", ext, "-out", crt)  # fmt: skip
    return crt, key


# ----------------------------------------------------------------------------- HTTP


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-stand-in"

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        if self.server.api.verbose:
            super().log_message(format, *args)

    def _send(self, code, body, content_type="application/json", headers=None):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, path, query):
        """``(code, body, content type, headers)``."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            self.user = self._authenticate()
            authorize(self.user, request_attributes(self.command, path.rstrip("/") or "/", query))
            result = self._route(path.rstrip("/") or "/", query, raw)
            if result[0] == "text":
                return 200, result[1], "text/plain", {}
            return result[0], result[1], "application/json", {}
        except ApiError as error:
            return error.code, error.status(), "application/json", error.headers
        except Exception as error:  # a bug here must answer, not hang the client
            return 500, ApiError(500, "InternalError", f"stand-in error: {error!r}").status(), "application/json", {}

    def _authenticate(self):
        """The union of kube-apiserver's authenticators this stand-in has: a client certificate the TLS handshake
        verified against --client-ca, the stand-in's bearer token, a live bootstrap token; no credentials at all is
        system:anonymous; a bearer token none of them knows is 401."""
        api = self.server.api
        user = certificate_user(self.connection.getpeercert()) if api.client_ca else None
        if user is not None:
            return user
        header = self.headers.get("Authorization")
        if header is None:
            return ANONYMOUS
        scheme, _space, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            if token == api.token:
                return ADMIN
            match = BOOTSTRAP_TOKEN.match(token)
            if match and token in read_bootstrap_tokens(api.bootstrap_token_file):
                return User(f"system:bootstrap:{match.group(1)}", (BOOTSTRAPPERS, KUBEADM_NODE_TOKEN_GROUP, "system:authenticated"))
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def _handle(self):
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        code, body, content_type, headers = self._answer(parsed.path, query)
        with self.server.api.lock:  # logged before the answer leaves, so a client that has it finds it logged
            self.server.api.requests.append(Request(self.command, parsed.path, query, code))
        self._send(code, body, content_type, headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _body(self, raw):
        try:
            return json.loads(raw or b"{}")
        except ValueError as error:
            raise bad_request(f"the body of the request was in an unknown format: {error}") from None

    def _delete_options(self, query, raw):
        """DeleteOptions from the body, or from the query (the Python client sends ``propagationPolicy`` there)."""
        options = self._body(raw)
        if query.get("propagationPolicy"):
            options.setdefault("propagationPolicy", query["propagationPolicy"])
        if query.get("orphanDependents"):
            options.setdefault("orphanDependents", query["orphanDependents"] == "true")
        return options

    def _route(self, path, query, raw):
        store = self.server.api.store
        method = self.command
        if query.get("watch") in ("true", "1"):
            raise ApiError(405, "MethodNotAllowed", "watch is not implemented by this stand-in API server (list only)")
        if query.get("dryRun"):
            raise bad_request("dryRun is not implemented by this stand-in API server")
        if path in ("/healthz", "/readyz", "/livez"):
            return ("text", "ok")
        if path == "/version":
            return 200, SERVER_VERSION
        if path == "/api":
            address = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}
        if path == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": api_groups()}
        parts = path.strip("/").split("/")
        if parts[:3] == ["apis", "metrics.k8s.io", "v1beta1"] and method == "GET" and parts[-1] in ("pods", "nodes"):
            # The clusters this collection makes run metrics-server (role metrics_server), which answers these lists
            # through the aggregator; it has no usage for a pod it has not scraped yet, the case of every pod here.
            # Toil 9.6 checks a pod for OOM this way and stops on a 404 from kubernetes client 37 (NotFoundException).
            kind = "PodMetricsList" if parts[-1] == "pods" else "NodeMetricsList"
            return 200, {"kind": kind, "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": []}
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            group = parts[1]
            if len(parts) == 2:
                found = [g for g in api_groups() if g["name"] == group]
                if not found:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return 200, {"kind": "APIGroup", "apiVersion": "v1", **found[0]}
            version, rest = parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not any((r.group, r.version) == (group, version) for r in RESOURCES):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return 200, resource_list(group, version)
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in BY_PATH:
            namespace, rest = rest[1], rest[2:]
        resource = BY_PATH.get((group, version, rest[0]))
        if resource is None or (namespace and not resource.namespaced) or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub and sub not in resource.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if resource.namespaced and name and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        table = "as=Table" in (self.headers.get("Accept") or "")
        if name is None:
            if method == "GET":
                body = store.list(resource, namespace, query)
                return 200, as_table(resource, body, query.get("includeObject")) if table else body
            if method == "POST":
                if resource.namespaced and namespace is None:
                    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
                body = self._body(raw)
                if resource.plural == "certificatesigningrequests" and isinstance(body, dict) and isinstance(body.get("spec"), dict):
                    # The CSR strategy's PrepareForCreate: who asked, from the request's user, never from the body.
                    body["spec"].update(username=self.user.name, groups=list(self.user.groups), uid="", extra={})
                created = store.create(resource, namespace, body)
                if resource.plural == "certificatesigningrequests":
                    self.server.api.csr_controllers(created["metadata"]["name"])
                return 201, created
            if method == "DELETE":
                body = store.list(resource, namespace, query)
                options = self._delete_options(query, raw)
                for item in body["items"]:
                    store.delete(resource, item["metadata"].get("namespace"), item["metadata"]["name"], options)
                return 200, body
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if sub == "eviction" and method == "POST":
            return 201, store.evict(namespace, name, self._body(raw))
        if sub == "binding" and method == "POST":
            return 201, store.bind(namespace, name, self._body(raw))
        if sub == "log" and method == "GET":
            store.get(resource, namespace, name)
            return ("text", store.logs.get((namespace, name), ""))
        if method == "GET":
            body = store.get(resource, namespace, name)
            return 200, as_table(resource, body, query.get("includeObject")) if table else body
        if method in ("PUT", "PATCH"):
            if method == "PUT":
                updated = store.update(resource, namespace, name, self._body(raw), sub)
            else:
                updated = self._patch(store, resource, namespace, name, sub, raw)
            if sub == "approval":  # the signer signs what was just approved
                self.server.api.csr_controllers(name)
            return 200, updated
        if method == "DELETE" and sub is None:
            old = store.delete(resource, namespace, name, self._delete_options(query, raw))
            if resource.plural == "pods":
                return 200, old
            return 200, {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {**_details(resource, name), "uid": old["metadata"]["uid"]},
            }
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _patch(self, store, resource, namespace, name, sub, raw):
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        body = self._body(raw)
        with store.lock:
            current = store.current(resource, namespace, name)
            if current is None:
                raise not_found(resource, name)
            if content_type == "application/json-patch+json":
                patched = json_patch(current, body)
            elif content_type == "application/merge-patch+json":
                patched = merge_patch(current, body)
            elif content_type == "application/strategic-merge-patch+json":
                patched = merge_patch(current, body, strategic=True)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (not {content_type!r})",
                )
            expected = None
            if isinstance(body, dict):
                expected = (body.get("metadata") or {}).get("resourceVersion")
            patched.setdefault("metadata", {})["resourceVersion"] = expected or current["metadata"]["resourceVersion"]
            return store.update(resource, namespace, name, patched, sub)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# ----------------------------------------------------------------------------- certificates


def make_certificates(directory, sans=("127.0.0.1", "localhost")):
    """A CA and a server certificate for ``sans``, with the openssl command: ``(ca.crt, server.crt, server.key)`` paths."""
    os.makedirs(directory, exist_ok=True)
    paths = [os.path.join(directory, n) for n in ("ca.crt", "server.crt", "server.key")]
    if all(os.path.exists(p) for p in paths):
        return tuple(paths)
    ca_key, csr, ext = (os.path.join(directory, n) for n in ("ca.key", "server.csr", "server.ext"))
    names = ",".join(f"IP:{s}" if re.match(r"^[0-9.]+$|:", s) else f"DNS:{s}" for s in dict.fromkeys(sans))
    with open(ext, "w", encoding="utf-8") as out:
        out.write(
            f"subjectAltName={names}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
        )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", paths[0], "-days", "7", "-subj", "/CN=kube-api-stand-in-ca",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", *ec, "-keyout", paths[2], "-out", csr, "-subj", "/CN=kube-apiserver"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", paths[0], "-CAkey", ca_key, "-set_serial", str(secrets.randbits(63)), "-days", "7",
         "-out", paths[1], "-extfile", ext],
    ]  # fmt: skip
    for command in commands:
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=60)
        except FileNotFoundError:
            raise RuntimeError("the openssl command is needed to make the stand-in API server's certificate (or give certificate files)") from None
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"{' '.join(command[:3])} failed: {error.stderr.decode(errors='replace')}") from None
    for leftover in (csr, ext):
        os.unlink(leftover)
    os.chmod(paths[2], 0o600)
    os.chmod(ca_key, 0o600)
    return tuple(paths)


def sign_client_certificate(directory, user, group):
    """A client certificate of make_certificates' CA in ``directory`` for ``user`` in ``group`` (CN, O), as
    ``kubeadm kubeconfig user --client-name USER --org GROUP`` makes one: ``(client.crt, client.key)`` paths there."""
    key, csr, crt, ext = (os.path.join(directory, n) for n in ("client.key", "client.csr", "client.crt", "client.ext"))
    with open(ext, "w", encoding="utf-8") as out:
        out.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(["openssl", "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", f"/O={group}/CN={user}"], check=True, capture_output=True, timeout=60)
    ca, ca_key = os.path.join(directory, "ca.crt"), os.path.join(directory, "ca.key")
    sign = ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", str(secrets.randbits(63)), "-days", "7", "-out", crt]
    subprocess.run([*sign, "-extfile", ext], check=True, capture_output=True, timeout=60)
    for leftover in (csr, ext):
        os.unlink(leftover)
    os.chmod(key, 0o600)
    return crt, key


# ----------------------------------------------------------------------------- the test API


class KubeApi:
    """The stand-in server: ``with KubeApi() as api:`` (or ``start()``/``stop()``)."""

    def __init__(self, host="127.0.0.1", port=0, token=None, cert_dir=None, certificates=None, sans=(), compaction_interval=300.0,
                 job_pods=True, mark_unschedulable=True, verbose=False, client_ca=None, bootstrap_token_file=None, signer_key=None):  # fmt: skip
        if signer_key and not client_ca:
            raise ValueError("signer_key signs with the CA of client_ca: give both")
        self.host, self.port = host, port
        self.token = token or secrets.token_urlsafe(24)
        self.client_ca, self.bootstrap_token_file, self.signer_key = client_ca, bootstrap_token_file, signer_key
        self._own_dir = None
        if cert_dir is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="kube-api-")
            cert_dir = self._own_dir.name
        self.cert_dir = cert_dir
        self._certificates = certificates
        self.sans = ("127.0.0.1", "localhost", *sans) if host in ("127.0.0.1", "0.0.0.0", "localhost") else (host, *sans)
        self.store = Store(compaction_interval, job_pods, mark_unschedulable)
        self.lock = threading.Lock()
        self.requests = []
        self.verbose = verbose
        self._server = None
        self._thread = None
        self.kubeconfig = None

    def start(self):
        ca, cert, key = self._certificates or make_certificates(self.cert_dir, self.sans)
        self.ca_path = ca
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        if self.client_ca:  # kube-apiserver's --client-ca-file: a client certificate is asked for, and verified when given
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(self.client_ca)
        self._server = _Server((self.host, self.port), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.api = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="kube-api", daemon=True)
        self._thread.start()
        self.kubeconfig = self.write_kubeconfig(os.path.join(self.cert_dir, "kubeconfig"))
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._own_dir is not None:
            self._own_dir.cleanup()
            self._own_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        host = "127.0.0.1" if self.host == "0.0.0.0" else self.host
        return f"https://{host}:{self.port}"

    def kubeconfig_text(self, server=None, namespace="default"):
        """A kubeconfig (JSON, which is YAML) with the CA's data and the token."""
        with open(self.ca_path, "rb") as handle:
            ca_data = base64.b64encode(handle.read()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": server or self.url, "certificate-authority-data": ca_data}}],
            "users": [{"name": "stand-in-admin", "user": {"token": self.token}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "stand-in-admin", "namespace": namespace}}],
            "current-context": "stand-in",
            "preferences": {},
        }
        return json.dumps(config, indent=1) + "\n"

    def write_kubeconfig(self, path, server=None, namespace="default"):
        """Write a kubeconfig (mode 0600, like kubeadm's admin.conf) and return its path."""
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(self.kubeconfig_text(server, namespace))
        return path

    # objects, as the API holds them

    @staticmethod
    def resource(kind):
        try:
            return BY_NAME[kind]
        except KeyError:
            raise ValueError(f"the stand-in does not serve {kind!r}: one of {sorted({r.plural for r in RESOURCES})}") from None

    def objects(self, kind, namespace=None):
        """Every object of a kind (``pods``, ``Pod``, ``nodes``...), as the API would list them now."""
        with self.store.lock:
            resource = self.resource(kind)
            return [
                self.store._served(resource, copy.deepcopy(obj)) for key, obj in self.store.at(resource, self.store.revision) if namespace in (None, key[0])
            ]

    def get(self, kind, name, namespace="default"):
        """One object, or None."""
        resource = self.resource(kind)
        obj = self.store.current(resource, namespace if resource.namespaced else None, name)
        return None if obj is None else self.store._served(resource, obj)

    def create(self, kind, obj, namespace="default"):
        """Create as a POST would (defaults, status resets)."""
        resource = self.resource(kind)
        return self.store.create(resource, namespace if resource.namespaced else None, obj)

    def update_status(self, kind, name, status, namespace="default"):
        """Write ``status`` as its controller would (kubelet for pods and nodes, the job controller for jobs)."""
        resource = self.resource(kind)
        ns = namespace if resource.namespaced else None
        with self.store.lock:
            current = self.store.current(resource, ns, name)
            if current is None:
                raise not_found(resource, name)
            current["status"] = status
            return self.store.update(resource, ns, name, current, "status")

    def delete(self, kind, name, namespace="default", propagation=None):
        resource = self.resource(kind)
        return self.store.delete(resource, namespace if resource.namespaced else None, name, {"propagationPolicy": propagation} if propagation else None)

    def csr_controllers(self, name):
        """kube-controller-manager's csrapproving and csrsigning controllers, run once on a CSR as if they had just synced.

        csrapproving (pkg/controller/certificates/approver/sarapprove.go): a request for signer
        kubernetes.io/kube-apiserver-client-kubelet whose subject is ``O=system:nodes, CN=system:node:<name>`` (no other O)
        and whose usages are exactly {digital signature, client auth} or {key encipherment, digital signature, client
        auth} is approved (Approved, AutoApproved) when its requester may create the ``nodeclient`` subresource
        (kubeadm's kubeadm:node-autoapprove-bootstrap binds its tokens' group to that ClusterRole; a node renewing its
        own certificate, ``selfnodeclient``, through kubeadm:node-autoapprove-certificate-rotation; cluster-admin
        anything). csrsigning (pkg/controller/certificates/signer): with a signer key, an approved request of a client
        signer is signed by the CA for a year into ``status.certificate``; a kubelet client request whose subject is
        not a node's gets the condition Failed, SignerValidationFailure."""
        resource = BY_NAME["certificatesigningrequests"]
        csr = self.store.current(resource, None, name)
        if csr is None:
            return
        spec, status = csr.get("spec") or {}, csr.setdefault("status", {})
        conditions = status.setdefault("conditions", [])
        kinds = {c.get("type") for c in conditions if c.get("status", "True") == "True"}
        if status.get("certificate") or kinds & {"Denied", "Failed"}:
            return
        pem = csr_pem(spec.get("request"))
        subject = csr_subject(pem) if pem else None
        usages = set(spec.get("usages") or ())
        node_client = (
            subject is not None
            and subject[1] == ["system:nodes"]
            and subject[0].startswith("system:node:")
            and usages in ({"digital signature", "client auth"}, KUBELET_CLIENT_USAGES)
        )
        stamp = now_rfc3339()
        if "Approved" not in kinds and spec.get("signerName") == KUBELET_CLIENT_SIGNER and node_client:
            groups = spec.get("groups") or []
            self_renewal = spec.get("username") == subject[0] and "system:nodes" in groups
            if BOOTSTRAPPERS not in groups or KUBEADM_NODE_TOKEN_GROUP in groups or self_renewal:
                conditions.append({"type": "Approved", "status": "True", "reason": "AutoApproved",
                                   "message": "Auto approving kubelet client certificate after SubjectAccessReview.",
                                   "lastUpdateTime": stamp, "lastTransitionTime": stamp})  # fmt: skip
                csr = self.store.update(resource, None, name, csr, "approval")
                kinds.add("Approved")
        if "Approved" not in kinds or not self.signer_key or spec.get("signerName") not in CLIENT_SIGNERS:
            return
        status = csr.setdefault("status", {})
        if spec.get("signerName") == KUBELET_CLIENT_SIGNER and not node_client:
            status.setdefault("conditions", []).append({"type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                                                        "message": "invalid kubelet client certificate request",
                                                        "lastUpdateTime": stamp, "lastTransitionTime": stamp})  # fmt: skip
        else:
            certificate = sign_csr(pem, self.client_ca, self.signer_key, usages)
            status["certificate"] = base64.b64encode(certificate.encode()).decode()
        self.store.update(resource, None, name, csr, "status")

    def set_log(self, pod, text, namespace="default"):
        self.store.logs[(namespace, pod)] = text

    def compact(self):
        """As the API server's periodic etcd compaction: continue tokens issued before now get 410 Gone."""
        self.store.compact()

    def calls(self):
        """``"METHOD /path"`` of every request so far (query strings left out; ``requests`` has them)."""
        with self.lock:
            return [f"{r.method} {r.path}" for r in self.requests]

    def add_node(self, name, provider_id=None, labels=None, allocatable=None, addresses=None, capacity=None, unschedulable=False, ready=True,
                 taints=None, annotations=None, kubelet_version="v1.32.4"):  # fmt: skip
        """A node as a kubelet registers it. ``addresses``: a list of ``{"type", "address"}`` or ``{type: address}``."""
        allocatable = dict(allocatable or {"cpu": "2", "memory": "7Gi", "ephemeral-storage": "40Gi", "pods": "110"})
        if isinstance(addresses, dict):
            addresses = [{"type": t, "address": a} for t, a in addresses.items()]
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", **(labels or {})}
        spec = {}
        if provider_id:
            spec["providerID"] = provider_id
        if unschedulable:
            spec["unschedulable"] = True
        if taints:
            spec["taints"] = taints
        stamp = now_rfc3339()
        node = {
            "metadata": {"name": name, "labels": labels, "annotations": dict(annotations or {})},
            "spec": spec,
            "status": {
                "capacity": dict(capacity or allocatable),
                "allocatable": allocatable,
                "addresses": list(addresses or [{"type": "Hostname", "address": name}]),
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True" if ready else "Unknown",
                        "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                        "message": "kubelet is posting ready status" if ready else "Kubelet stopped posting node status.",
                        "lastHeartbeatTime": stamp,
                        "lastTransitionTime": stamp,
                    }
                ],
                "nodeInfo": {
                    "kubeletVersion": kubelet_version,
                    "kubeProxyVersion": "",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "kernelVersion": "6.1.0-stand-in",
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                },
            },
        }
        return self.create("nodes", node)

    def add_pod(self, name, namespace="default", node=None, phase=None, requests=None, limits=None, labels=None, annotations=None,
                owner=None, ready=None, containers=None, spec=None, unschedulable=True):  # fmt: skip
        """A pod created through the API, then (``node``) bound and given ``phase`` as the scheduler and kubelet would.

        Unbound, it stays Pending and (``unschedulable``) is marked Unschedulable. ``owner``: ``"Kind/name"``
        (a controller reference, e.g. ``"ReplicaSet/web-1"``, ``"DaemonSet/fluentd"``, ``"Job/x"``) or a list of
        ownerReferences. ``ready`` defaults to ``phase == "Running"``.
        """
        if isinstance(owner, str):
            kind, owner_name = owner.split("/", 1)
            group = {"ReplicaSet": "apps/v1", "DaemonSet": "apps/v1", "StatefulSet": "apps/v1", "Deployment": "apps/v1", "Job": "batch/v1"}.get(kind, "v1")
            owner = [
                {
                    "apiVersion": group,
                    "kind": kind,
                    "name": owner_name,
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, owner)),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        resources = {}
        if requests:
            resources["requests"] = dict(requests)
        if limits:
            resources["limits"] = dict(limits)
        pod_spec = {"containers": containers or [{"name": "main", "image": "quay.io/ucsc_cgl/toil:9.6.0", "resources": resources}], **(spec or {})}
        metadata = {"name": name, "labels": dict(labels or {}), "annotations": dict(annotations or {})}
        if owner:
            metadata["ownerReferences"] = owner
        saved = self.store.mark_unschedulable
        with self.store.lock:
            self.store.mark_unschedulable = unschedulable and not node
            try:
                created = self.create("pods", {"metadata": metadata, "spec": pod_spec}, namespace)
            finally:
                self.store.mark_unschedulable = saved
            if node:
                self.store.bind(namespace, name, {"target": {"kind": "Node", "name": node}})
            if node or phase:
                phase = phase or "Running"
                ready = phase == "Running" if ready is None else ready
                status = copy.deepcopy(self.get("pods", name, namespace)["status"])
                status["phase"] = phase
                if phase == "Running":
                    stamp = now_rfc3339()
                    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") not in ("Ready", "ContainersReady")]
                    status["conditions"] += [
                        {"type": kind, "status": "True" if ready else "False", "lastProbeTime": None, "lastTransitionTime": stamp}
                        for kind in ("Ready", "ContainersReady")
                    ]
                    status["containerStatuses"] = [
                        {"name": c["name"], "image": c["image"], "imageID": "", "ready": bool(ready), "restartCount": 0, "started": True,
                         "state": {"running": {"startedAt": stamp}}}
                        for c in pod_spec["containers"]
                    ]  # fmt: skip
                created = self.update_status("pods", name, status, namespace)
        return created


# ----------------------------------------------------------------------------- command line


def main(argv=None):
    parser = argparse.ArgumentParser(prog="kube_api", description="A Kubernetes API server stand-in for tests (see the module docstring).")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve until SIGTERM/SIGINT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=6443)
    serve.add_argument("--token", default=os.environ.get("KUBE_API_TOKEN"), help="the bearer token to accept (default: $KUBE_API_TOKEN, else random)")
    serve.add_argument("--cert-dir", required=True, help="where ca.crt, server.crt and server.key are (made there when missing) and kubeconfig is written")
    serve.add_argument("--san", action="append", default=[], help="another IP address or DNS name for the certificate")
    serve.add_argument("--client-ca", help="accept client certificates signed by this CA (kube-apiserver's --client-ca-file)")
    serve.add_argument("--bootstrap-token-file", help="live bootstrap tokens, token<TAB>ttl<TAB>description a line, read at each request")
    serve.add_argument("--signer-key", help="the key of the --client-ca CA: sign approved client certificate requests with it")
    serve.add_argument("--no-job-pods", action="store_true", help="do not create a pod for each job")
    serve.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)
    if args.signer_key and not args.client_ca:
        parser.error("--signer-key needs --client-ca (the signer's certificate)")
    api = KubeApi(args.host, args.port, args.token, args.cert_dir, sans=args.san or [socket.gethostname()], job_pods=not args.no_job_pods, verbose=args.verbose,
                  client_ca=args.client_ca, bootstrap_token_file=args.bootstrap_token_file, signer_key=args.signer_key)  # fmt: skip
    api.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"serving {api.url}; kubeconfig {api.kubeconfig}", flush=True)
    stop.wait()
    api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
