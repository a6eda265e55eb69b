# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Toil job store locators and the AWS names behind them.

``aws:<region>:<name>`` keeps the whole store in the S3 bucket ``<name>--toil`` since
Toil 9.1; Toil 9.0 and older used the SimpleDB domains ``<name>--jobs`` and
``<name>--files`` and the versioned bucket ``<name>--files``. ``file:<path>`` (or a bare
path) is a directory. Name rules are Toil's ``parse_jobstore_identifier``
(src/toil/jobStores/aws/jobStore.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

try:
    import botocore.session
except ImportError:  # reported by the module (AnsibleAWSModule checks for boto3/botocore)
    botocore = None

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
