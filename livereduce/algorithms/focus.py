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

from livereduce.algorithms._util import (
    first_listed_group,
    grouped_spectra_sorted,
    remap_events,
    require_matrix,
    sum_rows,
)
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


_CAL_CACHE: dict[str, tuple[tuple[int, int, int], np.ndarray, np.ndarray]] = {}


def cal_groups(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(detector ids sorted, their groups) of a .cal file, read-only; parsed again only when the file changes
    (size, mtime or inode), since proc scripts focus with the same file every chunk."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        read_cal_file(path)  # raises the "does not exist" error
        raise
    key = (st.st_size, st.st_mtime_ns, st.st_ino)
    hit = _CAL_CACHE.get(path)
    if hit is None or hit[0] != key:
        det_group = read_cal_file(path)
        ids = np.fromiter(det_group, np.int64, len(det_group))
        groups = np.fromiter(det_group.values(), np.int64, len(det_group))
        order = np.argsort(ids)
        ids, groups = ids[order], groups[order]
        ids.flags.writeable = groups.flags.writeable = False
        hit = _CAL_CACHE[path] = (key, ids, groups)
    return hit[1], hit[2]


def _group_edges(e2: np.ndarray, nbins: int) -> np.ndarray:
    lo, hi = float(np.min(e2[:, 0])), float(np.max(e2[:, -1]))
    if lo > 0:
        return np.geomspace(lo, hi, nbins + 1)
    return np.linspace(lo, hi, nbins + 1)


def focus(ws, det_group: dict[int, int] | tuple[np.ndarray, np.ndarray], preserve_events: bool = True):
    """`det_group`: {detector id: group}, or (detector ids sorted, their groups) as cal_groups gives."""
    require_matrix(ws, "DiffractionFocussing")
    if ws.x_unit.unit_id != "dSpacing":
        raise AlgorithmError(
            f"DiffractionFocussing: the input must be in dSpacing, not {ws.x_unit.unit_id}; "
            f"run ConvertUnits(Target='dSpacing') first"
        )
    s = ws.spectra
    if isinstance(det_group, dict):
        ids = np.fromiter(det_group, np.int64, len(det_group))
        groups = np.fromiter(det_group.values(), np.int64, len(det_group))
        order = np.argsort(ids)
        ids, groups = ids[order], groups[order]
    else:
        ids, groups = det_group
    spec_group = first_listed_group(s, ids, groups)
    grouped = np.flatnonzero(spec_group > 0)
    numbers, group_of = np.unique(spec_group[grouped], return_inverse=True)
    if numbers.size == 0:
        raise AlgorithmError("DiffractionFocussing: no spectrum's detectors are in any group of the file")
    new_index = np.full(len(s), -1, np.int64)
    new_index[grouped] = group_of
    counts = np.bincount(group_of, minlength=numbers.size)
    members_flat = grouped[np.argsort(group_of, kind="stable")]  # each group's spectra, in index order
    spectra = grouped_spectra_sorted(s, members_flat, counts, numbers)
    shared = ws.edges.ndim == 1
    if shared and not isinstance(ws, EventWorkspace):
        y = sum_rows(ws.values, new_index, numbers.size)
        v = sum_rows(ws.variances, new_index, numbers.size)
        return ws.with_data(y, v, ws.edges.copy(), spectra)
    members = np.split(members_flat, np.cumsum(counts)[:-1]) if not shared else []
    if isinstance(ws, EventWorkspace):
        edges = ws.edges if shared else np.array([_group_edges(ws.edges[m], ws.blocksize()) for m in members])
        out = ws.with_events(remap_events(ws.events, new_index), edges=edges, spectra=spectra)
        return out if preserve_events else out.histogram()
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
    return focus(InputWorkspace, cal_groups(GroupingFileName), bool(PreserveEvents))
