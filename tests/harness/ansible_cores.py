"""Every ansible-core this collection supports, for the tests that must hold on each: its ansible-playbook and
ansible-inventory, run against the endpoint the way ``harness.playbooks`` runs the current one.

- ``current``: .venv's ansible-core (requirements-dev.txt; 2.19.x, the newest on the index);
- ``2.17``: the oldest supported (meta/runtime.yml's ``requires_ansible``) at its latest patch, in .venv/core-2.17
  (``make setup``, tests/core217-requirements.txt: ansible-core, boto3 and botocore only). It has no collections of
  its own: ANSIBLE_COLLECTIONS_PATH points both at .venv/collections (amazon.aws 10 and ansible.posix load on 2.17).

Ansible before 2.19 templates any string variable that is not marked unsafe, wherever it is used; 2.19 templates
only trusted text. A test parametrised with ``CORES`` sees both behaviours.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.paths import REPO, VENV
from harness.playbooks import PlaybookResult, ansible_environment, run_ansible_playbook

CORE217_VENV = VENV / "core-2.17"
CORE217_REQUIREMENTS = REPO / "tests" / "core217-requirements.txt"


class AnsibleCoreMissingError(RuntimeError):
    """The virtual environment of a supported core is not built (``make setup`` builds it)."""


@dataclass(frozen=True)
class AnsibleCore:
    """One ansible-core in its virtual environment."""

    name: str
    venv: Path

    def executable(self, name: str) -> str:
        path = self.venv / "bin" / name
        if not path.exists():
            raise AnsibleCoreMissingError(f"{path} is missing: run `make setup` (ansible-core {self.name})")
        return str(path)

    @property
    def python(self) -> str:
        return self.executable("python")

    def version(self) -> str:
        """The installed ansible-core version, as ``ansible.release`` says."""
        proc = subprocess.run([self.python, "-c", "import ansible.release as r; print(r.__version__)"], capture_output=True, text=True, check=True)
        return proc.stdout.strip()

    def environment(self, aws_env: Mapping[str, str], workdir: Path, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """``harness.playbooks.ansible_environment``, with this core's Python for modules (it has boto3)."""
        return ansible_environment(aws_env, workdir, {"ANSIBLE_PYTHON_INTERPRETER": self.python, **(extra or {})})

    def inventory_list(self, config: Path, aws_env: Mapping[str, str], workdir: Path, *, args: Sequence[str] = ()) -> subprocess.CompletedProcess:
        """``ansible-inventory -i CONFIG --list``; the caller checks ``returncode``."""
        workdir.mkdir(parents=True, exist_ok=True)
        return subprocess.run(  # rc checked by the caller, with stderr in its message
            [self.executable("ansible-inventory"), "-i", str(config), "--list", *args],
            env=self.environment(aws_env, workdir),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def run_playbook(
        self,
        playbook: str | Path | list[Any] | dict[str, Any],
        aws_env: Mapping[str, str],
        workdir: Path,
        *,
        env: Mapping[str, str | None] | None = None,
        **options: Any,
    ) -> PlaybookResult:
        """``harness.playbooks.run_ansible_playbook`` with this core's ansible-playbook and Python, the connection
        left to the inventory and the plays (``options``: inventory, extra_vars, args, expect_rc, timeout...)."""
        return run_ansible_playbook(
            playbook,
            aws_env,
            workdir,
            env={"ANSIBLE_PYTHON_INTERPRETER": self.python, **(env or {})},
            executable=self.executable("ansible-playbook"),
            local=False,
            **options,
        )


CURRENT = AnsibleCore("current", VENV)
OLDEST = AnsibleCore("2.17", CORE217_VENV)  # version() must start with "2.17."
# Oldest first: pytest ids `core-2.17` and `core-current`.
CORES = (OLDEST, CURRENT)
