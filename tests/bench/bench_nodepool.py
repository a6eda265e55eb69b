"""toil_nodepool vs Toil's own AWSProvisioner: a worker pool grown from 0 to 100 nodes and shrunk back to 0.

Both sides start from a reset endpoint holding a cluster with a leader, launched by ``toil.cluster.toil_cluster``
(Toil sees such clusters as its own: tests/integration/test_toil_interop.py). Only the grow and the shrink go
through the recording proxy (harness.proxy), so the cluster's setup is not counted.

- ours: two ``ansible-playbook`` runs of ``toil.cluster.toil_nodepool`` (``count: 100``, then ``count: 0``),
  wall time of each run as the user sees it (ansible-playbook's own start-up included).
- Toil: Toil 9.6's ``AWSProvisioner`` in ``.venv-toil``, inside an ``OfflineNetns`` whose relay leads to the
  proxy (never to the addresses moto hands out). It is set up the way ``readClusterSettings`` sets it up on
  the leader, with the values that need the leader's instance metadata or its files taken from the endpoint
  instead (see ``TOIL_STUBS``); then ``addNodes({"t3.large"}, 100, preemptible=False)`` is the grow, and
  ``getProvisionedWorkers()`` + ``terminateNodes(...)`` (what Toil's scaler does to remove nodes) the shrink.
  Each phase is timed inside the Toil process; a line on stdin starts it, so the proxy's counts split cleanly.
"""

from __future__ import annotations

import collections
import contextlib
import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness.netns import OfflineNetns
from harness.paths import TOIL_PYTHON
from harness.playbooks import run_ansible_playbook
from harness.proxy import AWSProxy
from harness.toil_interop import pick_ami, toil_env

ZONE = "us-west-2a"
CLUSTER = "bench-pool"
NODE_TYPE = "t3.large"
NODES = 100
PHASE_TIMEOUT = 240  # seconds, per Toil phase
# What the Toil side takes from the endpoint instead of the leader (printed in the notes).
TOIL_STUBS = (
    "instance id (ec2_metadata.instance_id) = the leader Toil's getLeader() finds; "
    "_leaderPrivateIP (ec2_metadata.private_ipv4), _leaderProfileArn (ec2_metadata.iam_info) and "
    "_leaderSecurityGroupNames (ec2_metadata.security_groups) = the leader's, from Toil's own DescribeInstances; "
    "_leaderWorkerAuthentication (/etc/kubernetes/worker.ini on the leader) = a fake JOIN_TOKEN/JOIN_CERT_HASH/JOIN_ENDPOINT; "
    "TOIL_AWS_AMI = a moto AMI (Toil would read the Flatcar release feed over HTTPS)"
)


def _play(module, **options):
    return {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "step", f"toil.cluster.{module}": options, "register": "step"}]}


def _key_pair(endpoint, directory):
    key = Path(directory) / "bench_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(key)], check=True, capture_output=True, stdin=subprocess.DEVNULL)  # noqa: S607
    endpoint.boto3_client("ec2").import_key_pair(KeyName="bench-key", PublicKeyMaterial=key.with_suffix(".pub").read_bytes())
    return "bench-key"


def _launch_cluster(endpoint, workdir):
    """A leader made with toil_cluster, straight on the endpoint (not through the proxy)."""
    key = _key_pair(endpoint, workdir)
    options = {"name": CLUSTER, "zone": ZONE, "leader_node_type": NODE_TYPE, "key_pair_name": key}
    return run_ansible_playbook(_play("toil_cluster", **options), endpoint.env(), workdir / "cluster").task("step")


def _live_workers(endpoint):
    """Live (pending/running) instances of the cluster other than the leader, paginated."""
    ec2 = endpoint.boto3_client("ec2")
    filters = [{"Name": "tag:clusterName", "Values": [CLUSTER]}, {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                if tags.get("ToilNodeType") != "leader":
                    found.append(instance["InstanceId"])
    return found


def _breakdown(calls):
    counts = collections.Counter(action for _service, action in calls)
    return ", ".join(f"{action} {n}" for action, n in counts.most_common())


# ---------------------------------------------------------------------- ours
def _ours(endpoint):
    with tempfile.TemporaryDirectory(prefix="bench-nodepool-") as tmp:
        workdir = Path(tmp)
        _launch_cluster(endpoint, workdir)
        began = time.monotonic()
        run_ansible_playbook({"hosts": "localhost", "gather_facts": False, "tasks": []}, endpoint.env(), workdir / "empty")
        empty_play = time.monotonic() - began
        with AWSProxy(endpoint.url) as proxy:
            env = endpoint.env()
            env.update(AWS_ENDPOINT_URL=proxy.url, AWS_URL=proxy.url)
            phases = {}
            for phase, count in (("grow", NODES), ("shrink", 0)):
                mark = len(proxy.calls)
                began = time.monotonic()
                result = run_ansible_playbook(_play("toil_nodepool", cluster=CLUSTER, zone=ZONE, node_types=NODE_TYPE, count=count), env, workdir / phase)
                seconds = time.monotonic() - began
                pool = result.task("step")["pool"]
                phases[phase] = {"seconds": seconds, "calls": list(proxy.calls[mark:]), "running": pool["running"] + pool["pending"]}
        left = _live_workers(endpoint)
    if phases["grow"]["running"] != NODES:
        raise RuntimeError(f"toil_nodepool grew the pool to {phases['grow']['running']} nodes, not {NODES}")
    if left or phases["shrink"]["running"]:
        raise RuntimeError(f"toil_nodepool left {len(left)} workers after count: 0: {left[:5]}")
    return {"empty_play": empty_play, **phases}


# ---------------------------------------------------------------------- Toil
_MARK = "BENCH_TOIL "
_TOIL_SCRIPT = """
import json, sys, time
name, zone, node_type, count, mark = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
slept = [0.0]
_sleep = time.sleep
def sleep(seconds):  # instrumentation only: how much of a phase is Toil's fixed polling sleeps
    slept[0] += seconds
    _sleep(seconds)
time.sleep = sleep

def say(tag, **data):
    print(mark + json.dumps({"tag": tag, **data}, default=str), flush=True)

def go():
    if sys.stdin.readline().strip() != "go":
        sys.exit(3)

from toil.provisioners.aws.awsProvisioner import AWSProvisioner
began = time.monotonic()
prov = AWSProvisioner(name, "kubernetes", zone, 50, None, None, False)
# readClusterSettings(), as on the leader, with instance metadata and the leader's files replaced:
leader = prov.getLeader()  # stands in for ec2_metadata.instance_id
instance = prov.aws.client(prov._region, "ec2").describe_instances(InstanceIds=[leader.name])["Reservations"][0]["Instances"][0]
prov._leader_subnet = instance["SubnetId"]
prov._worker_subnets_by_zone = prov._get_good_subnets_like(prov._leader_subnet)
prov._keyName = leader.tags["sshKeyName"]
prov._leaderPrivateIP = instance["PrivateIpAddress"]  # ec2_metadata.private_ipv4
prov._tags = {k: v for k, v in prov.getLeader().tags.items() if k != "ToilNodeType"}
prov._leaderProfileArn = instance["IamInstanceProfile"]["Arn"]  # ec2_metadata.iam_info
prov._leaderSecurityGroupNames = {g["GroupName"] for g in instance["SecurityGroups"]}  # ec2_metadata.security_groups
prov._leaderSecurityGroupIDs = set()
prov._leaderWorkerAuthentication = {  # /etc/kubernetes/worker.ini on the leader
    "JOIN_TOKEN": "abcdef.0123456789abcdef",
    "JOIN_CERT_HASH": "sha256:" + "0" * 64,
    "JOIN_ENDPOINT": instance["PrivateIpAddress"] + ":6443",
}
say("ready", seconds=time.monotonic() - began)

go()
began, slept[0] = time.monotonic(), 0.0
launched = prov.addNodes(nodeTypes={node_type}, numNodes=count, preemptible=False)
say("grown", seconds=time.monotonic() - began, slept=slept[0], launched=launched)

go()
began, slept[0] = time.monotonic(), 0.0
workers = prov.getProvisionedWorkers()
prov.terminateNodes(workers)
say("shrunk", seconds=time.monotonic() - began, slept=slept[0], terminated=len(workers))
"""


class _ToilSession:
    """The Toil script in the namespace: ``step()`` waits for its next report; ``go()`` starts the next phase."""

    def __init__(self, netns, env, home, stderr):
        self._stderr = stderr
        cmd = [str(TOIL_PYTHON), "-c", _TOIL_SCRIPT, CLUSTER, ZONE, NODE_TYPE, str(NODES), _MARK]
        self.proc = netns.popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd=home, text=True)
        self._lines = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith(_MARK):
                with self._cv:
                    self._lines.append(json.loads(line[len(_MARK) :]))
                    self._cv.notify_all()
        with self._cv:
            self._lines.append(None)  # end of output
            self._cv.notify_all()

    def step(self, tag):
        deadline = time.monotonic() + PHASE_TIMEOUT
        with self._cv:
            while not self._lines:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"Toil did not report {tag!r} within {PHASE_TIMEOUT} s\n{self.stderr()}")
                self._cv.wait(left)
            report = self._lines.pop(0)
        if report is None or report["tag"] != tag:
            raise RuntimeError(f"Toil stopped before {tag!r} (exit {self.proc.poll()}): {report}\n{self.stderr()}")
        return report

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stderr(self):
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-6000:]

    def close(self):
        with contextlib.suppress(OSError):
            self.proc.stdin.close()


def _toil(endpoint):
    with tempfile.TemporaryDirectory(prefix="bench-toil-") as tmp:
        workdir = Path(tmp)
        _launch_cluster(endpoint, workdir)
        ami = pick_ami(endpoint.boto3_client("ec2"))
        home = workdir / "home"
        home.mkdir()
        with AWSProxy(endpoint.url) as proxy, OfflineNetns(proxy.url) as netns, tempfile.TemporaryFile() as stderr:
            aws_env = endpoint.env()
            aws_env.update(AWS_ENDPOINT_URL=proxy.url, AWS_URL=proxy.url)
            env = toil_env(netns.env(aws_env), ZONE, str(home), {"TOIL_AWS_AMI": ami})
            session = _ToilSession(netns, env, str(home), stderr)
            try:
                ready = session.step("ready")
                phases = {"setup": {"seconds": ready["seconds"], "calls": list(proxy.calls)}}
                for phase, tag in (("grow", "grown"), ("shrink", "shrunk")):
                    mark = len(proxy.calls)
                    session.go()
                    report = session.step(tag)
                    phases[phase] = {**report, "calls": list(proxy.calls[mark:])}
                session.proc.stdin.close()
                session.proc.wait(timeout=30)
            finally:
                session.close()
            relayed = netns.connections
        left = _live_workers(endpoint)
    if not relayed:
        raise RuntimeError("Toil never used the relay to the endpoint")
    if phases["grow"]["launched"] != NODES:
        raise RuntimeError(f"Toil's addNodes launched {phases['grow']['launched']} nodes, not {NODES}")
    return {**phases, "left": left}


# ---------------------------------------------------------------------- the benchmark
def nodepool_grow_shrink(endpoint):
    """Four rows: grow and shrink, wall time and API calls, ours vs Toil's AWSProvisioner."""
    try:
        ours = _ours(endpoint)
        endpoint.reset()
        toil = _toil(endpoint)
    finally:
        endpoint.reset()  # Toil's leftovers, if any, go too
    anchor = "Toil 9.6 AWSProvisioner"
    empty = f"ansible-playbook start-up (an empty play) takes {ours['empty_play']:.2f} s of each of ours"
    grow_toil, shrink_toil = toil["grow"], toil["shrink"]
    missed = NODES - shrink_toil["terminated"]
    shrink_finding = (
        f"Toil's unpaginated DescribeInstances (getProvisionedWorkers) missed {missed} of {NODES} workers, still running after terminateNodes"
        if missed or toil["left"]
        else f"Toil's unpaginated DescribeInstances found all {NODES} workers (1 reservation each side; moto pages at 100 reservations)"
    )
    return [
        {
            "name": f"pool grow 0->{NODES}, wall time",
            "ours": ours["grow"]["seconds"],
            "anchor": grow_toil["seconds"],
            "anchor_name": f"{anchor}.addNodes",
            "unit": "s",
            "note": (
                f"{empty}; Toil's time is addNodes alone, in a provisioner set up beforehand ({toil['setup']['seconds']:.2f} s, "
                f"{len(toil['setup']['calls'])} calls, not counted), of which {grow_toil['slept']:.0f} s are its fixed polling sleeps "
                f"(wait_instances_running sleeps max(5, min(pending, 50)) s before it looks again; moto answers RunInstances with "
                f"'pending' and the next DescribeInstances with 'running'), {grow_toil['seconds'] - grow_toil['slept']:.1f} s without them; "
                "ours polls at once and finds them running. Toil stubs: " + TOIL_STUBS
            ),
        },
        {
            "name": f"pool grow 0->{NODES}, API calls",
            "ours": len(ours["grow"]["calls"]),
            "anchor": len(grow_toil["calls"]),
            "anchor_name": f"{anchor}.addNodes",
            "unit": "calls",
            "note": f"ours: {_breakdown(ours['grow']['calls'])}; Toil: {_breakdown(grow_toil['calls'])}",
        },
        {
            "name": f"pool shrink {NODES}->0, wall time",
            "ours": ours["shrink"]["seconds"],
            "anchor": shrink_toil["seconds"],
            "anchor_name": f"{anchor}.terminateNodes",
            "unit": "s",
            "note": (
                f"{empty}; Toil's time is getProvisionedWorkers + terminateNodes, which does not wait for the nodes to "
                "terminate (ours waits: wait defaults to true)"
            ),
        },
        {
            "name": f"pool shrink {NODES}->0, API calls",
            "ours": len(ours["shrink"]["calls"]),
            "anchor": len(shrink_toil["calls"]),
            "anchor_name": f"{anchor}.terminateNodes",
            "unit": "calls",
            "note": f"ours: {_breakdown(ours['shrink']['calls'])}; Toil: {_breakdown(shrink_toil['calls'])}; {shrink_finding}",
        },
    ]


BENCHMARKS = [nodepool_grow_shrink]
