"""Rebin events into a 10^5-spectrum × 10^3-bin histogram: livereduce's kernels vs the numpy np.add.at baseline.

Measured, as medians of interleaved rounds (performance.md B.0 method):
  A  accumulate: EventWorkspace.histogram_into(acc)  — counts and variances into a preallocated accumulator
  B  kernel, counts only: histogram_into(values, None, ...) — what Rebin uses; like for like with the baseline
  B2 the same kernel on two threads, each owning half of the pixels
  C  Rebin(PreserveEvents=False), its values read — the table made (counts-only kernel, variances copied),
     including allocating its 1.6 GB output
  D  Rebin(PreserveEvents=False) + Add into the accumulator — the proc path: no table per chunk
  M  the one-loop numba kernel of performance.md's appendix (one thread), a like-for-like baseline
  N  numpy baseline: np.add.at(acc.ravel(), idx, 1.0) with idx precomputed (not timed)
Accumulators are allocated and every page touched before timing. Run: python benchmarks/bench_rebin.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_end_to_end import numba_one_thread as one_loop

from livereduce.accumulate import Method, accumulate
from livereduce.algorithms.binning import rebin
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.histogram_kernels import histogram_into
from livereduce.workspace.spectra import Spectra

TARGET = 20e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--spectra", type=int, default=100_000)
    ap.add_argument("--bins", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-rebin", action="store_true", help="skip C (allocates 1.6 GB per round)")
    a = ap.parse_args()

    rng = np.random.default_rng(0)
    width = 20_000.0 / a.bins
    pix = rng.integers(0, a.spectra, a.events, dtype=np.uint32)
    tof = rng.uniform(0.0, 20_000.0, a.events)
    edges = np.linspace(0.0, 20_000.0, a.bins + 1)
    idx = pix.astype(np.int64) * a.bins + np.minimum((tof / width).astype(np.int64), a.bins - 1)
    spectra = Spectra.one_to_one(np.arange(a.spectra))
    ws = EventWorkspace(spectra, EventColumns(pix, tof), edges)

    acc = HistogramWorkspace.zeros(spectra, edges)  # counts + variances: the accumulator
    acc.values.fill(0.0)
    acc.variances.fill(0.0)  # touch every page before timing
    counts_only = np.zeros((a.spectra, a.bins))
    counts_only.fill(0.0)
    base = np.zeros((a.spectra, a.bins))
    base.fill(0.0)

    small = slice(0, 1000)  # compile the kernels outside the timing
    histogram_into(counts_only, None, pix[small], tof[small], edges)
    ws.histogram_into(acc)
    counts_only.fill(0.0)

    two = np.zeros((a.spectra, a.bins))
    two.fill(0.0)
    simple = np.zeros((a.spectra, a.bins))
    simple.fill(0.0)
    inv = 1.0 / width
    one_loop(pix[small], tof[small], 0.0, inv, simple)
    simple.fill(0.0)
    runs = {
        "A accumulate values+variances (histogram_into)": lambda: ws.histogram_into(acc),
        "B kernel, counts only": lambda: histogram_into(counts_only, None, pix, tof, edges),
        "B2 kernel, counts only, 2 threads (pixel halves)": lambda: histogram_into(
            two, None, pix, tof, edges, threads=2
        ),
        "D Rebin(PreserveEvents=False) + Add into the accumulator": lambda: accumulate(
            acc, rebin(ws, f"0,{width},20000", preserve_events=False), Method.ADD
        ),
        "M numba one loop, one thread (performance.md appendix)": lambda: one_loop(
            pix, tof, 0.0, inv, simple
        ),
        "N numpy np.add.at baseline": lambda: np.add.at(base.ravel(), idx, 1.0),
    }
    if not a.skip_rebin:  # resolved: the table made, as any reader but an Add accumulation makes it
        runs["C Rebin(PreserveEvents=False), read: 1.6 GB output made"] = lambda: (
            rebin(ws, f"0,{width},20000", preserve_events=False).values
        )
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(a.rounds):  # interleaved rounds
        for name, fn in runs.items():
            t = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t)
            del out

    n_rounds = a.rounds
    assert np.array_equal(counts_only, base), "kernel and baseline disagree"
    assert float(acc.values.sum()) == (2 * n_rounds + 1) * a.events, "accumulator lost events"
    assert np.array_equal(two, base) and np.array_equal(simple, base), "kernels and baseline disagree"
    print(f"{a.events:.0e} events → {a.spectra} × {a.bins} float64 histogram, {n_rounds} interleaved rounds")
    base_rate = a.events / statistics.median(times["N numpy np.add.at baseline"])
    for name, ts in times.items():
        med = statistics.median(ts)
        rate = a.events / med
        print(
            f"  {name:62s} median {med * 1e3:8.1f} ms  {rate / 1e6:7.1f} M events/s  "
            f"ratio to add.at {rate / base_rate:5.2f}  (min {min(ts) * 1e3:.1f} ms, max {max(ts) * 1e3:.1f} ms)"
        )
    best = a.events / statistics.median(times["B kernel, counts only"])
    verdict = "meets" if best >= TARGET else "BELOW"
    print(
        f"Rebin kernel into a preallocated accumulator: {best / 1e6:.1f} M events/s — {verdict} the "
        f"{TARGET / 1e6:.0f} M events/s target"
    )
    return 0  # a missed target is reported above, not a failure (benchmarks/run.py)


if __name__ == "__main__":
    sys.exit(main())
