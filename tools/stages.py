"""Run `make` stages one after the other, time each, and end with a table of their times.

    python3 tools/stages.py setup lint sanity units integration    # what `make test` runs

Each stage is ``$(MAKE) <stage>``, its output streamed as it comes. The first stage (set-up) must pass or
nothing else runs; after it every stage runs even when an earlier one failed, so one failure never hides
another. At the end: a table (stage, seconds, result, pytest's closing summary line when the stage ran
pytest), then each pytest summary line again, verbatim, as the last lines of the output. The exit code is the
first failed stage's (0 when all passed). ``STAGE_TIMES=FILE`` also appends ``stage<TAB>seconds<TAB>exit``
lines to FILE. Uses only the standard library: it runs before .venv exists.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

# pytest's closing line: "==== 3 failed, 150 passed, 3 deselected in 1290.12s (0:21:30) ====" (also "no tests ran").
SUMMARY = re.compile(r"^=+ (.* in [0-9.]+s.*) =+$")


def run_stage(make: str, stage: str) -> tuple[int, float, list[str]]:
    began = time.monotonic()
    summaries: list[str] = []
    proc = subprocess.Popen([make, "--no-print-directory", stage], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            line = raw.decode(errors="replace").rstrip("\n")
            if SUMMARY.match(line):
                summaries.append(line)
        rc = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        proc.wait()
        raise
    return rc, time.monotonic() - began, summaries


def main(stages: list[str]) -> int:
    if not stages:
        print(__doc__, file=sys.stderr)
        return 2
    make = os.environ.get("MAKE", "make")
    record = os.environ.get("STAGE_TIMES")
    results: list[tuple[str, int | None, float, list[str]]] = []
    began = time.monotonic()
    for index, stage in enumerate(stages):
        if index > 0 and results[0][1] != 0:
            results.append((stage, None, 0.0, []))  # not run: the set-up failed
            continue
        print(f"\n===== stage {stage} =====", flush=True)
        rc, seconds, summaries = run_stage(make, stage)
        results.append((stage, rc, seconds, summaries))
        if record:
            with open(record, "a", encoding="utf-8") as handle:
                handle.write(f"{stage}\t{seconds:.1f}\t{rc}\n")
    total = time.monotonic() - began

    width = max(len(stage) for stage in stages + ["total"])
    print(f"\n===== stage times ({' '.join(stages)}) =====")
    for stage, rc, seconds, summaries in results:
        result = "not run" if rc is None else "ok" if rc == 0 else f"FAILED (exit {rc})"
        detail = f"  {SUMMARY.match(summaries[-1]).group(1)}" if summaries else ""  # type: ignore[union-attr]
        print(f"{stage:<{width}}  {seconds:7.0f} s  {_minutes(seconds)}  {result}{detail}")
    print(f"{'total':<{width}}  {total:7.0f} s  {_minutes(total)}")
    for _stage, _rc, _seconds, summaries in results:
        for line in summaries:
            print(line)
    failed = [rc for _stage, rc, _seconds, _summaries in results if rc not in (0, None)]
    return failed[0] if failed else 0


def _minutes(seconds: float) -> str:
    return f"({int(seconds // 60)}:{int(seconds % 60):02d})"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
