# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Node types and worker counts, as ``toil launch-cluster --nodeTypes ... -w ...`` reads them.

A node type is one or more interchangeable instance types with an optional spot bid:
``c5.4xlarge/c5a.4xlarge:0.42``; a bid means spot (preemptible) nodes. Several node types
are comma-separated, and ``-w`` pairs one worker count with each: ``N`` is a static pool,
``a-b`` a ranged one (ends swapped if reversed), and ``0`` is skipped. Toil's parsers are
``parse_node_types`` (src/toil/provisioners/__init__.py) and the loop in
src/toil/utils/toilLaunchCluster.py; these agree with them on every input Toil accepts and
refuse, with a clear message, what Toil refuses or what AWS would refuse later.

Unlike Toil, which keeps a node type's instance types in a set, the order written is kept:
pools try the first instance type first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.instance_requirements import parse_requirements
from ansible_collections.toil.cluster.plugins.module_utils.limits import MAX_POOL_NODES, ascii_int

# family[generation][attributes].size, e.g. m5.large, c7gn.16xlarge, u-6tb1.metal, mac2-m2.metal
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
# Pool names become tag values and Kubernetes label values.
_POOL_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_STRUCTURED_NODE_TYPE_KEYS = {"instance_types", "requirements", "spot_bid"}
_STRUCTURED_POOL_KEYS = {"name", "node_types", "count", "min_size", "max_size"}


@dataclass(frozen=True)
class NodeType:
    """Interchangeable instance types, in order of preference, and the spot bid if any.

    Or ``requirements`` (instance_requirements.py): the types are then found when a module runs, through
    DescribeInstanceTypes, and ``instance_types`` is empty until ``resolved`` gives them."""

    instance_types: tuple
    spot_bid: float = None
    requirements: object = None  # instance_requirements.InstanceRequirements

    @property
    def preemptible(self):
        return self.spot_bid is not None

    @property
    def spec(self):
        """Back to Toil's syntax: ``a/b:0.42`` (``requirements(vcpus 4-16, ...)`` before the types are found)."""
        types = "/".join(self.instance_types) if self.instance_types else f"requirements({self.requirements.summary})"
        return types if self.spot_bid is None else f"{types}:{self.spot_bid:g}"

    def resolved(self, instance_types):
        """This node type with the types its requirements found."""
        return replace(self, instance_types=tuple(instance_types))

    def as_dict(self):
        found = {"instance_types": list(self.instance_types), "spot_bid": self.spot_bid, "preemptible": self.preemptible, "spec": self.spec}
        if self.requirements is not None:
            found["requirements"] = self.requirements.as_dict()
        return found


@dataclass(frozen=True)
class WorkerPool:
    """A node type with its size: static (``min_size == max_size``) or ranged."""

    node_type: NodeType
    min_size: int
    max_size: int
    static: bool
    given_name: str = None

    @property
    def name(self):
        """The pool's name: as given, else derived from the node type and the market."""
        if self.given_name:
            return self.given_name
        base = re.sub(r"[^a-z0-9]+", "-", self.node_type.instance_types[0]).strip("-")
        return base + ("-spot" if self.node_type.preemptible else "")

    @property
    def summary(self):
        """One line for people: ``c5.4xlarge/c5a.4xlarge:0.42 x 0-4 (spot, ranged)``."""
        size = str(self.max_size) if self.static else f"{self.min_size}-{self.max_size}"
        market = "spot" if self.node_type.preemptible else "on-demand"
        return f"{self.node_type.spec} x {size} ({market}, {'static' if self.static else 'ranged'})"

    def as_dict(self):
        pool = {"name": self.name, "node_type": self.node_type.as_dict(), "static": self.static, "summary": self.summary}
        if self.static:
            pool["count"] = self.max_size
        else:
            pool.update(min_size=self.min_size, max_size=self.max_size)
        return pool


def validate_instance_type(instance_type, context):
    if not isinstance(instance_type, str) or not _INSTANCE_TYPE.fullmatch(instance_type):
        raise ToilInputError(f"Could not parse node type \"{context}\": '{instance_type}' is not an EC2 instance type name (like 'm5.large').")
    return instance_type


def validate_spot_bid(bid, context):
    """A bid is dollars per hour: a positive, finite number."""
    if isinstance(bid, bool):
        raise ToilInputError(f'Could not parse node type "{context}": the spot bid must be a number, not {bid}.')
    try:
        if isinstance(bid, str) and not bid.isascii():
            raise ValueError(bid)  # float() reads "١.٥" as 1.5
        value = float(bid)  # as Toil: also "1_0", and "inf" refused below
    except (TypeError, ValueError):
        raise ToilInputError(f"Could not parse node type \"{context}\": the spot bid '{bid}' is not a number.") from None
    if not math.isfinite(value) or value <= 0:
        raise ToilInputError(f"Could not parse node type \"{context}\": the spot bid must be a positive number of dollars per hour, got '{bid}'.")
    return value


def _unique(items):
    return tuple(dict.fromkeys(items))


def parse_node_type(spec):
    """One node type in Toil's syntax: ``type[/type...][:bid]``."""
    if not isinstance(spec, str):
        raise ToilInputError(f"A node type must be a string like 'c5.4xlarge/c5a.4xlarge:0.42', not {spec!r}.")
    if "," in spec:
        raise ToilInputError(f'Could not parse node type "{spec}": a single node type was expected; use a list for several.')
    parts = spec.split(":")
    if len(parts) > 2:
        raise ToilInputError(f'Could not parse node type "{spec}": multiple bids.')
    instance_types = parts[0].split("/")
    if "" in instance_types:
        raise ToilInputError(f'Could not parse node type "{spec}": empty instance type.')
    for instance_type in instance_types:
        validate_instance_type(instance_type, spec)
    bid = validate_spot_bid(parts[1], spec) if len(parts) > 1 else None
    return NodeType(_unique(instance_types), bid)


def parse_node_types(specs):
    """Toil's ``--nodeTypes``: comma-separated node types; empty or None gives none."""
    if not specs:
        return []
    if not isinstance(specs, str):
        raise ToilInputError(f"Node types must be a string like 'c5.4xlarge:0.42,t3.large', not {specs!r}.")
    return [parse_node_type(spec) for spec in specs.split(",")]


def normalize_node_type(value):
    """A node type in any form a playbook may write it.

    - Toil's syntax: ``"c5.4xlarge/c5a.4xlarge:0.42"``
    - a list of instance types (on-demand): ``[c5.4xlarge, c5a.4xlarge]``
    - a mapping: ``{instance_types: [c5.4xlarge, c5a.4xlarge], spot_bid: 0.42}``
    - a mapping with ``requirements`` instead of ``instance_types``: ``{requirements: {vcpus: 4-16}, spot_bid: 0.42}``
    """
    if isinstance(value, NodeType):
        return value
    if isinstance(value, str):
        return parse_node_type(value)
    if isinstance(value, (list, tuple)):
        value = {"instance_types": list(value)}
    if not isinstance(value, dict):
        raise ToilInputError(f"A node type must be a string, a list of instance types or a mapping, not {value!r}.")
    unknown = sorted(set(value) - _STRUCTURED_NODE_TYPE_KEYS)
    if unknown:
        raise ToilInputError(f"Unknown key(s) {', '.join(unknown)} in node type {value!r}: expected instance_types (or requirements) and spot_bid.")
    if value.get("requirements") is not None:
        if value.get("instance_types") is not None:
            raise ToilInputError("A node type takes instance_types or requirements, not both.")
        requirements = parse_requirements(value["requirements"])
        bid = value.get("spot_bid")
        return NodeType((), None if bid is None else validate_spot_bid(bid, "requirements"), requirements)
    instance_types = value.get("instance_types")
    if isinstance(instance_types, str):
        instance_types = instance_types.split("/")
    if not instance_types or not isinstance(instance_types, (list, tuple)):
        raise ToilInputError(f"Node type {value!r} needs a non-empty list of instance_types.")
    context = "/".join(str(t) for t in instance_types)
    for instance_type in instance_types:
        validate_instance_type(instance_type, context)
    bid = value.get("spot_bid")
    return NodeType(_unique(instance_types), None if bid is None else validate_spot_bid(bid, context))


def normalize_node_types(value):
    """Several node types: Toil's comma-separated string, or a list of any form above."""
    if value is None or isinstance(value, str):
        return parse_node_types(value)
    if isinstance(value, (list, tuple)):
        return [normalize_node_type(item) for item in value]
    raise ToilInputError(f"Node types must be a string or a list, not {value!r}.")


def _check_count(count, spec):
    if count < 0:
        raise ToilInputError(f"Worker count '{spec}' is negative.")
    if count > MAX_POOL_NODES:
        raise ToilInputError(f"Worker count '{spec}' is more than {MAX_POOL_NODES} nodes, the largest cluster Kubernetes supports.")
    return count


def _parse_count(text, spec):
    try:
        count = ascii_int(text, "worker count")  # as Toil's int(), blanks around are fine, but ASCII digits only
    except ToilInputError:
        raise ToilInputError(f"Worker count '{spec}' is not a number of nodes ('N') or a range ('min-max'), in ASCII digits.") from None
    return _check_count(count, spec)


def parse_worker_count(spec):
    """One entry of ``-w``: ``N`` -> ``(N, N, True)``; ``a-b`` -> ``(min, max, False)``."""
    if isinstance(spec, bool) or not isinstance(spec, (str, int)):
        raise ToilInputError(f"Worker count {spec!r} must be 'N' or 'min-max'.")
    if isinstance(spec, int):
        spec = str(_check_count(spec, spec))
    if "-" in spec:
        parts = spec.split("-")
        if len(parts) != 2:
            raise ToilInputError(f"Unacceptable range: {spec}")
        low, high = sorted((_parse_count(parts[0], spec), _parse_count(parts[1], spec)))
        return low, high, False
    count = _parse_count(spec, spec)
    return count, count, True


def parse_worker_counts(specs):
    """Toil's ``-w``: comma-separated worker counts; empty or None gives none."""
    if specs is None or specs == "":
        return []
    if isinstance(specs, int) and not isinstance(specs, bool):
        specs = str(specs)
    if isinstance(specs, str):
        specs = specs.split(",")
    if not isinstance(specs, (list, tuple)):
        raise ToilInputError(f"Worker counts must be a string like '0-4,2' or a list, not {specs!r}.")
    return [parse_worker_count(spec) for spec in specs]


def worker_pools(node_types, worker_counts):
    """Pair node types with worker counts one-to-one, as launch-cluster does.

    Pools of size 0 (``0``, ``0-0``) are skipped, as Toil skips them.
    """
    types = normalize_node_types(node_types)
    counts = parse_worker_counts(worker_counts)
    if bool(types) != bool(counts):
        raise ToilInputError("Node types require worker counts, and vice versa.")
    if len(types) != len(counts):
        raise ToilInputError(
            f"List of worker count ranges must be the same length as the list of node types ({len(counts)} worker counts for {len(types)} node types)."
        )
    pools = [WorkerPool(node_type, low, high, static) for node_type, (low, high, static) in zip(types, counts, strict=True) if high > 0]
    names = [pool.name for pool in pools]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ToilInputError(f"Two worker pools would both be named {', '.join(duplicates)}: give each node type a distinct first instance type.")
    return pools


def normalize_worker_pool(value):
    """A pool written as a mapping: ``{node_types, count}`` or ``{node_types, min_size, max_size}``."""
    if not isinstance(value, dict):
        raise ToilInputError(f"A worker pool must be a mapping, not {value!r}.")
    unknown = sorted(set(value) - _STRUCTURED_POOL_KEYS)
    if unknown:
        raise ToilInputError(f"Unknown key(s) {', '.join(unknown)} in worker pool {value!r}.")
    if "node_types" not in value:
        raise ToilInputError(f"Worker pool {value!r} needs node_types.")
    node_type = normalize_node_type(value["node_types"])
    has_count = value.get("count") is not None
    has_range = value.get("min_size") is not None or value.get("max_size") is not None
    if has_count == has_range:
        raise ToilInputError(f"Worker pool {node_type.spec} needs either count (static) or min_size and max_size (ranged).")
    if has_count:
        low, high, static = parse_worker_count(value["count"])
        if not static:
            raise ToilInputError(f"Worker pool {node_type.spec}: count must be a number; use min_size and max_size for a range.")
    else:
        if value.get("min_size") is None or value.get("max_size") is None:
            raise ToilInputError(f"Worker pool {node_type.spec} needs both min_size and max_size.")
        low, low_is_number = parse_worker_count(value["min_size"])[::2]  # (count, static)
        high, high_is_number = parse_worker_count(value["max_size"])[::2]
        if not (low_is_number and high_is_number):
            raise ToilInputError(f"Worker pool {node_type.spec}: min_size and max_size must each be a number, not a range.")
        if low > high:
            raise ToilInputError(f"Worker pool {node_type.spec}: min_size {low} is larger than max_size {high}.")
        static = False
    name = value.get("name")
    if name is not None and (not isinstance(name, str) or not _POOL_NAME.fullmatch(name)):
        raise ToilInputError(f"Worker pool name {name!r} must be lowercase letters, digits and '-' (at most 63).")
    if name is None and not node_type.instance_types:
        raise ToilInputError(f"Worker pool {node_type.spec} needs a name: its instance types are found only when it runs.")
    return WorkerPool(node_type, low, high, static, name)
