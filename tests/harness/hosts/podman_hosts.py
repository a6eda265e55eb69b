"""Podman test hosts for the role tests: Debian 12 containers with systemd and sshd on a private podman network.

``PodmanLab`` creates a network and hosts from ``localhost/toil-cluster-test:bookworm`` (built by
``build-image.sh``), each reachable over real SSH as ``admin`` (passwordless sudo) with a throwaway key,
privileged with a volume for ``/var/lib/containerd`` (so containerd's overlays work). ``close()`` removes
every container, volume and network it made and ends ansible's ssh control masters, also after a failure.
Podman reads ``containers.conf`` here (CONTAINERS_CONF), never /etc/containers.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGE = "localhost/toil-cluster-test:bookworm"
CONTAINERS_CONF = HERE / "containers.conf"


# pytest sets this before each test (tests/integration/conftest.py): only tests marked ``hosts`` may start hosts,
# because the marker is what keeps them one at a time (pytest-xdist group) and out of `make check`.
hosts_allowed: str | None = None  # None: allowed (outside pytest); else the message for a test that may not


def _check_allowed() -> None:
    if hosts_allowed is not None:
        raise RuntimeError(hosts_allowed)


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _short_dir(directory: Path) -> Path:
    digest = hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tcl-cp-{digest}"


def control_path_dir(directory: Path) -> str:
    """``ANSIBLE_SSH_CONTROL_PATH_DIR`` for ansible's ssh masters, to be found through ``directory``.

    ssh's socket names must fit in 107 bytes (sun_path); pytest's temp paths under pytest-xdist
    (``.../pytest-N/popen-gw0/...``) leave too little room, and ansible resolves symlinks in this setting. So the
    masters live in a short directory, ``<tmp>/tcl-cp-<hash of directory>``, and ``directory`` becomes a symlink to
    it. ``end_ssh_masters(directory)`` ends them and removes both."""
    short = _short_dir(directory)
    short.mkdir(mode=0o700, exist_ok=True)
    directory = Path(directory)
    if not directory.exists() and not directory.is_symlink():
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.symlink_to(short, target_is_directory=True)
    return str(short)


def end_ssh_masters(directory: Path) -> None:
    """End the ssh masters ansible keeps for ``directory`` (see ``control_path_dir``) and remove their directory."""
    directory, short = Path(directory), _short_dir(directory)
    where = short if short.is_dir() else directory  # a directory given to ansible as it is, too
    for sock in where.glob("*") if where.is_dir() else []:
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "placeholder"], capture_output=True, check=False, timeout=10)
    if where == short:
        shutil.rmtree(short, ignore_errors=True)
        if directory.is_symlink():
            directory.unlink()


def require_podman() -> None:
    """Fail clearly when podman is not installed (before a test makes anything it would then have to undo)."""
    if not have_podman():
        raise RuntimeError("podman is missing: run `make setup` (it installs the test hosts' Debian packages)")


def build_image() -> None:
    """Build the test-host image if it is missing or out of date (a no-op otherwise); podman must be installed."""
    _check_allowed()
    require_podman()
    subprocess.run([str(HERE / "build-image.sh")], env=podman_env(), check=True, capture_output=True, text=True, timeout=900)


@dataclass
class Host:
    name: str
    container: str
    address: str
    hostvars: dict = field(default_factory=dict)

    def sh(self, script: str, check: bool = True) -> str:
        """Run a shell script inside the host (through podman, not ssh) and return its stdout."""
        return podman("exec", self.container, "bash", "-c", script, check=check).stdout

    def read(self, path: str) -> str:
        return self.sh(f"cat {path}")


class PodmanLab:
    def __init__(self, workdir: Path, mounts: Sequence[tuple[str, str]] = ()) -> None:
        _check_allowed()
        self.workdir = workdir
        self.mounts = list(mounts)
        self.prefix = f"tcl-{os.getpid()}-{secrets.token_hex(3)}"
        self.network = f"{self.prefix}-net"
        self.hosts: dict[str, Host] = {}
        self.key = workdir / "id_ed25519"
        self._network_created = False
        self._internal_networks: list[str] = []
        workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "toil.cluster test", "-f", str(self.key)], check=True)
        self.key.with_suffix(".pub").chmod(0o644)

    # ------------------------------------------------------------------ lifecycle
    def start(self, names: Sequence[str], hostvars: Mapping[str, dict] | None = None) -> dict[str, Host]:
        if not self._network_created:
            podman("network", "create", self.network)
            self._network_created = True
        for name in names:
            container = f"{self.prefix}-{name}"
            args = ["run", "-d", "--name", container, "--hostname", name, "--network", self.network]
            args += ["--privileged", "--systemd=always", "-v", "/var/lib/containerd"]
            args += ["-v", f"{self.key.with_suffix('.pub')}:/etc/ssh/test_authorized_keys:ro"]
            for src, dest in self.mounts:
                args += ["-v", f"{src}:{dest}:ro"]
            self.hosts[name] = Host(name, container, "", dict((hostvars or {}).get(name, {})))
            podman(*args, IMAGE)
        for host in self.hosts.values():
            if not host.address:
                data = json.loads(podman("inspect", host.container).stdout)[0]
                host.address = data["NetworkSettings"]["Networks"][self.network]["IPAddress"]
        for host in self.hosts.values():
            self._wait_for_ssh(host)
        return self.hosts

    def start_private(self, name: str, leader: Host) -> Host:
        """``name`` on an internal network of its own, which only ``leader`` also joins: no address of it is on a
        bridge of this machine (netavark gives an internal network's bridge no IPv4 address), so ssh reaches it
        only through the leader. Waits for its sshd through the leader."""
        network = f"{self.prefix}-private"
        podman("network", "create", "--internal", network)
        self._internal_networks.append(network)
        podman("network", "connect", network, leader.container)
        container = f"{self.prefix}-{name}"
        args = ["run", "-d", "--name", container, "--hostname", name, "--network", network, "--privileged", "--systemd=always"]
        args += ["-v", f"{self.key.with_suffix('.pub')}:/etc/ssh/test_authorized_keys:ro"]
        host = self.hosts[name] = Host(name, container, "")
        podman(*args, IMAGE)
        host.address = json.loads(podman("inspect", container).stdout)[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
        jump = " ".join([*self._ssh_base(), "-W", "%h:%p", f"admin@{leader.address}"])
        self._wait_for_ssh(host, options=("-o", f"ProxyCommand={jump}"))
        return host

    def _ssh_base(self) -> list[str]:
        options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "BatchMode=yes", "ConnectTimeout=3"]
        return ["ssh", "-i", str(self.key), *(arg for option in options for arg in ("-o", option))]

    def ssh_command(self, host: Host, *args: str) -> list[str]:
        """The command line of an ssh to ``host`` as admin with the lab's key, ``args`` (options) before the
        destination."""
        return [*self._ssh_base(), *args, f"admin@{host.address}"]

    def _wait_for_ssh(self, host: Host, timeout: float = 60, options: Sequence[str] = ()) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = subprocess.run(
                [*self._ssh_base(), *options, f"admin@{host.address}", "sudo -n true"], capture_output=True, text=True, check=False, timeout=30
            )
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                logs = podman("logs", host.container, check=False).stdout[-3000:]
                raise RuntimeError(f"{host.name} ({host.address}) did not answer ssh: {proc.stderr.strip()}\n{logs}")
            time.sleep(0.5)

    def close(self, control_dirs: Sequence[Path] = ()) -> list[str]:
        """Remove everything this lab made; return the errors (empty when all went)."""
        errors = []
        for directory in control_dirs:  # ansible's ControlPersist masters
            end_ssh_masters(directory)
        for host in self.hosts.values():
            proc = podman("rm", "-f", "-v", "-t", "3", host.container, check=False)
            if proc.returncode != 0 and "no such container" not in proc.stderr.lower():
                errors.append(f"podman rm {host.container}: {proc.stderr.strip()}")
        for network in ([self.network] if self._network_created else []) + self._internal_networks:
            proc = podman("network", "rm", "-f", network, check=False)
            if proc.returncode != 0:
                errors.append(f"podman network rm {network}: {proc.stderr.strip()}")
        left = podman("ps", "-a", "--filter", f"name={self.prefix}", "--format", "{{.Names}}", check=False).stdout.split()
        if left:
            errors.append(f"containers left: {left}")
        return errors

    # ------------------------------------------------------------------ ansible
    def inventory(self, groups: Mapping[str, Sequence[str]]) -> Path:
        """A YAML (JSON) inventory: ssh as admin with the lab key; host variables from ``start``."""
        hosts = {
            h.name: {"ansible_host": h.address, **h.hostvars}
            for h in self.hosts.values()
        }  # fmt: skip
        inventory = {
            "all": {
                "vars": {
                    "ansible_connection": "ssh",
                    "ansible_user": "admin",
                    "ansible_become": True,
                    "ansible_ssh_private_key_file": str(self.key),
                    "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "ansible_pipelining": True,
                },
                "children": {group: {"hosts": {name: hosts[name] for name in names}} for group, names in groups.items()},
            }
        }
        path = self.workdir / "inventory.yml"
        path.write_text(json.dumps(inventory, indent=2))
        return path


def have_podman() -> bool:
    return shutil.which("podman") is not None
