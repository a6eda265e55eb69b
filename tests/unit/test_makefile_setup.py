"""The Makefile's set-up, split: `make demo` and the docs targets reach only the controller's venv and the linked
collections; `make setup` (so `make test`) still reaches the Debian packages, the test-host image and the other venvs.

Read from the real Makefile with `make -n -B TARGET`: every recipe line the target would run from a clean clone
(-B takes every file as out of date, -n runs nothing but the recursive `$(MAKE)` lines, which also get -n -B).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What a first `make setup` spends its minutes on, none of which the demo or the docs use: each step's recipe text.
TEST_ONLY_STEPS = {
    "apt (the Debian packages the tests need; needs root)": "tools/ensure-debs.sh",
    "the podman test-host image": "build-image.sh",
    "the podman hosts' wheelhouses": "harness.wheelhouses",
    "the real Toil's venv (differential tests)": ".venv-toil",
    "the oldest ansible-core's venv": "core-2.17",
}
CONTROLLER_STEPS = ("pip install -q -r requirements-dev.txt", "tools/link-collections.sh")


def dry_run(target: str) -> str:
    """The recipe lines `make TARGET` would run from a clean clone, run nowhere."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    result = subprocess.run(["make", "--no-print-directory", "-n", "-B", "-C", str(ROOT), target], env=env, capture_output=True, text=True, check=True)
    return result.stdout


@pytest.mark.parametrize("target", ["demo", "docs", "docs-lint", "iam-docs"])
def test_target_needs_only_the_controller_venv(target):
    recipe = dry_run(target)
    for step in CONTROLLER_STEPS:
        assert step in recipe
    reached = [name for name, marker in TEST_ONLY_STEPS.items() if marker in recipe]
    assert reached == [], f"make {target} reaches {reached}"
    assert "apt-get" not in recipe and "qemu" not in recipe


def test_setup_still_sets_up_everything_the_tests_need():
    # make test's first stage is `make setup` (tools/stages.py): the markers above are what it runs.
    recipe = dry_run("setup")
    for step in CONTROLLER_STEPS:
        assert step in recipe
    assert [name for name, marker in TEST_ONLY_STEPS.items() if marker not in recipe] == []


def test_only_the_vm_tests_install_qemu():
    assert "qemu-system-x86" in dry_run("test-vm")
    assert "qemu" not in dry_run("setup")
