"""Build the local apt repositories of the NVIDIA driver and container toolkit TEST DOUBLES (tests only).

NVIDIA's repositories (developer.download.nvidia.com, nvidia.github.io) cannot be reached from the test hosts, and
the driver could not run there anyway (no GPU, no kernel headers, no module build). So the kubernetes role's
production path for a GPU node (two repositories ``signed-by`` keys of pinned fingerprint and checksum, the apt
preference that pins the driver's version, pinned and held packages, ``modprobe``) runs against two flat repositories
like NVIDIA's, built by harness.hosts.apt_repo and each signed with its own throwaway key, with packages of the
role's default versions whose contents stand in for the real ones:

- ``cuda/``: ``nvidia-open`` (a modprobe configuration that makes ``modprobe nvidia`` and ``nvidia_uvm`` run
  /bin/true), which depends, as the real one, on ``nvidia-kernel-open-dkms``, offered at the driver's version and at
  a newer one (only the role's apt preference keeps apt from taking the newer), and ``linux-headers-<kernel>`` for
  the test machine's kernel, which the hosts share and Debian has no package for (an empty stand-in);
- ``toolkit/``: ``nvidia-container-toolkit``, ``nvidia-container-toolkit-base`` (with a
  ``/usr/bin/nvidia-container-runtime`` that passes through to runc, as the real one does for a container without
  GPUs), ``libnvidia-container-tools`` and ``libnvidia-container1``.

The tests serve them read-only at ``/srv/nvidia-double`` and override the role's repository URLs, key URLs, key
fingerprints and key checksums (role_vars); the versions stay the role's defaults. The molecule scenario
extensions/molecule/kubernetes_nvidia builds them so, and gives the variables to its converge (the keys are throwaway,
so the variables change with every build):

    PYTHONPATH=tests .venv/bin/python -m harness.hosts.nvidia_double_repo DEST --mount /srv/repos --role-vars FILE
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.hosts.apt_repo import AptRepository, SignedRepo, install_template

HERE = Path(__file__).resolve().parent
DOUBLE = HERE / "nvidia-double"
DEFAULTS = yaml.safe_load((HERE.parents[2] / "roles" / "kubernetes" / "defaults" / "main.yml").read_text())
DRIVER_VERSION = DEFAULTS["kubernetes_nvidia_driver_version"]
TOOLKIT_VERSION = DEFAULTS["kubernetes_nvidia_toolkit_version"]
NEWER_DRIVER_VERSION = "999.1.1-1"  # what apt would take for a dependency without the role's preference


def _describe(name: str, version: str, what: str) -> str:
    return f"TEST DOUBLE of {name} {version} (toil.cluster tests only)\n{what}"


@dataclass(frozen=True)
class NvidiaDoubleRepos:
    driver: SignedRepo
    toolkit: SignedRepo

    def role_vars(self, mount: str) -> dict[str, str]:
        """The kubernetes role's NVIDIA repository variables for these repositories, mounted at ``mount``."""
        return {
            "kubernetes_nvidia_driver_repository_url": f"file://{mount}/cuda/",
            "kubernetes_nvidia_driver_key_url": f"file://{mount}/cuda/key.asc",
            "kubernetes_nvidia_driver_key_fingerprint": self.driver.key_fingerprint,
            "kubernetes_nvidia_driver_key_checksum": f"sha256:{self.driver.key_sha256}",
            "kubernetes_nvidia_toolkit_repository_url": f"file://{mount}/toolkit/",
            "kubernetes_nvidia_toolkit_key_url": f"file://{mount}/toolkit/key.asc",
            "kubernetes_nvidia_toolkit_key_fingerprint": self.toolkit.key_fingerprint,
            "kubernetes_nvidia_toolkit_key_checksum": f"sha256:{self.toolkit.key_sha256}",
        }


def build(dest: Path) -> NvidiaDoubleRepos:
    """(Re)build both repositories under ``dest`` (``cuda/``, ``toolkit/``) and return how to trust them."""
    with AptRepository(dest / "cuda", label="nvidia-cuda-double", key_uid="toil.cluster test NVIDIA CUDA repository", key_file="key.asc") as repo:
        root = repo.stage("nvidia-open")
        install_template(DOUBLE / "modprobe.conf", root / "etc" / "modprobe.d" / "nvidia-double.conf", {}, 0o644)
        repo.add(root, "nvidia-open", DRIVER_VERSION, _describe("nvidia-open", DRIVER_VERSION, "Loads no module."), depends="nvidia-kernel-open-dkms")
        for version in (DRIVER_VERSION, NEWER_DRIVER_VERSION):
            root = repo.stage(f"nvidia-kernel-open-dkms-{version}")
            repo.add(root, "nvidia-kernel-open-dkms", version, _describe("nvidia-kernel-open-dkms", version, "Builds nothing."))
        headers = f"linux-headers-{os.uname().release}"
        repo.add(repo.stage(headers), headers, "1.0", _describe(headers, "1.0", "Empty: the hosts share the test machine's kernel."))
    toolkit_uid = "toil.cluster test libnvidia-container repository"
    with AptRepository(dest / "toolkit", label="nvidia-toolkit-double", key_uid=toolkit_uid, key_file="key.asc") as toolkit:
        root = toolkit.stage("nvidia-container-toolkit-base")
        install_template(DOUBLE / "nvidia-container-runtime", root / "usr" / "bin" / "nvidia-container-runtime", {"@VERSION@": TOOLKIT_VERSION}, 0o755)
        toolkit.add(root, "nvidia-container-toolkit-base", TOOLKIT_VERSION, _describe("nvidia-container-toolkit-base", TOOLKIT_VERSION, "Passes to runc."))
        for name, depends in (
            ("libnvidia-container1", ""),
            ("libnvidia-container-tools", f"libnvidia-container1 (>= {TOOLKIT_VERSION})"),
            ("nvidia-container-toolkit", f"nvidia-container-toolkit-base (= {TOOLKIT_VERSION}), libnvidia-container-tools (>= {TOOLKIT_VERSION})"),
        ):
            toolkit.add(toolkit.stage(name), name, TOOLKIT_VERSION, _describe(name, TOOLKIT_VERSION, "Empty."), depends=depends)
    assert repo.signed is not None and toolkit.signed is not None
    return NvidiaDoubleRepos(repo.signed, toolkit.signed)


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the NVIDIA driver and container toolkit test doubles' apt repositories.")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--mount", required=True, help="where the hosts see DEST")
    parser.add_argument("--role-vars", type=Path, required=True, help="write the role variables that install from them here (JSON)")
    args = parser.parse_args()
    args.role_vars.write_text(json.dumps(build(args.dest).role_vars(args.mount), indent=2) + "\n")


if __name__ == "__main__":
    main()
