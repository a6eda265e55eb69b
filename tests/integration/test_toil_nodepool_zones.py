"""Where a pool's nodes go, against the embedded endpoint: every zone's subnet like the leader's (Toil's rule: same
VPC, DefaultForAz and network ACLs), the fall-over to another zone, ``zones`` restricting it, ``subnets``
overriding it, bad zones refused before any change.

The leader is in the default subnet of us-west-2a (the default VPC has one in each of us-west-2a to 2d). Made unlike
it: 2d's default subnet, given a network ACL of its own, and a non-default subnet in 2b. Capacity errors are
injected per subnet through the recording proxy (aws_calls).
"""

from __future__ import annotations

import pytest

from harness.playbooks import assert_bad_inputs_fail
from harness.toil_scaler_runs import by_pool, run_scaler

CLUSTER = "tnz"
ZONE = "us-west-2a"
LIKE_ZONES = ["us-west-2a", "us-west-2b", "us-west-2c"]


@pytest.fixture
def network(aws):
    """{zone: default subnet} of the like zones, plus the unlike ``other_acl`` (2d) and ``non_default`` (2b)
    subnets; the ACL and the subnet are removed at teardown (the leak check lists both kinds)."""
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    defaults = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]}
    assert sorted(defaults) == [*LIKE_ZONES, "us-west-2d"]
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    aws.add_cleanup(ec2.delete_network_acl, NetworkAclId=acl)
    default_acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]
    association = next(a["NetworkAclAssociationId"] for a in default_acl["Associations"] if a["SubnetId"] == defaults["us-west-2d"])
    moved = ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl)["NewAssociationId"]
    aws.add_cleanup(ec2.replace_network_acl_association, AssociationId=moved, NetworkAclId=default_acl["NetworkAclId"])
    non_default = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.200.0/24", AvailabilityZone="us-west-2b")["Subnet"]["SubnetId"]
    aws.add_cleanup(ec2.delete_subnet, SubnetId=non_default)
    return {**{z: defaults[z] for z in LIKE_ZONES}, "other_acl": defaults["us-west-2d"], "non_default": non_default}


@pytest.fixture
def cluster(aws, network, run_playbook, key_pair):
    """A leader in us-west-2a's default subnet; the cluster (workers included) destroyed at teardown."""
    launch = {"name": CLUSTER, "zone": ZONE, "leader_node_type": "t3.large", "key_pair_name": key_pair}
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "cluster", "toil.cluster.toil_cluster": launch}]}
    leader = run_playbook(play).task("cluster")["leader"]
    yield leader
    run_playbook({**play, "tasks": [{"name": "gone", "toil.cluster.toil_cluster": {"name": CLUSTER, "zone": ZONE, "state": "absent"}}]})


@pytest.fixture
def pool(run_playbook, aws_calls):
    """pool(**options) -> the toil_nodepool task's result, run through the recording proxy."""

    def run(expect_rc=0, **options):
        options = {"cluster": CLUSTER, "zone": ZONE, "node_types": "m5.large", "wait_timeout": 60, **options}
        play = {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "pool", "toil.cluster.toil_nodepool": options}]}
        return run_playbook(play, expect_rc=expect_rc, env=aws_calls.env).task("pool")

    return run


def _subnets_of(aws, result):
    ids = [i["instance_id"] for i in result["pool"]["instances"]]
    reservations = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return sorted(i["SubnetId"] for r in reservations for i in r["Instances"])


def _launch_subnets(aws_calls):
    """The subnets of each CreateFleet's overrides, in the order of their priorities (one instance type here)."""
    subnets = []
    for _service, action, params in aws_calls.requests:
        if action == "CreateFleet":
            count = sum(1 for key in params if key.startswith("LaunchTemplateConfigs.1.Overrides.") and key.endswith(".SubnetId"))
            overrides = [
                (float(params[f"LaunchTemplateConfigs.1.Overrides.{n}.Priority"]), params[f"LaunchTemplateConfigs.1.Overrides.{n}.SubnetId"])
                for n in range(1, count + 1)
            ]
            subnets.extend(subnet for _priority, subnet in sorted(overrides))
    return subnets


def _no_capacity_in(aws_calls, subnets):
    """From now on, m5.large has no capacity in each of ``subnets``: the instant fleet reports those pools in its Errors
    and launches from the next one (harness.proxy ``no_capacity``)."""
    aws_calls.capacity_back()
    for subnet in subnets:
        aws_calls.no_capacity("m5.large", subnet)


def test_an_unrestricted_pool_tries_only_like_subnets_in_every_zone_and_falls_over_to_the_next(aws, network, cluster, pool, aws_calls):
    assert cluster["zone"] == ZONE
    _no_capacity_in(aws_calls, [network[z] for z in LIKE_ZONES])
    short = pool(count=2)
    # One fleet over the like subnets, the leader's zone first, then the others by name; never the subnet with
    # another network ACL nor the non-default one.
    assert _launch_subnets(aws_calls) == [network[z] for z in LIKE_ZONES]
    assert short["pool"]["deficit"] == 2 and short["changed"] is False
    aws_calls.clear()
    _no_capacity_in(aws_calls, [network["us-west-2a"]])
    placed = pool(count=2)
    assert placed["pool"]["deficit"] == 0 and placed["pool"]["running"] == 2
    assert _subnets_of(aws, placed) == [network["us-west-2b"]] * 2
    assert {i["zone"] for i in placed["pool"]["instances"]} == {"us-west-2b"}


def test_zones_restrict_the_like_subnets_and_subnets_override_them(aws, network, cluster, pool, aws_calls, run_playbook, tmp_path):
    in_c = pool(name="in-c", count=1, zones=["us-west-2c"])
    assert _subnets_of(aws, in_c) == [network["us-west-2c"]]
    aws_calls.clear()
    _no_capacity_in(aws_calls, [network["us-west-2b"]])
    b_then_c = pool(name="b-then-c", count=1, zones=["us-west-2c", "us-west-2b"])  # the order of zones is not theirs
    assert _launch_subnets(aws_calls) == [network["us-west-2b"], network["us-west-2c"]]
    assert _subnets_of(aws, b_then_c) == [network["us-west-2c"]]
    aws_calls.capacity_back()
    given = pool(name="given", count=1, zones=["us-west-2c"], subnets=[network["non_default"]])
    assert _subnets_of(aws, given) == [network["non_default"]]
    # The scaler's pools take zones too.
    scaled = [{"name": "scaled", "node_types": "m5.large", "min_size": 1, "max_size": 1, "zones": ["us-west-2b"]}]
    cycle = run_scaler(run_playbook, tmp_path, env=aws_calls.env, cluster=CLUSTER, pools=scaled, demand={"pods": []}, wait_timeout=60)
    assert _subnets_of(aws, {"pool": by_pool(cycle)["scaled"]}) == [network["us-west-2b"]]


ZONE_BAD_INPUTS = [
    ({"zones": ["us-west-2d"]}, "has no subnet like the leader's (same default-for-zone and network ACLs) in us-west-2d"),
    ({"zones": ["us-west-2a", "us-west-2e"]}, "in us-west-2e; it has some in us-west-2a, us-west-2b, us-west-2c"),
    ({"zones": ["us-east-1a"]}, "zones: us-east-1a not in the cluster's region us-west-2"),
    ({"zones": ["us-west-2"]}, "zones: Can't extract a region from availability zone 'us-west-2'"),
    ({"zones": ["us-west-2a\n"]}, "zones: Can't extract a region"),
]


def test_bad_zones_fail_before_any_change(network, cluster, run_playbook, aws_calls):
    cases = [({"cluster": CLUSTER, "zone": ZONE, "node_types": "m5.large", "count": 1, **options}, message) for options, message in ZONE_BAD_INPUTS]
    assert_bad_inputs_fail(run_playbook, "toil_nodepool", cases, aws_calls)
    foreign = {"node_types": "m5.large", "min_size": 1, "max_size": 1, "zones": ["eu-west-1a"]}
    scaler = {"cluster": CLUSTER, "zone": ZONE, "demand": {"pods": []}, "pools": [foreign]}
    assert_bad_inputs_fail(run_playbook, "toil_scaler", [(scaler, "zones: eu-west-1a not in the cluster's region us-west-2")], aws_calls)
