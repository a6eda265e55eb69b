# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""IAM policy documents, as plain data: the cluster's nodes, and whoever launches clusters.

Toil gives every node ``iam:*``, ``ec2:*``, ``s3:*`` and ``sdb:*`` on ``*``
(``_createProfileArn`` in src/toil/provisioners/aws/awsProvisioner.py). The default here,
``least_privilege``, grants what the nodes really call: Toil's AWS job store on its
``*--toil`` buckets, the user's workflow buckets, the scaler's launches and terminations
bound to this cluster's tags, ``iam:PassRole`` on the cluster's own role, and image pulls
from ECR. ``node_policy="toil"`` reproduces Toil's documents exactly, so Toil and this
collection never rewrite each other's role. docs/iam.md explains every action.
"""

from __future__ import annotations

import json
import re

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.tags import NODE_TYPE_WORKER, TAG_CLUSTER_NAME, TAG_NODE_TYPE

POLICY_VERSION = "2012-10-17"
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
NODE_POLICIES = ("least_privilege", "toil")
# IAM counts policy characters without white space; a role's inline policies share one limit.
ROLE_INLINE_POLICIES_MAX = 10_240
# The controller policy is meant to be a customer managed policy (users' inline ones share 2,048).
MANAGED_POLICY_MAX = 6_144

# Toil's bucket suffixes: the job store (aws:<region>:<name> -> <name>--toil) and the
# cluster's internal bucket for oversized boot configurations (<cluster>--internal).
JOB_STORE_BUCKET_PATTERN = "*--toil"
INTERNAL_BUCKET_PATTERN = "*--internal"
# Toil's role and instance profile names: _namespace_name("toil"), "my-cluster" -> "my_cluster_toil".
TOIL_IAM_NAME_PATTERN = "*_toil"

# Exactly Toil's trust policy (_setup_iam_ec2_role): EC2 may assume the role.
EC2_TRUST_POLICY = {
    "Version": POLICY_VERSION,
    "Statement": [{"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}],
}

# Toil's kubernetes_policy() action list, in Toil's order: ECR pulls, the cluster-autoscaler's
# Auto Scaling calls, and the in-tree AWS cloud provider's load balancer calls.
TOIL_KUBERNETES_ACTIONS = (
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetRepositoryPolicy",
    "ecr:DescribeRepositories",
    "ecr:ListImages",
    "ecr:BatchGetImage",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeTags",
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
    "elasticloadbalancing:AttachLoadBalancerToSubnets",
    "elasticloadbalancing:ConfigureHealthCheck",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateLoadBalancerListeners",
    "elasticloadbalancing:CreateLoadBalancerPolicy",
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteLoadBalancerListeners",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
    "elasticloadbalancing:DeregisterTargets",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancerPolicies",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DetachLoadBalancerFromSubnets",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
    "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
    "kms:DescribeKey",
)

# --- What the nodes really call (least_privilege) --------------------------------------------

# Toil's AWS job store (src/toil/jobStores/aws/jobStore.py, src/toil/lib/aws/s3.py, utils.py),
# bucket level: create_s3_bucket (CreateBucket; BucketTagging.put; enable_public_objects
# deletes the public access block and ownership controls, which IAM authorises as the Put*
# actions; enable_encryption: PutBucketEncryption), bucket_exists and wait_until_exists
# (HeadBucket = ListBucket), list_s3_items (ListObjectsV2), get_bucket_region
# (GetBucketLocation), delete_s3_bucket (ListMultipartUploads, ListObjectVersions, DeleteBucket).
JOB_STORE_BUCKET_ACTIONS = (
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:GetBucketLocation",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketTagging",
    "s3:PutEncryptionConfiguration",
)
# Object level: Get/HeadObject and managed downloads, PutObject and the multipart uploads
# (MultiPartPipe, upload_file/upload_fileobj; Abort), DeleteObject(s), DeleteObject with a
# VersionId when the store is destroyed, PutObjectAcl (get_public_url makes an object
# public-read), and object tags, which CopyObject (s3:// import/export) carries over.
JOB_STORE_OBJECT_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetObject",
    "s3:GetObjectTagging",
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
)
# The user's buckets for workflow inputs and outputs (s3:// URLs: get_object_for_url,
# list_objects_for_url, copy_s3_to_s3, upload_to_s3): read, list and write; never delete.
WORKFLOW_BUCKET_ACTIONS = ("s3:GetBucketLocation", "s3:ListBucket")
WORKFLOW_OBJECT_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:GetObject",
    "s3:GetObjectTagging",
    "s3:PutObject",
    "s3:PutObjectTagging",
)
# What least_privilege grants that Toil's own policy does not: reading AWS's public prices (the Price List), for the
# scaler's and the pools' costs and budgets; without it they fall back to a bundled table.
BEYOND_TOIL_ACTIONS = ("pricing:GetProducts",)
# Read calls of the node pools and the scaler. EC2 has no resource-level permissions for
# Describe*: these can only be granted on "*".
SCALER_DESCRIBE_ACTIONS = (
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceStatus",  # toil_scaler: node repair reads the status checks
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeNetworkAcls",  # the pools' subnets like the leader's (subnets.py)
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotInstanceRequests",
    "ec2:DescribeSpotPriceHistory",  # toil_scaler and toil_nodepool: spot prices for costs and budgets
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "pricing:GetProducts",  # toil_scaler and toil_nodepool: on-demand prices (the Price List has no resources)
)
# A pool's launch template (pool_template.py): made tagged with the cluster, then versioned, marked and deleted
# only while it carries the cluster's tag.
POOL_TEMPLATE_ACTIONS = ("ec2:CreateLaunchTemplateVersion", "ec2:CreateTags", "ec2:DeleteLaunchTemplate")
# RunInstances authorises every resource of the request. These are created by it and must
# carry clusterName=<cluster> in the request's TagSpecifications (aws:RequestTag).
LAUNCH_TAGGED_RESOURCE_TYPES = ("instance", "volume", "network-interface")
# What each created resource must be (AWS Service Authorization Reference, Amazon EC2's condition
# keys): the instance IMDSv2 only (ec2:MetadataHttpTokens), every volume encrypted (ec2:Encrypted),
# the interface in the cluster's VPC (ec2:Vpc, a VPC ARN). Existing resources it may use: the
# cluster's own security group (by ID) and key pair (by name, the key-pair ARN's last part), the
# subnets of the cluster's VPC, any image and snapshot, and its spot requests.
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
# A key pair name becomes part of an ARN: printable ASCII without IAM's wildcards.
_KEY_PAIR_NAME = re.compile(r"^[\x20-\x7e]{1,255}$")
# A job store name pattern: Toil's job store names (lowercase letters, digits, '-'), a '*' allowed.
_JOB_STORE_PATTERN = re.compile(r"^[a-z0-9*][a-z0-9*-]{0,62}$")
# ECR image pulls with the node's role (Toil's kubernetes policy without its listing calls); the kubelet has no ECR
# credential provider here (docs/iam.md), so this is for jobs or a provider the user adds.
ECR_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")

# --- What the controller calls (toil_cluster, state present and absent) ----------------------

CONTROLLER_DESCRIBE_ACTIONS = (
    "autoscaling:DescribeAutoScalingGroups",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceStatus",  # toil_scaler: node repair reads the status checks
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeKeyPairs",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeNetworkAcls",  # toil_nodepool: the subnets like the leader's
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotInstanceRequests",
    "ec2:DescribeSpotPriceHistory",  # toil_nodepool: the spot zone choice
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcs",
    "pricing:GetProducts",  # toil_nodepool, toil_scaler: on-demand prices for costs and budgets
    "sts:GetCallerIdentity",
)
CONTROLLER_SECURITY_GROUP_ACTIONS = (
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateSecurityGroup",
    "ec2:DeleteSecurityGroup",
    "ec2:RevokeSecurityGroupIngress",
)
# Removal of what a cluster (ours or Toil's) leaves: only resources tagged with a clusterName.
CONTROLLER_REMOVE_ACTIONS = (
    "autoscaling:DeleteAutoScalingGroup",
    "ec2:CancelSpotInstanceRequests",
    "ec2:DeleteLaunchTemplate",
    "ec2:TerminateInstances",
)
CONTROLLER_IAM_ACTIONS = (
    "iam:AddRoleToInstanceProfile",
    "iam:CreateInstanceProfile",
    "iam:CreateRole",
    "iam:DeleteInstanceProfile",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:GetInstanceProfile",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
    "iam:PutRolePolicy",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
    "iam:TagRole",
)
# Emptying and deleting a Toil cluster's <cluster>--internal bucket (as ``toil clean`` does).
CONTROLLER_INTERNAL_BUCKET_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:DeleteBucket",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetBucketLocation",
    "s3:GetBucketVersioning",  # s3_buckets.empty_and_delete_bucket: list by key when never versioned
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
)

# --- Validation ----------------------------------------------------------------------------

_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
_REGION_PREFIX = {"aws-cn": "cn-", "aws-us-gov": "us-gov-"}
_BUCKET_CHARS = re.compile(r"^[a-z0-9.-]+$")
_BUCKET_ENDS = re.compile(r"^[a-z0-9](.*[a-z0-9])?$")
_IPV4 = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
# Names S3 reserves for its own features (general purpose bucket naming rules).
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
BUCKET_NAME_MIN = 3
BUCKET_NAME_MAX = 63


def validate_bucket_name(name):
    """Return ``name`` if S3 accepts it for a general purpose bucket, else raise ToilInputError."""
    if not isinstance(name, str) or not name:
        raise ToilInputError(f"Invalid S3 bucket name {name!r}: give the bucket's name as a non-empty string, like 'my-lab-data'.")
    problem = None
    if name.startswith(("s3://", "arn:")) or "/" in name:
        problem = "give the bare bucket name, without 's3://', an ARN or a key prefix"
    elif not BUCKET_NAME_MIN <= len(name) <= BUCKET_NAME_MAX:
        problem = f"it must be {BUCKET_NAME_MIN} to {BUCKET_NAME_MAX} characters long, not {len(name)}"
    elif not _BUCKET_CHARS.fullmatch(name):
        problem = "use only lowercase letters, digits, '.' and '-'"
    elif not _BUCKET_ENDS.fullmatch(name):
        problem = "it must begin and end with a lowercase letter or digit"
    elif ".." in name:
        problem = "it must not contain two adjacent periods"
    elif _IPV4.fullmatch(name):
        problem = "it must not look like an IP address"
    elif name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES):
        problem = "S3 reserves names starting with " + ", ".join(_BUCKET_RESERVED_PREFIXES) + " or ending with " + ", ".join(_BUCKET_RESERVED_SUFFIXES)
    if problem:
        raise ToilInputError(f"Invalid S3 bucket name '{name}': {problem}.")
    return name


def _bucket_names(s3_buckets):
    """Validated, deduplicated and sorted: the same buckets in any order give the same document."""
    if isinstance(s3_buckets, str) or not isinstance(s3_buckets, list | tuple | set | frozenset):
        raise ToilInputError(f"s3_buckets must be a list of bucket names, not {s3_buckets!r}.")
    return sorted({validate_bucket_name(name) for name in s3_buckets})


def _check_partition(partition):
    if partition not in PARTITIONS:
        raise ToilInputError(f"Unknown AWS partition {partition!r}: use one of {', '.join(PARTITIONS)}.")


def _check_account(account_id):
    if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id):
        raise ToilInputError(f"Invalid AWS account ID {account_id!r}: it must be a string of exactly 12 digits, like '123456789012'.")


def _check_region(region, partition):
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ToilInputError(f"Invalid AWS region {region!r}: expected a region name like 'us-west-2'.")
    prefix = _REGION_PREFIX.get(partition)
    in_other_partition = any(region.startswith(p) for p in _REGION_PREFIX.values())
    if (prefix and not region.startswith(prefix)) or (prefix is None and in_other_partition):
        raise ToilInputError(f"Region {region} is not in the AWS partition {partition}.")


def _check_inputs(cluster_name, partition, region, account_id, role_name, node_policy):
    if node_policy not in NODE_POLICIES:
        raise ToilInputError(f"Unknown node_policy {node_policy!r}: use one of {', '.join(NODE_POLICIES)}.")
    if not isinstance(cluster_name, str) or not cluster_name.strip():
        raise ToilInputError("The cluster name must be a non-empty string.")
    _check_partition(partition)
    _check_region(region, partition)
    _check_account(account_id)
    if not isinstance(role_name, str) or not _ROLE_NAME.fullmatch(role_name):
        raise ToilInputError(f"Invalid IAM role name {role_name!r}: 1 to 64 characters among letters, digits and '+=,.@_-'.")


def _launch_inputs(security_group_id, vpc_id, key_pair_name, extra_security_group_ids=()):
    """The cluster's group (and the extra groups every node also gets), VPC and key pair, as they go into ARNs
    (values from AWS: checked too)."""
    if isinstance(extra_security_group_ids, str) or not isinstance(extra_security_group_ids, list | tuple):
        raise ToilInputError(f"extra_security_group_ids must be a list of security group IDs, not {extra_security_group_ids!r}.")
    for group_id in (security_group_id, *extra_security_group_ids):
        if not isinstance(group_id, str) or not _SECURITY_GROUP_ID.fullmatch(group_id):
            raise ToilInputError(f"Invalid security group ID {group_id!r}: expected sg- and 8 or 17 hexadecimal digits.")
    if not isinstance(vpc_id, str) or not _VPC_ID.fullmatch(vpc_id):
        raise ToilInputError(f"Invalid VPC ID {vpc_id!r}: expected vpc- and 8 or 17 hexadecimal digits.")
    if not isinstance(key_pair_name, str) or not _KEY_PAIR_NAME.fullmatch(key_pair_name) or any(c in key_pair_name for c in "*?"):
        raise ToilInputError(f"Invalid key pair name {key_pair_name!r}: 1 to 255 printable ASCII characters, without '*' or '?'.")
    extras = sorted(set(extra_security_group_ids) - {security_group_id})
    return {"security_group_id": security_group_id, "extra_security_group_ids": extras, "vpc_id": vpc_id, "key_pair_name": key_pair_name}


def _job_store_patterns(patterns):
    """Job store name patterns (``my-lab-*``), validated, deduplicated and sorted; () for any job store."""
    if isinstance(patterns, str) or not isinstance(patterns, list | tuple | set | frozenset):
        raise ToilInputError(f"job_store_patterns must be a list of job store name patterns, not {patterns!r}.")
    for pattern in patterns:
        if not isinstance(pattern, str) or not _JOB_STORE_PATTERN.fullmatch(pattern) or pattern.strip("*") == "" or "--" in pattern:
            raise ToilInputError(
                f"Invalid job store name pattern {pattern!r}: a job store name (lowercase letters, digits, single '-') "
                "with '*' for any characters, like 'my-lab-*'; a pattern of '*' alone is the default."
            )
    return sorted(set(patterns))


# --- Building blocks --------------------------------------------------------------------------


def policy_size(document):
    """The characters IAM counts against its size limits: the JSON without white space."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))


def _document(*statements):
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def _statement(sid, actions, resources, condition=None):
    statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _s3(partition, resource):
    return f"arn:{partition}:s3:::{resource}"


def _toil_full_policy(service):
    """Toil's full_policy(service): one statement, Action as a string, no Sid."""
    return {"Version": POLICY_VERSION, "Statement": [{"Effect": "Allow", "Resource": "*", "Action": f"{service}:*"}]}


def toil_policies(kubernetes=True):
    """Exactly the inline policies Toil 9.6's _createProfileArn puts on the role."""
    policies = {service + "_full": _toil_full_policy(service) for service in ("iam", "ec2", "s3")}
    policies["sbd_full"] = _toil_full_policy("sdb")  # sic: Toil's name
    if kubernetes:
        policies["kubernetes_merged"] = {
            "Version": POLICY_VERSION,
            "Statement": [{"Effect": "Allow", "Resource": "*", "Action": list(TOIL_KUBERNETES_ACTIONS)}],
        }
    return policies


def _job_store_policy(partition, patterns=()):
    """Toil's job-store buckets: ``*--toil`` (any job store), or ``<pattern>--toil`` for each pattern given."""
    buckets = [p + JOB_STORE_BUCKET_PATTERN[1:] for p in patterns] or [JOB_STORE_BUCKET_PATTERN]
    return _document(
        _statement("JobStoreBuckets", JOB_STORE_BUCKET_ACTIONS, [_s3(partition, b) for b in buckets]),
        _statement("JobStoreObjects", JOB_STORE_OBJECT_ACTIONS, [_s3(partition, b + "/*") for b in buckets]),
    )


def _workflow_buckets_policy(partition, buckets):
    return _document(
        _statement("WorkflowBuckets", WORKFLOW_BUCKET_ACTIONS, [_s3(partition, name) for name in buckets]),
        _statement("WorkflowObjects", WORKFLOW_OBJECT_ACTIONS, [_s3(partition, name + "/*") for name in buckets]),
    )


def _node_scaling_policy(cluster_name, partition, region, account_id, role_name, launch):
    def ec2(resource, account=account_id):
        return f"arn:{partition}:ec2:{region}:{account}:{resource}"

    tagged = {f"aws:RequestTag/{TAG_CLUSTER_NAME}": cluster_name}
    vpc = {"ArnEquals": {"ec2:Vpc": ec2("vpc/" + launch["vpc_id"])}}
    return _document(
        _statement("DescribeForScaling", SCALER_DESCRIBE_ACTIONS, "*"),
        _statement(
            "LaunchImdsv2Instances",
            ["ec2:RunInstances"],
            ec2("instance/*"),
            {"StringEquals": {**tagged, "ec2:MetadataHttpTokens": "required"}},
        ),
        _statement("LaunchEncryptedVolumes", ["ec2:RunInstances"], ec2("volume/*"), {"StringEquals": tagged, "Bool": {"ec2:Encrypted": "true"}}),
        _statement("LaunchInterfacesInVpc", ["ec2:RunInstances"], ec2("network-interface/*"), {"StringEquals": tagged, **vpc}),
        _statement("LaunchIntoVpcSubnets", ["ec2:RunInstances"], ec2("subnet/*"), vpc),
        # A pool scales up with one instant EC2 Fleet (nodepool.scale_up), which launches with the caller's own
        # RunInstances rights (these statements') from the pool's launch template, which must be this cluster's.
        _statement(
            "ClusterTemplates",
            ["ec2:CreateFleet", "ec2:RunInstances", *POOL_TEMPLATE_ACTIONS],
            ec2("launch-template/*"),
            {"StringEquals": {f"ec2:ResourceTag/{TAG_CLUSTER_NAME}": cluster_name}},
        ),
        # Unconditioned: a template launches nothing by itself, and only one tagged with this cluster (on creation,
        # TagOnCreateOnly) can be launched from, changed or deleted (ClusterTemplates).
        _statement("NewTemplates", ["ec2:CreateLaunchTemplate"], ec2("launch-template/*")),
        _statement(
            "LaunchWithClusterGroupAndKey",
            ["ec2:RunInstances", "ec2:CreateFleet"],  # CreateFleet: the fleet, and what its launches use
            [
                ec2("fleet/*"),
                ec2("security-group/" + launch["security_group_id"]),
                # Toil's --awsEc2ExtraSecurityGroupId: every node gets the leader's extra groups, these and no other.
                *(ec2("security-group/" + group_id) for group_id in launch["extra_security_group_ids"]),
                ec2("key-pair/" + launch["key_pair_name"]),
                ec2("image/*", account=""),
                ec2("snapshot/*", account=""),
                ec2("spot-instances-request/*"),
            ],
        ),
        _statement(
            "TagOnLaunchOnly",
            ["ec2:CreateTags"],
            [ec2(kind + "/*") for kind in (*LAUNCH_TAGGED_RESOURCE_TYPES, "spot-instances-request", "launch-template")],
            {"StringEquals": {"ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]}},
        ),
        _statement(
            "TerminateWorkers",
            ["ec2:TerminateInstances"],
            ec2("instance/*"),
            {"StringEquals": {f"ec2:ResourceTag/{TAG_CLUSTER_NAME}": cluster_name, f"ec2:ResourceTag/{TAG_NODE_TYPE}": NODE_TYPE_WORKER}},
        ),
        # configure_cluster (run by the leader's autoscale) pins new nodes' host keys from their console output.
        _statement(
            "ReadConsoles",
            ["ec2:GetConsoleOutput"],
            ec2("instance/*"),
            {"StringEquals": {f"ec2:ResourceTag/{TAG_CLUSTER_NAME}": cluster_name}},
        ),
        _statement(
            "CancelSpotRequests",
            ["ec2:CancelSpotInstanceRequests"],
            ec2("spot-instances-request/*"),
            {"StringEquals": {f"ec2:ResourceTag/{TAG_CLUSTER_NAME}": cluster_name}},
        ),
        _statement(
            "PassRoleToEc2",
            ["iam:PassRole"],
            f"arn:{partition}:iam::{account_id}:role/{role_name}",
            {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
    )


def _kubernetes_policy(partition):
    return _document(
        _statement("EcrAuthorizationToken", ["ecr:GetAuthorizationToken"], "*"),
        _statement("EcrPullImages", ECR_PULL_ACTIONS, f"arn:{partition}:ecr:*:*:repository/*"),
    )


def leader_policies(
    cluster_name,
    *,
    partition="aws",
    region,
    account_id,
    role_name,
    s3_buckets=(),
    node_policy="least_privilege",
    kubernetes=True,
    security_group_id,
    vpc_id,
    key_pair_name,
    job_store_patterns=(),
    extra_security_group_ids=(),
):
    """The inline policies of the cluster's role: policy name -> policy document.

    ``least_privilege`` (the default) grants what the leader and its workers call; its
    RunInstances only into ``security_group_id`` (and ``extra_security_group_ids``, the groups every node
    also gets), subnets of ``vpc_id``, with ``key_pair_name``,
    IMDSv2 and encrypted volumes; job stores only named like ``job_store_patterns`` when given.
    ``toil`` is Toil's own broad set, byte for byte. Inputs are validated first and a
    bad one raises ToilInputError, whatever ``node_policy`` is.
    """
    _check_inputs(cluster_name, partition, region, account_id, role_name, node_policy)
    buckets = _bucket_names(s3_buckets)
    launch = _launch_inputs(security_group_id, vpc_id, key_pair_name, extra_security_group_ids)
    patterns = _job_store_patterns(job_store_patterns)
    if node_policy == "toil":
        return toil_policies(kubernetes=kubernetes)
    policies = {"toil_job_store": _job_store_policy(partition, patterns)}
    if buckets:
        policies["workflow_buckets"] = _workflow_buckets_policy(partition, buckets)
    policies["node_scaling"] = _node_scaling_policy(cluster_name, partition, region, account_id, role_name, launch)
    if kubernetes:
        policies["kubernetes_images"] = _kubernetes_policy(partition)
    total = sum(policy_size(document) for document in policies.values())
    if total > ROLE_INLINE_POLICIES_MAX:
        raise ToilInputError(
            f"The role's policies would take {total} characters, more than IAM's {ROLE_INLINE_POLICIES_MAX} for a role's inline policies: "
            f"list fewer s3_buckets ({len(buckets)} given)."
        )
    return policies


def controller_policy(*, partition="aws", account_id):
    """The policy of the user or role that runs toil_cluster (launch and destroy).

    One document, a Sid per group, meant to be a customer managed policy. EC2 calls stay on
    ``*`` (the controller works in any region and VPC); removals need a clusterName tag,
    tags only on create or on nodes that already carry one, IAM only on Toil's ``*_toil`` names, S3 only on ``*--internal``
    and on job-store buckets ``*--toil`` (list, empty, delete: ``toil clean``).
    It can give a ``*_toil`` role any policy and start an instance with it: treat it as
    privileged, like any identity that may launch clusters.
    """
    _check_partition(partition)
    _check_account(account_id)
    iam = f"arn:{partition}:iam::{account_id}"
    toil_roles = f"{iam}:role/{TOIL_IAM_NAME_PATTERN}"
    return _document(
        _statement("DiscoverReadOnly", CONTROLLER_DESCRIBE_ACTIONS, "*"),
        _statement("ClusterSecurityGroup", CONTROLLER_SECURITY_GROUP_ACTIONS, "*"),
        _statement("LaunchLeader", ["ec2:RunInstances"], "*"),
        # toil_nodepool: a pool's instant EC2 Fleet and its launch template, made tagged with the cluster
        _statement("LaunchPoolFleets", ["ec2:CreateFleet", "ec2:CreateLaunchTemplate"], "*"),
        _statement(
            "TagOnCreateOnly",
            ["ec2:CreateTags"],
            "*",
            {"StringEquals": {"ec2:CreateAction": ["CreateSecurityGroup", "RunInstances", "CreateFleet", "CreateLaunchTemplate"]}},
        ),
        _statement(
            "KeepClusterTemplates",
            list(POOL_TEMPLATE_ACTIONS),
            f"arn:{partition}:ec2:*:{account_id}:launch-template/*",
            {"Null": {f"aws:ResourceTag/{TAG_CLUSTER_NAME}": "false"}},
        ),
        _statement(
            "RetagClusterNodes",
            ["ec2:CreateTags"],
            [f"arn:{partition}:ec2:*:{account_id}:{kind}/*" for kind in ("instance", "volume")],
            {"Null": {f"aws:ResourceTag/{TAG_CLUSTER_NAME}": "false"}},
        ),
        _statement("RemoveClusterTaggedResources", CONTROLLER_REMOVE_ACTIONS, "*", {"Null": {f"aws:ResourceTag/{TAG_CLUSTER_NAME}": "false"}}),
        # configure_cluster pins nodes' ssh host keys from their console output (host_keys.py).
        _statement(
            "ReadConsoles",
            ["ec2:GetConsoleOutput"],
            f"arn:{partition}:ec2:*:{account_id}:instance/*",
            {"Null": {f"aws:ResourceTag/{TAG_CLUSTER_NAME}": "false"}},
        ),
        _statement("ToilRolesAndInstanceProfiles", CONTROLLER_IAM_ACTIONS, [toil_roles, f"{iam}:instance-profile/{TOIL_IAM_NAME_PATTERN}"]),
        # Unconditioned: AddRoleToInstanceProfile checks PassRole too, and AWS does not document
        # which iam:PassedToService it evaluates there. The roles' trust policy admits EC2 only.
        _statement("PassToilRoles", ["iam:PassRole"], toil_roles),
        _statement(
            "ToilInternalBucket",
            CONTROLLER_INTERNAL_BUCKET_ACTIONS,
            [_s3(partition, INTERNAL_BUCKET_PATTERN), _s3(partition, INTERNAL_BUCKET_PATTERN + "/*")],
        ),
        # toil_jobstore from the controller (run_workflow checks the name, then cleans the store): the same calls.
        _statement(
            "ToilJobStoreBuckets",
            CONTROLLER_INTERNAL_BUCKET_ACTIONS,
            [_s3(partition, JOB_STORE_BUCKET_PATTERN), _s3(partition, JOB_STORE_BUCKET_PATTERN + "/*")],
        ),
    )
