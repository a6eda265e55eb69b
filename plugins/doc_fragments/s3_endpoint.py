# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The ``s3_endpoint`` option of the job store modules (its argument spec: module_utils.jobstore_locator.S3_ENDPOINT_SPEC)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  s3_endpoint:
    description:
      - An S3-compatible object store (MinIO, Ceph, ...) that holds the job store's buckets instead of AWS's S3.
      - Each suboption that is not set falls back to Toil's variable, read on the host the module runs on.
      - SimpleDB does not exist there, so the Toil 9.0 layout is not looked for, and any region name is accepted.
    type: dict
    suboptions:
      host:
        description:
          - The endpoint's host name or IP address, optionally with C(:port). Defaults to C(TOIL_S3_HOST).
          - A host alone is enough. Toil itself needs C(TOIL_S3_PORT) as well, because of an operator-precedence
            bug in how it builds the URL.
        type: str
      port:
        description: The endpoint's port. Defaults to C(TOIL_S3_PORT), else the scheme's.
        type: int
      use_ssl:
        description: Whether to use HTTPS. Defaults to C(TOIL_S3_USE_SSL), else V(true).
        type: bool
"""
