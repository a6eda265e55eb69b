"""Run the benchmarks in tests/bench side by side with their anchors and print the ratios.

Each tests/bench/bench_*.py defines BENCHMARKS: callables taking the embedded endpoint and returning
{"name", "ours", "anchor", "anchor_name", optional "unit", "note"}, or a list of such rows when one run
measures several things. One endpoint serves the whole run, reset between benchmarks.
``TOIL_BENCH=inventory,scaler`` runs only those modules (bench_inventory.py, bench_scaler.py).

The benchmarks use the test harness (``import harness``: tests/harness/) and the collection, so run this as
``make bench`` does: ``PYTHONPATH=tests:.venv/collections .venv/bin/python tools/bench.py``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback

from harness.endpoint import EmbeddedAWS
from harness.paths import REPO as ROOT


def load_benchmarks():
    benchmarks = []
    wanted = {name.strip() for name in os.environ.get("TOIL_BENCH", "").split(",") if name.strip()}
    for path in sorted((ROOT / "tests" / "bench").glob("bench_*.py")):
        if wanted and path.stem.removeprefix("bench_") not in wanted:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        benchmarks.extend(module.BENCHMARKS)
    return benchmarks


def format_value(value, unit):
    """Seconds with three decimals; counts (calls, ...) as whole numbers when they are."""
    if unit != "s" and float(value).is_integer():
        return f"{int(value)} {unit}"
    return f"{value:.3f} {unit}"


def format_table(rows):
    header = ("benchmark", "ours", "anchor", "anchor value", "ratio (ours/anchor)")
    lines = [header]
    for row in rows:
        unit = row.get("unit", "s")
        ratio = row["ours"] / row["anchor"] if row["anchor"] else float("inf")
        lines.append((row["name"], format_value(row["ours"], unit), row["anchor_name"], format_value(row["anchor"], unit), f"{ratio:.2f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(out)


def main():
    benchmarks = load_benchmarks()
    # Their imports are done: the commands they time (ansible-playbook, Toil) must not inherit the harness's path.
    os.environ.pop("PYTHONPATH", None)
    rows, failed = [], []
    if benchmarks:
        with EmbeddedAWS() as endpoint:
            for benchmark in benchmarks:
                endpoint.reset()
                try:
                    result = benchmark(endpoint)
                except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' rows
                    failed.append(benchmark.__name__)
                    traceback.print_exc()
                    continue
                rows.extend(result if isinstance(result, list) else [result])
    print(format_table(rows))
    if not benchmarks:
        print("(no benchmarks yet: add tests/bench/bench_*.py)")
    for row in rows:
        if row.get("note"):
            print(f"- {row['name']}: {row['note']}")
    if failed:
        print(f"FAILED: {', '.join(failed)} (traceback above)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
