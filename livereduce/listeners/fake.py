"""In-process fake listeners: the daemon runs with no DAS and no server at all.

FakeEventListener follows Mantid's FakeEventDataListener (TOF uniform in 40,000–60,000 µs, a configurable
event rate, an EndRun every N seconds with an incrementing run number, NotYet for the first N extracts), with
two additions for exact tests: `events_per_extract` (a fixed count per extract instead of a rate) and
`end_run_every_extracts`. FakeHistogramListener returns cumulative histograms like an ISIS DAE: after k
extracts every bin of spectrum s in period p holds k·(p·1000 + s).

Both give their spectra a simple, real geometry (L1 = 10 m, L2 = 2 m, 2θ spread over 30°–150°) so unit
conversion works.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from livereduce.errors import NotYet
from livereduce.listeners.base import Chunk, ChunkEvents, Histograms, RunStatus, RunTracker, StartFrom
from livereduce.workspace.run import Run, iso_from_ns
from livereduce.workspace.spectra import Spectra

log = logging.getLogger("livereduce.listener.fake")


def fake_spectra(n: int, instrument: str) -> Spectra:
    return Spectra.one_to_one(
        np.arange(1, n + 1),
        l1=10.0,
        l2=2.0,
        two_theta=np.deg2rad(np.linspace(30.0, 150.0, n)),
        instrument=instrument,
    )


class FakeEventListener:
    buffers_events = True

    def __init__(
        self,
        address: str = "",
        *,
        rate: float = 200.0,
        nspectra: int = 2,
        tof_range: tuple[float, float] = (40_000.0, 60_000.0),
        end_run_every: float = 0.0,
        end_run_every_extracts: int = 0,
        not_yet_times: int = 0,
        events_per_extract: int | None = None,
        run_number: int = 1,
        seed: int | None = None,
        instrument: str = "FAKE",
        **options,
    ):
        if options:
            log.debug("fake_event ignores options %s", sorted(options))
        self.rate, self.tof_range = float(rate), (float(tof_range[0]), float(tof_range[1]))
        self.end_run_every, self.end_run_every_extracts = float(end_run_every), int(end_run_every_extracts)
        self.not_yet_times, self.events_per_extract = int(not_yet_times), events_per_extract
        self.spectra = fake_spectra(int(nspectra), instrument)
        self._rng = np.random.default_rng(seed)
        self._tracker = RunTracker()
        self._first_run = int(run_number)
        self._extracts = 0
        self._reset = False
        self._last = self._run_started = time.monotonic()
        self._owed = 0.0
        self.produced_total = 0
        self.produced_per_run: dict[int, int] = {}

    def start(self, start: StartFrom) -> None:
        self._last = self._run_started = time.monotonic()
        self._begin(self._first_run)

    def _begin(self, number: int) -> None:
        self._tracker.begin_run(number)
        self._run = Run()
        self._run.set("run_number", str(number))
        self._run.set("run_start", iso_from_ns(time.time_ns()))
        self._run.set("experiment_identifier", "IPTS-0000")
        self._run.set("run_title", f"fake run {number}")
        self._extracts_in_run = 0

    @property
    def run_number(self) -> int:
        return self._tracker.run_number

    def data_reset(self) -> bool:
        reset, self._reset = self._reset, False
        return reset

    def extract(self) -> Chunk:
        self._extracts += 1
        if self._extracts <= self.not_yet_times:
            raise NotYet(f"fake listener: not yet ({self._extracts} of {self.not_yet_times})")
        if self._tracker.status() == RunStatus.END_RUN:  # previous extract ended a run: a new one begins
            self._begin(self._tracker.run_number + 1)
            self._run_started = time.monotonic()
        now = time.monotonic()
        if self.events_per_extract is not None:
            n = int(self.events_per_extract)
        else:
            self._owed += self.rate * (now - self._last)
            n = int(self._owed)
            self._owed -= n
        self._last = now
        index = self._rng.integers(0, len(self.spectra), n, dtype=np.uint32)
        tof = self._rng.uniform(*self.tof_range, n).astype(np.float32)
        events = ChunkEvents(index, tof, np.array([time.time_ns()], np.int64), np.zeros(1, np.int64))
        run = self._run.carry_over()
        run.series("proton_charge", "picoCoulomb").append(time.time_ns(), 1.0e6 * max(n, 1) / 1000.0)
        self._run.merge(run)
        self.produced_total += n
        number = self._tracker.run_number
        self.produced_per_run[number] = self.produced_per_run.get(number, 0) + n
        self._extracts_in_run += 1
        ended = (self.end_run_every_extracts and self._extracts_in_run >= self.end_run_every_extracts) or (
            self.end_run_every and now - self._run_started >= self.end_run_every
        )
        if ended:
            run.set("run_end", iso_from_ns(time.time_ns()))
            self._tracker.end_run()
        self._tracker.latch()
        return Chunk(spectra=self.spectra.copy(), run=run, events=events)

    def run_status(self) -> RunStatus:
        return self._tracker.status()

    def close(self) -> None:
        pass

    def state(self) -> dict:
        return {"connected": True, "address": "in-process", "produced_total": self.produced_total}


class FakeHistogramListener:
    buffers_events = False

    def __init__(
        self,
        address: str = "",
        *,
        nspectra: int = 10,
        nbins: int = 100,
        nperiods: int = 1,
        periods: list[int] | None = None,
        spectra: list[int] | None = None,
        edges: tuple[float, float] = (10_000.0, 20_000.0),
        instrument: str = "FAKE_HISTOGRAM",
        **options,
    ):
        if options:
            log.debug("fake_histogram ignores options %s", sorted(options))
        self.nperiods = int(nperiods)
        self.periods = tuple(periods) if periods else tuple(range(1, self.nperiods + 1))
        bad = [p for p in self.periods if not 1 <= p <= self.nperiods]
        if bad:
            raise ValueError(f"periods {bad} out of range 1..{self.nperiods}")
        all_spectra = fake_spectra(int(nspectra), instrument)
        self._sel = (
            np.arange(nspectra)
            if spectra is None
            else np.searchsorted(all_spectra.numbers, np.asarray(spectra))
        )
        if spectra is not None and not np.array_equal(all_spectra.numbers[self._sel], spectra):
            raise ValueError(f"spectra {spectra} not all in 1..{nspectra}")
        self.spectra = all_spectra.take(self._sel)
        self.edges = np.linspace(edges[0], edges[1], int(nbins) + 1)
        self._k = 0

    def start(self, start: StartFrom) -> None:
        pass

    @property
    def run_number(self) -> int:
        return 0

    def data_reset(self) -> bool:
        return False

    def extract(self) -> Chunk:
        self._k += 1
        p = np.asarray(self.periods, float)[:, None, None]
        s = self.spectra.numbers.astype(float)[None, :, None]
        counts = np.broadcast_to(
            self._k * (p * 1000.0 + s), (len(self.periods), len(self.spectra), self.edges.size - 1)
        ).copy()
        run = Run()
        run.set("run_number", "0")
        return Chunk(
            spectra=self.spectra.copy(),
            run=run,
            histograms=Histograms(self.edges.copy(), counts, self.periods),
        )

    def run_status(self) -> RunStatus:
        return RunStatus.RUNNING

    def close(self) -> None:
        pass

    def state(self) -> dict:
        return {"connected": True, "address": "in-process", "extracts": self._k}
