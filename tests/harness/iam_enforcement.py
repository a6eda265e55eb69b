"""An endpoint that enforces IAM, and runs as one of its users (test_controller_policy.py, test_least_privilege.py).

moto's INITIAL_NO_AUTH_ACTION_COUNT makes the first SETUP_CALLS requests free and checks every later one against
the caller's policies. moto checks actions, not resource ARNs of things that do not exist yet: the one test-only
statement ``MOTO_RESOURCE_GAP`` (five IAM actions on "*") stands in for the controller policy's ``*_toil`` ARNs
there; resource scoping and conditions are checked by tests/unit/plugins/module_utils/test_iam_policies.py.
"""

from __future__ import annotations

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
