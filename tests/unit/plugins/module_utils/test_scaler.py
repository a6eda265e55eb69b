"""The scaler run's plumbing that needs no AWS: demand, settings, state and metrics."""

from __future__ import annotations

import json

import pytest

from ansible_collections.toil.cluster.plugins.module_utils.binpacking import GIB, PoolDecision, PoolShape, Resources
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.scaler import load_state, metrics_text, normalize_demand, save_state, validate_settings
from harness.ssh_key_lines import ED25519


def test_demand_in_the_issues_format():
    pods, nodes = normalize_demand(
        {
            "pods": [
                {"name": "align", "cpu": "2", "memory": "4Gi", "ephemeral_storage": "10Gi", "preemptible": True, "count": 100},
                {"name": "merge", "cpu": "500m", "memory": "512Mi", "preemptible": False},
            ],
            "nodes": [
                {
                    "instance_id": "i-0abc",
                    "pool": "spot",
                    "allocatable": {"cpu": "2", "memory": "7.5Gi"},
                    "requested": {"cpu": "1", "memory": "1Gi"},
                    "idle_seconds": 0,
                    "safe_to_evict": True,
                }
            ],
        }
    )
    assert (pods[0].request, pods[0].count, pods[0].may_use_spot) == (Resources(2000, 4 * GIB, 10 * GIB), 100, True)
    assert (pods[1].request.cpu, pods[1].may_use_spot, pods[1].count) == (500, False, 1)
    assert nodes[0].free == Resources(1000, int(6.5 * GIB), 0)


def test_a_cordoned_node_offers_nothing():
    _pods, nodes = normalize_demand({"nodes": [{"instance_id": "i-1", "allocatable": {"cpu": "4"}, "unschedulable": True}]})
    assert nodes[0].free == Resources()


@pytest.mark.parametrize(
    ("demand", "message"),
    [
        ([], "demand must be a mapping"),
        ({"pods": [{"name": "x", "fpga": 1}]}, "expected a mapping with"),
        ({"pods": [{"name": "x", "count": 0}]}, "count must be a positive integer"),
        ({"pods": [{"name": "x", "memory": "4Gb"}]}, "is not a Kubernetes quantity"),
        ({"nodes": [{"pool": "p"}]}, "expected a mapping with instance_id"),
        (
            {"nodes": [{"instance_id": "i-1", "allocatable": {"nvidia.com/gpu": 1}}]},
            "unknown resource(s) nvidia.com/gpu (expected cpu, memory, ephemeral_storage, gpu)",
        ),
        ({"pods": [{"name": "x", "gpu": "500m"}]}, "(x) gpu: '500m' is not a whole number of GPUs"),
        ({"pods": [{"name": "x", "gpu": 0.5}]}, "is not a whole number of GPUs"),
        ({"pods": [{"name": "x", "gpu": "-1"}]}, "gpu: '-1' is negative"),
        ({"pods": [{"name": "x", "gpu": "lots"}]}, "gpu: 'lots' is not a Kubernetes quantity"),
        ({"nodes": [{"instance_id": "i-1", "allocatable": {"gpu": True}}]}, "gpu: True is not a Kubernetes quantity"),
        (
            {"pods": [{"name": "x", "arch": "x86_64"}]},
            "arch must be one of amd64, arm64 or a list of them, as the kubernetes.io/arch label says, not 'x86_64' (Kubernetes' name for x86_64 is amd64)",
        ),
        ({"nodes": [{"instance_id": "i-1", "arch": ["arm64"]}]}, "(i-1): arch must be one of amd64, arm64, as the kubernetes.io/arch label says, not "),
    ],
)
def test_bad_demand(demand, message):
    with pytest.raises(ToilInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        normalize_demand(demand)


def test_settings_need_ranged_distinct_pools():
    base = {"cluster": "c1", "beta_inertia": 0.1, "preemptible_compensation": 0.0, "scale_down_idle_seconds": 600}
    with pytest.raises(ToilInputError, match="needs min_size and max_size"):
        validate_settings({**base, "pools": [{"node_types": "m5.large", "min_size": 0}]})
    with pytest.raises(ToilInputError, match="names must be distinct"):
        validate_settings({**base, "pools": [{"node_types": "m5.large", "min_size": 0, "max_size": 1}] * 2})
    specs, beta, _compensation, _idle = validate_settings({**base, "pools": [{"node_types": "m5.large:0.1", "min_size": 0, "max_size": 3}]})
    assert (specs[0].name, beta) == ("m5-large-spot", 0.1)


def test_the_scalers_new_nodes_get_the_authorized_keys():
    key = ED25519  # a real key: keys are parsed as OpenSSH public keys (ssh_keys.py)
    base = {"cluster": "c1", "pools": [{"node_types": "m5.large", "min_size": 0, "max_size": 3}]}
    (spec,), *_settings = validate_settings({**base, "authorized_keys": [key]})
    assert spec.authorized_keys == (key,)
    with pytest.raises(ToilInputError, match="not an OpenSSH public key"):
        validate_settings({**base, "authorized_keys": ["not a key"]})


def test_state_round_trip_and_a_foreign_file(tmp_path):
    path = tmp_path / "sub" / "state.json"
    assert load_state(str(path)) == {"version": 1}
    save_state(str(path), {"version": 1, "estimates": {"p": 3}})
    assert load_state(str(path))["estimates"] == {"p": 3}
    path.write_text(json.dumps({"version": 99, "estimates": {"p": 7}}))
    assert load_state(str(path)) == {"version": 1}  # another version's state is not trusted
    path.write_text("not json")
    with pytest.raises(ToilInputError, match="is not a scaler state file"):
        load_state(str(path))


def test_metrics_use_the_names_toils_dashboard_plots():
    shape = PoolShape("spot", Resources(2000, GIB, GIB), True, 0, 5, ("m5.large", "m5a.large"))
    text = metrics_text({"spot": PoolDecision("spot", 1, 3, "", 4, 2, 3)}, [shape], 7)
    assert 'autoscaler_cur_size{node_type="m5.large/m5a.large",pool="spot"} 1' in text
    assert 'autoscaler_desired_size{node_type="m5.large/m5a.large",pool="spot"} 3' in text
    assert "autoscaler_queue_size 7" in text.splitlines()


def test_the_scalers_pools_take_zones_and_subnets():
    base = {"cluster": "c1", "pools": [{"node_types": "m5.large", "min_size": 0, "max_size": 3, "zones": ["us-west-2b"], "subnets": ["subnet-1"]}]}
    (spec,), *_settings = validate_settings(base)
    assert (spec.zones, spec.subnets) == (("us-west-2b",), ("subnet-1",))
    with pytest.raises(ToilInputError, match="zones: Can't extract a region from availability zone 'west'"):
        validate_settings({"cluster": "c1", "pools": [{"node_types": "m5.large", "min_size": 0, "max_size": 3, "zones": ["west"]}]})
