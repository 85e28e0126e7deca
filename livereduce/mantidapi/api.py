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
from livereduce.mantidapi.properties import PropertyManager
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


class PropertyManagerDataServiceImpl:
    """Named PropertyManagers (Mantid's PropertyManagerDataService): how SNS reductions pass settings."""

    def __init__(self) -> None:
        self._items: dict[str, PropertyManager] = {}

    def addOrReplace(self, name: str, manager) -> None:
        self._items[name] = manager if isinstance(manager, PropertyManager) else PropertyManager(manager)

    add = addOrReplace

    def retrieve(self, name: str) -> PropertyManager:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"'{name}' does not exist in the PropertyManagerDataService") from None

    __getitem__ = retrieve

    def doesExist(self, name: str) -> bool:
        return name in self._items

    __contains__ = doesExist

    def remove(self, name: str) -> None:
        self._items.pop(name, None)

    def clear(self) -> None:
        self._items.clear()

    def getObjectNames(self) -> list[str]:
        return sorted(self._items)

    def size(self) -> int:
        return len(self._items)

    def Instance(self) -> PropertyManagerDataServiceImpl:
        return self


PropertyManagerDataService = PropertyManagerDataServiceImpl()

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
