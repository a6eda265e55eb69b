"""The toil role's environment, on this machine (no container host): the role's appliance task runs against the
real Toil 9.6.0 in .venv-toil, and the environment file it renders is read back by a shell as users get it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.paths import REPO
from harness.playbooks import run_ansible_playbook

ROLE = REPO / "roles" / "toil"


@pytest.fixture(scope="module")
def environment_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    tasks = [t for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text()) if t["name"] == "Read the appliance image of the installed Toil"]
    tasks.append(
        {"name": "Render", "ansible.builtin.template": {"src": str(ROLE / "templates" / "environment.j2"), "dest": str(out / "environment"), "mode": "0644"}}
    )
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "vars": {"placement": {"availability_zone": "us-west-2a"}},
        "tasks": tasks,
    }
    extra = {"toil_venv": str(REPO / ".venv-toil"), "toil_aws_tags": {"Owner": "me's team"}, "toil_s3_host": "minio.local"}
    run_ansible_playbook(play, dict(os.environ), tmp_path_factory.mktemp("playbook"), extra_vars=extra, timeout=120)
    return out / "environment"


def test_environment_matches_the_installed_toil(environment_file: Path) -> None:
    script = f"set -a; . {environment_file}; env"
    env = dict(line.split("=", 1) for line in subprocess.run(["sh", "-c", script], env={}, capture_output=True, text=True, check=True).stdout.splitlines())
    assert env["TOIL_APPLIANCE_SELF"] == "quay.io/ucsc_cgl/toil:9.6.0-6793fc7f112785e13a229691d6de23225e73339e-py3.10"
    assert env["TOIL_AWS_ZONE"] == "us-west-2a"
    assert env["TOIL_AWS_TAGS"] == '{"Owner":"me\'s team"}'
    assert env["TOIL_KUBERNETES_HOST_PATH"] == "/var/lib/toil"
    assert env["KUBECONFIG"] == "/etc/kubernetes/admin.conf"
    assert env["TOIL_S3_HOST"] == "minio.local"
    assert "TOIL_S3_PORT" not in env
