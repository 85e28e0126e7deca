#!/usr/bin/env python3
"""The powder path at POWGEN's size: AlignDetectors and AlignAndFocusPowder on events, beside a bare numpy
baseline of the same size measured in the same run.

Workload: POWGEN's 43 120 pixels (its IDF from ../shared/instruments/idf/ when present, else a synthetic
instrument of the same size), EVENTS events on random pixels with TOFs from 5 to 45 ms, grouped in 4 groups.
  align    AlignDetectors with the geometric DIFC (the per-event TOF → d kernel)
  focus    AlignAndFocusPowder as the powder demo calls it (Params=-0.0005 over d 0.75–3.3 Å, four groups,
           CompressTolerance 0.01, events preserved), then ConvertUnits to d and Rebin to a histogram
Baseline: `gather` = x / difc[index] in numpy (the least a per-event conversion costs).
Medians of interleaved rounds. A missed target is reported, not a failure.

    python benchmarks/bench_powder.py [--events 5000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IDF = ROOT.parent / "shared" / "instruments" / "idf" / "POWGEN_Definition_2018-05-05.xml"
TARGET_RATIO = 4.0  # AlignDetectors ≤ 4× the bare numpy gather-divide


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    a, _ = ap.parse_known_args(argv)
    sys.path.insert(0, str(ROOT))
    from livereduce.algorithms import call
    from livereduce.algorithms.diffcal import difc_from_geometry
    from livereduce.instrument import read_idf
    from livereduce.instrument.attach import attach_geometry
    from livereduce.workspace.events import EventColumns, EventWorkspace
    from livereduce.workspace.spectra import Spectra

    rng = np.random.default_rng(0)
    if IDF.exists():
        g = read_idf(IDF)
        spectra = attach_geometry(Spectra.one_to_one(g.det_ids), g)
        where = f"POWGEN's IDF ({g.n_pixels} pixels)"
    else:
        n = 43_120
        spectra = Spectra.one_to_one(np.arange(n), l1=60.0, l2=3.0, two_theta=np.linspace(0.1, 2.9, n))
        where = f"a synthetic instrument ({n} pixels)"
    n = len(spectra)
    ids = spectra.det_ids
    with tempfile.TemporaryDirectory() as tmp:
        grouping = Path(tmp) / "g.xml"
        quarters = np.array_split(ids, 4)
        grouping.write_text(
            "<detector-grouping>"
            + "".join(
                f'<group ID="{k + 1}"><detids val="{",".join(map(str, q))}"/></group>'
                for k, q in enumerate(quarters)
            )
            + "</detector-grouping>"
        )
        index = rng.integers(0, n, a.events).astype(np.uint32)
        tof = rng.uniform(5_000, 45_000, a.events)
        ws = EventWorkspace(spectra, EventColumns(index, tof))
        difc = difc_from_geometry(spectra.l1, spectra.l2, spectra.two_theta)

        def gather():
            return tof / difc[index]

        def align():
            return call("AlignDetectors", ws, StoreInADS=False)

        def focus():
            out = call(
                "AlignAndFocusPowder",
                ws,
                GroupFilename=str(grouping),
                Params="-0.0005",
                DMin=0.75,
                DMax=3.3,
                StoreInADS=False,
            )
            d = call("ConvertUnits", out, Target="dSpacing", StoreInADS=False)
            return call("Rebin", d, Params="0.75,-0.0005,3.3", PreserveEvents=False, StoreInADS=False)

        align(), focus()  # compile and warm the kernels
        times: dict[str, list[float]] = {"gather": [], "align": [], "focus": []}
        for _ in range(a.rounds):
            for name, fn in (("gather", gather), ("align", align), ("focus", focus)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"powder path, {a.events:,} events over {where}, median of {a.rounds} rounds")
    for name in ("gather", "align", "focus"):
        print(f"  {name:7s} {med[name] * 1e3:9.1f} ms  {a.events / med[name] / 1e6:8.1f} M events/s")
    ratio = med["align"] / med["gather"]
    verdict = "met" if ratio <= TARGET_RATIO else "BELOW"
    print(f"target: AlignDetectors ≤ {TARGET_RATIO:g}× the numpy gather: {ratio:.1f}× ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
