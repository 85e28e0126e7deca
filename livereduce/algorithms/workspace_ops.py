"""Workspace bookkeeping: CloneWorkspace, RenameWorkspace, DeleteWorkspace, GroupWorkspaces, AddSampleLog,
CreateWorkspace."""

from __future__ import annotations

import numpy as np

from livereduce.algorithms._util import float_list
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm, resolve_workspace
from livereduce.errors import AlgorithmError
from livereduce.workspace.ads import mtd
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra


@algorithm("CloneWorkspace", [Prop("InputWorkspace", kind=IN), Prop("OutputWorkspace", kind=OUT)])
def _clone(InputWorkspace, OutputWorkspace):
    """A deep copy."""
    return InputWorkspace.clone()


@algorithm(
    "RenameWorkspace",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("RenameMonitors", False),
        Prop("OverwriteExisting", True),
    ],
    per_member=False,
)
def _rename(InputWorkspace, OutputWorkspace, RenameMonitors, OverwriteExisting):
    """Give a workspace a new name in the workspace list (the old name disappears)."""
    ws = InputWorkspace
    if not OverwriteExisting and mtd.doesExist(OutputWorkspace) and mtd[OutputWorkspace] is not ws:
        raise AlgorithmError(f"RenameWorkspace: '{OutputWorkspace}' exists and OverwriteExisting is false")
    if ws.name() and mtd.doesExist(ws.name()) and mtd[ws.name()] is ws:
        mtd.remove(ws.name())
    if isinstance(ws, WorkspaceGroup):
        for m in ws.members:
            m._name = ""  # members follow the group's new name (<new>_1 ...)
    return ws


@algorithm("DeleteWorkspace", [Prop("Workspace", kind=IN)], per_member=False)
def _delete(Workspace):
    """Remove a workspace (or group) from the workspace list."""
    name = Workspace.name()
    if name and mtd.doesExist(name):
        mtd.remove(name)


@algorithm("GroupWorkspaces", [Prop("InputWorkspaces"), Prop("OutputWorkspace", kind=OUT)], per_member=False)
def _group(InputWorkspaces, OutputWorkspace):
    """Group workspaces (names or objects; a comma-separated string or a list)."""
    items = InputWorkspaces.split(",") if isinstance(InputWorkspaces, str) else list(InputWorkspaces)
    return WorkspaceGroup(
        [
            resolve_workspace(i.strip() if isinstance(i, str) else i, "GroupWorkspaces", "InputWorkspaces")
            for i in items
        ]
    )


@algorithm(
    "AddSampleLog",
    [
        Prop("Workspace", kind=IN),
        Prop("LogName"),
        Prop("LogText", ""),
        Prop("LogUnit", ""),
        Prop("LogType", "String"),
        Prop("NumberType", "AutoDetect"),
    ],
)
def _add_sample_log(Workspace, LogName, LogText, LogUnit, LogType, NumberType):
    """Set a single-valued run property (String, or Number: int/double)."""
    value = LogText
    if LogType == "Number":
        try:
            value = (
                int(LogText)
                if NumberType in ("Int", "AutoDetect") and str(LogText).strip().lstrip("+-").isdigit()
                else float(LogText)
            )
        except ValueError:
            raise AlgorithmError(f"AddSampleLog: LogText {LogText!r} is not a number") from None
    elif LogType not in ("String", "Number Series"):
        raise AlgorithmError(f"AddSampleLog: LogType {LogType!r} is not supported; use String or Number")
    Workspace.getRun().set(LogName, value, LogUnit)


@algorithm(
    "CreateWorkspace",
    [
        Prop("OutputWorkspace", kind=OUT),
        Prop("DataX"),
        Prop("DataY"),
        Prop("DataE", None),
        Prop("NSpec", 1),
        Prop("UnitX", "TOF"),
        Prop("Distribution", False),
    ],
    per_member=False,
)
def _create_workspace(OutputWorkspace, DataX, DataY, DataE, NSpec, UnitX, Distribution):
    """A histogram workspace from flat X, Y, E lists (X shared or one block per spectrum; no E: zero errors)."""
    y = np.asarray(float_list(DataY, "DataY")).reshape(int(NSpec), -1)
    x = np.asarray(float_list(DataX, "DataX"))
    if x.size == y.shape[1]:
        raise AlgorithmError(
            "CreateWorkspace: point data (len(DataX) == bins) is not supported; give bin edges"
        )
    x = x if x.size == y.shape[1] + 1 else x.reshape(int(NSpec), -1)
    e = np.zeros_like(y) if DataE is None else np.asarray(float_list(DataE, "DataE")).reshape(y.shape)
    n = y.shape[0]
    spectra = Spectra.one_to_one(np.arange(1, n + 1))
    return HistogramWorkspace(y, e * e, x, spectra, None, UnitX or "Empty", distribution=bool(Distribution))
