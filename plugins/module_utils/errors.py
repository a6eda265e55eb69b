# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The one exception type for bad input, shared by every parser of Toil's conventions."""


class ToilInputError(ValueError):
    """Input that Toil (or AWS) would reject.

    Parsers raise it before anything is changed; modules and plugins turn it into a
    plain ``fail_json``/``AnsibleError`` message, never a traceback.
    """
