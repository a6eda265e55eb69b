"""An endpoint that enforces IAM, and runs as one of its users (test_controller_policy.py, test_least_privilege.py).

moto's INITIAL_NO_AUTH_ACTION_COUNT makes the first SETUP_CALLS requests free and checks every later one against
the caller's policies. moto checks actions, not resource ARNs of things that do not exist yet: the one test-only
statement ``MOTO_RESOURCE_GAP`` (five IAM actions on "*") stands in for the controller policy's ``*_toil`` ARNs
there; resource scoping and conditions are checked by tests/unit/plugins/module_utils/test_iam_policies.py, and
for whole RunInstances requests by ``run_instances_denials`` below (moto checks no resource ARN nor condition).
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.config import Config

from ansible_collections.toil.cluster.plugins.module_utils.iam_policies import controller_policy
from harness.endpoint import ACCOUNT_ID, EmbeddedAWS
from harness.leaks import leftover_resources
from harness.playbooks import PlaybookResult, run_ansible_playbook

ACCOUNT = ACCOUNT_ID  # moto's
MOTO_RESOURCE_GAP = {
    "Sid": "MotoOnlyUnresolvedIamResources",
    "Effect": "Allow",
    "Action": ["iam:GetRole", "iam:CreateRole", "iam:CreateInstanceProfile", "iam:GetInstanceProfile", "iam:DeleteInstanceProfile"],
    "Resource": "*",
}
SETUP_CALLS = 7  # admin user, policy, key; controller user, policy, key; key pair
KEY_PAIR = "ctl-key"


def policy_for_moto(policy: dict[str, Any]) -> dict[str, Any]:
    return {**policy, "Statement": [*policy["Statement"], MOTO_RESOURCE_GAP]}


@contextmanager
def enforcing_endpoint(tmp_path: Path) -> Iterator[tuple[EmbeddedAWS, dict[str, dict[str, str]]]]:
    """An endpoint enforcing IAM, with users ``admin`` (everything) and ``controller`` (``controller_policy()``)
    and the key pair ``ctl-key``: yields the endpoint and ``{user: {AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY}}``."""
    endpoint = EmbeddedAWS(extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)}).start()
    try:
        no_retry = Config(retries={"max_attempts": 1, "mode": "standard"})  # each setup call counts exactly once
        iam = endpoint.boto3_client("iam", config=no_retry)
        users = {}
        for user, policy in (
            ("admin", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
            ("controller", policy_for_moto(controller_policy(account_id=ACCOUNT))),
        ):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="policy", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            users[user] = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
        endpoint.boto3_client("ec2", config=no_retry).import_key_pair(KeyName=KEY_PAIR, PublicKeyMaterial=(tmp_path / "id.pub").read_bytes())
        yield endpoint, users
    finally:
        endpoint.stop()


def run_as(endpoint: EmbeddedAWS, user_env: dict[str, str], tmp_path: Path, name: str, module: str = "toil_cluster", **options: Any) -> PlaybookResult:
    """One task of ``module`` (cluster ``ctl-c``) as the user whose keys are ``user_env``; any rc is returned."""
    defaults = {"name": "ctl-c", "zone": "us-west-2a"} if module == "toil_cluster" else {"cluster": "ctl-c"}
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "cluster", f"toil.cluster.{module}": {**defaults, **options}}]}
    return run_ansible_playbook(play, {**endpoint.env(), **user_env}, tmp_path / name, expect_rc=None)


def admin_client(endpoint: EmbeddedAWS, admin: dict[str, str], service: str) -> Any:
    keys = {"aws_access_key_id": admin["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": admin["AWS_SECRET_ACCESS_KEY"]}
    return endpoint.boto3_session().client(service, endpoint_url=endpoint.url, **keys)


def admin_leftovers(endpoint: EmbeddedAWS, admin: dict[str, str]) -> dict[str, list[str]]:
    return leftover_resources(
        {s: admin_client(endpoint, admin, s) for s in ("ec2", "iam", "s3", "autoscaling")}, "us-west-2"
    )  # moto answers 500 to SimpleDB under enforcement; the module never uses it


# ---------------------------------------------------------------------- RunInstances, resource by resource
# What EC2 authorises for one RunInstances request, as the AWS Service Authorization Reference lists it for
# Amazon EC2: every resource it creates (instance, volumes, network interface: with the request's tags as
# aws:RequestTag/*, and ec2:MetadataHttpTokens, ec2:Encrypted, ec2:Vpc) and every existing one it uses
# (subnet with ec2:Vpc, security groups, key pair, image, the spot request of a spot launch). Without
# SecurityGroupIds EC2 uses the VPC's default group; it is named here so that it is refused like any other.
DEFAULT_GROUP = "sg-vpc-default"


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, value in tests.items():
            expected = [str(v).lower() if operator == "Bool" else v for v in _as_list(value)]
            if operator == "Null":
                if ("true" if key not in context else "false") not in expected:
                    return False
            elif key not in context:
                return False  # IAM: a condition on a key the request lacks does not match
            elif operator in ("StringEquals", "ArnEquals", "Bool"):
                if context[key] not in expected:
                    return False
            elif operator in ("StringLike", "ArnLike"):
                if not any(fnmatch.fnmatchcase(context[key], pattern) for pattern in expected):
                    return False
            else:
                raise AssertionError(f"the test evaluator does not know the condition operator {operator}")
    return True


def policy_allows(policies: dict[str, Any], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    """Do these Allow-only inline policies (name -> document) permit ``action`` on ``resource``?"""
    for document in policies.values():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            if not any(fnmatch.fnmatchcase(action, pattern) for pattern in _as_list(statement["Action"])):
                continue
            if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in _as_list(statement["Resource"])):
                continue
            if _condition_holds(statement.get("Condition", {}), context or {}):
                return True
    return False


def run_instances_authorizations(request: dict[str, Any], *, region: str, account: str, subnet_vpcs: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """(resource ARN, condition context) for every resource EC2 authorises RunInstances on for ``request``."""

    def arn(resource: str, owner: str = account) -> str:
        return f"arn:aws:ec2:{region}:{owner}:{resource}"

    tags = {spec["ResourceType"]: {f"aws:RequestTag/{t['Key']}": t["Value"] for t in spec["Tags"]} for spec in request.get("TagSpecifications", [])}
    vpc = {"ec2:Vpc": arn("vpc/" + subnet_vpcs[request["SubnetId"]])}
    tokens = (request.get("MetadataOptions") or {}).get("HttpTokens", "optional")
    checks = [(arn("instance/*"), {**tags.get("instance", {}), "ec2:MetadataHttpTokens": tokens})]
    for mapping in request.get("BlockDeviceMappings") or [{"Ebs": {}}]:  # no mapping: the image's own root volume
        encrypted = "true" if mapping.get("Ebs", {}).get("Encrypted") else "false"
        checks.append((arn("volume/*"), {**tags.get("volume", {}), "ec2:Encrypted": encrypted}))
    checks.append((arn("network-interface/*"), {**tags.get("network-interface", {}), **vpc}))
    checks.append((arn("subnet/" + request["SubnetId"]), vpc))
    for group in request.get("SecurityGroupIds") or [DEFAULT_GROUP]:
        checks.append((arn("security-group/" + group), vpc))
    if request.get("KeyName"):
        checks.append((arn("key-pair/" + request["KeyName"]), {"ec2:KeyPairName": request["KeyName"]}))
    checks.append((arn("image/" + request["ImageId"], owner=""), {}))
    if request.get("InstanceMarketOptions"):
        checks.append((arn("spot-instances-request/*"), {}))
    template = request.get("LaunchTemplate")
    if template:  # a launch from a template (an instant fleet's are) authorises the template, by its tags
        checks.append((arn("launch-template/" + template["LaunchTemplateId"]), {f"ec2:ResourceTag/{k}": v for k, v in template["Tags"].items()}))
    return checks


def run_instances_denials(policies: dict[str, Any], request: dict[str, Any], *, region: str, account: str, subnet_vpcs: dict[str, str]) -> list[str]:
    """The resources of ``request`` these policies do not allow RunInstances on (empty: the launch is allowed)."""
    authorizations = run_instances_authorizations(request, region=region, account=account, subnet_vpcs=subnet_vpcs)
    return [resource for resource, context in authorizations if not policy_allows(policies, "ec2:RunInstances", resource, context)]
