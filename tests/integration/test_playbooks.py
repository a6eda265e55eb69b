"""The command playbooks (playbooks/*.yml, ``ansible-playbook toil.cluster.NAME``) on the embedded AWS endpoint.

Provisioning-only mode (``provision_only: true``): the endpoint hands out public addresses that must never be
contacted, so no host is configured here; boto3 checks what AWS holds. Every run goes through the recording
proxy (``aws_calls``), which also gives RunInstances and CreateFleet EC2's ClientToken idempotency, so "changed nothing"
is also "made no mutating AWS call". The ``aws`` fixture proves nothing is left after destroy_cluster.
"""

from __future__ import annotations

import base64
import subprocess

from harness.netns import OfflineNetns
from harness.paths import venv_executable
from harness.playbooks import ansible_environment
from harness.toil_shapes import make_toil_cluster

ZONE = "us-west-2a"
CLUSTER = "pb-c"
# A leader, a static on-demand pool of 2 and a ranged spot pool of 1 to 3 (min 1, so it starts with a node).
LAUNCH = {
    "cluster_name": CLUSTER,
    "zone": ZONE,
    "leader_node_type": "t3.large",
    "node_types": "t3.large,c5.large:0.5",
    "workers": "2,1-3",
    "tags": {"Project": "playbooks"},
    "node_storage_overrides": "c5.large:100",  # Toil's --nodeStorageOverrides: the spot pool's root volumes
    "worker_zones": ["us-west-2b"],  # not the leader's: every pool's nodes go there
    "provision_only": True,
}
STATIC, SPOT = "t3-large", "c5-large-spot"


def workers_by_pool(aws, cluster=CLUSTER):
    reservations = aws.client("ec2").describe_instances(
        Filters=[
            {"Name": "tag:clusterName", "Values": [cluster]},
            {"Name": "tag:ToilNodeType", "Values": ["worker"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    pools: dict[str, list[dict]] = {}
    for reservation in reservations:
        for instance in reservation["Instances"]:
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            pools.setdefault(tags.get("toil.cluster/pool", ""), []).append(instance)
    return pools


def changed_tasks(result):
    return [(entry["task"]["name"], host) for entry in result.tasks() for host, res in entry["hosts"].items() if res.get("changed")]


def leader_instance(aws):
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": "tag:clusterName", "Values": [CLUSTER]}, {"Name": "tag:ToilNodeType", "Values": ["leader"]}]
    )["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def root_volume_sizes(aws, instances):
    ids = [m["Ebs"]["VolumeId"] for i in instances for m in i["BlockDeviceMappings"]]
    return sorted(v["Size"] for v in aws.client("ec2").describe_volumes(VolumeIds=ids)["Volumes"])


def sizes(aws):
    return {name: len(nodes) for name, nodes in workers_by_pool(aws).items()}


def test_cluster_lifecycle_in_provisioning_only_mode(aws, run_playbook, aws_calls, key_pair, tmp_path):
    """launch_cluster, its re-run, a half-built cluster converged, status, ssh_config, autoscale (plan, then
    apply with authorized_keys), destroy_cluster: one cluster, so the endpoint launches it once."""
    launch_vars = dict(LAUNCH, key_pair_name=key_pair)
    cluster = {"cluster_name": CLUSTER, "zone": ZONE}
    first = run_playbook("playbooks/launch_cluster.yml", extra_vars=launch_vars, env=aws_calls.env)
    aws.add_cleanup(lambda: leader_instance(aws) and run_playbook("playbooks/destroy_cluster.yml", extra_vars=cluster))

    # launch_cluster: the leader with the user's tags, a static pool of 2, a ranged spot pool at its minimum.
    assert first.stats["localhost"]["changed"] > 0
    leader = leader_instance(aws)
    assert len(leader) == 1 and leader[0]["InstanceType"] == "t3.large"
    assert {t["Key"]: t["Value"] for t in leader[0]["Tags"]}["Project"] == "playbooks"
    pools = workers_by_pool(aws)
    assert sorted(pools) == [SPOT, STATIC]
    assert {i["InstanceType"] for i in pools[STATIC]} == {"t3.large"} and len(pools[STATIC]) == 2
    assert [i["InstanceType"] for i in pools[SPOT]] == ["c5.large"]
    assert pools[SPOT][0].get("InstanceLifecycle") == "spot"
    assert root_volume_sizes(aws, pools[STATIC]) == [50, 50] and root_volume_sizes(aws, pools[SPOT]) == [100]
    assert leader[0]["Placement"]["AvailabilityZone"] == ZONE
    assert {i["Placement"]["AvailabilityZone"] for p in pools.values() for i in p} == {"us-west-2b"}
    # Provisioning only: the configure playbook stopped before choosing any host.
    assert "Read the inventory again (a toil_ec2 source now sees the new nodes)" not in first.task_names()

    # Re-run: nothing changes, not one mutating AWS call.
    aws_calls.clear()
    second = run_playbook("playbooks/launch_cluster.yml", extra_vars=launch_vars, env=aws_calls.env)
    assert second.stats["localhost"]["changed"] == 0, changed_tasks(second)
    assert aws_calls.mutating_calls() == []
    assert sizes(aws) == {STATIC: 2, SPOT: 1}

    # Half-built (a static node lost): the re-run launches exactly the missing node.
    aws.client("ec2").terminate_instances(InstanceIds=[pools[STATIC][0]["InstanceId"]])
    aws_calls.clear()
    third = run_playbook("playbooks/launch_cluster.yml", extra_vars=launch_vars, env=aws_calls.env)
    assert changed_tasks(third) == [("Size the worker pools", "localhost")]
    assert aws_calls.count("CreateFleet") == 1
    assert sizes(aws) == {STATIC: 2, SPOT: 1}

    # status: the leader's address, pools and nodes, the dashboard's URL.
    status = run_playbook("playbooks/status.yml", extra_vars=cluster).task("Show the cluster's status")["msg"]["status"]
    address = leader[0]["PublicIpAddress"]
    assert status["leader"]["instance_id"] == leader[0]["InstanceId"]
    assert status["leader_address"] == address and status["ssh"] == f"admin@{address}"
    assert status["dashboard_url"] == "http://localhost:3000"
    assert status["node_count"] == 4
    assert status["pools"][STATIC]["nodes"] == 2 and status["pools"][STATIC]["spot"] == 0
    assert status["pools"][SPOT] == {"nodes": 1, "running": 1, "pending": 0, "spot": 1, "instance_types": ["c5.large"]}
    assert sorted(w["instance_id"] for w in status["workers"]) == sorted(i["InstanceId"] for p in workers_by_pool(aws).values() for i in p)

    # ssh_config: the leader with the forwards, every worker through it; ssh -G parses it.
    config = tmp_path / "ssh" / "config"
    run_playbook("playbooks/ssh_config.yml", extra_vars=dict(cluster, ssh_config_file=str(config), identity_file="~/.ssh/toil"))
    check_ssh_config(config, leader[0], workers_by_pool(aws))

    # autoscale, plan only, from a given demand (every node busy, two pods pending): a resize is planned,
    # nothing changes.
    busy = {"cpu": "2", "memory": "3Gi"}
    nodes = [
        {"instance_id": i["InstanceId"], "pool": pool, "allocatable": busy, "requested": busy, "idle_seconds": 0, "safe_to_evict": False}
        for pool, instances in workers_by_pool(aws).items()
        for i in instances
    ]
    demand = {"pods": [{"name": "align", "cpu": "1500m", "memory": "2Gi", "preemptible": True, "count": 2}], "nodes": nodes}
    scale_vars = dict(
        cluster,
        node_types=LAUNCH["node_types"],
        workers=LAUNCH["workers"],
        node_storage_overrides=["c5.large:100"],
        demand=demand,
        plan_only=True,
        max_memory="1Ti",  # a budget passed through, too large to bind
        worker_zones=["us-west-2c"],  # where the scaler's new nodes go
    )
    aws_calls.clear()
    planned = run_playbook("playbooks/autoscale.yml", extra_vars=scale_vars, env=aws_calls.env)
    plan = {p["name"]: p for p in planned.task("Show the plan")["msg"]["pools"]}
    assert plan[SPOT]["current"] == 1 and plan[SPOT]["desired"] > 1, plan
    assert plan[STATIC]["current"] == 2 and plan[STATIC]["desired"] == 2, plan
    budget = planned.task("Show the plan")["msg"]["budget"]
    assert (budget["max_memory"], budget["max_vcpus"], budget["capped"]) == (2**40, None, False), budget
    assert aws_calls.mutating_calls() == []
    assert planned.stats["localhost"]["changed"] == 0
    assert sizes(aws) == {STATIC: 2, SPOT: 1}

    # autoscale, applied (resize only): the planned nodes are launched, accepting the given keys.
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "leader-scaler", "-f", str(tmp_path / "scaler")], check=True)
    scaler_key = (tmp_path / "scaler.pub").read_text().strip()
    before = {i["InstanceId"] for i in workers_by_pool(aws)[SPOT]}
    applied = run_playbook(
        "playbooks/autoscale.yml", extra_vars=dict(scale_vars, plan_only=False, provision_only=True, authorized_keys=[scaler_key]), env=aws_calls.env
    )
    assert applied.task("Show the new pool sizes")["msg"]["pools"][SPOT] == plan[SPOT]["desired"]
    assert sizes(aws) == {STATIC: 2, SPOT: plan[SPOT]["desired"]}
    new = [i["InstanceId"] for i in workers_by_pool(aws)[SPOT] if i["InstanceId"] not in before]
    assert len(new) == plan[SPOT]["desired"] - 1
    assert {i["Placement"]["AvailabilityZone"] for i in workers_by_pool(aws)[SPOT] if i["InstanceId"] in new} == {"us-west-2c"}
    assert set(root_volume_sizes(aws, [i for i in workers_by_pool(aws)[SPOT] if i["InstanceId"] in new])) == {100}
    for instance_id in new:
        user_data = aws.client("ec2").describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
        assert scaler_key in base64.b64decode(user_data).decode()

    # destroy_cluster: everything goes (the aws fixture's leak check proves it); again, nothing changes.
    destroyed = run_playbook("playbooks/destroy_cluster.yml", extra_vars=cluster)
    removed = destroyed.task("Show what was removed")["msg"]["removed"]
    assert len(removed["instances"]) == 3 + plan[SPOT]["desired"]
    assert removed["security_groups"] and removed["iam_role"]
    again = run_playbook("playbooks/destroy_cluster.yml", extra_vars=cluster)
    assert again.stats["localhost"]["changed"] == 0


def check_ssh_config(path, leader, pools):
    text = path.read_text()
    assert "LocalForward 3000 localhost:3000" in text and "LocalForward 9090 localhost:9090" in text
    resolved = ssh_g(path, "leader")
    assert resolved["hostname"] == leader["PublicIpAddress"]
    assert resolved["user"] == "admin"
    assert resolved["localforward"] == ["3000 localhost:3000", "9090 localhost:9090"] or sorted(resolved["localforward"]) == [
        "3000 [localhost]:3000",
        "9090 [localhost]:9090",
    ]
    assert resolved["identityfile"][0].endswith("/.ssh/toil")
    for pool in pools.values():
        for worker in pool:
            through = ssh_g(path, worker["InstanceId"])
            assert through["hostname"] == worker["PrivateIpAddress"]
            assert through["proxyjump"] == ["leader"]
            assert through["user"] == "admin"
            assert "localforward" not in through


def ssh_g(path, host):
    """``ssh -G -F path host``: what ssh would use, without connecting."""
    out = subprocess.run(["ssh", "-G", "-F", str(path), host], capture_output=True, text=True, check=True).stdout
    options: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _sep, value = line.partition(" ")
        options.setdefault(key, []).append(value)
    return {k: (v[0] if k in {"hostname", "user"} else v) for k, v in options.items()}


def test_playbooks_run_by_their_collection_name(aws, tmp_path):
    """``ansible-playbook toil.cluster.status``, as users and AWX job templates run them."""
    env = ansible_environment(aws.env, tmp_path)
    proc = subprocess.run(
        [venv_executable("ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"cluster_name=nope zone={ZONE}", "toil.cluster.status"],
        env=env, capture_output=True, text=True, timeout=300, check=False, cwd=str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "No cluster nope in us-west-2" in proc.stdout


LAUNCH_BAD_CASES = [
    # (override, task that must refuse it, words of the message)
    ({"key_pair_name": ""}, "Check that the required variables are given", "launch_cluster needs cluster_name, leader_node_type, key_pair_name"),
    ({"cluster_type": "mesos"}, "Check that the required variables are given", "cluster_type must be kubernetes"),
    ({"cluster_name": "Bad_Name"}, "Check the cluster name as Toil would, and find its region", "must be lowercase"),
    ({"workers": "2"}, "Check the cluster name, node types, workers and tags as Toil would", "same length as the list of node types"),
    ({"tags": {"clusterName": "other"}}, "Check the cluster name, node types, workers and tags as Toil would", "cannot be overridden"),
    ({"leader_node_type": "t3.large:0.5"}, "Check that the leader is one on-demand instance type", "one on-demand instance type"),
    ({"key_pair_name": "no-such-key"}, "Check the leader against AWS without changing anything (key pair, instance type, subnet, profile)", "no-such-key"),
    # Toil's --nodeStorageOverrides rule: the type must be one of node_types'; gp3's sizes; ASCII digits; one line.
    ({"node_storage_overrides": "m5.large:100"}, "Check node_storage_overrides", "one of node_types' (t3.large, c5.large)"),
    ({"node_storage_overrides": ["c5.large:7", "t3.large:20000"]}, "Check node_storage_overrides", "each size 8 to 16384 GiB"),
    ({"node_storage_overrides": ["c5.large:\u0661\u0660\u0660", "c5.large:100\nt3.large:9"]}, "Check node_storage_overrides", "in ASCII digits"),
]

OTHER_BAD_CASES = [
    # (playbook, variables, task that must refuse them, words of the message)
    ("destroy_cluster", {"zone": ZONE}, "Check the cluster name and zone", "destroy_cluster needs cluster_name"),
    ("status", {"cluster_name": CLUSTER, "zone": "us-west-2"}, "Check the cluster name and zone", "status needs cluster_name and zone"),
    ("ssh_config", {"cluster_name": CLUSTER, "zone": ZONE, "grafana_port": "http"}, "Check the inputs", "grafana_port and\nprometheus_port are port numbers"),
    ("autoscale", {"cluster_name": CLUSTER, "zone": ZONE}, "Check the scaler's inputs", "node_types with\nworkers as given to launch_cluster"),
    (
        "autoscale",
        {"cluster_name": CLUSTER, "zone": ZONE, "node_types": "t3.large", "workers": "1-2", "node_storage_overrides": {"t3.large": 100}},
        "Check node_storage_overrides",
        "a list of instance-type:GiB",
    ),
    (
        "autoscale",
        {"cluster_name": CLUSTER, "zone": ZONE, "node_types": "t3.large", "workers": "1-2,3"},
        "Turn node types and workers into the scaler's pools",
        "same length",
    ),
    (
        "rsync_cluster",
        {"cluster_name": CLUSTER, "zone": ZONE, "src": "x", "dest": "y", "mode": "both"},
        "Check the inputs",
        "mode push (to the leader) or pull",
    ),
    (
        "rsync_cluster",
        {"cluster_name": CLUSTER, "zone": ZONE, "src": "/nonexistent/file", "dest": "/tmp/"},
        "Refuse a missing local side",
        "/nonexistent/file does not exist",
    ),
    ("run_workflow", {"cluster_name": CLUSTER, "zone": ZONE, "workflow": "/nonexistent/wf.py"}, "Refuse missing files", "/nonexistent/wf.py"),
    (
        "run_workflow",
        {"cluster_name": CLUSTER, "zone": ZONE, "workflow": "/etc/hostname", "toil_options": ["--batchSystem", "slurm"]},
        "Read the lists (a survey's strings too), and check toil_options against the options this playbook sets",
        "may not set\n--batchSystem",
    ),
    (
        "run_workflow",
        {"cluster_name": CLUSTER, "zone": ZONE, "workflow": "/etc/hostname", "job_store": "aws:us-west-2:Bad--Name"},
        "Check the job store's name, and that it is free (or, with restart, that it exists)",
        "Bad--Name",
    ),
]


def assert_refused(result, task, words):
    assert result.rc == 2, result.describe()
    failed = result.failed_tasks()
    assert [name for name, _host, _msg in failed] == [task], result.describe()
    # Messages are folded YAML: compare without line breaks.
    assert " ".join(words.split()) in " ".join(failed[0][2].split()), failed[0][2]
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_launch_inputs_are_refused_before_any_change(aws, run_playbook, aws_calls, key_pair):
    for override, task, words in LAUNCH_BAD_CASES:
        result = run_playbook("playbooks/launch_cluster.yml", extra_vars={**LAUNCH, "key_pair_name": key_pair, **override}, env=aws_calls.env, expect_rc=None)
        assert_refused(result, task, words)
    assert aws_calls.mutating_calls() == []


def test_bad_inputs_of_the_other_playbooks_are_refused_before_any_change(aws, run_playbook, aws_calls):
    for playbook, extra_vars, task, words in OTHER_BAD_CASES:
        result = run_playbook(f"playbooks/{playbook}.yml", extra_vars=extra_vars, env=aws_calls.env, expect_rc=None)
        assert_refused(result, task, words)
    assert aws_calls.mutating_calls() == []


# ---------------------------------------------------------------------- ssh_config against hostile tags and variables
# Issue #16, point 2: a tag or a variable holding a line break must never add a directive to the ssh configuration.
SSH_CLUSTER = "pb-ssh"


def ssh_directives(path):
    return [line.split()[0].lower() for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run_ssh_offline(netns, config, host):
    """``ssh -F config host true`` where only loopback exists: it can reach nothing (54.x included), but a
    ProxyCommand or LocalCommand would still run here."""
    argv = ["ssh", "-F", str(config), "-o", "ConnectTimeout=3", "-o", "BatchMode=yes", host, "true"]
    return netns.run(argv, timeout=60)


def test_ssh_config_writes_no_directive_from_tags_or_variables(aws, run_playbook, tmp_path):
    """Workers whose pool, Name and other tags hold "\\nHost *\\n  ProxyCommand touch MARKER" (and \\r variants),
    and variables with line breaks: the playbook refuses the variables and writes no directive from the tags;
    ssh itself, run on the file in a loopback-only namespace, never runs the command."""
    shaped = make_toil_cluster(aws, SSH_CLUSTER, workers=3)
    ec2 = aws.client("ec2")
    markers = []

    def injection(newline, name):
        marker = tmp_path / f"pwned-{name}"
        markers.append(marker)
        return f"x{newline}Host *{newline}  ProxyCommand touch {marker}{newline}  LocalCommand touch {marker}"

    cluster = {"cluster_name": SSH_CLUSTER, "zone": ZONE}
    # Variables with line breaks (tags still clean, so each run stands alone): refused before anything is written.
    bad_variables = [
        ({"identity_file": injection("\n", "identity-lf")}, "identity_file must be a path without control characters"),
        ({"identity_file": injection("\r", "identity-cr")}, "identity_file must be a path without control characters"),
        ({"ssh_user": injection("\n", "user-lf")}, "ssh_user must be a user name"),
        ({"ssh_user": "admin\r" + injection("\r", "user-cr")}, "ssh_user must be a user name"),
        ({"ssh_options": ["ConnectTimeout 5" + injection("\n", "option-lf")]}, "is not one 'Name value' line"),
        ({"ssh_options": [f"ProxyCommand touch {tmp_path / 'pwned-option'}"]}, "ProxyCommand is not allowed"),
    ]
    markers.append(tmp_path / "pwned-option")
    written, refusals = [], []
    for index, (override, words) in enumerate(bad_variables):
        path = tmp_path / f"bad-{index}" / "config"
        result = run_playbook("playbooks/ssh_config.yml", extra_vars=dict(cluster, ssh_config_file=str(path), **override), expect_rc=None)
        if path.exists():  # the old playbook wrote it: let ssh read it, as a user would
            written.append((override, path))
        refusals.append((words, result))

    # Hostile tags (AWS's XML answers turn a \r into \n, as XML's end-of-line rule says; both are sent).
    for worker_id, (newline, name) in zip(shaped.worker_ids, [("\n", "lf"), ("\r", "cr"), ("\r\n", "crlf")], strict=True):
        hostile = injection(newline, f"tag-{name}")
        tags = {"toil.cluster/pool": hostile, "Name": hostile, "Owner": hostile, "toil.cluster/labels": hostile}
        ec2.create_tags(Resources=[worker_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    assert "\n" in ec2.describe_tags(Filters=[{"Name": "key", "Values": ["toil.cluster/pool"]}])["Tags"][0]["Value"]
    config = tmp_path / "ssh" / "config"
    run_playbook("playbooks/ssh_config.yml", extra_vars=dict(cluster, ssh_config_file=str(config), identity_file="~/.ssh/toil"))

    with OfflineNetns(aws.url) as netns:
        assert netns.probe(ssh_g(config, "leader")["hostname"])["route"] is False  # the leader's 54.x is unreachable
        for path in [config] + [p for _o, p in written]:
            for host in ["leader", *shaped.worker_ids]:
                run_ssh_offline(netns, path, host)
    assert [m.name for m in markers if m.exists()] == []
    assert written == [], "the playbook wrote a configuration from variables with line breaks"
    for words, result in refusals:
        assert result.rc == 2, result.describe()
        failed = result.failed_tasks()
        assert len(failed) == 1 and words in failed[0][2], result.describe()
        assert "Traceback" not in result.stdout + result.stderr
    expected = ["host", "hostname", "localforward", "localforward", "exitonforwardfailure"]
    expected += ["host", "hostname", "proxyjump"] * 3
    expected += ["host", "user", "identityfile", "identitiesonly", "stricthostkeychecking", "serveraliveinterval"]
    assert ssh_directives(config) == expected, config.read_text()
    for host in ["leader", *shaped.worker_ids, "any-other-host"]:
        assert "proxycommand" not in ssh_g(config, host) and "localcommand" not in ssh_g(config, host)
