"""The playbooks as a job template or a command line uses them (issue #19): lists and mappings given as strings (an AWX
survey, ``-e name=value``), ``image_id``, relative paths taken from where ansible-playbook runs, check mode on a
cluster that does not exist yet, destroy by region, and quiet runs (no host pattern warnings, no empty plays).
Every run is a real ansible-playbook against the endpoint; the aws fixture proves nothing is left.
"""

from __future__ import annotations

import base64
import json
import re

from harness.paths import venv_executable
from harness.toil_shapes import make_toil_cluster

ZONE, CLUSTER = "us-west-2a", "pb-if"
OLD_AMI = "ami-0d12e1ac5d5e4a001"  # tests/harness/debian_amis.json: an older Debian 12, never the default


def plays(result):
    return [play["play"]["name"] for play in (result.json or {}).get("plays", [])]


def assert_quiet(result):
    """No "Could not match supplied host pattern" warning: a play whose group is empty or missing skips silently."""
    assert "Could not match supplied host pattern" not in result.stdout + result.stderr, result.describe()


def test_check_mode_plans_a_cluster_that_does_not_exist(aws, run_playbook, aws_calls, key_pair):
    launch = {"cluster_name": CLUSTER, "zone": ZONE, "leader_node_type": "t3.large", "key_pair_name": key_pair, "node_types": "t3.large", "workers": "0-2"}
    result = run_playbook("playbooks/launch_cluster.yml", extra_vars=launch, check=True, diff=True, env=aws_calls.env)
    assert aws_calls.mutating_calls() == []
    shown = result.task("Show the cluster")["msg"]
    assert shown["leader"] == "(new)" and shown["pools"] == {"t3-large": "t3.large x 0-2 (on-demand, ranged)"}, shown
    # The IAM policies are summarised (a line each), not printed whole.
    diff = result.task("Launch the leader (security group, IAM role and instance profile, leader instance)")["diff"]
    assert "Statement" not in json.dumps(diff)
    assert all(re.fullmatch(r"\d+ statements, \d+ actions, sha256 [0-9a-f]{12}", line) for line in diff["after"]["iam"]["policies"].values()), diff
    assert diff["after"]["leader"]["instance_type"] == "t3.large"
    configure = result.task("Say what check mode cannot show for a cluster not launched yet")["msg"]
    assert configure == f"Cluster {CLUSTER} has no leader yet: a run without --check launches it, then configures its nodes."


def instances_of(aws, cluster=CLUSTER):
    live = [{"Name": "tag:clusterName", "Values": [cluster]}, {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    pages = aws.client("ec2").describe_instances(Filters=live)
    return [i for r in pages["Reservations"] for i in r["Instances"]]


def subnet_in(aws, zone):
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    return ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "availability-zone", "Values": [zone]}])["Subnets"][0]["SubnetId"], vpc


def test_launch_autoscale_and_destroy_take_survey_strings_quietly(aws, run_playbook, aws_calls, key_pair, tmp_path):
    """Every list and mapping of launch_cluster and autoscale as a survey gives it (a string), image_id, provision-only
    runs without host pattern warnings or configure_cluster's plays, and destroy_cluster by region alone."""
    ec2 = aws.client("ec2")
    subnet_b, vpc = subnet_in(aws, "us-west-2b")
    extra_group = ec2.create_security_group(GroupName="pb-if-extra", Description="an extra group", VpcId=vpc)["GroupId"]
    aws.add_cleanup(ec2.delete_security_group, GroupId=extra_group)
    launch = {
        "cluster_name": CLUSTER,
        "zone": ZONE,
        "leader_node_type": "t3.large",
        "key_pair_name": key_pair,
        "node_types": "t3.large",
        "workers": "1-3",
        "provision_only": "true",
        "image_id": OLD_AMI,
        "tags": "Project=survey 'Cost Center=42'",
        "aws_ec2_extra_security_group_ids": extra_group,
        "worker_subnets": subnet_b,
        "s3_buckets": "pb-if-data pb-if-refs",
        "job_store_patterns": '["pb-if-js-*"]',
    }
    launched = run_playbook("playbooks/launch_cluster.yml", extra_vars=launch, env=aws_calls.env)
    aws.add_cleanup(lambda: instances_of(aws) and run_playbook("playbooks/destroy_cluster.yml", extra_vars={"cluster_name": CLUSTER, "zone": ZONE}))
    assert_quiet(launched)
    assert plays(launched) == ["Provision a Toil cluster on AWS", "Configure no host (provision_only or plan_only)"]
    nodes = instances_of(aws)
    leader = next(i for i in nodes if {"Key": "ToilNodeType", "Value": "leader"} in i["Tags"])
    assert {t["Key"]: t["Value"] for t in leader["Tags"]}.items() >= {"Project": "survey", "Cost Center": "42"}.items()
    assert extra_group in {g["GroupId"] for g in leader["SecurityGroups"]}
    assert {i["ImageId"] for i in nodes} == {OLD_AMI} and len(nodes) == 2
    assert [i["Placement"]["AvailabilityZone"] for i in nodes if i is not leader] == ["us-west-2b"]
    role_policies = aws.client("iam").list_role_policies(RoleName="pb_if_toil")["PolicyNames"]
    policies = json.dumps([aws.client("iam").get_role_policy(RoleName="pb_if_toil", PolicyName=name)["PolicyDocument"] for name in role_policies])
    assert "pb-if-data" in policies and "pb-if-refs" in policies and "pb-if-js-*" in policies

    # autoscale: authorized_keys one per line, the demand as JSON, worker_zones as words; resize only.
    key_line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2g9xJ1Lq1nQ2m2R9u6Wm0c7t1U1Jc3e4s5d6f7g8h9 leader scaler"
    demand = {"pods": [{"name": "align", "cpu": "1500m", "memory": "2Gi", "count": 2}]}
    scale = {
        "cluster_name": CLUSTER,
        "zone": ZONE,
        "node_types": "t3.large",
        "workers": "1-3",
        "authorized_keys": key_line + "\n",
        "demand": json.dumps(demand),
        "worker_zones": "us-west-2c",
        "provision_only": "true",
        "image_id": OLD_AMI,
    }
    scale_dir = tmp_path / "scale"  # the state and metrics files' relative paths are taken from where the run is
    scale_dir.mkdir()
    scale.update(scaler_state_path="scaler-state.json", scaler_metrics_path="./scaler.prom")
    scaled = run_playbook("playbooks/autoscale.yml", extra_vars=scale, env=aws_calls.env, cwd=scale_dir)
    assert_quiet(scaled)
    assert (scale_dir / "scaler-state.json").is_file() and (scale_dir / "scaler.prom").is_file()
    assert plays(scaled) == ["One scaler cycle", "Configure no host (provision_only or plan_only)"]
    new = [i for i in instances_of(aws) if i["InstanceId"] not in {n["InstanceId"] for n in nodes}]
    assert new and {i["Placement"]["AvailabilityZone"] for i in new} == {"us-west-2c"}
    assert {i["ImageId"] for i in new} == {OLD_AMI}
    for instance in new:
        user_data = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")["UserData"]["Value"]
        assert key_line in base64.b64decode(user_data).decode()

    # destroy_cluster with a region and no zone (none in the environment either: the harness drops TOIL_*).
    destroyed = run_playbook("playbooks/destroy_cluster.yml", extra_vars={"cluster_name": CLUSTER, "region": "us-west-2"})
    assert len(destroyed.task("Show what was removed")["msg"]["removed"]["instances"]) == len(nodes) + len(new)
    assert instances_of(aws) == []


def test_run_workflow_takes_relative_paths_and_survey_strings(aws, run_playbook, aws_calls, tmp_path):
    """workflow=./sort.py from where ansible-playbook runs (not the collection's playbooks/), the lists as a survey's
    strings; stopped by restart on a missing store, before any leader is looked for."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "sort.py").write_text("print('never run')\n")
    (work / "job file.json").write_text("{}\n")
    given = {
        "cluster_name": CLUSTER,
        "zone": ZONE,
        "workflow": "./sort.py",
        "workflow_files": "'job file.json'",
        "workflow_args": "--numLines 1000 'a b'",
        "toil_options": '["--retryCount", "2"]',
        "job_store": "aws:us-west-2:pb-if-none",
        "restart": True,
    }
    result = run_playbook("playbooks/run_workflow.yml", extra_vars=given, env=aws_calls.env, cwd=work, expect_rc=2)
    facts = result.task("Read the lists (a survey's strings too), and check toil_options against the options this playbook sets")["ansible_facts"]
    assert facts["__workflow_paths"] == [str(work / "sort.py"), str(work / "job file.json")]
    assert facts["__workflow_args"] == ["--numLines", "1000", "a b"] and facts["__workflow_toil_options"] == ["--retryCount", "2"]
    assert "does not exist: there is nothing to restart" in result.failed_tasks()[0][2]
    assert aws_calls.mutating_calls() == []

    bad = run_playbook("playbooks/run_workflow.yml", extra_vars=dict(given, toil_options="--retryCount '2"), cwd=work, expect_rc=2)
    assert "toil_options cannot be split as shell words (No closing quotation)" in bad.failed_tasks()[0][2]
    missing = run_playbook("playbooks/run_workflow.yml", extra_vars=dict(given, workflow="nope.py"), cwd=work, expect_rc=2)
    assert f"Not found on this controller: {work / 'nope.py'}." in missing.failed_tasks()[0][2]


def test_rsync_cluster_takes_the_local_side_from_where_it_runs(aws, run_playbook, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "sort.py").write_text("print('never run')\n")
    cluster = {"cluster_name": CLUSTER, "zone": ZONE}
    push = run_playbook("playbooks/rsync_cluster.yml", extra_vars=dict(cluster, src="./sort.py", dest="/home/admin/"), cwd=work, expect_rc=2)
    assert push.task("Check that the local side exists")["invocation"]["module_args"]["path"] == str(work / "sort.py")
    assert push.failed_tasks()[0][0] == "Check that the leader runs"  # the local side was found
    pull = run_playbook("playbooks/rsync_cluster.yml", extra_vars=dict(cluster, mode="pull", src="/home/admin/out", dest="./"), cwd=work, expect_rc=2)
    assert pull.task("Check that the local side exists")["invocation"]["module_args"]["path"] == f"{work}/"


def test_configure_cluster_with_nothing_new_runs_quietly(aws, run_playbook, tmp_path):
    """As the autoscaler's timer runs it on the leader after a cycle that launched nothing: the leader reached without
    ssh, every worker joined. The leader and worker plays have no hosts and must say nothing about host patterns."""
    shaped = make_toil_cluster(aws, "pb-if-q", workers=1)
    node = {"toil_cluster": "pb-if-q", "toil_region": "us-west-2", "toil_zone": ZONE}
    hosts = {
        "leader": {**node, "toil_instance_id": shaped.leader_id, "toil_node_type": "leader", "ansible_become": False},
        "worker": {**node, "toil_instance_id": shaped.worker_ids[0], "toil_node_type": "worker", "ec2_tags": {"toil.cluster/joined": "true"}},
    }
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"vars": {"ansible_python_interpreter": venv_executable("python")}, "children": {"toil_nodes": {"hosts": hosts}}}}))
    given = {"cluster_name": "pb-if-q", "zone": ZONE, "configure_new_only": True, "insecure_host_keys": True}
    result = run_playbook("playbooks/configure_cluster.yml", extra_vars=given, inventory=str(inventory))
    assert result.task("Put the leader into the play as the control plane")["add_host"]["groups"] == ["toil_configure_control_plane"]
    assert_quiet(result)


def test_ssh_config_takes_ssh_options_one_per_line(aws, run_playbook, tmp_path):
    make_toil_cluster(aws, "pb-if-ssh", workers=0)
    config = tmp_path / "ssh.config"
    given = {"cluster_name": "pb-if-ssh", "zone": ZONE, "ssh_config_file": str(config), "ssh_options": "ServerAliveInterval 30\nCompression yes\n"}
    run_playbook("playbooks/ssh_config.yml", extra_vars=given)
    lines = [line.strip() for line in config.read_text().splitlines()]
    assert "ServerAliveInterval 30" in lines and "Compression yes" in lines
