"""The workspace model as the algorithms rely on it: exact histogramming, per-spectrum views, operators,
geometry bookkeeping and the registry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import livereduce.algorithms  # noqa: F401 - installs workspace arithmetic (ws1 + ws2 runs Plus)
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra


def ws_events(index, x, nspec, edges=None):
    return EventWorkspace(
        Spectra.one_to_one(np.arange(nspec)), EventColumns(np.asarray(index, np.uint32), x), edges
    )


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.floats(-5, 105, allow_nan=False)), max_size=200),
    st.sampled_from(["linear", "log", "general"]),
)
def test_histogram_matches_numpy_including_edge_values(pairs, kind):
    index = np.array([p[0] for p in pairs], np.uint32)
    x = np.array([p[1] for p in pairs], float)
    x[: len(x) // 3] = np.round(x[: len(x) // 3] / 10) * 10  # many events exactly on edges
    edges = {
        "linear": np.linspace(0, 100, 11),
        "log": np.geomspace(1, 100, 9),
        "general": np.array([0, 1, 5, 7.5, 50, 100.0]),
    }[kind]
    h = ws_events(index, x, 4).histogram(edges)
    for s in range(4):
        sel = x[index == s]
        inside = sel[(sel >= edges[0]) & (sel < edges[-1])]  # bins are [lo, hi): the top edge excluded
        np.testing.assert_array_equal(h.values[s], np.histogram(inside, bins=edges)[0])
        np.testing.assert_array_equal(h.variances[s], h.values[s])


def test_per_spectrum_views_and_default_binning():
    ws = ws_events([1, 0, 1, 1], [3.0, 1.0, 2.0, 9.0], 2)
    assert ws.blocksize() == 1 and ws.readX(0)[0] == 1.0 and ws.readX(0)[1] > 9.0  # one bin holding all
    np.testing.assert_array_equal(ws.getSpectrum(1).getTofs(), [3.0, 2.0, 9.0])
    np.testing.assert_array_equal(ws.readY(1), [3.0])
    np.testing.assert_array_equal(ws.readE(1), [np.sqrt(3.0)])


def test_two_dimensional_edges_histogram_per_spectrum():
    edges = np.array([[0.0, 1.0, 2.0], [10.0, 20.0, 30.0]])
    ws = ws_events([0, 0, 1, 1, 1], [0.5, 1.5, 15.0, 25.0, 26.0], 2, edges)
    np.testing.assert_array_equal(ws.histogram().values, [[1, 1], [1, 2]])


def test_clone_is_independent():
    y = np.ones((2, 3))
    h = HistogramWorkspace(y, y, [0, 1, 2, 3], Spectra.one_to_one([1, 2]))
    c = h.clone()
    c.values[0, 0] = 5
    c.getRun().set("x", 1)
    assert h.values[0, 0] == 1 and not h.getRun().hasProperty("x")


def test_operators_dispatch_to_the_algorithms(ads):
    y = np.array([[1.0, 2.0]])
    a = HistogramWorkspace(y, y, [0, 1, 2], Spectra.one_to_one([1]))
    total = a + a
    np.testing.assert_array_equal(total.values, [[2, 4]])
    np.testing.assert_array_equal((3 * a).variances, [[9, 18]])
    np.testing.assert_array_equal((a - 1).values, [[0, 1]])
    np.testing.assert_array_equal((a / a).values, [[1, 1]])
    assert ads["total"] is total


def test_spectra_take_and_concat_keep_detectors_and_geometry():
    s = Spectra.one_to_one([10, 11, 12], l1=5.0, l2=[1, 2, 3], two_theta=[0.1, 0.2, 0.3])
    t = s.take([2, 0])
    assert t.numbers.tolist() == [3, 1] and t.detector_ids(0).tolist() == [12] and t.l2.tolist() == [3, 1]
    c = s.concat(t)
    assert len(c) == 5 and c.detector_ids(4).tolist() == [10] and c.has_geometry()


def test_proton_charge_in_micro_amp_hours():
    run = Run()
    run.series("proton_charge", "picoCoulomb").append([1, 2], [1.8e9, 5.4e9])
    assert run.getProtonCharge() == pytest.approx(2.0)  # 7.2e9 pC = 7.2e-3 C = 2 µA·h
    run.set("gd_prtn_chrg", 3.5)
    assert run.getProtonCharge() == 3.5


def test_group_members_are_registered_by_name(ads):
    g = WorkspaceGroup([ws_events([0], [1.0], 1), ws_events([0], [2.0], 1)])
    ads.addOrReplace("grp", g)
    assert ads["grp_1"] is g[0] and ads["grp_2"] is g[1]
    ads.remove("grp")
    assert not ads.doesExist("grp_1")
