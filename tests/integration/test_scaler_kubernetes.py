"""toil_scaler reading its demand from Kubernetes: the API stand-in (harness.kube_api) on 127.0.0.1 and the
embedded AWS endpoint. Pending pods are made as Toil makes them (a Job per Toil job, its pod Pending and
Unschedulable), nodes as kubelets register them; every test ends with the ``aws`` fixture's leak check.

The workloads (Toil's Jobs, the kubelets' nodes, running pods) come from harness.kube_workloads; the ``kube``
fixture (a fresh stand-in with the leader's node) from conftest.py.
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from ansible_collections.toil.cluster.plugins.module_utils.kube_demand import INTERRUPTION_TAINT
from harness.kube_api import KubeApi, client_certificate
from harness.kube_workloads import POOL_LABEL, pods_of, register_node, register_nodes, run_pods_on, toil_job
from harness.toil_scaler_runs import CLUSTER, by_pool, run_scaler, scaler_cluster, scalers_at_once


@pytest.fixture
def cluster(aws, run_playbook, key_pair):
    with scaler_cluster(run_playbook, key_pair) as result:
        yield result


def test_pending_pods_grow_the_pools_then_hold(aws, cluster, kube, run_playbook, tmp_path, aws_calls):
    for index in range(6):
        toil_job(kube, f"admin-toil-align-{index}", 1, 2**30)
    for index in range(2):
        toil_job(kube, f"admin-toil-merge-{index}", 1.5, 2 * 2**30, preemptible=False)

    grown = run_scaler(run_playbook, tmp_path, kubeconfig=kube.kubeconfig, env=aws_calls.env)
    pools = by_pool(grown)
    assert grown["changed"] is True and grown["queue_size"] == 8 and grown["unplaceable"] == []
    # m5.large: 2 align pods per spot node; 1 merge pod per on-demand node, never on spot.
    assert (pools["spot"]["desired"], pools["ondemand"]["desired"]) == (3, 2)
    assert len(pools["spot"]["instances"]) == 3 and all(i["preemptible"] for i in pools["spot"]["instances"])
    assert len(pools["ondemand"]["instances"]) == 2 and not any(i["preemptible"] for i in pools["ondemand"]["instances"])
    assert {"GET /api/v1/pods", "GET /api/v1/nodes"} <= set(kube.calls())
    assert all(r.query.get("limit") == "500" for r in kube.requests if r.path in ("/api/v1/pods", "/api/v1/nodes"))
    # Growing changes no node and no pod (the scaler's own Lease aside).
    assert not [r for r in kube.requests if r.method != "GET" and ("/nodes" in r.path or "/pods" in r.path)]

    # The nodes join and the pods run on them: the same demand is now supply, and nothing more is launched.
    spot = register_nodes(kube, "spot", pools["spot"]["instances"])
    ondemand = register_nodes(kube, "ondemand", pools["ondemand"]["instances"])
    placements = {pod: spot[index // 2] for index, pod in enumerate(p for i in range(6) for p in pods_of(kube, f"admin-toil-align-{i}"))}
    placements.update({pods_of(kube, f"admin-toil-merge-{i}")[0]: ondemand[i] for i in range(2)})
    run_pods_on(kube, placements)
    launches = sum(1 for _service, action in aws_calls.calls if action in ("RunInstances", "RequestSpotInstances", "CreateFleet"))
    held = run_scaler(run_playbook, tmp_path, kubeconfig=kube.kubeconfig, env=aws_calls.env)
    pools = by_pool(held)
    assert held["queue_size"] == 0 and (pools["spot"]["desired"], pools["ondemand"]["desired"]) == (3, 2)
    assert pools["spot"]["victims"] == [] and pools["ondemand"]["victims"] == []
    assert sum(1 for _service, action in aws_calls.calls if action in ("RunInstances", "RequestSpotInstances", "CreateFleet")) == launches


# ----------------------------------------------------------------------------- issue 17: nodes, timers, one scaler

IDLE_SINCE = "toil.cluster/idle-since"


def launch_workers(ec2, count, pool):
    """Worker instances of a pool as toil_nodepool launches them (cluster group and tags), straight through boto3."""
    leader = next(
        i
        for r in ec2.describe_instances(Filters=[{"Name": "tag:clusterName", "Values": [CLUSTER]}, {"Name": "tag:ToilNodeType", "Values": ["leader"]}])[
            "Reservations"
        ]
        for i in r["Instances"]
    )
    tags = {"clusterName": CLUSTER, "ToilNodeType": "worker", POOL_LABEL: pool, "toil.cluster/preemptible": "false"}
    answer = ec2.run_instances(
        ImageId=leader["ImageId"],
        InstanceType="m5.large",
        MinCount=count,
        MaxCount=count,
        SubnetId=leader["SubnetId"],
        SecurityGroupIds=[g["GroupId"] for g in leader["SecurityGroups"]],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )
    return sorted(answer["Instances"], key=lambda i: i["InstanceId"])


def register_instance(kube, instance, pool, provider=True, ready=True):
    """A boto3 instance's kubelet registers its node, named after its private DNS name (the kubelet's host name)."""
    return register_node(kube, instance["PrivateDnsName"], instance["InstanceId"], instance["PrivateIpAddress"], pool, provider=provider, ready=ready)


def states(ec2, ids):
    return {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}


def test_dead_nodes_go_idle_timers_live_on_the_nodes_and_one_scaler_acts_at_a_time(aws, cluster, kube, run_playbook, tmp_path, aws_calls):
    ec2 = aws.client("ec2")
    a, b, c = launch_workers(ec2, 3, "ondemand")
    node_a = register_instance(kube, a, "ondemand")
    node_b = register_instance(kube, b, "ondemand", provider=False)  # joined before the role gave --provider-id: matched by DNS name
    node_c = register_instance(kube, c, "ondemand")
    stale = "ip-10-9-9-9.us-west-2.compute.internal"  # an instance terminated long ago, no providerID: NotReady
    kube.add_node(stale, labels={POOL_LABEL: "ondemand"}, addresses={"InternalIP": "10.9.9.9"}, ready=False)
    ec2.terminate_instances(InstanceIds=[c["InstanceId"]])  # behind the collection's back: its node stays listed

    # The leader's timer: the dead nodes are deleted and not counted; the idle ones get their timer.
    first = run_scaler(run_playbook, tmp_path / "leader", kubeconfig=kube.kubeconfig, scale_down_idle_seconds=600, env=aws_calls.env)
    assert sorted((n["name"], n["deleted"]) for n in first["removed_nodes"]) == sorted([(node_c, True), (stale, True)])
    assert kube.get("nodes", node_c) is None and kube.get("nodes", stale) is None
    ondemand = by_pool(first)["ondemand"]
    assert (ondemand["current"], ondemand["desired"], ondemand["victims"]) == (2, 2, [])
    assert sorted(i["instance_id"] for i in ondemand["instances"]) == sorted([a["InstanceId"], b["InstanceId"]])
    timers = {name: kube.get("nodes", name)["metadata"]["annotations"].get(IDLE_SINCE) for name in (node_a, node_b)}
    assert all(t and t.endswith("Z") for t in timers.values()), timers
    assert {r.status for r in kube.requests if r.method == "PATCH"} == {200}
    lease = kube.get("leases", f"toil-scaler-{CLUSTER}", namespace="kube-system")
    assert "holderIdentity" not in lease["spec"] and lease["spec"]["leaseDurationSeconds"] == 1  # released
    assert first["lease"]["holder"]

    # An AWX schedule (another machine: its own, empty state file) sees the same timers on the nodes.
    time.sleep(2)
    second = run_scaler(run_playbook, tmp_path / "awx", kubeconfig=kube.kubeconfig, scale_down_idle_seconds=1, env=aws_calls.env)
    ondemand = by_pool(second)["ondemand"]
    assert sorted(ondemand["victims"]) == sorted([a["InstanceId"], b["InstanceId"]])
    assert ondemand["desired"] == 0 and ondemand["instances"] == []
    assert kube.get("nodes", node_a) is None and kube.get("nodes", node_b) is None  # drained, then deleted
    assert set(states(ec2, [a["InstanceId"], b["InstanceId"]]).values()) == {"terminated"}

    # Two runs start at the same moment for the same pending pods: exactly one acts, the other names the holder.
    for index in range(2):
        toil_job(kube, f"admin-toil-merge-{index}", 1.5, 2 * 2**30, preemptible=False)
    pools = [{"name": "ondemand", "node_types": "m5.large", "min_size": 0, "max_size": 4}]
    acted, stopped = scalers_at_once(run_playbook, tmp_path, aws_calls, kubeconfig=kube.kubeconfig, pools=pools)
    assert by_pool(acted)["ondemand"]["desired"] == 2 and len(by_pool(acted)["ondemand"]["instances"]) == 2
    assert f"Lease kube-system/toil-scaler-{CLUSTER} is held by {acted['lease']['holder']}" in stopped["msg"]
    assert "changed nothing" in stopped["msg"]
    assert aws_calls.count("CreateFleet") == 1


# ----------------------------------------------------------------------------- issue 18: repair


def not_ready_since(kube, name, seconds):
    """The node's kubelet stopped posting ``seconds`` ago: its Ready condition Unknown since then."""
    status = kube.get("nodes", name)["status"]
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))
    status["conditions"] = [
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status.",
         "lastHeartbeatTime": moment, "lastTransitionTime": moment}
    ]  # fmt: skip
    kube.update_status("nodes", name, status)


def test_notready_nodes_are_repaired_within_the_budget_and_refilled_in_the_same_run(aws, cluster, kube, run_playbook, tmp_path, aws_calls):
    ec2 = aws.client("ec2")
    a, b, c = launch_workers(ec2, 3, "ondemand")
    node_a = register_instance(kube, a, "ondemand")
    node_b = register_instance(kube, b, "ondemand")
    node_c = register_instance(kube, c, "ondemand")
    not_ready_since(kube, node_b, 3600)  # the longest NotReady: repaired first
    not_ready_since(kube, node_c, 1200)  # beyond max_repairs 1: waits
    pools = [{"name": "ondemand", "node_types": "m5.large", "min_size": 2, "max_size": 4}]
    options = {"kubeconfig": kube.kubeconfig, "pools": pools, "repair_after_seconds": 600, "max_repairs": 1, "env": aws_calls.env}
    ids = [a["InstanceId"], b["InstanceId"], c["InstanceId"]]

    # Check mode reports and changes nothing.
    planned = run_scaler(run_playbook, tmp_path / "plan", check=True, **options)
    assert [(n["name"], n["instance_id"], n["pool"], n["repaired"]) for n in planned["repaired_nodes"]] == [(node_b, b["InstanceId"], "ondemand", False)]
    assert planned["repaired_nodes"][0]["reason"].startswith("NotReady since ")
    assert [n["name"] for n in planned["unhealthy_nodes_waiting"]] == [node_c]
    assert set(states(ec2, ids).values()) == {"running"}
    assert all(kube.get("nodes", n) is not None and not kube.get("nodes", n)["spec"].get("unschedulable") for n in (node_a, node_b, node_c))
    assert aws_calls.count("CreateFleet") == 0 and aws_calls.count("TerminateInstances") == 0

    # The run repairs B (cordon, drain, terminate, delete) and refills the pool: 2 healthy nodes wanted beside C, which waits.
    repaired = run_scaler(run_playbook, tmp_path / "leader", **options)
    assert repaired["changed"] is True
    assert [(n["name"], n["instance_id"], n["repaired"], n["node_deleted"]) for n in repaired["repaired_nodes"]] == [(node_b, b["InstanceId"], True, True)]
    assert [n["name"] for n in repaired["unhealthy_nodes_waiting"]] == [node_c]
    assert kube.get("nodes", node_b) is None and kube.get("nodes", node_c) is not None
    assert states(ec2, [b["InstanceId"]])[b["InstanceId"]] in ("shutting-down", "terminated")
    ondemand = by_pool(repaired)["ondemand"]
    assert (ondemand["current"], ondemand["desired"]) == (1, 2)  # only A counts as supply
    live = {i["instance_id"] for i in ondemand["instances"]}
    assert len(live) == 3 and {a["InstanceId"], c["InstanceId"]} < live and b["InstanceId"] not in live
    assert aws_calls.count("CreateFleet") == 1 and aws_calls.count("DescribeInstanceStatus") == 2


def test_a_ready_node_whose_instance_is_impaired_is_drained_replaced_and_refilled(aws, cluster, kube, run_playbook, tmp_path, aws_calls):
    ec2 = aws.client("ec2")
    a, b = launch_workers(ec2, 2, "ondemand")
    register_instance(kube, a, "ondemand")
    node_b = register_instance(kube, b, "ondemand")  # Ready: its kubelet still posts, but EC2's status check fails
    aws_calls.impair(b["InstanceId"])
    through_proxy = aws.endpoint.boto3_session().client("ec2", region_name=aws.region, endpoint_url=aws_calls.url)
    statuses = {s["InstanceId"]: s["InstanceStatus"]["Status"] for s in through_proxy.describe_instance_status()["InstanceStatuses"]}
    assert (statuses[a["InstanceId"]], statuses[b["InstanceId"]]) == ("ok", "impaired")
    pools = [{"name": "ondemand", "node_types": "m5.large", "min_size": 2, "max_size": 4}]
    options = {"kubeconfig": kube.kubeconfig, "pools": pools, "repair_after_seconds": 600, "max_repairs": 1, "env": aws_calls.env}

    planned = run_scaler(run_playbook, tmp_path / "plan", check=True, **options)
    assert [(n["name"], n["instance_id"], n["repaired"]) for n in planned["repaired_nodes"]] == [(node_b, b["InstanceId"], False)]
    assert planned["repaired_nodes"][0]["reason"] == "instance status impaired"
    assert aws_calls.count("CreateFleet") == 0 and aws_calls.count("TerminateInstances") == 0

    repaired = run_scaler(run_playbook, tmp_path / "leader", **options)
    assert [(n["name"], n["instance_id"], n["repaired"], n["node_deleted"]) for n in repaired["repaired_nodes"]] == [(node_b, b["InstanceId"], True, True)]
    assert kube.get("nodes", node_b) is None
    assert states(ec2, [b["InstanceId"]])[b["InstanceId"]] in ("shutting-down", "terminated")
    ondemand = by_pool(repaired)["ondemand"]
    assert (ondemand["current"], ondemand["desired"]) == (1, 2)  # only A counts as supply
    live = {i["instance_id"] for i in ondemand["instances"]}
    assert len(live) == 2 and a["InstanceId"] in live and b["InstanceId"] not in live
    assert aws_calls.count("CreateFleet") == 1


# ----------------------------------------------------------------------------- issue 18: spot interruptions


def test_an_interrupted_node_is_replaced_while_it_runs_then_removed_once_gone(aws, cluster, kube, run_playbook, tmp_path, aws_calls):
    ec2 = aws.client("ec2")
    a, b = launch_workers(ec2, 2, "ondemand")
    register_instance(kube, a, "ondemand")
    node_b = register_instance(kube, b, "ondemand")
    # What the kubernetes role's interruption handler (or aws-node-termination-handler) writes on a Spot interruption
    # notice: the Node cordoned and tainted spot-itn; EC2 terminates the instance about two minutes later.
    core = k8s_client.CoreV1Api(k8s_config.new_client_from_config(kube.kubeconfig))
    core.patch_node(node_b, {"spec": {"unschedulable": True, "taints": [{"key": INTERRUPTION_TAINT, "value": "1767614520", "effect": "NoSchedule"}]}})
    pools = [{"name": "ondemand", "node_types": "m5.large", "min_size": 2, "max_size": 4}]
    options = {"kubeconfig": kube.kubeconfig, "pools": pools, "env": aws_calls.env}

    # The next run counts it as leaving: 2 nodes wanted beside it, so the replacement is launched while it still runs.
    first = run_scaler(run_playbook, tmp_path / "first", **options)
    assert first["leaving_nodes"] == [{"name": node_b, "instance_id": b["InstanceId"], "pool": "ondemand"}]
    ondemand = by_pool(first)["ondemand"]
    assert (ondemand["current"], ondemand["desired"]) == (1, 2)  # only A is supply
    live = {i["instance_id"] for i in ondemand["instances"]}
    assert len(live) == 3 and {a["InstanceId"], b["InstanceId"]} < live
    assert aws_calls.count("CreateFleet") == 1 and aws_calls.count("TerminateInstances") == 0

    # EC2 interrupts it: its Node is removed as any Node without an instance, and nothing more is launched.
    ec2.terminate_instances(InstanceIds=[b["InstanceId"]])
    second = run_scaler(run_playbook, tmp_path / "second", **options)
    assert [(n["name"], n["deleted"]) for n in second["removed_nodes"]] == [(node_b, True)]
    assert second["leaving_nodes"] == [] and kube.get("nodes", node_b) is None
    assert len(by_pool(second)["ondemand"]["instances"]) == 2
    assert aws_calls.count("CreateFleet") == 1


# ----------------------------------------------------------------------------- issue 19: AWX's Kubernetes credential


def test_awx_kubernetes_credential_and_kubernetes_core_options_reach_the_api(aws, cluster, kube_certificates, run_playbook, tmp_path, aws_calls):
    """No kubeconfig anywhere: the K8S_AUTH_* variables AWX's Kubernetes credential sets (host, bearer token, CA), then
    kubernetes.core's options with a client certificate. The stand-in answers an anonymous list with 403, so a
    pending pod counted proves the credential was sent; an unknown token is refused with a clear message."""
    for directory in ("client", "api"):
        (tmp_path / directory).mkdir()
    crt, key = client_certificate(kube_certificates, tmp_path / "client", "/O=system:masters/CN=awx")
    with KubeApi(cert_dir=str(tmp_path / "api"), certificates=kube_certificates, client_ca=kube_certificates[0]) as api:
        api.add_node("leader", labels={"node-role.kubernetes.io/control-plane": ""})
        toil_job(api, "admin-toil-align-0", 1, 2**30)
        no_kubeconfig = {"KUBECONFIG": None, "HOME": str(tmp_path / "home"), "KUBERNETES_SERVICE_HOST": None}
        awx = {"K8S_AUTH_HOST": api.url, "K8S_AUTH_API_KEY": api.token, "K8S_AUTH_SSL_CA_CERT": kube_certificates[0], "K8S_AUTH_VERIFY_SSL": "True"}
        planned = run_scaler(run_playbook, tmp_path / "awx", apply=False, env={**aws_calls.env, **no_kubeconfig, **awx})
        assert planned["queue_size"] == 1, planned
        by_cert = {"host": api.url, "client_cert": crt, "client_key": key, "ca_cert": kube_certificates[0], "apply": False}
        planned = run_scaler(run_playbook, tmp_path / "cert", env={**aws_calls.env, **no_kubeconfig}, **by_cert)
        assert planned["queue_size"] == 1, planned
        refused = run_scaler(
            run_playbook, tmp_path / "bad", apply=False, expect_rc=None, env={**aws_calls.env, **no_kubeconfig, **awx, "K8S_AUTH_API_KEY": "wrong"}
        )
        assert refused.get("failed") and "Unauthorized" in refused["msg"] and "Traceback" not in str(refused), refused
