# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A cluster's nodes: finding them, which is the leader, which are preemptible, what every node is
launched with, what a user sees of one, and terminating or waiting for them.

Each rule lives here once; the modules, the inventory and the scaler call it.

Toil finds nodes with one *unpaginated* DescribeInstances filtered on
``instance.group-name=C`` (so it misses nodes past the first page), takes the oldest as
the leader and calls a node preemptible when it has a ``SpotInstanceRequestId``. Here:
every page is read; a node is a **member** of C only when it sits in the security group named
C *and* carries ``clusterName=C`` (Toil's nodes carry both): anything with one without the
other is a **stray**, reported and never configured, joined, counted or promoted, since any
instance launched into C's group, or tagged C, would otherwise be handed C's join token. The
leader is the member tagged ``ToilNodeType=leader`` and nothing else (Toil tags its leader in
the RunInstances request itself; a worker is never promoted). A node is preemptible when its
lifecycle is ``spot``, it has a spot request id, or its pool tagged it so.
"""

from __future__ import annotations

from ansible_collections.toil.cluster.plugins.module_utils.retries import AWS_RETRY
from ansible_collections.toil.cluster.plugins.module_utils.tags import (
    NODE_TYPE_LEADER,
    NODE_TYPE_WORKER,
    POOL_TAG,
    PREEMPTIBLE_TAG,
    TAG_CLUSTER_NAME,
    TAG_NAME,
    TAG_NODE_TYPE,
    TRUE_TAG_VALUE,
    boto3_tag_list,
    tag_dict,
)

LIVE_STATES = ("pending", "running")
STOPPED_STATES = ("stopping", "stopped")
GONE_STATES = ("shutting-down", "terminated")
PAGE_SIZE = 1000
# Every node: IMDSv2 only, with a hop limit of 2 so pods reach the metadata service (Toil sets 3 and
# leaves IMDSv1 on; the inventory tells the two apart by it).
IMDS_HOP_LIMIT = 2
METADATA_OPTIONS = {"HttpTokens": "required", "HttpPutResponseHopLimit": IMDS_HOP_LIMIT, "HttpEndpoint": "enabled"}
# What a node's tags go on at launch, so that its disk and interface are found and billed with it.
TAGGED_AT_LAUNCH = ("instance", "volume", "network-interface")
# How often EC2's waiters ask; the number of attempts follows from the caller's timeout.
WAITER_DELAY = 5


# ---------------------------------------------------------------------- finding nodes
def launch_order(instance):
    """Oldest first; the instance ID breaks ties (LaunchTime has one-second resolution)."""
    return (instance.get("LaunchTime") or "", instance["InstanceId"])


def states(include_stopped=False):
    """The instance states that count as a node: live ones, and stopped ones on request."""
    return list(LIVE_STATES + (STOPPED_STATES if include_stopped else ()))


@AWS_RETRY
def describe_instances(ec2, filters):
    paginator = ec2.get_paginator("describe_instances")
    instances = []
    for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}):
        for reservation in page["Reservations"]:
            instances.extend(reservation["Instances"])
    return instances


def in_cluster_group(instance, cluster_name):
    """In the security group named after the cluster (botocore's groups, or the inventory's group names)."""
    names = (group.get("GroupName") if isinstance(group, dict) else group for group in instance.get("SecurityGroups") or ())
    return cluster_name in names


def tagged_cluster(instance):
    """The instance's ``clusterName`` tag, or None (``Name`` does not count for membership)."""
    return tag_dict(instance.get("Tags")).get(TAG_CLUSTER_NAME)


def is_member(instance, cluster_name):
    """The one membership rule: in the cluster's security group *and* tagged ``clusterName=<cluster>``."""
    return in_cluster_group(instance, cluster_name) and tagged_cluster(instance) == cluster_name


def stray_reason(instance, cluster_name):
    """Why an instance that looks like cluster ``cluster_name``'s is not one of its nodes, or None for a member."""
    in_group, tagged = in_cluster_group(instance, cluster_name), tagged_cluster(instance)
    if in_group and tagged == cluster_name:
        return None
    if in_group and tagged:
        return f"is in {cluster_name}'s security group but tagged {TAG_CLUSTER_NAME}={tagged}"
    if in_group:
        return f"is in {cluster_name}'s security group without a {TAG_CLUSTER_NAME} tag (a Toil node still being tagged, or not {cluster_name}'s)"
    if tagged == cluster_name:
        return f"is tagged {TAG_CLUSTER_NAME}={cluster_name} outside {cluster_name}'s security group"
    return f"is neither in {cluster_name}'s security group nor tagged {TAG_CLUSTER_NAME}={cluster_name}"


def split_members(instances, cluster_name):
    """(members, strays) of the instances: the membership rule applied, order kept."""
    members, strays = [], []
    for instance in instances:
        (members if is_member(instance, cluster_name) else strays).append(instance)
    return members, strays


def stray_warnings(cluster_name, strays):
    """One line per stray, for warnings: which instance and why it was left out."""
    return [
        f"Instance {i.get('InstanceId')} was left out of cluster {cluster_name}: it {stray_reason(i, cluster_name)}. "
        "It is not configured, joined, counted or made leader."
        for i in strays
    ]


def cluster_listing(ec2, cluster_name, include_stopped=False):
    """(members, strays) of the cluster, each oldest first: every instance in its group or tagged with its name."""
    state_filter = {"Name": "instance-state-name", "Values": states(include_stopped)}
    found = {}
    for membership in (
        {"Name": "instance.group-name", "Values": [cluster_name]},
        {"Name": "tag:" + TAG_CLUSTER_NAME, "Values": [cluster_name]},
    ):
        for instance in describe_instances(ec2, [membership, state_filter]):
            found.setdefault(instance["InstanceId"], instance)
    return split_members(sorted(found.values(), key=launch_order), cluster_name)


def cluster_instances(ec2, cluster_name, include_stopped=False):
    """Every node of the cluster (members only: group and tag), each once, oldest first."""
    return cluster_listing(ec2, cluster_name, include_stopped)[0]


def toil_instances(ec2, include_stopped=False):
    """Every instance that carries Toil's node-type tag, in any cluster."""
    return describe_instances(ec2, [{"Name": "tag-key", "Values": [TAG_NODE_TYPE]}, {"Name": "instance-state-name", "Values": states(include_stopped)}])


def refresh(ec2, instance_ids):
    """The instances as EC2 sees them now, oldest first."""
    if not instance_ids:
        return []
    return sorted(describe_instances(ec2, [{"Name": "instance-id", "Values": list(instance_ids)}]), key=launch_order)


def cluster_name_of(instance):
    """The cluster an instance belongs to by its tags (clusterName, else Name), or None."""
    tags = tag_dict(instance.get("Tags"))
    return tags.get(TAG_CLUSTER_NAME) or tags.get(TAG_NAME)


# ---------------------------------------------------------------------- the leader, preemptible nodes
def node_type_of(instance):
    return tag_dict(instance.get("Tags")).get(TAG_NODE_TYPE)


def find_leader(instances):
    """The node tagged ``ToilNodeType=leader`` (the oldest if several), else None.

    Never the oldest node, never a worker: a leader is only ever made by launching one (Toil tags
    its leader in the RunInstances request, so it is never untagged). Callers pass members only.
    Works on botocore's instances and on the inventory's records alike.
    """
    tagged = [i for i in sorted(instances, key=launch_order) if node_type_of(i) == NODE_TYPE_LEADER]
    return tagged[0] if tagged else None


def cluster_leader(ec2, cluster_name):
    """The leader of a cluster, stopped or not, or None."""
    return find_leader(cluster_instances(ec2, cluster_name, include_stopped=True))


def is_preemptible(instance):
    """A spot node: EC2 says so (lifecycle or spot request), or its pool tagged it so at launch."""
    if instance.get("InstanceLifecycle") == "spot" or instance.get("SpotInstanceRequestId"):
        return True
    return tag_dict(instance.get("Tags")).get(PREEMPTIBLE_TAG) == TRUE_TAG_VALUE


# ---------------------------------------------------------------------- launching
def launch_settings(image, storage_gib, tags):
    """What every node (leader or worker) is launched with: IMDSv2, an encrypted gp3 root, tags everywhere."""
    tag_list = boto3_tag_list(tags)
    return {
        "ImageId": image["ImageId"],
        "MetadataOptions": dict(METADATA_OPTIONS),
        "BlockDeviceMappings": [
            {
                "DeviceName": image.get("RootDeviceName", "/dev/xvda"),
                "Ebs": {"VolumeSize": storage_gib, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
            }
        ],
        "TagSpecifications": [{"ResourceType": kind, "Tags": tag_list} for kind in TAGGED_AT_LAUNCH],
    }


# ---------------------------------------------------------------------- what users see
def instance_summary(instance):
    """What a user wants to see of one instance, with snake_case keys."""
    return {
        "instance_id": instance["InstanceId"],
        "state": instance["State"]["Name"],
        "instance_type": instance["InstanceType"],
        "image_id": instance.get("ImageId"),
        "zone": instance.get("Placement", {}).get("AvailabilityZone"),
        "private_ip": instance.get("PrivateIpAddress"),
        "public_ip": instance.get("PublicIpAddress"),
        "launch_time": instance["LaunchTime"].isoformat(),
        "preemptible": is_preemptible(instance),
    }


def node_summary(instance, leader_id=None):
    """An instance's summary with its place in the cluster: role, pool, groups and tags."""
    tags = tag_dict(instance.get("Tags"))
    return dict(
        instance_summary(instance),
        role=NODE_TYPE_LEADER if instance["InstanceId"] == leader_id else NODE_TYPE_WORKER,
        pool=tags.get(POOL_TAG),
        security_groups=[g["GroupName"] for g in instance.get("SecurityGroups", [])],
        tags=tags,
    )


def describe_nodes(instances):
    """Split a cluster's instances into (leader summary or None, worker summaries)."""
    leader = find_leader(instances)
    leader_id = leader["InstanceId"] if leader else None
    summaries = [node_summary(i, leader_id) for i in instances]
    workers = [s for s in summaries if s["role"] == NODE_TYPE_WORKER]
    return (node_summary(leader, leader_id) if leader else None), workers


# ---------------------------------------------------------------------- waiting and terminating
def waiter_config(timeout, delay=WAITER_DELAY):
    """A waiter that gives up after about ``timeout`` seconds (at least one attempt)."""
    return {"Delay": delay, "MaxAttempts": max(1, int(timeout) // delay)}


def wait_for(ec2, waiter_name, instance_ids, timeout):
    """Wait until every instance reaches the waiter's state; botocore's WaiterError otherwise."""
    ec2.get_waiter(waiter_name).wait(InstanceIds=list(instance_ids), WaiterConfig=waiter_config(timeout))


def terminate(ec2, instance_ids, wait=True, timeout=600):
    """Terminate the instances and, with ``wait``, wait until they are gone."""
    if not instance_ids:
        return
    ec2.terminate_instances(InstanceIds=list(instance_ids), aws_retry=True)
    if wait:
        wait_for(ec2, "instance_terminated", instance_ids, timeout)
