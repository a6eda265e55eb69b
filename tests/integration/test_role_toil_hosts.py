"""Role ``toil`` converged on a podman test host (Debian 12, systemd) over real SSH, then real Toil as the login user.

The real Toil 9.6.0 with the role's default extras (``aws``, ``kubernetes``, ``cwl``, ``wdl``) installs into the
role's virtual environment. Its wheels come from a wheelhouse on this machine (harness.wheelhouses: ``pip wheel`` into
.venv/wheelhouse/toil-9.6.0, made by ``make setup`` for the role's extras and reused, mounted read-only) through the
role's ``toil_pip_extra_args: --no-index --find-links ...``; the role's default is PyPI. ``toil_build_packages: []``
leaves out the compiler: every dependency has a wheel.

Before the role runs, the host gets what the kubernetes role leaves on a leader, as far as Toil cares: an API server
on 127.0.0.1:6443 and a root-only (0600) ``/etc/kubernetes/admin.conf`` for it, as kubeadm writes it. The API server
is the harness's stand-in (tests/harness/kube_api.py, standard library only, run inside the host with python3; its
own CA and a bearer token; each request logged to the journal). Then, as the ssh user in a login shell
(``su - admin``), with the environment the role wrote: the user's own kubeconfig reaches the API and admin.conf does
not open. The run_workflow playbook runs a Python workflow (children and a follow-on) and a CWL CommandLineTool to
completion with the single-machine batch system, as the login user, with an AWS job store on the endpoint (reached
through an ssh tunnel; see the ``run_workflow`` fixture), reports the store Toil wrote and cleans it; a failing
workflow keeps its store. A run with Toil's Kubernetes batch system gets as far as its first API request,
answered; the same run with the old role's ``KUBECONFIG=/etc/kubernetes/admin.conf`` dies on the PermissionError
Toil does not catch. Last, a member whose ``~/.kube`` is a link elsewhere is refused. The container and network are
removed at the end, also after a failure.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import wheelhouses
from harness.endpoint import ACCESS_KEY, SECRET_KEY
from harness.hosts import podman_hosts, role_hosts
from harness.hosts.role_hosts import ansible_env, assert_converged_then_unchanged, base_env, failures
from harness.paths import REPO
from harness.playbooks import PlaybookResult, run_ansible_playbook
from harness.toil_workflows import SQUARES

pytestmark = pytest.mark.hosts  # podman test hosts: one at a time, not in `make check`

LEADER = "tcl-toil-leader"
TOIL_VERSION = "9.6.0"
WHEELHOUSE_MOUNT = "/srv/wheelhouse"
KUBE_API = REPO / "tests" / "harness" / "kube_api.py"
KUBE_API_MOUNT = "/srv/kube_api.py"
KUBE_API_UNIT = "kube-api-stand-in"
CLUSTER, REGION, ZONE = "lab", "us-west-2", "us-west-2b"
TUNNEL_PORT = 15000
HOSTVARS = {LEADER: {"toil_cluster": "lab", "toil_region": "us-west-2", "toil_zone": "us-west-2b", "toil_node_type": "leader"}}
# The cluster's tags as configure_cluster passes them; a user tag as hostile as a tag value can be.
TAGS = {"Name": "lab", "Owner": "me", "clusterName": "lab", "Project": 'it\'s "q" $(touch /tmp/pwned) `id` ${HOME} \\ end\nKUBECONFIG=/x'}
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
# The kubernetes role's leftovers as far as Toil cares: the API (the stand-in, its random token in the kubeconfig
# it writes) and admin.conf as kubeadm writes it, root's, 0600 (tests/harness/hosts/kube-double/kubeadm).
KUBE_API_SETUP = f"""\
set -euo pipefail
install -d -m 0700 /var/lib/kube-api-stand-in
systemd-run --unit={KUBE_API_UNIT} --quiet python3 -u {KUBE_API_MOUNT} serve --host 127.0.0.1 --port 6443 \\
    --cert-dir /var/lib/kube-api-stand-in --san 127.0.0.1 --verbose
for _ in $(seq 150); do
    [ -s /var/lib/kube-api-stand-in/kubeconfig ] && python3 -c 'import socket; socket.create_connection(("127.0.0.1", 6443), 1)' 2>/dev/null && break
    sleep 0.2
done
install -d -m 0755 /etc/kubernetes
install -m 0600 -o root -g root /var/lib/kube-api-stand-in/kubeconfig /etc/kubernetes/admin.conf
"""
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
    inventory: Path
    workdir: Path
    runs: list[PlaybookResult] = field(default_factory=list)

    @property
    def host(self) -> podman_hosts.Host:
        return self.lab.hosts[LEADER]

    def login_shell(self, script: str, check: bool = True) -> str:
        """Run ``script`` as the ssh user in a login shell (where /etc/profile.d/toil.sh applies)."""
        return self.host.sh(f"su - admin -c {shlex.quote(script)}", check=check)

    def api_requests(self) -> list[tuple[str, str, int]]:
        """(method, path with query, status) of every request the API stand-in answered so far, in order."""
        log = self.host.sh(f"journalctl -q -u {KUBE_API_UNIT} -o cat --no-pager")
        return [(m[1], m[2], int(m[3])) for m in re.finditer(r'"([A-Z]+) (\S+) HTTP/1\.1" (\d{3})', log)]

    def api_requests_after(self, seen: int, timeout: float = 10) -> list[tuple[str, str, int]]:
        """The requests after the first ``seen``, once there are any (the journal lags a little)."""
        deadline = time.monotonic() + timeout
        while len(requests := self.api_requests()) <= seen and time.monotonic() < deadline:
            time.sleep(0.5)
        return requests[seen:]

    def converge(self, name: str, extra: dict, args: tuple[str, ...] = ()) -> PlaybookResult:
        overrides = {"toil_pip_extra_args": f"--no-index --find-links {WHEELHOUSE_MOUNT}", "toil_build_packages": [], "toil_aws_tags": TAGS, **extra}
        env = ansible_env(self.workdir / "cp")
        return run_ansible_playbook(
            CONVERGE, base_env(), self.workdir / name, inventory=str(self.inventory), extra_vars=overrides, env=env, args=args, expect_rc=None, timeout=900
        )


@pytest.fixture(scope="module")
def leader(tmp_path_factory: pytest.TempPathFactory) -> Generator[Leader, None, None]:
    if not podman_hosts.have_podman():
        pytest.fail("podman is missing: run `make setup` (it installs the test hosts' Debian packages)", pytrace=False)
    podman_hosts.build_image()
    workdir = tmp_path_factory.mktemp("toil-role")
    lab = podman_hosts.PodmanLab(workdir / "lab", mounts=[(str(wheelhouses.toil()), WHEELHOUSE_MOUNT), (str(KUBE_API), KUBE_API_MOUNT)])
    try:
        lab.start([LEADER], HOSTVARS)
        lab.hosts[LEADER].sh(KUBE_API_SETUP)
        result = Leader(lab, lab.inventory({"toil_leaders": [LEADER]}), workdir)
        for run in ("first", "second"):
            result.runs.append(result.converge(run, {}))
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
    script = "import boto3, kubernetes, cwltool, cwl_utils, WDL, toil.batchSystems.kubernetes, toil.jobStores.aws.jobStore, toil.cwl.cwltoil; print('ok')"
    assert leader.host.sh(f"/opt/toil/bin/python -c {shlex.quote(script)}").strip() == "ok"
    # The runners run_workflow picks for .cwl and .wdl workflows, on the login user's PATH.
    assert leader.login_shell("toil-cwl-runner --version 2>/dev/null").strip() == TOIL_VERSION
    assert leader.login_shell("toil-wdl-runner --version 2>/dev/null").strip() == TOIL_VERSION


def test_login_shells_get_toil_and_its_environment(leader: Leader) -> None:
    env = dict(entry.split("=", 1) for entry in leader.login_shell("env -0").split("\0") if "=" in entry)
    here = subprocess.run(
        [str(REPO / ".venv-toil" / "bin" / "python"), "-c", "from toil.version import dockerRegistry, dockerTag; print(f'{dockerRegistry}/toil:{dockerTag}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert env["TOIL_APPLIANCE_SELF"] == here  # the appliance of the same Toil, read independently on this machine
    assert env["TOIL_APPLIANCE_SELF"].startswith(f"quay.io/ucsc_cgl/toil:{TOIL_VERSION}-")
    assert env["TOIL_AWS_ZONE"] == "us-west-2b"  # the toil_ec2 inventory's toil_zone
    assert json.loads(env["TOIL_AWS_TAGS"]) == TAGS  # the cluster's tags, the hostile one intact
    assert env["TOIL_KUBERNETES_HOST_PATH"] == "/var/lib/toil"
    assert env["TOIL_KUBERNETES_PRIVILEGED"] == "True"  # toil_allow_fuse's default, as Toil's --allowFuse
    assert env["KUBECONFIG"] == "/home/admin/.kube/config"  # the user's own, not kubeadm's root-only admin.conf
    assert not any(name.startswith("TOIL_S3_") for name in env)
    assert leader.login_shell("command -v toil").strip() == "/opt/toil/bin/toil"
    assert leader.host.sh("test -d /var/lib/toil && echo yes").strip() == "yes"
    assert leader.host.sh("test -e /tmp/pwned && echo pwned || echo clean").strip() == "clean"


def test_systemd_reads_the_environment_file_as_login_shells_do(leader: Leader) -> None:
    """The file is systemd EnvironmentFile syntax: a unit reading it gets the same values, the hostile tag intact."""
    unit = leader.host.sh("systemd-run --quiet --wait --pipe -p EnvironmentFile=/etc/toil/environment /usr/bin/env -0")
    from_systemd = dict(entry.split("=", 1) for entry in unit.split("\0") if entry.startswith("TOIL_"))
    login = dict(entry.split("=", 1) for entry in leader.login_shell("env -0").split("\0") if entry.startswith("TOIL_"))
    assert from_systemd == login
    assert json.loads(from_systemd["TOIL_AWS_TAGS"]) == TAGS


def test_the_environment_is_for_toils_group_only(leader: Leader) -> None:
    """User-given values (toil_extra_environment, toil_aws_tags) are in it: root and group toil read it, others not."""
    host = leader.host
    assert host.sh("stat -c '%U %G %a' /etc/toil/environment").split() == ["root", "toil", "640"]
    assert "toil" in host.sh("id -nG admin").split()  # the login user, who runs Toil
    assert host.sh("su -s /bin/sh nobody -c 'cat /etc/toil/environment' 2>&1 || echo refused", check=False).strip().endswith("refused")
    # Others still get Toil on the PATH, and no error, in their login shells.
    other = host.sh("su -s /bin/sh nobody -c '. /etc/profile.d/toil.sh && echo PATH=$PATH' 2>&1", check=False)
    assert other.strip() == other.strip().splitlines()[-1] and "/opt/toil/bin" in other, other


def test_the_login_user_reaches_kubernetes_with_its_own_kubeconfig(leader: Leader) -> None:
    host = leader.host
    assert host.sh("stat -c '%U %G %a' /etc/kubernetes/admin.conf").split() == ["root", "root", "600"]  # as kubeadm
    assert host.sh("stat -c '%U %G %a' /home/admin/.kube /home/admin/.kube/config").split() == ["admin", "admin", "700", "admin", "admin", "600"]
    assert host.sh("cmp /etc/kubernetes/admin.conf /home/admin/.kube/config && echo same").strip() == "same"
    denied = leader.login_shell('cat /etc/kubernetes/admin.conf >/dev/null 2>&1 && echo read || echo denied; test -r "$KUBECONFIG" && echo mine')
    assert denied.split() == ["denied", "mine"]
    seen = len(leader.api_requests())
    # What kubectl does, with the kubernetes client Toil uses: the current context of $KUBECONFIG, its CA and token.
    script = "from kubernetes import client, config; config.load_kube_config(); print(len(client.CoreV1Api().list_node().items))"
    assert leader.login_shell(f"python -c {shlex.quote(script)}").strip() == "0"
    assert leader.api_requests_after(seen) == [("GET", "/api/v1/nodes", 200)]


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


def test_a_kubernetes_run_reaches_the_api_and_the_old_kubeconfig_does_not(leader: Leader) -> None:
    """Toil's Kubernetes batch system as the login user: with the user's own kubeconfig its first request reaches the
    API and is answered; with the old role's KUBECONFIG=/etc/kubernetes/admin.conf, it dies before any request on
    the PermissionError its _api() does not catch (it catches only ConfigException)."""
    # At most 30 s (the first request comes within seconds): the stand-in answers like a cluster with metrics-server,
    # and no kubelet runs the job's pod, so the good run waits for it until the timeout stops it.
    leader.host.sh(f"cat > /home/admin/squares.py <<'EOF'\n{SQUARES}EOF\nchown admin: /home/admin/squares.py")
    run = "cd ~ && timeout 30 python squares.py file:$HOME/{store} --batchSystem kubernetes --out $HOME/{store}.txt > {store}.log 2>&1; echo rc=$?"
    seen = len(leader.api_requests())
    old = leader.login_shell("export KUBECONFIG=/etc/kubernetes/admin.conf; " + run.format(store="k8s-old"), check=False)
    old_log = leader.host.read("/home/admin/k8s-old.log")
    assert old.strip() != "rc=0" and "PermissionError: [Errno 13] Permission denied: '/etc/kubernetes/admin.conf'" in old_log, old_log[-3000:]
    assert leader.api_requests_after(seen, timeout=2) == []

    leader.login_shell(run.format(store="k8s"), check=False)  # it goes on past what the test needs: its end is not judged
    requests = leader.api_requests_after(seen)
    log = leader.host.read("/home/admin/k8s.log")
    assert requests, log[-3000:]
    method, path, status = requests[0]
    # Toil's first request: the Kubernetes jobs of this run, by its toil_run label, in the kubeconfig's namespace.
    assert (method, path.split("?")[0], status) == ("GET", "/apis/batch/v1/namespaces/default/jobs", 200), (requests[:5], log[-3000:])
    assert re.search(r"labelSelector=toil_run%3Dtoil-[0-9a-f-]{36}", path), path
    assert "PermissionError" not in log


def test_a_member_whose_kube_directory_is_a_link_is_refused(leader: Leader) -> None:
    """Root writes into members' homes: a member's ~/.kube linked to a system directory would have root chown it to
    the member and copy the cluster's credentials there. The role stops, naming the link, before either."""
    leader.host.sh("id mallory >/dev/null 2>&1 || useradd -m -s /bin/bash mallory; ln -sfn /etc/cron.d /home/mallory/.kube")
    run = leader.converge("link", {"toil_group_members": ["admin", "mallory"]}, args=("--tags", "toil_configure"))
    assert run.rc == 2, failures(run)
    failed = run.failed_tasks()
    assert [(name.split(" : ")[-1], host) for name, host, _message in failed] == [("Refuse a ~/.kube or ~/.kube/config that is a symbolic link", LEADER)]
    refused = run.task("Refuse a ~/.kube or ~/.kube/config that is a symbolic link", host=LEADER)["results"]
    assert [result["msg"].split(":")[0] for result in refused if result.get("failed")] == ["/home/mallory/.kube is a symbolic link"]
    assert leader.host.sh("stat -c '%U %G %a' /etc/cron.d").split() == ["root", "root", "755"]
    assert leader.host.sh("test -e /etc/cron.d/config && echo copied || echo absent").strip() == "absent"
