# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The exception types modules turn into clear failures: bad input, and a change left part-done."""


class ToilInputError(ValueError):
    """Input that Toil (or AWS) would reject.

    Parsers raise it before anything is changed; modules and plugins turn it into a
    plain ``fail_json``/``AnsibleError`` message, never a traceback.
    """


class ToilOperationError(RuntimeError):
    """A change AWS accepted only in part (after its retries); the message says what is left."""
