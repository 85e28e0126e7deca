"""The Listener contract and the parts every listener shares.

A listener turns a DAS stream into `Chunk`s. Its receive thread only touches its own buffer; `extract()` swaps
the buffer out under a lock and returns everything received since the previous extract. Buffered events cost
8 bytes each (uint32 spectrum index + float32 TOF); pulse times are kept per pulse, not per event.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from livereduce.workspace.events import RESERVE, grown
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra


class RunStatus(enum.IntEnum):
    """Mantid's ILiveListener::RunStatus. BEGIN_RUN / END_RUN mean 'happened since the previous extract'."""

    NO_RUN = 0
    BEGIN_RUN = 1
    RUNNING = 2
    END_RUN = 4


@dataclass(frozen=True)
class StartFrom:
    """Where the stream should start: now, the start of the current run, or an absolute time (ns, Unix)."""

    mode: str = "start_of_run"  # "now" | "start_of_run" | "time"
    time_ns: int = 0

    def __post_init__(self):
        if self.mode not in ("now", "start_of_run", "time"):
            raise ValueError(f"start mode must be now, start_of_run or time, not {self.mode!r}")


@dataclass(eq=False)
class ChunkEvents:
    """Columnar events of one chunk."""

    index: np.ndarray  # uint32 [n] workspace index (into the chunk's Spectra)
    tof: np.ndarray  # float32 [n] time of flight, µs
    pulse_time: np.ndarray  # int64 [p] ns since Unix epoch, one per pulse
    pulse_start: np.ndarray  # int64 [p] index of each pulse's first event (non-decreasing)

    @classmethod
    def empty(cls) -> ChunkEvents:
        return cls(
            np.empty(0, np.uint32), np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0, np.int64)
        )

    def __len__(self) -> int:
        return int(self.index.size)


@dataclass(eq=False)
class Histograms:
    """Histogram data of one chunk (ISIS DAE): cumulative counts since the run started."""

    edges: np.ndarray  # float64 [nbins+1] TOF bin edges, µs, shared by all spectra
    counts: np.ndarray  # float64 [nperiods, nspec, nbins]
    periods: tuple[int, ...] = (1,)  # period numbers (1-based) of counts' first axis


@dataclass(eq=False)
class Chunk:
    """Everything a listener received since the previous extract."""

    spectra: Spectra
    run: Run = field(default_factory=Run)
    events: ChunkEvents | None = None
    histograms: Histograms | None = None
    monitors: Chunk | None = None

    @property
    def n_events(self) -> int:
        return len(self.events) if self.events is not None else 0


@runtime_checkable
class Listener(Protocol):
    """What the session needs from a DAS connection (Mantid's ILiveListener, pythonic)."""

    buffers_events: bool  # True: chunks hold new events (Add makes sense); False: cumulative histograms

    def start(self, start: StartFrom) -> None: ...
    def extract(self) -> Chunk: ...  # raises NotYet until the stream is initialised
    def run_status(self) -> RunStatus: ...  # call after extract; edges reported once
    @property
    def run_number(self) -> int: ...
    def data_reset(self) -> bool: ...  # read-and-clear; read before extract
    def close(self) -> None: ...
    def state(self) -> dict: ...  # connected, address, reconnects, bytes, errors: for status


MAX_BUFFERED_EVENTS = 200_000_000  # default cap: 1.6 GB of buffered events (8 bytes each)


class EventBuffer:
    """Thread-safe growable columnar event buffer: the receive thread appends, extract() swaps it out.

    Growth is by doubling, so appending is amortised O(events); swap is O(1) plus trimming copies.

    Bounded: when the session falls behind and `max_events` are waiting, a pulse that does not fit is dropped
    whole and counted (`dropped`) instead of growing memory without end (the documented policy: the run goes
    on, its accumulation misses those pulses, and the status page, metrics and log say how many). `lag` says
    how far behind the session is: events waiting and the age of the oldest waiting pulse.
    """

    def __init__(self, capacity: int = 1 << 16, max_events: int = MAX_BUFFERED_EVENTS):
        self._lock = threading.Lock()
        self._capacity = min(capacity, max(int(max_events), 1))
        self.max_events = int(max_events)
        self.dropped = 0  # events of pulses dropped because the buffer was full
        self.dropped_pulses = 0
        self._pool = None  # a SharedEventPool once shared (livereduce.shared_events)
        self._index: np.ndarray
        self._tof: np.ndarray
        self._new()

    def share(self, pool) -> None:
        """Keep the columns in `pool`'s shared memory, so a worker process reads chunks where they were
        written (livereduce.shared_events); from now on when nothing is buffered, else from the next chunk."""
        with self._lock:
            self._pool = pool
            if self._n == 0:
                self._new()

    def _new(self) -> None:
        # start the next chunk at the size the last one reached, so steady streams never regrow
        self._capacity = max(self._capacity, getattr(self, "_n", 0))
        # a shared segment is sized to the bound at once: its pages are made once and reused by later chunks
        shared = self._pool.columns(min(self.max_events, RESERVE)) if self._pool is not None else None
        self._shared = shared is not None
        if shared is not None:
            self._index, self._tof = shared
        else:
            self._index = np.empty(self._capacity, np.uint32)
            self._tof = np.empty(self._capacity, np.float32)
        self._n = 0
        self._pulse_time: list[int] = []
        self._pulse_start: list[int] = []

    def _grow(self, need: int) -> None:
        # doubling stops at the cap: a full buffer must not hold up to twice the memory it is allowed
        self._index, self._tof = grown([self._index, self._tof], self._n, need, self.max_events)
        self._shared = False  # grown into private memory

    def add_pulse(self, pulse_time_ns: int, index: np.ndarray, tof_us: np.ndarray) -> bool:
        """Append one pulse's events (`index` and `tof_us` may be views into a receive buffer); False when the
        buffer is full and the pulse was dropped (counted)."""

        def fill(index_rows: np.ndarray, tof_rows: np.ndarray) -> None:
            index_rows[:] = index
            tof_rows[:] = tof_us

        return self.add_pulse_with(pulse_time_ns, index.size, fill)

    def add_pulse_with(
        self, pulse_time_ns: int, n: int, fill: Callable[[np.ndarray, np.ndarray], None]
    ) -> bool:
        """Append one pulse of `n` events that `fill(index_rows, tof_rows)` writes straight into the buffer's
        next rows (a decoder then makes no columns of its own first); False when the pulse was dropped."""
        with self._lock:
            if self._n + n > self.max_events and n:
                self.dropped += n
                self.dropped_pulses += 1
                return False
            if self._n + n > self._index.size:
                self._grow(self._n + n)
            fill(self._index[self._n : self._n + n], self._tof[self._n : self._n + n])
            if not self._pulse_time or self._pulse_time[-1] != pulse_time_ns:
                self._pulse_time.append(int(pulse_time_ns))
                self._pulse_start.append(self._n)
            self._n += n
        return True

    def __len__(self) -> int:
        return self._n

    def lag(self, now_ns: int | None = None) -> tuple[int, float]:
        """(events waiting, seconds since the oldest waiting pulse): how far the session is behind."""
        with self._lock:
            oldest = self._pulse_time[0] if self._pulse_time else None
            n = self._n
        if oldest is None:
            return n, 0.0
        now = time.time_ns() if now_ns is None else now_ns
        return n, max(0.0, (now - oldest) / 1e9)

    def swap(self) -> ChunkEvents:
        """Everything buffered so far, as Events; the buffer starts empty again."""
        with self._lock:
            n, index, tof, shared = self._n, self._index, self._tof, self._shared
            times, starts = self._pulse_time, self._pulse_start
            self._new()
        trim = not shared and n < index.size // 2  # a shared segment is reused, not freed: no trimming copy
        if shared and self._pool is not None:
            self._pool.filled(index, n)
        return ChunkEvents(
            index[:n].copy() if trim else index[:n],
            tof[:n].copy() if trim else tof[:n],
            np.asarray(times, np.int64),
            np.asarray(starts, np.int64),
        )


def buffer_state(buffer: EventBuffer) -> dict:
    """A listener's `state()` entries for its event buffer: what the status page and metrics show as lag."""
    waiting, seconds = buffer.lag()
    return {
        "buffered_events": waiting,
        "lag_seconds": round(seconds, 3),
        "events_dropped_buffer_full": buffer.dropped,
    }


def say_buffer_drops(buffer: EventBuffer, said: int, logger) -> int:
    """Log the pulses a full buffer dropped since the last call (at extract: once a cycle at most); returns
    the count said so far, for the next call."""
    dropped = buffer.dropped
    if dropped > said:
        logger.error(
            "the session is falling behind the stream: the listener's buffer was full (max_buffered_events=%d), "
            "so %d events were dropped since the last cycle (%d in all); see the lag on the status page",
            buffer.max_events,
            dropped - said,
            dropped,
        )
    return dropped


class RunTracker:
    """Run state as the session sees it: transitions are latched at extract and reported once.

    The receive thread calls `begin_run` / `end_run`; `extract()` calls `latch()`; `run_status()` returns the
    latched value. So BEGIN_RUN / END_RUN appear exactly once, after the extract that closed the old state.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = RunStatus.NO_RUN
        self._pending: RunStatus | None = None
        self._latched = RunStatus.NO_RUN
        self.run_number = 0

    def begin_run(self, run_number: int) -> None:
        with self._lock:
            self.run_number = run_number
            self._state = RunStatus.RUNNING
            self._pending = RunStatus.END_RUN if self._pending == RunStatus.END_RUN else RunStatus.BEGIN_RUN

    def end_run(self) -> None:
        with self._lock:
            self._state = RunStatus.NO_RUN
            self._pending = RunStatus.END_RUN

    def running(self, run_number: int) -> None:
        """Joined a run already in progress: no edge, just state."""
        with self._lock:
            self.run_number = run_number
            self._state = RunStatus.RUNNING

    def latch(self) -> None:
        with self._lock:
            self._latched = self._pending if self._pending is not None else self._state
            self._pending = None

    def status(self) -> RunStatus:
        return self._latched


class RunStateMixin:
    """The contract's run_number, run_status and data_reset, for listeners that keep a RunTracker
    (`_tracker`) and a reset flag (`_reset`, guarded by `_lock`) written by their receive thread."""

    _tracker: RunTracker
    _lock: threading.Lock
    _reset: bool

    @property
    def run_number(self) -> int:
        return self._tracker.run_number

    def run_status(self) -> RunStatus:
        return self._tracker.status()

    def data_reset(self) -> bool:
        with self._lock:
            reset, self._reset = self._reset, False
        return reset
