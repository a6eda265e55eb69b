# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A playbook variable that asks for a list or a mapping, read from what an AWX survey or ``-e name=value`` gives: a string.

A list: the list itself, or a string of shell words (``--retryCount 2 'a b'``) or a JSON list (``["a b", "c"]``).
A list of lines (``lines``: authorized keys, ssh options, whose items hold spaces): the list, a JSON list, or one item
per non-empty line. A mapping: the mapping itself, or a JSON object (``{"team": "x"}``) or shell words of ``key=value``.
An empty string is an empty list or mapping (a survey's field left blank). Nothing is evaluated: shlex only splits
and JSON only parses, so a value stays the data it was given.
"""

import json
import shlex

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

KINDS = ("list", "lines", "mapping")


def _parse_json(text, name):
    """JSON text that starts with [ or {: a list or an object, as its first character says."""
    try:
        return json.loads(text)
    except ValueError as error:
        raise ToilInputError(f"{name} is not valid JSON ({error}): {text[:200]!r}") from None


def _split_words(text, name):
    try:
        return shlex.split(text)
    except ValueError as error:  # an unclosed quote or a trailing backslash
        raise ToilInputError(f"{name} cannot be split as shell words ({error}): {text[:200]!r}") from None


def _pairs(words, name):
    mapping = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ToilInputError(f"{name} must be a mapping: a JSON object or key=value words, got the word {word!r}")
        mapping[key] = value
    return mapping


def survey_value(value, kind, name):
    """``value`` as a list or a mapping (``kind``); a string is parsed as the module docstring says, else ToilInputError."""
    if kind not in KINDS:
        raise ToilInputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    wanted = dict if kind == "mapping" else list
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return wanted()
        if text[0] == ("{" if kind == "mapping" else "["):
            return _parse_json(text, name)
        if kind == "lines":
            return [line.strip() for line in text.splitlines() if line.strip()]
        words = _split_words(text, name)
        return words if kind == "list" else _pairs(words, name)
    if wanted is list and isinstance(value, (list, tuple)):
        return list(value)
    if kind == "mapping" and isinstance(value, dict):
        return dict(value)
    shape = {
        "list": "a list, or a string of shell words or a JSON list",
        "lines": "a list, or a string of lines or a JSON list",
        "mapping": "a mapping, or a JSON object or key=value words",
    }[kind]
    raise ToilInputError(f"{name} must be {shape}; got a {type(value).__name__}")
