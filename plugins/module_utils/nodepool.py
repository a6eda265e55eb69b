# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Worker pools: the worker half of ``toil launch-cluster --nodeTypes ... -w ...``, and the scaler's actuator.

A pool is the cluster's workers tagged ``toil.cluster/pool=<name>``. Unlike Toil: scale-up is one
instant EC2 Fleet over every allowed (instance type x subnet), tagged at launch (Toil tags each node
with one call per tag after launch, and leaves their volumes untagged); EC2 falls back across types
and zones within that call, and what it could not launch is reported as ``deficit`` with the fleet's
errors as ``capacity_errors``; a ClientToken derived from the
pool's intent in this generation of the cluster (its security group and leader, the pool's live
members and target) makes a retried or concurrent run launch once, and a pool that comes back to
an earlier intent (2 -> 0 -> 2, a lost node, a relaunched cluster) launches anew (``launch_token``).
Scale-down never goes below the pool's minimum and never touches the leader.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field, replace

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError, ToilOperationError
from ansible_collections.toil.cluster.plugins.module_utils.instance_requirements import read_catalogue, resolve_types
from ansible_collections.toil.cluster.plugins.module_utils.leader import instance_type_info, resolve_image
from ansible_collections.toil.cluster.plugins.module_utils.names import validate_cluster_name
from ansible_collections.toil.cluster.plugins.module_utils.node_specs import normalize_worker_pool
from ansible_collections.toil.cluster.plugins.module_utils.nodes import (
    LIVE_STATES,
    TAGGED_AT_LAUNCH,
    cluster_leader,
    describe_instances,
    instance_summary,
    is_member,
    is_preemptible,
    launch_order,
    launch_settings,
    refresh,
    terminate,
    wait_for,
)
from ansible_collections.toil.cluster.plugins.module_utils.pool_template import (
    delete_pool_template,
    pool_launch_template,
    remember_spent_token,
    template_data,
)
from ansible_collections.toil.cluster.plugins.module_utils.security_group import find_cluster_security_groups
from ansible_collections.toil.cluster.plugins.module_utils.ssh_keys import authorized_keys_user_data, parse_authorized_keys
from ansible_collections.toil.cluster.plugins.module_utils.subnets import (
    check_zone_regions,
    like_subnets,
    order_subnets,
    rank_spot_zones,
    restrict_to_zones,
    spot_price_history,
    validate_zones,
)
from ansible_collections.toil.cluster.plugins.module_utils.tags import (
    COLLECTION_TAG_PREFIX,
    JOINED_TAG,
    LABELS_TAG,
    NODE_TYPE_WORKER,
    POOL_TAG,
    PREEMPTIBLE_TAG,
    SPOT_LABEL,
    SPOT_LABELS,
    TAG_CLUSTER_NAME,
    TAG_NODE_TYPE,
    TAG_SSH_KEY_NAME,
    TRUE_TAG_VALUE,
    boto3_tag_list,
    tag_dict,
)

_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
KUBELET_LABELS = ("kubernetes.io/arch", "kubernetes.io/os", "beta.kubernetes.io/arch", "beta.kubernetes.io/os")
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_GROUP_ID = re.compile(r"sg-[0-9a-f]{8,17}")
# What a fleet's Errors entry may show of its ErrorCode (a value from AWS): EC2's codes are words and dots.
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9.]{0,99}")
# A launch token answered with an earlier generation's fleet; how many tokens of one intent to try.
STALE_TOKEN = "stale launch token"
TOKEN_CHAIN_LENGTH = 64


@dataclass
class PoolSpec:
    cluster: str
    pool: object  # node_specs.WorkerPool
    desired: int
    node_storage: int = 50
    zones: tuple = ()  # restricts the subnets like the leader's (subnets.py); ``subnets`` overrides both
    subnets: tuple = ()
    labels: dict = field(default_factory=dict)
    authorized_keys: tuple = ()
    victims: tuple = ()
    image_id: str = None

    @property
    def name(self):
        return self.pool.name

    @property
    def node_type(self):
        return self.pool.node_type


def _labels(labels, preemptible):
    checked = {}
    for key, raw in (labels or {}).items():
        value = "" if raw is None else str(raw)
        if not isinstance(key, str) or not _LABEL_KEY.fullmatch(key) or len(key) > 253:  # fullmatch: `$` allows a newline
            raise ToilInputError(f"labels: '{key}' is not a Kubernetes label key.")
        # The collection's own labels (the pool label toil.cluster/pool, ...) and the spot labels say what a
        # node is: a user label must not override them (the pool's demand and Toil's preemptible jobs read them).
        if key.startswith(COLLECTION_TAG_PREFIX) or key in SPOT_LABELS:
            raise ToilInputError(f"labels: '{key}' is set by this collection (the pool and spot labels) and cannot be given.")
        # The kubelet labels its Node with its own architecture and OS; the scaler packs pinned pods by them.
        if key in KUBELET_LABELS:
            raise ToilInputError(f"labels: '{key}' is set by each node's kubelet (its own architecture and OS) and cannot be given.")
        if not _LABEL_VALUE.fullmatch(value):
            raise ToilInputError(f"labels: '{value}' (for '{key}') is not a Kubernetes label value.")
        checked[key] = value
    if preemptible:
        checked.update(SPOT_LABEL)
    text = ",".join(f"{k}={v}" for k, v in sorted(checked.items()))
    if len(text) > 256:
        raise ToilInputError("labels: together they must fit 256 characters (they travel as one instance tag).")
    return checked


def validate_pool_spec(params):
    """Every option checked without AWS; returns a PoolSpec."""
    pool_fields = {"node_types": params["node_types"], "name": params.get("name")}
    count, low, high = params.get("count"), params.get("min_size"), params.get("max_size")
    if count is not None and (low is not None or high is not None):
        raise ToilInputError("Give either count (a static pool) or min_size and max_size (a ranged pool), not both.")
    if params.get("state", "present") == "absent" and count is None and low is None and high is None:
        count = 0  # an absent pool needs no size
    if count is not None:
        pool_fields["count"] = count
    else:
        pool_fields.update(min_size=low, max_size=high)
    pool = normalize_worker_pool(pool_fields)
    desired = params.get("desired")
    if desired is not None:
        if pool.static:
            raise ToilInputError("desired applies to a ranged pool (min_size/max_size); a static pool's size is count.")
        if not pool.min_size <= desired <= pool.max_size:
            raise ToilInputError(f"desired {desired} is outside the pool's range {pool.min_size}-{pool.max_size}.")
    storage = params.get("node_storage", 50)
    if storage < 8:
        raise ToilInputError(f"node_storage must be at least 8 GiB, got {storage}.")
    keys = parse_authorized_keys(params.get("authorized_keys"))  # they reach user data: ssh_keys.py
    victims = tuple(params.get("terminate_instance_ids") or ())
    for victim in victims:
        if not _INSTANCE_ID.match(victim):
            raise ToilInputError(f"terminate_instance_ids: '{victim}' is not an instance ID.")
    return PoolSpec(
        cluster=validate_cluster_name(params["cluster"]),
        pool=pool,
        desired=pool.max_size if pool.static else desired,
        node_storage=storage,
        zones=validate_zones(params.get("zones")),
        subnets=tuple(params.get("subnets") or ()),
        labels=_labels(params.get("labels"), pool.node_type.preemptible),
        authorized_keys=keys,
        victims=victims,
        image_id=params.get("image_id"),
    )


@dataclass
class ClusterContext:
    """What a pool takes from its cluster: the leader's group, profile, key, VPC and tags."""

    leader: dict
    group_id: str
    vpc_id: str
    profile_arn: str
    key_name: str
    base_tags: dict
    extra_group_ids: tuple = ()


def cluster_context(ec2, cluster):
    leader = cluster_leader(ec2, cluster)
    if leader is None:
        raise ToilInputError(f"Unknown cluster '{cluster}': no leader found in this region. Launch it with toil.cluster.toil_cluster first.")
    groups = find_cluster_security_groups(ec2, cluster, leader.get("VpcId"))
    if not groups:
        raise ToilInputError(f"Cluster '{cluster}' has no security group named {cluster} in {leader.get('VpcId')}.")
    group_id = groups[0]["GroupId"]
    # Toil's --awsEc2ExtraSecurityGroupId reaches every node: Toil's workers get the leader's groups
    # (AWSProvisioner._getSecurityGroupIDs); so do these. A value from AWS: checked.
    extras = []
    for group in leader.get("SecurityGroups") or ():
        extra = group.get("GroupId")
        if extra == group_id:
            continue
        if not isinstance(extra, str) or not _GROUP_ID.fullmatch(extra):
            raise ToilInputError(f"The leader of {cluster} has a security group {extra!r} that is not a security group ID.")
        extras.append(extra)
    tags = tag_dict(leader.get("Tags"))
    base = {k: v for k, v in tags.items() if k not in (TAG_NODE_TYPE, TAG_SSH_KEY_NAME) and not k.startswith("aws:")}
    base.setdefault(TAG_CLUSTER_NAME, cluster)
    return ClusterContext(
        leader=leader,
        group_id=group_id,
        extra_group_ids=tuple(sorted(set(extras))),
        vpc_id=leader.get("VpcId"),
        profile_arn=leader.get("IamInstanceProfile", {}).get("Arn"),
        key_name=leader.get("KeyName") or tags.get(TAG_SSH_KEY_NAME),
        base_tags=base,
    )


def pool_members(ec2, cluster, pool_name, leader_id):
    """The pool's live nodes: members of the cluster (``nodes.is_member``: its group and its tag) tagged
    with the pool. An instance tagged for the pool outside the group is never counted nor scaled down."""
    filters = [
        {"Name": "tag:" + TAG_CLUSTER_NAME, "Values": [cluster]},
        {"Name": "tag:" + POOL_TAG, "Values": [pool_name]},
        {"Name": "instance.group-name", "Values": [cluster]},
        {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
    ]
    members = [i for i in describe_instances(ec2, filters) if i["InstanceId"] != leader_id and is_member(i, cluster)]
    return sorted(members, key=launch_order)


def worker_tags(spec, context):
    tags = dict(context.base_tags)
    tags.update({TAG_NODE_TYPE: NODE_TYPE_WORKER, POOL_TAG: spec.name, PREEMPTIBLE_TAG: str(spec.node_type.preemptible).lower()})
    if spec.labels:
        tags[LABELS_TAG] = ",".join(f"{k}={v}" for k, v in sorted(spec.labels.items()))
    return tags


def user_data(authorized_keys):
    """cloud-init: the keys the leader's scaler uses to configure the nodes it launches."""
    return authorized_keys_user_data(authorized_keys)  # serialised, never templated (ssh_keys.py)


def pool_subnets(ec2, spec, context):
    """The subnet IDs to try for the pool's new nodes, in order: ``subnets`` as given (each in the cluster's VPC),
    else the subnets like the leader's (subnets.py, Toil's rule) in ``zones`` (every zone when none are given):
    for a spot pool its zones by Toil's spot rule for the first instance type, for on-demand the leader's zone first."""
    if spec.subnets:
        subnets = ec2.describe_subnets(SubnetIds=list(spec.subnets), aws_retry=True)["Subnets"]
        for subnet in subnets:
            if subnet["VpcId"] != context.vpc_id:
                raise ToilInputError(f"Subnet {subnet['SubnetId']} is not in the cluster's VPC {context.vpc_id}.")
        return list(spec.subnets)  # in the order given, which DescribeSubnets does not keep
    leader_subnet = context.leader["SubnetId"]
    like = like_subnets(ec2, leader_subnet, context.vpc_id)
    like = restrict_to_zones(like, spec.zones, context.vpc_id)
    zones = sorted({s["AvailabilityZone"] for s in like})
    if spec.node_type.preemptible:
        history = spot_price_history(ec2, spec.node_type.instance_types[0])
        zone_order = rank_spot_zones(zones, spec.node_type.spot_bid, history)
    else:
        zone_order = [context.leader.get("Placement", {}).get("AvailabilityZone")]
    return order_subnets(like, zone_order, leader_subnet)


def launch_token(spec, context, members, target, overrides, link=0):
    """The pool's intent in this generation of the cluster, as CreateFleet's ClientToken.

    The same intent (cluster generation: its security group and leader; pool, its live members, the
    (type, subnet) pools offered, target) gives the same token, so a retried or concurrent run launches
    once. EC2 keeps a token and answers it again with the first fleet's instances, terminated included
    (tests/harness/proxy.py quotes the documentation): ``link`` moves a pool that comes back to an intent
    it had before (2 -> 0 -> 2, a lost node) on to the next token of the same chain (``scale_up``),
    deterministically, so a retry follows the same chain to the same fleet.
    """
    intent = "/".join(
        [
            "toil.cluster/pool",
            spec.cluster,
            context.group_id or "",
            context.leader.get("InstanceId", ""),
            spec.name,
            ",".join(f"{o['InstanceType']}@{o['SubnetId']}" for o in overrides),
            str(target),
            ",".join(sorted(i["InstanceId"] for i in members)),
            str(link),
        ]
    )
    return hashlib.sha256(intent.encode()).hexdigest()[:64]


def fleet_overrides(spec, images, subnets, tags):
    """One capacity pool per allowed (instance type x subnet), in the user's type order: the AMI and root
    volume of the type's architecture; spot pools bid the pool's price; on-demand ones carry their rank, the
    type's first and then the subnet's (pool_subnets' order: the leader's zone first), as EC2 leaves the order
    of equal priorities to itself."""
    overrides = []
    for type_rank, instance_type in enumerate(spec.node_type.instance_types):
        settings = launch_settings(images[instance_type], spec.node_storage, tags)
        for subnet_rank, subnet_id in enumerate(subnets):
            rank = type_rank * len(subnets) + subnet_rank
            override = {
                "InstanceType": instance_type,
                "SubnetId": subnet_id,
                "ImageId": settings["ImageId"],
                "BlockDeviceMappings": settings["BlockDeviceMappings"],
            }
            if spec.node_type.preemptible:
                override["MaxPrice"] = f"{spec.node_type.spot_bid:g}"
            else:
                override["Priority"] = float(rank)
            overrides.append(override)
    return overrides


def fleet_request(spec, template, overrides, count, tags):
    """One instant EC2 Fleet for ``count`` nodes over ``overrides``: spot by price-capacity-optimized (AWS's
    recommendation: the cheapest of the pools least likely to be interrupted), on-demand by the user's type order
    (``prioritized``). No MinTargetCapacity: a partial fulfilment is taken, the rest is the deficit."""
    market = "spot" if spec.node_type.preemptible else "on-demand"
    request = {
        "Type": "instant",
        "LaunchTemplateConfigs": [
            {"LaunchTemplateSpecification": {"LaunchTemplateId": template["LaunchTemplateId"], "Version": str(template["Version"])}, "Overrides": overrides}
        ],
        "TargetCapacitySpecification": {"TotalTargetCapacity": count, "DefaultTargetCapacityType": market},
        "TagSpecifications": [{"ResourceType": kind, "Tags": boto3_tag_list(tags)} for kind in TAGGED_AT_LAUNCH],
    }
    if spec.node_type.preemptible:
        request["SpotOptions"] = {"AllocationStrategy": "price-capacity-optimized", "InstanceInterruptionBehavior": "terminate"}
    else:
        request["OnDemandOptions"] = {"AllocationStrategy": "prioritized"}
    return request


def _fleet_capacity(ec2, request):
    """CreateFleet: (how many it launched, those of them EC2 describes, capacity errors), or STALE_TOKEN when the token belongs to an earlier
    generation (its instances are gone, or its parameters differ: ``IdempotentParameterMismatch``)."""
    try:
        answer = ec2.create_fleet(aws_retry=True, **request)
    except is_boto3_error_code("IdempotentParameterMismatch"):
        return STALE_TOKEN
    ids = [i for entry in answer.get("Instances") or () for i in entry.get("InstanceIds") or ()]
    # The answer has no states: read them. One not described yet is new (EC2 is eventually consistent).
    instances = refresh(ec2, ids)
    if any(i["State"]["Name"] not in LIVE_STATES for i in instances):
        return STALE_TOKEN  # an earlier generation's fleet: EC2 launched nothing now
    return len(ids), instances, answer.get("Errors") or []


def _capacity_error(error):
    """``m5.large in subnet-1: InsufficientInstanceCapacity`` from a fleet's Errors entry; its values came from AWS: only
    the override's type and subnet (ours) and a code of EC2's form are shown."""
    override = (error.get("LaunchTemplateAndOverrides") or {}).get("Overrides") or {}
    code = str(error.get("ErrorCode") or "")
    code = code if _ERROR_CODE.fullmatch(code) else "an error"
    return f"{override.get('InstanceType', 'a type')} in {override.get('SubnetId', 'a subnet')}: {code}"


def _fleet_fresh(ec2, request, token_for, first_link):
    """CreateFleet with the first token of the chain (from ``first_link``) that is not an earlier generation's.
    Returns (link, count, instances, errors)."""
    for link in range(first_link, TOKEN_CHAIN_LENGTH):
        answer = _fleet_capacity(ec2, dict(request, ClientToken=token_for(link)))
        if answer != STALE_TOKEN:
            return (link, *answer)
    raise ToilOperationError(
        f"CreateFleet answered {TOKEN_CHAIN_LENGTH} launch tokens of this intent with earlier generations' instances; "
        "nothing was launched. Run again with another target size, or after EC2 forgets the tokens."
    )


def scale_up(ec2, spec, context, members, shortfall, images, subnets):
    """Launch ``shortfall`` nodes with one instant EC2 Fleet over every allowed (instance type x subnet), which
    falls back across types and zones within the call. Returns (launched, deficit, capacity errors).

    A fleet that launched nothing still used its token; the pool's launch template remembers that token
    (``SPENT_TOKEN_TAG``) so the next run of the same intent tries the next one instead of being answered
    with the same failure until the intent changes.
    """
    tags = worker_tags(spec, context)
    template = pool_launch_template(ec2, spec.cluster, spec.name, template_data(context, user_data(spec.authorized_keys)), context.base_tags)
    overrides = fleet_overrides(spec, images, subnets, tags)
    target = len(members) + shortfall
    token_for = functools.partial(launch_token, spec, context, members, target, overrides)
    spent = template.get("SpentToken")
    first_link = next((link + 1 for link in range(TOKEN_CHAIN_LENGTH) if token_for(link) == spent), 0)
    link, count, launched, errors = _fleet_fresh(ec2, fleet_request(spec, template, overrides, shortfall, tags), token_for, first_link)
    if not count:
        remember_spent_token(ec2, template, token_for(link))
    return launched, max(shortfall - count, 0), [_capacity_error(e) for e in errors]


def removal_order(members, victims):
    """Who goes first on scale-down: the scaler's victims, then nodes not yet joined, then the newest."""
    victim_set = set(victims)

    def key(instance):
        joined = tag_dict(instance.get("Tags")).get(JOINED_TAG) == TRUE_TAG_VALUE
        return (instance["InstanceId"] not in victim_set, joined, -instance["LaunchTime"].timestamp(), instance["InstanceId"])

    return sorted(members, key=key)


def pool_summary(spec, instances, desired, deficit):
    states = [i["State"]["Name"] for i in instances]
    spot = sum(1 for i in instances if is_preemptible(i))
    return {
        "name": spec.name,
        "cluster": spec.cluster,
        "node_types": spec.node_type.spec,
        "desired": desired,
        "min_size": spec.pool.min_size,
        "max_size": spec.pool.max_size,
        "running": states.count("running"),
        "pending": states.count("pending"),
        "spot": spot,
        "on_demand": len(instances) - spot,
        "deficit": deficit,
        "instances": [instance_summary(i) for i in instances],
    }


def with_instance_types(ec2, spec, catalogue=None):
    """The spec with the instance types its requirements find (instance_requirements.py) among ``catalogue``, the
    region's types (read now when not given); a spec that lists its types is returned as it is."""
    node_type = spec.node_type
    if node_type.instance_types:
        return spec
    if catalogue is None:
        catalogue = read_catalogue(ec2)
    types = resolve_types(catalogue, node_type.requirements, node_type.preemptible, ec2.meta.region_name)
    return replace(spec, pool=replace(spec.pool, node_type=node_type.resolved(types)))


def pool_images(ec2, spec):
    """The AMI of each of the pool's instance types, looked up once per architecture (a pool by requirements has
    one, its ``arch``: no type needs describing)."""
    node_type = spec.node_type
    if node_type.requirements is not None:
        return dict.fromkeys(node_type.instance_types, resolve_image(ec2, spec.image_id, [node_type.requirements.arch]))
    by_architectures, images = {}, {}
    for instance_type in node_type.instance_types:
        architectures = tuple(instance_type_info(ec2, instance_type)["architectures"])
        if architectures not in by_architectures:
            by_architectures[architectures] = resolve_image(ec2, spec.image_id, list(architectures))
        images[instance_type] = by_architectures[architectures]
    return images


def desired_size(spec, state, members):
    """The size ``reconcile`` brings a pool of ``members`` live nodes to."""
    if state == "absent":
        return 0
    if spec.pool.static or spec.desired is not None:
        return spec.desired
    return min(max(members, spec.pool.min_size), spec.pool.max_size)


def reconcile(ec2, spec, state, check_mode, wait, wait_timeout):
    """Bring the pool to its size (or remove it). Returns (changed, pool summary, diff)."""
    check_zone_regions(spec.zones, ec2.meta.region_name)
    spec = with_instance_types(ec2, spec)
    context = cluster_context(ec2, spec.cluster)
    members = pool_members(ec2, spec.cluster, spec.name, context.leader["InstanceId"])
    member_ids = {i["InstanceId"] for i in members}
    strangers = [v for v in spec.victims if v not in member_ids]
    if strangers:
        raise ToilInputError(f"terminate_instance_ids {', '.join(strangers)} are not live nodes of pool {spec.name}: nothing was changed.")
    desired = desired_size(spec, state, len(members))
    before = {"size": len(members), "instances": sorted(member_ids)}
    deficit, launched, errors = 0, [], []
    if desired > len(members):
        shortfall = desired - len(members)
        images = pool_images(ec2, spec)
        subnets = pool_subnets(ec2, spec, context)
        if check_mode:
            remaining, changed = members, True
        else:
            launched, deficit, errors = scale_up(ec2, spec, context, members, shortfall, images, subnets)
            if launched and wait:
                wait_for(ec2, "instance_running", [i["InstanceId"] for i in launched], wait_timeout)
            remaining, changed = members + launched, bool(launched)
    elif desired < len(members):
        victims = removal_order(members, spec.victims)[: len(members) - desired]
        if not check_mode:
            terminate(ec2, [v["InstanceId"] for v in victims], wait, wait_timeout)
        gone = {v["InstanceId"] for v in victims}
        remaining = [i for i in members if i["InstanceId"] not in gone]
        changed = True
    else:
        remaining = members
        changed = False
    if state == "absent":  # the pool's launch template goes with it (its nodes no longer need it)
        changed = delete_pool_template(ec2, spec.cluster, spec.name, check_mode) or changed
    if not check_mode and (launched or desired < len(members)):
        remaining = [i for i in refresh(ec2, [i["InstanceId"] for i in remaining]) if i["State"]["Name"] in LIVE_STATES]
    summary = pool_summary(spec, remaining, desired, deficit)
    if errors:
        summary["capacity_errors"] = errors
    after = {"size": desired if check_mode else len(remaining), "instances": sorted(i["InstanceId"] for i in remaining)}
    return changed, summary, {"before": before, "after": after}
