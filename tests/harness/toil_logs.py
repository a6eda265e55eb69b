"""The log lines a real Toil 9.6 workflow wrote (tests/fixtures/toil-logs/, captured by its capture.py) and the
metrics the dashboard role's mtail program must export for them (test_role_dashboard.py on this machine, the
molecule scenario extensions/molecule/dashboard on a podman host: ``python -m harness.toil_logs`` prints them as
one PromQL query and its answer, with the fixture's path, as JSON)."""

from __future__ import annotations

import json

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


def promql() -> dict[str, object]:
    """EXPECTED as one PromQL query over all its metrics (the target's and mtail's labels summed away, the metric's
    name kept as the label ``metric``) and the answer it must give: {the series' labels as sorted JSON: value}."""
    wanted: dict[str, float] = {}
    for selector, value in EXPECTED.items():
        name, _sep, labels = selector.partition("{")
        pairs = dict(item.split("=", 1) for item in labels.rstrip("}").split(",")) if labels else {}
        wanted[json.dumps({"metric": name, **{k: v.strip('"') for k, v in pairs.items()}}, sort_keys=True)] = float(value)
    names = "|".join(sorted({json.loads(series)["metric"] for series in wanted}))
    query = f'sum without (instance, job, prog, cluster) (label_replace({{__name__=~"{names}"}}, "metric", "$1", "__name__", "(.+)"))'
    return {"query": query, "wanted": wanted}


if __name__ == "__main__":
    print(json.dumps({"messages": str(FIXTURES / "messages.log"), **promql()}))
