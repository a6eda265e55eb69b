"""Bad input, across the modules, the inventory plugin and the playbooks' variables: one table.

``BAD_INPUTS`` is the whole table: ``(surface, target, input, expected message)``. The module tables that
other tests prove are imported from tests/harness/bad_inputs.py, not repeated, and stay proven there too (each
through the recording proxy, ``aws_calls.mutating_calls() == []``):

- toil_cluster: ``CLUSTER_BAD_INPUTS`` (test_toil_cluster.py::test_bad_input_fails_before_any_change)
- toil_nodepool: ``POOL_BAD_INPUTS`` (test_toil_nodepool.py::test_bad_input_fails_before_any_change)

The rest is proven here, every case through the recording proxy: new module cases (one play, one task
each, as harness.playbooks.assert_bad_inputs_fail does), the inventory plugin's configurations (``INVENTORY_BAD_CONFIGS`` plus new ones,
one ansible-inventory run each), and the playbooks' variables (one ansible-playbook run each). Each must
fail with its message and without a traceback, and the proxy must have seen no mutating call at all.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.bad_inputs import CLUSTER_BAD_INPUTS, INVENTORY_BAD_CONFIGS, POOL_BAD_INPUTS
from harness.paths import venv_executable
from harness.playbooks import ansible_environment, run_ansible_playbook
from harness.resilience import ZONE

CLUSTER = "bad-in"

# ---------------------------------------------------------------------- new module cases
SCALER = {"cluster": CLUSTER, "zone": ZONE, "pools": [{"name": "a", "node_types": "m5.large", "min_size": 0, "max_size": 1}], "demand": {"pods": []}}
MODULE_CASES = [
    ("toil_cluster", {"name": "a" * 60, "zone": ZONE, "leader_node_type": "t3.large", "key_pair_name": "k"}, "at most 59"),
    ("toil_cluster", {"name": "Bad_Name", "zone": ZONE, "state": "absent"}, "must be lowercase"),
    ("toil_cluster", {"name": "bad-in", "zone": "moon-1a", "state": "absent"}, "moon-1a"),
    ("toil_cluster_info", {"name": "Bad_Name", "zone": ZONE}, "must be lowercase"),
    ("toil_cluster_info", {"name": "bad-in", "zone": "us-west-2"}, "us-west-2"),
    ("toil_nodepool", {"cluster": CLUSTER, "zone": ZONE, "node_types": "m5.large", "count": 1, "node_storage": 4}, "at least 8 GiB"),
    ("toil_nodepool", {"cluster": CLUSTER, "zone": ZONE, "node_types": "m5.large:0.5,t3.large", "count": 1}, "a single node type was expected"),
    ("toil_scaler", {"cluster": CLUSTER, "zone": ZONE, "pools": [], "demand": {"pods": []}}, "give at least one pool"),
    (
        "toil_scaler",
        {
            "cluster": CLUSTER,
            "zone": ZONE,
            "pools": [{"name": "a", "node_types": "m5.large", "min_size": 0, "max_size": 1}] * 2,
            "demand": {"pods": []},
        },
        "names must be distinct",
    ),
    (
        "toil_scaler",
        {
            "cluster": CLUSTER,
            "zone": ZONE,
            "pools": [{"name": "a", "node_types": "m5.large", "min_size": 0, "max_size": 1}],
            "demand": {"pods": [{"name": "x", "cpu": "1", "count": 0}]},
        },
        "count must be a positive integer",
    ),
    ("toil_scaler", {**SCALER, "pools": [{"name": "a", "node_types": "m5.large"}]}, "missing required arguments: max_size, min_size found in pools"),
    ("toil_scaler", {**SCALER, "scale_down_idle_seconds": -1}, "must not be negative"),
    ("toil_jobstore", {"locator": "aws:us-west-2:ab", "state": "absent"}, "between 3 and 56 characters"),
    ("toil_jobstore", {"locator": "aws:mars-1:jst-x", "state": "absent"}, "is not one of"),
    ("toil_jobstore", {"locator": "google:proj:store", "state": "absent"}, "google:proj:store"),
    ("toil_jobstore_info", {"locator": "aws:us-west-2:Bad_Name"}, "Invalid AWS job store name 'Bad_Name'"),
    # issue #16: digits of other scripts, no upper bound, `$` before a newline
    ("toil_scaler", {**SCALER, "demand": {"pods": [{"name": "x", "cpu": "١"}]}}, "'١' is not a Kubernetes quantity"),
    ("toil_scaler", {**SCALER, "demand": {"pods": [{"name": "x", "cpu": "1", "memory": "1e400"}]}}, "larger than any Kubernetes quantity"),
    ("toil_scaler", {**SCALER, "beta_inertia": "٠.٥"}, "beta_inertia: '٠.٥' is not a number written in ASCII digits"),
    (
        "toil_scaler",
        {**SCALER, "pools": [{"name": "a", "node_types": "m5.large", "min_size": 0, "max_size": 100000}]},
        "pools[0].max_size must be at most 5000",
    ),
    ("toil_scaler", {**SCALER, "pools": [{"name": "a", "node_types": "m5.large", "min_size": "٣", "max_size": 5}]}, "pools[0].min_size: '٣'"),
    ("toil_scaler", {**SCALER, "drain_timeout": -1}, "drain_timeout must not be negative"),
    ("toil_cluster", {"name": "bad-in", "zone": ZONE, "state": "absent", "wait_timeout": "٦٠"}, "wait_timeout: '٦٠'"),
    ("toil_cluster_info", {"name": "bad-in", "region": "us-west-2\n"}, "is not an AWS region name"),
    ("toil_jobstore", {"locator": "aws:us-west-2:jst-x", "state": "absent", "region": "us-west-2\n"}, "is not an AWS region name"),
    ("toil_jobstore_info", {"locator": "aws:us-west-2:jst-x", "s3_endpoint": {"host": "localhost", "port": "٩٠٠٠"}}, "s3_endpoint.port: '٩٠٠٠'"),
]

# ---------------------------------------------------------------------- the inventory plugin
INVENTORY_CASES = {
    **INVENTORY_BAD_CONFIGS,
    "cluster-too-long": ({"regions": ["us-west-2"], "clusters": ["a" * 60]}, "at most 59"),
    "cluster-bad-dash": ({"regions": ["us-west-2"], "clusters": ["-bad-"]}, "Invalid cluster name '-bad-'"),
    "bad-aws-config": ({"regions": ["us-west-2"], "aws_config": {"no_such_setting": 1}}, "aws_config"),
}

# ---------------------------------------------------------------------- the playbooks' variables
LAUNCH = {"cluster_name": CLUSTER, "zone": ZONE, "leader_node_type": "t3.large", "key_pair_name": "toil-test-key", "provision_only": True}
DESTROY = {"cluster_name": CLUSTER, "zone": ZONE}
AUTOSCALE = {"cluster_name": CLUSTER, "zone": ZONE, "node_types": "m5.large", "workers": "0-2", "demand": {"pods": []}}
PLAYBOOK_CASES = [
    ("launch_cluster", {**LAUNCH, "cluster_name": ""}, "launch_cluster needs cluster_name"),
    ("launch_cluster", {**LAUNCH, "cluster_name": "Bad_Name"}, "must be lowercase"),
    ("launch_cluster", {**LAUNCH, "zone": "us-west-2"}, "launch_cluster needs cluster_name, leader_node_type, key_pair_name and zone"),
    ("launch_cluster", {**LAUNCH, "key_pair_name": ""}, "launch_cluster needs cluster_name, leader_node_type, key_pair_name and zone"),
    ("launch_cluster", {**LAUNCH, "cluster_type": "mesos"}, "Toil has deprecated mesos"),
    ("launch_cluster", {**LAUNCH, "leader_storage": 4}, "at least 8"),
    ("launch_cluster", {**LAUNCH, "tags": ["a=b"]}, "tags must be a mapping, or a JSON object or key=value words"),
    ("launch_cluster", {**LAUNCH, "tags": "Project"}, "tags must be a mapping: a JSON object or key=value words, got the word 'Project'"),
    ("launch_cluster", {**LAUNCH, "image_id": "ami-1; id"}, "image_id an AMI ID"),
    ("launch_cluster", {**LAUNCH, "leader_node_type": "m5.large:0.5"}, "leader_node_type must be one on-demand instance type"),
    ("launch_cluster", {**LAUNCH, "leader_node_type": "t3.large/t3a.large"}, "leader_node_type must be one on-demand instance type"),
    ("launch_cluster", {**LAUNCH, "node_types": "m5.large", "workers": "1,2"}, "must be the same length as the list of node types"),
    ("launch_cluster", {**LAUNCH, "node_types": "m5.large", "workers": "two"}, "Worker count 'two' is not a number of nodes"),
    ("launch_cluster", {**LAUNCH, "node_types": "m5.large:-1", "workers": "1"}, "spot bid must be a positive number"),
    ("launch_cluster", {**LAUNCH, "leader_node_type": "t9.bogus"}, "Unknown instance type 't9.bogus'"),
    ("launch_cluster", {**LAUNCH, "key_pair_name": "no-such-key"}, "Key pair 'no-such-key' does not exist"),
    # issue #16: an unknown worker type used to fail after the security group, IAM role and leader were made
    ("launch_cluster", {**LAUNCH, "node_types": "m5.large,t9.bogus", "workers": "1,1"}, "Unknown instance type 't9.bogus'"),
    ("launch_cluster", {**LAUNCH, "node_types": "m5.large", "workers": "٣"}, "Worker count '٣' is not a number of nodes"),
    ("launch_cluster", {**LAUNCH, "node_types": "m5.large", "workers": "100000"}, "more than 5000 nodes"),
    ("launch_cluster", {**LAUNCH, "leader_storage": "٨٠"}, "at most 16384"),
    ("launch_cluster", {**LAUNCH, "node_storage": 100000}, "at most 16384"),
    ("launch_cluster", {**LAUNCH, "leader_storage": "80\n"}, "in ASCII digits"),
    ("launch_cluster", {**LAUNCH, "wait_timeout": -1}, "wait_timeout"),
    ("launch_cluster", {**LAUNCH, "worker_zones": {"us-west-2b": 1}}, "worker_zones must be a list, or a string of shell words or a JSON list"),
    ("launch_cluster", {**LAUNCH, "s3_buckets": '["a", '}, "s3_buckets is not valid JSON"),
    ("launch_cluster", {**LAUNCH, "worker_zones": ["us-west-2b", "us-east-1a"]}, "worker_zones must be availability zones of the cluster's region us-west-2"),
    ("launch_cluster", {**LAUNCH, "worker_zones": ["us-west-2"]}, "worker_zones must be availability zones of the cluster's region us-west-2"),
    ("launch_cluster", {**LAUNCH, "use_private_ip": "maybe"}, "use_private_ip must be true or false, got maybe"),
    ("destroy_cluster", {**DESTROY, "cluster_name": ""}, "destroy_cluster needs cluster_name"),
    ("destroy_cluster", {**DESTROY, "zone": "us-west-2"}, "destroy_cluster needs cluster_name"),
    ("destroy_cluster", {**DESTROY, "cluster_name": "Bad_Name"}, "must be lowercase"),
    ("autoscale", {**AUTOSCALE, "node_types": ""}, "autoscale needs cluster_name"),
    ("autoscale", {**AUTOSCALE, "demand": ["not", "a", "mapping"]}, "demand must be a mapping"),
    ("autoscale", {**AUTOSCALE, "demand": '{"pods": '}, "demand is not valid JSON"),
    ("autoscale", {**AUTOSCALE, "beta_inertia": 0.95}, "beta_inertia must be between 0 and 0.9"),
    ("autoscale", {**AUTOSCALE, "workers": "0-100000"}, "more than 5000 nodes"),
    ("autoscale", {**AUTOSCALE, "workers": "0-٣"}, "is not a number of nodes"),
    ("autoscale", {**AUTOSCALE, "node_storage": "٥٠"}, "node_storage is GiB (8 to 16384)"),
    ("autoscale", {**AUTOSCALE, "scale_down_idle_seconds": -1}, "node_storage is GiB (8 to 16384)"),
    ("autoscale", {**AUTOSCALE, "demand": {"pods": [{"name": "x", "cpu": "١"}]}}, "'١' is not a Kubernetes quantity"),
    ("autoscale", {**AUTOSCALE, "max_vcpus": -8}, "max_vcpus a whole number of vCPUs"),
    ("autoscale", {**AUTOSCALE, "max_hourly_cost": "-1"}, "max_hourly_cost US dollars per hour"),
    ("autoscale", {**AUTOSCALE, "worker_subnets": {"a": 1}}, "worker_subnets must be a list"),
    ("autoscale", {**AUTOSCALE, "image_id": "ami-0d12e1ac5d5e4a001\n"}, "image_id an AMI ID"),
    ("autoscale", {**AUTOSCALE, "worker_zones": ["eu-west-1a"]}, "worker_zones must be availability zones of the cluster's region"),
    ("autoscale", {**AUTOSCALE, "max_memory": "٥Gi"}, "max_memory a Kubernetes quantity"),
    ("autoscale", {**AUTOSCALE, "max_memory": "512"}, "max_memory 512 has no unit"),
    ("autoscale", {**AUTOSCALE, "max_memory": "4K"}, "max_memory: '4K' is not a Kubernetes quantity"),
    ("plan", {"cluster_name": CLUSTER, "zone": ZONE, "node_types": "m5.large", "workers": "٣"}, "is not a number of nodes"),
    ("plan", {"cluster_name": CLUSTER, "zone": ZONE, "worker_pools": [{"node_types": "m5.large", "count": 100000}]}, "more than 5000"),
    ("plan", {"zone": ZONE, "node_types": "m5.large", "workers": "1"}, "plan needs cluster_name"),
    ("run_workflow", {**DESTROY, "workflow": "/etc/hostname", "toil_options": ["--batchSys", "slurm"]}, "may not set --batchSystem"),
    ("run_workflow", {**DESTROY, "workflow": "/etc/hostname", "toil_options": ["--jobSt=file:/tmp/x"]}, "may not set --jobStore"),
    ("run_workflow", {**DESTROY, "workflow": "/etc/hostname", "toil_options": ["--resta"]}, "may not set --restart"),
    ("run_workflow", {**DESTROY, "workflow": "/etc/hostname", "toil_options": ["--metrics", "true"]}, "may not set --metrics"),
    ("run_workflow", {**DESTROY, "workflow": "/etc/hostname", "batch_system": "slurm; id"}, "batch_system is kubernetes or single_machine"),
    ("run_workflow", {**DESTROY, "workflow": "/etc/hostname", "toil_options": "--batchSys slurm"}, "may not set --batchSystem"),
    ("run_workflow", {**DESTROY, "workflow": "/etc/hostname", "workflow_args": {"a": 1}}, "workflow_args must be a list"),
]

BAD_INPUTS = [
    *(("module", "toil_cluster", override, message) for override, message in CLUSTER_BAD_INPUTS),
    *(("module", "toil_nodepool", options, message) for options, message in POOL_BAD_INPUTS),
    *(("module", module, options, message) for module, options, message in MODULE_CASES),
    *(("inventory", name, config, message) for name, (config, message) in INVENTORY_CASES.items()),
    *(("playbook", playbook, extra_vars, message) for playbook, extra_vars, message in PLAYBOOK_CASES),
]


def test_the_table_is_at_least_forty_cases_with_messages():
    assert len(BAD_INPUTS) >= 40, len(BAD_INPUTS)
    assert all(isinstance(message, str) and len(message) >= 2 for *_rest, message in BAD_INPUTS)
    assert {surface for surface, *_rest in BAD_INPUTS} == {"module", "inventory", "playbook"}


def test_new_module_cases_fail_before_any_change(run_playbook, aws_calls):
    """All in one play (a task per case, errors ignored), as assert_bad_inputs_fail does for one module."""
    tasks = [{"name": f"case {i}", f"toil.cluster.{module}": options, "ignore_errors": True} for i, (module, options, _m) in enumerate(MODULE_CASES)]
    result = run_playbook({"hosts": "localhost", "gather_facts": False, "tasks": tasks}, env=aws_calls.env)
    for index, (module, _options, message) in enumerate(MODULE_CASES):
        outcome = result.task(f"case {index}")
        assert outcome.get("failed") is True, (index, module, outcome)
        assert message in outcome["msg"], (index, module, outcome["msg"])
        assert "Traceback" not in json.dumps(outcome), (index, module)
    assert aws_calls.mutating_calls() == []


def test_inventory_configurations_fail_without_any_call(aws, aws_calls, tmp_path):
    """Every bad configuration in one ansible-inventory run (Ansible reports each source), through the proxy."""
    sources = []
    for name, (config, _message) in INVENTORY_CASES.items():
        path = tmp_path / f"{name}.toil_ec2.yml"
        path.write_text(json.dumps({"plugin": "toil.cluster.toil_ec2", **config}))
        sources += ["-i", str(path)]
    env = ansible_environment(aws.env, tmp_path / "work", {**aws_calls.env, "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": None})
    proc = subprocess.run([venv_executable("ansible-inventory"), *sources, "--list"], env=env, capture_output=True, text=True, timeout=300, check=False)
    for name, (_config, message) in INVENTORY_CASES.items():
        assert message in proc.stderr, f"{name}: {message!r} not in\n{proc.stderr[-6000:]}"
    assert "Traceback" not in proc.stderr
    assert aws_calls.mutating_calls() == []


@pytest.mark.parametrize("playbook", sorted({p for p, _v, _m in PLAYBOOK_CASES}))
def test_playbook_variables_fail_before_any_change(playbook, aws, key_pair, aws_calls, tmp_path):
    cases = [(extra_vars, message) for p, extra_vars, message in PLAYBOOK_CASES if p == playbook]

    def run(index):
        extra_vars, _message = cases[index]
        workdir = tmp_path / f"case-{index}"
        return run_ansible_playbook(f"playbooks/{playbook}.yml", {**aws.env, **aws_calls.env}, workdir, extra_vars=extra_vars, expect_rc=None)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(len(cases))))
    for (extra_vars, message), result in zip(cases, results, strict=True):
        assert result.rc == 2, (extra_vars, result.describe())
        failed = result.failed_tasks()
        assert len(failed) == 1 and message in failed[0][2], (extra_vars, message, failed)
        assert "Traceback" not in result.stdout + result.stderr, extra_vars
    assert aws_calls.mutating_calls() == []
