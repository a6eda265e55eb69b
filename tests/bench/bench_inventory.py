"""toil.cluster.toil_ec2 vs amazon.aws.aws_ec2: the same Toil nodes, the same groups, side by side.

The endpoint holds 50 Toil clusters (security group named after the cluster with Toil's description, a
leader tagged Name/Owner/clusterName/ToilNodeType=leader/sshKeyName, workers tagged ToilNodeType=worker,
toil.cluster/pool and toil.cluster/preemptible, launched 25 to a reservation; every fifth cluster's
workers are spot), first 1,000 instances in all, then grown to 5,000. At each size both inventories run
as ``ansible-inventory --list --output FILE``, one after the other, with nothing else of ours running:

- ours: ``plugin: toil.cluster.toil_ec2`` and ``regions: [us-west-2]``, nothing else: its groups
  (toil_cluster_*, toil_leaders, toil_workers, toil_preemptible, toil_pool_*, toil_type_*) are built in.
- anchor: ``amazon.aws.aws_ec2`` configured by a user for the same hosts and groups: the same
  server-side filters (Toil's tag and the live states), hosts named by instance ID, the groups through
  keyed_groups/groups, and ansible_host/toil_cluster/toil_node_type through compose.

Before the figures count, the two inventories must hold the same hosts in the same groups (checked).
Measured per run, for the ansible-inventory process alone (os.wait4): wall time, CPU time (user + system)
and peak RSS. Ratios are ours / anchor (the issue's goal at 5,000: wall <= 0.5, CPU <= 0.2, memory <= 0.5).

moto answers one page of thousands of instances in minutes (its tag lookups are quadratic), longer than
botocore's fixed 60 s read timeout, which aws_ec2 cannot change; both processes therefore run with
botocore's default read timeout raised to 900 s (a sitecustomize on PYTHONPATH; nothing else changes).
``TOIL_BENCH_INVENTORY_SIZES=1000`` runs the 1,000-instance size only.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from harness.paths import venv_executable
from harness.playbooks import ansible_environment, unwrap_unsafe

CLUSTERS = 50
PER_RESERVATION = 25
SPOT_EVERY = 5  # every fifth cluster's workers are spot
SIZES = tuple(int(size) for size in os.environ.get("TOIL_BENCH_INVENTORY_SIZES", "1000,5000").split(","))
READ_TIMEOUT = 900
TOIL_DESCRIPTION = "Toil appliance security group"

OURS = {"plugin": "toil.cluster.toil_ec2", "regions": ["us-west-2"]}
ANCHOR = {
    "plugin": "amazon.aws.aws_ec2",
    "regions": ["us-west-2"],
    "filters": {"tag-key": "ToilNodeType", "instance-state-name": ["pending", "running"]},
    "hostnames": ["instance-id"],
    "keyed_groups": [
        {"key": "tags.clusterName", "prefix": "toil_cluster"},
        {"key": "tags.clusterName ~ '_' ~ tags['toil.cluster/pool']", "prefix": "toil_pool"},
        {"key": "instance_type", "prefix": "toil_type"},
    ],
    "groups": {
        "toil_leaders": "tags.ToilNodeType == 'leader'",
        "toil_workers": "tags.ToilNodeType == 'worker'",
        "toil_preemptible": "instance_lifecycle is defined and instance_lifecycle == 'spot'",
    },
    "compose": {
        "ansible_host": "public_ip_address | default(private_ip_address)",
        "toil_cluster": "tags.clusterName",
        "toil_node_type": "tags.ToilNodeType",
    },
}
GROUP_FAMILIES = ("toil_cluster_", "toil_pool_", "toil_type_", "toil_leaders", "toil_workers", "toil_preemptible")
SITECUSTOMIZE = f"""
try:
    import botocore.config
    botocore.config.Config.OPTION_DEFAULTS["read_timeout"] = {READ_TIMEOUT}
except ImportError:
    pass
"""


# ---------------------------------------------------------------------- the clusters
def _tags(**tags):
    return [{"Key": key, "Value": value} for key, value in tags.items()]


class Fleet:
    """The 50 clusters on the endpoint; ``grow_to(total)`` adds workers evenly."""

    def __init__(self, endpoint):
        self.ec2 = endpoint.boto3_client("ec2")
        self.image = self.ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
        self.groups = {}
        self.sizes = {}
        for index in range(CLUSTERS):
            name = f"bench-{index:02d}"
            self.groups[name] = self.ec2.create_security_group(GroupName=name, Description=TOIL_DESCRIPTION)["GroupId"]
            base = {"Name": name, "Owner": "bench", "clusterName": name}
            self._run(name, 1, {**base, "ToilNodeType": "leader", "sshKeyName": "bench"}, "t3.large", spot=False)
            self.sizes[name] = 1

    def _run(self, name, count, tags, instance_type, spot):
        request = {
            "ImageId": self.image,
            "MinCount": count,
            "MaxCount": count,
            "InstanceType": instance_type,
            "SecurityGroupIds": [self.groups[name]],
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": _tags(**tags)}],
        }
        if spot:
            request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {"MaxPrice": "0.5"}}
        self.ec2.run_instances(**request)

    def grow_to(self, total):
        per_cluster = total // CLUSTERS
        for index, name in enumerate(sorted(self.groups)):
            spot = index % SPOT_EVERY == 0
            instance_type = "c5.large" if spot else "m5.large"
            pool = instance_type.replace(".", "-") + ("-spot" if spot else "")
            tags = {"Name": name, "Owner": "bench", "clusterName": name, "ToilNodeType": "worker", "toil.cluster/pool": pool}
            tags["toil.cluster/preemptible"] = str(spot).lower()
            while self.sizes[name] < per_cluster:
                count = min(PER_RESERVATION, per_cluster - self.sizes[name])
                self._run(name, count, tags, instance_type, spot)
                self.sizes[name] += count
        return sum(self.sizes.values())


# ---------------------------------------------------------------------- one inventory run
def run_inventory(config, endpoint, workdir, label):
    """(seconds, cpu seconds, peak RSS MB, {group: set(hosts)}) of one ansible-inventory --list."""
    workdir.mkdir(parents=True, exist_ok=True)
    suffix = "toil_ec2" if config["plugin"].endswith("toil_ec2") else "aws_ec2"
    path = workdir / f"{label}.{suffix}.yml"
    path.write_text(json.dumps(config, indent=1))
    output = workdir / f"{label}.json"
    custom = workdir / "site"
    custom.mkdir(exist_ok=True)
    (custom / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = ansible_environment(endpoint.env(), workdir, {"PYTHONPATH": str(custom), "ANSIBLE_DEPRECATION_WARNINGS": "false"})
    cmd = [venv_executable("ansible-inventory"), "-i", str(path), "--list", "--output", str(output)]
    with tempfile.TemporaryFile() as stderr:
        began = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, cwd=str(workdir))
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{label}: ansible-inventory exited {proc.returncode}\n{errors[-4000:]}")
    data = unwrap_unsafe(json.loads(output.read_text()))
    hostvars = data.pop("_meta")["hostvars"]
    groups = {name: set(body.get("hosts", [])) for name, body in data.items() if name.startswith(GROUP_FAMILIES)}
    if not hostvars:
        raise RuntimeError(f"{label}: empty inventory\n{errors[-4000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, groups, len(hostvars)


def _compare(ours, anchor):
    """The two inventories' groups, which must be equal for the figures to mean anything."""
    if ours != anchor:
        only_ours = sorted(set(ours) - set(anchor))[:5]
        only_anchor = sorted(set(anchor) - set(ours))[:5]
        different = sorted(g for g in set(ours) & set(anchor) if ours[g] != anchor[g])[:5]
        raise RuntimeError(f"the inventories differ: groups only ours {only_ours}, only aws_ec2 {only_anchor}, different members {different}")


# ---------------------------------------------------------------------- the benchmark
def inventory_vs_aws_ec2(endpoint):
    rows = []
    try:
        _run_sizes(endpoint, rows)
    finally:
        endpoint.reset()  # 5,000 instances weigh on moto: free them for the next benchmark
    return rows


def _run_sizes(endpoint, rows):
    fleet = Fleet(endpoint)
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        for size in SIZES:
            began = time.monotonic()
            total = fleet.grow_to(size)
            setup = time.monotonic() - began
            workdir = Path(tmp) / str(size)
            ours = run_inventory(OURS, endpoint, workdir, "ours")
            anchor = run_inventory(ANCHOR, endpoint, workdir, "anchor")
            _compare(ours[3], anchor[3])
            if ours[4] != total or anchor[4] != total:
                raise RuntimeError(f"{size}: {total} instances, ours listed {ours[4]}, aws_ec2 {anchor[4]}")
            label = f"inventory {total:,} instances / {CLUSTERS} clusters"
            groups = f"same {total:,} hosts in the same {len(ours[3])} groups in both"
            goal = {"wall": 0.5, "CPU": 0.2, "peak RSS": 0.5}
            for index, (what, unit) in enumerate((("wall", "s"), ("CPU", "s"), ("peak RSS", "MB")), start=0):
                value, reference = ours[index], anchor[index]
                note = f"{groups}; setup {setup:.0f} s (not counted)" if index == 0 else ""
                if size >= 5000:
                    met = "met" if value <= goal[what] * reference else "NOT met"
                    note = f"{note}; goal ours/aws_ec2 <= {goal[what]}: {met}".lstrip("; ")
                rows.append({"name": f"{label}, {what}", "ours": value, "anchor": reference, "anchor_name": "amazon.aws.aws_ec2", "unit": unit, "note": note})


BENCHMARKS = [inventory_vs_aws_ec2]
