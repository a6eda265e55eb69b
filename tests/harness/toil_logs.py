"""The log lines a real Toil 9.6 workflow wrote (tests/fixtures/toil-logs/, captured by its capture.py) and the
metrics the dashboard role's mtail program must export for them (test_role_dashboard.py on this machine,
test_role_dashboard_hosts.py on a podman host)."""

from __future__ import annotations

from harness.paths import TOIL_LOG_FIXTURES

FIXTURES = TOIL_LOG_FIXTURES

# What the fixtures must give: the workflow in capture.py (root -> hello, hello, broken; broken fails for good,
# then root). Toil counts a job as completed whether it succeeded or not.
EXPECTED = {
    "total_issued_jobs": 4,
    "total_completed_jobs": 4,
    "total_failed_jobs": 2,
    "missing_jobs": 0,
    'issued_jobs{job_type="root"}': 1,
    'issued_jobs{job_type="hello"}': 2,
    'issued_jobs{job_type="broken"}': 1,
    'completed_jobs{job_type="hello"}': 2,
    'completed_jobs{job_type="broken"}': 1,
    'failed_jobs{job_type="broken"}': 1,
    'failed_jobs{job_type="root"}': 1,
    "autoscaler_queue_size": 3,
}
