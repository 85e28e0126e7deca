"""EventWorkspace: per-spectrum events, stored columnar.

Events of all spectra live in growable columns (workspace index, x; pulses run-length where they can be)
with capacity doubling, so Add accumulation appends in amortised O(chunk), never O(total). The per-spectrum
view Mantid scripts ask for (`getSpectrum(i).getTofs()`) is a stable sort by index, computed on demand and
cached until the next change. The x column is TOF in µs until ConvertUnits changes the unit; pulse times are
a per-pulse table.
"""

from __future__ import annotations

import typing

import numpy as np

from livereduce.workspace.base import MatrixWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.histogram_kernels import histogram_into
from livereduce.workspace.jit import njit
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra

_KEEP: typing.Any = object()  # EventColumns.replaced: this column as it is
RESERVE = 1 << 28  # rows a bounded buffer may reserve at once (2 GiB of virtual memory at 8 bytes a row)


def grown(columns: list[np.ndarray], used: int, need: int, limit: int | None = None) -> list[np.ndarray]:
    """Columns with room for `need` rows, their first `used` rows kept: capacity at least doubles, so appending
    is amortised O(rows) (listener buffers and event workspaces both grow this way).

    A bounded buffer (`limit`: the listener's max_buffered_events) reserves its whole bound at once, up to
    RESERVE rows: pages never written cost no memory, and it then never grows again, where each doubling
    copied everything into fresh pages with the receive thread waiting (1.4×10^8 events: 0.6 s against 0.1 s,
    benchmarks/bench_buffer_bytes.py)."""
    capacity = max(need, 2 * columns[0].size, 1024)
    if limit is not None:
        capacity = max(need, min(max(capacity, RESERVE), limit))
    out = []
    for old in columns:
        new = np.empty(capacity, old.dtype)
        new[:used] = old[:used]
        out.append(new)
    return out


@njit(nogil=True)
def _counting_order(index, nspec):  # pragma: no cover - compiled
    offsets = np.zeros(nspec + 1, np.int64)
    for i in range(index.size):
        offsets[index[i] + 1] += 1
    for k in range(nspec):
        offsets[k + 1] += offsets[k]
    fill = offsets[:-1].copy()
    order = np.empty(index.size, np.int64)
    for i in range(index.size):
        k = index[i]
        order[fill[k]] = i
        fill[k] += 1
    return order, offsets


def group_by_spectrum(index: np.ndarray, nspec: int) -> tuple[np.ndarray, np.ndarray]:
    """(event order grouped by spectrum, arrival order kept within one; offsets [nspec+1]): a stable counting
    sort, one pass each way (an argsort costs ~1 s per 10^7 events, this ~0.05 s). Every index must be below
    `nspec` (callers check, or know it)."""
    return _counting_order(np.ascontiguousarray(index), nspec)


@njit(nogil=True)
def _nondecreasing_below(pulse, limit):  # pragma: no cover - compiled
    for i in range(1, pulse.size):
        if pulse[i] < pulse[i - 1]:
            return False
    return pulse.size == 0 or pulse[pulse.size - 1] < limit


def pulse_runs(pulse: np.ndarray, n_pulses: int) -> np.ndarray | None:
    """A per-event pulse column as run lengths (each pulse's first event, as `pulse_start`), or None when it
    is not non-decreasing (below `n_pulses`): one pass, stopping at the first decrease."""
    pulse = np.ascontiguousarray(pulse)
    if not _nondecreasing_below(pulse, n_pulses):
        return None
    return np.searchsorted(pulse, np.arange(n_pulses, dtype=pulse.dtype), side="left").astype(np.int64)


def _starts(pulse_start, n: int) -> np.ndarray:
    """pulse_start as int64, each pulse's first event: non-decreasing within [0, n] and 0 first (events before
    the first given start belong to the first pulse). Well-formed input (listeners') is used as it is."""
    ps = np.asarray(pulse_start, np.int64)
    if ps.size and (ps[0] != 0 or ps[-1] > n or np.any(ps[1:] < ps[:-1])):
        ps = np.clip(np.maximum.accumulate(ps), 0, n)
        ps[0] = 0
    return ps


def _spell(pulse_start: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """values[pulse] for every event of run-length pulses (`values`: one entry per pulse)."""
    return np.repeat(values, np.diff(pulse_start, append=n))


class EventColumns:
    """Growable columns: index uint32, x float64, pulse uint32 (into pulse_times), optional weights.

    x given as float32 (TOF as the listeners deliver it) stays float32 until something reads `x`, which is
    float64 (converted once, exactly); the histogram kernels read `x_native` and never convert, so a chunk
    Rebin histograms into an accumulation costs no float64 copy and buffered events 4 bytes less each.

    Pulses are kept run-length where they can be: each pulse's first event (`pulse_start`, one int64 per
    pulse, as listeners deliver them), since events arrive pulse by pulse. Appending (Add accumulation),
    copying, pickling, slicing and filtering keep them so; each event's pulse number (`pulse`) is spelled out
    only when read, and cached until the next append. Given as a per-event column (`pulse`), they stay a
    column, until an append finds them non-decreasing (one pass, once) and makes them runs. Buffered events
    thus cost 8 bytes each (index, float32 TOF), not 12."""

    def __init__(self, index, x, pulse=None, pulse_times=None, weights=None, err2=None, pulse_start=None):
        n = np.asarray(index).size
        self._n = n
        self._index = np.ascontiguousarray(index, dtype=np.uint32)
        x = np.asarray(x)
        self._x = np.ascontiguousarray(x, dtype=np.float32 if x.dtype == np.float32 else np.float64)
        self._pulse_times = (
            np.zeros(1, np.int64) if pulse_times is None else np.atleast_1d(np.asarray(pulse_times, np.int64))
        )
        self._n_pulses = self._pulse_times.size
        p = self._n_pulses
        # pulses as a column (capacity like the other columns), or as runs (capacity like pulse_times); the
        # runs spelled out are cached in _spelled until the next append
        self._pulse: np.ndarray | None = None
        self._pulse_start: np.ndarray | None = None
        self._spelled: np.ndarray | None = None
        self._tried_runs = False  # a column found not non-decreasing once is not looked at again
        if pulse is not None:
            self._pulse = np.ascontiguousarray(pulse, dtype=np.uint32)
        elif p == 0 and n:  # no pulse to point at: pulse 0 of an empty table, as before
            self._pulse = np.zeros(n, np.uint32)
        elif pulse_start is None:  # every event in the first pulse
            self._pulse_start = np.full(p, n, np.int64)
            self._pulse_start[:1] = 0
        elif np.size(pulse_start) == p:
            self._pulse_start = _starts(pulse_start, n)
        else:  # not one start per pulse: spelled out as given, as before
            counts = np.diff(np.append(np.asarray(pulse_start, np.int64), n))
            self._pulse = np.repeat(np.arange(counts.size, dtype=np.uint32), counts)
        self._w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
        self._e2 = (
            None if weights is None else np.ascontiguousarray(weights if err2 is None else err2, np.float64)
        )

    def __reduce__(self):
        """Pickled (worker pipe, checkpoints) as its rows only, not the columns' spare capacity; run-length
        pulses stay runs."""
        runs = self.pulse_start
        return (
            EventColumns,
            (
                self.index,
                self.x_native,
                self.pulse if runs is None else None,
                self.pulse_times,
                self.weights,
                self.err2,
                runs,
            ),
        )

    @classmethod
    def empty(cls) -> EventColumns:
        return cls(np.empty(0, np.uint32), np.empty(0))

    def __len__(self) -> int:
        return self._n

    @property
    def index(self) -> np.ndarray:
        return self._index[: self._n]

    @property
    def x(self) -> np.ndarray:
        if self._x.dtype != np.float64:  # every reader of x gets float64, as before
            wide = np.empty(self._x.size, np.float64)  # the same capacity; only the filled rows converted
            wide[: self._n] = self._x[: self._n]  # (the spare rows are uninitialised: casting them can warn)
            self._x = wide
        return self._x[: self._n]

    @property
    def x_native(self) -> np.ndarray:
        """x as stored: float32 or float64 (for kernels, which take either)."""
        return self._x[: self._n]

    @property
    def weights(self) -> np.ndarray | None:
        return None if self._w is None else self._w[: self._n]

    @property
    def err2(self) -> np.ndarray | None:
        return None if self._e2 is None else self._e2[: self._n]

    @property
    def pulse_times(self) -> np.ndarray:
        """The per-pulse table `pulse` indexes (ns); grows like the columns, so appending a chunk's pulses
        never copies the whole run's."""
        return self._pulse_times[: self._n_pulses]

    @property
    def pulse_start(self) -> np.ndarray | None:
        """Each pulse's first event (int64, one per entry of pulse_times, non-decreasing; a pulse without
        events starts where the next does), or None when the pulses are kept as a per-event column."""
        return None if self._pulse_start is None else self._pulse_start[: self._n_pulses]

    @property
    def pulse(self) -> np.ndarray:
        """Each event's pulse number (uint32, into pulse_times)."""
        if self._pulse is not None:
            return self._pulse[: self._n]
        if self._spelled is None or self._spelled.size != self._n:
            self._spelled = self.pulse_values(np.arange(self._n_pulses, dtype=np.uint32))
        return self._spelled

    def pulse_values(self, per_pulse: np.ndarray) -> np.ndarray:
        """per_pulse[pulse] for every event (`per_pulse`: one value per entry of pulse_times), without
        spelling out the pulse column when the pulses are runs."""
        runs = self.pulse_start
        if runs is None:
            return np.asarray(per_pulse)[self.pulse]
        return _spell(runs, np.asarray(per_pulse), self._n)

    def used_pulses(self) -> np.ndarray:
        """The pulse numbers that have events, ascending."""
        runs = self.pulse_start
        if runs is None:
            return np.unique(self.pulse)
        return np.flatnonzero(np.diff(runs, append=self._n) > 0)

    def pulse_of(self, rows: np.ndarray) -> np.ndarray:
        """The pulse numbers (uint32) of the events at `rows` (non-negative positions)."""
        runs = self.pulse_start
        if runs is None:
            return self.pulse[rows]
        return (np.searchsorted(runs, rows, side="right") - 1).astype(np.uint32)

    def view(self) -> EventColumns:
        """These events as they are now, sharing the columns (O(1), nothing spelled out): appending to either
        side later never shows in the other."""
        return self.replaced()

    def replaced(self, *, index=None, x=None, weights=_KEEP, err2=_KEEP) -> EventColumns:
        """The same events, in the same order and pulses, with the columns given replaced (the others shared):
        what an algorithm that changes x, indices or weights returns. Pulses kept as runs stay runs."""
        runs = self.pulse_start
        return EventColumns(
            self.index if index is None else index,
            self.x_native if x is None else x,
            self.pulse if runs is None else None,
            self.pulse_times,
            self.weights if weights is _KEEP else weights,
            self.err2 if err2 is _KEEP else err2,
            pulse_start=runs,
        )

    def pulse_time(self) -> np.ndarray:
        return self.pulse_values(self.pulse_times)

    def _as_runs(self) -> bool:
        """Pulses kept as runs, made so from a non-decreasing column (looked at once); False: a column."""
        if self._pulse_start is None and not self._tried_runs:
            self._tried_runs = True
            runs = pulse_runs(self.pulse, self._n_pulses)
            if runs is not None:
                self._pulse_start, self._pulse, self._spelled = runs, None, None
        return self._pulse_start is not None

    def _as_column(self) -> None:
        """Pulses spelled out as a column with the other columns' capacity (an append of pulses that are not
        runs)."""
        if self._pulse is None:
            column = np.empty(self._index.size, np.uint32)
            column[: self._n] = self.pulse
            self._pulse, self._pulse_start, self._spelled = column, None, None

    def _reserve(self, need: int) -> None:
        if need > self._index.size:
            if self._pulse is None:
                self._index, self._x = grown([self._index, self._x], self._n, need)
            else:
                self._index, self._x, self._pulse = grown([self._index, self._x, self._pulse], self._n, need)
            if self._w is not None and self._e2 is not None:
                self._w, self._e2 = grown([self._w, self._e2], self._n, need)

    def append(self, other: EventColumns, index_offset: int = 0) -> None:
        """Append another set of events (amortised O(len(other))). Pulses stay runs when both sides' are (an
        appended pulse column is made runs when it is non-decreasing); the other's pulses are new entries of
        pulse_times, even when the first has the same time as our last (a pulse continued), as before."""
        m = len(other)
        if m == 0:
            return
        if self._w is None and other._w is not None:  # mixing: the plain events become weight 1, variance 1
            self._w = np.ones(self._index.size)
            self._e2 = np.ones(self._index.size)
        if other._w is None and self._w is not None:
            other = other.copy()
            other._w, other._e2 = np.ones(m), np.ones(m)
        if self._x.dtype != other._x.dtype:
            self.x  # noqa: B018  # float32 joined by float64: all float64
        n, p, q = self._n, self._n_pulses, other._n_pulses
        runs = other.pulse_start
        if runs is None and (self._pulse_start is not None or not self._tried_runs):
            runs = pulse_runs(other.pulse, q)  # (not kept in `other`: it may be read again as it is)
        if runs is None or not self._as_runs():
            self._as_column()
        self._reserve(n + m)
        s = slice(n, n + m)
        self._index[s] = other.index + np.uint32(index_offset) if index_offset else other.index
        self._x[s] = other.x_native
        if self._pulse_start is not None and runs is not None:
            if p + q > self._pulse_start.size:
                (self._pulse_start,) = grown([self._pulse_start], p, p + q)
            self._pulse_start[p : p + q] = runs + n
            self._spelled = None
        else:
            typing.cast(np.ndarray, self._pulse)[s] = other.pulse + np.uint32(p)
        if self._w is not None:
            self._w[s] = other.weights
            self._e2[s] = other.err2
        if p + q > self._pulse_times.size:
            (self._pulse_times,) = grown([self._pulse_times], p, p + q)
        self._pulse_times[p : p + q] = other.pulse_times
        self._n_pulses = p + q
        self._n += m

    def _runs_taken(self, mask_or_idx) -> np.ndarray | None:
        """The runs of the events `mask_or_idx` selects (a boolean mask, a slice of step 1, or ascending
        positions), or None where the selection may reorder events."""
        runs, n = self.pulse_start, self._n
        if runs is None:
            return None
        if isinstance(mask_or_idx, slice):
            a, b, step = mask_or_idx.indices(n)
            if step != 1:
                return None
            return np.clip(runs - a, 0, max(b - a, 0))
        sel = np.asarray(mask_or_idx)
        if sel.dtype == np.bool_ and sel.shape == (n,):
            kept = np.zeros(runs.size, np.int64)  # each pulse's events kept
            nonempty = np.flatnonzero(np.diff(runs, append=n) > 0)
            if nonempty.size:
                kept[nonempty] = np.add.reduceat(sel, runs[nonempty], dtype=np.int64)
            return np.concatenate([[0], np.cumsum(kept[:-1])]).astype(np.int64) if runs.size else runs
        if sel.dtype.kind in "iu" and sel.ndim == 1:
            if sel.size and (sel[0] < 0 or np.any(sel[1:] < sel[:-1])):
                return None
            return np.searchsorted(sel, runs, side="left").astype(np.int64)
        return None

    def take(self, mask_or_idx) -> EventColumns:
        w, e2 = self.weights, self.err2
        index = self.index[mask_or_idx]
        runs = self._runs_taken(mask_or_idx) if index.ndim == 1 else None
        return EventColumns(
            index,
            self.x_native[mask_or_idx],
            self.pulse[mask_or_idx] if runs is None else None,
            self.pulse_times,
            None if w is None else w[mask_or_idx],
            None if e2 is None else e2[mask_or_idx],
            pulse_start=runs,
        )

    def copy(self) -> EventColumns:
        w, e2 = self.weights, self.err2
        runs = self.pulse_start
        return EventColumns(
            self.index.copy(),
            self.x_native.copy(),
            self.pulse.copy() if runs is None else None,
            self.pulse_times.copy(),
            None if w is None else w.copy(),
            None if e2 is None else e2.copy(),
            pulse_start=None if runs is None else runs.copy(),
        )

    def nbytes(self) -> int:
        columns = (self._index, self._x, self._pulse, self._pulse_start, self._spelled, self._w, self._e2)
        return sum(a.nbytes for a in columns if a is not None)


def default_edges(x: np.ndarray, x_range: tuple[float, float] | None = None) -> np.ndarray:
    """One bin spanning all events (Mantid's default event binning), widened so the largest event counts.

    Only finite values count: a NaN or infinite x can never make the bin [nan, nan] or infinitely wide (such
    events fall outside it). No finite values: [0, 1]. `x_range`: (np.min(x), np.max(x)) when the caller
    has them already (no pass over x then, unless one is not finite)."""
    x = np.asarray(x)
    if x.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = (float(np.min(x)), float(np.max(x))) if x_range is None else x_range
    if not (np.isfinite(lo) and np.isfinite(hi)):  # NaN or ±inf somewhere: look at the finite ones only
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            return np.array([0.0, 1.0])
        lo, hi = float(np.min(finite)), float(np.max(finite))
    top = np.nextafter(hi, np.inf) if hi > lo else lo + max(1.0, abs(lo) * 1e-12)
    if not np.isfinite(top):  # hi is the largest float
        top = hi
    return np.array([lo, top])


class EventWorkspace(MatrixWorkspace):
    def __init__(
        self,
        spectra: Spectra,
        events: EventColumns,
        edges=None,
        run: Run | None = None,
        unit_id: str = "TOF",
        monitors: MatrixWorkspace | None = None,
    ):
        super().__init__(spectra, run, unit_id, monitors)
        self.events = events
        # default edges are made when first read (a chunk that Rebin bins with its own Params, or that is
        # histogrammed into an accumulator's bins, never pays the passes over its events); until then, the
        # events they must span: those given here, whatever is appended later
        self._edges: np.ndarray | tuple[EventColumns, int] = (
            (events, len(events)) if edges is None else np.asarray(edges, dtype=np.float64)
        )
        self._range: tuple[EventColumns, int, float, float] | None = None
        self._order: np.ndarray | None = None
        self._order_n = -1

    @property
    def edges(self) -> np.ndarray:
        if isinstance(self._edges, tuple):
            events, n = self._edges
            if events is self.events and n == len(events):
                self._edges = default_edges(events.x_native, self._x_range())
            else:  # events appended or replaced since: appending never changes the first n
                self._edges = default_edges(events.x_native[:n])
        return self._edges

    @edges.setter
    def edges(self, edges: np.ndarray) -> None:
        self._edges = edges

    def _x_range(self) -> tuple[float, float]:
        """(np.min, np.max) of the events' x (0, 0 for none), computed once per events object and length:
        Rebin asks for both, and default edges need them too."""
        ev, c = self.events, self._range
        if c is None or c[0] is not ev or c[1] != len(ev):
            x = ev.x_native
            c = self._range = (ev, len(ev), *((float(x.min()), float(x.max())) if len(ev) else (0.0, 0.0)))
        return c[2], c[3]

    def id(self) -> str:
        return "EventWorkspace"

    # -- events -----------------------------------------------------------------------------
    def getNumberEvents(self) -> int:
        return len(self.events)

    def getTofMin(self) -> float:
        return self._x_range()[0]

    def getTofMax(self) -> float:
        return self._x_range()[1]

    def getEventType(self) -> str:
        return "TOF" if self.events.weights is None else "WEIGHTED"

    def drop_oldest(self, n: int) -> None:
        """Forget the first n events (the oldest: events are kept in arrival order)."""
        if n > 0:
            self.edges  # noqa: B018  # the default binning, made before the events change
            self.events = self.events.take(slice(min(n, len(self.events)), None)).copy()
            self._order = None

    def add_events(self, other: EventWorkspace) -> None:
        """Add accumulation: concatenate event lists spectrum by spectrum (same spectra required)."""
        if not self.spectra.same_layout(other.spectra):
            raise ValueError(
                f"cannot add events of {other.getNumberHistograms()} spectra to "
                f"{self.getNumberHistograms()} spectra with a different layout"
            )
        self.edges  # noqa: B018  # the default binning, made before the events change
        self.events.append(other.events)
        self._order = None

    def _sorted(self) -> np.ndarray:
        if self._order is None or self._order_n != len(self.events):
            self._order = np.argsort(self.events.index, kind="stable")
            self._order_n = len(self.events)
            self._bounds = np.searchsorted(
                self.events.index[self._order], np.arange(self.getNumberHistograms() + 1)
            )
        return self._order

    def _spectrum_events(self, i: int):
        self._check_index(i)
        order = self._sorted()
        sel = order[self._bounds[i] : self._bounds[i + 1]]
        w = self.events.weights
        return (self.events.x[sel], self.events.pulse_time()[sel], np.ones(sel.size) if w is None else w[sel])

    # -- histogram view ---------------------------------------------------------------------
    def blocksize(self) -> int:
        return int(self.edges.shape[-1] - 1)

    def readX(self, i: int) -> np.ndarray:
        self._check_index(i)
        return self.edges[i] if self.edges.ndim == 2 else self.edges

    dataX = readX

    def histogram(self, edges=None) -> HistogramWorkspace:
        """A histogram workspace of these events with `edges` (default: the workspace's own binning)."""
        edges = self.edges if edges is None else np.asarray(edges, dtype=np.float64)
        out = HistogramWorkspace.zeros(
            self.spectra, edges, run=self.run_info.copy(), unit_id=self.x_unit.unit_id
        )
        out.events_outside_bins = self.histogram_into(out)
        if self.monitors is not None:
            out.monitors = (
                self.monitors.histogram() if isinstance(self.monitors, EventWorkspace) else self.monitors
            )
        return out

    def histogram_into(self, target: HistogramWorkspace) -> int:
        """Add these events into `target`'s bins in place (the accumulator path). Returns events missed."""
        if target.getNumberHistograms() != self.getNumberHistograms():
            raise ValueError("histogram_into: spectra differ between events and target")
        ev = self.events
        return histogram_into(
            target.values, target.variances, ev.index, ev.x_native, target.edges, ev.weights, ev.err2
        )

    def readY(self, i: int) -> np.ndarray:
        x, _, w = self._spectrum_events(i)
        return np.histogram(x, bins=self.readX(i), weights=w)[0].astype(np.float64)

    def readE(self, i: int) -> np.ndarray:
        x, _, _ = self._spectrum_events(i)
        e2 = self.events.err2
        if e2 is None:
            return np.sqrt(np.histogram(x, bins=self.readX(i))[0].astype(np.float64))
        sel = self._sorted()[self._bounds[i] : self._bounds[i + 1]]
        return np.sqrt(np.histogram(x, bins=self.readX(i), weights=e2[sel])[0])

    dataY = readY
    dataE = readE

    def extractX(self) -> np.ndarray:
        e = self.edges
        return (e if e.ndim == 2 else np.broadcast_to(e, (self.getNumberHistograms(), e.size))).copy()

    def extractY(self) -> np.ndarray:
        return self.histogram().values.copy()

    def extractE(self) -> np.ndarray:
        return np.sqrt(self.histogram().variances)

    def nbytes(self) -> int:
        return self.events.nbytes() + self.edges.nbytes

    def clone(self) -> EventWorkspace:
        mon = self.monitors.clone() if self.monitors is not None else None
        return EventWorkspace(
            self.spectra.copy(),
            self.events.copy(),
            self.edges.copy(),
            self.run_info.copy(),
            self.x_unit.unit_id,
            mon,
        )

    def with_events(
        self, events: EventColumns, edges=None, spectra: Spectra | None = None, unit_id: str | None = None
    ) -> EventWorkspace:
        return EventWorkspace(
            self.spectra if spectra is None else spectra,
            events,
            self.edges if edges is None else edges,
            self.run_info.copy(),
            self.x_unit.unit_id if unit_id is None else unit_id,
            self.monitors,
        )
