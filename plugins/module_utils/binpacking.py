# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Bin packing of pending pods onto nodes, and each pool's size: Toil's clusterScaler, for Kubernetes.

Toil's BinPackedFit (src/toil/provisioners/clusterScaler.py) packs queued jobs first-fit
decreasing onto node shapes ordered preemptible first, then smallest; it reserves per node the
memory GKE would (25% of the first 4 GiB, 20% up to 8, 10% up to 16, 6% up to 128, 2% above,
plus a 100 MiB eviction threshold; 255 MiB under 1 GiB) and 5 GB + 5% of disk; it smooths
estimates with beta inertia, rounds half away from zero, and adds a share of the spot deficit to
the matching on-demand shape. Here the same, with pods instead of jobs, and:
- the free capacity of existing nodes is used first;
- identical pods are packed as one group, so 10,000 pods cost what a few dozen shapes cost;
- a pod that fits no shape is reported with its size and the largest shape, and the rest go on
  (Toil hangs silently, issue 2197);
- a pod that must avoid spot never lands on a spot node or shape;
- GPUs (``nvidia.com/gpu``) are a fourth dimension: a pod needing GPUs fits only nodes and shapes with as many
  free; new nodes for a pod without GPUs come from shapes without GPUs when one fits it (GPU shapes after
  them, each in Toil's order), so GPU nodes are not opened for CPU work;
- a pod pinned to an architecture (``kubernetes.io/arch``) lands only on nodes and shapes of one it allows;
  a pod without a pin goes anywhere, as the Kubernetes scheduler sends it anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

GIB = 2**30
MIB = 2**20
EVICTION_THRESHOLD = 100 * MIB
RESERVE_SMALL_LIMIT = GIB
RESERVE_SMALL_AMOUNT = 255 * MIB
RESERVE_BREAKPOINTS = (4 * GIB, 8 * GIB, 16 * GIB, 128 * GIB, math.inf)
RESERVE_FRACTIONS = (0.25, 0.2, 0.1, 0.06, 0.02)
OS_DISK = 5 * 10**9  # "5G" in Toil: decimal
# Sums of prices are floats: a plan that meets max_hourly_cost to this much is within it.
COST_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Resources:
    """CPU in millicores, memory and disk in bytes, GPUs (``nvidia.com/gpu``) counted."""

    cpu: int = 0
    memory: int = 0
    disk: int = 0
    gpu: int = 0

    def fits(self, request):
        return request.cpu <= self.cpu and request.memory <= self.memory and request.disk <= self.disk and request.gpu <= self.gpu

    def minus(self, request, times=1):
        return Resources(self.cpu - request.cpu * times, self.memory - request.memory * times, self.disk - request.disk * times, self.gpu - request.gpu * times)

    def how_many(self, request):
        """How many ``request``s fit in these resources (a large number when the request is zero)."""
        counts = [
            free // need
            for free, need in ((self.cpu, request.cpu), (self.memory, request.memory), (self.disk, request.disk), (self.gpu, request.gpu))
            if need > 0
        ]
        return max(0, min(counts)) if counts else 10**9

    def as_dict(self):
        return {"cpu": f"{self.cpu}m", "memory": self.memory, "ephemeral_storage": self.disk, "gpu": self.gpu}


def memory_overhead(memory_bytes):
    """Toil's _gke_overhead: memory lost to the kubelet, system pods and the eviction threshold."""
    if memory_bytes < RESERVE_SMALL_LIMIT:
        return RESERVE_SMALL_AMOUNT
    reserved, accounted = 0.0, 0
    for breakpoint, fraction in zip(RESERVE_BREAKPOINTS, RESERVE_FRACTIONS, strict=True):
        limit = min(breakpoint, memory_bytes)
        reserved += fraction * (limit - accounted)
        accounted = limit
        if accounted >= memory_bytes:
            break
    return int(reserved) + EVICTION_THRESHOLD


def disk_overhead(disk_bytes):
    """Toil's _disk_overhead: the OS and the superuser reservation."""
    return min(disk_bytes, OS_DISK + int(0.05 * disk_bytes))


def node_capacity(vcpus, memory_mib, disk_gib, gpus=0):
    """What pods can use on a node: Toil's getNodeShape (memory less 0.1 GiB) less its overhead; every GPU."""
    memory = int((memory_mib / 1024 - 0.1) * GIB)
    disk = int(disk_gib * GIB)
    return Resources(cpu=vcpus * 1000, memory=memory - memory_overhead(memory), disk=disk - disk_overhead(disk), gpu=gpus)


def arch_allows(arches, arch):
    """Does a pod pinned to ``arches`` (a frozenset of ``kubernetes.io/arch`` values; None: no pin) fit a node or
    shape of ``arch`` (None: unknown, which only a pod without a pin fits)?"""
    return arches is None or arch in arches


@dataclass
class PoolShape:
    name: str
    capacity: Resources
    preemptible: bool
    min_size: int = 0
    max_size: int = 0
    instance_types: tuple = ()
    arch: str = None  # kubernetes.io/arch of its nodes (amd64, arm64); None: unknown
    # A node as a budget counts it (max_vcpus, max_memory): the largest DefaultVCpus and MemoryInfo.SizeInMiB among the
    # pool's instance types, whichever of them EC2 gives.
    vcpus: int = 0
    memory_mib: int = 0
    hourly_cost: float = None  # USD per node (prices.PriceBook.node_price); None: unknown

    def order(self):
        """Toil's node shape order (preemptible first, then the smallest), after every shape without GPUs: a pod
        without GPUs opens a GPU node only when no other shape fits it (a pod with GPUs fits none of those)."""
        return (self.capacity.gpu > 0, not self.preemptible, self.capacity.memory, self.capacity.cpu, self.capacity.disk, self.capacity.gpu, self.name)


@dataclass
class PodGroup:
    name: str
    request: Resources
    may_use_spot: bool
    count: int = 1
    arches: frozenset = None  # the kubernetes.io/arch values it is pinned to; None: no pin

    def order(self):
        """Toil's job order (first-fit decreasing): the pods that must avoid spot first, then those needing the most
        GPUs, then the largest."""
        return (self.may_use_spot, -self.request.gpu, -self.request.memory, -self.request.cpu, -self.request.disk, self.name)


@dataclass
class NodeState:
    instance_id: str
    pool: str
    free: Resources
    idle_seconds: float = 0.0
    safe_to_evict: bool = True
    name: str = None
    arch: str = None  # its kubernetes.io/arch label; None: its pool's


def node_state(instance_id, pool, allocatable, requested, idle_seconds=0, safe_to_evict=True, unschedulable=False, name=None, arch=None):
    """A node as the packer sees it: what its pods leave of its allocatable resources (nothing when it is
    cordoned; never below zero)."""
    free = Resources() if unschedulable else allocatable.minus(requested)
    return NodeState(
        instance_id=instance_id,
        pool=pool,
        free=Resources(max(free.cpu, 0), max(free.memory, 0), max(free.disk, 0), max(free.gpu, 0)),
        idle_seconds=float(idle_seconds or 0),
        safe_to_evict=bool(safe_to_evict),
        name=name,
        arch=arch,
    )


@dataclass
class Bin:
    """One node's share of the packing (``instance_id`` None: a node to launch; ``nodes`` alike ones)."""

    pool: str
    spot: bool
    free: Resources
    instance_id: str = None
    nodes: int = 1
    loads: dict = field(default_factory=dict)  # pod group name -> pods on each of these nodes
    existing: bool = False  # a node that is already there (its instance id may be unknown)
    arch: str = None  # kubernetes.io/arch; None: unknown


@dataclass
class Packing:
    new_nodes: dict = field(default_factory=dict)  # pool -> nodes to launch
    placed: dict = field(default_factory=dict)  # pool -> pods placed (on existing and new nodes)
    used_nodes: set = field(default_factory=set)  # existing instance ids that got pods
    unplaceable: list = field(default_factory=list)
    bins: list = field(default_factory=list)  # every node used or opened, with what went on it
    strategy: str = None  # the one of STRATEGIES that gave this packing


def _fill(bins, group, remaining, result, opened_pools=None):
    """First fit of ``remaining`` pods of ``group`` into ``bins`` (in order); returns what is left.

    A bin may stand for several identical nodes; the bin where the pods run out is split, so the
    result is exactly node-by-node first fit. Nodes opened in this packing are used only if their
    pool is in ``opened_pools`` (None: any pool); existing nodes always are.
    """
    index = 0
    while index < len(bins) and remaining:
        bin_ = bins[index]
        index += 1
        if bin_.spot and not group.may_use_spot:
            continue
        if group.arches is not None and bin_.arch not in group.arches:
            continue
        if opened_pools is not None and not bin_.existing and bin_.pool not in opened_pools:
            continue
        per_node = bin_.free.how_many(group.request)
        if per_node == 0:
            continue
        if remaining < per_node * bin_.nodes:  # split: filled nodes, one partly filled node, untouched ones
            filled, rest = divmod(remaining, per_node)
            replacement = []
            for count, take in ((filled, per_node), (1 if rest else 0, rest), (bin_.nodes - filled - (1 if rest else 0), 0)):
                if count:
                    loads = dict(bin_.loads)
                    if take:
                        loads[group.name] = loads.get(group.name, 0) + take
                    replacement.append(
                        Bin(bin_.pool, bin_.spot, bin_.free.minus(group.request, take), bin_.instance_id, count, loads, bin_.existing, bin_.arch)
                    )
            bins[index - 1 : index] = replacement
            where = next(i for i, b in enumerate(result.bins) if b is bin_)
            result.bins[where : where + 1] = replacement
            index += len(replacement) - 1
            taken = remaining
        else:
            bin_.free = bin_.free.minus(group.request, per_node)
            bin_.loads[group.name] = bin_.loads.get(group.name, 0) + per_node
            taken = per_node * bin_.nodes
        remaining -= taken
        result.placed[bin_.pool] += taken
        if bin_.instance_id:
            result.used_nodes.add(bin_.instance_id)
    return remaining


# Where a pod goes once the existing nodes are full, before a node is opened for it:
# - "any_node": the first node opened in this packing, of any pool, where it fits;
# - "toil": the first node opened for the pool it would open (the first shape where it fits), as
#   Toil's BinPackedFit.addJobShape does. Without existing nodes this is Toil's packing at target
#   time 0 (every pod to start now), node for node.
# - "cheapest": as "any_node", but the dearest pods first (_cost_order), and the pool it opens is the one whose node
#   holds the most of the lower bound per dollar, counting the pods packed after it that fit in the room left (_worth;
#   Toil's order on ties), not the first in Toil's order; then each partly filled new node moves to the cheapest
#   shape that holds its pods (_downsize). Every pool needs a price, else as "any_node".
# "any_node" needs fewer nodes on most workloads, not on all (a small pod may take the room a
# later large pod needed on a large node, where Toil sends it to the small shape's nodes).
STRATEGIES = ("any_node", "toil", "cheapest")


def pack(pods, pools, nodes, strategies=STRATEGIES):
    """First-fit decreasing of ``pods`` onto existing free capacity, then onto new nodes of ``pools``.

    Packs once per strategy. When every pool has a price (``hourly_cost``), keeps the packing whose new nodes cost
    least per hour among those opening no more nodes than the "toil" strategy, which is Toil's own count: cost is
    what a cluster pays, and never more nodes than Toil keeps boots and per-node overhead where Toil has them. Else
    (or without "toil" among them) the packing that opens the fewest nodes. Ties: fewer nodes, then the first strategy.
    """
    priced = bool(pools) and all(p.hourly_cost is not None for p in pools)
    tried = [s for s in strategies if priced or s != "cheapest"] or strategies  # unpriced, "cheapest" packs as "any_node"
    packings = [_pack(pods, pools, nodes, strategy) for strategy in tried]
    toil_nodes = [new_node_count(p) for p in packings if p.strategy == "toil"]
    if toil_nodes and priced:
        within = [p for p in packings if new_node_count(p) <= toil_nodes[0]]
        return min(within, key=lambda p: (round(packing_cost(p, pools), 9), new_node_count(p)))
    return min(packings, key=new_node_count)


def new_node_count(packing):
    return sum(packing.new_nodes.values())


def packing_cost(packing, pools):
    """USD per hour of the nodes ``packing`` opens (pools without a price count 0)."""
    return sum((p.hourly_cost or 0.0) * packing.new_nodes.get(p.name, 0) for p in pools)


RESOURCE_NAMES = ("cpu", "memory", "disk", "gpu")


def cost_lower_bound(pods, pools):
    """No fleet that runs ``pods`` costs less per hour than this: ``(USD per hour, the binding resource)``.

    For each resource, each pod's request at the cheapest price per unit of that resource among the pools whose
    nodes it may use and fits (spot only for pods that may use it, its architecture), summed: a node's price is at
    least its capacity times that unit price, and the nodes must hold every request. The bound is the largest of
    these sums, whose resource binds. Existing nodes' free room is not counted (it is paid already). None when a
    pool has no price or a pod fits no pool.
    """
    if not pools or any(p.hourly_cost is None for p in pools):
        return None
    totals = dict.fromkeys(RESOURCE_NAMES, 0.0)
    for group in pods:
        costs = _resource_costs(group, pools)
        if costs is None:
            return None
        for name, cost in costs.items():
            totals[name] += cost * group.count
    binding = max(RESOURCE_NAMES, key=lambda name: totals[name])
    return (totals[binding], binding) if totals[binding] > 0 else (0.0, None)  # no demand: nothing binds


def _allowed_pools(group, pools):
    """The pools whose nodes ``group``'s pods may use (spot only if they may, their architecture) and fit."""
    return [p for p in pools if (group.may_use_spot or not p.preemptible) and p.capacity.fits(group.request) and arch_allows(group.arches, p.arch)]


def _resource_costs(group, pools):
    """What one pod of ``group`` costs per hour in each resource it requests, at the cheapest price per unit of that
    resource among the priced ``pools`` it may use and fits: its share of cost_lower_bound. None when it fits none."""
    allowed = _allowed_pools(group, pools)
    if not allowed:
        return None
    # fits(): capacity >= need > 0 for every resource requested
    return {name: min(p.hourly_cost / getattr(p.capacity, name) for p in allowed) * need for name in RESOURCE_NAMES if (need := getattr(group.request, name))}


def _cost_order(weights):
    """The "cheapest" strategy's pod order: the pods that must avoid spot first, then those needing the most GPUs, then
    the dearest (``weights``: group name -> the sum of its _resource_costs): the pods that decide a fleet's cost choose
    their shapes first, and the cheap ones fill the room left on them, whichever resource it is."""
    return lambda group: (group.may_use_spot, -group.request.gpu, -weights[group.name], group.name)


def cost_report(pods, pools, packing):
    """The result's ``cost`` of a plan: what its new nodes cost per hour (USD), the lower bound for the pending pods
    (cost_lower_bound) and the ratio between them, and the packing strategy kept. Costs are null without prices."""
    bound = cost_lower_bound(pods, pools)
    priced = bool(pools) and all(p.hourly_cost is not None for p in pools)
    cost = packing_cost(packing, pools) if priced else None
    return {
        "new_nodes_hourly_cost": round(cost, 4) if priced else None,
        "lower_bound_hourly_cost": round(bound[0], 4) if bound else None,
        "binding_resource": bound[1] if bound else None,
        "ratio_to_lower_bound": round(cost / bound[0], 3) if bound and bound[0] > 0 else None,
        "strategy": packing.strategy,
    }


def _floors(groups):
    """``floors[i]``: the least cpu, memory, disk and GPUs any of ``groups[i:]`` requests (a node with less
    free than that of one resource can take none of them)."""
    floors = [Resources(math.inf, math.inf, math.inf, math.inf)]
    for group in reversed(groups):
        last, request = floors[-1], group.request
        floors.append(Resources(min(last.cpu, request.cpu), min(last.memory, request.memory), min(last.disk, request.disk), min(last.gpu, request.gpu)))
    return floors[::-1]


def _why_unplaceable(group, pools, largest):
    """Why no shape fits ``group``: for people, naming what none of the pools offers."""
    allowed = [p for p in pools if (group.may_use_spot or not p.preemptible) and arch_allows(group.arches, p.arch)]
    if group.arches is not None and not any(arch_allows(group.arches, p.arch) for p in pools):
        return f"it is pinned to {'/'.join(sorted(group.arches))} and no pool's nodes are"
    if not allowed:
        return "it must avoid spot and every pool it may use is spot"
    most_gpus = max(p.capacity.gpu for p in allowed)
    if group.request.gpu > most_gpus:
        return f"it needs {group.request.gpu} GPU(s) and the pools it may use offer at most {most_gpus} per node"
    return f"it is larger than any node of the pools it may use (the largest node offers {largest.as_dict()})"


def _pack(pods, pools, nodes, strategy):
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown packing strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    shapes = sorted(pools, key=PoolShape.order)
    spot_pools = {p.name for p in pools if p.preemptible}
    result = Packing(new_nodes={p.name: 0 for p in pools}, placed={p.name: 0 for p in pools}, strategy=strategy)
    # Existing nodes first, then nodes opened here, in first-fit order.
    pool_arch = {p.name: p.arch for p in pools}
    bins = [Bin(n.pool, n.pool in spot_pools, n.free, n.instance_id, existing=True, arch=n.arch or pool_arch[n.pool]) for n in nodes if n.pool in result.placed]
    result.bins = list(bins)
    largest = max((p.capacity for p in pools), key=lambda c: (c.memory, c.cpu, c.disk), default=None)
    priced = all(s.hourly_cost is not None for s in shapes)
    by_cost = strategy == "cheapest" and priced
    weights = {g.name: sum((_resource_costs(g, pools) or {}).values()) for g in pods} if by_cost else None
    groups = sorted(pods, key=_cost_order(weights) if by_cost else PodGroup.order)
    floors = _floors(groups)
    for index, group in enumerate(groups):
        fitting = _allowed_pools(group, shapes)
        shape = fitting[0] if fitting else None
        opened_pools = ((shape.name,) if shape else ()) if strategy == "toil" else None
        remaining = _fill(bins, group, group.count, result, opened_pools)
        if remaining == 0:
            continue
        if by_cost and len(fitting) > 1:  # max() keeps the first (Toil's order) on ties
            candidates = fitting if group.request.gpu else [s for s in fitting if not s.capacity.gpu] or fitting  # GPU nodes last, as in Toil's order
            later = groups[index + 1 :]
            shape = max(candidates, key=lambda s: round(_worth(s, group, remaining, later, weights) / s.hourly_cost, 9))
        if shape is None:
            result.unplaceable.append(
                {
                    "name": group.name,
                    "count": remaining,
                    "request": group.request.as_dict(),
                    "may_use_spot": group.may_use_spot,
                    "arch": "/".join(sorted(group.arches)) if group.arches is not None else None,
                    "largest_shape": largest.as_dict() if largest else None,
                    "reason": _why_unplaceable(group, pools, largest) if largest else "there is no pool",
                }
            )
            continue
        per_node = shape.capacity.how_many(group.request)
        needed = -(-remaining // per_node)
        result.new_nodes[shape.name] += needed
        result.placed[shape.name] += remaining
        full, rest = divmod(remaining, per_node)
        for count, take in ((full, per_node), (1 if rest else 0, rest)):
            if count:
                opened = Bin(shape.name, shape.preemptible, shape.capacity.minus(group.request, take), nodes=count, loads={group.name: take}, arch=shape.arch)
                bins.append(opened)
                result.bins.append(opened)
        floor = floors[index + 1]
        bins = [b for b in bins if b.free.cpu >= floor.cpu and b.free.memory >= floor.memory and b.free.disk >= floor.disk and b.free.gpu >= floor.gpu]
    if by_cost:
        _downsize(result, shapes, groups)
    return result


def _worth(shape, group, remaining, later, weights):
    """What a node of ``shape`` opened for the ``remaining`` pods of ``group`` would hold, in the pods' weights (their
    shares of the lower bound): its pods of the group, and those of the ``later`` groups that first fit would put in the
    room left (each group spread over the nodes opened). Over the shape's price, the share of the bound the node pays
    for: a shape is worth opening for what it holds in all, not for the one group."""
    per_node = shape.capacity.how_many(group.request)
    take = min(per_node, remaining)
    opened = -(-remaining // per_node)
    free = shape.capacity.minus(group.request, take)
    worth = take * weights[group.name]
    for other in later:
        if (other.may_use_spot or not shape.preemptible) and arch_allows(other.arches, shape.arch):
            fit = min(free.how_many(other.request), -(-other.count // opened))
            if fit:
                free = free.minus(other.request, fit)
                worth += fit * weights[other.name]
    return worth


def _downsize(result, shapes, groups):
    """Move the nodes opened in ``result`` to the cheapest shape that holds what was packed on them, when it costs less.

    First fit leaves the last node of a pod group partly empty, and the group's pods may run on a smaller shape. Spot
    only when every pod on it may use spot; its pods' architectures; a shape with GPUs only for pods that need them.
    As many nodes as before, so never more than Toil's.
    """
    by_name = {g.name: g for g in groups}
    by_pool = {s.name: s for s in shapes}
    for bin_ in result.bins:
        if bin_.existing:
            continue
        current = by_pool[bin_.pool]
        used = current.capacity.minus(bin_.free)
        pods = [by_name[name] for name, count in bin_.loads.items() if count]
        cheapest = min(
            (
                s
                for s in shapes
                if s.capacity.fits(used)
                and (s.capacity.gpu == 0 or used.gpu > 0)
                and all((g.may_use_spot or not s.preemptible) and arch_allows(g.arches, s.arch) for g in pods)
            ),
            key=lambda s: s.hourly_cost,  # the first in Toil's order on ties
            default=current,
        )
        if cheapest.hourly_cost >= current.hourly_cost - COST_TOLERANCE:
            continue
        placed = sum(bin_.loads.values()) * bin_.nodes
        result.new_nodes[current.name] -= bin_.nodes
        result.placed[current.name] -= placed
        result.new_nodes[cheapest.name] += bin_.nodes
        result.placed[cheapest.name] += placed
        bin_.pool, bin_.spot, bin_.free, bin_.arch = cheapest.name, cheapest.preemptible, cheapest.capacity.minus(used), cheapest.arch


def round_half_away(value):
    """Toil's rounding: half away from zero (Python's round() rounds half to even)."""
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


@dataclass
class PoolDecision:
    name: str
    current: int
    desired: int
    reason: str
    placed: int
    new_nodes: int
    estimate: float
    victims: list = field(default_factory=list)
    capped: bool = False  # its growth was cut by a budget
    warnings: list = field(default_factory=list)
    uncapped: tuple = None  # (desired, reason) before a budget was applied

    def as_dict(self):
        return {
            "name": self.name,
            "current": self.current,
            "desired": self.desired,
            "reason": self.reason,
            "placed": self.placed,
            "new_nodes": self.new_nodes,
            "victims": list(self.victims),
        }


def matching_spot_deficit(pool, pools, deficits):
    """The deficit of the spot pools with the same instance types as on-demand ``pool``."""
    return sum(deficits.get(p.name, 0) for p in pools if p.preemptible and set(p.instance_types) == set(pool.instance_types))


def decide(pools, nodes, packing, previous, beta, compensation, idle_threshold, deficits=None):
    """Each pool's size from the packing, with inertia, compensation, bounds and safe scale-down."""
    deficits = deficits or {}
    decisions = {}
    for pool in pools:
        members = [n for n in nodes if n.pool == pool.name]
        removable = sorted(
            (n for n in members if n.instance_id and n.idle_seconds >= idle_threshold and n.safe_to_evict and n.instance_id not in packing.used_nodes),
            key=lambda n: (-n.idle_seconds, n.instance_id),
        )
        busy = len(members) - len(removable)
        target = busy + packing.new_nodes.get(pool.name, 0)
        prev = previous.get(pool.name, float(len(members)))
        smoothed = round_half_away(beta * prev + (1 - beta) * target)
        estimate = smoothed  # kept for the next run, rounded, as Toil's smoothEstimate keeps it
        reasons = [f"{packing.placed.get(pool.name, 0)} pending pod(s) placed, {packing.new_nodes.get(pool.name, 0)} new node(s) needed"]
        if not pool.preemptible and compensation:
            extra = round_half_away(matching_spot_deficit(pool, pools, deficits) * compensation)
            if extra:
                smoothed += extra
                reasons.append(f"+{extra} for the spot deficit")
        desired = max(smoothed, busy)
        if desired > pool.max_size:
            reasons.append(f"capped at max_size {pool.max_size}")
        if desired < pool.min_size:
            reasons.append(f"raised to min_size {pool.min_size}")
        # Never above max_size: busy nodes beyond it are kept until idle (the victims are idle
        # ones only), never counted as room to grow.
        desired = max(pool.min_size, min(desired, pool.max_size))
        victims = [n.instance_id for n in removable[: max(0, len(members) - desired)]]
        if victims:
            reasons.append(f"{len(victims)} idle node(s) for {idle_threshold:g}s or more removed")
        kept = len(members) - len(victims) - desired
        if kept > 0:
            reasons.append(f"{kept} busy node(s) above the desired size kept until idle")
        decisions[pool.name] = PoolDecision(
            name=pool.name,
            current=len(members),
            desired=desired,
            reason="; ".join(reasons),
            placed=packing.placed.get(pool.name, 0),
            new_nodes=packing.new_nodes.get(pool.name, 0),
            estimate=estimate,
            victims=victims,
        )
    return decisions


@dataclass(frozen=True)
class Budget:
    """Cluster-wide bounds on the scaled pools' workers: vCPUs, memory (bytes) and hourly cost (USD); None: no bound.
    ``memory_text`` is ``max_memory`` as given, for messages."""

    max_vcpus: int = None
    max_memory: int = None
    memory_text: str = None
    max_hourly_cost: float = None

    @property
    def bounded(self):
        return self.max_vcpus is not None or self.max_memory is not None or self.max_hourly_cost is not None

    def totals(self, shapes, sizes):
        """vCPUs, memory (bytes) and hourly cost (USD; a pool without a price counts 0) of ``sizes`` (pool name ->
        nodes) of ``shapes``."""
        return (
            sum(s.vcpus * sizes.get(s.name, 0) for s in shapes),
            sum(s.memory_mib * MIB * sizes.get(s.name, 0) for s in shapes),
            sum((s.hourly_cost or 0.0) * sizes.get(s.name, 0) for s in shapes),
        )

    def passed(self, vcpus, memory, cost=0.0):
        """The budgets these totals pass, for people: ``max_vcpus 64 (would be 80)``."""
        texts = []
        if self.max_vcpus is not None and vcpus > self.max_vcpus:
            texts.append(f"max_vcpus {self.max_vcpus} (would be {vcpus})")
        if self.max_memory is not None and memory > self.max_memory:
            texts.append(f"max_memory {self.memory_text or format_memory(self.max_memory)} (would be {format_memory(memory)})")
        if self.max_hourly_cost is not None and cost > self.max_hourly_cost + COST_TOLERANCE:
            texts.append(f"max_hourly_cost {format_cost(self.max_hourly_cost)} (would be {format_cost(cost)})")
        return texts

    def room(self, shape, vcpus, memory, cost=0.0):
        """How many more nodes of ``shape`` fit beside ``vcpus``, ``memory`` and ``cost`` already counted."""
        counts = []
        if self.max_vcpus is not None and shape.vcpus:
            counts.append(max(0, (self.max_vcpus - vcpus) // shape.vcpus))
        if self.max_memory is not None and shape.memory_mib:
            counts.append(max(0, (self.max_memory - memory) // (shape.memory_mib * MIB)))
        if self.max_hourly_cost is not None and shape.hourly_cost:
            counts.append(max(0, math.floor((self.max_hourly_cost - cost + COST_TOLERANCE) / shape.hourly_cost)))
        return min(counts) if counts else math.inf

    def summary(self, shapes, decisions):
        """The result's ``budget``: the bounds, the workers' totals now and as planned, and whether growth was cut."""
        used = self.totals(shapes, {n: d.current for n, d in decisions.items()})
        planned = self.totals(shapes, {n: d.desired for n, d in decisions.items()})
        priced = all(s.hourly_cost is not None for s in shapes)
        return {
            "max_vcpus": self.max_vcpus,
            "max_memory": self.max_memory,
            "max_hourly_cost": self.max_hourly_cost,
            "used_vcpus": used[0],
            "used_memory": used[1],
            "used_hourly_cost": round(used[2], 4) if priced else None,
            "planned_vcpus": planned[0],
            "planned_memory": planned[1],
            "planned_hourly_cost": round(planned[2], 4) if priced else None,
            "capped": any(d.capped for d in decisions.values()),
        }


def format_cost(usd):
    """USD per hour, for people: ``5.00 USD/h``; four decimals under a dollar (spot nodes cost cents)."""
    return f"{usd:.2f} USD/h" if usd >= 1 else f"{usd:.4f} USD/h"


def format_memory(count):
    """Bytes as a Kubernetes quantity, in whole Gi when exact, else Mi (instance types' memory is whole MiB)."""
    if count % GIB == 0:
        return f"{count // GIB}Gi"
    if count % MIB == 0:
        return f"{count // MIB}Mi"
    return str(count)


def cap_to_budget(pools, decisions, budget, fixed=None):
    """Cut the pools' growth so that their nodes at the desired sizes fit ``budget`` (in place).

    Shrinking is never prevented: a pool whose desired size is at most its current one keeps it, and its nodes
    freed count as room. A growing pool keeps its current nodes and, past the budget if need be, its
    ``min_size`` (with a warning); the rest of its growth is granted in the order of ``pools`` (the order they were
    given), each pool as many nodes as fit, so a later pool of smaller nodes may still use room a larger one left.
    Pools in ``fixed`` (name -> nodes: those already resized in this run, with the nodes they have, a spot deficit
    left out) are counted at that size and not changed. A decision capped before is first restored, so the function
    can run again after a decision changed.
    """
    fixed = fixed or {}
    for pool in pools:
        decision = decisions[pool.name]
        if pool.name not in fixed and decision.uncapped is not None:
            decision.desired, decision.reason = decision.uncapped
            decision.capped, decision.warnings, decision.uncapped = False, [], None
    if budget is None or not budget.bounded:
        return
    wanted = {p.name: fixed.get(p.name, decisions[p.name].desired) for p in pools}
    passed = budget.passed(*budget.totals(pools, wanted))
    if not passed:
        return
    base = {}
    for pool in pools:
        decision = decisions[pool.name]
        grows = pool.name not in fixed and decision.desired > decision.current
        base[pool.name] = max(decision.current, pool.min_size) if grows else wanted[pool.name]
    vcpus, memory, cost = budget.totals(pools, base)
    over = budget.passed(vcpus, memory, cost)
    for pool in pools:
        decision = decisions[pool.name]
        if pool.name in fixed or wanted[pool.name] <= decision.current:
            continue
        granted = base[pool.name]
        if over and granted > decision.current:
            decision.warnings.append(
                f"Pool {pool.name} is kept at its min_size {pool.min_size} although the pools' workers then pass {' and '.join(over)}:"
                " a pool's min_size is honoured over the budget."
            )
        more = min(wanted[pool.name] - granted, budget.room(pool, vcpus, memory, cost))
        granted += more
        vcpus, memory, cost = vcpus + more * pool.vcpus, memory + more * pool.memory_mib * MIB, cost + more * (pool.hourly_cost or 0.0)
        if granted < wanted[pool.name] or decision.warnings:
            decision.uncapped = (decision.desired, decision.reason)
            decision.desired = granted
            decision.capped = granted < wanted[pool.name]
            if decision.capped:
                decision.reason += f"; capped by {' and '.join(passed)}: {granted} node(s) instead of {wanted[pool.name]}"
            if decision.warnings:
                decision.reason += f"; min_size {pool.min_size} kept past the budget"
