"""Fixtures for the integration tests: one embedded AWS endpoint (moto on 127.0.0.1) per session.

- ``aws_endpoint`` (session): the started EmbeddedAWS.
- ``aws`` (function): resets the endpoint, yields an AwsContext (``.env``, ``.client(service)``,
  ``.region``, ``.url``, ``.add_cleanup(...)``, ``.leftovers()``), and at teardown runs the cleanups and
  fails the test if anything is left (see harness.leaks; key pairs and IAM users are fixtures and
  are not counted).
- ``run_playbook`` (function, uses ``aws``): runs ansible-playbook against the endpoint and returns a
  PlaybookResult (``.rc``, ``.json``, ``.task(name)``, ``.stats``).
- ``aws_calls`` (function): a recording proxy in front of the endpoint (harness.proxy).
- ``key_pair`` (function): a real ed25519 key imported as ``toil-test-key``.
- ``enforcing_endpoint`` (function): a separate endpoint that enforces IAM (harness.iam_enforcement).

Everything they use lives in tests/harness/ (importable as ``harness``: pyproject.toml's pytest ``pythonpath``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from harness import iam_enforcement
from harness.aws import AwsContext
from harness.endpoint import EmbeddedAWS, EmbeddedAWSError
from harness.hosts import podman_hosts
from harness.kube_api import KubeApi, make_certificates
from harness.leaks import format_leftovers
from harness.playbooks import PlaybookResult, run_ansible_playbook
from harness.proxy import AWSProxy


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist's ``--dist loadgroup`` (make test, make check), the tests on podman hosts (marker ``hosts``)
    form two lanes (``HOST_LANES``), each one group that one worker runs test after test; xdist hands out the biggest
    groups first, so each worker starts with a lane and then takes the other tests one by one as it gets free. Each
    worker has its own endpoint (``aws_endpoint``, a free port); host names carry a per-process prefix."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("hosts"):
            module = item.module.__name__.rpartition(".")[2] if item.module else ""
            scenario = getattr(item, "callspec", None) and item.callspec.params.get("scenario")
            lane = HOST_LANES.get(f"{module}[{scenario}]", HOST_LANES.get(module, "hosts-2"))
            item.add_marker(pytest.mark.xdist_group(lane))
            _join_xdist_group(item, lane)


# The podman-host scenarios in two lanes of about the same length (the modules' times in a clean-clone run): the
# kubernetes role's three hosts and configure_cluster's cluster in one, the single-host roles and playbooks (the
# default) in the other. One lane alone was the integration stage's critical path, the other worker idle for minutes.
HOST_LANES = {
    "test_playbook_configure_cluster": "hosts-1",
    "test_spot_interruptions": "hosts-2",
    "test_private_worker_jump": "hosts-2",
    # molecule scenarios (test_molecule.py), by name
    "test_molecule[kubernetes]": "hosts-1",
    "test_molecule[kubernetes_nvidia]": "hosts-2",  # two short converges: the lane with the least time
    "test_molecule[kubernetes_ephemeral]": "hosts-2",
}


def _join_xdist_group(item: pytest.Item, group: str) -> None:
    """What pytest-xdist does for an ``xdist_group`` mark under loadgroup: append ``@group`` to the node id, which its
    scheduler reads. xdist 3.8.0 writes ``item._nodeid``, which pytest 9.2 no longer reads (the id is ``item._id``),
    so every test would be scheduled alone; this sets the id itself (a no-op once xdist does it again)."""
    if item.nodeid.endswith(f"@{group}"):
        return
    from _pytest.nodeid import NodeId  # noqa: PLC0415 - pytest's own type for node ids (pytest >= 9.2)

    item._id = NodeId.parse(f"{item.nodeid}@{group}")  # noqa: SLF001
    if not item.nodeid.endswith(f"@{group}"):
        raise RuntimeError(f"cannot put {item.nodeid} in the pytest-xdist group {group!r}: pytest's node ids changed again")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Only tests marked ``hosts`` may start podman hosts (harness.hosts.podman_hosts refuses the others)."""
    podman_hosts.hosts_allowed = None if item.get_closest_marker("hosts") else f"{item.nodeid} starts podman hosts: mark it @pytest.mark.hosts"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    """Remember each phase's report so the ``aws`` teardown knows whether the test body failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"_aws_report_{report.when}", report)


@pytest.fixture(scope="session")
def aws_endpoint() -> Generator[EmbeddedAWS, None, None]:
    endpoint = EmbeddedAWS()
    try:
        endpoint.start()
    except EmbeddedAWSError as exc:
        pytest.fail(f"cannot start the embedded AWS endpoint: {exc}", pytrace=False)
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture
def aws(aws_endpoint: EmbeddedAWS, request: pytest.FixtureRequest) -> Generator[AwsContext, None, None]:
    if not aws_endpoint.running:
        pytest.fail(f"the embedded AWS endpoint died:\n{aws_endpoint.log()[-5000:]}", pytrace=False)
    aws_endpoint.reset()
    ctx = AwsContext(aws_endpoint)
    yield ctx
    problems = ctx.run_cleanups()
    leftovers = ctx.leftovers()
    if leftovers:
        problems.append(format_leftovers(leftovers))
    if not problems:
        return
    text = "\n".join(problems)
    call_report = getattr(request.node, "_aws_report_call", None)
    if call_report is not None and call_report.failed:
        # The test already failed: report the leftovers with it instead of adding a teardown error.
        request.node.add_report_section("teardown", "aws leftovers", text)
        return
    pytest.fail(f"test left AWS resources or its cleanup failed:\n{text}", pytrace=False)


@pytest.fixture
def run_playbook(aws: AwsContext, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., PlaybookResult]:
    """``run_playbook(playbook, extra_vars=None, check=False, diff=False, expect_rc=0, *, inventory="localhost,",
    args=(), env=None, timeout=600, cwd=None) -> PlaybookResult``.

    ``playbook``: a path (absolute or relative to the repository), YAML text (must contain a newline), or
    plays as Python data. ``expect_rc=None`` accepts any rc. ``env`` adds variables to the run (None removes
    one); inherited ANSIBLE_* and TOIL_* variables are dropped. Each call gets its own temp directory.
    """

    def run(
        playbook: Any,
        extra_vars: dict[str, Any] | None = None,
        check: bool = False,
        diff: bool = False,
        expect_rc: int | None = 0,
        **kwargs: Any,
    ) -> PlaybookResult:
        workdir = tmp_path_factory.mktemp("playbook")
        return run_ansible_playbook(playbook, aws.env, workdir, extra_vars=extra_vars, check=check, diff=diff, expect_rc=expect_rc, **kwargs)

    return run


@pytest.fixture
def aws_calls(aws: AwsContext) -> Generator[Any, None, None]:
    """A recording proxy in front of the endpoint: pass ``env=aws_calls.env`` to ``run_playbook`` and read
    ``aws_calls.calls`` / ``aws_calls.mutating_calls()`` (see harness.proxy). It gives RunInstances and
    CreateFleet EC2's ClientToken idempotency, which moto lacks, and per-pool capacity for instant fleets (no_capacity)."""
    proxy = AWSProxy(aws.url, client_tokens=True).start()
    proxy.env = {"AWS_ENDPOINT_URL": proxy.url, "AWS_URL": proxy.url}
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def key_pair(aws: AwsContext, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real ed25519 key imported as key pair ``toil-test-key`` (moto refuses fake keys); deleted after."""
    directory = tmp_path_factory.mktemp("key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / "id")], check=True)
    ec2 = aws.client("ec2")
    ec2.import_key_pair(KeyName="toil-test-key", PublicKeyMaterial=(directory / "id.pub").read_bytes())
    aws.add_cleanup(ec2.delete_key_pair, KeyName="toil-test-key")
    return "toil-test-key"


@pytest.fixture
def enforcing_endpoint(tmp_path: Path) -> Generator[tuple[EmbeddedAWS, dict[str, dict[str, str]]], None, None]:
    """An endpoint of its own enforcing IAM, with an admin, the controller user and a key pair: (endpoint, users)."""
    with iam_enforcement.enforcing_endpoint(tmp_path) as found:
        yield found


@pytest.fixture(scope="session")
def kube_certificates(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The Kubernetes API stand-in's CA and serving certificate, made once (openssl) for every ``kube``."""
    return make_certificates(str(tmp_path_factory.mktemp("kube-certs")))


@pytest.fixture
def kube(kube_certificates: Any, tmp_path_factory: pytest.TempPathFactory) -> Generator[KubeApi, None, None]:
    """A fresh Kubernetes API stand-in (harness.kube_api) with a control-plane node (the leader), as after
    ``configure_cluster``."""
    with KubeApi(cert_dir=str(tmp_path_factory.mktemp("kube")), certificates=kube_certificates) as api:
        api.add_node("leader", labels={"node-role.kubernetes.io/control-plane": ""})
        yield api
