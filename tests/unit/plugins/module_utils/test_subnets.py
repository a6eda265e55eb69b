# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The subnets a pool may use (subnets.py): Toil's like-the-leader's rule, the zone order, the zone restriction.
tests/integration/test_toil_nodepool_zones.py shows the same against the embedded endpoint."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import ClusterContext, pool_subnets, validate_pool_spec
from ansible_collections.toil.cluster.plugins.module_utils.subnets import (
    check_zone_regions,
    like_subnets,
    order_subnets,
    rank_spot_zones,
    restrict_to_zones,
    validate_zones,
)

VPC = "vpc-11111111"


def _subnet(subnet_id, zone, default=False, state="available", vpc=VPC):
    return {"SubnetId": subnet_id, "AvailabilityZone": zone, "DefaultForAz": default, "State": state, "VpcId": vpc}


class SubnetEC2:
    """DescribeSubnets and DescribeNetworkAcls as EC2 answers them (filtered by vpc-id): every subnet of a VPC is
    associated with exactly one network ACL of that VPC (the VPC's default one unless another is associated; Amazon
    VPC User Guide, "Control subnet traffic with network access control lists"); an ACL lists its subnets under
    Associations."""

    def __init__(self, subnets, acl_of, history=()):
        self.subnets, self.acl_of, self.history = subnets, acl_of, list(history)
        self.meta = SimpleNamespace(region_name="us-west-2")

    @staticmethod
    def _vpc(filters):
        return next(f["Values"][0] for f in filters if f["Name"] == "vpc-id")

    def describe_subnets(self, Filters=(), SubnetIds=(), aws_retry=False):
        if SubnetIds:
            return {"Subnets": [s for s in self.subnets if s["SubnetId"] in SubnetIds]}
        return {"Subnets": [s for s in self.subnets if s["VpcId"] == self._vpc(Filters)]}

    def describe_network_acls(self, Filters=(), aws_retry=False):
        vpc = self._vpc(Filters)
        acls = {}
        for subnet in self.subnets:
            if subnet["VpcId"] == vpc:
                acl = self.acl_of[subnet["SubnetId"]]
                acls.setdefault(acl, []).append({"NetworkAclId": acl, "SubnetId": subnet["SubnetId"]})
        return {"NetworkAcls": [{"NetworkAclId": acl, "VpcId": vpc, "Associations": a} for acl, a in acls.items()]}

    def get_paginator(self, _operation):
        return SimpleNamespace(paginate=lambda **_kwargs: [{"SpotPriceHistory": self.history}])


# The leader's subnet (non-default, ACL a) in 2a; like it: one more in 2a, one in 2b, one in 2c.
# Unlike it: another ACL (2b), default-for-zone (2d), pending (2c), another VPC (2a).
SUBNETS = [
    _subnet("subnet-a2", "us-west-2a"),
    _subnet("subnet-leader", "us-west-2a"),
    _subnet("subnet-c", "us-west-2c"),
    _subnet("subnet-b", "us-west-2b"),
    _subnet("subnet-b-other-acl", "us-west-2b"),
    _subnet("subnet-d-default", "us-west-2d", default=True),
    _subnet("subnet-c-pending", "us-west-2c", state="pending"),
    _subnet("subnet-elsewhere", "us-west-2a", vpc="vpc-22222222"),
]
ACL_OF = {s["SubnetId"]: "acl-a" for s in SUBNETS} | {"subnet-b-other-acl": "acl-b", "subnet-elsewhere": "acl-x"}
LIKE = ["subnet-a2", "subnet-leader", "subnet-c", "subnet-b"]


def test_like_subnets_share_the_leaders_vpc_default_ness_and_acls_in_any_zone():
    assert [s["SubnetId"] for s in like_subnets(SubnetEC2(SUBNETS, ACL_OF), "subnet-leader", VPC)] == LIKE


def test_a_default_leader_subnet_is_like_only_default_ones():
    subnets = [_subnet("subnet-1", "us-west-2a", default=True), _subnet("subnet-2", "us-west-2b", default=True), _subnet("subnet-3", "us-west-2b")]
    found = like_subnets(SubnetEC2(subnets, dict.fromkeys(["subnet-1", "subnet-2", "subnet-3"], "acl-a")), "subnet-1", VPC)
    assert [s["SubnetId"] for s in found] == ["subnet-1", "subnet-2"]


def test_a_leader_subnet_outside_the_vpc_is_a_clear_error():
    with pytest.raises(ToilInputError, match="subnet-elsewhere is not in the cluster's VPC vpc-11111111"):
        like_subnets(SubnetEC2(SUBNETS, ACL_OF), "subnet-elsewhere", VPC)


def test_order_puts_the_zones_in_order_then_the_others_by_name_and_the_leaders_subnet_first_in_its_zone():
    like = [s for s in SUBNETS if s["SubnetId"] in LIKE]
    assert order_subnets(like, ["us-west-2a"], "subnet-leader") == ["subnet-leader", "subnet-a2", "subnet-b", "subnet-c"]
    assert order_subnets(like, ["us-west-2c", "us-west-2b", "us-west-2a"], "subnet-leader") == ["subnet-c", "subnet-b", "subnet-leader", "subnet-a2"]
    assert order_subnets(list(reversed(like)), ["us-west-2a"], "subnet-leader") == order_subnets(like, ["us-west-2a"], "subnet-leader")


def _price(zone, price, day):
    return {"AvailabilityZone": zone, "SpotPrice": str(price), "Timestamp": f"2026-12-0{day}T00:00:00+00:00"}


# Newest first, as EC2 answers DescribeSpotPriceHistory.
HISTORY = [
    _price("us-west-2a", 0.30, 3),  # latest over the bid
    _price("us-west-2a", 0.10, 2),
    _price("us-west-2b", 0.10, 3),  # under, unsteady
    _price("us-west-2b", 0.05, 2),
    _price("us-west-2b", 0.20, 1),
    _price("us-west-2c", 0.11, 3),  # under, steadiest
    _price("us-west-2c", 0.12, 2),
]


def test_spot_zones_under_the_bid_come_first_steadiest_first_then_the_rest():
    # us-west-2d has no history: at the bid, so after the zones under it (deviation 0 before 2a's).
    assert rank_spot_zones(["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"], 0.15, HISTORY) == ["us-west-2c", "us-west-2b", "us-west-2d", "us-west-2a"]
    assert rank_spot_zones(["us-west-2a", "us-west-2b"], 0.01, HISTORY) == ["us-west-2b", "us-west-2a"]  # all over: steadiest first


SPOT_CASES = {
    "under_and_over": {"zones": ["us-west-2a", "us-west-2b", "us-west-2c"], "bid": 0.15, "history": HISTORY},
    "all_over": {"zones": ["us-west-2a", "us-west-2b", "us-west-2c"], "bid": 0.01, "history": HISTORY},
    "toils_doctest": {
        "zones": ["us-west-2a", "us-west-2b"],
        "bid": 0.15,
        "history": [_price("us-west-2a", 0.1, 2), _price("us-west-2a", 0.7, 1), _price("us-west-2b", 0.1, 2), _price("us-west-2b", 0.6, 1)],
    },
}


@pytest.mark.toil("choose_spot_zone", param="case")
@pytest.mark.parametrize("case", list(SPOT_CASES.values()), ids=list(SPOT_CASES))
def test_the_first_spot_zone_is_toils_choice(toil, case):
    assert rank_spot_zones(case["zones"], case["bid"], case["history"])[0] == toil("choose_spot_zone", case)["value"]


@pytest.mark.parametrize("zones", ["us-west-2a", ["us-west-2"], ["us-west-2a\n"], [None], {"us-west-2a": 1}])
def test_zones_must_be_a_list_of_zone_names(zones):
    with pytest.raises(ToilInputError, match="zones"):
        validate_zones(zones)


def test_zones_keep_their_order_without_repeats():
    assert validate_zones(["us-west-2b", "us-west-2a", "us-west-2b"]) == ("us-west-2b", "us-west-2a")
    assert validate_zones(None) == ()


def test_zones_of_another_region_are_refused():
    check_zone_regions(("us-west-2a",), "us-west-2")
    with pytest.raises(ToilInputError, match="us-east-1a not in the cluster's region us-west-2"):
        check_zone_regions(("us-west-2a", "us-east-1a"), "us-west-2")


def test_restricting_to_a_zone_without_a_like_subnet_names_the_zones_that_have_some():
    like = [s for s in SUBNETS if s["SubnetId"] in LIKE]
    assert [s["SubnetId"] for s in restrict_to_zones(like, ("us-west-2b", "us-west-2c"), VPC)] == ["subnet-c", "subnet-b"]
    assert restrict_to_zones(like, (), VPC) == like
    with pytest.raises(ToilInputError, match="no subnet like the leader's .* in us-west-2d; it has some in us-west-2a, us-west-2b, us-west-2c"):
        restrict_to_zones(like, ("us-west-2a", "us-west-2d"), VPC)


def _spec(node_types, **options):
    return validate_pool_spec({"cluster": "c", "node_types": node_types, "count": 1, **options})


CONTEXT = ClusterContext(
    leader={"InstanceId": "i-0123456789abcdef0", "SubnetId": "subnet-leader", "Placement": {"AvailabilityZone": "us-west-2a"}},
    group_id="sg-01234567",
    vpc_id=VPC,
    profile_arn=None,
    key_name=None,
    base_tags={},
)


def test_an_on_demand_pool_tries_the_leaders_zone_then_the_others():
    assert pool_subnets(SubnetEC2(SUBNETS, ACL_OF), _spec("m5.large"), CONTEXT) == ["subnet-leader", "subnet-a2", "subnet-b", "subnet-c"]


def test_a_spot_pool_tries_the_zones_by_toils_spot_rule():
    ec2 = SubnetEC2(SUBNETS, ACL_OF, HISTORY)
    assert pool_subnets(ec2, _spec("m5.large:0.15"), CONTEXT) == ["subnet-c", "subnet-b", "subnet-leader", "subnet-a2"]
    assert pool_subnets(ec2, _spec("m5.large:0.15", zones=["us-west-2a", "us-west-2b"]), CONTEXT) == ["subnet-b", "subnet-leader", "subnet-a2"]


def test_subnets_override_zones_in_the_order_given():
    spec = _spec("m5.large", zones=["us-west-2d"], subnets=["subnet-b-other-acl", "subnet-a2"])
    assert pool_subnets(SubnetEC2(SUBNETS, ACL_OF), spec, CONTEXT) == ["subnet-b-other-acl", "subnet-a2"]
