"""Diffraction calibration and grouping files, and AlignDetectors (TOF → d-spacing with DIFC, DIFA, TZERO).

Facts of the formats (Mantid's documentation; own code):
- HDF5 calibration (SaveDiffCal / LoadDiffCal): a group `calibration` with one row per detector in datasets
  `detid` (int), `difc`, `difa`, `tzero` (µs/Å, µs/Å², µs), and optionally `group` (focus group, 0 = none)
  and `use` (1 = use, 0 = masked). A missing `difa`/`tzero` is 0, a missing `use` is 1.
- `.cal` text (Ariel): '#' comments, then `number udet offset select group`: no DIFC (it comes from the
  geometry), a relative `offset` (DIFC = DIFC_geometry / (1 + offset)), `select` 0 = masked.
- Grouping XML (LoadDetectorsGroupingFile): `<detector-grouping>` with `<group ID="n">` elements holding
  `<detids val="1-10,20"/>` (detector ids) and/or `<ids val="…"/>` (spectrum numbers); groups without an ID
  are numbered 1, 2, … in order.

Time of flight and d: TOF = DIFC·d + DIFA·d² + TZERO. With DIFA = 0, d = (TOF − TZERO)/DIFC; otherwise the
root that tends to that as DIFA → 0, written without cancellation: d = 2(TOF − TZERO) / (DIFC +
sqrt(DIFC² + 4·DIFA·(TOF − TZERO))). A TOF with no real root (DIFA < 0, past the turning point) gives NaN,
which no bin holds.

DIFC from the geometry (no calibration, or a pixel the calibration lacks): Bragg's law λ = 2 d sinθ with
λ = h·TOF/(m_n·L), L = L1 + L2, gives TOF = (2 m_n L sinθ / h)·d, so DIFC = 2 m_n L sinθ / h (written once,
here; the constant is units.K_LAMBDA = h/m_n in Å·m/µs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from livereduce.algorithms._util import int_list, require_matrix
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.algorithms.units import K_LAMBDA
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.jit import njit
from livereduce.workspace.spectra import Spectra

H5_SUFFIXES = (".h5", ".hd5", ".hdf", ".hdf5")


def difc_from_geometry(l1, l2, two_theta) -> np.ndarray:
    """DIFC (µs/Å) = 2 m_n (L1 + L2) sin(2θ/2) / h; NaN where the geometry is unknown."""
    with np.errstate(invalid="ignore"):
        return 2.0 * (np.asarray(l1) + np.asarray(l2)) * np.sin(np.asarray(two_theta) / 2.0) / K_LAMBDA


@dataclass(frozen=True, eq=False)
class Calibration:
    """Per detector (sorted by id): DIFC (NaN: take it from the geometry), DIFA, TZERO, the .cal offset
    (applied to the geometric DIFC), the focus group (0: none) and use (False: masked)."""

    det_ids: np.ndarray
    difc: np.ndarray
    difa: np.ndarray
    tzero: np.ndarray
    offset: np.ndarray
    group: np.ndarray
    use: np.ndarray
    source: str = ""

    @classmethod
    def of(cls, det_ids, difc=None, difa=None, tzero=None, offset=None, group=None, use=None, source=""):
        ids = np.asarray(det_ids, np.int64).ravel()
        n = ids.size

        def col(v, fill, dtype):
            a = np.full(n, fill, dtype) if v is None else np.asarray(v, dtype).ravel()
            if a.size != n:
                raise AlgorithmError(f"calibration {source or ''}: a column has {a.size} rows, detid has {n}")
            return a

        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        if n > 1 and np.any(ids[1:] == ids[:-1]):
            raise AlgorithmError(
                f"calibration {source}: detector id {int(ids[1:][ids[1:] == ids[:-1]][0])} twice"
            )
        cols = [
            col(v, f, t)[order]
            for v, f, t in (
                (difc, np.nan, float),
                (difa, 0.0, float),
                (tzero, 0.0, float),
                (offset, 0.0, float),
                (group, 0, np.int64),
                (use, True, bool),
            )
        ]
        for a in (ids, *cols):
            a.setflags(write=False)
        return cls(ids, *cols, source=source)

    def masked_ids(self) -> np.ndarray:
        return self.det_ids[~self.use]

    def grouping(self) -> tuple[np.ndarray, np.ndarray]:
        """(detector ids, groups) of the grouped detectors (group > 0), as DiffractionFocussing takes them."""
        g = self.group > 0
        return self.det_ids[g], self.group[g]


_CACHE: dict[str, tuple[tuple, object]] = {}


def _cached(path: str, what: str, read):
    """read(path), again only when the file changes (size, mtime, inode): live scripts pass the same file
    every chunk."""
    try:
        st = os.stat(path)
    except (OSError, ValueError, TypeError):
        raise AlgorithmError(f"{what} file '{path}' does not exist") from None
    key = (what, st.st_size, st.st_mtime_ns, st.st_ino)
    hit = _CACHE.get(path + "\0" + what)
    if hit is None or hit[0] != key:
        hit = _CACHE[path + "\0" + what] = (key, read(path))
    return hit[1]


def read_calibration(path: str) -> Calibration:
    """A calibration from an HDF5 (.h5 …) or .cal file."""
    path = str(path)
    if path.lower().endswith(H5_SUFFIXES):
        return _cached(path, "calibration", _read_h5)
    if path.lower().endswith(".cal"):
        return _cached(path, "calibration", _read_cal)
    raise AlgorithmError(f"calibration file '{path}': expected .h5/.hd5/.hdf or .cal")


def _read_h5(path: str) -> Calibration:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "calibration" not in f or "detid" not in f["calibration"]:
                raise AlgorithmError(f"calibration file '{path}' has no calibration/detid")
            c = f["calibration"]
            cols = {
                k: (c[k][()] if k in c else None) for k in ("detid", "difc", "difa", "tzero", "group", "use")
            }
    except OSError as exc:
        raise AlgorithmError(f"calibration file '{path}': {exc}") from None
    if cols["difc"] is None:
        raise AlgorithmError(f"calibration file '{path}' has no calibration/difc")
    use = None if cols["use"] is None else np.asarray(cols["use"]) != 0
    return Calibration.of(
        cols["detid"], cols["difc"], cols["difa"], cols["tzero"], None, cols["group"], use, source=path
    )


def _read_cal(path: str) -> Calibration:
    try:
        rows = np.loadtxt(path, comments="#", ndmin=2, dtype=float)
    except ValueError as exc:
        raise AlgorithmError(
            f"calibration file '{path}': expected 'number udet offset select group' ({exc})"
        ) from None
    if rows.size and rows.shape[1] < 5:
        raise AlgorithmError(f"calibration file '{path}': expected 5 columns, found {rows.shape[1]}")
    rows = rows.reshape(-1, 5) if rows.size == 0 else rows
    return Calibration.of(
        rows[:, 1].astype(np.int64),
        offset=rows[:, 2],
        group=rows[:, 4].astype(np.int64),
        use=rows[:, 3] != 0,
        source=path,
    )


def read_grouping_xml(path: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, list[int]]]]:
    """(detector ids sorted, their groups, [(group, spectrum numbers)]) of a Mantid grouping XML file."""

    def read(p: str):
        from defusedxml import ElementTree as SafeET

        try:
            root = SafeET.parse(p).getroot()
        except Exception as exc:  # malformed, or entities defusedxml refuses
            raise AlgorithmError(f"grouping file '{p}': {exc}") from None
        ids: list[int] = []
        groups: list[int] = []
        spectra: list[tuple[int, list[int]]] = []
        for k, g in enumerate(root.iter("group"), 1):
            number = int(g.get("ID", k))
            for el in g.iter("detids"):
                members = int_list(el.get("val", ""), "grouping detids")
                ids += members
                groups += [number] * len(members)
            for el in g.iter("ids"):
                spectra.append((number, int_list(el.get("val", ""), "grouping ids")))
            if next(g.iter("component"), None) is not None:
                raise AlgorithmError(
                    f"grouping file '{p}': <component> groups are not supported by the embedded engine; "
                    f"list the detector ids (<detids>)"
                )
        a, b = np.asarray(ids, np.int64), np.asarray(groups, np.int64)
        order = np.argsort(a, kind="stable")
        return a[order], b[order], spectra

    return _cached(str(path), "grouping", read)


def spectrum_groups(
    ws, ids: np.ndarray, groups: np.ndarray, by_spectrum: list[tuple[int, list[int]]], alg: str
):
    """The grouping XML's <ids> groups (spectrum numbers) added as the detector ids those spectra hold."""
    s = ws.spectra
    numbers = {int(n): i for i, n in enumerate(s.numbers)}
    more_ids, more_groups = [ids], [groups]
    for group, spectra in by_spectrum:
        missing = [n for n in spectra if n not in numbers]
        if missing:
            raise AlgorithmError(
                f"AlignAndFocusPowder: grouping file: no spectrum {missing[0]} in the workspace"
            )
        det = np.concatenate([s.detector_ids(numbers[n]) for n in spectra]) if spectra else np.empty(0)
        more_ids.append(det.astype(np.int64))
        more_groups.append(np.full(det.size, group, np.int64))
    all_ids, all_groups = np.concatenate(more_ids), np.concatenate(more_groups)
    order = np.argsort(all_ids, kind="stable")
    return all_ids[order], all_groups[order]


class GroupingWorkspace(HistogramWorkspace):
    """Mantid's GroupingWorkspace: one spectrum per detector, Y = its group (0: not grouped)."""

    @classmethod
    def from_detectors(cls, det_ids, groups, *, instrument: str = "") -> GroupingWorkspace:
        y = np.asarray(groups, float).reshape(-1, 1)
        return cls(
            y,
            np.zeros_like(y),
            np.array([0.0, 1.0]),
            Spectra.one_to_one(det_ids, instrument=instrument),
            unit_id="Empty",
        )

    def id(self) -> str:
        return "GroupingWorkspace"

    def grouping(self) -> tuple[np.ndarray, np.ndarray]:
        ids = self.spectra.det_ids.astype(np.int64)
        groups = self.values[:, 0].astype(np.int64)
        keep = groups > 0
        order = np.argsort(ids[keep], kind="stable")
        return ids[keep][order], groups[keep][order]


# ---- per-spectrum constants --------------------------------------------------------------------------------


def spectrum_constants(
    spectra: Spectra, cal: Calibration | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(DIFC, DIFA, TZERO) per spectrum: the mean of its detectors' (Mantid uses one detector per SNS spectrum).

    A detector's DIFC is the calibration's when it has a finite positive one, else the geometric DIFC times
    1/(1 + offset) (offset 0 without a .cal entry); NaN when neither is known."""
    n = len(spectra)
    counts = np.diff(spectra.det_offsets)
    det = spectra.det_ids[spectra.det_offsets[0] : spectra.det_offsets[-1]].astype(np.int64)
    owner = np.repeat(np.arange(n), counts)
    geo = _detector_difc(spectra, det, owner)
    difc, difa, tzero = geo, np.zeros(det.size), np.zeros(det.size)
    if cal is not None and cal.det_ids.size and det.size:
        pos = np.minimum(np.searchsorted(cal.det_ids, det), cal.det_ids.size - 1)
        hit = cal.det_ids[pos] == det
        c = np.where(hit, cal.difc[pos], np.nan)
        good = hit & np.isfinite(c) & (c > 0)
        offset = np.where(hit, cal.offset[pos], 0.0)
        difc = np.where(good, c, geo / (1.0 + offset))
        difa = np.where(good, cal.difa[pos], 0.0)
        tzero = np.where(good, cal.tzero[pos], 0.0)
    out = []
    for a in (difc, difa, tzero):
        s = np.full(n, np.nan)
        full = counts > 0
        if full.any():
            s[full] = (
                np.add.reduceat(a, spectra.det_offsets[:-1][full] - spectra.det_offsets[0]) / counts[full]
            )
        out.append(s)
    return out[0], out[1], out[2]


def _detector_difc(spectra: Spectra, det: np.ndarray, owner: np.ndarray) -> np.ndarray:
    g = spectra.geometry
    if g is not None and det.size:
        try:
            k = g.index_of(det)
            return difc_from_geometry(g.l1 if np.isfinite(g.l1) else spectra.l1, g.l2[k], g.two_theta[k])
        except KeyError:
            pass
    return difc_from_geometry(spectra.l1, spectra.l2[owner], spectra.two_theta[owner])


# ---- the kernel --------------------------------------------------------------------------------------------


@njit(nogil=True)
def _tof_to_d(tof, index, difc, difa, tzero, out):  # pragma: no cover - compiled
    for i in range(tof.size):
        k = index[i]
        t = tof[i] - tzero[k]
        a = difa[k]
        if a == 0.0:
            out[i] = t / difc[k]
        else:
            disc = difc[k] * difc[k] + 4.0 * a * t
            out[i] = 2.0 * t / (difc[k] + np.sqrt(disc)) if disc >= 0.0 else np.nan


def tof_to_d(tof: np.ndarray, index: np.ndarray, difc, difa, tzero) -> np.ndarray:
    """d (Å) of each TOF (µs) with its row's constants (`index` selects the row)."""
    out = np.empty(tof.size, np.float64)
    _tof_to_d(
        np.ascontiguousarray(tof, np.float64),
        np.ascontiguousarray(index),
        np.ascontiguousarray(difc, np.float64),
        np.ascontiguousarray(difa, np.float64),
        np.ascontiguousarray(tzero, np.float64),
        out,
    )
    return out


def align(ws, cal: Calibration | None = None):
    """`ws` (in TOF) in d-spacing with each spectrum's DIFC, DIFA, TZERO (a new workspace)."""
    require_matrix(ws, "AlignDetectors")
    if ws.x_unit.unit_id != "TOF":
        raise AlgorithmError(f"AlignDetectors: the input must be in TOF, not {ws.x_unit.unit_id}")
    difc, difa, tzero = spectrum_constants(ws.spectra, cal)
    unknown = ~(np.isfinite(difc) & (difc > 0)) & ~ws.spectra.is_masked()
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise AlgorithmError(
            f"AlignDetectors: {int(unknown.sum())} spectra have neither a calibration nor a known geometry "
            f"(e.g. spectrum {int(ws.spectra.numbers[i])}, detectors {ws.spectra.detector_ids(i)[:5].tolist()}); "
            f"give a calibration that covers them, or mask them"
        )
    bad = ~(np.isfinite(difc) & (difc > 0))  # masked spectra without constants: their (zeroed) data stay 0
    difc, difa, tzero = np.where(bad, 1.0, difc), np.where(bad, 0.0, difa), np.where(bad, 0.0, tzero)
    n = ws.getNumberHistograms()
    e = ws.edges
    e2 = e if e.ndim == 2 else np.broadcast_to(e, (n, e.size))
    rows = np.repeat(np.arange(n, dtype=np.int64), e2.shape[1])
    edges = tof_to_d(e2.ravel(), rows, difc, difa, tzero).reshape(e2.shape)
    if isinstance(ws, EventWorkspace):
        ev = ws.events
        x = tof_to_d(ev.x, ev.index, difc, difa, tzero)
        out = ev.replaced(x=x)
        return ws.with_events(out, edges=np.ascontiguousarray(edges), unit_id="dSpacing")
    return ws.with_data(
        ws.values.copy(), ws.variances.copy(), np.ascontiguousarray(edges), unit_id="dSpacing"
    )


def calibration_from(workspace_or_file, alg: str) -> Calibration | None:
    """A Calibration from a CalibrationWorkspace (LoadDiffCal's table) or a file name; None for neither."""
    if workspace_or_file is None or (isinstance(workspace_or_file, str) and not workspace_or_file):
        return None
    if isinstance(workspace_or_file, str):
        return read_calibration(workspace_or_file)
    cal = getattr(workspace_or_file, "calibration", None)
    if isinstance(cal, Calibration):
        return cal
    raise AlgorithmError(
        f"{alg}: CalibrationWorkspace must be a table from LoadDiffCal, not {type(workspace_or_file).__name__}"
    )


@algorithm(
    "AlignDetectors",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("CalibrationFile", ""),
        Prop("CalibrationWorkspace", None, kind=IN, optional_ws=True),
        Prop("OffsetsWorkspace", None, kind=IN, optional_ws=True),
    ],
)
def _align_alg(InputWorkspace, OutputWorkspace, CalibrationFile, CalibrationWorkspace, OffsetsWorkspace):
    """TOF → d-spacing with DIFC/DIFA/TZERO from a calibration (else from the geometry)."""
    if OffsetsWorkspace is not None:
        raise AlgorithmError(
            "AlignDetectors: OffsetsWorkspace is not supported; give CalibrationFile or CalibrationWorkspace"
        )
    cal = calibration_from(CalibrationWorkspace, "AlignDetectors") or calibration_from(
        CalibrationFile, "AlignDetectors"
    )
    return align(InputWorkspace, cal)


def calibration_table(cal: Calibration):
    """LoadDiffCal's `<name>_cal` table (detid, difc, difa, tzero); it carries the Calibration itself for
    AlignDetectors / AlignAndFocusPowder (its offsets and masks too)."""
    from livereduce.algorithms.powder_tables import TableWorkspace

    t = TableWorkspace(
        [("detid", "int"), ("difc", "double"), ("difa", "double"), ("tzero", "double")],
        [
            [int(i), float(c), float(a), float(z)]
            for i, c, a, z in zip(cal.det_ids, cal.difc, cal.difa, cal.tzero, strict=True)
        ],
    )
    t.calibration = cal  # type: ignore[attr-defined]
    return t


def with_geometric_difc(cal: Calibration, spectra: Spectra) -> Calibration:
    """`cal` with DIFC filled from the geometry (times 1/(1 + offset)) where it has none (.cal files)."""
    missing = ~np.isfinite(cal.difc)
    if not missing.any():
        return cal
    s = Spectra.one_to_one(cal.det_ids, l1=spectra.l1)
    s.geometry = spectra.geometry
    owner = np.full(cal.det_ids.size, -1)
    if spectra.geometry is None:  # per-spectrum geometry of the workspace: one detector per spectrum
        from livereduce.workspace.instrument_view import Geometry

        try:
            owner = Geometry(spectra).owners(cal.det_ids)
        except ValueError:
            return cal
        s.l2[:], s.two_theta[:] = spectra.l2[owner], spectra.two_theta[owner]
    geo = _detector_difc(s, cal.det_ids, np.arange(cal.det_ids.size))
    difc = np.where(missing, geo / (1.0 + cal.offset), cal.difc)
    return Calibration.of(cal.det_ids, difc, cal.difa, cal.tzero, None, cal.group, cal.use, source=cal.source)


@algorithm(
    "LoadDiffCal",
    [
        Prop("InputWorkspace", None, kind=IN, optional_ws=True),
        Prop("InstrumentName", ""),
        Prop("InstrumentFilename", ""),
        Prop("Filename"),
        Prop("MakeGroupingWorkspace", True),
        Prop("MakeCalWorkspace", True),
        Prop("MakeMaskWorkspace", True),
        Prop("WorkspaceName"),
        Prop("TofMin", 0.0),
        Prop("TofMax", None),
        Prop("FixConversionIssues", True),
        Prop("GroupFilename", ""),
    ],
    per_member=False,
)
def _load_diff_cal(
    InputWorkspace,
    InstrumentName,
    InstrumentFilename,
    Filename,
    MakeGroupingWorkspace,
    MakeCalWorkspace,
    MakeMaskWorkspace,
    WorkspaceName,
    TofMin,
    TofMax,
    FixConversionIssues,
    GroupFilename,
):
    """Read a calibration (.h5 or .cal) into <WorkspaceName>_cal, _group and _mask."""
    from livereduce.workspace.ads import mtd
    from livereduce.workspace.mask import MaskWorkspace

    cal = read_calibration(str(Filename))
    spectra = None
    if InputWorkspace is not None:
        spectra = InputWorkspace.spectra
    elif InstrumentFilename:
        from livereduce.instrument.attach import attach_geometry
        from livereduce.instrument.load import read_idf

        spectra = attach_geometry(Spectra.one_to_one([]), read_idf(str(InstrumentFilename)))
    if spectra is not None:
        cal = with_geometric_difc(cal, spectra)
    name = str(WorkspaceName)
    instrument = spectra.instrument if spectra is not None else str(InstrumentName)
    made = {}
    if MakeCalWorkspace:
        made[f"{name}_cal"] = calibration_table(cal)
    if MakeGroupingWorkspace:
        ids, groups = cal.det_ids, cal.group
        if GroupFilename:
            ids, groups, by_spectrum = read_grouping_xml(str(GroupFilename))
            if by_spectrum and InputWorkspace is None:
                raise AlgorithmError(
                    "LoadDiffCal: a grouping file by spectrum number (<ids>) needs InputWorkspace"
                )
            if by_spectrum:
                ids, groups = spectrum_groups(InputWorkspace, ids, groups, by_spectrum, "LoadDiffCal")
        made[f"{name}_group"] = GroupingWorkspace.from_detectors(ids, groups, instrument=instrument)
    if MakeMaskWorkspace:
        made[f"{name}_mask"] = MaskWorkspace.from_detectors(cal.det_ids, ~cal.use, instrument=instrument)
    for key, ws in made.items():
        mtd.addOrReplace(key, ws)
    return {}
