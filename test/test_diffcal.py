"""Diffraction calibration files (HDF5, .cal), grouping XML, LoadDiffCal and AlignDetectors."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from livereduce.algorithms import call
from livereduce.algorithms.diffcal import difc_from_geometry, read_calibration, read_grouping_xml
from livereduce.errors import AlgorithmError
from livereduce.workspace.ads import mtd
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.spectra import Spectra

# CODATA 2022: h = 6.62607015e-34 J s, m_n = 1.67492750056e-27 kg
H, M_N = 6.62607015e-34, 1.67492750056e-27


def hand_difc(l1, l2, two_theta_deg):
    """TOF = L/v and λ = h/(m_n v) = 2 d sinθ  ⇒  TOF = (2 m_n L sinθ / h)·d; in µs/Å: × 1e6 (s→µs) × 1e-10 (Å)."""
    return 2 * M_N * (l1 + l2) * math.sin(math.radians(two_theta_deg) / 2) / H * 1e6 * 1e-10


def events_ws(ids, l2, two_theta_deg, det, tof, l1=60.0):
    s = Spectra.one_to_one(ids, l1=l1, l2=l2, two_theta=np.radians(two_theta_deg))
    return EventWorkspace(s, EventColumns(np.asarray(det, np.uint32), np.asarray(tof, float)))


def write_h5(path, detid, difc, difa=None, tzero=None, group=None, use=None):
    with h5py.File(path, "w") as f:
        c = f.create_group("calibration")
        c["detid"] = np.asarray(detid, np.int32)
        c["difc"] = np.asarray(difc, float)
        for name, v in (("difa", difa), ("tzero", tzero), ("group", group), ("use", use)):
            if v is not None:
                c[name] = np.asarray(v)
    return str(path)


def test_geometric_difc_matches_the_hand_formula_and_scippneutron():
    # POWGEN-like: L1 = 60 m, L2 = 2 m, 2θ = 90°: 2·1.6749e-27·62·sin45°/6.6261e-34 s/m² = 22163.9 µs/Å
    assert difc_from_geometry(60.0, 2.0, math.radians(90)) == pytest.approx(hand_difc(60, 2, 90), rel=1e-12)
    assert hand_difc(60, 2, 90) == pytest.approx(22163.9, abs=0.1)
    sc = pytest.importorskip("scipp")
    tof_mod = pytest.importorskip("scippneutron.conversion.tof")
    d = tof_mod.dspacing_from_tof(
        tof=sc.scalar(30_000.0, unit="us"),
        Ltotal=sc.scalar(62.0, unit="m"),
        two_theta=sc.scalar(math.pi / 2, unit="rad"),
    )
    assert d.to(unit="angstrom").value == pytest.approx(
        30_000.0 / difc_from_geometry(60.0, 2.0, math.pi / 2), rel=1e-9
    )


def test_align_with_an_h5_calibration(tmp_path):
    # pixel 10: DIFC 20000, DIFA 0, TZERO 5 → TOF = 20000 d + 5; pixel 11: DIFC 10000, DIFA 100, TZERO 0 →
    # TOF = 10000 d + 100 d²; pixel 12 is not in the file: its DIFC is the geometry's (L1 60, L2 2, 2θ 90°)
    path = write_h5(
        tmp_path / "cal.h5", [10, 11], [20000.0, 10000.0], [0.0, 100.0], [5.0, 0.0], [1, 2], [1, 1]
    )
    d_true = np.array([1.0, 2.0, 1.5])
    tof = [20000 * 1.0 + 5, 10000 * 2.0 + 100 * 4.0, hand_difc(60, 2, 90) * 1.5]
    ws = events_ws([10, 11, 12], 2.0, 90.0, [0, 1, 2], tof)
    out = call("AlignDetectors", ws, CalibrationFile=path, StoreInADS=False)
    assert out.getAxis(0).getUnit().unitID() == "dSpacing"
    assert out.events.x == pytest.approx(d_true, rel=1e-12)
    # the histogram path converts each spectrum's edges with the same constants
    h = call("Rebin", ws, Params="0,100,40000", PreserveEvents=False, StoreInADS=False)
    hd = call("AlignDetectors", h, CalibrationFile=path, StoreInADS=False)
    assert hd.readX(0)[1] == pytest.approx((100 - 5) / 20000) and hd.readY(0).sum() == 1


def test_negative_difa_past_its_turning_point_is_nan(tmp_path):
    # TOF = 1000 d − 10 d² has its maximum 25000 µs at d = 50 Å: a TOF of 30000 µs has no real d
    path = write_h5(tmp_path / "cal.h5", [1], [1000.0], [-10.0], [0.0])
    out = call(
        "AlignDetectors",
        events_ws([1], 2.0, 90.0, [0, 0], [9000.0, 30000.0]),
        CalibrationFile=path,
        StoreInADS=False,
    )
    assert out.events.x[0] == pytest.approx(10.0) and math.isnan(out.events.x[1])  # 1000·10 − 10·100 = 9000


def test_cal_file_offsets_scale_the_geometric_difc(tmp_path):
    cal = tmp_path / "x.cal"
    cal.write_text("# number udet offset select group\n0 10 0.1 1 1\n1 11 0.0 0 2\n")
    c = read_calibration(str(cal))
    assert c.masked_ids().tolist() == [11] and c.grouping()[1].tolist() == [1, 2]
    difc = hand_difc(60, 2, 90) / 1.1  # DIFC = DIFC_geometry / (1 + offset)
    out = call(
        "AlignDetectors",
        events_ws([10], 2.0, 90.0, [0], [difc * 2.0]),
        CalibrationFile=str(cal),
        StoreInADS=False,
    )
    assert out.events.x[0] == pytest.approx(2.0, rel=1e-12)


def test_a_spectrum_without_calibration_or_geometry_is_an_error_unless_masked(tmp_path):
    path = write_h5(tmp_path / "cal.h5", [10], [20000.0])
    ws = events_ws([10, 11], np.nan, np.nan, [0, 1], [20000.0, 20000.0], l1=np.nan)
    with pytest.raises(AlgorithmError, match="spectrum 2"):
        call("AlignDetectors", ws, CalibrationFile=path, StoreInADS=False)
    call("MaskDetectors", ws, DetectorList=[11])
    out = call("AlignDetectors", ws, CalibrationFile=path, StoreInADS=False)
    assert out.events.x.tolist() == [1.0]  # the masked spectrum's event went with the mask


def test_grouping_xml(tmp_path):
    xml = tmp_path / "g.xml"
    xml.write_text(
        '<?xml version="1.0"?><detector-grouping instrument="PG3">'
        '<group ID="3"><detids val="5-7,9"/></group><group><detids val="1,2"/><ids val="4"/></group>'
        "</detector-grouping>"
    )
    ids, groups, spectra = read_grouping_xml(str(xml))
    assert ids.tolist() == [1, 2, 5, 6, 7, 9] and groups.tolist() == [2, 2, 3, 3, 3, 3]  # the 2nd group: ID 2
    assert spectra == [(2, [4])]
    xml.write_text('<detector-grouping><group ID="1"><component val="bank1"/></group></detector-grouping>')
    with pytest.raises(AlgorithmError, match="component"):
        read_grouping_xml(str(xml))


def test_load_diff_cal_makes_the_three_workspaces(tmp_path):
    path = write_h5(
        tmp_path / "cal.h5", [10, 11, 12], [20000.0, 10000.0, 5000.0], group=[1, 1, 2], use=[1, 0, 1]
    )
    call("LoadDiffCal", Filename=path, WorkspaceName="PG3")
    cal, group, mask = mtd["PG3_cal"], mtd["PG3_group"], mtd["PG3_mask"]
    assert cal.column("difc") == [20000.0, 10000.0, 5000.0] and cal.rowCount() == 3
    assert group.readY(2)[0] == 2 and mask.isMasked(11) and not mask.isMasked(10)
    out = call(
        "AlignDetectors",
        events_ws([12], 2.0, 90.0, [0], [10000.0]),
        CalibrationWorkspace="PG3_cal",
        StoreInADS=False,
    )
    assert out.events.x[0] == 2.0
