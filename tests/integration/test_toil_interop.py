"""Interoperability with the real Toil 9.6 (``.venv-toil``): clusters made by one side, seen and destroyed by the other.

Every Toil process runs in an OfflineNetns (see harness.netns): a network namespace with loopback only,
where 127.0.0.1:<port> is relayed to the embedded endpoint. ``toil launch-cluster`` waits for SSH on the
leader's public address (a real 54.x address handed out by moto); there it cannot reach it, and we stop
it once the leader is up. Creating the namespace needs root: without it these tests fail (they never skip).

Each test ends with the leak check; ``purge_toil_cluster`` is registered first as a fallback cleanup, so a
failing test leaves nothing behind either (after a passing destroy it finds nothing to do).
"""

from __future__ import annotations

import errno
import time

import pytest

from harness.netns import OfflineNetns, OfflineNetnsError
from harness.paths import REPO
from harness.toil_interop import ToilNotInstalledError, import_key_pair, pick_ami, purge_toil_cluster, toil_destroy_cluster, toil_launch_cluster, toil_view
from harness.toil_shapes import iam_name, make_toil_cluster

pytestmark = pytest.mark.toil

ZONE = "us-west-2a"
DESTROY_TIMEOUT = 120  # Toil retries some failures for 300 s; fail sooner than that
TOIL_CLUSTER_MODULE = REPO / "plugins" / "modules" / "toil_cluster.py"


# ---------------------------------------------------------------------- fixtures and helpers
@pytest.fixture
def offline(aws):
    """The network namespace every Toil process of the test runs in (relayed to this test's endpoint).

    Started by its first use inside the test, so that a missing privilege fails the test itself."""
    netns = OfflineNetns(aws.url)
    try:
        yield netns
    finally:
        netns.close()


@pytest.fixture
def toil_key_pair(aws, tmp_path):
    return import_key_pair(aws, "ti-key", tmp_path)


@pytest.fixture
def timings(record_property):
    """Wall times of the Toil steps: in the JUnit XML (record_property) and printed (visible with -s)."""
    measured: dict[str, float] = {}
    yield measured
    record_property("toil_timings", measured)
    print(f"toil timings: {measured}")


def _purge_at_cleanup(aws, name):
    aws.add_cleanup(purge_toil_cluster, aws.env, name, aws.region)


def _require_toil_runs(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except (ToilNotInstalledError, OfflineNetnsError) as exc:
        problem = f"cannot run the real Toil here: {exc}"
    pytest.fail(problem, pytrace=False)


def info_play(**options):
    return {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "info", "toil.cluster.toil_cluster_info": options, "register": "info"}]}


def cluster_info(run_playbook, name):
    (cluster,) = run_playbook(info_play(name=name, zone=ZONE)).task("info")["clusters"]
    return cluster


def launch_with_toil(aws, offline, name, key_pair, timings):
    began = time.monotonic()
    launch = _require_toil_runs(toil_launch_cluster, aws.env, name, ZONE, key_pair, netns=offline)
    timings["toil_launch_cluster"] = round(time.monotonic() - began, 2)
    timings["toil_launch_to_leader"] = launch.seconds_to_leader
    assert launch.leader_id, f"toil launch-cluster made no leader:\n{launch.describe()}"
    # Toil got as far as its SSH wait and was still waiting (nothing it could connect to) when we stopped it.
    assert launch.stopped_by_us and not launch.timed_out, launch.describe()
    assert launch.reached_ssh_wait and launch.ssh_target == launch.leader_public_ip, launch.describe()
    assert launch.netns_connections > 0, "Toil never used the relay to the endpoint"
    # ...because where it ran there is no interface but loopback and no route to that address.
    probe = _require_toil_runs(offline.probe, launch.ssh_target)
    assert probe["interfaces"] == ["lo"] and probe["route"] is False and probe["errno"] == errno.ENETUNREACH, probe
    return launch


def destroy_with_toil(aws, offline, name, timings):
    destroy = _require_toil_runs(toil_destroy_cluster, aws.env, name, ZONE, netns=offline, timeout=DESTROY_TIMEOUT)
    timings["toil_destroy_cluster"] = destroy.seconds
    assert destroy.returncode == 0, f"toil destroy-cluster exited {destroy.returncode}\n{destroy.stdout[-4000:]}\n{destroy.stderr[-8000:]}"
    return destroy


def view_with_toil(aws, offline, name, timings):
    view = _require_toil_runs(toil_view, aws.env, name, ZONE, netns=offline)
    timings.setdefault("toil_view", view["seconds"])
    return view


# ---------------------------------------------------------------------- Toil makes, we find; Toil destroys
def test_toil_launched_cluster_is_found_and_toil_destroys_it(aws, run_playbook, offline, toil_key_pair, timings):
    name = "ti-launch"
    _purge_at_cleanup(aws, name)
    launch = launch_with_toil(aws, offline, name, toil_key_pair, timings)

    # What the real launch made: Toil's names, and the Kubernetes leader's Ignition config (> 16 KB) in S3.
    created = launch.created
    assert created["instances"] == [launch.leader_id]
    assert created["iam_roles"] == created["iam_instance_profiles"] == [iam_name(name)]
    assert created["s3_buckets"] == [f"{name}--internal"]
    assert len(created["security_groups"]) == 1
    assert len(created["volumes"]) == 1
    assert not {"launch_templates", "autoscaling_groups", "spot_instance_requests", "sdb_domains", "iam_policies"} & created.keys(), created
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=f"{name}--internal").get("Contents", [])]
    assert len(keys) == 1 and keys[0].startswith("configs/leader/config-") and keys[0].endswith(".ign"), keys
    assert s3.get_bucket_versioning(Bucket=f"{name}--internal").get("Status") == "Enabled"
    (group,) = aws.client("ec2").describe_security_groups(GroupIds=created["security_groups"])["SecurityGroups"]
    assert group["GroupName"] == name

    # toil_cluster_info finds the same cluster Toil made.
    began = time.monotonic()
    cluster = cluster_info(run_playbook, name)
    timings["toil_cluster_info"] = round(time.monotonic() - began, 2)
    assert cluster["exists"] is True
    assert cluster["leader"]["instance_id"] == launch.leader_id
    assert cluster["leader"]["tags"]["ToilNodeType"] == "leader"
    assert cluster["leader"]["tags"]["sshKeyName"] == toil_key_pair
    assert cluster["workers"] == []
    assert cluster["node_count"] == 1
    assert [g["group_id"] for g in cluster["security_groups"]] == created["security_groups"]
    assert cluster["iam_role"]["name"] == cluster["instance_profile"]["name"] == iam_name(name)

    # Toil's own provisioner agrees on the leader.
    view = view_with_toil(aws, offline, name, timings)
    assert "error" not in view, view
    assert view["leader"] == launch.leader_id
    assert view["nodes"] == [launch.leader_id]

    destroy_with_toil(aws, offline, name, timings)
    aws.assert_no_leaks()


# ---------------------------------------------------------------------- we make (Toil's shape), Toil sees and destroys
class _NoPerResourceCleanups:
    """The aws context for make_toil_cluster without its per-resource cleanups: Toil's destroy is under test
    (they would fail on what it already removed); purge_toil_cluster is the fallback."""

    def __init__(self, aws):
        self._aws = aws

    def client(self, *args, **kwargs):
        return self._aws.client(*args, **kwargs)

    def add_cleanup(self, *args, **kwargs):
        pass


def test_toil_sees_a_toil_shaped_cluster_and_destroys_it(aws, run_playbook, offline, timings):
    name = "ti-shaped"
    _purge_at_cleanup(aws, name)
    shaped = make_toil_cluster(_NoPerResourceCleanups(aws), name, workers=2)
    everyone = sorted([shaped.leader_id, *shaped.worker_ids])

    cluster = cluster_info(run_playbook, name)
    assert cluster["leader"]["instance_id"] == shaped.leader_id
    assert sorted(w["instance_id"] for w in cluster["workers"]) == sorted(shaped.worker_ids)

    view = view_with_toil(aws, offline, name, timings)
    assert "error" not in view, view
    assert view["leader"] == cluster["leader"]["instance_id"] == shaped.leader_id
    assert view["nodes"] == sorted([cluster["leader"]["instance_id"], *(w["instance_id"] for w in cluster["workers"])]) == everyone
    assert view["workers"] == sorted(shaped.worker_ids)

    destroy_with_toil(aws, offline, name, timings)
    aws.assert_no_leaks()
    gone = view_with_toil(aws, offline, name, timings)
    assert gone.get("error_type") == "NoSuchClusterException", gone
    assert gone["nodes"] == []


# ---------------------------------------------------------------------- the toil_cluster module against Toil
def _require_toil_cluster_module():
    if not TOIL_CLUSTER_MODULE.exists():
        pytest.fail(f"toil_cluster module missing: {TOIL_CLUSTER_MODULE.relative_to(REPO)} does not exist yet", pytrace=False)


def cluster_play(**options):
    return {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "cluster", "toil.cluster.toil_cluster": options, "register": "cluster"}]}


class TestToilClusterModuleInterop:
    """The toil_cluster module (issue 3, "Interoperability with Toil"). These fail, never skip, while
    plugins/modules/toil_cluster.py does not exist. Select them with ``-k TestToilClusterModuleInterop``."""

    def test_module_cluster_is_seen_and_destroyed_by_toil(self, aws, run_playbook, offline, toil_key_pair, timings):
        _require_toil_cluster_module()
        name = "ti-module"
        _purge_at_cleanup(aws, name)
        options = {
            "name": name,
            "state": "present",
            "zone": ZONE,
            "cluster_type": "kubernetes",
            "leader_node_type": "t3.medium",
            "key_pair_name": toil_key_pair,
            "image_id": pick_ami(aws.client("ec2")),
            "wait": False,
        }
        began = time.monotonic()
        result = run_playbook(cluster_play(**options)).task("cluster")
        timings["toil_cluster_present"] = round(time.monotonic() - began, 2)
        assert result["changed"] is True
        leader_id = result["leader"]["instance_id"]
        assert leader_id and result["security_group_id"] and result["instance_profile_arn"], result

        view = view_with_toil(aws, offline, name, timings)
        assert "error" not in view, view
        assert view["leader"] == leader_id
        assert view["nodes"] == [leader_id]
        assert view["workers"] == []
        assert view["leader_tags"]["ToilNodeType"] == "leader"

        # A pool launches from its own launch template (one instant fleet): Toil's destroy-cluster removes the
        # template with the cluster's, as it deletes every launch template tagged clusterName.
        pool = {"cluster": name, "zone": ZONE, "node_types": "m5.large", "count": 1, "wait": False}
        grown = run_playbook({**cluster_play(), "tasks": [{"name": "pool", "toil.cluster.toil_nodepool": pool}]}).task("pool")
        assert grown["pool"]["running"] + grown["pool"]["pending"] == 1
        templates = aws.client("ec2").describe_launch_templates()["LaunchTemplates"]
        assert [t["LaunchTemplateName"] for t in templates] == [f"{name}.pool.m5-large"]

        destroy_with_toil(aws, offline, name, timings)
        aws.assert_no_leaks()

    def test_toil_launched_cluster_is_removed_by_module(self, aws, run_playbook, offline, toil_key_pair, timings):
        _require_toil_cluster_module()
        name = "ti-absent"
        _purge_at_cleanup(aws, name)
        launch = launch_with_toil(aws, offline, name, toil_key_pair, timings)
        assert f"{name}--internal" in launch.created["s3_buckets"]

        began = time.monotonic()
        result = run_playbook(cluster_play(name=name, state="absent", zone=ZONE)).task("cluster")
        timings["toil_cluster_absent"] = round(time.monotonic() - began, 2)
        assert result["changed"] is True
        aws.assert_no_leaks()
