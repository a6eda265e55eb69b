# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A worker pool's launch template: what an EC2 Fleet launches the pool's nodes with.

EC2 Fleet has no inline launch specification, so each pool keeps one template, ``<cluster>.pool.<pool>``,
tagged with the cluster's tags: our destroy and Toil's destroy-cluster (it deletes every launch
template tagged ``clusterName``) remove it, and so does ``toil_nodepool`` with ``state: absent``.
It holds what every node of the pool shares (security groups, key, profile, IMDSv2, user data);
each fleet override adds its instance type, subnet, AMI and root volume. A change of those shared
settings becomes a new version, found by the settings' digest in a tag of the template, so an
unchanged pool keeps the same version and its launch token keeps naming the same request.
"""

from __future__ import annotations

import base64
import hashlib
import json

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.nodes import METADATA_OPTIONS
from ansible_collections.toil.cluster.plugins.module_utils.tags import COLLECTION_TAG_PREFIX, TAG_CLUSTER_NAME, boto3_tag_list, tag_dict

# The last launch token a fleet of this pool answered with nothing launched (see nodepool.scale_up).
SPENT_TOKEN_TAG = COLLECTION_TAG_PREFIX + "spent-launch-token"
# "<digest of the shared settings>@<the version that holds them>" (pool_launch_template).
SETTINGS_TAG = COLLECTION_TAG_PREFIX + "launch-settings"
_NOT_FOUND = "InvalidLaunchTemplateName.NotFoundException"
_EXISTS = "InvalidLaunchTemplateName.AlreadyExistsException"


def pool_template_name(cluster, pool_name):
    """``<cluster>.pool.<pool>``: cluster and pool names have no '.', so no two pools share one (at most 128)."""
    return f"{cluster}.pool.{pool_name}"


def template_data(context, user_data):
    data = {
        "SecurityGroupIds": [context.group_id, *context.extra_group_ids],
        "MetadataOptions": dict(METADATA_OPTIONS),
    }
    if context.key_name:
        data["KeyName"] = context.key_name
    if context.profile_arn:
        data["IamInstanceProfile"] = {"Arn": context.profile_arn}
    if user_data:
        data["UserData"] = base64.b64encode(user_data.encode()).decode()  # a template's user data is base64, as EC2 wants it
    return data


def _find(ec2, name, cluster):
    try:
        (found,) = ec2.describe_launch_templates(LaunchTemplateNames=[name], aws_retry=True)["LaunchTemplates"]
    except is_boto3_error_code(_NOT_FOUND):
        return None
    if tag_dict(found.get("Tags")).get(TAG_CLUSTER_NAME) != cluster:
        raise ToilInputError(f"Launch template {name} exists but is not tagged {TAG_CLUSTER_NAME}={cluster}: it is not this cluster's; nothing was launched.")
    return found


def pool_launch_template(ec2, cluster, pool_name, data, tags):
    """The pool's template at a version with ``data``, created when missing: {LaunchTemplateId, Version, SpentToken}.

    Which version holds which settings is the template's ``SETTINGS_TAG``, ``<digest of data>@<version>``: one
    DescribeLaunchTemplates tells whether the pool's settings changed since the last launch."""
    name = pool_template_name(cluster, pool_name)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]
    found = _find(ec2, name, cluster)
    if found is None:
        try:
            created = ec2.create_launch_template(
                LaunchTemplateName=name,
                LaunchTemplateData=data,
                TagSpecifications=[{"ResourceType": "launch-template", "Tags": boto3_tag_list({**tags, SETTINGS_TAG: f"{digest}@1"})}],
                aws_retry=True,
            )["LaunchTemplate"]
            return {"LaunchTemplateId": created["LaunchTemplateId"], "Version": created["LatestVersionNumber"], "SpentToken": None}
        except is_boto3_error_code(_EXISTS):  # a concurrent run made it (the name is the lock: no ClientToken, which would
            # answer a pool made again after state=absent with the deleted template)
            found = _find(ec2, name, cluster)
    template_id, marks = found["LaunchTemplateId"], tag_dict(found.get("Tags"))
    known, _at, version = marks.get(SETTINGS_TAG, "").partition("@")
    if known != digest or not version.isdigit():
        version = ec2.create_launch_template_version(
            LaunchTemplateId=template_id,
            LaunchTemplateData=data,
            # a concurrent run changing the same template to the same settings makes one version
            ClientToken=hashlib.sha256(f"{template_id}/{found['LatestVersionNumber']}/{digest}".encode()).hexdigest()[:64],
            aws_retry=True,
        )["LaunchTemplateVersion"]["VersionNumber"]
        ec2.create_tags(Resources=[template_id], Tags=[{"Key": SETTINGS_TAG, "Value": f"{digest}@{version}"}], aws_retry=True)
    return {"LaunchTemplateId": template_id, "Version": int(version), "SpentToken": marks.get(SPENT_TOKEN_TAG)}


def remember_spent_token(ec2, template, token):
    ec2.create_tags(Resources=[template["LaunchTemplateId"]], Tags=[{"Key": SPENT_TOKEN_TAG, "Value": token}], aws_retry=True)


def delete_pool_template(ec2, cluster, pool_name, check_mode):
    """Delete the pool's template (this cluster's only). Returns whether there was one."""
    found = _find(ec2, pool_template_name(cluster, pool_name), cluster)
    if found is not None and not check_mode:
        delete_launch_template(ec2, LaunchTemplateId=found["LaunchTemplateId"])
    return found is not None


def delete_launch_template(ec2, **which):
    """DeleteLaunchTemplate (``LaunchTemplateId=`` or ``LaunchTemplateName=``); one already gone is deleted: a retry
    whose first answer was lost, or a concurrent run, got there first."""
    try:
        ec2.delete_launch_template(aws_retry=True, **which)
    except is_boto3_error_code([_NOT_FOUND, "InvalidLaunchTemplateId.NotFound"]):
        pass
