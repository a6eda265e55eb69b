"""playbooks/plan.yml (ansible-playbook toil.cluster.plan): the filters and toil_cluster_info together."""

from __future__ import annotations

import json

from harness.toil_shapes import make_toil_cluster

# launch_cluster's names: one vars file serves both (issue #19).
PLAN_VARS = {
    "cluster_name": "plan-c",
    "zone": "us-west-2a",
    "key_pair_name": "me",
    "node_types": "c5.4xlarge/c5a.4xlarge:0.42,t3.large,m5.large",
    "workers": "4-0,2,0",
    "tags": {"Project": "rna"},
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
    zones = plan_of(run_playbook("playbooks/plan.yml", extra_vars=dict(PLAN_VARS, worker_zones=["us-west-2b", "us-west-2c"])))
    assert zones["worker_placement"] == "subnets like the leader's in us-west-2b, us-west-2c"
    given = dict(PLAN_VARS, worker_zones=["us-west-2b"], worker_subnets=["subnet-0123456789abcdef0"])
    assert plan_of(run_playbook("playbooks/plan.yml", extra_vars=given))["worker_placement"] == "subnets subnet-0123456789abcdef0"


def test_plan_sees_an_existing_cluster(aws, run_playbook):
    make_toil_cluster(aws, "plan-c", workers=1)
    plan = plan_of(run_playbook("playbooks/plan.yml", extra_vars=PLAN_VARS))
    assert plan["already_exists"] is True
    assert plan["existing_nodes"] == 2


def test_toil_environment_tags_apply_without_explicit_tags(aws, run_playbook):
    extra = dict(PLAN_VARS, tags={}, owner="")
    env = {"TOIL_OWNER_TAG": "lab", "TOIL_AWS_TAGS": '{"CostCenter": 42}'}
    tags = plan_of(run_playbook("playbooks/plan.yml", extra_vars=extra, env=env))["leader_tags"]
    assert tags["Owner"] == "lab"
    assert tags["CostCenter"] == "42"


def test_bad_plans_fail_before_touching_aws(aws, run_playbook):
    cases = [
        ({"workers": "2,2"}, "same length as the list of node types"),
        ({"node_types": "c5.4xlarge:0.4:0.5", "workers": "1"}, "multiple bids"),
        ({"cluster_name": "Plan_C"}, "must be lowercase"),
        ({"cluster_name": ""}, "plan needs cluster_name"),
        ({"tags": {"clusterName": "other"}}, "cannot be overridden"),
        ({"tags": "Project"}, "tags must be a mapping: a JSON object or key=value words"),
    ]
    for override, message in cases:
        result = run_playbook("playbooks/plan.yml", extra_vars=dict(PLAN_VARS, **override), expect_rc=2)
        failed = result.failed_tasks()
        assert len(failed) == 1 and message in failed[0][2], result.describe()
        assert "Look for the cluster on AWS" not in result.task_names()


def test_plan_takes_a_launch_vars_file_and_survey_strings(aws, run_playbook, tmp_path):
    """-e @vars.yml with launch_cluster's file (extra keys included); tags and worker_zones as a survey gives them."""
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text(json.dumps({**PLAN_VARS, "leader_node_type": "t3.xlarge", "provision_only": True, "tags": "Project=rna"}))
    result = run_playbook("playbooks/plan.yml", args=["-e", f"@{vars_file}", "-e", "worker_zones='us-west-2b us-west-2c'"])
    plan = plan_of(result)
    assert plan["leader"] == "t3.xlarge"
    assert plan["leader_tags"]["Project"] == "rna"
    assert plan["worker_placement"] == "subnets like the leader's in us-west-2b, us-west-2c"
    assert result.task("Warn about the deprecated toil_ variable names").get("skipped") is True


def test_old_variable_names_still_plan_with_a_deprecation_warning(aws, run_playbook):
    old = {"toil_cluster_name": "plan-c", "toil_zone": "us-west-2a", "toil_node_types": "t3.large", "toil_workers": "2", "toil_tags": {"Project": "rna"}}
    result = run_playbook("playbooks/plan.yml", extra_vars=old)
    warning = result.task("Warn about the deprecated toil_ variable names")["msg"]
    assert "toil_cluster_name, toil_zone, toil_tags, toil_node_types, toil_workers will be removed" in warning
    plan = plan_of(result)
    assert plan["cluster"] == "plan-c" and plan["leader_tags"]["Project"] == "rna"
    assert plan["worker_pools"] == {"t3-large": "t3.large x 2 (on-demand, static)"}
