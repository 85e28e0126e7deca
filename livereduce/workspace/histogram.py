"""HistogramWorkspace (Mantid's Workspace2D) on a scipp DataArray.

`data` has dims (spectrum, <x dim>): values are counts, variances are E² (so errors propagate the scipp way),
the x coordinate holds bin edges, shared (1-D) or per spectrum (2-D), with a unit. `values` and `variances`
are numpy views of scipp's own buffers, so kernels accumulate into them in place.

A histogram of events (`from_events`, what Rebin(PreserveEvents=False) returns) is pending until something
reads its numbers: an Add accumulation of the same spectra and edges histograms the events straight into its
own arrays (`pending_events`), so no full-size table is built per chunk; any other reader resolves it first
and sees exactly the eager histogram.
"""

from __future__ import annotations

import numpy as np
import scipp as sc

from livereduce.workspace.base import MatrixWorkspace, x_unit
from livereduce.workspace.histogram_kernels import histogram_into
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra


class HistogramWorkspace(MatrixWorkspace):
    _outside: int | None  # events_outside_bins; None while pending and not yet histogrammed

    def __init__(
        self,
        values,
        variances,
        edges,
        spectra: Spectra,
        run: Run | None = None,
        unit_id: str = "TOF",
        monitors: MatrixWorkspace | None = None,
        distribution: bool = False,
    ):
        self._pending: tuple | None = None
        super().__init__(spectra, run, unit_id, monitors)
        self._set_data(values, variances, edges, spectra)
        self.distribution = distribution

    def _set_data(self, values, variances, edges, spectra: Spectra) -> None:
        """scipp copies the arrays it is given, so none is copied here first; values None: zeros, made by
        scipp in place (no numpy table beside it: a 10^8-bin table would exist twice for a moment)."""
        edges = np.asarray(edges, dtype=np.float64)
        u = self.x_unit
        if values is None:
            shape = [len(spectra), edges.shape[-1] - 1]
            data = sc.zeros(dims=["spectrum", u.dim], shape=shape, unit="counts", with_variances=True)
        else:
            values = np.asarray(values, dtype=np.float64)
            if values.ndim != 2 or values.shape[0] != len(spectra):
                raise ValueError(f"values must be [spectra={len(spectra)}, bins], got shape {values.shape}")
            variances = values if variances is None else np.asarray(variances, dtype=np.float64)
            data = sc.array(dims=["spectrum", u.dim], values=values, variances=variances, unit="counts")
        if edges.shape[-1] != data.shape[1] + 1 or (edges.ndim == 2 and edges.shape[0] != data.shape[0]):
            raise ValueError(f"edges shape {edges.shape} does not fit values shape {tuple(data.shape)}")
        self._data = sc.DataArray(
            data,
            coords={
                u.dim: sc.array(
                    dims=(["spectrum", u.dim] if edges.ndim == 2 else [u.dim]),
                    values=edges,
                    unit=u.scipp_unit,
                ),
                "spectrum": sc.array(dims=["spectrum"], values=spectra.numbers.astype(np.int64), unit=None),
            },
        )

    @classmethod
    def from_events(
        cls,
        events,
        edges,
        spectra: Spectra,
        run: Run | None = None,
        unit_id: str = "TOF",
        monitors: MatrixWorkspace | None = None,
    ) -> HistogramWorkspace:
        """The histogram of `events` (EventColumns) on 1-D `edges`, made when its numbers are first read."""
        edges = np.asarray(edges, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2:
            raise ValueError(f"pending histograms need 1-D edges, got shape {edges.shape}")
        ws = cls.__new__(cls)
        ws._pending = (events, edges)
        MatrixWorkspace.__init__(ws, spectra, run, unit_id, monitors)
        ws._outside = None  # not known until the events are histogrammed
        ws.distribution = False
        return ws

    @property
    def pending_events(self):
        """The events (EventColumns) this histogram will be made of, or None once it has numbers."""
        return None if self._pending is None else self._pending[0]

    def _resolve(self) -> None:
        events, edges = self._pending  # type: ignore[misc]
        self._pending = None
        self._set_data(None, None, edges, self.spectra)  # zeros, every page touched in order
        values, variances = self._data.values, self._data.variances
        if events.weights is None:  # counts-only kernel; variances (= counts) are one sequential copy
            missed = histogram_into(values, None, events.index, events.x_native, edges)
            np.copyto(variances, values)
        else:
            missed = histogram_into(
                values, variances, events.index, events.x_native, edges, events.weights, events.err2
            )
        self._outside = int(missed)

    @property
    def data(self) -> sc.DataArray:
        if self._pending is not None:
            self._resolve()
        return self._data

    @property
    def events_outside_bins(self) -> int:
        """Events histogrammed into this workspace that fell outside its bins (a pending histogram resolves,
        unless an accumulation histogrammed its events already and said how many missed)."""
        if self._outside is None:
            self._resolve()
        return int(self._outside or 0)

    @events_outside_bins.setter
    def events_outside_bins(self, n: int) -> None:
        self._outside = n

    def events_histogrammed_elsewhere(self, missed: int) -> None:
        """An accumulation histogrammed the pending events into its own arrays; `missed` fell outside."""
        self._outside = int(missed)

    @classmethod
    def zeros(
        cls, spectra: Spectra, edges, *, run: Run | None = None, unit_id: str = "TOF"
    ) -> HistogramWorkspace:
        return cls(None, None, edges, spectra, run, unit_id)

    # -- views ------------------------------------------------------------------------------
    @property
    def values(self) -> np.ndarray:
        return self.data.values

    @property
    def variances(self) -> np.ndarray:
        return self.data.variances

    @property
    def edges(self) -> np.ndarray:
        """Bin edges: [nbins+1] when shared by all spectra, else [nspec, nbins+1]."""
        if self._pending is not None:
            return self._pending[1]
        return self.data.coords[self.x_unit.dim].values

    def set_edges(self, edges) -> None:
        """Replace the bin edges (same number of bins); used to widen a default single bin."""
        edges = np.asarray(edges, dtype=np.float64)
        u = self.x_unit
        self.data.coords[u.dim] = sc.array(
            dims=(["spectrum", u.dim] if edges.ndim == 2 else [u.dim]), values=edges, unit=u.scipp_unit
        )

    def edges_2d(self) -> np.ndarray:
        e = self.edges
        return e if e.ndim == 2 else np.broadcast_to(e, (self.getNumberHistograms(), e.size))

    # -- Mantid API -------------------------------------------------------------------------
    def id(self) -> str:
        return "Workspace2D"

    def blocksize(self) -> int:
        return int(self.edges.shape[-1] - 1)

    def isHistogramData(self) -> bool:
        return True

    def isDistribution(self) -> bool:
        return self.distribution

    def readX(self, i: int) -> np.ndarray:
        self._check_index(i)
        e = self.edges
        return e[i] if e.ndim == 2 else e

    def readY(self, i: int) -> np.ndarray:
        self._check_index(i)
        return self.values[i]

    def readE(self, i: int) -> np.ndarray:
        self._check_index(i)
        return np.sqrt(self.variances[i])

    dataX = readX
    dataY = readY  # views: writing into them changes the workspace, as in Mantid

    def dataE(self, i: int) -> np.ndarray:
        """Errors are stored as variances, so this is a copy; write errors with setE."""
        return self.readE(i)

    def setY(self, i: int, y) -> None:
        self.values[i] = y

    def setE(self, i: int, e) -> None:
        self.variances[i] = np.square(e)

    def extractX(self) -> np.ndarray:
        return self.edges_2d().copy()

    def extractY(self) -> np.ndarray:
        return self.values.copy()

    def extractE(self) -> np.ndarray:
        return np.sqrt(self.variances)

    def getNumberEvents(self) -> int:
        """Total counts. (Mantid's Workspace2D has no events; scripts ask this of the accumulation either way.)"""
        return round(float(self.values.sum()))

    def integrated(self) -> float:
        return float(self.values.sum())

    def nbytes(self) -> int:
        return int(self.values.nbytes * 2 + self.edges.nbytes)

    def clone(self) -> HistogramWorkspace:
        mon = self.monitors.clone() if self.monitors is not None else None
        return HistogramWorkspace(
            self.values.copy(),
            self.variances.copy(),
            self.edges.copy(),
            self.spectra.copy(),
            self.run_info.copy(),
            self.x_unit.unit_id,
            mon,
            self.distribution,
        )

    def with_data(
        self, values, variances, edges=None, spectra: Spectra | None = None, unit_id: str | None = None
    ) -> HistogramWorkspace:
        """A new workspace sharing this one's run and monitors with new numbers (what algorithms return)."""
        return HistogramWorkspace(
            values,
            variances,
            self.edges if edges is None else edges,
            self.spectra if spectra is None else spectra,
            self.run_info.copy(),
            self.x_unit.unit_id if unit_id is None else unit_id,
            self.monitors,
            self.distribution,
        )


BLOCK_BYTES = 1 << 24  # row blocks of whole-table reductions and writes: 16 MB, cache-friendly, never a copy


def row_blocks(indices: np.ndarray, row_bytes: int):
    """`indices` (workspace indices) in blocks of about BLOCK_BYTES of table rows: a slice where they run
    consecutively (a view, no copy), else an index array (a copy of one block only)."""
    n = int(indices.size)
    step = max(1, BLOCK_BYTES // max(int(row_bytes), 1))
    for a in range(0, n, step):
        blk = indices[a : a + step]
        first, last = int(blk[0]), int(blk[-1])
        yield slice(first, last + 1) if last - first + 1 == blk.size and np.all(np.diff(blk) == 1) else blk


def unit_dim(unit_id: str) -> str:
    return x_unit(unit_id).dim
