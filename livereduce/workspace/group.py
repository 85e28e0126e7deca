"""WorkspaceGroup: what multi-period data (ISIS DAE) arrives as. Algorithms apply member by member.

Mantid's API: iteration, indexing, `getItem(index or name)`, `getNumberOfEntries`/`size`, `getNames`,
`name in group`, `add(name)` (a workspace of the registry), `addWorkspace(ws)`, `remove(name)`, `isEmpty`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# `group.add("name")` looks the name up in the active registry; livereduce.workspace.ads installs the lookup
# (the registry imports this module, so this one cannot import it back).
RESOLVE: Callable[[str], Any] | None = None


class WorkspaceGroup:
    def __init__(self, members: list | None = None):
        self.members: list[Any] = list(members or [])
        self._name = ""

    def name(self) -> str:
        return self._name

    getName = name

    def id(self) -> str:
        return "WorkspaceGroup"

    def size(self) -> int:
        return len(self.members)

    getNumberOfEntries = size

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter(self.members)

    def __getitem__(self, i: int):
        if not -len(self.members) <= i < len(self.members):
            raise IndexError(
                f"index {i} out of range for group '{self._name}' of {len(self.members)} members"
            )
        return self.members[i]

    def getItem(self, key: int | str):
        """The member at an index, or the member with a name."""
        if isinstance(key, str):
            for m in self.members:
                if m.name() == key:
                    return m
            raise KeyError(f"'{key}' is not a member of group '{self._name}'; it holds {self.getNames()}")
        return self[key]

    def __contains__(self, item) -> bool:
        """`"name" in group` (by name, as Mantid's "in"), or a workspace object."""
        if isinstance(item, str):
            return any(m.name() == item for m in self.members)
        return any(m is item for m in self.members)

    contains = __contains__

    def isEmpty(self) -> bool:
        return not self.members

    def add(self, name: str) -> None:
        """Add the workspace called `name` in the workspace list."""
        if RESOLVE is None:
            raise RuntimeError("WorkspaceGroup.add needs the workspace registry (livereduce.workspace.ads)")
        self.addWorkspace(RESOLVE(name))

    def addWorkspace(self, ws) -> None:
        if ws not in self:
            self.members.append(ws)

    def remove(self, name: str) -> None:
        """Take the member called `name` out of the group (it stays in the workspace list)."""
        self.members = [m for m in self.members if m.name() != name]

    def areNamesSimilar(self) -> bool:
        """Every member is called `<group name>_<suffix>` (Mantid's rule for naming group-processing outputs)."""
        return bool(self.members) and all(
            m.name().rpartition("_")[1] and m.name().rpartition("_")[0] == self._name for m in self.members
        )

    def getNames(self) -> list[str]:
        return [m.name() for m in self.members]

    def clone(self) -> WorkspaceGroup:
        return WorkspaceGroup([m.clone() for m in self.members])

    def nbytes(self) -> int:
        return sum(m.nbytes() for m in self.members)

    def getRun(self):
        return self.members[0].getRun()

    def __str__(self) -> str:
        """The group's name, as in Mantid."""
        return self._name

    def __repr__(self) -> str:
        return f"WorkspaceGroup('{self._name}', {len(self.members)} members)"
