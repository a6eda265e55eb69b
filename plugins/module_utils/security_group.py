# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The cluster's security group: named exactly the cluster name, as Toil names it.

Toil identifies a cluster by this group (nodes are found with ``instance.group-name=C``)
and destroy-cluster deletes every group named C in the leader's VPC.
"""

from __future__ import annotations

from ansible_collections.toil.cluster.plugins.module_utils.retries import AWS_RETRY

# Toil's description, kept so either tool recognises the other's groups.
TOIL_SECURITY_GROUP_DESCRIPTION = "Toil appliance security group"


@AWS_RETRY
def _security_groups(ec2, filters):
    paginator = ec2.get_paginator("describe_security_groups")
    groups = []
    for page in paginator.paginate(Filters=filters):
        groups.extend(page["SecurityGroups"])
    return groups


def find_cluster_security_groups(ec2, cluster_name, vpc_id=None):
    """Every security group named exactly ``cluster_name`` (in ``vpc_id`` if given)."""
    filters = [{"Name": "group-name", "Values": [cluster_name]}]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    return [g for g in _security_groups(ec2, filters) if g["GroupName"] == cluster_name]


def toil_security_groups(ec2):
    """Every security group that Toil or this collection made for a cluster."""
    return _security_groups(ec2, [{"Name": "description", "Values": [TOIL_SECURITY_GROUP_DESCRIPTION]}])


def security_group_summary(group):
    return {"group_id": group["GroupId"], "group_name": group["GroupName"], "vpc_id": group.get("VpcId")}
