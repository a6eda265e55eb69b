"""Pool launch tokens per generation (nodepool.launch_token, scale_up) against a stand-in EC2 that keeps
EC2's documented ClientToken contract: the same token and parameters give the first reservation with its
instances' current state (terminated included); other parameters give IdempotentParameterMismatch.
The integration tests show the same through the recording proxy (harness.proxy)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ansible_collections.toil.cluster.plugins.module_utils import nodepool
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilOperationError
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import ClusterContext, launch_token, scale_up, validate_pool_spec

IMAGE = {"ImageId": "ami-1", "RootDeviceName": "/dev/xvda", "Architecture": "x86_64"}


class TokenEC2:
    def __init__(self):
        self.tokens = {}
        self.instances = {}
        self.launched = 0

    def run_instances(self, aws_retry=False, **params):
        token = params.pop("ClientToken")
        if token in self.tokens:
            known, ids = self.tokens[token]
            if known != params:
                raise ClientError({"Error": {"Code": "IdempotentParameterMismatch", "Message": "x"}}, "RunInstances")
            return {"Instances": [dict(self.instances[i]) for i in ids]}
        ids = []
        for _instance in range(params["MaxCount"]):
            self.launched += 1
            instance_id = f"i-{self.launched:017x}"
            self.instances[instance_id] = {"InstanceId": instance_id, "State": {"Name": "pending"}}
            ids.append(instance_id)
        self.tokens[token] = (params, ids)
        return {"Instances": [dict(self.instances[i]) for i in ids]}

    def terminate(self, ids):
        for instance_id in ids:
            self.instances[instance_id]["State"] = {"Name": "terminated"}


def spec(count=2):
    return validate_pool_spec({"cluster": "c1", "name": "p", "node_types": "m5.large", "count": count})


def context(group="sg-0123456789abcdef0", leader="i-0000000000000000a"):
    return ClusterContext(leader={"InstanceId": leader}, group_id=group, vpc_id="vpc-1", profile_arn=None, key_name="k", base_tags={"clusterName": "c1"})


def grow(ec2, members=(), shortfall=2, ctx=None, pool=None):
    launched, deficit, errors = scale_up(ec2, pool or spec(), ctx or context(), list(members), shortfall, {"m5.large": IMAGE}, ["subnet-1"])
    assert (deficit, errors) == (0, [])
    return [i["InstanceId"] for i in launched]


def test_a_retry_of_the_same_intent_launches_once():
    ec2 = TokenEC2()
    assert grow(ec2) == grow(ec2)
    assert ec2.launched == 2


def test_two_to_zero_to_two_launches_new_nodes_and_a_retry_still_launches_once():
    ec2 = TokenEC2()
    first = grow(ec2)
    ec2.terminate(first)  # 2 -> 0
    second = grow(ec2)  # the first token answers with the terminated pair: the next one launches
    assert not set(second) & set(first) and ec2.launched == 4
    assert grow(ec2) == second and ec2.launched == 4  # the same chain, the same reservation
    ec2.terminate(second)
    third = grow(ec2)
    assert not set(third) & (set(first) | set(second)) and ec2.launched == 6


def test_changed_parameters_move_on_instead_of_failing():
    ec2 = TokenEC2()
    ec2.terminate(grow(ec2))
    other = validate_pool_spec({"cluster": "c1", "name": "p", "node_types": "m5.large", "count": 2, "node_storage": 80})
    assert len(grow(ec2, pool=other)) == 2  # IdempotentParameterMismatch on the old token: the next one


def test_the_token_belongs_to_the_clusters_generation():
    pool, members = spec(), [{"InstanceId": "i-00000000000000001"}]
    base = launch_token(pool, context(), members, "m5.large", "subnet-1", 2)
    assert len(base) == 64 and base == launch_token(pool, context(), members, "m5.large", "subnet-1", 2)
    assert base != launch_token(pool, context(group="sg-0fedcba9876543210"), members, "m5.large", "subnet-1", 2)  # relaunched cluster
    assert base != launch_token(pool, context(leader="i-0000000000000000b"), members, "m5.large", "subnet-1", 2)  # replaced leader
    assert base != launch_token(pool, context(), [], "m5.large", "subnet-1", 2)
    assert base != launch_token(pool, context(), members, "m5.large", "subnet-2", 2)
    assert base != launch_token(pool, context(), members, "m5.large", "subnet-1", 2, link=1)


def test_a_chain_of_earlier_generations_only_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(nodepool, "TOKEN_CHAIN_LENGTH", 3)
    ec2 = TokenEC2()
    for _attempt in range(3):
        ec2.terminate(grow(ec2))
    with pytest.raises(ToilOperationError, match="earlier generations' instances; nothing was launched"):
        grow(ec2)
    assert ec2.launched == 6
