"""The autoscaler role installs on the leader the version of this collection the controller runs, from the
controller's copy (roles/autoscaler/tasks/collection.yml, files/pack_collection.py); here the leader is this machine
(``-c local``), its virtual environment a directory whose ansible-galaxy is .venv's.

Two controllers: this checkout (built with ansible-galaxy) and an installed copy of its tarball (packed from its
FILES.json); the role is played from each one's roles/ by path. Ansible sees only the dependencies otherwise
(harness.collection_tarball.isolated), so the leader's ansible-galaxy finds no toil.cluster but the one it installs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from harness import collection_tarball
from harness.paths import REPO, venv_executable
from harness.playbooks import PlaybookResult, run_ansible_playbook

VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
INSTALL = "Install this collection (and its dependencies) into the virtual environment"


class Leader:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.venv = base / "venv"
        (self.venv / "bin").mkdir(parents=True)
        (self.venv / "bin" / "ansible-galaxy").symlink_to(venv_executable("ansible-galaxy"))
        self.config = base / "etc"
        self.config.mkdir()
        self.dependencies = collection_tarball.link_dependencies(base / "dependencies")
        self.runs = 0

    def converge(self, controller: Path) -> PlaybookResult:
        """The role's collection tasks, played from ``controller``'s copy of the role."""
        self.runs += 1
        play = {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {"name": "The collection", "ansible.builtin.include_role": {"name": str(controller / "roles" / "autoscaler"), "tasks_from": "collection.yml"}}
            ],
        }
        extra = {"autoscaler_venv": str(self.venv), "autoscaler_config_dir": str(self.config)}
        env = {**collection_tarball.isolated(self.dependencies), "PYTHONPATH": None}
        return run_ansible_playbook(play, dict(os.environ), self.base / f"run{self.runs}", extra_vars=extra, env=env, timeout=300)

    @property
    def installed(self) -> Path:
        return self.venv / "collections" / "ansible_collections" / "toil" / "cluster"

    def version(self) -> str:
        return json.loads((self.installed / "MANIFEST.json").read_text())["collection_info"]["version"]


def installed_modules(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "plugins" / "modules").glob("*.py"))


def test_a_checkout_controller_gives_the_leader_its_version_once(tmp_path: Path) -> None:
    leader = Leader(tmp_path / "leader")
    first = leader.converge(REPO)
    assert first.task(INSTALL)["changed"] is True
    assert leader.version() == VERSION
    assert installed_modules(leader.installed) == installed_modules(REPO)
    assert (leader.config / f"toil-cluster-{VERSION}.tar.gz").exists()
    second = leader.converge(REPO)
    assert second.task(INSTALL).get("skipped") is True
    assert sum(host["changed"] for host in second.stats.values()) == 0


def test_an_installed_controller_gives_the_leader_its_version_and_its_next_one(tmp_path: Path) -> None:
    tarball = collection_tarball.build(REPO, tmp_path / "dist")
    controller = collection_tarball.install(tarball, tmp_path / "controller") / "ansible_collections" / "toil" / "cluster"
    leader = Leader(tmp_path / "leader")
    assert leader.converge(controller).task(INSTALL)["changed"] is True
    assert leader.version() == VERSION
    assert installed_modules(leader.installed) == installed_modules(controller)
    assert leader.converge(controller).task(INSTALL).get("skipped") is True
    # The controller moves on (its MANIFEST.json says so; FILES.json, which ansible-galaxy checks, is unchanged).
    manifest = json.loads((controller / "MANIFEST.json").read_text())
    manifest["collection_info"]["version"] = "0.1.99"
    (controller / "MANIFEST.json").write_text(json.dumps(manifest))
    assert leader.converge(controller).task(INSTALL)["changed"] is True
    assert leader.version() == "0.1.99"
