"""Bank layouts from the IDF reader, MaskBTP and SumNeighbours. Expected ids are worked from each IDF's id rules
by hand (RectangularDetector, idfillbyfirst y: id = idstart + x·idstepbyrow + y; CORELLI's idlist hands out
ids in document order, 16 tubes of 256 pixels per bank)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.instrument import parse_idf, read_idf
from livereduce.instrument.attach import attach_geometry
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

IDF_DIR = Path("/work/shared/instruments/idf")

# One 4 (x) by 6 (y) RectangularDetector "bank1" with ids 100 + 6·x + y, and one bank of 3 tubes of 2 pixels
# ("bank2", ids 500..505 from an idlist), under an instrument that counts tubes from 0 (SNAP).
SMALL = """<?xml version="1.0"?>
<instrument name="SNAP">
  <defaults/>
  <component type="moderator"><location z="-10"/></component>
  <type name="moderator" is="Source"/>
  <component type="sample"><location/></component>
  <type name="sample" is="SamplePos"/>
  <component type="panel" idstart="100" idfillbyfirst="y" idstepbyrow="6">
    <location name="bank1" z="1"/>
  </component>
  <type name="panel" is="RectangularDetector" type="pixel" xpixels="4" xstart="-0.3" xstep="0.2"
        ypixels="6" ystart="-0.5" ystep="0.2"/>
  <type name="pixel" is="detector"/>
  <component type="pack" idlist="pack"><location name="bank2" x="1"/></component>
  <type name="pack">
    <component type="tube"><location name="t1" x="0"/><location name="t2" x="0.1"/><location x="0.2"/></component>
  </type>
  <type name="tube">
    <component type="pixel"><location y="0"/><location y="0.1"/></component>
  </type>
  <idlist idname="pack"><id start="500" end="505"/></idlist>
</instrument>
"""


def rect_ids(x, y):
    return 100 + 6 * x + y


def workspace(g, events=False, ids=None):
    """One spectrum per detector (ids sorted), spectrum k holding the value 1 + (its detector id) in one bin;
    as events, detector d gets (d % 3) + 1 events at TOF d."""
    ids = g.det_ids if ids is None else np.asarray(ids)
    spectra = attach_geometry(Spectra.one_to_one(ids), g)
    if events:
        counts = (ids % 3) + 1
        index = np.repeat(np.arange(ids.size), counts).astype(np.uint32)
        return EventWorkspace(spectra, EventColumns(index, np.repeat(ids.astype(float), counts)), [0.0, 1e6])
    y = (ids + 1.0)[:, None]
    return HistogramWorkspace(y, y.copy(), np.array([0.0, 1.0]), spectra)


@pytest.fixture(scope="module")
def small():
    return parse_idf(SMALL)


def test_layouts_of_the_small_idf(small):
    rect = small.bank("bank1")
    assert rect.rectangular and rect.ids.shape == (4, 6)
    np.testing.assert_array_equal(rect.ids, rect_ids(np.arange(4)[:, None], np.arange(6)[None, :]))
    tubes = small.bank("bank2")
    assert not tubes.rectangular
    np.testing.assert_array_equal(tubes.ids, [[500, 501], [502, 503], [504, 505]])
    # the location's name is the component's (the type's name is not); tubes are not banks
    assert small.bank("pack") is None and small.bank("t1") is None and not rect.ids.flags.writeable
    # what existed is unchanged: every detector, sorted
    np.testing.assert_array_equal(small.det_ids, np.r_[100:124, 500:506])


@pytest.mark.parametrize(
    ("name", "first", "shape", "rect", "bank_names"),
    [
        # POWGEN bank2: panel 154 x 7, idstart 15000, idstepbyrow 7 → (x, y) = 15000 + 7x + y
        ("POWGEN_Definition_2018-05-05.xml", "bank2", (154, 7), True, ("bank2",)),
        # CORELLI bank1: ids 0..4095, tube t pixel p = 256 t + p
        ("CORELLI_Definition_2017-04-04.xml", "bank1", (16, 256), False, ("sixteenpack", "bank1")),
    ],
)
def test_layouts_of_real_idfs(name, first, shape, rect, bank_names):
    path = IDF_DIR / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    g = read_idf(path)
    b = g.bank(first)
    assert b.ids.shape == shape and b.rectangular == rect
    if name.startswith("POWGEN"):
        assert b.names == bank_names  # Column1 holds three panels: not an alias of one
        assert g.bank("Column13").names == ("bank43", "Column13")  # a column of one panel is
        assert b.ids[0, 0] == 15000 and b.ids[1, 0] == 15007 and b.ids[153, 6] == 15000 + 7 * 153 + 6
    else:
        assert b.names == bank_names
        assert b.ids[0, 0] == 0 and b.ids[1, 0] == 256 and b.ids[15, 255] == 4095
    assert sum(x.ids.size for x in g.banks) == g.n_pixels  # every pixel in exactly one bank
    assert np.unique(np.concatenate([x.ids.ravel() for x in g.banks])).size == g.n_pixels


# -- MaskBTP ---------------------------------------------------------------------------------------


def masked_ids(ws):
    info = ws.spectrumInfo()
    return [int(ws.spectra.detector_ids(i)[0]) for i in range(ws.getNumberHistograms()) if info.isMasked(i)]


def test_mask_btp_rectangular_tube_is_x_pixel_is_y(ads, small):
    ws = workspace(small)
    got = registry.call("MaskBTP", Workspace=ws, Bank="1", Tube="1")  # SNAP counts from 0: x = 1
    np.testing.assert_array_equal(got, [106, 107, 108, 109, 110, 111])
    assert masked_ids(ws) == list(range(106, 112))
    assert ws.values[6:12].sum() == 0 and ws.values[5, 0] == 106 and ws.values[12, 0] == 113
    ws = workspace(small)
    got = registry.call("MaskBTP", Workspace=ws, Bank=[1], Tube="0-1", Pixel="edges")  # y = 0 and 5
    np.testing.assert_array_equal(got, [100, 105, 106, 111])
    ws = workspace(small)
    got = registry.call(
        "MaskBTP", Workspace=ws, Pixel="1"
    )  # every bank: y = 1 of each x, pixel 1 of each tube
    np.testing.assert_array_equal(got, [101, 107, 113, 119, 501, 503, 505])
    ws = workspace(small)
    got = registry.call("MaskBTP", Workspace=ws, Components="bank2", Tube="2", Pixel="0")
    np.testing.assert_array_equal(got, [504])


def test_mask_btp_everything_events_and_errors(ads, small):
    ws = workspace(small, events=True)
    got = registry.call("MaskBTP", Workspace=ws)  # all banks, all tubes, all pixels
    assert sorted(got.tolist()) == small.det_ids.tolist()
    assert ws.getNumberEvents() == 0 and len(masked_ids(ws)) == small.n_pixels
    ws = workspace(small)
    with pytest.raises(AlgorithmError, match="None of the indices"):
        registry.call("MaskBTP", Workspace=ws, Bank="1", Tube="9")
    with pytest.raises(AlgorithmError, match="Out of range index=65 for SNAP"):
        registry.call("MaskBTP", Workspace=ws, Bank="65")
    with pytest.raises(AlgorithmError, match="Filtered out all detectors"):
        registry.call("MaskBTP", Workspace=ws, Bank="7")  # SNAP numbers it, the small IDF lacks it
    with pytest.raises(AlgorithmError, match="Cannot specify in combination"):
        registry.call("MaskBTP", Workspace=ws, Bank="1", Components="bank2")
    with pytest.raises(AlgorithmError, match="needs the Workspace"):
        registry.call("MaskBTP", Instrument="SNAP")
    assert not ws.spectra.is_masked().any()
    bare = HistogramWorkspace(
        np.ones((2, 1)), np.ones((2, 1)), np.array([0.0, 1.0]), Spectra.one_to_one([1, 2])
    )
    with pytest.raises(AlgorithmError, match="no bank layout"):
        registry.call("MaskBTP", Workspace=bare, Bank="1")


def test_mask_btp_skips_pixels_the_workspace_lacks(ads, small):
    ws = workspace(small, ids=[100, 101, 102])
    got = registry.call("MaskBTP", Workspace=ws, Bank="1", Tube="0")
    assert got.tolist() == list(range(100, 106)) and masked_ids(ws) == [100, 101, 102]


def test_mask_btp_corelli(ads):
    path = IDF_DIR / "CORELLI_Definition_2017-04-04.xml"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    g = read_idf(path)
    ws = workspace(g)
    # CORELLI counts tubes and pixels from 1: bank 3, tube 2, pixels 1-2 → 2·4096 + 256 + (0, 1)
    got = registry.call("MaskBTP", Workspace=ws, Bank="3", Tube="2", Pixel="1-2")
    np.testing.assert_array_equal(got, [8448, 8449])
    assert masked_ids(ws) == [8448, 8449]
    # Bank 91 (the last), edges of tube 16: 90·4096 + 15·256 + (0, 255)
    got = registry.call("MaskBTP", Workspace=ws, Bank="91", Tube="16", Pixel="edges")
    np.testing.assert_array_equal(got, [372480, 372735])


def test_mask_btp_powgen(ads):
    path = IDF_DIR / "POWGEN_Definition_2018-05-05.xml"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    g = read_idf(path)
    ws = workspace(g)
    # POWGEN (file named PG3) counts from 0; bank 2: x = 3, y = 5 → 15000 + 7·3 + 5
    got = registry.call("MaskBTP", Workspace=ws, Bank="2", Tube="3", Pixel="5")
    np.testing.assert_array_equal(got, [15026])
    got = registry.call("MaskBTP", Workspace=ws, Bank="2", Tube="153")  # the last column: 15000 + 1071 + y
    np.testing.assert_array_equal(got, 15000 + 7 * 153 + np.arange(7))


# -- SumNeighbours ---------------------------------------------------------------------------------


def test_sum_neighbours_histograms_by_hand(ads, small):
    ws = workspace(small)
    out = registry.call("SumNeighbours", ws, SumX=2, SumY=3, OutputWorkspace="n")
    # blocks of bank1 in x then y order; block (bx, by) holds x in 2bx..2bx+1, y in 3by..3by+2; each pixel's
    # value is its id + 1: block (0, 0) = ids 100,101,102,106,107,108 → 624 + 6
    expect = []
    for bx in range(2):
        for by in range(2):
            ids = [rect_ids(x, y) for x in range(2 * bx, 2 * bx + 2) for y in range(3 * by, 3 * by + 3)]
            expect.append((sorted(ids), sum(ids) + 6))
    assert out.getNumberHistograms() == 4  # the tube bank is not rectangular: left out
    assert expect[0] == ([100, 101, 102, 106, 107, 108], 630)
    for i, (ids, total) in enumerate(expect):
        assert sorted(out.getSpectrum(i).getDetectorIDs()) == ids
        assert out.readY(i)[0] == total and out.readE(i)[0] == pytest.approx(np.sqrt(total))
    assert out.getSpectrumNumbers() == [1, 2, 3, 4]


def test_sum_neighbours_events_stay_events(ads, small):
    ws = workspace(small, events=True)
    out = registry.call("SumNeighbours", ws, SumX=4, SumY=6, OutputWorkspace="e")  # the whole panel at once
    assert isinstance(out, EventWorkspace) and out.getNumberHistograms() == 1
    ids = np.arange(100, 124)
    assert out.getSpectrum(0).getNumberEvents() == int(((ids % 3) + 1).sum())
    assert sorted(set(out.getSpectrum(0).getTofs().tolist())) == ids.astype(float).tolist()
    same = registry.call("SumNeighbours", ws, SumX=1, SumY=1, OutputWorkspace="s")
    assert same.getNumberHistograms() == 24 and same.getNumberEvents() == int(((ids % 3) + 1).sum())


def test_sum_neighbours_errors(ads, small):
    ws = workspace(small)
    with pytest.raises(AlgorithmError, match=r"SumX=3 does not evenly divide the 4 X pixels"):
        registry.call("SumNeighbours", ws, SumX=3, SumY=2, OutputWorkspace="x")
    with pytest.raises(AlgorithmError, match=r"SumY=4 does not evenly divide the 6 Y pixels"):
        registry.call("SumNeighbours", ws, OutputWorkspace="x")  # defaults 4 x 4
    with pytest.raises(AlgorithmError, match="at least 1"):
        registry.call("SumNeighbours", ws, SumX=0, OutputWorkspace="x")
    grouped = registry.call("GroupDetectors", ws, WorkspaceIndexList="0,1", OutputWorkspace="g")
    grouped.spectra.geometry = small
    with pytest.raises(AlgorithmError, match="exactly one detector"):
        registry.call("SumNeighbours", grouped, SumX=2, SumY=2, OutputWorkspace="x")
    corelli = IDF_DIR / "CORELLI_Definition_2017-04-04.xml"
    if corelli.exists():
        g = read_idf(corelli)
        with pytest.raises(AlgorithmError, match="no RectangularDetector"):
            registry.call("SumNeighbours", workspace(g, ids=g.det_ids[:10]), OutputWorkspace="x")


def test_sum_neighbours_powgen(ads):
    path = IDF_DIR / "POWGEN_Definition_2018-05-05.xml"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    g = read_idf(path)
    out = registry.call("SumNeighbours", workspace(g), SumX=14, SumY=7, OutputWorkspace="pg")
    # 40 panels of 154 x 7 → 11 blocks each. The first panel in the file is bank43 (Column13, idstart 630000,
    # idstepbyrow 7): its first block is x 0..13, y 0..6 = ids 630000..630097, values id + 1
    assert out.getNumberHistograms() == 40 * 11
    assert sorted(out.getSpectrum(0).getDetectorIDs()) == list(range(630000, 630098))
    assert out.readY(0)[0] == 98 * (630001 + 630098) / 2
    assert out.values.sum() == (g.det_ids + 1.0).sum()  # every pixel counted once
    with pytest.raises(AlgorithmError, match="SumY=2 does not evenly divide the 7 Y pixels"):
        registry.call("SumNeighbours", workspace(g), SumX=14, SumY=2, OutputWorkspace="x")


def test_an_empty_panel(ads):
    text = SMALL.replace(
        '<type name="pixel" is="detector"/>',
        '<type name="pixel" is="detector"/>\n'
        '  <component type="none" idstart="900"><location name="bank3"/></component>\n'
        '  <type name="none" is="RectangularDetector" type="pixel" xpixels="0" xstart="0" xstep="0.1"'
        ' ypixels="6" ystart="0" ystep="0.1"/>',
    )
    g = parse_idf(text)
    assert g.bank("bank3").ids.shape == (0, 6) and g.n_pixels == 30
    ws = workspace(g)
    assert registry.call("MaskBTP", Workspace=ws, Bank="3").size == 0  # nothing to mask: nothing masked
    assert not ws.spectra.is_masked().any()
    out = registry.call("SumNeighbours", ws, SumX=2, SumY=3, OutputWorkspace="e")
    assert out.getNumberHistograms() == 4  # bank1's blocks only
