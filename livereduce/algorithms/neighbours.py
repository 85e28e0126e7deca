"""MaskBTP and SumNeighbours: algorithms that address detectors by bank, tube and pixel, from the bank layouts
the IDF reader keeps (livereduce.instrument.banks: each RectangularDetector's x-by-y id grid and each bank's
tube-by-pixel grid).

MaskBTP, as Mantid documents it: Bank, Tube and Pixel select banks (numbered as the instrument names them,
`bank<N>` on most), tubes and pixels within them (a blank entry is all of them); on instruments with
RectangularDetectors a tube is an x column and a pixel a y row. Tubes and pixels count from 1 on tube
instruments and from 0 on rectangular ones, as Mantid's list says. The detectors are masked as MaskDetectors
masks them. SumNeighbours sums SumX × SumY blocks of each RectangularDetector into one spectrum.
"""

from __future__ import annotations

import numpy as np

from livereduce.algorithms._util import int_list, require_matrix
from livereduce.algorithms.grouping import group_detectors, mask_spectra
from livereduce.algorithms.registry import IN, OUT, OUT_VALUE, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.instruments import lookup

# Mantid's MaskBTP: the instruments it knows, their bank number ranges, and those counting tubes and pixels
# from 1 (the rest count from 0). Facts from its documentation and property list.
INSTRUMENTS = (
    "ARCS BIOSANS CG2 CG3 CHESS CNCS CORELLI EQ-SANS GPSANS HYSPEC D33 MANDI NOMAD POWGEN REF_M SEQUOIA "
    "SNAP SXD TOPAZ WAND WISH"
).split()
BANK_MIN = {"D33": 0, "SEQUOIA": 23, "TOPAZ": 10}
BANK_MAX = {
    "ARCS": 115, "BIOSANS": 88, "CG2": 48, "CG3": 88, "CHESS": 163, "CNCS": 50, "CORELLI": 91, "D33": 4,
    "EQ-SANS": 48, "GPSANS": 48, "HYSPEC": 20, "MANDI": 59, "NOMAD": 99, "POWGEN": 300, "REF_M": 1,
    "SEQUOIA": 150, "SNAP": 64, "SXD": 11, "TOPAZ": 59, "WAND": 8, "WISH": 10,
}  # fmt: skip
FROM_ONE = {"ARCS", "BIOSANS", "CG2", "CG3", "CHESS", "CNCS", "CORELLI", "EQ-SANS", "GPSANS", "HYSPEC"}
FROM_ONE |= {"NOMAD", "SEQUOIA", "WAND", "WISH"}
# bank names that depend on the IDF's date or a table we do not keep: refused rather than guessed
_UNNAMED = {"SEQUOIA", "CG2", "GPSANS", "CG3", "BIOSANS", "EQ-SANS", "D33"}


def _geometry(ws, alg: str):
    g = ws.spectra.geometry
    if g is None or not getattr(g, "banks", ()):
        raise AlgorithmError(
            f"{alg}: the workspace's instrument has no bank layout (no instrument definition, or one without "
            f"RectangularDetectors or banks of tubes); give the listener's IDF (config instrument_definition)"
        )
    return g


def _full_name(name: str) -> str:
    """POWGEN for an IDF named PG3 (older POWGEN files use the short name)."""
    try:
        return lookup(name).name if name else ""
    except KeyError:
        return name


def bank_name(instrument: str, number: int) -> str:
    """Mantid's component name of bank `number` on `instrument`; AlgorithmError when out of its range."""
    lo, hi = BANK_MIN.get(instrument, 1), BANK_MAX[instrument]
    if not lo <= number <= hi:
        raise AlgorithmError(f"MaskBTP: Out of range index={number} for {instrument} instrument bank numbers")
    if instrument in _UNNAMED:
        raise AlgorithmError(
            f"MaskBTP: bank numbers of {instrument} are not supported by the embedded engine; "
            f"give Components by name"
        )
    if instrument == "ARCS":
        names = [f"B{b}" for b in range(1, 39)] + [f"M{b}" for b in range(1, 32)] + ["M32A", "M32B"]
        names += [f"M{b}" for b in range(33, 39)] + [f"T{b}" for b in range(1, 39)]
        return names[number - 1]
    if instrument == "WISH":
        return f"panel{number:02d}"
    if instrument == "REF_M":
        return f"detector{number}"
    return f"bank{number}"


def _picks(text, start: int) -> np.ndarray | None:
    """Tube or Pixel: None for all; 'edges' for the first and last; else a Mantid int list less `start`."""
    text = "" if text is None else str(text).strip()
    if not text:
        return None
    if text.lower() == "edges":
        return np.array([0, -1])
    values = int_list(text, "MaskBTP Tube/Pixel list")
    if not values:
        raise AlgorithmError(f'MaskBTP: Could not generate values from "{text}"')
    return np.array(values, np.int64) - start


def _take(n: int, picks: np.ndarray | None) -> np.ndarray:
    """Positions 0..n-1 picked: those beyond the end are left out (negative ones count from the end, as Mantid's
    array indexing does); an error when none is in range."""
    if picks is None:
        return np.arange(n)
    kept = picks[picks < n]
    if kept.size == 0:
        raise AlgorithmError(f"MaskBTP: None of the indices ({picks + 0}) are in range")
    return np.arange(n)[kept]


def masked_btp(g, instrument: str, components, banks, tube, pixel) -> np.ndarray:
    """The detector ids MaskBTP selects, bank by bank, tube by tube, pixel by pixel."""
    if components:
        names = [str(c) for c in components]
    else:
        numbers = list(banks) or range(BANK_MIN.get(instrument, 1), BANK_MAX[instrument] + 1)
        names = [bank_name(instrument, int(b)) for b in numbers]
    layouts = [b for b in (g.bank(n) for n in names) if b is not None]  # banks the instrument lacks: dropped
    if not layouts:
        if components:
            raise AlgorithmError(
                f"MaskBTP: no bank layout for the components {names[:5]}: the embedded engine masks "
                f"RectangularDetectors and banks of tubes by name"
            )
        raise AlgorithmError("MaskBTP: Filtered out all detectors from list of things to mask")
    start = 1 if instrument in FROM_ONE else 0
    tubes, pixels = _picks(tube, start), _picks(pixel, start)
    out = [
        b.ids[np.ix_(_take(b.ids.shape[0], tubes), _take(b.ids.shape[1], pixels))].ravel() for b in layouts
    ]
    return np.concatenate(out)


def mask_detector_ids(ws, ids: np.ndarray) -> None:
    """MaskDetectors(DetectorList=ids): the spectra holding any of them; ids the workspace lacks are skipped."""
    s = ws.spectra
    owner = np.repeat(np.arange(len(s)), np.diff(s.det_offsets))
    det = s.det_ids[s.det_offsets[0] : s.det_offsets[-1]]
    mask_spectra(ws, np.unique(owner[np.isin(det, ids)]))


@algorithm(
    "MaskBTP",
    [
        Prop("Workspace", None, kind=IN, optional_ws=True),
        Prop("Instrument", ""),
        Prop("Components", None),
        Prop("Bank", None),
        Prop("Tube", ""),
        Prop("Pixel", ""),
        Prop("MaskedDetectors", kind=OUT_VALUE),
    ],
)
def _mask_btp(Workspace, Instrument, Components, Bank, Tube, Pixel):
    """Mask detectors by bank, tube and pixel (in place); returns the masked detector ids."""
    if Workspace is None:
        raise AlgorithmError(
            "MaskBTP: the embedded engine needs the Workspace (it cannot load an empty instrument by name)"
        )
    ws = require_matrix(Workspace, "MaskBTP")
    if isinstance(Components, str):
        components = [c.strip() for c in Components.split(",") if c.strip()]
    else:
        components = [str(c) for c in (Components or []) if str(c)]
    banks = int_list(Bank, "Bank")
    if banks and components:
        raise AlgorithmError('MaskBTP: Bank: Cannot specify in combination with "Components"')
    if Instrument and Instrument not in INSTRUMENTS:
        raise AlgorithmError(f"MaskBTP: Instrument {Instrument!r} is not one of {', '.join(INSTRUMENTS)}")
    g = _geometry(ws, "MaskBTP")
    name = _full_name(g.name or ws.spectra.instrument) or str(
        Instrument
    )  # the workspace's wins, as in Mantid
    if not components and name not in INSTRUMENTS:
        raise AlgorithmError(f"MaskBTP: Instrument '{name}' not in the allowed list")
    ids = masked_btp(g, name, components, banks, Tube, Pixel)
    if ids.size:
        mask_detector_ids(ws, ids)
    return {"MaskedDetectors": ids.astype(np.int32)}


# -- SumNeighbours ---------------------------------------------------------------------------------


def neighbour_groups(ws, sum_x: int, sum_y: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per SumX × SumY block of every RectangularDetector (banks in IDF order, then x blocks, then y blocks
    within): the workspace indices of its pixels' spectra, and its detector ids."""
    g = _geometry(ws, "SumNeighbours")
    rects = [b for b in g.banks if b.rectangular]
    if not rects:
        raise AlgorithmError(
            "SumNeighbours: the instrument has no RectangularDetector; summing neighbours of tubes (Mantid's "
            "SmoothNeighbours by radius) is not supported by the embedded engine"
        )
    s = ws.spectra
    if np.any(np.diff(s.det_offsets) != 1):
        raise AlgorithmError(
            "SumNeighbours: each spectrum must hold exactly one detector (no grouping or earlier SumNeighbours)"
        )
    det = s.det_ids[s.det_offsets[:-1]].astype(np.int64)
    order = np.argsort(det, kind="stable")
    groups: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    for b in rects:
        nx, ny = b.ids.shape
        for n, step, axis in ((nx, sum_x, "X"), (ny, sum_y, "Y")):
            if n % step:
                raise AlgorithmError(
                    f"SumNeighbours: Sum{axis}={step} does not evenly divide the {n} {axis} pixels of "
                    f"RectangularDetector '{b.names[0]}'"
                )
        blocks = b.ids.reshape(nx // sum_x, sum_x, ny // sum_y, sum_y).transpose(0, 2, 1, 3)
        blocks = blocks.reshape(-1, sum_x * sum_y)  # one row per block: bank by bank, x blocks, then y
        pos = np.minimum(np.searchsorted(det, blocks, sorter=order), max(det.size - 1, 0))
        at = order[pos] if det.size else np.zeros(blocks.shape, np.int64)
        hit = det[at] == blocks if det.size else np.zeros(blocks.shape, bool)
        groups.extend(np.sort(a[h]) for a, h in zip(at, hit, strict=True))
        ids.extend(blocks)
    return groups, ids


@algorithm(
    "SumNeighbours",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("SumX", 4),
        Prop("SumY", 4),
    ],
)
def _sum_neighbours(InputWorkspace, OutputWorkspace, SumX, SumY):
    """Sum SumX × SumY blocks of neighbouring pixels of each RectangularDetector into one spectrum (events stay
    events; errors add in quadrature)."""
    ws = require_matrix(InputWorkspace, "SumNeighbours")
    sx, sy = int(SumX), int(SumY)
    if sx < 1 or sy < 1:
        raise AlgorithmError(f"SumNeighbours: SumX and SumY must be at least 1, not {sx} and {sy}")
    groups = [g for g in neighbour_groups(ws, sx, sy)[0] if g.size]  # blocks the workspace has no pixel of
    numbers = list(range(1, len(groups) + 1))
    out = group_detectors(ws, groups, numbers, keep_ungrouped=False, average=False, events=True)
    out.spectra.geometry = ws.spectra.geometry
    return out
