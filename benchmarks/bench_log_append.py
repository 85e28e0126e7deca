#!/usr/bin/env python3
"""Per-append cost of run logs and of the pulse-time table as the run grows (issue #12: a cycle's cost must
not grow with run length; a 24 h run at 60 Hz holds 5.2×10^6 pulses).

For 10^3 … 10^6 entries already held, the median cost of one cycle's append (60 entries: one second of
pulses) to
  log       TimeSeries.append (the proton_charge log), growing in place
  pulses    EventColumns.append of a chunk's pulse-time table (its events: one per pulse)
  copying   the old way: concatenating the whole log plus the new entries (the baseline)
and of copying the log (what every algorithm that copies a workspace's run pays), per copy:
  log copy  TimeSeries.copy (borrows the buffers until it appends)
  arrays    copying its times and values arrays (the old way, the baseline)
each measured on its own object that holds that many entries, interleaved. The growing stores are timed while
they go from n to 2n entries (n/60 appends, one capacity doubling among them): the amortised cost a long run
pays. Flat means the largest/smallest ratio of a row stays near 1; the copying baseline grows linearly.

    python benchmarks/bench_log_append.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livereduce.workspace.events import EventColumns
from livereduce.workspace.run import TimeSeries

PER_CYCLE, CYCLES = 60, 200  # entries per append; appends timed for the copying baseline (cost per append)


def held(n: int) -> tuple[TimeSeries, EventColumns, tuple[np.ndarray, np.ndarray]]:
    """A log, a pulse table and a plain (times, values) pair already holding n entries."""
    t, v = np.arange(n, dtype=np.int64), np.ones(n)
    log = TimeSeries("proton_charge", "picoCoulomb")
    log.append(t, v)
    cols = EventColumns(np.zeros(n, np.uint32), np.zeros(n), np.arange(n), t)
    return log, cols, (t.copy(), v.copy())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    sizes = (10**3, 10**4, 10**5, 10**6)
    t_new = np.arange(PER_CYCLE, dtype=np.int64) + 10**9
    v_new = np.ones(PER_CYCLE)
    chunk = EventColumns(np.zeros(PER_CYCLE, np.uint32), np.zeros(PER_CYCLE), np.arange(PER_CYCLE), t_new)
    cost: dict[tuple[str, int], list[float]] = {}
    for _ in range(a.rounds):
        for n in sizes:
            log, cols, (times, values) = held(n)

            def copying(times=times, values=values):
                for _ in range(CYCLES):
                    times = np.concatenate([times, t_new])
                    values = np.concatenate([values, v_new])

            grow = max(CYCLES, n // PER_CYCLE)

            def log_append(log=log, grow=grow):
                for _ in range(grow):
                    log.append(t_new, v_new)

            def pulses(cols=cols, grow=grow):
                for _ in range(grow):
                    cols.append(chunk)

            def log_copy(log=log):
                for _ in range(CYCLES):
                    log.copy()

            def arrays(times=times, values=values):
                for _ in range(CYCLES):
                    times.copy(), values.copy()

            for name, fn, count in (
                ("log copy", log_copy, CYCLES),
                ("arrays", arrays, CYCLES),
                ("log", log_append, grow),
                ("pulses", pulses, grow),
                ("copying", copying, CYCLES),
            ):
                t0 = time.perf_counter()
                fn()
                cost.setdefault((name, n), []).append((time.perf_counter() - t0) / count)
    med = {k: statistics.median(v) for k, v in cost.items()}
    print(
        f"µs per append of {PER_CYCLE} entries or per copy, by entries already held (median of {a.rounds} rounds)"
    )
    print(f"{'':>9} " + " ".join(f"{n:>10,}" for n in sizes) + f" {'largest/smallest':>17}")
    for name in ("log", "pulses", "copying", "log copy", "arrays"):
        row = [med[(name, n)] * 1e6 for n in sizes]
        print(f"{name:>9} " + " ".join(f"{x:>10.1f}" for x in row) + f" {row[-1] / row[0]:>17.2f}")
    flat = max(med[(name, sizes[-1])] / med[(name, sizes[0])] for name in ("log", "pulses", "log copy"))
    verdict = "meets" if flat <= 2.0 else "BELOW"
    print(
        f"per-append / per-copy cost growth 10^3 → 10^6 entries: {flat:.2f}× — {verdict} the target (flat: ≤ 2×)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
