"""toil_jobstore and toil_jobstore_info against the embedded endpoint and the real Toil 9.6.

- A real Toil workflow (two jobs, an import and an export) fills an AWS job store; a second one fails on
  purpose. The modules describe both, remove them, and ``toil clean`` then finds nothing. Every Toil process
  runs in an OfflineNetns (harness.netns), unpatched: the endpoint takes Toil's PutBucketEncryption (a rule with
  only BlockedEncryptionTypes) as S3 does (harness.endpoint).
- A Toil 9.0 store is built with boto3 the way Toil 9.0 laid it out (SimpleDB domains, versioned bucket,
  registry entry: harness.jobstores) and recognised and cleaned; a ``<name>--files`` bucket without a SimpleDB trace is left alone.
- 10,000 objects in a versioned bucket with delete markers, older versions and an unfinished multipart upload
  are removed completely in DeleteObjects batches. moto takes about 5 ms per PutObject over HTTP, so this store
  is filled directly in the backend of an in-process moto server (whose listings copy less: see
  ``_shallow_version_copies``); the module still talks HTTP to it, through the recording proxy.
- An S3-compatible endpoint (a second moto) given only through TOIL_S3_HOST, TOIL_S3_PORT, TOIL_S3_USE_SSL.
- Bad input fails clearly and makes no mutating call (recording proxy); file job stores.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
import types
import uuid
from pathlib import Path

import pytest

from harness.endpoint import EmbeddedAWS
from harness.jobstores import make_job_store, purge_bucket
from harness.netns import OfflineNetns, OfflineNetnsError, kill_group
from harness.paths import TOIL_CLI, TOIL_PYTHON
from harness.proxy import AWSProxy
from harness.toil_interop import ToilNotInstalledError, toil_env

REGION = "us-west-2"
ZONE = "us-west-2a"
TOIL_RUN_TIMEOUT = 180

WORKFLOW = '''"""Two jobs, an import and an export: a small real Toil workflow."""
from toil.common import Toil
from toil.job import Job


def shout(job, file_id, fail):
    if fail:
        raise RuntimeError("this job fails on purpose")
    with open(job.fileStore.readGlobalFile(file_id)) as handle:
        text = handle.read()
    path = job.fileStore.getLocalTempFile()
    with open(path, "w") as handle:
        handle.write(text.upper())
    return job.fileStore.writeGlobalFile(path)


def root(job, file_id, fail):
    return job.addChildJobFn(shout, file_id, fail).rv()


if __name__ == "__main__":
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--fail", action="store_true")
    options = parser.parse_args()
    with Toil(options) as workflow:
        result = workflow.start(Job.wrapJobFn(root, workflow.importFile("file://" + options.input), options.fail))
        workflow.exportFile(result, "file://" + options.output)
'''


# ---------------------------------------------------------------------- helpers
def play(*tasks):
    return {"hosts": "localhost", "gather_facts": False, "tasks": list(tasks)}


def task(name, module, register=None, **options):
    entry = {"name": name, f"toil.cluster.{module}": options}
    if register:
        entry["register"] = register
    return entry


def bucket_names(s3):
    return sorted(b["Name"] for b in s3.list_buckets()["Buckets"])


def all_versions(s3, bucket):
    versions, markers = [], []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions += page.get("Versions", [])
        markers += page.get("DeleteMarkers", [])
    return versions, markers


def s3_calls(proxy, bucket):
    """The proxy's S3 calls on ``bucket``, as "METHOD /bucket[/key]" with the key part shortened to "/key"."""
    found = []
    for service, action in proxy.calls:
        method, _sep, path = action.partition(" ")
        if service == "s3" and (path == f"/{bucket}" or path.startswith(f"/{bucket}/")):
            found.append(f"{method} /{bucket}" + ("/key" if path != f"/{bucket}" else ""))
    return found


@pytest.fixture
def offline(aws):
    """The network namespace the Toil processes of the test run in (relayed to this test's endpoint)."""
    netns = OfflineNetns(aws.url)
    try:
        yield netns
    finally:
        netns.close()


def start_toil(netns, argv, env, cwd, log):
    try:
        return netns.popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    except (OfflineNetnsError, ToilNotInstalledError) as exc:
        pytest.fail(f"cannot run the real Toil here: {exc}", pytrace=False)


def run_workflows(netns, aws_env, workdir, runs):
    """Run the workflow once per ``(locator, fail)``, all at once; returns {locator: (rc, output, run directory)}."""
    if not os.access(TOIL_PYTHON, os.X_OK):
        pytest.fail(f"the real Toil is not installed ({TOIL_PYTHON}): run `make setup`", pytrace=False)
    script = workdir / "toil_workflow.py"
    script.write_text(WORKFLOW)
    (workdir / "in.txt").write_text("hello toil\n")
    try:
        netns.start()
    except OfflineNetnsError as exc:
        pytest.fail(f"cannot run the real Toil here: {exc}", pytrace=False)
    env = toil_env(netns.env(aws_env), ZONE, str(workdir))
    started = {}
    for index, (locator, fail) in enumerate(runs):
        run_dir = workdir / f"run{index}"
        run_dir.mkdir()
        log = (workdir / f"run{index}.log").open("wb")
        argv = [str(TOIL_PYTHON), str(script), locator, "--batchSystem", "single_machine", "--clean", "never", "--retryCount", "0"]
        argv += ["--workDir", str(run_dir), "--input", str(workdir / "in.txt"), "--output", str(run_dir / "out.txt")]
        started[locator] = (start_toil(netns, [*argv, *(["--fail"] if fail else [])], env, str(run_dir), log), log, run_dir)
    results = {}
    for locator, (proc, log, run_dir) in started.items():
        try:
            proc.wait(timeout=TOIL_RUN_TIMEOUT)
        finally:
            kill_group(proc)
            log.close()
        output = Path(log.name).read_text(errors="replace")
        results[locator] = (proc.returncode, output, run_dir)
    return results


def toil_clean(netns, aws_env, workdir, locator):
    netns.start()
    env = toil_env(netns.env(aws_env), ZONE, str(workdir))
    return netns.run([str(TOIL_CLI), "clean", locator], timeout=120, env=env, cwd=str(workdir))


# ---------------------------------------------------------------------- a real Toil workflow
@pytest.mark.toil
def test_real_toil_store_is_described_removed_and_toil_clean_finds_nothing(aws, run_playbook, offline, tmp_path):
    s3 = aws.client("s3")
    for name in ("jst-ok", "jst-fail"):
        aws.add_cleanup(purge_bucket, s3, f"{name}--toil")
    began = time.monotonic()
    runs = run_workflows(offline, aws.env, tmp_path, [(f"aws:{REGION}:jst-ok", False), (f"aws:{REGION}:jst-fail", True)])
    toil_seconds = time.monotonic() - began
    rc, output, run_dir = runs[f"aws:{REGION}:jst-ok"]
    assert rc == 0, output[-6000:]
    assert (run_dir / "out.txt").read_text() == "HELLO TOIL\n"
    rc, output, _run_dir = runs[f"aws:{REGION}:jst-fail"]
    assert rc != 0 and "this job fails on purpose" in output, output[-6000:]
    assert bucket_names(s3) == ["jst-fail--toil", "jst-ok--toil"]
    assert aws.client("sdb").list_domains().get("DomainNames", []) == []  # Toil 9.6 uses S3 only
    ok_keys = [o["Key"] for o in s3.list_objects_v2(Bucket="jst-ok--toil")["Contents"]]
    fail_jobs = [o["Key"] for o in s3.list_objects_v2(Bucket="jst-fail--toil", Prefix="jobs/")["Contents"]]
    assert fail_jobs and not [k for k in ok_keys if k.startswith("jobs/")]
    versions, _markers = all_versions(s3, "jst-ok--toil")

    ok, fail = f"aws:{REGION}:jst-ok", f"aws:{REGION}:jst-fail"
    result = run_playbook(
        play(
            task("info ok", "toil_jobstore_info", locator=ok, count_objects=True),
            task("info fail", "toil_jobstore_info", locator=fail),
            {**task("check absent", "toil_jobstore", locator=ok, state="absent"), "check_mode": True, "diff": True},
            task("absent ok", "toil_jobstore", locator=ok, state="absent"),
            task("absent ok again", "toil_jobstore", locator=ok, state="absent"),
            task("absent fail", "toil_jobstore", locator=fail, state="absent"),
        )
    )
    info = result.task("info ok")
    assert info["changed"] is False
    store = info["jobstore"]
    assert store["exists"] is True and store["layout"] == "s3" and store["layouts"] == ["s3"]
    assert store["buckets"] == ["jst-ok--toil"] and store["bucket_region"] == REGION and store["problem"] is None
    assert store["creation_time"]
    assert store["workflow"] == {"initialized": True, "jobs": 0, "root_job_return_value": True, "status": "completed"}
    assert store["objects"] == store["versions"] == len(ok_keys) == len(versions)
    assert store["bytes"] == sum(v["Size"] for v in versions) and store["delete_markers"] == store["multipart_uploads"] == 0
    failed = result.task("info fail")["jobstore"]["workflow"]
    assert failed == {"initialized": True, "jobs": len(fail_jobs), "root_job_return_value": True, "status": "failed"}

    check = result.task("check absent")
    assert check["changed"] is True
    assert check["removed"]["buckets"] == ["jst-ok--toil"] and check["removed"]["objects"] == len(ok_keys)
    assert check["diff"]["before"]["objects"] == len(ok_keys) and check["diff"]["before"]["bytes"] == store["bytes"]
    assert check["diff"]["after"] == {}
    absent = result.task("absent ok")
    assert absent["changed"] is True
    assert {k: absent["removed"][k] for k in ("objects", "versions", "bytes")} == {k: store[k] for k in ("objects", "versions", "bytes")}
    assert result.task("absent ok again")["changed"] is False
    assert result.task("absent fail")["changed"] is True
    assert bucket_names(s3) == []

    # Toil agrees: nothing to clean, and nothing left afterwards (the leak check at teardown).
    cleaned = toil_clean(offline, aws.env, tmp_path, ok)
    assert cleaned.returncode == 0, cleaned.stderr[-4000:]
    assert "Job store does not appear to exist" in cleaned.stderr
    assert bucket_names(s3) == []
    print(f"two Toil workflows (in parallel): {toil_seconds:.1f} s")


# ---------------------------------------------------------------------- Toil 9.0's layout
def make_legacy_store(aws, name):
    """A job store as Toil 9.0 laid it out (harness.jobstores, layout sdb); what it holds."""
    made = make_job_store(aws, name, layout="sdb", cleanup=aws.add_cleanup)
    return {"files": made.objects, "versions": made.versions, "bytes": made.bytes}


def test_toil_9_0_store_is_recognised_and_cleaned(aws, run_playbook, aws_calls):
    name = "jst-legacy"
    made = make_legacy_store(aws, name)
    s3, sdb = aws.client("s3"), aws.client("sdb")
    # A bucket that merely ends in --files, with no SimpleDB trace of Toil: never touched.
    s3.create_bucket(Bucket="jst-decoy--files", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="jst-decoy--files", Key="keep-me", Body=b"x")
    aws.add_cleanup(purge_bucket, s3, "jst-decoy--files")
    locator = f"aws:{REGION}:{name}"

    looked = run_playbook(
        play(
            task("info", "toil_jobstore_info", locator=locator, count_objects=True),
            {**task("check absent", "toil_jobstore", locator=locator, state="absent"), "check_mode": True, "diff": True},
            task("decoy", "toil_jobstore", locator=f"aws:{REGION}:jst-decoy", state="absent"),
            task("present", "toil_jobstore", locator=locator),
        ),
        env=aws_calls.env,
    )
    assert aws_calls.calls and aws_calls.mutating_calls() == []
    store = looked.task("info")["jobstore"]
    assert store["exists"] is True and store["layout"] == "sdb" and store["layouts"] == ["sdb"]
    assert store["legacy_domains"] == [f"{name}--jobs", f"{name}--files"] and store["legacy_registry"] == "registered"
    assert store["buckets"] == [f"{name}--files"] and store["bucket_region"] == REGION
    assert store["workflow"] == {"initialized": True, "jobs": None, "root_job_return_value": True, "status": "running"}
    assert (store["objects"], store["versions"], store["bytes"]) == (made["files"], made["versions"], made["bytes"])
    check = looked.task("check absent")
    assert check["changed"] is True and check["diff"]["before"]["legacy_domains"] == store["legacy_domains"]
    assert check["removed"]["legacy_registry_entry"] is True and check["removed"]["versions"] == made["versions"]
    present = looked.task("present")  # already a job store of this account: fine, and nothing is made
    assert present["changed"] is False and present["jobstore"]["exists"] is True
    decoy = looked.task("decoy")
    assert decoy["changed"] is False and decoy["jobstore"]["exists"] is False

    twice = [task(name, "toil_jobstore", locator=locator, state="absent") for name in ("absent", "again")]
    removed = run_playbook(play(*twice))
    absent = removed.task("absent")
    assert absent["changed"] is True
    assert absent["removed"]["buckets"] == [f"{name}--files"] and absent["removed"]["legacy_domains"] == store["legacy_domains"]
    assert (absent["removed"]["versions"], absent["removed"]["bytes"]) == (made["versions"], made["bytes"])
    assert removed.task("again")["changed"] is False
    assert bucket_names(s3) == ["jst-decoy--files"]
    assert sorted(sdb.list_domains().get("DomainNames", [])) == ["toil-registry"]  # shared by every Toil 9.0 store of the region
    # moto has no DeleteAttributes: the entry stays, marked exists=False (Toil 9.0's "being removed"), with a warning.
    entry = sdb.get_attributes(DomainName="toil-registry", ItemName=name)["Attributes"]
    assert entry == [{"Name": "exists", "Value": "False"}]
    assert any("toil-registry" in warning for warning in absent.get("warnings", [])), absent.get("warnings")


# ---------------------------------------------------------------------- 10,000 objects
def _shallow_version_copies(monkeypatch):
    """moto's ListObjectVersions deep-copies every stored version of the bucket on every call, only to set
    ``is_latest`` on the copies (3.5 s a call at 10,000 versions). A shallow copy (moto's own __getstate__ and
    __setstate__) is enough for that and gives the same answer; the in-process server gets it."""
    from moto.s3 import models  # noqa: PLC0415 - only this test needs moto in-process

    real = models.copy

    def deepcopy(value, memo=None):
        if isinstance(value, list) and all(isinstance(item, (models.FakeKey, models.FakeDeleteMarker)) for item in value):
            return [real.copy(item) for item in value]
        return real.deepcopy(value, memo)

    monkeypatch.setattr(models, "copy", types.SimpleNamespace(deepcopy=deepcopy, copy=real.copy))


@pytest.fixture
def inprocess_s3(aws, monkeypatch):
    """A moto server in this process (its S3 backend can be filled without HTTP), behind a recording proxy."""
    from moto.backends import get_backend  # noqa: PLC0415 - only this test needs moto in-process
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    _shallow_version_copies(monkeypatch)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    proxy = AWSProxy(url).start()
    proxy.env = {"AWS_ENDPOINT_URL": proxy.url, "AWS_URL": proxy.url}
    client = aws.endpoint.boto3_session().client("s3", region_name=REGION, endpoint_url=url)
    try:
        yield client, get_backend("s3")["123456789012"]["aws"], proxy
    finally:
        proxy.stop()
        for bucket in bucket_names(client):
            purge_bucket(client, bucket)
        server.stop()


def test_ten_thousand_versions_markers_and_an_upload_are_cleaned_completely(run_playbook, inprocess_s3):
    s3, backend, proxy = inprocess_s3
    bucket, objects, rewritten, deleted = "jst-big--toil", 10_000, 250, 300
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    keys = [f"files-flat/{uuid.UUID(int=i)}/stream" for i in range(objects)]
    for key in keys:
        backend.put_object(bucket, key, b"0123456789")
    for key in keys[:rewritten]:
        backend.put_object(bucket, key, b"a longer second version")
    for key in keys[-deleted:]:
        backend.delete_object(bucket, key)  # versioned: a delete marker
    upload = s3.create_multipart_upload(Bucket=bucket, Key="files-flat/big/stream")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="files-flat/big/stream", UploadId=upload, PartNumber=1, Body=b"x" * 1024)
    stored = list(backend.get_bucket(bucket).keys.iterlists())
    assert sum(len(versions) for _key, versions in stored) == objects + rewritten + deleted  # versions and delete markers
    entries = objects + rewritten + deleted

    began = time.monotonic()
    result = run_playbook(play(task("absent", "toil_jobstore", locator=f"aws:{REGION}:jst-big", state="absent")), env=proxy.env)
    seconds = time.monotonic() - began
    removed = result.task("absent")["removed"]
    assert removed["versions"] == objects + rewritten and removed["delete_markers"] == deleted
    assert removed["objects"] == objects - deleted and removed["multipart_uploads"] == 1
    assert removed["bytes"] == (objects - rewritten) * 10 + rewritten * (10 + 23)
    assert bucket_names(s3) == [] and bucket not in backend.buckets

    calls = s3_calls(proxy, bucket)
    # DeleteObjects (POST /bucket?delete) in batches of at most 1,000 keys; no per-object DeleteObject.
    assert calls.count(f"POST /{bucket}") == math.ceil(entries / 1000)
    assert calls.count(f"DELETE /{bucket}/key") == 1  # the one AbortMultipartUpload
    assert calls.count(f"DELETE /{bucket}") == 1  # DeleteBucket
    print(f"{entries} versions and markers removed in {seconds:.1f} s, {len(calls)} S3 requests")


# ---------------------------------------------------------------------- S3-compatible endpoint
def test_s3_compatible_endpoint_given_only_through_toil_variables(aws, run_playbook, aws_calls):
    with EmbeddedAWS() as other:
        s3 = other.boto3_client("s3")
        for name in ("jst-minio", "jst-hostonly"):
            make_job_store(other, name, objects=dict.fromkeys(("config.pickle", "rootJobReturnValue", "succeeded.log", "files-flat/a/stream"), b"data"))
        port = other.url.rsplit(":", 1)[1]

        def tasks(name):
            return (
                task(f"info {name}", "toil_jobstore_info", locator=f"aws:{REGION}:{name}", count_objects=True),
                task(f"absent {name}", "toil_jobstore", locator=f"aws:{REGION}:{name}", state="absent"),
            )

        both = {"TOIL_S3_HOST": "127.0.0.1", "TOIL_S3_PORT": port, "TOIL_S3_USE_SSL": "false", **aws_calls.env}
        with_port = run_playbook(play(*tasks("jst-minio")), env=both)
        # A host alone (Toil needs TOIL_S3_PORT too: its endpoint is empty without one).
        host_only = {"TOIL_S3_HOST": f"127.0.0.1:{port}", "TOIL_S3_USE_SSL": "no", **aws_calls.env}
        without_port = run_playbook(play(*tasks("jst-hostonly")), env=host_only)
        for result, name in ((with_port, "jst-minio"), (without_port, "jst-hostonly")):
            store = result.task(f"info {name}")["jobstore"]
            assert store["s3_endpoint"] == f"http://127.0.0.1:{port}"
            assert store["exists"] is True and store["layout"] == "s3" and store["objects"] == 4 and store["bytes"] == 16
            assert store["workflow"]["status"] == "completed" and store["legacy_domains"] == []
            assert result.task(f"absent {name}")["removed"]["objects"] == 4
        assert bucket_names(s3) == []
        assert aws_calls.calls == []  # nothing went to the default endpoint (AWS_ENDPOINT_URL)


# ---------------------------------------------------------------------- bad input
def test_bad_input_fails_clearly_and_touches_nothing(aws, run_playbook, aws_calls):
    s3 = aws.client("s3", region="eu-west-1")
    s3.create_bucket(Bucket="jst-elsewhere--toil", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="jst-elsewhere--toil", Key="config.pickle", Body=b"x")
    aws.add_cleanup(purge_bucket, s3, "jst-elsewhere--toil")
    cases = [
        ({"locator": "aws:mars-1:jst-x"}, "AWS region 'mars-1' in job store locator 'aws:mars-1:jst-x' is not one of"),
        ({"locator": "aws:us-west-2:Bad_Name", "state": "absent"}, "Invalid AWS job store name 'Bad_Name'"),
        ({"locator": "file:relative/store", "state": "absent"}, "needs an absolute path"),
        ({"locator": "aws:us-west-2:jst-x", "s3_endpoint": {"host": "http://minio:9000"}}, "s3_endpoint.host must be a host name"),
        ({"locator": "aws:us-west-2:jst-elsewhere", "state": "absent"}, "is in eu-west-1, not in us-west-2 as the locator says"),
        ({"locator": "aws:us-west-2:jst-elsewhere"}, "use 'aws:eu-west-1:jst-elsewhere'"),
    ]
    tasks = [{**task(f"case {i}", "toil_jobstore", **options), "ignore_errors": True} for i, (options, _message) in enumerate(cases)]
    tasks.append({**task("info case", "toil_jobstore_info", locator="aws:us-west-2:jst-elsewhere"), "register": "info"})
    tasks.append({**task("info bad", "toil_jobstore_info", locator="aws:us-west-2:x"), "ignore_errors": True})
    result = run_playbook(play(*tasks), env=aws_calls.env)
    for index, (_options, message) in enumerate(cases):
        outcome = result.task(f"case {index}")
        assert outcome.get("failed") is True, (index, outcome)
        assert message in outcome["msg"], (index, outcome["msg"])
        assert "Traceback" not in json.dumps(outcome), (index, outcome)
    info = result.task("info case")
    assert info["changed"] is False and info["jobstore"]["exists"] is True and "is in eu-west-1" in info["jobstore"]["problem"]
    assert "between 3 and 56 characters" in result.task("info bad")["msg"]
    assert aws_calls.mutating_calls() == []
    assert bucket_names(s3) == ["jst-elsewhere--toil"]


# ---------------------------------------------------------------------- file job stores
@pytest.mark.toil
def test_file_job_store(aws, run_playbook, offline, tmp_path):
    store = tmp_path / "runs" / "failed-run"
    store.parent.mkdir()
    runs = run_workflows(offline, aws.env, tmp_path, [(f"file:{store}", True)])
    rc, output, _run_dir = runs[f"file:{store}"]
    assert rc != 0 and "this job fails on purpose" in output, output[-6000:]
    job_files = [p for p in store.rglob("job") if p.is_file()]
    assert job_files
    plain = tmp_path / "not-a-store"
    plain.mkdir()
    (plain / "precious.txt").write_text("keep")
    link = tmp_path / "link-to-store"
    link.symlink_to(store)
    files = [p for p in store.rglob("*") if p.is_file() or p.is_symlink()]
    size = sum(p.lstat().st_size for p in files if p.is_file() and not p.is_symlink())

    result = run_playbook(
        play(
            task("info", "toil_jobstore_info", locator=f"file:{store}", count_objects=True),
            {**task("check absent", "toil_jobstore", locator=f"file:{store}", state="absent"), "check_mode": True},
            {**task("plain", "toil_jobstore", locator=f"file:{plain}", state="absent"), "ignore_errors": True},
            {**task("link", "toil_jobstore", locator=f"file:{link}", state="absent"), "ignore_errors": True},
            {**task("no parent", "toil_jobstore", locator=f"file:{tmp_path}/missing/store"), "ignore_errors": True},
            task("free", "toil_jobstore", locator=f"file:{tmp_path}/runs/next-run"),
            task("absent", "toil_jobstore", locator=f"file:{store}", state="absent"),
            task("again", "toil_jobstore", locator=f"file:{store}", state="absent"),
        )
    )
    info = result.task("info")["jobstore"]
    assert info["exists"] is True and info["layout"] == "file" and info["path"] == str(store)
    assert info["workflow"] == {"initialized": True, "jobs": len(job_files), "root_job_return_value": True, "status": "failed"}
    assert info["objects"] == len(files) and info["bytes"] == size
    assert result.task("check absent")["changed"] is True and result.task("check absent")["removed"]["objects"] == len(files)
    assert "is not a Toil file job store" in result.task("plain")["msg"]
    assert "is a symbolic link" in result.task("link")["msg"]
    assert "does not exist: Toil could not create the job store" in result.task("no parent")["msg"]
    assert result.task("free")["changed"] is False and result.task("free")["jobstore"]["exists"] is False
    assert result.task("absent")["changed"] is True and result.task("again")["changed"] is False
    assert not store.exists() and (plain / "precious.txt").exists() and link.is_symlink()
