"""The toil role's environment, on this machine (no container host): the role's appliance task runs against the
real Toil 9.6.0 in .venv-toil, and the environment file it renders is read back by a shell as users get it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
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
    tasks.append(
        {
            "name": "Render the profile script",
            "ansible.builtin.template": {"src": str(ROLE / "templates" / "profile.sh.j2"), "dest": str(out / "profile.sh"), "mode": "0644"},
            "vars": {"_toil_environment_file": str(out / "environment")},
        }
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


def test_the_environment_is_written_for_root_and_toils_group_only() -> None:
    """It holds user-given values (toil_extra_environment, toil_aws_tags): 0640 root:<toil_group>, not 0644."""
    tasks = {t["name"]: t for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())}
    template = tasks["Write the environment Toil's users expect (systemd EnvironmentFile syntax)"]["ansible.builtin.template"]
    assert (template["owner"], template["group"], template["mode"]) == ("root", "{{ toil_group }}", "0640")
    members = tasks["Add the users who run Toil to it (keeping their other groups)"]["ansible.builtin.user"]
    assert members["append"] is True  # the login user keeps its other groups (sudo, ...)
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["toil_group"] == "toil"
    assert "ansible_user" in defaults["toil_group_members"]  # the user Ansible logs in as runs Toil


def test_login_shells_of_other_users_get_the_path_without_an_error(environment_file: Path) -> None:
    """The profile script skips the environment it cannot read (users outside the toil group) without a message."""
    with tempfile.TemporaryDirectory(dir="/tmp") as shared:  # pytest's own directories are root's only (0700)
        here = Path(shared)
        here.chmod(0o755)
        shutil.copy(environment_file, here / "environment")
        (here / "environment").chmod(0o640)  # root:root here; on the leader root:toil
        profile = (environment_file.parent / "profile.sh").read_text().replace(str(environment_file), str(here / "environment"))
        (here / "profile.sh").write_text(profile)
        (here / "profile.sh").chmod(0o644)
        script = f". {here / 'profile.sh'}; echo TAGS=${{TOIL_AWS_TAGS:-}}"
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script]
        out = subprocess.run(nobody, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True)
        assert (out.stdout, out.stderr) == ("TAGS=\n", "")
        member = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True)
        assert (member.stdout, member.stderr) == ('TAGS={"Owner":"me\'s team"}\n', "")
