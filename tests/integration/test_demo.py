"""`make demo`'s script (tools/demo.sh) runs to the end and does what it says, without reaching any address moto hands out.

The script runs as `make demo` runs it (its own PATH, ansible.cfg and collections; readable output), but inside a
loopback-only network namespace (harness.netns.OfflineNetns) whose only way out is a relay to the recording proxy in
front of the endpoint: a connection to a node's 54.x address would fail, and so would the demo. The outcomes are read
from its output (each debug result is YAML there) and from the AWS calls the proxy saw; the `aws` fixture then
proves that nothing is left. Timing is not asserted (`make demo` prints it; performance belongs to `make bench`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from harness.ansible_output import graph_groups, results
from harness.netns import OfflineNetns, OfflineNetnsError
from harness.paths import ANSIBLE_COLLECTIONS_PATH, ANSIBLE_CONFIG, REPO, VENV_BIN

DEMO = REPO / "tools" / "demo.sh"
DEMO_TIMEOUT = 900
SECTIONS = (
    "What the user has: an EC2 key pair",
    "Launch the cluster",
    "The cluster as Ansible sees it",
    "One scaler cycle on a sample demand: the plan",
    "The same cycle, applied",
    "The new pool sizes",
    "toil clean of the job store",
    "Destroy the cluster",
    "Remove the key pair, and prove that nothing is left",
)
_HEADING = re.compile(r"^== (\d+)\. (.*?)  \(\d+s\)$", re.MULTILINE)


def sections(output: str) -> dict[int, tuple[str, str]]:
    """{number: (heading, text)} of the demo's numbered sections."""
    found = list(_HEADING.finditer(output))
    return {int(m[1]): (m[2], output[m.end() : (found[i + 1].start() if i + 1 < len(found) else len(output))]) for i, m in enumerate(found)}


def demo_env(aws_env: dict[str, str], home: Path) -> dict[str, str]:
    """The endpoint's environment as `make demo` gives it: the Makefile's PATH and Ansible settings, nothing inherited."""
    env = {k: v for k, v in aws_env.items() if not k.startswith(("ANSIBLE_", "TOIL_"))}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', os.defpath)}",
        ANSIBLE_CONFIG=str(ANSIBLE_CONFIG),
        ANSIBLE_COLLECTIONS_PATH=str(ANSIBLE_COLLECTIONS_PATH),
        ANSIBLE_HOME=str(home / "ansible"),
        ANSIBLE_LOCAL_TEMP=str(home / "ansible" / "tmp"),
        HOME=str(home),
        TMPDIR=str(home),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def test_demo_launches_scales_cleans_destroys_and_leaves_nothing(aws, aws_calls, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    try:
        netns = OfflineNetns(aws_calls.url).start()
    except OfflineNetnsError as exc:
        pytest.fail(f"the demo test needs a loopback-only network namespace: {exc}", pytrace=False)
    try:
        env = netns.env(demo_env({**aws.env, **aws_calls.env}, home))
        assert env["AWS_ENDPOINT_URL"] == env["AWS_URL"] == netns.url
        assert netns.probe("54.214.0.1")["route"] is False  # the namespace has no way to the addresses moto hands out
        proc = netns.run(["bash", str(DEMO)], timeout=DEMO_TIMEOUT, cwd=REPO, env=env)
        relayed = netns.connections
    finally:
        netns.close()
    output = proc.stdout
    assert proc.returncode == 0, f"demo failed (rc {proc.returncode}):\n{output[-8000:]}\n{proc.stderr[-4000:]}"
    assert relayed > 0 and aws_calls.calls, "the demo made no AWS call through the namespace's relay"

    parts = sections(output)
    assert list(parts) == list(range(1, len(SECTIONS) + 1)), [heading for heading, _text in parts.values()]
    for number, title in enumerate(SECTIONS, 1):
        assert parts[number][0].startswith(title), (number, parts[number][0])

    # Launch: leader, the static pool's one node, the ranged spot pool empty; nothing configured.
    launched = results(parts[2][1])["Show the cluster"]["msg"]
    assert launched["pools"] == {"t3-large": 1, "c5-2xlarge-spot": 0}
    assert launched["configure"] is False and launched["leader"].startswith("i-")
    # provision_only: configure_cluster's plays are not imported at all (a quiet run: no empty plays, no warnings)
    for play in ("Wait for the nodes to answer ssh", "Configure the leader", "Configure the workers"):
        assert f"PLAY [{play}" not in parts[2][1], play
    assert "Could not match supplied host pattern" not in parts[2][1]

    # The toil_ec2 inventory: the leader, the static pool's worker, their groups.
    groups = graph_groups(parts[3][1])
    assert groups["toil_leaders"] == [launched["leader"]]
    assert len(groups["toil_pool_demo_t3_large"]) == 1 and groups["toil_workers"] == groups["toil_pool_demo_t3_large"]
    assert sorted(groups["toil_cluster_demo"]) == sorted(groups["toil_leaders"] + groups["toil_workers"])

    # The plan: 7 spot-tolerant jobs of 3 CPUs -> 4 c5.2xlarge; the on-demand job fits the static node; nothing launched yet.
    plan = results(parts[4][1])["Show the plan"]["msg"]
    assert plan["plan_only"] is True and plan["queue_size"] == 8 and plan["unplaceable"] == []
    pools = {p["name"]: p for p in plan["pools"]}
    assert (pools["c5-2xlarge-spot"]["current"], pools["c5-2xlarge-spot"]["desired"], pools["c5-2xlarge-spot"]["placed"]) == (0, 4, 7)
    assert (pools["t3-large"]["current"], pools["t3-large"]["desired"], pools["t3-large"]["new_nodes"]) == (1, 1, 0)
    assert "Run the cycle" not in parts[4][1]

    # Applied: the spot pool grew to the plan.
    applied = results(parts[5][1])
    assert applied["Show the plan"]["msg"]["pools"] == plan["pools"]
    assert applied["Show the new pool sizes"]["msg"]["pools"] == {"t3-large": 1, "c5-2xlarge-spot": 4}
    assert applied["Show the new pool sizes"]["msg"]["deficit"] == {"t3-large": 0, "c5-2xlarge-spot": 0}
    assert 'autoscaler_desired_size{node_type="c5.2xlarge/c5a.2xlarge",pool="c5-2xlarge-spot"} 4' in parts[5][1]

    # Status: the new pool sizes as AWS has them.
    status = results(parts[6][1])["Show the cluster's status"]["msg"]["status"]
    assert status["leader"]["instance_id"] == launched["leader"] and status["node_count"] == 6
    assert {name: (p["nodes"], p["spot"]) for name, p in status["pools"].items()} == {"t3-large": (1, 0), "c5-2xlarge-spot": (4, 4)}

    # The job store: read as a failed Toil workflow's, removed as check mode said, a second clean changes nothing.
    assert "made job store aws:us-west-2:demo-store" in parts[1][1]
    store = results(parts[7][1])
    planned = store["Show the job store and what would go"]["msg"]
    assert planned["layout"] == "s3" and planned["workflow"]["status"] == "failed" and planned["workflow"]["jobs"] == 3
    removed = store["Show what was removed"]["msg"]
    assert removed["removed"]["buckets"] == ["demo-store--toil"] and removed["removed"]["objects"] == 9
    assert planned["would_remove"] == removed["removed"] and removed["second_run_changed"] is False
    assert ("s3", "DELETE /demo-store--toil") in aws_calls.calls

    # Destroy: the six instances, the security group, the IAM role and profile; then nothing at all is left.
    destroyed = results(parts[8][1])["Show what was removed"]["msg"]
    assert destroyed["changed"] is True and len(destroyed["removed"]["instances"]) == 6
    assert destroyed["removed"]["leader"] == launched["leader"] and destroyed["removed"]["iam_role"] == "demo_toil"
    assert "nothing is left in us-west-2" in parts[9][1]
    assert aws.leftovers(include_fixtures=True) == {}
