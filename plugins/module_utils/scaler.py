# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""One run of the periodic scaler: read demand, pack it, decide each pool's size, resize the pools.

Demand comes from Kubernetes (kube_demand.py, as integers) or is given explicitly (the ``demand``
option, in Kubernetes quantities). Pools are resized through nodepool.reconcile, the code of
toil_nodepool; idle nodes are drained first (kube_drain.py). What must survive between runs
(inertia, idle timers, spot deficits, instance type shapes) lives in a small JSON state file.
``toil_scaler`` builds a :class:`ScalerSettings` from its options and calls :func:`scale`.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime

from ansible_collections.toil.cluster.plugins.module_utils.binpacking import PodGroup, PoolShape, Resources, decide, node_capacity, node_state, pack
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.kube_client import load_clients, read_cluster
from ansible_collections.toil.cluster.plugins.module_utils.kube_demand import read_demand
from ansible_collections.toil.cluster.plugins.module_utils.kube_drain import drain_nodes
from ansible_collections.toil.cluster.plugins.module_utils.names import validate_cluster_name
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import reconcile, validate_pool_spec
from ansible_collections.toil.cluster.plugins.module_utils.quantities import byte_count, millicores
from ansible_collections.toil.cluster.plugins.module_utils.zones import resolve_region

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
    """The ``demand`` option -> (pod groups, nodes), as the packer takes them."""
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
        nodes.append(
            node_state(
                node["instance_id"],
                node.get("pool"),
                allocatable,
                requested,
                idle_seconds=node.get("idle_seconds"),
                safe_to_evict=node.get("safe_to_evict", True),
                unschedulable=node.get("unschedulable"),
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


@dataclass(frozen=True)
class ScalerSettings:
    """One scaler run's settings: ``toil_scaler``'s options, checked."""

    cluster: str
    pools: tuple  # nodepool.PoolSpec, one per scaled pool
    region: str  # None when neither the zone nor the region option says
    beta_inertia: float = 0.1
    preemptible_compensation: float = 0.0
    scale_down_idle_seconds: int = 600
    demand: dict = None  # given explicitly; None: read from Kubernetes
    kubeconfig: str = None
    context: str = None
    apply: bool = True  # resize the pools (false: plan only)
    check_mode: bool = False  # plan only, and write neither the state nor the metrics
    wait: bool = True
    wait_timeout: int = 600
    drain_timeout: int = 300
    state_path: str = None
    metrics_path: str = None

    @classmethod
    def from_params(cls, params, check_mode=False):
        """From the module's parameters; raises ToilInputError on a bad name, pool or range."""
        validate_cluster_name(params["cluster"])
        specs, beta, compensation, idle = validate_settings(params)
        return cls(
            cluster=params["cluster"],
            pools=tuple(specs),
            region=resolve_region(params["zone"], params["region"]),
            beta_inertia=beta,
            preemptible_compensation=compensation,
            scale_down_idle_seconds=idle,
            demand=params["demand"],
            kubeconfig=params["kubeconfig"],
            context=params["context"],
            apply=params["apply"] and not check_mode,
            check_mode=check_mode,
            wait=params["wait"],
            wait_timeout=params["wait_timeout"],
            drain_timeout=params["drain_timeout"],
            state_path=params["state_path"],
            metrics_path=params["metrics_path"],
        )


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


def plan(shapes, pods, nodes, state, settings):
    """Pack and decide, for every pool at once (pure: no AWS call)."""
    packing = pack(pods, shapes, nodes)
    decisions = _decide(shapes, nodes, packing, state, settings, state.get("deficits", {}))
    return packing, decisions


def _decide(shapes, nodes, packing, state, settings, deficits):
    return decide(
        shapes,
        nodes,
        packing,
        state.get("estimates", {}),
        settings.beta_inertia,
        settings.preemptible_compensation,
        settings.scale_down_idle_seconds,
        deficits,
    )


def run(ec2, settings, shapes, pods, nodes, state, drain=None):
    """Plan, then (if ``settings.apply``) resize the pools: spot pools first, so their deficits can be compensated.

    ``drain``, given the victims (NodeStates), returns the instance ids whose node is drained: only
    those are terminated. Returns ``(packing, decisions, results, changed)``.
    """
    packing, decisions = plan(shapes, pods, nodes, state, settings)
    results, changed, deficits = {}, False, dict(state.get("deficits", {}))
    if settings.apply:
        by_name = {s.name: s for s in settings.pools}
        for shape in sorted(shapes, key=lambda s: not s.preemptible):
            if not shape.preemptible and settings.preemptible_compensation:  # the deficits of this run, not the last
                compared = [s for s in shapes if s.preemptible or s.name == shape.name]
                decisions[shape.name] = _decide(compared, nodes, packing, state, settings, deficits)[shape.name]
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
            pool_changed, summary, _diff = reconcile(ec2, spec, "present", False, settings.wait, settings.wait_timeout)
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


def read_pods_and_nodes(settings, state, warn):
    """The pending pod groups, the nodes and a drain function (None without Kubernetes).

    From the ``demand`` option when given; else from the Kubernetes API, whose idle timers go
    into ``state["idle_since"]`` and whose nodes the drain function cordons, evicts and deletes.
    """
    if settings.demand is not None:
        pods, nodes = normalize_demand(settings.demand)
        return pods, nodes, None
    core_v1, policy_v1 = load_clients(settings.kubeconfig, settings.context)
    listed_pods, listed_nodes = read_cluster(core_v1)
    pods, workers, state["idle_since"] = read_demand(listed_pods, listed_nodes, now_utc(), state.get("idle_since", {}))
    drain = functools.partial(drain_nodes, core_v1, policy_v1, timeout=settings.drain_timeout, warn=warn)
    return pods, [worker.node_state() for worker in workers], drain


def scale(settings, ec2, warn):
    """One scaler run; returns ``toil_scaler``'s result.

    ``ec2`` is a retrying boto3 client of the cluster's region; ``warn`` reports a node that
    could not be drained and pods that fit no pool. Raises ToilInputError for bad input (before
    any change) and lets AWS's errors through.
    """
    state = load_state(settings.state_path)
    pods, nodes, drain = read_pods_and_nodes(settings, state, warn)
    state["instance_types"] = instance_type_shapes(ec2, {t for s in settings.pools for t in s.node_type.instance_types}, state.get("instance_types", {}))
    shapes = pool_shapes(settings.pools, state["instance_types"])
    packing, decisions, results, changed = run(ec2, settings, shapes, pods, nodes, state, drain)
    pools = []
    for name, decision in decisions.items():
        entry = decision.as_dict()
        if name in results:
            entry.update(deficit=results[name]["deficit"], instances=results[name]["instances"])
        pools.append(entry)
    if not settings.check_mode:
        save_state(settings.state_path, state)
        if settings.metrics_path and os.path.isdir(os.path.dirname(os.path.abspath(settings.metrics_path))):
            write_metrics(settings.metrics_path, metrics_text(decisions, shapes, queue_size(pods)))
    for pod in packing.unplaceable:
        warn(
            f"{pod['count']} pod(s) {pod['name']} requesting {pod['request']} fit no pool (the largest node offers {pod['largest_shape']}): "
            "they will wait forever unless a larger node type is added."
        )
    return {"changed": changed, "pools": pools, "unplaceable": packing.unplaceable, "queue_size": queue_size(pods), "applied": settings.apply}
