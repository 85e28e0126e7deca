"""ConvertToPointData / ConvertToHistogram: Mantid's documented rules, worked by hand, and point data in files."""

from __future__ import annotations

import h5py
import numpy as np

from livereduce.algorithms import registry
from livereduce.algorithms.point_data import PointDataWorkspace
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra


def hist(edges=(0.0, 1.0, 3.0, 7.0)):
    y = np.array([[1.0, 2.0, 3.0]])
    return HistogramWorkspace(y, y * 4, np.array(edges), Spectra.one_to_one([1]))


def test_to_point_data_and_back(ads):
    pts = registry.call("ConvertToPointData", hist(), OutputWorkspace="pts")
    assert isinstance(pts, PointDataWorkspace) and not pts.isHistogramData()
    assert pts.readX(0).tolist() == [0.5, 2.0, 5.0]  # bin centres
    assert pts.readY(0).tolist() == [1.0, 2.0, 3.0] and pts.readE(0).tolist() == [2.0, 8**0.5, 12**0.5]
    back = registry.call("ConvertToHistogram", pts, OutputWorkspace="back")
    assert back.isHistogramData()
    # midpoints 1.25 and 3.5; ends half a step out: 0.5 - 0.75, 5 + 1.5 (not the original 0 and 7: as Mantid)
    np.testing.assert_allclose(back.readX(0), [-0.25, 1.25, 3.5, 6.5])
    same = registry.call("ConvertToPointData", pts, OutputWorkspace="same")  # point data in: a copy
    assert same is not pts and same.readX(0).tolist() == [0.5, 2.0, 5.0]
    assert registry.call("ConvertToHistogram", hist(), OutputWorkspace="h").readX(0).tolist() == [0, 1, 3, 7]
    uniform = registry.call(
        "ConvertToHistogram",
        registry.call("ConvertToPointData", hist((0.0, 2.0, 4.0, 6.0)), OutputWorkspace="u"),
        OutputWorkspace="u2",
    )
    assert uniform.readX(0).tolist() == [0.0, 2.0, 4.0, 6.0]  # uniform bins survive the round trip


def test_events_and_one_point(ads):
    ev = EventWorkspace(
        Spectra.one_to_one([1]), EventColumns(np.zeros(3, np.uint32), [0.5, 1.5, 1.6]), [0.0, 1.0, 2.0]
    )
    pts = registry.call("ConvertToPointData", ev, OutputWorkspace="p")
    assert pts.readX(0).tolist() == [0.5, 1.5] and pts.readY(0).tolist() == [1.0, 2.0]
    one = PointDataWorkspace([[4.0]], [[4.0]], [10.0], Spectra.one_to_one([1]))
    assert registry.call("ConvertToHistogram", one, OutputWorkspace="o").readX(0).tolist() == [9.5, 10.5]


def test_point_data_in_products(ads, tmp_path):
    pts = registry.call("ConvertToPointData", hist(), OutputWorkspace="pts")
    path = tmp_path / "p.nxs"
    registry.call("SaveNexusProcessed", pts, Filename=str(path))
    with h5py.File(path, "r") as f:  # Mantid's point data: axis1 holds one X per Y
        assert f["mantid_workspace_1/workspace/axis1"][()].tolist() == [0.5, 2.0, 5.0]
    back = registry.call("LoadNexusProcessed", str(path), OutputWorkspace="back")
    assert isinstance(back, PointDataWorkspace) and back.readX(0).tolist() == [0.5, 2.0, 5.0]
    txt = tmp_path / "p.txt"
    registry.call("SaveAscii", pts, Filename=str(txt))
    assert txt.read_text().splitlines()[2].split(",")[0] == "0.5"  # the points themselves


def test_transpose(ads):
    y = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    ws = HistogramWorkspace(
        y, y * 0.25, np.array([0.0, 1.0, 2.0, 3.0]), Spectra.one_to_one([5, 6], numbers=[3, 7])
    )
    t = registry.call("Transpose", ws, OutputWorkspace="t")
    assert t.getNumberHistograms() == 3 and t.blocksize() == 2 and not t.isHistogramData()
    np.testing.assert_array_equal(t.extractY(), y.T)
    np.testing.assert_array_equal(t.extractE(), np.sqrt(y * 0.25).T)
    assert t.readX(0).tolist() == [3.0, 7.0]  # the old spectrum numbers
    back = registry.call("Transpose", t, OutputWorkspace="b")
    np.testing.assert_array_equal(back.extractY(), y)
