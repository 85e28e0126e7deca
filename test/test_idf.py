"""The IDF reader against the five real SNS files in ../shared and hand-written snippets, and its CLI.

Every expected number is derived by hand from the XML (the arithmetic is written out below, from the numbers in
the files) or is a published figure of the instrument; none is copied from the reader's output. Rotations are
worked with the elementary matrices written out here (right-handed, angles counter-clockwise about the axis):

    Rx(a)·v = (vx, vy·cos a − vz·sin a, vy·sin a + vz·cos a)
    Ry(a)·v = (vx·cos a + vz·sin a, vy, −vx·sin a + vz·cos a)
    Rz(a)·v = (vx·cos a − vy·sin a, vx·sin a + vy·cos a, vz)

and Mantid's documented rule for a <rot> chain: the outermost turns the frame first and each inner one turns
the already-turned frame, so a point v of the component lands at t + R_outer·(R_middle·(R_inner·v)).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, shared_path
from stream_helpers import one_run

from livereduce.instrument import InstrumentGeometry, parse_idf, read_idf

IDF = "instruments/idf/"


def rx(a, v):
    c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
    return (v[0], v[1] * c - v[2] * s, v[1] * s + v[2] * c)


def ry(a, v):
    c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
    return (v[0] * c + v[2] * s, v[1], -v[0] * s + v[2] * c)


def rz(a, v):
    c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
    return (v[0] * c - v[1] * s, v[0] * s + v[1] * c, v[2])


def add(t, v):
    return tuple(a + b for a, b in zip(t, v, strict=True))


def two_theta_deg(p):
    """Beam along +z from a source on the z axis (all five files): 2θ = acos(z / |p|)."""
    return math.degrees(math.acos(p[2] / math.dist(p, (0, 0, 0))))


def check_pixel(g: InstrumentGeometry, det_id: int, xyz, tol=1e-9):
    k = int(g.index_of([det_id])[0])
    assert g.positions[k] == pytest.approx(xyz, abs=tol), det_id
    assert g.l2[k] == pytest.approx(math.dist(xyz, (0, 0, 0)), abs=tol)
    assert math.degrees(g.two_theta[k]) == pytest.approx(two_theta_deg(xyz), abs=1e-6)


@pytest.fixture(scope="module")
def idf():
    return lambda name: read_idf(shared_path(IDF + name))


# ---- the real files --------------------------------------------------------------------------------------------


def test_ref_l(idf):
    g = idf("REF_L_Definition.xml")
    # one RectangularDetector "panel": xpixels 256 × ypixels 304 = 77824 pixels; idstart 0, idfillbyfirst y and no
    # idstepbyrow (default: ypixels), so id = 304·i + j, from 0 to 304·255 + 303 = 77823
    assert (g.name, g.n_pixels, g.det_ids[0], g.det_ids[-1]) == ("REF_L", 77824, 0, 77823)
    assert np.array_equal(g.det_ids, np.arange(77824))
    assert g.l1 == pytest.approx(13.685)  # moderator at z = -13.685, sample at 0
    assert g.monitor_ids.tolist() == [-1]
    assert g.monitor_positions[0] == pytest.approx([0, 0, -0.23368])
    # DetectorArm: r/t/p-position and rotx/y/z parameters all 0 → at the origin, unturned; the panel's location
    # has <parameter name="z"> 1.362, so pixel (i, j) = (-0.1064 + 0.0007·i, -0.0896 + 0.0007·j, 1.362)
    check_pixel(g, 0, (-0.1064, -0.0896, 1.362))
    check_pixel(
        g, 304 * 128 + 152, (-0.1064 + 128 * 0.0007, -0.0896 + 152 * 0.0007, 1.362)
    )  # (-0.0168, 0.0168)
    check_pixel(g, 77823, (-0.1064 + 255 * 0.0007, -0.0896 + 303 * 0.0007, 1.362))
    # L2 of pixel 0 by hand: sqrt(0.1064² + 0.0896² + 1.362²) = sqrt(0.01132096 + 0.00802816 + 1.855044)
    assert g.l2[0] == pytest.approx(math.sqrt(1.87439312))


def test_snap(idf):
    g = idf("SNAP_Definition.xml")
    # 18 "panel" components (3 per Column1..6), each 256 × 256 = 65536 pixels: 1179648; their idstart values are the
    # multiples of 65536 from 0 to 1114112 = 17·65536, so ids 0 .. 1114112 + 255·256 + 255 = 1179647
    text = shared_path(IDF + "SNAP_Definition.xml").read_text()
    starts = sorted(int(v) for v in re.findall(r'idstart="(\d+)"', text))
    assert starts == [65536 * k for k in range(18)]
    assert (g.n_pixels, g.det_ids[0], g.det_ids[-1]) == (1179648, 0, 1179647)
    assert g.l1 == pytest.approx(15.0) and g.monitor_ids.tolist() == [-3, -2, -1]
    # East/West are placed only by log-driven parameters (det_arc, det_lin): without run logs they stay at the
    # sample, unturned (README of shared/instruments). bank13 (Column1) has <trans x=-0.167548 y=0.167548> and
    # idstart 131072; idstepbyrow 256, fill by y: id = 131072 + 256·i + j at (xstart + i·xstep, ystart + j·ystep)
    i, j = 10, 20
    x = -0.167548 + (-0.078795 + i * 0.000618)
    y = 0.167548 + (-0.078795 + j * 0.000618)
    check_pixel(g, 131072 + 256 * i + j, (x, y, 0.0))
    # every pixel sits in the z = 0 plane through the sample: 2θ is 90° for all
    assert np.allclose(np.degrees(g.two_theta), 90.0)


def test_snap_with_its_detector_arm_logs():
    """SNAP's arms are placed by run logs: East (Column1..3) has r-position = 0.5 + det_lin2, t-position =
    det_arc2 and roty = 180 + det_arc2 (Mantid: t/p count only with r; rotx/y/z replace the rotation)."""
    path = shared_path(IDF + "SNAP_Definition.xml")
    g = read_idf(path, logs={"det_arc2": 65.0, "det_lin2": 0.1, "det_arc1": -65.0, "det_lin1": 0.0})
    # East at r = 0.6, t = 65°, p = 0: (0.6 sin 65°, 0, 0.6 cos 65°), turned by Ry(245°). bank22 (Column2, trans
    # 0,0, idstart 262144): pixel (10, 20) is local (-0.078795 + 10·0.000618, -0.078795 + 20·0.000618, 0)
    east = (0.6 * math.sin(math.radians(65)), 0.0, 0.6 * math.cos(math.radians(65)))
    local = (-0.078795 + 10 * 0.000618, -0.078795 + 20 * 0.000618, 0.0)
    check_pixel(g, 262144 + 256 * 10 + 20, add(east, ry(245.0, local)))
    # West at r = 0.5, t = -65°, turned by Ry(115°); bank52 (Column5, trans 0,0, idstart 851968), pixel (128, 128)
    # sits 0.000309 m off the panel centre in x and y: 2θ within a tenth of a degree of 65°
    west = (0.5 * math.sin(math.radians(-65)), 0.0, 0.5 * math.cos(math.radians(-65)))
    local = (-0.078795 + 128 * 0.000618, -0.078795 + 128 * 0.000618, 0.0)
    check_pixel(g, 851968 + 256 * 128 + 128, add(west, ry(115.0, local)))
    k = g.index_of([851968 + 256 * 128 + 128])[0]
    assert math.degrees(g.two_theta[k]) == pytest.approx(65.0, abs=0.1)
    # without the logs the same file is the unplaced geometry (cached separately)
    assert read_idf(path).two_theta[k] == pytest.approx(math.pi / 2)


def test_powgen(idf):
    g = idf("POWGEN_Definition_2018-05-05.xml")
    text = shared_path(IDF + "POWGEN_Definition_2018-05-05.xml").read_text()
    # 40 panel_v2 components (Column1..24, North and South), each a rectangular_detector of 154 × 7 pixels:
    # 40 · 1078 = 43120. idstart 15000 (bank2) .. 1170000 (bank79) in steps of 15000 with gaps; idstepbyrow 7 and
    # fill by y: id = idstart + 7·i + j, so the highest is 1170000 + 7·153 + 6 = 1171077
    starts = [int(v) for v in re.findall(r'idstart="(\d+)"', text)]
    assert len(starts) == 40 and min(starts) == 15000 and max(starts) == 1170000
    assert (g.name, g.n_pixels, g.det_ids[0], g.det_ids[-1]) == ("PG3", 43120, 15000, 1171077)
    assert g.l1 == pytest.approx(60.0)  # moderator z = -60: POWGEN's 60 m primary flight path
    assert g.monitor_ids.tolist() == [-1]
    # bank79 (Column24): at (0.8123550000000002, -0.0026407499999999973, 4.4807255), rot chain y(-270.0) →
    # z(-0.008859883776899136) → y(-243.87193259907926). Its pixel (0, 0) is local (xstart, ystart, 0) =
    # (-0.3825, -0.1629, 0), id 1170000; pixel (153, 6) is (-0.3825 + 153·0.005, -0.1629 + 6·0.0543) = (0.3825, 0.1629)
    t = (0.8123550000000002, -0.0026407499999999973, 4.4807255)

    def bank79(v):
        return add(t, ry(-270.0, rz(-0.008859883776899136, ry(-243.87193259907926, v))))

    check_pixel(g, 1170000, bank79((-0.3825, -0.1629, 0.0)))
    check_pixel(g, 1170000 + 7 * 153 + 6, bank79((-0.3825 + 153 * 0.005, -0.1629 + 6 * 0.0543, 0.0)))
    # the middle row's middle pixels straddle the panel's centre: (i, j) = (76, 3) is local (-0.0025, 0, 0)
    check_pixel(g, 1170000 + 7 * 76 + 3, bank79((-0.3825 + 76 * 0.005, 0.0, 0.0)))


def test_powgen_panel_corners_match_the_2018_survey(idf):
    """An independent check of the rotation chains: mantidgeometry's survey of the 12 'left' panels (four corners
    each, columns Z, X, Elevation) against each panel's corners extrapolated half a pixel beyond its corner
    pixels. A wrong order or sense of the nested rotations would put corners tens of centimetres off."""
    g = idf("POWGEN_Definition_2018-05-05.xml")
    rows = shared_path("instruments/mantidgeometry/PG3_geom_left_2018.csv").read_text().split("\n")[1:]
    survey = np.array(
        [[float(r.split()[2]), float(r.split()[3]), float(r.split()[1])] for r in rows if r.strip()]
    )
    assert survey.shape == (48, 3)
    matched = set()
    for start in sorted({int(i) - int(i) % 15000 for i in g.det_ids}):

        def p(i, j, start=start):
            return g.positions[g.index_of([start + 7 * i + j])[0]]

        ex, ey = (p(153, 0) - p(0, 0)) / 153, (p(0, 6) - p(0, 0)) / 6
        for ci, cj in ((-0.5, -0.5), (153.5, -0.5), (153.5, 6.5), (-0.5, 6.5)):
            corner = p(0, 0) + ci * ex + cj * ey
            d = np.linalg.norm(survey - corner, axis=1)
            if d.min() < 0.015:  # within 1.5 cm (the survey marks the active area's corners)
                matched.add(int(d.argmin()))
    assert len(matched) == 48  # every surveyed corner has its computed corner


def test_powgen_solid_angle_is_the_published_1_2_sr(idf):
    """Huq et al., J. Appl. Cryst. 52 (2019) 1189: the rebuilt POWGEN covers 1.2 sr. Each pixel (0.005 m ×
    0.0543 m, the panel's xstep × ystep) subtends A·cos(incidence)/L2²."""
    g = idf("POWGEN_Definition_2018-05-05.xml")
    omega = 0.0
    for start in sorted({int(i) - int(i) % 15000 for i in g.det_ids}):
        k = g.index_of(start + np.arange(1078))
        pos = g.positions[k]
        normal = np.cross(pos[7] - pos[0], pos[1] - pos[0])  # (i+1) − (i) and (j+1) − (j)
        normal /= np.linalg.norm(normal)
        omega += float(np.sum(0.005 * 0.0543 * np.abs(pos @ normal) / g.l2[k] ** 3))
    assert omega == pytest.approx(1.2, rel=0.1)
    # and the 2θ span, 10°–170° in the same paper, within the panels' half-width (≈ 0.38 m at 4.5 m: ±5°)
    assert 5 < np.degrees(g.two_theta.min()) < 11 and 165 < np.degrees(g.two_theta.max()) < 175


def test_nomad(idf):
    g = idf("NOMAD_Definition_20170201-20220504.xml")
    # idlists Group1..Group6: 0-14335, 14336-37887, 37888-52223, 52224-64511, 64512-82943, 82944-101375, i.e.
    # 101376 ids; 99 packs of 1024 pixels (pack: 8 tubes × 128; packhalf: 8 × 128; packhalfshort: 16 × 64)
    assert (g.name, g.n_pixels, g.det_ids[0], g.det_ids[-1]) == ("NOMAD", 101376, 0, 101375)
    assert np.array_equal(g.det_ids, np.arange(101376))
    assert g.l1 == pytest.approx(19.5)  # NOMAD's 19.5 m moderator–sample distance
    assert g.monitor_ids.tolist() == [-2, -1]
    assert g.monitor_positions[:, 2].tolist() == pytest.approx([5.748782, -0.879475])  # -2 then -1, by id
    # bank15, first pack of Group2 → its tube1 pixel1 is id 14336. Location (-0.0915395, -0.836427,
    # 1.4456539999999998), rot chain y(-90.0) → z(-90.0) → y(-97.8262008026126); tube1 at x = -0.0959, pixel1
    # at y = -0.50403125, pixel128 at y = 0.50403125 (id 14336 + 127)
    t = (-0.0915395, -0.836427, 1.4456539999999998)

    def bank15(v):
        return add(t, ry(-90.0, rz(-90.0, ry(-97.8262008026126, v))))

    check_pixel(g, 14336, bank15((-0.0959, -0.50403125, 0.0)))
    check_pixel(g, 14336 + 127, bank15((-0.0959, 0.50403125, 0.0)))
    check_pixel(g, 14336 + 7 * 128, bank15((0.0959, -0.50403125, 0.0)))  # tube8
    # bank99, the last packhalf of Group6 → ids 101376 - 1024 = 100352 on. One rot, y(-195.9453959009229), at
    # (0.49571899999999997, 0.003905999999999979, 2.52664); halftube tube1 x = -0.023975, pixel1 y = -0.49609375
    t99 = (0.49571899999999997, 0.003905999999999979, 2.52664)
    check_pixel(g, 100352, add(t99, ry(-195.9453959009229, (-0.023975, -0.49609375, 0.0))))
    # the 2θ coverage quoted for NOMAD is 3°–175°: nearly all pixels lie inside it and the extremes close to it
    tt = np.degrees(g.two_theta)
    assert np.mean((tt > 3) & (tt < 175)) > 0.98 and tt.min() < 3 and 174 < tt.max() < 178


def test_corelli(idf):
    g = idf("CORELLI_Definition_2017-04-04.xml")
    # rows A, B, C: 29 + 33 + 29 = 91 banks, each a sixteenpack of 16 tubes × 256 pixels = 4096: 372736 ids;
    # idlists A row 0-118783 (29 · 4096), B row 118784-253951 (33 · 4096), C row 253952-372735 (29 · 4096)
    assert (g.name, g.n_pixels, g.det_ids[0], g.det_ids[-1]) == ("CORELLI", 372736, 0, 372735)
    assert g.l1 == pytest.approx(20.0)  # CORELLI's 20 m moderator–sample distance
    assert g.monitor_ids.tolist() == [-3, -2, -1]
    # bank1 (A row, first): sixteenpack at (1.274295027, -0.804864486, -2.054426768), rot chain y(328.19) → x(0)
    # → z(0). tube1 x = -0.104775, pixel1 y = -0.450234375: id 0; tube2 (x = -0.090805) pixel1: id 256
    t = (1.274295027, -0.804864486, -2.054426768)

    def bank1(v):
        return add(t, ry(328.19, rx(0.0, rz(0.0, v))))

    check_pixel(g, 0, bank1((-0.104775, -0.450234375, 0.0)))
    check_pixel(g, 256, bank1((-0.090805, -0.450234375, 0.0)))
    # by hand for id 0: cos 328.19° = 0.84981, sin 328.19° = -0.52711 →
    # x = 1.274295 - 0.104775·0.84981 = 1.18526, y = -0.804864 - 0.450234 = -1.255099, z = -2.054427 - 0.055229
    assert g.positions[0] == pytest.approx([1.18526, -1.255099, -2.109656], abs=2e-5)
    # the component-links' parameters (15 atm tubes) and the chopper's string parameter
    assert g.number_parameter("tube_pressure", "B row") == [15.0]
    assert g.string_parameter("sequence", "correlation-chopper")[0].startswith("4.185 2.823")
    # coverage: CORELLI's detectors reach ≈150° in 2θ and ±28° out of the horizontal plane
    tt = np.degrees(g.two_theta)
    elevation = np.degrees(np.arcsin(g.positions[:, 1] / g.l2))
    assert 145 < tt.max() < 155 and -31 < elevation.min() < -25 and 25 < elevation.max() < 31


def test_corelli_packs_match_the_instrument_teams_table(idf):
    """mantidgeometry's CORELLI_geom.txt (the table the IDF was generated from): per pack, rows A1..C29 in the
    order of banks 1..91, its centre (Xsci, Ysci, Zsci in mm) and its turn Yrot about y. The pack's 4096 pixels
    are symmetric about its centre (tubes at ±0.006985..±0.104775, pixels at ±0.001765625..±0.450234375), so
    their mean is the centre; the tubes run along the pack's local x, which Ry(Yrot) turns to (cos, 0, -sin)."""
    g = idf("CORELLI_Definition_2017-04-04.xml")
    lines = shared_path("instruments/mantidgeometry/CORELLI_geom.txt").read_text().split("\n")[1:]
    rows = [line.split() for line in lines if line.strip()]
    assert len(rows) == 91
    for k, row in enumerate(rows):
        pack = g.positions[4096 * k : 4096 * (k + 1)]
        assert pack.mean(axis=0) == pytest.approx([float(v) / 1000 for v in row[4:7]], abs=1e-9), row[0]
        along = pack[15 * 256] - pack[0]  # tube16 pixel1 − tube1 pixel1
        yrot = math.radians(float(row[8]))
        assert along / np.linalg.norm(along) == pytest.approx([math.cos(yrot), 0, -math.sin(yrot)], abs=1e-12)


# ---- hand-written snippets -------------------------------------------------------------------------------------


def idf_text(body: str, defaults: str = "", name: str = "TEST") -> str:
    return (
        f'<?xml version="1.0"?><instrument xmlns="http://www.mantidproject.org/IDF/1.0" name="{name}">'
        f"<defaults>{defaults}</defaults>"
        '<component type="src"><location z="-10"/></component><type name="src" is="Source"/>'
        '<component type="smp"><location/></component><type name="smp" is="SamplePos"/>'
        '<type name="pixel" is="detector"/><type name="mon" is="monitor"/>'
        f"{body}</instrument>"
    )


def test_spherical_locations():
    # r t p: x = r sin t cos p, y = r sin t sin p, z = r cos t (t from +z, p from +x)
    g = parse_idf(
        idf_text(
            '<component type="pixel" idlist="d"><location r="2" t="90" p="0"/><location r="2" t="90" p="90"/>'
            '<location r="2" t="30"/><location r="2" t="180"/></component>'
            '<idlist idname="d"><id start="1" end="4"/></idlist>'
        )
    )
    assert g.l1 == 10.0 and g.det_ids.tolist() == [1, 2, 3, 4]
    assert g.positions == pytest.approx(np.array([[2, 0, 0], [0, 2, 0], [1, 0, math.sqrt(3)], [0, 0, -2]]))
    assert np.degrees(g.two_theta) == pytest.approx([90, 90, 30, 180])
    assert np.degrees(g.azimuthal[:3]) == pytest.approx([0, 90, 0])
    assert g.l2 == pytest.approx([2, 2, 2, 2])


def test_nested_rotations_and_translations_and_the_tree():
    g = parse_idf(
        idf_text(
            # Mantid's documented example: x=10, then rot 90 (about z), then trans x=-8 in the turned frame:
            # (10, -8, 0)
            '<component type="pixel" idlist="a"><location x="10"><rot val="90"><trans x="-8"/></rot></location>'
            "</component>"
            # rot 90 about y, then 90 about z in the turned frame: local (1,0,0) → Rz: (0,1,0) → Ry: (0,1,0);
            # local (0,0,1) → Rz: (0,0,1) → Ry: (1,0,0). (The other order would give (0,0,-1) for the first.)
            '<component type="pair" idlist="b"><location z="5" rot="90" axis-x="0" axis-y="1" axis-z="0">'
            '<rot val="90"/></location></component>'
            '<type name="pair"><component type="pixel"><location x="1"/><location z="1"/></component></type>'
            # a tree: bank turned 90 about z at (0, 0, 20) holding a tube at x=1 itself turned 90 about z, holding
            # a pixel at x=1: in the bank, Rz90·(1,0,0) + (1,0,0) = (1,1,0); in the lab, Rz90·(1,1,0) + (0,0,20)
            '<component type="bank" idlist="c"><location z="20" rot="90"/></component>'
            '<type name="bank"><component type="tube"><location x="1" rot="90"/></component></type>'
            '<type name="tube"><component type="pixel"><location x="1"/></component></type>'
            '<idlist idname="a"><id val="1"/></idlist><idlist idname="b"><id val="2"/><id val="3"/></idlist>'
            '<idlist idname="c"><id val="4"/></idlist>'
        )
    )
    assert g.positions == pytest.approx(np.array([[10, -8, 0], [0, 1, 5], [1, 0, 5], [-1, 1, 20]]))


def test_idlists_in_document_order_with_steps():
    g = parse_idf(
        idf_text(
            '<component type="pixel" idlist="d">'
            + "".join(f'<location x="{k}"/>' for k in range(1, 9))
            + "</component>"
            '<idlist idname="d"><id start="10" end="40" step="10"/><id val="7"/><id start="5" end="1" step="-2"/>'
            "</idlist>"
        )
    )
    # x = 1..8 take 10, 20, 30, 40, 7, 5, 3, 1 in that order
    by_id = dict(zip(g.det_ids.tolist(), g.positions[:, 0].tolist(), strict=True))
    assert by_id == {10: 1, 20: 2, 30: 3, 40: 4, 7: 5, 5: 6, 3: 7, 1: 8}


def test_locations_shorthand_and_exclude():
    g = parse_idf(
        idf_text(
            '<component type="tube" idlist="d"><location><exclude sub-part="p1"/></location></component>'
            '<type name="tube"><component type="pixel"><locations y="0" y-end="1" n-elements="3" name="p"/>'
            "</component></type>"
            '<idlist idname="d"><id start="1" end="2"/></idlist>'
        )
    )
    # p0, p1, p2 at y = 0, 0.5, 1; p1 excluded, so ids 1, 2 go to y = 0 and 1
    assert g.det_ids.tolist() == [1, 2] and g.positions[:, 1].tolist() == [0.0, 1.0]
    # <facing> on a single pixel turns it but cannot move it: accepted, position as located
    g = parse_idf(
        idf_text(
            '<component type="pixel" idlist="d"><location x="2"><facing x="0" y="0" z="0"/></location></component>'
            '<idlist idname="d"><id val="1"/></idlist>'
        )
    )
    assert g.positions[0] == pytest.approx([2, 0, 0])


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        # fill by y, idstepbyrow 10: id = 100 + 10·i + j
        (
            'idstart="100" idfillbyfirst="y" idstepbyrow="10"',
            {100: (0, 0), 101: (0, 1), 110: (1, 0), 121: (2, 1)},
        ),
        # fill by x, idstepbyrow 5, idstep 2: id = 100 + 5·j + 2·i
        (
            'idstart="100" idfillbyfirst="x" idstepbyrow="5" idstep="2"',
            {100: (0, 0), 104: (2, 0), 107: (1, 1)},
        ),
        # defaults: idstart 0, fill by y, idstepbyrow = ypixels = 2: id = 2·i + j
        ("", {0: (0, 0), 1: (0, 1), 2: (1, 0), 5: (2, 1)}),
    ],
)
def test_rectangular_detector_ids_and_positions(attrs, expected):
    g = parse_idf(
        idf_text(
            f'<component type="panel" {attrs}><location z="2" rot="180" axis-x="0" axis-y="1" axis-z="0"/>'
            "</component>"
            '<type name="panel" is="rectangular_detector" type="pixel" xpixels="3" xstart="-0.1" xstep="0.1" '
            'ypixels="2" ystart="-0.05" ystep="0.1"/>'
        )
    )
    assert g.n_pixels == 6
    for det, (i, j) in expected.items():
        x, y = -0.1 + 0.1 * i, -0.05 + 0.1 * j
        # Ry(180)·(x, y, 0) = (-x, y, 0), then + (0, 0, 2)
        assert g.positions[g.index_of([det])[0]] == pytest.approx([-x, y, 2.0]), det


def test_parameters_and_position_parameters():
    g = parse_idf(
        idf_text(
            '<component-link name="TEST"><parameter name="L2-guess"><value val="2.5"/></parameter>'
            '<parameter name="mode" type="string"><value val="fast"/></parameter>'
            '<parameter name="logged"><logfile id="some_log"/></parameter></component-link>'
            '<component type="bank" name="north" idlist="d"><location>'
            '<parameter name="r-position"><value val="3"/></parameter>'
            '<parameter name="t-position"><value val="90"/></parameter>'
            '<parameter name="rotz"><value val="90"/></parameter></location>'
            '<parameter name="gain"><value val="3"/></parameter></component>'
            '<type name="bank"><component type="pixel"><location x="1"/><location y="2">'
            '<parameter name="z"><value val="0.5"/></parameter></location></component></type>'
            '<idlist idname="d"><id start="1" end="2"/></idlist>'
        )
    )
    assert g.number_parameter("L2-guess") == [2.5] and g.string_parameter("mode") == ["fast"]
    assert g.number_parameter("mode") == [] and g.parameter("logged") is None  # no value without logs
    assert g.number_parameter("gain", "north") == [3.0] and g.number_parameter("gain") == []
    # north: r-position 3, t-position 90 → (3, 0, 0); rotz 90. pixel x=1 → Rz90·(1,0,0) = (0,1,0) → (3, 1, 0);
    # pixel at y=2 with its z set to 0.5 → local (0, 2, 0.5) → Rz90 → (-2, 0, 0.5) → (1, 0, 0.5)
    assert g.positions == pytest.approx(np.array([[3, 1, 0], [1, 0, 0.5]]))


def test_logfile_parameters_and_their_formulas():
    body = (
        '<component-link name="TEST"><parameter name="height"><logfile id="h" eq="2*sin(value*_pi/180)^2 + 1"/>'
        '</parameter><parameter name="raw"><logfile id="h"/></parameter></component-link>'
        '<component type="pixel" idlist="d"><location><parameter name="x"><logfile id="h" eq="value/100"/>'
        '</parameter></location></component><idlist idname="d"><id val="1"/></idlist>'
    )
    g = parse_idf(idf_text(body), logs={"h": 30.0})
    # 2·sin²(30°) + 1 = 2·0.25 + 1 = 1.5; no eq: the log's value; x = 30/100
    assert g.number_parameter("height") == [pytest.approx(1.5)] and g.number_parameter("raw") == [30.0]
    assert g.positions[0] == pytest.approx([0.3, 0, 0])
    assert parse_idf(idf_text(body)).positions[0] == pytest.approx([0, 0, 0])  # no logs: x is not set
    for eq in ("__import__('os')", "value.real", "(lambda: 1)()", "sqrt(-value)", "1/0", "10^400"):
        bad = body.replace("value/100", eq)
        with pytest.raises(ValueError, match="eq="):
            parse_idf(idf_text(bad), logs={"h": 30.0})


def test_monitors_are_kept_apart():
    g = parse_idf(
        idf_text(
            '<component type="mon" idlist="m"><location z="-1"/><location z="3"/></component>'
            '<component type="pixel" idlist="m2"><location z="-2" mark-as="monitor"/><location x="1"/></component>'
            '<idlist idname="m"><id val="-1"/><id val="-2"/></idlist><idlist idname="m2"><id val="-3"/><id val="5"/>'
            "</idlist>"
        )
    )
    assert g.det_ids.tolist() == [5] and g.monitor_ids.tolist() == [-3, -2, -1]
    assert g.monitor_positions[:, 2].tolist() == [-2.0, 3.0, -1.0]


def test_non_default_reference_frame_and_radians():
    frame = (
        '<angle unit="radian"/><reference-frame><along-beam axis="x"/><pointing-up axis="z"/>'
        '<handedness val="right"/></reference-frame>'
    )
    body = (
        '<component type="s2"><location x="-10"/></component><type name="s2" is="Source"/>'
        '<component type="pixel" idlist="d"><location z="2"/><location y="3"/><location x="1" z="1"/>'
        f'<location r="2" t="{math.pi / 2}" p="0"/></component><idlist idname="d"><id start="1" end="4"/></idlist>'
    )
    text = idf_text(body, frame).replace('<location z="-10"/></component><type name="src" is="Source"/>', "")
    text = text.replace('<component type="src">', "")
    g = parse_idf(text)
    # beam along x from the source at x = -10; up is z, so horizontal = up × beam = z × x = y
    assert g.l1 == 10.0
    # (0,0,2): ⟂ beam, straight up → 2θ 90°, φ 90°; (0,3,0): 2θ 90°, φ 0; (1,0,1): 2θ 45°, φ 90°;
    # r=2, t=π/2 rad, p=0 → (2, 0, 0): along the beam, 2θ 0
    assert np.degrees(g.two_theta) == pytest.approx([90, 90, 45, 0], abs=1e-9)
    assert np.degrees(g.azimuthal[:3]) == pytest.approx([90, 0, 90])
    assert g.positions[3] == pytest.approx([2, 0, 0])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('<component type="nope"><location/></component>', "no <type name='nope'>"),
        ('<component type="pixel" idlist="d"><location/></component><idlist idname="d"/>', "0 ids for 1"),
        ('<component type="pixel"><location/></component>', "in no component with an idlist"),
        (
            '<component type="pixel" idlist="d"><location/></component><idlist idname="d">'
            '<id start="1" end="10" step="2"/></idlist>',
            "no whole steps",
        ),
        (
            '<component type="p" idstart="0"><location/></component><type name="p" is="RectangularDetector" '
            'type="pixel" xpixels="100000" xstart="0" xstep="1" ypixels="100000" ystart="0" ystep="1"/>',
            "over 4194304",
        ),
        (
            '<component type="a"><location/></component>'
            '<type name="a"><component type="a"><location/></component></type>',
            "contains itself",
        ),
        (
            '<component type="pixel" idlist="d"><location/><location x="1"/></component><idlist idname="d">'
            '<id val="3"/><id val="3"/></idlist>',
            "id 3 is used twice",
        ),
        (
            '<component type="pixel" idlist="d"><location x="one"/></component>',
            "<location>: x='one' is not a number",
        ),
        ('<component type="pixel" idlist="d"><location rot="9" axis-z="0"/></component>', "no direction"),
        ('<component type="pixel"/>', "has no <location>"),
        (
            '<component type="p" idstart="2147483000"><location/></component><type name="p" is="RectangularDetector" '
            'type="pixel" xpixels="100" xstart="0" xstep="1" ypixels="100" ystart="0" ystep="1"/>',
            "outside 32 bits",
        ),
        (
            '<component type="p"><location/></component><type name="p" is="RectangularDetector" '
            'type="pixel" xpixels="2" xstart="0" xstep="1e308" ypixels="1" ystart="0" ystep="1"/>',
            "placed beyond 1e+06 m",
        ),
        (
            '<component type="s"><location/></component><type name="s" is="StructuredDetector"/>',
            "not supported",
        ),
        (
            '<component type="t" idlist="d"><location x="1"><facing x="0" y="0" z="0"/></location></component>'
            '<type name="t"><component type="pixel"><location y="1"/></component></type>',
            "<facing> is supported only on single detectors",
        ),
    ],
)
def test_bad_definitions_are_clear_value_errors(body, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_idf(idf_text(body))


def test_a_deep_chain_of_single_placements_does_not_keep_a_copy_per_level():
    """40 types each placing the next once (moved, so each level is a new array) around a 500 × 1000 panel:
    keeping every level's block would hold 40 × 17 MB; only the blocks of types placed twice are kept."""
    import tracemalloc

    chain = "".join(
        f'<type name="t{k}"><component type="t{k + 1}"><location x="0.01"/></component></type>'
        for k in range(40)
    )
    text = idf_text(
        '<component type="t0"><location/></component>'
        + chain
        + '<type name="t40"><component type="panel" idstart="0"><location/></component></type>'
        '<type name="panel" is="RectangularDetector" type="pixel" xpixels="500" xstart="0" xstep="0.001" '
        'ypixels="1000" ystart="0" ystep="0.001"/>'
    )
    tracemalloc.start()
    try:
        g = parse_idf(text, cache=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert g.n_pixels == 500_000 and g.positions[0] == pytest.approx([40 * 0.01, 0, 0])
    assert peak < 250e6, peak


def test_bounds_hold_before_the_cache_and_for_locations():
    text = idf_text(
        '<component type="pixel" idlist="d"><location/></component><idlist idname="d"><id val="1"/></idlist>'
    )
    parse_idf(text)  # cached under the default limit
    with pytest.raises(ValueError, match="over the 100-byte bound"):
        parse_idf(text, limit=100)
    with pytest.raises(ValueError, match="n-elements=70000"):
        parse_idf(
            idf_text('<component type="pixel"><locations n-elements="70000" x="0" x-end="1"/></component>')
        )


@pytest.mark.parametrize("seed", range(4))
def test_mutated_real_files_give_a_geometry_or_a_value_error(seed):
    """Attribute values of REF_L and POWGEN replaced by odd ones (empty, NaN, 1e400, 2^31, text, ...) or bytes
    cut out: parsing gives a geometry or a ValueError, nothing else, and no numpy warnings (errors here)."""
    import random

    rng = random.Random(seed)
    texts = [
        shared_path(IDF + n).read_text() for n in ("REF_L_Definition.xml", "POWGEN_Definition_2018-05-05.xml")
    ]
    odd = ["", "-1", "1e400", "nan", "inf", "99999999999999999999", "0", "-0.5", "abc", "2147483647", "0x10"]
    for _ in range(60):
        text = rng.choice(texts)
        for _ in range(rng.randint(1, 3)):
            m = rng.choice(list(re.finditer(r'="([^"]*)"', text)))
            if rng.random() < 0.8:
                text = text[: m.start(1)] + rng.choice(odd) + text[m.end(1) :]
            else:
                text = text[: m.start(1)] + text[m.start(1) + rng.randint(1, 40) :]
        try:
            parse_idf(text, cache=False)
        except ValueError:
            pass


def test_malformed_xml_and_an_empty_instrument():
    with pytest.raises(ValueError, match="not readable XML"):
        parse_idf("<instrument name='x'><component>")
    with pytest.raises(ValueError, match="not <instrument>"):
        parse_idf("<html/>")
    g = parse_idf('<instrument name="EMPTY"/>')  # nothing placed: no pixels, no source (L1 unknown)
    assert g.n_pixels == 0 and math.isnan(g.l1)


def test_parsing_is_cached_and_results_are_read_only():
    text = idf_text(
        '<component type="pixel" idlist="d"><location x="1"/></component><idlist idname="d"><id val="1"/></idlist>'
    )
    g = parse_idf(text)
    assert parse_idf(text) is g
    with pytest.raises(ValueError):
        g.positions[0, 0] = 5.0
    with pytest.raises(KeyError, match="no detector id 2"):
        g.index_of([1, 2])


# ---- the CLI ---------------------------------------------------------------------------------------------------


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "livereduce", "geometry", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )


def test_cli_json_for_ref_l():
    path = shared_path(IDF + "REF_L_Definition.xml")
    r = run_cli(str(path), "--ids", "0,77823", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"instrument", "L1", "n_pixels", "id_min", "id_max", "pixels"}
    assert (doc["instrument"], doc["n_pixels"], doc["id_min"], doc["id_max"]) == ("REF_L", 77824, 0, 77823)
    assert doc["L1"] == pytest.approx(13.685)
    assert set(doc["pixels"]) == {"0", "77823"}
    p = doc["pixels"]["77823"]
    assert set(p) == {"x", "y", "z", "L2", "two_theta_deg"}
    xyz = (-0.1064 + 255 * 0.0007, -0.0896 + 303 * 0.0007, 1.362)  # see test_ref_l
    assert (p["x"], p["y"], p["z"]) == pytest.approx(xyz)
    assert p["L2"] == pytest.approx(math.dist(xyz, (0, 0, 0))) and p["two_theta_deg"] == pytest.approx(
        two_theta_deg(xyz)
    )


def test_cli_with_logs_places_snaps_arms():
    path = shared_path(IDF + "SNAP_Definition.xml")
    centre = (
        262144 + 256 * 128 + 128
    )  # bank22, 0.000309 m off its centre: see test_snap_with_its_detector_arm_logs
    r = run_cli(str(path), "--log", "det_arc2=65", "--log", "det_lin2=0", "--ids", str(centre), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pixels"][str(centre)]["two_theta_deg"] == pytest.approx(65.0, abs=0.1)
    r = run_cli(str(path), "--log", "det_arc2")
    assert r.returncode == 2 and "NAME=NUMBER" in r.stderr


def test_cli_text_and_errors(tmp_path):
    path = shared_path(IDF + "POWGEN_Definition_2018-05-05.xml")
    r = run_cli(str(path), "--ids", "15000")
    assert r.returncode == 0 and "PG3" in r.stdout and "43120" in r.stdout and "15000..1171077" in r.stdout
    assert "60.000000 m" in r.stdout
    bad = tmp_path / "bad.xml"
    bad.write_text("<instrument><component")
    for args, message in (
        ([str(bad)], "not readable XML"),
        ([str(tmp_path / "absent.xml")], "absent.xml"),
        ([str(path), "--ids", "3"], "no detector id 3"),
        ([str(path), "--ids", "x"], "comma-separated integers"),
    ):
        r = run_cli(*args)
        assert r.returncode == 2 and r.stdout == "", args
        assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, (args, r.stderr)


# ---- the ADARA path: a real IDF in the GEOMETRY packet ---------------------------------------------------------


def test_a_real_idf_in_the_geometry_packet_gives_the_full_geometry():
    from livereduce.listeners.adara.geometry import parse_geometry

    path = shared_path(IDF + "NOMAD_Definition_20170201-20220504.xml")
    g, direct = parse_geometry(path.read_text()), read_idf(path)
    assert (g.name, g.l1, g.monitors) == (
        "NOMAD",
        19.5,
        (1, 2),
    )  # IDF monitors -1, -2 are ADARA monitors 1, 2
    assert np.array_equal(g.det_ids, direct.det_ids) and np.array_equal(g.l2, direct.l2)
    assert np.array_equal(g.two_theta, direct.two_theta) and np.array_equal(g.azimuthal, direct.azimuthal)
    # one the reader refuses: its name, no pixels (the listener then sizes spectra from `pixels`), and why
    refused = parse_geometry(idf_text('<component type="nope"><location/></component>', name="ODD"))
    assert refused.name == "ODD" and refused.det_ids.size == 0 and "nope" in refused.note


def test_the_fake_sms_streams_a_real_idf_and_the_listener_reads_the_same_geometry():
    path = shared_path(IDF + "POWGEN_Definition_2018-05-05.xml")
    direct = read_idf(path)
    chunks, sms, state = one_run(idf=path, run_seconds=0.5, seed=5)
    unmapped = state["unmapped_events_dropped"]
    spectra = chunks[-1].spectra
    assert spectra.instrument == "PG3" and spectra.l1 == pytest.approx(direct.l1)
    assert np.array_equal(spectra.det_ids, direct.det_ids)
    assert np.array_equal(spectra.l2, direct.l2) and np.array_equal(spectra.two_theta, direct.two_theta)
    assert np.array_equal(spectra.azimuthal, direct.azimuthal)
    # the events went to POWGEN's own (sparse, 15000..1171077) ids: every one was mapped to a spectrum
    assert unmapped == 0 and sum(c.n_events for c in chunks) == sms.sent_events_per_run[1] > 0


def test_fake_sms_refuses_an_unusable_idf_in_one_line(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text('<instrument name="X"><component type="nope"><location/></component></instrument>')
    r = subprocess.run(
        [sys.executable, "-m", "livereduce", "fake-adara", "--port", "0", "--idf", str(bad)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "nope" in r.stderr, r.stderr


PARAMETER_IDF = """<?xml version="1.0" encoding="UTF-8"?>
<instrument name="TINYP">
  <component type="moderator"><location z="-10.0"/></component>
  <type name="moderator" is="Source"/>
  <component type="sample-position"><location/></component>
  <type name="sample-position" is="SamplePos"/>
  <component type="pixel" idlist="pixels"><location x="1.0"/></component>
  <type name="pixel" is="detector"/>
  <idlist idname="pixels"><id val="7"/></idlist>
  <component-link name="TINYP">
    <parameter name="l2-offset"><value val="0.5"/></parameter>
    <parameter name="kept"><value val="3"/></parameter>
  </component-link>
</instrument>
"""
PARAMETER_FILE = """<?xml version="1.0" encoding="UTF-8"?>
<parameter-file instrument="TINYP" valid-from="2020-01-01T00:00:00">
  <component-link name="TINYP">
    <parameter name="l2-offset"><value val="0.75"/></parameter>
    <parameter name="DetectorCalibrationType" type="string"><value val="file"/></parameter>
  </component-link>
</parameter-file>
"""


def test_a_parameter_file_beside_the_definition_adds_and_replaces_parameters(tmp_path):
    """Mantid reads <NAME>_Parameters.xml after the definition: its values win, the rest stay."""
    import pickle

    idf = tmp_path / "TINYP_Definition_2020.xml"
    idf.write_text(PARAMETER_IDF)
    alone = read_idf(idf)
    assert (
        alone.number_parameter("l2-offset") == [0.5]
        and alone.string_parameter("DetectorCalibrationType") == []
    )
    (tmp_path / "TINYP_Parameters.xml").write_text(PARAMETER_FILE)
    g = read_idf(idf)
    assert g.number_parameter("l2-offset") == [0.75]  # the file's value replaces the definition's
    assert g.number_parameter("kept") == [3.0]  # what the file does not name stays
    assert g.string_parameter("DetectorCalibrationType") == ["file"]
    again = pickle.loads(pickle.dumps(g))  # noqa: S301 - the daemon → worker pipe: parameters go with the text
    assert again.number_parameter("l2-offset") == [0.75] and again.string_parameter(
        "DetectorCalibrationType"
    ) == ["file"]
    (tmp_path / "TINYP_Parameters.xml").write_text("<instrument/>")
    with pytest.raises(ValueError, match="parameter file: root element is <instrument>"):
        read_idf(idf)
