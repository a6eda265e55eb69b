"""execution-environment.yml through ``ansible-builder create`` (the build context an image build would use; no
image is built: that needs a registry): the collection's own tarball is copied into the context and the galaxy
stage's requirements install it from there; the collection's EE metadata (meta/execution-environment.yml) brings its
Python and system packages; docs/awx.md shows the same file.

The galaxy stage runs ``ansible-galaxy collection install -r requirements.yml`` in ``/build``, a copy of the
context's ``_build`` (the generated Containerfile, checked below): the same install runs here in ``_build``
(``--offline --no-deps``: the dependencies come from Galaxy in a real build).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import collection_tarball
from harness.paths import REPO, venv_executable

DEFINITION = REPO / "execution-environment.yml"
VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
TARBALL = f"toil-cluster-{VERSION}.tar.gz"


def builder_create(workdir: Path, definition: Path) -> subprocess.CompletedProcess[str]:
    create = [venv_executable("ansible-builder"), "create", "-f", str(definition), "-c", "context", "--output-filename", "Containerfile"]
    return subprocess.run(create, cwd=workdir, capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ansible-builder's context for the definition, made as docs/awx.md says: the tarball built beside it."""
    workdir = tmp_path_factory.mktemp("ee")
    shutil.copy(DEFINITION, workdir)
    collection_tarball.build(REPO, workdir)
    created = builder_create(workdir, workdir / DEFINITION.name)
    assert created.returncode == 0, created.stdout + created.stderr
    return workdir / "context"


def test_the_context_holds_the_collection_tarball_and_the_requirements_name_it(context: Path) -> None:
    build = context / "_build"
    assert (build / "collections" / TARBALL).read_bytes() == (context.parent / TARBALL).read_bytes()
    requirements = yaml.safe_load((build / "requirements.yml").read_text())
    assert requirements == {"collections": [{"name": f"collections/{TARBALL}", "type": "file"}]}


def test_the_galaxy_stage_installs_from_the_copy_of_the_context(context: Path, tmp_path: Path) -> None:
    containerfile = (context / "Containerfile").read_text()
    galaxy_stage = containerfile.split("FROM base AS galaxy", 1)[1].split("\nFROM ", 1)[0]
    steps = [line for line in galaxy_stage.splitlines() if line.startswith(("COPY", "WORKDIR", "RUN"))]
    install = next(i for i, line in enumerate(steps) if "ansible-galaxy collection install" in line)
    assert steps.index("COPY _build /build") < steps.index("WORKDIR /build") < install
    assert "-r requirements.yml" in steps[install]
    # The same install, in _build as in /build.
    root = tmp_path / "collections"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | collection_tarball.isolated(root)
    install_cmd = [venv_executable("ansible-galaxy"), "collection", "install", "-r", "requirements.yml", "--offline", "--no-deps", "-p", str(root)]
    subprocess.run(install_cmd, cwd=context / "_build", env=env, check=True, capture_output=True, text=True, timeout=300)
    manifest = yaml.safe_load((root / "ansible_collections" / "toil" / "cluster" / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == VERSION
    # What ansible-builder's builder stage reads from it (meta/execution-environment.yml): our Python and system packages.
    introspect_cmd = [venv_executable("ansible-builder"), "introspect", "--sanitize", str(root)]
    introspect = subprocess.run(introspect_cmd, capture_output=True, text=True, check=True, timeout=300)
    found = yaml.safe_load(introspect.stdout)
    assert {re.split(r"[<>= ]", line)[0] for line in found["python"]} >= {"boto3", "botocore", "kubernetes"}
    assert any(line.startswith("openssh-client") for line in found["system"])


def test_the_image_gets_the_ansible_core_the_tests_run_on(context: Path) -> None:
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"', (context / "Containerfile").read_text(), re.MULTILINE)
    assert refs is not None
    assert f"ansible-core=={importlib.metadata.version('ansible-core')}" in refs.group(1).split()


def test_a_definition_ansible_builder_refuses(tmp_path: Path) -> None:
    broken = yaml.safe_load(DEFINITION.read_text())
    broken["additional_build_files"] = [{"src": TARBALL}]  # no dest
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    created = builder_create(tmp_path, tmp_path / "broken.yml")
    assert created.returncode != 0
    assert "dest" in created.stdout + created.stderr


def test_docs_show_this_definition() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "awx.md").read_text(), re.DOTALL)
    documented = [yaml.safe_load(block) for block in blocks if "additional_build_files" in block]
    assert documented == [yaml.safe_load(DEFINITION.read_text())]
