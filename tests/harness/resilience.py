"""Shared parts of the resilience suite (test_faults, test_crashes, test_least_privilege, test_secrets);
job stores come from harness.jobstores.

- ``lifecycle_play``: one play that launches a cluster, grows and shrinks a pool, applies the scaler to
  a given demand, cleans a job store and destroys the cluster: every mutating path of the collection.
- ``client_recorder``: a ``sitecustomize`` that logs the retry settings of every botocore client any
  Python process of a run creates (ansible-playbook, each module, ansible-inventory).
- ``fault_runs``: how many seeded fault runs (``TOIL_FAULT_RUNS``, default 6) and the first seed
  (``TOIL_FAULT_SEED``, default 1).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ZONE = "us-west-2a"
REGION = "us-west-2"
LEADER_TYPE = "t3.large"
WORKER_TYPE = "m5.large"
M5_LARGE = {"cpu": "2", "memory": "7Gi", "ephemeral_storage": "40Gi"}


def fault_runs() -> list[int]:
    runs = int(os.environ.get("TOIL_FAULT_RUNS", "6"))
    first = int(os.environ.get("TOIL_FAULT_SEED", "1"))
    return list(range(first, first + runs))


def task(title: str, module: str, **options: Any) -> dict[str, Any]:
    return {"name": title, f"toil.cluster.{module}": options, "register": title.replace(" ", "_")}


def lifecycle_tasks(cluster: str, key_pair: str, store: str, workdir: Path) -> list[dict[str, Any]]:
    """Launch, pool up and down, scaler apply, job store clean, destroy (each task registered under its name)."""
    common = {"cluster": cluster, "zone": ZONE}
    demand = {"pods": [{"name": "align", "cpu": "1", "memory": "1Gi", "preemptible": False, "count": 4}]}
    scaler = {
        **common,
        "pools": [{"name": "scaled", "node_types": WORKER_TYPE, "min_size": 0, "max_size": 3}],
        "demand": demand,
        "beta_inertia": 0.0,
        "state_path": str(workdir / "scaler-state.json"),
        "metrics_path": str(workdir / "toil_scaler.prom"),
    }
    return [
        task("launch", "toil_cluster", name=cluster, zone=ZONE, leader_node_type=LEADER_TYPE, key_pair_name=key_pair),
        task("pool up", "toil_nodepool", **common, name="static", node_types=WORKER_TYPE, count=2),
        task("pool down", "toil_nodepool", **common, name="static", node_types=WORKER_TYPE, count=1),
        task("scaler apply", "toil_scaler", **scaler),
        task("info", "toil_cluster_info", name=cluster, zone=ZONE),
        task("store clean", "toil_jobstore", locator=f"aws:{REGION}:{store}", state="absent"),
        task("destroy", "toil_cluster", name=cluster, zone=ZONE, state="absent"),
    ]


def play(*tasks: dict[str, Any]) -> dict[str, Any]:
    return {"hosts": "localhost", "gather_facts": False, "tasks": list(tasks)}


def instances_ever(ec2: Any, cluster: str) -> list[dict[str, Any]]:
    """Every instance the endpoint knows for ``cluster`` (terminated ones included): duplicates show here."""
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "tag:clusterName", "Values": [cluster]}])
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def live(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in instances if i["State"]["Name"] not in ("terminated", "shutting-down")]


def node_type(instance: dict[str, Any]) -> str:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}.get("ToilNodeType", "")


# A sitecustomize for the runs under test: every botocore client made in any of the run's Python
# processes is logged with its resolved retry settings. Runtime evidence for the static check.
_RECORDER = """
import json, os
import botocore.client

_create = botocore.client.ClientCreator.create_client


def create_client(self, service_name, *args, **kwargs):
    client = _create(self, service_name, *args, **kwargs)
    with open(os.environ["TOIL_TEST_CLIENT_LOG"], "a") as log:
        log.write(json.dumps({"service": service_name, "retries": client.meta.config.retries, "pid": os.getpid()}) + "\\n")
    return client


botocore.client.ClientCreator.create_client = create_client
"""


def client_recorder(directory: Path) -> tuple[dict[str, str], Path]:
    """(extra environment for a run, the log file): the run's botocore clients are logged to the file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(_RECORDER)
    log = directory / "clients.jsonl"
    pythonpath = os.pathsep.join(p for p in (str(directory), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": pythonpath, "TOIL_TEST_CLIENT_LOG": str(log)}, log


def recorded_clients(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# Services whose client gives up soon by design: the Price List (modules.price_list_client), whose answer has a
# bundled fallback (prices.py), so a throttled or unreachable endpoint costs a run seconds and a warning, not a failure.
SOON_GIVING_UP_SERVICES = {"pricing": 2}  # service -> the attempts its client is allowed (no fewer)


def weak_retry_clients(clients: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clients not in botocore's standard mode with at least 10 attempts (retries included), but those of
    SOON_GIVING_UP_SERVICES, which must still be in standard mode with their own number of attempts."""
    return [
        c
        for c in clients
        if c["retries"].get("mode") != "standard" or (c["retries"].get("total_max_attempts") or 0) < SOON_GIVING_UP_SERVICES.get(c["service"], 10)
    ]
