"""The autoscaler role's files, on this machine (no container host).

ansible-playbook (``-c local``) makes the leader's ssh key with the role's module (community.crypto) and renders
the role's templates into a temp directory; the units must pass ``systemd-analyze verify`` (skipped only when the
tool is missing), the timer must run the oneshot service every ``autoscaler_interval`` seconds after the
previous run, and the run's variables must hand the key's public half to the scaler.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.paths import REPO
from harness.playbooks import run_ansible_playbook

ROLE = REPO / "roles" / "autoscaler"
TEMPLATES = ["toil-autoscaler.service.j2", "toil-autoscaler.timer.j2", "autoscale.yml.j2", "toil_ec2.yml.j2", "environment.j2"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    tasks = [
        {
            "name": "Make the leader's key",
            "community.crypto.openssh_keypair": {"path": str(out / "id_ed25519"), "type": "ed25519", "mode": "0600"},
            "register": "__autoscaler_ssh_key",
        }
    ]
    tasks += [
        {
            "name": f"Render {src}",
            "ansible.builtin.template": {"src": str(ROLE / "templates" / src), "dest": str(out / src.removesuffix(".j2")), "mode": "0644"},
        }
        for src in TEMPLATES
    ]
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "vars": {"toil_cluster": "demo", "toil_region": "us-west-2", "toil_zone": "us-west-2c"},  # the toil_ec2 inventory's
        "tasks": tasks,
    }
    # The venv must hold the ansible-playbook the unit runs, for systemd-analyze: this repository's.
    extra = {
        "autoscaler_venv": str(REPO / ".venv"),
        "autoscaler_interval": 90,
        "autoscaler_node_types": "t3.large,c5.large:0.2",
        "autoscaler_workers": "0-4,0-10",
        "autoscaler_plan_only": True,
        "autoscaler_extra_vars": {"demand": {"pods": []}},
        "autoscaler_environment": {"HTTPS_PROXY": "http://user:s3cr'et@proxy.internal:3128"},
    }
    run_ansible_playbook(play, dict(os.environ), tmp_path_factory.mktemp("playbook"), extra_vars=extra, timeout=120)
    return out


def test_units_pass_systemd_analyze_verify(rendered: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    units = [str(rendered / "toil-autoscaler.service"), str(rendered / "toil-autoscaler.timer")]
    check = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, check=False, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_bad_unit_is_refused(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    (tmp_path / "bad.service").write_text("[Service]\nType=oneshot\nExecStart=/nonexistent/ansible-playbook x\n")
    check = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "bad.service")], capture_output=True, text=True, check=False, timeout=60)
    assert check.returncode != 0


def _unit(path: Path) -> dict[str, list[str]]:
    """key -> values of a unit file (repeated keys kept in order)."""
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_one_run_at_a_time_every_interval(rendered: Path) -> None:
    service = _unit(rendered / "toil-autoscaler.service")
    assert service["Type"] == ["oneshot"]
    (command,) = service["ExecStart"]
    assert command.startswith("/usr/bin/flock --nonblock /run/toil-autoscaler.lock ")
    venv = REPO / ".venv"
    assert command.endswith(f"{venv}/bin/ansible-playbook -i /etc/toil-cluster/toil_ec2.yml -e @/etc/toil-cluster/autoscale.yml toil.cluster.autoscale")
    assert f"ANSIBLE_COLLECTIONS_PATH={venv}/collections" in service["Environment"]
    assert service["ProtectHome"] == ["tmpfs"]  # hidden, yet writable for ansible's ~/.ansible/tmp
    assert service["StandardOutput"] == ["journal"]
    assert service["SyslogIdentifier"] == ["toil-autoscaler"]
    timer = _unit(rendered / "toil-autoscaler.timer")
    assert timer["OnUnitInactiveSec"] == ["90s"]
    assert timer["Unit"] == ["toil-autoscaler.service"]
    assert timer["WantedBy"] == ["timers.target"]


def test_the_run_gets_the_autoscale_playbooks_variables(rendered: Path) -> None:
    """Exactly the interface of playbooks/autoscale.yml, with the leader's public key for the new nodes."""
    variables = yaml.safe_load((rendered / "autoscale.yml").read_text())
    public_key = (rendered / "id_ed25519.pub").read_text().strip()
    assert public_key.startswith("ssh-ed25519 ")
    assert [k.strip() for k in variables.pop("authorized_keys")] == [public_key]
    assert variables == {
        "cluster_name": "demo",
        "zone": "us-west-2c",
        "node_types": "t3.large,c5.large:0.2",
        "workers": "0-4,0-10",
        "kubeconfig": "/etc/kubernetes/admin.conf",
        "scaler_state_path": "/var/lib/toil-cluster/scaler-state.json",
        "scaler_metrics_path": "/var/lib/prometheus/node-exporter/toil-autoscaler.prom",
        "plan_only": True,
        "demand": {"pods": []},
    }
    service = _unit(rendered / "toil-autoscaler.service")
    assert "ANSIBLE_PRIVATE_KEY_FILE=/etc/toil-cluster/id_ed25519" in service["Environment"]
    # User-given environment: in the root-only EnvironmentFile, never in the world-readable unit.
    assert "s3cr" not in (rendered / "toil-autoscaler.service").read_text()
    assert service["EnvironmentFile"] == ["/etc/toil-cluster/environment"]
    script = f"set -a; . {rendered / 'environment'}; env"
    env = dict(line.split("=", 1) for line in subprocess.run(["sh", "-c", script], env={}, capture_output=True, text=True, check=True).stdout.splitlines())
    assert env["HTTPS_PROXY"] == "http://user:s3cr'et@proxy.internal:3128"
    inventory = yaml.safe_load((rendered / "toil_ec2.yml").read_text())
    assert inventory == {"plugin": "toil.cluster.toil_ec2", "clusters": ["demo"], "regions": ["us-west-2"]}  # the option toil_ec2 knows


def _run_variables(tmp_path: Path, role_variables: dict) -> dict:
    """The run's extra variables the role's template writes for ``role_variables`` over its defaults."""
    out = tmp_path / "autoscale.yml"
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "vars": {"toil_cluster": "demo", "toil_region": "us-west-2", "toil_zone": "us-west-2c", "__autoscaler_ssh_key": {"public_key": ""}},
        "tasks": [{"name": "Render", "ansible.builtin.template": {"src": str(ROLE / "templates" / "autoscale.yml.j2"), "dest": str(out), "mode": "0644"}}],
    }
    run_ansible_playbook(play, dict(os.environ), tmp_path / "run", extra_vars=role_variables, timeout=120)
    return yaml.safe_load(out.read_text())


def test_budgets_are_written_only_when_set(tmp_path: Path) -> None:
    """autoscaler_max_vcpus, _max_memory and _max_hourly_cost become the playbook's max_vcpus, max_memory and
    max_hourly_cost (unset above)."""
    variables = _run_variables(tmp_path, {"autoscaler_max_vcpus": 64, "autoscaler_max_memory": "256Gi", "autoscaler_max_hourly_cost": 12.5})
    assert (variables["max_vcpus"], variables["max_memory"], variables["max_hourly_cost"]) == (64, "256Gi", 12.5)


def test_worker_zones_and_subnets_are_written_only_when_given(tmp_path: Path) -> None:
    """autoscaler_worker_zones and autoscaler_worker_subnets become the playbook's worker_zones and worker_subnets
    (empty above: not written)."""
    given = {"autoscaler_worker_zones": ["us-west-2b", "us-west-2c"], "autoscaler_worker_subnets": ["subnet-0123456789abcdef0"]}
    variables = _run_variables(tmp_path, given)
    assert (variables["worker_zones"], variables["worker_subnets"]) == (["us-west-2b", "us-west-2c"], ["subnet-0123456789abcdef0"])


def test_user_given_values_are_root_only_and_units_hold_none() -> None:
    tasks = {t["name"]: t for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())}
    environment = tasks["Write the runs' extra environment (root only, it holds user-given values)"]["ansible.builtin.template"]
    assert (environment["dest"], environment["owner"], environment["mode"]) == ("{{ _autoscaler_environment_path }}", "root", "0600")
    for name in ("Write the toil_ec2 inventory of the cluster", "Write the scaler's variables"):
        assert tasks[name]["ansible.builtin.template"]["mode"] == "0640"
    assert tasks["Install the checked units"]["ansible.builtin.copy"]["mode"] == "0644"
    assert "{{ autoscaler_environment" not in (ROLE / "templates" / "toil-autoscaler.service.j2").read_text()


@pytest.mark.parametrize(
    "environment",
    [{"BAD NAME": "x"}, {"X": "one\nline two"}],
    ids=["name-with-a-space", "value-with-a-newline"],
)
def test_bad_environment_is_refused_before_anything_is_written(tmp_path: Path, environment: dict[str, str]) -> None:
    """A newline would start a new variable in the EnvironmentFile (or a name systemd refuses): the check stops it."""
    checks = [t for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text()) if t["name"] == "Check the role's inputs"]
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "vars": {"toil_cluster": "demo", "toil_region": "us-west-2", "toil_zone": "us-west-2c"},
        "tasks": checks,
    }
    extra = {"autoscaler_node_types": "t3.large", "autoscaler_workers": "0-4", "autoscaler_environment": environment}
    result = run_ansible_playbook(play, dict(os.environ), tmp_path, extra_vars=extra, expect_rc=None, timeout=120)
    assert result.rc != 0
    assert "autoscaler_environment maps variable names" in result.stdout


def test_the_role_checks_units_before_installing_them() -> None:
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    names = [t["name"] for t in tasks]
    verify = names.index("Check the units with systemd-analyze verify")
    assert names.index("Render the units for checking") < verify < names.index("Install the checked units")
