"""SumSpectra, Integration, CropWorkspace, ExtractSpectra: selecting and combining spectra and x ranges."""

from __future__ import annotations

import numpy as np

from livereduce.algorithms._util import grouped_spectra, index_range, int_list, remap_events, require_matrix
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace, row_blocks

_IO = [Prop("InputWorkspace", kind=IN), Prop("OutputWorkspace", kind=OUT)]


def sum_spectra(ws, indices: np.ndarray):
    """One spectrum: the sum of the given workspace indices. Its number is the first summed spectrum's
    (Mantid), its detectors all of theirs, its geometry their mean. Events stay events."""
    require_matrix(ws, "SumSpectra")
    spectra = grouped_spectra(ws.spectra, [indices], [ws.spectra.numbers[indices[0]]])
    if isinstance(ws, EventWorkspace):
        new_index = np.full(ws.getNumberHistograms(), -1, np.int64)
        new_index[indices] = 0
        edges = ws.edges if ws.edges.ndim == 1 else ws.edges[indices[0]]
        return ws.with_events(remap_events(ws.events, new_index), edges=edges, spectra=spectra)
    e = ws.edges
    if e.ndim == 2:
        if not np.array_equal(e[indices], np.broadcast_to(e[indices[0]], (indices.size, e.shape[1]))):
            raise AlgorithmError(
                "SumSpectra: the spectra have different bin edges; Rebin them to common edges first"
            )
        e = e[indices[0]]
    # summed a block of rows at a time: no temporary the size of the input (a 10^8-bin accumulation)
    y, v = np.zeros((1, ws.blocksize())), np.zeros((1, ws.blocksize()))
    for rows in row_blocks(indices, ws.values.shape[1] * 8):
        y += ws.values[rows].sum(axis=0)
        v += ws.variances[rows].sum(axis=0)
    return ws.with_data(y, v, e, spectra)


@algorithm(
    "SumSpectra",
    [
        *_IO,
        Prop("StartWorkspaceIndex", 0),
        Prop("EndWorkspaceIndex", None),
        Prop("IncludeMonitors", True),
        Prop("WeightedSum", False),
        Prop("RecalculateEventWorkspace", True),
        Prop("UseFractionalArea", True),
        Prop("ListOfWorkspaceIndices", None),
        Prop("RemoveSpecialValues", False),
        Prop("MultiplyBySpectra", True),
    ],
)
def _sum_spectra_alg(
    InputWorkspace,
    OutputWorkspace,
    StartWorkspaceIndex,
    EndWorkspaceIndex,
    IncludeMonitors,
    WeightedSum,
    RecalculateEventWorkspace,
    UseFractionalArea,
    ListOfWorkspaceIndices,
    RemoveSpecialValues,
    MultiplyBySpectra,
):
    """Sum spectra (a workspace-index range and/or list) into one; events stay events."""
    if WeightedSum:
        raise AlgorithmError("SumSpectra: WeightedSum is not supported by the embedded engine")
    idx = index_range(
        InputWorkspace, StartWorkspaceIndex, EndWorkspaceIndex, ListOfWorkspaceIndices, "SumSpectra"
    )
    return sum_spectra(InputWorkspace, idx)


def integrate(ws, lower=None, upper=None, indices=None, partial: bool = False) -> HistogramWorkspace:
    """One bin per spectrum: the sum of the bins inside [lower, upper] (whole bins; partial ones in
    proportion when `partial`). The output bin spans [lower, upper] (the data's ends when not given)."""
    require_matrix(ws, "Integration")
    h = ws.histogram() if isinstance(ws, EventWorkspace) else ws
    idx = np.arange(h.getNumberHistograms()) if indices is None else indices
    shared = h.edges.ndim == 1
    y, v = np.empty((idx.size, 1)), np.empty((idx.size, 1))
    lo_all, hi_all = np.empty((idx.size, 1)), np.empty((idx.size, 1))
    done = 0
    # a block of rows at a time: no temporary the size of the input (a 10^8-bin accumulation); with shared
    # edges the bin weights are one row, and the sums are matrix-vector products
    for rows in row_blocks(idx, h.edges.shape[-1] * 8 * (1 if shared else 4)):
        e2 = h.edges[None, :] if shared else h.edges[rows]
        n = h.values[rows].shape[0]
        lo = e2[:, :1] if lower is None else np.full((1, 1), float(lower))
        hi = e2[:, -1:] if upper is None else np.full((1, 1), float(upper))
        if np.any(hi < lo):
            raise AlgorithmError(f"Integration: RangeUpper {upper} is below RangeLower {lower}")
        frac = _bin_fractions(e2, lo, hi, partial, h.distribution)
        sel = slice(done, done + n)
        if shared:
            y[sel, 0], v[sel, 0] = h.values[rows] @ frac[0], h.variances[rows] @ frac[0]
        else:
            y[sel, 0], v[sel, 0] = (h.values[rows] * frac).sum(axis=1), (h.variances[rows] * frac).sum(axis=1)
        lo_all[sel], hi_all[sel] = lo, hi
        done += n
    edges = np.hstack([lo_all, hi_all])
    if np.all(edges == edges[:1]):
        edges = edges[0]
    return HistogramWorkspace(
        y, v, edges, h.spectra.take(idx), h.run_info.copy(), h.x_unit.unit_id, h.monitors
    )


def _bin_fractions(e2, lo, hi, partial: bool, distribution: bool) -> np.ndarray:
    """Each bin's share inside [lo, hi] (whole bins only unless `partial`), times its width for densities."""
    left, right = e2[:, :-1], e2[:, 1:]
    if partial:
        width = right - left
        frac = np.clip((np.minimum(right, hi) - np.maximum(left, lo)) / np.where(width > 0, width, 1), 0, 1)
    else:
        tol = 1e-12 * np.maximum(np.abs(e2[:, -1:]), 1.0)
        frac = ((left >= lo - tol) & (right <= hi + tol)).astype(float)
    return frac * (right - left) if distribution else frac


@algorithm(
    "Integration",
    [
        *_IO,
        Prop("RangeLower", None),
        Prop("RangeUpper", None),
        Prop("StartWorkspaceIndex", 0),
        Prop("EndWorkspaceIndex", None),
        Prop("IncludePartialBins", False),
        Prop("RangeLowerList", None),
        Prop("RangeUpperList", None),
    ],
)
def _integration_alg(
    InputWorkspace,
    OutputWorkspace,
    RangeLower,
    RangeUpper,
    StartWorkspaceIndex,
    EndWorkspaceIndex,
    IncludePartialBins,
    RangeLowerList,
    RangeUpperList,
):
    """Sum each spectrum's bins in [RangeLower, RangeUpper]: one bin per spectrum."""
    if RangeLowerList or RangeUpperList:
        raise AlgorithmError(
            "Integration: RangeLowerList/RangeUpperList are not supported by the embedded engine"
        )
    idx = index_range(InputWorkspace, StartWorkspaceIndex, EndWorkspaceIndex, None, "Integration")
    return integrate(InputWorkspace, RangeLower, RangeUpper, idx, bool(IncludePartialBins))


def extract(ws, indices: np.ndarray, xmin=None, xmax=None):
    """The given spectra, x cropped to [xmin, xmax]: histogram bins fully inside are kept; events outside
    are dropped."""
    require_matrix(ws, "ExtractSpectra")
    spectra = ws.spectra.take(indices)
    if isinstance(ws, EventWorkspace):
        new_index = np.full(ws.getNumberHistograms(), -1, np.int64)
        new_index[indices] = np.arange(indices.size)
        ev = remap_events(ws.events, new_index)
        edges = ws.edges if ws.edges.ndim == 1 else ws.edges[indices]
        if xmin is not None or xmax is not None:
            lo = -np.inf if xmin is None else float(xmin)
            hi = np.inf if xmax is None else float(xmax)
            ev = ev.take((ev.x >= lo) & (ev.x <= hi))
            edges = _crop_event_edges(edges, lo, hi)
        else:
            ev = ev.replaced()
        return ws.with_events(ev, edges=edges, spectra=spectra)
    e = ws.edges if ws.edges.ndim == 1 else ws.edges[indices]
    y, v = ws.values[indices], ws.variances[indices]
    if xmin is not None or xmax is not None:
        keep = _bin_mask(e, xmin, xmax)
        y, v = y[:, keep], v[:, keep]
        e = _crop_edges(e, xmin, xmax)
    return ws.with_data(y.copy(), v.copy(), e.copy(), spectra)


def _bin_mask(e: np.ndarray, xmin, xmax) -> np.ndarray:
    row = e if e.ndim == 1 else e[0]
    lo = -np.inf if xmin is None else float(xmin)
    hi = np.inf if xmax is None else float(xmax)
    keep = (row[:-1] >= lo) & (row[1:] <= hi)
    if e.ndim == 2:
        masks = (e[:, :-1] >= lo) & (e[:, 1:] <= hi)
        if not np.all(masks.sum(axis=1) == keep.sum()):
            raise AlgorithmError(
                "the x range keeps a different number of bins in different spectra "
                "(ragged workspace); Rebin to common edges first"
            )
    if not keep.any():
        raise AlgorithmError(f"no bin lies inside XMin={xmin}, XMax={xmax}")
    return keep


def _crop_event_edges(e: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Event X after a crop: the edges inside the range, or one bin clipped to it."""
    if e.ndim == 1 and np.count_nonzero((e >= lo) & (e <= hi)) >= 2:
        return e[(e >= lo) & (e <= hi)]
    return np.clip(e[..., [0, -1]], lo, hi)


def _crop_edges(e: np.ndarray, xmin, xmax) -> np.ndarray:
    lo = -np.inf if xmin is None else float(xmin)
    hi = np.inf if xmax is None else float(xmax)
    if e.ndim == 1:
        return e[(e >= lo) & (e <= hi)]
    keep = _bin_mask(e, xmin, xmax)
    return np.hstack([e[:, :-1][:, keep], e[:, 1:][:, keep][:, -1:]])


@algorithm(
    "CropWorkspace",
    [
        *_IO,
        Prop("XMin", None),
        Prop("XMax", None),
        Prop("StartWorkspaceIndex", 0),
        Prop("EndWorkspaceIndex", None),
    ],
)
def _crop_alg(InputWorkspace, OutputWorkspace, XMin, XMax, StartWorkspaceIndex, EndWorkspaceIndex):
    """Keep a workspace-index range and the bins (events) within [XMin, XMax]."""
    idx = index_range(InputWorkspace, StartWorkspaceIndex, EndWorkspaceIndex, None, "CropWorkspace")
    return extract(InputWorkspace, idx, XMin, XMax)


@algorithm(
    "ExtractSpectra",
    [
        *_IO,
        Prop("XMin", None),
        Prop("XMax", None),
        Prop("StartWorkspaceIndex", 0),
        Prop("EndWorkspaceIndex", None),
        Prop("WorkspaceIndexList", None),
        Prop("DetectorList", None),
    ],
)
def _extract_alg(
    InputWorkspace,
    OutputWorkspace,
    XMin,
    XMax,
    StartWorkspaceIndex,
    EndWorkspaceIndex,
    WorkspaceIndexList,
    DetectorList,
):
    """Keep spectra by index range, index list or detector ids, and the x range [XMin, XMax]."""
    ws = InputWorkspace
    if DetectorList is not None and len(int_list(DetectorList)):
        wanted = set(int_list(DetectorList, "DetectorList"))
        s = ws.spectra
        idx = np.array(
            [i for i in range(len(s)) if wanted.intersection(s.detector_ids(i).tolist())], np.int64
        )
        if idx.size == 0:
            raise AlgorithmError(f"ExtractSpectra: no spectrum holds detectors {sorted(wanted)[:10]}")
    elif WorkspaceIndexList is not None and len(int_list(WorkspaceIndexList)):
        idx = np.array(int_list(WorkspaceIndexList), np.int64)
        n = ws.getNumberHistograms()
        if np.any((idx < 0) | (idx >= n)):
            raise AlgorithmError(f"ExtractSpectra: workspace indices outside 0..{n - 1}")
    else:
        idx = index_range(ws, StartWorkspaceIndex, EndWorkspaceIndex, None, "ExtractSpectra")
    return extract(ws, idx, XMin, XMax)
