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

from ansible.module_utils.basic import _load_params
from ansible_collections.amazon.aws.plugins.module_utils.common import set_collection_info
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError, ToilOperationError
from ansible_collections.toil.cluster.plugins.module_utils.limits import check_module_numbers
from ansible_collections.toil.cluster.plugins.module_utils.retries import AWS_RETRY
from ansible_collections.toil.cluster.plugins.module_utils.zones import ZONE_ENV_VAR, resolve_region, validate_region

COLLECTION_NAME = "toil.cluster"
COLLECTION_VERSION = "0.1.0"
# botocore's own retries for every client (its default is 3 attempts): throttling and 5xx are retried
# on each call, also those made without aws_retry=True and inside waiters. A user's aws_config wins.
RETRIES = {"mode": "standard", "max_attempts": 10}
# The options of every module that waits for instances (documented in each module).
WAIT_SPEC = dict(wait=dict(type="bool", default=True), wait_timeout=dict(type="int", default=600))


def waiter_failure(error, waiting_for, timeout):
    """What a botocore WaiterError means: a timeout only when the waiter ran out of attempts; else the
    state it met that can never become the one waited for (an instance terminated while starting), or
    the error AWS answered."""
    reason = str(error.kwargs.get("reason", ""))
    if reason.startswith("Max attempts exceeded"):
        return f"Timed out after {timeout} s waiting for {waiting_for}: {error}"
    return f"Gave up waiting for {waiting_for}: {error}"


class ToilAWSModule(AnsibleAWSModule):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        set_collection_info(collection_name=COLLECTION_NAME, collection_version=COLLECTION_VERSION)
        self._check_inputs(kwargs.get("argument_spec") or {})

    def _check_inputs(self, argument_spec):
        """What Ansible's conversions let through, refused before any client is made: numbers in other
        scripts' digits (Ansible's int reads "٣" as 3), numbers beyond AWS's limits, a malformed region."""
        try:
            raw = _load_params()  # the arguments as given; self.params holds them converted
        except Exception:  # noqa: BLE001 - not run by Ansible (unit tests): the converted ones will do
            raw = self.params
        with self.input_errors():
            check_module_numbers(argument_spec, raw, self.params)
            if self.params.get("region"):
                validate_region(self.params["region"])

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

    def price_list_client(self):
        """A client of the AWS Price List (prices.py) that gives up soon: prices have a fallback, so an unreachable
        or refusing endpoint costs a run seconds, not botocore's ten attempts."""
        from ansible_collections.toil.cluster.plugins.module_utils.prices import PRICING_REGION  # noqa: PLC0415 - only scaling modules

        config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=15)
        return super().client("pricing", region=PRICING_REGION, config=config)

    def zone_region(self):
        """The region from the ``zone`` option, else ``region``, else ``$TOIL_AWS_ZONE``; fails when there is none."""
        with self.input_errors():
            region = resolve_region(self.params.get("zone"), self.params.get("region"))
        if not region:
            self.fail_json(msg=f"No region: set zone (or {ZONE_ENV_VAR}), or region (or AWS_REGION).")
        return region

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
            self.fail_json(msg=waiter_failure(error, waiting_for or subject, self.params.get("wait_timeout")))
        except (BotoCoreError, ClientError) as error:
            self.fail_json_aws(error, msg=f"AWS refused a request for {subject}")
