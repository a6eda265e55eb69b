"""Drive the real Toil 9.6 (the one in ``.venv-toil``) against the embedded AWS endpoint, from the test process.

Toil is never imported here: it pins its own boto3, so it runs as a subprocess with the Toil venv's python.

Network isolation
    moto hands out real internet addresses (54.x public IPs), and ``toil launch-cluster`` waits for SSH on
    the leader's public address. Every Toil process started here therefore runs in an ``OfflineNetns``: a
    fresh, anonymous network namespace holding only a loopback interface (no other interface, no route, so
    any connection to 54.x fails at once with ENETUNREACH, and DNS and EC2 metadata are unreachable too).
    Inside it, ``127.0.0.1:<port>`` is a listening socket owned by this process; each connection to it is
    forwarded, from this process's own namespace, to the endpoint on 127.0.0.1. The endpoint is the only
    thing Toil can reach.

    The namespace is created with unshare(CLONE_NEWNET) in a short-lived thread and held only by a file
    descriptor and that socket: it has no name, so parallel runs cannot clash, and the kernel frees it as
    soon as this process closes them or dies, even on SIGKILL. There is no veth, route or name to clean up.
    Creating it needs root (CAP_SYS_ADMIN); without it ``OfflineNetnsError`` says so.

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
import ctypes
import fcntl
import functools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from helpers import REPO, leftover_resources

TOIL_VENV = REPO / ".venv-toil"
TOIL_PYTHON = TOIL_VENV / "bin" / "python"
TOIL_CLI = TOIL_VENV / "bin" / "toil"
ZONE_PATTERN = re.compile(r"^([a-z]{2}-[a-z]+-[1-9][0-9]*)([a-z])$")
LAUNCH_TIMEOUT = 60.0
SSH_WAIT_GRACE = 15.0  # after the leader runs, how long to wait for Toil to log its SSH wait
PREFLIGHT_USER = "default_user"  # the user moto's GetUser names (it does not exist unless created)

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sh22x"  # struct ifreq: name, flags, padding to 40 bytes


class OfflineNetnsError(RuntimeError):
    """The network namespace could not be created (not root, or namespaces not allowed)."""


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


# ---------------------------------------------------------------------- network namespace
def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _enter_netns(setns: Any, prctl: Any, ns_fd: int) -> None:  # pragma: no cover - runs in the child between fork and exec
    """preexec_fn: join the namespace (or never exec) and die with the thread that started us."""
    if setns(ns_fd, _CLONE_NEWNET) != 0:
        os._exit(126)
    pr_set_pdeathsig = 1
    prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)


class _Forwarder:
    """Accepts on a socket inside the namespace and relays each connection to ``target`` from our namespace."""

    def __init__(self, listener: socket.socket, target: tuple[str, int]) -> None:
        self._listener = listener
        self._target = target
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.connections = 0
        self.failed_upstream = 0
        listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, name="offline-netns-forwarder", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            try:
                upstream = socket.create_connection(self._target, timeout=10)
                upstream.settimeout(None)
                # No Nagle: small AWS requests would wait for delayed ACKs (~10 ms a call).
                for end in (conn, upstream):
                    end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                self.failed_upstream += 1
                conn.close()
                continue
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    upstream.close()
                    return
                self.connections += 1
                self._open.update((conn, upstream))
            remaining = [2]
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(src, dst, conn, upstream, remaining), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, a: socket.socket, b: socket.socket, remaining: list[int]) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            with self._lock:
                remaining[0] -= 1
                last = remaining[0] == 0
                if last:
                    self._open.difference_update((a, b))
            if last:
                a.close()
                b.close()

    def close(self) -> None:
        with self._lock:
            self._stop.set()
            sockets = list(self._open)
            self._open.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._listener.close()
        self._thread.join(timeout=5)


class OfflineNetns:
    """An anonymous network namespace with loopback only, where ``self.url`` reaches ``endpoint_url``.

    ``env(aws_env)`` rewrites the endpoint variables for processes inside; ``popen``/``run`` start them
    there (own process group, SIGKILLed if this process dies). ``close()`` kills what is still running,
    stops the relay and drops the namespace. Use as a context manager.
    """

    def __init__(self, endpoint_url: str) -> None:
        parts = urlsplit(endpoint_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"endpoint URL needs a host and a port: {endpoint_url!r}")
        self.endpoint_url = endpoint_url.rstrip("/")
        self._target = (parts.hostname, parts.port)
        self._scheme = parts.scheme
        self._ns_fd: int | None = None
        self._forwarder: _Forwarder | None = None
        self._processes: list[subprocess.Popen[Any]] = []
        self.port: int | None = None
        self.ns_inode: int | None = None
        self.create_seconds: float | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise OfflineNetnsError("the namespace is not started")
        return f"{self._scheme}://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        return self._forwarder.connections if self._forwarder else 0

    def start(self) -> OfflineNetns:
        if self._ns_fd is not None:
            return self
        began = time.monotonic()
        if os.geteuid() != 0:
            raise OfflineNetnsError(
                f"running the real Toil needs a private network namespace, and creating one needs root (euid is {os.geteuid()}). "
                "Run these tests as root (CI does); they must not run Toil with a route to the addresses moto hands out."
            )
        libc = _libc()
        created: dict[str, Any] = {}

        def build() -> None:  # runs in its own thread: unshare moves only this thread to the new namespace
            try:
                if libc.unshare(_CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OfflineNetnsError(f"unshare(CLONE_NEWNET) failed: {os.strerror(err)} (errno {err})")
                created["fd"] = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                created["inode"] = os.fstat(created["fd"]).st_ino
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:  # `ip link set lo up`
                    flags = struct.unpack(_IFREQ, fcntl.ioctl(ctl, _SIOCGIFFLAGS, struct.pack(_IFREQ, b"lo", 0)))[1]
                    fcntl.ioctl(ctl, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                created["listener"] = listener
                listener.bind(("127.0.0.1", 0))
                listener.listen(64)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                created["error"] = exc

        thread = threading.Thread(target=build, name="offline-netns-create")
        thread.start()
        thread.join()
        if "error" in created:
            if "listener" in created:
                created["listener"].close()
            if "fd" in created:
                os.close(created["fd"])
            exc = created["error"]
            if isinstance(exc, OfflineNetnsError):
                raise exc
            raise OfflineNetnsError(f"cannot set up the network namespace: {type(exc).__name__}: {exc}") from exc
        self._ns_fd = created["fd"]
        self.ns_inode = created["inode"]
        self.port = created["listener"].getsockname()[1]
        self._forwarder = _Forwarder(created["listener"], self._target)
        self.create_seconds = time.monotonic() - began
        return self

    def env(self, aws_env: Mapping[str, str]) -> dict[str, str]:
        """``aws_env`` with every variable that named the endpoint pointing at the relay instead."""
        result = dict(aws_env)
        for key, value in aws_env.items():
            if key.startswith("AWS_") and value.rstrip("/") == self.endpoint_url:
                result[key] = self.url
        return result

    def popen(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` inside the namespace (started now if need be), in a new session (see ``kill_group``)."""
        self.start()
        libc = _libc()
        proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
            list(cmd),
            start_new_session=True,
            preexec_fn=functools.partial(_enter_netns, libc.setns, libc.prctl, self._ns_fd),  # noqa: PLW1509 - setns and prctl only
            **kwargs,
        )
        self._processes.append(proc)
        return proc

    def run(self, cmd: Sequence[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Like subprocess.run(capture_output=True, text=True) inside the namespace; on timeout the whole group is killed."""
        proc = self.popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            kill_group(proc)
            stdout, stderr = proc.communicate()
            raise subprocess.TimeoutExpired(proc.args, timeout, stdout, stderr) from exc
        finally:
            kill_group(proc)  # anything the command left behind in its group
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def probe(self, address: str) -> dict[str, Any]:
        """From inside: the interfaces, and whether a route to ``address`` exists (a UDP connect is only a route
        lookup: no packet is sent). ``{"interfaces": ["lo"], "route": False, "errno": 101, ...}`` when isolated."""
        proc = self.run([sys.executable, "-c", _PROBE_SCRIPT, address], timeout=30)
        if proc.returncode != 0:
            raise OfflineNetnsError(f"the probe failed in the namespace (exit {proc.returncode}): {proc.stderr[-2000:]}")
        return json.loads(proc.stdout)

    def close(self) -> None:
        for proc in self._processes:
            kill_group(proc)
        self._processes.clear()
        if self._forwarder is not None:
            self._forwarder.close()
            self._forwarder = None
        if self._ns_fd is not None:
            os.close(self._ns_fd)
            self._ns_fd = None

    def __enter__(self) -> OfflineNetns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


_PROBE_SCRIPT = """
import json, socket, sys
out = {"interfaces": [name for _index, name in socket.if_nameindex()]}
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
    try:
        udp.connect((sys.argv[1], 22))
        out["route"] = True
    except OSError as exc:
        out.update(route=False, errno=exc.errno, error=exc.strerror)
print(json.dumps(out))
"""


def kill_group(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM the process group of ``proc`` (a session leader we started), SIGKILL after ``grace``, reap."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)
    else:
        # The leader is reaped, but the group id cannot be reused while members remain: kill stragglers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


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
    """Every resource kind aws_leaks knows (fixtures included) -> ids, on the endpoint."""
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
    created: dict[str, list[str]] = field(default_factory=dict)  # kind -> ids new on the endpoint (aws_leaks kinds)
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
    ``created`` lists what appeared on the endpoint during the run (aws_leaks kinds).
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
