# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""toil_nodepool's cluster-wide budgets: ``max_vcpus``, ``max_memory`` and ``max_hourly_cost`` over all the cluster's
workers (every pool's, the leader not counted), as toil_scaler's (binpacking.Budget), for a pool sized by hand.

Each running worker counts its own instance type's vCPUs, memory and price (spot ones at their spot price now); each
new node of the pool its dearest type's (scaler.pool_shapes). Growth past a budget is refused, down to what fits,
never below the pool's current size nor its ``min_size``; the result says so. A ``max_hourly_cost`` where a worker's or
the pool's type has no price (prices.py) is refused before any change, never kept by counting them free.
"""

from __future__ import annotations

from dataclasses import replace

from ansible_collections.toil.cluster.plugins.module_utils.binpacking import MIB
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import desired_size, with_instance_types
from ansible_collections.toil.cluster.plugins.module_utils.nodes import cluster_instances, is_preemptible, node_type_of
from ansible_collections.toil.cluster.plugins.module_utils.prices import read_prices, refuse_unpriced_budget
from ansible_collections.toil.cluster.plugins.module_utils.scaler import instance_type_shapes, pool_shapes
from ansible_collections.toil.cluster.plugins.module_utils.tags import NODE_TYPE_WORKER, POOL_TAG, tag_dict


def workers_totals(workers, type_cache, book):
    """vCPUs, memory (bytes) and hourly cost (USD) of running ``workers``; a worker without a price counts 0."""
    vcpus = memory = cost = 0
    for worker in workers:
        shape = type_cache.get(worker["InstanceType"], {})
        vcpus += shape.get("vcpus", 0)
        memory += shape.get("memory_mib", 0) * MIB
        cost += book.node_price([worker["InstanceType"]], is_preemptible(worker)) or 0.0
    return vcpus, memory, cost


def within_budget(ec2, pricing, spec, state, budget, warn):
    """``spec`` with its growth cut to what ``budget`` leaves beside the cluster's other workers, and the result's
    ``budget`` (None without one). Only growth is ever cut; the pool's own nodes count as they are."""
    if budget is None or not budget.bounded or state != "present":
        return spec, None
    spec = with_instance_types(ec2, spec)
    workers = [i for i in cluster_instances(ec2, spec.cluster) if node_type_of(i) == NODE_TYPE_WORKER]
    members = [w for w in workers if tag_dict(w.get("Tags")).get(POOL_TAG) == spec.name]
    types = {w["InstanceType"] for w in workers} | set(spec.node_type.instance_types)
    spot_types = {w["InstanceType"] for w in workers if is_preemptible(w)} | (set(spec.node_type.instance_types) if spec.node_type.preemptible else set())
    book = read_prices(pricing, ec2, ec2.meta.region_name, types, spot_types, warn)
    unpriced = book.missing(types) if budget.max_hourly_cost is not None else []
    if unpriced:
        refuse_unpriced_budget(ec2.meta.region_name, [f"{', '.join(unpriced)} (pool {spec.name} and the cluster's workers)"])
    type_cache = instance_type_shapes(ec2, types, {})
    (shape,) = pool_shapes([spec], type_cache, book)
    used = workers_totals(workers, type_cache, book)
    wanted = desired_size(spec, state, len(members))
    granted, growth = wanted, wanted - len(members)
    if growth > 0:
        floor = max(len(members), min(spec.pool.min_size, wanted))
        granted = max(floor, len(members) + min(growth, budget.room(shape, *used)))
    per_node = (shape.vcpus, shape.memory_mib * MIB, shape.hourly_cost or 0.0)

    def with_new(count):
        return tuple(total + count * each for total, each in zip(used, per_node, strict=True))

    planned, passed = with_new(granted - len(members)), budget.passed(*with_new(max(growth, 0)))
    report = {
        "max_vcpus": budget.max_vcpus,
        "max_memory": budget.max_memory,
        "max_hourly_cost": budget.max_hourly_cost,
        "used_vcpus": used[0],
        "used_memory": used[1],
        "used_hourly_cost": round(used[2], 4),
        "planned_vcpus": planned[0],
        "planned_memory": planned[1],
        "planned_hourly_cost": round(planned[2], 4),
        "capped": granted < wanted,
        "node_hourly_cost": shape.hourly_cost,
        "prices_from": book.source,
        "message": None,
    }
    if growth > 0 and passed:
        over = budget.passed(*planned)
        report["message"] = f"Pool {spec.name} grows to {granted} node(s), not {wanted}: the cluster's workers would pass {' and '.join(passed)}." + (
            f" Its min_size {spec.pool.min_size} is kept although they then pass {' and '.join(over)}." if over else ""
        )
        warn(report["message"])
    if granted == wanted:
        return spec, report
    return replace(spec, desired=granted), report
