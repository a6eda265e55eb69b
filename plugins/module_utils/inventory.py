# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The ``toil_ec2`` inventory's hosts: what Ansible should know of each Toil node, from its instance record.

Pure, free of Ansible's inventory classes and of AWS calls, so it serves the inventory plugin (whose
listing is plugin_utils/instance_listing.py) and ``toil_cluster_info`` (its ``hosts``) alike, and is tested
alone. ``build_inventory(result, options)`` turns the instances into hosts, their variables and their
groups: cluster by ``nodes.is_member`` (its security group *and* its ``clusterName`` tag; anything with one
without the other is a stray, left out with a warning), leader (``nodes.find_leader``: the node tagged
leader, never a worker), preemptible (``nodes.is_preemptible``), ``ansible_user`` (``admin`` on this collection's Debian
nodes, ``core`` on Toil's Flatcar nodes), host names without duplicates, and the optional ProxyJump
through the leader.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ansible_collections.toil.cluster.plugins.module_utils.nodes import (
    IMDS_HOP_LIMIT,
    LIVE_STATES,
    find_leader,
    in_cluster_group,
    is_member,
    is_preemptible,
    launch_order,
    stray_warnings,
    tagged_cluster,
)
from ansible_collections.toil.cluster.plugins.module_utils.tags import (
    COLLECTION_TAG_PREFIX,
    NODE_TYPE_LEADER,
    NODE_TYPE_WORKER,
    POOL_TAG,
    TAG_OWNER,
)

HOSTNAME_CHOICES = ("public_ip", "private_ip", "private_dns", "instance_id")
DEFAULT_HOSTNAMES = ("instance_id",)
NODE_TYPES = (NODE_TYPE_LEADER, NODE_TYPE_WORKER)
# Who logs in: this collection boots Debian (user "admin"), Toil boots Flatcar (user "core").
DEBIAN_USER = "admin"
FLATCAR_USER = "core"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")

# Groups (documented in the plugin and docs/inventory.md).
GROUP_ALL = "toil_nodes"
GROUP_LEADERS = "toil_leaders"
GROUP_WORKERS = "toil_workers"
GROUP_PREEMPTIBLE = "toil_preemptible"
GROUP_STOPPED = "toil_stopped"
GROUP_CLUSTER_PREFIX = "toil_cluster_"
GROUP_POOL_PREFIX = "toil_pool_"
GROUP_TYPE_PREFIX = "toil_type_"


class InventoryConfigError(ValueError):
    """An option the inventory cannot work with; the message says which and why."""


# ---------------------------------------------------------------------- options
def check_regions(regions):
    """Region names as EC2 spells them (``us-west-2``); anything else is refused before any call."""
    checked = []
    for region in regions:
        if not isinstance(region, str) or not _REGION.match(region):
            raise InventoryConfigError(f"regions: '{region}' is not an AWS region name (like us-west-2).")
        if region not in checked:
            checked.append(region)
    return checked


def check_hostnames(hostnames):
    for choice in hostnames:
        if choice not in HOSTNAME_CHOICES:
            raise InventoryConfigError(f"hostnames: '{choice}' is not one of {', '.join(HOSTNAME_CHOICES)}.")
    return list(hostnames) or list(DEFAULT_HOSTNAMES)


# ---------------------------------------------------------------------- instance records
def iso_time(value):
    """AWS timestamps as one sortable UTC form: ``2025-01-31T12:00:00.000+00:00``."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


# Simple text children of an instance (XML name -> record key), as botocore's model names them.
TEXT_FIELDS = {
    "instanceId": "InstanceId",
    "instanceType": "InstanceType",
    "imageId": "ImageId",
    "keyName": "KeyName",
    "vpcId": "VpcId",
    "subnetId": "SubnetId",
    "privateIpAddress": "PrivateIpAddress",
    "ipAddress": "PublicIpAddress",
    "privateDnsName": "PrivateDnsName",
    "dnsName": "PublicDnsName",
    "instanceLifecycle": "InstanceLifecycle",
    "spotInstanceRequestId": "SpotInstanceRequestId",
}


def record_from_boto3(instance):
    """The same record from botocore's parsed instance (the path taken when the raw page is not seen)."""
    record = {key: instance[key] for key in TEXT_FIELDS.values() if instance.get(key)}
    if "State" in instance:
        record["State"] = instance["State"].get("Name")
    if "LaunchTime" in instance:
        record["LaunchTime"] = iso_time(instance["LaunchTime"])
    if "Placement" in instance:
        record["AvailabilityZone"] = instance["Placement"].get("AvailabilityZone")
    if "SecurityGroups" in instance:
        record["SecurityGroups"] = [group.get("GroupName") for group in instance["SecurityGroups"]]
    if "Tags" in instance:
        record["Tags"] = [{"Key": tag["Key"], "Value": tag.get("Value", "")} for tag in instance["Tags"]]
    metadata = instance.get("MetadataOptions") or {}
    if "HttpTokens" in metadata:
        record["HttpTokens"] = metadata["HttpTokens"]
    if "HttpPutResponseHopLimit" in metadata:
        record["HttpPutResponseHopLimit"] = metadata["HttpPutResponseHopLimit"]
    return record


# ---------------------------------------------------------------------- building the inventory
@dataclass
class InventoryOptions:
    clusters: tuple = ()
    owners: tuple = ()
    node_types: tuple = ()
    hostnames: tuple = DEFAULT_HOSTNAMES
    use_private_ip: bool = False
    ssh_user: str = None
    leader_as_bastion: bool = False


@dataclass
class Host:
    name: str
    variables: dict
    groups: list = field(default_factory=list)


@dataclass
class Inventory:
    hosts: list
    groups: list
    warnings: list = field(default_factory=list)  # one line per stray instance (nodes.stray_warnings)
    children: dict = field(default_factory=dict)  # parent group -> its child groups (the per-cluster role groups)


def sanitize(text):
    """A group name part: every character but letters, digits and ``_`` becomes ``_``."""
    return _UNSAFE.sub("_", str(text))


def tags_of(record):
    return {tag["Key"]: tag["Value"] for tag in record.get("Tags") or ()}


def cluster_of(record, cluster_groups):
    """(the cluster the node is a member of or None, [clusters it only looks like a node of]).

    A member is in the security group named C *and* tagged ``clusterName=C`` (``nodes.is_member``);
    a node in C's group with another or no tag, or tagged C outside the group, is C's stray.
    """
    tagged = tagged_cluster(record)
    if tagged in cluster_groups and is_member(record, tagged):
        return tagged, []
    looks_like = {name for name in record.get("SecurityGroups") or () if name in cluster_groups}
    if tagged in cluster_groups and not in_cluster_group(record, tagged):
        looks_like.add(tagged)
    return None, sorted(looks_like)


def default_ssh_user(record, tags):
    """``admin`` on the Debian nodes this collection launches, ``core`` on Toil's Flatcar nodes.

    This collection's nodes carry a ``toil.cluster/...`` tag (pools) or its instance metadata settings
    (IMDSv2 required with a hop limit of 2); Toil sets a hop limit of 3 and leaves IMDSv1 on.
    """
    if any(key.startswith(COLLECTION_TAG_PREFIX) for key in tags):
        return DEBIAN_USER
    if record.get("HttpTokens") == "required" and record.get("HttpPutResponseHopLimit") == IMDS_HOP_LIMIT:
        return DEBIAN_USER
    return FLATCAR_USER


_ADDRESS_OF = {
    "public_ip": "PublicIpAddress",
    "private_ip": "PrivateIpAddress",
    "private_dns": "PrivateDnsName",
    "instance_id": "InstanceId",
}


class _GroupNames:
    """Group names from (kind, parts) keys; two different keys never share a name (a short hash tells them apart)."""

    def __init__(self):
        self._bases = {}

    def key(self, prefix, *parts):
        key = (prefix, *parts)
        if key not in self._bases:
            self._bases[key] = prefix + "_".join(sanitize(part) for part in parts)
        return key

    def resolve(self):
        owners = {}
        for key, base in self._bases.items():
            owners.setdefault(base, []).append(key)
        names = {}
        for base, keys in owners.items():
            for key in keys:
                if len(keys) == 1:
                    names[key] = base
                else:
                    names[key] = base + "_" + hashlib.sha256("\0".join(key).encode()).hexdigest()[:6]
        return names


def build_inventory(result, options):
    """Hosts, their variables and groups from ``query_regions``' result (see the plugin's documentation)."""
    wanted = set(options.clusters)
    owners = set(options.owners)
    node_types = set(options.node_types)
    preferences = [_ADDRESS_OF[choice] for choice in options.hostnames]
    # Nodes per (region, cluster): membership and leaders are per region.
    clusters = {}
    warnings = []
    for region in sorted(result):
        cluster_groups = set(result[region]["cluster_groups"])
        for record in result[region]["instances"]:
            tags = tags_of(record)
            cluster, looks_like = cluster_of(record, cluster_groups)
            if owners and tags.get(TAG_OWNER) not in owners:
                continue
            for name in looks_like:
                if not wanted or name in wanted:
                    warnings.extend(f"{region}: {line}" for line in stray_warnings(name, [record]))
            if cluster is None or (wanted and cluster not in wanted):
                continue
            clusters.setdefault((region, cluster), []).append((record, tags))
    members_all = []
    for (region, cluster), members in sorted(clusters.items()):
        members.sort(key=lambda member: launch_order(member[0]))
        leader = find_leader([record for record, _tags in members])
        for record, tags in members:
            role = NODE_TYPE_LEADER if leader is not None and record is leader else NODE_TYPE_WORKER
            members_all.append((region, cluster, record, tags, role, leader))
    selected = [member for member in members_all if not node_types or member[4] in node_types]
    # Names: each node takes its first preference no other node has taken yet, else its instance ID.
    taken = set()
    names = {}
    for _region, _cluster, record, _tags, _role, _leader in selected:
        name = None
        for key in preferences:
            value = record.get(key)
            if value and value not in taken:
                name = value
                break
        name = name or record["InstanceId"]
        taken.add(name)
        names[record["InstanceId"]] = name
    users = {}
    addresses = {}
    for _region, _cluster, record, tags, _role, _leader in members_all:
        users[record["InstanceId"]] = options.ssh_user or default_ssh_user(record, tags)
        if options.use_private_ip:
            addresses[record["InstanceId"]] = record.get("PrivateIpAddress")
        else:
            addresses[record["InstanceId"]] = record.get("PublicIpAddress") or record.get("PrivateIpAddress")
    group_names = _GroupNames()
    parents = {}
    hosts = []
    for region, cluster, record, tags, role, leader in selected:
        instance_id = record["InstanceId"]
        state = record.get("State")
        preemptible = is_preemptible(record)
        pool = tags.get(POOL_TAG)
        leader_id = leader["InstanceId"] if leader is not None else None
        variables = {
            "toil_cluster": cluster,
            "toil_node_type": role,
            "toil_leader": names.get(leader_id) if leader_id else None,
            "toil_pool": pool,
            "toil_preemptible": preemptible,
            "toil_instance_id": instance_id,
            "toil_instance_type": record.get("InstanceType"),
            "toil_region": region,
            "toil_zone": record.get("AvailabilityZone"),
            "toil_launch_time": record.get("LaunchTime"),
            "toil_state": state,
            "toil_private_ip": record.get("PrivateIpAddress"),
            "toil_public_ip": record.get("PublicIpAddress"),
            "toil_private_dns": record.get("PrivateDnsName"),
            "ec2_tags": tags,
            "ansible_user": users[instance_id],
        }
        address = addresses[instance_id]
        if address:
            variables["ansible_host"] = address
        if options.leader_as_bastion and role == NODE_TYPE_WORKER and leader_id:
            private_only = options.use_private_ip or not record.get("PublicIpAddress")
            jump = leader.get("PublicIpAddress") or addresses[leader_id]
            if private_only and jump:
                # Data only: ssh_jump.JUMP_ARGS_TEMPLATE (set by the inventory plugin) validates and quotes it at run time.
                variables["toil_jump"] = {"host": jump, "user": users[leader_id], "instance_id": leader_id}
        role_group = GROUP_LEADERS if role == NODE_TYPE_LEADER else GROUP_WORKERS
        cluster_group = group_names.key(GROUP_CLUSTER_PREFIX, cluster)
        # toil_cluster_<name>_leaders/_workers: one cluster's role, child of toil_cluster_<name> and of toil_leaders/_workers.
        cluster_role_group = group_names.key(GROUP_CLUSTER_PREFIX, cluster, role_group.removeprefix("toil_"))
        keys = [group_names.key(GROUP_ALL), cluster_group, group_names.key(role_group), cluster_role_group]
        for parent in (cluster_group, group_names.key(role_group)):
            parents.setdefault(parent, set()).add(cluster_role_group)
        if preemptible:
            keys.append(group_names.key(GROUP_PREEMPTIBLE))
        if pool:
            keys.append(group_names.key(GROUP_POOL_PREFIX, cluster, pool))
        if record.get("InstanceType"):
            keys.append(group_names.key(GROUP_TYPE_PREFIX, record["InstanceType"]))
        if state not in LIVE_STATES:
            keys.append(group_names.key(GROUP_STOPPED))
        hosts.append(Host(names[instance_id], variables, keys))
    resolved = group_names.resolve()
    for host in hosts:
        host.groups = [resolved[key] for key in host.groups]
    children = {resolved[parent]: sorted(resolved[child] for child in kids) for parent, kids in parents.items()}
    return Inventory(hosts, sorted(set(resolved.values())), warnings, children)


def cluster_hosts(region, cluster_name, instances, ssh_user=None, use_private_ip=False):
    """The hosts ``toil_ec2`` would give for one cluster's instances (botocore's), as ``add_host`` items:
    ``{"name", "groups", "vars"}``, so a playbook adds the nodes its inventory does not know yet. Strays
    among ``instances`` are left out here too (the caller warns of them). Without ``use_private_ip``, workers
    without a public address get ``toil_jump`` (the leader as bastion), as with the inventory's ``leader_as_bastion``."""
    result = {region: {"cluster_groups": [cluster_name], "instances": [record_from_boto3(i) for i in instances]}}
    # With use_private_ip the controller is in the VPC (Toil's --use_private_ip): every node is reached directly.
    options = InventoryOptions(clusters=(cluster_name,), ssh_user=ssh_user, use_private_ip=use_private_ip, leader_as_bastion=not use_private_ip)
    inventory = build_inventory(result, options)
    return [{"name": host.name, "groups": host.groups, "vars": host.variables} for host in inventory.hosts]
