"""ConvertToPointData, ConvertToHistogram and Transpose, as Mantid documents them.

ConvertToPointData: X becomes the bin centres, Y and E are unchanged. ConvertToHistogram: bin edges are the
midpoints between neighbouring points, the first and last extrapolated by half the neighbouring step (one
point x gets [x - 0.5, x + 0.5]). A workspace that already is what is asked for is copied.

livereduce workspaces hold bin edges, so point data is a PointDataWorkspace: a HistogramWorkspace whose X
(readX, extractX, isHistogramData False) are the points, kept exactly, while its edges (used by algorithms
that need bins) are the ConvertToHistogram edges of those points.
"""

from __future__ import annotations

import numpy as np

from livereduce.algorithms._util import require_matrix
from livereduce.algorithms.ascii import points_to_edges
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra


def edges_of(points: np.ndarray) -> np.ndarray:
    if points.ndim == 1:
        return points_to_edges(points)
    return np.vstack([points_to_edges(row) for row in points])


class PointDataWorkspace(HistogramWorkspace):
    """Point data: X are the points (one per Y); see the module docstring."""

    def __init__(
        self, values, variances, points, spectra, run=None, unit_id="TOF", monitors=None, distribution=False
    ):
        points = np.asarray(points, np.float64)
        super().__init__(values, variances, edges_of(points), spectra, run, unit_id, monitors, distribution)
        self.points = points

    @classmethod
    def of(cls, h: HistogramWorkspace, points: np.ndarray) -> PointDataWorkspace:
        out = cls(h.values.copy(), h.variances.copy(), points, h.spectra, h.run_info.copy(), h.x_unit.unit_id,
                  h.monitors, h.distribution)  # fmt: skip
        out.y_unit, out.y_unit_label, out.comment = h.y_unit, h.y_unit_label, h.comment
        return out

    def isHistogramData(self) -> bool:
        return False

    def readX(self, i: int) -> np.ndarray:
        self._check_index(i)
        return self.points[i] if self.points.ndim == 2 else self.points

    dataX = readX

    def extractX(self) -> np.ndarray:
        p = self.points
        return (p if p.ndim == 2 else np.broadcast_to(p, (self.getNumberHistograms(), p.size))).copy()

    def clone(self) -> PointDataWorkspace:
        return PointDataWorkspace.of(self, self.points.copy())


_IO = [Prop("InputWorkspace", kind=IN), Prop("OutputWorkspace", kind=OUT)]


@algorithm("ConvertToPointData", list(_IO))
def _to_point_data(InputWorkspace, OutputWorkspace):
    """X becomes the bin centres; Y and E are kept (point data in, a copy out)."""
    ws = require_matrix(InputWorkspace, "ConvertToPointData")
    if isinstance(ws, PointDataWorkspace):
        return ws.clone()
    h = ws.histogram() if isinstance(ws, EventWorkspace) else ws
    e = h.edges
    return PointDataWorkspace.of(h, 0.5 * (e[..., 1:] + e[..., :-1]))


@algorithm("ConvertToHistogram", list(_IO))
def _to_histogram(InputWorkspace, OutputWorkspace):
    """Bin edges around the points (midpoints, the ends half a step out); Y and E are kept."""
    ws = require_matrix(InputWorkspace, "ConvertToHistogram")
    if not isinstance(ws, PointDataWorkspace):
        return ws.clone()
    out = HistogramWorkspace(ws.values.copy(), ws.variances.copy(), edges_of(ws.points), ws.spectra,
                             ws.run_info.copy(), ws.x_unit.unit_id, ws.monitors, ws.distribution)  # fmt: skip
    out.y_unit, out.y_unit_label, out.comment = ws.y_unit, ws.y_unit_label, ws.comment
    return out


@algorithm("Transpose", list(_IO))
def _transpose(InputWorkspace, OutputWorkspace):
    """N spectra × M bins → M spectra × N points: Y and E transposed; the new X are the old vertical axis
    values (spectrum numbers)."""
    ws = require_matrix(InputWorkspace, "Transpose")
    h = ws.histogram() if isinstance(ws, EventWorkspace) else ws
    if h.edges.ndim == 2 and not np.all(h.edges == h.edges[:1]):
        raise AlgorithmError("Transpose: the spectra have different X (ragged workspace); Rebin them first")
    y, v = h.values.T.copy(), h.variances.T.copy()
    points = h.spectra.numbers.astype(np.float64)
    spectra = Spectra.one_to_one(np.arange(1, y.shape[0] + 1), instrument=h.spectra.instrument)
    out = PointDataWorkspace(y, v, points, spectra, h.run_info.copy(), "Empty", None, h.distribution)
    out.y_unit, out.y_unit_label = h.y_unit, h.y_unit_label
    return out
