"""Issue 18, cost: the packing of least hourly cost (within Toil's node count), its lower bound, max_hourly_cost."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.binpacking import (
    GIB,
    Budget,
    PodGroup,
    PoolShape,
    Resources,
    _pack,
    cap_to_budget,
    cost_lower_bound,
    cost_report,
    decide,
    pack,
    packing_cost,
)
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.kube_demand import _Parser, _pending_groups
from ansible_collections.toil.cluster.plugins.module_utils.kube_objects import views
from ansible_collections.toil.cluster.plugins.module_utils.scaler import validate_budget


def pool(name, cpus, price, spot=False, gpus=0, arch="amd64"):
    """A pool of ``cpus``-vCPU nodes with 4 GiB a vCPU (all of it for pods, to keep the arithmetic plain)."""
    return PoolShape(name, Resources(cpus * 1000, cpus * 4 * GIB, 100 * GIB, gpus), spot, 0, 100, (name,), arch, cpus, cpus * 4096, price)


def pods(cpus, count, may_use_spot=True, name=None, gpus=0):
    return PodGroup(name or f"{cpus}cpu", Resources(cpus * 1000, cpus * GIB, 0, gpus), may_use_spot, count)


def nodes(packing):
    return sum(packing.new_nodes.values())


# On-demand 8-vCPU nodes are the cheapest per vCPU (0.05); the spot ones cost more (0.075).
CASE_POOLS = [pool("ondemand8", 8, 0.40), pool("spot16", 16, 1.20, spot=True), pool("spot4", 4, 0.30, spot=True)]
CASE_PODS = [pods(6, 3), pods(1, 5)]


def test_the_cheapest_mix_is_chosen_where_the_fewest_nodes_cost_more():
    # Fewest nodes: two spot16 nodes (2 x 6-vCPU pods on one, 1 on the other, the 1-vCPU pods in the room left).
    fewest = _pack(CASE_PODS, CASE_POOLS, [], "any_node")
    assert fewest.new_nodes == {"ondemand8": 0, "spot16": 2, "spot4": 0} and packing_cost(fewest, CASE_POOLS) == pytest.approx(2.40)
    # A 6-vCPU pod costs 0.40 on its own ondemand8 node, 0.60 as half a spot16: three ondemand8 nodes, the 1-vCPU
    # pods in their 2 vCPUs left each.
    chosen = pack(CASE_PODS, CASE_POOLS, [])
    assert chosen.strategy == "cheapest" and chosen.new_nodes == {"ondemand8": 3, "spot16": 0, "spot4": 0}
    assert packing_cost(chosen, CASE_POOLS) == pytest.approx(1.20) and nodes(chosen) == 3
    assert nodes(chosen) <= nodes(_pack(CASE_PODS, CASE_POOLS, [], "toil")) == 4  # never more nodes than Toil's
    assert not chosen.unplaceable and sum(chosen.placed.values()) == 8


def test_without_prices_the_fewest_nodes_are_kept_as_before():
    unpriced = [replace(p, hourly_cost=None) for p in CASE_POOLS]
    assert nodes(pack(CASE_PODS, unpriced, [])) == 2


def test_a_cheaper_mix_with_more_nodes_than_toil_is_not_taken():
    # Spot 4-vCPU nodes cost 0.40 (0.10 a vCPU), on-demand 2-vCPU ones 0.10 (0.05): the cheapest mix for 4 pods of
    # 2 vCPUs is 4 on-demand nodes, but Toil opens 2 spot ones (preemptible first): 2 it is.
    pools = [pool("spot4", 4, 0.40, spot=True), pool("ondemand2", 2, 0.10)]
    chosen = pack([pods(2, 4)], pools, [])
    assert chosen.new_nodes == {"spot4": 2, "ondemand2": 0}


def test_pods_that_must_avoid_spot_go_on_demand_and_gpu_nodes_are_not_opened_for_cpu_pods():
    pools = [pool("spot8", 8, 0.10, spot=True), pool("ondemand8", 8, 0.40), pool("gpu8", 8, 0.05, gpus=1)]
    chosen = pack([pods(4, 4, may_use_spot=False, name="safe"), pods(4, 4, name="cheap")], pools, [])
    assert chosen.new_nodes == {"spot8": 2, "ondemand8": 2, "gpu8": 0}
    assert all(b.pool != "spot8" or "safe" not in b.loads for b in chosen.bins)


def test_the_lower_bound_is_the_binding_resources_cheapest_unit_price_times_the_demand():
    # cpu: 3 x 6 + 5 x 1 = 23 vCPUs at 0.05 (ondemand8) = 1.15; memory: 23 GiB at 0.40 / 32 GiB = 0.2875.
    assert cost_lower_bound(CASE_PODS, CASE_POOLS) == (pytest.approx(1.15), "cpu")
    # Pods that must avoid spot only count on-demand prices; pods that fit no pool have no bound.
    assert cost_lower_bound([pods(6, 2, may_use_spot=False)], [pool("spot8", 8, 0.08, spot=True), pool("od8", 8, 0.40)]) == (pytest.approx(0.6), "cpu")
    assert cost_lower_bound([pods(64, 1)], CASE_POOLS) is None
    assert cost_lower_bound([], CASE_POOLS) == (0.0, None)
    assert cost_lower_bound(CASE_PODS, [replace(CASE_POOLS[0], hourly_cost=None)]) is None
    report = cost_report(CASE_PODS, CASE_POOLS, pack(CASE_PODS, CASE_POOLS, []))
    assert report == {
        "new_nodes_hourly_cost": 1.2,
        "lower_bound_hourly_cost": 1.15,
        "binding_resource": "cpu",
        "ratio_to_lower_bound": 1.043,
        "strategy": "cheapest",
    }
    # No packing costs less than the bound.
    for strategy in ("any_node", "toil", "cheapest"):
        assert packing_cost(_pack(CASE_PODS, CASE_POOLS, [], strategy), CASE_POOLS) >= 1.15


def shaped(name, cpus, memory_gib, price, spot=False):
    """A pool of ``cpus``-vCPU nodes with ``memory_gib`` for pods."""
    return PoolShape(name, Resources(cpus * 1000, memory_gib * GIB, 100 * GIB), spot, 0, 100, (name,), "amd64", cpus, memory_gib * 1024, price)


def group(name, millicores, memory_gib, count):
    return PodGroup(name, Resources(millicores, memory_gib * GIB, 0), True, count)


def test_the_dearest_pods_choose_their_shapes_first():
    # A cheap pod that asks more memory (Toil's order packs it first) would open small4, where the dear 6-vCPU pod
    # does not fit (2 nodes, 0.70); the dear pod first opens big16 and the cheap one fits beside it.
    pools = [shaped("small4", 4, 32, 0.10), shaped("big16", 16, 64, 0.60)]
    groups = [group("cheap", 3000, 4, 1), group("dear", 6000, 1, 1)]
    chosen = _pack(groups, pools, [], "cheapest")
    assert chosen.new_nodes == {"small4": 0, "big16": 1} and packing_cost(chosen, pools) == pytest.approx(0.60)
    assert [b.loads for b in chosen.bins] == [{"dear": 1, "cheap": 1}]


def test_a_shape_is_chosen_for_what_it_holds_with_the_room_left():
    # On its own the 6-vCPU pod costs least on cpu8 (0.32 against 0.48), but mem8's room then holds the two
    # memory-heavy pods, which fit no cpu8 node: one mem8 node (0.48) instead of one of each (0.80).
    pools = [shaped("cpu8", 8, 16, 0.32), shaped("mem8", 8, 64, 0.48)]
    groups = [group("cpu", 6000, 4, 1), group("memory", 500, 24, 2)]
    chosen = _pack(groups, pools, [], "cheapest")
    assert chosen.new_nodes == {"cpu8": 0, "mem8": 1}
    assert packing_cost(chosen, pools) == pytest.approx(0.48) and sum(chosen.placed.values()) == 3


def test_the_last_partly_filled_node_is_moved_to_the_cheapest_shape_that_holds_its_pods():
    # big16 is the cheapest per vCPU (0.04 against 0.05): 8 of the 9 pods fill one; the ninth alone on a second
    # big16 (0.64) runs on a small2 (0.10).
    pools = [shaped("small2", 2, 8, 0.10), shaped("big16", 16, 64, 0.64)]
    chosen = _pack([group("two", 2000, 1, 9)], pools, [], "cheapest")
    assert chosen.new_nodes == {"small2": 1, "big16": 1} and chosen.placed == {"small2": 1, "big16": 8}
    assert packing_cost(chosen, pools) == pytest.approx(0.74)
    assert sorted((b.pool, b.nodes, b.loads["two"], b.free.cpu) for b in chosen.bins) == [("big16", 1, 8, 0), ("small2", 1, 1, 0)]
    # Pods that must avoid spot are never moved to a spot shape, however cheap.
    spot = shaped("spot2", 2, 8, 0.01, spot=True)
    safe = _pack([replace(group("two", 2000, 1, 9), may_use_spot=False)], [*pools, spot], [], "cheapest")
    assert safe.new_nodes["spot2"] == 0 and all(not b.spot for b in safe.bins)


def planned(pools, groups, budget):
    packing = pack(groups, pools, [])
    decisions = decide(pools, [], packing, {}, 0.0, 0.0, 600)
    cap_to_budget(pools, decisions, budget)
    return decisions


def test_max_hourly_cost_cuts_growth_and_says_so():
    pools = [pool("od2", 2, 0.096)]
    decisions = planned(pools, [pods(2, 10)], Budget(max_hourly_cost=0.5))
    assert decisions["od2"].desired == 5 and decisions["od2"].capped  # 5 x 0.096 = 0.48
    assert "capped by max_hourly_cost 0.5000 USD/h (would be 0.9600 USD/h): 5 node(s) instead of 10" in decisions["od2"].reason
    summary = Budget(max_hourly_cost=0.5).summary(pools, decisions)
    assert (summary["max_hourly_cost"], summary["planned_hourly_cost"], summary["used_hourly_cost"], summary["capped"]) == (0.5, 0.48, 0.0, True)


@pytest.mark.parametrize(("budget", "desired"), [(0.96, 10), (0.288, 3), (0.2879, 2), (0.0, 0), (2.0, 10)])
def test_max_hourly_cost_boundaries_despite_float_sums(budget, desired):
    decisions = planned([pool("od2", 2, 0.096)], [pods(2, 10)], Budget(max_hourly_cost=budget))
    assert decisions["od2"].desired == desired


def test_the_cost_budget_counts_spot_and_on_demand_nodes_at_their_prices():
    pools = [pool("spot2", 2, 0.03, spot=True), pool("od2", 2, 0.096)]
    decisions = planned(pools, [pods(2, 4, may_use_spot=False, name="safe"), pods(2, 4, name="any")], Budget(max_hourly_cost=0.3))
    # In the pools' order: spot2 gets its 4 (0.12), od2 1 of 4 (0.096; a second would pass 0.3).
    assert (decisions["spot2"].desired, decisions["od2"].desired) == (4, 1)


@pytest.mark.parametrize("bad", [-0.01, "lots", float("nan"), float("inf"), True])
def test_a_bad_max_hourly_cost_is_refused(bad):
    with pytest.raises(ToilInputError, match="max_hourly_cost must be a number of US dollars per hour, 0 or more"):
        validate_budget(None, None, bad)


def test_max_hourly_cost_is_a_budget_of_its_own():
    assert validate_budget(None, None, 12.5) == Budget(max_hourly_cost=12.5)
    assert validate_budget(None, None, "3") == Budget(max_hourly_cost=3.0)


def pending_pod(name, cpu, spot=True, arch=None, preferred=None):
    spec = {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
    terms = []
    if not spot:
        terms.append({"key": "eks.amazonaws.com/capacityType", "operator": "NotIn", "values": ["SPOT"]})
    if arch:
        terms.append({"key": "kubernetes.io/arch", "operator": "In", "values": [arch]})
    affinity = {}
    if terms:
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [{"matchExpressions": terms}]}
    if preferred:
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [{"weight": 1, "preference": {"matchExpressions": [preferred]}}]
    if affinity:
        spec["affinity"] = {"nodeAffinity": affinity}
    status = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec, "status": status}


def test_pods_read_once_per_distinct_spec_still_group_by_what_they_ask():
    spot_preference = {"key": "eks.amazonaws.com/capacityType", "operator": "In", "values": ["SPOT"]}
    listed = [
        pending_pod("a-1", "1"),
        pending_pod("a-2", "1", preferred=spot_preference),  # a preference changes nothing
        pending_pod("b", "1", spot=False),
        pending_pod("c", "1", arch="arm64"),
        pending_pod("d", "2"),
        pending_pod("a-3", "1000m"),  # the same request written otherwise
    ]
    groups = _pending_groups(views(listed, "V1Pod"), _Parser(), True)
    assert [(g.name, g.request.cpu, g.may_use_spot, g.arches, g.count) for g in groups] == [
        ("default/a-1 (+2)", 1000, True, None, 3),
        ("default/b", 1000, False, None, 1),
        ("default/c", 1000, True, frozenset({"arm64"}), 1),
        ("default/d", 2000, True, None, 1),
    ]


def test_a_bad_quantity_is_still_refused_when_pods_are_read_once_per_spec():
    with pytest.raises(ToilInputError, match="cpu"):
        _pending_groups(views([pending_pod("x", "lots")], "V1Pod"), _Parser(), True)
