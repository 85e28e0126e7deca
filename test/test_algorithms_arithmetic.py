"""Plus, Minus, Multiply, Divide, NormaliseByCurrent: values and propagated errors."""

from __future__ import annotations

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.algorithms.arithmetic import binary_op
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

EDGES = np.array([0.0, 1.0, 2.0, 3.0])


def h(y, e2=None, edges=EDGES):
    y = np.asarray(y, float)
    return HistogramWorkspace(
        y,
        y.copy() if e2 is None else np.asarray(e2, float),
        edges,
        Spectra.one_to_one(np.arange(1, y.shape[0] + 1)),
    )


def ev(x, index=None, nspec=1):
    x = np.asarray(x, float)
    index = np.zeros(x.size, np.uint32) if index is None else np.asarray(index, np.uint32)
    return EventWorkspace(Spectra.one_to_one(np.arange(1, nspec + 1)), EventColumns(index, x), EDGES)


A = [[4.0, 9.0, 16.0]]
B = [[1.0, 3.0, 4.0]]


def test_plus_minus_add_variances(ads):
    a, b = h(A), h(B)
    for name, sign in (("Plus", 1), ("Minus", -1)):
        out = registry.call(name, a, b, OutputWorkspace=name.lower())
        np.testing.assert_array_equal(out.values, np.array(A) + sign * np.array(B))
        np.testing.assert_array_equal(out.variances, np.array(A) + np.array(B))


def test_multiply_divide_relative_errors(ads):
    a, b = h(A), h(B)
    av, bv = np.array(A), np.array(B)
    m = registry.call("Multiply", a, b, OutputWorkspace="m")
    np.testing.assert_allclose(m.values, av * bv)
    np.testing.assert_allclose(m.variances, av * bv**2 + bv * av**2)
    d = registry.call("Divide", a, b, OutputWorkspace="d")
    np.testing.assert_allclose(d.values, av / bv)
    rel2 = av / av**2 + bv / bv**2  # (σa/a)² + (σb/b)², σ² = counts
    np.testing.assert_allclose(d.variances, (av / bv) ** 2 * rel2)


def test_scalars_carry_no_error(ads):
    a = h(A)
    np.testing.assert_array_equal((a + 2.0).values, np.array(A) + 2)
    np.testing.assert_array_equal((a + 2.0).variances, A)
    np.testing.assert_array_equal((2.0 * a).variances, 4 * np.array(A))
    np.testing.assert_array_equal((10.0 - a).values, 10 - np.array(A))
    np.testing.assert_allclose((a / 2.0).variances, np.array(A) / 4)
    r = 8.0 / a
    np.testing.assert_allclose(r.values, 8 / np.array(A))
    np.testing.assert_allclose(r.variances, 64 * np.array(A) / np.array(A) ** 4)


def test_operator_assignment_registers_the_result(ads):
    a = h(A)
    doubled = a * 2.0
    assert ads["doubled"] is doubled


def test_shape_and_binning_checks(ads):
    with pytest.raises(AlgorithmError, match="shapes differ"):
        registry.call("Plus", h(A), h([[1.0, 2.0]], edges=EDGES[:3]), OutputWorkspace="x")
    with pytest.raises(AlgorithmError, match="bin edges"):
        registry.call("Plus", h(A), h(B, edges=EDGES * 2), OutputWorkspace="x")
    two = h([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    bc = registry.call("Multiply", two, h([[2.0, 3.0, 4.0]]), OutputWorkspace="bc")  # one-spectrum RHS
    np.testing.assert_array_equal(bc.values, [[2, 3, 4], [4, 6, 8]])


def test_events_plus_events_concatenates(ads):
    a, b = ev([0.5, 1.5]), ev([2.5, 2.6, 0.1])
    out = registry.call("Plus", a, b, OutputWorkspace="sum")
    assert isinstance(out, EventWorkspace) and out.getNumberEvents() == 5 and a.getNumberEvents() == 2
    np.testing.assert_array_equal(out.readY(0), [2, 1, 2])
    ads.addOrReplace("acc", a)
    registry.call("Plus", "acc", b, OutputWorkspace="acc")  # in place, as the accumulation does
    assert ads["acc"] is a and a.getNumberEvents() == 5


def test_events_minus_and_scale(ads):
    a, b = ev([0.5, 0.6, 1.5]), ev([0.7])
    diff = registry.call("Minus", a, b, OutputWorkspace="diff")
    np.testing.assert_array_equal(diff.readY(0), [1, 1, 0])
    np.testing.assert_allclose(diff.readE(0) ** 2, [3, 1, 0])
    scaled = a * 3.0
    assert isinstance(scaled, EventWorkspace) and scaled.getEventType() == "WEIGHTED"
    np.testing.assert_allclose(scaled.readY(0), [6, 3, 0])
    np.testing.assert_allclose(scaled.readE(0) ** 2, [18, 9, 0])
    mixed = a + h(B)  # events with a histogram: histogrammed
    assert isinstance(mixed, HistogramWorkspace)
    np.testing.assert_array_equal(mixed.values, [[3, 4, 4]])


def test_groups_member_by_member(ads):
    g = WorkspaceGroup([h(A), h(B)])
    out = binary_op("Multiply", g, 2.0)
    assert isinstance(out, WorkspaceGroup)
    np.testing.assert_array_equal(out[1].values, 2 * np.array(B))
    gg = registry.call("Plus", g, g, OutputWorkspace="gg")
    np.testing.assert_array_equal(gg[0].values, 2 * np.array(A))


def test_normalise_by_current(ads):
    a = h(A)
    a.getRun().set("gd_prtn_chrg", 2.0, "uAh")
    n = registry.call("NormaliseByCurrent", a, OutputWorkspace="n")
    np.testing.assert_allclose(n.values, np.array(A) / 2)
    np.testing.assert_allclose(n.variances, np.array(A) / 4)
    assert n.getRun()["NormalizationFactor"].value == 2.0
    e = ev([0.5, 1.5])
    e.getRun().series("proton_charge", "picoCoulomb").append([1, 2], [1.8e9, 1.8e9])  # 3.6e9 pC = 1 µAh
    ne = registry.call("NormaliseByCurrent", e, OutputWorkspace="ne")
    np.testing.assert_allclose(ne.readY(0), [1, 1, 0])
    with pytest.raises(AlgorithmError, match=r"proton charge .* is 0"):
        registry.call("NormaliseByCurrent", h(B), OutputWorkspace="z")
