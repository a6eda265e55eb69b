# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Toil job stores: locators, the names behind them, and what ``toil clean`` does to them.

``aws:<region>:<name>`` keeps the whole store in the S3 bucket ``<name>--toil`` since
Toil 9.1; Toil 9.0 and older used the SimpleDB domains ``<name>--jobs`` and
``<name>--files``, the versioned bucket ``<name>--files`` and an entry ``<name>`` in the
region's shared ``toil-registry`` domain. ``file:<path>`` (or a bare path) is a directory.
Name rules are Toil's ``parse_jobstore_identifier`` (src/toil/jobStores/aws/jobStore.py).

Describing a store reads only (GetBucketLocation, ListBuckets, ListObjectsV2,
ListObjectVersions, ListMultipartUploads; SimpleDB ListDomains and GetAttributes: moto has
neither Select nor DomainMetadata, and neither is needed). Removing one is ``toil clean``
done carefully: unfinished multipart uploads aborted, every object version and delete marker
deleted in DeleteObjects batches of at most 1,000 keys, the bucket deleted, then the legacy
domains; a ``<name>--files`` bucket is only touched when a SimpleDB trace of Toil 9.0 says it
is a job store.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
import uuid
from dataclasses import dataclass

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError, ToilOperationError

try:
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError
except ImportError:  # reported by the module (AnsibleAWSModule checks for boto3/botocore)
    botocore = None
    BotoCoreError = ClientError = Config = ResponseParserError = None

_JOBSTORE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]+[a-z0-9]$")
JOBSTORE_NAME_MIN = 3
JOBSTORE_NAME_MAX = 56  # "<name>--toil" must fit S3's 63
BUCKET_SUFFIX = "--toil"
LEGACY_SUFFIXES = ("--jobs", "--files")


def known_regions():
    """Every EC2 region botocore knows, across partitions (Toil checks a static list)."""
    if botocore is None:
        return None
    session = botocore.session.get_session()
    regions = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return regions


@dataclass(frozen=True)
class JobStoreLocator:
    kind: str  # "aws" or "file"
    locator: str
    region: str = None
    name: str = None
    path: str = None

    @property
    def bucket(self):
        """The Toil >= 9.1 bucket."""
        return self.name + BUCKET_SUFFIX if self.kind == "aws" else None

    @property
    def legacy_domains(self):
        """The SimpleDB domains of Toil <= 9.0."""
        return [self.name + suffix for suffix in LEGACY_SUFFIXES] if self.kind == "aws" else []

    @property
    def legacy_bucket(self):
        """The versioned bucket of Toil <= 9.0."""
        return self.name + "--files" if self.kind == "aws" else None

    def as_dict(self):
        return {
            "kind": self.kind,
            "locator": self.locator,
            "region": self.region,
            "name": self.name,
            "path": self.path,
            "bucket": self.bucket,
            "legacy_bucket": self.legacy_bucket,
            "legacy_domains": self.legacy_domains,
        }


def validate_jobstore_name(name):
    if not JOBSTORE_NAME_MIN <= len(name) <= JOBSTORE_NAME_MAX:
        raise ToilInputError(f"AWS job store name must be between {JOBSTORE_NAME_MIN} and {JOBSTORE_NAME_MAX} characters: '{name}' has {len(name)}.")
    if not _JOBSTORE_NAME.fullmatch(name):
        raise ToilInputError(f"Invalid AWS job store name '{name}': use only digits, lowercase letters and '-', not starting or ending with '-'.")
    if "--" in name:
        raise ToilInputError(f"AWS job store names may not contain '--': '{name}'.")
    return name


def parse_jobstore_locator(locator, regions=None):
    """Parse ``aws:<region>:<name>``, ``file:<path>`` or a bare path, as Toil does.

    ``regions`` is the set of valid regions (default: botocore's); pass an empty set to
    skip the region check (for S3-compatible stores with their own region names).
    """
    if not isinstance(locator, str) or not locator:
        raise ToilInputError("The job store locator must be a non-empty string like 'aws:us-west-2:my-store'.")
    # Toil's parseLocator: a path-like string or one without ':' is a file job store.
    if locator[0] in "/." or ":" not in locator:
        return JobStoreLocator("file", locator, path=locator)
    kind, rest = locator.split(":", 1)
    if kind == "file":
        if not rest:
            raise ToilInputError("The file job store locator 'file:' needs a path.")
        return JobStoreLocator("file", locator, path=rest)
    if kind != "aws":
        raise ToilInputError(f"Unsupported job store locator '{locator}': only 'aws:<region>:<name>' and 'file:<path>' are supported.")
    parts = rest.split(":")
    if len(parts) != 2:
        raise ToilInputError(f"Invalid AWS job store locator '{locator}': expected 'aws:<region>:<name>'.")
    region, name = parts
    regions = known_regions() if regions is None else regions
    if regions and region not in regions:
        raise ToilInputError(f"AWS region '{region}' in job store locator '{locator}' is not one of: {', '.join(sorted(regions))}.")
    return JobStoreLocator("aws", locator, region=region, name=validate_jobstore_name(name))


# --- S3-compatible endpoints (TOIL_S3_HOST, TOIL_S3_PORT, TOIL_S3_USE_SSL) -------------------

S3_HOST_VAR = "TOIL_S3_HOST"
S3_PORT_VAR = "TOIL_S3_PORT"
S3_USE_SSL_VAR = "TOIL_S3_USE_SSL"
_TRUE_WORDS = ("true", "yes", "on", "1", "t", "y")
_FALSE_WORDS = ("false", "no", "off", "0", "f", "n")
# A DNS name or IPv4 address, or a bracketed IPv6 address, optionally with ":port".
_ENDPOINT_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:([0-9]+))?$")


def _bool_text(value, source):
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ToilInputError(f"{source} must be true or false ({', '.join(_TRUE_WORDS + _FALSE_WORDS)}), not {value!r}.")


def _port(value, source):
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ToilInputError(f"{source} must be a TCP port number between 1 and 65535, not {value!r}.")
    return int(text)


# The s3_endpoint option of both job store modules (documented in doc_fragments/s3_endpoint.py).
S3_ENDPOINT_SPEC = dict(type="dict", options=dict(host=dict(type="str"), port=dict(type="int"), use_ssl=dict(type="bool")))


def s3_endpoint_url(option=None, environ=None):
    """The URL of an S3-compatible endpoint (MinIO, ...), or None for AWS's own.

    ``host``, ``port`` and ``use_ssl`` each come from ``option`` (the modules' ``s3_endpoint``)
    when set there, else from TOIL_S3_HOST, TOIL_S3_PORT and TOIL_S3_USE_SSL; use_ssl defaults
    to true. A host alone is enough (``https://host``), and ``host:port`` works too. Toil builds
    an empty endpoint, which boto3 refuses, unless TOIL_S3_PORT is set as well (operator
    precedence in lib/aws/utils.py); its job store ignores the three variables altogether.
    """
    option = option or {}
    environ = os.environ if environ is None else environ

    def pick(key, variable):
        if option.get(key) is not None:
            return option[key], f"s3_endpoint.{key}"
        value = environ.get(variable)
        if value is not None and str(value).strip():
            return value, variable
        return None, None

    host, host_source = pick("host", S3_HOST_VAR)
    port, port_source = pick("port", S3_PORT_VAR)
    use_ssl, ssl_source = pick("use_ssl", S3_USE_SSL_VAR)
    if host is None:
        if option.get("port") is not None or option.get("use_ssl") is not None:
            raise ToilInputError(f"s3_endpoint needs a host (or {S3_HOST_VAR}) when its port or use_ssl is set.")
        return None
    host = str(host).strip()
    match = _ENDPOINT_HOST.fullmatch(host)
    if not match:
        raise ToilInputError(f"{host_source} must be a host name or an IP address, optionally with ':port', without a scheme or a path: not {host!r}.")
    scheme = "https" if use_ssl is None or _bool_text(use_ssl, ssl_source) else "http"
    if match.group(4) is not None:
        _port(match.group(4), host_source)
        if port is not None:
            raise ToilInputError(f"{host_source} {host!r} already names a port: do not set {port_source} as well.")
        return f"{scheme}://{host}"
    if port is not None:
        return f"{scheme}://{host}:{_port(port, port_source)}"
    return f"{scheme}://{host}"


def parse_locator_for(locator, endpoint_url):
    """``parse_jobstore_locator``; with an S3-compatible endpoint any region name is accepted
    (such stores have their own), but it may not be empty."""
    if endpoint_url is None:
        return parse_jobstore_locator(locator)
    parsed = parse_jobstore_locator(locator, regions=set())
    if parsed.kind == "aws" and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", parsed.region):
        raise ToilInputError(f"Invalid region '{parsed.region}' in job store locator '{locator}': use lowercase letters, digits and '-'.")
    return parsed


def sdb_regions():
    """The regions SimpleDB (Toil <= 9.0's job store) exists in, as botocore knows them."""
    if botocore is None:
        return set()
    return set(botocore.session.get_session().get_available_regions("sdb"))


def s3_client_options(endpoint_url):
    """Extra ``module.client`` arguments for S3: an S3-compatible endpoint gets path-style
    addressing (MinIO and most others serve no per-bucket host names)."""
    if endpoint_url is None:
        return {}
    return {"endpoint": endpoint_url, "config": Config(s3={"addressing_style": "path"})}


def wants_legacy_layout(locator, endpoint_url, include_legacy):
    """Whether to look in SimpleDB for a Toil <= 9.0 store: on AWS, in a region that has it."""
    return include_legacy and endpoint_url is None and locator.kind == "aws" and locator.region in sdb_regions()


# --- reading an AWS job store ------------------------------------------------------------------

REGISTRY_DOMAIN = "toil-registry"  # Toil <= 9.0: one per region, item <name>, attribute exists
# Toil <= 9.0 stored shared files (config.pickle, ...) as items uuid5(this, file name) of <name>--files.
LEGACY_SHARED_FILE_OWNER = uuid.UUID("891f7db6-e4d9-4221-a58e-ab6cc4395f94")
JOBS_PREFIX = "jobs/"
# Shared files, at the bucket's root (the names ``toil status`` reads).
CONFIG_KEY = "config.pickle"  # written, unencrypted, when the store is initialised
ROOT_RETURN_KEY = "rootJobReturnValue"  # written when the workflow starts its root job
SUCCEEDED_KEY = "succeeded.log"  # written by the leader at the end: no job failed
FAILED_KEY = "failed.log"  # written by the leader at the end: some job failed
DELETE_BATCH = 1000  # S3's limit for one DeleteObjects request
STALL_LIMIT = 5  # listings in a row that still show versions already deleted


class JobStoreError(ToilOperationError):
    """S3 or SimpleDB refused part of a removal; the message says what is left."""


def _error_code(error):
    return str(error.response.get("Error", {}).get("Code", ""))


def _http_status(error):
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _is_missing_bucket(error):
    return _error_code(error) in ("NoSuchBucket", "404", "NotFound") or _http_status(error) == 404


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
        if _error_code(error) in ("AccessDenied", "AllAccessDisabled", "403") or _http_status(error) == 403:
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


def _empty_usage():
    return {"objects": 0, "versions": 0, "delete_markers": 0, "bytes": 0, "multipart_uploads": 0}


def _add_usage(total, part):
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
    usage = _empty_usage()
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


def _root_keys(s3, bucket):
    """The keys at the bucket's root: Toil's shared files (a listing, not HeadObject: the shared
    files of an SSE-C store cannot be read without the key)."""
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/"):
        keys.update(item["Key"] for item in page.get("Contents") or [])
    return keys


def _count_keys(s3, bucket, prefix):
    return sum(len(page.get("Contents") or []) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix))


def workflow_state(shared_files, jobs):
    """What the keys say of the workflow, decided as ``toil status`` does (utils/toilStatus.py).

    ``shared_files``: the names of the shared files that exist; ``jobs``: the job records left
    (Toil deletes a job's record when the job is done), or None when they cannot be counted.
    Toil writes config.pickle when it makes the store, rootJobReturnValue when the workflow
    starts, and succeeded.log or failed.log when the leader ends.
    """
    if CONFIG_KEY not in shared_files:
        status = "not_initialized"
    elif SUCCEEDED_KEY in shared_files:
        status = "completed"
    elif FAILED_KEY in shared_files:
        status = "failed"
    elif ROOT_RETURN_KEY in shared_files:
        status = "running"  # or killed: the keys cannot tell
    else:
        status = "not_started"
    return {"initialized": CONFIG_KEY in shared_files, "jobs": jobs, "root_job_return_value": ROOT_RETURN_KEY in shared_files, "status": status}


def s3_workflow_state(s3, bucket):
    return workflow_state(_root_keys(s3, bucket), _count_keys(s3, bucket, JOBS_PREFIX))


def legacy_shared_file_item(name):
    return str(uuid.uuid5(LEGACY_SHARED_FILE_OWNER, name))


def _legacy_item_exists(sdb, domain, item):
    answer = sdb.get_attributes(DomainName=domain, ItemName=item, ConsistentRead=True, aws_retry=True)
    return bool(answer.get("Attributes"))


def legacy_workflow_state(sdb, locator, domains):
    """Toil <= 9.0: shared files are items of ``<name>--files``; jobs are items of
    ``<name>--jobs``, which only Select or DomainMetadata could count (``jobs`` is None)."""
    files_domain = locator.name + "--files"
    shared = set()
    if files_domain in domains:
        for name in (CONFIG_KEY, ROOT_RETURN_KEY, SUCCEEDED_KEY, FAILED_KEY):
            if _legacy_item_exists(sdb, files_domain, legacy_shared_file_item(name)):
                shared.add(name)
    return workflow_state(shared, None)


def sdb_domain_names(sdb):
    names = set()
    for page in sdb.get_paginator("list_domains").paginate():
        names.update(page.get("DomainNames") or [])
    return names


def registry_entry(sdb, name):
    """The ``exists`` attribute of item ``name`` in ``toil-registry``: "True", "False" (a store
    being made or removed, which Toil 9.0 does not resume) or None."""
    try:
        answer = sdb.get_attributes(DomainName=REGISTRY_DOMAIN, ItemName=name, AttributeNames=["exists"], ConsistentRead=True, aws_retry=True)
    except ClientError as error:
        if _error_code(error) == "NoSuchDomain":
            return None
        raise
    for attribute in answer.get("Attributes") or []:
        if attribute["Name"] == "exists":
            return attribute["Value"]
    return None


_REGISTRY_STATES = {"True": "registered", "False": "in_transition"}


def _base_description(locator, endpoint_url=None):
    return {
        "locator": locator.locator,
        "kind": locator.kind,
        "name": locator.name,
        "region": locator.region,
        "path": locator.path,
        "s3_endpoint": endpoint_url,
        "exists": False,
        "layout": None,
        "layouts": [],
        "bucket": locator.bucket,
        "buckets": [],
        "bucket_region": None,
        "legacy_domains": [],
        "legacy_registry": None,
        "creation_time": None,
        "workflow": None,
        "problem": None,
    }


def describe_aws(s3, sdb, locator, count_objects=False, endpoint_url=None):
    """What exists of ``aws:<region>:<name>``, read-only. ``sdb`` None skips the Toil <= 9.0 layout."""
    result = _base_description(locator, endpoint_url)
    problems = []
    state, region = bucket_state(s3, locator.bucket)
    if state == "forbidden":
        problems.append(
            f"The bucket {locator.bucket} exists but this account may not read it: it belongs to another account (bucket names are global), "
            "or s3:GetBucketLocation is denied. Toil could not use this job store name."
        )
    elif state == "owned":
        result["bucket_region"] = region
        if region != locator.region:
            problems.append(f"The bucket {locator.bucket} is in {region}, not in {locator.region} as the locator says: use 'aws:{region}:{locator.name}'.")
        result["buckets"].append(locator.bucket)
        result["layouts"].append("s3")
    if sdb is not None:
        existing = sdb_domain_names(sdb)
        domains = [name for name in locator.legacy_domains if name in existing]
        registry = registry_entry(sdb, locator.name)
        result["legacy_domains"] = domains
        result["legacy_registry"] = _REGISTRY_STATES.get(registry, registry)
        if domains or registry == "True":
            result["layouts"].append("sdb")
            legacy_state, legacy_region = bucket_state(s3, locator.legacy_bucket)
            if legacy_state == "forbidden":
                problems.append(f"The bucket {locator.legacy_bucket} of the Toil <= 9.0 job store exists but this account may not read it.")
            elif legacy_state == "owned":
                if legacy_region != locator.region:
                    problems.append(f"The bucket {locator.legacy_bucket} is in {legacy_region}, not in {locator.region} as the locator says.")
                result["buckets"].append(locator.legacy_bucket)
                result["bucket_region"] = result["bucket_region"] or legacy_region
    result["exists"] = bool(result["layouts"])
    result["layout"] = result["layouts"][0] if result["layouts"] else None
    result["problem"] = " ".join(problems) or None
    if problems or not result["exists"]:
        return result
    if result["layout"] == "s3":
        result["workflow"] = s3_workflow_state(s3, locator.bucket)
    else:
        result["workflow"] = legacy_workflow_state(sdb, locator, result["legacy_domains"])
    if result["buckets"]:
        result["creation_time"] = bucket_creation_time(s3, result["buckets"][0])
    if count_objects:
        usage = _empty_usage()
        for bucket in result["buckets"]:
            _add_usage(usage, bucket_usage(s3, bucket))
        result.update(usage)
    return result


# --- removing an AWS job store -----------------------------------------------------------------


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
                if _error_code(error) != "NoSuchUpload":
                    raise
            aborted.add(upload["UploadId"])


def _refused(bucket, errors):
    shown = "; ".join(
        f"{e.get('Key')}{' (version ' + e['VersionId'] + ')' if e.get('VersionId') else ''}: {e.get('Code')} {e.get('Message', '')}".strip() for e in errors[:5]
    )
    more = f" and {len(errors) - 5} more" if len(errors) > 5 else ""
    return JobStoreError(f"S3 refused to delete {len(errors)} object version(s) of bucket {bucket}: {shown}{more}. The bucket was not deleted.")


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
                raise JobStoreError(f"Bucket {bucket} still lists object versions deleted {STALL_LIMIT} listings ago; try again later.")
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
    usage = _empty_usage() if usage is None else usage
    if not is_versioned(s3, bucket):
        _drain(s3, bucket, _object_page, usage, sleep)
    return _drain(s3, bucket, _version_page, usage, sleep)


def empty_and_delete_bucket(s3, bucket, sleep=time.sleep):
    """What ``toil clean`` does to a bucket, carefully: abort unfinished uploads, delete every
    version and delete marker in batches, delete the bucket. A missing bucket is no error.
    Returns what was deleted (objects, versions, delete markers, bytes, multipart uploads)."""
    usage = _empty_usage()
    try:
        for attempt in range(3):
            usage["multipart_uploads"] += abort_multipart_uploads(s3, bucket)
            delete_all_versions(s3, bucket, usage, sleep)
            try:
                s3.delete_bucket(Bucket=bucket, aws_retry=True)
                return usage
            except ClientError as error:
                # Something wrote to the bucket meanwhile (a workflow still running?): empty it again.
                if _error_code(error) != "BucketNotEmpty" or attempt == 2:
                    raise
    except ClientError as error:
        if _is_missing_bucket(error):
            return usage
        raise
    return usage


def removal_plan(description):
    """What ``state=absent`` removes, from :func:`describe_aws`."""
    legacy = "sdb" in description["layouts"]
    return {
        "buckets": list(description["buckets"]),
        "legacy_domains": list(description["legacy_domains"]) if legacy else [],
        "legacy_registry_entry": legacy and description["legacy_registry"] is not None,
    }


def remove_aws(s3, sdb, locator, plan, warn, sleep=time.sleep):
    """Remove what ``plan`` lists, in Toil 9.0's order: registry entry marked ``exists=False``
    (Toil then no longer resumes the store), buckets, domains, the registry entry itself."""
    usage = _empty_usage()
    if plan["legacy_registry_entry"]:
        attributes = [{"Name": "exists", "Value": "False", "Replace": True}]
        sdb.put_attributes(DomainName=REGISTRY_DOMAIN, ItemName=locator.name, Attributes=attributes, aws_retry=True)
    for bucket in plan["buckets"]:
        _add_usage(usage, empty_and_delete_bucket(s3, bucket, sleep))
    for domain in plan["legacy_domains"]:
        sdb.delete_domain(DomainName=domain, aws_retry=True)  # SimpleDB: deleting a missing domain succeeds
    if plan["legacy_registry_entry"]:
        try:
            sdb.delete_attributes(DomainName=REGISTRY_DOMAIN, ItemName=locator.name, aws_retry=True)
        except (BotoCoreError, ClientError, ResponseParserError) as error:  # the store is gone; Toil <= 9.0 ignores an entry marked False
            warn(
                f"The job store is removed, but its entry '{locator.name}' in SimpleDB domain {REGISTRY_DOMAIN} could not be deleted "
                f"({type(error).__name__}: {error}); it stays marked exists=False, which Toil <= 9.0 treats as no job store."
            )
    return usage


# --- file job stores ---------------------------------------------------------------------------


def file_store_path(locator):
    """The absolute path of a ``file:`` store (``~`` expanded). Relative paths are refused: the
    module runs in a directory of Ansible's choosing, not the workflow's."""
    path = os.path.expanduser(locator.path)
    if not os.path.isabs(path):
        raise ToilInputError(
            f"The file job store '{locator.locator}' needs an absolute path: a relative one would be resolved where the module runs, "
            "not where the workflow ran."
        )
    return os.path.normpath(path)


def _shared_dir(path):
    """Toil >= 5.5 keeps shared files in ``shared/``; older releases in ``files/shared/``."""
    for candidate in (os.path.join(path, "shared"), os.path.join(path, "files", "shared")):
        if os.path.isdir(candidate) and not os.path.islink(candidate):
            return candidate
    return None


def is_file_job_store(path):
    """A directory Toil made: ``jobs/`` and a shared-files directory (Toil creates both first)."""
    return os.path.isdir(os.path.join(path, "jobs")) and _shared_dir(path) is not None


def _walk_usage(path):
    files = size = 0
    for root, dirs, names in os.walk(path):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            info = os.lstat(os.path.join(root, name))
            files += 1
            size += info.st_size if stat.S_ISREG(info.st_mode) else 0
    return {"objects": files, "versions": None, "delete_markers": None, "bytes": size, "multipart_uploads": None}


def _count_job_files(path):
    return sum(names.count("job") for _root, _dirs, names in os.walk(os.path.join(path, "jobs")))


def describe_file(locator, count_objects=False):
    """What is at a ``file:`` store's path, on the host the module runs on."""
    path = file_store_path(locator)
    result = _base_description(locator)
    result["path"] = path
    if os.path.islink(path):
        result["problem"] = f"{path} is a symbolic link: give the job store's own path."
    elif not os.path.lexists(path):
        if not os.path.isdir(os.path.dirname(path)):
            result["problem"] = f"{os.path.dirname(path)} does not exist: Toil could not create the job store {path} (it makes only the last directory)."
    elif not os.path.isdir(path):
        result["problem"] = f"{path} exists and is not a directory: Toil could not create a job store there."
    elif not is_file_job_store(path):
        result["problem"] = f"{path} exists and is not a Toil file job store (it has no jobs/ and shared/ directories): Toil would refuse it."
    else:
        shared = _shared_dir(path)
        result.update(exists=True, layout="file", layouts=["file"])
        result["workflow"] = workflow_state(set(os.listdir(shared)), _count_job_files(path))
        if count_objects:
            result.update(_walk_usage(path))
    return result


def remove_file(path, check_mode):
    """Delete a file job store's directory (what ``toil clean`` does); only call it on a path
    :func:`describe_file` found to be one. Returns the files and bytes that go."""
    usage = _walk_usage(path)
    if not check_mode:
        shutil.rmtree(path)
    return usage


# --- the modules' two operations ---------------------------------------------------------------


def _summary(description, usage):
    """The part of a description the diff shows."""
    summary = {key: description[key] for key in ("locator", "layout", "buckets", "legacy_domains", "path") if description.get(key)}
    if description["legacy_registry"] is not None and "sdb" in description["layouts"]:
        summary["legacy_registry"] = description["legacy_registry"]
    summary.update({key: value for key, value in usage.items() if value is not None})
    return summary


def ensure_absent(description, check_mode, s3=None, sdb=None, locator=None, warn=None, sleep=time.sleep):
    """Remove the store ``description`` (from describe_aws/describe_file) describes.
    Returns ``(changed, removed, diff)``; nothing is touched when it has a problem."""
    if description["problem"] and (description["kind"] == "aws" or os.path.lexists(description["path"] or "")):
        raise ToilInputError(f"Nothing was removed: {description['problem']}")
    if not description["exists"]:
        return False, None, {"before": {}, "after": {}}
    if description["kind"] == "file":
        usage = remove_file(description["path"], check_mode)
        removed = {"path": description["path"], **usage}
    else:
        plan = removal_plan(description)
        if check_mode:
            usage = _empty_usage()
            for bucket in plan["buckets"]:
                _add_usage(usage, bucket_usage(s3, bucket))
        else:
            usage = remove_aws(s3, sdb, locator, plan, warn, sleep)
        removed = {**plan, **usage}
    return True, removed, {"before": _summary(description, usage), "after": {}}


def ensure_present(description):
    """``state=present`` creates nothing (Toil refuses to start a workflow on an existing store):
    the name must be free, or already a Toil job store this account may use."""
    if description["problem"]:
        raise ToilInputError(description["problem"])
    return False, {"before": {}, "after": {}}
