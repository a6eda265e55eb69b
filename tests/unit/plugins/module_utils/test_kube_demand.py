# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The scaler's Kubernetes adapter (issue 7): demand from pods and nodes, idle timers, draining.

No API server runs here: every object is the kubernetes client's own model, deserialized by its
``ApiClient`` from JSON shaped like ``kubectl get pods,nodes -o json`` (what
``list_pod_for_all_namespaces`` and ``list_node`` return). The Toil pods come from Toil 9.6's own
``_create_pod_spec``/``_launch_job`` (``TOIL_JOBS``, checked against the real Toil by
``test_toil_jobs_are_what_toil_9_6_submits``), turned into pods as the Job controller does.
"""

from __future__ import annotations

import copy
import gc
import importlib.util
import json
import os
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import kubernetes
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config import incluster_config

from ansible_collections.toil.cluster.plugins.module_utils import kube_client, kube_demand
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.kube_client import KubeError, load_clients, prune_pod, read_cluster
from ansible_collections.toil.cluster.plugins.module_utils.kube_demand import demand_from_kubernetes, instance_id, may_use_spot, pod_request
from ansible_collections.toil.cluster.plugins.module_utils.kube_drain import DrainError, DrainRefusedError, drain_for_repair, drain_node
from ansible_collections.toil.cluster.plugins.module_utils.kube_objects import UNREAD, ModelView, UnreadField, cycle_collector_paused, views
from ansible_collections.toil.cluster.plugins.module_utils.quantities import format_bytes, format_cpu

REPO = Path(__file__).resolve().parents[4]
TOIL_PYTHON = REPO / ".venv-toil" / "bin" / "python"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
CREATED = "2026-01-05T11:58:03Z"
NODE_A = "ip-10-0-1-23.us-west-2.compute.internal"
NODE_B = "ip-10-0-1-57.us-west-2.compute.internal"
LEADER = "ip-10-0-0-10.us-west-2.compute.internal"
GiB = 2**30
MiB = 2**20

API = client.ApiClient()


class FakeResponse:
    """What ApiClient.deserialize reads, and what a call with ``_preload_content=False`` returns (urllib3's
    HTTPResponse): the HTTP body as ``data``."""

    def __init__(self, data):
        self.data = json.dumps(data).encode()
        self.released = False

    def release_conn(self):
        self.released = True


def digits(text, count):
    """Stable pseudo-random digits for names and uids (``hash()`` changes between runs)."""
    return f"{zlib.crc32(repr(text).encode()) % 10**count:0{count}d}"


def model(data, kind):
    return API.deserialize(FakeResponse(data), kind)


def pod_list(*pods):
    return model({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "48213"}, "items": list(pods)}, "V1PodList")


def node_list(*nodes):
    return model({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "48213"}, "items": list(nodes)}, "V1NodeList")


# ----------------------------------------------------------------------------- Toil's pods

# What Toil 9.6 submits (``ApiClient().sanitize_for_serialization`` of the V1Job given to
# create_namespaced_job) for ``TOIL_JOB_ARGS``; the pickled command is elided.
TOIL_JOB_ARGS = [
    # name, cores, memory, disk, preemptible
    ["toil-6a1f3c0e-1", 2, 4 * GiB, 10 * GiB, True],
    ["toil-6a1f3c0e-2", 0.5, 1_500_000_000, 2 * GiB, False],
]
_TOIL_METADATA = {"annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}, "labels": {"toil_run": "toil-6a1f3c0e"}}
_TOIL_CONTAINER = {
    "command": ["_toil_contained_executor", "<pickled job>"],
    "image": "quay.io/ucsc_cgl/toil:9.6.0-py3.11",
    "name": "runner-container",
    "volumeMounts": [{"mountPath": "/var/lib/toil", "name": "workdir"}],
}


def _toil_job(name, requests, placement):
    metadata = {**copy.deepcopy(_TOIL_METADATA), "name": name}
    container = {**copy.deepcopy(_TOIL_CONTAINER), "resources": {"limits": dict(requests), "requests": dict(requests)}}
    spec = {"containers": [container], "restartPolicy": "Never", "volumes": [{"emptyDir": {}, "name": "workdir"}], **placement}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {"backoffLimit": 0, "template": {"metadata": copy.deepcopy(metadata), "spec": spec}, "ttlSecondsAfterFinished": 86400},
    }


TOIL_JOBS = {
    "toil-6a1f3c0e-1": _toil_job(
        "toil-6a1f3c0e-1",
        {"cpu": "2", "ephemeral-storage": "11274289152", "memory": "4831838208"},
        {
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"preference": {"matchExpressions": [{"key": "eks.amazonaws.com/capacityType", "operator": "In", "values": ["SPOT"]}]}, "weight": 1},
                        {"preference": {"matchExpressions": [{"key": "cloud.google.com/gke-preemptible", "operator": "In", "values": ["true"]}]}, "weight": 1},
                    ]
                }
            },
            "tolerations": [{"key": "cloud.google.com/gke-preemptible", "value": "true"}],
        },
    ),
    "toil-6a1f3c0e-2": _toil_job(
        "toil-6a1f3c0e-2",
        {"cpu": "0.5", "ephemeral-storage": "2684354560", "memory": "2036870912"},
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "eks.amazonaws.com/capacityType", "operator": "NotIn", "values": ["SPOT"]},
                                    {"key": "cloud.google.com/gke-preemptible", "operator": "NotIn", "values": ["true"]},
                                ]
                            }
                        ]
                    }
                }
            }
        },
    ),
}

# Run by the Toil venv's interpreter: Toil's own pod builder and launcher, with the two
# calls that would reach a cluster replaced. Toil's kubernetes extra is not installed in
# .venv-toil, so the (same, 35.0.0) client comes from this venv: its site-packages is added
# as a site directory, after Toil's own packages (PYTHONPATH would put it before them).
TOIL_JOB_SCRIPT = r"""
import json
import site
import sys
from types import SimpleNamespace

site.addsitedir(sys.argv[1])
from kubernetes.client import ApiClient
from toil.batchSystems.abstractBatchSystem import ResourcePool
from toil.batchSystems.kubernetes import KubernetesBatchSystem
from toil.job import JobDescription

jobs = {}
for job_name, cores, memory, disk, preemptible in json.loads(sys.argv[2]):
    batch = object.__new__(KubernetesBatchSystem)  # only what _create_pod_spec and _launch_job read
    batch.environment = {}
    batch.user_script = None
    batch.host_path = None
    batch.worker_work_dir = "/var/lib/toil"
    batch.aws_secret_name = None
    batch.docker_image = "quay.io/ucsc_cgl/toil:9.6.0-py3.11"
    batch.config = SimpleNamespace(kubernetes_security_context=None, kubernetes_privileged=False, kubernetes_pod_security_context=None)
    batch.service_account = None
    batch.namespace = "toil"
    batch.run_id = "toil-6a1f3c0e"
    batch.finished_job_ttl = 86400
    batch.resource_sources = [ResourcePool(2**62, kind) for kind in ("jobs", "cores", "memory", "disk")]
    batch._acquired_resources = {}
    launched = []
    batch._api = lambda kind, errors=None: SimpleNamespace(create_namespaced_job=lambda namespace, job: launched.append(job))
    requirements = {"cores": cores, "memory": memory, "disk": disk, "preemptible": preemptible, "accelerators": []}
    description = JobDescription(requirements=requirements, jobName="align")
    spec = batch._create_pod_spec("_toil_worker align file:/jobstore kind-align/instance-1", description)
    assert batch._launch_job(job_name, description, spec)
    job = ApiClient().sanitize_for_serialization(launched[0])
    job["spec"]["template"]["spec"]["containers"][0]["command"][1:] = ["<pickled job>"]
    jobs[job_name] = job
json.dump(jobs, sys.stdout)
"""


@pytest.mark.toil
def test_toil_jobs_are_what_toil_9_6_submits():
    if not os.access(TOIL_PYTHON, os.X_OK):
        pytest.fail(f"The real Toil is not installed: {TOIL_PYTHON} is missing. Run `make setup` to create .venv-toil.", pytrace=False)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH" and not key.startswith("TOIL_")}
    site_packages = str(Path(kubernetes.__file__).resolve().parents[1])
    completed = subprocess.run(
        [str(TOIL_PYTHON), "-c", TOIL_JOB_SCRIPT, site_packages, json.dumps(TOIL_JOB_ARGS)], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout) == TOIL_JOBS


def _canonical_cpu(value):
    """The API server answers quantities in canonical form: Toil's ``0.5`` comes back ``500m``."""
    return f"{int(float(value) * 1000)}m" if "." in value else value


def toil_pod(job_name, suffix, state="unschedulable", node=None):
    """The pod the Job controller makes from Toil's Job, as the API server returns it."""
    job = copy.deepcopy(TOIL_JOBS[job_name])
    template = job["spec"]["template"]
    uid = f"5e1f0c9a-0000-4000-8000-{digits(job_name, 12)}"
    spec = template["spec"]
    container = spec["containers"][0]
    for kind in ("requests", "limits"):
        container["resources"][kind]["cpu"] = _canonical_cpu(container["resources"][kind]["cpu"])
    container.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log", terminationMessagePolicy="File")
    container["volumeMounts"].append({"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-x7k2p", "readOnly": True})
    spec.update(
        dnsPolicy="ClusterFirst",
        enableServiceLinks=True,
        preemptionPolicy="PreemptLowerPriority",
        priority=0,
        schedulerName="default-scheduler",
        securityContext={},
        serviceAccount="default",
        serviceAccountName="default",
        terminationGracePeriodSeconds=30,
    )
    spec["tolerations"] = spec.get("tolerations", []) + [
        {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
        {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300},
    ]
    spec["volumes"].append(
        {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}
    )
    labels = {
        **template["metadata"]["labels"],
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": job_name,
        "controller-uid": uid,
        "job-name": job_name,
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": template["metadata"]["annotations"],
            "creationTimestamp": CREATED,
            "finalizers": ["batch.kubernetes.io/job-tracking"],
            "generateName": f"{job_name}-",
            "labels": labels,
            "name": f"{job_name}-{suffix}",
            "namespace": "toil",
            "ownerReferences": [{"apiVersion": "batch/v1", "blockOwnerDeletion": True, "controller": True, "kind": "Job", "name": job_name, "uid": uid}],
            "resourceVersion": "48101",
            "uid": f"7c0d{digits((job_name, suffix), 4)}-1b2c-4d5e-8f90-a1b2c3d4e5f6",
        },
        "spec": spec,
    }
    return _with_state(pod, state, node, qos="Guaranteed")


def _condition(kind, status, reason=None, message=None):
    condition = {"lastProbeTime": None, "lastTransitionTime": CREATED, "status": status, "type": kind}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


UNSCHEDULABLE_MESSAGE = (
    "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. "
    "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
)


def _with_state(pod, state, node, qos="Burstable"):
    """Status (and nodeName) for a pod in ``state``."""
    names = [c["name"] for c in pod["spec"]["containers"]]
    status = {"qosClass": qos}
    if state == "unschedulable":
        status.update(phase="Pending", conditions=[_condition("PodScheduled", "False", "Unschedulable", UNSCHEDULABLE_MESSAGE)])
    elif state == "gated":
        pod["spec"]["schedulingGates"] = [{"name": "example.com/quota"}]
        status.update(
            phase="Pending", conditions=[_condition("PodScheduled", "False", "SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates")]
        )
    elif state == "nominated":  # the scheduler preempts lower-priority pods on an existing node for it
        status.update(phase="Pending", nominatedNodeName=NODE_A, conditions=[_condition("PodScheduled", "False", "Unschedulable", UNSCHEDULABLE_MESSAGE)])
    elif state == "new":  # created, not yet looked at by the scheduler
        status.update(phase="Pending")
    elif state == "creating":  # bound; the kubelet pulls the image
        pod["spec"]["nodeName"] = node or NODE_A
        status.update(
            phase="Pending",
            hostIP="10.0.1.23",
            startTime=CREATED,
            conditions=[
                _condition("PodReadyToStartContainers", "False"),
                _condition("Initialized", "True"),
                _condition("Ready", "False", "ContainersNotReady", f"containers with unready status: [{' '.join(names)}]"),
                _condition("ContainersReady", "False", "ContainersNotReady", f"containers with unready status: [{' '.join(names)}]"),
                _condition("PodScheduled", "True"),
            ],
            containerStatuses=[
                {
                    "image": "x",
                    "imageID": "",
                    "lastState": {},
                    "name": n,
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }
                for n in names
            ],
        )
    elif state in ("running", "succeeded", "failed"):
        pod["spec"]["nodeName"] = node
        phase = {"running": "Running", "succeeded": "Succeeded", "failed": "Failed"}[state]
        ready = "True" if state == "running" else "False"
        status.update(
            phase=phase,
            hostIP="10.0.1.23",
            podIP="10.244.1.17",
            startTime=CREATED,
            conditions=[
                _condition(k, "True" if k in ("Initialized", "PodScheduled") else ready) for k in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
        )
    else:
        raise AssertionError(state)
    pod["status"] = status
    return pod


def make_pod(
    name,
    namespace="default",
    containers=({"cpu": "100m", "memory": "128Mi"},),
    init_containers=(),
    state="unschedulable",
    node=None,
    owner=("ReplicaSet", "web-7c9f8d6b5"),
    annotations=None,
    labels=None,
    affinity=None,
    node_selector=None,
    overhead=None,
    pod_resources=None,
    deleting=False,
):
    """A pod as the API returns it.

    ``containers``/``init_containers``: one dict per container, its requests, or
    ``{"requests": ..., "limits": ..., "restartPolicy": ...}``.
    """

    def container(index, spec, prefix):
        spec = dict(spec or {})
        resources = {k: spec.pop(k) for k in ("requests", "limits") if k in spec}
        extra = {k: spec.pop(k) for k in ("restartPolicy",) if k in spec}
        if spec:
            resources["requests"] = spec
        return {"image": "registry.k8s.io/pause:3.10", "name": f"{prefix}{index}", "resources": resources, **extra}

    metadata = {"creationTimestamp": CREATED, "name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}", "resourceVersion": "48000"}
    if owner:
        metadata["ownerReferences"] = [
            {"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True, "kind": owner[0], "name": owner[1], "uid": f"uid-{owner[1]}"}
        ]
    if annotations:
        metadata["annotations"] = annotations
    if labels:
        metadata["labels"] = labels
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-05T11:59:30Z"
        metadata["deletionGracePeriodSeconds"] = 30
    spec = {
        "containers": [container(i, c, "main-") for i, c in enumerate(containers)],
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "terminationGracePeriodSeconds": 30,
    }
    if init_containers:
        spec["initContainers"] = [container(i, c, "init-") for i, c in enumerate(init_containers)]
    if affinity:
        spec["affinity"] = affinity
    if node_selector:
        spec["nodeSelector"] = node_selector
    if overhead:
        spec["overhead"] = overhead
        spec["runtimeClassName"] = "kata"
    if pod_resources:
        spec["resources"] = {"requests": pod_resources}
    return _with_state({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}, state, node)


def daemonset_pod(name, node, requests=None, annotations=None):
    return make_pod(
        f"{name}-{digits(node, 5)}", "kube-system", containers=(requests or {},), state="running", node=node, owner=("DaemonSet", name), annotations=annotations
    )


def mirror_pod(name, node):
    return make_pod(
        f"{name}-{node}",
        "kube-system",
        containers=({"cpu": "50m"},),
        state="running",
        node=node,
        owner=("Node", node),
        annotations={
            "kubernetes.io/config.hash": "9f2c1e0b7a",
            "kubernetes.io/config.mirror": "9f2c1e0b7a",
            "kubernetes.io/config.seen": "2026-01-05T11:00:00.000000000Z",
            "kubernetes.io/config.source": "file",
        },
    )


def make_node(name, instance="i-0123456789abcdef0", pool="spot-pool", spot=True, control_plane=False, unschedulable=False, provider_id=None, ephemeral=True):
    zone = "us-west-2a"
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "m5.large",
        "beta.kubernetes.io/os": "linux",
        "failure-domain.beta.kubernetes.io/region": "us-west-2",
        "failure-domain.beta.kubernetes.io/zone": zone,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "m5.large",
        "topology.kubernetes.io/region": "us-west-2",
        "topology.kubernetes.io/zone": zone,
    }
    if pool:
        labels["toil.cluster/pool"] = pool
    if spot:
        labels["eks.amazonaws.com/capacityType"] = "SPOT"
    spec = {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"], "providerID": provider_id if provider_id is not None else f"aws:///{zone}/{instance}"}
    if control_plane:
        labels.update({"node-role.kubernetes.io/control-plane": "", "node.kubernetes.io/exclude-from-external-load-balancers": ""})
        spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
    if unschedulable:
        spec["unschedulable"] = True
        spec.setdefault("taints", []).append({"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable", "timeAdded": "2026-01-05T11:59:00Z"})
    allocatable = {"cpu": "2", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "7832788Ki", "pods": "110"}
    capacity = {"cpu": "2", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "7935188Ki", "pods": "110"}
    if ephemeral:
        allocatable["ephemeral-storage"] = "48307982274"
        capacity["ephemeral-storage"] = "52416492Ki"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
            "creationTimestamp": "2026-01-05T10:00:00Z",
            "labels": labels,
            "name": name,
            "resourceVersion": "47000",
            "uid": f"uid-node-{name}",
        },
        "spec": spec,
        "status": {
            "addresses": [{"address": "10.0.1.23", "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
            "allocatable": allocatable,
            "capacity": capacity,
            "conditions": [
                {
                    "lastHeartbeatTime": "2026-01-05T11:59:00Z",
                    "lastTransitionTime": "2026-01-05T10:01:00Z",
                    "message": "kubelet is posting ready status",
                    "reason": "KubeletReady",
                    "status": "True",
                    "type": "Ready",
                }
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "3c6a3c1e-7f1e-4b7a-9a55-2f0a6c1d9e21",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kernelVersion": "6.1.0-28-cloud-amd64",
                "kubeProxyVersion": "v1.31.4",
                "kubeletVersion": "v1.31.4",
                "machineID": "ec2a6c1d9e213c6a3c1e7f1e4b7a9a55",
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": "ec2a6c1d-9e21-3c6a-3c1e-7f1e4b7a9a55",
            },
        },
    }


def one_pod(data):
    return model(data, "V1Pod")


# ----------------------------------------------------------------------------- Toil's pods, read back


@pytest.mark.parametrize(
    ("job_name", "expected"),
    [
        ("toil-6a1f3c0e-1", {"cpu": "2", "memory": "4608Mi", "ephemeral_storage": "10752Mi", "preemptible": True}),
        # memory 1.5e9 + Toil's 512Mi: no binary suffix is exact
        ("toil-6a1f3c0e-2", {"cpu": "500m", "memory": "2036870912", "ephemeral_storage": "2560Mi", "preemptible": False}),
    ],
)
def test_toil_pending_pods(job_name, expected):
    demand, _idle_since = demand_from_kubernetes(pod_list(toil_pod(job_name, "x7k2p")), node_list(), NOW, {})
    assert demand["pods"] == [{"name": f"toil/{job_name}-x7k2p", **expected, "count": 1}]


def test_toil_pod_requests_are_toils_plus_512mi():
    pod = one_pod(toil_pod("toil-6a1f3c0e-1", "x7k2p"))
    assert pod_request(pod) == (2000, 4 * GiB + 512 * MiB, 10 * GiB + 512 * MiB, 0)
    assert pod.spec.init_containers is None  # Toil's pods have one container and no init containers


def test_toil_pod_on_a_node_makes_it_busy_and_unsafe_to_evict():
    pods = pod_list(toil_pod("toil-6a1f3c0e-1", "x7k2p", state="running", node=NODE_A), daemonset_pod("kube-proxy", NODE_A))
    demand, idle = demand_from_kubernetes(pods, node_list(make_node(NODE_A)), NOW, {NODE_A: "2026-01-05T11:00:00+00:00"})
    (node,) = demand["nodes"]
    assert node["safe_to_evict"] is False
    assert node["idle_seconds"] == 0
    assert node["requested"] == {"cpu": "2", "memory": "4608Mi", "ephemeral_storage": "10752Mi"}
    assert demand["pods"] == []
    assert idle == {}  # busy: its timer is dropped


# ----------------------------------------------------------------------------- pending


@pytest.mark.parametrize(
    ("pod", "pending"),
    [
        pytest.param(make_pod("web-1", state="unschedulable"), True, id="unschedulable"),
        pytest.param(make_pod("web-1", state="new"), False, id="not-yet-considered-by-the-scheduler"),
        pytest.param(make_pod("web-1", state="creating"), False, id="bound-container-creating"),
        pytest.param(make_pod("web-1", state="gated"), False, id="scheduling-gated"),
        pytest.param(make_pod("web-1", state="nominated"), False, id="nominated-to-preempt"),
        pytest.param(make_pod("web-1", state="unschedulable", deleting=True), False, id="being-deleted"),
        pytest.param(make_pod("web-1", state="running", node=NODE_A), False, id="running"),
        pytest.param(make_pod("web-1", state="succeeded", node=NODE_A), False, id="succeeded"),
        pytest.param(make_pod("fluentd-abcde", "kube-system", state="unschedulable", owner=("DaemonSet", "fluentd")), False, id="daemonset-pod"),
        pytest.param(toil_pod("toil-6a1f3c0e-2", "q9w8e", state="creating"), False, id="toil-container-creating"),
    ],
)
def test_pending_reasons(pod, pending):
    demand, _idle_since = demand_from_kubernetes(pod_list(pod), node_list(), NOW, {})
    assert len(demand["pods"]) == int(pending)


def test_pending_pod_bound_but_condition_stale_is_not_demand():
    data = make_pod("web-1", state="unschedulable")
    data["spec"]["nodeName"] = NODE_A  # bound between the scheduler's condition and our read
    demand, _idle_since = demand_from_kubernetes(pod_list(data), node_list(), NOW, {})
    assert demand["pods"] == []


# ----------------------------------------------------------------------------- effective requests


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"containers": ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "250m", "memory": "512Mi"})}, (750, 1536 * MiB, 0), id="containers-add-up"),
        pytest.param(
            {"containers": ({"cpu": "500m", "memory": "256Mi"},), "init_containers": ({"cpu": "2", "memory": "64Mi", "ephemeral-storage": "20Gi"},)},
            (2000, 256 * MiB, 20 * GiB),
            id="init-container-bigger-on-some-resources",
        ),
        pytest.param(
            {"containers": ({"cpu": "1"},), "init_containers": ({"cpu": "3"}, {"cpu": "2"})},
            (3000, 0, 0),
            id="init-containers-take-the-max-not-the-sum",
        ),
        pytest.param(
            {"containers": ({"cpu": "1", "memory": "1Gi"},), "init_containers": ({"cpu": "200m", "memory": "100Mi", "restartPolicy": "Always"}, {"cpu": "2"})},
            (2200, GiB + 100 * MiB, 0),
            id="sidecar-adds-to-containers-and-later-init-containers",
        ),
        pytest.param(
            {"containers": ({"cpu": "250m", "memory": "120Mi"},), "overhead": {"cpu": "250m", "memory": "120Mi"}},
            (500, 240 * MiB, 0),
            id="pod-overhead",
        ),
        pytest.param(
            {"containers": ({"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "500m"}},)},
            (500, 2 * GiB, 0),
            id="limit-without-request-requests-the-limit",
        ),
        pytest.param({"containers": ({},)}, (0, 0, 0), id="best-effort"),
        pytest.param(
            {"containers": ({"cpu": "100m", "memory": "1Gi"}, {"cpu": "100m"}), "pod_resources": {"cpu": "1"}},
            (1000, GiB, 0),
            id="pod-level-resources-win-for-what-they-name",
        ),
        pytest.param({"containers": ({"cpu": "0.1", "memory": "1e9", "ephemeral-storage": "1.5G"},)}, (100, 10**9, 1_500_000_000), id="decimal-forms"),
    ],
)
def test_effective_request(kwargs, expected):
    pod = one_pod(make_pod("web-1", **kwargs))
    assert pod_request(pod) == (*expected, 0)  # no GPUs


def test_bad_quantity_names_the_pod_and_container():
    pod = one_pod(make_pod("web-1", containers=({"cpu": "lots"},)))
    with pytest.raises(ToilInputError, match=r"pod default/web-1 container main-0 cpu: 'lots' is not a Kubernetes quantity"):
        pod_request(pod)


@pytest.mark.parametrize(
    ("millis", "text"),
    [(0, "0"), (500, "500m"), (1000, "1"), (2500, "2500m"), (64000, "64")],
)
def test_format_cpu(millis, text):
    assert format_cpu(millis) == text


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0"), (1000, "1000"), (1024, "1Ki"), (4 * GiB, "4Gi"), (4 * GiB + 512 * MiB, "4608Mi"), (7832788 * 1024, "7832788Ki"), (2**60, "1Ei")],
)
def test_format_bytes(count, text):
    assert format_bytes(count) == text


# ----------------------------------------------------------------------------- spot


def _required(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": list(t)} for t in terms]}}}


def _preferred(*expressions):
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [e]}} for e in expressions]}}


CAPACITY = "eks.amazonaws.com/capacityType"
GKE = "cloud.google.com/gke-preemptible"


@pytest.mark.parametrize(
    ("kwargs", "spot"),
    [
        pytest.param({}, True, id="no-affinity-may-go-anywhere"),
        pytest.param({"affinity": TOIL_JOBS["toil-6a1f3c0e-1"]["spec"]["template"]["spec"]["affinity"]}, True, id="toil-preemptible"),
        pytest.param({"affinity": TOIL_JOBS["toil-6a1f3c0e-2"]["spec"]["template"]["spec"]["affinity"]}, False, id="toil-non-preemptible"),
        pytest.param({"affinity": _required([{"key": CAPACITY, "operator": "In", "values": ["SPOT"]}])}, True, id="requires-spot"),
        pytest.param({"affinity": _required([{"key": CAPACITY, "operator": "NotIn", "values": ["SPOT"]}])}, False, id="requires-not-spot"),
        pytest.param({"affinity": _required([{"key": GKE, "operator": "NotIn", "values": ["true"]}])}, False, id="gke-requires-not-preemptible"),
        pytest.param({"affinity": _required([{"key": CAPACITY, "operator": "In", "values": ["ON_DEMAND"]}])}, False, id="requires-on-demand"),
        pytest.param({"affinity": _required([{"key": CAPACITY, "operator": "DoesNotExist"}])}, False, id="requires-no-capacity-label"),
        pytest.param(
            {"affinity": _required([{"key": CAPACITY, "operator": "NotIn", "values": ["SPOT"]}], [{"key": "workload", "operator": "In", "values": ["align"]}])},
            True,
            id="one-ored-term-allows-spot",
        ),
        pytest.param({"affinity": _required([{"key": "workload", "operator": "In", "values": ["align"]}])}, True, id="unrelated-requirement"),
        pytest.param({"affinity": _preferred({"key": CAPACITY, "operator": "NotIn", "values": ["SPOT"]})}, True, id="prefers-on-demand-only"),
        pytest.param({"node_selector": {CAPACITY: "ON_DEMAND"}}, False, id="node-selector-on-demand"),
        pytest.param({"node_selector": {CAPACITY: "SPOT"}}, True, id="node-selector-spot"),
        pytest.param({"node_selector": {GKE: "false"}}, False, id="node-selector-gke-not-preemptible"),
    ],
)
def test_may_use_spot(kwargs, spot):
    assert may_use_spot(one_pod(make_pod("web-1", **kwargs))) is spot


# ----------------------------------------------------------------------------- GPUs and architectures

ARCH = "kubernetes.io/arch"
GPU = "nvidia.com/gpu"


@pytest.mark.parametrize(
    ("kwargs", "arches"),
    [
        pytest.param({}, None, id="no-pin"),
        pytest.param({"affinity": TOIL_JOBS["toil-6a1f3c0e-2"]["spec"]["template"]["spec"]["affinity"]}, None, id="toil-pins-no-architecture"),
        pytest.param({"node_selector": {ARCH: "arm64"}}, {"arm64"}, id="node-selector"),
        pytest.param({"affinity": _required([{"key": ARCH, "operator": "In", "values": ["arm64"]}])}, {"arm64"}, id="in"),
        pytest.param({"affinity": _required([{"key": ARCH, "operator": "NotIn", "values": ["arm64"]}])}, {"amd64"}, id="not-in"),
        pytest.param({"affinity": _required([{"key": ARCH, "operator": "Exists"}])}, None, id="exists-pins-nothing"),
        pytest.param({"affinity": _required([{"key": ARCH, "operator": "DoesNotExist"}])}, set(), id="does-not-exist-fits-no-node"),
        pytest.param(
            {"affinity": _required([{"key": ARCH, "operator": "In", "values": ["arm64"]}], [{"key": ARCH, "operator": "In", "values": ["amd64"]}])},
            {"amd64", "arm64"},
            id="ored-terms-add-up",
        ),
        pytest.param(
            {"affinity": _required([{"key": ARCH, "operator": "In", "values": ["arm64"]}], [{"key": "workload", "operator": "In", "values": ["x"]}])},
            None,
            id="a-term-without-a-pin-allows-any",
        ),
        pytest.param(
            {"affinity": _required([{"key": ARCH, "operator": "In", "values": ["amd64", "arm64"]}, {"key": ARCH, "operator": "NotIn", "values": ["amd64"]}])},
            {"arm64"},
            id="anded-expressions-narrow",
        ),
        pytest.param(
            {"node_selector": {ARCH: "amd64"}, "affinity": _required([{"key": ARCH, "operator": "In", "values": ["arm64"]}])},
            set(),
            id="node-selector-and-affinity-both-hold",
        ),
        pytest.param(
            {"node_selector": {CAPACITY: "ON_DEMAND", ARCH: "arm64"}},
            {"arm64"},
            id="with-a-spot-constraint",
        ),
    ],
)
def test_a_pods_architecture_pin(kwargs, arches):
    pod = one_pod(make_pod("web-1", **kwargs))
    assert kube_demand.pinned_arches(pod) == (None if arches is None else frozenset(arches))
    assert kube_demand.placement(pod) == (may_use_spot(pod), kube_demand.pinned_arches(pod))


@pytest.mark.parametrize(
    ("kwargs", "gpus"),
    [
        pytest.param({"containers": ({"limits": {"cpu": "1", GPU: "2"}},)}, 2, id="a-limit-alone-is-the-request"),
        pytest.param({"containers": ({"requests": {"cpu": "1", GPU: "1"}, "limits": {GPU: "1"}},)}, 1, id="request-equals-limit"),
        pytest.param({"containers": ({"limits": {GPU: "1"}}, {"limits": {GPU: "2"}})}, 3, id="containers-add-up"),
        pytest.param({"containers": ({"limits": {GPU: "1"}},), "init_containers": ({"limits": {GPU: "4"}},)}, 4, id="an-init-container-takes-the-max"),
        pytest.param({"containers": ({"limits": {"amd.com/gpu": "1"}},)}, 0, id="another-brand-is-not-counted"),
    ],
)
def test_a_pods_gpus_are_its_nvidia_gpu_requests(kwargs, gpus):
    assert pod_request(one_pod(make_pod("web-1", **kwargs)))[3] == gpus


def test_a_fraction_of_a_gpu_is_refused_naming_the_pod():
    pod = one_pod(make_pod("web-1", containers=({"limits": {GPU: "500m"}},)))
    with pytest.raises(ToilInputError, match=r"pod default/web-1 container main-0 nvidia.com/gpu: '500m' is not a whole number of GPUs"):
        pod_request(pod)


def _gpu_node(name, instance, gpus, arch="amd64"):
    node = make_node(name, instance=instance, pool="gpu", spot=False)
    node["metadata"]["labels"][ARCH] = arch
    node["status"]["allocatable"][GPU] = str(gpus)
    return node


def test_gpu_pods_and_gpu_nodes_read_back_with_their_architectures():
    pods = pod_list(
        make_pod("train-1", containers=({"limits": {"cpu": "4", "memory": "16Gi", GPU: "1"}},)),
        make_pod("train-2", containers=({"limits": {"cpu": "4", "memory": "16Gi", GPU: "1"}},)),
        make_pod("train-arm", containers=({"limits": {"cpu": "4", "memory": "16Gi", GPU: "1"}},), node_selector={ARCH: "arm64"}),
        make_pod("cpu-only", containers=({"cpu": "1"},)),
        make_pod("on-gpu-node", state="running", node=NODE_B, containers=({"limits": {"cpu": "1", GPU: "1"}},)),
    )
    groups, workers, _idle = kube_demand.read_demand(pods, node_list(make_node(NODE_A), _gpu_node(NODE_B, "i-0b", 4, "arm64")), NOW)
    # identical requests but another pin are another group
    assert [(g.name, g.request.gpu, g.arches, g.count) for g in groups] == [
        ("default/train-1 (+1)", 1, None, 2),
        ("default/train-arm", 1, frozenset({"arm64"}), 1),
        ("default/cpu-only", 0, None, 1),
    ]
    by_name = {w.name: w for w in workers}
    assert (by_name[NODE_A].allocatable.gpu, by_name[NODE_A].arch) == (0, "amd64")
    assert (by_name[NODE_B].allocatable.gpu, by_name[NODE_B].requested.gpu, by_name[NODE_B].arch) == (4, 1, "arm64")
    assert by_name[NODE_B].node_state().free.gpu == 3 and by_name[NODE_B].node_state().arch == "arm64"
    demand, _idle = demand_from_kubernetes(pods, node_list(make_node(NODE_A), _gpu_node(NODE_B, "i-0b", 4, "arm64")), NOW)
    assert demand["pods"][0]["gpu"] == 1 and "arch" not in demand["pods"][0]
    assert demand["pods"][1]["arch"] == "arm64" and "gpu" not in demand["pods"][2]
    gpu_node = next(n for n in demand["nodes"] if n["name"] == NODE_B)
    assert (gpu_node["arch"], gpu_node["allocatable"]["gpu"], gpu_node["requested"]["gpu"]) == ("arm64", 4, 1)
    assert "gpu" not in next(n for n in demand["nodes"] if n["name"] == NODE_A)["allocatable"]  # it lists none


# ----------------------------------------------------------------------------- nodes


@pytest.mark.parametrize(
    ("provider_id", "expected"),
    [
        ("aws:///us-west-2a/i-0123456789abcdef0", "i-0123456789abcdef0"),
        ("aws:///us-east-1f/i-0abc1234", "i-0abc1234"),
        ("aws:///i-0123456789abcdef0", "i-0123456789abcdef0"),
        ("aws://us-west-2a/i-0123456789abcdef0", "i-0123456789abcdef0"),
        ("", None),  # no cloud provider: kubelet leaves it empty
        ("kind://docker/kind/kind-worker", None),
        ("gce://project/us-central1-a/gke-node-1", None),
        ("aws:///us-west-2a/fargate-ip-10-0-1-23", None),
    ],
)
def test_instance_id_from_provider_id(provider_id, expected):
    assert instance_id(model(make_node(NODE_A, provider_id=provider_id), "V1Node")) == expected


@pytest.mark.parametrize("how", ["control-plane-label", "master-label", "taint-only"])
def test_control_plane_is_not_a_worker(how):
    leader = make_node(LEADER, instance="i-0fedcba9876543210", pool=None, spot=False, control_plane=True)
    if how == "master-label":  # Toil's own kubeadm 1.19 leader
        del leader["metadata"]["labels"]["node-role.kubernetes.io/control-plane"]
        leader["metadata"]["labels"]["node-role.kubernetes.io/master"] = ""
        leader["spec"]["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/master"}]
    elif how == "taint-only":
        del leader["metadata"]["labels"]["node-role.kubernetes.io/control-plane"]
    pods = pod_list(mirror_pod("kube-apiserver", LEADER), daemonset_pod("kube-proxy", LEADER))
    demand, idle = demand_from_kubernetes(pods, node_list(leader, make_node(NODE_A)), NOW, {})
    assert [n["name"] for n in demand["nodes"]] == [NODE_A]
    assert LEADER not in idle


def test_node_entry():
    pods = pod_list(
        daemonset_pod("kube-proxy", NODE_A),  # BestEffort, as kubeadm's
        daemonset_pod("kube-flannel-ds", NODE_A, {"cpu": "100m", "memory": "50Mi"}),
        mirror_pod("haproxy", NODE_A),
        make_pod("old-job-x1", state="succeeded", node=NODE_A, containers=({"cpu": "4"},), owner=("Job", "old-job")),
        make_pod("web-1", state="unschedulable"),
    )
    demand, idle = demand_from_kubernetes(pods, node_list(make_node(NODE_A)), NOW, {})
    assert demand["nodes"] == [
        {
            "instance_id": "i-0123456789abcdef0",
            "name": NODE_A,
            "pool": "spot-pool",
            "arch": "amd64",
            "allocatable": {"cpu": "2", "memory": "7832788Ki", "ephemeral_storage": "48307982274"},
            # DaemonSet and mirror pods count; the finished pod does not
            "requested": {"cpu": "150m", "memory": "50Mi", "ephemeral_storage": "0"},
            "idle_seconds": 0,
            "safe_to_evict": True,
            "unschedulable": False,
        }
    ]
    assert idle == {NODE_A: NOW.isoformat()}
    assert set(demand) == {"pods", "nodes"}
    assert set(demand["pods"][0]) == {"name", "cpu", "memory", "ephemeral_storage", "preemptible", "count"}


def test_node_without_pool_label_providerid_or_ephemeral_storage():
    node = make_node(NODE_A, pool=None, provider_id="", ephemeral=False, unschedulable=True)
    demand, _idle_since = demand_from_kubernetes(pod_list(), node_list(node), NOW, {})
    (entry,) = demand["nodes"]
    assert entry["pool"] is None
    assert entry["instance_id"] is None
    assert entry["allocatable"] == {"cpu": "2", "memory": "7832788Ki"}  # absent, not 0
    assert entry["unschedulable"] is True


@pytest.mark.parametrize(
    ("pod", "idle", "safe"),
    [
        pytest.param(None, True, True, id="empty"),
        pytest.param(daemonset_pod("kube-proxy", NODE_A), True, True, id="daemonset-only"),
        pytest.param(mirror_pod("haproxy", NODE_A), True, True, id="mirror-only"),
        pytest.param(make_pod("web-1", state="running", node=NODE_A), False, True, id="deployment-pod"),
        pytest.param(make_pod("web-1", state="creating", node=NODE_A), False, True, id="pod-starting"),
        pytest.param(make_pod("web-1", state="running", node=NODE_A, deleting=True), False, True, id="pod-terminating"),
        pytest.param(
            make_pod("done-1", state="succeeded", node=NODE_A, annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}),
            True,
            True,
            id="finished",
        ),
        pytest.param(
            make_pod("db-0", state="running", node=NODE_A, annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}), False, False, id="not-safe"
        ),
        pytest.param(
            make_pod("db-0", state="running", node=NODE_A, annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"}), False, True, id="safe"
        ),
        pytest.param(
            daemonset_pod("node-agent", NODE_A, annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}),
            True,
            True,
            id="daemonset-not-safe-is-ignored",
        ),
    ],
)
def test_node_idle_and_safe(pod, idle, safe):
    demand, timers = demand_from_kubernetes(pod_list(*([pod] if pod else [])), node_list(make_node(NODE_A)), NOW, {})
    (entry,) = demand["nodes"]
    assert (NODE_A in timers) is idle
    assert entry["safe_to_evict"] is safe


def test_idle_timers_across_runs():
    nodes = node_list(make_node(NODE_A), make_node(NODE_B, instance="i-0aaaaaaaaaaaaaaaa", pool="on-demand", spot=False))
    busy_b = make_pod("web-1", state="running", node=NODE_B)
    first, timers = demand_from_kubernetes(pod_list(busy_b), nodes, NOW, {"ip-10-0-9-9.gone": "2026-01-05T10:00:00+00:00"})
    assert {n["name"]: n["idle_seconds"] for n in first["nodes"]} == {NODE_A: 0, NODE_B: 0}
    assert timers == {NODE_A: "2026-01-05T12:00:00+00:00"}  # the vanished node's timer is dropped
    timers = json.loads(json.dumps(timers))  # persisted in the state file between runs

    later = NOW + timedelta(minutes=5, seconds=30)
    busy_a = make_pod("web-2", state="running", node=NODE_A)
    second, timers2 = demand_from_kubernetes(pod_list(), nodes, later, timers)
    assert {n["name"]: n["idle_seconds"] for n in second["nodes"]} == {NODE_A: 330, NODE_B: 0}
    assert timers2 == {NODE_A: "2026-01-05T12:00:00+00:00", NODE_B: later.isoformat()}

    third, timers3 = demand_from_kubernetes(pod_list(busy_a), nodes, later + timedelta(minutes=1), timers2)
    assert {n["name"]: n["idle_seconds"] for n in third["nodes"]} == {NODE_A: 0, NODE_B: 60}
    assert timers3 == {NODE_B: later.isoformat()}


@pytest.mark.parametrize("stored", ["yesterday", "2026-01-05T11:00:00", "2026-01-05T13:00:00+00:00", None, 12])
def test_unusable_idle_timer_restarts(stored):
    """Unparseable, naive or future timestamps (a clock moved back) start the timer again."""
    demand, timers = demand_from_kubernetes(pod_list(), node_list(make_node(NODE_A)), NOW, {NODE_A: stored})
    assert demand["nodes"][0]["idle_seconds"] == 0
    assert timers == {NODE_A: NOW.isoformat()}


def test_idle_timer_accepts_z_suffix():
    demand, timers = demand_from_kubernetes(pod_list(), node_list(make_node(NODE_A)), NOW, {NODE_A: "2026-01-05T11:50:00Z"})
    assert demand["nodes"][0]["idle_seconds"] == 600
    assert timers == {NODE_A: "2026-01-05T11:50:00+00:00"}


@pytest.mark.parametrize("now", [datetime(2026, 1, 5, 12, 0), "2026-01-05T12:00:00Z", None])
def test_now_must_be_aware(now):
    with pytest.raises(ToilInputError, match="timezone-aware"):
        demand_from_kubernetes(pod_list(), node_list(), now, {})


# ----------------------------------------------------------------------------- grouping


def _copies(data, count):
    """``count`` pods like ``data``, differing by name and uid (deserializing 10,000 would take ~15 s)."""
    first = one_pod(data)
    pods = []
    for index in range(count):
        pod = copy.copy(first)
        pod.metadata = copy.copy(first.metadata)
        pod.metadata.name = f"{first.metadata.name[:-5]}{index:05d}"
        pod.metadata.uid = f"uid-{index}"
        pods.append(pod)
    return pods


def test_ten_thousand_identical_pods_are_one_entry_quickly():
    pods = _copies(toil_pod("toil-6a1f3c0e-1", "00000"), 10_000)
    start = time.perf_counter()
    demand, _idle_since = demand_from_kubernetes(pods, node_list(make_node(NODE_A)), NOW, {})
    elapsed = time.perf_counter() - start
    assert demand["pods"] == [
        {"name": "toil/toil-6a1f3c0e-1-00000 (+9999)", "cpu": "2", "memory": "4608Mi", "ephemeral_storage": "10752Mi", "preemptible": True, "count": 10_000}
    ]
    assert elapsed < 1.0, f"{elapsed:.3f} s for 10,000 pods"


def test_grouping_by_shape_and_spot():
    pods = pod_list(
        toil_pod("toil-6a1f3c0e-1", "aaaaa"),
        toil_pod("toil-6a1f3c0e-2", "bbbbb"),
        toil_pod("toil-6a1f3c0e-1", "ccccc"),
        make_pod("web-1", containers=({"cpu": "2", "memory": "4608Mi", "ephemeral-storage": "10752Mi"},)),  # same shape, same spot: grouped
        make_pod("web-2", containers=({"cpu": "2", "memory": "4608Mi", "ephemeral-storage": "10752Mi"},), node_selector={CAPACITY: "ON_DEMAND"}),
        toil_pod("toil-6a1f3c0e-2", "ddddd"),
    )
    demand, _idle_since = demand_from_kubernetes(pods, node_list(), NOW, {})
    assert [(p["name"], p["count"], p["preemptible"]) for p in demand["pods"]] == [
        ("toil/toil-6a1f3c0e-1-aaaaa (+2)", 3, True),
        ("toil/toil-6a1f3c0e-2-bbbbb (+1)", 2, False),
        ("default/web-2", 1, False),
    ]
    ungrouped, _idle_since = demand_from_kubernetes(pods, node_list(), NOW, {}, group=False)
    assert [p["count"] for p in ungrouped["pods"]] == [1] * 6
    assert ungrouped["pods"][3]["name"] == "default/web-1"


# ----------------------------------------------------------------------------- without the client


def test_pure_functions_work_without_the_kubernetes_package(monkeypatch):
    """ansible-test's import sanity test imports module_utils without extra packages."""
    for name in [n for n in sys.modules if n == "kubernetes" or n.startswith("kubernetes.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # import kubernetes -> ImportError
    bare = SimpleNamespace()
    for split in (kube_client, kube_demand):  # loading clients, and the demand: each imports without the package
        spec = importlib.util.spec_from_file_location(f"{split.__name__.rsplit('.', 1)[1]}_without_client", split.__file__)
        loaded = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, loaded)  # as the import system does (dataclasses look it up)
        spec.loader.exec_module(loaded)
        vars(bare).update(vars(loaded))
    assert bare.HAS_KUBERNETES is False
    ns = SimpleNamespace
    pod = ns(
        metadata=ns(name="p", namespace="n", annotations=None, owner_references=None, deletion_timestamp=None, labels=None, uid="u"),
        spec=ns(containers=[ns(name="c", resources=ns(requests={"cpu": "1"}, limits=None))], node_name=None, affinity=None, node_selector=None),
        status=ns(phase="Pending", conditions=[ns(type="PodScheduled", status="False", reason="Unschedulable")]),
    )
    node = ns(
        metadata=ns(name="n1", labels={}, annotations=None),
        spec=ns(provider_id="aws:///z/i-0abc1234", taints=None, unschedulable=None),
        status=ns(allocatable={"cpu": "4"}),
    )
    demand, timers = bare.demand_from_kubernetes([pod], [node], NOW, {})
    assert demand["pods"] == [{"name": "n/p", "cpu": "1", "memory": "0", "ephemeral_storage": "0", "preemptible": True, "count": 1}]
    assert demand["nodes"][0]["instance_id"] == "i-0abc1234"
    with pytest.raises(ToilInputError, match="pip install kubernetes"):
        bare.load_clients()


# ----------------------------------------------------------------------------- load_clients

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: toil
  cluster: {server: "https://10.0.0.10:6443", insecure-skip-tls-verify: true}
- name: other
  cluster: {server: "https://other.example:6443", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: abc123}
contexts:
- name: toil-admin
  context: {cluster: toil, user: admin}
- name: other-admin
  context: {cluster: other, user: admin}
current-context: toil-admin
"""


@pytest.fixture
def no_kube_env(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def _host(clients):
    core, policy = clients
    assert isinstance(core, client.CoreV1Api)
    assert isinstance(policy, client.PolicyV1Api)
    assert core.api_client is policy.api_client
    return core.api_client.configuration.host


@pytest.mark.parametrize(("context", "host"), [(None, "https://10.0.0.10:6443"), ("other-admin", "https://other.example:6443")])
def test_load_clients_from_kubeconfig(no_kube_env, context, host):
    path = no_kube_env / "admin.conf"
    path.write_text(KUBECONFIG)
    default_host = client.Configuration.get_default_copy().host
    assert _host(load_clients(str(path), context)) == host
    assert client.Configuration.get_default_copy().host == default_host  # the process-wide default is untouched


def test_load_clients_from_kubeconfig_env_then_home(no_kube_env, monkeypatch):
    home = no_kube_env / "home" / ".kube"
    home.mkdir(parents=True)
    (home / "config").write_text(KUBECONFIG.replace("10.0.0.10", "10.0.0.11"))
    assert _host(load_clients()) == "https://10.0.0.11:6443"
    env_file = no_kube_env / "env.conf"
    env_file.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", f"{no_kube_env / 'missing.conf'}{os.pathsep}{env_file}")
    assert _host(load_clients()) == "https://10.0.0.10:6443"


def test_load_clients_in_cluster(no_kube_env, monkeypatch):
    token = no_kube_env / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
    cert = no_kube_env / "ca.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(cert))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert _host(load_clients()) == "https://10.96.0.1:443"


@pytest.mark.parametrize(
    ("kubeconfig", "context", "message"),
    [
        (None, None, r"No Kubernetes configuration found: give kubeconfig \(or set KUBECONFIG\), host with api_key or client_cert and client_key"),
        (None, "toil-admin", r"context 'toil-admin' needs a kubeconfig"),
        ("missing.conf", None, r"kubeconfig .*missing.conf does not exist"),
        ("admin.conf", "nope", r"Invalid Kubernetes configuration .*nope"),
    ],
)
def test_load_clients_refuses(no_kube_env, monkeypatch, kubeconfig, context, message):
    (no_kube_env / "admin.conf").write_text(KUBECONFIG)
    if context:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")  # a context never means in-cluster
    with pytest.raises(ToilInputError, match=message):
        load_clients(str(no_kube_env / kubeconfig) if kubeconfig else None, context)


@pytest.fixture
def no_k8s_auth_env(no_kube_env, monkeypatch):
    for name in list(os.environ):
        if name.startswith("K8S_AUTH_"):
            monkeypatch.delenv(name)
    return no_kube_env


def test_load_clients_from_kubernetes_core_options_without_a_kubeconfig(no_k8s_auth_env, tmp_path):
    """host + api_key (AWX's Kubernetes credential) reach the server with no kubeconfig anywhere; the other options
    are set as kubernetes.core sets them."""
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    core, _policy = load_clients(
        auth={"host": "https://10.0.0.10:6443/", "api_key": "tok", "ca_cert": str(ca), "validate_certs": True, "proxy": "http://proxy:3128"}
    )
    configuration = core.api_client.configuration
    assert configuration.host == "https://10.0.0.10:6443"
    assert configuration.api_key == {"authorization": "Bearer tok"}
    assert configuration.ssl_ca_cert == str(ca) and configuration.verify_ssl is True and configuration.proxy == "http://proxy:3128"
    core, _policy = load_clients(auth={"host": "https://10.0.0.10:6443", "client_cert": "/c.crt", "client_key": "/c.key", "impersonate_user": "me"})
    assert (core.api_client.configuration.cert_file, core.api_client.configuration.key_file) == ("/c.crt", "/c.key")
    assert core.api_client.default_headers["Impersonate-User"] == "me"
    # validate_certs is amazon.aws's (AWS's certificates): turning it off leaves the API server's checked
    core, _policy = load_clients(auth={"host": "https://10.0.0.10:6443", "api_key": "tok", "validate_certs": False})
    assert core.api_client.configuration.verify_ssl is True


def test_load_clients_reads_k8s_auth_variables_as_awx_sets_them(no_k8s_auth_env, monkeypatch):
    monkeypatch.setenv("K8S_AUTH_HOST", "https://10.0.0.12:6443")
    monkeypatch.setenv("K8S_AUTH_API_KEY", "awx-token")
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "False")
    configuration = load_clients()[0].api_client.configuration
    assert (configuration.host, configuration.api_key, configuration.verify_ssl) == ("https://10.0.0.12:6443", {"authorization": "Bearer awx-token"}, False)
    # An option given wins over its variable; a kubeconfig given is read, with the variables' settings over it.
    path = no_k8s_auth_env / "admin.conf"
    path.write_text(KUBECONFIG)
    assert load_clients(auth={"api_key": "mine"})[0].api_client.configuration.api_key == {"authorization": "Bearer mine"}
    monkeypatch.delenv("K8S_AUTH_HOST")
    configuration = load_clients(str(path))[0].api_client.configuration
    assert configuration.host == "https://10.0.0.10:6443" and configuration.api_key == {"authorization": "Bearer awx-token"}


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"host": "10.0.0.1:6443", "api_key": "t"}, "host must be the API server's URL"),
        ({"host": "file:///etc/passwd", "api_key": "t"}, "host must be the API server's URL"),
        ({"host": "https://10.0.0.1:6443\r\nX-Evil: 1", "api_key": "t"}, "host must be the API server's URL"),
        ({"host": "https://10.0.0.1:6443", "api_key": "t\r\nImpersonate-User: admin"}, "api_key holds a control character"),
        ({"host": "https://10.0.0.1:6443", "api_key": "t", "impersonate_user": "a\nb"}, "Impersonate-User must be one line"),
        ({"host": "https://10.0.0.1:6443", "api_key": "t", "impersonate_groups": ["a", "b"]}, "at most one group"),
    ],
)
def test_load_clients_refuses_bad_connection_options(no_k8s_auth_env, auth, message):
    with pytest.raises(ToilInputError, match=message):
        load_clients(auth=auth)


# ----------------------------------------------------------------------------- a fake API


class FakeHTTPResponse:
    """What the client's REST layer hands ApiException: status, reason, body, headers."""

    def __init__(self, status, reason, body, headers=None):
        self.status = status
        self.reason = reason
        self.data = json.dumps(body).encode()
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def getheaders(self):
        return self.headers


def api_error(status, reason, message, api_reason, details=None, headers=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": api_reason, "code": status}
    if details is not None:
        body["details"] = details
    return ApiException(http_resp=FakeHTTPResponse(status, reason, body, headers))


def pdb_refusal(name="web-pdb", desired=2, current=2):
    """The API server's answer when a PodDisruptionBudget allows no disruption (pkg/registry/core/pod/storage/eviction.go)."""
    return api_error(
        429,
        "Too Many Requests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
        "TooManyRequests",
        {"causes": [{"reason": "DisruptionBudget", "message": f"The disruption budget {name} needs {desired} healthy pods and has {current} currently"}]},
    )


def rate_limited():
    """API Priority and Fairness: a 429 with no cause."""
    return api_error(429, "Too Many Requests", "Too many requests, please try again later.", "TooManyRequests", {}, {"Retry-After": "1"})


def not_found(kind, name):
    return api_error(404, "Not Found", f'{kind} "{name}" not found', "NotFound", {"name": name, "kind": kind})


class FakeCoreV1:
    """Answers like CoreV1Api for the calls the adapter makes, from JSON, and records them.

    ``refusals``: ``{"ns/pod": n}`` -> the first n evictions answer a PDB 429 (or ``errors``
    gives the exceptions to raise); an evicted pod terminates and is gone after
    ``terminating_lists`` more listings of its node.
    """

    def __init__(self, nodes, pods, refusals=None, errors=None, terminating_lists=1, page_size=None, arrivals=None):
        self.nodes = {n["metadata"]["name"]: n for n in nodes}
        self.pods = list(pods)
        self.refusals = dict(refusals or {})
        self.errors = dict(errors or {})
        self.terminating_lists = terminating_lists
        self.page_size = page_size
        self.arrivals = list(arrivals or [])  # pods that land on the node at the n-th listing: (n, pod)
        self.calls = []
        self.countdown = {}
        self.lists = 0
        self._pending_page = []

    def _pods_now(self, field_selector):
        self.lists += 1
        for when, pod in list(self.arrivals):
            if when <= self.lists:
                self.pods.append(pod)
                self.arrivals.remove((when, pod))
        node = None
        for requirement in (field_selector or "").split(","):  # the two selectors the callers send
            if requirement.startswith("spec.nodeName="):
                node = requirement.split("=", 1)[1]
            elif requirement:
                assert requirement in ("status.phase!=Succeeded", "status.phase!=Failed"), requirement
        unfinished = "status.phase!=" in (field_selector or "")
        items = [p for p in self.pods if (node is None or p["spec"].get("nodeName") == node)]
        items = [p for p in items if not (unfinished and p["status"].get("phase") in ("Succeeded", "Failed"))]
        for pod in list(items):
            uid = pod["metadata"]["uid"]
            if uid in self.countdown and node is not None:
                self.countdown[uid] -= 1
                if self.countdown[uid] < 0:
                    self.pods.remove(pod)
                    items.remove(pod)
        return items

    def list_pod_for_all_namespaces(self, limit=None, _continue=None, field_selector=None, _preload_content=True):
        self.calls.append(("list_pod_for_all_namespaces", field_selector, _continue))
        items = self._pods_now(field_selector) if _continue is None else self._pending_page
        return self._page(items, _continue, "PodList", "V1PodList", _preload_content)

    def list_node(self, limit=None, _continue=None, _preload_content=True):
        self.calls.append(("list_node", None, _continue))
        return self._page(list(self.nodes.values()), _continue, "NodeList", "V1NodeList", _preload_content)

    def _page(self, items, token, kind, model_kind, preload=True):
        start = int(token or 0)
        size = self.page_size or len(items) or 1
        page = items[start : start + size]
        metadata = {"resourceVersion": "48213"}
        if start + size < len(items):
            metadata["continue"] = str(start + size)
            self._pending_page = items
        body = {"apiVersion": "v1", "kind": kind, "metadata": metadata, "items": copy.deepcopy(page)}
        return model(body, model_kind) if preload else FakeResponse(body)  # _preload_content=False: the HTTP response

    def read_node(self, name):
        self.calls.append(("read_node", name))
        if name not in self.nodes:
            raise not_found("nodes", name)
        return model(self.nodes[name], "V1Node")

    def patch_node(self, name, body):
        self.calls.append(("patch_node", name, body))
        self.nodes[name]["spec"]["unschedulable"] = body["spec"]["unschedulable"]
        return model(self.nodes[name], "V1Node")

    def create_namespaced_pod_eviction(self, name, namespace, body):
        self.calls.append(("create_namespaced_pod_eviction", f"{namespace}/{name}", body))
        assert isinstance(body, client.V1Eviction)
        assert (body.metadata.name, body.metadata.namespace) == (name, namespace)
        key = f"{namespace}/{name}"
        if self.errors.get(key):
            raise self.errors[key].pop(0)
        if self.refusals.get(key, 0) > 0:
            self.refusals[key] -= 1
            raise pdb_refusal()
        for pod in self.pods:
            if (pod["metadata"]["namespace"], pod["metadata"]["name"]) == (namespace, name):
                pod["metadata"]["deletionTimestamp"] = "2026-01-05T12:00:01Z"
                self.countdown[pod["metadata"]["uid"]] = self.terminating_lists
                return model({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, "V1Status")
        raise not_found("pods", name)

    def delete_node(self, name):
        self.calls.append(("delete_node", name))
        if self.nodes.pop(name, None) is None:
            raise not_found("nodes", name)
        return model({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}, "V1Status")

    def names(self):
        return [c[0] for c in self.calls]


class FakePolicyV1:
    def __init__(self, budgets):
        self.budgets = budgets
        self.calls = []

    def list_namespaced_pod_disruption_budget(self, namespace):
        self.calls.append(("list_namespaced_pod_disruption_budget", namespace))
        items = [b for b in self.budgets if b["metadata"]["namespace"] == namespace]
        return model({"apiVersion": "policy/v1", "kind": "PodDisruptionBudgetList", "metadata": {}, "items": items}, "V1PodDisruptionBudgetList")


def pdb(name, selector, namespace="default"):
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace, "generation": 1, "uid": f"uid-{name}"},
        "spec": {"minAvailable": 2, "selector": selector},
        "status": {
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": "False",
                    "reason": "InsufficientPods",
                    "message": "",
                    "observedGeneration": 1,
                    "lastTransitionTime": CREATED,
                }
            ],
            "currentHealthy": 2,
            "desiredHealthy": 2,
            "disruptionsAllowed": 0,
            "expectedPods": 2,
            "observedGeneration": 1,
        },
    }


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def node_a_pods():
    return [
        daemonset_pod("kube-proxy", NODE_A),
        daemonset_pod("kube-flannel-ds", NODE_A, {"cpu": "100m", "memory": "50Mi"}),
        mirror_pod("haproxy", NODE_A),
        make_pod("web-7c9f8d6b5-abcde", state="running", node=NODE_A, labels={"app": "web"}),
        make_pod("metrics-server-5f6d4b-xz9qp", "kube-system", state="running", node=NODE_A, labels={"k8s-app": "metrics-server"}),
        make_pod("old-job-x1", state="succeeded", node=NODE_A, owner=("Job", "old-job")),
        make_pod("web-7c9f8d6b5-fghij", state="running", node=NODE_B, labels={"app": "web"}),  # another node: untouched
    ]


def drain(fake, timeout=60, policy=None, clock=None):
    clock = clock or Clock()
    return drain_node(fake, NODE_A, timeout, clock.sleep, policy_v1=policy, clock=clock, poll_interval=5), clock


# ----------------------------------------------------------------------------- read_cluster


@pytest.mark.parametrize("page_size", [None, 2])
def test_read_cluster_lists_every_page(page_size):
    fake = FakeCoreV1([make_node(NODE_A), make_node(NODE_B)], node_a_pods(), page_size=page_size)
    pods, nodes = read_cluster(fake)
    # every pod but the finished one (old-job-x1), left out by the API server through the field selector
    assert [p.metadata.name for p in pods] == [p["metadata"]["name"] for p in node_a_pods() if p["metadata"]["name"] != "old-job-x1"]
    assert all(isinstance(p, ModelView) for p in pods)
    assert [n.metadata.name for n in nodes] == [NODE_A, NODE_B]
    assert fake.names().count("list_pod_for_all_namespaces") == (1 if page_size is None else 3)
    assert {c[1] for c in fake.calls if c[0] == "list_pod_for_all_namespaces"} == {"status.phase!=Succeeded,status.phase!=Failed"}
    demand, _idle_since = demand_from_kubernetes(pods, nodes, NOW, {})
    assert [n["name"] for n in demand["nodes"]] == [NODE_A, NODE_B]


def test_read_cluster_forbidden():
    class Forbidden(FakeCoreV1):
        def list_pod_for_all_namespaces(self, **kwargs):
            raise api_error(
                403,
                "Forbidden",
                'pods is forbidden: User "system:serviceaccount:toil:scaler" cannot list resource "pods" in API group "" at the cluster scope',
                "Forbidden",
                {"kind": "pods"},
            )

    with pytest.raises(KubeError, match=r'refused to list pods and nodes: 403 Forbidden: pods is forbidden: User "system:serviceaccount:toil:scaler"'):
        read_cluster(Forbidden([], []))


# ----------------------------------------------------------------------------- drain_node


def test_drain_evicts_waits_and_deletes():
    fake = FakeCoreV1([make_node(NODE_A), make_node(NODE_B)], node_a_pods())
    result, clock = drain(fake)
    assert result == {
        "node": NODE_A,
        "cordoned": True,
        "evicted": ["default/web-7c9f8d6b5-abcde", "kube-system/metrics-server-5f6d4b-xz9qp"],
        "skipped": [
            f"kube-system/kube-proxy-{digits(NODE_A, 5)}",
            f"kube-system/kube-flannel-ds-{digits(NODE_A, 5)}",
            f"kube-system/haproxy-{NODE_A}",
            "default/old-job-x1",
        ],
        "eviction_retries": 0,
        "deleted": True,
        "absent": False,
    }
    assert fake.names() == [
        "read_node",
        "list_pod_for_all_namespaces",
        "patch_node",
        "list_pod_for_all_namespaces",
        "create_namespaced_pod_eviction",
        "create_namespaced_pod_eviction",
        "list_pod_for_all_namespaces",  # both still terminating
        "list_pod_for_all_namespaces",  # gone
        "delete_node",
    ]
    assert fake.calls[2] == ("patch_node", NODE_A, {"spec": {"unschedulable": True}})
    assert all(c[1] == f"spec.nodeName={NODE_A}" for c in fake.calls if c[0] == "list_pod_for_all_namespaces")
    assert clock.sleeps == [5]
    assert NODE_A not in fake.nodes and NODE_B in fake.nodes


def test_drain_retries_a_pdb_refusal_then_succeeds():
    fake = FakeCoreV1([make_node(NODE_A)], node_a_pods(), refusals={"default/web-7c9f8d6b5-abcde": 2})
    result, clock = drain(fake)
    assert result["deleted"] is True
    assert result["eviction_retries"] == 2
    assert result["evicted"] == ["kube-system/metrics-server-5f6d4b-xz9qp", "default/web-7c9f8d6b5-abcde"]
    evictions = [c[1] for c in fake.calls if c[0] == "create_namespaced_pod_eviction"]
    assert evictions == ["default/web-7c9f8d6b5-abcde", "kube-system/metrics-server-5f6d4b-xz9qp", "default/web-7c9f8d6b5-abcde", "default/web-7c9f8d6b5-abcde"]
    assert clock.sleeps[:2] == [5, 5]


@pytest.mark.parametrize(
    ("error", "budgets", "named"),
    [
        pytest.param(
            pdb_refusal, None, r"PodDisruptionBudget default/web-pdb: The disruption budget web-pdb needs 2 healthy pods and has 2 currently", id="named-by-api"
        ),
        pytest.param(
            rate_limited,
            [pdb("web-pdb", {"matchLabels": {"app": "web"}}), pdb("db-pdb", {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]})],
            r"PodDisruptionBudget default/web-pdb: Too many requests",
            id="named-by-selector",
        ),
        pytest.param(rate_limited, None, r"an unnamed PodDisruptionBudget or API rate limit: Too many requests", id="unnamed"),
    ],
)
def test_drain_times_out_naming_pod_and_pdb(error, budgets, named):
    web = "default/web-7c9f8d6b5-abcde"
    fake = FakeCoreV1([make_node(NODE_A)], node_a_pods(), errors={web: [error() for _index in range(100)]})
    policy = FakePolicyV1(budgets) if budgets is not None else None
    clock = Clock()
    with pytest.raises(DrainError) as raised:
        drain(fake, timeout=30, policy=policy, clock=clock)
    message = str(raised.value)
    assert message.startswith(f"Could not drain node {NODE_A} within 30 s: the Eviction API kept refusing {web} (blocked by ")
    assert raised.match(named)
    assert message.endswith(f"Node {NODE_A} was uncordoned.")
    assert raised.value.pods == [web]
    assert raised.value.node == NODE_A
    assert "delete_node" not in fake.names()
    assert fake.calls[-1] == ("patch_node", NODE_A, {"spec": {"unschedulable": False}})
    assert sum(clock.sleeps) == 30
    assert fake.nodes[NODE_A]["spec"]["unschedulable"] is False


def test_drain_of_a_node_already_cordoned_leaves_it_cordoned_on_failure():
    fake = FakeCoreV1([make_node(NODE_A, unschedulable=True)], node_a_pods(), refusals={"default/web-7c9f8d6b5-abcde": 10**6})
    with pytest.raises(DrainError, match=r"within 10 s") as raised:
        drain(fake, timeout=10)
    assert "uncordoned" not in str(raised.value)
    assert "patch_node" not in fake.names()


@pytest.mark.parametrize(
    ("pod", "message"),
    [
        pytest.param(
            toil_pod("toil-6a1f3c0e-1", "x7k2p", state="running", node=NODE_A),
            r'pod toil/toil-6a1f3c0e-1-x7k2p is annotated cluster-autoscaler.kubernetes.io/safe-to-evict: "false" \(Toil jobs are\)\.$',
            id="toil-pod",
        ),
        pytest.param(
            make_pod("debug-shell", state="running", node=NODE_A, owner=None), r"pod default/debug-shell has no controller to recreate it\.$", id="bare-pod"
        ),
    ],
)
def test_drain_refuses_a_node_with_a_pod_not_safe_to_evict(pod, message):
    fake = FakeCoreV1([make_node(NODE_A)], [*node_a_pods(), pod])
    with pytest.raises(DrainRefusedError, match=message) as raised:
        drain(fake)
    assert raised.value.pods == [f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"]
    assert isinstance(raised.value, ToilInputError)  # ToilAWSModule.input_errors() reports it without a traceback
    assert fake.names() == ["read_node", "list_pod_for_all_namespaces"]  # nothing changed


def test_drain_refuses_when_a_toil_pod_lands_before_the_cordon():
    toil = toil_pod("toil-6a1f3c0e-1", "x7k2p", state="running", node=NODE_A)
    fake = FakeCoreV1([make_node(NODE_A)], node_a_pods(), arrivals=[(2, toil)])
    with pytest.raises(DrainRefusedError, match=r"was uncordoned\.$"):
        drain(fake)
    assert [c for c in fake.calls if c[0] == "patch_node"] == [
        ("patch_node", NODE_A, {"spec": {"unschedulable": True}}),
        ("patch_node", NODE_A, {"spec": {"unschedulable": False}}),
    ]
    assert "create_namespaced_pod_eviction" not in fake.names()


def test_drain_times_out_on_pods_that_keep_terminating():
    fake = FakeCoreV1([make_node(NODE_A)], node_a_pods(), terminating_lists=10**6)
    with pytest.raises(DrainError, match=r"evicted pod\(s\) default/web-7c9f8d6b5-abcde, kube-system/metrics-server-5f6d4b-xz9qp are still terminating"):
        drain(fake, timeout=20)
    assert "delete_node" not in fake.names()


def test_drain_of_an_absent_node():
    fake = FakeCoreV1([], [])
    result, _idle_since = drain(fake)
    assert result["absent"] is True and result["deleted"] is False
    assert fake.names() == ["read_node"]


def test_drain_with_pods_gone_or_node_gone_meanwhile():
    web = "default/web-7c9f8d6b5-abcde"

    class Meanwhile(FakeCoreV1):
        def create_namespaced_pod_eviction(self, name, namespace, body):
            if f"{namespace}/{name}" == web:  # its controller deleted it a moment ago
                self.pods = [p for p in self.pods if p["metadata"]["name"] != name]
            return super().create_namespaced_pod_eviction(name, namespace, body)

        def delete_node(self, name):
            self.calls.append(("delete_node", name))
            raise not_found("nodes", name)

    fake = Meanwhile([make_node(NODE_A)], node_a_pods())
    result, _idle_since = drain(fake)
    assert result["deleted"] is True
    assert result["evicted"] == ["kube-system/metrics-server-5f6d4b-xz9qp"]


def test_drain_fails_clearly_on_another_api_error():
    web = "default/web-7c9f8d6b5-abcde"
    error = api_error(
        500, "Internal Server Error", "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.", "InternalError"
    )
    fake = FakeCoreV1([make_node(NODE_A)], node_a_pods(), errors={web: [error]})
    with pytest.raises(
        DrainError, match=r"the Kubernetes API answered 500 Internal Server Error: This pod has more than one PodDisruptionBudget.*was uncordoned"
    ):
        drain(fake)
    assert "delete_node" not in fake.names()


# ----------------------------------------------------------------------------- JSON views (kube_objects.py)


def _corpus():
    """Pods and nodes as the API returns them, covering every field the demand reads (and more)."""
    pods = [toil_pod(job, "x7k2p", state) for job in TOIL_JOBS for state in ("unschedulable", "gated", "nominated", "new", "creating", "running")]
    pods += node_a_pods() + [
        make_pod("sidecars", init_containers=({"cpu": "1", "restartPolicy": "Always"}, {"cpu": "2"}), overhead={"cpu": "250m"}),
        make_pod("pod-level", pod_resources={"cpu": "3", "memory": "1Gi"}, node_selector={"eks.amazonaws.com/capacityType": "ON_DEMAND"}),
        make_pod("leaving", state="running", node=NODE_B, deleting=True, annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}),
        make_pod("gpu-job", containers=({"limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "2"}},), node_selector={ARCH: "amd64"}),
        make_pod("arm-job", affinity=_required([{"key": ARCH, "operator": "NotIn", "values": ["amd64"]}])),
    ]
    nodes = [make_node(NODE_A), make_node(NODE_B, provider_id="", ephemeral=False, unschedulable=True, spot=False)]
    nodes.append(make_node(LEADER, instance="i-0fedcba9876543210", pool=None, spot=False, control_plane=True))
    return pods, nodes


def _same(modelled, viewed, where):
    """The view answers every attribute of the model, recursively, with the same value."""
    if isinstance(modelled, list):
        assert isinstance(viewed, list) and len(viewed) == len(modelled), where
        for index, (a, b) in enumerate(zip(modelled, viewed, strict=True)):
            _same(a, b, f"{where}[{index}]")
    elif hasattr(modelled, "attribute_map"):
        assert isinstance(viewed, ModelView), where
        for name in modelled.attribute_map:
            _same(getattr(modelled, name), getattr(viewed, name), f"{where}.{name}")
    else:
        assert viewed == modelled and type(viewed) is type(modelled), (where, viewed, modelled)


@pytest.mark.parametrize("index", range(len(_corpus()[0]) + len(_corpus()[1])))
def test_a_json_view_answers_every_attribute_as_the_clients_model(index):
    objects = [(p, "V1Pod") for p in _corpus()[0]] + [(n, "V1Node") for n in _corpus()[1]]
    data, kind = objects[index]
    _same(model(data, kind), ModelView(copy.deepcopy(data), kind), kind)


@pytest.mark.parametrize("pruned", [False, True], ids=["whole", "pruned"])
def test_the_demand_read_from_json_views_is_the_demand_read_from_models(pruned):
    pods, nodes = _corpus()
    from_models = kube_demand.read_demand(pod_list(*pods), node_list(*nodes), NOW, {NODE_B: "2026-01-05T11:00:00+00:00"})
    listed = [prune_pod(p) if pruned else p for p in copy.deepcopy(pods)]
    from_views = kube_demand.read_demand(views(listed, "V1Pod"), views(copy.deepcopy(nodes), "V1Node"), NOW, {NODE_B: "2026-01-05T11:00:00+00:00"})
    assert from_views == from_models
    assert from_models[0] and from_models[1]  # the corpus has demand and workers


def test_what_the_scaler_never_reads_is_left_out_of_a_listed_pod_and_reading_it_fails():
    pods, nodes = _corpus()
    fake = FakeCoreV1([copy.deepcopy(n) for n in nodes], copy.deepcopy(pods), page_size=7)
    listed, _nodes = read_cluster(fake)
    unread = [p for p in listed if p._data["spec"].get("volumes") is UNREAD]
    assert unread, "the corpus has pods with volumes, and the listing leaves them out"
    pod = unread[0]
    assert all(c._data.get("volumeMounts") in (None, UNREAD) for c in pod.spec.containers)
    assert pod.spec.containers[0].resources.requests  # what the scaler reads is kept
    with pytest.raises(UnreadField, match=r"V1PodSpec.volumes \(volumes\) was left out"):
        assert pod.spec.volumes is None  # never reached: reading raises
    with pytest.raises(UnreadField, match=r"V1Container.volume_mounts \(volumeMounts\) was left out"):
        assert next(c for c in pod.spec.containers if c._data.get("volumeMounts") is UNREAD).volume_mounts is None


def test_a_json_view_like_a_model_has_none_for_absent_fields_and_refuses_unknown_names():
    pod = ModelView({"metadata": {"name": "p", "labels": {"a": "b"}, "deletionTimestamp": "2026-01-05T11:58:03Z"}, "spec": {}}, "V1Pod")
    assert pod.status is None and pod.spec.node_name is None and pod.spec.containers is None
    assert pod.metadata.labels == {"a": "b"}  # a map stays a dict, not a view
    assert pod.metadata.deletion_timestamp == datetime(2026, 1, 5, 11, 58, 3, tzinfo=UTC)
    with pytest.raises(AttributeError, match="V1ObjectMetaView' object has no attribute 'nodeName'"):
        assert pod.metadata.nodeName is None  # never reached: the JSON name is not the model's
    with pytest.raises(ValueError, match="not a kubernetes model class"):
        ModelView({}, "V1Nope")


@pytest.mark.parametrize("enabled", [True, False])
def test_the_cycle_collector_is_paused_while_reading_and_restored_after_even_on_error(enabled):
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(KubeError), cycle_collector_paused():
            assert not gc.isenabled()
            raise KubeError("listing failed")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


# ----------------------------------------------------------------------------- drain_for_repair (issue 18)


def repair_drain(fake, ready=False, timeout=60):
    clock = Clock()
    return drain_for_repair(fake, NODE_A, timeout, ready=ready, sleep=clock.sleep, clock=clock, poll_interval=5), clock


def test_a_notready_nodes_repair_evicts_what_it_can_and_waits_for_nothing():
    toil = toil_pod("toil-6a1f3c0e-1", "x7k2p", state="running", node=NODE_A)
    fake = FakeCoreV1([make_node(NODE_A)], [*node_a_pods(), toil], refusals={"kube-system/metrics-server-5f6d4b-xz9qp": 10**6}, terminating_lists=10**6)
    result, clock = repair_drain(fake, ready=False, timeout=20)
    assert result["cordoned"] is True and result["absent"] is False
    assert result["evicted"] == ["default/web-7c9f8d6b5-abcde"]
    # Toil's pod (not safe to evict) is never evicted; the one a PDB keeps refusing is left at the deadline.
    assert sorted(result["left"]) == sorted([f"{toil['metadata']['namespace']}/{toil['metadata']['name']}", "kube-system/metrics-server-5f6d4b-xz9qp"])
    assert sum(clock.sleeps) == 20  # the eviction retries, bounded by the timeout; then no wait for the pods to go
    assert "delete_node" not in fake.names() and NODE_A in fake.nodes  # the caller deletes it after the instance
    assert fake.nodes[NODE_A]["spec"]["unschedulable"] is True  # never uncordoned


def test_a_ready_but_impaired_nodes_repair_waits_for_the_evicted_pods_within_the_timeout():
    fake = FakeCoreV1([make_node(NODE_A)], node_a_pods(), terminating_lists=10**6)
    result, clock = repair_drain(fake, ready=True, timeout=20)
    assert result["evicted"] == ["default/web-7c9f8d6b5-abcde", "kube-system/metrics-server-5f6d4b-xz9qp"]
    assert sorted(result["left"]) == ["default/web-7c9f8d6b5-abcde", "kube-system/metrics-server-5f6d4b-xz9qp"]  # still terminating
    assert sum(clock.sleeps) == 20
    fake = FakeCoreV1([make_node(NODE_A)], node_a_pods())
    result, _clock = repair_drain(fake, ready=True)
    assert result["left"] == []


def test_the_repair_of_an_absent_node_drains_nothing():
    result, _clock = repair_drain(FakeCoreV1([], []))
    assert result["absent"] is True and result["evicted"] == []
