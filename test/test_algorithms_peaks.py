"""StripPeaks and StripVanadiumPeaks on synthetic vanadium-like patterns: a linear background plus Gaussians
at chosen d-spacings. What must remain is the background we built (worked out directly), and the fitted
peaks are checked against scipy's curve_fit on the same window (an independent fit)."""

from __future__ import annotations

import numpy as np
import pytest

from livereduce.algorithms import peaks, registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

EDGES = 0.4 * 1.001 ** np.arange(1850)  # logarithmic d bins, Δd/d = 0.001, 0.4 … 2.54 Å
CENTRES = 0.5 * (EDGES[1:] + EDGES[:-1])
PRESENT = (0.5044, 0.6178, 0.8737, 1.2356, 2.1401)  # vanadium peaks put in; the others are absent
HEIGHT = 200.0


def background(d):
    return 100.0 + 20.0 * d


def sigma(d):
    return 0.002 * d  # two bins: FWHM ≈ 4.7 bins


def pattern(d, present=PRESENT):
    y = background(d)
    for c in present:
        y = y + HEIGHT * np.exp(-0.5 * ((d - c) / sigma(c)) ** 2)
    return y


def workspace(y, e=None, unit="dSpacing", nspec=1):
    y = np.atleast_2d(y).repeat(nspec, axis=0) if np.ndim(y) == 1 else y
    v = (np.abs(y) if e is None else np.atleast_2d(e) ** 2 * np.ones_like(y)).astype(float)
    return HistogramWorkspace(y, v, EDGES.copy(), Spectra.one_to_one(np.arange(y.shape[0])), unit_id=unit)


def near(c, n_sigma=5.0):
    return np.abs(CENTRES - c) <= n_sigma * sigma(c)


def test_vanadium_peaks_stripped_to_the_background(ads):
    ws = workspace(pattern(CENTRES))
    out = registry.call("StripVanadiumPeaks", ws, FWHM=5, OutputWorkspace="v")
    left = out.readY(0) - background(CENTRES)
    assert np.max(np.abs(left)) < 1e-3 * HEIGHT  # exact Gaussians: the fit finds them to the last bits
    for c in PRESENT:
        assert abs(left[near(c)].sum()) < 1e-2  # the area each peak had (HEIGHT·σ·√(2π)/Δd ≈ 1000) is gone
    np.testing.assert_array_equal(out.readE(0), ws.readE(0))  # errors unchanged, as Mantid leaves them
    np.testing.assert_array_equal(ws.readY(0), pattern(CENTRES))  # the input is untouched


def test_absent_peaks_leave_the_data_untouched(ads):
    rng = np.random.default_rng(7)
    flat = rng.poisson(background(CENTRES)).astype(float)  # counts without any peak
    ws = workspace(flat, e=np.sqrt(np.maximum(flat, 1)))
    out = registry.call("StripVanadiumPeaks", ws, OutputWorkspace="f")
    np.testing.assert_array_equal(out.readY(0), flat)
    only_one = pattern(CENTRES, present=(1.2356,))
    out = registry.call("StripVanadiumPeaks", workspace(only_one), FWHM=5, OutputWorkspace="o")
    for c in set(peaks.VANADIUM_D) - {1.2356}:  # around every other listed position nothing changed
        window = near(c, 8)
        np.testing.assert_array_equal(out.readY(0)[window], only_one[window])


def test_noisy_peaks_agree_with_an_independent_fit(ads):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(3)
    counts = rng.poisson(pattern(CENTRES)).astype(float)
    e = np.sqrt(np.maximum(counts, 1))
    c = 1.2356
    sel = np.flatnonzero(np.abs(np.arange(CENTRES.size) - np.searchsorted(CENTRES, c)) <= 10)
    x = CENTRES[sel]
    ours = peaks.fit_peak(x, counts[sel], e[sel], c, sigma(c) * 1.2, 2)
    assert ours is not None

    def model(x, h, c0, s, a0, a1):
        return h * np.exp(-0.5 * ((x - c0) / s) ** 2) + a0 + a1 * (x - x.mean())

    ref, _ = scipy_optimize.curve_fit(
        model, x, counts[sel], p0=[150, c, sigma(c) * 1.2, 120, 0], sigma=e[sel], absolute_sigma=True
    )
    np.testing.assert_allclose(ours[0][:3], ref[:3], rtol=1e-4)
    assert ours[0][0] == pytest.approx(HEIGHT, rel=0.15) and ours[0][2] == pytest.approx(sigma(c), rel=0.15)
    out = registry.call("StripVanadiumPeaks", workspace(counts, e=e), FWHM=5, OutputWorkspace="n")
    bg = background(CENTRES)
    for p in PRESENT:  # what is left of each peak is within the counting noise of the background
        w = near(p, 3)
        assert abs((out.readY(0)[w] - bg[w]).sum()) < 4 * np.sqrt(bg[w].sum())
        assert (counts[w] - bg[w]).sum() > 20 * np.sqrt(bg[w].sum())  # before, it stood far above


def test_events_become_a_histogram_and_units_are_checked(ads):
    rng = np.random.default_rng(5)
    d = np.concatenate([rng.uniform(0.45, 2.5, 20000), rng.normal(1.2356, sigma(1.2356), 4000)])
    ev = EventWorkspace(
        Spectra.one_to_one([1]), EventColumns(np.zeros(d.size, np.uint32), d), EDGES, unit_id="dSpacing"
    )
    out = registry.call("StripVanadiumPeaks", ev, FWHM=5, OutputWorkspace="h")
    assert out.id() == "Workspace2D" and isinstance(ev, EventWorkspace)
    counts = np.histogram(d, EDGES)[0]
    w = near(1.2356, 3)
    flat = 20000 / (2.5 - 0.45) * np.diff(EDGES)  # the uniform events' expected counts per bin
    assert counts[w].sum() - flat[w].sum() > 3000
    assert abs(out.readY(0)[w].sum() - flat[w].sum()) < 4 * np.sqrt(flat[w].sum())
    tof = workspace(pattern(CENTRES), unit="TOF")
    with pytest.raises(AlgorithmError, match="must have units of dSpacing"):
        registry.call("StripVanadiumPeaks", tof, OutputWorkspace="x")


def test_strip_peaks_positions_edges_nan_index_and_tolerance(ads):
    y = pattern(CENTRES, present=(0.4025, 1.0))  # 0.4025: three bins from the lower edge of the range
    y[np.searchsorted(CENTRES, 1.0) + 6] = np.nan
    ws = workspace(y, nspec=2)
    out = registry.call(
        "StripPeaks", ws, FWHM=5, PeakPositions="0.4025,1.0,3.0", WorkspaceIndex=1, OutputWorkspace="s"
    )
    np.testing.assert_array_equal(out.readY(0), ws.readY(0))  # WorkspaceIndex: only spectrum 1
    left = out.readY(1) - background(CENTRES)
    nan = np.isnan(y)
    assert nan.sum() == 1 and np.isnan(out.readY(1)[nan]).all()  # NaN stays NaN, the rest is fitted
    assert np.nanmax(np.abs(left[near(1.0)])) < 1e-2 * HEIGHT
    # the edge peak: its fit window is cut by the range's start; what is left is far below the peak
    assert np.max(np.abs(left[near(0.4025)])) < 0.05 * HEIGHT
    # a listed position 4 bins off the real peak (inside the fit window): the fitted centre, 1.0, is 0.004 Å
    # from it, beyond a PeakPositionTolerance of 0.001, so nothing is stripped; with the check off it is
    one = pattern(CENTRES, (1.0,))
    kept = registry.call(
        "StripPeaks",
        workspace(one),
        FWHM=5,
        PeakPositions=[1.004],
        PeakPositionTolerance=0.001,
        OutputWorkspace="t",
    )
    np.testing.assert_array_equal(kept.readY(0), one)
    gone = registry.call(
        "StripPeaks",
        workspace(one),
        FWHM=5,
        PeakPositions=[1.004],
        PeakPositionTolerance=-1,
        OutputWorkspace="t",
    )
    assert np.max(np.abs(gone.readY(0) - background(CENTRES))) < 1e-3 * HEIGHT
    with pytest.raises(AlgorithmError, match="WorkspaceIndex 5"):
        registry.call("StripPeaks", ws, WorkspaceIndex=5, OutputWorkspace="x")
    with pytest.raises(AlgorithmError, match="BackgroundType"):
        registry.call("StripPeaks", ws, BackgroundType="Cubic", OutputWorkspace="x")


def test_strip_peaks_finds_peaks_without_positions(ads):
    rng = np.random.default_rng(11)
    counts = rng.poisson(pattern(CENTRES)).astype(float)
    e = np.sqrt(np.maximum(counts, 1))
    found = [CENTRES[i] for i in peaks.mariscotti(counts, e, 5, 4)]
    for c in PRESENT:  # every peak put in is found, near its centre
        assert min(abs(f - c) for f in found) < 2 * sigma(c)
    assert len(found) <= len(PRESENT) + 2  # and hardly anything else in 1849 noisy bins
    out = registry.call(
        "StripPeaks", workspace(counts, e=e), FWHM=5, BackgroundType="Quadratic", OutputWorkspace="q"
    )
    bg = background(CENTRES)
    for p in PRESENT:
        w = near(p, 3)
        assert abs((out.readY(0)[w] - bg[w]).sum()) < 4 * np.sqrt(bg[w].sum())


def test_empty_and_all_nan_spectra_pass_through(ads):
    y = np.vstack([np.zeros(CENTRES.size), np.full(CENTRES.size, np.nan)])
    ws = HistogramWorkspace(y, np.zeros_like(y), EDGES.copy(), Spectra.one_to_one([1, 2]), unit_id="dSpacing")
    out = registry.call("StripVanadiumPeaks", ws, OutputWorkspace="z")
    np.testing.assert_array_equal(out.readY(0), 0.0)
    assert np.isnan(out.readY(1)).all()
    with pytest.raises(AlgorithmError, match="FWHM must be at least 1"):
        registry.call("StripPeaks", ws, FWHM=0, OutputWorkspace="x")
