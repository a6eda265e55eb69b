"""Issue 18, spot interruptions: a node tainted aws-node-termination-handler/spot-itn (by the kubernetes role's
handler or by NTH) is leaving: not room for pods, not repaired, and its pool's size on EC2 counts it on top of the
desired nodes, so the run launches its replacement before EC2 terminates it. Once its instance is gone, the pool is
back to its desired size with no further launch.

Nodes are the kubernetes client's V1Node models, deserialized from JSON as ``kubectl get node -o json`` prints it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from kubernetes import client

from ansible_collections.toil.cluster.plugins.module_utils import scaler
from ansible_collections.toil.cluster.plugins.module_utils.binpacking import GIB, PoolShape, Resources, node_capacity
from ansible_collections.toil.cluster.plugins.module_utils.kube_demand import INTERRUPTION_TAINT, read_demand
from harness.paths import REPO

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
API = client.ApiClient()
SPOT_ITN = {"key": INTERRUPTION_TAINT, "value": "1767614520", "effect": "NoSchedule"}
REBALANCE = {"key": "aws-node-termination-handler/rebalance-recommendation", "value": "1767614400", "effect": "NoSchedule"}


def tainted(name, *taints):
    """A Ready node of pool p, cordoned with ``taints`` when given."""
    data = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"toil.cluster/pool": "p"}, "resourceVersion": "1"},
        "spec": {"taints": list(taints), "unschedulable": True} if taints else {},
        "status": {
            "allocatable": {"cpu": "2", "memory": "7832788Ki", "ephemeral-storage": "48307982274", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }
    return API.deserialize(SimpleNamespace(data=json.dumps(data)), "V1Node")


def test_the_handlers_taint_is_the_one_the_scaler_reads():
    handler = (REPO / "roles" / "kubernetes" / "files" / "toil_interruption_handler.py").read_text()
    assert f'SPOT_TAINT = "{INTERRUPTION_TAINT}"' in handler


def test_only_an_interruption_notice_makes_a_node_leaving():
    found = {w.name: w.leaving for w in read_demand([], [tainted("itn", SPOT_ITN), tainted("rebalance", REBALANCE), tainted("plain")], NOW)[1]}
    # A rebalance recommendation only cordons (the node may live on): the usual scale-down removes it once idle.
    assert found == {"itn": True, "rebalance": False, "plain": False}


def test_a_leaving_node_is_not_supply_and_is_reported(monkeypatch):
    listed = client.V1NodeList(items=[tainted("itn", SPOT_ITN), tainted("stays")], metadata=client.V1ListMeta())

    def response(body):  # what a list call with _preload_content=False returns: the HTTP response, undecoded
        return SimpleNamespace(data=json.dumps(API.sanitize_for_serialization(body)).encode(), release_conn=lambda: None)

    core = SimpleNamespace(
        list_pod_for_all_namespaces=lambda **_kw: response(client.V1PodList(items=[], metadata=client.V1ListMeta())),
        list_node=lambda **_kw: response(listed),
    )
    monkeypatch.setattr(scaler, "now_utc", lambda: NOW)
    settings = SimpleNamespace(demand=None, drain_timeout=1, cluster="c1")
    observed = scaler.read_pods_and_nodes(settings, {}, pytest.fail, None, (core, None))
    assert [n.name for n in observed.nodes] == ["stays"]
    assert observed.leaving == [{"name": "itn", "instance_id": None, "pool": "p"}]  # no EC2 here: not matched, its label's pool


def resized(monkeypatch, supply, pool_sizes, leaving, min_size=2, max_size=4):
    """One run's resize of pool p (min_size 2) with ``supply`` staying nodes: what the pool is asked for."""
    asked = {}

    def reconcile(_ec2, spec, *_args):
        asked[spec.name] = spec.desired
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
    shape = PoolShape("p", node_capacity(2, 8192, 50), True, min_size, max_size, ("m5.large",))
    states = [scaler.node_state(f"i-{i}", "p", Resources(2000, GIB, GIB), Resources(2000, GIB, GIB), 0, False, False, f"n{i}") for i in range(supply)]
    unhealthy = scaler.not_counted([], [], [{"name": "itn", "instance_id": "i-9", "pool": "p"}] * leaving, True)
    _packing, decisions, _results, _changed = scaler.run(None, settings, [shape], [], states, {}, None, pool_sizes, None, unhealthy)
    return decisions["p"].desired, asked["p"]


def test_the_replacement_is_launched_while_the_interrupted_node_still_runs(monkeypatch):
    # 2 instances (min_size 2), one interrupted: 2 healthy ones wanted beside it -> 3 on EC2, one launch now.
    assert resized(monkeypatch, 1, {"p": 2}, 1) == (2, 3)
    # EC2 terminated it and its Node was removed: the replacement and the other one are the 2 wanted, nothing more.
    assert resized(monkeypatch, 2, {"p": 2}, 0) == (2, 2)


def test_max_size_bounds_the_instances_with_the_leaving_one(monkeypatch):
    assert resized(monkeypatch, 1, {"p": 2}, 1, max_size=2) == (2, 2)


def test_repaired_waiting_and_leaving_nodes_are_counted_per_pool():
    repair = SimpleNamespace(pool="p")
    counts = scaler.not_counted([repair], [SimpleNamespace(pool="p"), SimpleNamespace(pool="q")], [{"pool": "q"}], applied=True)
    assert counts == {"p": (1, 1), "q": (0, 2)}
    assert scaler.not_counted([repair], [], [], applied=False) == {"p": (0, 1)}  # plan only: still running
