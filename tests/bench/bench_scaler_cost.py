"""Cost-aware packing vs Toil's BinPackedFit, side by side in one run on two mixes, against one lower bound.

- "10k mix": bench_scaler's 10,000 jobs and node types (3 spot, 3 on-demand);
- "memory/disk mix": MIX2_JOBS jobs of this file, half large-memory (16-180 GiB) and half disk-heavy (40-120 GiB of
  ephemeral storage), on memory-optimised and general node types (3 spot, 3 on-demand).

For each mix, the same job shapes and node types go to both sides (bench_scaler's machinery; the capacities must match
Toil's node shapes byte for byte), and each pool gets one price per node hour: on-demand ones the bundled table's
(price_table.py, us-west-2, the endpoint's region), spot ones their bid, the most such a node can cost (moto's spot
history is canned at 0.00001 USD, which would make every spot node free). Reported per mix:

- cost: ours (the packing binpacking.pack keeps) and Toil's (its node counts at the same prices), each over the lower
  bound binpacking.cost_lower_bound (every request at the cheapest price per unit of its binding resource among the
  pools the pod may use; no fleet costs less). Target: ours <= 1.10 x the bound;
- nodes: ours vs Toil's (target: ours <= Toil's);
- decision time: the pending pods as the API server lists them (Toil 9.6's Job pods, bench_scaler_cycle.toil_pod,
  pruned and viewed as the scaler reads them) grouped by kube_demand.read_demand, then scaler.plan (pack with every
  strategy, decide, budgets): best of DECISION_RUNS, in this process, time.perf_counter (and its CPU time,
  time.process_time, which a loaded machine does not stretch). Target: <= 200 ms.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import UTC, datetime
from types import SimpleNamespace

from ansible_collections.toil.cluster.plugins.module_utils import kube_demand, price_table, scaler
from ansible_collections.toil.cluster.plugins.module_utils.binpacking import GIB, MIB, cost_lower_bound, pack, packing_cost
from ansible_collections.toil.cluster.plugins.module_utils.kube_client import prune_pod
from ansible_collections.toil.cluster.plugins.module_utils.kube_objects import cycle_collector_paused, views
from harness.paths import REPO

sys.path.insert(0, str(REPO / "tests" / "bench"))
from bench_scaler import NODE_STORAGE, NODE_TYPES, our_pods, our_pools, run_toil, shape_mismatches, toil_arg, toil_counts, workload  # noqa: E402
from bench_scaler_cycle import toil_pod  # noqa: E402

REGION = "us-west-2"
# Spot bids about half the on-demand price, as bench_scaler's are.
MIX2_NODE_TYPES = (("m5.2xlarge", 0.16), ("r5.2xlarge", 0.20), ("r5.8xlarge", 0.80), ("m5.xlarge", None), ("r5.4xlarge", None), ("r5.12xlarge", None))
MIX2_JOBS, MIX2_SHAPES, MIX2_SEED = 3_000, 60, 11
DECISION_RUNS = 5
COST_TARGET, DECISION_TARGET_MS = 1.10, 200


def memory_disk_workload(jobs=MIX2_JOBS, shapes=MIX2_SHAPES, seed=MIX2_SEED, preemptible_share=0.6):
    """Half the shapes large-memory (1-8 cores, 16-180 GiB, 0-20 GiB of disk), half disk-heavy (1-4 cores, 2-16 GiB,
    40-120 GiB of disk), in 64 MiB and 1 GiB steps; the jobs spread evenly over the shapes. Toil-side dicts as
    bench_scaler.workload's."""
    rng = random.Random(seed)
    out = []
    for index in range(shapes):
        if index % 2 == 0:
            cores, memory_gib, disk_gib = rng.choice((1, 2, 4, 8)), rng.uniform(16, 180), rng.randint(0, 20)
        else:
            cores, memory_gib, disk_gib = rng.choice((1, 2, 4)), rng.uniform(2, 16), rng.randint(40, 120)
        memory = int(memory_gib * 1024) // 64 * 64 * MIB
        out.append({"name": f"job-{index:03d}", "cores": cores, "memory": memory, "disk": disk_gib * GIB, "preemptible": rng.random() < preemptible_share})
    for index, job in enumerate(out):
        job["count"] = jobs // shapes + (1 if index < jobs % shapes else 0)
    return out


def _instance_types(endpoint, node_types):
    names = sorted({name for name, _bid in node_types})
    answer = endpoint.boto3_client("ec2").describe_instance_types(InstanceTypes=names)["InstanceTypes"]
    return {info["InstanceType"]: (info["VCpuInfo"]["DefaultVCpus"], info["MemoryInfo"]["SizeInMiB"]) for info in answer}


def priced_pools(endpoint, node_types):
    """The pools as the scaler shapes them, each with its node price: on-demand from the bundled table, spot its bid."""
    pools = our_pools(node_types, _instance_types(endpoint, node_types))
    table = price_table.ON_DEMAND[REGION]
    for pool, (name, bid) in zip(pools, node_types, strict=True):
        pool.hourly_cost, pool.max_size, pool.instance_types = (bid if bid is not None else table[name]), 100_000, (name,)
    return pools


def listed_pods(jobs):
    """The pending pods as read_cluster hands them over: JSON pruned, viewed as V1Pod, marked Unschedulable."""
    pods = []
    for job in jobs:
        for copy in range(job["count"]):
            pod = toil_pod(f"toil-{job['name']}-{copy}-x7k2p", job["cores"], job["memory"], job["disk"], job["preemptible"])
            pod["status"] = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
            pods.append(prune_pod(pod))
    return views(pods, "V1Pod")


def decision(pods, pools):
    """Group the listed pods, then plan: what the scaler does between listing and resizing."""
    settings = SimpleNamespace(beta_inertia=0.1, preemptible_compensation=0.0, scale_down_idle_seconds=600, budget=None)
    with cycle_collector_paused():
        groups, _workers, _idle = kube_demand.read_demand(pods, [], datetime.now(UTC))
        return scaler.plan(pools, groups, [], {}, settings)


def one_mix(endpoint, label, jobs, node_types):
    pools = priced_pools(endpoint, node_types)
    version, toil = run_toil(toil_arg(jobs, node_types=node_types, node_storage=NODE_STORAGE))
    mismatches = shape_mismatches(toil, pools)
    if mismatches:
        raise RuntimeError(f"{label}: our node capacities differ from Toil's node shapes: " + "; ".join(mismatches))
    listed = listed_pods(jobs)
    seconds, cpu_seconds = float("inf"), float("inf")
    for _run in range(DECISION_RUNS):
        began, cpu_began = time.perf_counter(), time.process_time()
        decision(listed, pools)
        seconds, cpu_seconds = min(seconds, time.perf_counter() - began), min(cpu_seconds, time.process_time() - cpu_began)
    # Cost and nodes on the jobs' own shapes, as Toil packs them (Toil's pods request 512 MiB more memory and disk
    # than their jobs: the listed pods' groups are not Toil's job shapes).
    groups = our_pods(jobs)
    packing = pack(groups, pools, [])
    total = sum(job["count"] for job in jobs)
    if packing.unplaceable or toil["could_not_fit"] or sum(packing.placed.values()) != total:
        raise RuntimeError(f"{label}: not every job was placed: ours left {packing.unplaceable}, Toil {toil['could_not_fit']} shape(s)")
    bound, binding = cost_lower_bound(groups, pools)
    theirs = toil_counts(toil)
    ours_cost, toil_cost = packing_cost(packing, pools), sum(p.hourly_cost * theirs.get(p.name, 0) for p in pools)
    ours_nodes, toil_nodes = sum(packing.new_nodes.values()), sum(theirs.values())
    anchor = f"Toil {version.split('-')[0]} BinPackedFit"
    ratio = ours_cost / bound
    per_pool = ", ".join(f"{p.name} {packing.new_nodes[p.name]}/{theirs.get(p.name, 0)} at {p.hourly_cost:g}" for p in pools)
    note = (
        f"{total:,} pods in {len(groups)} groups; lower bound {bound:.2f} USD/h ({binding} binds); ours {ours_cost:.2f} USD/h = {ratio:.3f} x bound "
        f"(target <= {COST_TARGET}: {'met' if ratio <= COST_TARGET else 'NOT met'}), Toil {toil_cost:.2f} USD/h = {toil_cost / bound:.3f} x bound; "
        f"strategy kept {packing.strategy}; nodes per pool ours/Toil at USD/h: {per_pool}"
    )
    return [
        {"name": f"cost/h over lower bound, {label}", "ours": ratio, "anchor": toil_cost / bound, "anchor_name": anchor, "unit": "x bound", "note": note},
        {"name": f"nodes, {label}", "ours": ours_nodes, "anchor": toil_nodes, "anchor_name": anchor, "unit": "nodes"},
        {
            "name": f"decision incl. grouping, {label}",
            "ours": seconds * 1000,
            "anchor": DECISION_TARGET_MS,
            "anchor_name": "target",
            "unit": "ms",
            "note": (
                f"best of {DECISION_RUNS}: read_demand of {total:,} listed pods + scaler.plan; {'met' if seconds * 1000 <= DECISION_TARGET_MS else 'NOT met'}; "
                f"CPU time {cpu_seconds * 1000:.0f} ms (the machine's load, {os.getloadavg()[0]:.1f}, stretches wall time)"
            ),
        },
    ]


def scaler_cost(endpoint):
    return one_mix(endpoint, "10k mix", workload(), NODE_TYPES) + one_mix(endpoint, "memory/disk mix", memory_disk_workload(), MIX2_NODE_TYPES)


BENCHMARKS = [scaler_cost]
