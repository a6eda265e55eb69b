"""The embedded AWS endpoint behind the recording proxy, as a background service: for molecule scenarios, whose
steps are separate ansible-playbook runs that cannot share a pytest fixture.

    PYTHONPATH=tests .venv/bin/python -m harness.recorded_aws start --state DIR [--relay-host ADDR]
    ... calls --state DIR [--clear] | leftovers --state DIR | stop --state DIR

``start`` runs ``serve`` detached (own session, output in DIR/service.log; one still running there is stopped first)
and returns once it is up; it prints DIR/service.json: its pid, the endpoint's and the proxy's URLs on 127.0.0.1 and,
with ``--relay-host`` (a podman network's gateway address), the URL of a relay there to the proxy, the only way the
network's hosts reach AWS (harness.netns.Forwarder, as in the pytest host tests). Every call through the proxy is
appended to DIR/calls.jsonl; ``calls`` prints them and the mutating ones (harness.proxy.READ_ONLY decides),
``--clear`` forgets them. ``leftovers`` prints what harness.leaks finds on the endpoint ({} is clean). ``stop`` ends the
service (moto dies with it) and is a no-op when it is not running. A service nobody stops ends by itself after
``--ttl`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from harness.aws import AwsContext
from harness.endpoint import DEFAULT_REGION, EmbeddedAWS
from harness.netns import Forwarder
from harness.paths import REPO
from harness.proxy import READ_ONLY, AWSProxy

SERVICE = "service.json"
CALLS = "calls.jsonl"
LOG = "service.log"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
DEFAULT_TTL = 2700  # test_molecule.py's limit for a whole scenario


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: object) -> None:
    raise _Stop


def _recorder(calls: Path) -> object:
    lock = threading.Lock()

    def record(service: str, action: str, _params: dict[str, str]) -> None:
        with lock, calls.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps([service, action]) + "\n")

    return record


def serve(state: Path, region: str, relay_host: str | None, ttl: float) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    service, calls = state / SERVICE, state / CALLS
    relay: Forwarder | None = None
    proxy: AWSProxy | None = None
    endpoint = EmbeddedAWS(region=region)
    try:
        endpoint.start()
        calls.write_text("")
        proxy = AWSProxy(endpoint.url)
        proxy.on_call = _recorder(calls)
        proxy.start()
        info = {"pid": os.getpid(), "region": region, "endpoint_url": endpoint.url, "proxy_url": proxy.url}
        if relay_host:
            relay = Forwarder(socket.create_server((relay_host, 0)), ("127.0.0.1", urlsplit(proxy.url).port))
            info["relay_url"] = f"http://{relay_host}:{relay._listener.getsockname()[1]}"  # noqa: SLF001 - its bound port
        partial = service.with_suffix(".partial")
        partial.write_text(json.dumps(info))
        partial.replace(service)  # whole or absent: `start` waits for it
        deadline = time.monotonic() + ttl
        while endpoint.running and time.monotonic() < deadline:
            time.sleep(0.5)
        if not endpoint.running:
            print(f"moto exited unexpectedly:\n{endpoint.log()[-20000:]}", file=sys.stderr)
            return 1
        print(f"no stop after {ttl:.0f} s: stopping", file=sys.stderr)
        return 0
    except _Stop:
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the shutdown short
        if relay is not None:
            relay.close()
        if proxy is not None:
            proxy.stop()
        endpoint.stop()
        service.unlink(missing_ok=True)


def _service(state: Path) -> dict | None:
    path = state / SERVICE
    return json.loads(path.read_text()) if path.exists() else None


def _ours(pid: int) -> bool:
    """``pid`` is a ``serve`` of this module (not a process that got its number since)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"harness.recorded_aws" in cmdline and b"serve" in cmdline


def start(state: Path, region: str, relay_host: str | None, ttl: float) -> int:
    state.mkdir(parents=True, exist_ok=True)
    stop(state, quiet=True)  # one left by a run that never got to its cleanup: it may relay an old network
    (state / SERVICE).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "harness.recorded_aws", "--region", region, "serve", "--state", str(state), "--ttl", str(ttl)]
    cmd += ["--relay-host", relay_host] if relay_host else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))}
    with (state / LOG).open("ab") as log:
        # Own session, no inherited pipes: the ansible task that starts it returns, and it lives on.
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while (info := _service(state)) is None:
        if child.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            print(f"the recorded endpoint did not start:\n{(state / LOG).read_text()[-5000:]}", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(json.dumps(info))
    return 0


def stop(state: Path, *, quiet: bool = False) -> int:
    info = _service(state)
    if info is None or not _ours(info["pid"]):
        if not quiet:
            print(json.dumps({"stopped": False}))
        return 0
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _ours(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _ours(info["pid"]):
        os.kill(info["pid"], signal.SIGKILL)  # moto dies with it (EmbeddedAWS: PR_SET_PDEATHSIG)
    if not quiet:
        print(json.dumps({"stopped": True}))
    return 0


def calls(state: Path, clear: bool) -> int:
    path = state / CALLS
    seen = [tuple(json.loads(line)) for line in path.read_text().splitlines()] if path.exists() else []
    if clear:
        path.write_text("")
    print(json.dumps({"calls": seen, "mutating": [call for call in seen if not READ_ONLY.search(call[1])]}))
    return 0


def leftovers(state: Path) -> int:
    info = _service(state)
    if info is None:
        print("the recorded endpoint is not running", file=sys.stderr)
        return 1
    endpoint = EmbeddedAWS(region=info["region"], port=urlsplit(info["endpoint_url"]).port)  # the running one: not started here
    print(json.dumps(AwsContext(endpoint).leftovers()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--region", default=DEFAULT_REGION)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "serve", "calls", "leftovers", "stop"):
        command = sub.add_parser(name)
        command.add_argument("--state", type=Path, required=True, help="the service's directory (service.json, calls.jsonl, service.log)")
        if name in ("start", "serve"):
            command.add_argument("--relay-host", help="also relay this address (a podman network's gateway) to the proxy")
            command.add_argument("--ttl", type=float, default=DEFAULT_TTL, help="stop after this many seconds at the latest")
        if name == "calls":
            command.add_argument("--clear", action="store_true", help="then forget them")
    args = parser.parse_args(argv)
    state = args.state.resolve()
    if args.command == "serve":
        return serve(state, args.region, args.relay_host, args.ttl)
    if args.command == "start":
        return start(state, args.region, args.relay_host, args.ttl)
    if args.command == "calls":
        return calls(state, args.clear)
    if args.command == "leftovers":
        return leftovers(state)
    return stop(state)


if __name__ == "__main__":
    sys.exit(main())
