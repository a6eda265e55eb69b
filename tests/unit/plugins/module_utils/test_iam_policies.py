# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""IAM policy documents: Toil's own, the nodes' least privilege, and the controller's (docs/iam.md).

The documents are checked with a small evaluator (Allow statements, ``*`` wildcards,
``StringEquals`` and ``Null`` conditions: all these documents use), so the tests say what a
call on a resource may or may not do rather than how the JSON is spelled.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.iam_policies import (
    BEYOND_TOIL_ACTIONS,
    EC2_TRUST_POLICY,
    MANAGED_POLICY_MAX,
    NODE_POLICIES,
    PARTITIONS,
    ROLE_INLINE_POLICIES_MAX,
    controller_policy,
    leader_policies,
    policy_size,
    validate_bucket_name,
)
from ansible_collections.toil.cluster.plugins.module_utils.names import iam_name

ACCOUNT = "123456789012"
CLUSTER = "my-cluster"
ROLE = iam_name(CLUSTER)  # my_cluster_toil
REGION = "us-west-2"
# What the node policy pins RunInstances to: the cluster's group, VPC and key pair.
GROUP_ID = "sg-0123456789abcdef0"
VPC_ID = "vpc-0123456789abcdef0"
KEY_NAME = "my-key"
LAUNCH = {"security_group_id": GROUP_ID, "vpc_id": VPC_ID, "key_pair_name": KEY_NAME}
DOCS = Path(__file__).resolve().parents[4] / "docs" / "iam.md"

# Variations of the nodes' policy every structural test runs on.
SCENARIOS = {
    "kubernetes": {},
    "no-kubernetes": {"kubernetes": False},
    "buckets": {"s3_buckets": ["my-lab-data", "inputs.example.org"]},
    "china": {"partition": "aws-cn", "region": "cn-north-1"},
    "govcloud": {"partition": "aws-us-gov", "region": "us-gov-west-1", "s3_buckets": ["gov-data"]},
}
# Actions AWS grants only on "*": no resource-level permissions exist for them.
# pricing:GetProducts: the Price List has no resource types (AWS Service Authorization Reference, AWS Price List).
UNSCOPABLE = ("ec2:Describe*", "ecr:GetAuthorizationToken", "autoscaling:Describe*", "sts:GetCallerIdentity", "pricing:GetProducts")
FORBIDDEN_ACTIONS = ("*", "*:*", "ec2:*", "s3:*", "iam:*", "sdb:*")


def nodes(scenario="kubernetes", **overrides):
    kwargs = {"region": REGION, "account_id": ACCOUNT, "role_name": ROLE, **LAUNCH, **SCENARIOS[scenario], **overrides}
    return leader_policies(kwargs.pop("cluster_name", CLUSTER), **kwargs)


def partition_of(scenario):
    return SCENARIOS[scenario].get("partition", "aws")


def region_of(scenario):
    return SCENARIOS[scenario].get("region", REGION)


# --- a small policy evaluator -------------------------------------------------------------------


def as_list(value):
    return [value] if isinstance(value, str) else list(value)


def documents(policies_or_document):
    return [policies_or_document] if "Statement" in policies_or_document else list(policies_or_document.values())


def statements(policies_or_document):
    return [statement for document in documents(policies_or_document) for statement in document["Statement"]]


def condition_holds(condition, context):
    for operator, tests in condition.items():
        for key, value in tests.items():
            expected = as_list(value)
            if operator in ("StringEquals", "ArnEquals", "Bool"):
                if context.get(key) not in expected:
                    return False
            elif operator == "Null":
                if ("true" if key not in context else "false") not in expected:
                    return False
            else:
                raise AssertionError(f"the test evaluator does not know the condition operator {operator}")
    return True


def allowed(policies, action, resource, context=None):
    """Would these Allow-only documents permit ``action`` on ``resource`` in ``context``?"""
    for statement in statements(policies):
        assert statement["Effect"] == "Allow"
        if not any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in as_list(statement["Resource"])):
            continue
        if condition_holds(statement.get("Condition", {}), context or {}):
            return True
    return False


def grants(policies):
    """Every (action, resource) pair a document names."""
    return [(action, resource) for statement in statements(policies) for action in as_list(statement["Action"]) for resource in as_list(statement["Resource"])]


def ec2_arn(kind, partition="aws", region=REGION, account=ACCOUNT):
    return f"arn:{partition}:ec2:{region}:{account}:{kind}"


def assert_valid_document(document):
    """IAM's grammar as these documents use it: Version, Statement list, Sid/Effect/Action/Resource(/Condition)."""
    assert json.loads(json.dumps(document)) == document
    assert set(document) == {"Version", "Statement"}
    assert document["Version"] == "2012-10-17"
    assert isinstance(document["Statement"], list)
    assert document["Statement"]
    sids = [statement["Sid"] for statement in document["Statement"]]
    assert len(sids) == len(set(sids)), f"duplicate Sids: {sids}"
    for statement in document["Statement"]:
        assert set(statement) in ({"Sid", "Effect", "Action", "Resource"}, {"Sid", "Effect", "Action", "Resource", "Condition"})
        assert re.fullmatch(r"[A-Za-z0-9]+", statement["Sid"]), statement["Sid"]
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        assert isinstance(actions, list)
        assert actions
        assert actions == sorted(set(actions))
        for action in actions:
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), action
        resources = as_list(statement["Resource"])
        assert resources
        assert len(resources) == len(set(resources))
        for resource in resources:
            assert resource == "*" or resource.startswith("arn:"), resource
        for operator, tests in statement.get("Condition", {}).items():
            assert operator in ("StringEquals", "Null", "ArnEquals", "Bool"), operator
            assert tests
            for key, value in tests.items():
                assert isinstance(key, str)
                assert all(isinstance(item, str) for item in as_list(value))


# --- Toil's own policy (node_policy: toil) ---------------------------------------------------------

TOIL_CASES = [{"cluster": CLUSTER, "cluster_type": "kubernetes"}, {"cluster": CLUSTER, "cluster_type": "mesos"}]


@pytest.mark.toil("iam_policies", param="case")
@pytest.mark.parametrize("case", TOIL_CASES, ids=lambda case: case["cluster_type"])
def test_toil_policy_is_toils_own_byte_for_byte(case, toil):
    """Toil's _createProfileArn, run for real; equal JSON text, so neither tool rewrites the other's role."""
    expected = toil("iam_policies", case)["value"]
    ours = nodes(node_policy="toil", kubernetes=case["cluster_type"] == "kubernetes")
    assert ours == expected["policies"]
    assert json.dumps(ours) == json.dumps(expected["policies"])
    assert expected["role_name"] == ROLE


@pytest.mark.toil("iam_policies", arg=TOIL_CASES[0])
def test_trust_policy_is_toils_own(toil):
    expected = toil("iam_policies", TOIL_CASES[0])["value"]["trust_policy"]
    assert expected == EC2_TRUST_POLICY
    assert json.dumps(EC2_TRUST_POLICY) == json.dumps(expected)


@pytest.mark.parametrize("kubernetes", [True, False])
def test_toil_policy_names(kubernetes):
    expected = {"iam_full", "ec2_full", "s3_full", "sbd_full"} | ({"kubernetes_merged"} if kubernetes else set())
    assert set(nodes(node_policy="toil", kubernetes=kubernetes)) == expected


def test_toil_policy_does_not_depend_on_the_least_privilege_inputs():
    assert nodes("buckets", node_policy="toil") == nodes(node_policy="toil") == nodes("china", node_policy="toil")


def test_node_policies():
    assert NODE_POLICIES == ("least_privilege", "toil")
    assert nodes() == nodes(node_policy="least_privilege")


# --- least privilege: shape ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "names"),
    [
        ("kubernetes", ["toil_job_store", "node_scaling", "kubernetes_images"]),
        ("no-kubernetes", ["toil_job_store", "node_scaling"]),
        ("buckets", ["toil_job_store", "workflow_buckets", "node_scaling", "kubernetes_images"]),
    ],
)
def test_least_privilege_policy_names(scenario, names):
    assert list(nodes(scenario)) == names


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_least_privilege_documents_are_valid_iam_grammar(scenario):
    for document in nodes(scenario).values():
        assert_valid_document(document)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_least_privilege_has_no_wildcard_actions(scenario):
    actions = [action for action, _resource in grants(nodes(scenario))]
    assert not set(actions) & set(FORBIDDEN_ACTIONS)
    assert not [action for action in actions if "*" in action]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_star_resources_only_for_actions_aws_cannot_scope(scenario):
    for action, resource in grants(nodes(scenario)):
        if resource == "*":
            assert any(fnmatch.fnmatchcase(action, pattern) for pattern in UNSCOPABLE), action


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_arn_is_in_the_partition(scenario):
    for _action, resource in grants(nodes(scenario)):
        assert resource == "*" or resource.startswith(f"arn:{partition_of(scenario)}:"), resource


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_ec2_arns_are_in_the_clusters_region(scenario):
    for _action, resource in grants(nodes(scenario)):
        if ":ec2:" in resource:
            assert resource.split(":")[3] == region_of(scenario), resource


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_least_privilege_never_grants_more_than_toil(scenario):
    toil_policies = nodes(scenario, node_policy="toil")
    for action, resource in grants(nodes(scenario)):
        assert action in BEYOND_TOIL_ACTIONS or allowed(toil_policies, action, resource), (action, resource)


def test_beyond_toil_only_public_prices_are_read():
    assert BEYOND_TOIL_ACTIONS == ("pricing:GetProducts",)
    assert not allowed(nodes(node_policy="toil"), "pricing:GetProducts", "*")


def test_documents_are_fresh_copies():
    first = nodes("buckets")
    first["node_scaling"]["Statement"].clear()
    first["toil_job_store"]["Statement"][0]["Action"].append("s3:*")
    assert nodes("buckets")["node_scaling"]["Statement"]
    assert "s3:*" not in nodes("buckets")["toil_job_store"]["Statement"][0]["Action"]
    toil_first = nodes(node_policy="toil")
    toil_first["kubernetes_merged"]["Statement"][0]["Action"].clear()
    assert nodes(node_policy="toil")["kubernetes_merged"]["Statement"][0]["Action"]


# --- least privilege: Toil's AWS job store -------------------------------------------------------------

STORE = "arn:aws:s3:::my-store--toil"
STORE_KEY = STORE + "/files-flat/0f9c/out.txt"

# The S3 operations Toil 9.6's job store calls (jobStores/aws/jobStore.py, lib/aws/s3.py,
# lib/aws/utils.py) and the IAM action AWS checks for each.
JOB_STORE_CALLS = [
    ("create_s3_bucket: CreateBucket", "s3:CreateBucket", STORE),
    ("create_s3_bucket: BucketTagging.put", "s3:PutBucketTagging", STORE),
    ("enable_public_objects: DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock", STORE),
    ("enable_public_objects: DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls", STORE),
    ("enable_encryption: PutBucketEncryption", "s3:PutEncryptionConfiguration", STORE),
    ("bucket_exists / wait_until_exists: HeadBucket", "s3:ListBucket", STORE),
    ("list_s3_items: ListObjectsV2", "s3:ListBucket", STORE),
    ("get_bucket_region: GetBucketLocation", "s3:GetBucketLocation", STORE),
    ("delete_s3_bucket: ListMultipartUploads", "s3:ListBucketMultipartUploads", STORE),
    ("delete_s3_bucket: ListObjectVersions", "s3:ListBucketVersions", STORE),
    ("delete_s3_bucket: DeleteBucket", "s3:DeleteBucket", STORE),
    ("get_s3_object / head_object / download", "s3:GetObject", STORE_KEY),
    ("put_s3_object / upload_file / MultiPartPipe", "s3:PutObject", STORE_KEY),
    ("MultiPartPipe / delete_s3_bucket: AbortMultipartUpload", "s3:AbortMultipartUpload", STORE_KEY),
    ("delete_object / DeleteObjects", "s3:DeleteObject", STORE_KEY),
    ("delete_s3_bucket: DeleteObject with VersionId", "s3:DeleteObjectVersion", STORE_KEY),
    ("create_public_url: Object.Acl().put", "s3:PutObjectAcl", STORE_KEY),
    ("copy_s3_to_s3 (CopyObject copies tags): source", "s3:GetObjectTagging", STORE_KEY),
    ("copy_s3_to_s3 (CopyObject copies tags): target", "s3:PutObjectTagging", STORE_KEY),
]


@pytest.mark.parametrize(("call", "action", "resource"), JOB_STORE_CALLS, ids=[call for call, _a, _r in JOB_STORE_CALLS])
def test_job_store_calls_are_allowed_on_any_toil_bucket(call, action, resource):
    assert allowed(nodes(), action, resource)
    assert allowed(nodes(), action, resource.replace("my-store--toil", "another-run--toil"))


@pytest.mark.parametrize(("call", "action", "resource"), JOB_STORE_CALLS, ids=[call for call, _a, _r in JOB_STORE_CALLS])
def test_job_store_calls_are_refused_on_other_buckets(call, action, resource):
    for bucket in ("my-store--files", "my-store--internal", "my-lab-data", "toil-not-a-store"):
        assert not allowed(nodes(), action, resource.replace("my-store--toil", bucket))


BUCKET_LEVEL_S3 = ("s3:CreateBucket", "s3:DeleteBucket", "s3:GetBucketLocation", "s3:PutEncryptionConfiguration", "s3:ListBucket*", "s3:PutBucket*")


@pytest.mark.parametrize("scenario", ["buckets", "govcloud"])
def test_s3_object_actions_only_on_objects_and_bucket_actions_only_on_buckets(scenario):
    for action, resource in grants(nodes(scenario)):
        if ":s3:::" in resource:
            bucket_level = any(fnmatch.fnmatchcase(action, pattern) for pattern in BUCKET_LEVEL_S3)
            assert bucket_level != resource.endswith("/*"), (action, resource)


# --- least privilege: the workflow's buckets -----------------------------------------------------------


@pytest.mark.parametrize("bucket", ["my-lab-data", "inputs.example.org"])
def test_workflow_buckets_are_readable_listable_and_writable(bucket):
    policies = nodes("buckets")
    arn = f"arn:aws:s3:::{bucket}"
    for action in ("s3:ListBucket", "s3:GetBucketLocation"):
        assert allowed(policies, action, arn)
    for action in ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObjectTagging", "s3:PutObjectTagging"):
        assert allowed(policies, action, f"{arn}/results/sample1.bam")


def test_workflow_buckets_cannot_be_deleted_or_emptied():
    policies = nodes("buckets")
    for action in ("s3:DeleteBucket", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutBucketPolicy", "s3:PutObjectAcl"):
        assert not allowed(policies, action, "arn:aws:s3:::my-lab-data")
        assert not allowed(policies, action, "arn:aws:s3:::my-lab-data/x")


def test_only_listed_buckets_are_reachable():
    policies = nodes("buckets")
    assert not allowed(policies, "s3:GetObject", "arn:aws:s3:::someone-elses-data/x")
    assert not allowed(nodes(), "s3:GetObject", "arn:aws:s3:::my-lab-data/x")
    s3_resources = {resource for _action, resource in grants(policies) if ":s3:::" in resource}
    assert s3_resources == {
        "arn:aws:s3:::*--toil",
        "arn:aws:s3:::*--toil/*",
        "arn:aws:s3:::my-lab-data",
        "arn:aws:s3:::my-lab-data/*",
        "arn:aws:s3:::inputs.example.org",
        "arn:aws:s3:::inputs.example.org/*",
    }


def test_repeated_buckets_are_listed_once_in_a_stable_order():
    policies = nodes(s3_buckets=["other-data", "my-lab-data", "my-lab-data"])
    assert policies == nodes(s3_buckets=("my-lab-data", "other-data")) == nodes(s3_buckets={"other-data", "my-lab-data"})
    resources = [resource for statement in statements(policies["workflow_buckets"]) for resource in as_list(statement["Resource"])]
    assert resources == ["arn:aws:s3:::my-lab-data", "arn:aws:s3:::other-data", "arn:aws:s3:::my-lab-data/*", "arn:aws:s3:::other-data/*"]


@pytest.mark.parametrize("buckets", [(), [], ("a-b-c",), {"a-b-c"}, frozenset({"a-b-c"})])
def test_bucket_collections_accepted(buckets):
    assert ("workflow_buckets" in nodes(s3_buckets=buckets)) == bool(buckets)


# --- least privilege: node pools and the scaler, from the leader -------------------------------------------

TAGGED = {"aws:RequestTag/clusterName": CLUSTER}


@pytest.mark.parametrize(
    "action",
    [
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceStatus",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeSpotPriceHistory",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeImages",
        "ec2:DescribeAvailabilityZones",
        "ec2:DescribeSpotInstanceRequests",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeTags",
        "pricing:GetProducts",
    ],
)
def test_scaler_read_calls_are_allowed(action):
    assert allowed(nodes(), action, "*")


IN_VPC = {"ec2:Vpc": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{VPC_ID}"}
# What each created resource must also be: IMDSv2 only, encrypted, in the cluster's VPC.
CREATED = {
    "instance/i-0abc": {"ec2:MetadataHttpTokens": "required"},
    "volume/vol-0abc": {"ec2:Encrypted": "true"},
    "network-interface/eni-0abc": IN_VPC,
}
UNSAFE = {
    "instance/i-0abc": {"ec2:MetadataHttpTokens": "optional"},
    "volume/vol-0abc": {"ec2:Encrypted": "false"},
    "network-interface/eni-0abc": {"ec2:Vpc": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0fedcba9876543210"},
}


@pytest.mark.parametrize("kind", list(CREATED))
def test_workers_launch_only_with_the_clusters_tag(kind):
    policies = nodes()
    assert allowed(policies, "ec2:RunInstances", ec2_arn(kind), {**TAGGED, **CREATED[kind]})
    assert not allowed(policies, "ec2:RunInstances", ec2_arn(kind), CREATED[kind])
    assert not allowed(policies, "ec2:RunInstances", ec2_arn(kind), {"aws:RequestTag/clusterName": "other-cluster", **CREATED[kind]})
    assert not allowed(policies, "ec2:RunInstances", ec2_arn(kind, region="eu-west-1"), {**TAGGED, **CREATED[kind]})
    assert not allowed(policies, "ec2:RunInstances", ec2_arn(kind, account="210987654321"), {**TAGGED, **CREATED[kind]})


@pytest.mark.parametrize("kind", list(UNSAFE))
def test_workers_launch_only_imdsv2_encrypted_in_the_clusters_vpc(kind):
    assert not allowed(nodes(), "ec2:RunInstances", ec2_arn(kind), {**TAGGED, **UNSAFE[kind]})
    assert not allowed(nodes(), "ec2:RunInstances", ec2_arn(kind), TAGGED)  # the key missing from the request


@pytest.mark.parametrize(
    ("resource", "context"),
    [
        (ec2_arn("security-group/sg-0fedcba9876543210"), {}),
        (ec2_arn("key-pair/someone-elses-key"), {}),
        (ec2_arn("subnet/subnet-0abc"), {"ec2:Vpc": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0fedcba9876543210"}),
        (ec2_arn("subnet/subnet-0abc"), {}),
    ],
)
def test_launch_never_uses_another_group_key_or_vpc(resource, context):
    assert not allowed(nodes(), "ec2:RunInstances", resource, context)


@pytest.mark.parametrize(
    ("resource", "context"),
    [
        (f"arn:aws:ec2:{REGION}::image/ami-0abc", {}),
        (f"arn:aws:ec2:{REGION}::snapshot/snap-0abc", {}),
        (ec2_arn("subnet/subnet-0abc"), IN_VPC),
        (ec2_arn(f"security-group/{GROUP_ID}"), {}),
        (ec2_arn(f"key-pair/{KEY_NAME}"), {}),
        (ec2_arn("spot-instances-request/sir-0abc"), {}),
    ],
)
def test_launch_may_use_existing_resources_without_request_tags(resource, context):
    """AWS authorises RunInstances on these too; they are not created, so carry no request tags."""
    assert allowed(nodes(), "ec2:RunInstances", resource, context)


@pytest.mark.parametrize("kind", ["instance/i-0abc", "volume/vol-0abc", "network-interface/eni-0abc", "spot-instances-request/sir-0abc"])
def test_tags_only_on_launch(kind):
    policies = nodes()
    assert allowed(policies, "ec2:CreateTags", ec2_arn(kind), {"ec2:CreateAction": "RunInstances"})
    assert not allowed(policies, "ec2:CreateTags", ec2_arn(kind))
    assert not allowed(policies, "ec2:CreateTags", ec2_arn(kind), {"ec2:CreateAction": "CreateVolume"})
    assert not allowed(policies, "ec2:DeleteTags", ec2_arn(kind), {"ec2:CreateAction": "RunInstances"})


@pytest.mark.parametrize(
    ("tags", "may_terminate"),
    [
        ({"clusterName": CLUSTER, "ToilNodeType": "worker"}, True),
        ({"clusterName": CLUSTER, "ToilNodeType": "leader"}, False),  # never the leader
        ({"clusterName": "other-cluster", "ToilNodeType": "worker"}, False),
        ({"ToilNodeType": "worker"}, False),
        ({"clusterName": CLUSTER}, False),
        ({}, False),
    ],
)
def test_terminate_only_this_clusters_workers(tags, may_terminate):
    context = {f"ec2:ResourceTag/{key}": value for key, value in tags.items()}
    assert allowed(nodes(), "ec2:TerminateInstances", ec2_arn("instance/i-0abc"), context) is may_terminate


def test_cancel_only_this_clusters_spot_requests():
    arn = ec2_arn("spot-instances-request/sir-0abc")
    assert allowed(nodes(), "ec2:CancelSpotInstanceRequests", arn, {"ec2:ResourceTag/clusterName": CLUSTER})
    assert not allowed(nodes(), "ec2:CancelSpotInstanceRequests", arn, {"ec2:ResourceTag/clusterName": "other-cluster"})
    assert not allowed(nodes(), "ec2:CancelSpotInstanceRequests", arn)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pass_role_only_this_role_only_to_ec2(scenario):
    policies = nodes(scenario)
    role_arn = f"arn:{partition_of(scenario)}:iam::{ACCOUNT}:role/{ROLE}"
    to_ec2 = {"iam:PassedToService": "ec2.amazonaws.com"}
    assert allowed(policies, "iam:PassRole", role_arn, to_ec2)
    assert not allowed(policies, "iam:PassRole", role_arn)
    assert not allowed(policies, "iam:PassRole", role_arn, {"iam:PassedToService": "lambda.amazonaws.com"})
    for other in ("other_cluster_toil", "admin", "my_cluster_toil2"):
        assert not allowed(policies, "iam:PassRole", role_arn.replace(ROLE, other), to_ec2)
    pass_role = [statement for statement in statements(policies) if "iam:PassRole" in statement["Action"]]
    assert len(pass_role) == 1
    assert pass_role[0]["Resource"] == role_arn
    assert [action for action, _resource in grants(policies) if action.startswith("iam:")] == ["iam:PassRole"]


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("ec2:RunInstances", "*"),
        ("ec2:TerminateInstances", "*"),
        ("ec2:ModifyInstanceAttribute", ec2_arn("instance/i-0abc")),
        ("ec2:StopInstances", ec2_arn("instance/i-0abc")),
        ("ec2:DeleteVolume", ec2_arn("volume/vol-0abc")),
        ("ec2:AuthorizeSecurityGroupIngress", ec2_arn("security-group/sg-0abc")),
        ("ec2:RequestSpotInstances", "*"),
        ("iam:CreateRole", "*"),
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"),
        ("autoscaling:SetDesiredCapacity", "*"),
        ("sdb:Select", "*"),
        ("s3:ListAllMyBuckets", "*"),
    ],
)
def test_what_toil_grants_and_the_nodes_do_not_get(action, resource):
    context = {**TAGGED, "ec2:ResourceTag/clusterName": CLUSTER, "ec2:ResourceTag/ToilNodeType": "worker"}
    assert allowed(nodes(node_policy="toil"), action, resource, context)
    assert not allowed(nodes(), action, resource, context)


# --- least privilege: Kubernetes image pulls -----------------------------------------------------------


def test_kubernetes_clusters_can_pull_from_ecr():
    repository = "arn:aws:ecr:us-east-1:210987654321:repository/lab/tool"
    assert allowed(nodes(), "ecr:GetAuthorizationToken", "*")
    for action in ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
        assert allowed(nodes(), action, repository)
        assert not allowed(nodes(kubernetes=False), action, repository)
    for action in ("ecr:PutImage", "ecr:DeleteRepository", "ecr:InitiateLayerUpload"):
        assert not allowed(nodes(), action, repository)


def test_no_auto_scaling_groups_nor_load_balancers():
    services = {action.split(":")[0] for action, _resource in grants(nodes("buckets"))}
    assert services == {"s3", "ec2", "iam", "ecr", "pricing"}


# --- bad input ---------------------------------------------------------------------------------------

BAD_INPUTS = [
    ({"node_policy": "admin"}, r"Unknown node_policy 'admin': use one of least_privilege, toil"),
    ({"node_policy": None}, r"Unknown node_policy None"),
    ({"cluster_name": ""}, r"cluster name must be a non-empty string"),
    ({"cluster_name": "   "}, r"cluster name must be a non-empty string"),
    ({"cluster_name": None}, r"cluster name must be a non-empty string"),
    ({"account_id": "12345"}, r"Invalid AWS account ID '12345': it must be a string of exactly 12 digits"),
    ({"account_id": 123456789012}, r"Invalid AWS account ID 123456789012"),
    ({"account_id": "12345678901a"}, r"exactly 12 digits"),
    ({"account_id": ""}, r"exactly 12 digits"),
    ({"partition": "aws-iso"}, r"Unknown AWS partition 'aws-iso': use one of aws, aws-cn, aws-us-gov"),
    ({"region": "us-west"}, r"Invalid AWS region 'us-west'"),
    ({"region": "us-west-2a"}, r"Invalid AWS region 'us-west-2a'"),
    ({"region": None}, r"Invalid AWS region None"),
    ({"region": "cn-north-1"}, r"Region cn-north-1 is not in the AWS partition aws"),
    ({"partition": "aws-cn"}, r"Region us-west-2 is not in the AWS partition aws-cn"),
    ({"partition": "aws-us-gov", "region": "us-east-1"}, r"Region us-east-1 is not in the AWS partition aws-us-gov"),
    ({"role_name": "bad role"}, r"Invalid IAM role name 'bad role'"),
    ({"role_name": "r" * 65}, r"Invalid IAM role name"),
    ({"role_name": ""}, r"Invalid IAM role name"),
    ({"s3_buckets": "my-lab-data"}, r"s3_buckets must be a list of bucket names, not 'my-lab-data'"),
    ({"s3_buckets": None}, r"s3_buckets must be a list of bucket names, not None"),
    ({"s3_buckets": ["My-Bucket"]}, r"Invalid S3 bucket name 'My-Bucket': use only lowercase letters, digits, '\.' and '-'"),
    ({"s3_buckets": ["my_bucket"]}, r"Invalid S3 bucket name 'my_bucket': use only lowercase"),
    ({"s3_buckets": ["ab"]}, r"Invalid S3 bucket name 'ab': it must be 3 to 63 characters long, not 2"),
    ({"s3_buckets": ["a" * 64]}, r"it must be 3 to 63 characters long, not 64"),
    ({"s3_buckets": ["-abc"]}, r"Invalid S3 bucket name '-abc': it must begin and end with a lowercase letter or digit"),
    ({"s3_buckets": ["abc."]}, r"it must begin and end with a lowercase letter or digit"),
    ({"s3_buckets": ["a..b"]}, r"Invalid S3 bucket name 'a\.\.b': it must not contain two adjacent periods"),
    ({"s3_buckets": ["192.168.5.4"]}, r"Invalid S3 bucket name '192\.168\.5\.4': it must not look like an IP address"),
    ({"s3_buckets": ["s3://my-lab-data"]}, r"Invalid S3 bucket name 's3://my-lab-data': give the bare bucket name"),
    ({"s3_buckets": ["my-lab-data/inputs"]}, r"give the bare bucket name, without 's3://', an ARN or a key prefix"),
    ({"s3_buckets": ["arn:aws:s3:::my-lab-data"]}, r"give the bare bucket name"),
    ({"s3_buckets": ["xn--bucket"]}, r"Invalid S3 bucket name 'xn--bucket': S3 reserves names starting with xn--"),
    ({"s3_buckets": ["sthree-bucket"]}, r"S3 reserves names"),
    ({"s3_buckets": ["bucket-s3alias"]}, r"S3 reserves names"),
    ({"s3_buckets": ["bucket--ol-s3"]}, r"S3 reserves names"),
    ({"s3_buckets": ["bucket--x-s3"]}, r"S3 reserves names"),
    ({"s3_buckets": ["fine-bucket", ""]}, r"Invalid S3 bucket name '': give the bucket's name as a non-empty string"),
    ({"s3_buckets": [None]}, r"Invalid S3 bucket name None"),
]


@pytest.mark.parametrize("node_policy", NODE_POLICIES)
@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS, ids=[str(overrides) for overrides, _message in BAD_INPUTS])
def test_bad_input_is_refused_with_a_clear_message(overrides, message, node_policy):
    with pytest.raises(ToilInputError, match=message):
        nodes(**{"node_policy": node_policy, **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"partition": "aws-iso"}, r"Unknown AWS partition 'aws-iso'"),
        ({"account_id": "1234"}, r"exactly 12 digits"),
        ({"account_id": None}, r"Invalid AWS account ID None"),
    ],
)
def test_controller_bad_input(overrides, message):
    with pytest.raises(ToilInputError, match=message):
        controller_policy(**{"account_id": ACCOUNT, **overrides})


@pytest.mark.parametrize("name", ["my-lab-data", "a.b.c", "123", "a" * 63, "inputs.example.org", "x-y", "1000genomes", "my.bucket-2"])
def test_valid_bucket_names(name):
    assert validate_bucket_name(name) == name


REGIONS = [("aws", "us-east-1"), ("aws", "ap-southeast-5"), ("aws-cn", "cn-northwest-1"), ("aws-us-gov", "us-gov-east-1")]


@pytest.mark.parametrize(("partition", "region"), REGIONS)
def test_regions_of_each_partition(partition, region):
    assert nodes(partition=partition, region=region)


# --- sizes ------------------------------------------------------------------------------------------


def test_policy_size_counts_json_without_white_space():
    document = {"Version": "2012-10-17", "Statement": [{"Action": ["s3:GetObject"], "Resource": "*"}]}
    compact = '{"Version":"2012-10-17","Statement":[{"Action":["s3:GetObject"],"Resource":"*"}]}'
    assert policy_size(document) == len(compact)
    assert policy_size(document) < len(json.dumps(document, indent=2))


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("node_policy", NODE_POLICIES)
def test_role_policies_fit_iams_inline_limit(scenario, node_policy):
    policies = nodes(scenario, node_policy=node_policy)
    assert all(policy_size(document) <= ROLE_INLINE_POLICIES_MAX for document in policies.values())
    assert sum(policy_size(document) for document in policies.values()) <= ROLE_INLINE_POLICIES_MAX


def longest_inputs(bucket_count):
    """The longest names everywhere: a 59-character cluster, 64-character role, 63-character buckets."""
    return {
        "cluster_name": "c" * 59,
        "role_name": "r" * 64,
        "partition": "aws-us-gov",
        "region": "us-gov-west-1",
        "s3_buckets": [f"{index:03d}" + "b" * 60 for index in range(bucket_count)],
        "security_group_id": "sg-" + "f" * 17,
        "vpc_id": "vpc-" + "f" * 17,
        "key_pair_name": "k" * 255,
    }


def test_twenty_five_longest_bucket_names_fit():
    policies = nodes(**longest_inputs(25))
    assert sum(policy_size(document) for document in policies.values()) <= ROLE_INLINE_POLICIES_MAX


def test_too_many_buckets_are_refused_before_iam_would():
    with pytest.raises(ToilInputError, match=r"more than IAM's 10240 for a role's inline policies: list fewer s3_buckets \(60 given\)"):
        nodes(**longest_inputs(60))


@pytest.mark.parametrize("partition", PARTITIONS)
def test_controller_policy_fits_a_managed_policy(partition):
    assert policy_size(controller_policy(partition=partition, account_id=ACCOUNT)) <= MANAGED_POLICY_MAX


# --- the controller ------------------------------------------------------------------------------------

TOIL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
TOIL_PROFILE = f"arn:aws:iam::{ACCOUNT}:instance-profile/{ROLE}"
INTERNAL = "arn:aws:s3:::my-cluster--internal"
ANY_CLUSTER = {"aws:ResourceTag/clusterName": "any-cluster"}

# Everything toil_cluster calls for launch and destroy, with the resource AWS authorises it on.
EC2_READS = "AvailabilityZones Images InstanceTypes Instances KeyPairs LaunchTemplates SecurityGroups SpotInstanceRequests Subnets Tags Volumes Vpcs"
ROLE_CALLS = "GetRole CreateRole DeleteRole TagRole GetRolePolicy PutRolePolicy DeleteRolePolicy ListRolePolicies ListAttachedRolePolicies DetachRolePolicy"
PROFILE_CALLS = "GetInstanceProfile CreateInstanceProfile DeleteInstanceProfile TagInstanceProfile AddRoleToInstanceProfile RemoveRoleFromInstanceProfile"
CONTROLLER_CALLS = [
    ("sts:GetCallerIdentity", "*", None),
    *((f"ec2:Describe{kind}", "*", None) for kind in EC2_READS.split()),
    ("autoscaling:DescribeAutoScalingGroups", "*", None),
    ("ec2:CreateSecurityGroup", ec2_arn("security-group/sg-0abc"), None),
    ("ec2:AuthorizeSecurityGroupIngress", ec2_arn("security-group/sg-0abc"), None),
    ("ec2:RevokeSecurityGroupIngress", ec2_arn("security-group/sg-0abc"), None),
    ("ec2:DeleteSecurityGroup", ec2_arn("security-group/sg-0abc"), None),
    ("ec2:CreateTags", ec2_arn("security-group/sg-0abc"), {"ec2:CreateAction": "CreateSecurityGroup"}),
    ("ec2:CreateTags", ec2_arn("instance/i-0abc"), {"ec2:CreateAction": "RunInstances"}),
    ("ec2:CreateTags", ec2_arn("instance/i-0abc"), ANY_CLUSTER),  # a re-run restores the leader's tags
    ("ec2:CreateTags", ec2_arn("volume/vol-0abc"), ANY_CLUSTER),
    ("ec2:RunInstances", ec2_arn("instance/i-0abc"), None),
    ("ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-0abc", None),
    ("ec2:TerminateInstances", ec2_arn("instance/i-0abc"), ANY_CLUSTER),
    ("ec2:CancelSpotInstanceRequests", ec2_arn("spot-instances-request/sir-0abc"), ANY_CLUSTER),
    ("ec2:DeleteLaunchTemplate", ec2_arn("launch-template/lt-0abc"), ANY_CLUSTER),
    ("autoscaling:DeleteAutoScalingGroup", f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:x:autoScalingGroupName/toil-x", ANY_CLUSTER),
    *((f"iam:{call}", TOIL_ROLE, None) for call in (*ROLE_CALLS.split(), "ListInstanceProfilesForRole", "AddRoleToInstanceProfile")),
    *((f"iam:{call}", TOIL_PROFILE, None) for call in PROFILE_CALLS.split()),
    ("iam:PassRole", TOIL_ROLE, {"iam:PassedToService": "ec2.amazonaws.com"}),  # RunInstances
    ("iam:PassRole", TOIL_ROLE, None),  # AddRoleToInstanceProfile
    *((f"s3:{call}", INTERNAL, None) for call in ("ListBucket", "ListBucketVersions", "ListBucketMultipartUploads", "GetBucketLocation", "DeleteBucket")),
    *((f"s3:{call}", INTERNAL + "/configs/leader/config-1.ign", None) for call in ("DeleteObject", "DeleteObjectVersion", "AbortMultipartUpload")),
]


@pytest.mark.parametrize(("action", "resource", "context"), CONTROLLER_CALLS, ids=[f"{a} {r.rsplit(':', 1)[-1]}" for a, r, _c in CONTROLLER_CALLS])
def test_controller_may_launch_and_destroy(action, resource, context):
    assert allowed(controller_policy(account_id=ACCOUNT), action, resource, context)


@pytest.mark.parametrize("partition", PARTITIONS)
def test_controller_policy_is_valid_iam_grammar(partition):
    document = controller_policy(partition=partition, account_id=ACCOUNT)
    assert_valid_document(document)
    for _action, resource in grants(document):
        assert resource == "*" or resource.startswith(f"arn:{partition}:"), resource


def test_controller_has_no_wildcard_actions():
    actions = [action for action, _resource in grants(controller_policy(account_id=ACCOUNT))]
    assert not [action for action in actions if "*" in action]


def test_controller_star_grants_are_read_only_conditioned_or_documented():
    """A new unconditioned grant on "*" must be a deliberate, documented decision."""
    for statement in controller_policy(account_id=ACCOUNT)["Statement"]:
        if statement["Resource"] != "*" or "Condition" in statement:
            continue
        # docs/iam.md: Toil's groups are untagged; any region; a fleet and a new template launch nothing by themselves
        if statement["Sid"] in ("ClusterSecurityGroup", "LaunchLeader", "LaunchPoolFleets"):
            continue
        for action in statement["Action"]:
            assert any(fnmatch.fnmatchcase(action, pattern) for pattern in UNSCOPABLE), action


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/admin"),
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole"),
        ("iam:DeleteRole", f"arn:aws:iam::{ACCOUNT}:role/my_cluster_toil_backup"),
        ("iam:CreateInstanceProfile", f"arn:aws:iam::{ACCOUNT}:instance-profile/web"),
        ("iam:CreateRole", f"arn:aws:iam::210987654321:role/{ROLE}"),
        ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x_toil"),
        ("iam:AttachRolePolicy", TOIL_ROLE),
        ("s3:DeleteBucket", "arn:aws:s3:::my-lab-data"),
        ("s3:DeleteObject", "arn:aws:s3:::my-lab-data/x"),  # job stores (*--toil) it may clean; other buckets not
        ("s3:GetObject", INTERNAL + "/configs/leader/config-1.ign"),
        ("ec2:DeleteVolume", ec2_arn("volume/vol-0abc")),
        ("ec2:ModifyInstanceAttribute", ec2_arn("instance/i-0abc")),
    ],
)
def test_controller_cannot(action, resource):
    assert not allowed(controller_policy(account_id=ACCOUNT), action, resource, {"iam:PassedToService": "ec2.amazonaws.com", **ANY_CLUSTER})


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("ec2:TerminateInstances", ec2_arn("instance/i-0abc")),
        ("ec2:CancelSpotInstanceRequests", ec2_arn("spot-instances-request/sir-0abc")),
        ("ec2:DeleteLaunchTemplate", ec2_arn("launch-template/lt-0abc")),
        ("autoscaling:DeleteAutoScalingGroup", "*"),
    ],
)
def test_controller_removes_only_resources_tagged_with_a_cluster(action, resource):
    assert allowed(controller_policy(account_id=ACCOUNT), action, resource, ANY_CLUSTER)
    assert not allowed(controller_policy(account_id=ACCOUNT), action, resource, {"aws:ResourceTag/Name": "web-server"})


def test_controller_tags_only_on_create_or_nodes_of_a_cluster():
    document = controller_policy(account_id=ACCOUNT)
    assert not allowed(document, "ec2:CreateTags", ec2_arn("instance/i-0abc"))
    assert not allowed(document, "ec2:CreateTags", ec2_arn("instance/i-0abc"), {"ec2:CreateAction": "CreateVolume"})
    assert not allowed(document, "ec2:CreateTags", ec2_arn("security-group/sg-0abc"), ANY_CLUSTER)
    assert not allowed(document, "ec2:CreateTags", ec2_arn("instance/i-0abc", account="210987654321"), ANY_CLUSTER)


def test_controller_passes_toil_roles_only():
    """Unconditioned (AddRoleToInstanceProfile checks PassRole too), but only on ``*_toil`` roles."""
    document = controller_policy(account_id=ACCOUNT)
    assert allowed(document, "iam:PassRole", TOIL_ROLE)
    assert not allowed(document, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin", {"iam:PassedToService": "ec2.amazonaws.com"})


# --- docs/iam.md --------------------------------------------------------------------------------------

GENERATED = {
    "leader-example": lambda: leader_policies(CLUSTER, region=REGION, account_id=ACCOUNT, role_name=ROLE, s3_buckets=["my-lab-data"], **LAUNCH),
    "controller": lambda: controller_policy(account_id=ACCOUNT),
}


@pytest.mark.parametrize("name", GENERATED)
def test_docs_show_the_documents_the_code_makes(name):
    match = re.search(r"<!-- generated: " + re.escape(name) + r" .*?-->\n```json\n(.*?)\n```\n<!-- end generated -->", DOCS.read_text(), re.S)
    assert match, f"docs/iam.md has no generated block {name}"
    assert json.loads(match.group(1)) == GENERATED[name](), f"docs/iam.md is stale: re-render the {name} block from iam_policies.py"


def test_docs_explain_every_statement():
    text = DOCS.read_text()
    sids = {statement["Sid"] for statement in statements(nodes("buckets")) + statements(controller_policy(account_id=ACCOUNT))}
    assert [sid for sid in sorted(sids) if f"`{sid}`" not in text] == []


# --- RunInstances pinned to the cluster; job stores narrowed by name ------------------------------


def test_job_store_patterns_narrow_the_job_store_buckets():
    policies = nodes(job_store_patterns=["my-lab-*", "runs", "my-lab-*"])
    assert allowed(policies, "s3:CreateBucket", "arn:aws:s3:::my-lab-run1--toil")
    assert allowed(policies, "s3:GetObject", "arn:aws:s3:::runs--toil/some/key")
    assert not allowed(policies, "s3:CreateBucket", "arn:aws:s3:::other-team--toil")
    assert not allowed(policies, "s3:DeleteObject", "arn:aws:s3:::other-team--toil/key")
    assert nodes(job_store_patterns=["runs", "my-lab-*"]) == policies  # any order, repeats once


@pytest.mark.parametrize("patterns", [["*"], ["My-Lab"], ["a--b"], ["a/b"], "my-lab-*", [""], [None]])
def test_bad_job_store_patterns_are_refused(patterns):
    with pytest.raises(ToilInputError, match="job store name pattern|job_store_patterns must be a list"):
        nodes(job_store_patterns=patterns)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"security_group_id": "sg-*"}, "Invalid security group ID"),
        ({"security_group_id": None}, "Invalid security group ID"),
        ({"vpc_id": "vpc-0abc/*"}, "Invalid VPC ID"),
        ({"key_pair_name": "*"}, "Invalid key pair name"),
        ({"key_pair_name": "k\n"}, "Invalid key pair name"),
        ({"key_pair_name": ""}, "Invalid key pair name"),
    ],
)
def test_launch_pins_are_validated(overrides, message):
    with pytest.raises(ToilInputError, match=message):
        nodes(**overrides)
