# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Numbers people give: ASCII digits only, and within AWS's and Kubernetes' hard limits.

Python's ``int()``, ``float()``, ``Decimal()`` and regular expressions' ``\\d`` all read digits of every
script (``int("٣") == 3``, ``float("１.５") == 1.5``), and so does Ansible's ``type: int`` (it goes through
``Decimal``). A count, a size or a timeout written that way is a mistake or a trick, never a number meant:
it is refused here, as are numbers no AWS or Kubernetes limit allows.
"""

from __future__ import annotations

import math
import re

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

# [0-9], never \d; the blanks int() itself allows around a number, ASCII ones only.
_ASCII_INT = re.compile(r"[ \t]*([+-]?[0-9]+)[ \t]*")
_ASCII_FLOAT = re.compile(r"[ \t]*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t]*")

# EBS: a gp3 volume is 1 to 16384 GiB; the Debian 12 images' root file system needs 8.
MIN_VOLUME_GIB = 8
MAX_VOLUME_GIB = 16384
# Kubernetes' largest supported cluster is 5000 nodes ("Considerations for large clusters"): no pool of a
# Toil cluster can usefully be larger, and a typo of 100,000 nodes is refused before RunInstances.
MAX_POOL_NODES = 5000
# Waiting (wait_timeout, drain_timeout) and idling (scale_down_idle_seconds) at most a day.
MAX_SECONDS = 86400

# The bounds of the modules' numeric options, by option name (ToilAWSModule checks them, nested ones too).
OPTION_BOUNDS = {
    "wait_timeout": (0, MAX_SECONDS, "seconds"),
    "drain_timeout": (0, MAX_SECONDS, "seconds"),
    "scale_down_idle_seconds": (0, MAX_SECONDS, "seconds"),
    "leader_storage": (MIN_VOLUME_GIB, MAX_VOLUME_GIB, "GiB"),
    "node_storage": (MIN_VOLUME_GIB, MAX_VOLUME_GIB, "GiB"),
    "count": (0, MAX_POOL_NODES, "nodes"),
    "min_size": (0, MAX_POOL_NODES, "nodes"),
    "max_size": (0, MAX_POOL_NODES, "nodes"),
    "desired": (0, MAX_POOL_NODES, "nodes"),
}


def ascii_int(value, what):
    """An int, or a string of ASCII digits (optional sign, surrounding blanks); anything else is refused."""
    if isinstance(value, bool):
        raise ToilInputError(f"{what} must be a whole number, not {value}.")
    if isinstance(value, int):
        return value
    match = _ASCII_INT.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ToilInputError(f"{what}: {value!r} is not a whole number written in ASCII digits 0-9.")
    return int(match.group(1))


def ascii_float(value, what):
    """A finite number: an int, a float, or a string of ASCII digits (``1.5``, ``.5``, ``2e-1``)."""
    if isinstance(value, bool):
        raise ToilInputError(f"{what} must be a number, not {value}.")
    if isinstance(value, str):
        match = _ASCII_FLOAT.fullmatch(value)
        if not match:
            raise ToilInputError(f"{what}: {value!r} is not a number written in ASCII digits 0-9.")
        value = float(match.group(1))
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ToilInputError(f"{what}: {value!r} is not a finite number.")
    return value


def check_range(value, what, low, high, unit=""):
    """``value`` if ``low <= value <= high``, else a clear error."""
    unit = f" {unit}" if unit else ""
    if value < 0 <= low:
        raise ToilInputError(f"{what} must not be negative (at most {high}{unit}), got {value}.")
    if value < low:
        raise ToilInputError(f"{what} must be at least {low}{unit} (at most {high}), got {value}.")
    if value > high:
        raise ToilInputError(f"{what} must be at most {high}{unit} (at least {low}), got {value}.")
    return value


def check_module_numbers(argument_spec, raw, params, context=""):
    """Every ``int``/``float`` option of ``argument_spec`` (suboptions included): given as ASCII digits in
    ``raw`` (the module's arguments before Ansible converted them) and within ``OPTION_BOUNDS`` in ``params``.
    """
    for name, spec in argument_spec.items():
        raw_value = raw.get(name) if isinstance(raw, dict) else None
        value = params.get(name) if isinstance(params, dict) else None
        what = context + name
        kind = spec.get("type", "str")
        if kind in ("int", "float") and isinstance(raw_value, str):
            ascii_float(raw_value, what)  # Ansible's own conversion then refuses a fraction for an int
        if kind in ("int", "float") and value is not None and not isinstance(value, bool) and name in OPTION_BOUNDS:
            low, high, unit = OPTION_BOUNDS[name]
            check_range(value, what, low, high, unit)
        suboptions = spec.get("options")
        if suboptions:
            if kind == "list":
                raws = raw_value if isinstance(raw_value, list) else []
                values = value if isinstance(value, list) else []
                for index, item in enumerate(values):
                    check_module_numbers(suboptions, raws[index] if index < len(raws) else {}, item, f"{what}[{index}].")
            else:
                check_module_numbers(suboptions, raw_value or {}, value or {}, f"{what}.")
