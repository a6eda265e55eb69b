# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A pool's instance types chosen by their attributes instead of listed: ``requirements``.

::

    node_types:
      requirements: {vcpus: 4-16, memory_gib: 16-64, arch: x86_64, exclude: ["t*"]}
      spot_bid: 0.40

is resolved, when a module runs, through DescribeInstanceTypes (every type of the region, page by page) into
the types that match, smallest first (vCPUs, then memory, current generations before previous ones, then name), at
most ``max_types`` of them: the
pool tries them in that order, as it tries a written list. The defaults are those of EC2's own
attribute-based selection (a fleet's ``InstanceRequirements``): no bare-metal and no burstable (``t*``)
types unless asked for; and no type with GPUs, FPGAs or inference accelerators unless ``gpus`` is given (a
number or range of NVIDIA GPUs: then only types with that many NVIDIA GPUs, fewest GPUs first). A spot pool
takes only types sold as spot (``SupportedUsageClasses``). The toil_scaler keeps the region's types in its state
file for a day; toil_nodepool reads them on each run.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.limits import ascii_float, ascii_int

KEYS = ("vcpus", "memory_gib", "gpus", "arch", "exclude", "include", "burstable", "bare_metal", "max_types")
ARCHITECTURES = ("x86_64", "arm64")
# EC2's architecture names -> Kubernetes' (the kubernetes.io/arch label, Go's GOARCH).
KUBE_ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64"}
DEFAULT_MAX_TYPES = 10
MAX_TYPES = 40  # a pool tries its types one RunInstances call each
# The largest EC2 instances: 448 vCPUs and 24 TiB (u-24tb1); a range beyond is a mistake.
MAX_VCPUS = 1024
MAX_MEMORY_GIB = 32768
MAX_GPUS = 16  # the most NVIDIA GPUs of an EC2 type is 16 (p2.16xlarge)
# What the scaler keeps of a type (type_shape), and the layout of catalogue_entry: a kept catalogue of another
# version, or a kept shape without one of these keys, was written by an older run and is read again.
TYPE_SHAPE_KEYS = ("vcpus", "memory_mib", "storage_gib", "gpus", "arch")
CATALOGUE_VERSION = 2  # 2: entries count NVIDIA GPUs (gpus)
_GLOB = re.compile(r"^[a-z0-9.*?\[\]-]{1,64}$")
CATALOGUE_MAX_AGE_SECONDS = 86400  # what the scaler keeps in its state file


@dataclass(frozen=True)
class InstanceRequirements:
    """Bounds are inclusive; ``None`` for no upper bound."""

    vcpus: tuple = (1, None)
    memory_gib: tuple = (0, None)
    arch: str = "x86_64"
    exclude: tuple = ()
    include: tuple = ()
    burstable: bool = False
    bare_metal: bool = False
    max_types: int = DEFAULT_MAX_TYPES
    gpus: tuple = None  # NVIDIA GPUs per node; None: no GPU or other accelerated type

    @property
    def summary(self):
        """For people and for a pool's C(spec): ``vcpus 4-16, memory 16-64 GiB, x86_64, not t*``."""
        parts = [f"vcpus {_range_text(self.vcpus)}", f"memory {_range_text(self.memory_gib)} GiB"]
        if self.gpus is not None:
            parts.append(f"gpus {_range_text(self.gpus)}")
        parts.append(self.arch)
        if self.include:
            parts.append("only " + "/".join(self.include))
        if self.exclude:
            parts.append("not " + "/".join(self.exclude))
        parts += [name for name, wanted in (("burstable", self.burstable), ("bare metal", self.bare_metal)) if wanted]
        return ", ".join(parts)

    def as_dict(self):
        found = {
            "vcpus": _range_text(self.vcpus),
            "memory_gib": _range_text(self.memory_gib),
            "arch": self.arch,
            "exclude": list(self.exclude),
            "include": list(self.include),
            "burstable": self.burstable,
            "bare_metal": self.bare_metal,
            "max_types": self.max_types,
        }
        if self.gpus is not None:
            found["gpus"] = _range_text(self.gpus)
        return found


def _number_text(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range_text(bounds):
    low, high = bounds
    if high is None:
        return f"{_number_text(low)}-"
    return _number_text(low) if low == high else f"{_number_text(low)}-{_number_text(high)}"


def _parse_range(value, what, read, largest):
    """``4``, ``"4"``, ``"4-16"`` or ``"4-"`` (no upper bound) -> ``(low, high)``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ToilInputError(f"requirements.{what} must be a number or a range like '4-16', not {value!r}.")
    if isinstance(value, str) and "-" in value:
        low_text, _dash, high_text = value.partition("-")
        if "-" in high_text or not low_text.strip():
            raise ToilInputError(f"requirements.{what}: {value!r} is not a range like '4-16' or '4-'.")
        low = read(low_text, f"requirements.{what}")
        high = read(high_text, f"requirements.{what}") if high_text.strip() else None
    else:
        low = high = read(value, f"requirements.{what}")
    if low < 0 or (high is not None and high < low):
        raise ToilInputError(f"requirements.{what}: {value!r} is not a range from a smaller to a larger number.")
    if (high if high is not None else low) > largest:
        raise ToilInputError(f"requirements.{what}: {value!r} is more than any EC2 instance has ({largest}).")
    return low, high


def _globs(value, what):
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ToilInputError(f"requirements.{what} must be a list of instance type patterns like 't*', not {value!r}.")
    for pattern in value:
        if not isinstance(pattern, str) or not _GLOB.fullmatch(pattern):
            raise ToilInputError(f"requirements.{what}: {pattern!r} is not an instance type pattern (lowercase letters, digits, '.', '-', '*', '?').")
    return tuple(dict.fromkeys(value))


def _flag(value, what):
    if not isinstance(value, bool):
        raise ToilInputError(f"requirements.{what} must be true or false, not {value!r}.")
    return value


def parse_requirements(value):
    """The ``requirements`` mapping, checked; raises ToilInputError with the key at fault."""
    if isinstance(value, InstanceRequirements):
        return value
    if not isinstance(value, dict) or not value:
        raise ToilInputError(f"requirements must be a mapping like {{vcpus: 4-16, memory_gib: 16-64}}, not {value!r}.")
    unknown = sorted(str(k) for k in set(value) - set(KEYS))
    if unknown:
        raise ToilInputError(f"Unknown key(s) {', '.join(unknown)} in requirements: expected {', '.join(KEYS)}.")
    if "vcpus" not in value and "memory_gib" not in value:
        raise ToilInputError("requirements needs vcpus or memory_gib (or both): every type of the region would match.")
    arch = value.get("arch", "x86_64")
    if arch not in ARCHITECTURES:
        raise ToilInputError(f"requirements.arch must be one of {', '.join(ARCHITECTURES)}, not {arch!r}.")
    max_types = ascii_int(value.get("max_types", DEFAULT_MAX_TYPES), "requirements.max_types")
    if not 1 <= max_types <= MAX_TYPES:
        raise ToilInputError(f"requirements.max_types must be between 1 and {MAX_TYPES}, got {max_types}.")
    vcpus = _parse_range(value.get("vcpus", "1-"), "vcpus", ascii_int, MAX_VCPUS)
    gpus = None
    if value.get("gpus") is not None:
        gpus = _parse_range(value["gpus"], "gpus", ascii_int, MAX_GPUS)
        if gpus[0] < 1:
            raise ToilInputError(f"requirements.gpus: {value['gpus']!r} allows no GPU; leave gpus out for types without GPUs.")
    return InstanceRequirements(
        vcpus=(max(vcpus[0], 1), vcpus[1]),
        memory_gib=_parse_range(value.get("memory_gib", "0-"), "memory_gib", ascii_float, MAX_MEMORY_GIB),
        arch=arch,
        exclude=_globs(value.get("exclude"), "exclude"),
        include=_globs(value.get("include"), "include"),
        burstable=_flag(value.get("burstable", False), "burstable"),
        bare_metal=_flag(value.get("bare_metal", False), "bare_metal"),
        max_types=max_types,
        gpus=gpus,
    )


# ----------------------------------------------------------------------------- the region's types


def catalogue_entry(info):
    """What matching and the scaler's shapes need of one DescribeInstanceTypes entry.

    ``storage_gib``: the instance-store disks' total (``InstanceStorageInfo``: count x size, in GB as EC2 writes
    it, read as GiB as Toil's ``E2Instances`` does); 0 for EBS-only types. ``gpus``: the NVIDIA GPUs (``GpuInfo``'s
    counts, summed; those are what ``nvidia.com/gpu`` counts); ``accelerators``: any GPU (AMD's too), FPGA,
    inference or Neuron accelerator."""
    disks = (info.get("InstanceStorageInfo") or {}).get("Disks") or ()
    gpus = (info.get("GpuInfo") or {}).get("Gpus") or ()
    return {
        "vcpus": info["VCpuInfo"]["DefaultVCpus"],
        "memory_mib": info["MemoryInfo"]["SizeInMiB"],
        "storage_gib": sum(int(d.get("Count", 0)) * int(d.get("SizeInGB", 0)) for d in disks),
        "gpus": sum(int(g.get("Count", 0)) for g in gpus if str(g.get("Manufacturer", "")).upper() == "NVIDIA"),
        "architectures": list((info.get("ProcessorInfo") or {}).get("SupportedArchitectures") or ()),
        "usage_classes": list(info.get("SupportedUsageClasses") or ()),
        "burstable": bool(info.get("BurstablePerformanceSupported")),
        "bare_metal": bool(info.get("BareMetal")),
        "current_generation": bool(info.get("CurrentGeneration")),
        "accelerators": bool(info.get("GpuInfo") or info.get("FpgaInfo") or info.get("InferenceAcceleratorInfo") or info.get("NeuronInfo")),
    }


def kube_arch(architectures):
    """A type's architecture as Kubernetes names it (``amd64``, ``arm64``) from EC2's ``SupportedArchitectures``;
    None for neither (a Mac type's ``x86_64_mac``)."""
    found = [KUBE_ARCHITECTURES[a] for a in architectures if a in KUBE_ARCHITECTURES]
    return found[0] if found else None


def type_shape(entry):
    """What the scaler keeps of a type (its state's ``instance_types``, TYPE_SHAPE_KEYS): vCPUs, memory,
    instance-store disks, NVIDIA GPUs and its Kubernetes architecture."""
    return {
        "vcpus": entry["vcpus"],
        "memory_mib": entry["memory_mib"],
        "storage_gib": entry["storage_gib"],
        "gpus": entry["gpus"],
        "arch": kube_arch(entry["architectures"]),
    }


def read_catalogue(ec2):
    """Every instance type of the region, ``{name: catalogue_entry}``, through DescribeInstanceTypes' pages."""
    catalogue = {}
    for page in ec2.get_paginator("describe_instance_types").paginate():
        for info in page.get("InstanceTypes") or ():
            catalogue[info["InstanceType"]] = catalogue_entry(info)
    return catalogue


def _within(value, bounds):
    low, high = bounds
    return value >= low and (high is None or value <= high)


def matching_types(catalogue, requirements, preemptible):
    """The names of the types that meet ``requirements``, smallest first (fewest GPUs, then vCPUs, memory), at most
    ``max_types``. Without ``gpus``, no accelerated type; with it, only types whose NVIDIA GPUs are in its range."""
    usage = "spot" if preemptible else "on-demand"
    found = []
    for name, entry in catalogue.items():
        if requirements.include and not any(fnmatch.fnmatchcase(name, p) for p in requirements.include):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in requirements.exclude):
            continue
        if requirements.arch not in entry["architectures"] or usage not in entry["usage_classes"]:
            continue
        if (entry["burstable"] and not requirements.burstable) or (entry["bare_metal"] and not requirements.bare_metal):
            continue
        if entry["accelerators"] if requirements.gpus is None else not _within(entry["gpus"], requirements.gpus):
            continue
        if _within(entry["vcpus"], requirements.vcpus) and _within(entry["memory_mib"] / 1024, requirements.memory_gib):
            found.append((entry["gpus"], entry["vcpus"], entry["memory_mib"], not entry.get("current_generation"), name))
    return tuple(found_type[-1] for found_type in sorted(found)[: requirements.max_types])


def resolve_types(catalogue, requirements, preemptible, region=None):
    """``matching_types``, or a clear error naming the requirements when none matches."""
    types = matching_types(catalogue, requirements, preemptible)
    if not types:
        where = f" in {region}" if region else ""
        market = "spot" if preemptible else "on-demand"
        raise ToilInputError(f"No {market} instance type{where} meets the requirements ({requirements.summary}).")
    return types
