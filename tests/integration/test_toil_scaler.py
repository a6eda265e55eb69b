"""toil_scaler end to end on the embedded endpoint, with demand given explicitly (no API server here)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.toil.cluster.plugins.module_utils import price_table
from harness.endpoint import DEFAULT_REGION
from harness.playbooks import assert_bad_inputs_fail
from harness.toil_scaler_runs import CLUSTER, M5_LARGE, POOLS, ZONE, by_pool, run_scaler, scaler_cluster

M5_LARGE_PRICE = price_table.ON_DEMAND[DEFAULT_REGION]["m5.large"]  # the bundled table's: moto has no Price List


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


def test_budgets_cut_growth_in_check_mode_and_when_applied(aws, cluster, run_playbook, tmp_path, aws_calls):
    # 8 pods of 1.5 CPU: 4 spot and 4 on-demand m5.large nodes unbounded (16 vCPUs, 64 GiB); 10 vCPUs and 48Gi allow 5.
    demand = {
        "pods": [
            {"name": "align", "cpu": "1500m", "memory": "1Gi", "preemptible": True, "count": 4},
            {"name": "merge", "cpu": "1500m", "memory": "1Gi", "preemptible": False, "count": 4},
        ]
    }
    budget = {"max_vcpus": 10, "max_memory": "48Gi"}
    checked = scaler(run_playbook, tmp_path, demand, check=True, env=aws_calls.env, **budget)
    assert aws_calls.mutating_calls() == []
    assert not (tmp_path / "state.json").exists()
    pools = by_pool(checked)
    # The pools in the order given: spot (first) gets its 4 nodes, on-demand 1 of its 4.
    assert (pools["spot"]["desired"], pools["ondemand"]["desired"]) == (4, 1)
    assert "capped by max_vcpus 10 (would be 16) and max_memory 48Gi (would be 64Gi): 1 node(s) instead of 4" in pools["ondemand"]["reason"]
    assert "capped" not in pools["spot"]["reason"]
    gib = 2**30
    expected = {"max_vcpus": 10, "max_memory": 48 * gib, "used_vcpus": 0, "used_memory": 0, "planned_vcpus": 10, "planned_memory": 40 * gib, "capped": True}
    # Priced from the bundled table (moto has no Price List) and moto's canned spot price, 0.00001 USD an hour.
    expected.update(max_hourly_cost=None, used_hourly_cost=0.0, planned_hourly_cost=round(4 * 0.00001 + M5_LARGE_PRICE, 4))
    assert checked["budget"] == expected

    planned = scaler(run_playbook, tmp_path, demand, apply=False, **budget)
    assert by_pool(planned) == pools and planned["budget"] == expected

    applied = scaler(run_playbook, tmp_path, demand, **budget)
    assert applied["changed"] is True and applied["budget"] == expected
    pools = by_pool(applied)
    assert (len(pools["spot"]["instances"]), len(pools["ondemand"]["instances"])) == (4, 1)
    assert "capped by max_vcpus 10" in pools["ondemand"]["reason"]

    # The next run sees the 5 nodes busy and the same queue (pods still pending): nothing more is launched.
    nodes = [
        {"instance_id": i["instance_id"], "pool": name, "allocatable": M5_LARGE, "requested": {"cpu": "1500m"}, "safe_to_evict": False}
        for name in ("spot", "ondemand")
        for i in pools[name]["instances"]
    ]
    aws_calls.clear()
    again = scaler(run_playbook, tmp_path, {**demand, "nodes": nodes}, env=aws_calls.env, **budget)
    assert again["budget"]["used_vcpus"] == 10 and again["budget"]["planned_vcpus"] == 10 and again["budget"]["capped"] is True
    assert aws_calls.count("CreateFleet") == 0
    # Idle now, the nodes all go whatever the budget.
    idle = [{**n, "requested": {}, "safe_to_evict": True, "idle_seconds": 900} for n in nodes]
    emptied = scaler(run_playbook, tmp_path, {"pods": [], "nodes": idle}, **budget)
    assert all(p["desired"] == 0 and p["instances"] == [] for p in emptied["pools"])
    assert emptied["budget"]["planned_vcpus"] == 0 and emptied["budget"]["capped"] is False


def test_max_hourly_cost_cuts_growth_and_the_plan_reports_its_cost(aws, cluster, run_playbook, tmp_path, aws_calls):
    # 6 pods of 1.5 CPU that must avoid spot: 6 on-demand m5.large nodes (0.576 USD/h); 0.3 USD/h allow 3 of them.
    demand = {"pods": [{"name": "merge", "cpu": "1500m", "memory": "1Gi", "preemptible": False, "count": 6}]}
    pools = [{"name": "ondemand", "node_types": "m5.large", "min_size": 0, "max_size": 8}]
    planned = scaler(run_playbook, tmp_path, demand, apply=False, pools=pools, max_hourly_cost=0.3, env=aws_calls.env)
    (pool,) = planned["pools"]
    assert (pool["desired"], pool["new_nodes"], pool["node_hourly_cost"]) == (3, 6, M5_LARGE_PRICE)
    assert "capped by max_hourly_cost 0.3000 USD/h (would be 0.5760 USD/h): 3 node(s) instead of 6" in pool["reason"]
    assert planned["budget"]["capped"] is True and planned["budget"]["planned_hourly_cost"] == round(3 * M5_LARGE_PRICE, 4)
    # The plan's cost, against the bound: 6 pods of 1.5 CPU on nodes of 2 at 0.048 USD a vCPU-hour (0.432) bind on cpu.
    cost = planned["cost"]
    assert cost["new_nodes_hourly_cost"] == round(6 * M5_LARGE_PRICE, 4) and cost["binding_resource"] == "cpu"
    assert cost["lower_bound_hourly_cost"] == round(6 * 1.5 * M5_LARGE_PRICE / 2, 4) and cost["ratio_to_lower_bound"] == 1.333
    # moto has no Price List: the run says so and goes on with the bundled table.
    assert cost["prices_from"].startswith("bundled table (") and any("The AWS Price List could not be read" in w for w in planned["warnings"])
    assert aws_calls.count("GetProducts") >= 1 and aws_calls.mutating_calls() == []

    applied = scaler(run_playbook, tmp_path, demand, pools=pools, max_hourly_cost=0.3)
    (pool,) = applied["pools"]
    assert len(pool["instances"]) == 3 and applied["budget"]["capped"] is True


def test_where_no_price_is_known_the_plan_says_so_and_a_budget_in_usd_is_refused(aws, run_playbook, tmp_path, aws_calls):
    # moto has no Price List and the bundled table no ap-south-1: nothing there is priced and no price is made up.
    assert "ap-south-1" not in price_table.ON_DEMAND
    demand = {"pods": [{"name": "merge", "cpu": "1500m", "memory": "1Gi", "preemptible": False, "count": 2}]}
    pools = [{"name": "ondemand", "node_types": "m5.large", "min_size": 0, "max_size": 4}]
    planned = scaler(run_playbook, tmp_path, demand, apply=False, zone="ap-south-1a", pools=pools, env=aws_calls.env)
    (pool,) = planned["pools"]
    assert (pool["desired"], pool["node_hourly_cost"]) == (2, None)  # sized by the fewest nodes, not by a guessed price
    assert planned["cost"]["prices_from"] == "none" and planned["cost"]["new_nodes_hourly_cost"] is None
    assert any("the bundled table has no prices for ap-south-1" in w for w in planned["warnings"])
    assert any(w.startswith("No on-demand price in ap-south-1 for pool ondemand (m5.large)") for w in planned["warnings"])
    failed = scaler(run_playbook, tmp_path, demand, apply=False, zone="ap-south-1a", pools=pools, max_hourly_cost=1.0, env=aws_calls.env, expect_rc=2)
    assert failed["msg"].startswith("max_hourly_cost: no on-demand price in ap-south-1 for pool ondemand (m5.large)")
    assert aws_calls.mutating_calls() == []


def catalogue_reads(aws_calls):
    """DescribeInstanceTypes calls that list the region's types (not those that describe named types)."""
    return sum(1 for _s, action, params in aws_calls.requests if action == "DescribeInstanceTypes" and not any(k.startswith("InstanceType") for k in params))


def test_a_pool_by_requirements_is_planned_and_grown_from_the_types_found_which_are_kept_for_a_day(aws, cluster, run_playbook, tmp_path, aws_calls):
    requirements = {"vcpus": "4-8", "memory_gib": "16-32", "include": ["m5.*"]}  # m5.xlarge (4 vCPUs, 16 GiB), m5.2xlarge (8, 32)
    pools = [{"name": "general", "node_types": {"requirements": requirements, "spot_bid": 0.5}, "min_size": 0, "max_size": 5}]
    demand = {"pods": [{"name": "align", "cpu": "3", "memory": "4Gi", "count": 3}]}
    planned = scaler(run_playbook, tmp_path, demand, apply=False, pools=pools, env=aws_calls.env)
    assert by_pool(planned)["general"]["desired"] == 3  # the pool's shape is its smallest type's: one 3-CPU pod a node
    assert catalogue_reads(aws_calls) == 1
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["catalogue"]["region"] == "us-west-2" and "m5.xlarge" in state["catalogue"]["types"]
    assert state["instance_types"]["m5.xlarge"] == {"vcpus": 4, "memory_mib": 16384, "storage_gib": 0, "gpus": 0, "arch": "amd64"}
    assert 'autoscaler_desired_size{node_type="m5.xlarge/m5.2xlarge",pool="general"} 3' in (tmp_path / "toil_scaler.prom").read_text()

    aws_calls.clear()
    applied = scaler(run_playbook, tmp_path, demand, pools=pools, env=aws_calls.env)
    assert catalogue_reads(aws_calls) == 0  # kept in the state file
    instances = by_pool(applied)["general"]["instances"]
    assert len(instances) == 3 and {i["instance_type"] for i in instances} == {"m5.xlarge"} and all(i["preemptible"] for i in instances)
    assert aws_calls.count("CreateFleet", **{"LaunchTemplateConfigs.1.Overrides.1.InstanceType": "m5.xlarge"}) == 1

    state = json.loads((tmp_path / "state.json").read_text())
    state["catalogue"]["read_at"] = "2020-01-01T00:00:00+00:00"  # more than a day ago
    (tmp_path / "state.json").write_text(json.dumps(state))
    aws_calls.clear()
    scaler(run_playbook, tmp_path, {"pods": [], "nodes": []}, apply=False, pools=pools, env=aws_calls.env)
    assert catalogue_reads(aws_calls) == 1
    assert json.loads((tmp_path / "state.json").read_text())["catalogue"]["read_at"] > "2026"


def test_gpu_pods_are_planned_on_a_gpu_pool_by_requirements_and_cpu_pods_off_it(aws, cluster, run_playbook, tmp_path, aws_calls):
    pools = [
        {"name": "gpu", "node_types": {"requirements": {"vcpus": "1-", "gpus": "1-4", "include": ["g4dn.*"]}}, "min_size": 0, "max_size": 5},
        {"name": "cpu", "node_types": "m5.4xlarge", "min_size": 0, "max_size": 5},
    ]
    demand = {
        "pods": [
            {"name": "train", "cpu": "2", "memory": "8Gi", "gpu": 1, "count": 2},
            {"name": "align", "cpu": "3", "memory": "4Gi", "count": 2},
            {"name": "big-train", "cpu": "2", "memory": "8Gi", "gpu": 8},
        ]
    }
    planned = scaler(run_playbook, tmp_path, demand, apply=False, pools=pools, env=aws_calls.env)
    assert aws_calls.mutating_calls() == []
    by_name = by_pool(planned)
    # g4dn.xlarge (4 vCPUs, 16 GiB, 1 T4) is the smallest type found: one training pod a node; a CPU pod would fit
    # a g4dn.xlarge of its own too (not the 2 vCPUs a training pod leaves), yet both go to one m5.4xlarge, no GPU.
    assert (by_name["gpu"]["new_nodes"], by_name["cpu"]["new_nodes"]) == (2, 1)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["instance_types"]["g4dn.xlarge"]["gpus"] == 1 and state["catalogue"]["version"] == 2
    (unplaceable,) = planned["unplaceable"]
    assert unplaceable["name"] == "big-train" and "needs 8 GPU(s)" in unplaceable["reason"]
    assert any("big-train" in w and "needs 8 GPU(s)" in w for w in planned["warnings"])


def test_bad_settings_fail_before_anything(cluster, run_playbook, aws_calls):
    cases = [
        ({"beta_inertia": 0.95}, "beta_inertia must be between 0 and 0.9"),
        ({"preemptible_compensation": 2.0}, "preemptible_compensation must be between 0 and 1"),
        ({"demand": {"pods": [{"name": "x", "cpu": "lots"}]}}, "is not a Kubernetes quantity"),
        ({"demand": {"pods": [], "surprise": 1}}, "unknown key(s) surprise"),
        ({"pools": [{"name": "a", "node_types": "m5.large", "min_size": 3, "max_size": 1}]}, "min_size 3 is larger than max_size 1"),
        ({"lease_wait": -1}, "lease_wait must be between 0 and 3600 seconds"),
        ({"lease_duration": 5}, "lease_duration must be between 15 and 3600 seconds"),
        ({"pools": [{"node_types": {"requirements": {"vcpus": 4}}, "min_size": 0, "max_size": 2}]}, "needs a name"),
        ({"pools": [{"name": "r", "node_types": {"requirements": {"vcpus": 64, "include": ["t2*"]}}, "min_size": 0, "max_size": 2}]}, "No on-demand instance"),
        ({"pools": [{"name": "r", "node_types": {"requirements": {"vcpus": 4, "gpus": 0}}, "min_size": 0, "max_size": 2}]}, "allows no GPU"),
        ({"pools": [{"name": "mixed", "node_types": "m5.large/m6g.large", "min_size": 0, "max_size": 2}]}, "Pool mixed mixes architectures"),
        ({"demand": {"pods": [{"name": "x", "gpu": "500m"}]}}, "is not a whole number of GPUs"),
        ({"max_vcpus": -2}, "max_vcpus must be a whole number of vCPUs, 0 or more, got -2"),
        ({"max_memory": "512"}, "max_memory 512 has no unit"),
        ({"max_memory": "lots"}, "max_memory: 'lots' is not a Kubernetes quantity"),
        ({"max_hourly_cost": -1.5}, "max_hourly_cost must be a number of US dollars per hour, 0 or more"),
        ({"max_hourly_cost": "nan"}, "max_hourly_cost: 'nan' is not a number written in ASCII digits 0-9"),
        (
            {"max_hourly_cost": 1.0, "pools": [{"name": "odd", "node_types": "x2iedn.metal", "min_size": 0, "max_size": 1}]},
            "no on-demand price",
        ),
    ]
    cases = [({"cluster": CLUSTER, "zone": ZONE, "pools": POOLS, "demand": {"pods": []}, **override}, message) for override, message in cases]
    assert_bad_inputs_fail(run_playbook, "toil_scaler", cases, aws_calls)
