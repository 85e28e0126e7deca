"""WorkspaceGroup: what multi-period data (ISIS DAE) arrives as. Algorithms apply member by member."""

from __future__ import annotations

from typing import Any


class WorkspaceGroup:
    def __init__(self, members: list):
        self.members: list[Any] = list(members)
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
        return self.members[i]

    getItem = __getitem__

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
