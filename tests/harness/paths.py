"""Where things are: the checkout, its virtual environments and the Ansible settings the tests run with."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tests" / "harness"
VENV = REPO / ".venv"
VENV_BIN = VENV / "bin"
# .venv/collections/ansible_collections/toil/cluster -> this checkout (tools/link-collections.sh).
ANSIBLE_COLLECTIONS_PATH = VENV / "collections"
ANSIBLE_CONFIG = REPO / "ansible.cfg"
TOIL_VENV = REPO / ".venv-toil"
TOIL_PYTHON = TOIL_VENV / "bin" / "python"
TOIL_CLI = TOIL_VENV / "bin" / "toil"
TOIL_REQUIREMENTS = REPO / "tests" / "toil-requirements.txt"
TOIL_LOG_FIXTURES = REPO / "tests" / "fixtures" / "toil-logs"


def venv_executable(name: str) -> str:
    """<repo>/.venv/bin/<name>, or the one next to the running interpreter when .venv lacks it."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    return str(Path(sys.executable).parent / name)
