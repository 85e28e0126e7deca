"""The plot data the worker publishes after each cycle: a small copy of the output workspace for the live page.

Bounded whatever the workspace: at most MAX_CURVES spectra of at most MAX_POINTS points each, and counts per
spectrum (as an image, for many-spectra workspaces) of at most MAX_PIXELS values. Events are histogrammed with
numpy over the few spectra drawn; nothing here sorts or copies the whole accumulation.
"""

from __future__ import annotations

import math

import numpy as np

from livereduce.records import Curve, PlotData, Record, RecordKind
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace

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
    per_spectrum = np.bincount(ev.index, weights=ev.weights, minlength=n)[:n]
    near = ev.index < count  # one pass over the events; the histograms use only the first spectra's
    index, x = ev.index[near], ev.x_native[near]  # x_native: reading ev.x would widen all TOFs to float64
    weights = ev.weights[near] if ev.weights is not None else None
    curves = []
    for i, label in zip(range(count), _labels(ws, count), strict=True):
        mine = index == i
        y = np.histogram(x[mine], bins=ws.readX(i), weights=None if weights is None else weights[mine])[0]
        curves.append(_curve(label, ws.readX(i), y.astype(np.float64)))
    return curves, per_spectrum


ROWS_PER_BLOCK_BYTES = 16 << 20


def _row_sums(values: np.ndarray) -> np.ndarray:
    """Each spectrum's total, NaN as 0, a block of rows at a time: np.nansum of the whole table would copy it
    (800 MB at 10^8 bins, every cycle)."""
    rows = max(1, ROWS_PER_BLOCK_BYTES // max(values[0].nbytes if len(values) else 1, 1))
    out = np.empty(len(values))
    for start in range(0, len(values), rows):
        out[start : start + rows] = np.nansum(values[start : start + rows], axis=-1)
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
