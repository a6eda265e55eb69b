"""Issue 18, budgets: max_vcpus and max_memory of the scaled pools' workers cut the plan's growth."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.toil.cluster.plugins.module_utils import scaler
from ansible_collections.toil.cluster.plugins.module_utils.binpacking import (
    GIB,
    MIB,
    Budget,
    NodeState,
    PodGroup,
    PoolShape,
    Resources,
    cap_to_budget,
    decide,
    node_capacity,
    pack,
)
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import validate_pool_spec
from ansible_collections.toil.cluster.plugins.module_utils.scaler import pool_shapes, validate_budget

M5_LARGE = (2, 8192)  # vCPUs, MiB
M5_XLARGE = (4, 16384)


def shape(name, instance=M5_LARGE, preemptible=False, min_size=0, max_size=100, types=None):
    vcpus, memory_mib = instance
    return PoolShape(name, node_capacity(vcpus, memory_mib, 50), preemptible, min_size, max_size, types or (name,), "amd64", vcpus, memory_mib)


def busy(pool, count):
    return [NodeState(f"i-{pool}-{n}", pool, Resources(), idle_seconds=0, safe_to_evict=False) for n in range(count)]


def idle(pool, count):
    return [NodeState(f"i-{pool}-idle-{n}", pool, Resources(2000, GIB, GIB), idle_seconds=3600) for n in range(count)]


def one_pod_a_node(count, name="job", may_use_spot=True):
    """Pods that take one m5.large-sized node each (and fit an m5.xlarge twice)."""
    return PodGroup(name, Resources(1500, 2 * GIB, 0), may_use_spot, count)


def planned(pools, pods=(), nodes=(), budget=None):
    packing = pack(list(pods), pools, list(nodes))
    decisions = decide(pools, list(nodes), packing, {}, 0.0, 0.0, 600)
    cap_to_budget(pools, decisions, budget)
    return decisions


def sizes(decisions):
    return {name: d.desired for name, d in decisions.items()}


def test_growth_past_max_vcpus_is_cut_and_the_reason_says_so():
    pools = [shape("a")]
    decisions = planned(pools, [one_pod_a_node(10)], budget=Budget(max_vcpus=8))
    assert sizes(decisions) == {"a": 4}
    assert decisions["a"].capped
    assert "capped by max_vcpus 8 (would be 20): 4 node(s) instead of 10" in decisions["a"].reason
    summary = Budget(max_vcpus=8).summary(pools, decisions)
    assert summary == {
        "max_vcpus": 8,
        "max_memory": None,
        "max_hourly_cost": None,
        "used_vcpus": 0,
        "used_memory": 0,
        "used_hourly_cost": None,  # these shapes have no price
        "planned_vcpus": 8,
        "planned_memory": 4 * 8 * GIB,
        "planned_hourly_cost": None,
        "capped": True,
    }


@pytest.mark.parametrize(("max_vcpus", "desired", "capped"), [(20, 10, False), (19, 9, True), (18, 9, True), (21, 10, False), (0, 0, True)])
def test_exact_boundaries(max_vcpus, desired, capped):
    decisions = planned([shape("a")], [one_pod_a_node(10)], budget=Budget(max_vcpus=max_vcpus))
    assert (decisions["a"].desired, decisions["a"].capped) == (desired, capped)


def test_no_budget_changes_nothing():
    for budget in (None, Budget()):
        decisions = planned([shape("a")], [one_pod_a_node(10)], budget=budget)
        assert sizes(decisions) == {"a": 10} and not decisions["a"].capped
    assert Budget().summary([shape("a")], planned([shape("a")], [one_pod_a_node(3)]))["planned_vcpus"] == 6


def test_the_pools_given_first_grow_first_and_a_later_smaller_pool_takes_the_room_left():
    large, small = shape("large", M5_XLARGE), shape("small", M5_LARGE)
    pods = [one_pod_a_node(4, "a"), PodGroup("b", Resources(3000, 2 * GIB, 0), True, 3)]  # b fits only the large pool
    decisions = planned([small, large], pods, budget=Budget(max_vcpus=14))
    # Unbounded: small 4 nodes (8 vCPUs) and large 3 (12); small comes first and gets all its 8, large 1 (4 of 6 left).
    assert sizes(decisions) == {"small": 4, "large": 1}
    decisions = planned([large, small], pods, budget=Budget(max_vcpus=14))
    # Large first: its 3 nodes take 12, then one small node fits in the 2 left.
    assert sizes(decisions) == {"large": 3, "small": 1}
    assert decisions["large"].capped is False and decisions["small"].capped is True
    assert "capped by max_vcpus 14 (would be 20)" in decisions["small"].reason
    assert "capped" not in decisions["large"].reason


def test_current_nodes_count_and_are_kept_even_past_the_budget():
    pools = [shape("a"), shape("b")]
    nodes = busy("a", 5)  # 10 vCPUs, over a budget lowered to 6
    decisions = planned(pools, [one_pod_a_node(2, "more")], nodes, budget=Budget(max_vcpus=6))
    assert sizes(decisions) == {"a": 5, "b": 0}  # no busy node goes; no growth
    summary = Budget(max_vcpus=6).summary(pools, decisions)
    assert (summary["used_vcpus"], summary["planned_vcpus"], summary["capped"]) == (10, 10, True)


def test_shrinking_is_never_prevented_and_frees_room_for_growth():
    nodes = idle("old", 4)  # 8 vCPUs, idle for an hour
    # The pods may not use them (the old pool's nodes are spot, the pods must avoid spot): old shrinks to 0 and
    # new grows to 3 of the 5 it wants, within 6 vCPUs.
    pools = [shape("old", preemptible=True), shape("new")]
    decisions = planned(pools, [one_pod_a_node(5, "job", may_use_spot=False)], nodes, budget=Budget(max_vcpus=6))
    assert sizes(decisions) == {"old": 0, "new": 3}
    assert decisions["old"].victims and not decisions["old"].capped
    # A budget of 0 shrinks nothing less: the idle nodes still go.
    decisions = planned(pools, [], nodes, budget=Budget(max_vcpus=0, max_memory=0))
    assert sizes(decisions) == {"old": 0, "new": 0} and len(decisions["old"].victims) == 4


def test_min_size_is_honoured_past_the_budget_with_a_warning():
    pools = [shape("a", min_size=3), shape("b")]
    decisions = planned(pools, [one_pod_a_node(2, "job")], budget=Budget(max_vcpus=4))
    # a's min_size 3 (6 vCPUs) passes the budget of 4: kept, with a warning; nothing else grows.
    assert sizes(decisions) == {"a": 3, "b": 0}
    (warning,) = decisions["a"].warnings
    assert "min_size 3" in warning and "max_vcpus 4 (would be 6)" in warning and "honoured over the budget" in warning
    assert "min_size 3 kept past the budget" in decisions["a"].reason


def test_memory_budget_in_bytes_and_its_units():
    pools = [shape("a")]  # 8 GiB a node
    decisions = planned(pools, [one_pod_a_node(10)], budget=validate_budget(None, "24Gi"))
    assert sizes(decisions) == {"a": 3}
    assert "capped by max_memory 24Gi (would be 80Gi)" in decisions["a"].reason
    assert sizes(planned(pools, [one_pod_a_node(10)], budget=validate_budget(None, "32Gi"))) == {"a": 4}  # exactly 4 nodes
    assert sizes(planned(pools, [one_pod_a_node(10)], budget=validate_budget(None, "32767Mi"))) == {"a": 3}
    assert sizes(planned(pools, [one_pod_a_node(10)], budget=validate_budget(None, "0.0625Ti"))) == {"a": 8}  # 64Gi
    assert sizes(planned(pools, [one_pod_a_node(10)], budget=validate_budget(None, "40G"))) == {"a": 4}  # 40e9 bytes < 5 x 8 GiB


def test_both_budgets_the_tighter_wins_and_the_reason_names_those_passed():
    decisions = planned([shape("a")], [one_pod_a_node(10)], budget=validate_budget(100, "16Gi"))
    assert sizes(decisions) == {"a": 2}
    assert "capped by max_memory 16Gi (would be 80Gi)" in decisions["a"].reason and "max_vcpus" not in decisions["a"].reason
    decisions = planned([shape("a")], [one_pod_a_node(10)], budget=validate_budget(6, "16Gi"))
    assert "capped by max_vcpus 6 (would be 20) and max_memory 16Gi (would be 80Gi)" in decisions["a"].reason


def test_capping_again_restores_first_and_keeps_fixed_pools():
    pools = [shape("a"), shape("b")]
    budget = Budget(max_vcpus=10)
    decisions = planned(pools, [one_pod_a_node(4, "x", may_use_spot=True)], budget=budget)
    assert sizes(decisions) == {"a": 4, "b": 0}
    decisions["b"] = decide(pools, [], pack([one_pod_a_node(4)], [pools[1]], []), {}, 0.0, 0.0, 600)["b"]  # b now wants 4
    cap_to_budget(pools, decisions, budget, fixed={"a": 4})  # a was resized already: b gets what is left
    assert sizes(decisions) == {"a": 4, "b": 1}
    cap_to_budget(pools, decisions, budget)  # nothing fixed: a first again
    assert sizes(decisions) == {"a": 4, "b": 1}
    assert decisions["b"].reason.count("capped by") == 1


def test_a_pools_node_counts_as_its_largest_type():
    spec = validate_pool_spec({"cluster": "c1", "name": "p", "node_types": "m5.large/m5.xlarge", "min_size": 0, "max_size": 3, "node_storage": 50})
    types = {
        "m5.large": {"vcpus": 2, "memory_mib": 8192, "storage_gib": 0, "gpus": 0, "arch": "amd64"},
        "m5.xlarge": {"vcpus": 4, "memory_mib": 16384, "storage_gib": 0, "gpus": 0, "arch": "amd64"},
    }
    (pool,) = pool_shapes([spec], types)
    assert (pool.vcpus, pool.memory_mib) == (4, 16384)
    assert pool.capacity.cpu == 2000  # packing still counts the smallest
    assert pool.memory_mib * MIB == 16 * GIB


@pytest.mark.parametrize(
    ("max_vcpus", "max_memory", "message"),
    [
        (-1, None, "max_vcpus must be a whole number of vCPUs, 0 or more, got -1"),
        (True, None, "max_vcpus must be a whole number"),
        (None, "512", "max_memory 512 has no unit: write it as a Kubernetes quantity with one, such as 512Gi"),
        (None, "lots", "max_memory: 'lots' is not a Kubernetes quantity"),
        (None, "-4Gi", "max_memory: '-4Gi' is negative"),
        (None, "", "max_memory must be a Kubernetes quantity such as 512Gi"),
    ],
)
def test_bad_budgets_are_refused(max_vcpus, max_memory, message):
    with pytest.raises(ToilInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_budget(max_vcpus, max_memory)


def test_budgets_given_and_not():
    assert validate_budget(None, None) is None
    assert validate_budget(0, "0") == Budget(max_vcpus=0, max_memory=0, memory_text="0")
    assert validate_budget(None, "1.5Ti").max_memory == 1536 * GIB


def run_with(monkeypatch, budget, launched, compensation=0.0):
    """scaler.run applying a plan, each pool's resize recorded; ``launched``: the nodes a pool gets (else all)."""
    asked = {}

    def reconcile(_ec2, spec, *_args):
        asked[spec.name] = spec.desired
        got = min(spec.desired, launched.get(spec.name, spec.desired))
        return True, {"deficit": spec.desired - got, "instances": [{}] * got}, {}

    monkeypatch.setattr(scaler, "reconcile", reconcile)
    settings = SimpleNamespace(
        apply=True,
        pools=(SimpleNamespace(name="ondemand", desired=None, victims=()), SimpleNamespace(name="spot", desired=None, victims=())),
        preemptible_compensation=compensation,
        beta_inertia=0.0,
        scale_down_idle_seconds=600,
        wait=False,
        wait_timeout=1,
        budget=budget,
    )
    pools = [shape("ondemand", types=("m5.large",)), shape("spot", preemptible=True, types=("m5.large",))]
    pods = [one_pod_a_node(3, "safe", may_use_spot=False), one_pod_a_node(3, "spot")]
    _packing, decisions, _results, _changed = scaler.run(None, settings, pools, pods, [], {})
    return asked, decisions


def test_applied_sizes_are_the_plans(monkeypatch):
    asked, decisions = run_with(monkeypatch, Budget(max_vcpus=8), {})
    # ondemand, given first, grows first (3 nodes); spot gets 1; resized spot first, as always.
    assert asked == {"spot": 1, "ondemand": 3} == sizes(decisions)


def test_a_spot_deficit_compensated_on_demand_stays_within_the_budget(monkeypatch):
    # Unbounded, spot gets 1 of 3 (deficit 2) and ondemand 3 + 2 for the deficit; within 12 vCPUs (6 nodes) with spot's
    # one node launched, ondemand may have 5.
    asked, decisions = run_with(monkeypatch, Budget(max_vcpus=12), {"spot": 1}, compensation=1.0)
    assert asked == {"spot": 3, "ondemand": 5}
    # Within 10: the plan gives ondemand 3 (first) and spot 2; spot gets 1, so ondemand 3 + 1 fits, uncapped.
    asked, decisions = run_with(monkeypatch, Budget(max_vcpus=10), {"spot": 1}, compensation=1.0)
    assert asked == {"spot": 2, "ondemand": 4}
    assert "capped" not in decisions["ondemand"].reason and "capped by max_vcpus 10 (would be 12)" in decisions["spot"].reason
