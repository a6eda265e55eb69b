"""Make AWS resources shaped the way `toil launch-cluster` makes them, on the embedded endpoint.

Toil 9.6 (src/toil/provisioners/aws/awsProvisioner.py): a security group named after the cluster with
Toil's description, the IAM role and instance profile `<ns>_toil`, a leader tagged Name/Owner/
clusterName/ToilNodeType=leader/sshKeyName, and workers in the group tagged ToilNodeType=worker.
Everything made here is registered for cleanup on the test's AwsContext.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

TRUST_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
)


def _tags(**tags):
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def debian_ami(ec2):
    return ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]


@dataclass
class ToilShapedCluster:
    name: str
    group_id: str | None = None
    leader_id: str | None = None
    worker_ids: list[str] = field(default_factory=list)


def iam_name(cluster):
    """Toil's _namespace_name("toil"), written out independently of the collection's code."""
    return cluster.replace("-", "_") + "_toil"


def make_iam(aws, cluster, region=None):
    iam = aws.client("iam", region)
    name = iam_name(cluster)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_POLICY)
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)

    def cleanup():
        iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=name)
        iam.delete_instance_profile(InstanceProfileName=name)
        iam.delete_role(RoleName=name)

    aws.add_cleanup(cleanup)
    return name


def make_group(aws, cluster, region=None):
    ec2 = aws.client("ec2", region)
    group_id = ec2.create_security_group(GroupName=cluster, Description="Toil appliance security group")["GroupId"]
    aws.add_cleanup(ec2.delete_security_group, GroupId=group_id)
    return group_id


def run_nodes(aws, count, *, region=None, group_id=None, tags=None, instance_type="t3.large", spot=False, zone=None):
    """Launch ``count`` instances, one reservation each (as Toil's per-node calls do); terminated at cleanup."""
    ec2 = aws.client("ec2", region)
    params = {"ImageId": debian_ami(ec2), "MinCount": 1, "MaxCount": 1, "InstanceType": instance_type}
    if group_id:
        params["SecurityGroupIds"] = [group_id]
    if tags:
        params["TagSpecifications"] = [{"ResourceType": "instance", "Tags": _tags(**tags)}]
    if spot:
        params["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {"MaxPrice": "0.5"}}
    if zone:
        params["Placement"] = {"AvailabilityZone": zone}
    ids = [ec2.run_instances(**params)["Instances"][0]["InstanceId"] for _instance in range(count)]
    aws.add_cleanup(_terminate, ec2, ids)
    return ids


def _terminate(ec2, ids):
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def make_toil_cluster(aws, cluster, *, workers=2, region=None, owner="me", key_name="me"):
    """A cluster as Toil 9.6 leaves it after `launch-cluster` and static `-w`: SG, IAM, leader, workers."""
    shaped = ToilShapedCluster(cluster)
    make_iam(aws, cluster, region)
    shaped.group_id = make_group(aws, cluster, region)
    base = {"Name": cluster, "Owner": owner, "clusterName": cluster}
    shaped.leader_id = run_nodes(aws, 1, region=region, group_id=shaped.group_id, tags={**base, "ToilNodeType": "leader", "sshKeyName": key_name})[0]
    if workers:
        shaped.worker_ids = run_nodes(aws, workers, region=region, group_id=shaped.group_id, tags={**base, "ToilNodeType": "worker"}, instance_type="m5.large")
    return shaped
