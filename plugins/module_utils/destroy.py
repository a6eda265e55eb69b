# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Removing a cluster, in Toil's order (destroyCluster in awsProvisioner.py), without its leaks.

Toil terminates the leader, deletes auto scaling groups, cancels spot requests, terminates
the rest, deletes launch templates, then, only if every instance is gone, the IAM role and
profile (by prefix!) and the security groups of the leader's VPC, then the internal bucket.
Here: the same order; stopped nodes included (Toil issue 4140); IAM by exact name; the
security groups named after the cluster are deleted even when no instance is left (Toil
leaks them then); the extra security groups are never touched.

Which instances go: the cluster's members (its group *and* its ``clusterName`` tag), and the
instances in its group with no ``clusterName`` tag at all (Toil's workers between RunInstances and
their tags; Toil's destroy takes everything in the group, and the group cannot be deleted while
they are in it). Never an instance of the group tagged for *another* cluster: destroy refuses
before any change, naming it, since terminating it would let one cluster's nodes take another
cluster's down. An instance tagged ``clusterName=C`` outside C's group is left alone too: it is
not one of C's nodes (nothing here launches one), and terminating it would make the tag alone a
licence to terminate.
"""

from __future__ import annotations

import time

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilOperationError
from ansible_collections.toil.cluster.plugins.module_utils.iam import delete_role_and_profile
from ansible_collections.toil.cluster.plugins.module_utils.names import internal_bucket_name
from ansible_collections.toil.cluster.plugins.module_utils.nodes import cluster_listing, find_leader, in_cluster_group, launch_order, tagged_cluster, terminate
from ansible_collections.toil.cluster.plugins.module_utils.pool_template import delete_launch_template
from ansible_collections.toil.cluster.plugins.module_utils.s3_buckets import bucket_state, empty_and_delete_bucket  # toil clean's way, shared with job stores
from ansible_collections.toil.cluster.plugins.module_utils.security_group import find_cluster_security_groups
from ansible_collections.toil.cluster.plugins.module_utils.tags import TAG_CLUSTER_NAME

_TAG_FILTER = "tag:" + TAG_CLUSTER_NAME
# A group's network interfaces take a while to go after their instance terminates.
GROUP_DELETE_ATTEMPTS = 30
GROUP_DELETE_DELAY = 5


def _spot_requests(ec2, cluster_name):
    filters = [{"Name": _TAG_FILTER, "Values": [cluster_name]}, {"Name": "state", "Values": ["open", "active"]}]
    return ec2.describe_spot_instance_requests(Filters=filters, aws_retry=True)["SpotInstanceRequests"]


def _launch_templates(ec2, cluster_name):
    templates = []
    for page in ec2.get_paginator("describe_launch_templates").paginate(Filters=[{"Name": _TAG_FILTER, "Values": [cluster_name]}]):
        templates.extend(page["LaunchTemplates"])
    return templates


def _auto_scaling_groups(autoscaling, cluster_name):
    groups = []
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
        groups.extend(g for g in page["AutoScalingGroups"] if any(t["Key"] == TAG_CLUSTER_NAME and t["Value"] == cluster_name for t in g.get("Tags", [])))
    return groups


def _internal_buckets(s3, bucket):
    """The cluster's internal bucket, when it exists (GetBucketLocation: an IAM action of the same name)."""
    state, _region = bucket_state(s3, bucket)
    if state == "forbidden":
        raise ToilOperationError(f"S3 refused to tell whether the internal bucket {bucket} exists (403): nothing was removed.")
    return [bucket] if state == "owned" else []


def doomed_instances(ec2, cluster_name):
    """The instances destroy terminates (members and untagged ones in the group), oldest first.

    Raises ToilOperationError, before any change, when the group holds another cluster's instance.
    """
    members, strays = cluster_listing(ec2, cluster_name, include_stopped=True)
    foreign = [i for i in strays if in_cluster_group(i, cluster_name) and tagged_cluster(i)]
    if foreign:
        named = ", ".join(f"{i['InstanceId']} (clusterName={tagged_cluster(i)})" for i in foreign)
        raise ToilOperationError(
            f"Security group {cluster_name} holds instances of other clusters: {named}. Nothing was removed: they are not "
            f"{cluster_name}'s to terminate; move them out of the group or terminate them yourself, then destroy again."
        )
    untagged = [i for i in strays if in_cluster_group(i, cluster_name)]
    return members, untagged


def plan_destroy(ec2, iam, s3, autoscaling, cluster_name, keep_group_ids=()):
    """What removing the cluster would delete, read-only."""
    members, untagged = doomed_instances(ec2, cluster_name)
    instances = sorted(members + untagged, key=launch_order)
    leader = find_leader(members)
    groups = [g for g in find_cluster_security_groups(ec2, cluster_name) if g["GroupId"] not in keep_group_ids]
    bucket = internal_bucket_name(cluster_name)
    return {
        "leader": leader["InstanceId"] if leader else None,
        "instances": [i["InstanceId"] for i in instances],
        "spot_requests": [r["SpotInstanceRequestId"] for r in _spot_requests(ec2, cluster_name)],
        "launch_templates": [t["LaunchTemplateName"] for t in _launch_templates(ec2, cluster_name)],
        "auto_scaling_groups": [g["AutoScalingGroupName"] for g in _auto_scaling_groups(autoscaling, cluster_name)],
        "security_groups": [g["GroupId"] for g in groups],
        "buckets": _internal_buckets(s3, bucket),
        **delete_role_and_profile(iam, cluster_name, check_mode=True),
    }


def _delete_group(ec2, group_id, sleep):
    for attempt in range(GROUP_DELETE_ATTEMPTS):
        try:
            ec2.delete_security_group(GroupId=group_id, aws_retry=True)
            return
        except is_boto3_error_code("InvalidGroup.NotFound"):
            return
        except is_boto3_error_code("DependencyViolation"):
            if attempt == GROUP_DELETE_ATTEMPTS - 1:
                raise
            sleep(GROUP_DELETE_DELAY)


def destroy(ec2, iam, s3, autoscaling, plan, cluster_name, timeout, sleep=time.sleep):
    """Carry out ``plan`` (from :func:`plan_destroy`) in Toil's order."""
    if plan["leader"]:
        terminate(ec2, [plan["leader"]], timeout=timeout)
    for name in plan["auto_scaling_groups"]:
        autoscaling.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True, aws_retry=True)
    if plan["spot_requests"]:
        ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=plan["spot_requests"], aws_retry=True)
    # Nodes started meanwhile (by a scaler, or an auto scaling group winding down) go too.
    members, untagged = doomed_instances(ec2, cluster_name)
    rest = [i["InstanceId"] for i in members + untagged if i["InstanceId"] != plan["leader"]]
    terminate(ec2, rest, timeout=timeout)
    for name in plan["launch_templates"]:
        delete_launch_template(ec2, LaunchTemplateName=name)
    delete_role_and_profile(iam, cluster_name, check_mode=False)
    for group_id in plan["security_groups"]:
        _delete_group(ec2, group_id, sleep)
    for bucket in plan["buckets"]:
        empty_and_delete_bucket(s3, bucket)
