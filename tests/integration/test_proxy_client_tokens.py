"""The recording proxy's RunInstances and CreateFleet ClientToken behave as EC2 documents them (harness.proxy's header):
the same token and parameters give the first reservation with today's states (terminated included),
other parameters give IdempotentParameterMismatch, a failed request leaves its token unused, and a
token is per Region. The collection's launch tokens are only tested honestly when this holds."""

from __future__ import annotations

import botocore.exceptions
import pytest

from harness.proxy import AWSProxy

AMI = "ami-04681a1dbd79675a5"  # one of moto's canned AMIs


@pytest.fixture
def proxied(aws):
    with AWSProxy(aws.url, client_tokens=True) as proxy:
        session = aws.endpoint.boto3_session()
        yield proxy, lambda region=None: session.client("ec2", region_name=region or aws.region, endpoint_url=proxy.url)


def _ids(answer):
    return sorted(i["InstanceId"] for i in answer["Instances"])


def test_same_token_gives_the_first_reservation_even_terminated(aws, proxied):
    proxy, client = proxied
    ec2 = client()
    request = {"ImageId": AMI, "MinCount": 2, "MaxCount": 2, "InstanceType": "t3.micro", "ClientToken": "gen-1"}
    first = ec2.run_instances(**request)
    again = ec2.run_instances(**request)
    assert (again["ReservationId"], _ids(again)) == (first["ReservationId"], _ids(first))
    ec2.terminate_instances(InstanceIds=_ids(first))
    later = ec2.run_instances(**request)
    assert _ids(later) == _ids(first)
    assert {i["State"]["Name"] for i in later["Instances"]} == {"terminated"}  # today's state, as EC2 answers
    reservations = aws.client("ec2").describe_instances()["Reservations"]
    assert sum(len(r["Instances"]) for r in reservations) == 2  # three calls, one launch
    assert [outcome for _t, outcome in proxy.token_repeats] == ["replayed", "replayed"]


def test_same_token_other_parameters_is_a_mismatch(aws, proxied):
    _proxy, client = proxied
    ec2 = client()
    first = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="t")
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.large", ClientToken="t")
    assert error.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    ec2.terminate_instances(InstanceIds=_ids(first))
    reservations = aws.client("ec2").describe_instances()["Reservations"]
    assert sum(len(r["Instances"]) for r in reservations) == 1


def test_a_failed_request_leaves_its_token_unused_and_tokens_are_per_region(aws, proxied):
    proxy, client = proxied
    proxy.fail_next("RunInstances", status=400, code="InsufficientInstanceCapacity")
    request = {"ImageId": AMI, "MinCount": 1, "MaxCount": 1, "InstanceType": "t3.micro", "ClientToken": "retry-me"}
    with pytest.raises(botocore.exceptions.ClientError):
        client().run_instances(**request)
    launched = client().run_instances(**request)
    assert launched["Instances"][0]["State"]["Name"] == "pending"
    aws.leak_regions.append("us-east-1")
    elsewhere = client("us-east-1").run_instances(**{**request, "ImageId": aws.client("ec2", "us-east-1").describe_images()["Images"][0]["ImageId"]})
    assert _ids(elsewhere) != _ids(launched)
    client().terminate_instances(InstanceIds=_ids(launched))
    client("us-east-1").terminate_instances(InstanceIds=_ids(elsewhere))


# ---------------------------------------------------------------------- CreateFleet (instant)
def _fleet(ec2, types=("t3.micro", "t3.small"), count=2, token="fleet-1", **changes):
    """An instant fleet from a fresh template over ``types`` in the first subnet (what harness.endpoint answers)."""
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    templates = ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": ["proxy-test"]}])["LaunchTemplates"]
    template = templates[0] if templates else ec2.create_launch_template(LaunchTemplateName="proxy-test", LaunchTemplateData={})["LaunchTemplate"]
    request = {
        "Type": "instant",
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": {"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
                "Overrides": [{"InstanceType": t, "SubnetId": subnet, "ImageId": AMI, "Priority": float(i)} for i, t in enumerate(types)],
            }
        ],
        "TargetCapacitySpecification": {"TotalTargetCapacity": count, "DefaultTargetCapacityType": "on-demand"},
        "OnDemandOptions": {"AllocationStrategy": "prioritized"},
        "ClientToken": token,
        **changes,
    }
    return ec2.create_fleet(**request), subnet


def _fleet_ids(answer):
    return sorted(i for entry in answer["Instances"] for i in entry["InstanceIds"])


def _cleanup_fleets(aws, ids):
    ec2 = aws.client("ec2")
    if ids:
        ec2.terminate_instances(InstanceIds=ids)
    for template in ec2.describe_launch_templates()["LaunchTemplates"]:
        ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])


def test_a_fleet_token_gives_the_first_fleet_again_even_terminated_and_other_parameters_are_a_mismatch(aws, proxied):
    proxy, client = proxied
    ec2 = client()
    first, _subnet = _fleet(ec2)
    again, _subnet = _fleet(ec2)
    assert (again["FleetId"], _fleet_ids(again)) == (first["FleetId"], _fleet_ids(first)) and len(_fleet_ids(first)) == 2
    ec2.terminate_instances(InstanceIds=_fleet_ids(first))
    later, _subnet = _fleet(ec2)
    assert _fleet_ids(later) == _fleet_ids(first)  # the first fleet's instances, terminated: nothing launched
    with pytest.raises(botocore.exceptions.ClientError) as error:
        _fleet(ec2, count=3)
    assert error.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    reservations = aws.client("ec2").describe_instances()["Reservations"]
    assert sum(len(r["Instances"]) for r in reservations) == 2  # four calls, one launch
    assert [outcome for _t, outcome in proxy.token_repeats] == ["replayed", "replayed", "mismatch"]
    _cleanup_fleets(aws, [])


def test_a_pool_without_capacity_is_an_error_entry_and_the_fleet_launches_from_the_next(aws, proxied):
    proxy, client = proxied
    ec2 = client()
    proxy.no_capacity("t3.micro")
    answer, subnet = _fleet(ec2)
    (error,) = answer["Errors"]
    assert (error["ErrorCode"], error["Lifecycle"], error["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"]) == (
        "InsufficientInstanceCapacity",
        "on-demand",
        "t3.micro",
    )
    assert error["LaunchTemplateAndOverrides"]["Overrides"]["SubnetId"] == subnet
    assert [(e["InstanceType"], len(e["InstanceIds"])) for e in answer["Instances"]] == [("t3.small", 2)]
    proxy.no_capacity("t3.small", left=1)
    partial, _subnet = _fleet(ec2, token="fleet-2")  # a partial fulfilment succeeds too
    assert len(_fleet_ids(partial)) == 1
    assert [e["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"] for e in partial["Errors"]] == ["t3.micro", "t3.small"]
    proxy.no_capacity("t3.small")
    empty, _subnet = _fleet(ec2, token="fleet-3")
    assert empty["Instances"] == [] and len(empty["Errors"]) == 2
    proxy.capacity_back()
    again, _subnet = _fleet(ec2, token="fleet-3")  # it completed: its token is used, even with capacity back
    assert again["Instances"] == [] and again["FleetId"] == empty["FleetId"]
    _cleanup_fleets(aws, _fleet_ids(answer) + _fleet_ids(partial))
