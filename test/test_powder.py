"""The powder path: RemovePromptPulse, PDLoadCharacterizations / PDDetermineCharacterizations and
AlignAndFocusPowder on small instruments whose numbers are worked by hand."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from livereduce.algorithms import call
from livereduce.errors import AlgorithmError
from livereduce.mantidapi.properties import PropertyManagerDataService
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra

H, M_N = 6.62607015e-34, 1.67492750056e-27  # CODATA 2022


def difc(l1, l2, two_theta_deg):
    """TOF = (2 m_n L sinθ / h)·d (Bragg's law with λ = h TOF / (m_n L)), in µs/Å."""
    return 2 * M_N * (l1 + l2) * math.sin(math.radians(two_theta_deg) / 2) / H * 1e-4


# two banks of two pixels: ids 1, 2 at 2θ = 90°, ids 3, 4 at 2θ = 150°; L1 = 60 m, L2 = 2 m
IDS, TT = [1, 2, 3, 4], [90.0, 90.0, 150.0, 150.0]
DIFC = [difc(60, 2, t) for t in TT]  # 22164 and 30288 µs/Å


def instrument_events(d_by_pixel: dict[int, list[float]], run: Run | None = None) -> EventWorkspace:
    s = Spectra.one_to_one(IDS, l1=60.0, l2=2.0, two_theta=np.radians(TT), instrument="TOY")
    idx, tof = [], []
    for k, det in enumerate(IDS):
        for d in d_by_pixel.get(det, []):
            idx.append(k)
            tof.append(DIFC[k] * d)
    return EventWorkspace(s, EventColumns(np.asarray(idx, np.uint32), np.asarray(tof, float)), run=run)


def cal_file(tmp_path, use=(1, 1, 1, 1), ids=IDS, groups=(1, 1, 2, 2)):
    path = tmp_path / "toy.h5"
    with h5py.File(path, "w") as f:
        c = f.create_group("calibration")
        c["detid"] = np.asarray(ids, np.int32)
        c["difc"] = np.asarray([DIFC[IDS.index(i)] for i in ids])
        c["difa"] = np.zeros(len(ids))
        c["tzero"] = np.zeros(len(ids))
        c["group"] = np.asarray(groups, np.int32)
        c["use"] = np.asarray(use, np.int32)
    return str(path)


def focused_d(ws, params="0.5,0.001,3.0"):
    """The focused output (TOF) back in d, histogrammed."""
    d = call("ConvertUnits", ws, Target="dSpacing", StoreInADS=False)
    return call("Rebin", d, Params=params, PreserveEvents=False, StoreInADS=False)


def peak_centres(h, i):
    x = 0.5 * (h.readX(i)[1:] + h.readX(i)[:-1])
    y = h.readY(i)
    return x[y > 0], y[y > 0]


def test_align_and_focus_puts_each_bank_on_the_d_of_its_events(tmp_path):
    # silicon-like d values per bank; each focused spectrum must hold its bank's events at exactly those d
    ws = instrument_events({1: [1.0, 2.0], 2: [2.0], 3: [1.5], 4: [1.5, 1.5]})
    out = call(
        "AlignAndFocusPowder", ws, CalFileName=cal_file(tmp_path), Params="0.5,0.001,3.0", StoreInADS=False
    )
    assert out.getAxis(0).getUnit().unitID() == "TOF" and out.getNumberHistograms() == 2
    assert out.getSpectrum(0).getDetectorIDs() == [1, 2] and out.getSpectrum(1).getDetectorIDs() == [3, 4]
    h = focused_d(out)
    x0, y0 = peak_centres(h, 0)
    x1, y1 = peak_centres(h, 1)
    # the bin holding d: [floor(d/0.001)·0.001, +0.001) has centre d + 0.0005
    assert x0 == pytest.approx([1.0005, 2.0005]) and y0.tolist() == [1, 2]
    assert x1 == pytest.approx([1.5005]) and y1.tolist() == [3]


def test_events_outside_the_d_range_are_outside_the_bins_and_counted(tmp_path):
    ws = instrument_events({1: [0.2, 1.0], 3: [1.5, 5.0]})
    out = call(
        "AlignAndFocusPowder",
        ws,
        CalFileName=cal_file(tmp_path),
        Params="0.001",
        DMin=0.5,
        DMax=3.0,
        StoreInADS=False,
    )
    h = focused_d(out)
    assert h.readY(0).sum() + h.readY(1).sum() == 2 and h.events_outside_bins == 2  # d 0.2 and 5.0


def test_use_0_masks_a_pixel_and_a_pixel_without_calibration_uses_the_geometry(tmp_path):
    # pixel 2 is masked (use 0); pixel 4 is not in the file: ungrouped (group 0), so it is not focused
    path = cal_file(tmp_path, use=(1, 0, 1), ids=[1, 2, 3], groups=(1, 1, 2))
    ws = instrument_events({1: [1.0], 2: [1.0, 1.0], 3: [1.5], 4: [2.5]})
    out = call("AlignAndFocusPowder", ws, CalFileName=path, Params="0.5,0.001,3.0", StoreInADS=False)
    h = focused_d(out)
    assert h.readY(0).sum() == 1 and h.readY(1).sum() == 1
    # AlignDetectors alone: pixel 4 takes the geometric DIFC, so its event is at d = 2.5
    aligned = call("AlignDetectors", ws, CalibrationFile=path, StoreInADS=False)
    assert aligned.events.x[aligned.events.index == 3] == pytest.approx([2.5])


def test_an_empty_bank_gives_a_zero_spectrum(tmp_path):
    out = call(
        "AlignAndFocusPowder",
        instrument_events({1: [1.0]}),
        CalFileName=cal_file(tmp_path),
        Params="0.5,0.001,3.0",
        PreserveEvents=False,
        StoreInADS=False,
    )
    assert (
        out.getNumberHistograms() == 2 and out.readY(1).sum() == 0 and out.readY(0).sum() == pytest.approx(1)
    )


def test_crop_wavelength_and_tof_limits(tmp_path):
    # 2θ = 90°: λ = 2 d sin45° = 1.41421 d. d 1.0 → λ 1.414 (kept by [1.0, 2.0]); d 2.0 → λ 2.83 (cut)
    ws = instrument_events({1: [1.0, 2.0]})
    out = call(
        "AlignAndFocusPowder",
        ws,
        CalFileName=cal_file(tmp_path),
        Params="0.5,0.001,3.0",
        CropWavelengthMin=1.0,
        CropWavelengthMax=2.0,
        StoreInADS=False,
    )
    assert focused_d(out).readY(0).sum() == 1
    # TMax 30000 µs drops the d 2.0 event of pixel 1 (TOF 44328 µs) before alignment
    out = call(
        "AlignAndFocusPowder",
        ws,
        CalFileName=cal_file(tmp_path),
        Params="0.5,0.001,3.0",
        TMax=30000.0,
        StoreInADS=False,
    )
    assert focused_d(out).readY(0).sum() == 1


def test_focus_positions_edit_the_geometry(tmp_path):
    # PrimaryFlightPath and L2/Polar set the focused spectra's geometry: TOF = DIFC_new · d with the new values
    ws = instrument_events({1: [1.0], 3: [1.0]})
    out = call(
        "AlignAndFocusPowder",
        ws,
        CalFileName=cal_file(tmp_path),
        Params="0.5,0.001,3.0",
        PrimaryFlightPath=50.0,
        L2="3,3",
        Polar="90,120",
        StoreInADS=False,
    )
    assert out.spectra.l1 == 50.0 and out.spectrumInfo().twoTheta(1) == pytest.approx(math.radians(120))
    tof = np.sort(out.events.x)
    assert tof == pytest.approx(sorted([difc(50, 3, 90), difc(50, 3, 120)]), rel=1e-9)


def test_remove_prompt_pulse():
    # 60 Hz: prompt pulses every 16666.67 µs. Width 100: events at 16700 and 33400 go; 100, 16800 and 33200 stay
    # (no pulse at 0: the first pulse is the first multiple at or after the data's smallest TOF)
    s = Spectra.one_to_one([1], l1=60.0, l2=2.0, two_theta=math.pi / 2)
    tof = np.array([100.0, 16700.0, 16800.0, 33200.0, 33400.0])
    ws = EventWorkspace(s, EventColumns(np.zeros(5, np.uint32), tof))
    out = call("RemovePromptPulse", ws, Width=100.0, Frequency=60.0, StoreInADS=False)
    assert sorted(out.events.x.tolist()) == [100.0, 16800.0, 33200.0]
    with pytest.raises(AlgorithmError, match="frequency"):
        call("RemovePromptPulse", ws, Width=100.0, StoreInADS=False)


CHAR = """Instrument parameter file: PG3_geom.prm
1 3.18 90.0000
L1 60.0
#S 1 characterization runs
#L frequency(Hz) center_wavelength(angstrom) bank_num vanadium_run empty_run vanadium_back d_min d_max
60 0.533  1 17533 0 0 0.05  2.20  0000.00  16666.67
60 1.066  2 17534 17600 0 0.30  4.60  8333.33  25000.00
10 3.198  1 17538 0 0 0.05 15.40 00000.00 100000.00
"""

CHAR_V1 = """version=1
freq wl     van   van_back mt_env mt_instr PAC06 PAC08
60 1.066   27057   27051     0      0      27045 27033
"""


def test_characterizations_are_matched_by_frequency_and_wavelength(tmp_path):
    (tmp_path / "char.txt").write_text(CHAR)
    (tmp_path / "char_v1.txt").write_text(CHAR_V1)
    names = f"{tmp_path / 'char.txt'},{tmp_path / 'char_v1.txt'}"
    table, iparm, l1, specids, l2, polar, azim = call(
        "PDLoadCharacterizations", Filename=names, OutputWorkspace="char"
    )
    assert (iparm, l1, specids, l2, polar, azim) == ("PG3_geom.prm", 60.0, [1], [3.18], [90.0], [0.0])
    assert (
        table.rowCount() == 3 and table.cell(1, "vanadium") == "27057" and table.cell(1, "PAC08") == "27033"
    )
    run = Run()
    run.set("SpeedRequest1", 60.0, "Hz")
    run.set("LambdaRequest", 1.07, "Angstrom")  # within 5 % of 1.066
    run.set("SampleContainer", "PAC 08")
    ws = EventWorkspace(Spectra.one_to_one([1]), EventColumns.empty(), run=run)
    call("PDDetermineCharacterizations", InputWorkspace=ws, Characterizations="char", NormBackRun="-1")
    manager = PropertyManagerDataService.retrieve("__pd_reduction_properties")

    def pm(key):  # as scripts read it: manager[key].value
        return manager[key].value

    assert pm("frequency") == 60 and pm("wavelength") == 1.066 and pm("bank") == 2
    assert pm("vanadium") == [27057] and pm("container") == [27033] and pm("vanadium_background") == [0]
    assert pm("d_min") == [0.30] and pm("d_max") == [4.60] and pm("tof_max") == 25000.0
    # a run no row matches (30 Hz) gets the defaults
    run.set("SpeedRequest1", 30.0, "Hz")
    call(
        "PDDetermineCharacterizations",
        InputWorkspace=ws,
        Characterizations="char",
        ReductionProperties="other",
    )
    assert PropertyManagerDataService.retrieve("other")["vanadium"].value == [0]


def test_align_and_focus_takes_ranges_from_the_reduction_properties(tmp_path):
    from livereduce.mantidapi.properties import PropertyManager

    PropertyManagerDataService.addOrReplace(
        "__toy", PropertyManager({"d_min": [0.9], "d_max": [1.8], "tof_max": 0.0})
    )
    ws = instrument_events({1: [1.0, 2.0], 3: [0.8, 1.5]})
    out = call(
        "AlignAndFocusPowder",
        ws,
        CalFileName=cal_file(tmp_path),
        Params="0.001",
        ReductionProperties="__toy",
        PreserveEvents=False,
        CompressTolerance=0.0,
        StoreInADS=False,
    )
    # binned in d over [0.9, 1.8] only: d 1.0 and 1.5 are in, 2.0 and 0.8 fall outside the bins
    assert out.readY(0).sum() + out.readY(1).sum() == 2


def test_unsupported_options_are_refused(tmp_path):
    with pytest.raises(AlgorithmError, match="LowResSpectrumOffset"):
        call(
            "AlignAndFocusPowder",
            instrument_events({1: [1.0]}),
            Params="0.001",
            DMax=3.0,
            LowResSpectrumOffset=0,
            StoreInADS=False,
        )
    with pytest.raises(AlgorithmError, match="Params"):
        call("AlignAndFocusPowder", instrument_events({1: [1.0]}), StoreInADS=False)


def test_a_nan_tof_is_in_no_bin(tmp_path):
    ws = instrument_events({1: [1.0, 2.0], 3: [1.5]})
    ws.events.x[1] = np.nan
    h = focused_d(
        call(
            "AlignAndFocusPowder",
            ws,
            CalFileName=cal_file(tmp_path),
            Params="0.5,0.001,3.0",
            StoreInADS=False,
        )
    )
    assert h.values.sum() == 2 and h.events_outside_bins == 0


def test_resample_x_tof_binning_and_histogram_input(tmp_path):
    cal = cal_file(tmp_path)
    ws = instrument_events({1: [1.0, 2.0], 3: [1.5]})
    # ResampleX = -100: 100 logarithmic bins, in d then in TOF; the d range from DMin/DMax
    out = call(
        "AlignAndFocusPowder", ws, CalFileName=cal, ResampleX=-100, DMin=0.5, DMax=3.0, StoreInADS=False
    )
    assert out.blocksize() == 100 and focused_d(out).values.sum() == 3
    # Dspacing false: Params are TOF (µs); the output's first edge is the data's smallest focused TOF, DIFC·d
    out = call(
        "AlignAndFocusPowder",
        ws,
        CalFileName=cal,
        Params="10000,-0.001,70000",
        Dspacing=False,
        StoreInADS=False,
    )
    assert out.readX(0)[0] == pytest.approx(DIFC[0] * 1.0) and focused_d(out).values.sum() == 3
    # histogram input (TOF bins of 10 µs): the counts survive alignment, focusing and the return to TOF
    h = call("Rebin", ws, Params="10000,10,70000", PreserveEvents=False, StoreInADS=False)
    out = call("AlignAndFocusPowder", h, CalFileName=cal, Params="0.5,-0.001,3.0", StoreInADS=False)
    assert out.id() == "Workspace2D" and out.values.sum() == pytest.approx(3)


def test_the_compress_kernel_matches_compress_events():
    from livereduce.algorithms.binning import compress_events
    from livereduce.algorithms.powder_kernels import compress

    rng = np.random.default_rng(1)
    n, spectra = 50_000, 300
    x = np.round(rng.uniform(1000, 2000, n), 2)  # on a 0.01 grid: many events share a 0.05-wide cell
    ev = EventColumns(
        rng.integers(0, spectra, n).astype(np.uint32),
        x,
        rng.integers(0, 50, n).astype(np.uint32),
        np.arange(50) * 10,
        rng.uniform(0.5, 2, n),
        rng.uniform(0.1, 1, n),
    )
    ws = EventWorkspace(Spectra.one_to_one(np.arange(spectra)), ev)
    a, b = compress_events(ws, 0.05).events, compress(ws, 0.05).events
    assert len(b) < n
    for name in ("index", "x", "pulse", "weights", "err2"):
        assert np.allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=0), name


def test_workspaces_from_load_diff_cal_drive_align_and_focus(tmp_path):
    # the same file as workspaces: pixel 2 masked (use 0), groups 1 and 2; the focus equals the file's
    path = cal_file(tmp_path, use=(1, 0, 1, 1))
    call("LoadDiffCal", Filename=path, WorkspaceName="TOY")
    ws = instrument_events({1: [1.0], 2: [1.0], 3: [1.5], 4: [2.5]})
    by_ws = call(
        "AlignAndFocusPowder",
        ws,
        CalibrationWorkspace="TOY_cal",
        GroupingWorkspace="TOY_group",
        MaskWorkspace="TOY_mask",
        Params="0.5,0.001,3.0",
        StoreInADS=False,
    )
    by_file = call("AlignAndFocusPowder", ws, CalFileName=path, Params="0.5,0.001,3.0", StoreInADS=False)
    a, b = focused_d(by_ws), focused_d(by_file)
    assert a.values.sum(axis=1).tolist() == b.values.sum(axis=1).tolist() == [1.0, 2.0]
    assert np.array_equal(a.values, b.values)


LIVE_PROC = """
import mantid
from mantid import simpleapi

simpleapi.PDLoadCharacterizations(Filename=CHAR_FILES, OutputWorkspace="characterizations")
simpleapi.PDDetermineCharacterizations(
    InputWorkspace=input, Characterizations="characterizations", ReductionProperties="__pd_reduction_properties"
)
manager = mantid.PropertyManagerDataService.retrieve("__pd_reduction_properties")
tof = (manager["tof_min"].value, 100, manager["tof_max"].value)
simpleapi.Rebin(InputWorkspace=input, OutputWorkspace=input, Params=tof)
simpleapi.AlignAndFocusPowder(
    InputWorkspace=input, OutputWorkspace=output, CalFilename=CAL, Params=-0.0008, RemovePromptPulseWidth=0,
    ReductionProperties="__pd_reduction_properties",
)
simpleapi.ConvertUnits(InputWorkspace=output, OutputWorkspace=output, Target="dSpacing", EMode="Elastic")
"""


def test_a_powgen_style_live_proc_script(tmp_path):
    """The calls SNS's POWGEN proc script makes (characterizations from two files, the manager's values read as
    `manager[key].value`, CalFilename spelt so): the output is the focused pattern in d."""
    from livereduce.mantidapi import script_imports
    from livereduce.workspace.ads import mtd

    (tmp_path / "char.txt").write_text(CHAR)
    (tmp_path / "char_v1.txt").write_text(CHAR_V1)
    run = Run()
    run.set("SpeedRequest1", 60.0, "Hz")
    run.set("LambdaRequest", 1.066, "Angstrom")
    ws = instrument_events({1: [1.0, 2.0], 3: [1.5]}, run=run)  # TOFs 22164, 44328 and 45432 µs
    mtd.addOrReplace("chunk", ws)
    names = {
        "input": ws,
        "output": "focused",
        "CAL": cal_file(tmp_path),
        "CHAR_FILES": f"{tmp_path / 'char.txt'},{tmp_path / 'char_v1.txt'}",
    }
    with script_imports():
        exec(compile(LIVE_PROC, "reduce_TOY_live_proc.py", "exec"), names)
    out = mtd["focused"]
    # the 60 Hz / 1.066 Å row: TOF 8333.33–25000 µs keeps only the d 1.0 event of bank 1 (22164 µs); d 0.3–4.6
    assert out.getAxis(0).getUnit().unitID() == "dSpacing"
    assert out.getNumberEvents() == 1 and out.events.x[0] == pytest.approx(1.0, rel=1e-9)


def test_nomad_exp_ini_sets_every_row_s_runs(tmp_path):
    (tmp_path / "char.txt").write_text(CHAR)
    (tmp_path / "exp.ini").write_text(
        "required *******************\nDia 49262\nDiaBg 49257\nVana 49258\nVanaBg 49086\nMTc 49257\n"
        "optional ******************\nrecali yes\nHz    60\n"
    )
    table = call(
        "PDLoadCharacterizations",
        Filename=str(tmp_path / "char.txt"),
        ExpIniFilename=str(tmp_path / "exp.ini"),
        OutputWorkspace="char_nom",
    )[0]
    assert table.column("vanadium") == ["49258"] * 3 and table.column("container") == ["49257"] * 3
    assert table.column("vanadium_background") == ["49086"] * 3


def test_per_bank_d_ranges(tmp_path):
    # DMin/DMax per focused spectrum (NOMAD's characterizations): bank 1 keeps [0.9, 1.2], bank 2 [1.4, 1.6]
    ws = instrument_events({1: [1.0, 2.0, 1.5], 3: [1.5, 1.3, 1.0]})
    out = call(
        "AlignAndFocusPowder",
        ws,
        CalFileName=cal_file(tmp_path),
        Params="0.001",
        DMin="0.9,1.4",
        DMax="1.2,1.6",
        StoreInADS=False,
    )
    h = focused_d(out)
    assert h.readY(0).sum() == 1 and h.readY(1).sum() == 1  # d 1.0 in bank 1, d 1.5 in bank 2
    x0, _ = peak_centres(h, 0)
    x1, _ = peak_centres(h, 1)
    assert x0 == pytest.approx([1.0005]) and x1 == pytest.approx([1.5005])


def test_low_res_ref_removes_the_low_resolution_events(tmp_path):
    """RemoveLowResTOF's criterion (Mantid's docs): s = sqrt(Tmin/DIFC_ref) + 3.22·log10(DIFC_ref/DIFC), events
    with TOF < DIFC·s² go, i.e. d < s². DIFC = 2 m_n L sinθ / h: m_n/h = 2.527784e6 s/m², so bank 1 (L 62 m, 2θ 90°)
    22163.92 µs/Å and bank 2 (2θ 150°) 30276.48 µs/Å. With DIFC_ref = bank 2's and TMin = 10000 µs:
      bank 2: s = sqrt(10000/30276.48) = 0.574708, d_cut = 0.330289 Å;
      bank 1: s = 0.574708 + 3.22·log10(30276.48/22163.92) = 0.574708 + 0.436177 = 1.010885, d_cut = 1.021889 Å."""
    ref = DIFC[2]
    cut = [(math.sqrt(10000 / ref) + 3.22 * math.log10(ref / DIFC[k])) ** 2 for k in (0, 2)]
    assert cut == pytest.approx([1.021889, 0.330289], abs=2e-6)
    ws = instrument_events({1: [1.0, 1.1], 3: [0.34, 1.5]})  # bank 1 loses d 1.0; bank 2 keeps both
    out = call(
        "AlignAndFocusPowder",
        ws,
        CalFileName=cal_file(tmp_path),
        Params="0.3,0.001,3.0",
        TMin=10000.0,
        LowResRef=ref,
        StoreInADS=False,
    )
    h = focused_d(out, "0.3,0.001,3.0")
    assert h.readY(0).sum() == 1 and h.readY(1).sum() == 2
    assert peak_centres(h, 0)[0] == pytest.approx([1.1005])


def test_grouping_xml_by_detector_and_by_spectrum_number(tmp_path):
    # group 7: detectors 1, 2 (bank 1); group 9: spectrum numbers 3, 4 (pixels 3, 4: one-to-one spectra 1..4)
    xml = tmp_path / "g.xml"
    xml.write_text(
        '<detector-grouping><group ID="7"><detids val="1-2"/></group><group ID="9"><ids val="3,4"/></group>'
        "</detector-grouping>"
    )
    ws = instrument_events({1: [1.0], 2: [2.0], 3: [1.5], 4: [1.5]})
    out = call("AlignAndFocusPowder", ws, GroupFilename=str(xml), Params="0.5,0.001,3.0", StoreInADS=False)
    assert out.getSpectrumNumbers() == [7, 9]
    assert out.getSpectrum(1).getDetectorIDs() == [3, 4] and focused_d(out).readY(1).sum() == 2


def test_unwrap_ref_moves_events_a_frame_late(tmp_path):
    """UnwrapSNS (Mantid's docs): the fastest neutron reaches a pixel at L·Tmin/LRef; an earlier event came a frame
    late and gains Tmax − Tmin. Here L = 62 m, LRef = 61 m, TMin 20000 µs, TMax 50000 µs: the threshold is
    62·20000/61 = 20327.9 µs. Bank 1's event at d 0.91 (TOF 22163.92·0.91 = 20169.2 µs) moves by 30000 µs, to
    d = 0.91 + 30000/22163.92 = 2.26356 Å; its d 1.0 event (22163.9 µs) stays."""
    ws = instrument_events({1: [0.91, 1.0]})
    out = call(
        "AlignAndFocusPowder",
        ws,
        CalFileName=cal_file(tmp_path),
        Params="0.5,0.001,3.0",
        TMin=20000.0,
        TMax=50000.0,
        UnwrapRef=61.0,
        CompressTolerance=0.0,
        StoreInADS=False,
    )
    d = np.sort(call("ConvertUnits", out, Target="dSpacing", StoreInADS=False).events.x)
    assert d == pytest.approx([1.0, 0.91 + 30000 / DIFC[0]], rel=1e-9)
    assert 0.91 + 30000 / DIFC[0] == pytest.approx(2.26356, abs=1e-5)
    with pytest.raises(AlgorithmError, match="event data only"):
        h = call("Rebin", ws, Params="10000,10,70000", PreserveEvents=False, StoreInADS=False)
        call("AlignAndFocusPowder", h, Params="0.001", DMax=3.0, UnwrapRef=61.0, StoreInADS=False)
