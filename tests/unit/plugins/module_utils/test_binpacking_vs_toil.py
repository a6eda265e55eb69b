"""Our packing never asks for more nodes than Toil's own BinPackedFit on the same job shapes (differential).

The workloads are the benchmark's (tests/bench/bench_scaler.py: the same generator and node types, 2,000
jobs instead of 10,000), with three mixes of preemptible jobs, plus the smallest cases found where a
simpler packing asked for more than Toil. Toil packs at target time 0 (every job to start now), as its
scaler's getEstimatedNodeCounts would; tests/unit/toil_oracle.py's ``bin_packing`` says how.
Timing is for ``make bench``, never asserted here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.binpacking import GIB, MIB, pack

_BENCH = Path(__file__).resolve().parents[3] / "bench" / "bench_scaler.py"
_spec = importlib.util.spec_from_file_location("bench_scaler", _BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

INSTANCE_TYPES = {**bench.INSTANCE_TYPES, "r5.2xlarge": (8, 65536)}


def _job(name, cores, memory, disk=0, preemptible=True, count=1):
    return {"name": name, "cores": cores, "memory": memory, "disk": disk, "preemptible": preemptible, "count": count}


# First fit onto any opened node puts the four small pods on the r5.2xlarge opened for the 24 GiB one,
# so the 6-core pod no longer fits there and opens a second r5.2xlarge (3 nodes); Toil keeps the small
# pods to the m5.xlarge (the smallest shape that fits them) and the 6-core pod fits the r5.2xlarge (2).
SMALL_PODS_TAKE_A_LARGE_NODES_ROOM = bench.toil_arg(
    [
        _job("memory-heavy", 0.5, 24 * GIB, 70 * GIB),
        _job("disk-heavy", 1, 2 * GIB, 70 * GIB),
        _job("small", 0.5, 512 * MIB, 1 * GIB, count=4),
        _job("cpu-heavy", 6, 256 * MIB, 30 * GIB),
    ],
    node_types=(("r5.2xlarge", None), ("m5.xlarge", None)),
)
# A pod that requests no cpu fits a node whose cpu is all requested (Toil: 1 node).
NO_CPU_REQUEST = bench.toil_arg(
    [_job("one-core", 1, GIB, preemptible=False, count=2), _job("no-cpu", 0, GIB, preemptible=False)], node_types=(("m5.large", None),)
)

CASES = {
    "2000 jobs, 60% preemptible": bench.toil_arg(bench.workload(jobs=2000, shapes=60, seed=1, preemptible_share=0.6)),
    "2000 jobs, none preemptible": bench.toil_arg(bench.workload(jobs=2000, shapes=60, seed=2, preemptible_share=0.0)),
    "2000 jobs, all preemptible": bench.toil_arg(bench.workload(jobs=2000, shapes=60, seed=3, preemptible_share=1.0)),
    "small pods take a large node's room": SMALL_PODS_TAKE_A_LARGE_NODES_ROOM,
    "a pod requesting no cpu": NO_CPU_REQUEST,
}


def _ours(arg):
    """Our pools and pods for Toil's argument (``--nodeTypes`` back to (type, spot bid))."""
    node_types = [(spec.split(":")[0], float(spec.split(":")[1]) if ":" in spec else None) for spec in arg["node_types"].split(",")]
    return bench.our_pools(node_types, INSTANCE_TYPES, arg["node_storage"]), bench.our_pods(arg["jobs"])


def _toil(toil, arg):
    answer = toil("bin_packing", arg)
    assert "value" in answer, answer
    return answer["value"]


@pytest.mark.toil("bin_packing", param="arg")
@pytest.mark.parametrize("arg", list(CASES.values()), ids=list(CASES))
def test_never_more_nodes_than_toil(toil, arg):
    theirs = _toil(toil, arg)
    pools, pods = _ours(arg)
    assert bench.shape_mismatches(theirs, pools) == []  # the same node shapes, byte for byte
    packing = pack(pods, pools, [])
    assert not packing.unplaceable
    assert theirs["could_not_fit"] == 0
    assert sum(packing.placed.values()) == sum(job["count"] for job in arg["jobs"])
    toil_nodes = bench.toil_counts(theirs)
    assert sum(packing.new_nodes.values()) <= sum(toil_nodes.values()), (packing.strategy, packing.new_nodes, toil_nodes)
    # What makes it hold on every workload: the "toil" strategy is Toil's packing, node for node.
    assert pack(pods, pools, [], strategies=("toil",)).new_nodes == toil_nodes


@pytest.mark.toil("bin_packing", arg=SMALL_PODS_TAKE_A_LARGE_NODES_ROOM)
def test_first_fit_on_any_node_alone_can_ask_more_than_toil(toil):
    toil_nodes = bench.toil_counts(_toil(toil, SMALL_PODS_TAKE_A_LARGE_NODES_ROOM))
    pools, pods = _ours(SMALL_PODS_TAKE_A_LARGE_NODES_ROOM)
    assert toil_nodes == {"r5.2xlarge": 1, "m5.xlarge": 1}
    assert pack(pods, pools, [], strategies=("any_node",)).new_nodes == {"r5.2xlarge": 2, "m5.xlarge": 1}
    packing = pack(pods, pools, [])
    assert (packing.strategy, packing.new_nodes) == ("toil", toil_nodes)
