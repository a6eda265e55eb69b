"""toil_cluster_info against the embedded endpoint: finding clusters the way Toil lays them out."""

from __future__ import annotations

import time

from harness.toil_shapes import iam_name, make_group, make_iam, make_toil_cluster, run_nodes


def info_play(**options):
    return {
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": "info", "toil.cluster.toil_cluster_info": options, "register": "info"}],
    }


def test_describes_a_toil_launched_cluster(aws, run_playbook):
    shaped = make_toil_cluster(aws, "tc-one", workers=2)
    result = run_playbook(info_play(name="tc-one", zone="us-west-2a"), check=True).task("info")
    assert result["changed"] is False
    assert result["region"] == "us-west-2"
    (cluster,) = result["clusters"]
    assert cluster["exists"] is True
    assert cluster["node_count"] == 3
    assert cluster["leader"]["instance_id"] == shaped.leader_id
    assert cluster["leader"]["role"] == "leader"
    assert sorted(w["instance_id"] for w in cluster["workers"]) == sorted(shaped.worker_ids)
    assert [g["group_id"] for g in cluster["security_groups"]] == [shaped.group_id]
    assert cluster["iam_role"]["name"] == cluster["instance_profile"]["name"] == "tc_one_toil"
    assert cluster["derived_names"]["iam_role"] == "tc_one_toil"
    assert all(w["preemptible"] is False for w in cluster["workers"])


def test_reads_every_page_of_nodes(aws, run_playbook):
    # moto pages DescribeInstances at 100 reservations; Toil's single call sees only the first page.
    group_id = make_group(aws, "tc-many")
    run_nodes(aws, 1, group_id=group_id, tags={"ToilNodeType": "leader", "clusterName": "tc-many"})
    run_nodes(aws, 129, group_id=group_id, tags={"ToilNodeType": "worker", "clusterName": "tc-many"})
    cluster = run_playbook(info_play(name="tc-many")).task("info")["clusters"][0]
    assert cluster["node_count"] == 130
    assert len(cluster["workers"]) == 129


def test_members_need_group_and_tag_and_the_leader_its_tag(aws, run_playbook):
    group_id = make_group(aws, "tc-mixed")
    # The oldest member is a worker; the tagged leader is younger: the tag decides, never the age.
    (old_worker,) = run_nodes(aws, 1, group_id=group_id, tags={"clusterName": "tc-mixed", "ToilNodeType": "worker"})
    time.sleep(1.1)
    (leader,) = run_nodes(aws, 1, group_id=group_id, tags={"ToilNodeType": "leader", "clusterName": "tc-mixed"})
    # Tagged for the cluster outside its group, or in the group untagged: not members (test_membership.py).
    (tagged_only,) = run_nodes(aws, 1, tags={"clusterName": "tc-mixed", "ToilNodeType": "worker"})
    (untagged,) = run_nodes(aws, 1, group_id=group_id)
    run_nodes(aws, 1, tags={"clusterName": "tc-other", "ToilNodeType": "worker"})
    result = run_playbook(info_play(name="tc-mixed"))
    cluster = result.task("info")["clusters"][0]
    assert cluster["leader"]["instance_id"] == leader
    assert [w["instance_id"] for w in cluster["workers"]] == [old_worker]
    assert cluster["node_count"] == 2
    warnings = " ".join(result.task("info").get("warnings", []))
    assert tagged_only in warnings and untagged in warnings


def test_no_leader_without_the_leader_tag(aws, run_playbook):
    group_id = make_group(aws, "tc-untagged")
    tags = {"clusterName": "tc-untagged"}
    (first,) = run_nodes(aws, 1, group_id=group_id, tags=tags)
    time.sleep(1.1)  # LaunchTime has one-second resolution, on AWS as on moto
    (second,) = run_nodes(aws, 1, group_id=group_id, tags=tags)
    cluster = run_playbook(info_play(name="tc-untagged")).task("info")["clusters"][0]
    assert cluster["leader"] is None  # the oldest node is never taken for the leader
    assert [w["instance_id"] for w in cluster["workers"]] == [first, second]


def test_iam_ownership_is_exact(aws, run_playbook):
    # Toil's prefix match would give cluster "tc" the role of cluster "tc-two".
    make_iam(aws, "tc-two")
    clusters = run_playbook(info_play(name="tc")).task("info")["clusters"]
    assert clusters[0]["iam_role"] is None
    assert clusters[0]["exists"] is False
    other = run_playbook(info_play(name="tc-two")).task("info")["clusters"][0]
    assert other["iam_role"]["name"] == iam_name("tc-two")


def test_stopped_nodes_only_on_request(aws, run_playbook):
    shaped = make_toil_cluster(aws, "tc-stopped", workers=1)
    aws.client("ec2").stop_instances(InstanceIds=[shaped.leader_id])
    live = run_playbook(info_play(name="tc-stopped")).task("info")["clusters"][0]
    assert live["node_count"] == 1
    assert live["leader"] is None  # the worker is never taken for the leader
    everything = run_playbook(info_play(name="tc-stopped", include_stopped=True)).task("info")["clusters"][0]
    assert everything["node_count"] == 2
    assert everything["leader"]["instance_id"] == shaped.leader_id
    assert everything["leader"]["state"] == "stopped"


def test_spot_workers_are_preemptible(aws, run_playbook):
    group_id = make_group(aws, "tc-spot")
    run_nodes(aws, 1, group_id=group_id, tags={"ToilNodeType": "leader", "clusterName": "tc-spot"})
    (spot,) = run_nodes(aws, 1, group_id=group_id, spot=True, tags={"clusterName": "tc-spot"})
    workers = run_playbook(info_play(name="tc-spot")).task("info")["clusters"][0]["workers"]
    assert [(w["instance_id"], w["preemptible"]) for w in workers] == [(spot, True)]


def test_lists_every_cluster_in_the_region(aws, run_playbook):
    make_toil_cluster(aws, "tc-a", workers=0)
    make_toil_cluster(aws, "tc-b", workers=1)
    make_group(aws, "tc-leaked")  # a group Toil left behind with no node (Toil issue 4140)
    clusters = run_playbook(info_play()).task("info")["clusters"]
    assert [c["name"] for c in clusters] == ["tc-a", "tc-b", "tc-leaked"]
    assert [c["node_count"] for c in clusters] == [1, 2, 0]


def test_module_defaults_group_sets_region(aws, run_playbook):
    aws.leak_regions.append("us-east-1")
    make_toil_cluster(aws, "tc-east", workers=0, region="us-east-1")
    play = info_play(name="tc-east")
    play["module_defaults"] = {"group/toil.cluster.toil": {"region": "us-east-1"}}
    result = run_playbook(play).task("info")  # the environment says us-west-2
    assert result["region"] == "us-east-1"
    assert result["clusters"][0]["node_count"] == 1


def test_bad_input_fails_clearly(aws, run_playbook):
    cases = [
        ({"name": "Tc_bad"}, "must be lowercase and cannot contain '_'"),
        ({"name": "x" * 60}, "too long"),
        ({"name": "tc", "zone": "uswest2"}, "Can't extract a region from availability zone 'uswest2'"),
    ]
    for options, message in cases:
        result = run_playbook(info_play(**options), expect_rc=2).task("info")
        assert result["failed"] is True
        assert message in result["msg"]
        assert "Traceback" not in result.get("module_stderr", "") + result.get("exception", "")


def test_no_region_is_a_clear_error(aws, run_playbook):
    env = {"AWS_REGION": "", "AWS_DEFAULT_REGION": "", "TOIL_AWS_ZONE": ""}
    result = run_playbook(info_play(name="tc"), expect_rc=2, env=env).task("info")
    assert "No region" in result["msg"]


def test_an_aws_refusal_is_a_clear_failure(aws, aws_calls, run_playbook):
    # AWS refuses the listing (a missing permission): a message naming what was asked, no traceback.
    make_group(aws, "tc-denied")
    aws_calls.fail_next("DescribeInstances", times=1, status=403, code="UnauthorizedOperation")
    result = run_playbook(info_play(name="tc-denied"), expect_rc=2, env=aws_calls.env).task("info")
    assert result["failed"] is True
    assert result["msg"].startswith("AWS refused a request for cluster tc-denied")
    assert "UnauthorizedOperation" in result["msg"]
    assert "Traceback" not in result.get("module_stderr", "") + result.get("exception", "")
