"""The scaler's packing and decisions: Toil's clusterScalerTest scenarios that apply to pods, and properties."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.toil.cluster.plugins.module_utils.binpacking import (
    GIB,
    MIB,
    NodeState,
    PodGroup,
    PoolShape,
    Resources,
    decide,
    disk_overhead,
    memory_overhead,
    node_capacity,
    pack,
    round_half_away,
)

# Instance types as Toil's tests use them: (vCPUs, memory MiB).
T2_MICRO = (1, 1024)
C4_8XLARGE = (36, 61440)
R3_8XLARGE = (32, 249856)
M5_LARGE = (2, 8192)


def shape(name, instance, preemptible=False, disk_gib=50, min_size=0, max_size=1000, types=None):
    return PoolShape(name, node_capacity(*instance, disk_gib), preemptible, min_size, max_size, tuple(types or (name,)))


def pods(name, cpu_m=0, memory=0, disk=0, count=1, may_use_spot=True):
    return PodGroup(name, Resources(cpu_m, memory, disk), may_use_spot, count)


def test_overhead_is_tolls_gke_formula():
    assert memory_overhead(512 * MIB) == 255 * MIB
    # 8 GiB: 25% of 4 GiB + 20% of the next 4 GiB + the 100 MiB eviction threshold.
    assert memory_overhead(8 * GIB) == int(0.25 * 4 * GIB + 0.2 * 4 * GIB) + 100 * MIB
    assert disk_overhead(50 * GIB) == 5 * 10**9 + int(0.05 * 50 * GIB)
    assert disk_overhead(GIB) == GIB  # all of it


def test_a_job_as_large_as_the_node_needs_a_larger_node():
    # Toil's test_overhead_accounting_large: a job needing all of a c4.8xlarge's memory goes to an r3.8xlarge.
    small, large = shape("c4", C4_8XLARGE), shape("r3", R3_8XLARGE)
    result = pack([pods("big", memory=60 * GIB)], [small, large], [])
    assert result.new_nodes == {"c4": 0, "r3": 1}
    result = pack([pods("fits", memory=int(0.7 * 60 * GIB))], [small, large], [])
    assert result.new_nodes == {"c4": 1, "r3": 0}


def test_target_time_zero_gives_one_node_per_full_sized_job():
    # Toil's testLowTargetTime (targetTime 0 -> 1000 t2.micro for 1000 jobs of a t2.micro's size).
    micro = shape("micro", T2_MICRO)
    job = Resources(1000, micro.capacity.memory, 0)
    result = pack([PodGroup("job", job, True, 1000)], [micro], [])
    assert result.new_nodes["micro"] == 1000


def test_zero_resource_jobs_fit_anywhere():
    result = pack([pods("nothing", count=1000)], [shape("m5", M5_LARGE)], [])
    assert result.new_nodes["m5"] == 1
    assert result.placed["m5"] == 1000


def test_too_big_pods_are_reported_and_do_not_block_others():
    result = pack([pods("huge", cpu_m=64000, memory=GIB), pods("small", cpu_m=500, memory=GIB, count=3)], [shape("m5", M5_LARGE)], [])
    assert [(u["name"], u["count"]) for u in result.unplaceable] == [("huge", 1)]
    assert result.unplaceable[0]["largest_shape"]["cpu"] == "2000m"
    assert result.placed["m5"] == 3


def test_spot_first_and_never_for_pods_that_avoid_it():
    spot, ondemand = shape("spot", M5_LARGE, preemptible=True), shape("ondemand", M5_LARGE)
    result = pack([pods("pre", cpu_m=1000, count=4), pods("strict", cpu_m=1000, count=4, may_use_spot=False)], [ondemand, spot], [])
    assert result.new_nodes == {"spot": 2, "ondemand": 2}
    assert all(b.spot is False for b in result.bins if "strict" in b.loads)


def test_existing_free_capacity_is_used_first():
    existing = [NodeState("i-1", "m5", Resources(1500, 4 * GIB, 10 * GIB))]
    result = pack([pods("a", cpu_m=500, memory=GIB, count=4)], [shape("m5", M5_LARGE)], existing)
    assert result.used_nodes == {"i-1"}
    assert result.new_nodes["m5"] == 1  # 3 on i-1, 1 on a new node
    assert result.placed["m5"] == 4


def test_round_half_away_from_zero_like_toil():
    assert [round_half_away(x) for x in (0.5, 1.5, 2.5, -0.5, 0.49)] == [1, 2, 3, -1, 0]


def _decide(pools, nodes=(), packing=None, previous=None, beta=0.0, compensation=0.0, idle=600, deficits=None):
    packing = packing or pack([], pools, list(nodes))
    return decide(pools, list(nodes), packing, previous or {}, beta, compensation, idle, deficits)


def test_beta_inertia_goes_half_way_then_converges():
    # Toil's testBetaInertia: beta 0.5 towards 100 gives 50, then 75, and converges on 100.
    pool = shape("p", M5_LARGE)
    many = pack([pods("j", cpu_m=1000, memory=0, count=200)], [pool], [])
    assert many.new_nodes["p"] == 100
    previous = {"p": 0}
    seen = []
    for _run in range(30):
        decision = decide([pool], [], many, previous, 0.5, 0.0, 600)["p"]
        previous = {"p": decision.estimate}
        seen.append(decision.desired)
    assert seen[:2] == [50, 75]
    assert seen[-1] == 100


def test_preemptible_compensation_adds_a_share_of_the_spot_deficit():
    # Toil's test: a deficit of 5 with compensation 0.5 adds 3 (rounded half up).
    spot = shape("spot", M5_LARGE, preemptible=True, types=("m5.large",))
    ondemand = shape("ondemand", M5_LARGE, types=("m5.large",))
    decisions = _decide([spot, ondemand], compensation=0.5, deficits={"spot": 5})
    assert decisions["ondemand"].desired == 3
    assert decisions["spot"].desired == 0


def test_bounds_and_busy_nodes():
    pool = shape("p", M5_LARGE, min_size=2, max_size=3)
    assert _decide([pool])["p"].desired == 2
    busy = [NodeState(f"i-{n}", "p", Resources(), idle_seconds=0) for n in range(5)]
    decision = _decide([pool], busy)["p"]
    # Never above max_size; the busy nodes are not victims (run() keeps them until idle).
    assert (decision.current, decision.desired, decision.victims) == (5, 3, [])
    assert "2 busy node(s) above the desired size kept until idle" in decision.reason


def test_a_node_without_an_instance_never_pushes_desired_past_max_size():
    """Issue 17's "current=3, desired=3, capped at max_size 2": a node object whose instance is unknown (no
    providerID) was never removable, so it counted as busy and raised desired past max_size, and the pool
    launched a third instance."""
    pool = shape("p", M5_LARGE, min_size=0, max_size=2)
    nodes = [
        NodeState("i-0aaaaaaaaaaaaaaaa", "p", Resources(), idle_seconds=0),
        NodeState("i-0bbbbbbbbbbbbbbbb", "p", Resources(), idle_seconds=0),
        NodeState(None, "p", Resources(2000, GIB, GIB), idle_seconds=5000),  # a dead node's object, unmatched
    ]
    decision = _decide([pool], nodes)["p"]
    assert decision.desired <= pool.max_size
    assert decision.desired == 2


def test_idle_nodes_go_after_the_threshold_unless_unsafe():
    pool = shape("p", M5_LARGE, min_size=1, max_size=10)
    nodes = [
        NodeState("i-busy", "p", Resources(), idle_seconds=0),
        NodeState("i-idle-long", "p", Resources(2000, GIB, GIB), idle_seconds=900),
        NodeState("i-idle-short", "p", Resources(2000, GIB, GIB), idle_seconds=100),
        NodeState("i-unsafe", "p", Resources(2000, GIB, GIB), idle_seconds=5000, safe_to_evict=False),
    ]
    decision = _decide([pool], nodes)["p"]
    assert decision.victims == ["i-idle-long"]
    assert decision.desired == 3


# --- properties -----------------------------------------------------------------------------------

pod_strategy = st.builds(
    lambda i, cpu, mem, disk, count, spot: pods(f"g{i}", cpu, mem * MIB, disk * GIB, count, spot),
    st.integers(0, 10**6),
    st.integers(0, 8000),
    st.integers(0, 70 * 1024),
    st.integers(0, 60),
    st.integers(1, 40),
    st.booleans(),
)
instance_strategy = st.sampled_from([T2_MICRO, M5_LARGE, (4, 16384), (8, 32768), C4_8XLARGE])


@settings(max_examples=200, deadline=None)
@given(
    groups=st.lists(pod_strategy, max_size=12, unique_by=lambda p: p.name),
    instances=st.lists(st.tuples(instance_strategy, st.booleans()), min_size=1, max_size=4),
    existing=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4000), st.integers(0, 16 * 1024)), max_size=5),
)
def test_packing_properties(groups, instances, existing):
    pools = [shape(f"p{i}", inst, spot) for i, (inst, spot) in enumerate(instances)]
    nodes = [NodeState(f"i-{n}", f"p{p % len(pools)}", Resources(cpu, mem * MIB, 10 * GIB)) for n, (p, cpu, mem) in enumerate(existing)]
    result = pack(groups, pools, nodes)
    by_name = {g.name: g for g in groups}
    spot_pools = {p.name for p in pools if p.preemptible}
    capacity = {p.name: p.capacity for p in pools}
    start = {n.instance_id: n.free for n in nodes}
    placed = 0
    for bin_ in result.bins:
        room = start[bin_.instance_id] if bin_.instance_id else capacity[bin_.pool]
        used = Resources(*(sum(by_name[g].request.__getattribute__(k) * c for g, c in bin_.loads.items()) for k in ("cpu", "memory", "disk")))
        assert room.fits(used), (bin_, room, used)  # every placed pod fits its node
        assert bin_.spot == (bin_.pool in spot_pools)
        if bin_.spot:
            assert all(by_name[g].may_use_spot for g in bin_.loads)  # no spot-avoiding pod on spot
        placed += sum(bin_.loads.values()) * bin_.nodes
    unplaced = sum(u["count"] for u in result.unplaceable)
    assert placed + unplaced == sum(g.count for g in groups)
    assert placed == sum(result.placed.values())
    assert sum(b.nodes for b in result.bins if b.instance_id is None) == sum(result.new_nodes.values())


@settings(max_examples=200, deadline=None)
@given(groups=st.lists(pod_strategy, min_size=1, max_size=12, unique_by=lambda p: p.name), instance=instance_strategy)
def test_never_fewer_nodes_than_the_fractional_lower_bound(groups, instance):
    pool = shape("p", instance)
    result = pack(groups, [pool], [])
    fitting = [g for g in groups if pool.capacity.fits(g.request)]
    for key in ("cpu", "memory", "disk"):
        total = sum(getattr(g.request, key) * g.count for g in fitting)
        bound = math.ceil(total / getattr(pool.capacity, key)) if getattr(pool.capacity, key) else 0
        assert result.new_nodes["p"] >= bound


def test_ten_thousand_pods_of_mixed_sizes_all_placed():
    sizes = [(250 * (1 + i % 16), (256 + 512 * (i % 24)) * MIB, (i % 5) * GIB, i % 2 == 0) for i in range(60)]
    groups = [
        pods(f"g{i}", cpu, mem, disk, count=10_000 // 60 + (1 if i < 10_000 % 60 else 0), may_use_spot=spot) for i, (cpu, mem, disk, spot) in enumerate(sizes)
    ]
    assert sum(g.count for g in groups) == 10_000
    pools = [shape(f"p{i}", inst, i % 2 == 0) for i, inst in enumerate([M5_LARGE, (4, 16384), (8, 32768), (16, 65536), C4_8XLARGE, R3_8XLARGE])]
    result = pack(groups, pools, [])  # its speed is measured by make bench, not asserted here
    assert sum(result.placed.values()) == 10_000
    assert not result.unplaceable


# ----------------------------------------------------------------------------- GPUs and architectures

G4DN_XLARGE = (4, 16384, 1)  # vCPUs, memory MiB, NVIDIA GPUs
P3_8XLARGE = (32, 249856, 4)


def gpu_shape(name, instance, preemptible=False, arch="amd64"):
    vcpus, memory, gpus = instance
    return PoolShape(name, node_capacity(vcpus, memory, 50, gpus), preemptible, 0, 1000, (name,), arch)


def gpu_pods(name, gpus, cpu_m=1000, memory=GIB, count=1, may_use_spot=True, arches=None):
    return PodGroup(name, Resources(cpu_m, memory, 0, gpus), may_use_spot, count, frozenset(arches) if arches else None)


def test_gpu_pods_go_only_to_gpu_shapes_and_the_fewest_gpu_nodes():
    cpu, g4, p3 = shape("m5", M5_LARGE), gpu_shape("g4dn", G4DN_XLARGE), gpu_shape("p3", P3_8XLARGE)
    result = pack([gpu_pods("train", 1, count=3)], [cpu, p3, g4], [])
    assert result.new_nodes == {"m5": 0, "p3": 0, "g4dn": 3}  # the smallest shape with a GPU each, never m5
    result = pack([gpu_pods("train", 2, count=3)], [cpu, p3, g4], [])
    assert result.new_nodes == {"m5": 0, "p3": 2, "g4dn": 0}  # two per p3 (4 GPUs), though CPU and memory allow more
    assert result.placed == {"m5": 0, "p3": 3, "g4dn": 0} and result.unplaceable == []


def test_gpu_pods_use_existing_nodes_free_gpus_only():
    cpu, g4 = shape("m5", M5_LARGE), gpu_shape("g4dn", G4DN_XLARGE)
    nodes = [
        NodeState("i-cpu", "m5", Resources(8000, 32 * GIB, 10 * GIB)),  # room for everything but GPUs
        NodeState("i-busy-gpu", "g4dn", Resources(3000, 10 * GIB, 10 * GIB, 0)),  # its GPU taken
        NodeState("i-free-gpu", "g4dn", Resources(3000, 10 * GIB, 10 * GIB, 1)),
    ]
    result = pack([gpu_pods("train", 1, count=2)], [cpu, g4], nodes)
    assert result.used_nodes == {"i-free-gpu"} and result.new_nodes == {"m5": 0, "g4dn": 1}


def test_a_gpu_pod_that_fits_no_pool_is_unplaceable_naming_gpus():
    cpu, g4 = shape("m5", M5_LARGE), gpu_shape("g4dn", G4DN_XLARGE)
    result = pack([gpu_pods("train", 2), gpu_pods("small", 1)], [cpu, g4], [])
    assert result.new_nodes == {"m5": 0, "g4dn": 1}  # the 1-GPU pod; the 2-GPU one fits no node
    (entry,) = result.unplaceable
    assert entry["name"] == "train" and entry["request"]["gpu"] == 2
    assert entry["reason"] == "it needs 2 GPU(s) and the pools it may use offer at most 1 per node"
    result = pack([gpu_pods("train", 1)], [cpu], [])
    assert result.unplaceable[0]["reason"] == "it needs 1 GPU(s) and the pools it may use offer at most 0 per node"


def test_pods_without_gpus_prefer_shapes_without_gpus():
    # g4dn.xlarge (4 vCPUs, 16 GiB) is smaller than m5.4xlarge (16, 64 GiB) and a spot shape: Toil's order
    # would open it first; a pod without GPUs opens it only when no shape without GPUs fits.
    g4_spot, m5_4x = gpu_shape("g4dn", G4DN_XLARGE, preemptible=True), shape("m5.4x", (16, 65536))
    result = pack([pods("align", cpu_m=2000, memory=4 * GIB, count=4)], [g4_spot, m5_4x], [])
    assert result.new_nodes == {"g4dn": 0, "m5.4x": 1}
    result = pack([pods("huge", cpu_m=2000, memory=200 * GIB)], [g4_spot, m5_4x, gpu_shape("p3", P3_8XLARGE)], [])
    assert result.new_nodes == {"g4dn": 0, "m5.4x": 0, "p3": 1}  # no shape without GPUs fits it: a GPU node
    assert sorted([g4_spot, m5_4x], key=PoolShape.order) == [m5_4x, g4_spot]


def test_arm64_pinned_pods_go_to_arm64_pools_and_never_to_amd64_nodes():
    amd, arm = shape("m5", M5_LARGE), PoolShape("m6g", node_capacity(2, 8192, 50), False, 0, 1000, ("m6g.large",), "arm64")
    amd.arch = "amd64"
    nodes = [NodeState("i-amd", "m5", Resources(2000, 7 * GIB, 40 * GIB), arch="amd64")]
    pinned = PodGroup("arm-job", Resources(500, GIB, 0), True, 3, frozenset({"arm64"}))
    result = pack([pinned], [amd, arm], nodes)
    assert result.used_nodes == set() and result.new_nodes == {"m5": 0, "m6g": 1} and result.placed == {"m5": 0, "m6g": 3}
    # A node listed without an architecture has its pool's.
    result = pack([pinned], [amd, arm], [NodeState("i-arm", "m6g", Resources(2000, 7 * GIB, 40 * GIB))])
    assert result.used_nodes == {"i-arm"} and result.new_nodes == {"m5": 0, "m6g": 0}
    # A pod without a pin goes anywhere, the amd64 node first (existing room first).
    result = pack([pods("any", cpu_m=500, memory=GIB, count=3)], [amd, arm], nodes)
    assert result.used_nodes == {"i-amd"} and result.new_nodes == {"m5": 0, "m6g": 0}
    # Pinned to an architecture no pool has: unplaceable, saying so.
    result = pack([PodGroup("s390", Resources(500, GIB, 0), True, 1, frozenset({"s390x"}))], [amd, arm], nodes)
    assert result.unplaceable[0]["reason"] == "it is pinned to s390x and no pool's nodes are" and result.unplaceable[0]["arch"] == "s390x"
    # Shapes of unknown architecture take only pods without a pin.
    result = pack([pinned], [shape("unknown", M5_LARGE)], [])
    assert result.unplaceable and result.new_nodes == {"unknown": 0}


def test_the_any_node_strategy_never_adds_pinned_pods_to_opened_nodes_of_another_architecture():
    amd = PoolShape("m5.4x", node_capacity(16, 65536, 50), False, 0, 1000, ("m5.4xlarge",), "amd64")
    arm = PoolShape("m6g", node_capacity(2, 8192, 50), False, 0, 1000, ("m6g.large",), "arm64")
    big, small = pods("big", cpu_m=8000, memory=20 * GIB), PodGroup("arm-small", Resources(500, GIB, 0), True, 1, frozenset({"arm64"}))
    for strategy in ("any_node", "toil"):
        result = pack([big, small], [amd, arm], [], strategies=(strategy,))
        assert result.new_nodes == {"m5.4x": 1, "m6g": 1}, strategy
        assert {b.pool: set(b.loads) for b in result.bins} == {"m5.4x": {"big"}, "m6g": {"arm-small"}}, strategy
