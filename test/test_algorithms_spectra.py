"""SumSpectra, Integration, CropWorkspace, ExtractSpectra, DiffractionFocussing."""

from __future__ import annotations

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

NSPEC = 6


def spectra():
    return Spectra.one_to_one(
        np.arange(11, 11 + NSPEC),
        numbers=np.arange(1, NSPEC + 1),
        l1=10.0,
        l2=np.linspace(1.0, 2.0, NSPEC),
        two_theta=np.linspace(0.5, 2.0, NSPEC),
    )


def events(n=12_000, seed=1):
    rng = np.random.default_rng(seed)
    index = rng.integers(0, NSPEC, n, dtype=np.uint32)
    x = rng.uniform(0.0, 1000.0, n)
    return EventWorkspace(spectra(), EventColumns(index, x), np.linspace(0, 1000, 11)), index, x


def histo():
    y = np.arange(NSPEC * 10, dtype=float).reshape(NSPEC, 10)
    return HistogramWorkspace(y, y * 2, np.linspace(0, 100, 11), spectra())


def alg(name):
    return registry.get(name)


def test_sum_spectra_histogram_range_and_list(ads):
    h = histo()
    s = alg("SumSpectra")(InputWorkspace=h, StartWorkspaceIndex=1, EndWorkspaceIndex=3)
    np.testing.assert_array_equal(s.values[0], h.values[1:4].sum(axis=0))
    np.testing.assert_array_equal(s.variances[0], h.variances[1:4].sum(axis=0))
    assert s.getSpectrumNumbers() == [2] and s.getSpectrum(0).getDetectorIDs() == [12, 13, 14]
    assert s.spectra.l2[0] == pytest.approx(h.spectra.l2[1:4].mean())
    t = alg("SumSpectra")(InputWorkspace=h, ListOfWorkspaceIndices="0,4-5")
    np.testing.assert_array_equal(t.values[0], h.values[[0, 4, 5]].sum(axis=0))
    u = alg("SumSpectra")(
        InputWorkspace=h, StartWorkspaceIndex=1, EndWorkspaceIndex=2, ListOfWorkspaceIndices=[5]
    )
    np.testing.assert_array_equal(u.values[0], h.values[[1, 2, 5]].sum(axis=0))  # range ∪ list
    with pytest.raises(AlgorithmError, match="outside"):
        v = alg("SumSpectra")(InputWorkspace=h, EndWorkspaceIndex=99)  # noqa: F841


def test_sum_spectra_events_stay_events(ads):
    ws, _index, x = events()
    s = alg("SumSpectra")(InputWorkspace=ws)
    assert isinstance(s, EventWorkspace) and s.getNumberEvents() == x.size
    np.testing.assert_array_equal(s.readY(0), np.histogram(x, bins=np.linspace(0, 1000, 11))[0])


def test_integration_whole_and_ranges(ads):
    h = histo()
    i = alg("Integration")(InputWorkspace=h)
    np.testing.assert_array_equal(i.values[:, 0], h.values.sum(axis=1))
    np.testing.assert_array_equal(i.variances[:, 0], h.variances.sum(axis=1))
    np.testing.assert_array_equal(i.readX(0), [0, 100])
    j = alg("Integration")(InputWorkspace=h, RangeLower=20, RangeUpper=50)  # bins [20,30),[30,40),[40,50)
    np.testing.assert_array_equal(j.values[:, 0], h.values[:, 2:5].sum(axis=1))
    np.testing.assert_array_equal(j.readX(3), [20, 50])
    k = alg("Integration")(InputWorkspace=h, RangeLower=25, RangeUpper=50, IncludePartialBins=True)
    np.testing.assert_allclose(k.values[:, 0], 0.5 * h.values[:, 2] + h.values[:, 3:5].sum(axis=1))
    m = alg("Integration")(InputWorkspace=h, StartWorkspaceIndex=2, EndWorkspaceIndex=3)
    assert m.getSpectrumNumbers() == [3, 4]


def test_integration_of_events_counts_each_spectrum(ads):
    ws, index, x = events()
    i = alg("Integration")(InputWorkspace=ws, RangeLower=0, RangeUpper=500)
    expected = np.array([np.count_nonzero((index == s) & (x < 500)) for s in range(NSPEC)])
    np.testing.assert_array_equal(i.values[:, 0], expected)
    np.testing.assert_array_equal(i.readE(0), [np.sqrt(expected[0])])


def test_crop_workspace_histogram_and_events(ads):
    h = histo()
    c = alg("CropWorkspace")(InputWorkspace=h, XMin=20, XMax=60, StartWorkspaceIndex=1, EndWorkspaceIndex=2)
    np.testing.assert_array_equal(c.readX(0), [20, 30, 40, 50, 60])
    np.testing.assert_array_equal(c.values, h.values[1:3, 2:6])
    ws, _index, x = events()
    e = alg("CropWorkspace")(InputWorkspace=ws, XMin=100, XMax=300)
    assert e.getNumberEvents() == np.count_nonzero((x >= 100) & (x <= 300))
    np.testing.assert_array_equal(e.readX(0), [100, 200, 300])


def test_extract_spectra_by_index_list_and_detector(ads):
    h = histo()
    e = alg("ExtractSpectra")(InputWorkspace=h, WorkspaceIndexList=[4, 1])
    assert e.getSpectrumNumbers() == [5, 2]
    np.testing.assert_array_equal(e.values, h.values[[4, 1]])
    d = alg("ExtractSpectra")(InputWorkspace=h, DetectorList="13")
    assert d.getSpectrumNumbers() == [3] and d.getSpectrum(0).getDetectorIDs() == [13]
    ws, index, x = events()
    ev = alg("ExtractSpectra")(InputWorkspace=ws, StartWorkspaceIndex=2, EndWorkspaceIndex=3)
    assert ev.getNumberEvents() == np.count_nonzero((index == 2) | (index == 3))
    np.testing.assert_array_equal(np.sort(ev.getSpectrum(0).getTofs()), np.sort(x[index == 2]))


def write_cal(path, groups):
    lines = ["# Ariel detector file, written by test\n# number udet offset select group\n"]
    for k, (udet, group, select) in enumerate(groups):
        lines.append(f"{k:9d}{udet:15d}  0.0000000  {select:7d}{group:7d}\n")
    path.write_text("".join(lines))
    return str(path)


def test_diffraction_focussing_groups_from_cal_file(ads, tmp_path):
    ws, index, _x = events()
    d = registry.call("ConvertUnits", ws, OutputWorkspace="d", Target="dSpacing")
    cal = write_cal(
        tmp_path / "g.cal", [(11, 2, 1), (12, 2, 1), (13, 5, 1), (14, 5, 0), (15, 0, 1), (16, 5, 1)]
    )
    f = registry.call("DiffractionFocussing", d, OutputWorkspace="f", GroupingFileName=cal)
    assert isinstance(f, EventWorkspace) and f.getSpectrumNumbers() == [2, 5]
    assert f.getSpectrum(0).getDetectorIDs() == [11, 12] and f.getSpectrum(1).getDetectorIDs() == [13, 16]
    assert f.getNumberEvents() == np.count_nonzero(
        np.isin(index, [0, 1, 2, 5])
    )  # select 0 / group 0 excluded
    np.testing.assert_array_equal(
        np.sort(f.getSpectrum(1).getTofs()), np.sort(d.events.x[np.isin(d.events.index, [2, 5])])
    )
    assert f.spectra.two_theta[0] == pytest.approx(np.mean(ws.spectra.two_theta[[0, 1]]))
    h = registry.call(
        "DiffractionFocussing", d, OutputWorkspace="fh", GroupingFileName=cal, PreserveEvents=False
    )
    assert isinstance(h, HistogramWorkspace) and h.values.sum() == f.getNumberEvents()


def test_diffraction_focussing_histograms_with_common_and_own_edges(ads, tmp_path):
    cal = write_cal(tmp_path / "g.cal", [(11 + k, 1 + k % 2, 1) for k in range(NSPEC)])
    h = histo()
    h2 = HistogramWorkspace(h.values, h.variances, h.edges, spectra(), unit_id="dSpacing")
    f = registry.call("DiffractionFocussing", h2, OutputWorkspace="f", GroupingFileName=cal)
    np.testing.assert_array_equal(f.values, [h.values[0::2].sum(axis=0), h.values[1::2].sum(axis=0)])
    edges2d = np.array([np.linspace(1 + k, 101 + k, 11) for k in range(NSPEC)])
    h3 = HistogramWorkspace(h.values, h.variances, edges2d, spectra(), unit_id="dSpacing")
    g = registry.call("DiffractionFocussing", h3, OutputWorkspace="g", GroupingFileName=cal)
    np.testing.assert_allclose(g.values.sum(axis=1), [h.values[0::2].sum(), h.values[1::2].sum()], rtol=1e-12)
    with pytest.raises(AlgorithmError, match="dSpacing"):
        registry.call("DiffractionFocussing", histo(), OutputWorkspace="x", GroupingFileName=cal)
    with pytest.raises(AlgorithmError, match="does not exist"):
        registry.call(
            "DiffractionFocussing", h2, OutputWorkspace="x", GroupingFileName=str(tmp_path / "no.cal")
        )
