"""tools/stages.py, the runner of `make test`'s stages, run for real on a stand-in `make`.

The stand-in is a shell script given as ``MAKE``: it sleeps for the seconds named by its stage and exits with
the code named by it (stage ``s3x1`` sleeps 3 s and fails with exit 1; ``s3x1-b`` does the same under another name).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

STAGES = Path(__file__).resolve().parents[2] / "tools" / "stages.py"

FAKE_MAKE = """#!/bin/sh
stage=$2
seconds=${stage#s}; seconds=${seconds%x*}
code=${stage#*x}; code=${code%%-*}
echo "running $stage"
sleep "$seconds"
[ "$code" = 0 ] && echo "==== 1 passed in ${seconds}.00s ====" || echo "==== 1 failed in ${seconds}.00s ===="
exit "$code"
"""


@pytest.fixture
def fake_make(tmp_path):
    script = tmp_path / "make"
    script.write_text(FAKE_MAKE)
    script.chmod(0o755)
    return script


def run_stages(fake_make, tmp_path, *stages):
    times = tmp_path / "times.tsv"
    env = {"MAKE": str(fake_make), "STAGE_TIMES": str(times), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, str(STAGES), *stages], env=env, capture_output=True, text=True, check=False, timeout=60)
    recorded = {}
    for line in times.read_text().splitlines():
        name, seconds, code = line.split("\t")
        recorded[name] = (float(seconds), int(code))
    return result, recorded


def test_a_background_stage_is_timed_when_it_ends_not_when_it_is_collected(fake_make, tmp_path):
    result, recorded = run_stages(fake_make, tmp_path, "s0x0", "s0x0-b&", "s3x0")
    assert result.returncode == 0, result.stdout + result.stderr
    background = recorded["s0x0-b"][0]
    foreground = recorded["s3x0"][0]
    assert foreground >= 3
    # Before the waiter thread, the background stage read 3 s: the time the foreground stage took.
    assert background < foreground - 1, result.stdout


def test_the_first_failure_in_stage_order_is_the_exit_code_and_every_stage_still_runs(fake_make, tmp_path):
    result, recorded = run_stages(fake_make, tmp_path, "s0x0", "s1x3&", "s0x5")
    assert result.returncode == 3, result.stdout
    assert recorded["s1x3"][1] == 3 and recorded["s0x5"][1] == 5
    assert "FAILED (exit 3)" in result.stdout and "FAILED (exit 5)" in result.stdout
    # The background stage's output comes in one piece after the foreground's.
    assert result.stdout.index("running s0x5") < result.stdout.index("running s1x3")


def test_a_failed_setup_stops_every_other_stage(fake_make, tmp_path):
    result, recorded = run_stages(fake_make, tmp_path, "s0x2", "s0x0-b&", "s0x0")
    assert result.returncode == 2
    assert list(recorded) == ["s0x2"]
    assert "not run" in result.stdout
