"""`mantid.dataobjects` for scripts: the concrete workspace types, for isinstance checks."""

from __future__ import annotations

from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace as Workspace2D
from livereduce.workspace.mask import MaskWorkspace

__all__ = ["EventWorkspace", "MaskWorkspace", "Workspace2D"]


def __getattr__(name: str):
    raise AttributeError(
        f"mantid.dataobjects in livereduce's embedded engine has no '{name}'; it provides "
        f"{', '.join(__all__)} (run with engine 'mantid' where Mantid is installed for more)"
    )
