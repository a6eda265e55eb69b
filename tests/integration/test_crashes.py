"""Crashes: launch_cluster and destroy_cluster killed with SIGKILL at several points, then run again.

The playbooks (playbooks/launch_cluster.yml with provision_only=true, playbooks/destroy_cluster.yml) run
through the recording proxy, which gives RunInstances and CreateFleet EC2's ClientToken idempotency (moto has none). A
run is killed from the proxy at a chosen call: ansible-playbook and every process under it (its workers
call setsid(), so the tree is walked, not the process group) get SIGKILL while that call is in flight, so AWS carries it out and nobody reads
the answer. Where the point is "while RunInstances is in flight", the call is parked with ``hold`` and
the next run starts before it is let go: both runs meet the same ClientToken, as when a controller dies
and is restarted at once. Each kill point is proven to have been reached (the run died with SIGKILL).
Afterwards: one leader and exactly the asked-for workers ever existed, and after destroy nothing is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest

from harness.paths import REPO, venv_executable
from harness.playbooks import ansible_environment, playbook_file, run_ansible_playbook
from harness.proxy import AWSProxy
from harness.resilience import ZONE, instances_ever, live, node_type

CLUSTER = "crash"
LAUNCH = REPO / "playbooks" / "launch_cluster.yml"
DESTROY = REPO / "playbooks" / "destroy_cluster.yml"


@pytest.fixture
def proxy(aws):
    with AWSProxy(aws.url, client_tokens=True) as started:
        started.env = {"AWS_ENDPOINT_URL": started.url, "AWS_URL": started.url}
        yield started


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:  # noqa: PTH123
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _descendants(root):
    """``root`` and every process below it, from /proc's parent links."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/stat") as stat:  # noqa: PTH123
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


class Run:
    """ansible-playbook started in its own session; ``kill`` reaches the modules it started."""

    def __init__(self, aws, proxy, playbook, extra_vars, workdir):
        workdir.mkdir(parents=True, exist_ok=True)
        path = playbook_file(playbook, workdir)
        cmd = [venv_executable("ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(extra_vars), str(path)]
        self.out = (workdir / "stdout").open("w")
        self.proc = subprocess.Popen(  # noqa: S603 - our own command line
            cmd,
            env=ansible_environment(aws.env, workdir, proxy.env),
            cwd=str(path.parent),
            stdout=self.out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.workdir = workdir

    def kill(self):
        """SIGKILL ansible-playbook and every process under it. Ansible's workers call setsid(), so the
        process group alone would miss them and the module they run: the tree is stopped, then killed."""
        tree = _descendants(self.proc.pid)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        self.killed = _descendants(self.proc.pid) | tree  # again: a child born before its parent stopped
        for pid in self.killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def survivors(self):
        """Killed processes still running (not gone, not a zombie) a few seconds later: must be none."""
        deadline = time.monotonic() + 10
        while True:
            alive = [pid for pid in self.killed if _state(pid) not in (None, "Z")]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    def wait(self, timeout=600):
        try:
            return self.proc.wait(timeout)
        finally:
            self.out.close()

    def output(self):
        return (self.workdir / "stdout").read_text()[-6000:]


def kill_at(proxy, run, predicate):
    """Kill ``run`` from the proxy when a call makes ``predicate(action, params, earlier_actions)`` true.

    The call in hand is still forwarded to AWS: the kill lands while it is in flight."""
    seen = []
    fired = threading.Event()

    def on_call(_service, action, params):
        if not fired.is_set() and predicate(action, params, list(seen)):
            fired.set()
            run.kill()
        seen.append(action)

    proxy.on_call = on_call
    return fired


def killed_run(aws, proxy, playbook, extra_vars, workdir, predicate):
    run = Run(aws, proxy, playbook, extra_vars, workdir)
    fired = kill_at(proxy, run, predicate)
    rc = run.wait()
    proxy.on_call = None
    assert fired.is_set() and rc == -signal.SIGKILL, f"the kill point was not reached (rc {rc}):\n{run.output()}"
    assert run.survivors() == []


def nth(action, n):
    """The n-th call of ``action`` (1-based)."""
    return lambda current, _params, earlier: current == action and earlier.count(action) == n - 1


def after(action, n=1):
    """The first call of anything after the n-th call of ``action`` was answered."""
    return lambda current, _params, earlier: earlier.count(action) == n and current != action


def test_launch_and_destroy_killed_at_several_points_converge(aws, proxy, key_pair, tmp_path):
    assert LAUNCH.exists() and DESTROY.exists()
    launch_vars = {
        "cluster_name": CLUSTER,
        "zone": ZONE,
        "leader_node_type": "t3.large",
        "key_pair_name": key_pair,
        "node_types": "m5.large",
        "workers": "2",
        "provision_only": True,
    }
    ec2 = aws.client("ec2")

    # 1. The security group is made, IAM not yet.
    killed_run(aws, proxy, LAUNCH, launch_vars, tmp_path / "launch-1", nth("CreateRole", 1))
    assert [g["GroupName"] for g in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [CLUSTER]}])["SecurityGroups"]] == [CLUSTER]
    assert instances_ever(ec2, CLUSTER) == []

    # 2. The leader's RunInstances is parked at AWS when the controller dies; a new run starts at once and
    #    sends the same ClientToken before AWS answers the first: both must get the same leader.
    proxy.hold("RunInstances", 300)
    killed_run(aws, proxy, LAUNCH, launch_vars, tmp_path / "launch-2", nth("RunInstances", 1))
    tokens_before = proxy.count("RunInstances")
    rerun = Run(aws, proxy, LAUNCH, launch_vars, tmp_path / "launch-3")
    fired = kill_at(proxy, rerun, after("CreateFleet", 1))  # 3. and die once the workers' launch (their fleet) returned
    deadline = time.monotonic() + 300
    while proxy.count("RunInstances") < tokens_before + 1 and rerun.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    leader_requests = [p for _s, a, p in proxy.requests if a == "RunInstances"]
    assert len(leader_requests) == 2 and leader_requests[0]["ClientToken"] == leader_requests[1]["ClientToken"], leader_requests
    proxy.release("RunInstances")
    rc = rerun.wait()
    proxy.on_call = None
    assert fired.is_set() and rc == -signal.SIGKILL, f"the kill point was not reached (rc {rc}):\n{rerun.output()}"
    assert rerun.survivors() == []

    # 4. A run that completes converges the half-made cluster.
    done = run_ansible_playbook(LAUNCH, {**aws.env, **proxy.env}, tmp_path / "launch-4", extra_vars=launch_vars, expect_rc=None)
    assert done.rc == 0, done.describe()
    ever = instances_ever(ec2, CLUSTER)
    assert Counter(node_type(i) for i in ever) == {"leader": 1, "worker": 2}, [(i["InstanceId"], node_type(i), i["State"]["Name"]) for i in ever]
    assert len(live(ever)) == 3
    again = run_ansible_playbook(LAUNCH, {**aws.env, **proxy.env}, tmp_path / "launch-5", extra_vars=launch_vars)
    assert [t for t in again.tasks() if any(h.get("changed") for h in t["hosts"].values())] == []

    # Destroy: 5. killed while the leader's termination is in flight, 6. killed halfway through IAM.
    destroy_vars = {"cluster_name": CLUSTER, "zone": ZONE}
    killed_run(aws, proxy, DESTROY, destroy_vars, tmp_path / "destroy-1", nth("TerminateInstances", 1))
    killed_run(aws, proxy, DESTROY, destroy_vars, tmp_path / "destroy-2", nth("DeleteRolePolicy", 1))
    gone = run_ansible_playbook(DESTROY, {**aws.env, **proxy.env}, tmp_path / "destroy-3", extra_vars=destroy_vars, expect_rc=None)
    assert gone.rc == 0, gone.describe()
    assert live(instances_ever(ec2, CLUSTER)) == []
    aws.assert_no_leaks()
