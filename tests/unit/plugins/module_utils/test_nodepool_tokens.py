"""Pool launches (nodepool.scale_up): the instant EC2 Fleet request built, and its launch tokens per generation,
against a stand-in EC2 that keeps EC2's documented CreateFleet contract (harness.proxy quotes it): the same token and
parameters give the first fleet's answer again, whatever became of its instances; other parameters give
IdempotentParameterMismatch; a fleet that launched nothing succeeded and used its token. The integration tests show
the same through the recording proxy and the endpoint's instant fleets (tests/integration/test_toil_nodepool.py)."""

from __future__ import annotations

import base64
import copy

import pytest
from botocore.exceptions import ClientError

from ansible_collections.toil.cluster.plugins.module_utils import nodepool
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError, ToilOperationError
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import ClusterContext, launch_token, scale_up, validate_pool_spec
from ansible_collections.toil.cluster.plugins.module_utils.pool_template import SETTINGS_TAG, SPENT_TOKEN_TAG, delete_launch_template

IMAGE = {"ImageId": "ami-1", "RootDeviceName": "/dev/xvda", "Architecture": "x86_64"}
ARM = {"ImageId": "ami-2", "RootDeviceName": "/dev/sda1", "Architecture": "arm64"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl scaler@leader"


class _Paginator:
    def __init__(self, ec2):
        self.ec2 = ec2

    def paginate(self, Filters, **_kwargs):  # noqa: N803 - boto3's name
        (ids,) = [f["Values"] for f in Filters if f["Name"] == "instance-id"]
        yield {"Reservations": [{"Instances": [dict(self.ec2.instances[i]) for i in ids if i in self.ec2.instances]}]}


class FleetEC2:
    """CreateFleet (instant) with EC2's ClientToken contract, capacity per instance type, and launch templates."""

    def __init__(self, capacity=None):
        self.tokens, self.instances, self.templates, self.requests = {}, {}, {}, []
        self.capacity = dict(capacity or {})  # instance type -> nodes it can still launch (absent: any)
        self.launched = 0

    def get_paginator(self, _name):
        return _Paginator(self)

    def describe_launch_templates(self, LaunchTemplateNames, aws_retry=False):  # noqa: N803
        (name,) = LaunchTemplateNames
        if name not in self.templates:
            raise ClientError({"Error": {"Code": "InvalidLaunchTemplateName.NotFoundException", "Message": "x"}}, "DescribeLaunchTemplates")
        return {"LaunchTemplates": [copy.deepcopy(self.templates[name])]}

    def create_launch_template(self, LaunchTemplateName, LaunchTemplateData, TagSpecifications, aws_retry=False):  # noqa: N803
        template = {"LaunchTemplateName": LaunchTemplateName, "LaunchTemplateId": f"lt-{len(self.templates):017x}", "LatestVersionNumber": 1}
        template.update(Tags=list(TagSpecifications[0]["Tags"]), Versions=[LaunchTemplateData])
        self.templates[LaunchTemplateName] = template
        return {"LaunchTemplate": template}

    def _by_id(self, template_id):
        return next(t for t in self.templates.values() if t["LaunchTemplateId"] == template_id)

    def create_launch_template_version(self, LaunchTemplateId, LaunchTemplateData, ClientToken, aws_retry=False):  # noqa: N803
        template = self._by_id(LaunchTemplateId)
        template["Versions"].append(LaunchTemplateData)
        template["LatestVersionNumber"] = len(template["Versions"])
        return {"LaunchTemplateVersion": {"VersionNumber": len(template["Versions"])}}

    def create_tags(self, Resources, Tags, aws_retry=False):  # noqa: N803
        for template in (self._by_id(r) for r in Resources):
            kept = {t["Key"]: t["Value"] for t in template["Tags"]}
            kept.update({t["Key"]: t["Value"] for t in Tags})
            template["Tags"] = [{"Key": k, "Value": v} for k, v in kept.items()]

    def create_fleet(self, aws_retry=False, **params):
        token = params.pop("ClientToken")
        self.requests.append(params)
        if token in self.tokens:
            known, answer = self.tokens[token]
            if known != params:
                raise ClientError({"Error": {"Code": "IdempotentParameterMismatch", "Message": "x"}}, "CreateFleet")
            return copy.deepcopy(answer)
        wanted = params["TargetCapacitySpecification"]["TotalTargetCapacity"]
        answer = {"FleetId": f"fleet-{len(self.tokens)}", "Instances": [], "Errors": []}
        for override in params["LaunchTemplateConfigs"][0]["Overrides"]:
            count = min(wanted, self.capacity.get(override["InstanceType"], wanted))
            if count < wanted:
                answer["Errors"].append({"LaunchTemplateAndOverrides": {"Overrides": override}, "ErrorCode": "InsufficientInstanceCapacity"})
            ids = []
            for _node in range(count):
                self.launched += 1
                ids.append(f"i-{self.launched:017x}")
                self.instances[ids[-1]] = {"InstanceId": ids[-1], "State": {"Name": "pending"}, "LaunchTime": None}
            if ids:
                answer["Instances"].append({"InstanceIds": ids, "InstanceType": override["InstanceType"]})
            wanted -= count
            if not wanted:
                break
        self.tokens[token] = (params, answer)
        return copy.deepcopy(answer)

    def terminate(self, ids):
        for instance_id in ids:
            self.instances[instance_id]["State"] = {"Name": "terminated"}


def spec(count=2, **options):
    return validate_pool_spec({"cluster": "c1", "name": "p", "node_types": "m5.large", "count": count, **options})


def context(group="sg-0123456789abcdef0", leader="i-0000000000000000a"):
    return ClusterContext(
        leader={"InstanceId": leader},
        group_id=group,
        vpc_id="vpc-1",
        profile_arn="arn:aws:iam::123456789012:instance-profile/c1_toil",
        key_name="k",
        base_tags={"clusterName": "c1"},
        extra_group_ids=("sg-0aaaaaaaaaaaaaaaa",),
    )


def launch(ec2, members=(), shortfall=2, ctx=None, pool=None, subnets=("subnet-1",), images=None):
    pool = pool or spec()
    images = images or dict.fromkeys(pool.node_type.instance_types, IMAGE)
    return scale_up(ec2, pool, ctx or context(), list(members), shortfall, images, list(subnets))


def grow(ec2, **kwargs):
    launched, deficit, errors = launch(ec2, **kwargs)
    assert (deficit, errors) == (0, [])
    return [i["InstanceId"] for i in launched]


# ---------------------------------------------------------------------- the request
def test_one_on_demand_fleet_over_every_type_and_subnet_in_the_users_order():
    ec2 = FleetEC2()
    pool = spec(node_types="m5.large/m6g.large", node_storage=40, authorized_keys=[KEY])
    grow(ec2, pool=pool, subnets=("subnet-1", "subnet-2"), images={"m5.large": IMAGE, "m6g.large": ARM})
    (request,) = ec2.requests
    assert request["Type"] == "instant"
    assert request["TargetCapacitySpecification"] == {"TotalTargetCapacity": 2, "DefaultTargetCapacityType": "on-demand"}
    assert request["OnDemandOptions"] == {"AllocationStrategy": "prioritized"} and "SpotOptions" not in request
    (config,) = request["LaunchTemplateConfigs"]
    assert config["LaunchTemplateSpecification"] == {"LaunchTemplateId": ec2.templates["c1.pool.p"]["LaunchTemplateId"], "Version": "1"}
    pools = [(o["InstanceType"], o["SubnetId"], o["ImageId"], o["Priority"], o["BlockDeviceMappings"][0]["DeviceName"]) for o in config["Overrides"]]
    assert pools == [
        ("m5.large", "subnet-1", "ami-1", 0.0, "/dev/xvda"),
        ("m5.large", "subnet-2", "ami-1", 1.0, "/dev/xvda"),  # within a type, the subnets' order (the leader's zone first)
        ("m6g.large", "subnet-1", "ami-2", 2.0, "/dev/sda1"),  # the AMI and root device of the type's architecture
        ("m6g.large", "subnet-2", "ami-2", 3.0, "/dev/sda1"),
    ]
    assert config["Overrides"][0]["BlockDeviceMappings"][0]["Ebs"] == {"VolumeSize": 40, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}
    kinds = {s["ResourceType"]: {t["Key"]: t["Value"] for t in s["Tags"]} for s in request["TagSpecifications"]}
    assert set(kinds) == {"instance", "volume", "network-interface"}
    assert kinds["instance"] == {"clusterName": "c1", "ToilNodeType": "worker", "toil.cluster/pool": "p", "toil.cluster/preemptible": "false"}
    (data,) = ec2.templates["c1.pool.p"]["Versions"]
    assert data["SecurityGroupIds"] == ["sg-0123456789abcdef0", "sg-0aaaaaaaaaaaaaaaa"]
    assert data["MetadataOptions"]["HttpTokens"] == "required" and data["KeyName"] == "k"
    assert data["IamInstanceProfile"] == {"Arn": "arn:aws:iam::123456789012:instance-profile/c1_toil"}
    assert KEY in base64.b64decode(data["UserData"]).decode()  # serialised cloud-config, base64 as a template holds it
    marks = {t["Key"]: t["Value"] for t in ec2.templates["c1.pool.p"]["Tags"]}
    assert marks["clusterName"] == "c1" and marks[SETTINGS_TAG].endswith("@1")  # destroy finds it by its cluster


def test_a_spot_pool_bids_its_price_with_price_capacity_optimized():
    ec2 = FleetEC2()
    grow(ec2, pool=spec(node_types="c5.large/c5a.large:0.35"))
    (request,) = ec2.requests
    assert request["SpotOptions"] == {"AllocationStrategy": "price-capacity-optimized", "InstanceInterruptionBehavior": "terminate"}
    assert request["TargetCapacitySpecification"]["DefaultTargetCapacityType"] == "spot" and "OnDemandOptions" not in request
    assert [(o["InstanceType"], o["MaxPrice"], "Priority" in o) for o in request["LaunchTemplateConfigs"][0]["Overrides"]] == [
        ("c5.large", "0.35", False),
        ("c5a.large", "0.35", False),
    ]


def test_the_fleets_fall_back_and_errors_make_the_deficit():
    ec2 = FleetEC2(capacity={"m5.large": 0, "c5.xlarge": 1})
    launched, deficit, errors = launch(ec2, pool=spec(count=3, node_types="m5.large/c5.xlarge"), shortfall=3)
    assert (len(launched), deficit) == (1, 2) and len(ec2.requests) == 1
    assert errors == ["m5.large in subnet-1: InsufficientInstanceCapacity", "c5.xlarge in subnet-1: InsufficientInstanceCapacity"]


def test_an_error_code_from_aws_is_shown_only_when_it_looks_like_one():
    error = {"LaunchTemplateAndOverrides": {"Overrides": {"InstanceType": "m5.large", "SubnetId": "subnet-1"}}, "ErrorCode": "x; rm -rf /\n"}
    assert nodepool._capacity_error(error) == "m5.large in subnet-1: an error"  # noqa: SLF001


def test_changed_shared_settings_make_a_new_template_version_and_a_stranger_template_is_refused():
    ec2 = FleetEC2()
    first = grow(ec2)
    ec2.terminate(first)
    grow(ec2, pool=spec(authorized_keys=[KEY]))  # new user data: version 2, and the fleet names it
    grow(ec2, members=[{"InstanceId": "i-x"}], pool=spec(count=3, authorized_keys=[KEY]), shortfall=2)  # unchanged: no new version
    versions = [r["LaunchTemplateConfigs"][0]["LaunchTemplateSpecification"]["Version"] for r in ec2.requests]
    assert versions[0] == "1" and set(versions[1:]) == {"2"}  # (the old token's mismatch, then the next token)
    assert len(ec2.templates["c1.pool.p"]["Versions"]) == 2
    ec2.templates["c1.pool.p"]["Tags"] = [{"Key": "clusterName", "Value": "someone-else"}]
    with pytest.raises(ToilInputError, match="is not tagged clusterName=c1"):
        launch(ec2, members=[{"InstanceId": "i-1"}])


# ---------------------------------------------------------------------- the launch token
def test_a_retry_of_the_same_intent_launches_once():
    ec2 = FleetEC2()
    assert grow(ec2) == grow(ec2)
    assert ec2.launched == 2


def test_two_to_zero_to_two_launches_new_nodes_and_a_retry_still_launches_once():
    ec2 = FleetEC2()
    first = grow(ec2)
    ec2.terminate(first)  # 2 -> 0
    second = grow(ec2)  # the first token answers with the terminated pair: the next one launches
    assert not set(second) & set(first) and ec2.launched == 4
    assert grow(ec2) == second and ec2.launched == 4  # the same chain, the same fleet
    ec2.terminate(second)
    third = grow(ec2)
    assert not set(third) & (set(first) | set(second)) and ec2.launched == 6


def test_changed_parameters_move_on_instead_of_failing():
    ec2 = FleetEC2()
    ec2.terminate(grow(ec2))
    assert len(grow(ec2, pool=spec(node_storage=80))) == 2  # IdempotentParameterMismatch on the old token: the next one


def test_a_fleet_that_launched_nothing_is_not_answered_again():
    ec2 = FleetEC2(capacity={"m5.large": 0})
    assert launch(ec2)[1] == 2
    spent = {t["Key"]: t["Value"] for t in ec2.templates["c1.pool.p"]["Tags"]}[SPENT_TOKEN_TAG]
    assert launch(ec2)[1] == 2  # a new attempt of the same intent, not the spent token's empty answer
    assert len(ec2.tokens) == 2 and spent in ec2.tokens
    ec2.capacity.clear()
    assert len(grow(ec2)) == 2 and len(ec2.tokens) == 3
    assert grow(ec2) == list(ec2.instances)  # and from then on the same fleet again: one launch


def test_the_token_belongs_to_the_clusters_generation():
    pool, members, overrides = spec(), [{"InstanceId": "i-00000000000000001"}], [{"InstanceType": "m5.large", "SubnetId": "subnet-1"}]
    base = launch_token(pool, context(), members, 2, overrides)
    assert len(base) == 64 and base == launch_token(pool, context(), members, 2, overrides)
    assert base != launch_token(pool, context(group="sg-0fedcba9876543210"), members, 2, overrides)  # relaunched cluster
    assert base != launch_token(pool, context(leader="i-0000000000000000b"), members, 2, overrides)  # replaced leader
    assert base != launch_token(pool, context(), [], 2, overrides)
    assert base != launch_token(pool, context(), members, 2, [{"InstanceType": "m5.large", "SubnetId": "subnet-2"}])
    assert base != launch_token(pool, context(), members, 2, overrides, link=1)


def test_a_chain_of_earlier_generations_only_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(nodepool, "TOKEN_CHAIN_LENGTH", 3)
    ec2 = FleetEC2()
    for _attempt in range(3):
        ec2.terminate(grow(ec2))
    with pytest.raises(ToilOperationError, match="earlier generations' instances; nothing was launched"):
        grow(ec2)
    assert ec2.launched == 6


@pytest.mark.parametrize("code", ["InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound"])
def test_deleting_a_template_already_gone_is_done_and_other_errors_are_not(code):
    class Gone:
        def __init__(self, answer):
            self.answer = answer

        def delete_launch_template(self, aws_retry=False, **which):
            raise ClientError({"Error": {"Code": self.answer, "Message": "x"}}, "DeleteLaunchTemplate")

    delete_launch_template(Gone(code), LaunchTemplateName="c1.pool.p")  # a lost answer's retry, or a concurrent run
    with pytest.raises(ClientError):
        delete_launch_template(Gone("UnauthorizedOperation"), LaunchTemplateName="c1.pool.p")
