"""Rebin, ConvertToMatrixWorkspace, CompressEvents.

Rebin: events stay events with new X (PreserveEvents) or are histogrammed straight into a fresh array by the
in-place kernel; histograms are truly rebinned: each old bin's counts and variances are shared among the new
bins in proportion to overlap (the rule Mantid documents), by a numba kernel that handles 2-D (per-spectrum)
edges, which scipp's rebin does not need to for us.
"""

from __future__ import annotations

import math

import numpy as np

from livereduce.algorithms._util import float_list, is_inplace, shared_events
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.jit import njit

_LAST_BIN_MIN = 0.25  # a final partial bin narrower than 25% of the step joins the previous bin (Mantid rule)


def edges_from_params(
    params, xmin: float | None = None, xmax: float | None = None, full_bins_only: bool = False
) -> np.ndarray:
    """Mantid Rebin parameters → bin edges.

    "x1,dx,x2[,dx2,x3...]": steps between boundaries; a negative step is logarithmic (x[i+1] = x[i]·(1+|dx|)).
    A single value "dx" uses the data range [xmin, xmax].
    """
    p = float_list(params, "Params")
    if len(p) == 1:
        if xmin is None or xmax is None or not (np.isfinite(xmin) and np.isfinite(xmax)):
            raise AlgorithmError("Rebin: a single-step Params needs data to take the range from")
        p = [xmin, p[0], xmax if xmax > xmin else xmin + abs(p[0])]
    if len(p) < 3 or len(p) % 2 == 0:
        raise AlgorithmError(f"Rebin: Params {params!r} must be 'x1,dx,x2[,dx2,x3...]' or a single step")
    out = [np.array([p[0]])]
    for k in range(1, len(p) - 1, 2):
        a, step, b = out[-1][-1], p[k], p[k + 1]
        if step == 0 or not b > a:
            raise AlgorithmError(f"Rebin: invalid segment {a},{step},{b}: need a non-zero step and x2 > x1")
        out.append(_segment(a, step, b, full_bins_only)[1:])
    return np.concatenate(out)


def _segment(a: float, step: float, b: float, full_bins_only: bool) -> np.ndarray:
    if step > 0:
        n = math.floor((b - a) / step * (1 + 1e-12))
        edges = a + step * np.arange(n + 1)
        width_next = step
    else:
        if a <= 0:
            raise AlgorithmError(f"Rebin: logarithmic binning needs x1 > 0, got {a}")
        r = 1.0 + abs(step)
        n = math.floor(math.log(b / a) / math.log(r) * (1 + 1e-12))
        edges = a * r ** np.arange(n + 1)
        width_next = edges[-1] * abs(step)
    rest = b - edges[-1]
    if abs(rest) <= 1e-9 * abs(width_next):
        edges[-1] = b
    elif not full_bins_only:
        if rest < _LAST_BIN_MIN * width_next and edges.size > 1:
            edges[-1] = b
        else:
            edges = np.append(edges, b)
    return edges


@njit(nogil=True)
def _rebin_rows(old, y, v, new, out_y, out_v):
    shared = old.shape[0] == 1
    nn = new.size - 1
    for r in range(y.shape[0]):
        xo = old[0] if shared else old[r]
        no = xo.size - 1
        i = 0
        j = 0
        while i < no and j < nn:
            lo = max(xo[i], new[j])
            hi = min(xo[i + 1], new[j + 1])
            w = xo[i + 1] - xo[i]
            if hi > lo and w > 0:
                f = (hi - lo) / w
                out_y[r, j] += y[r, i] * f
                out_v[r, j] += v[r, i] * f
            if xo[i + 1] < new[j + 1]:
                i += 1
            elif xo[i + 1] > new[j + 1]:
                j += 1
            else:
                i += 1
                j += 1


def rebin_arrays(values, variances, old_edges, new_edges):
    """Counts on old_edges (1-D shared or 2-D) → counts on 1-D new_edges, shared in proportion to overlap."""
    old = np.atleast_2d(np.asarray(old_edges, np.float64))
    new = np.ascontiguousarray(new_edges, np.float64)
    out_y = np.zeros((values.shape[0], new.size - 1))
    out_v = np.zeros_like(out_y)
    _rebin_rows(old, np.asarray(values, np.float64), np.asarray(variances, np.float64), new, out_y, out_v)
    return out_y, out_v


def events_to_histogram(ws: EventWorkspace, edges: np.ndarray) -> HistogramWorkspace:
    """Rebin(PreserveEvents=False): the histogram of the events on `edges`. With 1-D edges it is pending: an
    Add accumulation of the same binning histograms the events straight into its own arrays (no full-size
    table per chunk); any other reader resolves it to the same numbers (HistogramWorkspace.from_events)."""
    mon = ws.monitors.histogram() if isinstance(ws.monitors, EventWorkspace) else ws.monitors
    if edges.ndim != 1:
        out = ws.histogram(edges)
        out.monitors = mon
        return out
    # the events as they are now (views, x as stored): appending to the input later never reaches them
    ev = ws.events
    return HistogramWorkspace.from_events(
        ev.view(), edges, ws.spectra, ws.run_info.copy(), ws.x_unit.unit_id, mon
    )


def rebin(ws, params, preserve_events: bool = True, full_bins_only: bool = False, inplace: bool = False):
    """Rebin `ws` (events or histogram) to Mantid `params`; returns a new workspace unless `inplace`."""
    if isinstance(ws, EventWorkspace):
        xmin = xmax = None
        if len(float_list(params)) == 1:  # only a single step takes its range from the data
            if ws.getNumberEvents():  # the range ends just above the largest event so that it is counted
                xmin, xmax = ws.getTofMin(), float(np.nextafter(ws.getTofMax(), np.inf))
            else:
                e = ws.edges
                xmin, xmax = float(np.min(e)), float(np.max(e))
        edges = edges_from_params(params, xmin, xmax, full_bins_only)
        if not preserve_events:
            return events_to_histogram(ws, edges)
        if inplace:
            ws.edges = edges
            return ws
        return ws.with_events(shared_events(ws.events), edges=edges)
    if not isinstance(ws, HistogramWorkspace):
        raise AlgorithmError(f"Rebin: cannot rebin a {type(ws).__name__}")
    old = ws.edges
    edges = edges_from_params(params, float(np.min(old)), float(np.max(old)), full_bins_only)
    y, v = ws.values, ws.variances
    if ws.distribution:  # densities → counts, rebin, → densities
        w = np.diff(ws.edges_2d(), axis=1)
        y, v = y * w, v * w * w
    ny, nv = rebin_arrays(y, v, old, edges)
    if ws.distribution:
        w = np.diff(edges)
        ny, nv = ny / w, nv / (w * w)
    return ws.with_data(ny, nv, edges)


_IO = [Prop("InputWorkspace", kind=IN), Prop("OutputWorkspace", kind=OUT)]


@algorithm(
    "Rebin",
    [
        *_IO,
        Prop("Params"),
        Prop("PreserveEvents", True),
        Prop("FullBinsOnly", False),
        Prop("IgnoreBinErrors", False),
        Prop("UseReverseLogarithmic", False),
        Prop("Power", 0.0),
        Prop("BinningMode", "Default"),
    ],
)
def _rebin_alg(
    InputWorkspace,
    OutputWorkspace,
    Params,
    PreserveEvents,
    FullBinsOnly,
    IgnoreBinErrors,
    UseReverseLogarithmic,
    Power,
    BinningMode,
):
    """Rebin to Params 'x1,dx,x2' (negative dx: logarithmic; one value: step over the data range)."""
    if UseReverseLogarithmic or Power:
        raise AlgorithmError(
            "Rebin: UseReverseLogarithmic and Power are not supported by the embedded engine"
        )
    return rebin(
        InputWorkspace,
        Params,
        bool(PreserveEvents),
        bool(FullBinsOnly),
        inplace=is_inplace(InputWorkspace, OutputWorkspace),
    )


def to_histogram(ws):
    """ConvertToMatrixWorkspace: events → histogram with their current binning; histograms are cloned."""
    if isinstance(ws, EventWorkspace):
        return ws.histogram()
    return ws.clone()


@algorithm("ConvertToMatrixWorkspace", list(_IO))
def _convert_to_matrix(InputWorkspace, OutputWorkspace):
    """Events → histogram with the workspace's current X binning."""
    return to_histogram(InputWorkspace)


def compress_events(ws: EventWorkspace, tolerance: float = 0.01) -> EventWorkspace:
    """Merge events of one spectrum whose x fall in the same tolerance-wide cell into one weighted event.

    Cells are a fixed grid (x // tolerance, or log cells for a negative tolerance; tolerance 0 merges equal
    x only), so merged events are within `tolerance` of each other. The merged event sits at the weighted
    mean x, weighs the sum of weights (variance: the sum of variances) and keeps the earliest pulse: the total
    weight is preserved exactly.
    """
    if not isinstance(ws, EventWorkspace):
        raise AlgorithmError(f"CompressEvents: needs an event workspace, got {ws.id()}")
    ev = ws.events
    if len(ev) == 0:
        return ws.with_events(shared_events(ev))
    x = ev.x
    if tolerance > 0:
        cell = np.floor((x - x.min()) / tolerance).astype(np.int64)
    elif tolerance < 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            cell = np.floor(np.log(np.where(x > 0, x, np.nan)) / math.log1p(-tolerance))
        cell = np.where(np.isfinite(cell), cell, np.iinfo(np.int64).min).astype(np.int64)
    else:
        cell = np.unique(x, return_inverse=True)[1].astype(np.int64)
    order = np.lexsort((cell, ev.index))
    idx_s, cell_s = ev.index[order], cell[order]
    start = np.flatnonzero(np.r_[True, (idx_s[1:] != idx_s[:-1]) | (cell_s[1:] != cell_s[:-1])])
    w = np.ones(len(ev)) if ev.weights is None else ev.weights
    e2 = np.ones(len(ev)) if ev.err2 is None else ev.err2
    ws_ = np.add.reduceat(w[order], start)
    e2_ = np.add.reduceat(e2[order], start)
    cnt = np.add.reduceat(np.ones(len(ev)), start)
    xs = np.add.reduceat(x[order] * w[order], start)
    mean_x = np.where(ws_ != 0, xs / np.where(ws_ != 0, ws_, 1), np.add.reduceat(x[order], start) / cnt)
    if ev.pulse_start is None:
        pulse = np.minimum.reduceat(ev.pulse[order], start)
    else:  # run-length pulses never decrease, and the stable sort puts each cell's first arrival first
        pulse = ev.pulse_of(order[start])
    out = EventColumns(idx_s[start], mean_x, pulse, ev.pulse_times, ws_, e2_)
    return ws.with_events(out)


@algorithm(
    "CompressEvents",
    [
        *_IO,
        Prop("Tolerance", 0.01),
        Prop("WallClockTolerance", None),
        Prop("StartTime", ""),
        Prop("BinningMode", "Default"),
    ],
)
def _compress_alg(InputWorkspace, OutputWorkspace, Tolerance, WallClockTolerance, StartTime, BinningMode):
    """Merge events closer than Tolerance (x units, default 0.01 µs) into weighted events; counts are kept."""
    if WallClockTolerance is not None:
        raise AlgorithmError("CompressEvents: WallClockTolerance is not supported by the embedded engine")
    return compress_events(InputWorkspace, float(Tolerance))
