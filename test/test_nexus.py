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


def by_spectrum(ev):
    """Events in a canonical order (by spectrum, arrival order within one): Mantid's files group them so."""
    order = np.argsort(ev.index, kind="stable")
    return ev.index[order], ev.x[order], ev.pulse_time()[order]


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
    assert isinstance(back, EventWorkspace)
    assert_same(ws, back)
    for got, want in zip(by_spectrum(back.events), by_spectrum(ws.events), strict=True):
        np.testing.assert_array_equal(got, want)
    for col in ("index", "x"):  # and the arrival order itself
        np.testing.assert_array_equal(getattr(back.events, col), getattr(ws.events, col))
    np.testing.assert_array_equal(back.events.pulse_time(), ws.events.pulse_time())
    assert back.events.weights is None
    np.testing.assert_array_equal(back.edges, ws.edges)
    np.testing.assert_array_equal(back.monitors.values, mon.values)
    np.testing.assert_array_equal(back.histogram().values, ws.histogram().values)
    hist_only = str(tmp_path / "eh.nxs")
    registry.call("SaveNexusProcessed", ws, Filename=hist_only, PreserveEvents=False)
    h = registry.call("Load", hist_only, OutputWorkspace="h")
    assert isinstance(h, HistogramWorkspace)
    np.testing.assert_array_equal(h.values, ws.histogram().values)


def test_weighted_events_float32_for_mantid_exact_for_us(ads, tmp_path):
    """Mantid stores event weights and squared errors as float32; livereduce keeps exact copies beside them."""
    w = np.array([0.1, 2.5, 1 / 3])
    ev = EventColumns(np.array([1, 0, 1], np.uint32), [1.0, 2.0, 3.0], None, [7], w, w * 2)
    ws = EventWorkspace(spectra(2), ev, [0.0, 4.0])
    path = str(tmp_path / "w.nxs")
    registry.call("SaveNexusProcessed", ws, Filename=path)
    with h5py.File(path, "r") as f:
        d = f["mantid_workspace_1/event_workspace"]
        assert d["weight"].dtype == np.float32 and d["error_squared"].dtype == np.float32
        np.testing.assert_array_equal(d["weight"][()], np.float32([2.5, 0.1, 1 / 3]))  # by spectrum
    back = registry.call("LoadNexusProcessed", path, OutputWorkspace="w")
    np.testing.assert_array_equal(back.events.weights, w)  # arrival order and exact values
    np.testing.assert_array_equal(back.events.err2, w * 2)
    np.testing.assert_array_equal(back.events.index, [1, 0, 1])
    assert back.getEventType() == "WEIGHTED"


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


def attr(node, name) -> str:
    v = node.attrs[name]
    assert isinstance(v, bytes | np.bytes_), f"{node.name}@{name} must be fixed-length text (NX_CHAR)"
    return v.decode()


def fixed_text(ds) -> str:
    assert ds.dtype.kind == "S", f"{ds.name} must be fixed-length text (NX_CHAR), not {ds.dtype}"
    return ds[()].decode()


def test_file_has_mantids_processed_layout(ads, tmp_path):
    """Every dataset, attribute and unit Mantid's LoadNexusProcessed reads, checked with plain h5py."""
    ws = histogram()
    ws._name = "accumulation"
    ws.setYUnitLabel("Counts per bin")
    path = tmp_path / "plain.nxs"
    registry.call("SaveNexusProcessed", ws, Filename=str(path), Title="live run")
    with h5py.File(path, "r") as f:
        entry = f["mantid_workspace_1"]  # LoadNexusProcessed's confidence test: this entry exists
        assert attr(entry, "NX_class") == "NXentry"
        assert fixed_text(entry["title"]) == "live run"
        assert fixed_text(entry["workspace_name"]) == "accumulation"
        assert fixed_text(entry["definition"]) == "Mantid Processed Workspace"
        data = entry["workspace"]
        assert attr(data, "NX_class") == "NXdata"
        values = data["values"]
        assert values.attrs["signal"] == 1 and values.attrs["signal"].dtype == np.int32
        assert attr(values, "axes") == "axis2,axis1"
        assert attr(values, "units") == "Counts" and attr(values, "unit_label") == "Counts per bin"
        assert values.dtype == np.float64 and values.shape == (4, 50)
        np.testing.assert_array_equal(values[()], ws.values)
        np.testing.assert_array_equal(data["errors"][()], np.sqrt(ws.variances))
        axis1 = data["axis1"]
        assert attr(axis1, "units") == "dSpacing"  # Mantid's unit ID
        assert attr(axis1, "distribution") == "0"
        np.testing.assert_array_equal(axis1[()], np.linspace(0, 1e4, 51))
        axis2 = data["axis2"]
        assert axis2.dtype == np.float64 and attr(axis2, "units") == "spectraNumber"
        np.testing.assert_array_equal(axis2[()], [1, 2, 3, 4])
        inst = entry["instrument"]
        assert attr(inst, "NX_class") == "NXinstrument" and fixed_text(inst["name"]) == "TEST"
        det = inst["detector"]
        assert attr(det, "NX_class") == "NXdetector"
        for name in ("spectra", "detector_index", "detector_count", "detector_list"):
            assert det[name].dtype == np.int32, name
        np.testing.assert_array_equal(det["spectra"][()], [1, 2, 3, 4])
        np.testing.assert_array_equal(det["detector_index"][()], [0, 1, 2, 3])
        np.testing.assert_array_equal(det["detector_count"][()], [1, 1, 1, 1])
        np.testing.assert_array_equal(det["detector_list"][()], [100, 101, 102, 103])
        assert attr(entry["sample"], "NX_class") == "NXsample"
        logs = entry["logs"]
        temp = logs["temperature"]
        assert attr(temp, "NX_class") == "NXlog"
        assert temp["time"].dtype == np.float64 and attr(temp["time"], "start") == "1970-01-01T00:00:00"
        np.testing.assert_array_equal(temp["time"][()], [5e-9, 6e-9])  # seconds since start
        assert attr(temp["value"], "units") == "K"
        np.testing.assert_array_equal(temp["value"][()], [300.25, 301.5])
        state = logs["state"]["value"]  # string series: NeXus 2-D char, i.e. fixed-length rows
        assert state.dtype.kind == "S" and list(state[()]) == [b"open", b"closed"]
        assert "time" not in logs["gd_prtn_chrg"]  # single-valued: value only
        assert logs["gd_prtn_chrg"]["value"][()].tolist() == [12.5]
        assert attr(logs["gd_prtn_chrg"]["value"], "units") == "uAh"
        assert fixed_text(logs["run_number"]["value"]) == "4321"
        assert "boolean" in logs["flag"].attrs and logs["flag"]["value"].dtype == np.uint8


def test_event_file_has_mantids_event_layout(ads, tmp_path):
    ev = EventColumns(
        np.array([2, 0, 2, 1], np.uint32), [4.0, 1.0, 5.0, 2.0], [0, 1, 1, 0], np.array([10, 20], np.int64)
    )
    ws = EventWorkspace(spectra(3), ev, [0.0, 10.0])
    path = tmp_path / "ev.nxs"
    registry.call("SaveNexusProcessed", ws, Filename=str(path))
    with h5py.File(path, "r") as f:
        entry = f["mantid_workspace_1"]
        assert "workspace" not in entry
        d = entry["event_workspace"]
        assert attr(d, "NX_class") == "NXdata"
        assert d["indices"].dtype == np.int64
        np.testing.assert_array_equal(d["indices"][()], [0, 1, 2, 4])  # offsets per spectrum
        np.testing.assert_array_equal(d["tof"][()], [1.0, 2.0, 4.0, 5.0])
        epoch_1990 = 631_152_000 * 10**9  # pulse times count ns from 1990-01-01, as Mantid's DateAndTime
        np.testing.assert_array_equal(d["pulsetime"][()], np.array([20, 10, 10, 20]) - epoch_1990)
        assert "weight" not in d and "error_squared" not in d  # plain TOF events
        assert attr(d["axis1"], "units") == "TOF"
        np.testing.assert_array_equal(d["axis2"][()], [1, 2, 3])


def test_scippnexus_loads_the_same_file(ads, tmp_path):
    snx = pytest.importorskip("scippnexus")
    ws = histogram()
    path = tmp_path / "s.nxs"
    registry.call("SaveNexusProcessed", ws, Filename=str(path))
    with snx.File(path) as f, pytest.warns(UserWarning):  # Mantid's unit IDs are not UDUNITS units
        da = f["mantid_workspace_1/workspace"][()]
    assert da.dims == ("axis2", "axis1")
    np.testing.assert_array_equal(da.values, ws.values)
    np.testing.assert_allclose(da.variances, ws.variances, rtol=4.5e-16, atol=0)
    np.testing.assert_array_equal(da.coords["axis1"].values, ws.edges)  # bin edges
    np.testing.assert_array_equal(da.coords["axis2"].values, [1, 2, 3, 4])


def mantid_written(path, *, events=False):
    """A file laid out as Mantid's SaveNexusProcessed writes one, built with h5py from the layout facts
    (fixed-length text, float seconds since @start in logs, the spectrum → detector map)."""

    def s(v):
        return np.bytes_(v.encode())

    with h5py.File(path, "w") as f:
        e = f.create_group("mantid_workspace_1")
        e.attrs["NX_class"] = s("NXentry")
        e["title"] = s("Vanadium run")
        e["workspace_name"] = s("van")
        e["definition"] = s("Mantid Processed Workspace")
        if events:
            d = e.create_group("event_workspace")
            d.attrs["NX_class"] = s("NXdata")
            d["indices"] = np.array([0, 2, 2, 3], np.int64)
            d["indices"].attrs["units"] = s("Counts")
            d["tof"] = np.array([100.0, 300.0, 250.0])
            d["pulsetime"] = np.array([5, 7, 9], np.int64) * 10**9  # 1990-01-01T00:00:05 ...
            d["weight"] = np.array([1.0, 2.0, 0.5], np.float32)
            d["error_squared"] = np.array([1.0, 4.0, 0.25], np.float32)
            d["axis1"] = np.array([0.0, 200.0, 400.0])
        else:
            d = e.create_group("workspace")
            d.attrs["NX_class"] = s("NXdata")
            d["values"] = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
            d["values"].attrs["signal"] = np.int32(1)
            d["values"].attrs["axes"] = s("axis2,axis1")
            d["values"].attrs["units"] = s("Counts")
            d["errors"] = np.array([[1.0, 1.5], [2.0, 2.0], [0.0, 3.0]])
            d["axis1"] = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [2.0, 3.0, 5.0]])  # ragged: per spectrum
        d["axis1"].attrs["units"] = s("Wavelength")
        d["axis1"].attrs["distribution"] = s("0")
        d["axis2"] = np.array([10.0, 20.0, 30.0])
        d["axis2"].attrs["units"] = s("spectraNumber")
        inst = e.create_group("instrument")
        inst.attrs["NX_class"] = s("NXinstrument")
        inst["name"] = s("POWGEN")
        note = inst.create_group("instrument_xml")  # Mantid embeds the instrument definition
        note.attrs["NX_class"] = s("NXnote")
        note["data"] = s(
            '<?xml version="1.0"?><instrument xmlns="http://www.mantidproject.org/IDF/1.0" name="POWGEN">'
            '<component type="src"><location z="-60"/></component><type name="src" is="Source"/>'
            '<component type="smp"><location/></component><type name="smp" is="SamplePos"/>'
            '<component type="pixel" idlist="d"><location x="2"/><location x="4"/><location z="3"/>'
            '<location y="1"/><location y="3"/></component><idlist idname="d"><id val="7"/><id val="8"/>'
            '<id val="9"/><id val="11"/><id val="12"/></idlist><type name="pixel" is="detector"/></instrument>'
        )
        det = inst.create_group("detector")
        det.attrs["NX_class"] = s("NXdetector")
        det["spectra"] = np.array([10, 20, 30], np.int32)
        det["detector_index"] = np.array([0, 2, 3], np.int32)
        det["detector_count"] = np.array([2, 1, 2], np.int32)
        det["detector_list"] = np.array([7, 8, 9, 11, 12], np.int32)
        e.create_group("sample").attrs["NX_class"] = s("NXsample")
        logs = e.create_group("logs")
        t = logs.create_group("SampleTemp")
        t.attrs["NX_class"] = s("NXlog")
        t["time"] = np.array([0.0, 1.5])
        t["time"].attrs["start"] = s("2024-03-01T10:00:00")
        t["time"].attrs["units"] = s("second")
        t["value"] = np.array([290.0, 291.0])
        t["value"].attrs["units"] = s("K")
        m = logs.create_group("Mode")
        m.attrs["NX_class"] = s("NXlog")
        m["time"] = np.array([0.0, 2.0])
        m["time"].attrs["start"] = s("2024-03-01T10:00:00")
        m["value"] = np.array([b"run", b"pause"], dtype="S5")
        r = logs.create_group("run_number")
        r.attrs["NX_class"] = s("NXlog")
        r["value"] = s("58810")
        c = logs.create_group("gd_prtn_chrg")
        c.attrs["NX_class"] = s("NXlog")
        c["value"] = np.array([3.25])
        c["value"].attrs["units"] = s("uAh")
        g = logs.create_group("goniometer")  # Mantid writes its goniometer here (not a log)
        g.attrs["NX_class"] = s("NXpositioner")
        p = e.create_group("process")  # algorithm history: not read
        p.attrs["NX_class"] = s("NXprocess")


def test_a_file_in_mantids_layout_loads(ads, tmp_path):
    path = tmp_path / "mantid.nxs"
    mantid_written(path)
    ws = registry.call("LoadNexusProcessed", str(path), OutputWorkspace="van")
    assert isinstance(ws, HistogramWorkspace) and ws.x_unit.unit_id == "Wavelength"
    np.testing.assert_array_equal(ws.values, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(ws.extractE(), [[1.0, 1.5], [2.0, 2.0], [0.0, 3.0]])
    np.testing.assert_array_equal(ws.readX(2), [2.0, 3.0, 5.0])
    assert ws.getSpectrumNumbers() == [10, 20, 30]
    assert [ws.getSpectrum(i).getDetectorIDs() for i in range(3)] == [[7, 8], [9], [11, 12]]
    assert ws.getInstrument().getName() == "POWGEN" and ws.getTitle() == "Vanadium run"
    # geometry from the embedded definition: spectrum 0 holds detectors 7 (x = 2) and 8 (x = 4): mean L2 3 m
    info = ws.spectrumInfo()
    assert info.l1() == 60.0 and [info.l2(i) for i in range(3)] == [3.0, 3.0, 2.0]
    assert np.degrees(ws.spectra.two_theta).tolist() == pytest.approx([90.0, 0.0, 90.0])
    run = ws.getRun()
    temp = run["SampleTemp"]
    start = np.datetime64("2024-03-01T10:00:00", "ns").astype(np.int64)
    np.testing.assert_array_equal(temp.times, [start, start + 1_500_000_000])
    np.testing.assert_array_equal(temp.values, [290.0, 291.0])
    assert temp.units() == "K"
    assert list(run["Mode"].values) == ["run", "pause"]
    assert run["run_number"].value == "58810" and ws.getRunNumber() == 58810
    assert run["gd_prtn_chrg"].value == 3.25 and run.getProtonCharge() == 3.25
    assert not run.hasProperty("goniometer")
    assert ws.YUnit() == "Counts"


def test_a_mantid_event_file_loads(ads, tmp_path):
    path = tmp_path / "mantid_ev.nxs"
    mantid_written(path, events=True)
    ws = registry.call("Load", str(path), OutputWorkspace="ev")
    assert isinstance(ws, EventWorkspace) and ws.getNumberEvents() == 3
    assert ws.getSpectrum(0).getTofs().tolist() == [100.0, 300.0]
    assert ws.getSpectrum(1).getNumberEvents() == 0
    assert ws.getSpectrum(2).getWeights().tolist() == [0.5]
    assert str(ws.getPulseTimeMin()) == "1990-01-01T00:00:05"
    # weighted: bin [0, 200) holds weight 1 (error² 1), bin [200, 400) weight 2 (error² 4)
    h = ws.histogram()
    np.testing.assert_array_equal(h.values, [[1.0, 2.0], [0.0, 0.0], [0.0, 0.5]])
    np.testing.assert_array_equal(h.variances, [[1.0, 4.0], [0.0, 0.0], [0.0, 0.25]])


def test_save_options_title_index_list_and_append(ads, tmp_path):
    path = str(tmp_path / "opts.nxs")
    ws = histogram()
    ws._name = "first"
    registry.call("SaveNexusProcessed", ws, Filename=path, WorkspaceIndexList="1,3", Title="picked")
    other = histogram(True)
    other._name = "second"
    registry.call("SaveNexusProcessed", other, Filename=path, Append=True)
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["mantid_workspace_1", "mantid_workspace_2"]
        assert fixed_text(f["mantid_workspace_1/title"]) == "picked"
        np.testing.assert_array_equal(f["mantid_workspace_1/workspace/axis2"][()], [2, 4])
        assert fixed_text(f["mantid_workspace_2/workspace_name"]) == "second"
    both = registry.call("LoadNexusProcessed", path, OutputWorkspace="both")
    assert isinstance(both, WorkspaceGroup) and len(both) == 2
    np.testing.assert_array_equal(both[0].values, ws.values[[1, 3]])
    np.testing.assert_array_equal(both[1].edges, other.edges)
    registry.call("SaveNexusProcessed", ws, Filename=path)  # Append false: the file is replaced
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["mantid_workspace_1"]


def test_load_refuses_foreign_files(ads, tmp_path):
    other = tmp_path / "raw.nxs.h5"
    with h5py.File(other, "w") as f:
        f.create_group("entry").attrs["NX_class"] = "NXentry"
    with pytest.raises(AlgorithmError, match="not a processed NeXus file"):
        registry.call("Load", str(other), OutputWorkspace="x")
    with pytest.raises(AlgorithmError, match="loads processed NeXus"):
        registry.call("Load", str(tmp_path / "run.raw"), OutputWorkspace="x")
    with pytest.raises(AlgorithmError, match="does not exist"):
        registry.call("SaveNexus", histogram(), Filename=str(tmp_path / "no" / "dir.nxs"))


def test_edges_empty_events_special_values_one_bin_and_masks(ads, tmp_path):
    empty = EventWorkspace(spectra(3), EventColumns.empty(), [0.0, 1.0])
    path = str(tmp_path / "empty.nxs")
    registry.call("SaveNexusProcessed", empty, Filename=path)
    back = registry.call("LoadNexusProcessed", path, OutputWorkspace="e")
    assert back.getNumberEvents() == 0 and back.getNumberHistograms() == 3
    y = np.array([[np.nan], [np.inf], [-np.inf]])  # one bin, special values kept bit for bit
    s = spectra(3)
    s.masked = np.array([False, True, False])
    h = HistogramWorkspace(y, np.ones_like(y), [1.0, 2.0], s)
    registry.call("SaveNexusProcessed", h, Filename=path)
    back = registry.call("LoadNexusProcessed", path, OutputWorkspace="h")
    np.testing.assert_array_equal(back.values, y)
    assert back.spectrumInfo().isMasked(1) and not back.spectrumInfo().isMasked(0)
    with h5py.File(path, "r") as f:  # Mantid's own record of the mask: the parameter map
        note = f["mantid_workspace_1/instrument/instrument_parameter_map/data"][()].decode()
        assert note == "detID:101;bool;masked;true"
