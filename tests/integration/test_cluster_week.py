"""A cluster's week (issue 17), as a Toil user lives it, on the embedded AWS endpoint and the Kubernetes API stand-in.

Every AWS call goes through the recording proxy, which answers a reused ClientToken as EC2 does (the same
parameters: the first launch's instances, whatever their state now; other parameters: IdempotentParameterMismatch).
Kubernetes is harness.kube_api: nodes (registered with --provider-id, as the kubernetes role starts the kubelets),
Jobs, pods and the scaler's Lease are real API objects read through the real client. On Monday the real Toil
(.venv-toil, its Kubernetes batch system, as run_workflow starts it on the leader) runs a workflow: its pods are
the demand the scaler reads, and harness.kube_pod_runner stands in for the cluster's scheduler, kubelets and job
controller, running each pod's command here on the node it fits. Later days use Jobs shaped as Toil makes them
(harness.kube_workloads), which the test starts and ends itself. What only hosts can show (the login user's Toil
and kubeconfig, the workers' reset and re-join to a new leader) is proved on podman hosts in
the molecule scenario extensions/molecule/toil and test_playbook_configure_cluster.py. The ``aws`` fixture's leak check ends the week:
nothing is left.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time

import pytest

from harness.kube_pod_runner import PodRunner
from harness.kube_workloads import pods_of, register_nodes, run_pods_on, toil_job
from harness.paths import TOIL_PYTHON
from harness.toil_scaler_runs import CLUSTER, ZONE, by_pool, localhost_play, run_scaler, scalers_at_once
from harness.toil_workflows import SQUARES

POOL = [{"name": "ondemand", "node_types": "m5.large", "min_size": 0, "max_size": 3}]
LAUNCHES = ("RunInstances", "RequestSpotInstances", "CreateFleet")
WORKFLOW_TIMEOUT = 240  # seconds; the workflow takes about 30 s here


def cluster_play(key_pair, **options):
    launch = {"name": CLUSTER, "zone": ZONE, "leader_node_type": "t3.large", "key_pair_name": key_pair}
    return localhost_play([{"name": "cluster", "toil.cluster.toil_cluster": {**launch, **options}}])


def destroy_play():
    return localhost_play([{"name": "cluster", "toil.cluster.toil_cluster": {"name": CLUSTER, "zone": ZONE, "state": "absent"}}])


def toil_jobs(kube, stage, count):
    """``count`` Toil jobs of 1.5 cores and 2 GiB, not preemptible: one per m5.large node."""
    names = [f"admin-toil-{stage}-{index}" for index in range(count)]
    for name in names:
        toil_job(kube, name, 1.5, 2 * 2**30, preemptible=False)
    return names


def start_on(kube, jobs, nodes):
    run_pods_on(kube, {pods_of(kube, job)[0]: node for job, node in zip(jobs, nodes, strict=True)})


def ids(pool):
    return sorted(i["instance_id"] for i in pool["instances"])


def states(ec2, instance_ids):
    return {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=instance_ids)["Reservations"] for i in r["Instances"]}


def terminate(ec2, instance_id):
    """Behind the collection's back (a spot reclaim, an operator in the console)."""
    ec2.terminate_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig={"Delay": 1})


def run_workflow_while_scaling(kube, scale, tmp_path):
    """The real Toil (.venv-toil) runs the squares workflow against the API stand-in, whose pods harness.kube_pod_runner
    schedules and runs; whenever a pod has waited 2 s (no node fits it), the scaler runs, as its timer would, and the
    instances it launches register their nodes. Returns ({instance ID: node name}, the desired size of each run)."""
    (tmp_path / "squares.py").write_text(SQUARES)
    (tmp_path / "work").mkdir()
    (tmp_path / "meet").mkdir()
    env = {**os.environ, "KUBECONFIG": kube.kubeconfig, "TOIL_KUBERNETES_OWNER": "admin", "HOME": str(tmp_path)}
    command = [str(TOIL_PYTHON), "squares.py", "file:store", "--batchSystem", "kubernetes", "--workDir", str(tmp_path / "work")]
    # Two squares hold an m5.large and the four wait for each other (--meet), so two of them wait for a second node,
    # however slowly the machine runs.
    command += ["--out", str(tmp_path / "squares.txt"), "--meet", str(tmp_path / "meet"), "--clean", "always"]
    registered, desired, waiting_since = {}, [], {}
    with PodRunner(kube, path=[TOIL_PYTHON.parent]) as kubelets, open(tmp_path / "toil.log", "w") as log:
        toil = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WORKFLOW_TIMEOUT
        while toil.poll() is None:
            if time.monotonic() > deadline:
                toil.kill()
                pytest.fail(f"the workflow did not end in {WORKFLOW_TIMEOUT} s: {(tmp_path / 'toil.log').read_text()[-3000:]}")
            pending = {p["metadata"]["name"] for p in kube.objects("pods") if not p["spec"].get("nodeName")}
            waiting_since = {pod: waiting_since.get(pod, time.monotonic()) for pod in pending}
            if any(time.monotonic() - since >= 2 for since in waiting_since.values()):
                pool = by_pool(scale())["ondemand"]
                desired.append(pool["desired"])
                new = [i for i in pool["instances"] if i["instance_id"] not in registered]
                registered.update(zip([i["instance_id"] for i in new], register_nodes(kube, "ondemand", new), strict=True))
                waiting_since = {}
            time.sleep(0.5)
    output = (tmp_path / "toil.log").read_text()
    assert toil.returncode == 0 and "Finished toil run successfully" in output, output[-3000:]
    assert (tmp_path / "squares.txt").read_text() == "30"  # 1 + 4 + 9 + 16, summed by the follow-on
    assert kubelets.errors == [] and len(kubelets.placements) == 6  # the root, four squares and the total
    assert set(kubelets.placements.values()) <= set(registered.values()), (kubelets.placements, registered)
    return registered, desired


def test_a_clusters_week(aws, kube, run_playbook, key_pair, aws_calls, tmp_path):
    ec2 = aws.client("ec2")
    scale = functools.partial(run_scaler, run_playbook, tmp_path, kubeconfig=kube.kubeconfig, pools=POOL, env=aws_calls.env)
    try:
        # Monday: launch; the real Toil runs a workflow with its Kubernetes batch system. Each of its pods that no node
        # can hold waits, Unschedulable; the scaler reads them and grows the ranged pool; the new instances' kubelets
        # register and the pods run there, until the workflow ends and Toil deletes its Jobs.
        leader = run_playbook(cluster_play(key_pair), env=aws_calls.env).task("cluster")["leader"]["instance_id"]
        registered, desired = run_workflow_while_scaling(kube, scale, tmp_path)
        first = sorted(registered)
        nodes = [registered[i] for i in first]
        # From zero, the pool grows with the waiting pods: one node for the root job, a second for the two squares the
        # first cannot hold (a later run while their pods are being bound keeps 2); every instance it asked for
        # registered a node, where Toil's pods ran.
        assert desired[:2] == [1, 2] and set(desired[2:]) <= {2} and len(first) == 2, (desired, registered)
        assert kube.objects("jobs") == [] and kube.objects("pods") == []  # Toil deleted its Jobs, and so their pods

        # Tuesday: the idle nodes get their timer on the node (the default idle time has not passed: kept), then, past
        # the idle time, are drained and terminated.
        pool = by_pool(scale())["ondemand"]
        assert (pool["desired"], pool["victims"], ids(pool)) == (len(first), [], first), pool
        assert all(kube.get("nodes", node)["metadata"]["annotations"].get("toil.cluster/idle-since") for node in nodes)
        time.sleep(2)
        pool = by_pool(scale(scale_down_idle_seconds=1))["ondemand"]
        assert (pool["desired"], sorted(pool["victims"]), pool["instances"]) == (0, first, []), pool
        assert all(kube.get("nodes", node) is None for node in nodes)
        assert set(states(ec2, first).values()) == {"terminated"}

        # Wednesday: new work; the leader's timer and an AWX schedule start at the same moment: exactly one acts and
        # the other stops naming the holder of the Lease. The pool grows back from zero with new instances (a new
        # token, not the old answer).
        wednesday = toil_jobs(kube, "call", 2)
        launches = aws_calls.count("CreateFleet")
        acted, stopped = scalers_at_once(run_playbook, tmp_path, aws_calls, kubeconfig=kube.kubeconfig, pools=POOL)
        assert f"is held by {acted['lease']['holder']}" in stopped["msg"] and "changed nothing" in stopped["msg"], stopped["msg"]
        assert aws_calls.count("CreateFleet") == launches + 1
        pool = by_pool(acted)["ondemand"]
        second = ids(pool)
        assert pool["desired"] == 2 and len(second) == 2 and not set(second) & set(first), pool
        assert set(states(ec2, second).values()) <= {"pending", "running"}
        nodes = register_nodes(kube, "ondemand", pool["instances"])
        start_on(kube, wednesday, nodes)

        # Thursday: a worker is lost. Its node object outlives it (no cloud controller); the scaler deletes it and
        # never counts it. Its pod is garbage-collected, Toil issues the lost job again, and a new node comes for it.
        lost, kept = second
        lost_node = nodes[second.index(lost)]
        terminate(ec2, lost)
        result = scale()
        assert [n["name"] for n in result["removed_nodes"] if n["deleted"]] == [lost_node], result["removed_nodes"]
        assert kube.get("nodes", lost_node) is None
        pool = by_pool(result)["ondemand"]
        assert ids(pool) == [kept] and pool["desired"] <= POOL[0]["max_size"], pool
        for pod in [p["metadata"]["name"] for p in kube.objects("pods") if p["spec"].get("nodeName") == lost_node]:
            kube.delete("pods", pod)  # the pod garbage collector: its node is gone
        retry = toil_jobs(kube, "call-retry", 1)
        pool = by_pool(scale())["ondemand"]
        replacement = sorted(set(ids(pool)) - {kept})
        assert len(replacement) == 1 and replacement[0] not in first + second, pool
        start_on(kube, retry, register_nodes(kube, "ondemand", [i for i in pool["instances"] if i["instance_id"] in replacement]))

        # Friday: the leader is lost. A launch stops before any change, naming the live workers; with
        # replace_lost_leader a new leader comes, and the workers are the ones to re-join it.
        terminate(ec2, leader)
        aws_calls.clear()
        refused = run_playbook(cluster_play(key_pair), env=aws_calls.env, expect_rc=2).task("cluster")
        assert "has no leader" in refused["msg"] and all(i in refused["msg"] for i in [kept, *replacement]), refused["msg"]
        assert aws_calls.mutating_calls() == []
        back = run_playbook(cluster_play(key_pair, replace_lost_leader=True), env=aws_calls.env).task("cluster")
        assert back["replaced_lost_leader"] is True and back["leader"]["instance_id"] != leader
        assert back["rejoin_instance_ids"] == sorted([kept, *replacement])
        pool = by_pool(scale())["ondemand"]  # the scaler goes on with the new leader: nothing to change
        assert ids(pool) == sorted([kept, *replacement]) and pool["victims"] == []

        # Saturday: destroy; a new cluster under the same name launches and its pool grows (new tokens again).
        run_playbook(destroy_play(), env=aws_calls.env)
        again = run_playbook(cluster_play(key_pair), env=aws_calls.env).task("cluster")
        assert again["changed"] is True and again["leader"]["instance_id"] not in (leader, back["leader"]["instance_id"])
        for stale in [n["metadata"]["name"] for n in kube.objects("nodes") if n["metadata"]["name"] != "leader"]:
            kube.delete("nodes", stale)  # a new cluster's Kubernetes knows none of the old nodes
        for pod in [p["metadata"]["name"] for p in kube.objects("pods") if p["spec"].get("nodeName")]:
            kube.delete("pods", pod)
        toil_jobs(kube, "saturday", 1)
        pool = by_pool(scale())["ondemand"]
        assert len(pool["instances"]) == 1 and not set(ids(pool)) & set(first + second + replacement), pool
        assert sum(1 for _service, action in aws_calls.calls if action in LAUNCHES) >= 1
    finally:
        # Sunday: destroy; the aws fixture then proves nothing is left.
        run_playbook(destroy_play())
