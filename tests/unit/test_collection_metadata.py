"""The collection's metadata agrees with itself and with what the tests run on.

- galaxy.yml's dependency ranges hold the versions installed here (the `ansible` package pinned in
  constraints.txt brings them) and stop below the next major, which may break us.
- The version the modules report (module_utils.modules.COLLECTION_VERSION, a literal: an AnsiballZ payload carries
  module_utils but neither galaxy.yml nor MANIFEST.json, so it cannot be read at run time) is galaxy.yml's, and the
  changelog has a release of it.
- meta/runtime.yml's action group holds every module and extends amazon.aws's.
"""

from __future__ import annotations

import json

import pytest
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements

from ansible_collections.toil.cluster.plugins.module_utils.modules import COLLECTION_VERSION
from harness.paths import ANSIBLE_COLLECTIONS_PATH, REPO

GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
DEPENDENCIES = sorted(GALAXY["dependencies"].items())


def installed_version(name: str) -> str:
    manifest = ANSIBLE_COLLECTIONS_PATH / "ansible_collections" / name.replace(".", "/") / "MANIFEST.json"
    return json.loads(manifest.read_text())["collection_info"]["version"]


@pytest.mark.parametrize(("name", "declared"), DEPENDENCIES, ids=[dependency[0] for dependency in DEPENDENCIES])
def test_declared_range_holds_the_installed_version(name: str, declared: str) -> None:
    assert meets_requirements(installed_version(name), declared), f"{name} {installed_version(name)} is outside {declared}"


@pytest.mark.parametrize(("name", "declared"), DEPENDENCIES, ids=[dependency[0] for dependency in DEPENDENCIES])
def test_declared_range_stops_below_the_next_major(name: str, declared: str) -> None:
    next_major = f"{int(installed_version(name).split('.')[0]) + 1}.0.0"
    assert not meets_requirements(next_major, declared), f"{name} {declared} lets in {next_major}"


def test_the_modules_report_galaxy_yml_version() -> None:
    assert GALAXY["version"] == COLLECTION_VERSION


def test_the_changelog_has_a_release_of_galaxy_yml_version() -> None:
    releases = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert GALAXY["version"] in releases
    assert releases[GALAXY["version"]]["changes"]["release_summary"]


def test_the_action_group_holds_every_module_and_extends_amazon_aws() -> None:
    (metadata, *modules) = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["action_groups"]["toil"]
    assert metadata == {"metadata": {"extend_group": ["amazon.aws.aws"]}}
    assert sorted(modules) == sorted(p.stem for p in (REPO / "plugins" / "modules").glob("toil_*.py"))
