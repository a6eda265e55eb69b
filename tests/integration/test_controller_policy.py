"""Launch and destroy as an IAM user that holds only the documented controller policy (docs/iam.md).

This runs its own endpoint with IAM enforcement on (moto's INITIAL_NO_AUTH_ACTION_COUNT): the first
SETUP_CALLS requests are free, every later one is checked against the caller's policies. moto checks
actions, not resource ARNs of things that do not exist yet: the one test-only statement below (five IAM
actions on "*") stands in for the controller policy's `*_toil` ARNs there; resource scoping and
conditions are checked by tests/unit/plugins/module_utils/test_iam_policies.py.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from botocore.config import Config
from helpers import EmbeddedAWS, format_leftovers, leftover_resources, run_ansible_playbook

from ansible_collections.toil.cluster.plugins.module_utils.iam_policies import controller_policy

ACCOUNT = "123456789012"  # moto's
MOTO_RESOURCE_GAP = {
    "Sid": "MotoOnlyUnresolvedIamResources",
    "Effect": "Allow",
    "Action": ["iam:GetRole", "iam:CreateRole", "iam:CreateInstanceProfile", "iam:GetInstanceProfile", "iam:DeleteInstanceProfile"],
    "Resource": "*",
}
SETUP_CALLS = 7  # admin user, policy, key; controller user, policy, key; key pair


def _policy_for_moto(policy):
    return {**policy, "Statement": [*policy["Statement"], MOTO_RESOURCE_GAP]}


@pytest.fixture
def enforcing_endpoint(tmp_path):
    """An endpoint enforcing IAM, with an admin, the controller user and a key pair."""
    endpoint = EmbeddedAWS(extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)}).start()
    try:
        no_retry = Config(retries={"max_attempts": 1, "mode": "standard"})  # each setup call counts exactly once
        iam = endpoint.boto3_client("iam", config=no_retry)
        users = {}
        for user, policy in (
            ("admin", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
            ("controller", _policy_for_moto(controller_policy(account_id=ACCOUNT))),
        ):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="policy", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            users[user] = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
        endpoint.boto3_client("ec2", config=no_retry).import_key_pair(KeyName="ctl-key", PublicKeyMaterial=(tmp_path / "id.pub").read_bytes())
        yield endpoint, users
    finally:
        endpoint.stop()


def _run(endpoint, user_env, tmp_path, name, module="toil_cluster", **options):
    defaults = {"name": "ctl-c", "zone": "us-west-2a"} if module == "toil_cluster" else {"cluster": "ctl-c"}
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "cluster", f"toil.cluster.{module}": {**defaults, **options}}]}
    return run_ansible_playbook(play, {**endpoint.env(), **user_env}, tmp_path / name, expect_rc=None)


def _admin_client(endpoint, admin, service):
    keys = {"aws_access_key_id": admin["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": admin["AWS_SECRET_ACCESS_KEY"]}
    return endpoint.boto3_session().client(service, endpoint_url=endpoint.url, **keys)


def _admin_leftovers(endpoint, admin):
    return leftover_resources(
        {s: _admin_client(endpoint, admin, s) for s in ("ec2", "iam", "s3", "autoscaling")}, "us-west-2"
    )  # moto answers 500 to SimpleDB under enforcement; the module never uses it


def test_controller_policy_is_enough_to_launch_scale_and_destroy(enforcing_endpoint, tmp_path):
    endpoint, users = enforcing_endpoint
    launch = {"leader_node_type": "t3.large", "key_pair_name": "ctl-key", "s3_buckets": ["ctl-inputs"]}
    first = _run(endpoint, users["controller"], tmp_path, "launch", **launch)
    assert first.rc == 0, first.describe()
    assert first.task("cluster")["changed"] is True
    again = _run(endpoint, users["controller"], tmp_path, "again", **launch)
    assert again.rc == 0, again.describe()
    assert again.task("cluster")["changed"] is False
    # A spot pool with no zone: the zone choice reads the spot price history.
    pool = _run(endpoint, users["controller"], tmp_path, "pool", module="toil_nodepool", node_types="m5.large:0.5", count=2)
    assert pool.rc == 0, pool.describe()
    assert pool.task("cluster")["pool"]["running"] == 2
    shrink = _run(endpoint, users["controller"], tmp_path, "shrink", module="toil_nodepool", node_types="m5.large:0.5", count=1)
    assert shrink.rc == 0, shrink.describe()
    gone = _run(endpoint, users["controller"], tmp_path, "destroy", state="absent")
    assert gone.rc == 0, gone.describe()
    assert gone.task("cluster")["changed"] is True
    leftovers = _admin_leftovers(endpoint, users["admin"])
    assert leftovers == {}, format_leftovers(leftovers)


def test_enforcement_is_live(enforcing_endpoint, tmp_path):
    """The negative control: the same launch as a user without RunInstances is refused, so the test above means something."""
    endpoint, users = enforcing_endpoint
    admin = users["admin"]
    iam = _admin_client(endpoint, admin, "iam")
    policy = _policy_for_moto(controller_policy(account_id=ACCOUNT))
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != "ec2:RunInstances"] or ["ec2:DescribeVpcs"]
    iam.create_user(UserName="weak")
    iam.put_user_policy(UserName="weak", PolicyName="policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="weak")["AccessKey"]
    weak = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    result = _run(endpoint, weak, tmp_path, "weak", leader_node_type="t3.large", key_pair_name="ctl-key")
    assert result.rc == 2
    assert "RunInstances" in result.task("cluster")["msg"] or "not authorized" in json.dumps(result.task("cluster")).lower()
    cleanup = _run(endpoint, users["controller"], tmp_path, "cleanup", state="absent")
    assert cleanup.rc == 0, cleanup.describe()
    assert _admin_leftovers(endpoint, admin) == {}
