#!/usr/bin/env python3
"""RSS over a run (issue #12: the daemon's RSS within ±5 % over a 10-minute run, after the first minute).

The fake SMS sends one run of 10^5 pixels at --rss-rate events/s (one the daemon sustains) to a daemon
subprocess whose proc script is Rebin(PreserveEvents=False) into 10^3 TOF bins, accumulated with Add (a 1.6 GB
table), one cycle a second. The daemon's resident memory (its process and every child: the worker) is sampled
--every seconds from the first status page on, as proportional set size (PSS, as bench_end_to_end): events
the listener hands the worker in shared memory are mapped by both, and summed RSS would count them twice
(shown too). Reported: the largest deviation of a sample from the mean of the
samples after the first minute (the first quarter of a run shorter than 4 minutes: the table's pages and the
listener's buffers take about 12 s to reach their size), in % of that mean; beside it the first sample, the
settled range (also for the daemon process and its worker apart) and a plain-numpy baseline measured in the
same run: the RSS of this process holding a table of the same size (what the accumulation alone costs).

By default the run lasts 60 s so `python benchmarks/run.py` stays short; the issue's 10 minutes:

    python benchmarks/bench_rss.py --rss-seconds 600     (or LIVEREDUCE_BENCH_RSS_SECONDS=600)
    python benchmarks/bench_rss.py [--rss-seconds 60] [--rss-rate 5e6] [--every 0.25] [--samples FILE]

--samples writes one line a sample: seconds, daemon + worker MB, worker MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_end_to_end import NBINS, REBIN, Daemon

from livereduce.servers.adara import FakeSMS

PIXELS = 100_000
TARGET_PERCENT = 5.0


def rss_parts(daemon: Daemon) -> tuple[float, float, float]:
    """(the daemon process, its children: the worker) proportional set size in MB, as Daemon.rss_mb: pages both
    map (events in shared memory) count once, half in each; and the plain sum of their RSS."""
    try:
        p = psutil.Process(daemon.proc.pid)
        own = p.memory_full_info()
        kids = [q.memory_full_info() for q in p.children(recursive=True)]
        rss = (own.rss + sum(k.rss for k in kids)) / 1e6
        return own.pss / 1e6, sum(k.pss for k in kids) / 1e6, rss
    except psutil.Error:
        return float("nan"), float("nan"), float("nan")


def rss_over_run(seconds: float, rate: float, every: float) -> list[tuple[float, float, float, float]]:
    """(seconds since the status page answered, daemon + worker PSS MB, of which the worker's, summed RSS MB)
    every `every` seconds over a steady run."""
    with tempfile.TemporaryDirectory(prefix="lr-bench-") as tmp:
        work = Path(tmp)
        scripts = work / "scripts"
        scripts.mkdir()
        (scripts / "reduce_FAKE_live_proc.py").write_text(REBIN)
        sms = FakeSMS(
            port=0,
            pixels=PIXELS,
            banks=32,
            rate=rate,
            run_seconds=seconds + 60,  # the run outlasts the measurement: no end-of-run transition in it
            runs=1,
            seed=4,
            error_events=0.0,
        )
        port = sms.start()
        daemon = Daemon(
            work,
            {
                "instrument": "FAKE",
                "listener": "adara",
                "address": f"127.0.0.1:{port}",
                "script_dir": str(scripts),
                "update_every": 1.0,
                "preserve_events": False,
                "accum_method": "Add",
            },
        )
        samples = []
        try:
            daemon.status(time.monotonic() + 60)
            start = time.monotonic()
            for k in range(int(seconds / every)):
                wait = start + (k + 1) * every - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # paced by the clock
                own, children, rss = rss_parts(daemon)
                samples.append((time.monotonic() - start, own + children, children, rss))
            st = daemon.status(time.monotonic() + 10)
        finally:
            daemon.stop()
            sms.stop()
        ev = st.get("events", {})
        print(
            f"daemon: {st.get('cycle', 0)} cycles, {ev.get('received_total', 0):,} events received, "
            f"{ev.get('dropped_total', 0):,} dropped by policy",
            flush=True,
        )
        return samples


def baseline_mb() -> float:
    """This process's RSS growth (MB) for a filled values + variances table of the accumulation's shape."""
    before = psutil.Process().memory_info().rss
    table = np.ones((2, PIXELS, NBINS))
    grown = (psutil.Process().memory_info().rss - before) / 1e6
    del table
    return grown


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = float(os.environ.get("LIVEREDUCE_BENCH_RSS_SECONDS", "60"))
    ap.add_argument("--rss-seconds", type=float, default=default, help="length of the run (the issue: 600)")
    ap.add_argument("--rss-rate", type=float, default=5e6, help="events/s (one the daemon sustains)")
    ap.add_argument("--every", type=float, default=0.25, help="seconds between RSS samples")
    ap.add_argument("--samples", default="", help="write the samples (s, MB) to this file")
    a, _ = ap.parse_known_args()

    table = baseline_mb()
    samples = rss_over_run(a.rss_seconds, a.rss_rate, a.every)
    if a.samples:
        Path(a.samples).write_text(
            "".join(f"{t:.2f} {mb:.1f} {kids:.1f} {rss:.1f}\n" for t, mb, kids, rss in samples)
        )
    settle = min(60.0, a.rss_seconds / 4)
    settled = [mb for t, mb, _, _ in samples if t >= settle]
    worker = [kids for t, _, kids, _ in samples if t >= settle]
    listener = [mb - kids for t, mb, kids, _ in samples if t >= settle]
    summed = [rss for t, _, _, rss in samples if t >= settle]
    mean = statistics.fmean(settled)
    worst = max(abs(mb - mean) for mb in settled) / mean * 100
    print(
        f"\nMemory (PSS) of the daemon and its worker over a {a.rss_seconds:.0f} s run at {a.rss_rate:.0e} ev/s "
        f"(10^5 px, proc Rebin into 10^3 bins, Add), sampled every {a.every:g} s"
    )
    print(f"baseline: a numpy table of the accumulation's size (values + variances): {table:.0f} MB")
    print(
        f"first sample {samples[0][1]:.0f} MB; after the first {settle:.0f} s: mean {mean:.0f} MB "
        f"({mean / table:.2f}× the table), {min(settled):.0f}–{max(settled):.0f} MB, "
        f"stdev {statistics.pstdev(settled):.0f} MB, {len(settled)} samples"
    )
    for name, part in (
        ("daemon process (listener)", listener),
        ("worker (children)", worker),
        ("summed RSS (shared pages twice)", summed),
    ):
        m = statistics.fmean(part)
        print(
            f"  {name}: mean {m:.0f} MB, {min(part):.0f}–{max(part):.0f} MB, stdev "
            f"{statistics.pstdev(part):.0f} MB, largest deviation {max(abs(x - m) for x in part) / m * 100:.1f} %"
        )
    print(
        f"target: RSS within ±{TARGET_PERCENT:.0f} % after the first {settle:.0f} s: largest deviation from the "
        f"mean {worst:.1f} % {'(met)' if worst <= TARGET_PERCENT else 'BELOW'}"
        + (
            ""
            if a.rss_seconds >= 600
            else f" (a {a.rss_seconds:.0f} s run; the issue's: 600 s from the first 60 s)"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
