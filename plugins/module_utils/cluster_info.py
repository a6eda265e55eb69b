# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""What exists of a Toil cluster on AWS: security groups, IAM, leader and workers."""

from __future__ import annotations

from ansible_collections.toil.cluster.plugins.module_utils.iam import get_instance_profile, get_role, iam_summary
from ansible_collections.toil.cluster.plugins.module_utils.inventory import cluster_hosts
from ansible_collections.toil.cluster.plugins.module_utils.names import derived_names
from ansible_collections.toil.cluster.plugins.module_utils.nodes import cluster_listing, cluster_name_of, describe_nodes, stray_warnings, toil_instances
from ansible_collections.toil.cluster.plugins.module_utils.security_group import (
    find_cluster_security_groups,
    security_group_summary,
    toil_security_groups,
)


def _ignore(_message):
    pass


def describe_cluster(ec2, iam, cluster_name, include_stopped=False, region=None, ssh_user=None, warn=_ignore, use_private_ip=False):
    """The cluster's parts; its nodes are members only (nodes.is_member), each stray is one ``warn``."""
    groups = find_cluster_security_groups(ec2, cluster_name)
    instances, strays = cluster_listing(ec2, cluster_name, include_stopped)
    for message in stray_warnings(cluster_name, strays):
        warn(message)
    role = iam_summary(get_role(iam, cluster_name), "RoleName")
    profile = iam_summary(get_instance_profile(iam, cluster_name), "InstanceProfileName")
    leader, workers = describe_nodes(instances)
    return {
        "name": cluster_name,
        "exists": bool(groups or instances or role or profile),
        "derived_names": derived_names(cluster_name),
        "security_groups": [security_group_summary(g) for g in groups],
        "iam_role": role,
        "instance_profile": profile,
        "leader": leader,
        "workers": workers,
        "node_count": len(instances),
        "hosts": cluster_hosts(region, cluster_name, instances, ssh_user, use_private_ip),
    }


def cluster_names_in_region(ec2, include_stopped=False):
    """Names of every cluster with a Toil-tagged node or a Toil security group."""
    names = {cluster_name_of(i) for i in toil_instances(ec2, include_stopped)}
    names.update(g["GroupName"] for g in toil_security_groups(ec2))
    return sorted(n for n in names if n)


def describe_clusters(ec2, iam, cluster_name=None, include_stopped=False, region=None, ssh_user=None, warn=_ignore, use_private_ip=False):
    names = [cluster_name] if cluster_name else cluster_names_in_region(ec2, include_stopped)
    return [describe_cluster(ec2, iam, name, include_stopped, region, ssh_user, warn, use_private_ip) for name in names]
