# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Reading and removing an S3 bucket, the careful way of ``toil clean``.

Where a bucket is and whether this account owns it (GetBucketLocation), when it was made, what it
holds; and emptying it: unfinished multipart uploads aborted, every object version and delete
marker deleted in DeleteObjects batches of at most 1,000 keys, listing from the start each round
(which works on every S3 implementation), then the bucket deleted. Job stores and the cluster's
internal bucket (destroy.py) go this way.
"""

from __future__ import annotations

import time

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilOperationError

try:
    from botocore.exceptions import ClientError
except ImportError:  # reported by the module (AnsibleAWSModule checks for boto3/botocore)
    ClientError = None

DELETE_BATCH = 1000  # S3's limit for one DeleteObjects request
STALL_LIMIT = 5  # listings in a row that still show versions already deleted


class BucketRemovalError(ToilOperationError):
    """S3 refused part of emptying a bucket; the message says what is left."""


def error_code(error):
    return str(error.response.get("Error", {}).get("Code", ""))


def _http_status(error):
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _is_missing_bucket(error):
    return error_code(error) in ("NoSuchBucket", "404", "NotFound") or _http_status(error) == 404


def bucket_state(s3, bucket):
    """``("absent" | "owned" | "forbidden", region)``: GetBucketLocation's answer.

    A bucket of another account (bucket names are global) answers 403, as does one of ours when
    s3:GetBucketLocation is denied.
    """
    try:
        answer = s3.get_bucket_location(Bucket=bucket, aws_retry=True)
    except ClientError as error:
        if _is_missing_bucket(error):
            return "absent", None
        if error_code(error) in ("AccessDenied", "AllAccessDisabled", "403") or _http_status(error) == 403:
            return "forbidden", None
        raise
    location = answer.get("LocationConstraint") or "us-east-1"
    return "owned", {"EU": "eu-west-1"}.get(location, location)


def bucket_creation_time(s3, bucket):
    """The bucket's creation time (ISO 8601) from ListBuckets, or None when it may not be listed."""
    operation = s3.meta.service_model.operation_model("ListBuckets")
    kwargs = {"Prefix": bucket} if "Prefix" in operation.input_shape.members else {}
    try:
        pages = s3.get_paginator("list_buckets").paginate(**kwargs) if s3.can_paginate("list_buckets") else [s3.list_buckets(**kwargs)]
        for page in pages:
            for found in page.get("Buckets") or []:
                if found["Name"] == bucket:
                    return found["CreationDate"].isoformat()
    except ClientError as error:
        if _http_status(error) == 403:
            return None
        raise
    return None


def empty_usage():
    return {"objects": 0, "versions": 0, "delete_markers": 0, "bytes": 0, "multipart_uploads": 0}


def add_usage(total, part):
    for key, value in part.items():
        total[key] = total.get(key, 0) + value
    return total


def _count_version(usage, version):
    usage["versions"] += 1
    usage["bytes"] += version.get("Size", 0)
    if version.get("IsLatest"):
        usage["objects"] += 1


def bucket_usage(s3, bucket):
    """Objects (current versions), all versions, delete markers, bytes of every version, and
    unfinished multipart uploads: one full listing of the bucket."""
    usage = empty_usage()
    if is_versioned(s3, bucket):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for version in page.get("Versions") or []:
                _count_version(usage, version)
            usage["delete_markers"] += len(page.get("DeleteMarkers") or [])
    else:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents") or []:
                _count_version(usage, {**item, "IsLatest": True})
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        usage["multipart_uploads"] += len(page.get("Uploads") or [])
    return usage


def abort_multipart_uploads(s3, bucket):
    """Abort every unfinished multipart upload (listing from the start until none is left, so no
    marker ever points at an upload already gone). Returns how many were aborted."""
    aborted = set()
    while True:
        page = s3.list_multipart_uploads(Bucket=bucket, aws_retry=True)
        uploads = [upload for upload in page.get("Uploads") or [] if upload["UploadId"] not in aborted]
        if not uploads:
            return len(aborted)
        for upload in uploads:
            try:
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"], aws_retry=True)
            except ClientError as error:
                if error_code(error) != "NoSuchUpload":
                    raise
            aborted.add(upload["UploadId"])


def _refused(bucket, errors):
    shown = "; ".join(
        f"{e.get('Key')}{' (version ' + e['VersionId'] + ')' if e.get('VersionId') else ''}: {e.get('Code')} {e.get('Message', '')}".strip() for e in errors[:5]
    )
    more = f" and {len(errors) - 5} more" if len(errors) > 5 else ""
    return BucketRemovalError(f"S3 refused to delete {len(errors)} object version(s) of bucket {bucket}: {shown}{more}. The bucket was not deleted.")


def _version_page(s3, bucket):
    page = s3.list_object_versions(Bucket=bucket, MaxKeys=DELETE_BATCH, aws_retry=True)
    versions = page.get("Versions") or []
    markers = page.get("DeleteMarkers") or []
    return [{"Key": item["Key"], "VersionId": item["VersionId"]} for item in versions + markers], versions, markers


def _object_page(s3, bucket):
    # An unversioned bucket: each object is its one ("null") version, deleted by its key.
    contents = s3.list_objects_v2(Bucket=bucket, MaxKeys=DELETE_BATCH, aws_retry=True).get("Contents") or []
    return [{"Key": item["Key"]} for item in contents], [{**item, "IsLatest": True} for item in contents], []


def _drain(s3, bucket, list_page, usage, sleep):
    """List the first page, delete what it shows in one DeleteObjects request, and again until
    nothing is listed. Listing from the start each round, rather than following markers, works
    on every S3 implementation: moto ends a listing whose marker names a version just deleted."""
    previous = set()
    stalls = 0
    while True:
        entries, versions, markers = list_page(s3, bucket)
        if not entries:
            return usage
        listed = {(item["Key"], item.get("VersionId")) for item in entries}
        if listed & previous:
            stalls += 1
            if stalls > STALL_LIMIT:
                raise BucketRemovalError(f"Bucket {bucket} still lists object versions deleted {STALL_LIMIT} listings ago; try again later.")
            sleep(1)
        else:
            stalls = 0
        for version in versions:
            if (version["Key"], version.get("VersionId")) not in previous:
                _count_version(usage, version)
        usage["delete_markers"] += sum(1 for marker in markers if (marker["Key"], marker["VersionId"]) not in previous)
        for start in range(0, len(entries), DELETE_BATCH):
            batch = entries[start : start + DELETE_BATCH]
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True}, aws_retry=True)
            if answer.get("Errors"):
                raise _refused(bucket, answer["Errors"])
        previous = listed


def is_versioned(s3, bucket):
    """Whether versioning was ever turned on (Enabled or Suspended): only then can the bucket hold
    older versions and delete markers. Toil 9.1's buckets never are; Toil 9.0's always were."""
    return s3.get_bucket_versioning(Bucket=bucket, aws_retry=True).get("Status") is not None


def delete_all_versions(s3, bucket, usage=None, sleep=time.sleep):
    """Delete every object version and delete marker, at most DELETE_BATCH keys per DeleteObjects
    request. An unversioned bucket is emptied through ListObjectsV2 (cheaper to list), then the
    version listing confirms nothing is left. What is deleted is added to ``usage``."""
    usage = empty_usage() if usage is None else usage
    if not is_versioned(s3, bucket):
        _drain(s3, bucket, _object_page, usage, sleep)
    return _drain(s3, bucket, _version_page, usage, sleep)


def empty_and_delete_bucket(s3, bucket, sleep=time.sleep):
    """What ``toil clean`` does to a bucket, carefully: abort unfinished uploads, delete every
    version and delete marker in batches, delete the bucket. A missing bucket is no error.
    Returns what was deleted (objects, versions, delete markers, bytes, multipart uploads)."""
    usage = empty_usage()
    try:
        for attempt in range(3):
            usage["multipart_uploads"] += abort_multipart_uploads(s3, bucket)
            delete_all_versions(s3, bucket, usage, sleep)
            try:
                s3.delete_bucket(Bucket=bucket, aws_retry=True)
                return usage
            except ClientError as error:
                # Something wrote to the bucket meanwhile (a workflow still running?): empty it again.
                if error_code(error) != "BucketNotEmpty" or attempt == 2:
                    raise
    except ClientError as error:
        if _is_missing_bucket(error):
            return usage
        raise
    return usage
