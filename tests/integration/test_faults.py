"""Faults: AWS throttles and fails 20% of all calls, and every part of the collection still converges.

The recording proxy (harness.proxy, ``chaos``) answers a seeded random fifth of the calls itself,
the way AWS does under load: EC2 503 RequestLimitExceeded, S3 503 SlowDown, IAM/STS/SimpleDB 400
Throttling, and a fifth of those 500 InternalFailure. One run launches a cluster, grows and shrinks a
pool, applies the scaler to a given demand, describes, cleans a job store and destroys the cluster;
afterwards nothing is left and no node was launched twice. ``TOIL_FAULT_RUNS`` (default 6) seeded runs
from ``TOIL_FAULT_SEED`` (default 1); a failure names its seed, and the same seed replays the same faults
per action.

Every botocore client the runs create (modules and the inventory plugin) is logged by a sitecustomize and
must be in botocore's standard retry mode with at least 10 attempts; a static check finds every place in
plugins/ that makes a client.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from harness.jobstores import make_job_store
from harness.paths import REPO
from harness.playbooks import run_ansible_playbook
from harness.proxy import AWSProxy
from harness.resilience import client_recorder, fault_runs, instances_ever, lifecycle_tasks, live, node_type, play, recorded_clients, weak_retry_clients

FAULT_RATE = float(os.environ.get("TOIL_FAULT_RATE", "0.2"))
# Share of the faults on mutating calls answered only after AWS carried the call out (lost answers).
FAULT_LOST = float(os.environ.get("TOIL_FAULT_LOST", "0.25"))
# moto answers a repeated RemoveRoleFromInstanceProfile with an HTML 500 page where AWS says NoSuchEntity
# (which the module takes as done): its answers are never lost here.
MOTO_LOST_ANSWER_GAPS = ("RemoveRoleFromInstanceProfile",)


# Runs at once (default: all): most of a run's time is botocore's back-off, which overlaps well.
WORKERS = int(os.environ.get("TOIL_FAULT_WORKERS", "0")) or len(fault_runs())


def one_run(aws, key_pair, seed, workdir):
    """One seeded lifecycle through its own chaos proxy; returns a list of problems (empty: it converged)."""
    cluster, store = f"flt-{seed}", f"flt-store-{seed}"
    make_job_store(aws, store)
    record_env, log = client_recorder(workdir / "recorder")
    inventory = workdir / "nodes.toil_ec2.yml"
    inventory.write_text(json.dumps({"plugin": "toil.cluster.toil_ec2", "regions": ["us-west-2"], "clusters": [cluster]}))
    tasks = lifecycle_tasks(cluster, key_pair, store, workdir)
    # After the scaler, the inventory plugin (through the same faults) sees the leader and three workers.
    tasks[4:4] = [
        {"name": "refresh", "ansible.builtin.meta": "refresh_inventory"},
        {"name": "inventory", "ansible.builtin.debug": {"msg": "{{ groups['toil_nodes'] | default([]) | length }}"}},
    ]
    with AWSProxy(aws.url, client_tokens=True) as proxy:
        proxy.chaos(FAULT_RATE, seed, lost=FAULT_LOST, keep_answers=MOTO_LOST_ANSWER_GAPS)
        env = {"AWS_ENDPOINT_URL": proxy.url, "AWS_URL": proxy.url, **record_env}
        result = run_ansible_playbook(play(*tasks), aws.env, workdir / "run", env=env, args=["-i", str(inventory)], expect_rc=None)
        injected, calls = list(proxy.injected), len(proxy.calls)
    codes = dict(Counter(code for _s, _a, _st, code, _after in injected))
    lost = [action for _s, action, _st, _c, after in injected if after]
    context = f"seed {seed}: {len(injected)} faults in {calls} calls ({codes}; answers lost after the call was made: {lost})"
    if result.rc != 0:
        return [f"{context}\n{result.describe()}"]
    problems = []

    def check(condition, what):
        if not condition:
            problems.append(f"{context}: {what}")

    check(FAULT_RATE == 0 or injected, "no fault was injected")
    check(result.task("launch")["changed"] is True, "launch did not change")
    check(result.task("pool up")["pool"]["running"] == 2, f"pool up: {result.task('pool up')['pool']}")
    check(result.task("pool down")["pool"]["running"] == 1, f"pool down: {result.task('pool down')['pool']}")
    scaled = {p["name"]: p for p in result.task("scaler apply")["pools"]}["scaled"]
    check(scaled["desired"] == 2 and len(scaled["instances"]) == 2, f"scaler: {scaled}")
    check(result.task("inventory")["msg"] == 4, f"inventory saw {result.task('inventory')['msg']} nodes, not 4")
    check(result.task("store clean")["changed"] is True, "the job store was not cleaned")
    check(result.task("destroy")["changed"] is True, "destroy did not change")
    # No node was launched twice: one leader, 2 static and 2 scaled workers ever existed, and none lives.
    ever = instances_ever(aws.client("ec2"), cluster)
    kinds = Counter(node_type(i) for i in ever)
    check(kinds == {"leader": 1, "worker": 4}, f"instances ever launched: {dict(kinds)}")
    check(live(ever) == [], f"instances still alive: {[i['InstanceId'] for i in live(ever)]}")
    clients = recorded_clients(log)
    check({"ec2", "iam", "s3"} <= {c["service"] for c in clients}, f"clients seen: {clients}")
    check(weak_retry_clients(clients) == [], f"clients without standard retries and 10 attempts: {weak_retry_clients(clients)}")
    return problems


def test_lifecycle_converges_under_throttling_and_5xx(aws, key_pair, tmp_path):
    """TOIL_FAULT_RUNS seeded runs, TOIL_FAULT_WORKERS at a time, each on its own cluster and job store."""
    seeds = fault_runs()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(lambda seed: one_run(aws, key_pair, seed, tmp_path / f"seed-{seed}"), seeds))
    problems = [problem for outcome in outcomes for problem in outcome]
    assert problems == [], f"{len(problems)} problem(s) over seeds {seeds}:\n" + "\n".join(problems)
    assert aws.client("s3").list_buckets()["Buckets"] == []
    # The aws fixture's teardown proves that nothing at all is left (instances, groups, IAM, buckets, ...).


# ---------------------------------------------------------------------- every client, statically
PLUGINS = REPO / "plugins"
# The only places allowed to make botocore clients, and what makes them safe.
CLIENT_FACTORIES = {
    "plugins/module_utils/modules.py": "ToilAWSModule.client: Config(retries=RETRIES) under the user's aws_config",
    "plugins/inventory/toil_ec2.py": "_client_settings: Config(retries={'mode': 'standard', 'max_attempts': 10})",
}


def _client_calls(path):
    """(line, text) of every call that can make a botocore client or session in ``path``."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("client", "resource", "create_client", "boto3_conn", "_boto3_conn", "boto3_inventory_conn", "AnsibleAWSModule"):
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_every_client_is_made_in_one_of_two_places_with_standard_retries():
    """Static: modules only get clients through ToilAWSModule.client (directly or via retrying_client); the
    inventory plugin only through its settings. The runtime log above proves the resolved settings."""
    offenders = []
    for path in sorted(PLUGINS.rglob("*.py")):
        relative = str(path.relative_to(REPO))
        for line, text in _client_calls(path):
            if relative in CLIENT_FACTORIES:
                continue
            # module.client(...) / module.retrying_client(...) go through ToilAWSModule.client.
            if text.startswith(("module.client(", "module.retrying_client(", "self.client(")):
                continue
            offenders.append(f"{relative}:{line}: {text}")
    assert offenders == []
    modules_py = (PLUGINS / "module_utils" / "modules.py").read_text()
    assert 'RETRIES = {"mode": "standard", "max_attempts": 10}' in modules_py
    for module in sorted((PLUGINS / "modules").glob("*.py")):
        source = module.read_text()
        if "AWS" in source:
            assert "ToilAWSModule(" in source and "AnsibleAWSModule(" not in source, module.name
    inventory = (PLUGINS / "inventory" / "toil_ec2.py").read_text()
    assert 'retries={"mode": "standard", "max_attempts": 10}' in inventory
    assert inventory.count("session.client(") == inventory.count("**settings)")


def test_recorder_sees_a_weak_client(tmp_path):
    """The runtime check can fail: a client left at botocore's defaults (3 attempts) is reported."""
    env, log = client_recorder(tmp_path)
    code = "import boto3; boto3.session.Session(region_name='us-west-2').client('ec2', endpoint_url='http://127.0.0.1:9')"
    subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **env}, check=True)
    clients = recorded_clients(log)
    assert [c["service"] for c in clients] == ["ec2"]
    assert weak_retry_clients(clients) == clients


def test_chaos_is_seeded(aws):
    """The same seed fails the same calls; another seed others; about a fifth of them."""
    decisions = {}
    for seed in (1, 1, 2):
        with AWSProxy(aws.url) as proxy:
            proxy.chaos(FAULT_RATE, seed, lost=FAULT_LOST, keep_answers=MOTO_LOST_ANSWER_GAPS)
            decisions.setdefault(seed, []).append([proxy._chaos_fault("ec2", "DescribeInstances") is not None for _unused in range(500)])
    assert decisions[1][0] == decisions[1][1]
    assert decisions[1][0] != decisions[2][0]
    assert 60 < sum(decisions[1][0]) < 140
