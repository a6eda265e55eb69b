"""Shared by the role tests on podman hosts (test_role_*_hosts.py): the environment and the failure report."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from helpers import REPO, PlaybookResult

sys.path.insert(0, str(REPO / "tests" / "hosts"))
import podman_hosts  # noqa: E402


def base_env() -> dict[str, str]:
    """This process's environment without AWS settings, with the repository's podman configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EC2_", "S3_"))}
    env.setdefault("CONTAINERS_CONF", str(podman_hosts.CONTAINERS_CONF))
    return env


def ansible_env(control_dir: Path) -> dict[str, str | None]:
    """ansible's ssh masters kept in ``control_dir`` (ended by PodmanLab.close), and the remote temp directory left
    at its default in the remote user's home: the helpers' controller-side path would be created on the host by the
    first task that needs it, as root when that task becomes root, and then be unusable for the ssh user."""
    return {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir), "ANSIBLE_REMOTE_TEMP": None}


def failures(run: PlaybookResult) -> str:
    """The failed tasks of a run with what the host said (msg, stderr, module_stderr), for assertion messages."""
    out = [f"rc={run.rc}", run.stderr[-2000:]]
    for entry in run.tasks():
        for host, res in entry.get("hosts", {}).items():
            if res.get("failed") or res.get("unreachable"):
                details = {k: str(res.get(k, ""))[-1500:] for k in ("msg", "stderr", "module_stderr", "module_stdout") if res.get(k)}
                out.append(f"{entry['task']['name']} [{host}]: {json.dumps(details, indent=1)}")
    return "\n".join(out)


def changed_tasks(run: PlaybookResult) -> list[tuple[str, str]]:
    """(task, host) of every changed result: what a second converge must not have."""
    return [(entry["task"]["name"], host) for entry in run.tasks() for host, res in entry["hosts"].items() if res.get("changed")]
