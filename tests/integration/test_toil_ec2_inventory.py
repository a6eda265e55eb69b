"""The toil_ec2 inventory plugin through ``ansible-inventory --list``, against the embedded endpoint.

One account holds clusters made three ways: by this collection (toil_cluster + toil_nodepool, Debian
nodes), by the real ``toil launch-cluster`` (Toil 9.6's own provisioner code, in an offline network
namespace), and shaped like Toil's with boto3 (toil_shapes), in two regions. The inventory only reads
AWS: nothing here connects to an address the endpoint hands out (the jump to a worker is only written, never used).
AWS calls are counted by the recording proxy (harness.proxy).
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.bad_inputs import INVENTORY_BAD_CONFIGS
from harness.netns import OfflineNetnsError
from harness.paths import venv_executable
from harness.playbooks import ansible_environment, unwrap_unsafe
from harness.toil_interop import ToilNotInstalledError, purge_toil_cluster, toil_launch_cluster
from harness.toil_shapes import make_toil_cluster, run_nodes

ZONE = "us-west-2a"
EAST = "us-east-1"
COLLECTION = "inv-coll"
TOIL_LAUNCHED = "inv-toil"
SHAPED = "inv-shaped"
OTHER = "inv-east"


class Listing:
    """One ``ansible-inventory --list`` result: ``hostvars``, ``groups`` (name -> sorted hosts), ``rc``, ``stderr``."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.stderr = proc.stderr
        data = unwrap_unsafe(json.loads(proc.stdout)) if proc.returncode == 0 and proc.stdout.strip() else {}
        self.hostvars = data.pop("_meta", {}).get("hostvars", {})
        self.groups = {name: sorted(body.get("hosts", [])) for name, body in data.items()}

    def by_id(self):
        return {v["toil_instance_id"]: (name, v) for name, v in self.hostvars.items()}

    def group_ids(self, group):
        return sorted(self.hostvars[name]["toil_instance_id"] for name in self.groups.get(group, []))


@pytest.fixture
def inventory(aws, tmp_path_factory):
    """``inventory(config, env=None, args=(), expect_rc=0) -> Listing``: ansible-inventory --list.

    The configuration is always written to the same path within a test (the inventory cache key starts
    with the path)."""
    path = tmp_path_factory.mktemp("inventory-config") / "test.toil_ec2.yml"

    def run(config, env=None, args=(), expect_rc=0):
        workdir = tmp_path_factory.mktemp("inventory")
        path.write_text(json.dumps({"plugin": "toil.cluster.toil_ec2", **config}))
        proc = subprocess.run(
            [venv_executable("ansible-inventory"), "-i", str(path), "--list", *args],
            env=ansible_environment(aws.env, workdir, env),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        listing = Listing(proc)
        if expect_rc is not None:
            assert listing.rc == expect_rc, f"ansible-inventory exited {listing.rc}\n{proc.stderr[-6000:]}"
        return listing

    return run


def _collection_cluster(run_playbook, key_pair):
    """A leader by toil_cluster, an on-demand pool of 2 and a spot pool of 1 by toil_nodepool."""
    tasks = [
        {"name": "cluster", "toil.cluster.toil_cluster": {"name": COLLECTION, "zone": ZONE, "leader_node_type": "t3.large", "key_pair_name": key_pair}},
        {"name": "pool", "toil.cluster.toil_nodepool": {"cluster": COLLECTION, "zone": ZONE, "node_types": "m5.large", "count": 2}},
        {"name": "spot", "toil.cluster.toil_nodepool": {"cluster": COLLECTION, "zone": ZONE, "node_types": "c5.large:0.5", "count": 1}},
    ]
    result = run_playbook({"hosts": "localhost", "gather_facts": False, "tasks": tasks})
    return result.task("cluster")["leader"]["instance_id"], result.task("pool")["pool"], result.task("spot")["pool"]


def _toil_launched_cluster(aws, key_pair):
    try:
        launch = toil_launch_cluster(aws.env, TOIL_LAUNCHED, ZONE, key_pair)
    except (ToilNotInstalledError, OfflineNetnsError) as exc:
        pytest.fail(f"cannot run the real Toil here: {exc}", pytrace=False)
    assert launch.leader_id, launch.describe()
    return launch.leader_id


def test_clusters_of_every_origin_in_two_regions(aws, run_playbook, key_pair, inventory, aws_calls):
    for name in (COLLECTION, TOIL_LAUNCHED, SHAPED):
        aws.add_cleanup(purge_toil_cluster, aws.env, name, aws.region)
    aws.leak_regions.append(EAST)
    leader, pool, spot = _collection_cluster(run_playbook, key_pair)
    toil_leader = _toil_launched_cluster(aws, key_pair)
    shaped = make_toil_cluster(aws, SHAPED, workers=2)
    ec2 = aws.client("ec2")
    # The group alone is not membership: a node in the cluster's group without its clusterName tag (Toil's,
    # before it tags it, or anyone's) is a stray, warned of and left out (test_membership.py).
    (untagged,) = run_nodes(aws, 1, group_id=shaped.group_id)
    # Nor are tags alone: a worker moved out of the cluster's group (here the VPC's default group); the second
    # listing per region (by the clusterName tag) finds it to warn of it.
    default_group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    base = {"Name": SHAPED, "Owner": "me", "clusterName": SHAPED}
    (outside,) = run_nodes(aws, 1, group_id=default_group, tags={**base, "ToilNodeType": "worker"}, spot=True)
    # Stopped, and not Toil's at all.
    (stopped,) = run_nodes(aws, 1, group_id=shaped.group_id, tags={**base, "ToilNodeType": "worker"})
    ec2.stop_instances(InstanceIds=[stopped])
    (stranger,) = run_nodes(aws, 1, group_id=default_group, tags={"Name": SHAPED})
    by_hand = ec2.create_security_group(GroupName="by-hand", Description="not Toil's")["GroupId"]
    aws.add_cleanup(ec2.delete_security_group, GroupId=by_hand)
    (not_toil,) = run_nodes(aws, 1, group_id=by_hand)  # in a group without Toil's description: not a cluster
    east = make_toil_cluster(aws, OTHER, workers=1, region=EAST, owner="you")

    everything = inventory({"regions": [aws.region, EAST]}, env=aws_calls.env)
    found = everything.by_id()
    pool_ids = [i["instance_id"] for i in pool["instances"]]
    spot_ids = [i["instance_id"] for i in spot["instances"]]
    assert sorted(found) == sorted([leader, *pool_ids, *spot_ids, toil_leader, shaped.leader_id, *shaped.worker_ids, east.leader_id, *east.worker_ids])
    assert not {untagged, outside, stopped, stranger, not_toil} & set(found)
    assert f"Instance {untagged} was left out of cluster {SHAPED}" in everything.stderr
    assert f"Instance {outside} was left out of cluster {SHAPED}" in everything.stderr
    # Every host is named by its instance ID (the default), connects to its public address.
    assert all(name == v["toil_instance_id"] and v["ansible_host"] == v["toil_public_ip"] for name, v in everything.hostvars.items())

    # Groups: one per cluster, leaders, workers, preemptible, pools, instance types.
    groups = everything.group_ids
    assert groups("toil_cluster_inv_coll") == sorted([leader, *pool_ids, *spot_ids])
    assert groups("toil_cluster_inv_toil") == [toil_leader]
    assert groups("toil_cluster_inv_shaped") == sorted([shaped.leader_id, *shaped.worker_ids])
    assert groups("toil_cluster_inv_east") == sorted([east.leader_id, *east.worker_ids])
    assert groups("toil_leaders") == sorted([leader, toil_leader, shaped.leader_id, east.leader_id])
    assert groups("toil_preemptible") == sorted(spot_ids)
    assert groups("toil_pool_inv_coll_m5_large") == sorted(pool_ids)
    assert groups("toil_pool_inv_coll_c5_large_spot") == sorted(spot_ids)
    assert groups("toil_type_c5_large") == sorted(spot_ids)
    assert groups("toil_nodes") == sorted(found)
    assert "toil_stopped" not in everything.groups

    # Variables: who logs in, which cluster, which leader, where.
    assert {found[i][1]["ansible_user"] for i in (leader, *pool_ids, *spot_ids)} == {"admin"}  # this collection's Debian
    assert {found[i][1]["ansible_user"] for i in (toil_leader, shaped.leader_id, east.leader_id)} == {"core"}  # Toil's Flatcar
    assert {found[i][1]["toil_leader"] for i in pool_ids} == {leader}
    assert found[east.leader_id][1]["toil_region"] == EAST
    worker = found[pool_ids[0]][1]
    assert worker["toil_pool"] == "m5-large" and worker["toil_cluster"] == COLLECTION and worker["toil_preemptible"] is False
    assert worker["ec2_tags"]["toil.cluster/pool"] == "m5-large" and "tags" not in worker
    assert worker["toil_zone"] == ZONE and worker["toil_instance_type"] == "m5.large" and worker["toil_launch_time"].endswith("+00:00")

    # Per region: one DescribeSecurityGroups and two listings in pages of 1,000 (by the clusters' groups, by their tag); nothing else.
    assert sorted({action for _service, action in aws_calls.calls}) == ["DescribeInstances", "DescribeSecurityGroups"]
    assert aws_calls.count("DescribeSecurityGroups") == 2
    assert aws_calls.count("DescribeInstances") == aws_calls.count("DescribeInstances", MaxResults="1000") == 4

    # Narrowed: my nodes of two clusters, stopped ones too, workers only, named by private IP, through the leader.
    aws_calls.clear()
    config = {
        "clusters": [SHAPED, COLLECTION, OTHER],
        "owners": ["me"],
        "include_stopped": True,
        "node_types": ["worker"],
        "hostnames": ["private_ip", "instance_id"],
        "leader_as_bastion": True,
        "use_private_ip": True,
        "keyed_groups": [{"key": "toil_region", "prefix": "region"}],
        "compose": {"ansible_python_interpreter": "'/usr/bin/python3'"},
        "groups": {"big": "toil_instance_type.startswith('m5')"},
    }
    mine = inventory(config, env=aws_calls.env)
    found = mine.by_id()
    # inv-coll's Owner is its key pair's name, inv-east's is "you"; the untagged stray has no Owner at all.
    assert sorted(found) == sorted([*shaped.worker_ids, stopped])
    assert mine.group_ids("toil_stopped") == [stopped]
    assert mine.group_ids("region_us_west_2") == sorted(found)
    assert mine.group_ids("big") == sorted([*shaped.worker_ids])
    leader_ip = ec2.describe_instances(InstanceIds=[shaped.leader_id])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    for name, variables in mine.hostvars.items():
        assert variables["toil_leader"] is None  # the leader is not in this inventory...
        assert variables["toil_jump"] == {"host": leader_ip, "user": "core", "instance_id": shaped.leader_id}  # ...but still the way in
        assert "toil.cluster.ssh_jump_args" in variables["ansible_ssh_common_args"]  # rendered per run: test_toil_ec2_cluster_groups
        assert variables["ansible_python_interpreter"] == "/usr/bin/python3"
        if variables["toil_private_ip"]:
            assert name == variables["toil_private_ip"] == variables["ansible_host"]
    # Named clusters are the groups to list: one request by group, one by tag, no DescribeSecurityGroups.
    assert [action for _service, action in aws_calls.calls] == ["DescribeInstances", "DescribeInstances"]
    assert aws_calls.count("DescribeInstances", **{"Filter.1.Name": "instance.group-name"}) == 1
    assert aws_calls.count("DescribeInstances", **{"Filter.1.Name": "tag:clusterName"}) == 1


def test_many_reservations_cache_and_assumed_role(aws, inventory, aws_calls, tmp_path):
    """101 reservations (moto pages at 100), read in one page per listing; a cache hit makes no AWS call, not even STS."""
    shaped = make_toil_cluster(aws, SHAPED, workers=0)
    tags = {"Name": SHAPED, "Owner": "me", "clusterName": SHAPED, "ToilNodeType": "worker"}
    with ThreadPoolExecutor(4) as pool:  # one reservation per node, as Toil launches them; four at a time
        batches = pool.map(lambda _batch: run_nodes(aws, 25, group_id=shaped.group_id, tags=tags, instance_type="m5.large"), range(4))
        shaped.worker_ids = [i for batch in batches for i in batch]
    cache = tmp_path / "cache"
    config = {
        "assume_role_arn": "arn:aws:iam::123456789012:role/toil-inventory",
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(cache),
        "cache_timeout": 3600,
        "keyed_groups": [{"key": "toil_instance_type", "prefix": "type"}],
    }
    first = inventory(config, env=aws_calls.env)
    assert sorted(first.by_id()) == sorted([shaped.leader_id, *shaped.worker_ids])
    assert first.group_ids("type_m5_large") == sorted(shaped.worker_ids)
    assert aws_calls.count("AssumeRole") == 1
    assert aws_calls.count("DescribeInstances") == aws_calls.count("DescribeInstances", MaxResults="1000") == 2  # by group, by tag
    assert any(cache.iterdir())

    aws_calls.clear()
    second = inventory(config, env=aws_calls.env)
    assert aws_calls.calls == []
    assert second.hostvars == first.hostvars and second.groups == first.groups  # keyed_groups recomputed on the hit

    # Another question is another cache entry; --flush-cache asks AWS again.
    narrower = inventory({**config, "node_types": ["leader"], "clusters": [SHAPED]}, env=aws_calls.env)
    assert list(narrower.by_id()) == [shaped.leader_id]
    assert aws_calls.count("DescribeInstances") == 2
    aws_calls.clear()
    inventory(config, env=aws_calls.env, args=["--flush-cache"])
    assert aws_calls.count("DescribeInstances") == 2


def test_bad_configuration_is_a_clear_error(aws, inventory, tmp_path):
    """Each refused before any AWS call, with the reason; all in one ansible-inventory run (Ansible reports every source)."""
    sources = []
    for name, (config, _message) in INVENTORY_BAD_CONFIGS.items():
        path = tmp_path / f"{name}.toil_ec2.yml"
        path.write_text(json.dumps({"plugin": "toil.cluster.toil_ec2", **config}))
        sources += ["-i", str(path)]
    failed = inventory({}, args=sources, env={"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": None}, expect_rc=None)
    for name, (_config, message) in INVENTORY_BAD_CONFIGS.items():
        assert message in failed.stderr, f"{name}: {message!r} not in\n{failed.stderr[-6000:]}"
    # No region anywhere: an error, never every region.
    missing = inventory({}, env={"AWS_REGION": None, "AWS_DEFAULT_REGION": None}, expect_rc=1)
    assert "no region to search" in missing.stderr


def test_aws_failures_fail_the_inventory(aws, inventory, aws_calls):
    make_toil_cluster(aws, SHAPED, workers=1)
    # Throttling is retried (botocore standard mode)...
    aws_calls.fail_next("DescribeInstances", times=2)
    assert len(inventory({}, env=aws_calls.env).hostvars) == 2
    # ...a refusal is not, and fails the source instead of leaving an empty inventory.
    aws_calls.fail_next("DescribeInstances", times=1, status=403, code="UnauthorizedOperation")
    failed = inventory({}, env=aws_calls.env, expect_rc=1)
    assert "UnauthorizedOperation" in failed.stderr and "DescribeInstances in us-west-2 failed" in failed.stderr
    # Without ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED, Ansible only warns, but the reason is shown.
    aws_calls.fail_next("DescribeSecurityGroups", times=1, status=403, code="UnauthorizedOperation")
    warned = inventory({}, env={**aws_calls.env, "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": None}, expect_rc=None)
    assert "DescribeSecurityGroups in us-west-2 failed" in warned.stderr and not warned.hostvars


def test_profile_gives_credentials_and_region(aws, inventory, tmp_path):
    """A profile named in the file is used, with its region, over the endpoint's keys and region in the environment."""
    aws.leak_regions.append(EAST)
    east = make_toil_cluster(aws, OTHER, workers=0, region=EAST)
    (tmp_path / "config").write_text("[profile inventory]\nregion = us-east-1\n")
    (tmp_path / "credentials").write_text("[inventory]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    files = {"AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    listing = inventory({"profile": "inventory"}, env={**files, "AWS_REGION": None, "AWS_DEFAULT_REGION": None})
    assert list(listing.by_id()) == [east.leader_id]
    assert listing.hostvars[east.leader_id]["toil_region"] == EAST
    missing = inventory({"profile": "nobody"}, env=files, expect_rc=1)
    assert "nobody" in missing.stderr


def test_cluster_info_hosts_are_the_inventorys(aws, run_playbook, inventory):
    # toil_cluster_info's hosts (what configure_cluster adds with add_host) are what this inventory gives
    # for the same nodes: names, groups and variables, from the one builder both use.
    shaped = make_toil_cluster(aws, SHAPED, workers=2)
    task = {"name": "info", "toil.cluster.toil_cluster_info": {"name": SHAPED, "region": "us-west-2"}, "register": "info"}
    hosts = run_playbook({"hosts": "localhost", "gather_facts": False, "tasks": [task]}).task("info")["clusters"][0]["hosts"]
    listing = inventory({"regions": ["us-west-2"], "clusters": [SHAPED]})
    assert sorted(host["name"] for host in hosts) == sorted(listing.hostvars) == sorted([shaped.leader_id, *shaped.worker_ids])
    for host in hosts:
        assert host["vars"] == listing.hostvars[host["name"]]
        assert sorted(host["groups"]) == sorted(group for group, members in listing.groups.items() if host["name"] in members and group != "all")
