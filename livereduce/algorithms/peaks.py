"""StripPeaks and StripVanadiumPeaks (version 2), as Mantid documents them: Gaussian peaks on a linear (or
quadratic) background are fitted, and each accepted Gaussian is subtracted from the data within ±5σ of its
centre, leaving the background; errors are unchanged; event input becomes a histogram workspace.

The fit is our own (numpy only): a weighted least-squares fit of height, centre, σ and the background
coefficients by damped Gauss-Newton (Levenberg-Marquardt) iterations over a window of ±2·FWHM bins around
each peak, cut half-way to a neighbouring listed peak. Peaks are the listed positions (StripPeaks'
PeakPositions; vanadium's d-spacings for StripVanadiumPeaks) or, without a list, the candidates of a
Mariscotti search: the second difference of the spectrum smoothed twice by a FWHM-wide box, significant where
it exceeds Tolerance times its own standard deviation (propagated from the bins' errors). A fitted peak is
kept, as Mantid's StripPeaks keeps it, when its height is positive, its σ at least one bin, its reduced χ² at
most MaximumChisq and its centre within PeakPositionTolerance of the listed one (when > 0); and, our own rule
in place of FindPeaks' fit-quality checks, when its height is at least Tolerance times the height's standard
error, so a listed peak absent from the data leaves the data as they were.
"""

from __future__ import annotations

import numpy as np

from livereduce.algorithms._util import float_list, require_matrix
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace

# Vanadium's peak positions in d (Å) that Mantid's StripVanadiumPeaks v2 strips (bcc V, a ≈ 3.03 Å)
VANADIUM_D = (
    0.41192, 0.4279, 0.49076, 0.5044, 0.5191, 0.5350, 0.5526, 0.5936, 0.6178, 0.6453,
    0.6768, 0.7134, 0.7566, 0.8089, 0.8737, 0.9571, 1.0701, 1.2356, 1.5133, 2.1401,
)  # fmt: skip
_SIGMA_PER_FWHM = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _model(p: np.ndarray, x: np.ndarray, nbg: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian (height, centre, σ) + polynomial background in (x − centre of the window): value and the
    Jacobian with respect to p."""
    h, c, s = p[0], p[1], p[2]
    u = (x - c) / s
    g = np.exp(-0.5 * u * u)
    xm = x - x.mean()
    bg = sum(p[3 + k] * xm**k for k in range(nbg))
    jac = np.empty((x.size, p.size))
    jac[:, 0] = g
    jac[:, 1] = h * g * u / s
    jac[:, 2] = h * g * u * u / s
    for k in range(nbg):
        jac[:, 3 + k] = xm**k
    return h * g + bg, jac


def fit_peak(x, y, e, centre, sigma, nbg: int, iterations: int = 50):
    """Weighted least squares of a Gaussian + background over the points given (x increasing): (parameters,
    their standard errors, reduced χ²) or None when the fit cannot be made. The centre starts at the highest
    point above the line through the window's ends (`centre` if none rises above it) and stays within the
    window, σ within its width. Errors ≤ 0 (or non-finite) weigh as counts."""
    w = 1.0 / np.where(np.isfinite(e) & (e > 0), e, np.sqrt(np.maximum(np.abs(y), 1.0)))
    n_par = 3 + nbg
    if x.size < n_par + 2:
        return None
    edge = max(2, x.size // 8)  # the background starts as the line through both ends of the window
    xm = x - x.mean()
    ends = np.r_[0:edge, x.size - edge : x.size]
    start_bg = np.polyfit(xm[ends], y[ends], 1)[::-1]
    bg0 = start_bg[0] + start_bg[1] * xm
    p = np.zeros(n_par)
    top = int(np.argmax(y - bg0))  # the highest point above that line: the data's own peak, if any
    p[0] = max(float(y[top] - bg0[top]), 0.0)
    p[1], p[2] = (x[top] if p[0] > 0 else centre), sigma
    p[3 : 3 + min(2, nbg)] = start_bg[: min(2, nbg)]
    lam = 1e-3

    def cost(q):
        f, _ = _model(q, x, nbg)
        return float(np.sum(((y - f) * w) ** 2))

    chi = cost(p)
    for _ in range(iterations):
        f, jac = _model(p, x, nbg)
        jw = jac * w[:, None]
        a = jw.T @ jw
        b = jw.T @ ((y - f) * w)
        step = None
        while lam < 1e12:
            try:
                trial = p + np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-300), b)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            inside = x[0] <= trial[1] <= x[-1] and 0 < trial[2] < x[-1] - x[0]  # a peak in the window
            if inside and (c := cost(trial)) <= chi:
                step, chi, lam = trial, c, max(lam / 10, 1e-12)
                break
            lam *= 10
        if step is None:
            break
        done = np.all(np.abs(step - p) <= 1e-10 * (np.abs(p) + 1e-12))
        p = step
        if done:
            break
    _, jac = _model(p, x, nbg)
    jw = jac * w[:, None]
    try:
        cov = np.linalg.inv(jw.T @ jw)
    except np.linalg.LinAlgError:
        return None
    return p, np.sqrt(np.maximum(np.diag(cov), 0.0)), chi / (x.size - n_par)


def mariscotti(y, e, fwhm: int, tolerance: float) -> list[int]:
    """Bin indices of peak candidates: the second difference smoothed twice by a box of `fwhm` bins, where
    its negative exceeds `tolerance` times its standard deviation (the maximum of each such run)."""
    box = np.ones(max(int(fwhm), 1))
    kernel = np.convolve(np.convolve(np.array([-1.0, 2.0, -1.0]), box), box)  # −(second difference), smoothed
    var = np.where(np.isfinite(e), e * e, 0.0)
    s = np.convolve(np.nan_to_num(y), kernel, mode="same")
    f = np.sqrt(np.convolve(var, kernel * kernel, mode="same"))
    half = kernel.size // 2
    good = np.zeros(y.size, bool)
    good[half : y.size - half] = True  # the smoothing needs whole kernels
    hit = good & (f > 0) & (s > tolerance * np.where(f > 0, f, 1.0))
    change = np.flatnonzero(np.diff(np.r_[0, hit.astype(np.int8), 0]))  # runs of hits: [start, stop) pairs
    out = [int(a + np.argmax(s[a:b])) for a, b in zip(change[::2], change[1::2], strict=True)]
    return out


def strip_spectrum(x, y, e, width, positions, opts) -> np.ndarray:
    """`y` with each accepted Gaussian subtracted (x: bin centres, width: bin widths)."""
    fwhm, nbg = int(opts["FWHM"]), opts["nbg"]
    finite = np.isfinite(y) & np.isfinite(x)
    centres: list[tuple[float, float | None]]  # (where to fit, the listed position if any)
    if positions is None:
        found = mariscotti(y, e, fwhm, float(opts["Tolerance"]))
        centres = [(float(x[i]), None) for i in found]
    else:
        centres = [(float(c), float(c)) for c in positions if x.size and x[0] <= c <= x[-1]]
    out = y.copy()
    listed = sorted(c for c, _ in centres)
    for c, given in centres:
        i = int(np.clip(np.searchsorted(x, c), 0, x.size - 1))
        lo, hi = max(0, i - 2 * fwhm), min(x.size, i + 2 * fwhm + 1)
        k = listed.index(c)  # a neighbouring peak's half of the gap is its own
        if k > 0:
            lo = max(lo, int(np.searchsorted(x, 0.5 * (listed[k - 1] + c))))
        if k + 1 < len(listed):
            hi = min(hi, int(np.searchsorted(x, 0.5 * (listed[k + 1] + c))))
        sel = np.arange(lo, hi)[finite[lo:hi]]
        if sel.size == 0:
            continue
        fit = fit_peak(x[sel], y[sel], e[sel], c, fwhm * width[i] * _SIGMA_PER_FWHM, nbg)
        if fit is None:
            continue
        p, err, chi2 = fit
        h, centre, sigma = p[0], p[1], abs(p[2])
        if not (h > 0 and np.isfinite(chi2) and chi2 <= float(opts["MaximumChisq"])):
            continue
        if not x[sel[0]] <= centre <= x[sel[-1]] or sigma < width[i]:
            continue
        tol = float(opts["PeakPositionTolerance"])
        if given is not None and tol > 0 and abs(centre - given) > tol:
            continue
        if not h >= float(opts["Tolerance"]) * err[0]:
            continue
        near = np.abs(x - centre) <= 5.0 * sigma
        out[near] -= h * np.exp(-0.5 * ((x[near] - centre) / sigma) ** 2)
    return out


def strip_peaks(ws, positions, opts, alg: str):
    ws = require_matrix(ws, alg)
    h = ws.histogram() if isinstance(ws, EventWorkspace) else ws  # Mantid's output is a Workspace2D
    if opts["BackgroundType"] not in ("Linear", "Quadratic"):
        raise AlgorithmError(
            f"{alg}: BackgroundType must be Linear or Quadratic, not {opts['BackgroundType']!r}"
        )
    opts = dict(opts, nbg=2 if opts["BackgroundType"] == "Linear" else 3)
    for key in ("FWHM", "Tolerance"):
        if int(opts[key]) < 1:
            raise AlgorithmError(f"{alg}: {key} must be at least 1, not {opts[key]}")
    n = h.getNumberHistograms()
    index = opts["WorkspaceIndex"]
    if index is not None and not 0 <= int(index) < n:
        raise AlgorithmError(f"{alg}: WorkspaceIndex {index} is outside 0..{n - 1}")
    rows = range(n) if index is None else [int(index)]
    y, v = h.values.copy(), h.variances.copy()
    edges = h.edges_2d()
    for r in rows:
        ed = edges[r]
        if ed.size == y.shape[1] + 1:  # histogram: the bins' centres, as Mantid evaluates the peak
            x, width = 0.5 * (ed[1:] + ed[:-1]), np.abs(np.diff(ed))
        else:
            x, width = ed, np.abs(np.gradient(ed))
        y[r] = strip_spectrum(x, y[r], np.sqrt(np.abs(v[r])), width, positions, opts)
    return h.with_data(y, v, h.edges.copy(), h.spectra)


_COMMON = [
    Prop("InputWorkspace", kind=IN),
    Prop("OutputWorkspace", kind=OUT),
    Prop("FWHM", 7),
    Prop("Tolerance", 4),
]


@algorithm(
    "StripPeaks",
    [
        *_COMMON,
        Prop("PeakPositions", None),
        Prop("PeakPositionTolerance", 0.01),
        Prop("BackgroundType", "Linear"),
        Prop("HighBackground", True),
        Prop("WorkspaceIndex", None),
        Prop("MaximumChisq", 100.0),
    ],
)
def _strip_peaks(InputWorkspace, OutputWorkspace, **opts):
    """Fit Gaussian peaks (at PeakPositions, else those found) on a linear or quadratic background and
    subtract them, leaving the background."""
    raw = opts["PeakPositions"]
    positions = [] if raw is None else float_list(raw, "PeakPositions")
    return strip_peaks(InputWorkspace, sorted(positions) or None, opts, "StripPeaks")


@algorithm(
    "StripVanadiumPeaks",
    [
        *_COMMON,
        Prop("BackgroundType", "Linear"),
        Prop("HighBackground", True),
        Prop("PeakPositionTolerance", 0.01),
        Prop("WorkspaceIndex", None),
    ],
)
def _strip_vanadium_peaks(InputWorkspace, OutputWorkspace, **opts):
    """StripPeaks at vanadium's peak positions in d-spacing (the input must be in dSpacing)."""
    if require_matrix(InputWorkspace, "StripVanadiumPeaks").x_unit.unit_id != "dSpacing":
        raise AlgorithmError("StripVanadiumPeaks: The workspace must have units of dSpacing")
    return strip_peaks(InputWorkspace, list(VANADIUM_D), dict(opts, MaximumChisq=100.0), "StripVanadiumPeaks")
