"""One cluster's node cannot join another cluster, and a worker is never made leader (issue #16, point 4).

A node is a member of cluster C only when it is in C's security group *and* tagged ``clusterName=C``
(plugins/module_utils/nodes.py ``is_member``). Two Toil-shaped clusters rt1 and rt2 (harness.toil_shapes), and
three strays around rt2: rt1's instance in rt2's group, an untagged instance in rt2's group, and an instance
tagged ``clusterName=rt2`` (and rt2's pool) outside the group. None may be listed, counted, configured or
destroyed as rt2's by toil_cluster_info (whose ``hosts`` configure_cluster adds), the toil_ec2 inventory,
toil_nodepool (the scaler's counting is the same ``nodepool.reconcile``) or toil_cluster state=absent, and each
is warned of. Then: with rt3's leader gone, toil_cluster state=present refuses before any change instead of
retagging the oldest worker as leader. AWS-only: nothing connects to the instances.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from harness.paths import venv_executable
from harness.playbooks import ansible_environment, unwrap_unsafe
from harness.toil_shapes import make_toil_cluster, run_nodes


def _play(module, options, name="task"):
    return {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": name, f"toil.cluster.{module}": options, "register": "out"}]}


def _ids_in(text, ids):
    return {i for i in ids if i in text}


@pytest.fixture
def strays(aws):
    """rt1 and rt2 as Toil leaves them, plus rt2's three strays: {"rt1", "rt2", "foreign", "untagged", "outside"}."""
    rt1 = make_toil_cluster(aws, "rt1", workers=1)
    rt2 = make_toil_cluster(aws, "rt2", workers=1)
    base = {"Owner": "me", "ToilNodeType": "worker", "toil.cluster/pool": "p"}
    (foreign,) = run_nodes(aws, 1, group_id=rt2.group_id, tags={**base, "Name": "rt1", "clusterName": "rt1"})
    (untagged,) = run_nodes(aws, 1, group_id=rt2.group_id)
    (outside,) = run_nodes(aws, 1, group_id=rt1.group_id, tags={**base, "Name": "rt2", "clusterName": "rt2"})
    return {"rt1": rt1, "rt2": rt2, "foreign": foreign, "untagged": untagged, "outside": outside}


def check_cluster_info(run_playbook, strays):
    """toil_cluster_info: leader, workers, count and hosts (what configure_cluster hands to add_host and joins)."""
    rt2, rogue = strays["rt2"], _rogue(strays)
    info = run_playbook(_play("toil_cluster_info", {"name": "rt2"})).task("task")
    (cluster,) = info["clusters"]
    assert cluster["leader"]["instance_id"] == rt2.leader_id
    assert {w["instance_id"] for w in cluster["workers"]} == set(rt2.worker_ids)
    assert cluster["node_count"] == 2
    assert {h["vars"]["toil_instance_id"] for h in cluster["hosts"]} == _members(strays)
    assert _ids_in(" ".join(info.get("warnings", [])), rogue) == rogue


def check_inventory(aws, tmp_path, strays):
    """The toil_ec2 inventory (ansible-inventory --list), for rt2 and for every cluster."""
    rogue = _rogue(strays)
    for config in ({"regions": ["us-west-2"], "clusters": ["rt2"]}, {"regions": ["us-west-2"]}):
        path = tmp_path / "inventory" / "test.toil_ec2.yml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"plugin": "toil.cluster.toil_ec2", **config}))
        proc = subprocess.run(
            [venv_executable("ansible-inventory"), "-i", str(path), "--list"],
            env=ansible_environment(aws.env, tmp_path / "inventory", None),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        listing = unwrap_unsafe(json.loads(proc.stdout))
        hostvars = listing["_meta"]["hostvars"]
        in_rt2 = {hostvars[h]["toil_instance_id"] for h in listing.get("toil_cluster_rt2", {}).get("hosts", [])}
        assert in_rt2 == _members(strays), config
        assert not rogue & {v["toil_instance_id"] for v in hostvars.values()}, config
        assert _ids_in(proc.stderr, rogue) == rogue, proc.stderr[-4000:]


def check_pool_counting(run_playbook):
    """toil_nodepool (and the scaler, through the same nodepool.reconcile): rt2's pool "p" has no node. In check
    mode, so nothing is launched or terminated: the instance tagged for the pool outside the group is not counted
    (else count=0 would plan to terminate it)."""
    pool = run_playbook(_play("toil_nodepool", {"cluster": "rt2", "name": "p", "node_types": "m5.large", "count": 0}), check=True)
    task = pool.task("task")
    assert task["changed"] is False, task
    assert task["pool"]["instances"] == [] and task["pool"]["running"] == 0


def check_destroy(aws, run_playbook, aws_calls, strays):
    """Destroying rt2 terminates what is in its group: refused while rt1's instance is in it, before any change;
    the instance tagged rt2 outside the group is never planned for removal."""
    aws_calls.clear()
    refused = run_playbook(_play("toil_cluster", {"name": "rt2", "state": "absent", "zone": "us-west-2a"}), expect_rc=None, env=aws_calls.env)
    assert refused.rc != 0
    message = refused.task("task")["msg"]
    assert strays["foreign"] in message and "other clusters" in message and "Nothing was removed" in message
    assert aws_calls.mutating_calls() == []
    ec2 = aws.client("ec2")
    ec2.terminate_instances(InstanceIds=[strays["foreign"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[strays["foreign"]], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    plan = run_playbook(_play("toil_cluster", {"name": "rt2", "state": "absent", "zone": "us-west-2a"}), check=True).task("task")["removed"]
    assert set(plan["instances"]) == {*_members(strays), strays["untagged"]}  # Toil's node before its tags goes with the group
    assert plan["leader"] == strays["rt2"].leader_id


def _members(strays):
    return {strays["rt2"].leader_id, *strays["rt2"].worker_ids}


def _rogue(strays):
    return {strays["foreign"], strays["untagged"], strays["outside"]}


def test_strays_are_never_rt2s_nodes_and_each_is_warned_of(aws, run_playbook, aws_calls, tmp_path, strays):
    check_cluster_info(run_playbook, strays)
    check_inventory(aws, tmp_path, strays)
    check_pool_counting(run_playbook)
    check_destroy(aws, run_playbook, aws_calls, strays)


def _tags(ec2, ids):
    found = ec2.describe_instances(InstanceIds=list(ids))["Reservations"]
    return {i["InstanceId"]: sorted((t["Key"], t["Value"]) for t in i.get("Tags", [])) for r in found for i in r["Instances"]}


def test_a_worker_is_never_made_leader(aws, run_playbook, aws_calls, key_pair):
    rt3 = make_toil_cluster(aws, "rt3", workers=2)
    ec2 = aws.client("ec2")
    ec2.terminate_instances(InstanceIds=[rt3.leader_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[rt3.leader_id], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    before = _tags(ec2, rt3.worker_ids)

    info = run_playbook(_play("toil_cluster_info", {"name": "rt3"})).task("task")["clusters"][0]
    assert info["leader"] is None
    assert {w["instance_id"] for w in info["workers"]} == set(rt3.worker_ids)

    aws_calls.clear()
    options = {"name": "rt3", "zone": "us-west-2a", "leader_node_type": "t3.large", "key_pair_name": key_pair}
    launch = run_playbook(_play("toil_cluster", options), expect_rc=None, env=aws_calls.env)
    assert launch.rc != 0, launch.describe()
    message = launch.task("task")["msg"]
    assert "no leader" in message and "destroy_cluster" in message
    assert _ids_in(message, rt3.worker_ids) == set(rt3.worker_ids)
    assert aws_calls.mutating_calls() == []  # before any change: no group rule, role, tag or instance
    assert _tags(ec2, rt3.worker_ids) == before
    live = ec2.describe_instances(
        Filters=[{"Name": "instance.group-name", "Values": ["rt3"]}, {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    )
    assert sorted(i["InstanceId"] for r in live["Reservations"] for i in r["Instances"]) == sorted(rt3.worker_ids)
