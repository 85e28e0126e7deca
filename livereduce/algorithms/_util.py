"""Helpers shared by the algorithm families: index lists, spectrum selection, event views, grouping geometry."""

from __future__ import annotations

import re

import numpy as np

from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.jit import njit
from livereduce.workspace.spectra import Spectra


def int_list(v, what: str = "index list") -> list[int]:
    """Mantid index lists: "1,3-5,8:9" / [1, 3, 4] / a single int → [1, 3, 4, 5, 8, 9]."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return []
    if isinstance(v, (int, np.integer)):
        return [int(v)]
    if not isinstance(v, str):
        return [int(x) for x in np.asarray(v).ravel()]
    out: list[int] = []
    for part in v.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:[-:](\d+))?", part)
        if part and not m:
            raise AlgorithmError(f"cannot read {what} {v!r}: expected numbers and ranges like '1,3-5'")
        if m:
            out.extend(range(int(m[1]), int(m[2] or m[1]) + 1))
    return out


def float_list(v, what: str = "Params") -> list[float]:
    if isinstance(v, str):
        try:
            return [float(x) for x in v.replace(" ", "").split(",") if x]
        except ValueError:
            raise AlgorithmError(f"cannot read {what} {v!r}: expected comma-separated numbers") from None
    if isinstance(v, (int, float, np.number)):
        return [float(v)]
    return [float(x) for x in v]


def index_range(ws, start, end, listed=None, alg: str = "") -> np.ndarray:
    """Workspace indices from Start/EndWorkspaceIndex plus an optional list (Mantid unions the two)."""
    n = ws.getNumberHistograms()
    listed = int_list(listed, "workspace index list")
    has_range = start not in (None, 0) or end is not None or not listed
    start = 0 if start is None else int(start)
    end = n - 1 if end is None else int(end)
    if has_range and not (0 <= start <= end < n):
        raise AlgorithmError(f"{alg}: workspace index range {start}..{end} is outside 0..{n - 1}")
    idx = set(range(start, end + 1)) if has_range else set()
    bad = [i for i in listed if not 0 <= i < n]
    if bad:
        raise AlgorithmError(f"{alg}: workspace indices {bad} are outside 0..{n - 1}")
    idx.update(listed)
    return np.array(sorted(idx), dtype=np.int64)


def shared_events(ev: EventColumns) -> EventColumns:
    """A new EventColumns over the same (read-only) columns: O(1); appending to either side reallocates."""
    return ev.replaced()


def is_inplace(ws, out_name) -> bool:
    """Output name equals the input's own name: Mantid then works in place."""
    return bool(out_name) and hasattr(ws, "name") and ws.name() == out_name


def grouped_spectra(spectra: Spectra, members: list[np.ndarray], numbers) -> Spectra:
    """One spectrum per member list: detectors united; L2, 2θ and azimuth are the plain means of the members'
    (a focussed spectrum behaves like one detector at the group's mean position)."""
    counts = np.array([len(m) for m in members], np.int64)
    order = np.concatenate(members).astype(np.int64) if members else np.empty(0, np.int64)
    return grouped_spectra_sorted(spectra, order, counts, numbers)


def grouped_spectra_sorted(spectra: Spectra, order: np.ndarray, counts: np.ndarray, numbers) -> Spectra:
    """grouped_spectra with the members given flat: group k is the spectra `order[start_k : start_k +
    counts[k]]`. Vectorised (no Python loop per spectrum): detector ids are gathered in one take, and each
    group's mean is a segment sum (np.add.reduceat: equal to np.mean of the group to the last bit or so, as
    the order of additions differs)."""
    counts = np.asarray(counts, np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    taken = spectra.take(order)  # every member's detector ids, in member order
    full = counts > 0

    def mean(a):
        out = np.full(counts.size, np.nan)
        if full.any():
            out[full] = np.add.reduceat(a[order], starts[:-1][full]) / counts[full]
        return out

    return Spectra(
        np.asarray(numbers, np.int32),
        taken.det_ids.astype(np.int32),
        taken.det_offsets[starts].astype(np.int64),
        mean(spectra.l2),
        mean(spectra.two_theta),
        mean(spectra.azimuthal),
        spectra.l1,
        spectra.instrument,
        dict(spectra.extra),
    )


def first_listed_group(spectra: Spectra, ids: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per spectrum, the group (> 0) of its first detector found in `ids` (sorted, with `groups` alongside);
    0 when none of its detectors is. Vectorised: one searchsorted over all detector ids."""
    off = spectra.det_offsets
    det = spectra.det_ids[off[0] : off[-1]].astype(np.int64)
    out = np.zeros(len(spectra), np.int64)
    if ids.size == 0 or det.size == 0:
        return out
    pos = np.minimum(np.searchsorted(ids, det), ids.size - 1)
    hit = np.flatnonzero(ids[pos] == det)
    owner = np.repeat(np.arange(len(spectra)), np.diff(off))[hit]  # nondecreasing: hits are in detector order
    first = np.concatenate([[True], owner[1:] != owner[:-1]]) if owner.size else np.zeros(0, bool)
    out[owner[first]] = groups[pos[hit[first]]]
    return out


@njit(nogil=True)
def _sum_rows_into(src, target, out):  # pragma: no cover - compiled
    for i in range(src.shape[0]):
        k = target[i]
        if k >= 0:
            for j in range(src.shape[1]):
                out[k, j] += src[i, j]


def sum_rows(src: np.ndarray, target: np.ndarray, n: int) -> np.ndarray:
    """out[k] = the sum of the rows i of `src` with target[i] == k (-1: row left out), rows added in index
    order as ndarray.sum(axis=0) adds them; no copy of `src` (a 10^8-bin input costs one pass, GIL released)."""
    out = np.zeros((n, src.shape[1]), np.result_type(src.dtype, np.float64))
    _sum_rows_into(np.ascontiguousarray(src), np.ascontiguousarray(target, np.int64), out)
    return out


def remap_events(ev: EventColumns, new_index: np.ndarray) -> EventColumns:
    """Events moved to other workspace indices (`new_index[old]`; -1 drops the event)."""
    target = new_index[ev.index.astype(np.int64)]
    keep = target >= 0
    w, e2 = ev.weights, ev.err2
    if keep.all():
        return ev.replaced(index=target.astype(np.uint32))
    return EventColumns(
        target[keep].astype(np.uint32),
        ev.x[keep],
        ev.pulse[keep],
        ev.pulse_times,
        None if w is None else w[keep],
        None if e2 is None else e2[keep],
    )


def require_matrix(ws, alg: str):
    if not isinstance(ws, (HistogramWorkspace, EventWorkspace)):
        raise AlgorithmError(f"{alg}: expected a matrix workspace, got {type(ws).__name__}")
    return ws
