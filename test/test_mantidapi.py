"""The `mantid` import surface: every import form a script uses, stubs for what is missing, logging, the
static check for `livereduce check`, and a clean sys.modules afterwards."""

from __future__ import annotations

import importlib.util
import logging
import sys

import numpy as np
import pytest

from livereduce.errors import UnsupportedAlgorithm
from livereduce.mantidapi import real_mantid_available, script_imports, unsupported_calls


def mantid_modules() -> list[str]:
    return [m for m in sys.modules if m == "mantid" or m.startswith("mantid.")]


def run(text: str, **ns) -> dict:
    ns.setdefault("__name__", "__main__")
    with script_imports():
        exec(compile(text, "reduce_TEST_live_proc.py", "exec"), ns)
    return ns


def test_no_real_mantid_here_and_import_works_only_inside():
    assert importlib.util.find_spec("mantid") is None and not real_mantid_available()
    ns = run("import mantid\nversion = mantid.__version__\n")
    assert "livereduce" in ns["version"]
    assert mantid_modules() == []
    with pytest.raises(ImportError):
        import mantid  # noqa: F401


def test_every_import_form_resolves_to_livereduce(ads):
    from livereduce.algorithms import registry

    ns = run(
        "from mantid.simpleapi import Rebin\n"
        "from mantid import simpleapi\n"
        "import mantid.simpleapi as api\n"
        "from mantid.kernel import logger\n"
        "from mantid.api import AnalysisDataService, mtd\n"
        "from mantid.simpleapi import mtd as mtd2\n"
        "import mantid\n"
    )
    assert ns["Rebin"] is registry.get("Rebin") and ns["simpleapi"] is ns["api"]
    assert ns["api"].SumSpectra is registry.get("SumSpectra")
    assert ns["AnalysisDataService"] is ns["mtd"] is ns["mtd2"]
    ads.addOrReplace("in_this_session", ads_probe := _probe_workspace())
    assert ns["mtd"]["in_this_session"] is ads_probe  # the script's mtd is the active registry
    assert ns["mantid"].logger is ns["logger"]
    assert mantid_modules() == []


def test_star_import_brings_the_algorithms(ads):
    with script_imports():
        ns: dict = {}
        exec("from mantid.simpleapi import *\nws = CreateSampleWorkspace(NumBanks=1, BankPixelWidth=2)\n", ns)
    assert ns["ws"].getNumberHistograms() == 4 and "Rebin" in ns and "mtd" in ns
    assert ads.doesExist("ws")


def test_unknown_algorithm_imports_and_fails_when_called_on_the_script_line():
    with pytest.raises(UnsupportedAlgorithm, match="does not provide FitPeak") as err:
        run("from mantid.simpleapi import FitPeak\n\nFitPeak(InputWorkspace='x')\n")
    lines = [
        tb.tb_lineno
        for tb in _walk(err.value.__traceback__)
        if tb.tb_frame.f_code.co_filename == "reduce_TEST_live_proc.py"
    ]
    assert lines == [3]
    assert mantid_modules() == []


def _walk(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_unknown_lowercase_names_and_submodules_say_what_exists():
    with pytest.raises(AttributeError, match=r"has no attribute 'frobnicate'.*Rebin"):
        run("import mantid.simpleapi as api\napi.frobnicate\n")
    with pytest.raises(ImportError, match=r"mantid.plots.*provides only"):
        run("import mantid.plots\n")
    with pytest.raises(ImportError, match="UnitConversion"):
        run("from mantid.kernel import UnitConversion\n")
    with pytest.raises(AttributeError, match=r"mantid.kernel .*no 'UnitConversion'.*engine 'mantid'"):
        run("import mantid.kernel\nmantid.kernel.UnitConversion\n")
    assert mantid_modules() == []


def test_logger_goes_to_livereduce_script(caplog):
    with caplog.at_level(logging.DEBUG, logger="livereduce.script"):
        run(
            "import mantid\nmantid.logger.information('info line')\nmantid.logger.warning('warn line')\n"
            "from mantid.kernel import logger, Logger\nlogger.error('err line')\nlogger.debug('dbg')\n"
            "logger.notice('notice line')\nLogger('mine').information('named')\n"
        )
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert got == [
        ("livereduce.script", logging.INFO, "info line"),
        ("livereduce.script", logging.WARNING, "warn line"),
        ("livereduce.script", logging.ERROR, "err line"),
        ("livereduce.script", logging.DEBUG, "dbg"),
        ("livereduce.script", logging.INFO, "notice line"),
        ("livereduce.script", logging.INFO, "[mine] named"),
    ]


def test_nesting_keeps_modules_until_the_outer_exit():
    with script_imports():
        with script_imports():
            import mantid.simpleapi  # noqa: F401
        assert "mantid.simpleapi" in sys.modules
    assert mantid_modules() == []


def test_a_real_mantid_is_never_shadowed(tmp_path, monkeypatch):
    pkg = tmp_path / "mantid"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("REAL = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert real_mantid_available()
    try:
        with script_imports():
            import mantid

            assert mantid.REAL is True
    finally:
        for m in mantid_modules():
            del sys.modules[m]


def test_unsupported_calls_finds_only_missing_algorithms():
    source = (
        "from mantid.simpleapi import Rebin, FitPeak\n"
        "import mantid.simpleapi as api\n"
        "from mantid import simpleapi\n"
        "import mantid\n"
        "from mr_reduction import ReduceRefl\n"
        "def Helper(ws):\n    return ws\n"
        "class Thing:\n    pass\n"
        "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='1,1,2')\n"
        "FitPeak(InputWorkspace=output)\n"
        "api.LoadEventAndCompress(Filename='x')\n"
        "simpleapi.SumSpectra(input)\n"
        "mantid.simpleapi.SNSPowderReduction(input)\n"
        "Helper(1); Thing(); ReduceRefl(); ValueError('x'); print('x')\n"
        "FindPeaks(input)\n"
        "Alias = Rebin\nAlias(input)\n"
    )
    assert unsupported_calls(source) == [
        ("FitPeak", 11),
        ("LoadEventAndCompress", 12),
        ("SNSPowderReduction", 14),
        ("FindPeaks", 16),
    ]


def test_unsupported_calls_respects_a_foreign_star_import():
    assert unsupported_calls("from mylib import *\nDoThing(1)\n") == []
    assert unsupported_calls("from mantid.simpleapi import *\nDoThing(1)\n") == [("DoThing", 2)]


def _probe_workspace():
    from livereduce.workspace.histogram import HistogramWorkspace
    from livereduce.workspace.spectra import Spectra

    return HistogramWorkspace(
        np.zeros((1, 1)), np.zeros((1, 1)), np.array([0.0, 1.0]), Spectra.one_to_one([1])
    )


def test_str_of_a_workspace_is_its_name_as_in_mantid(ads):
    ws = _probe_workspace()
    ads.addOrReplace("live_result", ws)
    assert str(ws) == "live_result" and f"{ws}" == "live_result"
    ns = run(
        "from mantid.simpleapi import mtd, CloneWorkspace\n"
        "out = CloneWorkspace(InputWorkspace=str(w), OutputWorkspace='copy_of_' + str(w))\n"
        "same = mtd[str(w)] is w\n",
        w=ws,
    )
    assert ns["same"] and str(ns["out"]) == "copy_of_live_result"


def test_property_names_match_in_any_case(ads):
    from livereduce.algorithms.registry import call

    ws = _probe_workspace()
    out = call(
        "Rebin", inputworkspace=ws, outputworkspace="rebinned", params="0,0.5,1"
    )  # as scripts write it
    assert str(out) == "rebinned" and ads.doesExist("rebinned")
    assert out.blocksize() == 2


def test_mantid_is_imported_in_a_script_without_an_import(tmp_path, ads):
    from livereduce.scripts import compile_script, run_script

    path = tmp_path / "reduce_TEST_live_post_proc.py"
    path.write_text("mantid.logger.information('hello')\nfound = mantid.simpleapi.mtd.doesExist(output)\n")
    script = compile_script(path, "post_proc")
    ws = _probe_workspace()
    ads.addOrReplace("result", ws)
    run_script(script, ws, "result")
    assert script.namespace["mantid"].__version__.endswith("livereduce")


def test_unsupported_calls_knows_algorithms_the_script_subscribes():
    source = (
        "from mantid.api import AlgorithmFactory, PythonAlgorithm\n"
        "import mantid.simpleapi as api\n"
        "class CountAll(PythonAlgorithm):\n    pass\n"
        "AlgorithmFactory.subscribe(CountAll)\n"
        "api.CountAll(input)\n"
        "api.Other(input)\n"
    )
    assert unsupported_calls(source) == [("Other", 7)]
