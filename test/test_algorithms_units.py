"""ConvertUnits against the physics, with CODATA constants from scipp (not from livereduce)."""

from __future__ import annotations

import numpy as np
import pytest
import scipp.constants as const

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

H = float(const.h.value)
M_N = float(const.neutron_mass.value)
E_CHARGE = float(const.e.value)
L1 = 15.0
L2 = np.array([1.5, 2.0, 3.0])
TWO_THETA = np.deg2rad([20.0, 90.0, 150.0])


def spectra():
    return Spectra.one_to_one([1, 2, 3], l1=L1, l2=L2, two_theta=TWO_THETA)


def events():
    rng = np.random.default_rng(2)
    index = rng.integers(0, 3, 3000, dtype=np.uint32)
    tof = rng.uniform(1000.0, 30000.0, 3000)
    return EventWorkspace(spectra(), EventColumns(index, tof)), index, tof


def physics(unit, tof_us, s):
    L = L1 + L2[s]
    v = L / (tof_us * 1e-6)  # m/s
    lam = H / (M_N * v) * 1e10  # Å
    theta = TWO_THETA[s] / 2
    return {
        "Wavelength": lam,
        "dSpacing": lam / (2 * np.sin(theta)),
        "Energy": 0.5 * M_N * v**2 / E_CHARGE * 1e3,  # meV
        "MomentumTransfer": 4 * np.pi * np.sin(theta) / lam,
    }[unit]


ConvertUnits = registry.get("ConvertUnits")


@pytest.mark.parametrize("unit", ["Wavelength", "dSpacing", "Energy", "MomentumTransfer"])
def test_events_follow_the_physics(ads, unit):
    ws, index, tof = events()
    out = ConvertUnits(InputWorkspace=ws, Target=unit)
    assert out.x_unit.unit_id == unit and out.getNumberEvents() == tof.size
    np.testing.assert_allclose(out.events.x, physics(unit, tof, index), rtol=1e-12)
    e = out.edges  # per-spectrum edges, increasing, holding every event
    assert e.shape == (3, 2) and np.all(e[:, 1] > e[:, 0])
    assert out.histogram().values.sum() == tof.size


@pytest.mark.parametrize("unit", ["Wavelength", "dSpacing", "Energy", "MomentumTransfer"])
def test_histogram_edges_convert_per_spectrum(ads, unit):
    edges = np.array([1000.0, 2000.0, 4000.0, 8000.0])
    y = np.array([[1.0, 2.0, 3.0]] * 3)
    ws = HistogramWorkspace(y, y.copy(), edges, spectra())
    out = ConvertUnits(InputWorkspace=ws, Target=unit)
    decreasing = unit in ("Energy", "MomentumTransfer")
    for s in range(3):
        conv = physics(unit, edges, s)
        np.testing.assert_allclose(out.readX(s), conv[::-1] if decreasing else conv, rtol=1e-12)
        np.testing.assert_array_equal(out.readY(s), [3.0, 2.0, 1.0] if decreasing else [1.0, 2.0, 3.0])
        assert np.all(np.diff(out.readX(s)) > 0)


def test_round_trip_and_unit_to_unit(ads):
    ws, _index, tof = events()
    d = ConvertUnits(InputWorkspace=ws, Target="dSpacing")
    q = ConvertUnits(InputWorkspace=d, Target="MomentumTransfer")
    np.testing.assert_allclose(q.events.x, 2 * np.pi / d.events.x, rtol=1e-12)  # Q = 2π/d (elastic)
    back = ConvertUnits(InputWorkspace=q, Target="TOF")
    np.testing.assert_allclose(back.events.x, tof, rtol=1e-12)


def test_missing_geometry_is_named(ads):
    ws = EventWorkspace(Spectra.one_to_one([1, 2]), EventColumns(np.array([0, 1], np.uint32), [1.0, 2.0]))
    with pytest.raises(AlgorithmError, match=r"L1 .*L2 for 2 spectra.*two_theta"):
        x = ConvertUnits(InputWorkspace=ws, Target="dSpacing")  # noqa: F841
    partial = Spectra.one_to_one([1, 2], l1=10.0, l2=2.0)
    ws2 = EventWorkspace(partial, EventColumns(np.array([0, 1], np.uint32), [1.0, 2.0]))
    assert ConvertUnits(InputWorkspace=ws2, OutputWorkspace="lam", Target="Wavelength").getNumberEvents() == 2
    with pytest.raises(AlgorithmError, match="two_theta"):
        ConvertUnits(InputWorkspace=ws2, OutputWorkspace="d", Target="dSpacing")


def test_inelastic_and_unknown_units_are_refused(ads):
    ws, _, _ = events()
    with pytest.raises(AlgorithmError, match="Direct"):
        ConvertUnits(InputWorkspace=ws, OutputWorkspace="x", Target="Energy", EMode="Direct")
    with pytest.raises(AlgorithmError, match="DeltaE"):
        ConvertUnits(InputWorkspace=ws, OutputWorkspace="x", Target="DeltaE")
