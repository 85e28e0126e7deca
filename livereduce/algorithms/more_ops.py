"""RebinToWorkspace, ConvertToDistribution / ConvertFromDistribution, ExtractSingleSpectrum, DeleteWorkspaces,
SortEvents: small algorithms real scripts call, as Mantid documents them.

RebinToWorkspace puts WorkspaceToRebin on WorkspaceToMatch's bin edges (counts shared in proportion to
overlap, events kept with PreserveEvents). ConvertToDistribution divides Y and E by the bin widths and marks
the workspace a distribution (in place); ConvertFromDistribution multiplies back.
"""

from __future__ import annotations

import numpy as np

from livereduce.algorithms._util import is_inplace, require_matrix, shared_events
from livereduce.algorithms.binning import events_to_histogram, rebin_arrays
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm, resolve_workspace
from livereduce.algorithms.spectra_ops import extract
from livereduce.errors import AlgorithmError
from livereduce.workspace.ads import mtd
from livereduce.workspace.events import EventWorkspace


def _common_edges(ws, alg: str) -> np.ndarray:
    e = ws.edges
    if e.ndim == 2:
        if not np.all(e == e[:1]):
            raise AlgorithmError(
                f"{alg}: WorkspaceToMatch has different bins per spectrum; this is not supported"
            )
        e = e[0]
    return np.asarray(e, np.float64)


@algorithm(
    "RebinToWorkspace",
    [
        Prop("WorkspaceToRebin", kind=IN),
        Prop("WorkspaceToMatch", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("PreserveEvents", True),
    ],
)
def _rebin_to_workspace(WorkspaceToRebin, WorkspaceToMatch, OutputWorkspace, PreserveEvents):
    """Rebin WorkspaceToRebin to the bin edges of WorkspaceToMatch."""
    ws = require_matrix(WorkspaceToRebin, "RebinToWorkspace")
    edges = _common_edges(require_matrix(WorkspaceToMatch, "RebinToWorkspace"), "RebinToWorkspace")
    if isinstance(ws, EventWorkspace):
        if not PreserveEvents:
            return events_to_histogram(ws, edges)
        if is_inplace(ws, OutputWorkspace):
            ws.edges = edges.copy()
            return ws
        return ws.with_events(shared_events(ws.events), edges=edges.copy())
    y, v = ws.values, ws.variances
    if ws.distribution:  # densities → counts, rebin, → densities
        w = np.diff(ws.edges_2d(), axis=1)
        y, v = y * w, v * w * w
    ny, nv = rebin_arrays(y, v, ws.edges, edges)
    if ws.distribution:
        w = np.diff(edges)
        ny, nv = ny / w, nv / (w * w)
    return ws.with_data(ny, nv, edges.copy())


def _distribution(ws, to: bool, alg: str) -> None:
    ws = require_matrix(ws, alg)
    if isinstance(ws, EventWorkspace):
        raise AlgorithmError(
            f"{alg}: an event workspace cannot be a distribution; ConvertToMatrixWorkspace first"
        )
    if ws.distribution == to:
        raise AlgorithmError(f"{alg}: the workspace {'already is' if to else 'is not'} a distribution")
    w = np.diff(ws.edges_2d(), axis=1)
    f = 1.0 / w if to else w
    ws.values[...] = ws.values * f
    ws.variances[...] = ws.variances * f * f
    ws.distribution = to


@algorithm("ConvertToDistribution", [Prop("Workspace", kind=IN)])
def _to_distribution(Workspace):
    """Divide Y and E by the bin widths (in place); the workspace becomes a distribution."""
    _distribution(Workspace, True, "ConvertToDistribution")


@algorithm("ConvertFromDistribution", [Prop("Workspace", kind=IN)])
def _from_distribution(Workspace):
    """Multiply Y and E by the bin widths (in place); the workspace holds counts again."""
    _distribution(Workspace, False, "ConvertFromDistribution")


@algorithm(
    "ExtractSingleSpectrum",
    [Prop("InputWorkspace", kind=IN), Prop("OutputWorkspace", kind=OUT), Prop("WorkspaceIndex")],
)
def _extract_single(InputWorkspace, OutputWorkspace, WorkspaceIndex):
    """The spectrum at WorkspaceIndex as a workspace of its own."""
    ws = require_matrix(InputWorkspace, "ExtractSingleSpectrum")
    i = int(WorkspaceIndex)
    if not 0 <= i < ws.getNumberHistograms():
        raise AlgorithmError(
            f"ExtractSingleSpectrum: WorkspaceIndex {i} is outside 0..{ws.getNumberHistograms() - 1}"
        )
    return extract(ws, np.array([i], np.int64))


@algorithm("DeleteWorkspaces", [Prop("WorkspaceList")], per_member=False)
def _delete_many(WorkspaceList):
    """Remove the listed workspaces (names or objects; a comma-separated string or a list)."""
    items = WorkspaceList.split(",") if isinstance(WorkspaceList, str) else list(WorkspaceList)
    for item in items:
        ws = resolve_workspace(
            item.strip() if isinstance(item, str) else item, "DeleteWorkspaces", "WorkspaceList"
        )
        if ws.name() and mtd.doesExist(ws.name()):
            mtd.remove(ws.name())


@algorithm("SortEvents", [Prop("InputWorkspace", kind=IN), Prop("SortBy", "X Value")], per_member=False)
def _sort_events(InputWorkspace, SortBy):
    """Accepted for compatibility: event order never changes results here (spectra are grouped on demand)."""
    if SortBy not in ("X Value", "Pulse Time", "Pulse Time + TOF"):
        raise AlgorithmError(
            f"SortEvents: SortBy must be 'X Value', 'Pulse Time' or 'Pulse Time + TOF', not {SortBy!r}"
        )
