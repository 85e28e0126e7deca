"""`mantid.api` for scripts: the workspace registry, workspace types, algorithm objects and the
PropertyManagerDataService."""

from __future__ import annotations

from livereduce.mantidapi.algorithm import (
    AlgorithmFactory,
    AlgorithmHandle,
    AlgorithmManager,
    DataProcessorAlgorithm,
    FileAction,
    FileProperty,
    ITableWorkspaceProperty,
    MatrixWorkspaceProperty,
    PropertyMode,
    PythonAlgorithm,
    WorkspaceGroupProperty,
    WorkspaceProperty,
)
from livereduce.mantidapi.properties import (  # it lives beside PropertyManager, where algorithms reach it
    PropertyManagerDataService,
)
from livereduce.workspace.ads import AnalysisDataService as AnalysisDataServiceImpl
from livereduce.workspace.ads import mtd
from livereduce.workspace.base import MatrixWorkspace
from livereduce.workspace.events import EventWorkspace as IEventWorkspace
from livereduce.workspace.group import WorkspaceGroup

AnalysisDataService = mtd  # Mantid's AnalysisDataService is the singleton instance


class _AnyWorkspace(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, (MatrixWorkspace, WorkspaceGroup))


class Workspace(metaclass=_AnyWorkspace):
    """Mantid's base of every workspace: `isinstance(x, Workspace)` holds for workspaces and groups."""


Algorithm = PythonAlgorithm  # `class X(Algorithm)` is how some Python algorithms are written
IAlgorithm = AlgorithmHandle


__all__ = [
    "Algorithm",
    "AlgorithmFactory",
    "AlgorithmManager",
    "AnalysisDataService",
    "AnalysisDataServiceImpl",
    "DataProcessorAlgorithm",
    "FileAction",
    "FileProperty",
    "IAlgorithm",
    "IEventWorkspace",
    "ITableWorkspaceProperty",
    "MatrixWorkspace",
    "MatrixWorkspaceProperty",
    "PropertyManagerDataService",
    "PropertyMode",
    "PythonAlgorithm",
    "Workspace",
    "WorkspaceGroup",
    "WorkspaceGroupProperty",
    "WorkspaceProperty",
    "mtd",
]


def __getattr__(name: str):
    raise AttributeError(
        f"mantid.api in livereduce's embedded engine has no '{name}'; it provides "
        f"{', '.join(__all__)} (run with engine 'mantid' where Mantid is installed for more)"
    )
