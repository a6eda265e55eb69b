"""For every pytest run (tests/unit, tests/integration).

pyproject.toml's ``pythonpath`` puts ``tests/`` (the harness: ``import harness``) and ``.venv/collections``
(``ansible_collections.toil.cluster``, a symlink made by ``tools/link-collections.sh``) on ``sys.path``; this
refuses to run when that symlink is missing or names another checkout, so no test ever imports someone else's code.
"""

from __future__ import annotations

import pytest

from harness.paths import ANSIBLE_COLLECTIONS_PATH, REPO


def pytest_sessionstart(session: pytest.Session) -> None:
    link = ANSIBLE_COLLECTIONS_PATH / "ansible_collections" / "toil" / "cluster"
    if not link.is_dir() or link.resolve() != REPO:
        raise pytest.UsageError(f"{link} must be a symlink to this checkout ({REPO}): run `make setup`")
