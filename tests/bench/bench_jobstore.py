"""toil_jobstore state=absent vs ``toil clean`` on the same 10,000-object AWS job store.

The store is a real one: Toil 9.6 runs a small workflow (two jobs, an import and an export) with
``--jobStore aws:us-west-2:<name> --clean never`` in an OfflineNetns, then the bucket is filled up to 10,000
objects under ``files-flat/`` (what a workflow with many files leaves). A second, identical store is made with
the first one's objects (harness.jobstores builds and fills both). Filling goes straight to the endpoint; only the cleaning goes through the
recording proxy (harness.proxy), so both sides' requests are counted the same way.

- ours: one ``ansible-playbook`` run of ``toil.cluster.toil_jobstore`` with ``state: absent``, wall time as the
  user sees it (ansible-playbook's start-up included).
- Toil: ``toil clean aws:us-west-2:<name>`` (Toil 9.6, ``.venv-toil``) in an OfflineNetns relayed to the proxy,
  wall time of the command (its start-up included).

Toil runs unpatched: the endpoint takes Toil's PutBucketEncryption as S3 does (harness.endpoint).
"""

from __future__ import annotations

import collections
import os
import tempfile
import time
import uuid
from pathlib import Path

from botocore.config import Config

from harness.jobstores import make_job_store
from harness.netns import OfflineNetns
from harness.paths import TOIL_CLI, TOIL_PYTHON
from harness.playbooks import run_ansible_playbook
from harness.proxy import AWSProxy
from harness.toil_interop import toil_env

REGION = "us-west-2"
ZONE = "us-west-2a"
OBJECTS = int(os.environ.get("BENCH_JOBSTORE_OBJECTS", "10000"))  # smaller for a quick try
TOIL_STORE, OUR_STORE = "bench-js-toil", "bench-js-ours"
FILL_THREADS = 16
TIMEOUT = 900

WORKFLOW = """
from toil.common import Toil
from toil.job import Job


def shout(job, file_id):
    with open(job.fileStore.readGlobalFile(file_id)) as handle:
        text = handle.read()
    path = job.fileStore.getLocalTempFile()
    with open(path, "w") as handle:
        handle.write(text.upper())
    return job.fileStore.writeGlobalFile(path)


def root(job, file_id):
    return job.addChildJobFn(shout, file_id).rv()


if __name__ == "__main__":
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    options = parser.parse_args()
    with Toil(options) as workflow:
        result = workflow.start(Job.wrapJobFn(root, workflow.importFile("file://" + options.input)))
        workflow.exportFile(result, "file://" + options.output)
"""


def _label(service, action):
    if service != "s3":
        return action
    method, _sep, path = action.partition(" ")
    return f"{method} /bucket/key" if path.count("/") > 1 else f"{method} /bucket" if path != "/" else f"{method} /"


def _breakdown(calls):
    counts = collections.Counter(_label(service, action) for service, action in calls)
    return ", ".join(f"{label} {n}" for label, n in counts.most_common())


def _s3_actions(calls, bucket):
    """(method, on_key) of the S3 requests on ``bucket``."""
    found = []
    for service, action in calls:
        method, _sep, path = action.partition(" ")
        if service == "s3" and (path == f"/{bucket}" or path.startswith(f"/{bucket}/")):
            found.append((method, path != f"/{bucket}"))
    return found


def _real_toil_store(endpoint, workdir):
    """The bucket a real Toil workflow leaves with --clean never."""
    script = workdir / "workflow.py"
    script.write_text(WORKFLOW)
    (workdir / "in.txt").write_text("hello toil\n")
    with OfflineNetns(endpoint.url) as netns:
        env = toil_env(netns.env(endpoint.env()), ZONE, str(workdir))
        argv = [str(TOIL_PYTHON), str(script), f"aws:{REGION}:{TOIL_STORE}", "--batchSystem", "single_machine", "--clean", "never"]
        argv += ["--workDir", str(workdir), "--input", str(workdir / "in.txt"), "--output", str(workdir / "out.txt")]
        proc = netns.run(argv, timeout=TIMEOUT, env=env, cwd=str(workdir))
    if proc.returncode != 0:
        raise RuntimeError(f"the Toil workflow failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")


def _fill(endpoint):
    """Copy the real store into a second one, then fill both to OBJECTS objects (harness.jobstores)."""
    s3 = endpoint.boto3_client("s3", config=Config(max_pool_connections=FILL_THREADS))
    listed = s3.list_objects_v2(Bucket=f"{TOIL_STORE}--toil")["Contents"]
    real = {o["Key"]: s3.get_object(Bucket=f"{TOIL_STORE}--toil", Key=o["Key"])["Body"].read() for o in listed}
    extra = {f"files-flat/{uuid.uuid4()}/stream": b"x" * 100 for _index in range(OBJECTS - len(real))}
    make_job_store({"s3": s3}, OUR_STORE, region=REGION, objects={**real, **extra}, threads=FILL_THREADS)
    make_job_store({"s3": s3}, TOIL_STORE, region=REGION, objects=extra, create=False, threads=FILL_THREADS)
    for name in (TOIL_STORE, OUR_STORE):
        count = sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=f"{name}--toil"))
        if count != OBJECTS:
            raise RuntimeError(f"{name}--toil holds {count} objects, not {OBJECTS}")
    return s3


def _ours(endpoint, workdir):
    with AWSProxy(endpoint.url) as proxy:
        env = endpoint.env()
        env.update(AWS_ENDPOINT_URL=proxy.url, AWS_URL=proxy.url)
        clean = {"name": "clean", "toil.cluster.toil_jobstore": {"locator": f"aws:{REGION}:{OUR_STORE}", "state": "absent"}}
        play = {"hosts": "localhost", "gather_facts": False, "tasks": [clean]}
        began = time.monotonic()
        result = run_ansible_playbook(play, env, workdir / "ours", timeout=TIMEOUT)
        seconds = time.monotonic() - began
        calls = list(proxy.calls)
    removed = result.task("clean")["removed"]
    if removed["objects"] != OBJECTS:
        raise RuntimeError(f"toil_jobstore removed {removed['objects']} objects, not {OBJECTS}")
    return {"seconds": seconds, "calls": calls}


def _toil(endpoint, workdir):
    with AWSProxy(endpoint.url) as proxy, OfflineNetns(proxy.url) as netns:
        aws_env = endpoint.env()
        aws_env.update(AWS_ENDPOINT_URL=proxy.url, AWS_URL=proxy.url)
        env = toil_env(netns.env(aws_env), ZONE, str(workdir))
        began = time.monotonic()
        proc = netns.run([str(TOIL_CLI), "clean", f"aws:{REGION}:{TOIL_STORE}"], timeout=TIMEOUT, env=env, cwd=str(workdir))
        seconds = time.monotonic() - began
        calls = list(proxy.calls)
    if proc.returncode != 0:
        raise RuntimeError(f"toil clean failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    return {"seconds": seconds, "calls": calls}


def jobstore_clean(endpoint):
    """Two rows: wall time and S3 requests to clean a 10,000-object job store, ours vs ``toil clean``."""
    try:
        with tempfile.TemporaryDirectory(prefix="bench-jobstore-") as tmp:
            workdir = Path(tmp)
            began = time.monotonic()
            _real_toil_store(endpoint, workdir)
            s3 = _fill(endpoint)
            setup = time.monotonic() - began
            ours = _ours(endpoint, workdir)
            toil = _toil(endpoint, workdir)
            left = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    finally:
        endpoint.reset()
    if left:
        raise RuntimeError(f"buckets left after both cleans: {left}")
    toil_s3 = _s3_actions(toil["calls"], f"{TOIL_STORE}--toil")
    single = toil_s3.count(("DELETE", True))
    batched = toil_s3.count(("POST", False))
    return [
        {
            "name": f"job store clean, {OBJECTS:,} objects, wall time",
            "ours": ours["seconds"],
            "anchor": toil["seconds"],
            "anchor_name": "toil clean (Toil 9.6)",
            "unit": "s",
            "note": (
                f"the same store twice (a real Toil workflow's bucket, filled to {OBJECTS:,} objects; {setup:.0f} s to make both, not counted); "
                "both through the recording proxy; ours is an ansible-playbook run, Toil's the toil clean command, start-up included"
            ),
        },
        {
            "name": f"job store clean, {OBJECTS:,} objects, S3 requests",
            "ours": len(ours["calls"]),
            "anchor": len(toil["calls"]),
            "anchor_name": "toil clean (Toil 9.6)",
            "unit": "requests",
            "note": (
                f"ours: {_breakdown(ours['calls'])}; Toil: {_breakdown(toil['calls'])}. Toil pages through ListObjectVersions "
                f"deleting one version per DeleteObject (here {single}), then runs bucket.objects.all().delete(), which batches "
                f"what is left ({batched} DeleteObjects here). "
                + (
                    "moto ends a version listing whose marker was just deleted, so here Toil's first loop stopped after one page; "
                    f"on AWS the listing goes on and Toil sends one DeleteObject per version ({OBJECTS:,}). "
                    if single < OBJECTS
                    else ""
                )
                + "Ours lists from the start each round and deletes at most 1,000 keys per DeleteObjects, on both."
            ),
        },
    ]


BENCHMARKS = [jobstore_clean]


if __name__ == "__main__":  # one benchmark alone: TOIL_BENCH=jobstore make bench
    from harness.endpoint import EmbeddedAWS  # noqa: PLC0415

    with EmbeddedAWS() as aws:
        for row in jobstore_clean(aws):
            print(row)
