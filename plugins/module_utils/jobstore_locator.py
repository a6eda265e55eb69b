# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Naming a Toil job store: its locator, the names behind it, and the S3 endpoint and clients that reach it.

``aws:<region>:<name>`` keeps the whole store in the S3 bucket ``<name>--toil`` since
Toil 9.1; Toil 9.0 and older used the SimpleDB domains ``<name>--jobs`` and
``<name>--files``, the versioned bucket ``<name>--files`` and an entry ``<name>`` in the
region's shared ``toil-registry`` domain. ``file:<path>`` (or a bare path) is a directory.
Name rules are Toil's ``parse_jobstore_identifier`` (src/toil/jobStores/aws/jobStore.py).
An S3-compatible store (MinIO, ...) is reached through ``s3_endpoint`` or Toil's ``TOIL_S3_*``
variables; both job store modules build their clients with :func:`jobstore_clients`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.retries import AWS_RETRY

try:
    import botocore.session
    from botocore.config import Config
except ImportError:  # reported by the module (AnsibleAWSModule checks for boto3/botocore)
    botocore = None
    Config = None

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


def jobstore_argument_spec(**own):
    """A job store module's options: ``locator``, the module's ``own``, ``s3_endpoint`` and ``include_legacy``."""
    return dict(locator=dict(type="str", required=True), **own, s3_endpoint=S3_ENDPOINT_SPEC, include_legacy=dict(type="bool", default=True))


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


def locate_jobstore(locator, s3_endpoint=None):
    """The job store modules' ``locator`` and ``s3_endpoint`` options -> ``(JobStoreLocator, endpoint URL or None)``."""
    endpoint_url = s3_endpoint_url(s3_endpoint)
    return parse_locator_for(locator, endpoint_url), endpoint_url


def jobstore_clients(module, locator, endpoint_url, include_legacy):
    """``(s3, sdb)`` for an AWS job store, built the one way of both job store modules: S3 in the locator's
    region (path-style at an S3-compatible endpoint); SimpleDB only when the Toil <= 9.0 layout is to be
    looked for, else None."""
    s3 = module.client("s3", retry_decorator=AWS_RETRY, region=locator.region, **s3_client_options(endpoint_url))
    sdb = None
    if wants_legacy_layout(locator, endpoint_url, include_legacy):
        sdb = module.client("sdb", retry_decorator=AWS_RETRY, region=locator.region)
    return s3, sdb
