"""Role ``toil`` converged on a podman test host (Debian 12, systemd) over real SSH, then a real Toil workflow.

The real Toil 9.6.0 with the ``aws`` and ``kubernetes`` extras installs into the role's virtual environment. Its
wheels come from a wheelhouse on this machine (``pip wheel`` into .venv/wheelhouse/toil-9.6.0, made once and reused,
mounted read-only into the host) through the role's ``toil_pip_extra_args: --no-index --find-links ...``; the role's
default is PyPI. ``toil_build_packages: []`` leaves out the compiler: every dependency has a wheel. A small Python
workflow (children and a follow-on) then runs on the host with the single-machine batch system, as the ssh user in a
login shell, with the environment the role wrote. The container and network are removed at the end, also after a
failure.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.hosts import podman_hosts
from harness.hosts.role_hosts import ansible_env, assert_converged_then_unchanged, base_env
from harness.paths import REPO
from harness.playbooks import PlaybookResult, run_ansible_playbook

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

LEADER = "tcl-toil-leader"
TOIL_VERSION = "9.6.0"
WHEELHOUSE = REPO / ".venv" / "wheelhouse" / f"toil-{TOIL_VERSION}"
WHEELHOUSE_MOUNT = "/srv/wheelhouse"
HOSTVARS = {LEADER: {"toil_cluster": "lab", "toil_region": "us-west-2", "toil_zone": "us-west-2b", "toil_node_type": "leader"}}
CONVERGE = """\
- name: Toil on the leader
  hosts: toil_leaders
  roles:
    - role: toil.cluster.toil
"""
WORKFLOW = '''\
"""Squares of 1..4 in child jobs, summed by a follow-on: the sum is written to the file given."""
import sys

from toil.common import Toil
from toil.job import Job


def square(job, n):
    return n * n


def total(job, values, out):
    with open(out, "w") as stream:
        stream.write(str(sum(values)))
    return sum(values)


def root(job, out):
    children = [job.addChildJobFn(square, n).rv() for n in range(1, 5)]
    return job.addFollowOnJobFn(total, children, out).rv()


if __name__ == "__main__":
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    options.clean = "always"
    with Toil(options) as workflow:
        print("result", workflow.start(Job.wrapJobFn(root, options.out)))
'''


def wheelhouse() -> Path:
    """Toil's wheels for this machine's Python (the hosts' too: Debian 12, CPython 3.11), made once."""
    if not any(WHEELHOUSE.glob(f"toil-{TOIL_VERSION}-*.whl")):
        pip = [str(REPO / ".venv" / "bin" / "pip"), "wheel", "-q", f"toil[aws,kubernetes]=={TOIL_VERSION}", "-w", str(WHEELHOUSE)]
        subprocess.run([*pip, "-c", str(REPO / "tests" / "toil-constraints.txt")], check=True, capture_output=True, timeout=900)
    return WHEELHOUSE


@dataclass
class Leader:
    lab: podman_hosts.PodmanLab
    runs: list[PlaybookResult] = field(default_factory=list)

    @property
    def host(self) -> podman_hosts.Host:
        return self.lab.hosts[LEADER]

    def login_shell(self, script: str, check: bool = True) -> str:
        """Run ``script`` as the ssh user in a login shell (where /etc/profile.d/toil.sh applies)."""
        return self.host.sh(f"su - admin -c {shlex.quote(script)}", check=check)


@pytest.fixture(scope="module")
def leader(tmp_path_factory: pytest.TempPathFactory) -> Generator[Leader, None, None]:
    if not podman_hosts.have_podman():
        pytest.fail("podman is missing: run `make setup` (it installs the test hosts' Debian packages)", pytrace=False)
    podman_hosts.build_image()
    workdir = tmp_path_factory.mktemp("toil-role")
    lab = podman_hosts.PodmanLab(workdir / "lab", mounts=[(str(wheelhouse()), WHEELHOUSE_MOUNT)])
    try:
        lab.start([LEADER], HOSTVARS)
        inventory = lab.inventory({"toil_leaders": [LEADER]})
        overrides = {"toil_pip_extra_args": f"--no-index --find-links {WHEELHOUSE_MOUNT}", "toil_build_packages": []}
        result = Leader(lab)
        env = ansible_env(workdir / "cp")
        for run in ("first", "second"):
            result.runs.append(
                run_ansible_playbook(CONVERGE, base_env(), workdir / run, inventory=str(inventory), extra_vars=overrides, env=env, expect_rc=None, timeout=900)
            )
            if result.runs[-1].rc != 0:
                break
        yield result
    finally:
        errors = lab.close([workdir / "cp"])
        assert not errors, f"test hosts were not cleaned up: {errors}"


def test_converges_then_changes_nothing(leader: Leader) -> None:
    assert_converged_then_unchanged(leader.runs, LEADER)


def test_the_pinned_toil_with_its_extras_is_installed(leader: Leader) -> None:
    assert leader.host.sh("/opt/toil/bin/toil --version").strip() == TOIL_VERSION
    script = "import boto3, kubernetes, toil.batchSystems.kubernetes, toil.jobStores.aws.jobStore; print('ok')"
    assert leader.host.sh(f"/opt/toil/bin/python -c {shlex.quote(script)}").strip() == "ok"


def test_login_shells_get_toil_and_its_environment(leader: Leader) -> None:
    env = dict(line.split("=", 1) for line in leader.login_shell("env").splitlines() if "=" in line)
    here = subprocess.run(
        [str(REPO / ".venv-toil" / "bin" / "python"), "-c", "from toil.version import dockerRegistry, dockerTag; print(f'{dockerRegistry}/toil:{dockerTag}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert env["TOIL_APPLIANCE_SELF"] == here  # the appliance of the same Toil, read independently on this machine
    assert env["TOIL_APPLIANCE_SELF"].startswith(f"quay.io/ucsc_cgl/toil:{TOIL_VERSION}-")
    assert env["TOIL_AWS_ZONE"] == "us-west-2b"  # the toil_ec2 inventory's toil_zone
    assert env["TOIL_KUBERNETES_HOST_PATH"] == "/var/lib/toil"
    assert env["KUBECONFIG"] == "/etc/kubernetes/admin.conf"
    assert "TOIL_AWS_TAGS" not in env and not any(name.startswith("TOIL_S3_") for name in env)
    assert leader.login_shell("command -v toil").strip() == "/opt/toil/bin/toil"
    assert leader.host.sh("test -d /var/lib/toil && echo yes").strip() == "yes"


def test_the_environment_is_for_toils_group_only(leader: Leader) -> None:
    """User-given values (toil_extra_environment, toil_aws_tags) are in it: root and group toil read it, others not."""
    host = leader.host
    assert host.sh("stat -c '%U %G %a' /etc/toil/environment").split() == ["root", "toil", "640"]
    assert "toil" in host.sh("id -nG admin").split()  # the login user, who runs Toil
    assert host.sh("su -s /bin/sh nobody -c 'cat /etc/toil/environment' 2>&1 || echo refused", check=False).strip().endswith("refused")
    # Others still get Toil on the PATH, and no error, in their login shells.
    other = host.sh("su -s /bin/sh nobody -c '. /etc/profile.d/toil.sh && echo PATH=$PATH' 2>&1", check=False)
    assert other.strip() == other.strip().splitlines()[-1] and "/opt/toil/bin" in other, other


def test_a_workflow_runs_with_the_single_machine_batch_system(leader: Leader) -> None:
    leader.host.sh(f"cat > /home/admin/squares.py <<'EOF'\n{WORKFLOW}EOF\nchown admin: /home/admin/squares.py")
    command = "cd ~ && python squares.py file:$HOME/jobstore --batchSystem single_machine --maxCores 1 --out $HOME/sum.txt 2>&1"
    output = leader.login_shell(command + "; echo rc=$?", check=False)
    assert "rc=0" in output, output[-5000:]
    assert "result 30" in output
    assert leader.host.read("/home/admin/sum.txt") == "30"
    assert leader.host.sh("test -e /home/admin/jobstore && echo left || echo cleaned").strip() == "cleaned"
