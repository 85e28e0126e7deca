"""The workspace model: histogram and event workspaces on scipp/numpy, run logs, and the `mtd` registry."""

from livereduce.workspace.ads import AnalysisDataService, mtd
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.run import Property, Run, TimeSeries
from livereduce.workspace.spectra import Spectra

__all__ = [
    "AnalysisDataService",
    "EventColumns",
    "EventWorkspace",
    "HistogramWorkspace",
    "Property",
    "Run",
    "Spectra",
    "TimeSeries",
    "WorkspaceGroup",
    "mtd",
]
