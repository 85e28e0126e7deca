"""Parse time of the shared real IDFs (../shared/instruments/idf): XML → per-detector positions, L2, 2θ, φ.

Per file: its size, detector count, the median of fresh parses (no cache) and of cached ones (the hash of the
text: what each run's identical ADARA GEOMETRY packet costs). Target: the largest instrument (SNAP, 1.2 M
pixels; CORELLI 373 k, NOMAD 101 k) parses in under 2 s, so a GEOMETRY packet never stalls the listener.
Run: python benchmarks/bench_idf.py [--rounds N]; exits 0 when it ran, whatever the figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livereduce.instrument import parse_idf

SHARED = Path(__file__).resolve().parents[2] / "shared" / "instruments" / "idf"
TARGET_S = 2.0


def median_seconds(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    a, _ = ap.parse_known_args(argv)  # benchmarks/run.py passes every benchmark the same extra arguments
    files = sorted(SHARED.glob("*.xml"))
    if not files:
        print(f"no IDFs in {SHARED} (../shared is not part of this clone): nothing to measure")
        return 0
    print(f"{'file':<40} {'bytes':>7} {'pixels':>9} {'parse/s':>8} {'cached/s':>9}")
    largest = (0, "", 0.0)
    for path in files:
        text = path.read_text()
        g = parse_idf(text, cache=False)
        fresh = median_seconds(lambda text=text: parse_idf(text, cache=False), a.rounds)
        cached = median_seconds(lambda text=text: parse_idf(text), a.rounds)
        print(f"{path.name:<40} {len(text):>7} {g.n_pixels:>9} {fresh:>8.3f} {cached:>9.5f}")
        largest = max(largest, (g.n_pixels, g.name, fresh))
    n, name, seconds = largest
    verdict = "met" if seconds < TARGET_S else "BELOW"
    print(f"target: largest IDF ({name}, {n} pixels) parses in < {TARGET_S:g} s: {seconds:.2f} s, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
