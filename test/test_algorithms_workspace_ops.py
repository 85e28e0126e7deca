"""Workspace bookkeeping, CreateSampleWorkspace, CreateWorkspace, AddSampleLog and SaveAscii."""

from __future__ import annotations

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace

alg = registry.get


def test_clone_rename_delete(ads):
    ws = alg("CreateSampleWorkspace")(OutputWorkspace="sample", NumBanks=1, BankPixelWidth=2)
    copy = alg("CloneWorkspace")(InputWorkspace="sample")
    assert copy is not ws and np.array_equal(copy.values, ws.values) and ads["copy"] is copy
    copy.values[0, 0] = -1
    assert ws.values[0, 0] != -1
    alg("RenameWorkspace")(InputWorkspace="copy", OutputWorkspace="renamed")
    assert not ads.doesExist("copy") and ads["renamed"] is copy
    alg("DeleteWorkspace")(copy)
    assert not ads.doesExist("renamed")
    alg("DeleteWorkspace")(Workspace="sample")
    assert ads.getObjectNames() == []


def test_group_and_rename_group(ads):
    a = alg("CreateSampleWorkspace")(OutputWorkspace="a", NumBanks=1, BankPixelWidth=1)
    b = alg("CreateSampleWorkspace")(OutputWorkspace="b", NumBanks=1, BankPixelWidth=1)
    g = alg("GroupWorkspaces")(InputWorkspaces="a,b", OutputWorkspace="g")
    assert isinstance(g, WorkspaceGroup) and list(g) == [a, b]
    alg("RenameWorkspace")(InputWorkspace=g, OutputWorkspace="h")
    assert ads["h"] is g and ads["h_1"] is a and not ads.doesExist("g")


def test_create_sample_histogram_geometry_and_shape(ads):
    ws = alg("CreateSampleWorkspace")(OutputWorkspace="s")
    assert ws.getNumberHistograms() == 200 and ws.blocksize() == 100
    np.testing.assert_array_equal(ws.readX(0), np.arange(0.0, 20001.0, 200.0))
    assert ws.getSpectrum(0).getDetectorIDs() == [100] and ws.getSpectrum(199).getDetectorIDs() == [299]
    s = ws.spectra
    assert s.l1 == 10.0 and s.has_geometry()
    assert np.all(np.abs(s.l2 - 5.0) < 0.06)  # pixels near 5 m from the sample
    assert np.degrees(s.two_theta[:100]).mean() == pytest.approx(45.0, abs=0.1)
    assert np.degrees(s.two_theta[100:]).mean() == pytest.approx(90.0, abs=0.1)
    y = ws.readY(0)
    assert y.argmax() == 49 or y.argmax() == 50  # "One Peak" in the middle
    np.testing.assert_array_equal(ws.readE(0), np.sqrt(y))
    again = alg("CreateSampleWorkspace")(OutputWorkspace="again")
    np.testing.assert_array_equal(again.values, ws.values)  # deterministic


def test_create_sample_events_exact_count(ads):
    ws = alg("CreateSampleWorkspace")(
        OutputWorkspace="e",
        WorkspaceType="Event",
        NumEvents=500,
        Function="Flat background",
        NumBanks=1,
        BankPixelWidth=3,
    )
    assert isinstance(ws, EventWorkspace) and ws.getNumberEvents() == 9 * 500
    np.testing.assert_array_equal(ws.readY(4), np.full(100, 5.0))  # flat: 500 events over 100 bins
    with pytest.raises(AlgorithmError, match="Function"):
        alg("CreateSampleWorkspace")(OutputWorkspace="x", Function="Nonsense")


def test_create_workspace_and_add_sample_log(ads):
    ws = alg("CreateWorkspace")(
        OutputWorkspace="cw",
        DataX=[0, 1, 2, 0, 1, 2],
        DataY=[1, 2, 3, 4],
        DataE=[1, 1, 2, 2],
        NSpec=2,
        UnitX="Wavelength",
    )
    assert isinstance(ws, HistogramWorkspace) and ws.x_unit.unit_id == "Wavelength"
    np.testing.assert_array_equal(ws.readE(1), [2, 2])
    alg("AddSampleLog")(Workspace="cw", LogName="temp", LogText="4.5", LogType="Number", LogUnit="K")
    alg("AddSampleLog")(Workspace=ws, LogName="run_number", LogText="77")
    assert ws.getRun()["temp"].value == 4.5 and ws.getRun()["temp"].units() == "K"
    assert ws.getRun()["run_number"].value == "77"


def test_save_ascii_layout(ads, tmp_path):
    ws = alg("CreateWorkspace")(
        OutputWorkspace="cw", DataX=[0, 2, 4], DataY=[3, 5, 7, 9], NSpec=2, DataE=[1, 1, 1.5, 2]
    )
    path = tmp_path / "a.txt"
    alg("SaveAscii")(InputWorkspace=ws, Filename=str(path))
    assert path.read_text().splitlines() == ["# X , Y , E", "1", "1,3,1", "3,5,1", "2", "1,7,1.5", "3,9,2"]
    alg("SaveAscii")(
        InputWorkspace=ws,
        Filename=str(path),
        Separator="Tab",
        WriteSpectrumID=False,
        WriteXError=True,
        SpectrumList="2",
    )
    assert path.read_text().splitlines() == ["# X \t Y \t E \t DX", "1\t7\t1.5\t0", "3\t9\t2\t0"]
