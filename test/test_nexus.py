"""SaveNexus → LoadNexus is exact, and the file is plain NeXus/HDF5 that h5py reads without livereduce."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra


def rich_run() -> Run:
    run = Run()
    run.set("run_number", "4321")
    run.set("gd_prtn_chrg", 12.5, "uAh")
    run.set("count", 7)
    run.set("flag", True)
    run.set("nothing", None)
    run.set("list", [1, 2.5, "x"])
    run.set("array", np.array([1.5, 2.5]))
    run.set("a/slash name", "kept")
    run.series("proton_charge", "picoCoulomb").append([10, 20, 30], [1e7, 2e7, 3e7])
    run.series("temperature", "K").append([5, 6], [300.25, 301.5])
    run.series("state", "").append([1, 2], np.array(["open", "closed"]))
    return run


def spectra(n=4):
    s = Spectra.one_to_one(
        np.arange(100, 100 + n),
        numbers=np.arange(1, n + 1),
        l1=10.0,
        l2=np.linspace(2, 3, n),
        two_theta=np.linspace(0.3, 2.5, n),
        instrument="TEST",
    )
    s.extra["bank"] = "north"
    return s


def histogram(edges_2d=False) -> HistogramWorkspace:
    rng = np.random.default_rng(4)
    y = rng.poisson(30, (4, 50)).astype(float) + rng.uniform(0, 1, (4, 50))
    edges = np.linspace(0, 1e4, 51)
    if edges_2d:
        edges = edges[None, :] * np.linspace(1, 1.3, 4)[:, None]
    return HistogramWorkspace(y, rng.uniform(0.5, 40, y.shape), edges, spectra(), rich_run(), "dSpacing")


def assert_same(a, b):
    assert type(a) is type(b) and a.x_unit == b.x_unit
    np.testing.assert_array_equal(a.spectra.numbers, b.spectra.numbers)
    np.testing.assert_array_equal(a.spectra.det_ids, b.spectra.det_ids)
    np.testing.assert_array_equal(a.spectra.det_offsets, b.spectra.det_offsets)
    for f in ("l2", "two_theta", "azimuthal"):
        np.testing.assert_array_equal(getattr(a.spectra, f), getattr(b.spectra, f))
    assert (a.spectra.l1, a.spectra.instrument, a.spectra.extra) == (
        b.spectra.l1,
        b.spectra.instrument,
        b.spectra.extra,
    )
    assert a.run_info.keys() == b.run_info.keys()
    for key in a.run_info.keys():
        pa, pb = a.run_info[key], b.run_info[key]
        assert type(pa) is type(pb) and pa.unit == pb.unit
        if hasattr(pa, "times"):
            np.testing.assert_array_equal(pa.times, pb.times)
            np.testing.assert_array_equal(pa.values, pb.values)
            assert pa.values.dtype == pb.values.dtype
        elif isinstance(pa.value, np.ndarray):
            np.testing.assert_array_equal(pa.value, pb.value)
        else:
            assert pa.value == pb.value and type(pa.value) is type(pb.value)


@pytest.mark.parametrize("edges_2d", [False, True])
def test_histogram_round_trip_is_exact(ads, tmp_path, edges_2d):
    ws = histogram(edges_2d)
    path = str(tmp_path / "h.nxs")
    registry.call("SaveNexus", ws, Filename=path)
    back = registry.call("LoadNexus", path, OutputWorkspace="back")
    assert_same(ws, back)
    np.testing.assert_array_equal(back.values, ws.values)
    np.testing.assert_array_equal(back.extractE(), ws.extractE())  # errors exactly
    np.testing.assert_allclose(back.variances, ws.variances, rtol=4.5e-16, atol=0)
    np.testing.assert_array_equal(back.edges, ws.edges)
    assert back.edges.ndim == ws.edges.ndim


def test_event_round_trip_is_exact(ads, tmp_path):
    rng = np.random.default_rng(1)
    ev = EventColumns(
        rng.integers(0, 4, 500, dtype=np.uint32),
        rng.uniform(0, 1e4, 500),
        rng.integers(0, 3, 500, dtype=np.uint32),
        np.array([10, 20, 30], np.int64),
    )
    mon = HistogramWorkspace([[5.0, 6.0]], None, [0.0, 1.0, 2.0], Spectra.one_to_one([-1]))
    ws = EventWorkspace(spectra(), ev, np.linspace(0, 1e4, 11), rich_run(), "TOF", mon)
    path = str(tmp_path / "e.nxs")
    registry.call("SaveNexusProcessed", ws, Filename=path)
    back = registry.call("Load", path, OutputWorkspace="back")
    assert_same(ws, back)
    for col in ("index", "x", "pulse", "pulse_times"):
        np.testing.assert_array_equal(getattr(back.events, col), getattr(ws.events, col))
    np.testing.assert_array_equal(back.edges, ws.edges)
    np.testing.assert_array_equal(back.monitors.values, mon.values)
    hist_only = str(tmp_path / "eh.nxs")
    registry.call("SaveNexusProcessed", ws, Filename=hist_only, PreserveEvents=False)
    h = registry.call("Load", hist_only, OutputWorkspace="h")
    assert isinstance(h, HistogramWorkspace)
    np.testing.assert_array_equal(h.values, ws.histogram().values)


def test_group_round_trip_and_entry_selection(ads, tmp_path):
    g = WorkspaceGroup([histogram(), histogram(True)])
    path = str(tmp_path / "g.nxs")
    registry.call("SaveNexus", g, Filename=path)
    back = registry.call("LoadNexus", path, OutputWorkspace="gb")
    assert isinstance(back, WorkspaceGroup) and len(back) == 2
    np.testing.assert_array_equal(back[1].edges, g[1].edges)
    second = registry.call("LoadNexus", path, OutputWorkspace="second", EntryNumber=2)
    assert second.edges.ndim == 2
    few = registry.call("LoadNexus", path, OutputWorkspace="few", EntryNumber=1, SpectrumList="2,4")
    assert few.getSpectrumNumbers() == [2, 4]
    np.testing.assert_array_equal(few.values, g[0].values[[1, 3]])


def test_file_is_plain_nexus_for_h5py(ads, tmp_path):
    ws = histogram()
    ws._name = "accumulation"
    path = tmp_path / "plain.nxs"
    registry.call("SaveNexus", ws, Filename=str(path))
    with h5py.File(path, "r") as f:
        entry = f["mantid_workspace_1"]
        assert entry.attrs["NX_class"] == "NXentry"
        assert entry["workspace_name"].asstr()[()] == "accumulation"
        data = entry["workspace"]
        assert data.attrs["NX_class"] == "NXdata" and data.attrs["signal"] == "values"
        assert list(data.attrs["axes"]) == ["spectrum", "dspacing"]
        assert data.attrs["dspacing_indices"] == 1 and data.attrs["spectrum_indices"] == 0
        np.testing.assert_array_equal(data["values"][()], ws.values)
        np.testing.assert_array_equal(data["values_errors"][()], np.sqrt(ws.variances))
        assert data["values"].attrs["units"] == "counts"
        assert (
            data["dspacing"].attrs["units"] == "angstrom" and data["dspacing"].attrs["unit_id"] == "dSpacing"
        )
        np.testing.assert_array_equal(data["spectrum"][()], [1, 2, 3, 4])
        log = entry["logs/temperature"]
        assert log.attrs["NX_class"] == "NXlog"
        np.testing.assert_array_equal(log["time"][()], [5, 6])
        assert log["time"].attrs["units"] == "ns" and log["value"].attrs["units"] == "K"
        np.testing.assert_array_equal(log["value"][()], [300.25, 301.5])
        inst = entry["instrument"]
        assert inst.attrs["NX_class"] == "NXinstrument" and inst["l1"].attrs["units"] == "m"
        assert entry["properties/a%2Fslash name"].attrs["name"] == "a/slash name"


def test_load_refuses_foreign_files(ads, tmp_path):
    other = tmp_path / "raw.nxs.h5"
    with h5py.File(other, "w") as f:
        f.create_group("entry").attrs["NX_class"] = "NXentry"
    with pytest.raises(AlgorithmError, match="not a processed workspace file"):
        registry.call("Load", str(other), OutputWorkspace="x")
    with pytest.raises(AlgorithmError, match="only processed NeXus"):
        registry.call("Load", str(tmp_path / "run.raw"), OutputWorkspace="x")
    with pytest.raises(AlgorithmError, match="does not exist"):
        registry.call("SaveNexus", histogram(), Filename=str(tmp_path / "no" / "dir.nxs"))
