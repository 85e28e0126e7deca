"""DiffractionFocussing: sum the spectra of detector groups from a `.cal` file into one spectrum per group.

`.cal` text format (facts): '#' comment lines, then whitespace-separated columns
`number udet offset select group`. A detector with select = 0 or group <= 0 is excluded. A spectrum goes to
the group of its first listed detector. Output spectrum number = group number, spectra in ascending group
order. Geometry of a focussed spectrum: the plain mean of its members' L2, 2θ and azimuth (see
_util.grouped_spectra). Histograms whose spectra share edges are summed exactly; otherwise each group is
rebinned to logarithmic edges spanning its members' range with the input's number of bins, then summed.
"""

from __future__ import annotations

import os

import numpy as np

from livereduce.algorithms._util import grouped_spectra, remap_events, require_matrix
from livereduce.algorithms.binning import rebin_arrays
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace


def read_cal_file(path: str) -> dict[int, int]:
    """{detector id: group} of the selected detectors in a .cal file."""
    if not path or not os.path.isfile(path):
        raise AlgorithmError(f"DiffractionFocussing: grouping file '{path}' does not exist")
    groups: dict[int, int] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            cols = text.split()
            try:
                udet, select, group = int(cols[1]), int(cols[3]), int(cols[4])
            except (IndexError, ValueError):
                raise AlgorithmError(
                    f"DiffractionFocussing: {path}:{lineno}: expected 'number udet offset "
                    f"select group', got {text!r}"
                ) from None
            if select != 0 and group > 0:
                groups[udet] = group
    if not groups:
        raise AlgorithmError(f"DiffractionFocussing: {path} selects no detector into a group > 0")
    return groups


def _group_edges(e2: np.ndarray, nbins: int) -> np.ndarray:
    lo, hi = float(np.min(e2[:, 0])), float(np.max(e2[:, -1]))
    if lo > 0:
        return np.geomspace(lo, hi, nbins + 1)
    return np.linspace(lo, hi, nbins + 1)


def focus(ws, det_group: dict[int, int], preserve_events: bool = True):
    require_matrix(ws, "DiffractionFocussing")
    if ws.x_unit.unit_id != "dSpacing":
        raise AlgorithmError(
            f"DiffractionFocussing: the input must be in dSpacing, not {ws.x_unit.unit_id}; "
            f"run ConvertUnits(Target='dSpacing') first"
        )
    s = ws.spectra
    spec_group = np.zeros(len(s), np.int64)
    for i in range(len(s)):
        for d in s.detector_ids(i):
            g = det_group.get(int(d))
            if g is not None:
                spec_group[i] = g
                break
    numbers = np.unique(spec_group[spec_group > 0])
    if numbers.size == 0:
        raise AlgorithmError("DiffractionFocussing: no spectrum's detectors are in any group of the file")
    members = [np.flatnonzero(spec_group == g) for g in numbers]
    spectra = grouped_spectra(s, members, numbers)
    new_index = np.full(len(s), -1, np.int64)
    for k, m in enumerate(members):
        new_index[m] = k
    shared = ws.edges.ndim == 1
    if isinstance(ws, EventWorkspace):
        edges = ws.edges if shared else np.array([_group_edges(ws.edges[m], ws.blocksize()) for m in members])
        out = ws.with_events(remap_events(ws.events, new_index), edges=edges, spectra=spectra)
        return out if preserve_events else out.histogram()
    if shared:
        y = np.array([ws.values[m].sum(axis=0) for m in members])
        v = np.array([ws.variances[m].sum(axis=0) for m in members])
        return ws.with_data(y, v, ws.edges.copy(), spectra)
    edges = np.array([_group_edges(ws.edges[m], ws.blocksize()) for m in members])
    y = np.zeros((len(members), ws.blocksize()))
    v = np.zeros_like(y)
    for k, m in enumerate(members):
        ry, rv = rebin_arrays(ws.values[m], ws.variances[m], ws.edges[m], edges[k])
        y[k], v[k] = ry.sum(axis=0), rv.sum(axis=0)
    return ws.with_data(y, v, edges, spectra)


@algorithm(
    "DiffractionFocussing",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("GroupingFileName", ""),
        Prop("GroupingWorkspace", None),
        Prop("PreserveEvents", True),
        Prop("DMin", None),
        Prop("DMax", None),
        Prop("Delta", None),
        Prop("FullBinsOnly", False),
    ],
)
def _focus_alg(
    InputWorkspace,
    OutputWorkspace,
    GroupingFileName,
    GroupingWorkspace,
    PreserveEvents,
    DMin,
    DMax,
    Delta,
    FullBinsOnly,
):
    """Sum detector groups of a .cal file (input in dSpacing) into one spectrum per group."""
    if GroupingWorkspace is not None or any(p is not None for p in (DMin, DMax, Delta)):
        raise AlgorithmError(
            "DiffractionFocussing: only GroupingFileName (a .cal file) is supported by the "
            "embedded engine; Rebin afterwards for DMin/DMax/Delta"
        )
    return focus(InputWorkspace, read_cal_file(GroupingFileName), bool(PreserveEvents))
