#!/usr/bin/env python3
"""Per-chunk latency of a proc Rebin(PreserveEvents=False) into an Add accumulation of 10^5 spectra × 10^3 bins
(10^8 bins), for chunks of 10^5 / 10^6 / 10^7 events (issue #12: a 10^6-event chunk p99 ≤ 100 ms).

The real session (livereduce.session.Session) runs the proc script file and accumulates, chunk after chunk,
in this process; a listener hands it pre-made chunks (uniform pixels, TOF 1000–16000 µs) so its own cost is
not timed. Per chunk: proc (the script: Rebin), accumulate (into the accumulation, in place) and the whole
cycle (session.step minus the listener). The first cycle (the accumulation made) is left out. Beside them, in
the same run: np.add.at and a one-thread numba kernel of the same events into a table of the same shape
(bin index computed inside the timing); ×add.at is the cycle's rate over np.add.at's. The first cycle (the
accumulation's table made) is shown on its own.

    python benchmarks/bench_proc_latency.py [--cycles 30] [--sizes 1e5,1e6,1e7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_end_to_end import NBINS, REBIN, TOF, numba_one_thread  # noqa: E402

from livereduce.listeners.fake import FakeEventListener  # noqa: E402
from livereduce.scripts import compile_script  # noqa: E402
from livereduce.session import Session  # noqa: E402
from livereduce.workspace.ads import AnalysisDataService, using  # noqa: E402

SPECTRA = 100_000
TARGET_P99_MS = 100.0


class _Fixed:
    """Stands for the fake listener's random generator: the same pre-made events every extract."""

    def __init__(self, n: int):
        rng = np.random.default_rng(1)
        self.index = rng.integers(0, SPECTRA, n, dtype=np.uint32)
        self.tof = rng.uniform(*TOF, n).astype(np.float32)

    def integers(self, *args, **kwargs):
        return self.index

    def uniform(self, *args, **kwargs):
        return self.tof


class ChunkListener(FakeEventListener):
    """The in-process fake listener with pre-made events; the time its extract takes is kept, to be taken
    off the cycle (it is the listener's, not the session's)."""

    def __init__(self, n: int):
        super().__init__(events_per_extract=n, nspectra=SPECTRA)
        self._rng = _Fixed(n)  # type: ignore[assignment]
        self.index, self.tof = self._rng.index, self._rng.tof
        self.extract_seconds = 0.0

    def extract(self):
        t = time.perf_counter()
        try:
            return super().extract()
        finally:
            self.extract_seconds = time.perf_counter() - t


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=30, help="timed chunks per size (10^7: a third of these)")
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    a, _ = ap.parse_known_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        proc_path = Path(tmp) / "reduce_FAKE_live_proc.py"
        proc_path.write_text(REBIN)
        proc = compile_script(proc_path, "proc")
        for n in (int(float(s)) for s in a.sizes.split(",")):
            listener = ChunkListener(n)
            registry = AnalysisDataService()
            session = Session(
                listener=listener, ads=registry, update_every=0.0, accum_method="Add", proc=proc
            )
            acc_times: list[float] = []
            real = session._accumulate

            def timed(processed, real=real, acc_times=acc_times):
                t = time.perf_counter()
                real(processed)
                acc_times.append(time.perf_counter() - t)

            session._accumulate = timed  # type: ignore[method-assign]
            cycles = a.cycles if n < 10**7 else max(5, a.cycles // 3)
            procs, steps = [], []
            with using(registry):
                t = time.perf_counter()
                session.step()  # the first chunk becomes the accumulation: its table is made here
                first = time.perf_counter() - t
                for _ in range(cycles):
                    t = time.perf_counter()
                    session.step()
                    steps.append(time.perf_counter() - t - listener.extract_seconds)
                    procs.append(session.state.proc_seconds)
            accs = acc_times[1:]
            # the same events, the same shape, the same run: the baselines
            base = np.zeros((SPECTRA, NBINS))
            base.fill(0.0)
            inv = NBINS / (TOF[1] - TOF[0])
            numba_one_thread(listener.index[:10], listener.tof[:10], TOF[0], inv, base)
            t_add, t_nb = [], []
            for _ in range(min(cycles, 10)):
                t = time.perf_counter()
                b = np.minimum(((listener.tof - TOF[0]) * inv).astype(np.int64), NBINS - 1)
                np.add.at(base.ravel(), listener.index.astype(np.int64) * NBINS + b, 1.0)
                t_add.append(time.perf_counter() - t)
                t = time.perf_counter()
                numba_one_thread(listener.index, listener.tof, TOF[0], inv, base)
                t_nb.append(time.perf_counter() - t)
            rows.append((n, procs, accs, steps, first, statistics.median(t_add), statistics.median(t_nb)))
            del session, base

    print(f"\nproc Rebin → Add into {SPECTRA} × {NBINS} (ms per chunk; p50 / p99 over the timed chunks)")
    print(
        f"{'events':>9} {'proc p50':>9} {'proc p99':>9} {'acc p50':>8} {'acc p99':>8} {'cycle p50':>10} "
        f"{'cycle p99':>10} {'add.at':>8} {'numba1':>8} {'×add.at':>8} {'1st cycle':>10}"
    )
    for n, procs, accs, steps, first, add_at, nb in rows:
        print(
            f"{n:>9.0e} {pct(procs, 50):9.1f} {pct(procs, 99):9.1f} {pct(accs, 50):8.1f} {pct(accs, 99):8.1f} "
            f"{pct(steps, 50):10.1f} {pct(steps, 99):10.1f} {add_at * 1e3:8.1f} {nb * 1e3:8.1f} "
            f"{add_at * 1e3 / pct(steps, 50):8.2f} {first * 1e3:10.0f}"
        )
    for n, procs, _accs, steps, _first, _add_at, _nb in rows:
        if n == 10**6:
            p99 = max(pct(procs, 99), pct(steps, 99))
            print(
                f"target: a 10^6-event chunk's proc p99 ≤ {TARGET_P99_MS:.0f} ms at 10^8 bins: proc "
                f"{pct(procs, 99):.1f} ms, whole cycle {pct(steps, 99):.1f} ms "
                f"{'(met)' if p99 <= TARGET_P99_MS else 'BELOW'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
