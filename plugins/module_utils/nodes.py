# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Finding a cluster's nodes, its leader and its preemptible workers.

Toil finds nodes with one *unpaginated* DescribeInstances filtered on
``instance.group-name=C`` (so it misses nodes past the first page), takes the oldest as
the leader and calls a node preemptible when it has a ``SpotInstanceRequestId``. Here:
every page is read; a node belongs to C when it sits in the security group named C (Toil's
rule) *or* carries ``clusterName=C``; the leader is the node tagged ``ToilNodeType=leader``,
else the oldest; a node is preemptible when its lifecycle is ``spot`` or it has a spot
request id.
"""

from __future__ import annotations

from ansible_collections.toil.cluster.plugins.module_utils.retries import AWS_RETRY
from ansible_collections.toil.cluster.plugins.module_utils.tags import (
    NODE_TYPE_LEADER,
    NODE_TYPE_WORKER,
    TAG_CLUSTER_NAME,
    TAG_NAME,
    TAG_NODE_TYPE,
    tag_dict,
)

LIVE_STATES = ("pending", "running")
STOPPED_STATES = ("stopping", "stopped")
POOL_TAG = "toil.cluster/pool"
PAGE_SIZE = 1000


@AWS_RETRY
def describe_instances(ec2, filters):
    paginator = ec2.get_paginator("describe_instances")
    instances = []
    for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}):
        for reservation in page["Reservations"]:
            instances.extend(reservation["Instances"])
    return instances


def cluster_instances(ec2, cluster_name, include_stopped=False):
    """Every node of the cluster, by security group name or by tag, each once."""
    states = list(LIVE_STATES + (STOPPED_STATES if include_stopped else ()))
    state_filter = {"Name": "instance-state-name", "Values": states}
    found = {}
    for membership in (
        {"Name": "instance.group-name", "Values": [cluster_name]},
        {"Name": "tag:" + TAG_CLUSTER_NAME, "Values": [cluster_name]},
    ):
        for instance in describe_instances(ec2, [membership, state_filter]):
            found.setdefault(instance["InstanceId"], instance)
    return sorted(found.values(), key=lambda i: (i["LaunchTime"], i["InstanceId"]))


def toil_instances(ec2, include_stopped=False):
    """Every instance that carries Toil's node-type tag, in any cluster."""
    states = list(LIVE_STATES + (STOPPED_STATES if include_stopped else ()))
    return describe_instances(ec2, [{"Name": "tag-key", "Values": [TAG_NODE_TYPE]}, {"Name": "instance-state-name", "Values": states}])


def cluster_name_of(instance):
    """The cluster an instance belongs to by its tags (clusterName, else Name), or None."""
    tags = tag_dict(instance.get("Tags"))
    return tags.get(TAG_CLUSTER_NAME) or tags.get(TAG_NAME)


def is_preemptible(instance):
    return instance.get("InstanceLifecycle") == "spot" or bool(instance.get("SpotInstanceRequestId"))


def find_leader(instances):
    """The node tagged as leader (the oldest if several), else the oldest node, else None."""
    ordered = sorted(instances, key=lambda i: (i["LaunchTime"], i["InstanceId"]))
    tagged = [i for i in ordered if tag_dict(i.get("Tags")).get(TAG_NODE_TYPE) == NODE_TYPE_LEADER]
    if tagged:
        return tagged[0]
    return ordered[0] if ordered else None


def node_summary(instance, leader_id=None):
    """What a user wants to see of one node, with snake_case keys."""
    tags = tag_dict(instance.get("Tags"))
    role = NODE_TYPE_LEADER if instance["InstanceId"] == leader_id else NODE_TYPE_WORKER
    return {
        "instance_id": instance["InstanceId"],
        "role": role,
        "state": instance["State"]["Name"],
        "instance_type": instance["InstanceType"],
        "zone": instance.get("Placement", {}).get("AvailabilityZone"),
        "private_ip": instance.get("PrivateIpAddress"),
        "public_ip": instance.get("PublicIpAddress"),
        "launch_time": instance["LaunchTime"].isoformat(),
        "preemptible": is_preemptible(instance),
        "pool": tags.get(POOL_TAG),
        "security_groups": [g["GroupName"] for g in instance.get("SecurityGroups", [])],
        "tags": tags,
    }


def describe_nodes(instances):
    """Split a cluster's instances into (leader summary or None, worker summaries)."""
    leader = find_leader(instances)
    leader_id = leader["InstanceId"] if leader else None
    summaries = [node_summary(i, leader_id) for i in instances]
    workers = [s for s in summaries if s["role"] == NODE_TYPE_WORKER]
    return (node_summary(leader, leader_id) if leader else None), workers
