"""Workloads on the Kubernetes API stand-in (harness.kube_api) as Toil and the kubelets make them, for the tests
of the scaler reading Kubernetes (test_scaler_kubernetes.py, test_cluster_week.py), and on a stand-in host's
control plane through harness.kube_remote (test_playbook_configure_cluster.py).

- ``toil_job``: a Job as Toil 9.6's Kubernetes batch system creates it; the stand-in's job controller makes its
  pod, Pending and Unschedulable.
- ``register_node``, ``register_nodes``: an instance's kubelet, or those of a pool's instances (``instances`` of a
  toil_nodepool/toil_scaler result), join.
- ``run_pods_on``: pending pods are bound and started, as the scheduler and the kubelet would.
- ``finish_jobs``: Toil's jobs end and Toil deletes them (with their pods).
"""

from __future__ import annotations

from harness.toil_scaler_runs import M5_LARGE, ZONE

SAFE_TO_EVICT = {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}
POOL_LABEL = "toil.cluster/pool"
NOT_SPOT = {  # Toil 9.6's required affinity of a non-preemptible job (kubernetes.py, _create_pod_spec)
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


def toil_job(kube, name, cores, memory, preemptible=True, run="toil-run-1"):
    """A Job as Toil 9.6's Kubernetes batch system creates it (``runner-container``, limits = requests, annotated
    not safe to evict); the stand-in's job controller makes its pod, Pending and Unschedulable."""
    resources = {"cpu": str(cores), "memory": str(memory)}
    spec = {"containers": [{"name": "runner-container", "image": "quay.io/ucsc_cgl/toil:9.6.0", "resources": {"requests": resources, "limits": resources}}]}
    spec["restartPolicy"] = "Never"
    if not preemptible:
        spec["affinity"] = NOT_SPOT
    job = {
        "metadata": {"name": name, "labels": {"toil_run": run}},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"toil_run": run}, "annotations": SAFE_TO_EVICT}, "spec": spec}},
    }
    return kube.create("jobs", job)


def register_node(kube, name, instance_id, private_ip, pool, *, zone=ZONE, spot=False, provider=True, ready=True, allocatable=None):
    """One instance's kubelet registers its node; with ``provider`` it was given --provider-id, as the kubernetes
    role now starts it (without, a node joined before that, matched by its DNS name or address)."""
    allocatable = allocatable or M5_LARGE
    kube.add_node(
        name,
        provider_id=f"aws:///{zone}/{instance_id}" if provider else None,
        labels={POOL_LABEL: pool, **({"eks.amazonaws.com/capacityType": "SPOT"} if spot else {})},
        allocatable={"cpu": allocatable["cpu"], "memory": allocatable["memory"], "ephemeral-storage": allocatable["ephemeral_storage"], "pods": "110"},
        addresses={"InternalIP": private_ip, "Hostname": name},
        ready=ready,
    )
    return name


def register_nodes(kube, pool, instances, allocatable=None):
    """The kubelets of ``instances`` (a pool's ``instances`` in the scaler's result) register their nodes."""
    return [
        register_node(
            kube,
            f"ip-{instance['private_ip'].replace('.', '-')}.us-west-2.compute.internal",
            instance["instance_id"],
            instance["private_ip"],
            pool,
            zone=instance["zone"] or ZONE,
            spot=instance["preemptible"],
            allocatable=allocatable,
        )
        for instance in instances
    ]


def run_pods_on(kube, placements):
    """``{pod name: node name}``: bind each pending pod and start it, as the scheduler and the kubelet would."""
    for pod, node in placements.items():
        if hasattr(kube, "bind"):  # harness.kube_remote.RemoteKube: through the API, as the scheduler binds
            kube.bind(pod, node)
        else:
            kube.store.bind("default", pod, {"target": {"kind": "Node", "name": node}})
        status = kube.get("pods", pod)["status"]
        status["phase"] = "Running"
        status["conditions"] = [c for c in status["conditions"] if c["type"] != "Ready"] + [{"type": "Ready", "status": "True"}]
        kube.update_status("pods", pod, status)


def pods_of(kube, job):
    return sorted(p["metadata"]["name"] for p in kube.objects("pods") if p["metadata"]["labels"].get("job-name") == job)


def finish_jobs(kube, prefix="admin-toil-"):
    """Toil's jobs are done: Toil deletes each Job (propagation Background), and the garbage collector, which the
    stand-in does not run, then deletes the Job's pods: done here."""
    for job in kube.objects("jobs"):
        name = job["metadata"]["name"]
        if name.startswith(prefix):
            kube.delete("jobs", name, propagation="Background")
            for pod in pods_of(kube, name):
                kube.delete("pods", pod)
