# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The base of every module: amazon.aws's AnsibleAWSModule with this collection's identity.

AnsibleAWSModule brings the connection options (see doc fragment toil.cluster.aws),
``module_defaults`` support and retrying clients; this adds the user agent, one way to turn bad
input into a clear failure before anything is changed, and one to report what AWS refused.
"""

from __future__ import annotations

from contextlib import contextmanager

try:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError
except ImportError:
    Config = None  # AnsibleAWSModule reports the missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.common import set_collection_info
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError, ToilOperationError
from ansible_collections.toil.cluster.plugins.module_utils.retries import AWS_RETRY

COLLECTION_NAME = "toil.cluster"
COLLECTION_VERSION = "0.1.0"
# botocore's own retries for every client (its default is 3 attempts): throttling and 5xx are retried
# on each call, also those made without aws_retry=True and inside waiters. A user's aws_config wins.
RETRIES = {"mode": "standard", "max_attempts": 10}


class ToilAWSModule(AnsibleAWSModule):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        set_collection_info(collection_name=COLLECTION_NAME, collection_version=COLLECTION_VERSION)

    def client(self, service, retry_decorator=None, **extra_params):
        """AnsibleAWSModule's client with botocore's standard retry mode and 10 attempts."""
        config = Config(retries=dict(RETRIES))
        if extra_params.get("config") is not None:
            config = config.merge(extra_params["config"])
        extra_params["config"] = config
        return super().client(service, retry_decorator=retry_decorator, **extra_params)

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

    @contextmanager
    def aws_errors(self, subject, waiting_for=None):
        """AWS's refusals (after the retries), waiter timeouts, part-done changes and file errors as
        fail_json saying what was being done: ``subject`` names it ("cluster c1"), ``waiting_for`` what a
        waiter waited for.
        """
        try:
            yield
        except (ToilOperationError, OSError) as error:
            self.fail_json(msg=f"{subject}: {error}")
        except WaiterError as error:
            self.fail_json(msg=f"Timed out after {self.params.get('wait_timeout')} s waiting for {waiting_for or subject}: {error}")
        except (BotoCoreError, ClientError) as error:
            self.fail_json_aws(error, msg=f"AWS refused a request for {subject}")
