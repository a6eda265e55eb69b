"""run_workflow's checks on the controller, before any leader is reached: an existing job store is refused without
``restart``, a missing one with it. Its runs of the real Toil on a leader (a Python workflow, a failure kept and
resumed with ``restart``, a CWL workflow) are in test_playbook_run_workflow_hosts.py, on a podman host where the
toil role installed Toil.
"""

from __future__ import annotations

import pytest

from harness.jobstores import make_job_store

ZONE, REGION, CLUSTER = "us-west-2a", "us-west-2", "pb-w"


def workflow_vars(tmp_path, name, restart):
    workflow = tmp_path / "sort.py"
    workflow.write_text("print('never run')\n")
    return {"cluster_name": CLUSTER, "zone": ZONE, "workflow": str(workflow), "job_store": f"aws:{REGION}:{name}", "restart": restart}


@pytest.mark.parametrize(
    ("restart", "make_store", "refusal"),
    [(False, True, "already exists"), (True, False, "does not exist: there is nothing to restart")],
    ids=["existing-store-without-restart", "missing-store-with-restart"],
)
def test_run_workflow_refuses_a_job_store_that_does_not_match_restart(aws, run_playbook, aws_calls, tmp_path, restart, make_store, refusal):
    """Refused before anything is uploaded or run, and before any leader is looked for."""
    if make_store:
        make_job_store(aws, "pb-w-old", objects={"config.pickle": b"config"}, cleanup=aws.add_cleanup)
    result = run_playbook("playbooks/run_workflow.yml", extra_vars=workflow_vars(tmp_path, "pb-w-old", restart), env=aws_calls.env, expect_rc=2)
    failed = result.failed_tasks()
    assert [name for name, _host, _msg in failed] == ["Refuse to start over an existing store without restart, or to restart a missing one"]
    assert refusal in failed[0][2]
    assert aws_calls.mutating_calls() == []
