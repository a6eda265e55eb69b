"""Least privilege: the controller's policy is enough for the whole lifecycle; the nodes' policy against Toil's.

- The controller: tests/integration/test_controller_policy.py already launches, sizes a pool and destroys
  as an IAM user holding only ``controller_policy()`` on an endpoint that enforces IAM. This adds what
  the issue also names, on the same fixture (``enforcing_endpoint``, conftest.py): the scaler applying a demand and cleaning a job store, in
  one lifecycle that ends with nothing left.
- The nodes: every action of the least-privilege policy, service by service, against Toil's ``iam:*``,
  ``ec2:*``, ``s3:*``, ``sdb:*`` (and its kubernetes_merged list): each is a real action of its
  service, each is one Toil grants, and the table of what each service keeps is docs/security.md's.
  That Toil's documents are Toil 9.6's own, byte for byte, is tests/unit/.../test_iam_policies.py's.
"""

from __future__ import annotations

import functools
from collections import defaultdict

import botocore.session
import pytest

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.iam_policies import BEYOND_TOIL_ACTIONS, leader_policies, toil_policies
from ansible_collections.toil.cluster.plugins.module_utils.nodepool import (
    ClusterContext,
    fleet_overrides,
    fleet_request,
    user_data,
    validate_pool_spec,
    worker_tags,
)
from ansible_collections.toil.cluster.plugins.module_utils.pool_template import template_data
from harness.iam_enforcement import ACCOUNT, _as_list, admin_client, admin_leftovers, run_as, run_instances_denials
from harness.jobstores import make_job_store
from harness.leaks import format_leftovers
from harness.paths import REPO
from harness.playbooks import run_ansible_playbook
from harness.resilience import M5_LARGE

TOIL_SERVICES = ("iam", "ec2", "s3", "sdb")
SECURITY_MD = REPO / "docs" / "security.md"
PERMISSION_ONLY = {"iam:PassRole"}  # an IAM action with no API operation of its own


def _clean(endpoint, user_env, workdir, options):
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "cluster", "toil.cluster.toil_jobstore": options}]}
    return run_ansible_playbook(play, {**endpoint.env(), **user_env}, workdir, expect_rc=None)


def test_controller_policy_runs_the_scaler_and_cleans_a_job_store(enforcing_endpoint, tmp_path):
    endpoint, users = enforcing_endpoint
    controller, admin = users["controller"], users["admin"]
    make_job_store({"s3": admin_client(endpoint, admin, "s3")}, "ctl-store")

    launch = run_as(endpoint, controller, tmp_path, "launch", leader_node_type="t3.large", key_pair_name="ctl-key")
    assert launch.rc == 0, launch.describe()
    pools = [{"name": "scaled", "node_types": "m5.large", "min_size": 0, "max_size": 2}]
    scaler = {"pools": pools, "beta_inertia": 0.0, "state_path": str(tmp_path / "state.json"), "zone": "us-west-2a"}
    demand = {"pods": [{"name": "p", "cpu": "1", "memory": "1Gi", "preemptible": False, "count": 4}]}
    up = run_as(endpoint, controller, tmp_path, "scale-up", module="toil_scaler", demand=demand, **scaler)
    assert up.rc == 0, up.describe()
    (pool,) = up.task("cluster")["pools"]
    assert len(pool["instances"]) == 2, pool
    idle = [{"instance_id": i["instance_id"], "pool": "scaled", "allocatable": M5_LARGE, "idle_seconds": 3600} for i in pool["instances"]]
    down = run_as(endpoint, controller, tmp_path, "scale-down", module="toil_scaler", demand={"pods": [], "nodes": idle}, **scaler)
    assert down.rc == 0, down.describe()
    assert down.task("cluster")["pools"][0]["instances"] == []

    # moto answers SimpleDB with 500 under IAM enforcement, so the Toil 9.0 layout is not looked for here.
    clean = _clean(endpoint, controller, tmp_path / "clean", {"locator": "aws:us-west-2:ctl-store", "state": "absent", "include_legacy": False})
    assert clean.rc == 0, clean.describe()
    assert clean.task("cluster")["changed"] is True

    gone = run_as(endpoint, controller, tmp_path, "destroy", state="absent")
    assert gone.rc == 0, gone.describe()
    leftovers = admin_leftovers(endpoint, admin)
    assert leftovers == {}, format_leftovers(leftovers)


# ---------------------------------------------------------------------- the nodes' policy against Toil's
def _actions(policies):
    found = defaultdict(set)  # action -> Sids
    for name, document in policies.items():
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in actions:
                found[action].add(statement.get("Sid", name))
    return found


@functools.cache
def _operations(service):
    """Every API operation of ``service`` in the installed botocore (the IAM action names for iam, ec2 and sdb)."""
    return set(botocore.session.get_session().get_service_model(service).operation_names)


# The cluster the node policy is pinned to, and another one in another VPC of the same account.
GROUP, VPC, KEY, SUBNET = "sg-0123456789abcdef0", "vpc-0123456789abcdef0", "my-key", "subnet-0123456789abcdef0"
OTHER_GROUP, OTHER_VPC, OTHER_SUBNET = "sg-0fedcba9876543210", "vpc-0fedcba9876543210", "subnet-0fedcba9876543210"
WHERE = {"region": "us-west-2", "account": ACCOUNT, "subnet_vpcs": {SUBNET: VPC, OTHER_SUBNET: OTHER_VPC}}


def node_policies(**extra):
    return leader_policies(
        "my-cluster",
        region="us-west-2",
        account_id=ACCOUNT,
        role_name="my_cluster_toil",
        s3_buckets=["my-lab-data"],
        security_group_id=GROUP,
        vpc_id=VPC,
        key_pair_name=KEY,
        **extra,
    )


def ours():
    return _actions(node_policies())


def comparison_table():
    """docs/security.md's table: per service Toil grants whole, what the nodes keep."""
    granted = ours()
    rows = ["| Toil grants | the nodes keep (least_privilege) |", "|---|---|"]
    for service in TOIL_SERVICES:
        kept = sorted(a.split(":", 1)[1] for a in granted if a.startswith(f"{service}:"))
        total = len(_operations(service))
        rows.append(f"| `{service}:*` ({total} API operations) | {len(kept)}: {', '.join(f'`{a}`' for a in kept) or 'none'} |")
    return "\n".join(rows)


def test_nodes_policy_action_by_action_against_toils():
    granted, toil = ours(), _actions(toil_policies(kubernetes=True))
    assert {f"{s}:*" for s in TOIL_SERVICES} <= set(toil)
    outside = sorted(a for a in granted if a.split(":")[0] not in TOIL_SERVICES and a not in toil)
    assert outside == list(BEYOND_TOIL_ACTIONS), f"granted to the nodes but not by Toil: {outside}"  # public prices only
    for action in granted:
        service, name = action.split(":", 1)
        assert "*" not in name, action
        if service in ("ec2", "iam", "sdb") and action not in PERMISSION_ONLY:  # IAM actions named like the API operations
            assert name in _operations(service), f"{action} is not an {service} operation"
    by_service = {s: sorted(a for a in granted if a.startswith(f"{s}:")) for s in TOIL_SERVICES}
    assert by_service["sdb"] == [] and by_service["iam"] == ["iam:PassRole"]
    assert 0 < len(by_service["ec2"]) < len(_operations("ec2")) / 20  # a few of EC2's hundreds


# ---------------------------------------------------------------------- RunInstances pinned to the cluster
TEMPLATE = "lt-0123456789abcdef0"


def pool_request(node_types="m5.large", extra_group_ids=(), template_cluster="my-cluster"):
    """The launch toil_nodepool's (and so the scaler's) instant fleet makes for one node of my-cluster, as the
    RunInstances EC2 authorises for it with the caller's rights (no service-linked role for an instant fleet): the
    pool's launch template (tagged clusterName=``template_cluster``) with the fleet's first override and tags."""
    spec = validate_pool_spec({"cluster": "my-cluster", "name": "p", "node_types": node_types, "count": 1})
    context = ClusterContext(
        leader={},
        group_id=GROUP,
        vpc_id=VPC,
        profile_arn=None,
        key_name=KEY,
        base_tags={"clusterName": "my-cluster", "Owner": "me"},
        extra_group_ids=tuple(extra_group_ids),
    )
    image = {"ImageId": "ami-0123456789abcdef0", "RootDeviceName": "/dev/xvda"}
    tags = worker_tags(spec, context)
    overrides = fleet_overrides(spec, dict.fromkeys(spec.node_type.instance_types, image), [SUBNET], tags)
    fleet = fleet_request(spec, {"LaunchTemplateId": TEMPLATE, "Version": 1}, overrides, 1, tags)
    launch = {**template_data(context, user_data(spec.authorized_keys)), **overrides[0], "TagSpecifications": fleet["TagSpecifications"]}
    launch["LaunchTemplate"] = {"LaunchTemplateId": TEMPLATE, "Tags": {"clusterName": template_cluster}}
    for price_or_rank in ("MaxPrice", "Priority"):
        launch.pop(price_or_rank, None)
    if spec.node_type.preemptible:
        launch["InstanceMarketOptions"] = {"MarketType": "spot"}
    return launch


@pytest.mark.parametrize("node_types", ["m5.large", "m5.large:0.5"])
def test_nodes_may_launch_their_pools_workers(node_types):
    assert run_instances_denials(node_policies(), pool_request(node_types), **WHERE) == []


def _without_metadata(request):
    request.pop("MetadataOptions")


def _unencrypted(request):
    request["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] = False


def _tagged_for(cluster):
    def change(request):
        for spec in request["TagSpecifications"]:
            spec["Tags"] = [dict(t, Value=cluster) if t["Key"] == "clusterName" else t for t in spec["Tags"]]

    return change


# Each a launch a job on a node could ask for, to put a machine somewhere the cluster's role should not reach.
ATTACKS = {
    "into another cluster's security group": (lambda r: r.update(SecurityGroupIds=[OTHER_GROUP]), f"security-group/{OTHER_GROUP}"),
    "into the cluster's and another group": (lambda r: r.update(SecurityGroupIds=[GROUP, OTHER_GROUP]), f"security-group/{OTHER_GROUP}"),
    "into the VPC's default group": (lambda r: r.pop("SecurityGroupIds"), "security-group/sg-vpc-default"),
    "into a subnet of another VPC": (lambda r: r.update(SubnetId=OTHER_SUBNET), f"subnet/{OTHER_SUBNET}"),
    "with someone else's key pair": (lambda r: r.update(KeyName="admin-key"), "key-pair/admin-key"),
    "with IMDSv1 on": (lambda r: r["MetadataOptions"].update(HttpTokens="optional"), "instance/*"),
    "without metadata options": (_without_metadata, "instance/*"),
    "with an unencrypted volume": (_unencrypted, "volume/*"),
    "tagged for another cluster": (_tagged_for("other-cluster"), "instance/*"),
    "from another cluster's launch template": (lambda r: r["LaunchTemplate"].update(Tags={"clusterName": "other-cluster"}), f"launch-template/{TEMPLATE}"),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_nodes_cannot_launch_outside_their_cluster(attack):
    change, refused = ATTACKS[attack]
    request = pool_request()
    change(request)
    denied = run_instances_denials(node_policies(), request, **WHERE)
    assert any(resource.endswith(":" + refused) for resource in denied), denied


EXTRA_GROUP = "sg-0aaaaaaaaaaaaaaaa"  # Toil's --awsEc2ExtraSecurityGroupId: an EFS or database group


def test_workers_get_the_extra_groups_and_no_other():
    """The leader's extra groups go to every worker (as Toil's do), so the node policy allows exactly those:
    the cluster's group and the named extra groups, never another group or a wildcard."""
    policies = node_policies(extra_security_group_ids=[EXTRA_GROUP])
    request = pool_request(extra_group_ids=[EXTRA_GROUP])
    assert request["SecurityGroupIds"] == [GROUP, EXTRA_GROUP]
    assert run_instances_denials(policies, request, **WHERE) == []
    assert run_instances_denials(node_policies(), request, **WHERE) == [f"arn:aws:ec2:us-west-2:{ACCOUNT}:security-group/{EXTRA_GROUP}"]
    request["SecurityGroupIds"] = [GROUP, EXTRA_GROUP, OTHER_GROUP]
    assert run_instances_denials(policies, request, **WHERE) == [f"arn:aws:ec2:us-west-2:{ACCOUNT}:security-group/{OTHER_GROUP}"]
    groups = [r for d in policies.values() for st in d["Statement"] for r in _as_list(st["Resource"]) if ":security-group/" in r]
    assert sorted(groups) == sorted(f"arn:aws:ec2:us-west-2:{ACCOUNT}:security-group/{g}" for g in (GROUP, EXTRA_GROUP))


@pytest.mark.parametrize("bad", ["sg-*", "sg-0aaaaaaaaaaaaaaaa*", "sg-0aaaaaaaaaaaaaaaa/../*", "", "sg-0AAAAAAAAAAAAAAAA"])
def test_an_extra_group_that_is_not_a_group_id_is_refused(bad):
    with pytest.raises(ToilInputError, match="Invalid security group ID"):
        node_policies(extra_security_group_ids=[bad])


def test_security_doc_has_the_comparison_table():
    table = comparison_table()
    assert table in SECURITY_MD.read_text(), f"docs/security.md lacks the current table:\n{table}"


if __name__ == "__main__":  # print the table for docs/security.md
    print(comparison_table())
