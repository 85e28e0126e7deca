"""Mantid API behaviour real live-reduction scripts rely on (issue #14, part 1).

Every expected value follows from Mantid's documentation (simpleapi, WorkspaceGroup, MatrixWorkspace, ...),
worked by hand in the comment beside it; none is copied from livereduce's own output.
"""

from __future__ import annotations

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
