"""The kubernetes role's NVIDIA GPU nodes and architecture label, on this machine (no container host).

The role's own detection (tasks/nvidia_detect.yml) reads fake sysfs PCI trees laid out as the kernel's
(/sys/bus/pci/devices/<address>/{vendor,class}): a GPU is a function of vendor 0x10de whose class is a display
controller. A GPU node's inputs that would write another apt record or package stop it with a clear error (the key
checksums are optional, as the other repositories': the fingerprints are always checked), and a node label that would override the
kubelet's own kubernetes.io/arch stops the role at its input check, both before any change. The molecule scenario
extensions/molecule/kubernetes_nvidia installs, configures and labels on podman hosts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.paths import REPO
from harness.playbooks import run_ansible_playbook

ROLE = REPO / "roles" / "kubernetes"
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": str(REPO / ".venv" / "bin" / "python")}
CHECKSUMS = {"kubernetes_nvidia_driver_key_checksum": "sha256:" + "a" * 64, "kubernetes_nvidia_toolkit_key_checksum": "sha256:" + "b" * 64}
# PCI functions as sysfs shows them: (vendor, class).
GPU_3D = ("0x10de", "0x030200")  # a data-centre GPU (T4, A10G, L4, A100, H100): a 3D controller
GPU_VGA = ("0x10de", "0x030000")
NVSWITCH = ("0x10de", "0x068000")  # an NVIDIA bridge: not a GPU
GPU_AUDIO = ("0x10de", "0x040300")  # a GPU's HDMI audio function alone: not a GPU
VIRTIO = ("0x1af4", "0x010000")
INSTALL_TOOLKIT = "Install the NVIDIA Container Toolkit {{ kubernetes_nvidia_toolkit_version }}"  # as --list-tasks shows it


def sysfs(root: Path, functions: list[tuple[str, str]]) -> str:
    for index, (vendor, klass) in enumerate(functions):
        device = root / f"0000:00:{index:02x}.0"
        device.mkdir(parents=True)
        (device / "vendor").write_text(vendor + "\n")
        (device / "class").write_text(klass + "\n")
    root.mkdir(parents=True, exist_ok=True)
    return str(root)


def test_gpus_are_found_by_vendor_and_display_class_and_a_gpu_nodes_inputs_are_checked(tmp_path: Path) -> None:
    machines = {
        "t4": ([VIRTIO, GPU_3D], {**CHECKSUMS}),
        "vga": ([GPU_VGA], {**CHECKSUMS}),
        "nvswitch-and-audio": ([VIRTIO, NVSWITCH, GPU_AUDIO], {}),
        "none": ([], {}),
        "forced-off": ([GPU_3D], {"kubernetes_nvidia_gpu": False}),
        "forced-on": ([VIRTIO], {"kubernetes_nvidia_gpu": True, **CHECKSUMS}),
        "no-checksums": ([GPU_3D], {}),  # the pinned fingerprints alone, as for the Kubernetes and Grafana keys
        # Values that would write another apt preference record, or another package, if they were not checked.
        "version-newline": ([GPU_3D], {**CHECKSUMS, "kubernetes_nvidia_driver_version": "580.105.08-1\n"}),
        "version-record": ([GPU_3D], {**CHECKSUMS, "kubernetes_nvidia_driver_version": "580.105.08-1\nPackage: *\nPin: release a=sid"}),
        "package-option": ([GPU_3D], {**CHECKSUMS, "kubernetes_nvidia_driver_packages": ["nvidia-open", "-oAPT::Get::AllowUnauthenticated=1"]}),
        "checksum-newline": ([GPU_3D], {**CHECKSUMS, "kubernetes_nvidia_toolkit_key_checksum": "sha256:" + "b" * 64 + "\n"}),
    }
    refused = {"version-newline", "version-record", "package-option", "checksum-newline"}
    hosts = {
        name: {**LOCAL, **hostvars, "_kubernetes_nvidia_pci_devices": sysfs(tmp_path / "sys" / name, functions)}
        for name, (functions, hostvars) in machines.items()
    }
    # The role's defaults as the group's variables: below the hosts' own, as role defaults are.
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    (tmp_path / "inventory.json").write_text(json.dumps({"all": {"hosts": hosts, "vars": defaults}}))
    play = {
        "hosts": "all",
        "gather_facts": True,
        "gather_subset": ["min"],
        "tasks": [
            {"name": "Detect", "ansible.builtin.include_tasks": str(ROLE / "tasks" / "nvidia_detect.yml")},
            {"name": "Report", "ansible.builtin.debug": {"msg": "{{ _kubernetes_nvidia | bool }}"}},
        ],
    }
    result = run_ansible_playbook([play], {}, tmp_path / "run", inventory=str(tmp_path / "inventory.json"), expect_rc=None)
    found = {host: res["msg"] for entry in result.tasks("Report") for host, res in entry["hosts"].items()}
    gpu_nodes = {"t4": True, "vga": True, "nvswitch-and-audio": False, "none": False, "forced-off": False, "forced-on": True, "no-checksums": True}
    assert found == gpu_nodes, result.describe()
    failed = {host: message for _task, host, message in result.failed_tasks()}
    assert set(failed) == refused, result.describe()
    for host in refused:
        assert f"{host} is an NVIDIA GPU node" in failed[host] and "kubernetes_nvidia_driver_key_checksum" in failed[host], failed[host]
    assert all(stats["changed"] == 0 for stats in result.stats.values()), result.stats


@pytest.mark.parametrize("label", ["kubernetes.io/arch", "beta.kubernetes.io/arch", "kubernetes.io/os"])
def test_a_label_overriding_the_kubelets_architecture_stops_the_role_before_any_change(tmp_path: Path, label: str) -> None:
    """The kubelet labels its Node kubernetes.io/arch from its own build (arm64 on Graviton), which the scaler packs
    pinned pods by; --node-labels and the role's label patch would override it, so the role refuses such a label."""
    play = {"hosts": "localhost", "gather_facts": True, "gather_subset": ["min"], "roles": [{"role": "toil.cluster.kubernetes"}]}
    extra = {"kubernetes_node_labels": {label: "arm64", "team": "rna"}, "kubernetes_node_name": "n1", **LOCAL}
    result = run_ansible_playbook([play], {}, tmp_path, extra_vars=extra, check=True, expect_rc=None)
    ((task, _host, message),) = result.failed_tasks()
    assert task.endswith("Check the role's inputs"), result.describe()
    assert "without kubernetes.io/arch or kubernetes.io/os" in message
    assert result.stats["localhost"]["changed"] == 0


@pytest.mark.parametrize(
    ("tag", "inside", "outside"),
    [
        ("kubernetes_configure", ["Decide whether this is an NVIDIA GPU node"], INSTALL_TOOLKIT),
        ("kubernetes_install", ["Decide whether this is an NVIDIA GPU node", INSTALL_TOOLKIT], "Join with the token and the pinned CA hash"),
    ],
)
def test_tags_reach_the_nvidia_tasks(tmp_path: Path, tag: str, inside: list[str], outside: str) -> None:
    """The GPU decision runs under either tag (the registration's label reads it); the installs under kubernetes_install."""
    play = "- hosts: all\n  gather_facts: false\n  roles:\n    - role: toil.cluster.kubernetes\n"
    listing = run_ansible_playbook(play, {}, tmp_path, args=["--list-tasks", "--tags", tag]).stdout
    listed = [line.split(" : ", 1)[1].split("\tTAGS:")[0] for line in listing.splitlines() if " : " in line and "\tTAGS:" in line]
    assert set(inside) <= set(listed), listing
    assert outside not in listed, listing
