"""playbooks/plan.yml (ansible-playbook toil.cluster.plan): the filters and toil_cluster_info together."""

from __future__ import annotations

from harness.toil_shapes import make_toil_cluster

PLAN_VARS = {
    "toil_cluster_name": "plan-c",
    "toil_zone": "us-west-2a",
    "toil_key_pair_name": "me",
    "toil_node_types": "c5.4xlarge/c5a.4xlarge:0.42,t3.large,m5.large",
    "toil_workers": "4-0,2,0",
    "toil_tags": {"Project": "rna"},
}


def plan_of(result):
    return result.task("Show the plan")["msg"]


def test_plan_for_a_new_cluster(aws, run_playbook):
    plan = plan_of(run_playbook("playbooks/plan.yml", extra_vars=PLAN_VARS))
    assert plan["already_exists"] is False
    assert plan["security_group"] == "plan-c"
    assert plan["iam_role_and_instance_profile"] == "plan_c_toil"
    assert plan["leader_tags"] == {
        "Name": "plan-c",
        "Owner": "me",
        "clusterName": "plan-c",
        "Project": "rna",
        "kubernetes.io/cluster/plan-c": "",
        "ToilNodeType": "leader",
        "sshKeyName": "me",
    }
    # Reversed range swapped, the zero-sized pool skipped, order of instance types kept.
    assert plan["worker_pools"] == {
        "c5-4xlarge-spot": "c5.4xlarge/c5a.4xlarge:0.42 x 0-4 (spot, ranged)",
        "t3-large": "t3.large x 2 (on-demand, static)",
    }
    assert plan["worker_placement"] == "subnets like the leader's in every zone"


def test_plan_shows_where_workers_go(aws, run_playbook):
    zones = plan_of(run_playbook("playbooks/plan.yml", extra_vars=dict(PLAN_VARS, toil_worker_zones=["us-west-2b", "us-west-2c"])))
    assert zones["worker_placement"] == "subnets like the leader's in us-west-2b, us-west-2c"
    given = dict(PLAN_VARS, toil_worker_zones=["us-west-2b"], toil_worker_subnets=["subnet-0123456789abcdef0"])
    assert plan_of(run_playbook("playbooks/plan.yml", extra_vars=given))["worker_placement"] == "subnets subnet-0123456789abcdef0"


def test_plan_sees_an_existing_cluster(aws, run_playbook):
    make_toil_cluster(aws, "plan-c", workers=1)
    plan = plan_of(run_playbook("playbooks/plan.yml", extra_vars=PLAN_VARS))
    assert plan["already_exists"] is True
    assert plan["existing_nodes"] == 2


def test_toil_environment_tags_apply_without_explicit_tags(aws, run_playbook):
    extra = dict(PLAN_VARS, toil_tags={}, toil_owner="")
    env = {"TOIL_OWNER_TAG": "lab", "TOIL_AWS_TAGS": '{"CostCenter": 42}'}
    tags = plan_of(run_playbook("playbooks/plan.yml", extra_vars=extra, env=env))["leader_tags"]
    assert tags["Owner"] == "lab"
    assert tags["CostCenter"] == "42"


def test_bad_plans_fail_before_touching_aws(aws, run_playbook):
    cases = [
        ({"toil_workers": "2,2"}, "same length as the list of node types"),
        ({"toil_node_types": "c5.4xlarge:0.4:0.5", "toil_workers": "1"}, "multiple bids"),
        ({"toil_cluster_name": "Plan_C"}, "must be lowercase"),
        ({"toil_tags": {"clusterName": "other"}}, "cannot be overridden"),
    ]
    for override, message in cases:
        result = run_playbook("playbooks/plan.yml", extra_vars=dict(PLAN_VARS, **override), expect_rc=2)
        failed = result.failed_tasks()
        assert [name for name, _host, _msg in failed] == ["Check the cluster name and derive its AWS names"], result.describe()
        assert message in failed[0][2]
        assert "Look for the cluster on AWS" not in result.task_names()
