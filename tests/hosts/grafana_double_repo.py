"""Build a local apt repository of the grafana-server TEST DOUBLE (tests only).

No Grafana package can be downloaded here, so the dashboard role's production path (Grafana's apt
repository with suite ``stable`` and component ``main``, ``signed-by`` a key of pinned fingerprint and
checksum, a pinned and held ``grafana`` package) runs against this repository instead: the same layout,
signed with a throwaway GnuPG key, with one package ``grafana`` whose server is the script in
``grafana-double/`` (it reads the ini and provisioning files as Grafana does and answers /api/health).
The tests serve it to the hosts read-only as ``file:///srv/grafana-double-repo`` and override the role's
repository URL, key URL, key fingerprint and key checksum.
"""

from __future__ import annotations

import email.utils
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kube_double_repo import _sha256, _stanza, sign_release

HERE = Path(__file__).resolve().parent
DOUBLE = HERE / "grafana-double"


@dataclass(frozen=True)
class GrafanaDoubleRepo:
    path: Path
    version: str
    key_sha256: str
    key_fingerprint: str


def _package(work: Path, pool: Path, version: str) -> Path:
    root = work / "grafana"
    files = {
        "usr/share/grafana/bin/grafana-server": ("grafana-server", 0o755),
        "lib/systemd/system/grafana-server.service": ("grafana-server.service", 0o644),
        "DEBIAN/postinst": ("postinst", 0o755),
    }
    for target, (source, mode) in files.items():
        dest = root / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text((DOUBLE / source).read_text().replace("@VERSION@", version))
        dest.chmod(mode)
    for directory in ("etc/grafana/provisioning/datasources", "etc/grafana/provisioning/dashboards"):  # as the real package
        (root / directory).mkdir(parents=True)
    (root / "etc/grafana/grafana.ini").write_text("; the package's default configuration (test double)\n")
    (root / "DEBIAN/conffiles").write_text("/etc/grafana/grafana.ini\n")
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/grafana-server").symlink_to("/usr/share/grafana/bin/grafana-server")
    (root / "DEBIAN/control").write_text(
        f"Package: grafana\nVersion: {version}\nArchitecture: all\nMaintainer: toil.cluster tests <tests@invalid>\n"
        "Depends: adduser, python3, python3-yaml\nSection: default\nPriority: optional\n"
        f"Description: TEST DOUBLE of grafana {version} (toil.cluster tests only)\n"
        " Reads Grafana's ini and provisioning files and answers /api/health; it is not Grafana.\n"
    )
    pool.mkdir(parents=True, exist_ok=True)
    deb = pool / f"grafana_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], check=True, capture_output=True)
    return deb


def build(dest: Path, version: str = "11.5.2") -> GrafanaDoubleRepo:
    """(Re)build the repository in ``dest`` (dists/stable/main, like apt.grafana.com)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    with tempfile.TemporaryDirectory(prefix="grafana-double-") as tmp:
        work = Path(tmp)
        deb = _package(work, dest / "pool" / "main" / "g" / "grafana", version)
        dist = dest / "dists" / "stable"
        packages = dist / "main" / "binary-amd64" / "Packages"
        packages.parent.mkdir(parents=True)
        packages.write_text(_stanza(deb, dest).replace("Filename: ./", "Filename: "))
        release = dist / "Release"
        release.write_text(
            "Origin: toil.cluster tests\nLabel: grafana-double\nSuite: stable\nCodename: stable\n"
            f"Architectures: amd64 arm64\nComponents: main\nDate: {email.utils.formatdate(usegmt=True)}\n"
            f"SHA256:\n {_sha256(packages)} {packages.stat().st_size} main/binary-amd64/Packages\n"
        )
        key, fingerprint = sign_release(work, release, dist / "InRelease", "toil.cluster test grafana repository")
    (dest / "gpg.key").write_bytes(key)
    return GrafanaDoubleRepo(dest, version, _sha256(dest / "gpg.key"), fingerprint)
