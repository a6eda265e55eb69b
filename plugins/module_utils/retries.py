# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""One retry policy for every AWS call of the collection.

Throttling, RequestLimitExceeded and 5xx are retried with jitter, at most 10 times
(AWSRetry's defaults for what counts as retryable). Paginated listings are wrapped whole,
so a page that keeps failing restarts the listing rather than returning part of it.
"""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

AWS_RETRY = AWSRetry.jittered_backoff(retries=10, delay=1, max_delay=30)
