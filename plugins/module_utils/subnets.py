# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Where a pool's nodes may go: the subnets like the leader's, in every zone (Toil's rule), in the order to try them.

Toil's AWSProvisioner._get_good_subnets_like: the subnets of the leader's VPC that are ``available``, have the
leader's subnet's DefaultForAz and exactly its network ACLs (DescribeNetworkAcls, association.subnet-id), in any
zone. Toil checks no free addresses, nor does this. Toil's addNodes then picks one zone per launch: for spot
the zone ranked first by choose_spot_zone (price under the bid, then the steadiest), for on-demand the leader's;
here every like subnet is tried in that order, so a zone without capacity falls over to the next.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.zones import zone_to_region

SPOT_HISTORY_DAYS = 7


def validate_zones(zones):
    """``zones`` as a tuple, each spelled like an availability zone (``us-west-2a``), without repeats."""
    if zones is None:
        return ()
    if isinstance(zones, str) or not isinstance(zones, (list, tuple)):
        raise ToilInputError(f"zones must be a list of availability zones (like [us-west-2a, us-west-2b]), got {zones!r}.")
    for zone in zones:
        try:
            zone_to_region(zone)
        except ToilInputError as error:
            raise ToilInputError(f"zones: {error}") from None
    return tuple(dict.fromkeys(zones))


def _acls_by_subnet(ec2, vpc_id):
    """Each subnet of the VPC -> the set of network ACL IDs associated with it (Toil's _get_subnet_acls)."""
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}], aws_retry=True)["NetworkAcls"]
    by_subnet = {}
    for acl in acls:
        for association in acl.get("Associations") or ():
            by_subnet.setdefault(association.get("SubnetId"), set()).add(acl["NetworkAclId"])
    return by_subnet


def like_subnets(ec2, leader_subnet_id, vpc_id):
    """The available subnets of ``vpc_id`` with the leader's subnet's DefaultForAz and network ACLs, any zone."""
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}], aws_retry=True)["Subnets"]
    leader = next((s for s in subnets if s["SubnetId"] == leader_subnet_id), None)
    if leader is None:
        raise ToilInputError(f"The leader's subnet {leader_subnet_id} is not in the cluster's VPC {vpc_id}.")
    acls = _acls_by_subnet(ec2, vpc_id)
    wanted = (bool(leader.get("DefaultForAz")), acls.get(leader_subnet_id, set()))
    return [s for s in subnets if s.get("State") == "available" and (bool(s.get("DefaultForAz")), acls.get(s["SubnetId"], set())) == wanted]


def rank_spot_zones(zones, bid, history):
    """``zones`` in the order of Toil's choose_spot_zone: those whose latest price is under the bid, then the
    rest; each part steadiest (smallest deviation) first, then by name. A zone without history counts as at the
    bid with no deviation, as in Toil."""
    ranked = []
    for zone in zones:
        points = [p for p in history if p["AvailabilityZone"] == zone]
        if points:
            latest = float(max(points, key=lambda p: p["Timestamp"])["SpotPrice"])
            prices = [float(p["SpotPrice"]) for p in points]
            deviation = statistics.stdev(prices) if len(prices) > 1 else 0.0  # Toil's stdev fails on one point
        else:
            latest, deviation = bid, 0.0
        ranked.append((not latest < bid, deviation, zone))
    return [zone for _over, _deviation, zone in sorted(ranked)]


def spot_price_history(ec2, instance_type, now=None):
    """The last SPOT_HISTORY_DAYS of Linux spot prices of ``instance_type``, as Toil's _get_spot_history reads them."""
    now = now or datetime.now(UTC)
    history = []
    paginator = ec2.get_paginator("describe_spot_price_history")
    for page in paginator.paginate(
        InstanceTypes=[instance_type], ProductDescriptions=["Linux/UNIX"], StartTime=now - timedelta(days=SPOT_HISTORY_DAYS), EndTime=now
    ):
        history.extend(page["SpotPriceHistory"])
    return history


def order_subnets(subnets, zone_order, leader_subnet_id):
    """Subnet IDs by zone in ``zone_order`` (other zones after, by name); in a zone, the leader's subnet first,
    as Toil's addNodes prefers it, then by ID."""
    rank = {zone: index for index, zone in enumerate(zone_order)}
    return [
        s["SubnetId"]
        for s in sorted(
            subnets,
            key=lambda s: (rank.get(s["AvailabilityZone"], len(rank)), s["AvailabilityZone"], s["SubnetId"] != leader_subnet_id, s["SubnetId"]),
        )
    ]


def check_zone_regions(zones, region):
    """A clear error when one of ``zones`` (spelled like zones: validate_zones) is not in ``region``."""
    foreign = [z for z in zones if zone_to_region(z) != region]
    if foreign:
        raise ToilInputError(f"zones: {', '.join(foreign)} not in the cluster's region {region}. Nothing was changed.")


def restrict_to_zones(subnets, zones, vpc_id):
    """The ``subnets`` in ``zones`` (all of them when none are given); a zone without one is a clear error."""
    if not zones:
        return subnets
    offered = sorted({s["AvailabilityZone"] for s in subnets})
    missing = [z for z in zones if z not in offered]
    if missing:
        raise ToilInputError(
            f"zones: the cluster's VPC {vpc_id} has no subnet like the leader's (same default-for-zone and network ACLs) in "
            f"{', '.join(missing)}; it has some in {', '.join(offered) or 'no zone'}. Nothing was changed."
        )
    return [s for s in subnets if s["AvailabilityZone"] in zones]
