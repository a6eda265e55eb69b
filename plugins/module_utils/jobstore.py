# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Toil job stores: what exists of one, what its keys say of the workflow, and ``toil clean`` done carefully.

Describing a store reads only (GetBucketLocation, ListBuckets, ListObjectsV2,
ListObjectVersions, ListMultipartUploads; SimpleDB ListDomains and GetAttributes: moto has
neither Select nor DomainMetadata, and neither is needed). Removing one is ``toil clean``
done carefully: the buckets emptied and deleted as s3_buckets.py does, then the legacy
domains; a ``<name>--files`` bucket is only touched when a SimpleDB trace of Toil 9.0 says it
is a job store. Locators and names: jobstore_locator.py.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import uuid

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.jobstore_locator import jobstore_clients
from ansible_collections.toil.cluster.plugins.module_utils.s3_buckets import (
    add_usage,
    bucket_creation_time,
    bucket_state,
    bucket_usage,
    empty_and_delete_bucket,
    empty_usage,
    error_code,
)

try:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError
except ImportError:  # reported by the module (AnsibleAWSModule checks for boto3/botocore)
    BotoCoreError = ClientError = ResponseParserError = None

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
        if error_code(error) == "NoSuchDomain":
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
        usage = empty_usage()
        for bucket in result["buckets"]:
            add_usage(usage, bucket_usage(s3, bucket))
        result.update(usage)
    return result


# --- removing an AWS job store -----------------------------------------------------------------


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
    usage = empty_usage()
    if plan["legacy_registry_entry"]:
        attributes = [{"Name": "exists", "Value": "False", "Replace": True}]
        sdb.put_attributes(DomainName=REGISTRY_DOMAIN, ItemName=locator.name, Attributes=attributes, aws_retry=True)
    for bucket in plan["buckets"]:
        add_usage(usage, empty_and_delete_bucket(s3, bucket, sleep))
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
            usage = empty_usage()
            for bucket in plan["buckets"]:
                add_usage(usage, bucket_usage(s3, bucket))
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


def describe_jobstore(module, locator, endpoint_url, include_legacy, count_objects=False):
    """What exists of the store ``locator`` names, and the clients that read it: ``(description, s3, sdb)``.

    Both job store modules start here. A file store needs no client (None, None).
    """
    if locator.kind == "file":
        return describe_file(locator, count_objects), None, None
    s3, sdb = jobstore_clients(module, locator, endpoint_url, include_legacy)
    return describe_aws(s3, sdb, locator, count_objects, endpoint_url), s3, sdb
