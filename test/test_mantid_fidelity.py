"""Mantid API behaviour real live-reduction scripts rely on (issue #14, part 1).

Every expected value follows from Mantid's documentation (simpleapi, WorkspaceGroup, MatrixWorkspace, ...),
worked by hand in the comment beside it; none is copied from livereduce's own output.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.algorithms.registry import IN, OUT, OUT_VALUE, Prop
from livereduce.errors import AlgorithmError
from livereduce.mantidapi import script_imports
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.spectra import Spectra

Rebin = registry.get("Rebin")


def four_events() -> EventWorkspace:
    """One spectrum, events at TOF 50, 150, 150, 950 µs."""
    return EventWorkspace(
        Spectra.one_to_one([1]), EventColumns(np.zeros(4, np.uint32), np.array([50.0, 150.0, 150.0, 950.0]))
    )


def run(text: str, **ns) -> dict:
    """Run script text as a live script sees it: every algorithm and mtd already imported."""
    ns.setdefault("__name__", "__main__")
    with script_imports():
        exec(compile("from mantid.simpleapi import *\n" + text, "reduce_TEST_live_proc.py", "exec"), ns)
    return ns


# -- 1. algorithm return values and assignment ---------------------------------------------------------------


def test_assignment_target_names_the_output_and_the_numbers_are_rebinned(ads):
    # Mantid simpleapi docs: `rebinned = Rebin(input, Params=...)` creates a workspace called 'rebinned'.
    # Params 0,100,1000 → 10 bins [0,100), [100,200), ...: 50 → bin 0, 150 twice → bin 1, 950 → bin 9.
    ns = run("rebinned = Rebin(src, Params='0,100,1000')\n", src=four_events())
    assert str(ns["rebinned"]) == "rebinned" and ads["rebinned"] is ns["rebinned"]
    np.testing.assert_array_equal(ns["rebinned"].readY(0), [1, 2, 0, 0, 0, 0, 0, 0, 0, 1])


def test_setitem_on_mtd_adds_a_second_name_and_needs_an_output_name(ads):
    # `mtd["x"] = Rebin(..., OutputWorkspace="tmp")`: Rebin stores 'tmp'; mtd's __setitem__ is addOrReplace,
    # which (AnalysisDataService::add) gives the workspace the new name, so both names reach the same object.
    ns = run("mtd['x'] = Rebin(src, OutputWorkspace='tmp', Params='0,500,1000')\n", src=four_events())
    assert ads["x"] is ads["tmp"] and ads["x"].blocksize() == 2  # 0-500, 500-1000
    assert ns["mtd"]["x"].name() == "x"
    # Without OutputWorkspace Mantid's lhs_info finds no assignment target (the value is stored by
    # STORE_SUBSCR, not into a name) and the call fails for the missing OutputWorkspace: so does ours.
    with pytest.raises(AlgorithmError, match="no name for OutputWorkspace"):
        run("mtd['y'] = Rebin(src, Params='0,500,1000')\n", src=four_events())
    assert not ads.doesExist("y")


def test_output_workspace_given_as_a_workspace_object_uses_its_name(ads):
    # simpleapi's set_properties: a workspace (DataItem) with a name is set by its name, so
    # OutputWorkspace=ws rebins in place: one workspace, still called 'data', now with 2 bins.
    ads.addOrReplace("data", four_events())
    ns = run("ws = mtd['data']\nout = Rebin(InputWorkspace=ws, OutputWorkspace=ws, Params='0,500,1000')\n")
    assert str(ns["out"]) == "data" and ads["data"] is ns["out"] and ads["data"].blocksize() == 2
    assert not ads.doesExist("out")  # an explicit OutputWorkspace wins over the assignment target
    np.testing.assert_array_equal(ads["data"].readY(0), [3, 1])  # 50,150,150 < 500 ≤ 950


def _split_two():
    """A GetEi-like algorithm with two workspace outputs (the second optional) and one value output."""

    def impl(InputWorkspace, OutputWorkspace, OutputWorkspace2):
        first = InputWorkspace.clone()
        second = InputWorkspace.clone() if OutputWorkspace2 else None
        return first, second, float(InputWorkspace.getNumberEvents())

    alg = registry.Algorithm(
        "SplitTwo",
        (
            Prop("InputWorkspace", kind=IN),
            Prop("OutputWorkspace", kind=OUT),
            Prop("OutputWorkspace2", kind=OUT, optional_ws=True),
            Prop("Total", 0.0, kind=OUT_VALUE),
        ),
        impl,
    )
    return registry._make_function(alg)


def test_several_outputs_come_back_as_a_namedtuple_in_declaration_order(ads):
    split = _split_two()
    src = four_events()
    # Three targets for three outputs: output i takes target i; the value output's target receives the value.
    a, b, total = split(src)
    assert (str(a), str(b), total) == ("a", "b", 4.0) and ads.doesExist("a") and ads.doesExist("b")
    assert not ads.doesExist("total")  # a value output is not a workspace
    # One target, three outputs: the target names the first workspace output; the optional second one is
    # left unset and so is not returned; the result is namedtuple SplitTwo_returns(OutputWorkspace, Total).
    r = split(src)
    assert type(r).__name__ == "SplitTwo_returns" and r._fields == ("OutputWorkspace", "Total")
    assert str(r.OutputWorkspace) == "r" and r.Total == 4.0
    # Two targets for three outputs: Mantid gives them to the workspace outputs in order, then finds three
    # returned values for two variables and refuses.
    with pytest.raises(AlgorithmError, match=r"trying to return 3 output\(s\) but you have provided 2"):
        _x, _y = split(src)
    # A single output is returned bare, not in a tuple.
    single = Rebin(src, Params="0,1000,1000")
    assert single.getNumberHistograms() == 1 and str(single) == "single"


def test_a_failing_algorithm_raises_runtime_error_as_in_mantid(ads):
    # Mantid's simpleapi raises RuntimeError when an algorithm fails; scripts catch exactly that.
    ns = run(
        "try:\n    Rebin(InputWorkspace='missing', OutputWorkspace='o', Params='0,1,2')\n"
        "    caught = False\nexcept RuntimeError:\n    caught = True\n"
    )
    assert ns["caught"]


# -- 2. modules and names scripts import -----------------------------------------------------------------


def test_dataobjects_types_answer_isinstance_on_our_workspaces(ads):
    from livereduce.workspace.mask import MaskWorkspace

    ns = run(
        "from mantid.dataobjects import EventWorkspace, Workspace2D, MaskWorkspace\n"
        "hist = Rebin(src, Params='0,500,1000', PreserveEvents=False)\n"
        "kinds = [isinstance(src, EventWorkspace), isinstance(src, Workspace2D),\n"
        "         isinstance(hist, Workspace2D), isinstance(hist, EventWorkspace),\n"
        "         isinstance(hist, MaskWorkspace), isinstance(mask, MaskWorkspace), isinstance(mask, Workspace2D)]\n",
        src=four_events(),
        # detectors 10 and 11, only 11 masked (Mantid: MaskWorkspace Y = 1 marks a masked detector)
        mask=MaskWorkspace.from_detectors([10, 11], [False, True]),
    )
    # Mantid's class tree: EventWorkspace and Workspace2D are siblings; MaskWorkspace derives from Workspace2D.
    assert ns["kinds"] == [True, False, True, False, False, True, True]
    mask = ns["mask"]
    assert (mask.isMasked(11), mask.isMasked(10), mask.getNumberMasked()) == (True, False, 1)


def test_kernel_property_types_config_and_date_and_time(ads):
    from livereduce.workspace.run import Run

    run_info = Run()
    run_info.set("run_number", 1234)
    run_info.set("run_title", "vanadium")
    run_info.series("SampleTemp", "K").append(np.array([0, 10**9]), np.array([4.2, 4.4]))
    ns = run(
        "from mantid.kernel import (FloatTimeSeriesProperty, IntPropertyWithValue, StringPropertyWithValue,\n"
        "                           ConfigService, config, DateAndTime)\n"
        "kinds = [isinstance(r.getProperty('SampleTemp'), FloatTimeSeriesProperty),\n"
        "         isinstance(r.getProperty('run_number'), IntPropertyWithValue),\n"
        "         isinstance(r.getProperty('run_title'), StringPropertyWithValue),\n"
        "         isinstance(r.getProperty('run_title'), IntPropertyWithValue),\n"
        "         isinstance(r.getProperty('run_number'), FloatTimeSeriesProperty)]\n"
        "log = FloatTimeSeriesProperty('setpoint')\n"
        "log.addValue('1990-01-01T00:00:10', 1.5)\n"
        "log.addValue(DateAndTime('1990-01-01T00:00:20'), 2.5)\n"
        "config['datasearch.directories'] = '/data/a;/data/b/'\n"
        "dirs = ConfigService.getDataSearchDirs()\n"
        "same = ConfigService is config and ConfigService.Instance() is config\n"
        "missing = config['no.such.key']\n"
        "t0 = DateAndTime(0)\n"
        "t = DateAndTime('1990-01-01T00:01:00')\n",
        r=run_info,
    )
    assert ns["kinds"] == [True, True, True, False, False]
    log = ns["log"]
    assert (log.size(), log.firstValue(), log.lastValue()) == (2, 1.5, 2.5)
    assert isinstance(log, ns["FloatTimeSeriesProperty"])
    # getDataSearchDirs: the ';'-separated list of datasearch.directories, each a directory path ending '/'
    assert ns["dirs"] == ["/data/a/", "/data/b/"] and ns["same"] and ns["missing"] == ""
    # Mantid's DateAndTime counts ns from 1990-01-01T00:00:00: 0 is that instant, one minute later is 60e9.
    assert ns["t0"].toISO8601String() == "1990-01-01T00:00:00"
    assert ns["t"].totalNanoseconds() == 60 * 10**9 and (ns["t"] - ns["t0"]).total_seconds() == 60.0
    # log times are stored as Unix ns: 1990-01-01 is 631152000 s after 1970-01-01
    assert log.times.tolist() == [(631_152_000 + 10) * 10**9, (631_152_000 + 20) * 10**9]


def test_mtd_workspace_exists_and_algorithm_manager_handles(ads):
    ads.addOrReplace("raw", four_events())
    ns = run(
        "from mantid.api import AlgorithmManager, AnalysisDataService\n"
        "exists = [mtd.workspaceExists('raw'), AnalysisDataService.workspaceExists('nothing')]\n"
        "alg = AlgorithmManager.create('Rebin')\n"
        "alg.initialize()\n"
        "alg.setProperty('InputWorkspace', 'raw')\n"
        "alg.setProperty('OutputWorkspace', 'managed')\n"
        "alg.setProperty('Params', '0,500,1000')\n"
        "alg.execute()\n"
        "managed = alg.getProperty('OutputWorkspace').value\n"
        "child = AlgorithmManager.createUnmanaged('Rebin')\n"
        "child.initialize()\n"
        "child.setChild(True)\n"
        "child.setProperty('InputWorkspace', mtd['raw'])\n"
        "child.setProperty('Params', '0,250,1000')\n"
        "child.execute()\n"
        "kept = child.getProperty('OutputWorkspace').value\n"
        "params = child.getProperty('Params').value\n"
    )
    assert ns["exists"] == [True, False]
    # a managed algorithm stores its output; 0,500,1000 → 2 bins holding 3 and 1 events
    assert ads["managed"] is ns["managed"] and ns["managed"].readY(0).tolist() == [3, 1]
    # a child algorithm keeps its output out of the ADS; 0,250,1000 → 4 bins: 50,150,150 | - | - | 950
    assert ns["kept"].readY(0).tolist() == [3, 0, 0, 1] and ads.getObjectNames() == ["managed", "raw"]
    assert ns["params"] == "0,250,1000"


SCALE_COUNTS = """
from mantid.api import AlgorithmFactory, PythonAlgorithm, MatrixWorkspaceProperty, PropertyManagerDataService
from mantid.kernel import Direction, FloatBoundedValidator, PropertyManager

class ScaleCounts(PythonAlgorithm):
    def PyInit(self):
        self.declareProperty(MatrixWorkspaceProperty("InputWorkspace", "", Direction.Input))
        self.declareProperty("Factor", 1.0, FloatBoundedValidator(lower=0.0))
        self.declareProperty(MatrixWorkspaceProperty("OutputWorkspace", "", Direction.Output))
        self.declareProperty("Total", 0.0, direction=Direction.Output)

    def PyExec(self):
        ws = self.getProperty("InputWorkspace").value
        summed = Rebin(ws, Params="0,1000,1000", PreserveEvents=False, StoreInADS=False)
        scaled = summed * self.getProperty("Factor").value
        self.setProperty("OutputWorkspace", scaled)
        self.setProperty("Total", float(scaled.readY(0).sum()))

AlgorithmFactory.subscribe(ScaleCounts)
import mantid.simpleapi as sapi
out, total = sapi.ScaleCounts(src, Factor=2.0)
from mantid.simpleapi import ScaleCounts as imported
pm = PropertyManager()
pm.declareProperty("vanadium", 1234)
PropertyManagerDataService.addOrReplace("__pd_reduction_properties", pm)
van = PropertyManagerDataService.retrieve("__pd_reduction_properties").getProperty("vanadium").value
"""


def test_python_algorithm_subscribed_is_callable_with_mantid_rules(ads, monkeypatch):
    from livereduce.mantidapi import simpleapi

    monkeypatch.setattr(registry, "_ALGORITHMS", dict(registry._ALGORITHMS))  # forget ScaleCounts after
    monkeypatch.setattr(registry, "_FUNCTIONS", dict(registry._FUNCTIONS))
    monkeypatch.setattr(simpleapi, "__all__", list(simpleapi.__all__))
    try:
        ns = run(SCALE_COUNTS, src=four_events())
        # four events in one 0-1000 bin, times the factor 2: 8 counts; the two outputs unpack in order,
        # the workspace named after its target.
        assert ns["total"] == 8.0 and ns["out"].readY(0).tolist() == [8.0] and str(ns["out"]) == "out"
        assert ns["imported"] is registry.get("ScaleCounts") and ns["van"] == 1234
        with pytest.raises(AlgorithmError, match="Factor"):  # FloatBoundedValidator(lower=0)
            run(
                "import mantid.simpleapi as sapi\nbad = sapi.ScaleCounts(src, Factor=-1.0)\n",
                src=four_events(),
            )
    finally:
        vars(simpleapi).pop("ScaleCounts", None)
        simpleapi._ALGS.pop("ScaleCounts", None)


# -- 3. workspace methods ------------------------------------------------------------------------------------


def three_spectra(**extra) -> EventWorkspace:
    """L1 10 m; spectra of detectors 1, 2, 3 at L2 2, 2, 3 m, 2θ 90°, 45°, 60°, azimuth 0°, 90°, 180°;
    events at pulses 2024-01-01T00:00:05 and :07 (one each) plus one at :06."""
    spectra = Spectra.one_to_one(
        [1, 2, 3],
        l1=10.0,
        l2=[2.0, 2.0, 3.0],
        two_theta=[np.pi / 2, np.pi / 4, np.pi / 3],
        azimuthal=[0.0, np.pi / 2, np.pi],
        instrument="TESTINST",
    )
    for key, value in extra.items():
        setattr(spectra, key, value)
    t0 = np.datetime64("2024-01-01T00:00:05", "ns").astype(np.int64)
    pulses = np.array([t0, t0 + 2 * 10**9, t0 + 10**9], np.int64)  # 05, 07, 06: not in time order
    return EventWorkspace(
        spectra,
        EventColumns(
            np.array([0, 1, 2], np.uint32), np.array([100.0, 200.0, 300.0]), np.array([0, 1, 2]), pulses
        ),
    )


class StubGeometry:
    """The InstrumentGeometry interface the workspace reads (livereduce.instrument builds the real one)."""

    det_ids = np.array([1, 2, 3])
    positions = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, -1.0, 1.0]])
    source = np.array([0.0, 0.0, -20.0])
    sample = np.array([0.0, 0.0, 0.0])
    params: ClassVar[dict] = {"Gauss": 0.5, "mode": "HighFlux", "enabled": True}

    def index_of(self, ids):
        return np.searchsorted(self.det_ids, np.asarray(ids))

    def parameter(self, name, component=None):
        return self.params.get(name)

    def number_parameter(self, name, component=None):
        v = self.params.get(name)
        return [float(v)] if isinstance(v, float) else []

    def string_parameter(self, name, component=None):
        v = self.params.get(name)
        return [v] if isinstance(v, str) else []


def test_instrument_source_sample_and_detectors_in_mantids_frame():
    ws = three_spectra()
    inst = ws.getInstrument()
    # Mantid's frame: beam along +z, sample at the origin, so the source is at (0, 0, -L1).
    assert inst.getName() == "TESTINST"
    assert list(inst.getSource().getPos()) == [0.0, 0.0, -10.0] and list(inst.getSample().getPos()) == [
        0,
        0,
        0,
    ]
    assert inst.getSample().getPos().distance(inst.getSource().getPos()) == 10.0
    # spectrum 1: L2 2, 2θ 45°, φ 90° → 2·(sin45·cos90, sin45·sin90, cos45) = (0, √2, √2)
    det = ws.getDetector(1)
    np.testing.assert_allclose(list(det.getPos()), [0.0, np.sqrt(2), np.sqrt(2)], atol=1e-12)
    beam = inst.getSample().getPos() - inst.getSource().getPos()
    assert det.getTwoTheta(inst.getSample().getPos(), beam) == pytest.approx(np.pi / 4)
    assert det.getID() == 2 and inst.getDetector(3).getPos().X() == pytest.approx(-3 * np.sqrt(3) / 2)
    # no instrument definition: no parameters, and Mantid answers an absent parameter with []
    assert inst.getNumberParameter("Gauss") == [] and inst.getStringParameter("mode") == []


def test_instrument_parameters_and_positions_from_the_definition():
    ws = three_spectra(geometry=StubGeometry())
    inst = ws.getInstrument()
    assert inst.getNumberParameter("Gauss") == [0.5] and inst.getStringParameter("mode") == ["HighFlux"]
    assert inst.getNumberParameter("mode") == [] and inst.getStringParameter("absent") == []
    assert inst.getBoolParameter("enabled") == [True]
    assert list(inst.getSource().getPos()) == [0.0, 0.0, -20.0]  # the definition's source, not -L1
    # detector 2 sits at (0, 1, 1): L2 √2, 2θ 45° from the +z beam
    info = ws.spectrumInfo()
    assert info.l2(1) == pytest.approx(np.sqrt(2)) and info.twoTheta(1) == pytest.approx(np.pi / 4)
    assert info.l1() == 20.0


def test_spectrum_info_and_detector_info_with_a_mask():
    ws = three_spectra(masked=np.array([False, True, False]))
    info = ws.spectrumInfo()
    # spectrum 2: L2 3, 2θ 60°, φ 180° → (-3·sin60, 0, 3·cos60) = (-2.598…, 0, 1.5)
    np.testing.assert_allclose(list(info.position(2)), [-3 * np.sqrt(3) / 2, 0.0, 1.5], atol=1e-12)
    assert (info.size(), info.l1(), info.l2(2)) == (3, 10.0, pytest.approx(3.0))
    assert info.twoTheta(2) == pytest.approx(np.pi / 3) and info.twoTheta(0) == pytest.approx(np.pi / 2)
    assert [info.isMasked(i) for i in range(3)] == [False, True, False]
    dets = ws.detectorInfo()
    assert dets.size() == 3 and dets.indexOf(2) == 1 and dets.isMasked(dets.indexOf(2))
    assert dets.l2(0) == pytest.approx(2.0) and list(dets.samplePosition()) == [0, 0, 0]


def test_workspace_methods_scripts_call():
    from livereduce.workspace.dates import DateAndTime

    ws = three_spectra()
    # events at pulses :05, :07, :06 → min :05, max :07 (Mantid returns DateAndTime)
    assert ws.getPulseTimeMin() == DateAndTime("2024-01-01T00:00:05")
    assert ws.getPulseTimeMax().toISO8601String() == "2024-01-01T00:00:07"
    assert ws.getSpectrumNumbers() == [1, 2, 3] and ws.isHistogramData()
    assert not ws.hasMaskedBins(0) and ws.readDx(0).tolist() == [0.0]  # one bin, no X errors kept
    assert ws.YUnit() == "Counts" and ws.YUnitLabel() == "Counts"
    ws.setYUnitLabel("Normalised counts")
    assert ws.YUnitLabel() == "Normalised counts" and ws.YUnit() == "Counts"
    # Mantid: setTitle also sets the run's run_title, which getTitle reads back
    ws.setTitle("vanadium rod")
    assert ws.getTitle() == "vanadium rod" and ws.getRun().getProperty("run_title").value == "vanadium rod"
    assert ws.getComment() == ""
    hist = registry.call("Rebin", ws, OutputWorkspace="h", Params="0,400,400", PreserveEvents=False)
    with pytest.raises(RuntimeError, match="no pulse times"):
        hist.getPulseTimeMin()


# -- 4. WorkspaceGroup -----------------------------------------------------------------------------------------


def test_group_api_as_mantids_documentation_shows_it(ads):
    from livereduce.workspace.group import WorkspaceGroup

    # WorkspaceGroup docs: GroupWorkspaces of ws1, ws2, ws3 → getNames() == ['ws1', 'ws2', 'ws3']
    ns = run(
        "ws1 = CloneWorkspace(src)\nws2 = CloneWorkspace(src)\nws3 = CloneWorkspace(src)\n"
        "wsGroup = GroupWorkspaces([ws1, ws2, ws3])\n"
        "names = wsGroup.getNames()\n"
        "entries = [wsGroup.getItem(i).getName() for i in range(wsGroup.getNumberOfEntries())]\n"
        "looped = [ws.name() for ws in wsGroup]\n"
        "found = ['ws2' in wsGroup, 'ws9' in wsGroup]\n",
        src=four_events(),
    )
    group = ns["wsGroup"]
    assert ns["names"] == ns["entries"] == ns["looped"] == ["ws1", "ws2", "ws3"]
    assert ns["found"] == [True, False] and group.size() == len(group) == 3 and group.id() == "WorkspaceGroup"
    kinds = run(
        "from mantid.api import Workspace, MatrixWorkspace, WorkspaceGroup\n"
        "kinds = [isinstance(g, Workspace), isinstance(g, MatrixWorkspace), isinstance(g, WorkspaceGroup),\n"
        "         isinstance(g[0], Workspace), isinstance(g[0], MatrixWorkspace), isinstance(1, Workspace)]\n",
        g=group,
    )["kinds"]
    assert kinds == [True, False, True, True, True, False]  # Mantid: both derive from Workspace
    assert group[1] is ns["ws2"] and group.getItem("ws3") is ns["ws3"]
    with pytest.raises(IndexError):
        group[3]
    # docs: workspaces added to a group outside the ADS have no names (['', '', '']) until the group is
    # added, when they become group1_1, group1_2, group1_3
    loose = WorkspaceGroup()
    for _ in range(3):
        loose.addWorkspace(four_events())
    assert loose.getNames() == ["", "", ""]
    ads.add("group1", loose)
    assert loose.getNames() == ["group1_1", "group1_2", "group1_3"] and ads.doesExist("group1_2")
    # add by name: the workspace of the ADS joins the group
    ads.addOrReplace("extra", four_events())
    loose.add("extra")
    assert loose.getNumberOfEntries() == 4 and "extra" in loose


def test_an_algorithm_on_a_group_runs_per_member_with_mantids_output_names(ads):
    # Mantid's group processing: a group whose members are all "<group>_<n>" (similar names) gives outputs
    # "<out>_<n>"; otherwise "<input member name>_<out>". Each member is rebinned on its own: 0,500,1000 →
    # 2 bins holding [3, 1] (events at 50, 150, 150 | 950).
    ads.add("period", run_group := _group_of_two())
    assert run_group.getNames() == ["period_1", "period_2"]  # similar names
    ns = run(
        "binned = Rebin(mtd['period'], Params='0,500,1000')\n"
        "ws1 = CloneWorkspace(src)\nws2 = CloneWorkspace(src)\n"
        "wsGroup = GroupWorkspaces('ws1,ws2')\n"
        "wsRebinned = Rebin(wsGroup, Params='0,500,1000')\n",
        src=four_events(),
    )
    binned = ns["binned"]
    assert binned.getNames() == ["binned_1", "binned_2"] and ads["binned"] is binned
    assert [ads[n].readY(0).tolist() for n in binned.getNames()] == [[3, 1], [3, 1]]
    # ws1, ws2 are not named wsGroup_<n>: the member names lead
    assert ns["wsRebinned"].getNames() == ["ws1_wsRebinned", "ws2_wsRebinned"]
    assert ads["ws1_wsRebinned"].blocksize() == 2 and ads["ws1"].blocksize() == 1  # inputs untouched
    # the output named as the input group: members are replaced under their own names
    run("Rebin(InputWorkspace='period', OutputWorkspace='period', Params='0,250,1000')\n")
    assert ads["period"].getNames() == ["period_1", "period_2"] and ads["period_1"].blocksize() == 4
    # DeleteWorkspace on a group removes its members too (Mantid docs: "To Delete an entire group")
    run("DeleteWorkspace('wsGroup')\n")
    assert not ads.doesExist("wsGroup") and not ads.doesExist("ws1") and not ads.doesExist("ws2")


def _group_of_two():
    from livereduce.workspace.group import WorkspaceGroup

    return WorkspaceGroup([four_events(), four_events()])


def test_store_in_ads_false_keeps_the_output_out_of_mtd(ads):
    # simpleapi's StoreInADS=False: the algorithm runs as a child; its output is returned, not registered,
    # and needs no name (neither OutputWorkspace nor an assignment target).
    ns = run("kept = Rebin(src, Params='0,500,1000', StoreInADS=False)\n", src=four_events())
    assert ns["kept"].readY(0).tolist() == [3, 1] and ads.getObjectNames() == []
    assert run("print(Rebin(src, Params='0,500,1000', StoreInADS=False).blocksize())\n", src=four_events())
    assert ads.getObjectNames() == []
