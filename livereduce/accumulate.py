"""Accumulation methods: how each processed chunk joins the accumulation (Mantid's AccumulationMethod).

- Add: events are concatenated spectrum by spectrum (amortised O(chunk)); histograms are summed in place.
  Events arriving for a histogram accumulation are histogrammed straight into it (no full-size temporary),
  and so are the events of a pending histogram (Rebin(PreserveEvents=False)'s) with the accumulation's edges.
- Replace: the chunk becomes the accumulation, keeping the previous accumulation's geometry (so geometry
  edited by a script persists, as in Mantid).
- Append: the chunk's spectra are appended (2 → 4 → 6 spectra).

A chunk that does not fit the accumulation (other spectra, other binning, other type) raises Incompatible;
the session then starts a fresh accumulation instead of stopping as Mantid does. Events histogrammed into
an accumulation outside its bins are not counted (as in Mantid) but tallied in `events_outside_bins`.
"""

from __future__ import annotations

import enum

import numpy as np

from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.histogram_kernels import histogram_into


class Method(enum.Enum):
    ADD = "Add"
    REPLACE = "Replace"
    APPEND = "Append"

    @classmethod
    def parse(cls, text: str) -> Method:
        for m in cls:
            if m.value.lower() == str(text).lower():
                return m
        raise ValueError(f"accumulation method must be Add, Replace or Append, not {text!r}")


class Incompatible(ValueError):
    """The chunk cannot be combined with the accumulation."""


def accumulate(acc, chunk, method: Method):
    """Combine `chunk` into `acc` by `method`; returns the (possibly new) accumulation workspace."""
    if method is Method.REPLACE and isinstance(chunk, WorkspaceGroup):
        if isinstance(acc, WorkspaceGroup) and len(acc) == len(chunk):
            for a, c in zip(acc, chunk, strict=True):
                replace(a, c)
        return chunk
    if isinstance(acc, WorkspaceGroup) or isinstance(chunk, WorkspaceGroup):
        if not (isinstance(acc, WorkspaceGroup) and isinstance(chunk, WorkspaceGroup)) or len(acc) != len(
            chunk
        ):
            raise Incompatible("a workspace group can only be combined with a group of the same size")
        return WorkspaceGroup([accumulate(a, c, method) for a, c in zip(acc, chunk, strict=True)])
    if method is Method.REPLACE:
        return replace(acc, chunk)
    if method is Method.ADD:
        return add(acc, chunk)
    return append(acc, chunk)


def replace(acc, chunk):
    if isinstance(acc, WorkspaceGroup):
        acc = None
    if acc is not None and hasattr(acc, "spectra") and acc.spectra.same_layout(chunk.spectra):
        s = chunk.spectra
        s.l1, s.l2, s.two_theta, s.azimuthal = (
            acc.spectra.l1,
            acc.spectra.l2,
            acc.spectra.two_theta,
            acc.spectra.azimuthal,
        )
    return chunk


def add(acc, chunk):
    if not acc.spectra.same_layout(chunk.spectra):
        raise Incompatible(
            f"chunk has {chunk.getNumberHistograms()} spectra, accumulation "
            f"{acc.getNumberHistograms()} (or other spectrum numbers / detectors)"
        )
    if acc.x_unit != chunk.x_unit:
        raise Incompatible(
            f"chunk x unit {chunk.x_unit.unit_id} differs from accumulation's {acc.x_unit.unit_id}"
        )
    if isinstance(acc, EventWorkspace) and isinstance(chunk, EventWorkspace):
        acc.add_events(chunk)
        acc.edges = _union_edges(acc.edges, chunk.edges)
    elif isinstance(acc, HistogramWorkspace) and isinstance(chunk, EventWorkspace):
        if acc.edges.ndim == 1 and acc.edges.size == 2 and chunk.edges.ndim == 1 and chunk.edges.size == 2:
            acc.set_edges(_union_edges(acc.edges, chunk.edges))  # one default bin: widen it to hold all
        acc.events_outside_bins = getattr(acc, "events_outside_bins", 0) + chunk.histogram_into(acc)
    elif isinstance(acc, HistogramWorkspace) and isinstance(chunk, HistogramWorkspace):
        if acc.edges.shape != chunk.edges.shape or not np.array_equal(acc.edges, chunk.edges):
            raise Incompatible("chunk binning differs from the accumulation's; rebin both the same way")
        ev = chunk.pending_events
        if ev is not None and not acc.distribution:
            missed = histogram_into(
                acc.values, acc.variances, ev.index, ev.x_native, acc.edges, ev.weights, ev.err2
            )
            chunk.events_histogrammed_elsewhere(missed)  # the chunk's own count, as its eager Rebin had
        else:
            np.add(acc.values, chunk.values, out=acc.values)  # in place, into scipp's buffers
            np.add(acc.variances, chunk.variances, out=acc.variances)
    else:
        raise Incompatible(f"cannot Add a {chunk.id()} chunk to a {acc.id()} accumulation")
    if acc.monitors is not None and chunk.monitors is not None:
        try:
            acc.monitors = add(acc.monitors, chunk.monitors)
        except Incompatible:
            acc.monitors = chunk.monitors
    acc.run_info.merge(chunk.run_info)
    return acc


def _union_edges(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Events keep the accumulation's binning; a default single bin widens to cover both (Mantid's fix-up)."""
    if a.ndim == 1 and b.ndim == 1 and a.size == 2 and b.size == 2:
        return np.array([min(a[0], b[0]), max(a[1], b[1])])
    return a


def append(acc, chunk):
    if type(acc) is not type(chunk):
        raise Incompatible(f"cannot Append a {chunk.id()} chunk to a {acc.id()} accumulation")
    if acc.x_unit != chunk.x_unit:
        raise Incompatible(
            f"chunk x unit {chunk.x_unit.unit_id} differs from accumulation's {acc.x_unit.unit_id}"
        )
    spectra = acc.spectra.concat(chunk.spectra)
    if (
        np.unique(spectra.numbers).size != spectra.numbers.size
    ):  # keep spectrum numbers unique (Mantid #18147)
        n_acc = acc.getNumberHistograms()
        spectra.numbers[n_acc:] = np.arange(
            spectra.numbers[:n_acc].max() + 1, spectra.numbers[:n_acc].max() + 1 + chunk.getNumberHistograms()
        )
    run = acc.run_info
    run.merge(chunk.run_info)
    if isinstance(acc, HistogramWorkspace):
        if not np.array_equal(acc.edges_2d()[0], chunk.edges_2d()[0]) or acc.blocksize() != chunk.blocksize():
            raise Incompatible("appended spectra must share the accumulation's binning")
        edges = (
            np.concatenate([acc.edges_2d(), chunk.edges_2d()])
            if acc.edges.ndim == 2 or chunk.edges.ndim == 2
            else acc.edges
        )
        return HistogramWorkspace(
            np.concatenate([acc.values, chunk.values]),
            np.concatenate([acc.variances, chunk.variances]),
            edges,
            spectra,
            run,
            acc.x_unit.unit_id,
            acc.monitors,
        )
    events = acc.events.copy()
    events.append(chunk.events, index_offset=acc.getNumberHistograms())
    return EventWorkspace(
        spectra, events, _union_edges(acc.edges, chunk.edges), run, acc.x_unit.unit_id, acc.monitors
    )
