"""Launch and destroy as an IAM user that holds only the documented controller policy (docs/iam.md).

This runs its own endpoint with IAM enforcement on (the ``enforcing_endpoint`` fixture, harness.iam_enforcement):
the first requests are free, every later one is checked against the caller's policies. moto checks actions, not
resource ARNs of things that do not exist yet: one test-only statement (five IAM actions on "*") stands in for the
controller policy's `*_toil` ARNs there; resource scoping and conditions are checked by
tests/unit/plugins/module_utils/test_iam_policies.py.
"""

from __future__ import annotations

import json

from ansible_collections.toil.cluster.plugins.module_utils.iam_policies import controller_policy
from harness.iam_enforcement import ACCOUNT, admin_client, admin_leftovers, policy_for_moto, run_as
from harness.leaks import format_leftovers


def test_controller_policy_is_enough_to_launch_scale_and_destroy(enforcing_endpoint, tmp_path):
    endpoint, users = enforcing_endpoint
    launch = {"leader_node_type": "t3.large", "key_pair_name": "ctl-key", "s3_buckets": ["ctl-inputs"]}
    first = run_as(endpoint, users["controller"], tmp_path, "launch", **launch)
    assert first.rc == 0, first.describe()
    assert first.task("cluster")["changed"] is True
    again = run_as(endpoint, users["controller"], tmp_path, "again", **launch)
    assert again.rc == 0, again.describe()
    assert again.task("cluster")["changed"] is False
    # A spot pool with no zone: the zone choice reads the spot price history.
    pool = run_as(endpoint, users["controller"], tmp_path, "pool", module="toil_nodepool", node_types="m5.large:0.5", count=2)
    assert pool.rc == 0, pool.describe()
    assert pool.task("cluster")["pool"]["running"] == 2
    shrink = run_as(endpoint, users["controller"], tmp_path, "shrink", module="toil_nodepool", node_types="m5.large:0.5", count=1)
    assert shrink.rc == 0, shrink.describe()
    gone = run_as(endpoint, users["controller"], tmp_path, "destroy", state="absent")
    assert gone.rc == 0, gone.describe()
    assert gone.task("cluster")["changed"] is True
    leftovers = admin_leftovers(endpoint, users["admin"])
    assert leftovers == {}, format_leftovers(leftovers)


def test_enforcement_is_live(enforcing_endpoint, tmp_path):
    """The negative control: the same launch as a user without RunInstances is refused, so the test above means something."""
    endpoint, users = enforcing_endpoint
    admin = users["admin"]
    iam = admin_client(endpoint, admin, "iam")
    policy = policy_for_moto(controller_policy(account_id=ACCOUNT))
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != "ec2:RunInstances"] or ["ec2:DescribeVpcs"]
    iam.create_user(UserName="weak")
    iam.put_user_policy(UserName="weak", PolicyName="policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="weak")["AccessKey"]
    weak = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    result = run_as(endpoint, weak, tmp_path, "weak", leader_node_type="t3.large", key_pair_name="ctl-key")
    assert result.rc == 2
    assert "RunInstances" in result.task("cluster")["msg"] or "not authorized" in json.dumps(result.task("cluster")).lower()
    cleanup = run_as(endpoint, users["controller"], tmp_path, "cleanup", state="absent")
    assert cleanup.rc == 0, cleanup.describe()
    assert admin_leftovers(endpoint, admin) == {}
