# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The base of every module: amazon.aws's AnsibleAWSModule with this collection's identity.

AnsibleAWSModule brings the connection options (see doc fragment toil.cluster.aws),
``module_defaults`` support and retrying clients; this adds the user agent and one way to
turn bad input into a clear failure before anything is changed.
"""

from __future__ import annotations

from contextlib import contextmanager

from ansible_collections.amazon.aws.plugins.module_utils.common import set_collection_info
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.retries import AWS_RETRY

COLLECTION_NAME = "toil.cluster"
COLLECTION_VERSION = "0.1.0"


class ToilAWSModule(AnsibleAWSModule):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        set_collection_info(collection_name=COLLECTION_NAME, collection_version=COLLECTION_VERSION)

    def retrying_client(self, service, region=None):
        """A client whose calls retry throttling and 5xx when given ``aws_retry=True``.

        ``region`` overrides the module's region (e.g. one derived from a zone).
        """
        extra = {"region": region} if region else {}
        return self.client(service, retry_decorator=AWS_RETRY, **extra)

    @contextmanager
    def input_errors(self):
        """Turn a ToilInputError into fail_json with its message: no traceback."""
        try:
            yield
        except ToilInputError as error:
            self.fail_json(msg=str(error))
