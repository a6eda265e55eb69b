"""Toil job stores on an AWS endpoint, laid out the way Toil writes them: one builder for the tests, the
benchmarks and ``make demo``.

``make_job_store(source, name, layout=...)`` makes ``aws:<region>:<name>``:

- ``layout="s3"`` (Toil 9.1 and later): one bucket ``<name>--toil`` holding ``objects`` (key -> bytes). Presets:
  ``minimal_store(files)`` (a config and a few files), ``failed_run()`` (what a workflow that failed leaves:
  config, environment, root job return value, the jobs left over, two files and ``failed.log``). With
  ``create=False`` the objects go into a bucket that exists already (one a real Toil workflow made).
- ``layout="sdb"`` (Toil 9.0 and older): the ``<name>--jobs`` and ``<name>--files`` SimpleDB domains (two jobs,
  three files), the versioned bucket ``<name>--files`` (each file written twice) and the ``<name>`` entry in the
  region's ``toil-registry`` domain, set to exists=True last, as Toil 9.0's ``initialize()`` did.

``source`` is anything harness.leaks takes for clients (EmbeddedAWS, the tests' ``aws`` fixture, a boto3 Session,
a mapping service -> client, a callable ``f(service, region)``). ``cleanup`` (e.g. ``aws.add_cleanup``) registers
the removal of everything made. ``purge_bucket`` removes a bucket with every version, marker and upload in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness.leaks import client_factory

REGION = "us-west-2"
REGISTRY = "toil-registry"  # Toil 9.0: one SimpleDB domain per region lists its job stores
SHARED_FILE_OWNER = uuid.UUID("891f7db6-e4d9-4221-a58e-ab6cc4395f94")  # Toil 9.0's sharedFileOwnerID
LAYOUTS = ("s3", "sdb")


@dataclass
class JobStore:
    """What ``make_job_store`` made."""

    name: str
    layout: str
    region: str
    buckets: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)  # SimpleDB domains (sdb layout; the registry included)
    objects: int = 0  # keys written (s3) or files registered (sdb)
    versions: int = 0  # object versions stored
    bytes: int = 0  # bytes stored over all versions
    jobs: int = 0  # job descriptions left in the store

    @property
    def locator(self) -> str:
        return f"aws:{self.region}:{self.name}"

    @property
    def bucket(self) -> str:
        return self.buckets[0]


def minimal_store(files: int = 5) -> dict[str, bytes]:
    """A config and ``files`` small files under ``files-flat/``."""
    return {"config.pickle": b"config", **{f"files-flat/{index:04d}": b"x" * 64 for index in range(files)}}


def failed_run(jobs: int = 3) -> dict[str, bytes]:
    """What a Toil 9.6 workflow that failed leaves: config, environment, root job return value, ``jobs`` jobs,
    two files (an input and a failed job's stderr) and ``failed.log``."""
    return {
        "config.pickle": b"\x80\x04config",
        "environment.pickle": b"\x80\x04environment",
        "rootJobReturnValue": b"\x80\x04N.",
        **{f"jobs/{uuid.uuid4()}": b"\x80\x04job" for _index in range(jobs)},
        f"files-flat/{uuid.uuid4()}/reads.fastq": b"@r1\nACGT\n+\nIIII\n",
        f"files-flat/{uuid.uuid4()}/stderr": b"bwa: out of memory\n",
        "failed.log": b"",
    }


def make_job_store(
    source: Any,
    name: str,
    *,
    layout: str = "s3",
    objects: Mapping[str, bytes] | None = None,
    region: str = REGION,
    create: bool = True,
    threads: int = 1,
    cleanup: Callable[..., Any] | None = None,
) -> JobStore:
    """Make the job store ``aws:<region>:<name>`` in ``layout``; see the module's docstring."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    clients = client_factory(source)
    s3 = clients("s3", region)
    store = JobStore(name, layout, region)
    if layout == "s3":
        bucket = f"{name}--toil"
        store.buckets.append(bucket)
        if cleanup is not None:
            cleanup(purge_bucket, s3, bucket)
        if create:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        items = dict(minimal_store() if objects is None else objects)
        _put_all(s3, bucket, items, threads)
        store.objects = store.versions = len(items)
        store.bytes = sum(len(body) for body in items.values())
        store.jobs = sum(1 for key in items if key.startswith("jobs/"))
        return store
    if objects is not None or not create:
        raise ValueError("the sdb layout has a fixed content and is always created")
    return _make_sdb_store(store, s3, clients("sdb", region), cleanup)


def _put_all(s3: Any, bucket: str, items: Mapping[str, bytes], threads: int) -> None:
    def put(item: tuple[str, bytes]) -> None:
        s3.put_object(Bucket=bucket, Key=item[0], Body=item[1])

    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, items.items()))
    else:
        for item in items.items():
            put(item)


def _make_sdb_store(store: JobStore, s3: Any, sdb: Any, cleanup: Callable[..., Any] | None) -> JobStore:
    name, region = store.name, store.region
    bucket, jobs_domain, files_domain = f"{name}--files", f"{name}--jobs", f"{name}--files"
    store.buckets.append(bucket)
    store.domains += [jobs_domain, files_domain, REGISTRY]
    if cleanup is not None:
        cleanup(purge_bucket, s3, bucket)
        for domain in store.domains:
            cleanup(sdb.delete_domain, DomainName=domain)
    sdb.create_domain(DomainName=REGISTRY)
    sdb.put_attributes(DomainName=REGISTRY, ItemName=name, Attributes=[{"Name": "exists", "Value": "False", "Replace": True}])
    sdb.create_domain(DomainName=jobs_domain)
    sdb.create_domain(DomainName=files_domain)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    root_job, child_job = str(uuid.uuid4()), str(uuid.uuid4())
    for job in (root_job, child_job):  # pickled JobDescriptions, in 1 KiB chunks "000", "001", ...
        attributes = [{"Name": "overlargeID", "Value": ""}, {"Name": "numChunks", "Value": "1"}, {"Name": "000", "Value": "gASVAAAAAAAAAAB9lC4="}]
        sdb.put_attributes(DomainName=jobs_domain, ItemName=job, Attributes=attributes)
    files = {str(uuid.uuid5(SHARED_FILE_OWNER, shared)): str(SHARED_FILE_OWNER) for shared in ("config.pickle", "rootJobReturnValue")}
    files[str(uuid.uuid4())] = child_job
    for file_id, owner in files.items():
        for revision in (b"first", b"second revision"):  # a file rewritten once: two versions
            version = s3.put_object(Bucket=bucket, Key=file_id, Body=revision)["VersionId"]
            store.bytes += len(revision)
            store.versions += 1
        attributes = {"ownerID": owner, "encrypted": "False", "version": version, "checksum": "", "numChunks": "0"}
        sdb.put_attributes(DomainName=files_domain, ItemName=file_id, Attributes=[{"Name": k, "Value": v, "Replace": True} for k, v in attributes.items()])
    store.objects, store.jobs = len(files), 2
    # initialize() registers the store last: exists=True.
    sdb.put_attributes(DomainName=REGISTRY, ItemName=name, Attributes=[{"Name": "exists", "Value": "True", "Replace": True}])
    return store


def purge_bucket(s3: Any, bucket: str) -> None:
    """Remove ``bucket`` with plain boto3 (not the code under test): uploads, versions, markers, then the bucket.
    A no-op when the bucket is gone."""
    try:
        for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        while True:
            page = s3.list_object_versions(Bucket=bucket)
            keys = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            if not keys:
                break
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
    except s3.exceptions.ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchBucket":
            raise
