"""The analysis data service: workspaces by name (Mantid's `mtd`), one registry per session.

A group's members are registered too, as `<group>_1 … _N`. Each live session (and each `livereduce check`
dry run) owns its own AnalysisDataService and makes it the *active* one in its thread while it works
(`using`). `mtd`, as scripts and algorithms import it, is the active registry of the calling thread: a
script sees its own session's workspaces, and a session the daemon abandoned keeps writing into its own
registry, never into its replacement's. Outside any session (tests, an interactive shell) a process-wide
default registry is active.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import threading
from collections.abc import Iterator
from typing import Any

from livereduce.workspace import group as _group_module
from livereduce.workspace.group import WorkspaceGroup


class AnalysisDataService:
    def __init__(self) -> None:
        self._items: dict[str, Any] = {}  # workspaces and groups
        self._lock = threading.RLock()
        self._counter = itertools.count(1)

    def addOrReplace(self, name: str, ws) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"workspace name must be a non-empty string, not {name!r}")
        with self._lock:
            ws._name = name
            self._items[name] = ws
            if isinstance(ws, WorkspaceGroup):
                for i, member in enumerate(ws.members, start=1):
                    if not member.name() or member.name() == name:
                        member._name = f"{name}_{i}"
                    self._items[member.name()] = member

    add = addOrReplace

    def __setitem__(self, name: str, ws) -> None:
        self.addOrReplace(name, ws)

    def retrieve(self, name: str):
        with self._lock:
            try:
                return self._items[name]
            except KeyError:
                raise KeyError(
                    f"'{name}' does not exist in the workspace list; it has: {sorted(self._items)}"
                ) from None

    __getitem__ = retrieve

    def doesExist(self, name: str) -> bool:
        return name in self._items

    __contains__ = doesExist
    workspaceExists = doesExist

    def retrieveWorkspaces(self, names, unrollGroups: bool = False) -> list:
        """The workspaces called `names`; with unrollGroups, a group's members instead of the group."""
        out = []
        for name in names:
            ws = self.retrieve(name)
            out.extend(ws.members if unrollGroups and isinstance(ws, WorkspaceGroup) else [ws])
        return out

    def remove(self, name: str) -> None:
        with self._lock:
            removed = self._items.pop(name, None)
            if isinstance(removed, WorkspaceGroup):
                for member in removed.members:
                    member_name = member.name()
                    if self._items.get(member_name) is member:
                        del self._items[member_name]

    def rename(self, old: str, new: str) -> None:
        with self._lock:
            ws = self.retrieve(old)
            self.remove(old)
            self.addOrReplace(new, ws)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def getObjectNames(self) -> list[str]:
        return sorted(self._items)

    def size(self) -> int:
        return len(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def unique_name(self, n: int = 5, prefix: str = "", suffix: str = "") -> str:
        while True:
            name = f"{prefix}{next(self._counter):0{n}d}{suffix}"
            if name not in self._items:
                return name

    def nbytes(self) -> int:
        with self._lock:
            seen, total = set(), 0
            for ws in self._items.values():
                if id(ws) not in seen and not isinstance(ws, WorkspaceGroup):
                    seen.add(id(ws))
                    total += ws.nbytes()
            return total


_DEFAULT = AnalysisDataService()
_ACTIVE: contextvars.ContextVar[AnalysisDataService] = contextvars.ContextVar("active_ads")


def active() -> AnalysisDataService:
    """The registry of the session running in this thread, else the process-wide default."""
    return _ACTIVE.get(_DEFAULT)


@contextlib.contextmanager
def using(ads: AnalysisDataService) -> Iterator[AnalysisDataService]:
    """Make `ads` the active registry of this thread for the duration of the block."""
    registry = active() if isinstance(ads, ActiveRegistry) else ads
    token = _ACTIVE.set(registry)
    try:
        yield registry
    finally:
        _ACTIVE.reset(token)


class ActiveRegistry:
    """`mtd`: every call goes to the active registry of the calling thread (see the module's docstring)."""

    def __getattr__(self, name: str):
        return getattr(active(), name)

    def __getitem__(self, name: str):
        return active()[name]

    def __setitem__(self, name: str, ws) -> None:
        active()[name] = ws

    def __contains__(self, name: str) -> bool:
        return name in active()

    def __len__(self) -> int:
        return len(active())

    def __repr__(self) -> str:
        return f"mtd({', '.join(active().getObjectNames())})"


mtd = ActiveRegistry()
_group_module.RESOLVE = lambda name: active().retrieve(name)  # WorkspaceGroup.add(name)
