# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The leader instance: what it runs on, and launching it exactly once.

Toil boots Flatcar from Ignition; here the leader is Debian 12 (the newest official AMI for
the instance type's architecture unless ``image_id`` or ``$TOIL_AWS_AMI`` says otherwise),
configured later by the roles over ssh. Unlike Toil: IMDSv2 is required (hop limit 2 so
pods reach it), the root volume is encrypted gp3 and tagged, and a ``ClientToken`` makes
a retried or repeated launch return the same instance instead of a second leader.
"""

from __future__ import annotations

import hashlib
import os
import time

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError, ToilOperationError
from ansible_collections.toil.cluster.plugins.module_utils.nodes import GONE_STATES, launch_settings, refresh, wait_for

AMI_ENV_VAR = "TOIL_AWS_AMI"
DEBIAN_OWNER_ID = "136693071363"  # the Debian cloud team's account
_DEBIAN_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
# How long to retry RunInstances while a new instance profile is not yet visible to EC2.
PROFILE_PROPAGATION_ATTEMPTS = 20
PROFILE_PROPAGATION_DELAY = 3
# Leaders one cluster generation (one security group) may have had: each lost leader replaced uses one token.
LEADER_TOKENS = 16


def instance_type_info(ec2, instance_type):
    """vCPUs, memory and architectures of an instance type; a clear error if AWS does not know it."""
    try:
        info = ec2.describe_instance_types(InstanceTypes=[instance_type], aws_retry=True)["InstanceTypes"][0]
    except is_boto3_error_code("InvalidInstanceType"):
        raise ToilInputError(f"Unknown instance type '{instance_type}' in this region.") from None
    return {
        "instance_type": instance_type,
        "vcpus": info["VCpuInfo"]["DefaultVCpus"],
        "memory_mib": info["MemoryInfo"]["SizeInMiB"],
        "architectures": info["ProcessorInfo"]["SupportedArchitectures"],
    }


def check_key_pair(ec2, key_pair_name):
    try:
        ec2.describe_key_pairs(KeyNames=[key_pair_name], aws_retry=True)
    except is_boto3_error_code("InvalidKeyPair.NotFound"):
        raise ToilInputError(f"Key pair '{key_pair_name}' does not exist in this region: import it first (amazon.aws.ec2_key).") from None


def resolve_image(ec2, image_id, architectures, environ=None):
    """The AMI to boot: ``image_id``, else ``$TOIL_AWS_AMI``, else the newest official Debian 12."""
    environ = os.environ if environ is None else environ
    wanted = image_id or environ.get(AMI_ENV_VAR)
    if wanted:
        images = ec2.describe_images(ImageIds=[wanted], aws_retry=True)["Images"] if wanted.startswith("ami-") else []
        if not images:
            raise ToilInputError(f"Image '{wanted}' does not exist in this region.")
        image = images[0]
        if image["Architecture"] not in architectures:
            raise ToilInputError(f"Image '{wanted}' is {image['Architecture']}, but the instance type runs {', '.join(architectures)}.")
        return image
    for architecture in architectures:
        if architecture not in _DEBIAN_ARCH:
            continue
        images = ec2.describe_images(
            Owners=[DEBIAN_OWNER_ID],
            Filters=[
                {"Name": "name", "Values": [f"debian-12-{_DEBIAN_ARCH[architecture]}-*"]},
                {"Name": "architecture", "Values": [architecture]},
                {"Name": "state", "Values": ["available"]},
            ],
            aws_retry=True,
        )["Images"]
        if images:
            return max(images, key=lambda i: (i.get("CreationDate", ""), i["Name"]))
    raise ToilInputError(f"No official Debian 12 image for {', '.join(architectures)} in this region: set image_id or {AMI_ENV_VAR}.")


def resolve_subnet(ec2, zone, vpc_subnet):
    """The leader's subnet: ``vpc_subnet`` (which must be in ``zone``), else the zone's default subnet."""
    if vpc_subnet:
        try:
            subnets = ec2.describe_subnets(SubnetIds=[vpc_subnet], aws_retry=True)["Subnets"]
        except is_boto3_error_code("InvalidSubnetID.NotFound"):
            subnets = []
        if not subnets:
            raise ToilInputError(f"Subnet '{vpc_subnet}' does not exist in this region.")
        subnet = subnets[0]
        if subnet["AvailabilityZone"] != zone:
            raise ToilInputError(f"Subnet '{vpc_subnet}' is in {subnet['AvailabilityZone']}, not in the zone {zone}.")
        return subnet
    subnets = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [zone]}, {"Name": "default-for-az", "Values": ["true"]}], aws_retry=True)[
        "Subnets"
    ]
    if not subnets:
        raise ToilInputError(f"Zone {zone} has no default subnet: set vpc_subnet.")
    return subnets[0]


def check_zone(ec2, zone):
    zones = ec2.describe_availability_zones(aws_retry=True)["AvailabilityZones"]
    names = sorted(z["ZoneName"] for z in zones)
    if zone not in names:
        raise ToilInputError(f"Zone {zone} is not a zone of this region ({', '.join(names)}).")


def client_token(cluster_name, group_id, attempt=0):
    """Stable for one cluster generation (its security group), so a retried launch is idempotent."""
    digest = hashlib.sha256(f"toil.cluster/leader/{cluster_name}/{group_id}/{attempt}".encode()).hexdigest()
    return digest[:64]


def leader_request(cluster_name, *, image, instance_type, key_pair_name, subnet_id, group_ids, profile_arn, storage_gib, tags):
    """The RunInstances parameters for the leader (everything but the ClientToken)."""
    return {
        **launch_settings(image, storage_gib, tags),
        "InstanceType": instance_type,
        "KeyName": key_pair_name,
        "MinCount": 1,
        "MaxCount": 1,
        "SubnetId": subnet_id,
        "SecurityGroupIds": list(group_ids),
        "IamInstanceProfile": {"Arn": profile_arn},
    }


def _is_profile_not_ready(error):
    """EC2's answer while a just-created instance profile has not propagated yet."""
    response = getattr(error, "response", {}).get("Error", {})
    return response.get("Code") == "InvalidParameterValue" and "iam" in response.get("Message", "").lower()


def run_leader(ec2, cluster_name, request, group_id, sleep=time.sleep):
    """Launch the leader once: the ClientToken returns the same instance on a retry.

    A token outlives its instance (EC2 keeps it "at least 24 hours after the termination of the
    instance" and answers it with that instance), so a token that answers with a terminated
    leader (a lost leader replaced, replace_lost_leader) or with other settings
    (IdempotentParameterMismatch) is moved on to the next attempt: the same order every run, so
    a retry still lands on the same new leader.
    """
    for attempt in range(LEADER_TOKENS):
        params = dict(request, ClientToken=client_token(cluster_name, group_id, attempt))
        instance = None
        for wait in range(PROFILE_PROPAGATION_ATTEMPTS):
            try:
                instance = ec2.run_instances(aws_retry=True, **params)["Instances"][0]
                break
            except is_boto3_error_code("IdempotentParameterMismatch"):
                break  # this token launched a leader with other settings earlier: use the next one
            except is_boto3_error_code("InvalidParameterValue") as error:
                if not _is_profile_not_ready(error) or wait == PROFILE_PROPAGATION_ATTEMPTS - 1:
                    raise
                sleep(PROFILE_PROPAGATION_DELAY)
        if instance and instance["State"]["Name"] not in GONE_STATES:
            return instance
    raise ToilOperationError(
        f"Could not launch a leader for {cluster_name}: each of its {LEADER_TOKENS} launch tokens answered with an earlier leader; "
        "nothing was launched. Destroy the cluster and launch it again (a new security group starts new tokens)."
    )


def wait_running(ec2, instance_id, timeout):
    """Wait until the leader runs; fail (not warn) after ``timeout`` seconds."""
    wait_for(ec2, "instance_running", [instance_id], timeout)
    return refresh(ec2, [instance_id])[0]
