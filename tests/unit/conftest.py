# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Shared fixtures of the unit tests.

``ansible_collections.toil.cluster`` is importable through pyproject.toml's pytest ``pythonpath``
(``.venv/collections``, made by ``tools/link-collections.sh``; tests/conftest.py checks that it is
this checkout).

- ``toil``: the real Toil's answers, for the differential tests (marked
  ``@pytest.mark.toil``). Toil lives in its own venv (``.venv-toil``), so its answers come
  from ``toil_oracle.py`` run once per session with every call batched. Each test
  declares the calls it makes on its marker, so they can be batched before any test runs:

  - ``@pytest.mark.toil("parse_node_types", param="spec")``: the value of the test's
    parameter ``spec`` is the argument;
  - ``@pytest.mark.toil("jobstore_regions", arg=None)``: a fixed argument.

  Without the Toil venv, or with another Toil than tests/toil-requirements.txt pins,
  every differential test fails (never skips) and says to run ``make setup``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from harness.paths import TOIL_PYTHON, TOIL_REQUIREMENTS

ORACLE = Path(__file__).with_name("toil_oracle.py")
ORACLE_TIMEOUT = 300


def _key(fn, arg):
    return json.dumps([fn, arg], sort_keys=True)


def declared_toil_calls(item):
    """The ``(fn, arg)`` calls a test declares on its ``toil`` markers."""
    for marker in item.iter_markers("toil"):
        if not marker.args:
            continue
        fn = marker.args[0]
        if "param" in marker.kwargs:
            yield fn, item.callspec.params[marker.kwargs["param"]]
        else:
            yield fn, marker.kwargs.get("arg")


class ToilOracle:
    """The real Toil's answers, looked up by call: ``toil(fn, arg)``.

    Returns ``{"value": ...}`` when Toil accepted the input and ``{"error": TYPE,
    "message": ...}`` when it raised.
    """

    def __init__(self, answers=None, version=None, problem=None):
        self.answers = answers or {}
        self.version = version
        self.problem = problem

    def __call__(self, fn, arg=None):
        if self.problem:
            pytest.fail(self.problem, pytrace=False)
        key = _key(fn, arg)
        if key not in self.answers:
            pytest.fail(f"Toil call {fn}({arg!r}) was not declared on the test's @pytest.mark.toil(...) marker, so it was not batched.", pytrace=False)
        return self.answers[key]


def _run_oracle(calls):
    if not os.access(TOIL_PYTHON, os.X_OK):
        return ToilOracle(problem=f"The real Toil is not installed: {TOIL_PYTHON} is missing. Run `make setup` to create .venv-toil.")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH" and not key.startswith("TOIL_")}
    payload = [{"fn": fn, "arg": arg} for fn, arg in calls]
    try:
        completed = subprocess.run(
            [str(TOIL_PYTHON), str(ORACLE)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            env=env,
            timeout=ORACLE_TIMEOUT,
            check=False,
        )
        reply = json.loads(completed.stdout) if completed.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError) as error:
        return ToilOracle(problem=f"{ORACLE.name} failed under {TOIL_PYTHON}: {error}. Run `make setup` to (re)create .venv-toil.")
    if reply is None:
        stderr = completed.stderr.strip()[-3000:]
        return ToilOracle(
            problem=f"{ORACLE.name} failed under {TOIL_PYTHON} (exit {completed.returncode}); run `make setup` to (re)create .venv-toil.\n{stderr}"
        )
    pinned = _pinned_toil_version()
    if pinned and not reply["toil_version"].startswith(pinned + "-") and reply["toil_version"] != pinned:
        return ToilOracle(problem=f"{TOIL_PYTHON} runs Toil {reply['toil_version']}, not {pinned} as pinned in {TOIL_REQUIREMENTS.name}. Run `make setup`.")
    answers = {_key(fn, arg): result for (fn, arg), result in zip(calls, reply["results"], strict=True)}
    return ToilOracle(answers, reply["toil_version"])


def _pinned_toil_version():
    """The Toil version tests/toil-requirements.txt pins (``toil[aws]==X``), if any."""
    if not TOIL_REQUIREMENTS.is_file():
        return None
    match = re.search(r"^toil(?:\[[^\]]*\])?==(\S+)", TOIL_REQUIREMENTS.read_text(), re.MULTILINE)
    return match.group(1) if match else None


@pytest.fixture(scope="session")
def toil(request):
    """Toil's answers to every call declared by the collected differential tests."""
    calls = {}
    for item in request.session.items:
        for fn, arg in declared_toil_calls(item):
            calls.setdefault(_key(fn, arg), (fn, arg))
    return _run_oracle(list(calls.values()))
