"""run_workflow against a stand-in leader: a podman test host (Debian 12, sshd; tests/harness/hosts) takes the place
of the leader that launch_cluster made on the embedded endpoint. The inventory maps the leader's instance ID to
the container (as a toil_ec2 source's ``compose`` would), so the playbook finds it the way it finds a real one.

Toil itself is replaced, inside this test only, by a stand-in workflow run with ``runner: bash`` that records
its arguments and exits with a chosen code: the stand-in host cannot reach the embedded endpoint, so a real
Toil there could not use the AWS job store. What is proven: upload, the command line (``--batchSystem
kubernetes``, ``--jobStore aws:...``, ``--restart``, options, arguments), the detached run and its polling,
the report from the real job store (toil_jobstore_info on the endpoint), cleaning it after success, and
keeping it (with a clear failure) after a failed run. The job store is made by the test as a stopped Toil
run leaves it (``<name>--toil`` with ``config.pickle``), so the run is a ``restart``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.hosts import role_hosts
from harness.jobstores import make_job_store

ZONE, REGION, CLUSTER = "us-west-2a", "us-west-2", "pb-w"
STAND_IN_WORKFLOW = """\
#!/bin/bash
# Stand-in for a Toil workflow (this test only): records its arguments, then exits with $STANDIN_RC.
printf '%s\\n' "$@" > args.txt
echo "stand-in workflow ran in $PWD"
sleep 3
exit "${STANDIN_RC:-0}"
"""


def make_store(aws, name):
    """A job store holding only its config (harness.jobstores); removed at teardown if the test did not."""
    return make_job_store(aws, name, objects={"config.pickle": b"config"}, cleanup=aws.add_cleanup).bucket


def buckets(aws):
    return [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]


@pytest.fixture
def stand_in_leader(aws, run_playbook, key_pair, tmp_path):
    """A leader launched on the endpoint (provisioning only) and a podman host standing in for it."""
    with role_hosts.stand_in_leader(aws, run_playbook, key_pair, tmp_path, CLUSTER, ZONE) as leader:
        yield leader


def workflow_vars(tmp_path: Path, name: str, rc: int):
    script = tmp_path / "stand-in.sh"
    script.write_text(STAND_IN_WORKFLOW)
    return {
        "cluster_name": CLUSTER,
        "zone": ZONE,
        "workflow": str(script),
        "runner": f"env STANDIN_RC={rc} bash",  # split into words, as documented
        "job_store": f"aws:{REGION}:{name}",
        "restart": True,
        "toil_options": ["--retryCount", "2"],
        "workflow_args": ["in put.txt"],
        "poll_interval": 1,
    }


@pytest.mark.hosts
def test_run_workflow_runs_detached_reports_and_cleans_the_store_or_keeps_it_after_a_failure(aws, run_playbook, stand_in_leader, tmp_path):
    host, inventory, env = stand_in_leader
    # Success: the stand-in ran with Toil's command line, the store is reported, then cleaned.
    bucket = make_store(aws, "pb-w-ok")
    result = run_playbook("playbooks/run_workflow.yml", extra_vars=workflow_vars(tmp_path, "pb-w-ok", 0), inventory=inventory, env=env)
    report = result.task("Report")["msg"]
    assert report["succeeded"] is True and report["finished"] is True, report
    args = host.read("/home/admin/toil-workflows/pb-w-ok/args.txt").splitlines()
    assert args == ["--jobStore", f"aws:{REGION}:pb-w-ok", "--batchSystem", "kubernetes", "--restart", "--retryCount", "2", "in put.txt"]
    assert report["store"]["exists"] is True  # described before it was cleaned
    assert report["log_tail"] == ["stand-in workflow ran in /home/admin/toil-workflows/pb-w-ok"]
    assert result.task("Remove the job store (toil clean)").get("changed") is True
    assert bucket not in buckets(aws)

    # Failure: the play fails with the exit code and how to resume; the store is kept.
    bucket = make_store(aws, "pb-w-bad")
    result = run_playbook("playbooks/run_workflow.yml", extra_vars=workflow_vars(tmp_path, "pb-w-bad", 3), inventory=inventory, env=env, expect_rc=2)
    failed = result.failed_tasks()
    assert [name for name, _host, _msg in failed] == ["Fail when the workflow failed (the job store is kept for --restart)"]
    assert "rc 3" in failed[0][2] and "restart=true" in failed[0][2]
    assert result.task("Remove the job store (toil clean)").get("skipped") is True
    assert bucket in buckets(aws)


def test_run_workflow_refuses_to_start_over_an_existing_store(aws, run_playbook, aws_calls, tmp_path):
    """Without restart, an existing job store is refused before anything is uploaded or run (no leader needed)."""
    make_store(aws, "pb-w-old")
    extra = dict(workflow_vars(tmp_path, "pb-w-old", 0), restart=False)
    result = run_playbook("playbooks/run_workflow.yml", extra_vars=extra, env=aws_calls.env, expect_rc=2)
    failed = result.failed_tasks()
    assert [name for name, _host, _msg in failed] == ["Refuse to start over an existing store without restart, or to restart a missing one"]
    assert "already exists" in failed[0][2] and "restart=true" in failed[0][2]
    assert aws_calls.mutating_calls() == []
