"""`mantid.api` for scripts: the workspace registry and the workspace types for isinstance checks."""

from __future__ import annotations

from livereduce.workspace.ads import AnalysisDataService as AnalysisDataServiceImpl
from livereduce.workspace.ads import mtd
from livereduce.workspace.base import MatrixWorkspace
from livereduce.workspace.events import EventWorkspace as IEventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace as Workspace2D

AnalysisDataService = mtd  # Mantid's AnalysisDataService is the singleton instance
Workspace = MatrixWorkspace

__all__ = [
    "AnalysisDataService",
    "AnalysisDataServiceImpl",
    "IEventWorkspace",
    "MatrixWorkspace",
    "Workspace",
    "Workspace2D",
    "WorkspaceGroup",
    "mtd",
]


def __getattr__(name: str):
    raise AttributeError(
        f"mantid.api in livereduce's embedded engine has no '{name}'; it provides "
        f"{', '.join(__all__)} (run with engine 'mantid' where Mantid is installed for more)"
    )
