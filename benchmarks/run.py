#!/usr/bin/env python3
"""Run every benchmark (one command) and print one summary table. Each reports ratios to a baseline measured
in the same run.

Each bench_*.py runs in its own process (one's memory never skews the next), its output shown as it comes;
arguments this command does not know are passed to every benchmark. The convention: a benchmark exits 0 when
it ran, whatever its figures; a target it misses is a line of its output saying "target" (and "BELOW"), which
the table repeats. This command exits 1 only when a benchmark broke (non-zero exit), else 0.

    python benchmarks/run.py [-k SUBSTRING] [benchmark arguments]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(bench: Path, args: list[str]) -> tuple[int, float, list[str]]:
    """Exit code, seconds and output lines of one benchmark (echoed while it runs)."""
    t0, lines = time.monotonic(), []
    with subprocess.Popen(
        [sys.executable, str(bench), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
    return proc.returncode, time.monotonic() - t0, lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", default="", help="run only the benchmarks whose file name contains this")
    a, rest = ap.parse_known_args(argv)
    rows = []
    for bench in sorted(HERE.glob("bench_*.py")):
        if a.k not in bench.name:
            continue
        print(f"== {bench.name}", flush=True)
        rc, seconds, lines = run(bench, rest)
        verdicts = [line.strip() for line in lines if "target" in line.lower()]
        rows.append((bench.name, rc, seconds, verdicts[-1] if verdicts else ""))
    width = max((len(r[0]) for r in rows), default=10)
    print(f"\n{'benchmark':<{width}}  {'status':<11} {'seconds':>7}  target")
    for name, rc, seconds, verdict in rows:
        status = "ok" if rc == 0 else f"BROKE (rc {rc})"
        missed = "BELOW" in verdict
        print(f"{name:<{width}}  {status:<11} {seconds:>7.1f}  {'MISSED: ' if missed else ''}{verdict}")
    return 1 if any(rc for _, rc, _, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
