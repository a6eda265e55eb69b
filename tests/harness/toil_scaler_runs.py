"""``toil_scaler`` runs for the integration tests: the cluster it scales, one scaler task, its result by pool.

Shared by tests/integration/test_toil_scaler.py (demand given explicitly) and test_scaler_kubernetes.py (demand read
from the Kubernetes API stand-in, harness.kube_api), so that both scale the same cluster with the same pools.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.playbooks import PlaybookResult

ZONE = "us-west-2a"
CLUSTER = "tsc"
POOLS = [
    {"name": "spot", "node_types": "m5.large:0.2", "min_size": 0, "max_size": 6},
    {"name": "ondemand", "node_types": "m5.large", "min_size": 0, "max_size": 4},
]
# What a kubelet on an m5.large reports (2 vCPUs, 8 GiB less the system reservations).
M5_LARGE = {"cpu": "2", "memory": "7Gi", "ephemeral_storage": "40Gi"}


def localhost_play(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"hosts": "localhost", "gather_facts": False, "tasks": tasks}


@contextlib.contextmanager
def scaler_cluster(run_playbook: Callable[..., PlaybookResult], key_pair: str, name: str = CLUSTER, zone: str = ZONE) -> Iterator[dict[str, Any]]:
    """A cluster (``toil_cluster``: leader only) for the scaler to scale; destroyed on the way out (the ``aws``
    fixture's leak check then proves nothing is left)."""
    tasks = [{"name": "cluster", "toil.cluster.toil_cluster": {"name": name, "zone": zone, "leader_node_type": "t3.large", "key_pair_name": key_pair}}]
    result = run_playbook(localhost_play(tasks)).task("cluster")
    try:
        yield result
    finally:
        run_playbook(localhost_play([{"name": "gone", "toil.cluster.toil_cluster": {"name": name, "zone": zone, "state": "absent"}}]))


def run_scaler(
    run_playbook: Callable[..., PlaybookResult], tmp_path: Path, check: bool = False, env: dict[str, str] | None = None, **options: Any
) -> dict[str, Any]:
    """One ``toil_scaler`` task on the test cluster; ``options`` override the defaults (give ``demand``, or
    ``kubeconfig`` to read the demand from the Kubernetes API). Returns the task's result."""
    options = {
        "cluster": CLUSTER,
        "zone": ZONE,
        "pools": POOLS,
        "beta_inertia": 0.0,
        "state_path": str(tmp_path / "state.json"),
        "metrics_path": str(tmp_path / "toil_scaler.prom"),
        **options,
    }
    return run_playbook(localhost_play([{"name": "scale", "toil.cluster.toil_scaler": options}]), check=check, env=env).task("scale")


def by_pool(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in result["pools"]}
