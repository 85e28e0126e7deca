"""Workspaces as scipp objects and back, for scipp-native scripts (docs/processing-scripts.md).

- A HistogramWorkspace is a scipp DataArray already: dims (spectrum, <x>), values counts, variances E², bin
  edges with their unit. The script gets a shallow copy (its own coords and masks, the same values: a script
  must not change its input in place).
- An EventWorkspace becomes binned data: one bin per spectrum; each event has its x (e.g. `tof` in µs), its
  `pulse_time` (datetime64, ns) and a weight (1 for raw counts) with variance.

What a script returns goes back the same way: dense data with a spectrum dim (or none: one spectrum) becomes a
HistogramWorkspace, binned data an EventWorkspace; a Dataset or a dict of DataArrays a WorkspaceGroup. The
spectra (numbers, detectors, geometry) are the input's when the spectrum count is unchanged, else new ones
numbered from the result's `spectrum` coordinate (or 1…n).
"""

from __future__ import annotations

import numpy as np
import scipp as sc

from livereduce.workspace.base import UNITS, MatrixWorkspace
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

_UNIT_OF_DIM = {u.dim: u.unit_id for u in UNITS.values()}


def to_scipp(ws):
    """The scipp view of a workspace (a group: a dict of member name or index → DataArray)."""
    if isinstance(ws, WorkspaceGroup):
        return {(m.name() or str(i)): to_scipp(m) for i, m in enumerate(ws)}
    if isinstance(ws, HistogramWorkspace):
        return ws.data.copy(deep=False)
    if isinstance(ws, EventWorkspace):
        return _binned(ws)
    raise TypeError(f"no scipp view of a {type(ws).__name__}")


def _binned(ws: EventWorkspace) -> sc.DataArray:
    ev, n, unit = ws.events, ws.getNumberHistograms(), ws.x_unit
    order = np.argsort(ev.index, kind="stable")
    counts = np.bincount(ev.index, minlength=n)[:n]
    begin = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    weights = np.ones(len(ev)) if ev.weights is None else ev.weights[order]
    err2 = weights if ev.err2 is None else ev.err2[order]
    table = sc.DataArray(
        sc.array(dims=["event"], values=weights, variances=np.array(err2, dtype=np.float64), unit="counts"),
        coords={
            unit.dim: sc.array(dims=["event"], values=ev.x[order], unit=unit.scipp_unit),
            "pulse_time": sc.array(
                dims=["event"], values=ev.pulse_time()[order].astype("datetime64[ns]"), unit="ns"
            ),
        },
    )
    binned = sc.bins(begin=sc.array(dims=["spectrum"], values=begin, unit=None), dim="event", data=table)
    return sc.DataArray(
        binned,
        coords={
            "spectrum": sc.array(dims=["spectrum"], values=ws.spectra.numbers.astype(np.int64), unit=None)
        },
    )


def from_scipp(value, like: MatrixWorkspace | WorkspaceGroup | None):
    """The workspace of what a scipp-native script returned (TypeError/ValueError saying what is wrong)."""
    if isinstance(value, MatrixWorkspace | WorkspaceGroup):
        return value  # a script may return a workspace, e.g. from the mantid API
    if isinstance(value, sc.Dataset):
        value = dict(value.items())
    if isinstance(value, dict):
        members = [from_scipp(v, None) for v in value.values()]
        return WorkspaceGroup(members)
    if not isinstance(value, sc.DataArray):
        raise TypeError(f"expected a scipp DataArray, Dataset or dict of them, got {type(value).__name__}")
    base = like[0] if isinstance(like, WorkspaceGroup) and len(like) else like
    if value.bins is not None:
        return _events(value, base)
    return _histogram(value, base)


def _x_dim(da: sc.DataArray) -> str:
    dims = [d for d in da.dims if d != "spectrum"]
    if len(dims) != 1 or dims[0] not in _UNIT_OF_DIM:
        known = ", ".join(_UNIT_OF_DIM)
        raise ValueError(f"dims {da.dims}: expected (spectrum, x) or (x,) with x one of {known}")
    return dims[0]


def _spectra_for(da: sc.DataArray, like) -> Spectra:
    n = da.sizes.get("spectrum", 1)
    if like is not None and like.getNumberHistograms() == n:
        return like.spectra.copy()
    numbers = da.coords["spectrum"].values if "spectrum" in da.coords and "spectrum" in da.dims else None
    numbers = np.arange(1, n + 1) if numbers is None else np.asarray(numbers, dtype=np.int64)
    instrument = like.spectra.instrument if like is not None else ""
    return Spectra.one_to_one(numbers, instrument=instrument)


def _run_of(like):
    return like.run_info.copy() if like is not None else None


def _histogram(da: sc.DataArray, like) -> HistogramWorkspace:
    dim = _x_dim(da)
    if "spectrum" not in da.dims:
        da = da.broadcast(sizes={"spectrum": 1, **da.sizes}) if dim in da.dims else da
    da = da.transpose(["spectrum", dim])
    edges = da.coords[dim]
    if not da.coords.is_edges(dim):
        raise ValueError(f"the {dim} coordinate holds points, not bin edges: histogram first (e.g. .hist())")
    unit_id = _UNIT_OF_DIM[dim]
    wanted = UNITS[unit_id].scipp_unit
    edges = edges.to(unit=wanted, dtype="float64", copy=False) if edges.unit is not None else edges
    values = da.data.to(unit="counts", copy=False) if da.unit not in (None, sc.units.counts) else da.data
    variances = values.variances if values.variances is not None else None
    return HistogramWorkspace(
        np.array(values.values, dtype=np.float64),
        None if variances is None else np.array(variances, dtype=np.float64),
        np.array(edges.values, dtype=np.float64),
        _spectra_for(da, like),
        run=_run_of(like),
        unit_id=unit_id,
    )


def _events(da: sc.DataArray, like) -> EventWorkspace:
    if da.dims != ("spectrum",):
        raise ValueError(f"binned data must have dims ('spectrum',), not {da.dims}")
    constituents = da.bins.constituents
    begin = constituents["begin"].values
    end = constituents["end"].values
    table = constituents["data"]
    if not isinstance(table, sc.DataArray):
        raise ValueError("binned data must hold a table of events (a DataArray) in its bins")
    dims = [d for d in table.coords if d in _UNIT_OF_DIM]
    if len(dims) != 1:
        raise ValueError(
            f"events need one x coordinate of {', '.join(_UNIT_OF_DIM)}; got {list(table.coords)}"
        )
    dim, unit_id = dims[0], _UNIT_OF_DIM[dims[0]]
    lengths = (end - begin).astype(np.int64)
    parts = [np.arange(b, e, dtype=np.int64) for b, e in zip(begin, end, strict=True)]
    take = np.concatenate(parts) if parts else np.empty(0, np.int64)
    index = np.repeat(np.arange(len(begin), dtype=np.uint32), lengths)
    x = table.coords[dim].to(unit=UNITS[unit_id].scipp_unit, dtype="float64", copy=False).values[take]
    weights = np.asarray(table.values, dtype=np.float64)[take]
    err2 = table.variances
    ones = bool(np.all(weights == 1.0)) and (err2 is None or bool(np.all(np.asarray(err2)[take] == 1.0)))
    pulse = None
    pulse_times = None
    if "pulse_time" in table.coords:
        times = table.coords["pulse_time"].values[take].astype("datetime64[ns]").astype(np.int64)
        pulse_times, pulse = np.unique(times, return_inverse=True)
    columns = EventColumns(
        index,
        x,
        pulse=pulse,
        pulse_times=pulse_times,
        weights=None if ones else weights,
        err2=None if ones or err2 is None else np.asarray(err2, dtype=np.float64)[take],
    )
    return EventWorkspace(_spectra_for(da, like), columns, run=_run_of(like), unit_id=unit_id)
