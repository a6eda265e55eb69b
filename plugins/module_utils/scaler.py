# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""One run of the periodic scaler: read demand, pack it, decide each pool's size, resize the pools.

Demand comes from Kubernetes (kube_demand.py) or is given explicitly in the same form (the
``demand`` option). Pools are resized through nodepool.reconcile, the code of toil_nodepool.
What must survive between runs (inertia, idle timers, spot deficits, instance type shapes)
lives in a small JSON state file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import UTC, datetime

from ansible_collections.toil.cluster.plugins.module_utils.binpacking import NodeState, PodGroup, PoolShape, Resources, decide, node_capacity, pack
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import reconcile, validate_pool_spec
from ansible_collections.toil.cluster.plugins.module_utils.quantities import byte_count, millicores

STATE_VERSION = 1
_POD_KEYS = {"name", "cpu", "memory", "ephemeral_storage", "preemptible", "count"}
_NODE_KEYS = {"instance_id", "name", "pool", "allocatable", "requested", "idle_seconds", "safe_to_evict", "unschedulable"}


def _resources(spec, what):
    spec = spec or {}
    unknown = sorted(set(spec) - {"cpu", "memory", "ephemeral_storage"})
    if unknown:
        raise ToilInputError(f"{what}: unknown resource(s) {', '.join(unknown)} (expected cpu, memory, ephemeral_storage).")
    return Resources(
        cpu=millicores(spec.get("cpu", 0), f"{what} cpu"),
        memory=byte_count(spec.get("memory", 0), f"{what} memory"),
        disk=byte_count(spec.get("ephemeral_storage", 0), f"{what} ephemeral_storage"),
    )


def normalize_demand(demand):
    """The ``demand`` option (the Kubernetes adapter gives the same) -> (pod groups, nodes)."""
    if not isinstance(demand, dict):
        raise ToilInputError("demand must be a mapping with 'pods' and optionally 'nodes'.")
    unknown = sorted(set(demand) - {"pods", "nodes"})
    if unknown:
        raise ToilInputError(f"demand: unknown key(s) {', '.join(unknown)} (expected pods and nodes).")
    pods = []
    for index, pod in enumerate(demand.get("pods") or []):
        if not isinstance(pod, dict) or set(pod) - _POD_KEYS:
            raise ToilInputError(f"demand.pods[{index}]: expected a mapping with {', '.join(sorted(_POD_KEYS))}.")
        name = str(pod.get("name") or f"pod-{index}")
        count = pod.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ToilInputError(f"demand.pods[{index}] ({name}): count must be a positive integer.")
        request = _resources({k: pod[k] for k in ("cpu", "memory", "ephemeral_storage") if k in pod}, f"demand.pods[{index}] ({name})")
        pods.append(PodGroup(name=name, request=request, may_use_spot=bool(pod.get("preemptible", True)), count=count))
    nodes = []
    for index, node in enumerate(demand.get("nodes") or []):
        if not isinstance(node, dict) or set(node) - _NODE_KEYS or "instance_id" not in node:
            raise ToilInputError(f"demand.nodes[{index}]: expected a mapping with instance_id and {', '.join(sorted(_NODE_KEYS - {'instance_id'}))}.")
        what = f"demand.nodes[{index}] ({node['instance_id']})"
        allocatable = _resources(node.get("allocatable"), what + " allocatable")
        requested = _resources(node.get("requested"), what + " requested")
        free = allocatable.minus(requested)
        if node.get("unschedulable"):
            free = Resources()
        nodes.append(
            NodeState(
                instance_id=node["instance_id"],
                pool=node.get("pool"),
                free=Resources(max(free.cpu, 0), max(free.memory, 0), max(free.disk, 0)),
                idle_seconds=float(node.get("idle_seconds") or 0),
                safe_to_evict=bool(node.get("safe_to_evict", True)),
                name=node.get("name"),
            )
        )
    return pods, nodes


def validate_settings(params):
    beta = params.get("beta_inertia", 0.1)
    if not 0 <= beta <= 0.9:
        raise ToilInputError(f"beta_inertia must be between 0 and 0.9 (as Toil's --betaInertia), got {beta}.")
    compensation = params.get("preemptible_compensation", 0.0)
    if not 0 <= compensation <= 1:
        raise ToilInputError(f"preemptible_compensation must be between 0 and 1, got {compensation}.")
    idle = params.get("scale_down_idle_seconds", 600)
    if idle < 0:
        raise ToilInputError(f"scale_down_idle_seconds must not be negative, got {idle}.")
    pools = params.get("pools") or []
    if not pools:
        raise ToilInputError("pools: give at least one pool to scale.")
    specs = []
    for index, pool in enumerate(pools):
        if not isinstance(pool, dict):
            raise ToilInputError(f"pools[{index}] must be a mapping with name, node_types, min_size and max_size.")
        unknown = sorted(set(pool) - {"name", "node_types", "min_size", "max_size", "node_storage"})
        if unknown:
            raise ToilInputError(f"pools[{index}]: unknown key(s) {', '.join(unknown)}.")
        if pool.get("min_size") is None or pool.get("max_size") is None:
            raise ToilInputError(f"pools[{index}]: a scaled pool needs min_size and max_size.")
        spec = validate_pool_spec(
            {
                "cluster": params["cluster"],
                "name": pool.get("name"),
                "node_types": pool.get("node_types"),
                "min_size": pool["min_size"],
                "max_size": pool["max_size"],
                "node_storage": pool.get("node_storage", 50),
                "authorized_keys": params.get("authorized_keys"),
            }
        )
        specs.append(spec)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ToilInputError(f"pools: names must be distinct, got {', '.join(names)}.")
    return specs, beta, compensation, idle


def load_state(path):
    if not path or not os.path.exists(path):
        return {"version": STATE_VERSION}
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError) as error:
        raise ToilInputError(f"state_path {path} is not a scaler state file: {error}") from None
    return state if isinstance(state, dict) and state.get("version") == STATE_VERSION else {"version": STATE_VERSION}


def save_state(path, state):
    """Write atomically: a run killed midway leaves the previous state whole."""
    if not path:
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".toil-scaler-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(state, out, indent=1, sort_keys=True)
    os.replace(temporary, path)


def instance_type_shapes(ec2, instance_types, cache):
    """vCPUs and memory per instance type, from DescribeInstanceTypes, cached in the state."""
    missing = sorted(set(instance_types) - set(cache))
    for start in range(0, len(missing), 100):
        answer = ec2.describe_instance_types(InstanceTypes=missing[start : start + 100], aws_retry=True)["InstanceTypes"]
        for info in answer:
            cache[info["InstanceType"]] = {"vcpus": info["VCpuInfo"]["DefaultVCpus"], "memory_mib": info["MemoryInfo"]["SizeInMiB"]}
    return cache


def pool_shapes(specs, type_cache):
    """Each pool's node shape: the smallest of its interchangeable instance types, less Toil's overhead."""
    shapes = []
    for spec in specs:
        capacities = [node_capacity(type_cache[t]["vcpus"], type_cache[t]["memory_mib"], spec.node_storage) for t in spec.node_type.instance_types]
        capacity = Resources(min(c.cpu for c in capacities), min(c.memory for c in capacities), min(c.disk for c in capacities))
        shapes.append(
            PoolShape(
                name=spec.name,
                capacity=capacity,
                preemptible=spec.node_type.preemptible,
                min_size=spec.pool.min_size,
                max_size=spec.pool.max_size,
                instance_types=spec.node_type.instance_types,
            )
        )
    return shapes


def metrics_text(decisions, shapes, queue_size):
    """The figures Toil's dashboard plots, in node_exporter's textfile format."""
    lines = [
        "# HELP autoscaler_cur_size Nodes in the pool now.",
        "# TYPE autoscaler_cur_size gauge",
    ]
    by_name = {s.name: s for s in shapes}
    for name, decision in sorted(decisions.items()):
        lines.append(f'autoscaler_cur_size{{node_type="{"/".join(by_name[name].instance_types)}",pool="{name}"}} {decision.current}')
    lines += ["# HELP autoscaler_desired_size Nodes the scaler wants in the pool.", "# TYPE autoscaler_desired_size gauge"]
    for name, decision in sorted(decisions.items()):
        lines.append(f'autoscaler_desired_size{{node_type="{"/".join(by_name[name].instance_types)}",pool="{name}"}} {decision.desired}')
    lines += ["# HELP autoscaler_queue_size Pods waiting for a node.", "# TYPE autoscaler_queue_size gauge", f"autoscaler_queue_size {queue_size}"]
    return "\n".join(lines) + "\n"


def write_metrics(path, text):
    if not path:
        return
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".toil-scaler-", suffix=".prom")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def plan(specs, shapes, pods, nodes, state, beta, compensation, idle):
    """Pack and decide, for every pool at once (pure: no AWS call)."""
    packing = pack(pods, shapes, nodes)
    decisions = decide(shapes, nodes, packing, state.get("estimates", {}), beta, compensation, idle, state.get("deficits", {}))
    return packing, decisions


def run(ec2, specs, shapes, pods, nodes, state, settings, apply, wait, wait_timeout, drain=None):
    """Plan, then (if ``apply``) resize the pools: spot pools first, so their deficits can be compensated."""
    beta, compensation, idle = settings
    packing, decisions = plan(specs, shapes, pods, nodes, state, beta, compensation, idle)
    results, changed, deficits = {}, False, dict(state.get("deficits", {}))
    if apply:
        by_name = {s.name: s for s in specs}
        for shape in sorted(shapes, key=lambda s: not s.preemptible):
            if not shape.preemptible and compensation:  # the deficits of this run, not the last
                decisions[shape.name] = decide(
                    [s for s in shapes if s.preemptible or s.name == shape.name], nodes, packing, state.get("estimates", {}), beta, compensation, idle, deficits
                )[shape.name]
            decision = decisions[shape.name]
            spec = by_name[shape.name]
            if drain and decision.victims:
                # Only nodes that were drained go; a node whose pods could not be evicted stays.
                drained = drain([n for n in nodes if n.instance_id in decision.victims])
                kept = [v for v in decision.victims if v not in drained]
                decision.victims = [v for v in decision.victims if v in drained]
                decision.desired += len(kept)
            spec.desired = decision.desired
            spec.victims = tuple(decision.victims)
            pool_changed, summary, _diff = reconcile(ec2, spec, "present", False, wait, wait_timeout)
            changed = changed or pool_changed
            deficits[shape.name] = summary["deficit"]
            results[shape.name] = summary
    state["estimates"] = {name: d.estimate for name, d in decisions.items()}
    state["deficits"] = deficits
    return packing, decisions, results, changed


def now_utc():
    return datetime.now(UTC)


def queue_size(pods):
    return sum(p.count for p in pods)


def lower_bound(pods, capacity):
    """The fractional lower bound of nodes of one shape for ``pods`` (for tests and reports)."""
    need = [sum(p.request.cpu * p.count for p in pods) / capacity.cpu if capacity.cpu else 0, sum(p.request.memory * p.count for p in pods) / capacity.memory]
    return math.ceil(max(need)) if pods else 0
