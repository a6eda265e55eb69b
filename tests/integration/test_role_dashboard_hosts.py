"""Role ``dashboard`` converged on a podman test host (Debian 12, systemd) over real SSH, as a cluster's leader.

Everything is real except Grafana: Prometheus (its configuration checked by the role with ``promtool`` before
the restart), mtail and node_exporter come from Debian, pinned. No Grafana package can be downloaded here, so the
role's production Grafana path (an apt repository with suite ``stable``/``main``, ``signed-by`` a key of pinned
fingerprint and checksum, the ``grafana`` package pinned and held) runs against a local signed repository whose
``grafana`` package is a TEST DOUBLE of ``grafana-server`` (harness.hosts.grafana_double_repo): it reads the
ini and provisioning files as Grafana does and answers ``/api/health``; it is not Grafana. The provisioned files and
the dashboard JSON are checked on the host for validity and content.

Toil's real log lines (tests/fixtures/toil-logs/messages.log, captured from a Toil 9.6.0 run) are appended to the
file mtail follows, and a PromQL query over Prometheus's HTTP API, through an ssh forward (as a user reaches it,
docs/dashboard.md), must return mtail's Toil counters. EC2 service discovery is switched off here (it would call
AWS); promtool checks its configuration in test_role_dashboard.py. The container and network are removed at the
end, also after a failure.
"""

from __future__ import annotations

import configparser
import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.hosts import grafana_double_repo, podman_hosts
from harness.hosts.role_hosts import ansible_env, base_env, changed_tasks, failures
from harness.paths import REPO
from harness.playbooks import PlaybookResult, run_ansible_playbook
from harness.toil_logs import EXPECTED, FIXTURES

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

LEADER = "tcl-dash-leader"
REPO_MOUNT = "/srv/grafana-double-repo"
GRAFANA_VERSION = "11.5.2"
HOSTVARS = {LEADER: {"toil_cluster": "lab", "toil_region": "us-west-2", "toil_zone": "us-west-2a", "toil_node_type": "leader"}}
PROMETHEUS_CONFIG_TASK = "Configure Prometheus's scrapes (checked by promtool first)"
CONVERGE = """\
- name: The dashboard on the leader
  hosts: toil_leaders
  roles:
    - role: toil.cluster.dashboard
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - an ssh forward on 127.0.0.1
        return json.loads(response.read().decode())


@dataclass
class Leader:
    lab: podman_hosts.PodmanLab
    repo: grafana_double_repo.GrafanaDoubleRepo
    inventory: Path
    workdir: Path
    overrides: dict[str, Any]
    runs: list[PlaybookResult] = field(default_factory=list)
    forwards: dict[int, int] = field(default_factory=dict)  # remote port -> local port of the ssh forward

    @property
    def host(self) -> podman_hosts.Host:
        return self.lab.hosts[LEADER]

    def converge(self, name: str, args: tuple[str, ...] = (), **extra: Any) -> PlaybookResult:
        run_dir = self.workdir / f"converge-{name}"
        env = ansible_env(self.workdir / "cp")
        extra_vars = self.overrides | extra
        inventory = str(self.inventory)
        return run_ansible_playbook(CONVERGE, base_env(), run_dir, inventory=inventory, extra_vars=extra_vars, env=env, args=args, expect_rc=None, timeout=600)

    def url(self, remote_port: int, path: str) -> str:
        return f"http://127.0.0.1:{self.forwards[remote_port]}{path}"


@pytest.fixture(scope="module")
def leader(tmp_path_factory: pytest.TempPathFactory) -> Generator[Leader, None, None]:
    if not podman_hosts.have_podman():
        pytest.fail("podman is missing: run `make setup` (it installs the test hosts' Debian packages)", pytrace=False)
    podman_hosts.build_image()
    workdir = tmp_path_factory.mktemp("dashboard-role")
    repo = grafana_double_repo.build(workdir / "repo", GRAFANA_VERSION)
    lab = podman_hosts.PodmanLab(workdir / "lab", mounts=[(str(repo.path), REPO_MOUNT)])
    tunnel: subprocess.Popen[bytes] | None = None
    try:
        lab.start([LEADER], HOSTVARS)
        inventory = lab.inventory({"toil_leaders": [LEADER]})
        overrides = {
            "dashboard_grafana_apt_repository_url": f"file://{REPO_MOUNT}",
            "dashboard_grafana_apt_key_url": f"file://{REPO_MOUNT}/gpg.key",
            "dashboard_grafana_apt_key_fingerprint": repo.key_fingerprint,
            "dashboard_grafana_apt_key_checksum": f"sha256:{repo.key_sha256}",
            "dashboard_ec2_sd_enabled": False,  # it would ask AWS for the nodes
            "dashboard_prometheus_scrape_interval": "2s",
        }
        result = Leader(lab, repo, inventory, workdir, overrides)
        result.runs.append(result.converge("first"))
        if result.runs[0].rc == 0:
            result.runs.append(result.converge("second"))
            # The way docs/dashboard.md tells users to reach the services: an ssh forward to the leader's loopback.
            result.forwards = {port: free_port() for port in (9090, 3000)}
            forwards = [arg for remote, local in result.forwards.items() for arg in ("-L", f"127.0.0.1:{local}:127.0.0.1:{remote}")]
            ssh = [*lab._ssh_base(), "-N", "-o", "ExitOnForwardFailure=yes", *forwards, f"admin@{result.host.address}"]
            tunnel = subprocess.Popen(ssh, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
        yield result
    finally:
        if tunnel is not None:
            tunnel.terminate()
            tunnel.wait(timeout=10)
        errors = lab.close([workdir / "cp"])
        assert not errors, f"test hosts were not cleaned up: {errors}"


def test_converges_then_changes_nothing(leader: Leader) -> None:
    first = leader.runs[0]
    assert first.rc == 0, failures(first)
    assert len(leader.runs) == 2
    second = leader.runs[1]
    assert second.rc == 0, failures(second)
    assert second.stats[LEADER]["changed"] == 0, changed_tasks(second)


def test_services_run_from_the_pinned_debian_packages(leader: Leader) -> None:
    host = leader.host
    for unit in ("prometheus", "mtail", "prometheus-node-exporter", "grafana-server"):
        assert host.sh(f"systemctl is-active {unit}").strip() == "active", host.sh(f"journalctl -u {unit} --no-pager | tail -20", check=False)
        assert host.sh(f"systemctl is-enabled {unit}").strip() == "enabled"
    query = "dpkg-query -W -f '${Package}=${Version}\\n' prometheus mtail prometheus-node-exporter grafana"
    versions = dict(line.split("=", 1) for line in host.sh(query).split())
    assert versions == {"prometheus": "2.42.0+ds-5+deb12u1", "mtail": "3.0.0~rc50-1+b6", "prometheus-node-exporter": "1.5.0-1+b6", "grafana": GRAFANA_VERSION}
    assert host.sh("apt-mark showhold").split() == ["grafana"]
    check = host.sh("promtool check config /etc/prometheus/prometheus.yml 2>&1")
    assert "SUCCESS" in check


def test_grafana_comes_from_its_pinned_signed_repository(leader: Leader) -> None:
    host = leader.host
    sources = host.read("/etc/apt/sources.list.d/grafana.sources")
    assert f"URIs: file://{REPO_MOUNT}" in sources
    assert "Signed-By: /etc/apt/keyrings/grafana.asc" in sources
    assert host.sh("sha256sum /etc/apt/keyrings/grafana.asc").split()[0] == leader.repo.key_sha256
    assert f"file:{REPO_MOUNT} stable/main" in host.sh("apt-cache policy grafana").replace("file://", "file:")


def test_services_listen_where_they_must(leader: Leader) -> None:
    """node_exporter on every interface (the leader scrapes each node); Prometheus, mtail and Grafana on loopback."""
    listening = {line.split()[3] for line in leader.host.sh("ss -Hltn").splitlines()}
    for address in ("127.0.0.1:9090", "127.0.0.1:3903", "127.0.0.1:3000"):
        assert address in listening, listening
    assert "*:9100" in listening or "0.0.0.0:9100" in listening, listening
    # From outside the leader (this machine, over the podman network) only node_exporter answers.
    for port, reachable in ((9100, True), (9090, False), (3903, False), (3000, False)):
        with socket.socket() as sock:
            sock.settimeout(3)
            assert (sock.connect_ex((leader.host.address, port)) == 0) is reachable, port


def promql(leader: Leader, query: str) -> dict[str, float]:
    data = get_json(leader.url(9090, "/api/v1/query?" + urllib.parse.urlencode({"query": query})))
    assert data["status"] == "success", data
    ignored = ("__name__", "instance", "job", "prog", "cluster")
    return {json.dumps({k: v for k, v in r["metric"].items() if k not in ignored}): float(r["value"][1]) for r in data["data"]["result"]}


def expected_series() -> dict[str, dict[str, float]]:
    """EXPECTED ({'issued_jobs{job_type="root"}': 1, ...}) as {metric: {labels as JSON: value}}."""
    out: dict[str, dict[str, float]] = {}
    for series, value in EXPECTED.items():
        name, _sep, labels = series.partition("{")
        pairs = dict(item.split("=", 1) for item in labels.rstrip("}").split(",")) if labels else {}
        out.setdefault(name, {})[json.dumps({k: v.strip('"') for k, v in pairs.items()})] = float(value)
    return out


def test_only_toils_group_writes_toils_message_files(leader: Leader) -> None:
    """/var/log/toil was 1777: any local user or service could fill it or plant files mtail reads."""
    host = leader.host
    assert host.sh("stat -c '%U %G %a' /var/log/toil").split() == ["root", "toil", "2775"]
    attempt = host.sh("su -s /bin/sh nobody -c 'touch /var/log/toil/planted.log' 2>&1 || echo refused", check=False)
    assert attempt.strip().endswith("refused"), attempt
    assert host.sh("test -e /var/log/toil/planted.log && echo planted || echo absent").strip() == "absent"


def test_promql_returns_mtails_toil_counters_for_real_toil_lines(leader: Leader) -> None:
    host = leader.host
    host.sh("install -m 0644 /dev/null /var/log/toil/workflow.log")  # Toil creates its message file empty, then writes
    deadline = time.monotonic() + 30
    # mtail starts new files at their end: wait until it has opened the file before Toil's lines come.
    while "/var/log/toil/workflow.log" not in host.sh("ls -l /proc/$(systemctl show -p MainPID --value mtail)/fd/", check=False):
        assert time.monotonic() < deadline, host.sh("journalctl -u mtail --no-pager | tail -20", check=False)
        time.sleep(0.5)
    assert promql(leader, "total_issued_jobs") in ({}, {"{}": 0.0})  # nothing counted before Toil writes
    lines = (FIXTURES / "messages.log").read_text()
    subprocess.run(
        ["podman", "exec", "-i", host.container, "sh", "-c", "cat >> /var/log/toil/workflow.log"],
        input=lines, text=True, env=podman_hosts.podman_env(), check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    wanted = expected_series()
    deadline = time.monotonic() + 60
    while True:
        got = {name: promql(leader, name) for name in wanted}
        if all(got[name].get(series) == value for name, values in wanted.items() for series, value in values.items()):
            break
        assert time.monotonic() < deadline, f"PromQL (got, wanted): {got} != {wanted}"
        time.sleep(1)
    # And through Prometheus's own view of its targets: mtail (job toil) and node_exporter are scraped.
    up = promql(leader, "up")
    assert up and all(value == 1.0 for value in up.values()), up
    jobs = {r["labels"]["job"] for r in get_json(leader.url(9090, "/api/v1/targets"))["data"]["activeTargets"]}
    assert jobs == {"prometheus", "toil", "node"}


def test_grafana_is_provisioned_with_prometheus_and_the_toil_dashboard(leader: Leader) -> None:
    host = leader.host
    health = get_json(leader.url(3000, "/api/health"))
    assert health == {"database": "ok", "version": GRAFANA_VERSION, "test_double": True}
    loaded = get_json(leader.url(3000, "/api/test-double"))  # what the double read, as Grafana reads it
    assert loaded["dashboards"] == ["toil"]
    assert [d["url"] for d in loaded["datasources"]] == ["http://127.0.0.1:9090"]
    assert loaded["anonymous_role"] == ""  # no anonymous access unless dashboard_grafana_anonymous_enabled
    datasources = yaml.safe_load(host.read("/etc/grafana/provisioning/datasources/toil.yml"))
    assert datasources["datasources"] == [{
        "name": "Prometheus", "uid": "prometheus", "type": "prometheus", "access": "proxy",
        "url": "http://127.0.0.1:9090", "isDefault": True, "editable": False,
    }]  # fmt: skip
    providers = yaml.safe_load(host.read("/etc/grafana/provisioning/dashboards/toil.yml"))["providers"]
    assert [(p["type"], p["options"]["path"]) for p in providers] == [("file", "/var/lib/grafana/dashboards/toil")]
    dashboard = json.loads(host.read("/var/lib/grafana/dashboards/toil/toil.json"))
    assert dashboard == json.loads((REPO / "roles" / "dashboard" / "files" / "toil-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for name in ("total_issued_jobs", "total_failed_jobs", "autoscaler_cur_size", "node_cpu_seconds_total"):
        assert name in exprs
    ini = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    ini.read_string(host.read("/etc/grafana/grafana.ini"))
    assert (ini["server"]["http_addr"], ini["server"]["http_port"]) == ("127.0.0.1", "3000")
    assert ini["auth.anonymous"]["enabled"] == "false"
    assert ini["auth.anonymous"]["org_role"] == "Viewer"  # what anonymous users would get, once allowed
    # The generated admin password: readable by root and grafana only, never "admin".
    assert host.sh("stat -c '%U %G %a' /etc/grafana/admin-password").split() == ["root", "grafana", "640"]
    password = host.read("/etc/grafana/admin-password").strip()
    assert len(password) == 32 and password != "admin"
    for run in leader.runs:
        assert password not in run.stdout and password not in run.stderr


def test_a_bad_prometheus_config_never_reaches_prometheus(leader: Leader) -> None:
    """promtool refuses the file before it replaces the running one, and Prometheus keeps running."""
    before = leader.host.read("/etc/prometheus/prometheus.yml")
    start = ("--start-at-task", "Install the pinned Prometheus and mtail packages")  # node_exporter's part is proven above
    bad = leader.converge("bad-config", start, dashboard_prometheus_scrape_interval="2x")
    assert bad.rc != 0
    failed = bad.failed_tasks()
    assert [name.split(" : ")[-1] for name, _host, _msg in failed] == [PROMETHEUS_CONFIG_TASK], failed
    assert "not a valid duration" in failed[0][2] or "not a valid duration" in bad.stdout
    assert leader.host.read("/etc/prometheus/prometheus.yml") == before
    assert leader.host.sh("systemctl is-active prometheus").strip() == "active"
