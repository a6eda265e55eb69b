"""ansible-playbook runs against the endpoint with JSON output (``run_ansible_playbook`` -> ``PlaybookResult``).

The ``run_playbook`` fixture (tests/integration/conftest.py) wraps ``run_ansible_playbook``; benchmarks and scripts
call it directly.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.paths import ANSIBLE_COLLECTIONS_PATH, ANSIBLE_CONFIG, REPO, venv_executable

# ansible-core 2.19 has no json callback of its own; ansible.posix (2.1.0 in the ansible 12.3.0 bundle) does.
JSON_CALLBACK = "ansible.posix.json"
_OUTPUT_LIMIT = 20_000


def unwrap_unsafe(value: Any) -> Any:
    """ansible-inventory marks strings from an inventory as unsafe: {"__ansible_unsafe": "x"} -> "x"."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap_unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_unsafe(v) for v in value]
    return value


# ---------------------------------------------------------------------- ansible-playbook
@dataclass
class PlaybookResult:
    """One ansible-playbook run with the ansible.posix.json callback."""

    rc: int
    stdout: str
    stderr: str
    json: dict[str, Any] | None
    args: list[str] = field(default_factory=list)
    playbook: str = ""

    def tasks(self, name: str | None = None) -> list[dict[str, Any]]:
        """Task entries ({"task": {...}, "hosts": {host: result}}) in run order, optionally by name.

        A name matches the task's name exactly or, for role tasks (shown as "role : task"), the part after " : ".
        """
        entries = [t for play in (self.json or {}).get("plays", []) for t in play.get("tasks", [])]
        if name is None:
            return entries
        return [t for t in entries if _name_matches(t.get("task", {}).get("name", ""), name)]

    def task_names(self) -> list[str]:
        return [t.get("task", {}).get("name", "") for t in self.tasks()]

    def task(self, name: str, host: str = "localhost", index: int | None = None) -> dict[str, Any]:
        """The host result of the task called ``name``; ``index`` picks one when several share the name."""
        matches = [t for t in self.tasks(name) if host in t.get("hosts", {})]
        if not matches:
            raise KeyError(f"no task {name!r} ran on {host!r}; tasks: {self.task_names()}")
        if index is None:
            if len(matches) > 1:
                raise KeyError(f"{len(matches)} tasks called {name!r} ran on {host!r}; pass index=")
            index = 0
        return matches[index]["hosts"][host]

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Per-host recap: ok, changed, failures, unreachable, skipped, rescued, ignored."""
        return (self.json or {}).get("stats", {})

    def failed_tasks(self) -> list[tuple[str, str, str]]:
        """(task name, host, message) for every failed or unreachable host result."""
        failed = []
        for entry in self.tasks():
            for host, res in entry.get("hosts", {}).items():
                if res.get("failed") or res.get("unreachable"):
                    failed.append((entry.get("task", {}).get("name", ""), host, str(res.get("msg", ""))))
        return failed

    def describe(self) -> str:
        """Text for assertion messages: command, rc, failed tasks, stderr and stdout (truncated)."""
        parts = [f"command: {' '.join(self.args)}", f"rc: {self.rc}"]
        failed = self.failed_tasks()
        if failed:
            parts.append("failed tasks:\n" + "\n".join(f"  {name} [{host}]: {msg}" for name, host, msg in failed))
        parts.append(f"stderr:\n{_tail(self.stderr)}")
        parts.append(f"stdout:\n{_tail(self.stdout)}")
        return "\n".join(parts)


def _name_matches(task_name: str, wanted: str) -> bool:
    return task_name == wanted or task_name.endswith(f" : {wanted}")


def _tail(text: str) -> str:
    return text if len(text) <= _OUTPUT_LIMIT else f"[... {len(text) - _OUTPUT_LIMIT} characters cut ...]\n{text[-_OUTPUT_LIMIT:]}"


def _parse_json_output(stdout: str) -> dict[str, Any] | None:
    """The callback prints one JSON document at the end; tolerate stray lines before it."""
    text = stdout.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    start = text.find("\n{")
    start = 0 if text.startswith("{") else (start + 1 if start >= 0 else -1)
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except json.JSONDecodeError:
        return None


def playbook_file(playbook: str | os.PathLike[str] | list[Any] | dict[str, Any], workdir: Path) -> Path:
    """A path for ``playbook``: a path as given, YAML text (anything with a newline) or plays as Python data."""
    if isinstance(playbook, (list, dict)):
        path = workdir / "playbook.yml"
        path.write_text(json.dumps(playbook if isinstance(playbook, list) else [playbook], indent=2))  # JSON is YAML
        return path
    if isinstance(playbook, str) and "\n" in playbook:
        path = workdir / "playbook.yml"
        path.write_text(playbook)
        return path
    path = Path(playbook)
    if not path.is_absolute() and not path.exists():
        path = REPO / path
    if not path.exists():
        raise FileNotFoundError(f"playbook {playbook} not found (a playbook given as text must contain a newline)")
    return path.resolve()


def ansible_environment(aws_env: Mapping[str, str], workdir: Path, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """``aws_env`` minus inherited ANSIBLE_* and TOIL_* settings (a developer's TOIL_AWS_ZONE must not change a test),
    plus this repository's Ansible settings and JSON output, then ``extra`` (a None value removes the variable)."""
    env = {k: v for k, v in aws_env.items() if not k.startswith(("ANSIBLE_", "TOIL_"))}
    home = workdir / "ansible-home"
    env.update(
        ANSIBLE_CONFIG=str(ANSIBLE_CONFIG),
        ANSIBLE_COLLECTIONS_PATH=str(ANSIBLE_COLLECTIONS_PATH),
        ANSIBLE_STDOUT_CALLBACK=JSON_CALLBACK,
        ANSIBLE_PYTHON_INTERPRETER=venv_executable("python"),  # amazon.aws needs the venv's boto3
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(home / "remote-tmp"),
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="false",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true",
        PYTHONDONTWRITEBYTECODE="1",
        # AnsiballZ unpacks each module under the system temp directory; a module killed on purpose (test_crashes)
        # leaves its payload there, so the run's own directory takes them.
        TMPDIR=str(home / "payloads"),
    )
    (home / "payloads").mkdir(parents=True, exist_ok=True)
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_ansible_playbook(
    playbook: str | os.PathLike[str] | list[Any] | dict[str, Any],
    aws_env: Mapping[str, str],
    workdir: Path,
    *,
    extra_vars: Mapping[str, Any] | None = None,
    check: bool = False,
    diff: bool = False,
    expect_rc: int | None = 0,
    inventory: str = "localhost,",
    args: Sequence[str] = (),
    env: Mapping[str, str | None] | None = None,
    timeout: float = 600,
    executable: str | None = None,
    local: bool = True,
    cwd: Path | None = None,
) -> PlaybookResult:
    """Run ansible-playbook locally (``-i localhost, -c local``) against the endpoint; see the run_playbook fixture.

    ``executable``: another ansible-playbook (harness.ansible_cores runs each supported core through here);
    ``local=False`` leaves the connection to the inventory and the plays; ``cwd``: where the user runs it (default:
    the playbook's directory)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = playbook_file(playbook, workdir)
    cmd = [executable or venv_executable("ansible-playbook"), "-i", inventory, *(["-c", "local"] if local else [])]
    if extra_vars:
        cmd += ["-e", json.dumps(dict(extra_vars))]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    cmd += [*args, str(path)]
    proc = subprocess.run(  # rc is checked below, with the output in the message
        cmd,
        env=ansible_environment(aws_env, workdir, env),
        cwd=str(cwd or path.parent),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    result = PlaybookResult(proc.returncode, proc.stdout, proc.stderr, _parse_json_output(proc.stdout), cmd, str(path))
    if expect_rc is not None and result.rc != expect_rc:
        raise AssertionError(f"ansible-playbook exited {result.rc}, expected {expect_rc}\n{result.describe()}")
    return result


def assert_bad_inputs_fail(run_playbook: Callable[..., PlaybookResult], module: str, cases: Sequence[tuple[dict[str, Any], str]], proxy: Any) -> None:
    """Run every ``(options, message)`` case of ``module`` in one play (one task each, errors ignored) through
    the recording ``proxy``: each must fail with ``message``, without a traceback, and nothing may change."""
    tasks = [{"name": f"case {index}", f"toil.cluster.{module}": options, "ignore_errors": True} for index, (options, _message) in enumerate(cases)]
    result = run_playbook({"hosts": "localhost", "gather_facts": False, "tasks": tasks}, env=proxy.env)
    for index, (_options, message) in enumerate(cases):
        outcome = result.task(f"case {index}")
        assert outcome.get("failed") is True, (index, outcome)
        assert message in outcome["msg"], (index, outcome["msg"])
        assert "Traceback" not in json.dumps(outcome)
    assert proxy.mutating_calls() == []
