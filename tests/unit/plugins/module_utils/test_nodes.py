"""The one membership rule and the leader rule (plugins/module_utils/nodes.py), on botocore's instances and the
inventory's records alike."""

from __future__ import annotations

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.nodes import find_leader, is_member, split_members, stray_reason, stray_warnings


def instance(instance_id, groups=("c1",), minute=0, **tags):
    return {
        "InstanceId": instance_id,
        "LaunchTime": f"2025-01-01T00:{minute:02d}:00+00:00",
        "SecurityGroups": [{"GroupName": g, "GroupId": f"sg-{g}"} for g in groups],
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }


@pytest.mark.parametrize(
    ("node", "member", "reason"),
    [
        (instance("i-1", clusterName="c1"), True, None),
        (instance("i-2"), False, "without a clusterName tag"),
        (instance("i-3", clusterName="c2"), False, "in c1's security group but tagged clusterName=c2"),
        (instance("i-4", groups=("default",), clusterName="c1"), False, "tagged clusterName=c1 outside c1's security group"),
        (instance("i-5", groups=("default",), Name="c1"), False, "neither"),
        (instance("i-6", groups=("c1", "extra"), clusterName="c1"), True, None),
    ],
)
def test_member_only_in_the_group_and_tagged(node, member, reason):
    assert is_member(node, "c1") is member
    assert (stray_reason(node, "c1") is None) is member
    if reason:
        assert reason in stray_reason(node, "c1")
    record = dict(node, SecurityGroups=[g["GroupName"] for g in node["SecurityGroups"]])  # the inventory's form
    assert is_member(record, "c1") is member


def test_split_and_warn_keep_order():
    nodes = [instance("i-1", clusterName="c1"), instance("i-2"), instance("i-3", clusterName="c1")]
    members, strays = split_members(nodes, "c1")
    assert [i["InstanceId"] for i in members] == ["i-1", "i-3"] and [i["InstanceId"] for i in strays] == ["i-2"]
    (line,) = stray_warnings("c1", strays)
    assert line.startswith("Instance i-2 was left out of cluster c1") and "not configured, joined, counted or made leader" in line


def test_the_leader_is_only_ever_the_tagged_one():
    worker = instance("i-1", minute=0, clusterName="c1", ToilNodeType="worker")
    untagged = instance("i-2", minute=1, clusterName="c1")
    leader = instance("i-3", minute=5, clusterName="c1", ToilNodeType="leader")
    assert find_leader([worker, untagged, leader]) is leader  # younger, but tagged
    assert find_leader([worker, untagged]) is None  # never the oldest, never a worker
    assert find_leader([]) is None
    second = instance("i-4", minute=9, clusterName="c1", ToilNodeType="leader")
    assert find_leader([second, leader]) is leader  # several tagged: the oldest
