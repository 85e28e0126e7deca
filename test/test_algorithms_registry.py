"""How algorithms are called: keywords, Mantid's positional rule, output naming from the assignment target,
inputs by name or object, groups, and the error for algorithms the engine lacks."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from livereduce.algorithms import SUPPORTED, registry
from livereduce.algorithms.registry import lhs_names
from livereduce.errors import AlgorithmError, UnsupportedAlgorithm
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

Rebin = registry.get("Rebin")
SumSpectra = registry.get("SumSpectra")
Integration = registry.get("Integration")


def events(n=1000, nspec=4, seed=0) -> EventWorkspace:
    rng = np.random.default_rng(seed)
    return EventWorkspace(
        Spectra.one_to_one(np.arange(1, nspec + 1)),
        EventColumns(rng.integers(0, nspec, n, dtype=np.uint32), rng.uniform(0, 1000, n)),
    )


def test_supported_is_sorted_and_covers_the_brief():
    assert list(SUPPORTED) == sorted(SUPPORTED)
    for name in (
        "Rebin",
        "SumSpectra",
        "Integration",
        "ConvertUnits",
        "DiffractionFocussing",
        "CompressEvents",
        "NormaliseByCurrent",
        "ConvertToMatrixWorkspace",
        "CropWorkspace",
        "ExtractSpectra",
        "CloneWorkspace",
        "RenameWorkspace",
        "DeleteWorkspace",
        "Plus",
        "Minus",
        "Multiply",
        "Divide",
        "SaveNexus",
        "SaveNexusProcessed",
        "LoadNexus",
        "LoadNexusProcessed",
        "Load",
        "SaveAscii",
        "CreateSampleWorkspace",
    ):
        assert name in SUPPORTED


def test_assignment_target_names_the_output(ads):
    ws = events()
    rebinned = Rebin(InputWorkspace=ws, Params="0,100,1000")
    assert ads["rebinned"] is rebinned and rebinned.name() == "rebinned"


def test_explicit_output_name_wins_over_the_target(ads):
    ws = events()
    x = Rebin(InputWorkspace=ws, OutputWorkspace="explicit", Params="0,100,1000")
    assert ads.doesExist("explicit") and not ads.doesExist("x") and x is ads["explicit"]


def test_input_by_name_and_in_place_by_name(ads):
    ads.addOrReplace("raw", events())
    Rebin(InputWorkspace="raw", OutputWorkspace="raw", Params="0,250,1000")
    assert ads["raw"].blocksize() == 4


def test_positional_arguments_fill_mandatory_properties_in_order(ads):
    ws = events()
    a = Rebin(ws, "0,100,1000")  # InputWorkspace, Params (OutputWorkspace from target)
    assert a.blocksize() == 10
    Rebin(ws, "b", "0,500,1000")  # InputWorkspace, OutputWorkspace, Params
    assert ads["b"].blocksize() == 2
    c = Rebin(ws, Params="0,250,1000", PreserveEvents=False)  # mixed: positional input, keywords after
    assert isinstance(c, HistogramWorkspace) and c.blocksize() == 4


def test_too_many_positional_arguments_is_an_error(ads):
    with pytest.raises(AlgorithmError, match="positional"):
        Rebin(events(), "out", "0,1,10", False)  # PreserveEvents is optional: it takes no positional
    with pytest.raises(AlgorithmError, match="positional"):
        c = Rebin(events(), "0,250,1000", False)  # noqa: F841


def test_missing_output_name_and_missing_property(ads):
    ws = events()
    with pytest.raises(AlgorithmError, match="OutputWorkspace"):
        Rebin(InputWorkspace=ws, Params="0,100,1000")
    with pytest.raises(AlgorithmError, match="Params is required"):
        r = Rebin(InputWorkspace=ws)  # noqa: F841


def test_unknown_keyword_is_a_type_error_naming_the_algorithm(ads):
    with pytest.raises(TypeError, match="'Parms' is an invalid keyword argument for Rebin"):
        r = Rebin(InputWorkspace=events(), Parms="0,1,2")  # noqa: F841


def test_unknown_input_name_lists_what_exists(ads):
    ads.addOrReplace("there", events())
    with pytest.raises(AlgorithmError, match=r"'missing' does not exist.*there"):
        r = SumSpectra(InputWorkspace="missing")  # noqa: F841


def _targets():
    return lhs_names(sys._getframe(1))


def test_lhs_names_reads_single_tuple_and_chained_targets():
    a = _targets()
    assert a == ("a",)
    b = [_targets()]
    assert b == [()]  # the call's value is not what is stored
    d, e = _targets()
    assert (d, e) == ("d", "e")
    f = g = _targets()
    assert f == g == ("f",)
    assert [_targets()] == [()]  # an expression, not an assignment


def test_group_input_runs_member_by_member(ads):
    group = WorkspaceGroup([events(seed=1), events(seed=2)])
    summed = SumSpectra(InputWorkspace=group)
    assert isinstance(summed, WorkspaceGroup) and len(summed) == 2
    assert [m.getNumberEvents() for m in summed] == [1000, 1000]
    assert ads.doesExist("summed_1") and ads.doesExist("summed_2")


def test_unsupported_algorithm_error_says_what_to_do():
    with pytest.raises(UnsupportedAlgorithm) as err:
        registry.get("FitPeak")
    text = str(err.value)
    assert "does not provide FitPeak" in text and "Rebin" in text and "engine 'mantid'" in text
    assert isinstance(err.value, AttributeError)
    stub = registry.unsupported_stub("FitPeak")
    with pytest.raises(UnsupportedAlgorithm, match="FitPeak"):
        stub(InputWorkspace="x")


def test_call_from_library_code_needs_no_target(ads):
    out = registry.call("Integration", events(), OutputWorkspace="integ")
    assert isinstance(out, HistogramWorkspace) and out.values.sum() == 1000 and ads["integ"] is out


def test_docs_list_exactly_the_supported_algorithms():
    from pathlib import Path

    from livereduce import algorithms

    doc = (Path(__file__).resolve().parents[1] / "docs" / "algorithms.md").read_text()
    sections = doc.split("\n### `")[1:]
    listed = [sec.split("`", 1)[0] for sec in sections]
    assert listed == algorithms.SUPPORTED
    for name, sec in zip(listed, sections, strict=True):  # each lists every property it takes
        props_line = next(line for line in sec.splitlines() if line.startswith("Properties: "))
        documented = [p.strip("`").split("=")[0].split(" ")[0] for p in props_line[12:-1].split(", ")]
        assert documented == [p.name for p in registry.spec(name).props], name
