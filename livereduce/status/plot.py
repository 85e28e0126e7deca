"""The plot data the worker publishes after each cycle: a small copy of the output workspace for the live page.

Bounded whatever the workspace: at most MAX_CURVES spectra of at most MAX_POINTS points each, and counts per
spectrum (as an image, for many-spectra workspaces) of at most MAX_PIXELS values. Events are histogrammed with
numpy over the few spectra drawn; nothing here sorts or copies the whole accumulation.
"""

from __future__ import annotations

import math

import numpy as np

from livereduce.records import Curve, PlotData, Record, RecordKind
from livereduce.workspace import histogram as _histogram
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace, row_blocks

MAX_CURVES = 8
MAX_POINTS = 2000
MAX_PIXELS = 1 << 16
IMAGE_FROM = 17  # spectra from which counts per spectrum are drawn as an image


class PlotPublisher:
    """A record subscriber in the worker: after each cycle, the output workspace (else the accumulation) as a
    PLOT record. A failure here is logged by the dispatcher and never touches the reduction."""

    def __init__(self, session):
        self.session = session

    def __call__(self, record: Record) -> None:
        if record.kind is not RecordKind.CYCLE:
            return
        s = self.session
        for name in (s.output_name, s.accumulation_name):
            if s.ads.doesExist(name):
                data = plot_data(s.ads[name], name, record.data.run_number)
                if data is not None:
                    s.records.emit(RecordKind.PLOT, record.cycle, **_fields(data))
                return


def _fields(data: PlotData) -> dict:
    return {f: getattr(data, f) for f in data.__dataclass_fields__}


def plot_data(ws, name: str, run_number: int) -> PlotData | None:
    """What the page draws of `ws` (its first member for a group); None for what it cannot draw."""
    if isinstance(ws, WorkspaceGroup):
        if not len(ws):
            return None
        ws = ws[0]
    if isinstance(ws, EventWorkspace):
        curves, per_spectrum = _event_curves(ws)
    elif isinstance(ws, HistogramWorkspace):
        curves, per_spectrum = _histogram_curves(ws)
    else:
        return None
    n = ws.getNumberHistograms()
    unit = ws.x_unit
    image, shape = _image(per_spectrum) if n >= IMAGE_FROM else (None, None)
    return PlotData(
        workspace=name,
        run_number=int(run_number),
        x_label=f"{unit.caption} ({unit.scipp_unit})" if unit.caption else "x",
        y_label="Counts",
        n_spectra=n,
        curves=curves,
        image=image,
        image_shape=shape,
    )


def _labels(ws, count: int) -> list[str]:
    numbers = ws.getSpectrumNumbers()[:count]
    return [f"spectrum {s}" for s in numbers]


def _histogram_curves(ws: HistogramWorkspace) -> tuple[list[Curve], np.ndarray]:
    count = min(MAX_CURVES, ws.getNumberHistograms())
    values = ws.values
    curves = [
        _curve(label, ws.readX(i), values[i])
        for i, label in zip(range(count), _labels(ws, count), strict=True)
    ]
    return curves, _row_sums(values)


def _event_curves(ws: EventWorkspace) -> tuple[list[Curve], np.ndarray]:
    n = ws.getNumberHistograms()
    count = min(MAX_CURVES, n)
    ev = ws.events
    index, x_all, w_all = ev.index, ev.x_native, ev.weights  # x_native: ev.x would widen all TOFs for good
    per_spectrum = np.zeros(n)
    near_index, near_x, near_w = [], [], []
    # a block of events at a time: bincount widens the uint32 index to intp (8 bytes an event: 800 MB at
    # 10^8 events kept, every cycle), and the mask of the first spectra's events is a byte an event
    step = max(1, _histogram.BLOCK_BYTES // 8)
    for a in range(0, index.size, step):
        idx = index[a : a + step]
        w = None if w_all is None else w_all[a : a + step]
        per_spectrum += np.bincount(idx, weights=w, minlength=n)[:n]
        near = idx < count  # the histograms below use only the first spectra's events
        near_index.append(idx[near])
        near_x.append(x_all[a : a + step][near])
        if w is not None:
            near_w.append(w[near])
    index = np.concatenate(near_index) if near_index else np.empty(0, np.uint32)
    x = np.concatenate(near_x) if near_x else np.empty(0, x_all.dtype)
    weights = None if w_all is None else (np.concatenate(near_w) if near_w else np.empty(0))
    curves = []
    for i, label in zip(range(count), _labels(ws, count), strict=True):
        mine = index == i
        y = np.histogram(x[mine], bins=ws.readX(i), weights=None if weights is None else weights[mine])[0]
        curves.append(_curve(label, ws.readX(i), y.astype(np.float64)))
    return curves, per_spectrum


def _row_sums(values: np.ndarray) -> np.ndarray:
    """Each spectrum's total, NaN as 0 (np.nansum's numbers), a block of rows (row_blocks) at a time.

    np.nansum copies what it sums to replace its NaNs (800 MB at 10^8 bins, every cycle). Here a block is
    summed in place; only rows whose sum came out NaN are summed again without their NaNs (a copy of those
    rows and a mask of them, within one block). A row with +inf and -inf stays NaN, as with np.nansum."""
    out = np.empty(values.shape[0])
    for rows in row_blocks(np.arange(values.shape[0]), values.shape[1] * values.itemsize):
        block = values[rows]  # a view: the rows are consecutive
        with np.errstate(invalid="ignore"):  # inf - inf: NaN, said by the number, not a warning
            sums = block.sum(axis=-1)
            nan = np.isnan(sums)
            if nan.any():
                bad = block[nan]
                sums[nan] = np.sum(bad, axis=-1, where=~np.isnan(bad))
        out[rows] = sums
    return out


def _curve(label: str, edges: np.ndarray, y: np.ndarray) -> Curve:
    """Bins summed in groups so at most MAX_POINTS remain; x at the groups' centres (points: as they are)."""
    edges = np.asarray(edges, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    histogram = edges.size == y.size + 1
    k = max(1, math.ceil(y.size / MAX_POINTS))
    if k > 1:
        usable = (y.size // k) * k
        y = y[:usable].reshape(-1, k).sum(axis=1)
        edges = edges[: usable + 1 : k] if histogram else edges[:usable].reshape(-1, k).mean(axis=1)
    x = 0.5 * (edges[:-1] + edges[1:]) if histogram else edges
    return Curve(label, _finite(x), _finite(y))


def _image(per_spectrum: np.ndarray) -> tuple[list[float | None], tuple[int, int]]:
    counts = np.nan_to_num(np.asarray(per_spectrum, dtype=np.float64))
    k = max(1, math.ceil(counts.size / MAX_PIXELS))
    if k > 1:
        counts = np.pad(counts, (0, (-counts.size) % k)).reshape(-1, k).sum(axis=1)
    cols = math.ceil(math.sqrt(counts.size))
    rows = math.ceil(counts.size / cols)
    padded = np.full(rows * cols, np.nan)
    padded[: counts.size] = counts
    return _finite(padded), (rows, cols)


def _finite(a: np.ndarray) -> list[float | None]:
    """JSON has no NaN or inf: they travel as None (a gap in the plot)."""
    return [float(v) if math.isfinite(v) else None for v in a.tolist()]
