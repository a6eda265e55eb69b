"""Issue 18, repair: which nodes are unhealthy (NotReady past the grace period, or an impaired instance), how many are
repaired per run and in what order, and how a repair and the waiting ones change the pool's size.

Nodes are the kubernetes client's V1Node models, deserialized from JSON as ``kubectl get node -o json`` prints it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ansible_collections.toil.cluster.plugins.module_utils import node_repair, scaler
from ansible_collections.toil.cluster.plugins.module_utils.binpacking import GIB, PoolShape, Resources, node_capacity
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.kube_demand import match_instances, read_demand
from ansible_collections.toil.cluster.plugins.module_utils.node_repair import impaired_instances, split_repairs, unhealthy_nodes

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
API = client.ApiClient()


def iid(index):
    return f"i-0{index:016x}"


def node(name, index, status="True", since=None, pool="p"):
    """A node of instance ``iid(index)`` whose Ready condition is ``status`` since ``since`` seconds before NOW."""
    condition = {"type": "Ready", "status": status, "reason": {"True": "KubeletReady", "False": "KubeletNotReady"}.get(status, "NodeStatusUnknown")}
    if since is not None:
        condition["lastTransitionTime"] = (NOW - timedelta(seconds=since)).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"toil.cluster/pool": pool}, "resourceVersion": "1"},
        "spec": {"providerID": f"aws:///us-west-2a/{iid(index)}"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": f"10.0.1.{index}"}],
            "allocatable": {"cpu": "2", "memory": "7832788Ki", "ephemeral-storage": "48307982274", "pods": "110"},
            "conditions": [condition],
        },
    }
    return API.deserialize(SimpleNamespace(data=json.dumps(data)), "V1Node")


def instance(index, pool="p"):
    return {
        "InstanceId": iid(index),
        "PrivateIpAddress": f"10.0.1.{index}",
        "PrivateDnsName": "",
        "State": {"Name": "running"},
        "Tags": [{"Key": "toil.cluster/pool", "Value": pool}],
    }


def matched(*nodes, instances=None):
    instances = instances if instances is not None else [instance(i) for i in range(1, 10)]
    workers = read_demand([], list(nodes), NOW)[1]
    return match_instances(workers, instances)[0], instances


def names(found):
    return [u.worker.name for u in found]


# ----------------------------------------------------------------------------- the health decision


def test_the_ready_condition_and_its_transition_are_read():
    workers, _instances = matched(node("ok", 1), node("down", 2, "False", 30), node("gone", 3, "Unknown", 90), node("untimed", 4, "Unknown"))
    by_name = {w.name: w for w in workers}
    assert (by_name["ok"].not_ready, by_name["ok"].not_ready_since) == (None, None)
    assert (by_name["down"].not_ready, by_name["down"].not_ready_since) == ("False", NOW - timedelta(seconds=30))
    assert (by_name["gone"].not_ready, by_name["gone"].not_ready_since) == ("Unknown", NOW - timedelta(seconds=90))
    assert by_name["untimed"].not_ready == "Unknown" and by_name["untimed"].not_ready_since is None


@pytest.mark.parametrize(("since", "unhealthy"), [(0, False), (599, False), (600, True), (601, True), (86400, True)])
@pytest.mark.parametrize("status", ["False", "Unknown"])
def test_notready_past_the_grace_period_false_or_unknown(since, unhealthy, status):
    workers, instances = matched(node("n", 1, status, since))
    found = unhealthy_nodes(workers, instances, {"p"}, NOW, 600)
    assert bool(found) is unhealthy
    if unhealthy:
        suffix = " (Ready Unknown)" if status == "Unknown" else ""
        assert found[0].reason == f"NotReady since {(NOW - timedelta(seconds=since)).strftime('%Y-%m-%dT%H:%M:%SZ')}{suffix}"
        assert found[0].pool == "p" and found[0].worker.instance_id == iid(1)


def test_ready_nodes_repair_off_untimed_conditions_and_other_pools_are_never_unhealthy():
    workers, instances = matched(
        node("ready-long", 1, "True", 10**6), node("untimed", 2, "Unknown"), node("other-pool", 3, "False", 10**6), node("old", 4, "False", 10**6),
        instances=[instance(1), instance(2), instance(3, pool="q"), instance(4)],
    )  # fmt: skip
    assert names(unhealthy_nodes(workers, instances, {"p"}, NOW, 600)) == ["old"]
    assert unhealthy_nodes(workers, instances, {"p"}, NOW, 0) == []  # 0: never repair


def test_an_impaired_instance_is_unhealthy_even_when_ready():
    workers, instances = matched(node("ready", 1), node("both", 2, "False", 700))
    found = unhealthy_nodes(workers, instances, {"p"}, NOW, 600, impaired={iid(1), iid(2)})
    assert [(u.worker.name, u.reason) for u in found] == [
        ("both", "NotReady since 2026-01-05T11:48:20Z; instance status impaired"),
        ("ready", "instance status impaired"),
    ]
    assert found[1].report() == {
        "name": "ready", "instance_id": iid(1), "pool": "p", "reason": "instance status impaired", "since": None, "repaired": False,
    }  # fmt: skip


def test_the_longest_notready_first_then_the_impaired_and_a_budget():
    workers, instances = matched(node("b", 2, "Unknown", 700), node("a", 1, "False", 900), node("c", 3, "False", 650), node("d", 4))
    found = unhealthy_nodes(workers, instances, {"p"}, NOW, 600, impaired={iid(4)})
    assert names(found) == ["a", "b", "c", "d"]
    repaired, waiting = split_repairs(found, 1)
    assert names(repaired) == ["a"] and names(waiting) == ["b", "c", "d"]
    repaired, waiting = split_repairs(found, 3)
    assert names(repaired) == ["a", "b", "c"] and names(waiting) == ["d"]
    repaired, waiting = split_repairs(found, 0)
    assert repaired == [] and names(waiting) == ["a", "b", "c", "d"]


class FakeStatusEC2:
    """DescribeInstanceStatus pages as EC2 answers them."""

    def __init__(self, pages):
        self.pages = pages
        self.calls = []

    def get_paginator(self, name):
        assert name == "describe_instance_status"
        return self

    def paginate(self, Filters, PaginationConfig):  # noqa: N803 (botocore's names)
        self.calls.append(Filters)
        yield from self.pages


def test_impaired_means_either_status_check_impaired_among_the_nodes_instances():
    def status(index, instance_status="ok", system_status="ok"):
        return {"InstanceId": iid(index), "InstanceStatus": {"Status": instance_status}, "SystemStatus": {"Status": system_status}}

    ec2 = FakeStatusEC2(
        [
            {"InstanceStatuses": [status(1), status(2, "impaired"), status(3, "ok", "impaired")]},
            {"InstanceStatuses": [status(4, "initializing"), status(5, "impaired"), status(6, "insufficient-data", "impaired")]},
        ]
    )
    assert impaired_instances(ec2, [iid(i) for i in (1, 2, 3, 4, 6)]) == {iid(2), iid(3), iid(6)}  # 5 is not a node's
    assert ec2.calls == [[{"Name": "instance-state-name", "Values": ["running"]}]]  # one paginated call
    assert impaired_instances(FakeStatusEC2([]), []) == set()


# ----------------------------------------------------------------------------- options


def params(**overrides):
    return {
        "cluster": "c1",
        "zone": "us-west-2a",
        "region": None,
        "pools": [{"name": "p", "node_types": "m5.large", "min_size": 2, "max_size": 4}],
        "beta_inertia": 0.0,
        "preemptible_compensation": 0.0,
        "scale_down_idle_seconds": 600,
        "demand": None,
        "kubeconfig": None,
        "context": None,
        "apply": True,
        "wait": False,
        "wait_timeout": 60,
        "drain_timeout": 60,
        "state_path": None,
        "metrics_path": None,
        **overrides,
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"repair_after_seconds": 59}, r"repair_after_seconds must be 0 \(never repair\) or between 60 and 86400 seconds, got 59\."),
        ({"repair_after_seconds": -1}, r"repair_after_seconds must be 0"),
        ({"repair_after_seconds": 86401}, r"got 86401"),
        ({"max_repairs": -1}, r"max_repairs must be between 0 and 1000, got -1\."),
        ({"max_repairs": 1001}, r"max_repairs must be between 0 and 1000"),
    ],
)
def test_repair_options_are_range_checked(overrides, message):
    with pytest.raises(ToilInputError, match=message):
        scaler.ScalerSettings.from_params(params(**overrides))


def test_every_pools_zones_are_in_the_region_before_any_pool_is_resized():
    pools = [
        {"name": "p", "node_types": "m5.large", "min_size": 2, "max_size": 4},
        {"name": "q", "node_types": "m5.large", "min_size": 0, "max_size": 1, "zones": ["us-east-1a"]},
    ]
    with pytest.raises(ToilInputError, match="zones: us-east-1a not in the cluster's region us-west-2"):
        scaler.ScalerSettings.from_params(params(pools=pools))
    assert scaler.ScalerSettings.from_params(params(pools=pools[:1] + [{**pools[1], "zones": ["us-west-2d"]}])).pools[1].zones == ("us-west-2d",)


def test_repair_defaults():
    settings = scaler.ScalerSettings.from_params(params())
    assert (settings.repair_after_seconds, settings.max_repairs) == (600, 1)
    settings = scaler.ScalerSettings.from_params(params(repair_after_seconds=0, max_repairs=0))
    assert (settings.repair_after_seconds, settings.max_repairs) == (0, 0)


# ----------------------------------------------------------------------------- the pool's size


def sized(monkeypatch, nodes_supply, pool_sizes, unhealthy, min_size=2, max_size=4):
    asked = {}

    def reconcile(_ec2, spec, *_args):
        asked[spec.name] = (spec.desired, spec.victims)
        return True, {"deficit": 0, "instances": []}, {}

    monkeypatch.setattr(scaler, "reconcile", reconcile)
    settings = SimpleNamespace(
        apply=True,
        pools=(SimpleNamespace(name="p", desired=None, victims=()),),
        preemptible_compensation=0.0,
        beta_inertia=0.0,
        scale_down_idle_seconds=600,
        wait=False,
        wait_timeout=1,
        budget=None,
    )
    shape = PoolShape("p", node_capacity(2, 8192, 50), False, min_size, max_size, ("m5.large",))
    states = [scaler.node_state(iid(i), "p", Resources(2000, GIB, GIB), Resources(2000, GIB, GIB), 0, False, False, f"n{i}") for i in range(nodes_supply)]
    _packing, decisions, _results, _changed = scaler.run(None, settings, [shape], [], states, {}, None, pool_sizes, None, unhealthy)
    return decisions["p"], asked["p"][0]


def test_a_repaired_node_is_refilled_in_the_same_run(monkeypatch):
    # 2 instances, one repaired (terminated already): 1 healthy node, min_size 2 -> the pool is asked for 2.
    decision, asked = sized(monkeypatch, 1, {"p": 2}, {"p": (1, 0)})
    assert (decision.current, decision.desired, asked) == (1, 2, 2)


def test_waiting_unhealthy_nodes_are_kept_and_added_up_to_max_size(monkeypatch):
    # 3 instances: 1 healthy, 1 repaired, 1 waiting. 2 healthy wanted: the waiting one is kept beside them.
    decision, asked = sized(monkeypatch, 1, {"p": 3}, {"p": (1, 1)})
    assert (decision.current, decision.desired, asked) == (1, 2, 3)
    # max_size bounds the instances: the waiting one takes a place.
    decision, asked = sized(monkeypatch, 1, {"p": 3}, {"p": (1, 1)}, max_size=2)
    assert (decision.desired, asked) == (2, 2)
    # Without unhealthy nodes, nothing changes.
    decision, asked = sized(monkeypatch, 2, {"p": 2}, {})
    assert (decision.current, decision.desired, asked) == (2, 2, 2)


def test_the_replacement_of_an_interrupted_node_is_launched_while_it_still_runs(monkeypatch):
    # 2 instances (min_size 2), one tainted spot-itn (leaving): 2 healthy ones wanted beside it -> 3, one launch now.
    leaving = scaler.not_counted([], [], [{"name": "n9", "instance_id": iid(9), "pool": "p"}], applied=True)
    decision, asked = sized(monkeypatch, 1, {"p": 2}, leaving)
    assert (decision.current, decision.desired, asked) == (1, 2, 3)
    # max_size bounds the instances: the leaving one takes a place until EC2 terminates it.
    decision, asked = sized(monkeypatch, 1, {"p": 2}, leaving, max_size=2)
    assert (decision.desired, asked) == (2, 2)
    # Its instance gone and its Node removed: the replacement and the other one are the 2 wanted, nothing more.
    decision, asked = sized(monkeypatch, 2, {"p": 2}, {})
    assert (decision.desired, asked) == (2, 2)


# ----------------------------------------------------------------------------- the repair


class FakeRepairApi:
    def __init__(self, *names):
        self.nodes = set(names)
        self.calls = []

    def delete_node(self, name):
        self.calls.append(("delete_node", name))
        if name not in self.nodes:
            raise ApiException(status=404, reason="Not Found")
        self.nodes.remove(name)


def test_a_repair_drains_then_terminates_then_deletes(monkeypatch):
    order = []

    def drain(_core_v1, name, timeout, ready, policy_v1):
        order.append(("drain", name, timeout, ready))
        return {"evicted": ["default/web-1"], "left": ["toil/toil-job-1"]}

    monkeypatch.setattr(node_repair, "drain_for_repair", drain)
    monkeypatch.setattr(node_repair, "terminate", lambda _ec2, ids, wait, timeout: order.append(("terminate", tuple(ids), wait)))
    workers, instances = matched(node("a", 1, "False", 900), node("b", 2, "Unknown", 700))
    repairs, _waiting = split_repairs(unhealthy_nodes(workers, instances, {"p"}, NOW, 600), 2)
    api = FakeRepairApi("a")
    settings = SimpleNamespace(drain_timeout=30, wait=True, wait_timeout=60)
    reports = node_repair.repair_nodes(None, api, repairs, settings, pytest.fail)
    assert order == [("drain", "a", 30, False), ("terminate", (iid(1),), True), ("drain", "b", 30, False), ("terminate", (iid(2),), True)]
    assert api.calls == [("delete_node", "a"), ("delete_node", "b")]  # b's Node already gone: fine
    assert [(r["name"], r["repaired"], r["node_deleted"], r["evicted"], r["left"]) for r in reports] == [
        ("a", True, True, ["default/web-1"], ["toil/toil-job-1"]),
        ("b", True, True, ["default/web-1"], ["toil/toil-job-1"]),
    ]
