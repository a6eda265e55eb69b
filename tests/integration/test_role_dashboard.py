"""The dashboard role's files, checked with the real tools, on this machine (no container host).

- The role's templates are rendered by ansible-playbook (``-c local``) into a temp directory; Prometheus's
  configuration with the role's own ``validate: promtool check config %s`` and again here.
- The mtail program compiles, and a real mtail (127.0.0.1, a free port) following a file exports the
  expected counters for the lines Toil 9.6 really wrote (tests/fixtures/toil-logs/, from capture.py).
  mtail follows from the end of a file, so the lines are appended after it has started.
- The Grafana dashboard is valid JSON, its PromQL passes ``promtool check rules``, and every metric it
  plots is one that mtail, node_exporter (run here too) or the scaler's textfile really exports.
- Grafana cannot be had here: its ini and provisioning files are checked for content only.

Needs the Debian packages prometheus, mtail and prometheus-node-exporter (Makefile DEB_PACKAGES).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ansible_collections.toil.cluster.plugins.module_utils.scaler import metrics_text
from harness.paths import REPO
from harness.playbooks import run_ansible_playbook
from harness.toil_logs import EXPECTED, FIXTURES

ROLE = REPO / "roles" / "dashboard"
MTAIL_PROGRAM = ROLE / "files" / "toil.mtail"
DASHBOARD_JSON = ROLE / "files" / "toil-dashboard.json"

TEMPLATES = {
    "prometheus.yml.j2": "prometheus.yml",
    "prometheus.default.j2": "prometheus.default",
    "prometheus-node-exporter.default.j2": "node-exporter.default",
    "mtail.default.j2": "mtail.default",
    "grafana.ini.j2": "grafana.ini",
    "grafana-datasource.yml.j2": "datasource.yml",
    "grafana-dashboards.yml.j2": "dashboards.yml",
}  # Grafana's apt source is the apt_repository role's (the molecule scenario dashboard reads it on a host)


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {missing}: run `make setup` (Debian packages prometheus, mtail, prometheus-node-exporter)", pytrace=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
        return response.read().decode()


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited {proc.returncode}")
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def _samples(text: str) -> dict[str, float]:
    """Prometheus text format -> {'name{labels without prog}': value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        series = re.sub(r',?prog="[^"]*"', "", series).replace("{,", "{").replace("{}", "")
        out[series] = float(value)
    return out


def _metric_names(text: str) -> set[str]:
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The role's templates rendered by ansible for a leader of cluster ``demo`` in us-west-2."""
    out = tmp_path_factory.mktemp("rendered")
    tasks = [
        {
            "name": f"Render {src}",
            "ansible.builtin.template": {"src": str(ROLE / "templates" / src), "dest": str(out / dest), "mode": "0644"}
            | ({"validate": "promtool check config %s"} if src == "prometheus.yml.j2" else {}),
        }
        for src, dest in TEMPLATES.items()
    ]
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "vars": {"ec2_tags": {"clusterName": "demo", "Name": "demo"}, "placement": {"region": "us-west-2"}},
        "tasks": tasks,
    }
    _need("promtool")
    extra_vars = {"dashboard_ec2_sd_tag_filters": {"Owner": "me"}}
    run_ansible_playbook(play, dict(os.environ), tmp_path_factory.mktemp("playbook"), extra_vars=extra_vars, timeout=120)
    return out


def test_prometheus_config_is_valid_and_finds_the_cluster(rendered: Path) -> None:
    check = subprocess.run(["promtool", "check", "config", str(rendered / "prometheus.yml")], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout + check.stderr
    config = yaml.safe_load((rendered / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", "toil", "node", "aws-node-exporter"}
    assert jobs["toil"]["static_configs"][0]["targets"] == ["localhost:3903"]
    assert jobs["node"]["static_configs"][0]["targets"] == ["localhost:9100"]
    (sd,) = jobs["aws-node-exporter"]["ec2_sd_configs"]
    assert sd["region"] == "us-west-2"
    assert sd["port"] == 9100
    filters = {f["name"]: f["values"] for f in sd["filters"]}
    assert filters == {"tag:clusterName": ["demo"], "tag:Owner": ["me"], "instance-state-name": ["running"]}
    keep = [r for r in jobs["aws-node-exporter"]["relabel_configs"] if r.get("action") == "keep"]
    assert keep == [{"source_labels": ["__meta_ec2_instance_state"], "regex": "running", "action": "keep"}]
    assert config["global"]["external_labels"] == {"cluster": "demo"}


def test_a_bad_prometheus_config_is_refused(tmp_path: Path) -> None:
    """The role's validate command really refuses a bad file (so the restart never sees one)."""
    _need("promtool")
    bad = tmp_path / "bad.yml"
    bad.write_text("global:\n  scrape_interval: 2x\n")
    check = subprocess.run(["promtool", "check", "config", str(bad)], capture_output=True, text=True, check=False)
    assert check.returncode == 1
    assert "not a valid duration" in check.stdout + check.stderr


def test_service_settings(rendered: Path) -> None:
    assert '--web.listen-address=127.0.0.1:9090 --storage.tsdb.retention.time=15d"' in (rendered / "prometheus.default").read_text()
    exporter = (rendered / "node-exporter.default").read_text()
    assert "--web.listen-address=:9100 --collector.textfile.directory=/var/lib/prometheus/node-exporter" in exporter
    mtail = (rendered / "mtail.default").read_text()
    assert "\nLOGS=/var/log/toil/*.log\n" in mtail
    assert "\nPORT=3903\n" in mtail


def test_grafana_is_on_loopback_without_anonymous_users_and_never_admin_admin(rendered: Path) -> None:
    ini = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    ini.read_string((rendered / "grafana.ini").read_text())
    assert ini["server"]["http_addr"] == "127.0.0.1"  # reached through an ssh forward, like toil ssh-cluster --grafana_port
    assert ini["auth.anonymous"]["enabled"] == "false"  # an opt-in: dashboard_grafana_anonymous_enabled
    assert ini["auth.anonymous"]["org_role"] == "Viewer"
    assert ini["users"]["allow_sign_up"] == "false"
    assert ini["security"]["admin_password"] == "$__file{/etc/grafana/admin-password}"
    assert ini["server"]["http_port"] == "3000"
    assert ini["dashboards"]["default_home_dashboard_path"] == "/var/lib/grafana/dashboards/toil/toil.json"
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["dashboard_grafana_admin_password"] == ""  # generated on the leader when not given
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    assert specs["argument_specs"]["main"]["options"]["dashboard_grafana_admin_password"]["no_log"] is True
    tasks = yaml.safe_load((ROLE / "tasks" / "grafana.yml").read_text())
    password_tasks = [t for t in tasks if "admin password" in t["name"]]
    assert len(password_tasks) == 2
    assert all(t.get("no_log") is True for t in password_tasks)


def test_anonymous_viewers_are_an_opt_in(tmp_path: Path) -> None:
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "tasks": [
            {
                "name": "Render",
                "ansible.builtin.template": {"src": str(ROLE / "templates" / "grafana.ini.j2"), "dest": str(tmp_path / "grafana.ini"), "mode": "0644"},
            }
        ],
    }
    run_ansible_playbook(play, dict(os.environ), tmp_path / "run", extra_vars={"dashboard_grafana_anonymous_enabled": True}, timeout=120)
    ini = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    ini.read_string((tmp_path / "grafana.ini").read_text())
    assert (ini["auth.anonymous"]["enabled"], ini["auth.anonymous"]["org_role"]) == ("true", "Viewer")


def test_only_toils_group_writes_the_message_directory() -> None:
    """Was 1777 (anyone could fill the disk or plant files mtail reads): now root:toil 2775."""
    tasks = yaml.safe_load((ROLE / "tasks" / "leader.yml").read_text())
    (directory,) = [t["ansible.builtin.file"] for t in tasks if t.get("ansible.builtin.file", {}).get("path") == "{{ dashboard_mtail_log_directory }}"]
    assert (directory["owner"], directory["group"], directory["mode"]) == ("root", "{{ dashboard_mtail_log_group }}", "02775")
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    toil_defaults = yaml.safe_load((REPO / "roles" / "toil" / "defaults" / "main.yml").read_text())
    assert defaults["dashboard_mtail_log_group"] == toil_defaults["toil_group"] == "toil"


def test_grafana_provisioning(rendered: Path) -> None:
    datasources = yaml.safe_load((rendered / "datasource.yml").read_text())
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source == {
        "name": "Prometheus",
        "uid": "prometheus",
        "type": "prometheus",
        "access": "proxy",
        "url": "http://127.0.0.1:9090",
        "isDefault": True,
        "editable": False,
    }
    providers = yaml.safe_load((rendered / "dashboards.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/toil"
    assert provider["allowUiUpdates"] is False
    dashboard = json.loads(DASHBOARD_JSON.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]} | {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert uids == {source["uid"]}


def test_mtail_program_compiles() -> None:
    _need("mtail")
    check = subprocess.run(["mtail", "--compile_only", "--progs", str(MTAIL_PROGRAM)], capture_output=True, text=True, check=False, timeout=30)
    assert check.returncode == 0, check.stderr


@pytest.fixture
def mtail(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A real mtail with the role's program, following ``<tmp>/logs/*.log`` like the role's default."""
    _need("mtail")
    logs = tmp_path / "logs"
    logs.mkdir()
    port = _free_port()
    cmd = ["mtail", "--progs", str(MTAIL_PROGRAM), "--logs", f"{logs}/*.log", "--address", "127.0.0.1", "--port", str(port), "--logtostderr"]
    cmd += ["--poll_interval", "100ms", "--poll_log_interval", "100ms"]
    with (tmp_path / "mtail.err").open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)  # noqa: S603 - fixed arguments
    try:
        _wait_http(f"http://127.0.0.1:{port}/metrics", proc)
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/metrics", logs=logs, proc=proc, stderr=tmp_path / "mtail.err")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_for_samples(mtail: SimpleNamespace, expected: dict[str, float], timeout: float = 10) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    samples: dict[str, float] = {}
    while time.monotonic() < deadline:
        samples = _samples(_get(mtail.url))
        if all(samples.get(k) == v for k, v in expected.items()):
            return samples
        time.sleep(0.2)
    wrong = {k: (samples.get(k), v) for k, v in expected.items() if samples.get(k) != v}
    raise AssertionError(f"mtail exported (got, wanted) {wrong}\n{mtail.stderr.read_text()[-3000:]}")


@pytest.mark.parametrize("fixture", ["messages.log", "metrics.log"])
def test_mtail_counts_what_toil_really_writes(mtail: SimpleNamespace, fixture: str) -> None:
    """Both of Toil's formats: the message bus file (--writeMessages) and the --metrics lines."""
    path = mtail.logs / "workflow.log"
    path.touch()
    time.sleep(1)  # let mtail find the file and seek to its end
    assert _samples(_get(mtail.url)).get("total_issued_jobs", 0) == 0
    with path.open("a") as out:
        for line in (FIXTURES / fixture).read_text().splitlines(keepends=True):
            out.write(line)
            out.flush()
    _wait_for_samples(mtail, EXPECTED)


def test_mtail_follows_new_workflow_files(mtail: SimpleNamespace) -> None:
    """A workflow started after mtail creates its file empty (Toil opens it with "wb") and writes later; mtail
    finds the new file within --poll_log_interval and counts what is appended from then on. Lines already in a
    file when mtail finds it are skipped (mtail starts at the end), as documented in docs/dashboard.md."""
    time.sleep(0.3)
    late = mtail.logs / "late.log"
    late.touch()
    time.sleep(1)
    with late.open("a") as out:
        out.write((FIXTURES / "messages.log").read_text())
    _wait_for_samples(mtail, {"total_issued_jobs": 4, "total_failed_jobs": 2})


def _exported_by_node_exporter(tmp_path: Path) -> set[str]:
    """Metric names a real node_exporter exports here, with the scaler's textfile in its directory."""
    _need("prometheus-node-exporter")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    decisions = {"spot": SimpleNamespace(current=1, desired=3)}
    shapes = [SimpleNamespace(name="spot", instance_types=("t3.large",))]
    (textfiles / "toil-autoscaler.prom").write_text(metrics_text(decisions, shapes, 5))
    port = _free_port()
    cmd = ["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{port}", f"--collector.textfile.directory={textfiles}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - fixed arguments
    try:
        _wait_http(f"http://127.0.0.1:{port}/metrics", proc)
        text = _get(f"http://127.0.0.1:{port}/metrics")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert 'autoscaler_cur_size{node_type="t3.large",pool="spot"} 1' in text
    return _metric_names(text)


PROMQL_WORDS = {"sum", "count", "avg", "min", "max", "rate", "by", "without", "on", "ignoring"}
PROMQL_WORDS |= {"group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def test_dashboard_plots_what_the_exporters_export(mtail: SimpleNamespace, tmp_path: Path) -> None:
    _need("promtool")
    dashboard = json.loads(DASHBOARD_JSON.read_text())
    assert dashboard["uid"] == "toil"
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"CPU", "Memory", "Cluster size", "Queue size", "Running and queued jobs", "Failed jobs", "Autoscaler sizes"} <= titles
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    # PromQL syntax, by promtool: every expression as a recording rule.
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:expr{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    check = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    # Every metric plotted is exported: mtail (after Toil's lines), node_exporter, the scaler's textfile, or `up`.
    (mtail.logs / "workflow.log").touch()
    time.sleep(1)
    with (mtail.logs / "workflow.log").open("a") as out:
        out.write((FIXTURES / "messages.log").read_text())
    _wait_for_samples(mtail, {"total_issued_jobs": 4})
    exported = _metric_names(_get(mtail.url)) | _exported_by_node_exporter(tmp_path) | {"up"}
    without_strings = [re.sub(r'"[^"]*"|\[[^\]]*\]', "", e) for e in exprs]
    used = {m.group(1) for e in without_strings for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b\s*(?![\s(]*\()", e)}
    used = {u for u in used if not u.isdigit()} - PROMQL_WORDS
    labels = {m for e in without_strings for group in re.findall(r"(?:by|without)\s*\(([^)]*)\)", e) for m in re.findall(r"\w+", group)}
    labels |= {m for e in exprs for m in re.findall(r"(\w+)\s*=~?\s*\"", e)}
    assert used - labels - exported == set(), sorted(used - labels)
    for name in ("total_issued_jobs", "total_failed_jobs", "autoscaler_cur_size", "autoscaler_desired_size", "node_cpu_seconds_total"):
        assert name in used


def test_tags_reach_the_tasks_inside_the_task_files(tmp_path: Path) -> None:
    """``--tags dashboard_configure`` selects the tasks of the role's task files (imported, not included)."""
    play = "- hosts: all\n  gather_facts: false\n  roles:\n    - role: toil.cluster.dashboard\n"
    listing = run_ansible_playbook(play, dict(os.environ), tmp_path, args=["--list-tasks", "--tags", "dashboard_configure"]).stdout
    for name in ("Configure node_exporter", "Configure Prometheus's scrapes (checked by promtool first)", "Install the pinned Grafana package"):
        assert f" : {name}\tTAGS:" in listing, listing
