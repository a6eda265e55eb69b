# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A Toil cluster's leader half, present or absent: what ``toil_cluster`` does.

Every input is checked first, the pure ones without AWS, then those AWS must confirm
(zone, key pair, instance type, image, subnet, extra groups) with read-only calls, so a
bad input fails before anything is created.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.iam import ensure_role_and_profile
from ansible_collections.toil.cluster.plugins.module_utils.iam_policies import NODE_POLICIES, leader_policies
from ansible_collections.toil.cluster.plugins.module_utils.leader import (
    check_key_pair,
    check_zone,
    instance_type_info,
    leader_request,
    resolve_image,
    resolve_subnet,
    run_leader,
    wait_running,
)
from ansible_collections.toil.cluster.plugins.module_utils.limits import MAX_VOLUME_GIB, MIN_VOLUME_GIB, ascii_int
from ansible_collections.toil.cluster.plugins.module_utils.names import iam_name, validate_cluster_name
from ansible_collections.toil.cluster.plugins.module_utils.node_specs import validate_instance_type
from ansible_collections.toil.cluster.plugins.module_utils.nodes import STOPPED_STATES, cluster_instances, find_leader, instance_summary, node_type_of
from ansible_collections.toil.cluster.plugins.module_utils.security_group import ensure_security_group
from ansible_collections.toil.cluster.plugins.module_utils.tags import NODE_TYPE_LEADER, POOL_TAG, TAG_NODE_TYPE, cluster_tags, node_tags, tag_dict
from ansible_collections.toil.cluster.plugins.module_utils.zones import resolve_zone, validate_region

CLUSTER_TYPES = ("kubernetes",)
KUBERNETES_MIN_VCPUS = 2  # kubeadm refuses a control plane with fewer
MIN_STORAGE_GIB = MIN_VOLUME_GIB
# Matched whole (fullmatch: `$` accepts a trailing newline) and in ASCII (\d and \w read other scripts).
_PROFILE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/[\w+=,.@/-]+", re.ASCII)
_GROUP_ID = re.compile(r"sg-[0-9a-f]{8,17}")


@dataclass
class ClusterSpec:
    """The validated options of one cluster."""

    name: str
    zone: str
    region: str
    leader_node_type: str = None
    key_pair_name: str = None
    base_tags: dict = field(default_factory=dict)
    vpc_subnet: str = None
    leader_storage: int = 50
    image_id: str = None
    profile_arn: str = None
    extra_group_ids: tuple = ()
    worker_node_types: tuple = ()
    s3_buckets: tuple = ()
    node_policy: str = "least_privilege"
    job_store_patterns: tuple = ()
    ssh_cidrs: tuple = ("0.0.0.0/0", "::/0")
    replace_lost_leader: bool = False

    @property
    def leader_tags(self):
        return node_tags(self.base_tags, NODE_TYPE_LEADER, self.key_pair_name)


def _cidr(value):
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as error:
        raise ToilInputError(f"ssh_cidrs: '{value}' is not a network in CIDR notation ({error}).") from None


def validate_spec(params, environ=None):
    """Check every option that needs no AWS call; returns a ClusterSpec."""
    name = validate_cluster_name(params["name"])
    if params.get("cluster_type", "kubernetes") == "mesos":
        raise ToilInputError("cluster_type mesos is not supported: Toil has deprecated Mesos clusters; use kubernetes.")
    if params.get("cluster_type", "kubernetes") not in CLUSTER_TYPES:
        raise ToilInputError(f"cluster_type must be one of {', '.join(CLUSTER_TYPES)}.")
    absent = params.get("state", "present") == "absent"
    if absent and params.get("region") and not params.get("zone"):
        # Destroying finds everything by the cluster's name in its region: no zone is needed (toil destroy-cluster
        # asks for one only to derive the region).
        zone, region = None, validate_region(params["region"])
    else:
        zone, region = resolve_zone(params.get("zone"), environ)
        if params.get("region") and params["region"] != region:
            raise ToilInputError(f"Zone {zone} is not in the region {params['region']}.")
    spec = ClusterSpec(name=name, zone=zone, region=region)
    if absent:
        spec.extra_group_ids = tuple(params.get("aws_ec2_extra_security_group_ids") or ())
        return spec
    for option in ("leader_node_type", "key_pair_name"):
        if not params.get(option):
            raise ToilInputError(f"{option} is required to launch a cluster.")
    spec.leader_node_type = params["leader_node_type"]
    spec.key_pair_name = params["key_pair_name"]
    spec.base_tags = cluster_tags(name, owner=params.get("owner"), key_pair_name=spec.key_pair_name, tags=params.get("tags"), environ=environ)
    spec.vpc_subnet = params.get("vpc_subnet")
    spec.leader_storage = ascii_int(params.get("leader_storage", 50), "leader_storage")
    if spec.leader_storage < MIN_STORAGE_GIB:
        raise ToilInputError(f"leader_storage must be at least {MIN_STORAGE_GIB} GiB, got {spec.leader_storage}.")
    if spec.leader_storage > MAX_VOLUME_GIB:
        raise ToilInputError(f"leader_storage must be at most {MAX_VOLUME_GIB} GiB (EBS gp3's largest volume), got {spec.leader_storage}.")
    # The worker pools' instance types (launch_cluster passes them), checked with the leader's before any change.
    spec.worker_node_types = tuple(dict.fromkeys(validate_instance_type(t, t) for t in params.get("worker_node_types") or ()))
    spec.image_id = params.get("image_id")
    spec.profile_arn = params.get("aws_ec2_profile_arn")
    if spec.profile_arn and not _PROFILE_ARN.fullmatch(spec.profile_arn):
        raise ToilInputError(f"aws_ec2_profile_arn '{spec.profile_arn}' is not an instance profile ARN.")
    spec.extra_group_ids = tuple(params.get("aws_ec2_extra_security_group_ids") or ())
    for group_id in spec.extra_group_ids:
        if not isinstance(group_id, str) or not _GROUP_ID.fullmatch(group_id):
            raise ToilInputError(f"aws_ec2_extra_security_group_ids: '{group_id}' is not a security group ID (sg-...).")
    spec.s3_buckets = tuple(params.get("s3_buckets") or ())
    spec.job_store_patterns = tuple(params.get("job_store_patterns") or ())
    spec.node_policy = params.get("node_policy") or "least_privilege"
    if spec.node_policy not in NODE_POLICIES:
        raise ToilInputError(f"node_policy must be one of {', '.join(NODE_POLICIES)}.")
    cidrs = params.get("ssh_cidrs")
    spec.ssh_cidrs = tuple(_cidr(c) for c in (cidrs if cidrs is not None else ClusterSpec.ssh_cidrs))
    spec.replace_lost_leader = bool(params.get("replace_lost_leader"))
    return spec


@dataclass
class Launch:
    """What AWS confirmed about the inputs (read-only calls)."""

    image: dict
    subnet: dict
    instance_type: dict


def check_with_aws(ec2, spec):
    check_zone(ec2, spec.zone)
    check_key_pair(ec2, spec.key_pair_name)
    info = instance_type_info(ec2, spec.leader_node_type)
    if info["vcpus"] < KUBERNETES_MIN_VCPUS:
        raise ToilInputError(f"A Kubernetes leader needs at least {KUBERNETES_MIN_VCPUS} vCPUs; {spec.leader_node_type} has {info['vcpus']}.")
    for worker_type in spec.worker_node_types:
        instance_type_info(ec2, worker_type)  # an unknown type fails here, before the leader's group and role
    image = resolve_image(ec2, spec.image_id, info["architectures"])
    subnet = resolve_subnet(ec2, spec.zone, spec.vpc_subnet)
    if spec.extra_group_ids:
        groups = ec2.describe_security_groups(GroupIds=list(spec.extra_group_ids), aws_retry=True)["SecurityGroups"]
        for group in groups:
            if group["GroupName"] == spec.name:
                raise ToilInputError(f"Extra security group {group['GroupId']} is named {spec.name}, like the cluster: destroying the cluster would delete it.")
            if group.get("VpcId") != subnet["VpcId"]:
                raise ToilInputError(f"Extra security group {group['GroupId']} is in {group.get('VpcId')}, not in the leader's VPC {subnet['VpcId']}.")
    return Launch(image=image, subnet=subnet, instance_type=info)


def _converge_leader_tags(ec2, instance, wanted, check_mode):
    current = tag_dict(instance.get("Tags"))
    missing = {k: v for k, v in wanted.items() if current.get(k) != v}
    if missing and not check_mode:
        volumes = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m]
        ec2.create_tags(Resources=[instance["InstanceId"], *volumes], Tags=[{"Key": k, "Value": v} for k, v in sorted(missing.items())], aws_retry=True)
    return bool(missing)


# Check mode with no group yet: the longest ID, so the size check holds for the real one.
PLACEHOLDER_GROUP_ID = "sg-" + "0" * 17


def _node_line(instance):
    tags = tag_dict(instance.get("Tags"))
    pool = tags.get(POOL_TAG)
    return f"{instance['InstanceId']} ({node_type_of(instance) or 'untagged'}{', pool ' + pool if pool else ''}, {instance['State']['Name']})"


def _leader_or_refuse(ec2, cluster_name, replace_lost_leader=False):
    """The cluster's leader (tagged leader) and the nodes left without one. A cluster whose nodes are there
    without a leader is refused before any change (a worker is never made leader), unless
    ``replace_lost_leader``: a new leader is then launched and the nodes are returned, for configure_cluster
    to reset and re-join them."""
    members = cluster_instances(ec2, cluster_name, include_stopped=True)
    leader = find_leader(members)
    if leader is None and members and not replace_lost_leader:
        named = ", ".join(_node_line(i) for i in members)
        raise ToilInputError(
            f"Cluster {cluster_name} has no leader (it was lost: no instance is tagged {TAG_NODE_TYPE}={NODE_TYPE_LEADER}); its live nodes are: {named}. "
            "A worker is never made leader and nothing was changed. Launch a new leader for them with replace_lost_leader: true "
            "(configure_cluster then resets the workers and joins them to it), or remove the cluster with destroy_cluster "
            "(toil_cluster state=absent) and launch it again."
        )
    return leader, ([] if leader else members)


def present(ec2, iam, sts, spec, check_mode, wait, wait_timeout, warn):
    """Make the cluster's security group, IAM role/profile and leader exist. Returns (changed, result, diff)."""
    launch = check_with_aws(ec2, spec)
    vpc_id = launch.subnet["VpcId"]
    # A leader is only ever the node tagged leader: workers without one are never promoted (nodes.find_leader).
    existing, orphans = _leader_or_refuse(ec2, spec.name, spec.replace_lost_leader)
    node_policies = None
    if not spec.profile_arn:  # checked before any change: it validates s3_buckets; the group ID comes later
        identity = sts.get_caller_identity(aws_retry=True)

        def node_policies(group_id):
            return leader_policies(
                spec.name,
                partition=identity["Arn"].split(":")[1],
                region=spec.region,
                account_id=identity["Account"],
                role_name=iam_name(spec.name),
                s3_buckets=spec.s3_buckets,
                node_policy=spec.node_policy,
                security_group_id=group_id,
                vpc_id=vpc_id,
                key_pair_name=spec.key_pair_name,
                job_store_patterns=spec.job_store_patterns,
                extra_security_group_ids=spec.extra_group_ids,
            )

        node_policies(PLACEHOLDER_GROUP_ID)
    group_changed, group_id, group_before, group_after = ensure_security_group(ec2, spec.name, vpc_id, spec.ssh_cidrs, spec.base_tags, check_mode)
    iam_changed, profile_arn, iam_before, iam_after = False, spec.profile_arn, None, None
    if node_policies is not None:  # RunInstances scoped to this group: made after it
        policies = node_policies(group_id or PLACEHOLDER_GROUP_ID)
        iam_changed, profile_arn, iam_before, iam_after = ensure_role_and_profile(iam, spec.name, policies, spec.base_tags, check_mode)

    leader_changed = False
    wanted_tags = spec.leader_tags
    if existing:
        leader_before = instance_summary(existing)
        if existing["State"]["Name"] in STOPPED_STATES:
            warn(f"The leader {existing['InstanceId']} is {existing['State']['Name']}; start it to use the cluster.")
        if existing["InstanceType"] != spec.leader_node_type:
            warn(f"The leader {existing['InstanceId']} is a {existing['InstanceType']}, not a {spec.leader_node_type}; a leader is never replaced.")
        leader_changed = _converge_leader_tags(ec2, existing, wanted_tags, check_mode)
        instance = existing
    else:
        leader_before = None
        leader_changed = True
        instance = None
        if orphans:
            warn(
                f"Cluster {spec.name} had lost its leader: {'a new leader is' if not check_mode else 'a new leader would be'} launched for its "
                f"nodes {', '.join(_node_line(i) for i in orphans)}; configure_cluster resets them and joins them to it."
            )
        if not check_mode:
            request = leader_request(
                spec.name,
                image=launch.image,
                instance_type=spec.leader_node_type,
                key_pair_name=spec.key_pair_name,
                subnet_id=launch.subnet["SubnetId"],
                group_ids=[group_id, *spec.extra_group_ids],
                profile_arn=profile_arn,
                storage_gib=spec.leader_storage,
                tags=wanted_tags,
            )
            instance = run_leader(ec2, spec.name, request, group_id)
    if instance is not None and wait and instance["State"]["Name"] == "pending":
        instance = wait_running(ec2, instance["InstanceId"], wait_timeout)
    leader = instance_summary(instance) if instance else None
    if leader and not leader["public_ip"]:
        warn(f"The leader {leader['instance_id']} has no public IP address; reach it through its private address {leader['private_ip']}.")
    result = {
        "leader": leader,
        "security_group_id": group_id,
        "instance_profile_arn": profile_arn,
        "tags": wanted_tags,
        "image_id": launch.image["ImageId"],
        "vpc_id": vpc_id,
        "subnet_id": launch.subnet["SubnetId"],
        "replaced_lost_leader": bool(orphans),
        "rejoin_instance_ids": sorted(i["InstanceId"] for i in orphans),
    }
    planned_leader = {"instance_type": spec.leader_node_type, "image_id": launch.image["ImageId"], "zone": spec.zone, "tags": wanted_tags}
    diff = {
        "before": {"security_group": group_before, "iam": iam_before, "leader": leader_before and dict(leader_before, tags=tag_dict(existing.get("Tags")))},
        "after": {"security_group": group_after, "iam": iam_after, "leader": dict(leader or planned_leader, tags=wanted_tags)},
    }
    return group_changed or iam_changed or leader_changed, result, diff
