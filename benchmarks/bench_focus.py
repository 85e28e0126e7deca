#!/usr/bin/env python3
"""DiffractionFocussing at 10^5 pixels (the POWGEN demo's proc path), beside bare numpy baselines of the
same size measured in the same run.

Workload: 10^5 one-detector spectra in dSpacing, a .cal file putting them in 4 groups (every 100th pixel
unmapped), and
  events     10^6 events, PreserveEvents=True, grouping file included: what the demo's proc pays per chunk
             (DiffractionFocussing reads the file each call; it now parses it only when it changed)
  histogram  10^3 shared bins per spectrum (a 10^8-bin input: summed into 4 spectra)
  cal        parsing the .cal file (read_cal_file)
Baselines: `lookup` = a vectorised searchsorted of the 10^5 detector ids into the file's ids plus one gather
per event (the least a grouping of events must do); `copy` = copying the histogram's values (the least a pass
over them costs).
Medians of interleaved rounds. Missed targets are reported, not failures.

    python benchmarks/bench_focus.py [--rounds 5] [--src DIR]   (--src: import livereduce from DIR, e.g. an
    older checkout, to measure the figure before a change in the same session)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PIXELS, GROUPS, EVENTS, BINS = 100_000, 4, 1_000_000, 1000
TARGET_RATIO = 10.0  # focussing events ≤ 10× the bare lookup (it was ~480× with the per-pixel loop)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--src", default=str(Path(__file__).resolve().parents[1]))
    a = ap.parse_args(argv)
    sys.path.insert(0, a.src)
    from livereduce.algorithms import focus as F
    from livereduce.algorithms.focus import focus, read_cal_file
    from livereduce.workspace.events import EventColumns, EventWorkspace
    from livereduce.workspace.histogram import HistogramWorkspace
    from livereduce.workspace.spectra import Spectra

    rng = np.random.default_rng(0)
    spectra = Spectra.one_to_one(np.arange(PIXELS), l2=2.0, two_theta=np.linspace(0.2, 2.9, PIXELS))
    ev = EventColumns(rng.integers(0, PIXELS, EVENTS), rng.uniform(0.5, 2.5, EVENTS))
    events = EventWorkspace(spectra, ev, np.array([0.5, 2.5]), unit_id="dSpacing")
    edges = np.linspace(0.5, 2.5, BINS + 1)
    values = rng.random((PIXELS, BINS))
    histo = HistogramWorkspace(values, values.copy(), edges, spectra, unit_id="dSpacing")
    dst = np.empty_like(values)
    with tempfile.TemporaryDirectory() as tmp:
        cal = Path(tmp) / "g.cal"
        select = (np.arange(PIXELS) % 100 != 0).astype(int)
        rows = [
            f"{k:9d}{k:9d}  0.0000000 {s:4d} {1 + k * GROUPS // PIXELS:4d}\n" for k, s in enumerate(select)
        ]
        cal.write_text("# number udet offset select group\n" + "".join(rows))
        groups = read_cal_file(str(cal))
        ids = np.sort(np.fromiter(groups, np.int64, len(groups)))
        table = np.arange(PIXELS, dtype=np.int64)
        grouping = getattr(F, "cal_groups", read_cal_file)  # before the change: parsed every call
        runs = {
            "events": lambda: focus(events, grouping(str(cal)), True),
            "histogram": lambda: focus(histo, groups),
            "cal": lambda: read_cal_file(str(cal)),
            "lookup": lambda: table[np.searchsorted(ids, spectra.det_ids)][ev.index],
            "copy": lambda: np.copyto(dst, values),
        }
        runs["events"]()  # compile any kernels outside the timing
        runs["histogram"]()
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(a.rounds):
            for name, fn in runs.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"livereduce from {a.src}: {PIXELS:,} pixels, {GROUPS} groups, median of {a.rounds} rounds")
    print(f"{'':>34} {'ms':>9} {'ratio':>8}")
    for name, base in (("events", "lookup"), ("histogram", "copy"), ("cal", "lookup")):
        print(f"{name + ' / ' + base:>34} {med[name] * 1e3:>9.2f} {med[name] / med[base]:>8.1f}")
    for name in ("lookup", "copy"):
        print(f"{'baseline ' + name:>34} {med[name] * 1e3:>9.2f}")
    ratio = med["events"] / med["lookup"]
    verdict = "meets" if ratio <= TARGET_RATIO else "BELOW"
    print(f"focus (events) = {ratio:.1f}× the bare lookup — {verdict} the target (≤ {TARGET_RATIO:.0f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
