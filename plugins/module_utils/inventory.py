# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The ``toil_ec2`` inventory: which instances are Toil nodes, and what Ansible should know of them.

Two halves, both free of Ansible's inventory classes so they can be tested alone:

Querying (takes one boto3 EC2 client per region)
    Per region, one paginated DescribeInstances (pages of 1,000) filtered server-side by the clusters'
    security groups (``instance.group-name``, always the first filter), the instance state and the
    ``Owner`` tag: every node by Toil's own rule, the one ``toil destroy-cluster`` acts on. Both Toil and
    this collection launch every node into its cluster's group, tagged or (Toil's spot workers, for a
    moment) not yet tagged. With ``clusters`` given, their names are the groups and nothing else is asked;
    without, one DescribeSecurityGroups first finds the groups with Toil's description (Toil and this
    collection both use it). Regions run in parallel. Each page's XML is read directly for the fields used
    here (``parse_describe_instances``), which is several times cheaper than botocore's generic parser on
    thousands of instances; botocore's answer is used whenever the raw page is not seen.

Building (pure)
    ``build_inventory(result, options)`` turns the instances into hosts, their variables and their groups:
    cluster by security group or tags, leader (``ToilNodeType=leader``, else the oldest node not tagged as a
    worker), preemptible (spot lifecycle or a spot request id), ``ansible_user`` (``admin`` on this
    collection's Debian nodes, ``core`` on Toil's Flatcar nodes), host names without duplicates, and the
    optional ProxyJump through the leader.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ansible_collections.toil.cluster.plugins.module_utils.leader import IMDS_HOP_LIMIT
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import PREEMPTIBLE_TAG
from ansible_collections.toil.cluster.plugins.module_utils.nodes import LIVE_STATES, POOL_TAG, STOPPED_STATES, find_leader, is_preemptible
from ansible_collections.toil.cluster.plugins.module_utils.security_group import TOIL_SECURITY_GROUP_DESCRIPTION
from ansible_collections.toil.cluster.plugins.module_utils.tags import (
    NODE_TYPE_LEADER,
    NODE_TYPE_WORKER,
    TAG_CLUSTER_NAME,
    TAG_NAME,
    TAG_NODE_TYPE,
    TAG_OWNER,
)

MAX_RESULTS = 1000  # DescribeInstances' largest page
FILTER_VALUES_MAX = 200  # EC2 refuses more filter values in one request
HOSTNAME_CHOICES = ("public_ip", "private_ip", "private_dns", "instance_id")
DEFAULT_HOSTNAMES = ("instance_id",)
NODE_TYPES = (NODE_TYPE_LEADER, NODE_TYPE_WORKER)
# Who logs in: this collection boots Debian (user "admin"), Toil boots Flatcar (user "core").
DEBIAN_USER = "admin"
FLATCAR_USER = "core"
COLLECTION_TAG_PREFIX = "toil.cluster/"
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


class InventoryQueryError(RuntimeError):
    """An AWS call failed (after botocore's retries): the inventory must fail, not come out partial."""

    def __init__(self, region, action, error):
        super().__init__(f"{action} in {region} failed: {error}")
        self.region = region
        self.action = action
        self.error = error


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


def state_names(include_stopped):
    return list(LIVE_STATES + (STOPPED_STATES if include_stopped else ()))


# ---------------------------------------------------------------------- reading DescribeInstances
def _text(element):
    return element.text if element is not None else None


def _iso(value):
    """AWS timestamps as one sortable UTC form: ``2025-01-31T12:00:00.000+00:00``."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


# Simple text children of an instance (XML name -> record key), as botocore's model names them.
_TEXT_FIELDS = {
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


def _record_from_xml(instance, ns):
    record = {}
    strip = len(ns)
    for child in instance:
        name = child.tag[strip:]
        key = _TEXT_FIELDS.get(name)
        if key is not None:
            if child.text:
                record[key] = child.text
        elif name == "instanceState":
            record["State"] = _text(child.find(ns + "name"))
        elif name == "launchTime":
            record["LaunchTime"] = _iso(child.text)
        elif name == "placement":
            record["AvailabilityZone"] = _text(child.find(ns + "availabilityZone"))
        elif name == "groupSet":
            record["SecurityGroups"] = [_text(item.find(ns + "groupName")) for item in child]
        elif name == "tagSet":
            record["Tags"] = [{"Key": _text(item.find(ns + "key")), "Value": _text(item.find(ns + "value")) or ""} for item in child]
        elif name == "metadataOptions":
            tokens, hops = child.find(ns + "httpTokens"), child.find(ns + "httpPutResponseHopLimit")
            if tokens is not None:
                record["HttpTokens"] = tokens.text
            if hops is not None and hops.text:
                record["HttpPutResponseHopLimit"] = int(hops.text)
    return record


def parse_describe_instances(body):
    """One DescribeInstances page (the XML EC2 answers) -> (instance records, next token or None).

    Streamed: each instance's elements are dropped once read, so a page of thousands of instances never
    exists as a whole tree. An instance is an ``item`` with a direct ``instanceId`` child; only direct
    children are read, so a network interface's own groups and tags are never taken for the instance's.
    """
    records = []
    token = None
    ns = item = instance_id = next_token = None
    for _event, element in ET.iterparse(io.BytesIO(body), events=("end",)):
        if ns is None:
            ns = element.tag[: element.tag.index("}") + 1] if element.tag.startswith("{") else ""
            item, instance_id, next_token = ns + "item", ns + "instanceId", ns + "nextToken"
        tag = element.tag
        if tag == item:
            if element.find(instance_id) is not None:
                records.append(_record_from_xml(element, ns))
                element.clear()
        elif tag == next_token:
            token = element.text or None
    return records, token


def record_from_boto3(instance):
    """The same record from botocore's parsed instance (the path taken when the raw page is not seen)."""
    record = {key: instance[key] for key in _TEXT_FIELDS.values() if instance.get(key)}
    if "State" in instance:
        record["State"] = instance["State"].get("Name")
    if "LaunchTime" in instance:
        record["LaunchTime"] = _iso(instance["LaunchTime"])
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


_EMPTY_PAGE = b'<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><reservationSet/></DescribeInstancesResponse>'


class RawPages:
    """A botocore ``before-parse`` hook that keeps DescribeInstances' raw XML for ``parse_describe_instances``.

    botocore then parses an empty page instead of the real one; errors (status >= 300) are left to
    botocore untouched, so its retries and exceptions work as usual. Per thread, so one client can
    serve several listings at once.
    """

    EVENT = "before-parse.ec2.DescribeInstances"

    def __init__(self):
        self._local = threading.local()

    def install(self, ec2):
        ec2.meta.events.register(self.EVENT, self, unique_id=f"toil-ec2-raw-pages-{id(self)}")
        return ec2

    def __call__(self, response_dict=None, **_kwargs):
        if not getattr(self._local, "armed", False) or response_dict is None:
            return
        body = response_dict.get("body")
        if response_dict.get("status_code") == 200 and isinstance(body, bytes) and body:
            self._local.body = body
            response_dict["body"] = _EMPTY_PAGE

    def arm(self):
        self._local.armed = True
        self._local.body = None

    def take(self):
        body = getattr(self._local, "body", None)
        self._local.armed = False
        self._local.body = None
        return body


def describe_instances(ec2, filters, raw=None):
    """Every instance matching ``filters``, reading every page (1,000 reservations at a time)."""
    records = []
    token = None
    while True:
        request = {"Filters": filters, "MaxResults": MAX_RESULTS}
        if token:
            request["NextToken"] = token
        if raw is not None:
            raw.arm()
        try:
            page = ec2.describe_instances(**request)
        finally:
            body = raw.take() if raw is not None else None
        if body is not None:
            found, token = parse_describe_instances(body)
        else:
            found = [record_from_boto3(i) for reservation in page.get("Reservations", []) for i in reservation.get("Instances", [])]
            token = page.get("NextToken")
        records.extend(found)
        if not token:
            return records


def list_security_groups(ec2):
    """(name, description) of every security group in the region."""
    groups = []
    for page in ec2.get_paginator("describe_security_groups").paginate(PaginationConfig={"PageSize": MAX_RESULTS}):
        groups.extend((group["GroupName"], group.get("Description", "")) for group in page["SecurityGroups"])
    return groups


def _chunks(values, size):
    return [values[i : i + size] for i in range(0, len(values), size)]


def plan_queries(groups, clusters=(), owners=(), include_stopped=False):
    """(the clusters' security group names, [DescribeInstances filter lists]) for one region.

    ``groups`` is ``list_security_groups``' answer, needed only when no ``clusters`` are named. One
    request lists every cluster's nodes; only more than 200 filter values (EC2's limit per request)
    split it.
    """
    toil_made = {name for name, description in groups or () if description == TOIL_SECURITY_GROUP_DESCRIPTION}
    cluster_groups = sorted(set(clusters) or toil_made)
    common = [{"Name": "instance-state-name", "Values": state_names(include_stopped)}]
    if owners:
        common.append({"Name": "tag:" + TAG_OWNER, "Values": list(owners)})
    budget = FILTER_VALUES_MAX - sum(len(f["Values"]) for f in common)
    if budget < 1:
        raise InventoryConfigError(f"owners: at most {FILTER_VALUES_MAX - 10} owners can be asked for at once.")
    return cluster_groups, [[{"Name": "instance.group-name", "Values": chunk}, *common] for chunk in _chunks(cluster_groups, budget)]


def query_regions(clients, clusters=(), owners=(), include_stopped=False, max_workers=16):
    """``{region: {"cluster_groups": [...], "instances": [records]}}`` for ``clients`` (region -> EC2 client).

    Regions run in parallel threads; the first failure is raised as ``InventoryQueryError`` once every
    call has returned, so no partial answer ever escapes.
    """
    regions = list(clients)
    if not regions:
        return {}
    raw = {region: RawPages() for region in regions}
    for region in regions:
        raw[region].install(clients[region])

    def groups_of(region):
        if clusters:
            return None  # the named clusters are the groups: nothing to ask
        try:
            return list_security_groups(clients[region])
        except Exception as error:  # botocore's, after its retries
            raise InventoryQueryError(region, "DescribeSecurityGroups", error) from error

    def instances_of(region, filters):
        try:
            return describe_instances(clients[region], filters, raw[region])
        except Exception as error:
            raise InventoryQueryError(region, "DescribeInstances", error) from error

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(regions)))) as pool:
        groups = dict(zip(regions, pool.map(groups_of, regions), strict=True))
        plans = {region: plan_queries(groups[region], clusters, owners, include_stopped) for region in regions}
        jobs = [(region, pool.submit(instances_of, region, filters)) for region in regions for filters in plans[region][1]]
        listings = [(region, job.result()) for region, job in jobs]
    result = {region: {"cluster_groups": plans[region][0], "instances": []} for region in regions}
    seen = set()
    for region, records in listings:
        for record in records:
            if record.get("InstanceId") and record["InstanceId"] not in seen:
                seen.add(record["InstanceId"])
                result[region]["instances"].append(record)
    return result


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


def sanitize(text):
    """A group name part: every character but letters, digits and ``_`` becomes ``_``."""
    return _UNSAFE.sub("_", str(text))


def tags_of(record):
    return {tag["Key"]: tag["Value"] for tag in record.get("Tags") or ()}


def cluster_of(record, tags, cluster_groups):
    """The cluster a node belongs to: by its tags when they agree with its security groups, else by group.

    Tags count when the node has ``ToilNodeType`` and ``clusterName`` (else ``Name``); a node in the
    security group named C belongs to C (Toil's rule), which wins when the two disagree.
    """
    tagged = (tags.get(TAG_CLUSTER_NAME) or tags.get(TAG_NAME)) if TAG_NODE_TYPE in tags else None
    in_groups = [name for name in record.get("SecurityGroups") or () if name in cluster_groups]
    if tagged and (not in_groups or tagged in in_groups):
        return tagged
    return min(in_groups) if in_groups else None


def leader_of(nodes):
    """The node tagged as leader (the oldest if several), else the oldest not tagged as a worker, else None."""
    candidates = [n for n in nodes if tags_of(n).get(TAG_NODE_TYPE) != NODE_TYPE_WORKER]
    return find_leader(candidates)


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


def _order(record):
    return (record.get("LaunchTime") or "", record["InstanceId"])


def build_inventory(result, options):
    """Hosts, their variables and groups from ``query_regions``' result (see the plugin's documentation)."""
    wanted = set(options.clusters)
    owners = set(options.owners)
    node_types = set(options.node_types)
    preferences = [_ADDRESS_OF[choice] for choice in options.hostnames]
    # Nodes per (region, cluster): membership and leaders are per region.
    clusters = {}
    for region in sorted(result):
        cluster_groups = set(result[region]["cluster_groups"])
        for record in result[region]["instances"]:
            tags = tags_of(record)
            cluster = cluster_of(record, tags, cluster_groups)
            if cluster is None or (wanted and cluster not in wanted) or (owners and tags.get(TAG_OWNER) not in owners):
                continue
            clusters.setdefault((region, cluster), []).append((record, tags))
    members_all = []
    for (region, cluster), members in sorted(clusters.items()):
        members.sort(key=lambda member: _order(member[0]))
        leader = leader_of([record for record, _tags in members])
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
    hosts = []
    for region, cluster, record, tags, role, leader in selected:
        instance_id = record["InstanceId"]
        state = record.get("State")
        preemptible = is_preemptible(record) or tags.get(PREEMPTIBLE_TAG) == "true"
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
                variables["ansible_ssh_common_args"] = f"-o ProxyJump={users[leader_id]}@{jump}"
        keys = [group_names.key(GROUP_ALL), group_names.key(GROUP_CLUSTER_PREFIX, cluster)]
        keys.append(group_names.key(GROUP_LEADERS if role == NODE_TYPE_LEADER else GROUP_WORKERS))
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
    return Inventory(hosts, sorted(set(resolved.values())))
