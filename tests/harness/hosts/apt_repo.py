"""One builder for the signed apt repositories that serve the test doubles to the podman hosts (tests only).

No kubeadm, kubelet or Grafana package can be downloaded here, so the roles' production path (an apt repository
``signed-by`` a key of pinned fingerprint and checksum, pinned and held packages) runs against local repositories
built by ``AptRepository``, signed with a throwaway one-day GnuPG key:

- flat, like pkgs.k8s.io (``deb [signed-by=KEY] URL /``): ``suite=None``; the .debs, ``Packages``, ``Release`` and
  ``InRelease`` sit at the top (harness.hosts.kube_double_repo);
- a suite and a component, like apt.grafana.com (``deb [signed-by=KEY] URL stable main``): the .debs under
  ``pool/<component>/<initial>/<name>/``, the indexes under ``dists/<suite>/`` (harness.hosts.grafana_double_repo).

Use::

    with AptRepository(dest, label="kube-double", key_uid="...", key_file="key.asc") as repo:
        root = repo.stage("kubectl")                       # an empty package root
        install_template(source, root / "usr/bin/kubectl", {"@VERSION@": "1.35.2"}, 0o755)
        repo.add(root, "kubectl", "1.35.2-1.1", "TEST DOUBLE of kubectl ...")
    signed = repo.signed                                   # path, key_sha256, key_fingerprint

``dest`` is emptied in place first (it may be bind-mounted into running hosts).
"""

from __future__ import annotations

import email.utils
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ORIGIN = "toil.cluster tests"
MAINTAINER = "toil.cluster tests <tests@invalid>"


@dataclass(frozen=True)
class SignedRepo:
    path: Path  # the repository directory
    key_path: Path  # the armored public key, inside the repository
    key_sha256: str  # sha256 of the key file, for the roles' key checksum
    key_fingerprint: str  # the signing key's fingerprint, for the roles' key pin


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def install_template(source: Path, dest: Path, substitutions: Mapping[str, str], mode: int) -> None:
    """Copy the text file ``source`` to ``dest`` with ``substitutions`` applied (e.g. ``@VERSION@``), mode ``mode``."""
    text = source.read_text()
    for placeholder, value in substitutions.items():
        text = text.replace(placeholder, value)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    dest.chmod(mode)


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


class AptRepository:
    """A signed apt repository in ``dest``: flat when ``suite`` is None, else ``dists/<suite>/<component>``."""

    def __init__(
        self,
        dest: Path,
        *,
        label: str,
        key_uid: str,
        key_file: str,
        suite: str | None = None,
        component: str = "main",
        architectures: str | None = None,
    ) -> None:
        self.dest = Path(dest)
        self.label = label
        self.key_uid = key_uid
        self.key_file = key_file
        self.suite = suite
        self.component = component
        self.architectures = architectures or ("all amd64 arm64" if suite is None else "amd64 arm64")
        self._debs: list[Path] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.signed: SignedRepo | None = None

    # ------------------------------------------------------------------ building
    def __enter__(self) -> AptRepository:
        self.dest.mkdir(parents=True, exist_ok=True)
        for old in self.dest.iterdir():  # empty it in place: it may be bind-mounted into running hosts
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        self._tmp = tempfile.TemporaryDirectory(prefix=f"{self.label}-")
        return self

    @property
    def work(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("use AptRepository as a context manager")
        return Path(self._tmp.name)

    def stage(self, name: str) -> Path:
        """An empty package root for ``name`` (fill it, then ``add`` it)."""
        root = self.work / "roots" / name
        root.mkdir(parents=True)
        return root

    def add(self, root: Path, name: str, version: str, description: str, *, depends: str = "", section: str = "admin", architecture: str = "all") -> Path:
        """Build ``root`` into ``<name>_<version>_<architecture>.deb``; ``description``'s first line is the synopsis,
        the others its extended description. Returns the .deb."""
        size_kib = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink()) // 1024 + 1
        synopsis, *extended = description.splitlines()
        lines = [
            f"Package: {name}",
            f"Version: {version}",
            f"Architecture: {architecture}",
            f"Maintainer: {MAINTAINER}",
            f"Installed-Size: {size_kib}",
            *([f"Depends: {depends}"] if depends else []),
            f"Section: {section}",
            "Priority: optional",
            f"Description: {synopsis}",
            *(f" {line}" for line in extended),
        ]
        (root / "DEBIAN").mkdir(exist_ok=True)
        (root / "DEBIAN" / "control").write_text("\n".join(lines) + "\n")
        pool = self.dest if self.suite is None else self.dest / "pool" / self.component / name[0] / name
        pool.mkdir(parents=True, exist_ok=True)
        deb = pool / f"{name}_{version}_{architecture}.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], check=True, capture_output=True)
        self._debs.append(deb)
        return deb

    def _stanza(self, deb: Path) -> str:
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True).stdout.rstrip("\n")
        filename = deb.relative_to(self.dest).as_posix()
        if self.suite is None:
            filename = f"./{filename}"
        return f"{control}\nFilename: {filename}\nSize: {deb.stat().st_size}\nSHA256: {sha256(deb)}\n"

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                self.signed = self._index_and_sign()
        finally:
            assert self._tmp is not None
            self._tmp.cleanup()
            self._tmp = None

    def _index_and_sign(self) -> SignedRepo:
        if self.suite is None:
            index_dir, packages_name, headers = self.dest, "Packages", ""
        else:
            index_dir = self.dest / "dists" / self.suite
            packages_name = f"{self.component}/binary-amd64/Packages"
            headers = f"Suite: {self.suite}\nCodename: {self.suite}\n"
        packages = index_dir / packages_name
        packages.parent.mkdir(parents=True, exist_ok=True)
        packages.write_text("\n".join(self._stanza(deb) for deb in self._debs))
        release = index_dir / "Release"
        components = "" if self.suite is None else f"Components: {self.component}\n"
        release.write_text(
            f"Origin: {ORIGIN}\nLabel: {self.label}\n{headers}Architectures: {self.architectures}\n{components}"
            f"Date: {email.utils.formatdate(usegmt=True)}\n"
            f"SHA256:\n {sha256(packages)} {packages.stat().st_size} {packages_name}\n"
        )
        key, fingerprint = sign_release(self.work, release, index_dir / "InRelease", self.key_uid)
        key_path = self.dest / self.key_file
        key_path.write_bytes(key)
        return SignedRepo(self.dest, key_path, sha256(key_path), fingerprint)
