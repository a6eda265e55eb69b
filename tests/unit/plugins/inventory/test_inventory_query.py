"""How the toil_ec2 inventory asks EC2 and reads its answers (module_utils/inventory.py), without AWS.

The EC2 client is a real boto3 client whose HTTP layer is a function (fake_ec2.FakeEC2), so botocore's
signing, standard-mode retries, events and parser all run as against EC2. The direct XML reader is
checked against botocore's own parser on the same pages.
"""

from __future__ import annotations

import botocore.session
import pytest
from botocore.parsers import create_parser
from fake_ec2 import FakeEC2, error_xml, filters_of, instance_xml, page_xml, security_groups_xml

from ansible_collections.toil.cluster.plugins.module_utils.inventory import InventoryConfigError, check_hostnames, check_regions, record_from_boto3
from ansible_collections.toil.cluster.plugins.plugin_utils.instance_listing import (
    FILTER_VALUES_MAX,
    MAX_RESULTS,
    InventoryQueryError,
    RawPages,
    describe_instances,
    parse_describe_instances,
    plan_queries,
    query_regions,
)

TOIL = "Toil appliance security group"


def botocore_records(body):
    """What botocore's own parser makes of a page, as inventory records."""
    model = botocore.session.get_session().get_service_model("ec2").operation_model("DescribeInstances")
    parsed = create_parser("ec2").parse({"body": body, "headers": {}, "status_code": 200}, model.output_shape)
    records = [record_from_boto3(i) for reservation in parsed["Reservations"] for i in reservation["Instances"]]
    return records, parsed.get("NextToken")


SAMPLE = [
    [
        instance_xml(
            "i-0000000000000000a",
            groups=["c1"],
            tags={"Name": "c1", "clusterName": "c1", "ToilNodeType": "leader", "Owner": "me & you"},
            public_ip="54.1.2.3",
            private_dns="ip-10-0-0-1.us-west-2.compute.internal",
            http_tokens="required",
            hop_limit=2,
        ),
        instance_xml("i-0000000000000000b", groups=["c1", "extra"], tags={"ToilNodeType": "worker", "toil.cluster/pool": "p"}, lifecycle="spot"),
    ],
    [instance_xml("i-0000000000000000c", groups=[], tags=None, private_ip=None, state="stopped", spot_request="sir-1", launch_time="2025-01-02T03:04:05Z")],
    [],
]


# ---------------------------------------------------------------------- reading pages
@pytest.mark.parametrize("namespace", [True, False])
def test_direct_reader_agrees_with_botocore(namespace):
    body = page_xml(SAMPLE, next_token="tok-2", namespace=namespace)
    assert parse_describe_instances(body) == botocore_records(body)


def test_reader_takes_instance_fields_not_the_network_interfaces():
    body = page_xml([[instance_xml("i-1", groups=["c1"], tags={"k": "v"}, private_ip="10.0.0.5", eni_tags={"eni": "x"})]])
    (record,), token = parse_describe_instances(body)
    assert token is None
    assert record["SecurityGroups"] == ["c1"]
    assert record["Tags"] == [{"Key": "k", "Value": "v"}]
    assert record["PrivateIpAddress"] == "10.0.0.5"
    assert record["HttpTokens"] == "optional" and record["HttpPutResponseHopLimit"] == 1
    assert record["LaunchTime"] == "2025-01-01T00:00:00.000+00:00"


def test_records_have_one_sortable_time_form():
    (a, b, c), _token = parse_describe_instances(page_xml(SAMPLE))
    assert c["LaunchTime"] == "2025-01-02T03:04:05.000+00:00"
    assert sorted([c["LaunchTime"], a["LaunchTime"]]) == [a["LaunchTime"], c["LaunchTime"]]
    assert "PrivateIpAddress" not in c and c["State"] == "stopped" and c["SpotInstanceRequestId"] == "sir-1"


# ---------------------------------------------------------------------- paging, retries, failures
def paged_answer(pages, groups=(("c1", TOIL), ("default", "default VPC security group"))):
    """Answer DescribeInstances with ``pages`` in order (by NextToken), DescribeSecurityGroups with ``groups``."""

    def answer(action, params):
        if action == "DescribeSecurityGroups":
            return 200, security_groups_xml(groups)
        index = int(params.get("NextToken", "0"))
        token = str(index + 1) if index + 1 < len(pages) else None
        return 200, page_xml(pages[index], next_token=token)

    return answer


def test_every_page_is_read_with_the_largest_page_size():
    pages = [[[instance_xml(f"i-{p}{n}", groups=["c1"])] for n in range(3)] for p in range(3)]
    ec2 = FakeEC2(paged_answer(pages))
    raw = RawPages()
    raw.install(ec2.client)
    records = describe_instances(ec2.client, [{"Name": "instance.group-name", "Values": ["c1"]}], raw)
    assert [r["InstanceId"] for r in records] == [f"i-{p}{n}" for p in range(3) for n in range(3)]
    assert [r.get("NextToken") for r in ec2.requests] == [None, "1", "2"]
    assert {r["MaxResults"] for r in ec2.requests} == {str(MAX_RESULTS)}


def test_botocore_answer_is_used_when_the_raw_page_is_not_seen():
    pages = [[[instance_xml("i-1", groups=["c1"], tags={"a": "b"})]], [[instance_xml("i-2", groups=["c1"])]]]
    with_hook = FakeEC2(paged_answer(pages))
    raw = RawPages()
    raw.install(with_hook.client)
    without_hook = FakeEC2(paged_answer(pages))
    flt = [{"Name": "instance.group-name", "Values": ["c1"]}]
    assert describe_instances(with_hook.client, flt, raw) == describe_instances(without_hook.client, flt) != []


def test_throttling_is_retried_in_standard_mode():
    calls = []

    def answer(action, params):
        calls.append(action)
        if len(calls) == 1:
            return 503, error_xml("RequestLimitExceeded")
        return 200, page_xml([[instance_xml("i-1", groups=["c1"])]])

    ec2 = FakeEC2(answer)
    assert [r["InstanceId"] for r in describe_instances(ec2.client, [])] == ["i-1"]
    assert calls == ["DescribeInstances", "DescribeInstances"]


def test_a_failing_region_fails_the_whole_query():
    good = FakeEC2(paged_answer([[[instance_xml("i-1", groups=["c1"], tags={"ToilNodeType": "leader"})]]]))

    def forbidden(action, params):
        if action == "DescribeSecurityGroups":
            return 200, security_groups_xml([("c2", TOIL)])
        return 403, error_xml("UnauthorizedOperation", "You are not authorized to perform this operation.")

    bad = FakeEC2(forbidden, region="eu-west-1")
    with pytest.raises(InventoryQueryError) as failure:
        query_regions({"us-west-2": good.client, "eu-west-1": bad.client})
    assert failure.value.region == "eu-west-1" and failure.value.action == "DescribeInstances"
    assert "UnauthorizedOperation" in str(failure.value)


def test_a_page_failing_after_the_retries_fails_the_listing():
    def answer(action, params):
        if params.get("NextToken"):
            return 503, error_xml("RequestLimitExceeded")
        return 200, page_xml([[instance_xml("i-1", groups=["c1"])]], next_token="1")

    ec2 = FakeEC2(answer, max_attempts=2)
    with pytest.raises(Exception, match="RequestLimitExceeded"):
        describe_instances(ec2.client, [])


def test_regions_in_parallel_one_listing_each():
    node = instance_xml("i-1", groups=["c1"], tags={"ToilNodeType": "worker", "clusterName": "c1"})

    def answer(action, params):
        if action == "DescribeSecurityGroups":
            return 200, security_groups_xml([("c1", TOIL), ("default", "d")])
        return 200, page_xml([[node]])

    west, east = FakeEC2(answer), FakeEC2(answer, region="us-east-1")
    result = query_regions({"us-west-2": west.client, "us-east-1": east.client})
    assert result["us-west-2"]["cluster_groups"] == result["us-east-1"]["cluster_groups"] == ["c1"]
    assert [r["InstanceId"] for r in result["us-west-2"]["instances"]] == ["i-1"]
    for ec2 in (west, east):
        assert ec2.actions() == ["DescribeSecurityGroups", "DescribeInstances", "DescribeInstances"]  # by group, by tag


def test_named_clusters_need_no_security_group_listing():
    ec2 = FakeEC2(paged_answer([[[instance_xml("i-1", groups=["c1"])]]]))
    result = query_regions({"us-west-2": ec2.client}, clusters=["c1", "c9"])
    assert ec2.actions() == ["DescribeInstances", "DescribeInstances"]
    assert result["us-west-2"]["cluster_groups"] == ["c1", "c9"]
    by_group, by_tag = (filters_of(r) for r in ec2.requests)
    assert by_group["instance.group-name"] == by_tag["tag:clusterName"] == ["c1", "c9"]


def test_a_node_listed_twice_is_reported_once():
    node = instance_xml("i-1", groups=["c1"])

    def answer(action, params):
        return 200, page_xml([[node]])  # every chunk's listing answers the same node

    ec2 = FakeEC2(answer)
    clusters = [f"c{i}" for i in range(FILTER_VALUES_MAX + 5)]
    result = query_regions({"us-west-2": ec2.client}, clusters=clusters)
    assert ec2.actions() == ["DescribeInstances"] * 4  # two chunks, by group and by tag
    assert [r["InstanceId"] for r in result["us-west-2"]["instances"]] == ["i-1"]


# ---------------------------------------------------------------------- what is asked
def test_plan_without_clusters_uses_toils_groups_and_group_filter_first():
    groups = [("c1", TOIL), ("c2", TOIL), ("default", "default VPC security group"), ("web", "x")]
    cluster_groups, (members, claimants) = plan_queries(groups)
    assert cluster_groups == ["c1", "c2"]
    assert members == [
        {"Name": "instance.group-name", "Values": ["c1", "c2"]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
    ]
    assert claimants == [{"Name": "tag:clusterName", "Values": ["c1", "c2"]}, members[1]]


def test_plan_with_clusters_owners_and_stopped_nodes():
    cluster_groups, (members, _by_tag) = plan_queries(None, clusters=["c1", "missing", "c1"], owners=["me"], include_stopped=True)
    assert cluster_groups == ["c1", "missing"]
    assert members == [
        {"Name": "instance.group-name", "Values": ["c1", "missing"]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        {"Name": "tag:Owner", "Values": ["me"]},
    ]


def test_plan_keeps_every_request_under_the_filter_value_limit():
    groups = [(f"c{i}", TOIL) for i in range(450)] + [(f"g{i}", "other") for i in range(250)]
    cluster_groups, queries = plan_queries(groups, owners=["a", "b"])
    assert len(cluster_groups) == 450 and len(queries) == 6  # three chunks, by group and by tag
    for query in queries:
        assert sum(len(f["Values"]) for f in query) <= FILTER_VALUES_MAX
    assert sorted(v for q in queries[:3] for v in q[0]["Values"]) == sorted(cluster_groups)
    assert sorted(v for q in queries[3:] for v in q[0]["Values"]) == sorted(cluster_groups)


def test_too_many_owners_are_refused():
    with pytest.raises(InventoryConfigError, match="owners"):
        plan_queries(None, clusters=["c1"], owners=[f"o{i}" for i in range(FILTER_VALUES_MAX)])


def test_plan_with_no_groups_asks_nothing():
    assert plan_queries([]) == ([], [])


def test_filter_values_are_sent_as_planned():
    ec2 = FakeEC2(paged_answer([[]], groups=[("c1", TOIL), ("default", "d")]))
    query_regions({"us-west-2": ec2.client}, owners=["me"])
    sent, by_tag = (filters_of(r) for r in ec2.requests if r["Action"] == "DescribeInstances")
    assert by_tag == {"tag:clusterName": ["c1"], "instance-state-name": ["pending", "running"], "tag:Owner": ["me"]}
    assert sent == {"instance.group-name": ["c1"], "instance-state-name": ["pending", "running"], "tag:Owner": ["me"]}
    assert list(sent)[0] == "instance.group-name"


# ---------------------------------------------------------------------- options
def test_regions_are_checked():
    assert check_regions(["us-west-2", "eu-central-1", "us-west-2", "us-gov-west-1"]) == ["us-west-2", "eu-central-1", "us-gov-west-1"]
    for bad in ("us-west-2a", "US-WEST-2", "uswest2", "", "us-west-2 ", 7):
        with pytest.raises(InventoryConfigError, match="not an AWS region"):
            check_regions([bad])


def test_hostnames_are_checked():
    assert check_hostnames([]) == ["instance_id"]
    assert check_hostnames(["private_dns", "public_ip"]) == ["private_dns", "public_ip"]
    with pytest.raises(InventoryConfigError, match="tag:Name"):
        check_hostnames(["tag:Name"])
