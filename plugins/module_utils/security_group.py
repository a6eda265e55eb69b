# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The cluster's security group: named exactly the cluster name, as Toil names it.

Toil identifies a cluster by this group (nodes are found with ``instance.group-name=C``)
and destroy-cluster deletes every group named C in the leader's VPC.
"""

from __future__ import annotations

from contextlib import contextmanager

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

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


# A rule is (protocol, from_port, to_port, kind, source) with kind "cidr", "cidr6" or "group".
def desired_rules(group_id, ssh_cidrs):
    """Toil's rules: tcp/22 from ``ssh_cidrs``; all tcp and udp from the group itself."""
    rules = {("tcp", 0, 65535, "group", group_id), ("udp", 0, 65535, "group", group_id)}
    for cidr in ssh_cidrs:
        rules.add(("tcp", 22, 22, "cidr6" if ":" in cidr else "cidr", cidr))
    return rules


def current_rules(group):
    rules = set()
    for permission in group.get("IpPermissions", []):
        protocol = permission.get("IpProtocol")
        ports = (protocol, permission.get("FromPort", -1), permission.get("ToPort", -1))
        rules.update((*ports, "cidr", r["CidrIp"]) for r in permission.get("IpRanges", []))
        rules.update((*ports, "cidr6", r["CidrIpv6"]) for r in permission.get("Ipv6Ranges", []))
        rules.update((*ports, "group", p["GroupId"]) for p in permission.get("UserIdGroupPairs", []))
    return rules


def _permissions(rules):
    permissions = []
    for protocol, from_port, to_port, kind, source in sorted(rules):
        permission = {"IpProtocol": protocol, "FromPort": from_port, "ToPort": to_port}
        if kind == "cidr":
            permission["IpRanges"] = [{"CidrIp": source}]
        elif kind == "cidr6":
            permission["Ipv6Ranges"] = [{"CidrIpv6": source}]
        else:
            permission["UserIdGroupPairs"] = [{"GroupId": source}]
        permissions.append(permission)
    return permissions


def describe_rules(rules, group_id=None):
    """Rules as readable strings for diffs: ``tcp 22 from 0.0.0.0/0``, ``udp 0-65535 from self``."""
    lines = []
    for protocol, from_port, to_port, _kind, source in sorted(rules):
        ports = str(from_port) if from_port == to_port else f"{from_port}-{to_port}"
        lines.append(f"{protocol} {ports} from {'self' if source == group_id else source}")
    return lines


@contextmanager
def _done_if(code):
    try:
        yield
    except is_boto3_error_code(code):
        pass


def ensure_security_group(ec2, cluster_name, vpc_id, ssh_cidrs, tags, check_mode):
    """Create the cluster's group in ``vpc_id`` if missing and converge its ingress rules.

    Returns ``(changed, group_id, before, after)``; ``before``/``after`` are for diff mode
    (``None`` when absent). In check mode nothing is called that changes AWS and a group
    that would be created has the id ``None``.
    """
    groups = find_cluster_security_groups(ec2, cluster_name, vpc_id)
    if len(groups) > 1:  # impossible within one VPC: AWS names are unique there
        raise RuntimeError(f"Several security groups named {cluster_name} in {vpc_id}")
    group = groups[0] if groups else None
    before = None
    changed = False
    if group is None:
        changed = True
        if check_mode:
            return True, None, None, {"name": cluster_name, "vpc_id": vpc_id, "ingress": describe_rules(desired_rules("self", ssh_cidrs), "self")}
        try:
            group_id = ec2.create_security_group(
                GroupName=cluster_name,
                Description=TOIL_SECURITY_GROUP_DESCRIPTION,
                VpcId=vpc_id,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}],
                aws_retry=True,
            )["GroupId"]
            existing = set()
        except is_boto3_error_code("InvalidGroup.Duplicate"):
            # A retry whose first attempt AWS carried out (the answer was lost), or a run at the same time.
            group = find_cluster_security_groups(ec2, cluster_name, vpc_id)[0]
    if group is not None:
        group_id = group["GroupId"]
        existing = current_rules(group)
        before = {"name": cluster_name, "vpc_id": vpc_id, "ingress": describe_rules(existing, group_id)}
    wanted = desired_rules(group_id, ssh_cidrs)
    missing, extra = wanted - existing, existing - wanted
    if missing or extra:
        changed = True
        if not check_mode:
            # A retry after a lost answer finds its own first attempt done: Duplicate / NotFound mean done.
            if missing:
                with _done_if("InvalidPermission.Duplicate"):
                    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=_permissions(missing), aws_retry=True)
            if extra:
                with _done_if("InvalidPermission.NotFound"):
                    ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=_permissions(extra), aws_retry=True)
    after = {"name": cluster_name, "vpc_id": vpc_id, "ingress": describe_rules(wanted, group_id)}
    return changed, group_id, before, after
