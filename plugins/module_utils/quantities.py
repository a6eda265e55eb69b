# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Kubernetes resource quantities (``500m``, ``2``, ``4Gi``, ``10G``, ``1e3``) as integers, and back.

CPU becomes millicores, memory and storage bytes; both round up, as the scheduler does, so a
request never looks smaller than it is. Code passes the integers around; the quantities are for
people (the ``demand`` option, what Kubernetes lists).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, DecimalException

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

_SUFFIXES = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_LARGEST = Decimal(2**63 - 1)  # Kubernetes keeps quantities in int64
_BINARY_SUFFIXES = sorted(((suffix, size) for suffix, size in _SUFFIXES.items() if suffix.endswith("i")), key=lambda item: -item[1])
# Kubernetes' own grammar: ASCII digits only ([0-9], never \d, which reads "١" as 1), matched whole.
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?")


def parse_quantity(value, what="quantity"):
    """A Kubernetes quantity as a Decimal of base units (cores, bytes)."""
    if isinstance(value, bool) or value is None:
        raise ToilInputError(f"{what}: {value!r} is not a Kubernetes quantity.")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ToilInputError(f"{what}: {value!r} is not a Kubernetes quantity.")
        number = Decimal(str(value))
    else:
        match = _QUANTITY.fullmatch(str(value).strip(" \t"))
        if not match:
            raise ToilInputError(f"{what}: '{value}' is not a Kubernetes quantity (like 500m, 2, 4Gi).")
        try:
            number = Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2) or ""])
        except DecimalException:  # an exponent beyond Decimal's range
            raise ToilInputError(f"{what}: '{value}' is not a Kubernetes quantity.") from None
    if number < 0:
        raise ToilInputError(f"{what}: '{value}' is negative.")
    if number > _LARGEST:
        raise ToilInputError(f"{what}: '{value}' is larger than any Kubernetes quantity (2^63-1).")
    return number


def millicores(value, what="cpu"):
    return int(math.ceil(parse_quantity(value, what) * 1000))


def byte_count(value, what="memory"):
    return int(math.ceil(parse_quantity(value, what)))


def format_cpu(millis):
    """Millicores as a Kubernetes quantity: ``2``, ``500m``."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_bytes(count):
    """Bytes as a Kubernetes quantity, with the largest binary suffix that is exact: ``4Gi``, ``4608Mi``, ``1000``."""
    if count:
        for suffix, size in _BINARY_SUFFIXES:
            if count % size == 0:
                return f"{count // size}{suffix}"
    return str(count)
