"""``toil_scaler`` runs for the integration tests: the cluster it scales, one scaler task, its result by pool.

Shared by tests/integration/test_toil_scaler.py (demand given explicitly) and test_scaler_kubernetes.py (demand read
from the Kubernetes API stand-in, harness.kube_api), so that both scale the same cluster with the same pools.
"""

from __future__ import annotations

import contextlib
import threading
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
    run_playbook: Callable[..., PlaybookResult],
    tmp_path: Path,
    check: bool = False,
    env: dict[str, str] | None = None,
    expect_rc: int | None = 0,
    **options: Any,
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
    play = localhost_play([{"name": "scale", "toil.cluster.toil_scaler": options}])
    return run_playbook(play, check=check, env=env, expect_rc=expect_rc).task("scale")


def scalers_at_once(run_playbook: Callable[..., PlaybookResult], tmp_path: Path, aws_calls: Any, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two ``toil_scaler`` runs started at the same moment, as the leader's timer and an AWX schedule (each on its own
    machine: its own state file), with ``lease_wait: 0``. The recording proxy (``aws_calls``) holds CreateFleet for
    8 s, so that the run that acts still holds its Lease when the other looks. Returns (the result of the run that
    acted, that of the run that stopped); fails unless exactly one acted."""
    aws_calls.hold("CreateFleet", 8)
    results: dict[str, dict[str, Any]] = {}

    def scaler(name: str) -> None:
        results[name] = run_scaler(run_playbook, tmp_path / name, env=aws_calls.env, expect_rc=None, **{**options, "lease_wait": 0})

    threads = [threading.Thread(target=scaler, args=(name,)) for name in ("timer", "schedule")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        aws_calls.release("CreateFleet")
    acted = [r for r in results.values() if not r.get("failed")]
    stopped = [r for r in results.values() if r.get("failed")]
    assert len(acted) == 1 and len(stopped) == 1, results
    return acted[0], stopped[0]


def by_pool(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in result["pools"]}
