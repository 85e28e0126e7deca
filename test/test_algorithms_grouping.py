"""MaskDetectors and GroupDetectors: expected values worked by hand from Mantid's documented examples."""

from __future__ import annotations

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.mask import MaskWorkspace
from livereduce.workspace.spectra import Spectra


def numbered(n=10, nbins=9):
    """As Mantid's Example 6: spectrum k (1..n) holds the value k in every bin; detector ids 100+k-1."""
    y = np.repeat(np.arange(1, n + 1, dtype=float)[:, None], nbins, axis=1)
    s = Spectra.one_to_one(np.arange(100, 100 + n), numbers=np.arange(1, n + 1))
    return HistogramWorkspace(y, y.copy(), np.arange(nbins + 1) * 10.0, s)


def test_group_spectra_list_keep_ungrouped_and_chain(ads):
    ws = numbered()
    g0 = registry.call(
        "GroupDetectors", ws, SpectraList=[1, 2, 3], KeepUngroupedSpectra=True, OutputWorkspace="g0"
    )
    assert g0.getNumberHistograms() == 8
    np.testing.assert_array_equal(g0.readY(0), np.full(9, 6.0))  # 1+2+3
    np.testing.assert_array_equal(g0.readY(1), np.full(9, 4.0))  # former spectrum 4
    np.testing.assert_allclose(g0.readE(0), np.full(9, np.sqrt(6.0)))  # quadrature: √(1+2+3)
    assert g0.getSpectrum(0).getDetectorIDs() == [100, 101, 102]
    g1 = registry.call(
        "GroupDetectors", ws, SpectraList=[2, 3, 4], KeepUngroupedSpectra=True, OutputWorkspace="g1"
    )
    np.testing.assert_array_equal(g1.readY(0), np.full(9, 9.0))
    np.testing.assert_array_equal(g1.readY(1), np.full(9, 1.0))  # former spectrum 1
    g2 = registry.call(
        "GroupDetectors", g0, SpectraList=[4, 5, 6], KeepUngroupedSpectra=True, OutputWorkspace="g2"
    )
    assert g2.getNumberHistograms() == 6
    assert [g2.readY(i)[0] for i in range(3)] == [15.0, 6.0, 7.0]
    alone = registry.call("GroupDetectors", ws, DetectorList=[100, 102, 104], OutputWorkspace="d")
    assert alone.getNumberHistograms() == 1 and alone.readY(0)[0] == 1 + 3 + 5
    wi = registry.call(
        "GroupDetectors", ws, WorkspaceIndexList=[0, 2, 4], Behaviour="Average", OutputWorkspace="a"
    )
    assert wi.readY(0)[0] == 3.0 and wi.readE(0)[0] == pytest.approx(np.sqrt(9.0) / 3)


def test_grouping_pattern(ads):
    ws = numbered()
    out = registry.call("GroupDetectors", ws, GroupingPattern="0+2,3-5,7:8", OutputWorkspace="p")
    # groups: {0,2} → 1+3, {3,4,5} → 4+5+6, {7}, {8}
    assert [out.readY(i)[0] for i in range(4)] == [4.0, 15.0, 8.0, 9.0]
    assert out.getSpectrumNumbers() == [1, 2, 3, 4]
    with pytest.raises(AlgorithmError, match=r"outside 0\.\.9"):
        registry.call("GroupDetectors", ws, GroupingPattern="0+10", OutputWorkspace="x")


def test_map_files(ads, tmp_path):
    ws = numbered()
    mapfile = tmp_path / "g.map"
    mapfile.write_text("# two groups\n2\n7\n3\n1 2 3\n\n9\n2  # group nine\n9 10\n")
    out = registry.call("GroupDetectors", ws, MapFile=str(mapfile), OutputWorkspace="m")
    assert [out.readY(i)[0] for i in range(2)] == [6.0, 19.0]
    assert out.getSpectrumNumbers() == [1, 2]  # IgnoreGroupNumber (default) numbers them 1, 2
    numbered_by_file = registry.call(
        "GroupDetectors", ws, MapFile=str(mapfile), IgnoreGroupNumber=False, OutputWorkspace="m2"
    )
    assert numbered_by_file.getSpectrumNumbers() == [7, 9]
    xml = tmp_path / "g.xml"
    xml.write_text(
        '<?xml version="1.0" encoding="UTF-8" ?><detector-grouping>'
        '<group name="fwd"><ids val="1-2,4"/></group><group name="bwd"><detids val="109"/></group>'
        "</detector-grouping>"
    )
    out = registry.call("GroupDetectors", ws, MapFile=str(xml), OutputWorkspace="x")
    assert [out.readY(i)[0] for i in range(2)] == [7.0, 10.0]


def test_group_events_stay_events(ads):
    ev = EventColumns(np.array([0, 1, 2, 2], np.uint32), [1.0, 2.0, 3.0, 4.0])
    ws = EventWorkspace(Spectra.one_to_one([5, 6, 7]), ev, [0.0, 10.0])
    out = registry.call(
        "GroupDetectors", ws, WorkspaceIndexList="0,2", KeepUngroupedSpectra=True, OutputWorkspace="e"
    )
    assert isinstance(out, EventWorkspace) and out.getNumberHistograms() == 2
    assert sorted(out.getSpectrum(0).getTofs().tolist()) == [1.0, 3.0, 4.0]
    assert out.getSpectrum(1).getTofs().tolist() == [2.0]


def test_mask_detectors_by_each_list(ads):
    ws = numbered(6, 3)
    ads.addOrReplace("ws", ws)
    registry.call("MaskDetectors", "ws", SpectraList=[2], DetectorList=[104], WorkspaceIndexList="5")
    masked = [ws.spectrumInfo().isMasked(i) for i in range(6)]
    assert masked == [False, True, False, False, True, True]
    np.testing.assert_array_equal(ws.values[:, 0], [1, 0, 3, 4, 0, 0])
    np.testing.assert_array_equal(ws.variances[:, 0], [1, 0, 3, 4, 0, 0])
    with pytest.raises(AlgorithmError, match="not in the workspace"):
        registry.call("MaskDetectors", ws, SpectraList=[99])


def test_mask_from_mask_workspace_and_events(ads):
    ev = EventColumns(np.array([0, 1, 1, 2], np.uint32), [1.0, 2.0, 3.0, 4.0])
    ws = EventWorkspace(Spectra.one_to_one([10, 11, 12]), ev, [0.0, 5.0])
    mask = MaskWorkspace.from_detectors([10, 11, 12], [False, True, False])
    registry.call("MaskDetectors", ws, MaskedWorkspace=mask)
    assert ws.getNumberEvents() == 2 and ws.getSpectrum(1).getNumberEvents() == 0
    assert ws.spectrumInfo().isMasked(1)
    other = EventWorkspace(Spectra.one_to_one([10, 11, 12]), EventColumns.empty(), [0.0, 1.0])
    registry.call("MaskDetectors", other, MaskedWorkspace=ws)  # copies the masked flags
    assert [other.spectrumInfo().isMasked(i) for i in range(3)] == [False, True, False]


def test_mask_everything(ads):
    ws = numbered(3, 2)
    registry.call("MaskDetectors", ws, WorkspaceIndexList="0-2")
    assert not ws.values.any() and all(ws.spectrumInfo().isMasked(i) for i in range(3))
