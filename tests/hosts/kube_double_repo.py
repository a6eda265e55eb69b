"""Build the local apt repository of the kubeadm/kubelet/kubectl TEST DOUBLE (tests only).

No kubeadm or kubelet can be downloaded here, so the role's production path (pkgs.k8s.io, signed-by
key with a checksum, pinned and held packages) is exercised against this repository instead: a flat
repository like pkgs.k8s.io's (``deb [signed-by=KEY] URL /``), signed with a throwaway GnuPG key,
whose packages carry the scripts in ``kube-double/``. The tests serve it to the hosts read-only as
``file:///srv/kube-double-repo`` and override the role's repository URL, key URL and key checksum.

    python tests/hosts/kube_double_repo.py DEST [VERSION]   # prints the key's sha256
"""

from __future__ import annotations

import email.utils
import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOUBLE = HERE / "kube-double"
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
        ``mount`` on the hosts, with nothing applied that needs an API server (the double has none)."""
        return {
            "kubernetes_version": self.version,
            "kubernetes_apt_repository_url": f"file://{mount}/",
            "kubernetes_apt_key_url": f"file://{mount}/key.asc",
            "kubernetes_apt_key_fingerprint": self.key_fingerprint,
            "kubernetes_apt_key_checksum": f"sha256:{self.key_sha256}",
            "kubernetes_apply_objects": False,
            "metrics_server_apply": False,
        }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _install(src: Path, dest: Path, version: str, mode: int = 0o755) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(src.read_text().replace("@VERSION@", version))
    dest.chmod(mode)


def _package(work: Path, out: Path, name: str, version: str, files: dict[str, tuple[str, int]], depends: str = "") -> Path:
    root = work / name
    for target, (source, mode) in files.items():
        _install(DOUBLE / source, root / target.lstrip("/"), version, mode)
    if name == "kubelet":  # as the real package: the static pod directory
        (root / "etc" / "kubernetes" / "manifests").mkdir(parents=True)
    control = root / "DEBIAN" / "control"
    control.parent.mkdir(parents=True, exist_ok=True)
    size_kib = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 1024 + 1
    lines = [
        f"Package: {name}",
        f"Version: {version}-{DEB_REVISION}",
        "Architecture: all",
        "Maintainer: toil.cluster tests <tests@invalid>",
        f"Installed-Size: {size_kib}",
        *([f"Depends: {depends}"] if depends else []),
        "Section: admin",
        "Priority: optional",
        f"Description: TEST DOUBLE of {name} {version} (toil.cluster tests only)",
        " Records its arguments and writes the files the real tool writes; it is not Kubernetes.",
    ]
    control.write_text("\n".join(lines) + "\n")
    deb = out / f"{name}_{version}-{DEB_REVISION}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], check=True, capture_output=True)
    return deb


def _stanza(deb: Path, out: Path) -> str:
    control = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True).stdout.rstrip("\n")
    return f"{control}\nFilename: ./{deb.relative_to(out)}\nSize: {deb.stat().st_size}\nSHA256: {_sha256(deb)}\n"


def sign_release(work: Path, release: Path, inrelease: Path, uid: str) -> tuple[bytes, str]:
    """Sign ``release`` into ``inrelease`` with a new one-day key: (the armored public key, its fingerprint)."""
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--quiet", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", ""]
    try:
        subprocess.run([*gpg, "--quick-gen-key", uid, "ed25519", "sign", "1d"], check=True, capture_output=True)
        subprocess.run([*gpg, "--clearsign", "-o", str(inrelease), str(release)], check=True, capture_output=True)
        key = subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True).stdout
        colons = subprocess.run([*gpg, "--with-colons", "--fingerprint"], check=True, capture_output=True, text=True).stdout
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)
    return key, next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))


def build(dest: Path, version: str = "1.35.2") -> KubeDoubleRepo:
    """(Re)build the repository in ``dest`` and return where it is and how to trust it."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():  # empty it in place: it may be bind-mounted into running hosts
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    with tempfile.TemporaryDirectory(prefix="kube-double-") as tmp:
        work = Path(tmp)
        debs = [
            _package(work, dest, "kubelet", version, {
                "/usr/bin/kubelet": ("kubelet", 0o755),
                "/usr/lib/systemd/system/kubelet.service": ("kubelet.service", 0o644),
                "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": ("10-kubeadm.conf", 0o644),
            }),
            _package(work, dest, "kubeadm", version, {"/usr/bin/kubeadm": ("kubeadm", 0o755)}, depends="openssl"),
            _package(work, dest, "kubectl", version, {"/usr/bin/kubectl": ("kubectl", 0o755)}),
        ]  # fmt: skip
        packages = dest / "Packages"
        packages.write_text("\n".join(_stanza(deb, dest) for deb in debs))
        release = dest / "Release"
        release.write_text(
            "Origin: toil.cluster tests\nLabel: kube-double\nArchitectures: all amd64 arm64\n"
            f"Date: {email.utils.formatdate(usegmt=True)}\n"
            f"SHA256:\n {_sha256(packages)} {packages.stat().st_size} Packages\n"
        )
        key, fingerprint = sign_release(work, release, dest / "InRelease", "toil.cluster test apt repository")
    (dest / "key.asc").write_bytes(key)
    return KubeDoubleRepo(dest, version, f"{version}-{DEB_REVISION}", _sha256(dest / "key.asc"), fingerprint)


if __name__ == "__main__":
    repo = build(Path(sys.argv[1]), *sys.argv[2:3])
    print(repo.key_sha256)
