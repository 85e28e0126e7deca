"""Scale, Power, ReplaceSpecialValues, SmoothData: expected values worked by hand from Mantid's documentation."""

from __future__ import annotations

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra


def h(y, e=None, edges=None):
    y = np.atleast_2d(np.asarray(y, float))
    e = np.sqrt(np.abs(y)) if e is None else np.atleast_2d(np.asarray(e, float))
    edges = np.arange(y.shape[1] + 1, dtype=float) if edges is None else edges
    return HistogramWorkspace(y, e * e, edges, Spectra.one_to_one(np.arange(1, y.shape[0] + 1)))


def test_scale_multiply_and_add(ads):
    ws = h([[4.0, 9.0]], [[2.0, 3.0]])
    m = registry.call("Scale", ws, Factor=-2.0, OutputWorkspace="m")
    np.testing.assert_array_equal(m.values, [[-8.0, -18.0]])
    np.testing.assert_array_equal(m.extractE(), [[4.0, 6.0]])  # E · |factor|
    a = registry.call("Scale", ws, Factor=1.5, Operation="Add", OutputWorkspace="a")
    np.testing.assert_array_equal(a.values, [[5.5, 10.5]])
    np.testing.assert_array_equal(a.extractE(), [[2.0, 3.0]])  # unchanged
    default = registry.call("Scale", ws, OutputWorkspace="d")  # Factor 1, Multiply
    np.testing.assert_array_equal(default.values, ws.values)
    with pytest.raises(AlgorithmError, match="Multiply or Add"):
        registry.call("Scale", ws, Operation="Divide", OutputWorkspace="x")


def test_scale_keeps_events_weighted(ads):
    ev = EventWorkspace(
        Spectra.one_to_one([1]), EventColumns(np.zeros(3, np.uint32), [0.5, 1.5, 1.6]), [0, 1, 2]
    )
    out = registry.call("Scale", ev, Factor=3.0, OutputWorkspace="s")
    assert isinstance(out, EventWorkspace)
    np.testing.assert_array_equal(out.readY(0), [3.0, 6.0])  # 1 and 2 events of weight 3
    np.testing.assert_allclose(out.readE(0), [3.0, np.sqrt(18.0)])  # √(n · 3²)


def test_power(ads):
    ws = h([[2.0, 3.0, 0.0]], [[0.5, 1.0, 1.0]])
    p = registry.call("Power", ws, Exponent=2.0, OutputWorkspace="p")
    np.testing.assert_array_equal(p.values, [[4.0, 9.0, 0.0]])
    # E = |n · Y_out · E / Y_in| = 2·4·0.5/2 = 2, 2·9·1/3 = 6; at Y = 0: 0·(1/0) is NaN
    np.testing.assert_allclose(p.extractE()[0, :2], [2.0, 6.0])
    assert np.isnan(p.extractE()[0, 2])
    root = registry.call("Power", h([[16.0]], [[4.0]]), Exponent=0.5, OutputWorkspace="r")
    np.testing.assert_allclose(root.values, [[4.0]])
    np.testing.assert_allclose(root.extractE(), [[0.5]])  # 0.5·4·4/16


def test_replace_special_values(ads):
    ws = h([[np.nan, np.inf, -np.inf, 1e9, 1e-9, 5.0, 0.0]], [[1, 1, 1, 1, 1, 1, np.nan]])
    out = registry.call(
        "ReplaceSpecialValues",
        ws,
        NaNValue=-1.0,
        NaNError=2.0,
        InfinityValue=7.0,
        BigNumberThreshold=1e6,
        BigNumberValue=8.0,
        SmallNumberThreshold=1e-6,
        SmallNumberValue=9.0,
        SmallNumberError=0.5,
        OutputWorkspace="r",
    )
    # 0.0 is below the small threshold too
    np.testing.assert_array_equal(out.values, [[-1.0, 7.0, 7.0, 8.0, 9.0, 5.0, 9.0]])
    np.testing.assert_array_equal(out.extractE(), [[2.0, 0.0, 0.0, 0.0, 0.5, 1.0, 0.5]])
    untouched = registry.call("ReplaceSpecialValues", ws, OutputWorkspace="u")  # nothing set: no change
    np.testing.assert_array_equal(untouched.values, ws.values)
    errs = registry.call(
        "ReplaceSpecialValues", h([[3.0]], [[np.nan]]), NaNValue=0.0, CheckErrorAxis=True, OutputWorkspace="e"
    )
    np.testing.assert_array_equal(errs.values, [[0.0]])
    np.testing.assert_array_equal(errs.extractE(), [[0.0]])


def test_smooth_data(ads):
    y = np.array([[1.0, 2.0, 6.0, 3.0, 8.0]])
    e = np.array([[1.0, 2.0, 2.0, 1.0, 3.0]])
    out = registry.call("SmoothData", h(y, e), OutputWorkspace="s")  # NPoints 3
    # ends average the 2 available points; the rest 3
    np.testing.assert_allclose(out.values, [[1.5, 3.0, 11 / 3, 17 / 3, 5.5]])
    np.testing.assert_allclose(
        out.extractE(),
        [[np.sqrt(5) / 2, np.sqrt(9) / 3, np.sqrt(9) / 3, np.sqrt(14) / 3, np.sqrt(10) / 2]],
    )
    four = registry.call("SmoothData", h(y, e), NPoints=4, OutputWorkspace="f")  # raised to 5
    np.testing.assert_allclose(four.values[0, 2], 20 / 5)
    np.testing.assert_allclose(four.values[0, 0], 9 / 3)  # points 0..2
    with pytest.raises(AlgorithmError, match="larger than the spectrum length"):
        registry.call("SmoothData", h([[1.0, 2.0]]), OutputWorkspace="x")
    with pytest.raises(AlgorithmError, match="at least 3"):
        registry.call("SmoothData", h(y), NPoints=1, OutputWorkspace="x")
    np.testing.assert_array_equal(
        np.isnan(registry.call("SmoothData", h([[np.nan, 1.0, 1.0, 1.0]]), OutputWorkspace="n").values),
        [[1, 1, 0, 0]],
    )


def independent_fft_smooth(y, keep):
    """FFTSmooth's documented steps with a full complex FFT: symmetrise to 2N points, weight frequency ±k by
    keep(k) (k = 0..N over N+1 frequencies), transform back, take the second half."""
    n = y.size
    sym = np.array([y[n - 1]] + [y[n - p] for p in range(1, n)] + [y[p] for p in range(n)])
    f = np.fft.fft(sym)
    k = np.abs(np.fft.fftfreq(2 * n) * 2 * n)  # |frequency index|
    return np.fft.ifft(f * keep(k)).real[n:]


def test_fft_smooth_zeroing_and_butterworth(ads):
    rng = np.random.default_rng(3)
    x = np.linspace(0, 1, 41)
    y = (
        0.3
        + 10 * np.exp(-0.5 * ((x[:-1] - 0.4) / 0.05) ** 2)
        + 0.1 * (-1) ** np.arange(40)
        + rng.normal(0, 0.05, 40)
    )
    ws = h([y], np.ones((1, 40)), x)
    zero = registry.call("FFTSmooth", ws, Params="2", OutputWorkspace="z")
    ny = 41 // 2  # 41 frequencies of 80 points, the lowest 1/2 kept
    np.testing.assert_allclose(
        zero.readY(0), independent_fft_smooth(y, lambda k: (k < ny).astype(float)), atol=1e-12
    )
    assert not zero.extractE().any() and zero.readX(0).tolist() == x.tolist()
    butter = registry.call("FFTSmooth", ws, Filter="Butterworth", Params="5,2", OutputWorkspace="b")
    c = 41 // 5
    np.testing.assert_allclose(
        butter.readY(0), independent_fft_smooth(y, lambda k: 1 / (1 + (k / c) ** 4)), atol=1e-12
    )
    flat = registry.call("FFTSmooth", h([np.full(10, 2.5)]), OutputWorkspace="f")
    np.testing.assert_allclose(flat.readY(0), 2.5)  # a constant is only the zero frequency
    two = registry.call("FFTSmooth", h([y, y * 2], None, x), WorkspaceIndex=1, OutputWorkspace="one")
    assert two.getNumberHistograms() == 1 and two.getSpectrumNumbers() == [2]
    every = registry.call("FFTSmooth", h([y, y * 2], None, x), AllSpectra=True, OutputWorkspace="all")
    np.testing.assert_allclose(every.readY(1), 2 * every.readY(0))  # linear
    with pytest.raises(AlgorithmError, match="linear"):
        registry.call(
            "FFTSmooth", h([[1.0, 2.0, 3.0]], None, np.array([0.0, 1.0, 3.0, 4.0])), OutputWorkspace="x"
        )
    with pytest.raises(AlgorithmError, match="> 1"):
        registry.call("FFTSmooth", ws, Params="1", OutputWorkspace="x")
