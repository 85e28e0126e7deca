"""`livereduce check`'s reading of a script: gaps reported with their lines, only in code that runs."""

from __future__ import annotations

from livereduce.mantidapi.static import unsupported_calls, unsupported_names


def test_only_code_that_runs_is_reported():
    source = (
        "from mantid.simpleapi import *\n"  # 1
        "def never_called(ws):\n"  # 2
        "    FitPeaks(ws)\n"  # 3: never runs
        "def helper(ws):\n"  # 4
        "    return SNSPowderReduction(ws)\n"  # 5: runs (called below, through another function)
        "def main():\n"  # 6
        "    inner = lambda w: FindPeaks(w)\n"  # 7: a lambda runs where it is written
        "    return helper(input)\n"  # 8
        "class Unused:\n"  # 9
        "    def go(self):\n"  # 10
        "        LoadEventNexus(Filename='x')\n"  # 11: the class is never used
        "class Reduction(PythonAlgorithm):\n"  # 12
        "    def PyExec(self):\n"  # 13
        "        self.step()\n"  # 14
        "    def step(self):\n"  # 15
        "        GenerateEventsFilter(input)\n"  # 16: runs: the class is subscribed
        "AlgorithmFactory.subscribe(Reduction)\n"  # 17
        "main()\n"  # 18
        "if False:\n"  # 19
        "    SaveGSAS(input)\n"  # 20: module-level code counts (the branch is not evaluated)
    )
    assert unsupported_calls(source) == [
        ("SNSPowderReduction", 5),
        ("FindPeaks", 7),
        ("GenerateEventsFilter", 16),
        ("SaveGSAS", 20),
    ]


def test_decorated_functions_and_class_bodies_count():
    source = (
        "import atexit\n"
        "@atexit.register\n"
        "def at_end():\n"
        "    SaveGSAS(input)\n"
        "class Config:\n"
        "    table = CreateEmptyTableWorkspace()\n"  # a class body runs where the class statement is
    )
    assert unsupported_calls(source) == [("SaveGSAS", 4), ("CreateEmptyTableWorkspace", 6)]


def test_unsupported_mantid_names_with_lines():
    source = (
        "import mantid\n"  # 1
        "import mantid.plots\n"  # 2: no such module here
        "from mantid.kernel import DateAndTime, V3D\n"  # 3: V3D is not provided
        "from mantid.geometry import UnitCell\n"  # 4
        "from mantid import config, FileFinder\n"  # 5
        "from mantid import kernel as mk\n"  # 6
        "t = mk.FloatTimeSeriesProperty\n"  # 7: provided
        "q = mk.Quat(1, 0, 0, 0)\n"  # 8
        "mantid.api.FileFinder.Instance()\n"  # 9
        "mantid.kernel.logger.notice('x')\n"  # 10: provided
        "def unused():\n"
        "    return mantid.api.ITableWorkspace\n"  # never runs
    )
    assert unsupported_names(source) == [
        ("mantid.plots", 2),
        ("mantid.kernel.V3D", 3),
        ("mantid.geometry", 4),
        ("mantid.FileFinder", 5),
        ("mantid.kernel.Quat", 8),
        ("mantid.api.FileFinder", 9),
    ]


def test_attributes_of_imported_mantid_objects():
    source = (
        "from mantid.simpleapi import mtd\n"
        "from mantid import config\n"
        "from mantid.kernel import DateAndTime, logger\n"
        "mtd.importAll()\n"  # 4: our mtd has no importAll
        "mtd.doesExist('x')\n"  # provided
        "config.getDataSearchDirs()\n"  # provided
        "logger.notice('x')\n"  # provided
        "DateAndTime.now()\n"  # 8: not provided
        "def later():\n"
        "    mtd.clearData()\n"  # never runs
    )
    assert unsupported_names(source) == [
        ("mantid.simpleapi.mtd.importAll", 4),
        ("mantid.kernel.DateAndTime.now", 8),
    ]
