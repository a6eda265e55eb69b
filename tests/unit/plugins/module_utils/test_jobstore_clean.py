# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Describing and removing AWS job stores (reference section 4, "toil clean" and "History"), on a fake S3 and SimpleDB.

The fake keeps what S3 keeps (versions, delete markers, unfinished uploads, regions, owners) and checks what S3
checks (at most 1,000 keys per DeleteObjects, no deleting a bucket that is not empty); it records every call.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError
from botocore.session import get_session

from ansible_collections.toil.cluster.plugins.module_utils import s3_buckets as jobstore
from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.jobstore import (
    describe_aws,
    ensure_absent,
    ensure_present,
    legacy_shared_file_item,
    removal_plan,
    remove_aws,
    workflow_state,
)
from ansible_collections.toil.cluster.plugins.module_utils.jobstore_locator import parse_jobstore_locator
from ansible_collections.toil.cluster.plugins.module_utils.s3_buckets import BucketRemovalError as JobStoreError
from ansible_collections.toil.cluster.plugins.module_utils.s3_buckets import empty_and_delete_bucket

S3_MODEL = get_session().get_service_model("s3")


def client_error(code, status, operation="Operation"):
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


class FakeS3:
    """Buckets: name -> {"region", "owned", "versions": [...], "markers": [...], "uploads": [...]}."""

    def __init__(self):
        self.buckets = {}
        self.calls = []
        self.delete_batches = []
        self.refuse_keys = set()
        self.ignore_deletes = False
        self.writes_after_delete = 0  # objects a "running workflow" writes after each emptying
        self._ids = itertools.count(1)
        self.meta = SimpleNamespace(service_model=S3_MODEL)

    # --- building
    def add_bucket(self, name, region="us-west-2", owned=True, versioned=False):
        self.buckets[name] = {"region": region, "owned": owned, "versioned": versioned, "versions": [], "markers": [], "uploads": []}
        self.buckets[name]["created"] = "2026-01-02T03:04:05+00:00"

    def put(self, bucket, key, size=10):
        store = self.buckets[bucket]
        if not store["versioned"]:  # the one "null" version is replaced
            store["versions"] = [item for item in store["versions"] if item["Key"] != key]
        for item in store["versions"] + store["markers"]:
            if item["Key"] == key:
                item["IsLatest"] = False
        version = f"v{next(self._ids)}" if store["versioned"] else "null"
        store["versions"].append({"Key": key, "VersionId": version, "Size": size, "IsLatest": True})

    def mark_deleted(self, bucket, key):
        store = self.buckets[bucket]
        assert store["versioned"]
        for item in store["versions"] + store["markers"]:
            if item["Key"] == key:
                item["IsLatest"] = False
        store["markers"].append({"Key": key, "VersionId": f"m{next(self._ids)}", "IsLatest": True})

    def start_upload(self, bucket, key):
        self.buckets[bucket]["uploads"].append({"Key": key, "UploadId": f"u{next(self._ids)}"})

    # --- the API
    def _bucket(self, name, operation):
        self.calls.append((operation, name))
        if name not in self.buckets:
            raise client_error("NoSuchBucket", 404, operation)
        if not self.buckets[name]["owned"]:
            raise client_error("AccessDenied", 403, operation)
        return self.buckets[name]

    def get_bucket_versioning(self, Bucket, aws_retry=False):
        return {"Status": "Enabled"} if self._bucket(Bucket, "GetBucketVersioning")["versioned"] else {}

    def get_bucket_location(self, Bucket, aws_retry=False):
        region = self._bucket(Bucket, "GetBucketLocation")["region"]
        return {"LocationConstraint": None if region == "us-east-1" else region}

    def list_object_versions(self, Bucket, MaxKeys=1000, aws_retry=False):
        store = self._bucket(Bucket, "ListObjectVersions")
        entries = sorted(store["versions"] + store["markers"], key=lambda e: (e["Key"], e["VersionId"]))[:MaxKeys]
        return {
            "Versions": [e for e in entries if "Size" in e],
            "DeleteMarkers": [e for e in entries if "Size" not in e],
            "IsTruncated": len(store["versions"]) + len(store["markers"]) > MaxKeys,
        }

    def delete_objects(self, Bucket, Delete, aws_retry=False):
        store = self._bucket(Bucket, "DeleteObjects")
        objects = Delete["Objects"]
        if len(objects) > 1000:
            raise client_error("MalformedXML", 400, "DeleteObjects")
        self.delete_batches.append(len(objects))
        refused = [o for o in objects if o["Key"] in self.refuse_keys]
        errors = [{**o, "Code": "AccessDenied", "Message": "Access Denied"} for o in refused]
        if not self.ignore_deletes:
            if not store["versioned"]:
                assert all(o.get("VersionId", "null") == "null" for o in objects)
            gone = {(o["Key"], o.get("VersionId", "null")) for o in objects if o["Key"] not in self.refuse_keys}
            for kind in ("versions", "markers"):
                store[kind] = [e for e in store[kind] if (e["Key"], e["VersionId"]) not in gone]
        return {"Errors": errors} if errors else {}

    def list_multipart_uploads(self, Bucket, aws_retry=False):
        return {"Uploads": self._bucket(Bucket, "ListMultipartUploads")["uploads"][:1000]}

    def abort_multipart_upload(self, Bucket, Key, UploadId, aws_retry=False):
        store = self._bucket(Bucket, "AbortMultipartUpload")
        store["uploads"] = [u for u in store["uploads"] if u["UploadId"] != UploadId]

    def delete_bucket(self, Bucket, aws_retry=False):
        store = self._bucket(Bucket, "DeleteBucket")
        if store["versions"] or store["markers"]:
            raise client_error("BucketNotEmpty", 409, "DeleteBucket")
        if self.writes_after_delete:
            self.writes_after_delete -= 1
            self.put(Bucket, "logs/late")
            raise client_error("BucketNotEmpty", 409, "DeleteBucket")
        del self.buckets[Bucket]

    def list_objects_v2(self, Bucket, Prefix="", Delimiter=None, MaxKeys=1000, aws_retry=False):
        store = self._bucket(Bucket, "ListObjectsV2")
        current = sorted((e["Key"], e["Size"]) for e in store["versions"] if e["IsLatest"] and e["Key"].startswith(Prefix))
        if Delimiter:
            current = [(k, s) for k, s in current if Delimiter not in k[len(Prefix) :]]
        return {"Contents": [{"Key": k, "Size": s} for k, s in current[:MaxKeys]]}

    def list_buckets(self, Prefix=None):
        self.calls.append(("ListBuckets", Prefix))
        return {"Buckets": [{"Name": n, "CreationDate": SimpleNamespace(isoformat=lambda b=b: b["created"])} for n, b in self.buckets.items() if b["owned"]]}

    def can_paginate(self, name):
        return name != "list_buckets"

    def get_paginator(self, name):
        fake = self

        class Paginator:
            def paginate(self, **kwargs):
                if name == "list_object_versions":
                    store = fake._bucket(kwargs["Bucket"], "ListObjectVersions")
                    yield {"Versions": list(store["versions"]), "DeleteMarkers": list(store["markers"])}
                elif name == "list_multipart_uploads":
                    yield fake.list_multipart_uploads(kwargs["Bucket"])
                elif name == "list_objects_v2":
                    yield fake.list_objects_v2(**kwargs, MaxKeys=10**9)
                else:
                    yield getattr(fake, name)(**kwargs)

        return Paginator()


class FakeSdb:
    def __init__(self, domains=(), registry=None, items=None):
        self.domains = {name: {} for name in domains}
        if registry is not None:
            self.domains["toil-registry"] = {"store": {"exists": registry}}
        for (domain, item), attributes in (items or {}).items():
            self.domains[domain][item] = attributes
        self.calls = []
        self.delete_attributes_fails = False

    def get_paginator(self, name):
        assert name == "list_domains"
        fake = self
        return SimpleNamespace(paginate=lambda: iter([{"DomainNames": sorted(fake.domains)}]))

    def get_attributes(self, DomainName, ItemName, AttributeNames=None, ConsistentRead=False, aws_retry=False):
        self.calls.append(("GetAttributes", DomainName, ItemName))
        if DomainName not in self.domains:
            raise client_error("NoSuchDomain", 400, "GetAttributes")
        found = self.domains[DomainName].get(ItemName, {})
        return {"Attributes": [{"Name": k, "Value": v} for k, v in found.items() if not AttributeNames or k in AttributeNames]}

    def put_attributes(self, DomainName, ItemName, Attributes, aws_retry=False):
        self.calls.append(("PutAttributes", DomainName, ItemName))
        self.domains[DomainName].setdefault(ItemName, {}).update({a["Name"]: a["Value"] for a in Attributes})

    def delete_attributes(self, DomainName, ItemName, aws_retry=False):
        self.calls.append(("DeleteAttributes", DomainName, ItemName))
        if self.delete_attributes_fails:
            raise client_error("InternalError", 500, "DeleteAttributes")
        self.domains[DomainName].pop(ItemName, None)

    def delete_domain(self, DomainName, aws_retry=False):
        self.calls.append(("DeleteDomain", DomainName))
        self.domains.pop(DomainName, None)


LOCATOR = parse_jobstore_locator("aws:us-west-2:store", {"us-west-2"})


def no_sleep(_seconds):
    return None


def toil_store(s3, objects=3, region="us-west-2"):
    s3.add_bucket("store--toil", region)
    for key in ("config.pickle", "rootJobReturnValue", "succeeded.log", *(f"files-flat/{i}/stream" for i in range(objects - 3))):
        s3.put(key=key, bucket="store--toil")


# --- emptying and deleting a bucket --------------------------------------------------------------


def test_every_version_marker_and_upload_goes_in_batches_of_at_most_1000():
    s3 = FakeS3()
    s3.add_bucket("store--toil", versioned=True)
    for i in range(2300):
        s3.put("store--toil", f"files-flat/{i:05d}/stream", size=7)
    for i in range(120):
        s3.put("store--toil", f"files-flat/{i:05d}/stream", size=3)  # older versions
    for i in range(2200, 2300):
        s3.mark_deleted("store--toil", f"files-flat/{i:05d}/stream")
    for i in range(3):
        s3.start_upload("store--toil", f"files-flat/big{i}/stream")
    usage = empty_and_delete_bucket(s3, "store--toil", no_sleep)
    assert "store--toil" not in s3.buckets
    assert usage == {"objects": 2200, "versions": 2420, "delete_markers": 100, "bytes": 2300 * 7 + 120 * 3, "multipart_uploads": 3}
    assert s3.delete_batches == [1000, 1000, 520]
    assert [op for op, _b in s3.calls].count("AbortMultipartUpload") == 3
    assert ("DeleteObject", "store--toil") not in s3.calls
    assert ("ListObjectsV2", "store--toil") not in s3.calls


def test_an_unversioned_bucket_is_listed_by_key_and_then_checked_for_versions():
    s3 = FakeS3()
    s3.add_bucket("store--toil")
    for i in range(2500):
        s3.put("store--toil", f"files-flat/{i:05d}/stream", size=4)
    usage = empty_and_delete_bucket(s3, "store--toil", no_sleep)
    assert usage == {"objects": 2500, "versions": 2500, "delete_markers": 0, "bytes": 10000, "multipart_uploads": 0}
    assert s3.delete_batches == [1000, 1000, 500]
    ops = [op for op, _b in s3.calls]
    assert ops.count("ListObjectsV2") == 4 and ops.count("ListObjectVersions") == 1 and ops[-1] == "DeleteBucket"


def test_a_missing_bucket_is_no_error():
    s3 = FakeS3()
    assert empty_and_delete_bucket(s3, "gone--toil") == {"objects": 0, "versions": 0, "delete_markers": 0, "bytes": 0, "multipart_uploads": 0}


def test_objects_s3_refuses_to_delete_stop_the_removal_with_their_names():
    s3 = FakeS3()
    toil_store(s3)
    s3.refuse_keys = {"config.pickle"}
    with pytest.raises(JobStoreError, match=r"S3 refused to delete 1 object version\(s\) of bucket store--toil: config.pickle: AccessDenied Access Denied\."):
        empty_and_delete_bucket(s3, "store--toil", no_sleep)
    assert "store--toil" in s3.buckets
    assert ("DeleteBucket", "store--toil") not in s3.calls


def test_listings_that_keep_showing_deleted_versions_end_in_an_error_not_a_loop():
    s3 = FakeS3()
    toil_store(s3)
    s3.ignore_deletes = True
    with pytest.raises(JobStoreError, match="still lists object versions deleted 5 listings ago"):
        empty_and_delete_bucket(s3, "store--toil", no_sleep)
    assert len(s3.delete_batches) == jobstore.STALL_LIMIT + 1


def test_a_bucket_written_to_meanwhile_is_emptied_again():
    s3 = FakeS3()
    toil_store(s3)
    s3.writes_after_delete = 2
    usage = empty_and_delete_bucket(s3, "store--toil", no_sleep)
    assert "store--toil" not in s3.buckets
    assert usage["objects"] == 5


def test_a_bucket_that_keeps_filling_up_is_left_with_an_error():
    s3 = FakeS3()
    toil_store(s3)
    s3.writes_after_delete = 3
    with pytest.raises(ClientError, match="BucketNotEmpty"):
        empty_and_delete_bucket(s3, "store--toil", no_sleep)


# --- describing ------------------------------------------------------------------------------------


def test_a_toil_9_6_store():
    s3 = FakeS3()
    toil_store(s3, objects=5)
    s3.put("store--toil", "jobs/1234")
    store = describe_aws(s3, FakeSdb(), LOCATOR, count_objects=True)
    assert store["exists"] is True and store["layout"] == "s3" and store["layouts"] == ["s3"]
    assert store["buckets"] == ["store--toil"] and store["bucket_region"] == "us-west-2" and store["problem"] is None
    assert store["creation_time"] == "2026-01-02T03:04:05+00:00"
    assert store["workflow"] == {"initialized": True, "jobs": 1, "root_job_return_value": True, "status": "completed"}
    assert (store["objects"], store["versions"], store["bytes"], store["multipart_uploads"]) == (6, 6, 60, 0)
    assert [call[0] for call in s3.calls if call[0].startswith(("Delete", "Abort", "Put"))] == []


@pytest.mark.parametrize(
    ("keys", "jobs", "status"),
    [
        ([], 0, "not_initialized"),
        (["config.pickle"], 0, "not_started"),
        (["config.pickle", "rootJobReturnValue"], 2, "running"),
        (["config.pickle", "rootJobReturnValue", "failed.log"], 2, "failed"),
        (["config.pickle", "rootJobReturnValue", "succeeded.log"], 0, "completed"),
    ],
)
def test_workflow_status_from_the_shared_files_as_toil_status_decides(keys, jobs, status):
    assert workflow_state(set(keys), jobs)["status"] == status


def test_a_bucket_of_another_account_is_a_problem_and_is_never_touched():
    s3 = FakeS3()
    s3.add_bucket("store--toil", owned=False)
    store = describe_aws(s3, FakeSdb(), LOCATOR)
    assert store["exists"] is False and "belongs to another account" in store["problem"]
    with pytest.raises(ToilInputError, match="Nothing was removed: The bucket store--toil exists but this account may not read it"):
        ensure_absent(store, False, s3, None, LOCATOR, None)
    with pytest.raises(ToilInputError, match="Toil could not use this job store name"):
        ensure_present(store)
    assert [op for op, _b in s3.calls] == ["GetBucketLocation"]


def test_a_bucket_in_another_region_is_a_problem():
    s3 = FakeS3()
    toil_store(s3, region="us-east-1")
    store = describe_aws(s3, None, LOCATOR)
    assert store["exists"] is True and store["bucket_region"] == "us-east-1"
    assert store["problem"] == "The bucket store--toil is in us-east-1, not in us-west-2 as the locator says: use 'aws:us-east-1:store'."
    assert store["workflow"] is None
    with pytest.raises(ToilInputError, match="Nothing was removed"):
        ensure_absent(store, False, s3, None, LOCATOR, None)
    assert "store--toil" in s3.buckets


def test_a_free_name():
    store = describe_aws(FakeS3(), FakeSdb(domains=["other--jobs"]), LOCATOR)
    assert store["exists"] is False and store["problem"] is None and store["layout"] is None
    assert ensure_present(store) == (False, {"before": {}, "after": {}})
    assert ensure_absent(store, False)[0] is False


def legacy_sdb(registry="True", with_config=True):
    items = {}
    if with_config:
        items[("store--files", legacy_shared_file_item("config.pickle"))] = {"ownerID": "891f7db6-e4d9-4221-a58e-ab6cc4395f94", "encrypted": "False"}
    return FakeSdb(domains=["store--jobs", "store--files", "unrelated--jobs"], registry=registry, items=items)


def test_a_toil_9_0_store():
    s3, sdb = FakeS3(), legacy_sdb()
    s3.add_bucket("store--files", versioned=True)
    s3.put("store--files", "a-file-id", 5)
    s3.put("store--files", "a-file-id", 6)
    store = describe_aws(s3, sdb, LOCATOR, count_objects=True)
    assert store["layout"] == "sdb" and store["layouts"] == ["sdb"] and store["exists"] is True
    assert store["legacy_domains"] == ["store--jobs", "store--files"] and store["legacy_registry"] == "registered"
    assert store["buckets"] == ["store--files"]
    assert store["workflow"] == {"initialized": True, "jobs": None, "root_job_return_value": False, "status": "not_started"}
    assert (store["objects"], store["versions"], store["bytes"]) == (1, 2, 11)

    warnings = []
    removed = remove_aws(s3, sdb, LOCATOR, removal_plan(store), warnings.append, no_sleep)
    assert removed["versions"] == 2 and s3.buckets == {}
    assert sorted(sdb.domains) == ["toil-registry", "unrelated--jobs"] and sdb.domains["toil-registry"] == {}
    # Toil 9.0's order: marked exists=False first, the entry itself deleted last.
    order = [call[0] for call in sdb.calls if call[0] != "GetAttributes"]
    assert order == ["PutAttributes", "DeleteDomain", "DeleteDomain", "DeleteAttributes"] and warnings == []


def test_a_registry_entry_that_cannot_be_deleted_is_left_marked_false_with_a_warning():
    s3, sdb = FakeS3(), legacy_sdb()
    sdb.delete_attributes_fails = True
    store = describe_aws(s3, sdb, LOCATOR)
    warnings = []
    remove_aws(s3, sdb, LOCATOR, removal_plan(store), warnings.append, no_sleep)
    assert sdb.domains["toil-registry"]["store"] == {"exists": "False"}
    assert len(warnings) == 1 and "stays marked exists=False" in warnings[0]
    # Toil 9.0 reads "False" as "being removed": not a store, and nothing left to do.
    again = describe_aws(s3, sdb, LOCATOR)
    assert again["exists"] is False and again["legacy_registry"] == "in_transition"
    assert ensure_absent(again, False, s3, sdb, LOCATOR, warnings.append)[0] is False


def test_a_files_bucket_without_a_simpledb_trace_is_not_a_job_store():
    s3 = FakeS3()
    s3.add_bucket("store--files")
    store = describe_aws(s3, FakeSdb(), LOCATOR)
    assert store["exists"] is False and store["buckets"] == []
    assert ensure_absent(store, False, s3, FakeSdb(), LOCATOR, None)[0] is False
    assert "store--files" in s3.buckets


def test_without_simpledb_the_legacy_layout_is_not_looked_for():
    s3 = FakeS3()
    s3.add_bucket("store--files")
    store = describe_aws(s3, None, LOCATOR)
    assert store["layouts"] == [] and store["legacy_registry"] is None
    assert ("GetBucketLocation", "store--files") not in s3.calls


def test_both_layouts_are_removed_and_check_mode_only_counts():
    s3, sdb = FakeS3(), legacy_sdb()
    toil_store(s3)
    s3.add_bucket("store--files", versioned=True)
    s3.put("store--files", "a-file-id", 5)
    store = describe_aws(s3, sdb, LOCATOR)
    assert store["layouts"] == ["s3", "sdb"] and store["layout"] == "s3"
    calls_before = len(s3.calls)
    changed, removed, diff = ensure_absent(store, True, s3, sdb, LOCATOR, None)
    assert changed is True and removed["buckets"] == ["store--toil", "store--files"] and removed["objects"] == 4
    assert diff["before"]["buckets"] == ["store--toil", "store--files"] and diff["before"]["legacy_registry"] == "registered"
    assert not [op for op, _b in s3.calls[calls_before:] if op.startswith(("Delete", "Abort"))]
    assert sorted(s3.buckets) == ["store--files", "store--toil"] and len(sdb.domains) == 4

    changed, removed, diff = ensure_absent(store, False, s3, sdb, LOCATOR, None)
    assert changed is True and removed["objects"] == 4 and diff["after"] == {}
    assert s3.buckets == {} and sorted(sdb.domains) == ["toil-registry", "unrelated--jobs"]
