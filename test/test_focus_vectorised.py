"""DiffractionFocussing's vectorised grouping, with expected values worked by hand: spectra of several
detectors (the first one listed in the file decides), excluded and unmapped detectors, events and histograms,
and the grouping file read again only when it changes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.algorithms._util import first_listed_group, grouped_spectra, sum_rows
from livereduce.algorithms.focus import cal_groups
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

# spectrum: detectors      file says                       → group
#   0      10, 11          10 → 7, 11 → 3                  7 (10 is listed first)
#   1      12              12 → 3                          3
#   2      20, 13          20 not in the file, 13 → 7      7
#   3      30, 16, 17      30 absent, 16 select 0, 17 group 0   none: dropped
#   4      14, 15          14 → 3, 15 → 7                  3
CAL = [(10, 1, 7), (11, 1, 3), (12, 1, 3), (13, 1, 7), (14, 1, 3), (15, 1, 7), (16, 0, 9), (17, 1, 0)]


def layout() -> Spectra:
    det = np.array([10, 11, 12, 20, 13, 30, 16, 17, 14, 15], np.int32)
    return Spectra(
        numbers=np.array([1, 2, 3, 4, 5], np.int32),
        det_ids=det,
        det_offsets=np.array([0, 2, 3, 5, 8, 10], np.int64),
        l2=np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        two_theta=np.array([0.1, 0.2, 0.3, 0.4, 0.5]),
        azimuthal=np.array([0.0, 1.0, 0.0, 0.0, 3.0]),
        l1=10.0,
        instrument="T",
    )


def write_cal(path, rows=CAL) -> str:
    text = "# number udet offset select group\n" + "".join(
        f"{k:9d}{udet:9d}  0.0000000 {select:4d} {group:4d}\n" for k, (udet, select, group) in enumerate(rows)
    )
    path.write_text(text)
    return str(path)


def test_first_listed_detector_decides_and_unmapped_spectra_get_none():
    ids = np.array([10, 11, 12, 13, 14, 15])
    groups = np.array([7, 3, 3, 7, 3, 7])
    assert first_listed_group(layout(), ids, groups).tolist() == [7, 3, 7, 0, 3]
    assert first_listed_group(layout(), ids[:0], groups[:0]).tolist() == [0, 0, 0, 0, 0]


def test_grouped_spectra_unite_detectors_and_average_geometry():
    g = grouped_spectra(layout(), [np.array([1, 4]), np.array([0, 2]), np.array([], np.int64)], [3, 7, 9])
    assert g.numbers.tolist() == [3, 7, 9]
    assert [g.detector_ids(k).tolist() for k in range(3)] == [[12, 14, 15], [10, 11, 20, 13], []]
    assert g.l2[:2].tolist() == [3.5, 2.0] and np.isnan(g.l2[2])  # (2+5)/2, (1+3)/2, no member
    assert g.two_theta[:2] == pytest.approx([0.35, 0.2])
    assert g.azimuthal[:2].tolist() == [2.0, 0.0] and (g.l1, g.instrument) == (10.0, "T")


def test_sum_rows_adds_each_row_into_its_target_and_skips_minus_one():
    src = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0], [1000.0, 2000.0]])
    assert sum_rows(src, np.array([1, 0, 1, -1]), 2).tolist() == [[10.0, 20.0], [101.0, 202.0]]


def test_focussing_events_by_hand(ads, tmp_path):
    cal = write_cal(tmp_path / "g.cal")
    index = np.array([0, 1, 2, 3, 4, 4, 0], np.uint32)
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    ws = EventWorkspace(layout(), EventColumns(index, x), np.array([0.0, 4.0, 8.0]), unit_id="dSpacing")
    f = registry.call("DiffractionFocussing", ws, OutputWorkspace="f", GroupingFileName=cal)
    assert f.getSpectrumNumbers() == [3, 7]
    assert f.getSpectrum(0).getDetectorIDs() == [12, 14, 15]
    assert f.getSpectrum(1).getDetectorIDs() == [10, 11, 20, 13]
    # spectra 1, 4 → group 3 (index 0); spectra 0, 2 → group 7 (index 1); spectrum 3's event (x=4) dropped
    assert f.events.index.tolist() == [1, 0, 1, 0, 0, 1] and f.events.x.tolist() == [1, 2, 3, 5, 6, 7]
    assert sorted(f.getSpectrum(0).getTofs()) == [2.0, 5.0, 6.0]
    assert sorted(f.getSpectrum(1).getTofs()) == [1.0, 3.0, 7.0]
    h = registry.call(
        "DiffractionFocussing", ws, OutputWorkspace="h", GroupingFileName=cal, PreserveEvents=False
    )
    assert h.values.tolist() == [[1.0, 2.0], [2.0, 1.0]]  # bins [0,4), [4,8): group 3 has 2 | 5, 6


def test_focussing_histograms_with_shared_edges_by_hand(ads, tmp_path):
    cal = write_cal(tmp_path / "g.cal")
    y = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0], [1000.0, 2000.0], [10000.0, 20000.0]])
    ws = HistogramWorkspace(y, y / 2, np.array([1.0, 2.0, 3.0]), layout(), unit_id="dSpacing")
    f = registry.call("DiffractionFocussing", ws, OutputWorkspace="f", GroupingFileName=cal)
    assert f.getSpectrumNumbers() == [3, 7]
    assert f.values.tolist() == [[10010.0, 20020.0], [101.0, 202.0]]  # rows 1 + 4, rows 0 + 2
    assert f.variances.tolist() == [[5005.0, 10010.0], [50.5, 101.0]]
    assert f.readX(0).tolist() == [1.0, 2.0, 3.0]
    assert f.spectra.l2.tolist() == [3.5, 2.0]


def test_grouping_file_is_read_again_only_when_it_changes(tmp_path):
    path = write_cal(tmp_path / "g.cal")
    ids, groups = cal_groups(path)
    assert ids.tolist() == [10, 11, 12, 13, 14, 15] and groups.tolist() == [7, 3, 3, 7, 3, 7]
    assert not ids.flags.writeable
    again = cal_groups(path)
    assert again[0] is ids  # unchanged file: the parsed arrays are reused
    st = os.stat(path)
    write_cal(tmp_path / "g.cal", [(10, 1, 4), (11, 1, 5)])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    ids, groups = cal_groups(path)
    assert ids.tolist() == [10, 11] and groups.tolist() == [4, 5]
