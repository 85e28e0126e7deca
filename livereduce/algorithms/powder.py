"""The powder-diffraction path: RemovePromptPulse and AlignAndFocusPowder, composed from the engine's algorithms
in the order Mantid documents (its workflow diagram; own code):

    CompressEvents → CropWorkspace (TOF: TMin/TMax) → RemovePromptPulse → MaskDetectors → Rebin (TOF, when
    not Dspacing) → AlignDetectors → crop in wavelength (CropWavelengthMin/Max) → Rebin or ResampleX (d, when
    Dspacing) → DiffractionFocussing → EditInstrumentGeometry (PrimaryFlightPath, L2, Polar, Azimuthal) →
    ConvertUnits (TOF) → CompressEvents → Rebin (TOF, the Params' step(s) only)

The output is in TOF, as Mantid's: scripts ConvertUnits it to d-spacing. Values not given fall back to the
PropertyManager `ReductionProperties` (PDDetermineCharacterizations' d_min, d_max, tof_min, tof_max,
wavelength_min, wavelength_max), as Mantid's do.
"""

from __future__ import annotations

import numpy as np

from livereduce.algorithms._util import float_list, int_list, require_matrix
from livereduce.algorithms.binning import compress_events, rebin
from livereduce.algorithms.diffcal import (
    Calibration,
    align,
    calibration_from,
    difc_from_geometry,
    read_calibration,
    read_grouping_xml,
    spectrum_groups,
)
from livereduce.algorithms.focus import focus
from livereduce.algorithms.grouping import mask_spectra
from livereduce.algorithms.powder_kernels import compress
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.algorithms.spectra_ops import extract
from livereduce.algorithms.units import convert_units
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace

EMPTY = None  # Mantid's EMPTY_DBL: "not given"


# ---- RemovePromptPulse ---------------------------------------------------------------------------------------


def source_frequency(ws, given) -> float:
    if given not in (None, 0, 0.0):
        return float(given)
    run = ws.getRun()
    if run.hasProperty("frequency"):
        v = np.asarray(run.getProperty("frequency").value, float).ravel()
        v = v[np.isfinite(v) & (v > 0)]
        if v.size:
            return float(v.mean())
    raise AlgorithmError("RemovePromptPulse: no Frequency given and no 'frequency' log to take it from")


def remove_prompt_pulse(ws, width: float, frequency=None):
    """Drop events (zero histogram bins) within `width` µs after each prompt pulse k·T, T = 1/frequency, for the
    pulses between the data's first and last TOF."""
    require_matrix(ws, "RemovePromptPulse")
    period = 1e6 / source_frequency(ws, frequency)
    if isinstance(ws, EventWorkspace):
        if not ws.getNumberEvents():
            return ws.with_events(ws.events)
        x = ws.events.x
        lo, hi = float(x.min()), float(x.max())
    else:
        lo, hi = float(np.min(ws.edges)), float(np.max(ws.edges))
    first = np.ceil(lo / period)
    pulses = period * np.arange(first, np.floor(hi / period) + 1)
    if isinstance(ws, EventWorkspace):
        k = np.floor(x / period)
        inside = (x - k * period <= width) & (k >= first)
        return ws.with_events(ws.events.take(~inside))
    e = (
        ws.edges
        if ws.edges.ndim == 2
        else np.broadcast_to(ws.edges, (ws.getNumberHistograms(), ws.edges.size))
    )
    y, v = ws.values.copy(), ws.variances.copy()
    for p in pulses:  # a few pulses per frame: bins overlapping [p, p + width] are zeroed, as MaskBins does
        hit = (e[:, 1:] > p) & (e[:, :-1] < p + width)
        y[hit], v[hit] = 0.0, 0.0
    return ws.with_data(y, v)


@algorithm(
    "RemovePromptPulse",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("Width"),
        Prop("Frequency", None),
        Prop("TMin", None),
        Prop("TMax", None),
    ],
)
def _remove_prompt_pulse(InputWorkspace, OutputWorkspace, Width, Frequency, TMin, TMax):
    """Remove the events within Width µs after each prompt pulse (multiples of 1/Frequency)."""
    if TMin is not None or TMax is not None:
        raise AlgorithmError(
            "RemovePromptPulse: TMin/TMax are not supported; the data's own TOF range is used"
        )
    return remove_prompt_pulse(InputWorkspace, float(Width), Frequency)


# ---- AlignAndFocusPowder -------------------------------------------------------------------------------------


def _reduction_properties(name: str) -> dict:
    from livereduce.mantidapi.properties import PropertyManagerDataService  # at call time: no import cycle

    if not name or not PropertyManagerDataService.doesExist(name):
        return {}
    pm = PropertyManagerDataService.retrieve(name)
    return {k: pm.getProperty(k).value for k in pm.keys()}


def _grouping(ws, group_ws, group_file: str, cal: Calibration | None):
    """(detector ids, groups), or None for no focusing: GroupingWorkspace, else GroupFilename (XML, or a
    calibration's group column), else the calibration's groups."""
    if group_ws is not None:
        if not hasattr(group_ws, "grouping"):
            raise AlgorithmError(
                f"AlignAndFocusPowder: GroupingWorkspace must be a GroupingWorkspace, not {group_ws.id()}"
            )
        return group_ws.grouping()
    if group_file:
        if str(group_file).lower().endswith(".xml"):
            ids, groups, by_spectrum = read_grouping_xml(str(group_file))
            if by_spectrum:  # <ids>: spectrum numbers of this workspace, as their detectors
                ids, groups = spectrum_groups(ws, ids, groups, by_spectrum, "AlignAndFocusPowder")
            return ids, groups
        return read_calibration(str(group_file)).grouping()
    if cal is not None and np.any(cal.group > 0):
        return cal.grouping()
    return None


def _mask_ids(mask_ws, cal: Calibration | None) -> np.ndarray:
    ids = [cal.masked_ids()] if cal is not None else []
    if mask_ws is not None:
        if mask_ws.id() == "MaskWorkspace":
            flagged = np.repeat(mask_ws.values[:, 0] != 0, np.diff(mask_ws.spectra.det_offsets))
        else:
            flagged = np.repeat(mask_ws.spectra.is_masked(), np.diff(mask_ws.spectra.det_offsets))
        ids.append(mask_ws.spectra.det_ids[flagged].astype(np.int64))
    return np.unique(np.concatenate(ids)) if ids else np.empty(0, np.int64)


def _crop_wavelength(ws, lo: float, hi: float | None):
    """Keep λ = 2 d sinθ (each spectrum's geometric angle) within [lo, hi]: events outside dropped, histogram
    bins whose centre is outside zeroed."""
    two_sin = 2 * np.sin(ws.spectra.two_theta / 2)
    if not np.all(np.isfinite(two_sin)):
        raise AlgorithmError("AlignAndFocusPowder: CropWavelengthMin/Max need every spectrum's 2θ")
    hi = np.inf if hi is None else hi
    if isinstance(ws, EventWorkspace):
        ev = ws.events
        lam = ev.x * two_sin[ev.index]
        return ws.with_events(ev.take((lam >= lo) & (lam <= hi)))
    e = (
        ws.edges
        if ws.edges.ndim == 2
        else np.broadcast_to(ws.edges, (ws.getNumberHistograms(), ws.edges.size))
    )
    lam = 0.5 * (e[:, 1:] + e[:, :-1]) * two_sin[:, None]
    out = (lam < lo) | (lam > hi)
    y, v = ws.values.copy(), ws.variances.copy()
    y[out], v[out] = 0.0, 0.0
    return ws.with_data(y, v)


def _unwrap(ws, l_ref: float, tmin: float, tmax: float):
    """UnwrapSNS on aligned events: with each spectrum's geometric TOF t = d·DIFC and flight path L = L1 + L2,
    an event faster than the fastest possible neutron (t < L·Tmin/LRef) arrived a frame late: t += Tmax − Tmin.
    Tmin and Tmax are TMin/TMax when given, else the data's range (Mantid's docs)."""
    s = ws.spectra
    difc = difc_from_geometry(s.l1, s.l2, s.two_theta)
    length = s.l1 + s.l2
    if not np.all(np.isfinite(difc) & (difc > 0) & np.isfinite(length)):
        raise AlgorithmError("AlignAndFocusPowder: UnwrapRef needs every spectrum's L1, L2 and 2θ")
    ev = ws.events
    if not len(ev):
        return ws
    i = ev.index.astype(np.intp)
    tof = ev.x * difc[i]
    lo = tmin if tmin > 0 else float(np.min(tof))
    hi = tmax if tmax > lo else float(np.max(tof))
    late = tof < length[i] * lo / l_ref
    x = np.where(late, (tof + (hi - lo)) / difc[i], ev.x)
    return ws.with_events(ev.replaced(x=x))


def _remove_low_res(ws, difc_ref: float, tmin: float, k: float = 3.22):
    """RemoveLowResTOF's Hodges criterion on aligned data: a spectrum with geometric DIFC keeps
    TOF ≥ DIFC·s², s = sqrt(Tmin/DIFC_ref) + K·log10(DIFC_ref/DIFC) (no cut when s < 0), i.e. d ≥ s². Tmin is
    TMin when given, else the data's smallest TOF (d·DIFC); K = 3.22, as AlignAndFocusPowder passes it."""
    s = ws.spectra
    difc = difc_from_geometry(s.l1, s.l2, s.two_theta)
    if not np.all(np.isfinite(difc) & (difc > 0)):
        raise AlgorithmError("AlignAndFocusPowder: LowResRef needs every spectrum's L1, L2 and 2θ")
    if isinstance(ws, EventWorkspace):
        ev = ws.events
        if not len(ev):
            return ws
        i = ev.index.astype(np.intp)
        tmin = tmin if tmin > 0 else float(np.min(ev.x * difc[i]))
    else:
        tmin = tmin if tmin > 0 else float(np.min(ws.edges_2d()[:, 0] * difc))
    root = np.sqrt(tmin / difc_ref) + k * np.log10(difc_ref / difc)
    d_cut = np.where(root > 0, root * root, 0.0)
    if isinstance(ws, EventWorkspace):
        return ws.with_events(ev.take(ev.x >= d_cut[i]))
    e = ws.edges_2d()
    low = 0.5 * (e[:, 1:] + e[:, :-1]) < d_cut[:, None]
    y, v = ws.values.copy(), ws.variances.copy()
    y[low], v[low] = 0.0, 0.0
    return ws.with_data(y, v)


def _resample(ws, n: int, lo: float | None = None, hi: float | None = None):
    """ResampleX: |n| bins (logarithmic when n < 0) over [lo, hi], by default the data's range."""
    if isinstance(ws, EventWorkspace) and ws.getNumberEvents():
        x = ws.events.x
        lo = float(np.nanmin(x)) if lo is None else lo
        hi = float(np.nextafter(np.nanmax(x), np.inf)) if hi is None else hi
    else:
        lo = float(np.min(ws.edges)) if lo is None else lo
        hi = float(np.max(ws.edges)) if hi is None else hi
    if not hi > lo:
        hi = lo + 1.0
    edges = np.geomspace(lo, hi, abs(n) + 1) if n < 0 and lo > 0 else np.linspace(lo, hi, abs(n) + 1)
    if isinstance(ws, EventWorkspace):
        return ws.with_events(ws.events, edges=edges)
    return rebin(ws, [lo, (hi - lo) / abs(n), hi])


def _zero_outside(ws, dmins: list[float], dmaxs: list[float]):
    """Each focused spectrum i keeps only [dmins[i], dmaxs[i]] (per-bank d ranges): events dropped, bins zeroed."""
    lo, hi = np.asarray(dmins, float), np.asarray(dmaxs, float)
    hi = np.where(hi > 0, hi, np.inf)
    if isinstance(ws, EventWorkspace):
        ev = ws.events
        i = ev.index.astype(np.intp)
        return ws.with_events(ev.take((ev.x >= lo[i]) & (ev.x <= hi[i])))
    e = (
        ws.edges
        if ws.edges.ndim == 2
        else np.broadcast_to(ws.edges, (ws.getNumberHistograms(), ws.edges.size))
    )
    out = (e[:, :-1] < lo[:, None]) | (e[:, 1:] > hi[:, None])
    y, v = ws.values.copy(), ws.variances.copy()
    y[out], v[out] = 0.0, 0.0
    return ws.with_data(y, v)


def _edit_geometry(ws, l1: float, spec_ids, l2s, polars, phis):
    """EditInstrumentGeometry on the focused spectra: PrimaryFlightPath, then L2 / Polar (degrees) /
    Azimuthal (degrees) per spectrum (in SpectrumIDs' order when given)."""
    s = ws.spectra.copy()
    s.geometry = None  # the focused spectra are no longer the definition's detectors
    if l1 > 0:
        s.l1 = float(l1)
    n = len(s)
    rows = np.arange(n)
    if spec_ids:
        numbers = list(s.numbers)
        try:
            rows = np.array([numbers.index(int(k)) for k in spec_ids])
        except ValueError:
            raise AlgorithmError(
                f"AlignAndFocusPowder: SpectrumIDs {list(spec_ids)} are not the focused spectra {numbers}"
            ) from None
    for values, target, scale in (
        (l2s, s.l2, 1.0),
        (polars, s.two_theta, np.pi / 180),
        (phis, s.azimuthal, np.pi / 180),
    ):
        if values:
            if len(values) != rows.size:
                raise AlgorithmError(
                    f"AlignAndFocusPowder: {len(values)} focus positions for {rows.size} focused spectra"
                )
            target[rows] = np.asarray(values, float) * scale
    if isinstance(ws, EventWorkspace):
        return ws.with_events(ws.events, spectra=s)
    return ws.with_data(ws.values, ws.variances, spectra=s)


def align_and_focus(ws, p: dict):
    """AlignAndFocusPowder on `ws` with resolved properties `p` (see the algorithm below)."""
    require_matrix(ws, "AlignAndFocusPowder")
    if ws.x_unit.unit_id != "TOF":
        raise AlgorithmError(f"AlignAndFocusPowder: the input must be in TOF, not {ws.x_unit.unit_id}")
    if float(p["UnwrapRef"]) > 0 and not isinstance(ws, EventWorkspace):
        raise AlgorithmError(
            "AlignAndFocusPowder: UnwrapRef (UnwrapSNS) is supported for event data only; use "
            "CropWavelengthMin/CropWavelengthMax"
        )
    pm = _reduction_properties(p["ReductionProperties"])
    dmins = float_list(p["DMin"]) if p["DMin"] not in (None, "", []) else float_list(pm.get("d_min") or [])
    dmaxs = float_list(p["DMax"]) if p["DMax"] not in (None, "", []) else float_list(pm.get("d_max") or [])
    tmin = p["TMin"] if p["TMin"] is not None else float(pm.get("tof_min") or 0.0)
    tmax = p["TMax"] if p["TMax"] is not None else float(pm.get("tof_max") or 0.0)
    wl_min = float(p["CropWavelengthMin"] or pm.get("wavelength_min") or 0.0)
    wl_max = p["CropWavelengthMax"] or pm.get("wavelength_max") or None
    params = float_list(p["Params"]) if p["Params"] not in (None, "", []) else []
    resample, dspace = int(p["ResampleX"]), bool(p["Dspacing"])
    dmin, dmax = (dmins[0] if dmins else 0.0), (dmaxs[0] if dmaxs else 0.0)
    if (
        len(dmins) > 1 or len(dmaxs) > 1
    ):  # per-bank ranges: one common binning, each bank cut to its own after
        dmin, dmax = (min(dmins) if dmins else 0.0), (max(dmaxs) if dmaxs else 0.0)
    if resample:
        params = []
    elif len(params) == 1:
        dspace = dmax > 0
    if dspace and len(params) == 1 and dmax > 0 and (params[0] > 0 or dmin > 0):
        params = [dmin, params[0], dmax]
    elif not dspace and len(params) == 1 and tmax > 0 and (params[0] > 0 or tmin > 0):
        params = [tmin, params[0], tmax]
    if not params and not resample:
        raise AlgorithmError("AlignAndFocusPowder: give Params (or ResampleX) for the binning")
    xmin, xmax = (tmin if tmin > 0 else None), (tmax if tmax > 0 else None)
    if not dspace and len(params) == 3:
        xmin, xmax = params[0], params[2]
    events = isinstance(ws, EventWorkspace)
    tol = float(p["CompressTolerance"])

    out = ws
    if events and not np.all(
        np.isfinite(ws.events.x)
    ):  # no bin holds them, and they must not merge with others
        out = ws.with_events(ws.events.take(np.isfinite(ws.events.x)))
    if events and tol > 0:
        out = _compress(out, tol)
    if xmin is not None or xmax is not None:
        out = extract(out, np.arange(out.getNumberHistograms()), xmin, xmax)
    if float(p["RemovePromptPulseWidth"]) > 0:
        out = remove_prompt_pulse(out, float(p["RemovePromptPulseWidth"]))
    masked = _mask_ids(p["MaskWorkspace"], p["_cal"])
    if masked.size:
        out = out.clone() if out is ws else out
        hit = np.isin(out.spectra.det_ids, masked)
        owner = np.repeat(np.arange(out.getNumberHistograms()), np.diff(out.spectra.det_offsets))
        mask_spectra(out, np.unique(owner[hit]))
    if not dspace and params:
        out = rebin(out, params)
    out = align(out, p["_cal"])
    if float(p["UnwrapRef"]) > 0:
        out = _unwrap(out, float(p["UnwrapRef"]), tmin, tmax)
    if wl_min > 0 or wl_max is not None:
        out = _crop_wavelength(out, wl_min, wl_max)
    elif float(p["LowResRef"]) > 0:  # as Mantid: the wavelength crop overrides it
        out = _remove_low_res(out, float(p["LowResRef"]), tmin)
    if dspace:
        out = _resample(out, resample) if resample else rebin(out, params)
    grouping = p["_grouping"]
    if grouping is not None:
        out = focus(out, grouping, bool(p["PreserveEvents"]))
        if len(dmins) == out.getNumberHistograms() == len(dmaxs) and len(dmins) > 1:
            out = _zero_outside(out, dmins, dmaxs)
        if float(p["PrimaryFlightPath"]) > 0 or p["L2"] or p["Polar"] or p["Azimuthal"]:
            out = _edit_geometry(
                out, float(p["PrimaryFlightPath"]), p["SpectrumIDs"], p["L2"], p["Polar"], p["Azimuthal"]
            )
    out = convert_units(out, "TOF")
    if isinstance(out, EventWorkspace) and tol > 0:
        out = _compress(out, tol)
    if resample:
        out = _resample(out, resample)
    else:
        steps = params[1:-1] if len(params) != 1 else params
        # a linear d step is no TOF step (0.001 Å would make 0.001 µs bins): the d bins stay, as TOF edges
        if not dspace or all(step < 0 for step in steps[::2]):
            out = rebin(out, steps)
    return out


def _compress(ws, tol: float):
    """CompressEvents: the compiled kernel for a linear tolerance, the general one for a logarithmic one."""
    return compress(ws, tol) if tol > 0 else compress_events(ws, tol)


def _floats(v) -> list[float]:
    return [] if v is None or (isinstance(v, str) and not v.strip()) else float_list(v)


@algorithm(
    "AlignAndFocusPowder",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("UnfocussedWorkspace", None, kind=OUT, optional_ws=True),
        Prop("CalFileName", ""),
        Prop("GroupFilename", ""),
        Prop("GroupingWorkspace", None, kind=IN, optional_ws=True),
        Prop("CalibrationWorkspace", None, kind=IN, optional_ws=True),
        Prop("OffsetsWorkspace", None, kind=IN, optional_ws=True),
        Prop("MaskWorkspace", None, kind=IN, optional_ws=True),
        Prop("MaskBinTable", None, kind=IN, optional_ws=True),
        Prop("Params", None),
        Prop("ResampleX", 0),
        Prop("Dspacing", True),
        Prop("DMin", None),
        Prop("DMax", None),
        Prop("TMin", EMPTY),
        Prop("TMax", EMPTY),
        Prop("PreserveEvents", True),
        Prop("RemovePromptPulseWidth", 0.0),
        Prop("CompressTolerance", 0.01),
        Prop("UnwrapRef", 0.0),
        Prop("LowResRef", 0.0),
        Prop("CropWavelengthMin", 0.0),
        Prop("CropWavelengthMax", EMPTY),
        Prop("PrimaryFlightPath", -1.0),
        Prop("SpectrumIDs", None),
        Prop("L2", None),
        Prop("Polar", None),
        Prop("Azimuthal", None),
        Prop("LowResSpectrumOffset", -1),
        Prop("ReductionProperties", "__powdereduction"),
    ],
)
def _align_and_focus(
    InputWorkspace,
    OutputWorkspace,
    UnfocussedWorkspace,
    CalFileName,
    GroupFilename,
    GroupingWorkspace,
    CalibrationWorkspace,
    OffsetsWorkspace,
    MaskWorkspace,
    MaskBinTable,
    LowResSpectrumOffset,
    **p,
):
    """Align (TOF → d with a calibration or the geometry), focus by group and return the focused TOF data."""
    for name, v in (
        ("UnfocussedWorkspace", UnfocussedWorkspace),
        ("OffsetsWorkspace", OffsetsWorkspace),
        ("MaskBinTable", MaskBinTable),
    ):
        if v is not None:
            raise AlgorithmError(f"AlignAndFocusPowder: {name} is not supported by the embedded engine")
    if int(LowResSpectrumOffset) >= 0:
        raise AlgorithmError(
            "AlignAndFocusPowder: LowResSpectrumOffset (low-resolution spectra) is not supported"
        )
    cal = calibration_from(CalibrationWorkspace, "AlignAndFocusPowder")
    if cal is None and CalFileName:
        cal = read_calibration(str(CalFileName))
    p["_cal"] = cal
    p["_grouping"] = _grouping(InputWorkspace, GroupingWorkspace, GroupFilename, cal)
    p["MaskWorkspace"] = MaskWorkspace
    p["SpectrumIDs"] = int_list(p["SpectrumIDs"]) if p["SpectrumIDs"] is not None else []
    for key in ("L2", "Polar", "Azimuthal"):
        p[key] = _floats(p[key])
    return align_and_focus(InputWorkspace, p)
