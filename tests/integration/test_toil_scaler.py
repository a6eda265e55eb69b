"""toil_scaler end to end on the embedded endpoint, with demand given explicitly (no API server here)."""

from __future__ import annotations

import json

import pytest

from harness.playbooks import assert_bad_inputs_fail
from harness.toil_scaler_runs import CLUSTER, M5_LARGE, POOLS, ZONE, by_pool, run_scaler, scaler_cluster


@pytest.fixture
def cluster(aws, run_playbook, key_pair):
    with scaler_cluster(run_playbook, key_pair) as result:
        yield result


def scaler(run_playbook, tmp_path, demand, check=False, env=None, **options):
    return run_scaler(run_playbook, tmp_path, check=check, env=env, demand=demand, **options)


def test_plan_apply_then_remove_idle_nodes(aws, cluster, run_playbook, tmp_path, aws_calls):
    demand = {
        "pods": [
            {"name": "align", "cpu": "1", "memory": "1Gi", "preemptible": True, "count": 6},
            {"name": "merge", "cpu": "1500m", "memory": "2Gi", "preemptible": False, "count": 2},
            {"name": "giant", "cpu": "64", "memory": "1Ti", "preemptible": False},
        ]
    }
    planned = scaler(run_playbook, tmp_path, demand, apply=False, env=aws_calls.env)
    assert planned["changed"] is False and planned["applied"] is False
    assert aws_calls.mutating_calls() == []
    pools = by_pool(planned)
    # m5.large: 2 vCPUs; 2 align pods per spot node; 1 merge pod per on-demand node, never on spot.
    assert (pools["spot"]["desired"], pools["ondemand"]["desired"]) == (3, 2)
    assert [u["name"] for u in planned["unplaceable"]] == ["giant"]
    assert any("fit no pool" in w for w in planned["warnings"])
    assert planned["queue_size"] == 9

    applied = scaler(run_playbook, tmp_path, demand)
    assert applied["changed"] is True
    pools = by_pool(applied)
    assert (pools["spot"]["current"], pools["spot"]["desired"]) == (0, 3)
    assert len(pools["spot"]["instances"]) == 3 and all(i["preemptible"] for i in pools["spot"]["instances"])
    assert len(pools["ondemand"]["instances"]) == 2 and not any(i["preemptible"] for i in pools["ondemand"]["instances"])
    metrics = (tmp_path / "toil_scaler.prom").read_text()
    assert 'autoscaler_desired_size{node_type="m5.large",pool="spot"} 3' in metrics
    assert "autoscaler_queue_size 9" in metrics
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["estimates"] == {"spot": 3, "ondemand": 2}

    # Later: the pods ran; the spot nodes are idle long enough, one on-demand node still runs a Toil pod.
    spot_ids = [i["instance_id"] for i in pools["spot"]["instances"]]
    ondemand_ids = [i["instance_id"] for i in pools["ondemand"]["instances"]]
    nodes = [{"instance_id": i, "pool": "spot", "allocatable": M5_LARGE, "idle_seconds": 900} for i in spot_ids]
    nodes.append({"instance_id": ondemand_ids[0], "pool": "ondemand", "allocatable": M5_LARGE, "requested": {"cpu": "1"}, "safe_to_evict": False})
    nodes.append({"instance_id": ondemand_ids[1], "pool": "ondemand", "allocatable": M5_LARGE, "idle_seconds": 30})
    later = scaler(run_playbook, tmp_path, {"pods": [], "nodes": nodes})
    pools = by_pool(later)
    assert sorted(pools["spot"]["victims"]) == sorted(spot_ids)
    assert pools["spot"]["desired"] == 0 and pools["spot"]["instances"] == []
    assert pools["ondemand"]["victims"] == []  # one busy, one not idle long enough
    assert len(pools["ondemand"]["instances"]) == 2
    states = {i["InstanceId"]: i["State"]["Name"] for r in aws.client("ec2").describe_instances(InstanceIds=spot_ids)["Reservations"] for i in r["Instances"]}
    assert set(states.values()) == {"terminated"}


def test_check_mode_plans_only(aws, cluster, run_playbook, tmp_path, aws_calls):
    demand = {"pods": [{"name": "align", "cpu": "1", "memory": "1Gi", "count": 4}]}
    result = scaler(run_playbook, tmp_path, demand, check=True, env=aws_calls.env)
    assert result["applied"] is False
    assert by_pool(result)["spot"]["desired"] == 2
    assert aws_calls.mutating_calls() == []
    assert not (tmp_path / "state.json").exists()


def test_bad_settings_fail_before_anything(cluster, run_playbook, aws_calls):
    cases = [
        ({"beta_inertia": 0.95}, "beta_inertia must be between 0 and 0.9"),
        ({"preemptible_compensation": 2.0}, "preemptible_compensation must be between 0 and 1"),
        ({"demand": {"pods": [{"name": "x", "cpu": "lots"}]}}, "is not a Kubernetes quantity"),
        ({"demand": {"pods": [], "surprise": 1}}, "unknown key(s) surprise"),
        ({"pools": [{"name": "a", "node_types": "m5.large", "min_size": 3, "max_size": 1}]}, "min_size 3 is larger than max_size 1"),
        ({"lease_wait": -1}, "lease_wait must be between 0 and 3600 seconds"),
        ({"lease_duration": 5}, "lease_duration must be between 15 and 3600 seconds"),
    ]
    cases = [({"cluster": CLUSTER, "zone": ZONE, "pools": POOLS, "demand": {"pods": []}, **override}, message) for override, message in cases]
    assert_bad_inputs_fail(run_playbook, "toil_scaler", cases, aws_calls)
