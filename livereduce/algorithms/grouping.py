"""MaskDetectors and GroupDetectors (version 2), as Mantid documents them.

MaskDetectors works in place: the selected spectra's counts and errors become 0 (event lists are emptied) and
their masked flag is set (spectrumInfo().isMasked). GroupDetectors sums (or averages) groups of spectra into
one spectrum each, its detectors the union of theirs; groups come first in the output, numbered 1, 2, … (map
files: by their group numbers when IgnoreGroupNumber is false), then the ungrouped spectra when
KeepUngroupedSpectra. Errors add in quadrature; event workspaces stay events (PreserveEvents).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from defusedxml import ElementTree as SafeET

from livereduce.algorithms._util import grouped_spectra, index_range, int_list, remap_events, require_matrix
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace


def indices_of_spectra(ws, numbers, alg: str) -> np.ndarray:
    nums = ws.spectra.numbers
    wanted = np.asarray(numbers, np.int64)
    missing = sorted(set(wanted.tolist()) - set(nums.tolist()))
    if missing:
        raise AlgorithmError(f"{alg}: spectrum numbers {missing[:10]} are not in the workspace")
    pos = {int(n): i for i, n in reversed(list(enumerate(nums)))}
    return np.array([pos[int(n)] for n in wanted], np.int64)


def indices_of_detectors(ws, ids, alg: str) -> np.ndarray:
    """Workspace indices of the spectra holding any of the detector ids (in the ids' order, each once)."""
    s = ws.spectra
    owner = np.repeat(np.arange(len(s)), np.diff(s.det_offsets))
    det = s.det_ids[s.det_offsets[0] : s.det_offsets[-1]]
    out: list[int] = []
    missing = []
    for d in np.asarray(ids, np.int64):
        hit = owner[det == d]
        if hit.size == 0:
            missing.append(int(d))
        out.extend(int(i) for i in hit if int(i) not in out)
    if missing:
        raise AlgorithmError(f"{alg}: detector ids {missing[:10]} are not in the workspace")
    return np.array(out, np.int64)


# -- MaskDetectors ---------------------------------------------------------------------------------


def mask_spectra(ws, idx: np.ndarray) -> None:
    """Zero the spectra at `idx` and flag them masked, in place."""
    if idx.size == 0:
        return
    spectra = ws.spectra.copy()  # the Spectra object may be shared with other workspaces
    masked = spectra.is_masked().copy()
    masked[idx] = True
    spectra.masked = masked
    ws.spectra = spectra
    if isinstance(ws, EventWorkspace):
        ws.edges  # noqa: B018  # the default binning, fixed before the events change
        keep = ~np.isin(ws.events.index, idx.astype(np.uint32))
        ws.events = ws.events.take(keep)
        ws._order = None
    else:
        ws.values[idx] = 0.0
        ws.variances[idx] = 0.0


@algorithm(
    "MaskDetectors",
    [
        Prop("Workspace", kind=IN),
        Prop("SpectraList", None),
        Prop("DetectorList", None),
        Prop("WorkspaceIndexList", None),
        Prop("MaskedWorkspace", None, kind=IN, optional_ws=True),
        Prop("ForceInstrumentMasking", False),
        Prop("StartWorkspaceIndex", 0),
        Prop("EndWorkspaceIndex", None),
        Prop("ComponentList", None),
    ],
)
def _mask_detectors(
    Workspace,
    SpectraList,
    DetectorList,
    WorkspaceIndexList,
    MaskedWorkspace,
    ForceInstrumentMasking,
    StartWorkspaceIndex,
    EndWorkspaceIndex,
    ComponentList,
):
    """Mask spectra (by spectrum number, detector id, workspace index, or as another workspace masks them):
    their data become 0 and they are flagged masked. Works in place."""
    ws = require_matrix(Workspace, "MaskDetectors")
    if ComponentList:
        raise AlgorithmError("MaskDetectors: ComponentList is not supported by the embedded engine")
    chosen: set[int] = set()
    if SpectraList is not None and int_list(SpectraList):
        chosen.update(indices_of_spectra(ws, int_list(SpectraList), "MaskDetectors").tolist())
    if DetectorList is not None and int_list(DetectorList):
        chosen.update(indices_of_detectors(ws, int_list(DetectorList), "MaskDetectors").tolist())
    if WorkspaceIndexList is not None and int_list(WorkspaceIndexList):
        chosen.update(index_range(ws, None, None, WorkspaceIndexList, "MaskDetectors").tolist())
    if MaskedWorkspace is not None:
        chosen.update(_from_mask(ws, MaskedWorkspace, StartWorkspaceIndex, EndWorkspaceIndex))
    mask_spectra(ws, np.array(sorted(chosen), np.int64))


def _from_mask(ws, mask, start, end) -> list[int]:
    """The spectra `mask` masks: a MaskWorkspace by its non-zero Y per detector, another workspace by its
    masked flags (spectrum for spectrum when the sizes match, else by detector id); within [start, end]."""
    n = ws.getNumberHistograms()
    lo, hi = int(start or 0), n - 1 if end is None else int(end)
    if mask.id() == "MaskWorkspace":
        flagged = np.asarray(mask.values[:, 0] != 0)
    else:
        flagged = mask.spectra.is_masked()
    if mask.id() != "MaskWorkspace" and mask.getNumberHistograms() == n:
        hits = np.flatnonzero(flagged)
    else:
        s = mask.spectra
        ids = np.concatenate(
            [s.detector_ids(int(i)) for i in np.flatnonzero(flagged)] or [np.empty(0, np.int32)]
        )
        mine = ws.spectra
        owner = np.repeat(np.arange(n), np.diff(mine.det_offsets))
        hits = np.unique(owner[np.isin(mine.det_ids[mine.det_offsets[0] : mine.det_offsets[-1]], ids)])
    return [int(i) for i in hits if lo <= i <= hi]


# -- GroupDetectors --------------------------------------------------------------------------------


def parse_pattern(pattern: str, n: int) -> list[list[int]]:
    """Mantid's GroupingPattern over workspace indices: ',' separates groups, 'a:b' is one group per index,
    'a-b' one group of the range, '+' joins terms into one group."""
    groups: list[list[int]] = []
    for part in pattern.replace(" ", "").split(","):
        if not part:
            continue
        if re.fullmatch(r"\d+:\d+", part):
            a, b = (int(v) for v in part.split(":"))
            groups.extend([i] for i in range(a, b + 1))
            continue
        members: list[int] = []
        for term in part.split("+"):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", term)
            if not m:
                raise AlgorithmError(
                    f"GroupDetectors: cannot read GroupingPattern term {term!r} in {pattern!r}"
                )
            members.extend(range(int(m[1]), int(m[2] or m[1]) + 1))
        groups.append(members)
    bad = sorted({i for g in groups for i in g if not 0 <= i < n})
    if bad:
        raise AlgorithmError(f"GroupDetectors: GroupingPattern indices {bad[:10]} are outside 0..{n - 1}")
    return groups


def read_map_file(path: str) -> tuple[list[int], list[list[int]], list[str]]:
    """(group numbers, spectrum numbers per group, 'spectra'/'detectors' per group) from a .map or .xml."""
    if not Path(path).is_file():
        raise AlgorithmError(f"GroupDetectors: MapFile '{path}' does not exist")
    if path.lower().endswith(".xml"):
        try:
            root = SafeET.parse(path).getroot()
        except Exception as exc:  # malformed, or entities defusedxml refuses
            raise AlgorithmError(f"GroupDetectors: cannot read MapFile '{path}': {exc}") from None
        numbers, members, kinds = [], [], []
        for k, g in enumerate(root.iter("group"), 1):
            for tag, kind in (("ids", "spectra"), ("detids", "detectors")):
                for el in g.iter(tag):
                    numbers.append(k)
                    members.append(int_list(el.get("val", ""), f"MapFile {tag}"))
                    kinds.append(kind)
        return numbers, members, kinds
    tokens = [int(t) for line in Path(path).read_text().splitlines() for t in line.split("#")[0].split()]
    if not tokens:
        raise AlgorithmError(f"GroupDetectors: MapFile '{path}' is empty")
    numbers, members, pos = [], [], 1
    while pos + 1 < len(tokens):
        number, count = tokens[pos], tokens[pos + 1]
        if pos + 2 + count > len(tokens):
            raise AlgorithmError(
                f"GroupDetectors: MapFile '{path}': group {number} lists fewer than {count} spectra"
            )
        numbers.append(number)
        members.append(tokens[pos + 2 : pos + 2 + count])
        pos += 2 + count
    return numbers, members, ["spectra"] * len(numbers)


def group_detectors(ws, groups: list[np.ndarray], numbers, keep_ungrouped: bool, average: bool, events: bool):
    kept = [(g, num) for g, num in zip(groups, numbers, strict=True) if g.size]
    if not kept:
        raise AlgorithmError("GroupDetectors: no spectra to group")
    groups, numbers = [g for g, _ in kept], [num for _, num in kept]
    n = ws.getNumberHistograms()
    used = np.zeros(n, bool)
    for g in groups:
        used[g] = True
    rest = np.flatnonzero(~used) if keep_ungrouped else np.empty(0, np.int64)
    spectra = grouped_spectra(ws.spectra, groups, numbers)
    if rest.size:
        spectra = spectra.concat(ws.spectra.take(rest))
    disjoint = sum(g.size for g in groups) == int(used.sum())
    if isinstance(ws, EventWorkspace) and events and not average and disjoint:
        target = np.full(n, -1, np.int64)
        for k, g in enumerate(groups):
            target[g] = k
        target[rest] = len(groups) + np.arange(rest.size)
        edges = ws.edges if ws.edges.ndim == 1 else ws.edges[groups[0][0]]
        return ws.with_events(remap_events(ws.events, target), edges=edges, spectra=spectra)
    h: HistogramWorkspace = ws.histogram() if isinstance(ws, EventWorkspace) else ws
    e = h.edges
    if e.ndim == 2:
        first = [g[0] for g in groups] + rest.tolist()
        if not all(np.array_equal(e[i], e[g[0]]) for g in groups for i in g):
            raise AlgorithmError("GroupDetectors: grouped spectra have different bin edges; Rebin them first")
        e = e[first]
    order = np.concatenate(groups)
    starts = np.concatenate([[0], np.cumsum([g.size for g in groups])[:-1]])
    y = np.add.reduceat(h.values[order], starts, axis=0)
    v = np.add.reduceat(h.variances[order], starts, axis=0)
    if average:
        sizes = np.array([g.size for g in groups], float)[:, None]
        y, v = y / sizes, v / (sizes * sizes)
    if rest.size:
        y, v = np.vstack([y, h.values[rest]]), np.vstack([v, h.variances[rest]])
    return h.with_data(y, v, e.copy(), spectra)


@algorithm(
    "GroupDetectors",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("MapFile", ""),
        Prop("ExcludeGroupNumbers", None),
        Prop("IgnoreGroupNumber", True),
        Prop("GroupingPattern", ""),
        Prop("SpectraList", None),
        Prop("DetectorList", None),
        Prop("WorkspaceIndexList", None),
        Prop("KeepUngroupedSpectra", False),
        Prop("Behaviour", "Sum"),
        Prop("PreserveEvents", True),
        Prop("CopyGroupingFromWorkspace", None, kind=IN, optional_ws=True),
    ],
)
def _group_detectors(
    InputWorkspace,
    OutputWorkspace,
    MapFile,
    ExcludeGroupNumbers,
    IgnoreGroupNumber,
    GroupingPattern,
    SpectraList,
    DetectorList,
    WorkspaceIndexList,
    KeepUngroupedSpectra,
    Behaviour,
    PreserveEvents,
    CopyGroupingFromWorkspace,
):
    """Sum (Behaviour Sum) or average groups of spectra: from a .map/.xml MapFile, a GroupingPattern of
    workspace indices, or one group from SpectraList, DetectorList or WorkspaceIndexList (the first set)."""
    ws = require_matrix(InputWorkspace, "GroupDetectors")
    if CopyGroupingFromWorkspace is not None:
        raise AlgorithmError(
            "GroupDetectors: CopyGroupingFromWorkspace is not supported by the embedded engine"
        )
    if Behaviour not in ("Sum", "Average"):
        raise AlgorithmError(f"GroupDetectors: Behaviour must be Sum or Average, not {Behaviour!r}")
    n = ws.getNumberHistograms()
    if MapFile:
        numbers, members, kinds = read_map_file(str(MapFile))
        excluded = set(int_list(ExcludeGroupNumbers, "ExcludeGroupNumbers"))
        chosen = [
            (num, m, k) for num, m, k in zip(numbers, members, kinds, strict=True) if num not in excluded
        ]
        groups = [
            indices_of_spectra(ws, m, "GroupDetectors")
            if k == "spectra"
            else indices_of_detectors(ws, m, "GroupDetectors")
            for _, m, k in chosen
        ]
        numbers = list(range(1, len(groups) + 1)) if IgnoreGroupNumber else [num for num, _, _ in chosen]
    elif GroupingPattern:
        groups = [np.array(g, np.int64) for g in parse_pattern(str(GroupingPattern), n)]
        numbers = list(range(1, len(groups) + 1))
    elif SpectraList is not None and int_list(SpectraList):
        groups, numbers = [indices_of_spectra(ws, int_list(SpectraList), "GroupDetectors")], [1]
    elif DetectorList is not None and int_list(DetectorList):
        groups, numbers = [indices_of_detectors(ws, int_list(DetectorList), "GroupDetectors")], [1]
    elif WorkspaceIndexList is not None and int_list(WorkspaceIndexList):
        groups, numbers = [index_range(ws, None, None, WorkspaceIndexList, "GroupDetectors")], [1]
    else:
        raise AlgorithmError(
            "GroupDetectors: give MapFile, GroupingPattern, SpectraList, DetectorList or WorkspaceIndexList"
        )
    return group_detectors(
        ws, groups, numbers, bool(KeepUngroupedSpectra), Behaviour == "Average", bool(PreserveEvents)
    )
