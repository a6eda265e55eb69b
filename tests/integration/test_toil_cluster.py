"""toil_cluster against the embedded endpoint: launch, converge, check/diff mode, bad input, destroy.

Every property is read back with boto3; tests that must prove "no change" or "nothing mutating"
go through the recording proxy (aws_calls).
"""

from __future__ import annotations

import json

import pytest

from harness.bad_inputs import CLUSTER_BAD_INPUTS
from harness.playbooks import assert_bad_inputs_fail
from harness.toil_shapes import make_group, make_iam, run_nodes

NEWEST_DEBIAN_AMD64 = "ami-0d12e1ac5d5e4a002"  # tools/debian_amis.json: newest debian-12-amd64 of Debian's account
NEWEST_DEBIAN_ARM64 = "ami-0d12e1ac5d5e4a003"
ZONE = "us-west-2a"


def cluster_play(**options):
    options.setdefault("zone", ZONE)
    return {
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": "cluster", "toil.cluster.toil_cluster": options, "register": "cluster"}],
    }


def launch_options(name, key_pair, **extra):
    return {"name": name, "leader_node_type": "t3.large", "key_pair_name": key_pair, **extra}


@pytest.fixture
def launch(aws, run_playbook, key_pair):
    """launch(name, **options) -> task result; the cluster is destroyed (with the module) at teardown."""
    launched = []

    def run(name, expect_rc=0, env=None, **options):
        launched.append(name)
        return run_playbook(cluster_play(**launch_options(name, key_pair, **options)), expect_rc=expect_rc, env=env).task("cluster")

    yield run
    for name in launched:
        run_playbook(cluster_play(name=name, state="absent"))


def group_rules(ec2, group_id):
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    rules = set()
    for permission in group["IpPermissions"]:
        ports = (permission["IpProtocol"], permission.get("FromPort"), permission.get("ToPort"))
        rules.update((*ports, r["CidrIp"]) for r in permission.get("IpRanges", []))
        rules.update((*ports, r["CidrIpv6"]) for r in permission.get("Ipv6Ranges", []))
        rules.update((*ports, "self" if p["GroupId"] == group_id else p["GroupId"]) for p in permission.get("UserIdGroupPairs", []))
    return group, rules


TOIL_RULES = {("tcp", 22, 22, "0.0.0.0/0"), ("tcp", 22, 22, "::/0"), ("tcp", 0, 65535, "self"), ("udp", 0, 65535, "self")}


def test_launch_makes_a_toil_compatible_leader(aws, launch, key_pair):
    result = launch("tcl-one", tags={"Project": "rna"}, leader_storage=64)
    assert result["changed"] is True
    ec2, iam = aws.client("ec2"), aws.client("iam")

    group, rules = group_rules(ec2, result["security_group_id"])
    assert group["GroupName"] == "tcl-one"
    assert group["Description"] == "Toil appliance security group"
    assert rules == TOIL_RULES
    default_subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [ZONE]}, {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][
        0
    ]
    assert group["VpcId"] == default_subnet["VpcId"] == result["vpc_id"]

    role = iam.get_role(RoleName="tcl_one_toil")["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] in ("sts:AssumeRole", ["sts:AssumeRole"])
    assert trust["Principal"]["Service"] in ("ec2.amazonaws.com", ["ec2.amazonaws.com"])
    profile = iam.get_instance_profile(InstanceProfileName="tcl_one_toil")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["tcl_one_toil"]
    assert result["instance_profile_arn"] == profile["Arn"]
    policies = iam.list_role_policies(RoleName="tcl_one_toil")["PolicyNames"]
    assert policies and not {"iam_full", "ec2_full", "s3_full", "sbd_full"} & set(policies)
    for name in policies:
        document = json.dumps(iam.get_role_policy(RoleName="tcl_one_toil", PolicyName=name)["PolicyDocument"])
        assert '"ec2:*"' not in document and '"s3:*"' not in document and '"iam:*"' not in document

    leader = ec2.describe_instances(InstanceIds=[result["leader"]["instance_id"]])["Reservations"][0]["Instances"][0]
    assert leader["State"]["Name"] == "running"
    assert leader["InstanceType"] == "t3.large"
    assert leader["ImageId"] == NEWEST_DEBIAN_AMD64 == result["image_id"]
    assert leader["SubnetId"] == default_subnet["SubnetId"]
    assert leader["KeyName"] == key_pair
    assert [g["GroupId"] for g in leader["SecurityGroups"]] == [group["GroupId"]]
    assert leader["IamInstanceProfile"]["Arn"] == profile["Arn"]
    assert leader["MetadataOptions"]["HttpTokens"] == "required"
    assert leader["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    expected_tags = {
        "Name": "tcl-one",
        "Owner": key_pair,
        "clusterName": "tcl-one",
        "Project": "rna",
        "kubernetes.io/cluster/tcl-one": "",
        "ToilNodeType": "leader",
        "sshKeyName": key_pair,
    }
    assert {t["Key"]: t["Value"] for t in leader["Tags"]} == expected_tags == result["tags"]
    (root,) = leader["BlockDeviceMappings"]
    volume = ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (volume["VolumeType"], volume["Size"], volume["Encrypted"]) == ("gp3", 64, True)
    assert {t["Key"]: t["Value"] for t in volume["Tags"]} == expected_tags  # Toil leaves worker volumes untagged
    assert result["leader"]["private_ip"] == leader["PrivateIpAddress"]
    assert result["leader"]["zone"] == ZONE


def test_rerun_changes_nothing_and_makes_no_mutating_call(aws, launch, aws_calls):
    first = launch("tcl-idem")
    second = launch("tcl-idem", env=aws_calls.env)
    assert second["changed"] is False
    assert aws_calls.calls, "the proxy saw no call: the module did not go through it"
    assert aws_calls.mutating_calls() == []
    assert second["leader"]["instance_id"] == first["leader"]["instance_id"]
    instances = aws.client("ec2").describe_instances(Filters=[{"Name": "tag:clusterName", "Values": ["tcl-idem"]}])["Reservations"]
    assert len(instances) == 1


def test_check_mode_creates_nothing_and_reports_the_change(aws, run_playbook, key_pair, aws_calls):
    result = run_playbook(cluster_play(**launch_options("tcl-check", key_pair)), check=True, diff=True, env=aws_calls.env).task("cluster")
    assert result["changed"] is True
    assert result["leader"] is None
    assert aws_calls.mutating_calls() == []
    assert aws.leftovers() == {}
    after = result["diff"]["after"]
    assert after["security_group"]["name"] == "tcl-check"
    assert after["iam"]["role"] == "tcl_check_toil"
    assert after["leader"]["instance_type"] == "t3.large"
    assert result["diff"]["before"] == {"security_group": None, "iam": None, "leader": None}


def test_check_mode_on_an_existing_cluster_is_unchanged(launch, run_playbook, key_pair, aws_calls):
    launch("tcl-check2")
    result = run_playbook(cluster_play(**launch_options("tcl-check2", key_pair)), check=True, env=aws_calls.env).task("cluster")
    assert result["changed"] is False
    assert aws_calls.mutating_calls() == []


def test_rules_converge_and_diff_shows_them(aws, launch, run_playbook, key_pair):
    first = launch("tcl-rules", ssh_cidrs=["203.0.113.0/24"])
    ec2 = aws.client("ec2")
    group_id = first["security_group_id"]
    assert group_rules(ec2, group_id)[1] == {("tcp", 22, 22, "203.0.113.0/24"), ("tcp", 0, 65535, "self"), ("udp", 0, 65535, "self")}
    # Someone opens a port and removes the udp rule by hand.
    ec2.authorize_security_group_ingress(
        GroupId=group_id, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    ec2.revoke_security_group_ingress(
        GroupId=group_id, IpPermissions=[{"IpProtocol": "udp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": group_id}]}]
    )
    play = cluster_play(**launch_options("tcl-rules", key_pair, ssh_cidrs=["203.0.113.0/24"]))
    result = run_playbook(play, diff=True).task("cluster")
    assert result["changed"] is True
    assert group_rules(ec2, group_id)[1] == {("tcp", 22, 22, "203.0.113.0/24"), ("tcp", 0, 65535, "self"), ("udp", 0, 65535, "self")}
    assert "tcp 80 from 0.0.0.0/0" in result["diff"]["before"]["security_group"]["ingress"]
    assert "udp 0-65535 from self" in result["diff"]["after"]["security_group"]["ingress"]
    assert run_playbook(play).task("cluster")["changed"] is False


def test_extra_groups_profile_and_image_options(aws, launch, run_playbook, key_pair):
    ec2, iam = aws.client("ec2"), aws.client("iam")
    extra = make_group(aws, "tcl-extra-access")
    iam.create_role(RoleName="my-own-role", AssumeRolePolicyDocument="{}")
    profile = iam.create_instance_profile(InstanceProfileName="my-own-profile")["InstanceProfile"]
    aws.add_cleanup(iam.delete_role, RoleName="my-own-role")
    aws.add_cleanup(iam.delete_instance_profile, InstanceProfileName="my-own-profile")
    result = launch(
        "tcl-opts",
        aws_ec2_extra_security_group_ids=[extra],
        aws_ec2_profile_arn=profile["Arn"],
        image_id="ami-0d12e1ac5d5e4a001",
    )
    leader = ec2.describe_instances(InstanceIds=[result["leader"]["instance_id"]])["Reservations"][0]["Instances"][0]
    assert sorted(g["GroupId"] for g in leader["SecurityGroups"]) == sorted([result["security_group_id"], extra])
    assert leader["IamInstanceProfile"]["Arn"] == profile["Arn"]
    assert leader["ImageId"] == "ami-0d12e1ac5d5e4a001"
    assert "tcl_opts_toil" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    removed = run_playbook(cluster_play(name="tcl-opts", state="absent")).task("cluster")["removed"]
    assert extra not in removed["security_groups"]
    assert ec2.describe_security_groups(GroupIds=[extra])["SecurityGroups"]  # the extra group survives


def test_arm_leader_gets_the_arm_image_and_toil_policy_is_toils(aws, launch):
    result = launch("tcl-arm", leader_node_type="m6g.large", node_policy="toil")
    assert result["image_id"] == NEWEST_DEBIAN_ARM64
    names = set(aws.client("iam").list_role_policies(RoleName="tcl_arm_toil")["PolicyNames"])
    assert {"iam_full", "ec2_full", "s3_full", "sbd_full", "kubernetes_merged"} == names


def test_toil_aws_ami_overrides_the_default(launch):
    result = launch("tcl-env-ami", env={"TOIL_AWS_AMI": "ami-0d12e1ac5d5e4a001"})
    assert result["image_id"] == "ami-0d12e1ac5d5e4a001"


def test_bad_input_fails_before_any_change(run_playbook, key_pair, aws_calls):
    cases = []
    for override, message in CLUSTER_BAD_INPUTS:
        options = {"zone": ZONE, **launch_options("tcl-bad", key_pair), **override}
        cases.append(({k: v for k, v in options.items() if v is not None}, message))
    assert_bad_inputs_fail(run_playbook, "toil_cluster", cases, aws_calls)


def test_subnet_in_another_zone_and_extra_group_named_like_the_cluster(aws, run_playbook, key_pair, aws_calls):
    ec2 = aws.client("ec2")
    other = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-west-2b"]}])["Subnets"][0]["SubnetId"]
    trap = make_group(aws, "tcl-trap")  # named like the cluster: destroy would delete it
    cases = [
        ({"vpc_subnet": other}, "is in us-west-2b, not in the zone us-west-2a"),
        ({"aws_ec2_extra_security_group_ids": [trap]}, "like the cluster"),
    ]
    for override, message in cases:
        result = run_playbook(cluster_play(**launch_options("tcl-trap", key_pair, **override)), expect_rc=2, env=aws_calls.env).task("cluster")
        assert message in result["msg"]
    assert aws_calls.mutating_calls() == []


def test_absent_removes_everything_in_order_and_is_idempotent(aws, run_playbook, launch, aws_calls):
    launched = launch("tcl-gone")
    ec2, s3 = aws.client("ec2"), aws.client("s3")
    group_id = launched["security_group_id"]
    (worker,) = run_nodes(aws, 1, group_id=group_id, tags={"clusterName": "tcl-gone", "ToilNodeType": "worker"})
    (stopped,) = run_nodes(aws, 1, group_id=group_id)
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.create_launch_template(
        LaunchTemplateName="tcl-gone-lt-m5.large",
        LaunchTemplateData={"InstanceType": "m5.large"},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "clusterName", "Value": "tcl-gone"}]}],
    )
    # A spot worker as Toil requests it (moto honours group names, not ids, in spot launch specifications).
    spot = ec2.request_spot_instances(
        SpotPrice="0.5",
        LaunchSpecification={"ImageId": NEWEST_DEBIAN_AMD64, "InstanceType": "m5.large", "SecurityGroups": ["tcl-gone"]},
        TagSpecifications=[{"ResourceType": "spot-instances-request", "Tags": [{"Key": "clusterName", "Value": "tcl-gone"}]}],
    )["SpotInstanceRequests"][0]["SpotInstanceRequestId"]
    s3.create_bucket(Bucket="tcl-gone--internal", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_versioning(Bucket="tcl-gone--internal", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"one", b"two"):
        s3.put_object(Bucket="tcl-gone--internal", Key="configs/leader/config.ign", Body=body)

    check = run_playbook(cluster_play(name="tcl-gone", state="absent"), check=True, env=aws_calls.env).task("cluster")
    assert check["changed"] is True
    assert aws_calls.mutating_calls() == []
    planned = check["removed"]
    assert planned["leader"] == launched["leader"]["instance_id"]
    assert {launched["leader"]["instance_id"], worker, stopped} <= set(planned["instances"])
    assert planned["spot_requests"] == [spot]
    spot_instance = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[spot])["SpotInstanceRequests"][0]["InstanceId"]
    assert spot_instance in planned["instances"]
    assert planned["launch_templates"] == ["tcl-gone-lt-m5.large"]
    assert planned["security_groups"] == [group_id]
    assert planned["buckets"] == ["tcl-gone--internal"]
    assert planned["iam_role"] == planned["instance_profile"] == "tcl_gone_toil"

    result = run_playbook(cluster_play(name="tcl-gone", state="absent")).task("cluster")
    assert result["changed"] is True
    assert aws.leftovers() == {}
    again = run_playbook(cluster_play(name="tcl-gone", state="absent")).task("cluster")
    assert again["changed"] is False


def test_absent_removes_groups_and_iam_left_without_instances(aws, run_playbook):
    # Toil issue 4140: with no instance left, Toil cannot find the VPC and leaks the group and IAM.
    make_group(aws, "tcl-leak")
    make_iam(aws, "tcl-leak")
    aws._cleanups.clear()  # the module under test removes them
    result = run_playbook(cluster_play(name="tcl-leak", state="absent")).task("cluster")
    assert result["changed"] is True
    assert aws.leftovers() == {}


def test_absent_never_takes_another_clusters_iam(aws, run_playbook):
    make_iam(aws, "tcl-prefix-two")  # Toil's prefix match would delete it when destroying "tcl-prefix"
    result = run_playbook(cluster_play(name="tcl-prefix", state="absent")).task("cluster")
    assert result["changed"] is False
    assert aws.client("iam").get_role(RoleName="tcl_prefix_two_toil")


def test_a_lost_leader_stops_the_launch_unless_replace_lost_leader(aws, run_playbook, key_pair, aws_calls):
    """The leader is terminated behind the collection's back: a launch stops, before any change, naming the live
    workers and their pool; replace_lost_leader launches a new leader (same name, tags and group) for them."""
    name = "lost-leader"
    options = launch_options(name, key_pair)
    workers = {"cluster": name, "zone": ZONE, "node_types": "m5.large", "count": 2}
    grow = {
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {"name": "cluster", "toil.cluster.toil_cluster": {**options, "zone": ZONE}},
            {"name": "pool", "toil.cluster.toil_nodepool": workers},
        ],
    }
    try:
        first = run_playbook(grow, env=aws_calls.env)
        old_leader = first.task("cluster")["leader"]["instance_id"]
        nodes = sorted(i["instance_id"] for i in first.task("pool")["pool"]["instances"])
        ec2 = aws.client("ec2")
        ec2.terminate_instances(InstanceIds=[old_leader])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[old_leader], WaiterConfig={"Delay": 1})
        aws_calls.clear()
        refused = run_playbook(cluster_play(**options), env=aws_calls.env, expect_rc=2).task("cluster")
        assert "has no leader (it was lost" in refused["msg"] and "replace_lost_leader: true" in refused["msg"]
        assert all(f"{i} (worker, pool m5-large, running)" in refused["msg"] for i in nodes), refused["msg"]
        assert aws_calls.mutating_calls() == []
        replaced = run_playbook(
            grow | {"tasks": [{"name": "cluster", "toil.cluster.toil_cluster": {**options, "zone": ZONE, "replace_lost_leader": True}}]}, env=aws_calls.env
        )
        result = replaced.task("cluster")
        new_leader = result["leader"]["instance_id"]
        assert new_leader != old_leader and result["replaced_lost_leader"] is True and result["rejoin_instance_ids"] == nodes
        assert result["security_group_id"] == first.task("cluster")["security_group_id"]
        assert result["tags"]["ToilNodeType"] == "leader" and result["tags"]["clusterName"] == name
        assert any("had lost its leader" in w for w in result.get("warnings", []))
        again = run_playbook(grow, env=aws_calls.env)  # the play goes on: the pool is whole, the leader stays
        assert again.task("cluster")["changed"] is False and again.task("cluster")["replaced_lost_leader"] is False
        assert sorted(i["instance_id"] for i in again.task("pool")["pool"]["instances"]) == nodes
    finally:
        run_playbook(cluster_play(name=name, state="absent"))


def test_extra_groups_reach_every_node_and_the_node_policy_names_them(aws, run_playbook, key_pair, aws_calls):
    """Toil gives --awsEc2ExtraSecurityGroupId to every node: the workers get the leader's extra groups, and the
    nodes' own launches (the scaler's fleets) may use exactly those besides the cluster's group."""
    ec2, iam = aws.client("ec2"), aws.client("iam")
    extra = make_group(aws, "tcl-efs-access")
    name = "tcl-extra"
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {"name": "cluster", "toil.cluster.toil_cluster": {**launch_options(name, key_pair), "zone": ZONE, "aws_ec2_extra_security_group_ids": [extra]}},
            {"name": "pool", "toil.cluster.toil_nodepool": {"cluster": name, "zone": ZONE, "node_types": "m5.large", "count": 1}},
        ],
    }
    try:
        result = run_playbook(play, env=aws_calls.env)
        group = result.task("cluster")["security_group_id"]
        worker = result.task("pool")["pool"]["instances"][0]["instance_id"]
        instance = ec2.describe_instances(InstanceIds=[worker])["Reservations"][0]["Instances"][0]
        assert sorted(g["GroupId"] for g in instance["SecurityGroups"]) == sorted([group, extra])
        document = iam.get_role_policy(RoleName="tcl_extra_toil", PolicyName="node_scaling")["PolicyDocument"]
        named = sorted(
            r.rsplit("/", 1)[1]
            for st in document["Statement"]
            for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])
            if ":security-group/" in r
        )
        assert named == sorted([group, extra])
    finally:
        run_playbook(cluster_play(name=name, state="absent"))
