"""One scaler cycle against a large cluster: 10,000 pending Toil pods and 1,000 busy nodes on the Kubernetes API stand-in.

A cycle is what toil_scaler does before it calls AWS: list the pods and the nodes (pages of 500), read them into
pod groups and worker nodes (kube_demand.read_demand), pack and decide (scaler.plan). Two readers, side by side
in one run, each in a fresh process of .venv's Python (time.perf_counter around the cycle, and around its part after
the listing: grouping the pods, packing, deciding; peak resident memory from /proc/self/status VmHWM, the whole process, imports
included):

- ours: the scaler's own reading (scaler.read_pods_and_nodes, without EC2): every list as raw JSON
  (``_preload_content=False``), finished pods left out by a field selector, managedFields dropped, objects read
  through kube_objects' views, Python's cycle collector paused meanwhile;
- anchor: the same cycle reading through the kubernetes client's model objects (``list_all`` of
  ``list_pod_for_all_namespaces`` and ``list_node``), which is how the scaler read before and how most Python
  controllers read.

The pods are Toil 9.6's (harness.kube_workloads' Job template, shapes from bench_scaler.workload) as the API
server returns them: defaulted fields, the service-account volume, tolerations and one managedFields entry; each
node runs one Toil pod; 500 more pods have Succeeded. Both readers must find the same demand or the benchmark fails.
"""

from __future__ import annotations

import json
import subprocess
import sys

from harness.kube_api import KubeApi
from harness.paths import REPO

sys.path.insert(0, str(REPO / "tests" / "bench"))
from bench_scaler import workload  # noqa: E402 - the same 10,000-job mix as the packing benchmark

PENDING, NODES, FINISHED, RUNS = 10_000, 1_000, 500, 3
POOLS = (("m5.xlarge", 4, 16384, True), ("m5.4xlarge", 16, 65536, False), ("r5.4xlarge", 16, 131072, True))
CYCLE = r"""
import json, sys, time
from datetime import UTC, datetime
from types import SimpleNamespace
from ansible_collections.toil.cluster.plugins.module_utils import kube_client, kube_demand, scaler
from ansible_collections.toil.cluster.plugins.module_utils.binpacking import PoolShape, node_capacity

mode, kubeconfig, pools = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
shapes = [PoolShape(name, node_capacity(vcpus, memory, 150), spot, 0, 2000, (name,)) for name, vcpus, memory, spot in pools]
settings = SimpleNamespace(beta_inertia=0.1, preemptible_compensation=0.0, scale_down_idle_seconds=600, demand=None, drain_timeout=60, budget=None)
def peak_mb():  # this process's own peak (VmHWM): ru_maxrss would also count the benchmark's process it was forked from
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
imported = peak_mb()
listed = []
read_cluster = scaler.read_cluster
def timed_read_cluster(core_v1):
    found = read_cluster(core_v1)
    listed.append(time.perf_counter())
    return found
scaler.read_cluster = timed_read_cluster  # only notes when the listing ends
start = time.perf_counter()
clients = kube_client.load_clients(kubeconfig)
if mode == "ours":  # the scaler's own reading (toil_scaler without EC2)
    observed = scaler.read_pods_and_nodes(settings, {}, print, clients=clients)
    groups, node_states = observed.pods, observed.nodes
else:
    pods, nodes = kube_client.list_all(clients[0].list_pod_for_all_namespaces), kube_client.list_all(clients[0].list_node)
    listed.append(time.perf_counter())
    groups, workers, _idle = kube_demand.read_demand(pods, nodes, datetime.now(UTC))
    node_states = [w.node_state() for w in workers]
packing, decisions = scaler.plan(shapes, groups, node_states, {}, settings)
end = time.perf_counter()
print(json.dumps({
    "seconds": end - start,
    "decide_seconds": end - listed[0],
    "peak_mb": peak_mb(),
    "imports_mb": imported,
    "pending": sum(g.count for g in groups),
    "workers": len(node_states),
    "new_nodes": packing.new_nodes,
}))
"""


def toil_pod(name, cores, memory, disk, preemptible, node=None):
    """A pod of Toil 9.6's Job as the job controller creates it, with the defaults kube-apiserver fills in."""
    resources = {"cpu": str(cores), "memory": str(memory + 512 * 2**20), "ephemeral-storage": str(disk + 512 * 2**20)}
    container = {
        "name": "runner-container",
        "image": "quay.io/ucsc_cgl/toil:9.6.0-py3.11",
        "command": ["_toil_contained_executor", "gASVkwAAAAAAAAB9lCiMB2NvbW1hbmSUjBJfdG9pbF9rdWJlcm5ldGVzX2V4ZWOUdS4="],
        "resources": {"requests": resources, "limits": resources},
        "volumeMounts": [
            {"name": "workdir", "mountPath": "/var/lib/toil"},
            {"name": "kube-api-access-x7k2p", "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    spec = {
        "volumes": [
            {"name": "workdir", "emptyDir": {}},
            {"name": "kube-api-access-x7k2p", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}},
        ],
        "containers": [container],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ],
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    if not preemptible:
        term = {"matchExpressions": [{"key": "eks.amazonaws.com/capacityType", "operator": "NotIn", "values": ["SPOT"]}]}
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    if node:
        spec["nodeName"] = node
    managed = {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1"}
    managed["fieldsV1"] = {"f:metadata": {"f:labels": {".": {}, "f:job-name": {}, "f:toil_run": {}}}, "f:spec": {"f:containers": {}, "f:volumes": {}}}
    metadata = {
        "name": name,
        "namespace": "default",
        "labels": {"job-name": name.rsplit("-", 1)[0], "toil_run": "toil-6a1f3c0e"},
        "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name.rsplit("-", 1)[0], "uid": "5e1f0c9a-0000-4000-8000-000000000001"}],
        "managedFields": [managed],
    }
    return {"metadata": metadata, "spec": spec}


def populate(kube):
    """The nodes, each running one Toil pod, the finished pods, then the pending ones (the stand-in marks them
    Unschedulable, as the scheduler would with no room)."""
    node_names = [f"ip-10-0-{index // 250}-{index % 250}.us-west-2.compute.internal" for index in range(NODES)]
    for index, name in enumerate(node_names):
        kube.add_node(
            name,
            provider_id=f"aws:///us-west-2a/i-{index:017x}",
            labels={"toil.cluster/pool": "m5.xlarge"},
            allocatable={"cpu": "4", "memory": "15739388Ki", "ephemeral-storage": "144Gi", "pods": "110"},
        )
    placed = [(f"toil-busy-{i}-a1b2c", name, "Running", 3) for i, name in enumerate(node_names)]
    placed += [(f"toil-done-{i}-a1b2c", node_names[i % NODES], "Succeeded", 1) for i in range(FINISHED)]
    for pod, node, phase, cores in placed:
        kube.create("pods", toil_pod(pod, cores, 2**30, 0, True, node=node))
        kube.update_status("pods", pod, {"phase": phase, "qosClass": "Guaranteed"})
    count = 0
    for job in workload(PENDING):
        for _copy in range(job["count"]):
            kube.create("pods", toil_pod(f"toil-{job['name']}-{count}-x7k2p", job["cores"], job["memory"], job["disk"], job["preemptible"]))
            count += 1


def cycle(mode, kubeconfig):
    env = {"PYTHONPATH": str(REPO / ".venv" / "collections"), "PATH": "/usr/bin:/bin"}
    completed = subprocess.run(
        [sys.executable, "-c", CYCLE, mode, kubeconfig, json.dumps(POOLS)], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the {mode} cycle failed: {completed.stderr[-3000:]}")
    return json.loads(completed.stdout)


def bench_scaler_cycle(_endpoint):
    with KubeApi() as kube:
        populate(kube)
        runs = {mode: [cycle(mode, kube.kubeconfig) for _run in range(RUNS)] for mode in ("ours", "models")}
    ours, models = (min(runs[mode], key=lambda r: r["seconds"]) for mode in ("ours", "models"))
    for key in ("pending", "workers", "new_nodes"):
        if ours[key] != models[key]:
            raise AssertionError(f"the readers disagree on {key}: JSON views {ours[key]}, models {models[key]}")
    if ours["pending"] != PENDING or ours["workers"] != NODES:
        raise AssertionError(f"expected {PENDING} pending pods and {NODES} workers, read {ours['pending']} and {ours['workers']}")
    peak = {mode: max(r["peak_mb"] for r in runs[mode]) for mode in runs}
    note = (
        f"{PENDING:,} pending pods + {NODES:,} nodes (+ {NODES + FINISHED:,} running/finished pods), best of {RUNS} fresh processes each; "
        f"peak RSS includes imports ({ours['imports_mb']:.0f} MB ours, {models['imports_mb']:.0f} MB anchor); new nodes {ours['new_nodes']}"
    )
    anchor = "client model objects"
    decide = {mode: min(r["decide_seconds"] for r in runs[mode]) for mode in runs}
    return [
        {"name": "scaler cycle: list, read, pack, decide", "ours": ours["seconds"], "anchor": models["seconds"], "anchor_name": anchor, "note": note},
        {"name": "scaler cycle: group, pack, decide (listed)", "ours": decide["ours"], "anchor": decide["models"], "anchor_name": anchor},
        {"name": "scaler cycle: peak memory", "ours": peak["ours"], "anchor": peak["models"], "anchor_name": anchor, "unit": "MB"},
    ]


BENCHMARKS = [bench_scaler_cycle]
