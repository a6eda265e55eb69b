"""The tarball ``ansible-galaxy collection build`` makes (galaxy.yml's build_ignore): the same from a checkout where
the tests ran as from a fresh clone, holding what an installed collection uses and nothing a checkout gains by being
worked in; and, installed, its modules import and run.

The used checkout is a copy of this one (its untracked files too, but not hidden ones such as .git and the virtual
environments, nor caches other stages may be writing meanwhile) with what ``make test`` and the tools leave in a
checkout added, so the test sees them on a fresh clone as well. The fresh clone is ``git clone`` of this checkout:
a file this checkout has and git does not track makes the two differ, as it would for a user (commit it or add it
to build_ignore).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import collection_tarball
from harness.paths import REPO, venv_executable
from harness.playbooks import ansible_environment

# What a used checkout holds beside the tracked files: caches, stamps, test output, builds, unreleased fragments.
WORKED_IN = [
    ".pytest_cache/v/cache/lastfailed",
    ".ruff_cache/0.17.6/123",
    ".hypothesis/examples/ab/cd",
    ".debs.stamp",
    ".venv/bin/python",
    ".venv-toil/bin/python",
    ".cache/x",
    "plugins/module_utils/__pycache__/nodes.cpython-311.pyc",
    "plugins/modules/.hypothesis/examples/x",
    "tests/output/junit.xml",
    "build/lib/x.py",
    "toil-cluster-0.0.9.tar.gz",
    "changelogs/fragments/new-thing.yml",
]
# Development files, no use to an installed collection; tests/ and tools/ (its tests need tools/ and .venv).
UNWANTED_TOP = {"tests", "tools", "build", "Makefile", "ansible.cfg", "pyproject.toml", "requirements-dev.txt", "constraints.txt"}
UNWANTED = {"changelogs/fragments", "changelogs/config.yaml"}
# What an installed collection uses besides plugins, roles, playbooks, docs and inventories (checked by git's list).
WANTED = {"LICENSE", "README.md", "CHANGELOG.rst", "changelogs/changelog.yaml", "meta/runtime.yml", "meta/execution-environment.yml",
          "requirements.txt", "bindep.txt", "execution-environment.yml", "MANIFEST.json", "FILES.json"}  # fmt: skip
SHIPPED_TREES = ("plugins/", "roles/", "playbooks/", "docs/", "inventory/", "meta/")


def unwanted(name: str) -> bool:
    parts = name.split("/")
    return (
        any(part.startswith(".") or part == "__pycache__" for part in parts)
        or name.endswith((".pyc", ".tar.gz"))
        or parts[0] in UNWANTED_TOP
        or any(name == u or name.startswith(u + "/") for u in UNWANTED)
    )


def not_copied(directory: str, names: list[str]) -> set[str]:
    """What the copy leaves out: hidden names (.git, the virtual environments, caches), __pycache__ and ansible-test's
    output, which other stages of `make test` write while this runs (a file gone mid-copy fails copytree). WORKED_IN
    puts such names back, so the tarball is still tested against them."""
    left_out = {n for n in names if n.startswith(".") or n == "__pycache__"}
    return left_out | ({"output"} & set(names) if Path(directory) == REPO / "tests" else set())


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("tarballs")
    used = work / "used"
    shutil.copytree(REPO, used, symlinks=True, ignore=not_copied)
    for name in WORKED_IN:
        (used / name).parent.mkdir(parents=True, exist_ok=True)
        (used / name).write_text("left by a run\n")
    fresh = work / "fresh"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(fresh)], check=True, capture_output=True, timeout=120)
    return {"used": collection_tarball.build(used, work / "used-out"), "fresh": collection_tarball.build(fresh, work / "fresh-out")}


def test_a_used_checkout_and_a_fresh_clone_build_the_same_tarball(tarballs):
    used, fresh = (collection_tarball.members(tarballs[k]) for k in ("used", "fresh"))
    assert sorted(used - fresh) == [], "only in the used checkout's tarball: untracked files (commit them or ignore them)"
    assert sorted(fresh - used) == []


def test_the_tarball_holds_what_an_installed_collection_uses_and_nothing_else(tarballs):
    names = collection_tarball.members(tarballs["used"])
    assert sorted(n for n in names if unwanted(n)) == []
    assert sorted(WANTED - names) == []
    tracked = subprocess.run(["git", "ls-files", *SHIPPED_TREES], cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    assert sorted(set(tracked) - names) == []


def test_the_filter_sees_what_it_must_refuse():
    assert all(unwanted(name) for name in WORKED_IN)
    assert not any(unwanted(name) for name in WANTED)


def test_the_installed_tarball_documents_and_runs_its_modules(tarballs, run_playbook, tmp_path):
    root = collection_tarball.install(tarballs["used"], tmp_path / "collections")
    installed = root / "ansible_collections" / "toil" / "cluster"
    assert (installed / "LICENSE").read_text() == (REPO / "LICENSE").read_text()
    env = {**collection_tarball.isolated(root), "PYTHONPATH": None}  # this checkout out of sight
    modules = sorted(f"toil.cluster.{p.stem}" for p in (installed / "plugins" / "modules").glob("toil_*.py"))
    assert len(modules) == 6
    ansible_doc = [venv_executable("ansible-doc"), "--json", *modules]
    doc = subprocess.run(ansible_doc, env=ansible_environment(os.environ, tmp_path, env), check=True, capture_output=True, text=True, timeout=300)
    documented = json.loads(doc.stdout)
    assert sorted(documented) == modules
    # amazon.aws's doc fragments (extends_documentation_fragment) resolved in the installed copy.
    assert all({"region", "endpoint_url", "profile"} <= set(documented[m]["doc"]["options"]) for m in modules)
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "info", "toil.cluster.toil_cluster_info": {"name": "tc-none"}}]}
    result = run_playbook(play, env=env).task("info")
    assert result["clusters"][0]["exists"] is False
