"""Build a local apt repository of the grafana-server TEST DOUBLE (tests only).

No Grafana package can be downloaded here, so the dashboard role's production path (Grafana's apt
repository with suite ``stable`` and component ``main``, ``signed-by`` a key of pinned fingerprint and
checksum, a pinned and held ``grafana`` package) runs against this repository instead: the same layout,
signed with a throwaway GnuPG key, with one package ``grafana`` whose server is the script in
``grafana-double/`` (it reads the ini and provisioning files as Grafana does and answers /api/health).
The dashboard scenario (extensions/molecule/dashboard) builds it with ``python -m harness.hosts.grafana_double_repo
DEST [VERSION]`` (which prints the repository's path, version, key checksum and fingerprint as JSON), copies it to
the host as ``file:///srv/grafana-double-repo`` and overrides the role's repository URL, key URL, key fingerprint
and key checksum. The repository itself is built by harness.hosts.apt_repo (shared with the kube double).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.hosts.apt_repo import AptRepository, install_template

HERE = Path(__file__).resolve().parent
DOUBLE = HERE / "grafana-double"


@dataclass(frozen=True)
class GrafanaDoubleRepo:
    path: Path
    version: str
    key_sha256: str
    key_fingerprint: str


def build(dest: Path, version: str = "11.5.2") -> GrafanaDoubleRepo:
    """(Re)build the repository in ``dest`` (dists/stable/main, like apt.grafana.com)."""
    files = {
        "usr/share/grafana/bin/grafana-server": ("grafana-server", 0o755),
        "lib/systemd/system/grafana-server.service": ("grafana-server.service", 0o644),
        "DEBIAN/postinst": ("postinst", 0o755),
    }
    with AptRepository(dest, label="grafana-double", key_uid="toil.cluster test grafana repository", key_file="gpg.key", suite="stable") as repo:
        root = repo.stage("grafana")
        for target, (source, mode) in files.items():
            install_template(DOUBLE / source, root / target, {"@VERSION@": version}, mode)
        for directory in ("etc/grafana/provisioning/datasources", "etc/grafana/provisioning/dashboards"):  # as the real package
            (root / directory).mkdir(parents=True)
        (root / "etc/grafana/grafana.ini").write_text("; the package's default configuration (test double)\n")
        (root / "DEBIAN/conffiles").write_text("/etc/grafana/grafana.ini\n")
        (root / "usr/sbin").mkdir(parents=True)
        (root / "usr/sbin/grafana-server").symlink_to("/usr/share/grafana/bin/grafana-server")
        description = (
            f"TEST DOUBLE of grafana {version} (toil.cluster tests only)\n"
            "Reads Grafana's ini and provisioning files and answers /api/health; it is not Grafana."
        )
        repo.add(root, "grafana", version, description, depends="adduser, python3, python3-yaml", section="default")
    assert repo.signed is not None
    return GrafanaDoubleRepo(repo.signed.path, version, repo.signed.key_sha256, repo.signed.key_fingerprint)


if __name__ == "__main__":
    print(json.dumps(dataclasses.asdict(build(Path(sys.argv[1]), *sys.argv[2:3])), default=str))
