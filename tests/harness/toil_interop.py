"""Drive the real Toil 9.6 (the one in ``.venv-toil``) against the embedded AWS endpoint, from the test process.

Toil is never imported here: it pins its own boto3, so it runs as a subprocess with the Toil venv's python.
Every Toil process started here runs in an ``OfflineNetns`` (harness.netns): loopback only, with a relay to the
endpoint, so ``toil launch-cluster``'s SSH wait on the leader's 54.x address can reach nothing.

API
    ``toil_view(aws_env, cluster_name, zone)`` -> dict: what Toil's own AWSProvisioner sees.
    ``toil_destroy_cluster(aws_env, cluster_name, zone)`` -> CompletedProcess of ``toil destroy-cluster``.
    ``toil_launch_cluster(aws_env, cluster_name, zone, key_pair_name)`` -> LaunchResult: the real
    ``toil launch-cluster``, stopped once the leader is up and Toil has reached its SSH wait.
    ``import_key_pair(aws, name, tmp_dir)``: a real ed25519 key (moto rejects fake ones), deleted at cleanup.
    ``purge_toil_cluster(aws_env, cluster_name, region)``: boto3 fallback cleanup of a Toil-shaped cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.leaks import leftover_resources
from harness.netns import OfflineNetns, kill_group
from harness.paths import TOIL_CLI, TOIL_PYTHON, TOIL_VENV

ZONE_PATTERN = re.compile(r"^([a-z]{2}-[a-z]+-[1-9][0-9]*)([a-z])$")
LAUNCH_TIMEOUT = 60.0
SSH_WAIT_GRACE = 15.0  # after the leader runs, how long to wait for Toil to log its SSH wait
PREFLIGHT_USER = "default_user"  # the user moto's GetUser names (it does not exist unless created)


class ToilNotInstalledError(RuntimeError):
    pass


def region_of(zone: str) -> str:
    match = ZONE_PATTERN.match(zone)
    if not match:
        raise ValueError(f"not an availability zone: {zone!r}")
    return match.group(1)


def _require_toil() -> None:
    for path in (TOIL_PYTHON, TOIL_CLI):
        if not os.access(path, os.X_OK):
            raise ToilNotInstalledError(f"the real Toil is not installed: {path} is missing. Run `make setup` to create .venv-toil.")


@contextlib.contextmanager
def _netns_for(aws_env: Mapping[str, str], netns: OfflineNetns | None):
    if netns is not None:
        yield netns.start()  # no-op when already started
        return
    with OfflineNetns(aws_env["AWS_ENDPOINT_URL"]) as fresh:
        yield fresh


# ---------------------------------------------------------------------- environment and clients
def toil_env(aws_env: Mapping[str, str], zone: str, home: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The endpoint environment for Toil: no inherited TOIL_* setting, TOIL_AWS_ZONE=zone, a private HOME."""
    env = {k: v for k, v in aws_env.items() if not k.startswith("TOIL_")}
    env.update(
        TOIL_AWS_ZONE=zone,
        HOME=home,
        PATH=f"{TOIL_VENV / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("VIRTUAL_ENV", None)
    env.update(extra or {})
    return env


def boto3_client(aws_env: Mapping[str, str], service: str, region: str) -> Any:
    """A boto3 client (the test venv's boto3) on the endpoint named by ``aws_env``."""
    import boto3  # noqa: PLC0415 - only the callers that poll need it

    return boto3.session.Session(
        aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    ).client(service, endpoint_url=aws_env["AWS_ENDPOINT_URL"])


def _client_factory(aws_env: Mapping[str, str]) -> Callable[[str, str], Any]:
    cache: dict[tuple[str, str], Any] = {}

    def factory(service: str, region: str) -> Any:
        if (service, region) not in cache:
            cache[service, region] = boto3_client(aws_env, service, region)
        return cache[service, region]

    return factory


def snapshot(aws_env: Mapping[str, str], region: str) -> dict[str, set[str]]:
    """Every resource kind harness.leaks knows (fixtures included) -> ids, on the endpoint."""
    found = leftover_resources(_client_factory(aws_env), [region], include_fixtures=True)
    return {kind: set(ids) for kind, ids in found.items()}


def diff_snapshots(before: Mapping[str, set[str]], after: Mapping[str, set[str]]) -> dict[str, list[str]]:
    return {kind: sorted(set(ids) - set(before.get(kind, ()))) for kind, ids in after.items() if set(ids) - set(before.get(kind, ()))}


# ---------------------------------------------------------------------- Toil's view of a cluster
_VIEW_MARK = "TOIL_VIEW_JSON "
_VIEW_SCRIPT = """
import json, sys
name, zone, cluster_type, mark = sys.argv[1:5]
out = {"toil_version": None}
try:
    from toil.version import version
    out["toil_version"] = version
    from toil.provisioners.aws.awsProvisioner import AWSProvisioner
    prov = AWSProvisioner(name, cluster_type, zone, 50, None, None, False)
    out["leader_subnet"] = prov._leader_subnet
    out["nodes"] = sorted(i["InstanceId"] for i in prov._get_nodes_in_cluster_boto3())
    leader = prov.getLeader()  # wait=False: never contacts the node
    out["leader"] = leader.name
    out["leader_private_ip"] = leader.privateIP
    out["leader_tags"] = leader.tags
    prov._leaderPrivateIP = leader.privateIP  # what launchCluster or readClusterSettings would have set
    out["workers"] = sorted(n.name for n in prov.getProvisionedWorkers())
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
    out["error_type"] = type(exc).__name__
print(mark + json.dumps(out, default=str), flush=True)
"""


def toil_view(
    aws_env: Mapping[str, str], cluster_name: str, zone: str, *, cluster_type: str = "kubernetes", netns: OfflineNetns | None = None, timeout: float = 120
) -> dict[str, Any]:
    """What Toil's own ``AWSProvisioner(cluster_name, cluster_type, zone, 50, None, None, False)`` sees.

    Returns ``{"leader": id, "nodes": [ids], "workers": [ids], "leader_private_ip", "leader_tags", "leader_subnet",
    "toil_version", "seconds"}`` (ids sorted; ``nodes`` is ``_get_nodes_in_cluster_boto3()``, ``workers`` is
    ``getProvisionedWorkers()``), or with ``"error"``/``"error_type"`` (e.g. NoSuchClusterException) when Toil
    raised; what was computed before the error is kept. Runs inside an OfflineNetns (a fresh one unless given).
    """
    _require_toil()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="toil-view-") as home, _netns_for(aws_env, netns) as ns:
        env = toil_env(ns.env(aws_env), zone, home)
        proc = ns.run([str(TOIL_PYTHON), "-c", _VIEW_SCRIPT, cluster_name, zone, cluster_type, _VIEW_MARK], timeout=timeout, env=env, cwd=home)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(_VIEW_MARK)]
    if not lines:
        raise RuntimeError(f"the Toil view script printed no result (exit {proc.returncode})\nstdout:\n{proc.stdout[-5000:]}\nstderr:\n{proc.stderr[-5000:]}")
    view = json.loads(lines[-1][len(_VIEW_MARK) :])
    view["seconds"] = round(time.monotonic() - began, 2)
    view["stderr"] = proc.stderr[-5000:]
    return view


# ---------------------------------------------------------------------- toil destroy-cluster
def toil_destroy_cluster(
    aws_env: Mapping[str, str], cluster_name: str, zone: str, *, netns: OfflineNetns | None = None, timeout: float = 300, log_debug: bool = False
) -> subprocess.CompletedProcess[str]:
    """``toil destroy-cluster <name> --provisioner aws --zone <zone>`` inside an OfflineNetns (about 6 s against moto).

    The result carries ``.seconds`` (wall time) as an extra attribute; the return code is not checked.
    """
    _require_toil()
    cmd = [str(TOIL_CLI), "destroy-cluster", cluster_name, "--provisioner", "aws", "--zone", zone]
    if log_debug:
        cmd.append("--logDebug")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="toil-destroy-") as home, _netns_for(aws_env, netns) as ns:
        proc = ns.run(cmd, timeout=timeout, env=toil_env(ns.env(aws_env), zone, home), cwd=home)
    proc.seconds = round(time.monotonic() - began, 2)  # type: ignore[attr-defined]
    return proc


# ---------------------------------------------------------------------- toil launch-cluster
@dataclass
class LaunchResult:
    """One ``toil launch-cluster`` run, stopped by us once the leader was up (or at the timeout)."""

    cluster_name: str
    cmd: list[str]
    returncode: int | None = None
    leader_id: str | None = None
    leader_public_ip: str | None = None
    stopped_by_us: bool = False  # we killed it (the normal end: Toil waits for SSH forever)
    timed_out: bool = False  # the leader never appeared within the timeout
    reached_ssh_wait: bool = False  # Toil logged "Waiting for ssh port on <ip>"
    ssh_target: str | None = None
    preflight_user_created: bool = False
    seconds_to_leader: float | None = None
    seconds: float | None = None
    created: dict[str, list[str]] = field(default_factory=dict)  # kind -> ids new on the endpoint (harness.leaks kinds)
    netns_connections: int = 0
    output: str = ""

    def describe(self) -> str:
        fields = {k: v for k, v in self.__dict__.items() if k != "output"}
        return f"{json.dumps(fields, indent=1, default=str)}\n--- toil output (tail) ---\n{self.output[-8000:]}"


def pick_ami(ec2: Any) -> str:
    """An AMI that exists on moto (Toil only passes TOIL_AWS_AMI on to RunInstances)."""
    return ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]


def _leader_instance(ec2: Any, cluster_name: str) -> dict[str, Any] | None:
    filters = [{"Name": "instance.group-name", "Values": [cluster_name]}, {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                if tags.get("ToilNodeType") == "leader":
                    return inst
    return None


def ensure_preflight_user(iam: Any) -> bool:
    """Create IAM user ``default_user`` with an inline ``*`` policy so Toil's permission pre-flight passes.

    moto's GetUser (no user in the request) answers with this user even though it does not exist; Toil then
    fails to list its policies, logs a traceback and warns that it may lack permissions. Returns whether the
    user was created here (False: it already existed).
    """
    try:
        iam.create_user(UserName=PREFLIGHT_USER)
    except iam.exceptions.EntityAlreadyExistsException:
        return False
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=PREFLIGHT_USER, PolicyName="everything", PolicyDocument=json.dumps(policy))
    return True


def remove_preflight_user(iam: Any) -> None:
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        for name in iam.list_user_policies(UserName=PREFLIGHT_USER)["PolicyNames"]:
            iam.delete_user_policy(UserName=PREFLIGHT_USER, PolicyName=name)
        iam.delete_user(UserName=PREFLIGHT_USER)


def toil_launch_cluster(
    aws_env: Mapping[str, str],
    cluster_name: str,
    zone: str,
    key_pair_name: str,
    *,
    ami: str | None = None,
    leader_node_type: str = "t3.medium",
    cluster_type: str = "kubernetes",
    extra_args: Sequence[str] = (),
    timeout: float = LAUNCH_TIMEOUT,
    ssh_wait_grace: float = SSH_WAIT_GRACE,
    preflight_user: bool = True,
    netns: OfflineNetns | None = None,
) -> LaunchResult:
    """Run the real ``toil launch-cluster`` inside an OfflineNetns and stop it once its leader is up.

    ``toil launch-cluster <name> --provisioner aws --clusterType <type> --leaderNodeType <type> --keyPairName <key>
    --zone <zone> --forceDockerAppliance --logDebug`` with TOIL_AWS_AMI (default: an AMI that exists on moto)
    and TOIL_AWS_ZONE. Toil creates the IAM role/profile and the security group, writes the leader's Ignition
    config to ``<name>--internal`` when it is over 16 KB, runs the leader, then waits for SSH on the leader's
    public address forever; in the namespace that address is unreachable. We poll the endpoint (from this
    process) for a running instance tagged ToilNodeType=leader in the group named after the cluster, give
    Toil ``ssh_wait_grace`` seconds to log its SSH wait, then kill its process group. The leader never
    appearing within ``timeout`` seconds is not an error here: check ``leader_id``/``timed_out``.

    With ``preflight_user`` the IAM user Toil's pre-flight looks at is created for the run and removed after.
    ``created`` lists what appeared on the endpoint during the run (harness.leaks kinds).
    """
    _require_toil()
    region = region_of(zone)
    ec2 = boto3_client(aws_env, "ec2", region)
    iam = boto3_client(aws_env, "iam", region)
    cmd = [
        str(TOIL_CLI),
        "launch-cluster",
        cluster_name,
        "--provisioner",
        "aws",
        "--clusterType",
        cluster_type,
        "--leaderNodeType",
        leader_node_type,
        "--keyPairName",
        key_pair_name,
        "--zone",
        zone,
        "--forceDockerAppliance",
        "--logDebug",
        *extra_args,
    ]
    result = LaunchResult(cluster_name, cmd)
    before = snapshot(aws_env, region)
    began = time.monotonic()
    created_user = False
    try:
        if preflight_user:
            created_user = result.preflight_user_created = ensure_preflight_user(iam)
        with tempfile.TemporaryDirectory(prefix="toil-launch-") as home, _netns_for(aws_env, netns) as ns, tempfile.TemporaryFile() as log:
            env = toil_env(ns.env(aws_env), zone, home, {"TOIL_AWS_AMI": ami or pick_ami(ec2)})
            connections_before = ns.connections
            proc = ns.popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=home)
            try:
                _watch_launch(proc, ec2, log, result, began, timeout, ssh_wait_grace)
            finally:
                kill_group(proc)
                result.returncode = proc.returncode
                result.netns_connections = ns.connections - connections_before
                log.seek(0)
                result.output = log.read().decode(errors="replace")
    finally:
        if created_user:
            remove_preflight_user(iam)
        result.seconds = round(time.monotonic() - began, 2)
    match = re.search(r"Waiting for ssh port on (\S+) to open", result.output)
    result.reached_ssh_wait = match is not None
    result.ssh_target = match.group(1) if match else None
    result.created = diff_snapshots(before, snapshot(aws_env, region))
    return result


def _watch_launch(proc: subprocess.Popen[Any], ec2: Any, log: Any, result: LaunchResult, began: float, timeout: float, grace: float) -> None:
    leader_seen_at: float | None = None
    while True:
        now = time.monotonic()
        if proc.poll() is not None:
            return  # Toil gave up on its own (an error, in its output)
        if leader_seen_at is None:
            leader = _leader_instance(ec2, result.cluster_name)
            if leader is not None and leader["State"]["Name"] == "running":
                leader_seen_at = now
                result.leader_id = leader["InstanceId"]
                result.leader_public_ip = leader.get("PublicIpAddress")
                result.seconds_to_leader = round(now - began, 2)
            elif now - began > timeout:
                result.timed_out = True
                result.stopped_by_us = True
                return
        if leader_seen_at is not None and (
            now - leader_seen_at > grace or b"Waiting for ssh port on" in os.pread(log.fileno(), os.fstat(log.fileno()).st_size, 0)
        ):
            result.stopped_by_us = True
            return
        time.sleep(0.2)


# ---------------------------------------------------------------------- keys and fallback cleanup
def import_key_pair(aws: Any, name: str, tmp_dir: Path) -> str:
    """Import a fresh ed25519 public key as ``name`` (moto rejects fake keys); deleted at the test's cleanup."""
    key_file = Path(tmp_dir) / f"{name}_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key_file)], check=True, capture_output=True, stdin=subprocess.DEVNULL)  # noqa: S607
    ec2 = aws.client("ec2")
    ec2.import_key_pair(KeyName=name, PublicKeyMaterial=key_file.with_suffix(".pub").read_bytes())
    aws.add_cleanup(ec2.delete_key_pair, KeyName=name)
    return name


def purge_toil_cluster(aws_env: Mapping[str, str], cluster_name: str, region: str) -> list[str]:
    """Remove whatever is left of a Toil-shaped cluster with boto3 (a fallback cleanup; no-op when clean).

    Instances in the group named after the cluster or tagged clusterName, ASGs and launch templates tagged
    clusterName, the group, role and instance profile ``<ns>_toil`` (exact name), and ``<name>--internal``.
    Returns what it removed.
    """
    ec2 = boto3_client(aws_env, "ec2", region)
    iam = boto3_client(aws_env, "iam", region)
    removed: list[str] = []
    live = ["pending", "running", "stopping", "stopped"]
    ids: set[str] = set()
    for flt in ({"Name": "instance.group-name", "Values": [cluster_name]}, {"Name": "tag:clusterName", "Values": [cluster_name]}):
        for page in ec2.get_paginator("describe_instances").paginate(Filters=[flt, {"Name": "instance-state-name", "Values": live}]):
            ids.update(i["InstanceId"] for r in page["Reservations"] for i in r["Instances"])
    asg = boto3_client(aws_env, "autoscaling", region)
    for group in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
        if {t["Key"]: t["Value"] for t in group.get("Tags", [])}.get("clusterName") == cluster_name:
            asg.delete_auto_scaling_group(AutoScalingGroupName=group["AutoScalingGroupName"], ForceDelete=True)
            removed.append(f"asg {group['AutoScalingGroupName']}")
    if ids:
        ec2.terminate_instances(InstanceIds=sorted(ids))
        ec2.get_waiter("instance_terminated").wait(InstanceIds=sorted(ids), WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        removed += [f"instance {i}" for i in sorted(ids)]
    for template in ec2.describe_launch_templates(Filters=[{"Name": "tag:clusterName", "Values": [cluster_name]}])["LaunchTemplates"]:
        ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
        removed.append(f"launch template {template['LaunchTemplateName']}")
    for group in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [cluster_name]}])["SecurityGroups"]:
        ec2.delete_security_group(GroupId=group["GroupId"])
        removed.append(f"security group {group['GroupId']}")
    name = cluster_name.replace("-", "_") + "_toil"
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        for role in iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
            iam.remove_role_from_instance_profile(InstanceProfileName=role["InstanceProfileName"], RoleName=name)
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=name)
        removed.append(f"role {name}")
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        for role in profile.get("Roles", []):
            iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role["RoleName"])
        iam.delete_instance_profile(InstanceProfileName=name)
        removed.append(f"instance profile {name}")
    s3 = boto3_client(aws_env, "s3", region)
    bucket = cluster_name[:53] + "--internal"
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        return removed
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=bucket)
    removed.append(f"bucket {bucket}")
    return removed
