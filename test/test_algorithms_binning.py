"""Rebin (events and histograms), ConvertToMatrixWorkspace, CompressEvents: counts checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livereduce.algorithms import registry
from livereduce.algorithms.binning import compress_events, edges_from_params, rebin, rebin_arrays
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

Rebin = registry.get("Rebin")


def events(n=20_000, nspec=5, lo=0.0, hi=20_000.0, seed=0):
    rng = np.random.default_rng(seed)
    index = rng.integers(0, nspec, n, dtype=np.uint32)
    x = rng.uniform(lo, hi, n)
    return EventWorkspace(Spectra.one_to_one(np.arange(1, nspec + 1)), EventColumns(index, x)), index, x


def hist(index, x, edges, nspec):
    return np.array([np.histogram(x[index == s], bins=edges)[0] for s in range(nspec)], float)


def test_linear_params_give_exact_edges():
    e = edges_from_params("300,20,17000")
    assert e.size == 836 and e[0] == 300 and e[-1] == 17000
    np.testing.assert_allclose(np.diff(e), 20.0)


def test_last_partial_bin_rule():
    # 0..9.5 step 3: 0,3,6,9 then 9.5; the final bin (0.5 wide) is below 25 % of 3 → merged: 0,3,6,9.5
    np.testing.assert_array_equal(edges_from_params([0, 3, 9.5]), [0, 3, 6, 9.5])
    np.testing.assert_array_equal(edges_from_params([0, 3, 10]), [0, 3, 6, 9, 10])  # 1 ≥ 0.75: kept
    # 0..10 step 4: final 2-wide bin is >= 25 % → kept
    np.testing.assert_array_equal(edges_from_params((0, 4, 10)), [0, 4, 8, 10])
    np.testing.assert_array_equal(edges_from_params("0,4,10", full_bins_only=True), [0, 4, 8])


def test_logarithmic_and_multi_segment_params():
    e = edges_from_params("1,-1,16")
    np.testing.assert_allclose(e, [1, 2, 4, 8, 16])
    e = edges_from_params("0,1,2,5,12")
    np.testing.assert_allclose(e, [0, 1, 2, 7, 12])
    with pytest.raises(AlgorithmError, match="x1 > 0"):
        edges_from_params("0,-0.1,10")
    with pytest.raises(AlgorithmError):
        edges_from_params("10,1,5")


def test_events_preserved_with_new_binning(ads):
    ws, index, x = events()
    out = Rebin(InputWorkspace=ws, Params="1000,100,20000")
    assert isinstance(out, EventWorkspace) and out.getNumberEvents() == x.size
    edges = np.arange(1000.0, 20001.0, 100.0)
    np.testing.assert_array_equal(out.readX(0), edges)
    for s in range(5):
        np.testing.assert_array_equal(out.readY(s), np.histogram(x[index == s], bins=edges)[0])
        np.testing.assert_array_equal(out.readE(s), np.sqrt(np.histogram(x[index == s], bins=edges)[0]))


def test_events_to_histogram(ads):
    ws, index, x = events()
    out = Rebin(InputWorkspace=ws, Params="1000,100,20000", PreserveEvents=False)
    edges = np.arange(1000.0, 20001.0, 100.0)
    assert isinstance(out, HistogramWorkspace)
    expected = hist(index, x, edges, 5)
    np.testing.assert_array_equal(out.values, expected)
    np.testing.assert_array_equal(out.variances, expected)


def test_event_exactly_on_an_edge_goes_to_the_upper_bin(ads):
    ws = EventWorkspace(Spectra.one_to_one([1]), EventColumns(np.zeros(4, np.uint32), [0.3, 0.6, 0.9, 1.2]))
    out = rebin(ws, "0,0.3,1.5", preserve_events=False)
    np.testing.assert_array_equal(out.values[0], [0, 1, 1, 1, 1])


def test_single_step_uses_the_data_range(ads):
    ws, _index, x = events(n=1000, lo=500, hi=900)
    out = rebin(ws, "50", preserve_events=False)
    assert out.edges[0] == x.min() and out.edges[-1] >= x.max()
    assert out.values.sum() == 1000


def test_log_binned_events(ads):
    ws, index, x = events(lo=1, hi=10_000)
    out = rebin(ws, "1,-0.5,10000", preserve_events=False)
    edges = edges_from_params("1,-0.5,10000")
    np.testing.assert_array_equal(out.values, hist(index, x, edges, 5))


def test_histogram_rebin_shares_counts_in_proportion():
    ws = HistogramWorkspace([[4.0, 8.0]], [[4.0, 8.0]], [0.0, 2.0, 4.0], Spectra.one_to_one([1]))
    out = rebin(ws, "0,1,4")
    np.testing.assert_allclose(out.values, [[2, 2, 4, 4]])
    np.testing.assert_allclose(out.variances, [[2, 2, 4, 4]])  # Mantid: variances shared the same way
    out = rebin(ws, "1,2,3")  # half of each bin
    np.testing.assert_allclose(out.values, [[6.0]])
    np.testing.assert_allclose(out.readE(0), [np.sqrt(6.0)])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.5, 5.0), min_size=2, max_size=12), st.floats(0.3, 4.0))
def test_rebin_conserves_counts_inside_the_range(widths, step):
    old = np.concatenate([[0.0], np.cumsum(widths)])
    y = np.arange(1.0, len(widths) + 1)
    new = edges_from_params([0.0, step, old[-1]])
    ny, nv = rebin_arrays(y[None, :], y[None, :], old, new)
    assert ny.sum() == pytest.approx(y.sum(), rel=1e-12)
    assert nv.sum() == pytest.approx(y.sum(), rel=1e-12)


def test_histogram_rebin_with_per_spectrum_edges():
    edges = np.array([[0.0, 1.0, 2.0], [0.0, 2.0, 4.0]])
    ws = HistogramWorkspace([[1.0, 3.0], [2.0, 6.0]], None, edges, Spectra.one_to_one([1, 2]))
    out = rebin(ws, "0,2,4")
    np.testing.assert_allclose(out.values, [[4.0, 0.0], [2.0, 6.0]])
    assert out.edges.ndim == 1


def test_convert_to_matrix_workspace(ads):
    ws, index, _x = events()
    ConvertToMatrixWorkspace = registry.get("ConvertToMatrixWorkspace")
    h = ConvertToMatrixWorkspace(InputWorkspace=ws)
    assert isinstance(h, HistogramWorkspace) and h.blocksize() == 1
    np.testing.assert_array_equal(h.values[:, 0], np.bincount(index, minlength=5))


def test_compress_events_keeps_counts_and_merges_within_tolerance(ads):
    rng = np.random.default_rng(5)
    index = rng.integers(0, 3, 5000, dtype=np.uint32)
    x = np.round(rng.uniform(0, 50, 5000), 1)  # many coincident values
    ws = EventWorkspace(Spectra.one_to_one([1, 2, 3]), EventColumns(index, x))
    out = registry.get("CompressEvents")(InputWorkspace=ws, Tolerance=0.05)
    assert out.getNumberEvents() < ws.getNumberEvents()
    assert out.events.weights.sum() == 5000
    np.testing.assert_array_equal(
        np.bincount(out.events.index, weights=out.events.weights, minlength=3),
        np.bincount(index, minlength=3),
    )
    edges = np.arange(0.0, 51.0, 1.0)  # histograms agree for any binning coarser than the tolerance grid
    np.testing.assert_allclose(out.histogram(edges).values, ws.histogram(edges).values)
    np.testing.assert_allclose(out.histogram(edges).variances, ws.histogram(edges).variances)
    for s in range(3):  # every merged event is within the tolerance of its sources
        merged = out.getSpectrum(s).getTofs()
        orig = np.unique(x[index == s])
        assert np.abs(orig[:, None] - merged[None, :]).min(axis=1).max() < 0.05


def test_compress_events_default_tolerance_used_by_daemon():
    ws, _index, _x = events(n=3000)
    out = compress_events(ws)
    assert out.events.weights.sum() == 3000 and 2990 <= out.getNumberEvents() <= 3000  # few coincide


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(-50, 1050, allow_nan=False),
            st.integers(-2, 101).map(lambda k: k * 10.0),
            st.sampled_from([np.nan, 1e300, -1e300, np.inf]),
        ),
        max_size=300,
    ),
    st.sampled_from(["0,10,1000", "0.1,0.3,999.7", "-5,7,990"]),
)
def test_fast_events_to_histogram_matches_numpy(xs, params):
    """Rebin's counts-only kernel puts every event where the edges say, also on edges and far outside."""
    x = np.array(xs, float)
    index = (np.arange(x.size) % 3).astype(np.uint32)
    ws = EventWorkspace(Spectra.one_to_one([1, 2, 3]), EventColumns(index, x))
    out = rebin(ws, params, preserve_events=False)
    edges = edges_from_params(params)
    for s in range(3):
        sel = x[index == s]
        inside = sel[(sel >= edges[0]) & (sel < edges[-1])]
        np.testing.assert_array_equal(out.values[s], np.histogram(inside, bins=edges)[0])
