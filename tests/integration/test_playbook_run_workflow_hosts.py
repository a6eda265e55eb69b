"""playbooks/run_workflow.yml on a leader where the toil role installed the real Toil 9.6.0: a podman test host (Debian
12, systemd) over real SSH, the workflows run as the login user, their AWS job stores on the endpoint.

The role is converged once, with only the extras these runs use (``aws`` for the job store, ``cwl`` for
toil-cwl-runner), from the harness's wheelhouse (harness.wheelhouses, mounted read-only) through
``toil_pip_extra_args: --no-index --find-links ...``. What the role itself gives a leader (every default extra, the
environment for login shells and systemd, the users' kubeconfigs, idempotence) is the molecule scenario
extensions/molecule/toil. Here: a Python workflow (children and a follow-on) and a CWL CommandLineTool run to
completion with the single-machine batch system, the playbook reports the store Toil wrote and cleans it; a failing
workflow keeps its store, and ``restart`` resumes it. The host reaches the endpoint through an ssh tunnel (see the
``run_workflow`` fixture). The container and network are removed at the end, also after a failure.
"""

from __future__ import annotations

import shlex
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import wheelhouses
from harness.endpoint import ACCESS_KEY, SECRET_KEY
from harness.hosts import podman_hosts, role_hosts
from harness.hosts.role_hosts import ansible_env, base_env, failures
from harness.playbooks import PlaybookResult, run_ansible_playbook
from harness.toil_workflows import SQUARES

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

LEADER = "tcl-toil-leader"
WHEELHOUSE_MOUNT = "/srv/wheelhouse"
CLUSTER, REGION, ZONE = "lab", "us-west-2", "us-west-2b"
TUNNEL_PORT = 15000
HOSTVARS = {LEADER: {"toil_cluster": CLUSTER, "toil_region": REGION, "toil_zone": ZONE, "toil_node_type": "leader"}}
# The login user's AWS settings on the leader in the run_workflow tests: the endpoint through the tunnel and the test
# keys, in place of AWS's own endpoint and the instance profile (boto3 reads endpoint_url from the config file).
AWS_ON_THE_LEADER = f"""\
set -eu
install -d -m 0700 -o admin -g admin /home/admin/.aws
printf '[default]\\nregion = {REGION}\\nendpoint_url = http://127.0.0.1:{TUNNEL_PORT}\\n' > /home/admin/.aws/config
printf '[default]\\naws_access_key_id = {ACCESS_KEY}\\naws_secret_access_key = {SECRET_KEY}\\n' > /home/admin/.aws/credentials
chown admin: /home/admin/.aws/config /home/admin/.aws/credentials
chmod 0600 /home/admin/.aws/credentials
"""
CONVERGE = """\
- name: Toil on the leader
  hosts: toil_leaders
  roles:
    - role: toil.cluster.toil
"""
# What these runs need of the role: the Python workflow's AWS job store and toil-cwl-runner; no Kubernetes.
ROLE_VARS = {"toil_extras": ["aws", "cwl"], "toil_pip_extra_args": f"--no-index --find-links {WHEELHOUSE_MOUNT}", "toil_build_packages": []}
CWL_TOOL = """\
cwlVersion: v1.2
class: CommandLineTool
doc: Writes its message to a file.
baseCommand: echo
inputs:
  message:
    type: string
    inputBinding:
      position: 1
stdout: hello.txt
outputs:
  greeting:
    type: stdout
"""
FLAKY_WORKFLOW = '''\
"""One job that fails until the file given exists."""
import os

from toil.common import Toil
from toil.job import Job


def flaky(job, marker):
    if not os.path.exists(marker):
        raise RuntimeError("the stand-in job fails until " + marker + " exists")
    return "fixed"


if __name__ == "__main__":
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--marker", required=True)
    options = parser.parse_args()
    with Toil(options) as workflow:
        print("result", workflow.restart() if options.restart else workflow.start(Job.wrapJobFn(flaky, options.marker)))
'''


@dataclass
class Leader:
    lab: podman_hosts.PodmanLab
    workdir: Path

    @property
    def host(self) -> podman_hosts.Host:
        return self.lab.hosts[LEADER]


@pytest.fixture(scope="module")
def leader(tmp_path_factory: pytest.TempPathFactory) -> Generator[Leader, None, None]:
    podman_hosts.build_image()
    workdir = tmp_path_factory.mktemp("run-workflow")
    lab = podman_hosts.PodmanLab(workdir / "lab", mounts=[(str(wheelhouses.toil()), WHEELHOUSE_MOUNT)])
    try:
        lab.start([LEADER], HOSTVARS)
        inventory = lab.inventory({"toil_leaders": [LEADER]})
        run = run_ansible_playbook(
            CONVERGE,
            base_env(),
            workdir / "converge",
            inventory=str(inventory),
            extra_vars=ROLE_VARS,
            env=ansible_env(workdir / "cp"),
            expect_rc=None,
            timeout=900,
        )
        assert run.rc == 0, failures(run)
        yield Leader(lab, workdir)
    finally:
        errors = lab.close([workdir / "cp"])
        assert not errors, f"test hosts were not cleaned up: {errors}"


@pytest.fixture
def run_workflow(leader: Leader, aws, run_playbook, key_pair, tmp_path: Path) -> Generator[Callable[..., PlaybookResult], None, None]:
    """``run_workflow(workflow_path, job_store, expect_rc=0, **variables)`` runs the run_workflow playbook against
    this leader with Toil's single-machine batch system.

    The cluster is launched on the endpoint (provisioning only) and its leader's instance ID mapped to this host, so
    the playbook finds it as it finds a real one. The host reaches the endpoint as a leader reaches AWS: through an
    ssh tunnel from its 127.0.0.1:15000 to the endpoint, and the login user's ~/.aws (the endpoint and the test keys),
    which stand in for AWS's own endpoint and the instance profile. Both are removed at the end."""
    instance_id = role_hosts.launch_provisioned_leader(aws, run_playbook, key_pair, CLUSTER, ZONE)
    inventory = role_hosts.stand_in_inventory(leader.host, leader.lab.key, instance_id, CLUSTER, tmp_path / "inventory.json")
    leader.host.sh(AWS_ON_THE_LEADER)
    forward = f"127.0.0.1:{TUNNEL_PORT}:127.0.0.1:{urllib.parse.urlsplit(aws.url).port}"
    tunnel = subprocess.Popen(leader.lab.ssh_command(leader.host, "-N", "-o", "ExitOnForwardFailure=yes", "-R", forward), stderr=subprocess.PIPE, text=True)
    try:
        probe = f"import socket; socket.create_connection(('127.0.0.1', {TUNNEL_PORT}), 1)"
        deadline = time.monotonic() + 30
        while leader.host.sh(f"python3 -c {shlex.quote(probe)} 2>/dev/null && echo up || true").strip() != "up":
            if tunnel.poll() is not None or time.monotonic() > deadline:
                tunnel.terminate()
                pytest.fail(f"no ssh tunnel from the host to the endpoint: {tunnel.communicate(timeout=10)[1]}")
            time.sleep(0.3)

        def run(workflow: Path, job_store: str, expect_rc: int | None = 0, **variables: object) -> PlaybookResult:
            extra = {"cluster_name": CLUSTER, "zone": ZONE, "workflow": str(workflow), "job_store": job_store, "batch_system": "single_machine"}
            extra |= {"poll_interval": 2, **variables}
            env = role_hosts.ansible_env(leader.workdir / "cp")
            return run_playbook("playbooks/run_workflow.yml", extra_vars=extra, inventory=inventory, env=env, expect_rc=expect_rc)

        yield run
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)
        leader.host.sh("rm -rf /home/admin/.aws")


def remote_dir(job_store: str) -> str:
    return f"/home/admin/toil-workflows/{job_store.rsplit(':', maxsplit=1)[-1]}"


def buckets(aws) -> list[str]:
    return [bucket["Name"] for bucket in aws.client("s3").list_buckets()["Buckets"]]


def test_run_workflow_runs_toil_as_the_login_user_and_a_failed_run_resumes_with_restart(leader: Leader, run_workflow, aws, tmp_path: Path) -> None:
    """A Python workflow (children and a follow-on) to completion on the leader: Toil writes its AWS job store, the
    playbook reports it from the controller and cleans it. Then a failing one: the play fails, the store is kept, and
    once the cause is fixed ``restart`` resumes it to success."""
    workflow = tmp_path / "squares.py"
    workflow.write_text(SQUARES)
    store = f"aws:{REGION}:lab-squares"
    result = run_workflow(workflow, store, toil_options=["--clean", "never", "--maxCores", "1"], workflow_args=["--out", f"{remote_dir(store)}/sum.txt"])
    report = result.task("Report")["msg"]
    assert report["succeeded"] is True and str(report["rc"]) == "0", report
    assert report["command"].startswith(f"python3 squares.py {store} --batchSystem single_machine --clean never"), report["command"]
    assert "result 30" in report["log_tail"], report["log_tail"]
    # Written by Toil on the leader, read by toil_jobstore_info on the controller: a Toil 9.1+ store, the workflow done.
    assert report["store"]["exists"] is True and report["store"]["bucket"] == "lab-squares--toil", report["store"]
    assert report["store"]["workflow"]["initialized"] is True and report["store"]["workflow"]["status"] == "completed", report["store"]
    assert leader.host.sh(f"stat -c '%U %s' {remote_dir(store)}/sum.txt && cat {remote_dir(store)}/sum.txt").split() == ["admin", "2", "30"]
    assert result.task("Remove the job store (toil clean)").get("changed") is True
    assert "lab-squares--toil" not in buckets(aws)

    flaky = tmp_path / "flaky.py"
    flaky.write_text(FLAKY_WORKFLOW)
    store = f"aws:{REGION}:lab-flaky"
    marker = f"{remote_dir(store)}/fixed"
    result = run_workflow(flaky, store, expect_rc=2, toil_options=["--retryCount", "0"], workflow_args=["--marker", marker])
    assert [name for name, _host, _msg in result.failed_tasks()] == ["Fail when the workflow failed (the job store is kept for --restart)"]
    report = result.task("Report")["msg"]
    assert report["finished"] is True and str(report["rc"]) not in ("0", "-1"), report
    assert any("the stand-in job fails until" in line for line in report["log_tail"]), report["log_tail"]
    assert report["store"]["exists"] is True and report["store"]["workflow"]["status"] == "failed", report["store"]
    assert "lab-flaky--toil" in buckets(aws)

    # The cause fixed, Toil's --restart resumes the kept store; this time it succeeds and the store is cleaned.
    leader.host.sh(f"touch {marker}")
    result = run_workflow(flaky, store, restart=True, toil_options=["--retryCount", "0"], workflow_args=["--marker", marker])
    report = result.task("Report")["msg"]
    assert report["succeeded"] is True and " --restart " in report["command"], report
    assert "result fixed" in report["log_tail"], report["log_tail"]
    assert "lab-flaky--toil" not in buckets(aws)


def test_run_workflow_runs_a_cwl_workflow_with_toil_cwl_runner(leader: Leader, run_workflow, aws, tmp_path: Path) -> None:
    """A .cwl file runs with toil-cwl-runner (the role's cwl extra), its outputs in the workflow's directory."""
    tool = tmp_path / "hello.cwl"
    tool.write_text(CWL_TOOL)
    store = f"aws:{REGION}:lab-hello"
    result = run_workflow(tool, store, workflow_args=["--message", "hello from CWL"])
    report = result.task("Report")["msg"]
    assert report["succeeded"] is True, report
    assert report["command"].startswith(f"toil-cwl-runner hello.cwl --jobStore {store} --batchSystem single_machine"), report["command"]
    assert leader.host.read(f"{remote_dir(store)}/hello.txt") == "hello from CWL\n"
    assert "lab-hello--toil" not in buckets(aws)
