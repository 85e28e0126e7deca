"""Scale, Power, ReplaceSpecialValues, SmoothData, FFTSmooth: arithmetic and smoothing on Y and E, as Mantid
documents them.

Errors are propagated on E (variances are E²): Scale Multiply scales E by |factor|, Add leaves it; Power
gives E·|n·Y_out/Y_in| (Mantid's formula, so 0/0 at Y = 0 is NaN as in Mantid); SmoothData averages each
point with (NPoints-1)/2 neighbours either side (fewer at the ends) and its error is √ΣE² / n.
Event workspaces: Scale Multiply keeps events (weighted); the others histogram them first, as Mantid's
unary operations do.
"""

from __future__ import annotations

import numpy as np

from livereduce.algorithms._util import int_list, is_inplace, require_matrix
from livereduce.algorithms.arithmetic import compute
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace

_IO = [Prop("InputWorkspace", kind=IN), Prop("OutputWorkspace", kind=OUT)]


def _histogram(ws, alg: str):
    require_matrix(ws, alg)
    return ws.histogram() if isinstance(ws, EventWorkspace) else ws


@algorithm("Scale", [*_IO, Prop("Factor", 1.0), Prop("Operation", "Multiply")])
def _scale(InputWorkspace, OutputWorkspace, Factor, Operation):
    """Multiply Y (and E) by Factor, or Add Factor to Y (E unchanged)."""
    ops = {"multiply": "Multiply", "add": "Plus"}
    op = ops.get(str(Operation).lower())
    if op is None:
        raise AlgorithmError(f"Scale: Operation must be Multiply or Add, not {Operation!r}")
    require_matrix(InputWorkspace, "Scale")
    return compute(op, InputWorkspace, float(Factor), is_inplace(InputWorkspace, OutputWorkspace))


@algorithm("Power", [*_IO, Prop("Exponent", 1.0)])
def _power(InputWorkspace, OutputWorkspace, Exponent):
    """Raise Y to Exponent; E becomes |Exponent · Y_out · E / Y_in|."""
    h = _histogram(InputWorkspace, "Power")
    n = float(Exponent)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = np.power(h.values, n)
        e = np.abs(n * y * (np.sqrt(h.variances) / h.values))
    return h.with_data(y, e * e, h.edges.copy())


_UNSET = None  # Mantid's EMPTY_DBL: the replacement is not made


@algorithm(
    "ReplaceSpecialValues",
    [
        *_IO,
        Prop("NaNValue", _UNSET),
        Prop("NaNError", 0.0),
        Prop("InfinityValue", _UNSET),
        Prop("InfinityError", 0.0),
        Prop("BigNumberThreshold", _UNSET),
        Prop("BigNumberValue", 0.0),
        Prop("BigNumberError", 0.0),
        Prop("SmallNumberThreshold", _UNSET),
        Prop("SmallNumberValue", 0.0),
        Prop("SmallNumberError", 0.0),
        Prop("CheckErrorAxis", False),
    ],
)
def _replace_special(
    InputWorkspace,
    OutputWorkspace,
    NaNValue,
    NaNError,
    InfinityValue,
    InfinityError,
    BigNumberThreshold,
    BigNumberValue,
    BigNumberError,
    SmallNumberThreshold,
    SmallNumberValue,
    SmallNumberError,
    CheckErrorAxis,
):
    """Replace NaN, ±infinity, |Y| above BigNumberThreshold or below SmallNumberThreshold (each only when its
    value or threshold is set) by a value and error; CheckErrorAxis also tests E."""
    h = _histogram(InputWorkspace, "ReplaceSpecialValues")
    y, e = h.values.copy(), np.sqrt(h.variances)
    checked = [y, e] if CheckErrorAxis else [y]
    with np.errstate(invalid="ignore"):
        rules = []
        if NaNValue is not None:
            rules.append((np.isnan, NaNValue, NaNError))
        if InfinityValue is not None:
            rules.append((np.isinf, InfinityValue, InfinityError))
        if BigNumberThreshold is not None:
            big = float(BigNumberThreshold)
            rules.append((lambda a: np.abs(a) > big, BigNumberValue, BigNumberError))
        if SmallNumberThreshold is not None:
            small = float(SmallNumberThreshold)
            rules.append((lambda a: np.abs(a) < small, SmallNumberValue, SmallNumberError))
        hit_any = np.zeros(y.shape, bool)
        for test, value, error in rules:  # the first rule that matches a bin decides it
            hit = np.logical_or.reduce([test(a) for a in checked]) & ~hit_any
            y[hit], e[hit] = float(value), float(error)
            hit_any |= hit
    out = h.with_data(y, e * e, h.edges.copy())
    return out


def smooth(y: np.ndarray, e: np.ndarray, npts: int) -> tuple[np.ndarray, np.ndarray]:
    """Moving average of npts (odd) points along the last axis; the window is truncated at the ends. Sums
    are taken window by window (not from a running sum), so a NaN spoils only the windows that hold it."""
    half = npts // 2
    pad = [(0, 0)] * (y.ndim - 1) + [(half, half)]
    windows = np.lib.stride_tricks.sliding_window_view
    sy = windows(np.pad(y, pad), npts, axis=-1).sum(axis=-1)
    se = windows(np.pad(e * e, pad), npts, axis=-1).sum(axis=-1)
    n = y.shape[-1]
    count = np.minimum(np.arange(n) + half + 1, n) - np.maximum(np.arange(n) - half, 0)
    return sy / count, np.sqrt(se) / count


@algorithm(
    "SmoothData", [*_IO, Prop("NPoints", 3), Prop("GroupingWorkspace", None, kind=IN, optional_ws=True)]
)
def _smooth_data(InputWorkspace, OutputWorkspace, NPoints, GroupingWorkspace):
    """Moving average over NPoints (at least 3; an even number is raised by one); one value per group of a
    GroupingWorkspace when given."""
    h = _histogram(InputWorkspace, "SmoothData")
    points = int_list(NPoints, "NPoints") or [3]
    if min(points) < 3:
        raise AlgorithmError(f"SmoothData: NPoints must be at least 3, got {min(points)}")
    points = [p + 1 if p % 2 == 0 else p for p in points]
    nspec = h.getNumberHistograms()
    if GroupingWorkspace is not None:  # group g (1-based, Y of the grouping workspace) uses points[g-1]
        group = np.asarray(GroupingWorkspace.values[:, 0], np.int64)
        if group.size != nspec:
            raise AlgorithmError("SmoothData: GroupingWorkspace must have one spectrum per input spectrum")
        per = np.array([points[min(max(g, 1), len(points)) - 1] if g > 0 else 0 for g in group])
    else:
        per = np.full(nspec, points[0])
    if per.max(initial=0) > h.blocksize():
        raise AlgorithmError(
            f"SmoothData: the number of averaging points requested ({per.max()}) is larger than the "
            f"spectrum length ({h.blocksize()})"
        )
    y, e = h.values.copy(), np.sqrt(h.variances)
    for npts in np.unique(per[per > 0]):
        rows = per == npts
        y[rows], e[rows] = smooth(h.values[rows], np.sqrt(h.variances[rows]), int(npts))
    return h.with_data(y, e * e, h.edges.copy())


def fft_smooth(y: np.ndarray, filt: str, n: int, order: int) -> np.ndarray:
    """One spectrum through FFTSmooth (version 2), as Mantid's documents and source text describe it:
    symmetrise to 2N points [y[N-1], y[N-1], y[N-2], …, y[1], y[0], y[1], …, y[N-1]] (no jump at the ends),
    real FFT (N+1 frequencies), keep the lowest ny = (N+1)//n (at least 1) for Zeroing, or scale frequency k
    by 1/(1 + (k/ny)^(2·order)) for Butterworth, transform back and keep the second half."""
    size = y.size
    sym = np.concatenate([[y[-1]], y[:0:-1], y])
    coef = np.fft.rfft(sym)
    ny = max(coef.size // n, 1)
    k = np.arange(coef.size)
    if filt == "Zeroing":
        coef[k >= ny] = 0
    else:
        coef = coef / (1.0 + (k / ny) ** (2 * order))
    return np.fft.irfft(coef, n=sym.size)[size:]


@algorithm(
    "FFTSmooth",
    [
        *_IO,
        Prop("WorkspaceIndex", 0),
        Prop("Filter", "Zeroing"),
        Prop("Params", ""),
        Prop("IgnoreXBins", False),
        Prop("AllSpectra", False),
    ],
)
def _fft_smooth(InputWorkspace, OutputWorkspace, WorkspaceIndex, Filter, Params, IgnoreXBins, AllSpectra):
    """Smooth by Fourier filtering (Zeroing: Params 'n'; Butterworth: 'n,order'; default 2 and 2): the
    spectrum at WorkspaceIndex, or all with AllSpectra. Errors of the output are 0, as Mantid leaves them."""
    h = _histogram(InputWorkspace, "FFTSmooth")
    if Filter not in ("Zeroing", "Butterworth"):
        raise AlgorithmError(f"FFTSmooth: Filter must be Zeroing or Butterworth, not {Filter!r}")
    params = [int(p) for p in int_list(Params, "Params")] if str(Params).strip() else []
    if len(params) > 2:
        raise AlgorithmError("FFTSmooth: too many parameters passed")
    n = params[0] if params else 2
    order = params[1] if len(params) > 1 else 2
    if n <= 1:
        raise AlgorithmError("FFTSmooth: truncation parameter must be an integer > 1")
    if order < 1:
        raise AlgorithmError("FFTSmooth: Butterworth filter order must be an integer >= 1")
    nspec = h.getNumberHistograms()
    rows = np.arange(nspec) if AllSpectra else np.array([int(WorkspaceIndex)])
    if not (0 <= rows.min() and rows.max() < nspec):
        raise AlgorithmError("FFTSmooth: property WorkspaceIndex is out of range")
    edges = h.edges_2d()
    if not IgnoreXBins:
        for r in rows:
            x = edges[r]
            dx = (x[-1] - x[0]) / (x.size - 1)
            if np.any(np.abs(dx - np.diff(x)) / dx > 1e-7):
                raise AlgorithmError(
                    "FFTSmooth: X axis must be linear (all bins have same width); set IgnoreXBins to ignore this"
                )
    y = np.array([fft_smooth(h.values[r], Filter, n, order) for r in rows])
    e = h.edges.copy() if h.edges.ndim == 1 else h.edges[rows]
    return h.with_data(y, np.zeros_like(y), e, h.spectra.take(rows))
