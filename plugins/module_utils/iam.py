# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The cluster's IAM role and instance profile, under Toil's derived name.

Both are named ``iam_name(C)`` (``my-cluster`` -> ``my_cluster_toil``) and only that exact
name is ever treated as the cluster's (see names.py).
"""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.toil.cluster.plugins.module_utils.names import iam_name


def get_role(iam, cluster_name):
    """The cluster's IAM role, or None."""
    try:
        return iam.get_role(RoleName=iam_name(cluster_name), aws_retry=True)["Role"]
    except is_boto3_error_code("NoSuchEntity"):
        return None


def get_instance_profile(iam, cluster_name):
    """The cluster's instance profile, or None."""
    try:
        return iam.get_instance_profile(InstanceProfileName=iam_name(cluster_name), aws_retry=True)["InstanceProfile"]
    except is_boto3_error_code("NoSuchEntity"):
        return None


def iam_summary(resource, name_key):
    if resource is None:
        return None
    return {"name": resource[name_key], "arn": resource["Arn"]}
