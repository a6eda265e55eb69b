"""The one entry point for the embedded AWS endpoint: moto in server mode on 127.0.0.1.

Library use (pytest puts ``tests/`` on ``sys.path``: pyproject.toml's ``pythonpath``)::

    from harness.endpoint import EmbeddedAWS

    with EmbeddedAWS(region="us-west-2") as aws:
        ec2 = aws.boto3_client("ec2")
        subprocess.run(cmd, env=aws.env(), check=True)  # full environment, real credentials removed
        aws.reset()  # empty every moto backend

Command line::

    PYTHONPATH=tests .venv/bin/python -m harness.endpoint serve           # print `export`/`unset` lines, run until SIGINT/SIGTERM
    PYTHONPATH=tests .venv/bin/python -m harness.endpoint run -- CMD ...  # run CMD against the endpoint, exit with CMD's code

(``make demo`` runs the second with tools/demo.sh.)

moto runs as a child process in its own process group, on a free port of 127.0.0.1 only; on Linux it
also gets PR_SET_PDEATHSIG so it dies with the thread that started it. Its output goes to an anonymous,
already unlinked temp file: nothing is written to disk under any name, even after a SIGKILL.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import functools
import gzip
import hashlib
import importlib.util
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from harness.paths import VENV_BIN

HOST = "127.0.0.1"
DEFAULT_REGION = "us-west-2"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
# moto's fixed account id (the fake credentials above map to it).
ACCOUNT_ID = "123456789012"

# Inherited variables that must never reach anything talking to the endpoint: they could select a real
# profile, real credentials, a real endpoint or a role to assume. Every variable with one of these
# prefixes is dropped (amazon.aws still honours the old EC2_*/S3_* names), plus the exact names below.
_STRIPPED_PREFIXES = ("AWS_", "EC2_", "S3_")
_STRIPPED_NAMES = ("BOTO_CONFIG", "BOTO_PATH")
# Printed as `unset` by the `serve` command, for a shell that sources its output.
UNSET_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CA_BUNDLE",
    "EC2_URL",
    "EC2_ACCESS_KEY",
    "EC2_SECRET_KEY",
    "EC2_SECURITY_TOKEN",
    "EC2_REGION",
    "S3_URL",
)

_START_ATTEMPTS = 5  # fresh ports tried when the chosen one was taken in the meantime

# moto's GetConsoleOutput answers every instance with one canned kernel log. moto runs through this bootstrap, which
# lets a test give an instance the console output its stand-in host would print (set_console_output: a PUT to
# /_harness/console/<id>, kept in moto's memory only and emptied by a reset), so that host keys are read the way
# they are on EC2: base64 in Output, no Output at all while nothing is written.
# moto refuses a PutBucketEncryption rule without ApplyServerSideEncryptionByDefault (MalformedXML). S3 takes a rule
# that only sets BlockedEncryptionTypes (the 2025 SSE-C setting; Toil 9.6 sends one for every job store it makes, to
# unblock SSE-C) and keeps the bucket's SSE-S3 default, which every bucket has had since 2023: so does the bootstrap.
# moto's CreateFleet drops the launch template's security groups, instance profile, IMDS options and root volume,
# ignores the allocation strategy and never reports capacity errors (docs/testing.md, "EC2 Fleet"). An instant fleet
# (the only kind this collection makes) is answered here as EC2 documents it: each (template x override) is a capacity
# pool; on-demand ``prioritized`` takes the pools by Priority, every other strategy in the request's order (the endpoint
# has no prices); a pool launches what it can with everything the template and the override say (RunInstances with the
# template: its groups, key, user data, block devices; IMDS options, instance profile and spot market as EC2 applies
# them); a pool without capacity is one ``Errors`` entry (Lifecycle, ErrorCode, ErrorMessage, the template and
# override) and the fleet moves on to the next pool; the call succeeds with whatever was launched. Which pools have
# no (or little) capacity is the recording proxy's to say (harness.proxy.AWSProxy.no_capacity), per request, in the
# X-Harness-Capacity header: [[instance type, subnet or null, error code, instances it can still launch], ...].
# moto's DescribeLaunchTemplates shows a template's tags as they were at its creation; EC2 shows them as they are
# (CreateTags on a template): the bootstrap reads them from moto's tag store each time.
# Anything else is moto's own.
_MOTO_BOOTSTRAP = """
import sys
import xmltodict
from moto import server
from moto.s3.responses import S3Response
from moto.core.responses import ActionResult
from moto.core.types import Base64EncodedString
from moto.core.utils import utcnow
from moto.ec2.responses import general
from moto.ec2.responses.fleets import Fleets
from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.utils import convert_tag_spec, random_fleet_id
import json
from moto.moto_server import werkzeug_app

consoles = {}
dispatch = werkzeug_app.DomainDispatcherApplication.__call__
canned = general.General.get_console_output
moto_create_fleet = Fleets.create_fleet

def call(self, environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/_harness/console/") and environ["REQUEST_METHOD"] == "PUT":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        consoles[path.rsplit("/", 1)[1]] = environ["wsgi.input"].read(length).decode("utf-8")
        start_response("204 No Content", [])
        return [b""]
    if path == "/moto-api/reset":
        consoles.clear()
    return dispatch(self, environ, start_response)

def get_console_output(self):
    instance_id = self._get_param("InstanceId")
    text = consoles.get(instance_id, consoles.get("*"))
    if text is None:
        return canned(self)
    result = {"InstanceId": self.ec2_backend.get_instance(instance_id).id, "Timestamp": utcnow()}
    if text:
        result["Output"] = Base64EncodedString.from_raw_string(text)
    return ActionResult(result)

strict_encryption = S3Response._encryption_config_from_body

def encryption_config_from_body(self):
    config = xmltodict.parse(self.body).get("ServerSideEncryptionConfiguration") or {}
    rule = config.get("Rule")
    if isinstance(rule, dict) and rule.get("BlockedEncryptionTypes") and not rule.get("ApplyServerSideEncryptionByDefault"):
        return {**config, "Rule": {**rule, "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}}
    return strict_encryption(self)

def _number(value, kind=int):
    return None if value is None else kind(value)

def _block_devices(mappings):
    devices = []
    for mapping in mappings or ():
        ebs = mapping.get("Ebs") or {}
        devices.append({"DeviceName": mapping["DeviceName"], "Ebs": {
            "VolumeSize": _number(ebs.get("VolumeSize")), "VolumeType": ebs.get("VolumeType"),
            "Encrypted": str(ebs.get("Encrypted")).lower() == "true",
            "DeleteOnTermination": str(ebs.get("DeleteOnTermination")).lower() == "true", "SnapshotId": ebs.get("SnapshotId"),
            "KmsKeyId": ebs.get("KmsKeyId")}})
    return devices

def _pool_capacity(limits, instance_type, subnet_id):
    for limit_type, limit_subnet, code, left in limits:
        if limit_type == instance_type and limit_subnet in (None, subnet_id):
            return code, left
    return None, None

def create_fleet(self):
    if self._get_param("Type") != "instant":
        return moto_create_fleet(self)
    self.error_on_dryrun()
    target = self._get_param("TargetCapacitySpecification", {})
    market = target.get("DefaultTargetCapacityType") or "on-demand"
    wanted = int(target.get("TotalTargetCapacity") or 0)
    options = self._get_param("OnDemandOptions" if market == "on-demand" else "SpotOptions", {}) or {}
    tags = convert_tag_spec(self._get_param("TagSpecifications", []))
    limits = json.loads(self.headers.get("X-Harness-Capacity") or "[]")
    pools = []
    for config in self._get_param("LaunchTemplateConfigs", []):
        asked = config["LaunchTemplateSpecification"]
        template = self.ec2_backend._get_template_from_args(asked)
        for override in config.get("Overrides") or [{}]:
            pools.append((template, override))
    if market == "on-demand" and options.get("AllocationStrategy") == "prioritized":
        pools.sort(key=lambda pool: float(pool[1].get("Priority", "inf")))
    launched, errors = [], []
    for template, override in pools:
        count = wanted - sum(len(entry["InstanceIds"]) for entry in launched)
        if count <= 0:
            break
        data = {**template.data, **override}
        chosen = {"LaunchTemplateSpecification": {"LaunchTemplateId": template.template.id, "LaunchTemplateName": template.template.name,
                                                  "Version": str(template.number)},
                  "Overrides": {k: v for k, v in override.items() if k in ("InstanceType", "SubnetId", "ImageId", "MaxPrice")}}
        code, left = _pool_capacity(limits, data.get("InstanceType"), data.get("SubnetId"))
        if code is not None and left < count:
            errors.append({"LaunchTemplateAndOverrides": chosen, "Lifecycle": market, "ErrorCode": code,
                           "ErrorMessage": "There is no Spot capacity available that matches your request." if market == "spot"
                           else f"We currently do not have sufficient {data.get('InstanceType')} capacity in the Availability Zone you requested."})
            count = left
            if count <= 0:
                continue
        kwargs = {"instance_type": data["InstanceType"], "is_instance_type_default": False, "region_name": self.region,
                  "subnet_id": data.get("SubnetId"), "key_name": data.get("KeyName"), "security_group_ids": list(data.get("SecurityGroupIds") or []),
                  "tags": tags, "metadata_options": data.get("MetadataOptions") or {}, "instance_market_options": "spot" if market == "spot" else {},
                  "launch_template": {"LaunchTemplateId": template.template.id, "Version": str(template.number)}, "placement": None,
                  "client_token": self._get_param("ClientToken"), "associate_public_ip": None}  # None: the subnet's MapPublicIpOnLaunch
        if data.get("BlockDeviceMappings"):
            kwargs["block_device_mappings"] = _block_devices(data["BlockDeviceMappings"])
        reservation = self.ec2_backend.run_instances(data["ImageId"], count, data.get("UserData"), [], **kwargs)
        profile = (data.get("IamInstanceProfile") or {}).get("Arn")
        for instance in reservation.instances:
            if profile:
                self.ec2_backend.associate_iam_instance_profile(instance_id=instance.id, iam_instance_profile_arn=profile)
        launched.append({"LaunchTemplateAndOverrides": chosen, "Lifecycle": market, "InstanceIds": [i.id for i in reservation.instances],
                         "InstanceType": data["InstanceType"], "SubnetId": data.get("SubnetId")})
    return ActionResult({"FleetId": random_fleet_id(), "Instances": launched, "Errors": errors})

werkzeug_app.DomainDispatcherApplication.__call__ = call
Fleets.create_fleet = create_fleet
LaunchTemplate.tags = property(lambda self: self.get_tags(), lambda self, _snapshot: None)
general.General.get_console_output = get_console_output
S3Response._encryption_config_from_body = encryption_config_from_body
server.main(sys.argv[1:])
"""
_LIVE: weakref.WeakSet[EmbeddedAWS] = weakref.WeakSet()


class EmbeddedAWSError(RuntimeError):
    """moto could not be started (the message carries its log)."""


def clean_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Copy of ``base`` (default: os.environ) without any variable that could point at real AWS."""
    base = os.environ if base is None else base
    return {k: v for k, v in base.items() if not (k.startswith(_STRIPPED_PREFIXES) or k in _STRIPPED_NAMES)}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _default_python() -> str:
    """This interpreter if it has moto, otherwise the repository's .venv (where `make setup` puts it)."""
    if importlib.util.find_spec("moto") is not None:
        return sys.executable
    venv_python = VENV_BIN / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def _load_prctl() -> Any:
    """libc's prctl on Linux, resolved in the parent (the child must not import or dlopen after fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent(parent_pid: int, prctl: Any) -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the child when the thread that forked it dies (best effort)."""
    if prctl is not None:
        pr_set_pdeathsig = 1
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


DEBIAN_AMIS = Path(__file__).with_name("debian_amis.json")
DEBIAN_OWNER_ID = "136693071363"


def ami_catalogue(python: str) -> str:
    """moto's own AMIs plus official-looking Debian 12 ones (tests/harness/debian_amis.json), as a MOTO_AMIS_PATH file.

    Real regions hold Debian's images (owner 136693071363), which moto lacks; the collection's default
    leader image is the newest of them. The file is named by its content, so it is written once, in the
    virtual environment that runs moto.
    """
    script = "import gzip, json, moto, os; print(os.path.join(os.path.dirname(moto.__file__), 'ec2', 'resources', 'amis.json.gz'))"
    default = subprocess.run([python, "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    with gzip.open(default, "rt", encoding="utf-8") as handle:
        amis = json.load(handle)
    for seed in json.loads(DEBIAN_AMIS.read_text(encoding="utf-8")):
        amis.append(
            {
                "state": "available",
                "public": True,
                "owner_id": DEBIAN_OWNER_ID,
                "root_device_type": "ebs",
                "root_device_name": "/dev/xvda",
                "image_type": "machine",
                "virtualization_type": "hvm",
                "hypervisor": "xen",
                "description": f"Debian 12 ({seed['name']})",
                **seed,
            }
        )
    text = json.dumps(amis, sort_keys=True)
    # Kept in the environment that runs moto (.venv), where it is reused, rather than in a temp directory.
    home = Path(os.path.abspath(python)).parent.parent
    directory = home if os.access(home, os.W_OK) else Path(tempfile.gettempdir())
    path = directory / f"toil-cluster-moto-amis-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    return str(path)


class EmbeddedAWS:
    """moto in server mode on a free port of 127.0.0.1, as a child process.

    ``start()`` is called by ``__enter__``; ``stop()`` is idempotent and also runs at interpreter exit.
    ``extra_env`` is passed to moto only (e.g. ``{"MOTO_ENABLE_AMI_VALIDATION": "true"}``); inherited
    ``MOTO_*`` variables are not, so every run behaves the same.
    """

    def __init__(
        self,
        region: str = DEFAULT_REGION,
        *,
        python: str | None = None,
        port: int | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.region = region
        self.python = python or _default_python()
        self.port: int | None = port
        self._fixed_port = port is not None
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.extra_env = dict(extra_env or {})
        self.process: subprocess.Popen[bytes] | None = None
        # moto's output goes to an anonymous temp file (already unlinked): nothing is left on disk even
        # if this process is SIGKILLed. It is read with pread, which leaves moto's write offset alone.
        self._log_file: IO[bytes] | None = None
        self.startup_seconds: float | None = None
        self._shared_session: Any = None
        self._session_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self.port is None:
            raise EmbeddedAWSError("the endpoint is not started")
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> EmbeddedAWS:
        if self.running:
            return self
        began = time.monotonic()
        _LIVE.add(self)
        try:
            last_error: EmbeddedAWSError | None = None
            for _attempt in range(1 if self._fixed_port else _START_ATTEMPTS):
                if not self._fixed_port:
                    self.port = _free_port()
                self._close_log()
                self._log_file = tempfile.TemporaryFile(prefix="embedded-aws-")  # noqa: SIM115 - closed by stop()
                try:
                    self._spawn_and_wait()
                    break
                except _PortTaken as exc:
                    last_error = EmbeddedAWSError(str(exc))
            else:
                raise last_error or EmbeddedAWSError("moto did not start")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _spawn_and_wait(self) -> None:
        assert self._log_file is not None and self.port is not None
        env = {k: v for k, v in clean_environ().items() if not k.startswith("MOTO_") and k != "TEST_SERVER_MODE"}
        env.update(self._credentials_env(), MOTO_PORT=str(self.port), PYTHONUNBUFFERED="1")
        env.setdefault("MOTO_AMIS_PATH", ami_catalogue(self.python))
        env.update(self.extra_env)
        cmd = [self.python, "-c", _MOTO_BOOTSTRAP, "-H", HOST, "-p", str(self.port)]
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd="/",
            start_new_session=True,  # own process group: stop() signals the whole group
            preexec_fn=functools.partial(_die_with_parent, os.getpid(), _load_prctl()),  # noqa: PLW1509 - only prctl, no locks taken
        )
        banner = f"Running on http://{HOST}:{self.port}".encode()
        deadline = time.monotonic() + self.start_timeout
        while True:
            rc = self.process.poll()
            if rc is not None:
                log_text = self.log()
                self._reap()
                if "Address already in use" in log_text and not self._fixed_port:
                    raise _PortTaken(f"port {self.port} was taken before moto could bind it:\n{log_text}")
                raise EmbeddedAWSError(f"moto exited with code {rc} while starting ({' '.join(cmd)}):\n{log_text}")
            # Our own process has bound the port (its banner), and the port answers like moto.
            if banner in self._read_log() and self._answers():
                return
            if time.monotonic() > deadline:
                log_text = self.log()
                self._terminate()
                raise EmbeddedAWSError(f"moto did not answer on {self.url} within {self.start_timeout:.0f} s:\n{log_text}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """Terminate moto (SIGTERM to its group, SIGKILL after stop_timeout), reap it, remove the temp dir."""
        try:
            self._terminate()
        finally:
            self._close_log()
            _LIVE.discard(self)

    def _terminate(self) -> None:
        proc = self.process
        if proc is None:
            return
        try:
            if proc.poll() is None:
                # Not yet reaped, so the pid (and group id, it is the leader) cannot have been reused.
                self._signal_group(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    proc.wait(timeout=self.stop_timeout)
            else:
                # moto is gone; make sure nothing it started survives in its group.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        finally:
            self._reap()

    def _signal_group(self, sig: int) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)

    def _reap(self) -> None:
        if self.process is not None:
            with contextlib.suppress(Exception):
                self.process.wait(timeout=self.stop_timeout)
        self.process = None

    def __enter__(self) -> EmbeddedAWS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort; stop() is the real API
        with contextlib.suppress(Exception):
            self.stop()

    def log(self) -> str:
        """moto's output so far (werkzeug banner and one line per request)."""
        return self._read_log().decode(errors="replace")

    def _read_log(self) -> bytes:
        if self._log_file is None:
            return b""
        fd = self._log_file.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0)

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # ------------------------------------------------------------------ using it
    def _credentials_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "BOTO_CONFIG": os.devnull,
        }

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A complete environment for a child process that must use the endpoint and nothing else.

        ``base`` (default os.environ) minus every AWS_*/EC2_*/S3_* variable (so AWS_PROFILE,
        AWS_SESSION_TOKEN, role or container credentials are gone), plus AWS_ENDPOINT_URL and AWS_URL
        (the name amazon.aws reads), the fake credentials, AWS_DEFAULT_REGION/AWS_REGION, and
        AWS_CONFIG_FILE/AWS_SHARED_CREDENTIALS_FILE pointing at /dev/null. ``env({})`` gives only the
        variables to set.
        """
        result = clean_environ(base)
        result.update(self._credentials_env())
        result["AWS_ENDPOINT_URL"] = self.url
        result["AWS_URL"] = self.url
        return result

    def reset(self) -> None:
        """Empty every moto backend (POST /moto-api/reset)."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status != 200:
                raise EmbeddedAWSError(f"moto reset answered HTTP {resp.status}")

    def set_console_output(self, instance_id: str, text: str) -> None:
        """What GetConsoleOutput answers for ``instance_id`` from now on ("" = nothing written yet), until a reset;
        ``"*"`` sets the answer for every instance not set one by one."""
        req = urllib.request.Request(f"{self.url}/_harness/console/{instance_id}", method="PUT", data=text.encode("utf-8"))
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status != 204:
                raise EmbeddedAWSError(f"setting the console output answered HTTP {resp.status}")

    def boto3_session(self, region: str | None = None) -> Any:
        """A boto3 Session bound to the fake credentials that ignores AWS_PROFILE and ~/.aws entirely."""
        import boto3  # noqa: PLC0415 - the CLI does not need boto3
        import botocore.session  # noqa: PLC0415

        core = botocore.session.Session(
            session_vars={
                "profile": (None, None, None, None),
                "config_file": (None, None, os.devnull, None),
                "credentials_file": (None, None, os.devnull, None),
            }
        )
        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            aws_session_token=None,
            region_name=region or self.region,
            botocore_session=core,
        )

    def boto3_client(self, service: str, region: str | None = None, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` on the endpoint (``kwargs`` go to ``Session.client``, e.g. ``config``).

        Clients come from one shared session, so service models are loaded once (a fresh session costs
        about 0.15 s per client, a shared one under 0.01 s); the region is always passed explicitly.
        """
        with self._session_lock:
            if self._shared_session is None:
                self._shared_session = self.boto3_session()
            return self._shared_session.client(service, region_name=region or self.region, endpoint_url=self.url, **kwargs)

    client = boto3_client


class _PortTaken(Exception):
    pass


@atexit.register
def _stop_all() -> None:
    for endpoint in list(_LIVE):
        with contextlib.suppress(Exception):
            endpoint.stop()


# ---------------------------------------------------------------------- command line
class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signum)


def _ignore_signals() -> None:
    """While the endpoint shuts down: a second Ctrl-C must not interrupt stop() half-way."""
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _serve(endpoint: EmbeddedAWS) -> int:
    for sig in _SIGNALS:
        signal.signal(sig, _raise_stop)
    try:
        with endpoint:
            try:
                print(f"unset {' '.join(UNSET_VARS)}")
                for key, value in sorted(endpoint.env({}).items()):
                    print(f"export {key}={shlex.quote(value)}")
                print(f"# moto pid {endpoint.pid}; stop with Ctrl-C or kill {os.getpid()}", flush=True)
                while endpoint.running:
                    time.sleep(0.5)
                print(f"moto exited unexpectedly:\n{endpoint.log()[-20000:]}", file=sys.stderr)
                return 1
            finally:
                _ignore_signals()
    except _Stop:
        return 0


def _run(endpoint: EmbeddedAWS, cmd: Sequence[str]) -> int:
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        if child is None:
            raise _Stop(signum)
        # Ctrl-C in a terminal already reached the child (same foreground group); SIGTERM/SIGHUP did not.
        if signum != signal.SIGINT:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    for sig in _SIGNALS:
        signal.signal(sig, forward)
    try:
        with endpoint:
            try:
                child = subprocess.Popen(list(cmd), env=endpoint.env())
                rc = child.wait()
            except OSError as exc:
                print(f"harness.endpoint: cannot run {cmd[0]!r}: {exc}", file=sys.stderr)
                return 127
            finally:
                _ignore_signals()
    except _Stop as stop:
        return 128 + stop.signum
    except EmbeddedAWSError as exc:
        print(f"harness.endpoint: {exc}", file=sys.stderr)
        return 1
    return 128 - rc if rc < 0 else rc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--region", default=DEFAULT_REGION, help=f"region for AWS_REGION/AWS_DEFAULT_REGION (default {DEFAULT_REGION})")
    parser.add_argument("--port", type=int, default=None, help="fixed port on 127.0.0.1 (default: a free one)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="start moto, print the environment as export lines, run until SIGINT/SIGTERM")
    run = sub.add_parser("run", help="run a command against the endpoint, exit with its code: run -- CMD ARGS...")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command (after --)")
    args = parser.parse_args(argv)
    endpoint = EmbeddedAWS(region=args.region, port=args.port)
    if args.command == "serve":
        try:
            return _serve(endpoint)
        except EmbeddedAWSError as exc:
            print(f"harness.endpoint: {exc}", file=sys.stderr)
            return 1
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("run needs a command: run -- CMD ARGS...")
    return _run(endpoint, cmd)


if __name__ == "__main__":
    sys.exit(main())
