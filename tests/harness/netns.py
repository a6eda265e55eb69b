"""A loopback-only network namespace for processes that must reach the embedded endpoint and nothing else.

moto hands out real internet addresses (54.x public IPs), and ``toil launch-cluster`` waits for SSH on the
leader's public address. Processes that might connect to them (the real Toil, ``make demo``'s script) run in an
``OfflineNetns``: a fresh, anonymous network namespace holding only a loopback interface (no other interface, no
route, so any connection to 54.x fails at once with ENETUNREACH, and DNS and EC2 metadata are unreachable too).
Inside it, ``127.0.0.1:<port>`` is a listening socket owned by this process; each connection to it is forwarded
(``Forwarder``), from this process's own namespace, to the endpoint on 127.0.0.1. The endpoint is the only thing
they can reach.

The namespace is created with unshare(CLONE_NEWNET) in a short-lived thread and held only by a file descriptor
and that socket: it has no name, so parallel runs cannot clash, and the kernel frees it as soon as this process
closes them or dies, even on SIGKILL. There is no veth, route or name to clean up. Creating it needs root
(CAP_SYS_ADMIN); without it ``OfflineNetnsError`` says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sh22x"  # struct ifreq: name, flags, padding to 40 bytes


class OfflineNetnsError(RuntimeError):
    """The network namespace could not be created (not root, or namespaces not allowed)."""


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _enter_netns(setns: Any, prctl: Any, ns_fd: int) -> None:  # pragma: no cover - runs in the child between fork and exec
    """preexec_fn: join the namespace (or never exec) and die with the thread that started us."""
    if setns(ns_fd, _CLONE_NEWNET) != 0:
        os._exit(126)
    pr_set_pdeathsig = 1
    prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)


class Forwarder:
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
        self._forwarder: Forwarder | None = None
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
        self._forwarder = Forwarder(created["listener"], self._target)
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
