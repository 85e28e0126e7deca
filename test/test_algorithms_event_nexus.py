"""LoadEventNexus / LoadNexusMonitors on an SNS-style event NeXus file built with h5py from the layout facts."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace

START = "2024-03-01T10:00:00"
T0 = np.datetime64(START, "ns").astype(np.int64)
S = 10**9
IDF = (
    '<?xml version="1.0"?><instrument xmlns="http://www.mantidproject.org/IDF/1.0" name="TINY">'
    '<component type="src"><location z="-10"/></component><type name="src" is="Source"/>'
    '<component type="smp"><location/></component><type name="smp" is="SamplePos"/>'
    '<component type="pixel" idlist="d"><location x="2"/><location y="2"/><location z="2"/><location z="-2"/>'
    '<location x="-2"/></component><idlist idname="d"><id start="10" end="14"/></idlist>'
    '<type name="pixel" is="detector"/></instrument>'
)


def s(v: str) -> np.bytes_:
    return np.bytes_(v.encode())


def bank(entry, name, ids, tofs, pulses_s, index):
    g = entry.create_group(name)
    g.attrs["NX_class"] = s("NXevent_data")
    g["event_id"] = np.asarray(ids, np.uint32)
    g["event_time_offset"] = np.asarray(tofs, np.float32)
    g["event_time_offset"].attrs["units"] = s("microsecond")
    g["event_time_zero"] = np.asarray(pulses_s, np.float64)
    g["event_time_zero"].attrs["offset"] = s(START)
    g["event_time_zero"].attrs["units"] = s("second")
    g["event_index"] = np.asarray(index, np.uint64)


def log(das, name, times, values, unit=""):
    g = das.create_group(name)
    g.attrs["NX_class"] = s("NXlog")
    g["time"] = np.asarray(times, float)
    g["time"].attrs["start"] = s(START)
    g["value"] = values
    g["value"].attrs["units"] = s(unit)


def sns_file(path, *, idf=True, pause=False, monitor_events=False):
    with h5py.File(path, "w") as f:
        e = f.create_group("entry")
        e.attrs["NX_class"] = s("NXentry")
        e["run_number"] = s("4242")
        e["title"] = s("vanadium")
        e["start_time"] = s(START)
        e["end_time"] = s("2024-03-01T10:00:03")
        inst = e.create_group("instrument")
        inst.attrs["NX_class"] = s("NXinstrument")
        inst["name"] = s("TINY")
        if idf:
            note = inst.create_group("instrument_xml")
            note.attrs["NX_class"] = s("NXnote")
            note["data"] = s(IDF)
        else:
            for b, ids in (("bank1", [10, 11, 12]), ("bank2", [13, 14])):
                inst.create_group(b)["pixel_id"] = np.asarray(ids, np.uint32)
        # bank1: pulses at 0, 1, 2 s; 2 + 1 + 2 events. bank2: 1 event in pulse 1; one from an unknown pixel
        bank(e, "bank1_events", [10, 11, 10, 12, 12], [100, 200, 300, 400, 500], [0.0, 1.0, 2.0], [0, 2, 3])
        bank(e, "bank2_events", [14, 99], [600, 700], [0.0, 1.0], [0, 0])
        das = e.create_group("DASlogs")
        das.attrs["NX_class"] = s("NXcollection")
        log(das, "proton_charge", [0.0, 1.0, 2.0], np.array([1.8e9, 1.8e9, 3.6e9]), "picoCoulomb")
        log(das, "SampleTemp", [0.0, 1.5], np.array([290.0, 295.0]), "K")
        if pause:
            log(das, "pause", [0.0, 0.5, 1.5], np.array([0, 1, 0]))
        m = e.create_group("monitor1")
        m.attrs["NX_class"] = s("NXmonitor")
        if monitor_events:
            m["event_time_offset"] = np.array([5.0, 6.0, 7.0], np.float32)
            m["event_time_zero"] = np.array([0.0, 1.0])
            m["event_time_zero"].attrs["offset"] = s(START)
            m["event_index"] = np.array([0, 2], np.uint64)
        else:
            m["data"] = np.array([[3.0, 4.0, 5.0]])
            m["time_of_flight"] = np.array([0.0, 10.0, 20.0, 30.0])


def tofs_by_spectrum(ws):
    return [sorted(ws.getSpectrum(i).getTofs().tolist()) for i in range(ws.getNumberHistograms())]


def test_banks_pixels_geometry_logs(ads, tmp_path):
    path = tmp_path / "TINY_4242.nxs.h5"
    sns_file(path)
    ws = registry.call("LoadEventNexus", str(path), OutputWorkspace="raw")
    assert isinstance(ws, EventWorkspace) and ws.getNumberHistograms() == 5  # every pixel of the IDF
    assert ws.getSpectrumNumbers() == [1, 2, 3, 4, 5]
    assert [ws.getSpectrum(i).getDetectorIDs()[0] for i in range(5)] == [10, 11, 12, 13, 14]
    assert tofs_by_spectrum(ws) == [[100, 300], [200], [400, 500], [], [600]]  # pixel 99 is dropped
    assert ws.getNumberEvents() == 6
    assert ws.spectrumInfo().l2(0) == pytest.approx(2.0) and ws.getInstrument().getName() == "TINY"
    np.testing.assert_allclose(np.degrees(ws.spectrumInfo().twoTheta(3)), 180.0)  # z = -2: backscattering
    # event pulse times: bank1's third event (tof 300) belongs to the pulse at 1 s
    assert ws.getSpectrum(0).getPulseTimes().tolist() == [T0, T0 + S]
    run = ws.getRun()
    assert run.getRunNumber() == 4242 and ws.getTitle() == "vanadium"
    assert run["SampleTemp"].times.tolist() == [T0, T0 + 1_500_000_000] and run["SampleTemp"].units() == "K"
    assert run.getProtonCharge() == pytest.approx(7.2e9 * 1e-12 / 3.6e-3)  # 7.2e9 pC = 2 µA·h
    assert run["Filename"].value == str(path)
    x = ws.readX(0)  # NumberOfBins (500) linear bins from the shortest to the longest TOF
    assert x.size == 501 and x[0] == 100.0 and x[-1] == np.nextafter(600.0, np.inf)
    assert ws.readY(4).sum() == 1.0  # the longest TOF is counted
    one = registry.call("LoadEventNexus", str(path), NumberOfBins=1, OutputWorkspace="one")
    assert one.blocksize() == 1 and one.readY(0).tolist() == [2.0]


def test_filters_bank_name_and_pause(ads, tmp_path):
    paused = tmp_path / "p.nxs.h5"
    sns_file(paused, idf=False, pause=True)
    # paused from 0.5 s to 1.5 s: the pulse at 1 s (tof 300 in bank1, 600 in bank2) is dropped
    ws = registry.call("LoadEventNexus", str(paused), OutputWorkspace="p")
    assert ws.getNumberHistograms() == 5  # the banks' pixel_id lists
    assert tofs_by_spectrum(ws) == [[100], [200], [400, 500], [], []]
    path = tmp_path / "f.nxs.h5"
    sns_file(path, idf=False)
    tof = registry.call(
        "LoadEventNexus", str(path), FilterByTofMin=150, FilterByTofMax=450, OutputWorkspace="t"
    )
    assert sorted(tof.events.x.tolist()) == [200, 300, 400]
    late = registry.call("LoadEventNexus", str(path), FilterByTimeStart=1.5, OutputWorkspace="l")
    assert sorted(late.events.x.tolist()) == [400, 500]  # only the pulse at 2 s
    one = registry.call("LoadEventNexus", str(path), BankName="bank2", OutputWorkspace="b2")
    assert one.getNumberHistograms() == 2 and tofs_by_spectrum(one) == [[], [600]]
    whole = registry.call(
        "LoadEventNexus", str(path), BankName="bank2", SingleBankPixelsOnly=False, OutputWorkspace="w"
    )
    assert whole.getNumberHistograms() == 5 and whole.getNumberEvents() == 1
    with pytest.raises(AlgorithmError, match="no bank 'bank9'"):
        registry.call("LoadEventNexus", str(path), BankName="bank9", OutputWorkspace="x")


def test_monitors(ads, tmp_path):
    path = tmp_path / "m.nxs.h5"
    sns_file(path)
    ws = registry.call("LoadEventNexus", str(path), LoadMonitors=True, OutputWorkspace="withmon")
    mon = ads["withmon_monitors"]
    assert ws.getMonitorWorkspace() is mon and isinstance(mon, HistogramWorkspace)
    assert mon.values.tolist() == [[3.0, 4.0, 5.0]] and mon.getSpectrum(0).getDetectorIDs() == [-1]
    ev_path = tmp_path / "me.nxs.h5"
    sns_file(ev_path, monitor_events=True)
    mons = registry.call("LoadNexusMonitors", str(ev_path), OutputWorkspace="mons")
    assert isinstance(mons, EventWorkspace) and sorted(mons.events.x.tolist()) == [5.0, 6.0, 7.0]
    assert mons.getSpectrum(0).getPulseTimes().tolist() == [T0, T0, T0 + S]


def test_load_hands_raw_event_files_to_load_event_nexus(ads, tmp_path):
    path = tmp_path / "TINY_1.nxs.h5"
    sns_file(path)
    ws = registry.call("Load", str(path), OutputWorkspace="raw")
    assert isinstance(ws, EventWorkspace) and ws.getNumberEvents() == 6
