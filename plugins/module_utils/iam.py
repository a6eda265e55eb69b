# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The cluster's IAM role and instance profile, under Toil's derived name.

Both are named ``iam_name(C)`` (``my-cluster`` -> ``my_cluster_toil``) and only that exact
name is ever treated as the cluster's (see names.py).
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import unquote

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.toil.cluster.plugins.module_utils.iam_policies import EC2_TRUST_POLICY
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


def _done_if(call, codes, **kwargs):
    """``call(**kwargs)``, where an error in ``codes`` means it is already done: a retry whose first
    attempt AWS carried out (the answer was lost) meets that attempt's effect."""
    try:
        return call(aws_retry=True, **kwargs)
    except is_boto3_error_code(codes):
        return None


def iam_summary(resource, name_key):
    if resource is None:
        return None
    return {"name": resource[name_key], "arn": resource["Arn"]}


def _policy_documents(iam, role_name):
    names = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
        names.extend(page["PolicyNames"])
    return {name: iam.get_role_policy(RoleName=role_name, PolicyName=name, aws_retry=True)["PolicyDocument"] for name in names}


def _summaries(documents):
    return {key: policy_summary(document) for key, document in documents.items()}


def _normalise(document):
    """IAM returns documents as dicts (boto3 decodes them); compare them canonically."""
    if isinstance(document, str):
        document = json.loads(unquote(document))
    return json.loads(json.dumps(document, sort_keys=True))


def policy_summary(document):
    """One line for a diff instead of the whole document (a first launch's would be some 200 lines of JSON): its size,
    and a digest that changes with any word of it. docs/iam.md shows the documents whole."""
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    actions = set()
    for statement in statements:
        action = statement.get("Action", [])
        actions.update([action] if isinstance(action, str) else action)
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:12]
    return f"{len(statements)} statements, {len(actions)} actions, sha256 {digest}"


def ensure_role_and_profile(iam, cluster_name, policies, tags, check_mode):
    """The cluster's role with exactly ``policies`` inline, inside the cluster's instance profile.

    Extra inline policies are removed and changed ones rewritten, as Toil does. Returns
    ``(changed, profile_arn or None, before, after)``; in check mode nothing changes and a
    profile that would be created has no ARN yet.
    """
    name = iam_name(cluster_name)
    role = get_role(iam, cluster_name)
    profile = get_instance_profile(iam, cluster_name)
    current = _policy_documents(iam, name) if role else {}
    wanted = {key: _normalise(doc) for key, doc in policies.items()}
    current = {key: _normalise(doc) for key, doc in current.items()}
    in_profile = bool(profile and any(r["RoleName"] == name for r in profile.get("Roles", [])))
    changed = current != wanted or not in_profile or role is None or profile is None
    before = {"role": name, "policies": _summaries(current), "instance_profile": name, "role_in_profile": in_profile} if (role or profile) else None
    after = {"role": name, "policies": _summaries(wanted), "instance_profile": name, "role_in_profile": True}
    if check_mode or not changed:
        return changed, profile["Arn"] if profile else None, before, after
    tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    if role is None:
        _done_if(iam.create_role, "EntityAlreadyExists", RoleName=name, AssumeRolePolicyDocument=json.dumps(EC2_TRUST_POLICY), Tags=tag_list)
    for policy_name in set(current) - set(wanted):
        _done_if(iam.delete_role_policy, "NoSuchEntity", RoleName=name, PolicyName=policy_name)
    for policy_name, document in wanted.items():
        if current.get(policy_name) != document:
            iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document), aws_retry=True)
    if profile is None:
        created = _done_if(iam.create_instance_profile, "EntityAlreadyExists", InstanceProfileName=name, Tags=tag_list)
        profile = created["InstanceProfile"] if created else get_instance_profile(iam, cluster_name)
    if not in_profile:
        try:
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name, aws_retry=True)
        except is_boto3_error_code("LimitExceeded"):  # a profile holds one role: done, if it is ours
            if not any(r["RoleName"] == name for r in get_instance_profile(iam, cluster_name).get("Roles", [])):
                raise
    return True, profile["Arn"], before, after


def delete_role_and_profile(iam, cluster_name, check_mode):
    """Remove the cluster's instance profile and role (exact name only). Returns what went."""
    name = iam_name(cluster_name)
    role = get_role(iam, cluster_name)
    profile = get_instance_profile(iam, cluster_name)
    removed = {"iam_role": name if role else None, "instance_profile": name if profile else None}
    if check_mode:
        return removed
    if profile:
        for member in profile.get("Roles", []):
            _done_if(iam.remove_role_from_instance_profile, "NoSuchEntity", InstanceProfileName=name, RoleName=member["RoleName"])
        _done_if(iam.delete_instance_profile, "NoSuchEntity", InstanceProfileName=name)
    if role:
        for page in iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=name):
            for other in page["InstanceProfiles"]:
                _done_if(iam.remove_role_from_instance_profile, "NoSuchEntity", InstanceProfileName=other["InstanceProfileName"], RoleName=name)
        for policy_name in _policy_documents(iam, name):
            _done_if(iam.delete_role_policy, "NoSuchEntity", RoleName=name, PolicyName=policy_name)
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
            for attached in page["AttachedPolicies"]:
                _done_if(iam.detach_role_policy, "NoSuchEntity", RoleName=name, PolicyArn=attached["PolicyArn"])
        _done_if(iam.delete_role, "NoSuchEntity", RoleName=name)
    return removed
