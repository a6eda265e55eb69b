"""Build the local apt repository of the kubeadm/kubelet/kubectl TEST DOUBLE (tests only).

No kubeadm or kubelet can be downloaded here, so the role's production path (pkgs.k8s.io, signed-by
key with a checksum, pinned and held packages) is exercised against this repository instead: a flat
repository like pkgs.k8s.io's (``deb [signed-by=KEY] URL /``), signed with a throwaway GnuPG key,
whose packages carry the scripts in ``kube-double/`` (and, in kubeadm's, the API server stand-in ``kube_api.py`` at
/usr/lib/kube-double/kube_api.py, which kubeadm init runs). The tests serve it to the hosts read-only as
``file:///srv/kube-double-repo`` and override the role's repository URL, key URL and key checksum.

    PYTHONPATH=tests .venv/bin/python -m harness.hosts.kube_double_repo DEST [VERSION]   # prints the key's sha256
    ... -m harness.hosts.kube_double_repo DEST VERSION --mount /srv/repo --role-vars FILE  # and writes role_vars()

(the molecule scenario extensions/molecule/kubernetes builds it so, and gives the file to its converge).

The repository itself is built by harness.hosts.apt_repo (shared with the grafana double).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from harness.hosts.apt_repo import AptRepository, install_template

HERE = Path(__file__).resolve().parent
DOUBLE = HERE / "kube-double"
KUBE_API = HERE.parent / "kube_api.py"  # the API server kubeadm init runs, shipped as is in the kubeadm package
DEB_REVISION = "1.1"  # pkgs.k8s.io versions look like 1.35.2-1.1


@dataclass(frozen=True)
class KubeDoubleRepo:
    path: Path  # the repository directory (Packages, InRelease, *.deb, key.asc)
    version: str  # Kubernetes version, e.g. 1.35.2
    package_version: str  # Debian version, e.g. 1.35.2-1.1
    key_sha256: str  # sha256 of key.asc, for the role's key checksum
    key_fingerprint: str  # the signing key's fingerprint, for the role's key pin

    def role_vars(self, mount: str) -> dict[str, object]:
        """The kubernetes and metrics_server role variables that install from this repository, mounted at
        ``mount`` on the hosts, with no manifest applied (the stand-in API server runs no controllers or pods)."""
        return {
            "kubernetes_version": self.version,
            "kubernetes_apt_repository_url": f"file://{mount}/",
            "kubernetes_apt_key_url": f"file://{mount}/key.asc",
            "kubernetes_apt_key_fingerprint": self.key_fingerprint,
            "kubernetes_apt_key_checksum": f"sha256:{self.key_sha256}",
            "kubernetes_apply_objects": False,
            "metrics_server_apply": False,
        }


def _install_all(root: Path, version: str, files: dict[str, tuple[str, int]]) -> None:
    for target, (source, mode) in files.items():
        install_template(DOUBLE / source, root / target.lstrip("/"), {"@VERSION@": version}, mode)


def build(dest: Path, version: str = "1.35.2") -> KubeDoubleRepo:
    """(Re)build the repository in ``dest`` and return where it is and how to trust it."""
    package_version = f"{version}-{DEB_REVISION}"
    packages = {
        "kubelet": {
            "/usr/bin/kubelet": ("kubelet", 0o755),
            "/usr/lib/systemd/system/kubelet.service": ("kubelet.service", 0o644),
            "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": ("10-kubeadm.conf", 0o644),
        },
        "kubeadm": {"/usr/bin/kubeadm": ("kubeadm", 0o755)},
        "kubectl": {"/usr/bin/kubectl": ("kubectl", 0o755)},
    }
    with AptRepository(dest, label="kube-double", key_uid="toil.cluster test apt repository", key_file="key.asc") as repo:
        for name, files in packages.items():
            root = repo.stage(name)
            _install_all(root, version, files)
            if name == "kubeadm":
                target = root / "usr" / "lib" / "kube-double" / "kube_api.py"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(KUBE_API.read_bytes())
                target.chmod(0o644)
            if name == "kubelet":  # as the real package: the static pod directory
                (root / "etc" / "kubernetes" / "manifests").mkdir(parents=True)
            description = (
                f"TEST DOUBLE of {name} {version} (toil.cluster tests only)\n"
                "Records its arguments and writes the files the real tool writes; it is not Kubernetes."
            )
            repo.add(root, name, package_version, description, depends="openssl" if name == "kubeadm" else "")
    assert repo.signed is not None
    return KubeDoubleRepo(repo.signed.path, version, package_version, repo.signed.key_sha256, repo.signed.key_fingerprint)


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the kubeadm/kubelet/kubectl test double's apt repository.")
    parser.add_argument("dest", type=Path)
    parser.add_argument("version", nargs="?", default="1.35.2")
    parser.add_argument("--mount", help="where the hosts see DEST (for --role-vars)")
    parser.add_argument("--role-vars", type=Path, help="write the role variables that install from it here (JSON)")
    args = parser.parse_args()
    if args.role_vars and not args.mount:
        parser.error("--role-vars needs --mount")
    repo = build(args.dest, args.version)
    if args.role_vars:
        args.role_vars.write_text(json.dumps(repo.role_vars(args.mount), indent=2) + "\n")
    print(repo.key_sha256)


if __name__ == "__main__":
    main()
