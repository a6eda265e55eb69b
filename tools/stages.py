"""Run `make` stages, time each, and end with a table of their times.

    python3 tools/stages.py setup 'sanity&' 'lint&' units integration   # what `make test` runs

Each stage is ``$(MAKE) <stage>``. Stages run one after the other, their output streamed as it comes; a stage
written ``name&`` starts in the background instead and runs alongside the stages after it, its output kept in a
file and printed in one piece once the foreground stages are done (so outputs never interleave). The first stage
(set-up) must pass or nothing else runs; after it every stage runs even when another one failed, so one failure
never hides another. At the end: a table (stage, seconds, result, pytest's closing summary line when the stage ran
pytest), then each pytest summary line again, verbatim, as the last lines of the output. The exit code is the
first failed stage's, in the order given (0 when all passed). ``STAGE_TIMES=FILE`` also appends
``stage<TAB>seconds<TAB>exit`` lines to FILE. Uses only the standard library: it runs before .venv exists.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO

# pytest's closing line: "==== 3 failed, 150 passed, 3 deselected in 1290.12s (0:21:30) ====" (also "no tests ran").
SUMMARY = re.compile(r"^=+ (.* in [0-9.]+s.*) =+$")


@dataclass
class Stage:
    name: str
    background: bool
    rc: int | None = None  # None: not run (or still running)
    seconds: float = 0.0
    summaries: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    began: float = 0.0
    waiter: threading.Thread | None = None


def _make(make: str, stage: str, stdout: IO[bytes] | int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([make, "--no-print-directory", stage], stdout=stdout, stderr=subprocess.STDOUT, start_new_session=stdout != subprocess.PIPE)


def run_foreground(make: str, stage: Stage) -> None:
    print(f"\n===== stage {stage.name} =====", flush=True)
    began = time.monotonic()
    proc = _make(make, stage.name, subprocess.PIPE)
    assert proc.stdout is not None
    for raw in proc.stdout:
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
        line = raw.decode(errors="replace").rstrip("\n")
        if SUMMARY.match(line):
            stage.summaries.append(line)
    stage.rc = proc.wait()
    stage.seconds = time.monotonic() - began


def start_background(make: str, stage: Stage) -> None:
    print(f"\n===== stage {stage.name}: started in the background, its output follows the other stages' =====", flush=True)
    stage.log = tempfile.TemporaryFile(prefix=f"stage-{stage.name}-")  # noqa: SIM115 - closed in finish_background
    stage.began = time.monotonic()
    stage.proc = _make(make, stage.name, stage.log)
    # A stage's time is when it ended, not when the foreground stages were done and its output was collected.
    stage.waiter = threading.Thread(target=_time_background, args=(stage,), daemon=True)
    stage.waiter.start()


def _time_background(stage: Stage) -> None:
    assert stage.proc is not None
    stage.proc.wait()
    stage.seconds = time.monotonic() - stage.began


def finish_background(stage: Stage) -> None:
    assert stage.proc is not None and stage.log is not None and stage.waiter is not None
    stage.waiter.join()
    stage.rc = stage.proc.wait()
    print(f"\n===== stage {stage.name} (ran in the background, {stage.seconds:.0f} s) =====", flush=True)
    stage.log.seek(0)
    for raw in stage.log:
        sys.stdout.buffer.write(raw)
        line = raw.decode(errors="replace").rstrip("\n")
        if SUMMARY.match(line):
            stage.summaries.append(line)
    sys.stdout.flush()
    stage.log.close()


def main(args: list[str]) -> int:
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    make = os.environ.get("MAKE", "make")
    stages = [Stage(arg.rstrip("&"), arg.endswith("&")) for arg in args]
    began = time.monotonic()
    try:
        for index, stage in enumerate(stages):
            if index > 0 and stages[0].rc != 0:
                continue  # not run: the set-up failed
            if stage.background and index > 0:
                start_background(make, stage)
            else:
                run_foreground(make, stage)
        for stage in stages:
            if stage.proc is not None:
                finish_background(stage)
    except KeyboardInterrupt:
        for stage in stages:
            if stage.proc is not None and stage.proc.poll() is None:
                os.killpg(stage.proc.pid, signal.SIGINT)
                stage.proc.wait()
        raise
    total = time.monotonic() - began

    record = os.environ.get("STAGE_TIMES")
    if record:
        with open(record, "a", encoding="utf-8") as handle:
            handle.writelines(f"{s.name}\t{s.seconds:.1f}\t{s.rc}\n" for s in stages if s.rc is not None)
    width = max(len(s.name) for s in stages) + 2
    print(f"\n===== stage times ({' '.join(args)}) =====")
    for stage in stages:
        result = "not run" if stage.rc is None else "ok" if stage.rc == 0 else f"FAILED (exit {stage.rc})"
        detail = f"  {SUMMARY.match(stage.summaries[-1]).group(1)}" if stage.summaries else ""  # type: ignore[union-attr]
        name = stage.name + (" &" if stage.background else "")
        print(f"{name:<{width}}  {stage.seconds:7.0f} s  {_minutes(stage.seconds)}  {result}{detail}")
    note = "  (a stage marked & ran alongside the ones after it)" if any(s.background for s in stages) else ""
    print(f"{'total':<{width}}  {total:7.0f} s  {_minutes(total)}{note}")
    for stage in stages:
        for line in stage.summaries:
            print(line)
    failed = [stage.rc for stage in stages if stage.rc not in (0, None)]
    return failed[0] if failed else 0


def _minutes(seconds: float) -> str:
    return f"({int(seconds // 60)}:{int(seconds % 60):02d})"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
