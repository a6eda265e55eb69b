"""This collection as users get it: a tarball made by ``ansible-galaxy collection build``, and its installed copy.

``build`` makes the tarball from a directory (a checkout or a copy of one); ``members`` lists what it holds;
``install`` puts it into a collection root of its own beside links to the dependencies installed in .venv
(``install_alone``: without them), so that Ansible there sees the installed copy and never this checkout
(tools/link-collections.sh links that one into .venv/collections). ``dependency_artifacts`` makes tarballs of the
dependencies installed in .venv, which ``ansible-galaxy collection install --offline`` takes where Galaxy is out of
reach (the autoscaler role's molecule scenario: ``python -m harness.collection_tarball dependencies DEST`` prints their
names).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from harness.paths import ANSIBLE_COLLECTIONS_PATH, venv_executable

DEPENDENCIES = ("amazon/aws", "kubernetes/core", "ansible/posix", "community/crypto")


def build(source: Path, dest: Path) -> Path:
    """The tarball ``ansible-galaxy collection build`` makes of ``source``, in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    galaxy = [venv_executable("ansible-galaxy"), "collection", "build", str(source), "--output-path", str(dest)]
    subprocess.run(galaxy, check=True, capture_output=True, text=True, timeout=300)
    (tarball,) = dest.glob("toil-cluster-*.tar.gz")
    return tarball


def members(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as tar:
        return {member.name for member in tar.getmembers()}


def isolated(root: Path) -> dict[str, str]:
    """The environment settings under which Ansible sees the collections under ``root`` only: ansible-galaxy skips
    a collection it finds on any configured path, and Ansible also scans sys.path (PYTHONPATH holds .venv/collections
    when pytest runs)."""
    return {"ANSIBLE_COLLECTIONS_PATH": str(root), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"}


def install(tarball: Path, root: Path) -> Path:
    """A collection root holding ``tarball`` installed (``--offline``, ``--no-deps``) and links to the dependencies."""
    return link_dependencies(install_alone(tarball, root))


def install_alone(tarball: Path, root: Path) -> Path:
    """A collection root holding ``tarball`` installed (``--offline``, ``--no-deps``) and nothing else: the
    dependencies come from elsewhere (the ``ansible`` package's, as getting-started.md says)."""
    galaxy = [venv_executable("ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "-p", str(root), str(tarball)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | isolated(root)
    subprocess.run(galaxy, env=env, check=True, capture_output=True, text=True, timeout=300)
    return root


def link_dependencies(root: Path) -> Path:
    """``root`` with links to the dependencies installed in .venv (and not to this collection)."""
    for name in DEPENDENCIES:
        link = root / "ansible_collections" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to((ANSIBLE_COLLECTIONS_PATH / "ansible_collections" / name).resolve())
    return root


def dependency_artifacts(dest: Path) -> list[Path]:
    """Artifacts of the dependencies installed in .venv, in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    return [dependency_artifact(name, dest) for name in DEPENDENCIES]


def dependency_artifact(name: str, dest: Path) -> Path:
    """An artifact of the copy installed here (from the `ansible` bundle, which drops CI files and tests): its
    files as FILES.json lists them with their sha256, FILES.json cut to what is there, MANIFEST.json re-summed."""
    installed = (ANSIBLE_COLLECTIONS_PATH / "ansible_collections" / name).resolve()
    manifest = json.loads((installed / "MANIFEST.json").read_text())
    files = json.loads((installed / "FILES.json").read_text())
    files["files"] = [f for f in files["files"] if f["name"] == "." or (installed / f["name"]).exists()]
    files_json = json.dumps(files).encode()
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files_json).hexdigest()
    artifact = dest / f"{name.replace('/', '-')}-{manifest['collection_info']['version']}.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:
        for member, data in (("MANIFEST.json", json.dumps(manifest).encode()), ("FILES.json", files_json)):
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for entry in files["files"]:
            if entry["name"] != ".":
                tar.add(installed / entry["name"], arcname=entry["name"], recursive=False)
    return artifact


if __name__ == "__main__":
    if sys.argv[1:2] != ["dependencies"] or len(sys.argv) != 3:
        sys.exit("usage: python -m harness.collection_tarball dependencies DEST")
    print(json.dumps([artifact.name for artifact in dependency_artifacts(Path(sys.argv[2]))]))
