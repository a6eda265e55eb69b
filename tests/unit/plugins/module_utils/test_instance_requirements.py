"""A pool's instance types chosen by attributes (instance_requirements.py): parsing, matching, the node type."""

from __future__ import annotations

import pytest
from moto.ec2.models.instance_types import INSTANCE_TYPES  # the DescribeInstanceTypes entries the endpoint serves

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.instance_requirements import (
    InstanceRequirements,
    catalogue_entry,
    matching_types,
    parse_requirements,
    resolve_types,
)
from ansible_collections.toil.cluster.plugins.module_utils.node_specs import normalize_node_type, normalize_worker_pool


def described(name, vcpus, memory_gib, arch="x86_64", spot=True, burstable=False, metal=False, current=True, gpus=0, disks=()):
    """An entry as DescribeInstanceTypes writes it (the fields read, and some that are not)."""
    info = {
        "InstanceType": name,
        "VCpuInfo": {"DefaultVCpus": vcpus, "DefaultCores": max(vcpus // 2, 1)},
        "MemoryInfo": {"SizeInMiB": int(memory_gib * 1024)},
        "ProcessorInfo": {"SupportedArchitectures": [arch], "SustainedClockSpeedInGhz": 3.1},
        "SupportedUsageClasses": ["on-demand", "spot"] if spot else ["on-demand"],
        "BurstablePerformanceSupported": burstable,
        "BareMetal": metal,
        "CurrentGeneration": current,
        "Hypervisor": "nitro",
    }
    if gpus:
        info["GpuInfo"] = {"Gpus": [{"Name": "T4", "Manufacturer": "NVIDIA", "Count": gpus, "MemoryInfo": {"SizeInMiB": 16384}}]}
    if disks:
        info["InstanceStorageInfo"] = {"TotalSizeInGB": sum(c * s for c, s in disks), "Disks": [{"Count": c, "SizeInGB": s, "Type": "ssd"} for c, s in disks]}
    return info


CATALOGUE = {
    info["InstanceType"]: catalogue_entry(info)
    for info in (
        described("m5.large", 2, 8),
        described("m5.xlarge", 4, 16),
        described("m4.xlarge", 4, 16, current=False),
        described("c5.xlarge", 4, 8),
        described("c5d.4xlarge", 16, 32, disks=((1, 400),)),
        described("m5.2xlarge", 8, 32),
        described("m5.4xlarge", 16, 64),
        described("r5.4xlarge", 16, 128),
        described("t3.xlarge", 4, 16, burstable=True),
        described("m5.metal", 96, 384, metal=True),
        described("g4dn.xlarge", 4, 16, gpus=1),
        described("m6g.xlarge", 4, 16, arch="arm64"),
        described("hpc6a.48xlarge", 96, 384, spot=False),
        described("x1e.xlarge", 4, 122, current=False),
    )
}


def types(spot=False, **requirements):
    return matching_types(CATALOGUE, parse_requirements(requirements), spot)


def test_the_smallest_matching_types_come_first_current_generations_before_previous_ones():
    assert types(vcpus="4-16", memory_gib="16-64") == ("m5.xlarge", "m4.xlarge", "m5.2xlarge", "c5d.4xlarge", "m5.4xlarge")


def test_by_default_no_burstable_bare_metal_accelerated_or_other_architecture_type():
    found = types(vcpus="1-")
    assert not {"t3.xlarge", "m5.metal", "g4dn.xlarge", "m6g.xlarge"} & set(found)
    assert "t3.xlarge" in types(vcpus=4, burstable=True) and "m5.metal" in types(vcpus="64-", bare_metal=True)
    assert types(vcpus=4, arch="arm64") == ("m6g.xlarge",)


def test_exclude_and_include_take_shell_patterns():
    assert types(vcpus=4, memory_gib=16, exclude=["m4*"], burstable=True) == ("m5.xlarge", "t3.xlarge")
    assert types(vcpus="4-16", include=["c5*", "r5.*"]) == ("c5.xlarge", "c5d.4xlarge", "r5.4xlarge")


def test_a_spot_pool_takes_only_types_sold_as_spot_and_max_types_keeps_the_smallest():
    assert "hpc6a.48xlarge" in types(vcpus="64-") and "hpc6a.48xlarge" not in types(vcpus="64-", spot=True)
    assert types(vcpus="1-", max_types=2) == ("m5.large", "c5.xlarge")


def test_memory_is_in_gib_and_may_be_a_fraction_or_open_ended():
    assert types(memory_gib="100-") == ("x1e.xlarge", "r5.4xlarge", "hpc6a.48xlarge")  # fewest vCPUs first
    assert types(memory_gib="7.5-8") == ("m5.large", "c5.xlarge")


def test_no_match_is_a_clear_error_naming_the_requirements():
    with pytest.raises(ToilInputError, match=r"No spot instance type in us-west-2 meets the requirements \(vcpus 64-, memory 0- GiB, arm64\)"):
        resolve_types(CATALOGUE, parse_requirements({"vcpus": "64-", "arch": "arm64"}), True, "us-west-2")


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        ({}, "requirements must be a mapping"),
        ("vcpus=4", "requirements must be a mapping"),
        ({"arch": "arm64"}, "needs vcpus or memory_gib"),
        ({"vcpus": 4, "fpgas": 1}, r"Unknown key\(s\) fpgas in requirements"),
        ({"vcpus": "16-4"}, "is not a range from a smaller to a larger number"),
        ({"vcpus": "4-8-16"}, "is not a range like"),
        ({"vcpus": "-4"}, "is not a range like"),
        ({"vcpus": "٤"}, "is not a whole number written in ASCII digits"),
        ({"vcpus": 4.5}, "is not a whole number"),
        ({"vcpus": True}, "must be a number or a range"),
        ({"vcpus": 5000}, "more than any EC2 instance has"),
        ({"memory_gib": "1e9"}, "more than any EC2 instance has"),
        ({"memory_gib": "lots"}, "is not a number written in ASCII digits"),
        ({"vcpus": 4, "arch": "sparc"}, "requirements.arch must be one of x86_64, arm64"),
        ({"vcpus": 4, "exclude": "t*; rm -rf /"}, "is not an instance type pattern"),
        ({"vcpus": 4, "exclude": [["t*"]]}, "is not an instance type pattern"),
        ({"vcpus": 4, "include": {"t*": 1}}, "must be a list of instance type patterns"),
        ({"vcpus": 4, "burstable": "yes"}, "requirements.burstable must be true or false"),
        ({"vcpus": 4, "max_types": 0}, "max_types must be between 1 and 40"),
        ({"vcpus": 4, "max_types": 100}, "max_types must be between 1 and 40"),
        ({"vcpus": 4, "gpus": 0}, "requirements.gpus: 0 allows no GPU; leave gpus out"),
        ({"vcpus": 4, "gpus": "0-4"}, "requirements.gpus: '0-4' allows no GPU"),
        ({"vcpus": 4, "gpus": "4-1"}, "requirements.gpus: '4-1' is not a range from a smaller to a larger number"),
        ({"vcpus": 4, "gpus": 1.5}, "requirements.gpus: 1.5 is not a whole number"),
        ({"vcpus": 4, "gpus": 64}, "requirements.gpus: 64 is more than any EC2 instance has"),
        ({"vcpus": 4, "gpus": "lots"}, "requirements.gpus: 'lots' is not a whole number"),
        ({"vcpus": 4, "gpus": True}, "requirements.gpus must be a number or a range"),
    ],
)
def test_bad_requirements_are_refused_with_the_key_at_fault(requirements, message):
    with pytest.raises(ToilInputError, match=message):
        parse_requirements(requirements)


def test_a_single_number_is_an_exact_size_and_a_summary_reads_back():
    parsed = parse_requirements({"vcpus": 4, "memory_gib": "16-64", "exclude": ["t*"], "max_types": "3"})
    assert parsed == InstanceRequirements(vcpus=(4, 4), memory_gib=(16.0, 64.0), exclude=("t*",), max_types=3)
    assert parsed.summary == "vcpus 4, memory 16-64 GiB, x86_64, not t*"
    assert parse_requirements(parsed.as_dict()) == parsed


def test_a_node_type_by_requirements_lists_its_types_only_once_resolved_and_its_pool_needs_a_name():
    node_type = normalize_node_type({"requirements": {"vcpus": "4-8"}, "spot_bid": "0.3"})
    assert node_type.instance_types == () and node_type.preemptible
    assert node_type.spec == "requirements(vcpus 4-8, memory 0- GiB, x86_64):0.3"
    resolved = node_type.resolved(("m5.xlarge", "m5.2xlarge"))
    assert resolved.spec == "m5.xlarge/m5.2xlarge:0.3" and resolved.requirements == node_type.requirements
    with pytest.raises(ToilInputError, match="instance_types or requirements, not both"):
        normalize_node_type({"requirements": {"vcpus": 4}, "instance_types": ["m5.large"]})
    with pytest.raises(ToilInputError, match="needs a name: its instance types are found only when it runs"):
        normalize_worker_pool({"node_types": {"requirements": {"vcpus": 4}}, "count": 1})
    assert normalize_worker_pool({"name": "general", "node_types": {"requirements": {"vcpus": 4}}, "count": 1}).name == "general"


def test_on_the_catalogue_the_endpoint_serves_every_type_found_meets_the_requirements_in_size_order():
    catalogue = {name: catalogue_entry(info) for name, info in INSTANCE_TYPES.items()}
    requirements = parse_requirements({"vcpus": "4-16", "memory_gib": "16-64", "exclude": ["t*"], "max_types": 40})
    found = matching_types(catalogue, requirements, preemptible=True)
    assert len(found) == 40
    sizes = [(catalogue[name]["vcpus"], catalogue[name]["memory_mib"]) for name in found]
    assert sizes == sorted(sizes) and all(4 <= v <= 16 and 16 * 1024 <= m <= 64 * 1024 for v, m in sizes)
    assert not any(name.startswith("t") or catalogue[name]["accelerators"] or catalogue[name]["bare_metal"] for name in found)
    assert all("x86_64" in catalogue[name]["architectures"] and "spot" in catalogue[name]["usage_classes"] for name in found)


def test_gpus_picks_only_types_with_that_many_nvidia_gpus_fewest_first():
    assert types(vcpus="1-", gpus=1) == ("g4dn.xlarge",)
    assert types(vcpus="1-", gpus="2-") == ()
    parsed = parse_requirements({"vcpus": "4-", "gpus": "1-4"})
    assert parsed.summary == "vcpus 4-, memory 0- GiB, gpus 1-4, x86_64" and parse_requirements(parsed.as_dict()) == parsed
    with pytest.raises(ToilInputError, match=r"No on-demand instance type meets the requirements \(vcpus 4-, memory 0- GiB, gpus 8-, x86_64\)"):
        resolve_types(CATALOGUE, parse_requirements({"vcpus": "4-", "gpus": "8-"}), False)


def test_an_amd_gpu_is_an_accelerator_but_no_nvidia_gpu():
    info = described("g4ad.xlarge", 4, 16)
    info["GpuInfo"] = {"Gpus": [{"Name": "Radeon Pro V520", "Manufacturer": "AMD", "Count": 1, "MemoryInfo": {"SizeInMiB": 8192}}]}
    entry = catalogue_entry(info)
    assert (entry["gpus"], entry["accelerators"]) == (0, True)
    catalogue = {**CATALOGUE, "g4ad.xlarge": entry}
    assert "g4ad.xlarge" not in matching_types(catalogue, parse_requirements({"vcpus": 4}), False)
    assert "g4ad.xlarge" not in matching_types(catalogue, parse_requirements({"vcpus": 4, "gpus": 1}), False)


def test_on_the_endpoints_catalogue_gpus_1_4_picks_nvidia_types_and_without_gpus_none_is_accelerated():
    catalogue = {name: catalogue_entry(info) for name, info in INSTANCE_TYPES.items()}
    found = matching_types(catalogue, parse_requirements({"vcpus": "1-", "gpus": "1-4", "max_types": 40}), preemptible=True)
    assert found and all(1 <= catalogue[name]["gpus"] <= 4 and INSTANCE_TYPES[name].get("GpuInfo") for name in found)
    order = [(catalogue[name]["gpus"], catalogue[name]["vcpus"], catalogue[name]["memory_mib"]) for name in found]
    assert order == sorted(order)
    # the count is what GpuInfo says, summed over its entries
    for name in found:
        assert catalogue[name]["gpus"] == sum(g["Count"] for g in INSTANCE_TYPES[name]["GpuInfo"]["Gpus"] if g["Manufacturer"] == "NVIDIA")
    without = matching_types(catalogue, parse_requirements({"vcpus": "1-", "max_types": 40}), preemptible=True)
    assert without and not any(INSTANCE_TYPES[name].get("GpuInfo") for name in without)
    assert not set(found) & set(matching_types(catalogue, parse_requirements({"vcpus": "4-8", "memory_gib": "16-32", "max_types": 40}), True))
