"""The toil_ec2 plugin file: which files it claims, and that its documentation says what the code does.

Parsing through Ansible (options, cache, errors) is tested with ansible-inventory against the embedded
endpoint: tests/integration/test_toil_ec2_inventory.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ansible_collections.toil.cluster.plugins.inventory import toil_ec2
from ansible_collections.toil.cluster.plugins.module_utils.inventory import (
    DEFAULT_HOSTNAMES,
    GROUP_ALL,
    GROUP_CLUSTER_PREFIX,
    GROUP_LEADERS,
    GROUP_POOL_PREFIX,
    GROUP_PREEMPTIBLE,
    GROUP_STOPPED,
    GROUP_TYPE_PREFIX,
    GROUP_WORKERS,
    HOSTNAME_CHOICES,
    NODE_TYPES,
    InventoryOptions,
    build_inventory,
)

REPO = Path(__file__).resolve().parents[4]
DOC = yaml.safe_load(toil_ec2.DOCUMENTATION)
OPTIONS = DOC["options"]
TEXT = " ".join(DOC["description"])


def test_claims_only_its_own_config_files(tmp_path):
    plugin = toil_ec2.InventoryModule()
    for name, claimed in (
        ("prod.toil_ec2.yml", True),
        ("prod.toil_ec2.yaml", True),
        ("toil_ec2.yml", True),  # as amazon.aws.aws_ec2 takes aws_ec2.yml
        ("prod.aws_ec2.yml", False),
        ("prod.toil_ec2.yml.bak", False),
    ):
        path = tmp_path / name
        path.write_text("plugin: toil.cluster.toil_ec2\n")
        assert plugin.verify_file(str(path)) is claimed, name
    assert plugin.verify_file(str(tmp_path / "missing.toil_ec2.yml")) is False


def test_documented_choices_are_the_codes():
    assert OPTIONS["plugin"]["choices"] == [toil_ec2.InventoryModule.NAME]
    assert tuple(OPTIONS["hostnames"]["choices"]) == HOSTNAME_CHOICES
    assert tuple(OPTIONS["hostnames"]["default"]) == DEFAULT_HOSTNAMES
    assert tuple(OPTIONS["node_types"]["choices"]) == NODE_TYPES
    fragments = ["amazon.aws.common.plugins", "amazon.aws.region.plugins", "amazon.aws.boto3", "constructed", "inventory_cache"]
    assert DOC["extends_documentation_fragment"] == fragments


def test_every_variable_and_group_made_is_documented():
    record = {
        "InstanceId": "i-1",
        "InstanceType": "t3.large",
        "State": "stopped",
        "LaunchTime": "2025-01-01T00:00:00.000+00:00",
        "PrivateIpAddress": "10.0.0.1",
        "SecurityGroups": ["c1"],
        "InstanceLifecycle": "spot",
        "Tags": [{"Key": "ToilNodeType", "Value": "worker"}, {"Key": "clusterName", "Value": "c1"}, {"Key": "toil.cluster/pool", "Value": "p"}],
    }
    leader = dict(
        record,
        InstanceId="i-0",
        State="running",
        LaunchTime="2024-01-01T00:00:00.000+00:00",
        PublicIpAddress="54.0.0.1",
        Tags=[{"Key": "ToilNodeType", "Value": "leader"}, {"Key": "clusterName", "Value": "c1"}],
    )
    result = {"us-west-2": {"cluster_groups": ["c1"], "instances": [leader, record]}}
    inventory = build_inventory(result, InventoryOptions(leader_as_bastion=True))
    documented = set(re.findall(r"C\(([a-z0-9_]+)\)", TEXT))
    for host in inventory.hosts:
        assert set(host.variables) <= documented, set(host.variables) - documented
    for group in (GROUP_ALL, GROUP_LEADERS, GROUP_WORKERS, GROUP_PREEMPTIBLE, GROUP_STOPPED):
        assert f"C({group})" in TEXT
    for prefix in (GROUP_CLUSTER_PREFIX, GROUP_POOL_PREFIX, GROUP_TYPE_PREFIX):
        assert f"C({prefix}<" in TEXT
    assert {g for h in inventory.hosts for g in h.groups} >= {GROUP_ALL, GROUP_LEADERS, GROUP_WORKERS, GROUP_PREEMPTIBLE, GROUP_STOPPED}


def test_examples_are_inventory_files():
    configs = list(yaml.safe_load_all(toil_ec2.EXAMPLES))
    assert len(configs) == 3
    for config in configs:
        assert config["plugin"] == "toil.cluster.toil_ec2"
        assert set(config) <= set(OPTIONS) | CONSTRUCTED_AND_CACHE | {"profile"}


CONSTRUCTED_AND_CACHE = {"strict", "compose", "groups", "keyed_groups", "leading_separator", "use_extra_vars"}
CONSTRUCTED_AND_CACHE |= {"cache", "cache_plugin", "cache_timeout", "cache_connection", "cache_prefix"}


def test_example_inventory_files_use_known_options():
    examples = sorted((REPO / "inventory").glob("*.toil_ec2.yml"))
    assert examples
    for path in examples:
        config = yaml.safe_load(path.read_text())
        assert config["plugin"] == "toil.cluster.toil_ec2", path
        assert set(config) <= set(OPTIONS) | CONSTRUCTED_AND_CACHE, path
