"""TableWorkspace: Mantid's table of named, typed columns, as the powder algorithms make them (LoadDiffCal's
calibration table, PDLoadCharacterizations' characterizations) and scripts read them."""

from __future__ import annotations

from typing import Any


class TableWorkspace:
    def __init__(self, columns: list[tuple[str, str]] | None = None, rows: list[list[Any]] | None = None):
        self._names = [name for name, _ in columns or []]
        self._types = [kind for _, kind in columns or []]
        self._rows: list[list[Any]] = [list(r) for r in rows or []]
        self._name = ""

    # -- the workspace protocol the registry and mtd use
    def id(self) -> str:
        return "TableWorkspace"

    def name(self) -> str:
        return self._name

    getName = name

    def clone(self) -> TableWorkspace:
        out = type(self)(list(zip(self._names, self._types, strict=True)), self._rows)
        out.__dict__.update(
            {k: v for k, v in self.__dict__.items() if k not in ("_names", "_types", "_rows")}
        )
        out._name = ""
        return out

    # -- Mantid's ITableWorkspace
    def rowCount(self) -> int:
        return len(self._rows)

    def columnCount(self) -> int:
        return len(self._names)

    def getColumnNames(self) -> list[str]:
        return list(self._names)

    keys = getColumnNames

    def addColumn(self, type: str, name: str) -> bool:
        if name in self._names:
            return False
        self._names.append(name)
        self._types.append(type)
        for r in self._rows:
            r.append(None)
        return True

    def addRow(self, row) -> None:
        values = [row[n] for n in self._names] if isinstance(row, dict) else list(row)
        if len(values) != len(self._names):
            raise ValueError(f"addRow: {len(values)} values for {len(self._names)} columns")
        self._rows.append(values)

    def _col(self, column) -> int:
        if isinstance(column, str):
            try:
                return self._names.index(column)
            except ValueError:
                raise ValueError(
                    f"no column '{column}' in table '{self._name}'; it has {self._names}"
                ) from None
        return int(column)

    def column(self, column) -> list[Any]:
        k = self._col(column)
        return [r[k] for r in self._rows]

    def row(self, i: int) -> dict[str, Any]:
        return dict(zip(self._names, self._rows[i], strict=True))

    def cell(self, a, b) -> Any:
        """cell(row, column) or cell(column name, row), as Mantid accepts both."""
        row, col = (b, a) if isinstance(a, str) else (a, b)
        return self._rows[int(row)][self._col(col)]

    def setCell(self, a, b, value) -> None:
        row, col = (b, a) if isinstance(a, str) else (a, b)
        self._rows[int(row)][self._col(col)] = value

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"TableWorkspace('{self._name}', columns={self._names}, rows={len(self._rows)})"
