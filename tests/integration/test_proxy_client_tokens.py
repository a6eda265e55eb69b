"""The recording proxy's RunInstances ClientToken behaves as EC2 documents it (harness.proxy's header):
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
