# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""One run of the periodic scaler: read demand, pack it, decide each pool's size, resize the pools.

Demand comes from Kubernetes (kube_demand.py, as integers) or is given explicitly (the ``demand``
option, in Kubernetes quantities). Pools are resized through nodepool.reconcile, the code of
toil_nodepool; idle nodes are drained first (kube_drain.py); unhealthy nodes are repaired (node_repair.py). What must survive between runs
(inertia, idle timers, spot deficits, instance type shapes) lives in a small JSON state file.
``toil_scaler`` builds a :class:`ScalerSettings` from its options and calls :func:`scale`.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ansible_collections.toil.cluster.plugins.module_utils.binpacking import (
    Budget,
    PodGroup,
    PoolShape,
    Resources,
    cap_to_budget,
    cost_report,
    decide,
    node_capacity,
    node_state,
    pack,
)
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.instance_requirements import (
    CATALOGUE_MAX_AGE_SECONDS,
    CATALOGUE_VERSION,
    TYPE_SHAPE_KEYS,
    catalogue_entry,
    read_catalogue,
    type_shape,
)
from ansible_collections.toil.cluster.plugins.module_utils.kube_client import KUBE_CONNECTION_ARG_SPEC, ApiException, api_message, load_clients, read_cluster
from ansible_collections.toil.cluster.plugins.module_utils.kube_demand import ARCHITECTURES, IDLE_SINCE_ANNOTATION, gpu_count, match_instances, read_demand
from ansible_collections.toil.cluster.plugins.module_utils.kube_drain import delete_node, drain_nodes
from ansible_collections.toil.cluster.plugins.module_utils.kube_lease import FileLock, KubeLease, coordination_client
from ansible_collections.toil.cluster.plugins.module_utils.kube_objects import cycle_collector_paused
from ansible_collections.toil.cluster.plugins.module_utils.names import validate_cluster_name
from ansible_collections.toil.cluster.plugins.module_utils.node_repair import impaired_instances, repair_nodes, split_repairs, unhealthy_nodes, validate_repair
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import reconcile, validate_pool_spec, with_instance_types
from ansible_collections.toil.cluster.plugins.module_utils.nodes import GONE_STATES, cluster_instances, refresh
from ansible_collections.toil.cluster.plugins.module_utils.prices import read_prices, refuse_unpriced_budget, validate_hourly_cost
from ansible_collections.toil.cluster.plugins.module_utils.provider_id import instance_of
from ansible_collections.toil.cluster.plugins.module_utils.quantities import byte_count, millicores, parse_quantity
from ansible_collections.toil.cluster.plugins.module_utils.subnets import check_zone_regions
from ansible_collections.toil.cluster.plugins.module_utils.tags import POOL_TAG, tag_dict
from ansible_collections.toil.cluster.plugins.module_utils.zones import resolve_region

# The state file's layout. Its parts that older runs wrote differently are recognised one by one, so the estimates
# and deficits survive an upgrade: an instance type's shape without a key of TYPE_SHAPE_KEYS (GPUs and architecture
# came later) is described again, and a region catalogue of another CATALOGUE_VERSION is read again.
STATE_VERSION = 1
_RESOURCE_KEYS = ("cpu", "memory", "ephemeral_storage", "gpu")
_POD_KEYS = {"name", *_RESOURCE_KEYS, "arch", "preemptible", "count"}
_NODE_KEYS = {"instance_id", "name", "pool", "arch", "allocatable", "requested", "idle_seconds", "safe_to_evict", "unschedulable"}


def _resources(spec, what):
    spec = spec or {}
    if not isinstance(spec, dict):
        raise ToilInputError(f"{what}: expected a mapping of {', '.join(_RESOURCE_KEYS)}.")
    unknown = sorted(set(spec) - set(_RESOURCE_KEYS))
    if unknown:
        raise ToilInputError(f"{what}: unknown resource(s) {', '.join(unknown)} (expected {', '.join(_RESOURCE_KEYS)}).")
    return Resources(
        cpu=millicores(spec.get("cpu", 0), f"{what} cpu"),
        memory=byte_count(spec.get("memory", 0), f"{what} memory"),
        disk=byte_count(spec.get("ephemeral_storage", 0), f"{what} ephemeral_storage"),
        gpu=gpu_count(spec.get("gpu", 0), f"{what} gpu"),
    )


def _arches(value, what, several=True):
    """The ``arch`` of a demanded pod (one architecture or a list) or node (one): Kubernetes' names."""
    if value is None:
        return None
    values = value if several and isinstance(value, list) and value else [value]
    for arch in values:
        if arch not in ARCHITECTURES:
            hint = " (Kubernetes' name for x86_64 is amd64)" if arch == "x86_64" else ""
            expected = f"one of {', '.join(ARCHITECTURES)}" + (" or a list of them" if several else "")
            raise ToilInputError(f"{what}: arch must be {expected}, as the kubernetes.io/arch label says, not {arch!r}{hint}.")
    return frozenset(values)


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
        what = f"demand.pods[{index}] ({name})"
        request = _resources({k: pod[k] for k in _RESOURCE_KEYS if k in pod}, what)
        pods.append(PodGroup(name=name, request=request, may_use_spot=bool(pod.get("preemptible", True)), count=count, arches=_arches(pod.get("arch"), what)))
    nodes = []
    for index, node in enumerate(demand.get("nodes") or []):
        if not isinstance(node, dict) or set(node) - _NODE_KEYS or "instance_id" not in node:
            raise ToilInputError(f"demand.nodes[{index}]: expected a mapping with instance_id and {', '.join(sorted(_NODE_KEYS - {'instance_id'}))}.")
        what = f"demand.nodes[{index}] ({node['instance_id']})"
        allocatable = _resources(node.get("allocatable"), what + " allocatable")
        requested = _resources(node.get("requested"), what + " requested")
        arch = _arches(node.get("arch"), what, several=False)
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
                arch=next(iter(arch)) if arch else None,
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
        unknown = sorted(set(pool) - {"name", "node_types", "min_size", "max_size", "node_storage", "zones", "subnets", "image_id"})
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
                "zones": pool.get("zones"),
                "subnets": pool.get("subnets"),
                "image_id": pool.get("image_id"),
                "authorized_keys": params.get("authorized_keys"),
            }
        )
        specs.append(spec)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ToilInputError(f"pools: names must be distinct, got {', '.join(names)}.")
    return specs, beta, compensation, idle


def validate_budget(max_vcpus, max_memory, max_hourly_cost=None):
    """``max_vcpus`` (a whole number of vCPUs), ``max_memory`` (a Kubernetes quantity with a unit, ``512Gi``;
    a bare number would be bytes, so only 0 may go without one) and ``max_hourly_cost`` (USD per hour) -> a Budget,
    or None when none is given."""
    if max_vcpus is None and max_memory is None and max_hourly_cost is None:
        return None
    if max_hourly_cost is not None:
        max_hourly_cost = validate_hourly_cost(max_hourly_cost, "max_hourly_cost")
    if max_vcpus is not None and (isinstance(max_vcpus, bool) or not isinstance(max_vcpus, int) or max_vcpus < 0):
        raise ToilInputError(f"max_vcpus must be a whole number of vCPUs, 0 or more, got {max_vcpus!r}.")
    memory = None
    if max_memory is not None:
        text = str(max_memory).strip()
        if isinstance(max_memory, bool) or not text:
            raise ToilInputError(f"max_memory must be a Kubernetes quantity such as 512Gi, got {max_memory!r}.")
        if text[-1].isdigit() and parse_quantity(text, "max_memory") != 0:
            raise ToilInputError(f"max_memory {text} has no unit: write it as a Kubernetes quantity with one, such as {text}Gi (a bare number would be bytes).")
        memory = byte_count(text, "max_memory")  # refuses a negative quantity
        max_memory = text
    return Budget(max_vcpus=max_vcpus, max_memory=memory, memory_text=max_memory, max_hourly_cost=max_hourly_cost)


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
    kube_auth: dict = None  # kubernetes.core's other connection options (kube_client.load_clients)
    apply: bool = True  # resize the pools (false: plan only)
    check_mode: bool = False  # plan only, and write neither the state nor the metrics
    wait: bool = True
    wait_timeout: int = 600
    drain_timeout: int = 300
    state_path: str = None
    metrics_path: str = None
    lease_wait: int = 30
    lease_duration: int = 60
    repair_after_seconds: int = 600  # 0: never repair
    max_repairs: int = 1
    budget: Budget = None  # max_vcpus, max_memory and max_hourly_cost of the scaled pools' workers; None: no bound

    @classmethod
    def from_params(cls, params, check_mode=False):
        """From the module's parameters; raises ToilInputError on a bad name, pool or range."""
        validate_cluster_name(params["cluster"])
        specs, beta, compensation, idle = validate_settings(params)
        lease_wait, lease_duration = params.get("lease_wait", 30), params.get("lease_duration", 60)
        if not 0 <= lease_wait <= 3600:
            raise ToilInputError(f"lease_wait must be between 0 and 3600 seconds, got {lease_wait}.")
        if not 15 <= lease_duration <= 3600:
            raise ToilInputError(f"lease_duration must be between 15 and 3600 seconds (client-go's default is 15), got {lease_duration}.")
        repair_after, max_repairs = params.get("repair_after_seconds", 600), params.get("max_repairs", 1)
        validate_repair(repair_after, max_repairs)
        region = resolve_region(params["zone"], params["region"])
        if region:  # every pool's zones before any pool is resized
            for spec in specs:
                check_zone_regions(spec.zones, region)
        return cls(
            cluster=params["cluster"],
            pools=tuple(specs),
            region=region,
            beta_inertia=beta,
            preemptible_compensation=compensation,
            scale_down_idle_seconds=idle,
            demand=params["demand"],
            kubeconfig=params["kubeconfig"],
            context=params["context"],
            kube_auth={name: params.get(name) for name in KUBE_CONNECTION_ARG_SPEC if name not in ("kubeconfig", "context")},
            apply=params["apply"] and not check_mode,
            check_mode=check_mode,
            wait=params["wait"],
            wait_timeout=params["wait_timeout"],
            drain_timeout=params["drain_timeout"],
            state_path=params["state_path"],
            metrics_path=params["metrics_path"],
            lease_wait=lease_wait,
            lease_duration=lease_duration,
            repair_after_seconds=repair_after,
            max_repairs=max_repairs,
            budget=validate_budget(params.get("max_vcpus"), params.get("max_memory"), params.get("max_hourly_cost")),
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
    """vCPUs, memory, instance-store size, GPUs and architecture per instance type (instance_requirements.type_shape),
    from DescribeInstanceTypes, cached in the state. An entry cached by an older run without one of them (``storage_gib``,
    ``gpus``, ``arch``) is described again: an old shape is never read as a type without GPUs.
    """
    missing = sorted(t for t in set(instance_types) if not all(key in cache.get(t, {}) for key in TYPE_SHAPE_KEYS))
    for start in range(0, len(missing), 100):
        answer = ec2.describe_instance_types(InstanceTypes=missing[start : start + 100], aws_retry=True)["InstanceTypes"]
        for info in answer:
            cache[info["InstanceType"]] = type_shape(catalogue_entry(info))
    return cache


def region_catalogue(ec2, state, region, now):
    """The region's instance types (instance_requirements.read_catalogue), kept in the state for a day; one kept by
    an older run (another ``CATALOGUE_VERSION``: without GPU counts) is read again."""
    kept = state.get("catalogue")
    read_at = None
    if isinstance(kept, dict) and kept.get("region") == region and kept.get("version") == CATALOGUE_VERSION and isinstance(kept.get("types"), dict):
        try:
            read_at = datetime.fromisoformat(kept.get("read_at"))
        except (TypeError, ValueError):
            read_at = None
    if read_at is None or read_at.tzinfo is None or not 0 <= (now - read_at).total_seconds() <= CATALOGUE_MAX_AGE_SECONDS:
        kept = state["catalogue"] = {"region": region, "version": CATALOGUE_VERSION, "read_at": now.isoformat(), "types": read_catalogue(ec2)}
    return kept["types"]


def with_pool_types(settings, ec2, state, now):
    """The settings with every pool's instance types: those chosen by requirements are found among the region's
    types (``region_catalogue``), whose shapes then need no other DescribeInstanceTypes call."""
    if all(spec.node_type.instance_types for spec in settings.pools):
        return settings
    catalogue = region_catalogue(ec2, state, settings.region, now)
    pools = tuple(with_instance_types(ec2, spec, catalogue) for spec in settings.pools)
    shapes = state.setdefault("instance_types", {})
    for spec in pools:
        for name in spec.node_type.instance_types:
            shapes[name] = type_shape(catalogue[name])
    return replace(settings, pools=pools)


def node_disk_gib(type_info, node_storage):
    """The disk pods get on a node, as Toil's getNodeShape counts it: the instance-store disks when the type has
    any (the kubernetes role puts the kubelet's and containerd's directories on them), else the root volume."""
    return type_info.get("storage_gib") or node_storage


def pool_arch(spec, type_cache):
    """The one architecture (``kubernetes.io/arch``) of a pool's instance types; a pool mixing them is refused."""
    by_arch = {}
    for name in spec.node_type.instance_types:
        by_arch.setdefault(type_cache[name]["arch"], []).append(name)
    if None in by_arch:
        raise ToilInputError(f"Pool {spec.name}: instance type(s) {', '.join(by_arch[None])} run neither x86_64 nor arm64 Linux.")
    if len(by_arch) > 1:
        mixed = "; ".join(f"{arch}: {', '.join(names)}" for arch, names in sorted(by_arch.items()))
        raise ToilInputError(
            f"Pool {spec.name} mixes architectures ({mixed}): the scaler packs pods pinned to an architecture by their pool's,"
            " so a pool's instance types must share one. Make one pool per architecture."
        )
    return next(iter(by_arch))


def pool_shapes(specs, type_cache, prices=None):
    """Each pool's node shape: the smallest of its interchangeable instance types, less Toil's overhead, their
    architecture (raises ToilInputError when they do not share one) and, with ``prices`` (a prices.PriceBook), the
    most one of its nodes costs per hour."""
    shapes = []
    for spec in specs:
        arch = pool_arch(spec, type_cache)
        capacities = [
            node_capacity(type_cache[t]["vcpus"], type_cache[t]["memory_mib"], node_disk_gib(type_cache[t], spec.node_storage), type_cache[t]["gpus"])
            for t in spec.node_type.instance_types
        ]
        capacity = Resources(min(c.cpu for c in capacities), min(c.memory for c in capacities), min(c.disk for c in capacities), min(c.gpu for c in capacities))
        types = [type_cache[t] for t in spec.node_type.instance_types]
        shapes.append(
            PoolShape(
                name=spec.name,
                capacity=capacity,
                preemptible=spec.node_type.preemptible,
                min_size=spec.pool.min_size,
                max_size=spec.pool.max_size,
                instance_types=spec.node_type.instance_types,
                arch=arch,
                vcpus=max(t["vcpus"] for t in types),
                memory_mib=max(t["memory_mib"] for t in types),
                hourly_cost=prices.node_price(spec.node_type.instance_types, spec.node_type.preemptible, spec.node_type.spot_bid) if prices else None,
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
    """Pack and decide, for every pool at once, within the budget (pure: no AWS call)."""
    packing = pack(pods, shapes, nodes)
    decisions = _decide(shapes, nodes, packing, state, settings, state.get("deficits", {}))
    cap_to_budget(shapes, decisions, settings.budget)
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


def run(ec2, settings, shapes, pods, nodes, state, drain=None, pool_sizes=None, still_leading=None, unhealthy=None):
    """Plan, then (if ``settings.apply``) resize the pools: spot pools first, so their deficits can be compensated.

    ``drain``, given the victims (NodeStates), returns the instance ids whose node is drained: only
    those are terminated. ``pool_sizes``: each pool's live instances on EC2, when known; a pool is
    never asked to shrink below its nodes minus the drained victims (busy nodes above max_size
    stay until idle), nor to grow past the desired size. ``still_leading``, called before each
    resize, raises when this run lost its Lease. ``unhealthy``: per pool, ``(repaired, waiting)``, the counts of
    its nodes repaired this run (their instances terminated already: not in ``pool_sizes``) and of those left
    unhealthy for a later run; neither is among ``nodes``. The waiting ones are added to the pool's size on EC2
    (up to ``max_size``), so that the desired nodes are healthy ones. Returns ``(packing, decisions, results, changed)``.
    """
    unhealthy = unhealthy or {}
    packing, decisions = plan(shapes, pods, nodes, state, settings)
    results, changed, deficits = {}, False, dict(state.get("deficits", {}))
    if settings.apply:
        by_name = {s.name: s for s in settings.pools}
        resized = {}  # pool -> its nodes after its resize
        for shape in sorted(shapes, key=lambda s: not s.preemptible):
            if still_leading:
                still_leading()
            if not shape.preemptible and settings.preemptible_compensation:  # the deficits of this run, not the last
                compared = [s for s in shapes if s.preemptible or s.name == shape.name]
                decisions[shape.name] = _decide(compared, nodes, packing, state, settings, deficits)[shape.name]
                cap_to_budget(shapes, decisions, settings.budget, fixed=resized)  # the pools resized stay
            decision = decisions[shape.name]
            spec = by_name[shape.name]
            if drain and decision.victims:
                # Only nodes that were drained go; a node whose pods could not be evicted stays.
                drained = drain([n for n in nodes if n.instance_id in decision.victims])
                decision.victims = [v for v in decision.victims if v in drained]
            repaired, waiting = unhealthy.get(shape.name, (0, 0))
            floor = decision.current - len(decision.victims) + waiting
            if pool_sizes is not None:
                floor = min(floor, pool_sizes.get(shape.name, 0) - repaired)
            extra = min(waiting, max(0, shape.max_size - decision.desired))
            spec.desired = max(decision.desired + extra, floor)
            spec.victims = tuple(decision.victims)
            pool_changed, summary, _diff = reconcile(ec2, spec, "present", False, settings.wait, settings.wait_timeout)
            changed = changed or pool_changed
            deficits[shape.name] = summary["deficit"]
            results[shape.name] = summary
            resized[shape.name] = len(summary["instances"])
    state["estimates"] = {name: d.estimate for name, d in decisions.items()}
    state["deficits"] = deficits
    return packing, decisions, results, changed


def now_utc():
    return datetime.now(UTC)


def queue_size(pods):
    return sum(p.count for p in pods)


def gone_instance_ids(ec2, workers, instances):
    """The instances named by nodes' providerIDs that are not live members: those EC2 reports
    shutting down or terminated, or does not know (terminated over an hour ago)."""
    live = {i["InstanceId"] for i in instances}
    named = sorted({iid for w in workers if (iid := instance_of(w.provider_id)) and iid not in live})
    known = set()
    for start in range(0, len(named), 200):  # EC2 takes at most 200 values per filter
        known.update(i["InstanceId"] for i in refresh(ec2, named[start : start + 200]) if i["State"]["Name"] not in GONE_STATES)
    return set(named) - known


def remove_gone_nodes(core_v1, gone, act, warn):
    """Delete the Node objects whose instance is gone (no cloud controller does); only reported when ``act`` is false."""
    removed = []
    for worker in gone:
        entry = {"name": worker.name, "provider_id": worker.provider_id, "deleted": False}
        if act:
            entry["deleted"] = delete_node(core_v1, worker.name, "whose instance is gone", warn)
        removed.append(entry)
    return removed


def annotate_idle(core_v1, workers, warn):
    """Set or clear each node's idle-since annotation, where it differs from what the run saw.

    A merge patch carrying the node's resourceVersion: the API refuses it (409) when the node
    changed since it was listed; then the fresh node is read and the patch made again only if
    its annotation is still the one this run saw (else another run's timer stands).
    """
    for worker in workers:
        if worker.idle_since == worker.idle_annotation:
            continue
        version, seen = worker.resource_version, worker.idle_annotation
        for _attempt in range(2):
            body = {"metadata": {"annotations": {IDLE_SINCE_ANNOTATION: worker.idle_since}}}
            if version:
                body["metadata"]["resourceVersion"] = version
            try:
                core_v1.patch_node(worker.name, body)
                break
            except ApiException as error:
                if error.status == 404:
                    break
                if error.status != 409:
                    warn(f"The idle timer of node {worker.name} could not be written: {api_message(error)}")
                    break
            try:
                fresh = core_v1.read_node(worker.name)
            except ApiException:
                break
            if (fresh.metadata.annotations or {}).get(IDLE_SINCE_ANNOTATION) != seen:
                break
            version = fresh.metadata.resource_version


def pool_sizes_of(instances):
    """Live instances per pool tag."""
    sizes = {}
    for instance in instances:
        pool = tag_dict(instance.get("Tags")).get(POOL_TAG)
        if pool:
            sizes[pool] = sizes.get(pool, 0) + 1
    return sizes


@dataclass
class Observed:
    """What one run read: the pending pod groups, the nodes as the packer sees them, and, with Kubernetes,
    the drain function, each pool's live instances and the Node objects whose instance is gone."""

    pods: list
    nodes: list
    drain: object = None
    pool_sizes: dict = None
    gone: list = None
    core_v1: object = None
    workers: list = None
    repairs: list = None  # node_repair.Unhealthy, repaired this run
    waiting: list = None  # node_repair.Unhealthy, beyond max_repairs
    policy_v1: object = None
    leaving: list = None  # interrupted nodes (tainted INTERRUPTION_TAINT): name, instance_id, pool (its instance's tag)


def read_pods_and_nodes(settings, state, warn, ec2=None, clients=None):
    """What the run acts on.

    From the ``demand`` option when given; else from the Kubernetes API (``clients``: CoreV1Api and PolicyV1Api),
    each node matched to its instance among the cluster's live ones (``kube_demand.match_instances``); the idle
    timers come from the nodes' annotations (an older run's ``state["idle_since"]`` is read once, for a node
    without one, and dropped from the state). The drain function cordons, evicts and deletes.
    """
    if settings.demand is not None:
        pods, nodes = normalize_demand(settings.demand)
        return Observed(pods, nodes)
    core_v1, policy_v1 = clients or load_clients(settings.kubeconfig, settings.context, settings.kube_auth)
    with cycle_collector_paused():
        listed_pods, listed_nodes = read_cluster(core_v1)
        pods, workers, _timers = read_demand(listed_pods, listed_nodes, now_utc(), state.pop("idle_since", None) or {})
        del listed_pods, listed_nodes  # freed here, by reference counting
    instances = cluster_instances(ec2, settings.cluster) if ec2 is not None else []
    gone_ids = gone_instance_ids(ec2, workers, instances) if ec2 is not None else set()
    workers, gone = match_instances(workers, instances, gone_ids)
    # Nodes whose Spot interruption notice came: EC2 terminates them within two minutes, so they are neither room for
    # pods nor repaired; their pool's size on EC2 counts them on top of its desired nodes, so that the replacements
    # are launched now. Once their instance is gone, their Node is removed as any other's.
    pool_tags = {i["InstanceId"]: tag_dict(i.get("Tags")).get(POOL_TAG) for i in instances}
    leaving = [{"name": w.name, "instance_id": w.instance_id, "pool": pool_tags.get(w.instance_id) or w.pool} for w in workers if w.leaving]
    staying = [w for w in workers if not w.leaving]
    repairs, waiting = [], []
    if ec2 is not None and settings.repair_after_seconds:
        impaired = impaired_instances(ec2, [w.instance_id for w in staying if w.instance_id])
        pools = {spec.name for spec in settings.pools}
        repairs, waiting = split_repairs(unhealthy_nodes(staying, instances, pools, now_utc(), settings.repair_after_seconds, impaired), settings.max_repairs)
    broken = {u.worker.name for u in repairs + waiting}  # never supply: they cannot run pods
    supply = [w.node_state() for w in staying if w.name not in broken]
    drain = functools.partial(drain_nodes, core_v1, policy_v1, timeout=settings.drain_timeout, warn=warn)
    sizes = pool_sizes_of(instances) if ec2 is not None else None
    return Observed(pods, supply, drain, sizes, gone, core_v1, workers, repairs, waiting, policy_v1, leaving)


def not_counted(repairs, waiting, leaving, applied):
    """Per pool, ``(repaired, waiting)``: the nodes that are not its desired nodes, for ``run``'s ``unhealthy``. Repaired
    ones (their instance terminated already when ``applied``); and, still running beside the desired nodes, the
    unhealthy ones waiting for a later run and the interrupted ones leaving (``leaving``: dicts with ``pool``)."""
    counts = {}
    for pool, done in [(e.pool, applied) for e in repairs] + [(e.pool, False) for e in waiting] + [(e["pool"], False) for e in leaving]:
        repaired, left = counts.get(pool, (0, 0))
        counts[pool] = (repaired + 1, left) if done else (repaired, left + 1)
    return counts


def run_lock(settings, clients):
    """What keeps two runs apart (None in check mode, which changes nothing): the cluster's Lease with
    Kubernetes, a lock on the state file without (none without a state file: such runs share nothing)."""
    if settings.check_mode:
        return None
    if clients is not None:
        return KubeLease(coordination_client(clients[0]), settings.cluster, duration=settings.lease_duration, wait=settings.lease_wait)
    if settings.state_path:
        return FileLock(settings.state_path, wait=settings.lease_wait)
    return None


def scale(settings, ec2, warn, pricing=None):
    """One scaler run; returns ``toil_scaler``'s result.

    ``ec2`` is a retrying boto3 client of the cluster's region; ``warn`` reports a node that
    could not be drained and pods that fit no pool. The run holds the cluster's Lease (or the state
    file's lock) from before it reads anything to its end, so a concurrent run waits up to
    ``lease_wait`` seconds or stops naming the holder. ``pricing``: a Price List client (prices.py; None: the
    bundled price table). Raises ToilInputError for bad input (before any change) and lets AWS's errors through.
    """
    clients = load_clients(settings.kubeconfig, settings.context, settings.kube_auth) if settings.demand is None else None
    lock = run_lock(settings, clients)
    if lock is None:
        return _scale(settings, ec2, warn, clients, None, pricing)
    lock.acquire()
    try:
        result = _scale(settings, ec2, warn, clients, lock, pricing)
    finally:
        lock.release()
    if isinstance(lock, KubeLease):
        result["lease"] = {"name": f"{lock.namespace}/{lock.name}", "holder": lock.identity}
    return result


def priced_shapes(settings, ec2, pricing, type_cache, warn):
    """The pools' shapes with their nodes' hourly prices (prices.read_prices); a ``max_hourly_cost`` with a pool
    whose instance types have no price anywhere is refused."""
    types = {t for s in settings.pools for t in s.node_type.instance_types}
    spot_types = {t for s in settings.pools if s.node_type.preemptible for t in s.node_type.instance_types}
    book = read_prices(pricing, ec2, settings.region, types, spot_types, warn)
    shapes = pool_shapes(settings.pools, type_cache, book)
    unpriced = [f"pool {s.name} ({', '.join(book.missing(s.instance_types))})" for s in shapes if s.hourly_cost is None]
    if unpriced and settings.budget is not None and settings.budget.max_hourly_cost is not None:
        refuse_unpriced_budget(settings.region, unpriced)
    if unpriced:
        warn(
            f"No on-demand price in {settings.region} for {'; '.join(unpriced)}: the run packs for the fewest nodes (the"
            " cheapest packing needs every pool's price) and reports the cost of those pools as null."
        )
    return shapes, book


def _scale(settings, ec2, warn, clients, lease, pricing=None):
    state = load_state(settings.state_path)
    settings = with_pool_types(settings, ec2, state, now_utc())
    observed = read_pods_and_nodes(settings, state, warn, ec2, clients)
    state["instance_types"] = instance_type_shapes(ec2, {t for s in settings.pools for t in s.node_type.instance_types}, state.get("instance_types", {}))
    shapes, book = priced_shapes(settings, ec2, pricing, state["instance_types"], warn)
    removed, repaired = [], []
    still_leading = lease.still_held if lease is not None else None
    repairs, waiting = observed.repairs or [], observed.waiting or []
    if observed.core_v1 is not None:
        if lease is not None:
            lease.still_held()
        removed = remove_gone_nodes(observed.core_v1, observed.gone, settings.apply, warn)
        if not settings.check_mode:
            annotate_idle(observed.core_v1, observed.workers, warn)
        if settings.apply:
            repaired = repair_nodes(ec2, observed.core_v1, repairs, settings, warn, observed.policy_v1, still_leading)
        else:
            repaired = [entry.report() for entry in repairs]
    unhealthy = not_counted(repairs, waiting, observed.leaving or (), settings.apply)
    packing, decisions, results, changed = run(
        ec2, settings, shapes, observed.pods, observed.nodes, state, observed.drain, observed.pool_sizes, still_leading, unhealthy
    )
    changed = changed or any(r["deleted"] for r in removed) or bool(repaired and settings.apply)
    pools = []
    prices = {s.name: s.hourly_cost for s in shapes}
    for name, decision in decisions.items():
        entry = decision.as_dict()
        entry["node_hourly_cost"] = prices[name]
        if name in results:
            entry.update(deficit=results[name]["deficit"], instances=results[name]["instances"])
        pools.append(entry)
    if not settings.check_mode:
        save_state(settings.state_path, state)
        if settings.metrics_path and os.path.isdir(os.path.dirname(os.path.abspath(settings.metrics_path))):
            write_metrics(settings.metrics_path, metrics_text(decisions, shapes, queue_size(observed.pods)))
    for decision in decisions.values():
        for message in decision.warnings:
            warn(message)
    for pod in packing.unplaceable:
        pinned = f" pinned to {pod['arch']}" if pod["arch"] else ""
        warn(
            f"{pod['count']} pod(s) {pod['name']} requesting {pod['request']}{pinned} fit no pool: {pod['reason']}. "
            "They will wait forever unless a pool that fits them is added."
        )
    for entry in repaired:
        if not entry["repaired"]:
            warn(f"Node {entry['name']} ({entry['instance_id']}) is unhealthy ({entry['reason']}): it would be repaired (plan only).")
    for entry in waiting:
        warn(
            f"Node {entry.worker.name} ({entry.worker.instance_id}) is unhealthy ({entry.reason}) and waits for a later run:"
            f" max_repairs {settings.max_repairs} node(s) are repaired per run. It is not counted as room for pods."
        )
    for entry in removed:
        if not entry["deleted"] and not settings.apply:
            warn(f"Node {entry['name']} ({entry['provider_id'] or 'no providerID'}) has no live instance: it would be deleted (plan only).")
    return {
        "changed": changed,
        "pools": pools,
        "unplaceable": packing.unplaceable,
        "queue_size": queue_size(observed.pods),
        "applied": settings.apply,
        "removed_nodes": removed,
        "repaired_nodes": repaired,
        "unhealthy_nodes_waiting": [entry.report() for entry in waiting],
        "leaving_nodes": observed.leaving or [],
        "budget": (settings.budget or Budget()).summary(shapes, decisions),
        "cost": {**cost_report(observed.pods, shapes, packing), "prices_from": book.source},
    }
