# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Repair of broken worker nodes (issue 18): which are unhealthy, which are repaired this run, and the repair.

A node is unhealthy when its Ready condition has been False or Unknown for ``repair_after_seconds`` or more (by
the condition's ``lastTransitionTime``), or when EC2's status checks of its instance say ``impaired``
(DescribeInstanceStatus: ``InstanceStatus.Status`` or ``SystemStatus.Status``). At most ``max_repairs`` of them
are repaired per run, the longest NotReady first; the others wait for a later run. Neither is supply: the packer
places no pod on them. A repair cordons the node, drains what can be drained (kube_drain.drain_for_repair),
terminates its instance (nodes.terminate, as the pools' scale-down does) and deletes its Node.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.kube_demand import rfc3339
from ansible_collections.toil.cluster.plugins.module_utils.kube_drain import DrainError, delete_node, drain_for_repair
from ansible_collections.toil.cluster.plugins.module_utils.nodes import terminate
from ansible_collections.toil.cluster.plugins.module_utils.retries import AWS_RETRY
from ansible_collections.toil.cluster.plugins.module_utils.tags import POOL_TAG, tag_dict

IMPAIRED = "impaired"
MAX_REPAIR_AFTER_SECONDS = 86400
MIN_REPAIR_AFTER_SECONDS = 60  # the node lifecycle controller marks a silent kubelet Unknown after 40 s
MAX_REPAIRS = 1000


def validate_repair(repair_after_seconds, max_repairs):
    """``repair_after_seconds``: 0 (never repair) or 60 to 86400; ``max_repairs``: 0 to 1000."""
    if repair_after_seconds != 0 and not MIN_REPAIR_AFTER_SECONDS <= repair_after_seconds <= MAX_REPAIR_AFTER_SECONDS:
        raise ToilInputError(
            f"repair_after_seconds must be 0 (never repair) or between {MIN_REPAIR_AFTER_SECONDS} and {MAX_REPAIR_AFTER_SECONDS} seconds,"
            f" got {repair_after_seconds}."
        )
    if not 0 <= max_repairs <= MAX_REPAIRS:
        raise ToilInputError(f"max_repairs must be between 0 and {MAX_REPAIRS}, got {max_repairs}.")


@dataclass(frozen=True)
class Unhealthy:
    """A worker node to repair: the WorkerNode, its pool (its instance's pool tag) and why."""

    worker: object  # kube_demand.WorkerNode, with instance_id set
    pool: str
    reason: str
    since: object = None  # the Ready condition's lastTransitionTime (None: only its instance is impaired)

    def report(self, repaired=False, **extra):
        return {
            "name": self.worker.name,
            "instance_id": self.worker.instance_id,
            "pool": self.pool,
            "reason": self.reason,
            "since": rfc3339(self.since) if self.since else None,
            "repaired": repaired,
            **extra,
        }


@AWS_RETRY
def impaired_instances(ec2, instance_ids):
    """The instances among ``instance_ids`` whose instance or system status check is ``impaired``: one paginated
    DescribeInstanceStatus of the region's running instances, read for those only."""
    wanted = set(instance_ids)
    if not wanted:
        return set()
    impaired = set()
    paginator = ec2.get_paginator("describe_instance_status")
    for page in paginator.paginate(Filters=[{"Name": "instance-state-name", "Values": ["running"]}], PaginationConfig={"PageSize": 1000}):
        for status in page.get("InstanceStatuses", ()):
            if status.get("InstanceId") not in wanted:
                continue
            checks = ((status.get("InstanceStatus") or {}).get("Status"), (status.get("SystemStatus") or {}).get("Status"))
            if IMPAIRED in checks:
                impaired.add(status["InstanceId"])
    return impaired


def unhealthy_nodes(workers, instances, pools, now, repair_after_seconds, impaired=()):
    """The unhealthy worker nodes of the scaled ``pools`` (names), longest NotReady first (then those only impaired,
    by name). ``workers``: kube_demand.WorkerNodes matched to their instances; ``instances``: the cluster's live ones
    (a node's pool is its instance's tag: the pool whose code terminates it). Repair off (0): none."""
    if not repair_after_seconds:
        return []
    pool_of = {i["InstanceId"]: tag_dict(i.get("Tags")).get(POOL_TAG) for i in instances}
    found = []
    for worker in workers:
        pool = pool_of.get(worker.instance_id)
        if worker.instance_id is None or pool not in pools:
            continue
        reasons, since = [], None
        if worker.not_ready and worker.not_ready_since is not None and (now - worker.not_ready_since).total_seconds() >= repair_after_seconds:
            since = worker.not_ready_since
            reasons.append(f"NotReady since {rfc3339(since)}" + (" (Ready Unknown)" if worker.not_ready == "Unknown" else ""))
        if worker.instance_id in impaired:
            reasons.append("instance status impaired")
        if reasons:
            found.append(Unhealthy(worker, pool, "; ".join(reasons), since))
    return sorted(found, key=lambda u: (u.since is None, u.since or now, u.worker.name))


def split_repairs(unhealthy, max_repairs):
    """``(repaired now, waiting)``: the first ``max_repairs`` of the unhealthy nodes (already ordered), and the rest."""
    return list(unhealthy[:max_repairs]), list(unhealthy[max_repairs:])


def repair_nodes(ec2, core_v1, repairs, settings, warn, policy_v1=None, still_leading=None):
    """Repair each node: cordon, drain what can be, terminate its instance, delete its Node. Returns their reports.

    An API error while draining is warned about and the instance is terminated anyway (the node is broken); an
    AWS error stops the run (raised). A Node already gone is fine."""
    reports = []
    for entry in repairs:
        if still_leading:
            still_leading()
        worker = entry.worker
        try:
            drained = drain_for_repair(core_v1, worker.name, settings.drain_timeout, ready=worker.ready, policy_v1=policy_v1)
            evicted, left = drained["evicted"], drained["left"]
        except DrainError as error:
            warn(f"Node {worker.name} ({worker.instance_id}) is repaired without a drain: {error}")
            evicted, left = [], []
        terminate(ec2, [worker.instance_id], settings.wait, settings.wait_timeout)
        deleted = delete_node(core_v1, worker.name, f"whose instance {worker.instance_id} was terminated", warn)
        reports.append(entry.report(repaired=True, evicted=evicted, left=left, node_deleted=deleted))
    return reports
