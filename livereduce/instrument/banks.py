"""Bank layouts an IDF defines: each RectangularDetector's pixel grid (x column by y row) and each bank of
tubes (tube by pixel), as MaskBTP and SumNeighbours address them.

The reader records a layout as a `Grid` over the leaf order of the block it builds (leaf `start + i·ny + j`
is element (i, j)): RectangularDetectors lay out their pixels x-major, and a bank of tubes holds its tubes'
pixels one tube after another, so a bank is always such a range. Only the ids are resolved at the end
(`grids_of`), once every idlist has been handed out. A bank is a placed assembly whose children (after
descending through single children, as Mantid's MaskBTP does) are either one RectangularDetector or tubes
that each hold the same number of single detectors; anything else keeps no layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from livereduce.instrument.attrs import integer


class Grid(NamedTuple):
    names: tuple[str, ...]  # the panel's or bank's name, then those of enclosing single-child assemblies
    start: int  # leaf index of element (0, 0) in the enclosing block
    nx: int  # tubes, or x columns of a RectangularDetector
    ny: int  # pixels per tube, or y rows
    rectangular: bool = False


@dataclass(frozen=True, eq=False)
class BankLayout:
    """One bank: `ids[i, j]` is the detector id of tube (x column) i, pixel (y row) j, both from 0 in the
    IDF's order; `rectangular` for a RectangularDetector. `names`: the component's own name, then those of
    the assemblies that hold only it (POWGEN's panel 'bank2' in 'Column13'; CORELLI's 'sixteenpack' in
    'bank1'), each of which addresses the same pixels."""

    names: tuple[str, ...]
    ids: np.ndarray
    rectangular: bool


def add_grid(grids: list[Grid], g: Grid) -> list[Grid]:
    """`grids` plus `g`; a grid covering the same leaves (a bank's single panel or sixteenpack) is one layout
    with both names, rectangular if the inner one was."""
    same = [x for x in grids if (x.start, x.nx, x.ny) == (g.start, g.nx, g.ny)]
    if not same:
        return [*grids, g]
    inner = same[0]
    merged = inner._replace(names=(*inner.names, *g.names), rectangular=inner.rectangular or g.rectangular)
    return [merged if x is inner else x for x in grids]


def _tube_length(reader, t) -> int:
    """Pixels of a tube type: its children are all single detectors (else 0: not a tube)."""
    n = 0
    for comp in t.findall("component"):
        _, child = reader._type(comp)
        if reader.kind(child) != "detector" or comp.find(".//exclude") is not None:
            return 0
        n += reader.n_locations(comp)
    return n


def grid_shape(reader, name: str, t) -> tuple[int, int, bool] | None:
    """(tubes, pixels per tube, rectangular) of one placement of assembly type `name`, or None when it is not
    a bank. Cached per type on the reader."""
    cache = reader.__dict__.setdefault("_grid_shapes", {})
    if name in cache:
        return cache[name]
    comps = [c for c in t.findall("component") if reader.n_locations(c) > 0]
    children = [(*reader._type(c), reader.n_locations(c)) for c in comps]
    total = sum(n for *_, n in children)
    shape = None
    if any(c.find(".//exclude") is not None for c in comps):
        shape = None
    elif total == 1:
        child_name, child, _ = children[0]
        kind = reader.kind(child)
        if kind == "rect":
            shape = (integer(child, "xpixels"), integer(child, "ypixels"), True)
        elif kind == "assembly":
            shape = grid_shape(reader, child_name, child)
    elif total > 1 and all(reader.kind(child) == "assembly" for _, child, _ in children):
        lengths = {_tube_length(reader, child) for _, child, _ in children}
        if len(lengths) == 1 and (n := lengths.pop()) > 0:
            shape = (total, n, False)
    cache[name] = shape
    return shape


def grids_of(grids: list[Grid], ids: np.ndarray, monitor: np.ndarray) -> tuple[BankLayout, ...]:
    """Each grid's detector ids (read-only), in document order; grids holding a monitor are left out."""
    out = []
    for g in grids:
        at = g.start + np.arange(g.nx)[:, None] * g.ny + np.arange(g.ny)[None, :]
        if at.size and (at.max() >= ids.size or monitor[at].any()):
            continue
        grid = ids[at].astype(np.int64)
        grid.setflags(write=False)
        out.append(BankLayout(g.names, grid, g.rectangular))
    return tuple(out)
