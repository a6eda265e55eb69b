"""This collection as users get it: a tarball made by ``ansible-galaxy collection build``, and its installed copy.

``build`` makes the tarball from a directory (a checkout or a copy of one); ``members`` lists what it holds;
``install`` puts it into a collection root of its own beside links to the dependencies installed in .venv
(``install_alone``: without them), so that Ansible there sees the installed copy and never this checkout (tools/link-collections.sh links that one into
.venv/collections).
"""

from __future__ import annotations

import os
import subprocess
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
