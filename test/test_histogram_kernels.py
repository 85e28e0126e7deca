"""The in-place histogram kernel against numpy.histogram, including events exactly on bin edges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livereduce.workspace.histogram_kernels import GENERAL, LINEAR, LOG, edge_kind, histogram_into

EDGES = {
    "linear": np.arange(0.0, 1000.05, 0.1),
    "log": np.geomspace(1.0, 1.0e4, 977),
    "irregular": np.array([0.0, 1.0, 3.0, 7.0, 100.0]),
}


def reference(x, idx, edges, nspec, weights=None):
    out = np.zeros((nspec, edges.size - 1))
    for s in range(nspec):
        sel = (idx == s) & (x >= edges[0]) & (x < edges[-1])  # bin i holds edges[i] <= x < edges[i+1]
        out[s] = np.histogram(x[sel], bins=edges, weights=None if weights is None else weights[sel])[0]
    return out


@pytest.mark.parametrize("name", list(EDGES))
def test_matches_numpy_including_events_on_edges(name):
    edges = EDGES[name]
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [edges, np.nextafter(edges, -np.inf), rng.uniform(edges[0] - 1, edges[-1] + 1, 50_000)]
    )
    idx = rng.integers(0, 3, x.size).astype(np.uint32)
    values, variances = np.zeros((3, edges.size - 1)), np.zeros((3, edges.size - 1))
    missed = histogram_into(values, variances, idx, x, edges)
    expected = reference(x, idx, edges, 3)
    assert np.array_equal(values, expected) and np.array_equal(variances, expected)
    assert missed == x.size - expected.sum()


def test_edge_kinds_are_recognised():
    assert edge_kind(EDGES["linear"])[0] == LINEAR
    assert edge_kind(EDGES["log"])[0] == LOG
    assert edge_kind(EDGES["irregular"])[0] == GENERAL


def test_accumulates_in_place_with_weights_and_per_spectrum_edges():
    edges2d = np.array([[0.0, 1.0, 2.0], [10.0, 20.0, 30.0]])
    values = np.ones((2, 2))
    variances = np.ones((2, 2))
    x = np.array([0.5, 1.5, 15.0, 25.0, 25.0])
    idx = np.array([0, 0, 1, 1, 1], np.uint32)
    w = np.array([2.0, 3.0, 4.0, 5.0, 6.0])
    histogram_into(values, variances, idx, x, edges2d, weights=w, err2=w**2)
    assert values.tolist() == [[3.0, 4.0], [5.0, 12.0]]
    assert variances.tolist() == [[5.0, 10.0], [17.0, 62.0]]


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.01, 50.0),
    st.integers(1, 300),
    st.lists(st.floats(-10, 20_000, allow_nan=False), max_size=300),
)
def test_linear_binning_agrees_with_numpy(step, nbins, xs):
    edges = 100.0 + step * np.arange(nbins + 1)
    x = np.concatenate([np.asarray(xs, float), edges[::7]])
    idx = np.zeros(x.size, np.uint32)
    values = np.zeros((1, nbins))
    histogram_into(values, None, idx, x, edges)
    assert np.array_equal(values, reference(x, idx, edges, 1))
