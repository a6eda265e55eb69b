"""The leader's launch logic that the embedded endpoint cannot show: moto ignores ClientToken.

A stand-in EC2 client here behaves as EC2's documented idempotency does (same token, same
parameters: the first answer again; same token, other parameters: IdempotentParameterMismatch).
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.leader import client_token, leader_request, run_leader

IMAGE = {"ImageId": "ami-1", "RootDeviceName": "/dev/xvda", "Architecture": "x86_64"}


def request(instance_type="t3.large"):
    return leader_request(
        "c1",
        image=IMAGE,
        instance_type=instance_type,
        key_pair_name="k",
        subnet_id="subnet-1",
        group_ids=["sg-1"],
        profile_arn="arn:aws:iam::123456789012:instance-profile/c1_toil",
        storage_gib=50,
        tags={"Name": "c1"},
    )


def client_error(code, message="x"):
    return ClientError({"Error": {"Code": code, "Message": message}}, "RunInstances")


class IdempotentEC2:
    """EC2's ClientToken contract, and nothing else."""

    def __init__(self, failures=()):
        self.tokens = {}
        self.calls = 0
        self.failures = list(failures)

    def run_instances(self, aws_retry=False, **params):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        token = params.pop("ClientToken")
        if token in self.tokens:
            known_params, instance = self.tokens[token]
            if known_params != params:
                raise client_error("IdempotentParameterMismatch")
            return {"Instances": [instance]}
        instance = {"InstanceId": f"i-{len(self.tokens)}", "State": {"Name": "pending"}}
        self.tokens[token] = (params, instance)
        return {"Instances": [instance]}


def test_request_has_imdsv2_encrypted_gp3_and_tagged_volumes():
    params = request()
    assert params["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"}
    assert params["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 50, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}}
    ]
    assert {spec["ResourceType"] for spec in params["TagSpecifications"]} == {"instance", "volume", "network-interface"}
    assert (params["MinCount"], params["MaxCount"]) == (1, 1)


def test_token_is_stable_per_cluster_generation():
    assert client_token("c1", "sg-1") == client_token("c1", "sg-1")
    assert client_token("c1", "sg-1") != client_token("c1", "sg-2")  # a re-created cluster launches anew
    assert client_token("c1", "sg-1") != client_token("c2", "sg-1")
    assert len(client_token("c1", "sg-1")) <= 64  # EC2's limit


def test_a_repeated_launch_returns_the_same_leader():
    ec2 = IdempotentEC2()
    first = run_leader(ec2, "c1", request(), "sg-1")
    second = run_leader(ec2, "c1", request(), "sg-1")
    assert first["InstanceId"] == second["InstanceId"]
    assert len(ec2.tokens) == 1


def test_a_token_of_a_terminated_leader_moves_on():
    ec2 = IdempotentEC2()
    first = run_leader(ec2, "c1", request(), "sg-1")
    first["State"]["Name"] = "terminated"  # the leader was terminated by hand; the token still answers with it
    second = run_leader(ec2, "c1", request(), "sg-1")
    assert second["InstanceId"] != first["InstanceId"]
    assert second["State"]["Name"] == "pending"


def test_changed_settings_after_a_terminated_leader_use_a_new_token():
    ec2 = IdempotentEC2()
    first = run_leader(ec2, "c1", request("t3.large"), "sg-1")
    first["State"]["Name"] = "terminated"
    second = run_leader(ec2, "c1", request("m5.large"), "sg-1")
    assert second["InstanceId"] != first["InstanceId"]


def test_profile_propagation_is_retried_boundedly():
    not_ready = client_error("InvalidParameterValue", "Value (arn:...) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN")
    sleeps = []
    ec2 = IdempotentEC2(failures=[not_ready, not_ready])
    instance = run_leader(ec2, "c1", request(), "sg-1", sleep=sleeps.append)
    assert instance["InstanceId"] == "i-0"
    assert len(sleeps) == 2

    always = IdempotentEC2(failures=[not_ready] * 100)
    with pytest.raises(ClientError):
        run_leader(always, "c1", request(), "sg-1", sleep=lambda _s: None)
    assert always.calls == 20  # PROFILE_PROPAGATION_ATTEMPTS, not forever


def test_other_invalid_parameters_are_not_retried():
    ec2 = IdempotentEC2(failures=[client_error("InvalidParameterValue", "Invalid value for instanceType")])
    with pytest.raises(ClientError):
        run_leader(ec2, "c1", request(), "sg-1", sleep=lambda _s: pytest.fail("must not wait"))
    assert ec2.calls == 1


def test_input_error_type_is_a_value_error():
    assert issubclass(ToilInputError, ValueError)
