"""Mantid instrument definition files (IDF XML) → `InstrumentGeometry`.

Supported, as real SNS files use them: nested <component>/<type> assemblies; <location> and <locations> in
x/y/z or r/t/p, rot + axis-x/y/z with nested <rot>/<trans> chains; <parameter>s inside a <location> that set
x/y/z, r/t/p-position or rotx/y/z from a <value>; <exclude sub-part>; <idlist> (val, start/end/step) handed
out in document order; RectangularDetector (idstart, idfillbyfirst, idstepbyrow, idstep); monitors
(is="monitor", mark-as="monitor"); Source and SamplePos; <defaults> angle unit and reference frame;
<parameter>s in components, types and <component-link>s (values only). Refused with a ValueError: <facing> on
anything but a single detector or monitor (it turns the component, which moves only its parts) and
components-are-facing, <offsets spherical="delta">, Structured and Grid detectors. Log-driven parameters
(<logfile>) take their value from `logs` (through the logfile's eq formula) and are skipped without.

Bank layouts (banks.py): each RectangularDetector's x-by-y id grid and each bank of tubes' tube-by-pixel
grid are kept as `InstrumentGeometry.banks`, for MaskBTP and SumNeighbours.

Speed: the leaves of an assembly type placed more than once are computed once, in its own frame, and placed
with one matrix product per placement, so 10^5–10^6 pixels cost one numpy pass each, not a Python loop per
pixel. Every pixel count is totalled from the declared numbers before any array is made (`max_pixels`).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from livereduce.instrument.attrs import ParameterValue, describe, integer, number, parameter_value
from livereduce.instrument.banks import Grid, add_grid, grid_shape, grids_of
from livereduce.instrument.model import InstrumentGeometry, ReferenceFrame
from livereduce.instrument.transforms import IDENTITY, place, rotation, spherical

MAX_PIXELS = 1 << 22  # 4.2 M detectors: above any SNS instrument (SNAP 1.2 M); ~250 MB of arrays at most
MAX_DEPTH = 100  # nesting of types
ID_MIN, ID_MAX = -(2**31), 2**31 - 1  # detector ids are 32-bit (Mantid's detid_t, ADARA's pixel word)
MAX_COORDINATE = 1e6  # metres: positions beyond are a unit or typing error (or overflowed)
MAX_LOCATIONS = 1 << 16  # per <locations> element (expanded in Python; real files: a tube's few hundred)

_LEAF_KINDS = {"detector": "detector", "monitor": "monitor", "source": "source", "samplepos": "sample"}
_RECT = {"rectangulardetector"}
_UNSUPPORTED = {"structureddetector": "StructuredDetector", "griddetector": "GridDetector"}
_POSITION_PARAMS = {"x", "y", "z", "r-position", "t-position", "p-position", "rotx", "roty", "rotz"}


@dataclass
class _Block:
    """Leaves of a subtree in that subtree's frame. `need`: the id still comes from an enclosing idlist."""

    pos: np.ndarray
    ids: np.ndarray
    need: np.ndarray
    monitor: np.ndarray
    marks: list[tuple[str, np.ndarray]]
    grids: list[Grid] = field(default_factory=list)  # bank layouts over leaf positions (banks.py)

    @staticmethod
    def empty() -> _Block:
        return _Block(np.empty((0, 3)), np.empty(0, np.int64), np.empty(0, bool), np.empty(0, bool), [])

    def placed(self, rot: np.ndarray, trans: np.ndarray) -> _Block:
        if rot is IDENTITY and not trans.any():  # <location/>: most assembly levels of real files
            return self
        marks = [(k, rot @ p + trans) for k, p in self.marks]
        return _Block(place(self.pos, rot, trans), self.ids, self.need, self.monitor, marks, self.grids)

    @staticmethod
    def concat(blocks: list[_Block]) -> _Block:
        if not blocks:
            return _Block.empty()
        if len(blocks) == 1:
            return blocks[0]
        return _Block(
            np.concatenate([b.pos for b in blocks]),
            np.concatenate([b.ids for b in blocks]),
            np.concatenate([b.need for b in blocks]),
            np.concatenate([b.monitor for b in blocks]),
            [m for b in blocks for m in b.marks],
            [
                g._replace(start=g.start + off)
                for b, off in zip(blocks, np.cumsum([0] + [b.ids.size for b in blocks[:-1]]), strict=True)
                for g in b.grids
            ],
        )


def _ids_fit(el: ET.Element, *values: int) -> None:
    """Refuse ids (or id arithmetic) outside 32 bits before numpy sees them (it would overflow)."""
    for v in values:
        if not ID_MIN <= v <= ID_MAX:
            raise ValueError(f"{describe(el)}: detector id {v} is outside 32 bits")


class _Reader:
    def __init__(self, root: ET.Element, max_pixels: int, logs: Mapping[str, float]):
        for el in root.iter():  # namespaces off: the IDF schema's is on every tag
            if isinstance(el.tag, str) and "}" in el.tag:
                el.tag = el.tag.rsplit("}", 1)[1]
        if root.tag != "instrument":
            raise ValueError(f"root element is <{root.tag}>, not <instrument>")
        self.root, self.max_pixels, self.logs = root, max_pixels, logs
        self.overrides: list[ET.Element] = []  # a parameter file's <component-link>s
        self.name = root.get("name", "")
        self.deg = self._defaults()
        self.types: dict[str, ET.Element] = {}
        for t in root.findall("type"):
            name = t.get("name")
            if not name:
                raise ValueError(f"{describe(t)} without a name")
            if name in self.types:
                raise ValueError(f"{describe(t)} defined twice")
            self.types[name] = t
        self.idlists = {el.get("idname", ""): el for el in root.findall("idlist")}
        self.parameters: dict[str, dict[str, ParameterValue]] = {}
        self._counts: dict[str, int] = {}
        self._refs: dict[str, int] = {}  # places each type is put, in the XML (not multiplied out)
        self._blocks: dict[tuple, _Block] = {}

    # ---- defaults ------------------------------------------------------------------------------------------
    def _defaults(self) -> float:
        d = self.root.find("defaults")
        self.frame = ReferenceFrame()
        if d is None:
            return math.pi / 180
        for tag in ("components-are-facing", "offsets"):
            el = d.find(tag)
            if el is not None and not (tag == "offsets" and el.get("spherical", "absolute") == "absolute"):
                raise ValueError(f"<defaults><{tag}> is not supported")
        rf = d.find("reference-frame")
        if rf is not None:
            axis = {
                k: (e.get("axis") or "") if (e := rf.find(k)) is not None else ""
                for k in ("along-beam", "pointing-up")
            }
            hand = rf.find("handedness")
            self.frame = ReferenceFrame(
                axis["along-beam"].strip().lower() or "z",
                axis["pointing-up"].strip().lower() or "y",
                (hand.get("val") or "right").strip().lower() if hand is not None else "right",
            )
        angle = d.find("angle")
        unit = (angle.get("unit") or "degree").lower() if angle is not None else "degree"
        if unit not in ("degree", "radian"):
            raise ValueError(f"<defaults><angle unit={unit!r}>: degree or radian")
        return math.pi / 180 if unit == "degree" else 1.0

    # ---- types ---------------------------------------------------------------------------------------------
    def _type(self, el: ET.Element) -> tuple[str, ET.Element]:
        name = el.get("type")
        if not name:
            raise ValueError(f"{describe(el)} has no type attribute")
        t = self.types.get(name)
        if t is None:
            raise ValueError(f"{describe(el)}: no <type name={name!r}>")
        return name, t

    @staticmethod
    def kind(t: ET.Element) -> str:
        """assembly, rect, detector, monitor, source, sample or plain (placed, but no leaves)."""
        is_ = (t.get("is") or "").lower().replace("_", "")
        if is_ in _UNSUPPORTED:
            raise ValueError(f"{describe(t)}: {_UNSUPPORTED[is_]} is not supported")
        if is_ in _RECT:
            return "rect"
        if t.find("component") is not None and t.find("combine-components-into-one-shape") is None:
            return "assembly"  # a type with parts is an assembly whatever its `is` (SNAP's "monitors")
        return _LEAF_KINDS.get(is_, "plain")

    def count(self, name: str, t: ET.Element, stack: tuple[str, ...] = ()) -> int:
        """Leaves one placement of type `name` holds, from the declared numbers (no arrays)."""
        if name in self._counts:
            return self._counts[name]
        if name in stack:
            raise ValueError(f"<type name={name!r}> contains itself ({' → '.join([*stack, name])})")
        if len(stack) > MAX_DEPTH:
            raise ValueError(f"types nested over {MAX_DEPTH} deep at <type name={name!r}>")
        k = self.kind(t)
        if k == "rect":
            xp, yp = integer(t, "xpixels"), integer(t, "ypixels")
            if xp < 0 or yp < 0:
                raise ValueError(f"{describe(t)}: xpixels={xp} ypixels={yp}")
            n = xp * yp
        elif k == "assembly":
            n = 0
            for comp in t.findall("component"):
                child_name, child = self._type(comp)
                places = self.n_locations(comp)
                self._refs[child_name] = self._refs.get(child_name, 0) + places
                n += places * self.count(child_name, child, (*stack, name))
                if n > self.max_pixels:
                    break
        else:
            n = 1 if k in ("detector", "monitor") else 0
        self._counts[name] = n
        return n

    def n_locations(self, comp: ET.Element) -> int:
        n = len(comp.findall("location"))
        for many in comp.findall("locations"):
            n += max(0, integer(many, "n-elements"))
        return n

    # ---- locations -----------------------------------------------------------------------------------------
    def locations(self, comp: ET.Element) -> list[tuple[np.ndarray, np.ndarray, str, ET.Element]]:
        """(rotation, translation, name, element) of each place `comp` puts its type, in document order."""
        default: str = comp.get("name") or comp.get("type") or ""
        out: list[tuple[np.ndarray, np.ndarray, str, ET.Element]] = []
        for el in comp:
            if el.tag == "location":
                out.append((*self.location(el.attrib, el), el.get("name") or default, el))
            elif el.tag == "locations":
                n = integer(el, "n-elements")
                if n < 1 or n > MAX_LOCATIONS:
                    raise ValueError(f"{describe(el)}: n-elements={n}")
                start, step = integer(el, "name-count-start", 0), integer(el, "name-count-increment", 1)
                for i in range(n):
                    attrs = dict(el.attrib)
                    for key in ("x", "y", "z", "r", "t", "p", "rot"):
                        if f"{key}-end" in el.attrib:
                            a, b = number(el, key, 0.0), number(el, f"{key}-end")
                            attrs[key] = repr(a + (b - a) * i / (n - 1) if n > 1 else a)
                    name: str = f"{el.get('name')}{start + i * step}" if el.get("name") else default
                    out.append((*self.location(attrs, el), name or "", el))
        return out

    def location(self, attrs, el: ET.Element) -> tuple[np.ndarray, np.ndarray]:
        """A <location>'s rotation and translation in its parent's frame."""
        probe = ET.Element(el.tag, attrs)
        rot = self._rot(probe) if "rot" in attrs else IDENTITY
        trans = self._point(probe)
        node = el
        while True:  # <rot>/<trans> chain: each applies in the frame turned by those outside it
            nxt = next((c for c in node if c.tag in ("rot", "trans")), None)
            if nxt is None:
                break
            if nxt.tag == "rot":
                rot = rot @ self._rot(nxt, attr="val")
            else:
                trans = trans + rot @ self._point(nxt)
            node = nxt
        params = {}
        for par in el.findall("parameter"):
            name = par.get("name", "")
            if name in _POSITION_PARAMS:
                v = parameter_value(par, self.logs)
                if v is not None:
                    params[name] = float(v)
        if "r-position" in params:  # t and p count only with r (Mantid's rule)
            d = self.deg
            trans = spherical(
                params["r-position"], params.get("t-position", 0.0) * d, params.get("p-position", 0.0) * d
            )
        for i, axis in enumerate("xyz"):
            if axis in params:
                trans = trans.copy()
                trans[i] = params[axis]
        if {"rotx", "roty", "rotz"} & params.keys():  # they replace the rotation: x first, then y, then z
            rx, ry, rz = (params.get(k, 0.0) * self.deg for k in ("rotx", "roty", "rotz"))
            rot = rotation(rz, (0, 0, 1)) @ rotation(ry, (0, 1, 0)) @ rotation(rx, (1, 0, 0))
        return rot, trans

    def _rot(self, el: ET.Element, attr: str = "rot") -> np.ndarray:
        axis = (number(el, "axis-x", 0.0), number(el, "axis-y", 0.0), number(el, "axis-z", 1.0))
        try:
            return rotation(number(el, attr, 0.0) * self.deg, axis)
        except ValueError as exc:
            raise ValueError(f"{describe(el)}: {exc}") from None

    def _point(self, el: ET.Element) -> np.ndarray:
        if any(k in el.attrib for k in ("r", "t", "p")):
            d = self.deg
            return spherical(number(el, "r", 0.0), number(el, "t", 0.0) * d, number(el, "p", 0.0) * d)
        return np.array([number(el, "x", 0.0), number(el, "y", 0.0), number(el, "z", 0.0)])

    # ---- leaves --------------------------------------------------------------------------------------------
    def component(self, comp: ET.Element, depth: int = 0, skip: frozenset[str] = frozenset()) -> _Block:
        """Every leaf one <component> element places (all its locations but those named in `skip`, the
        parent's <exclude>s), in its parent's frame."""
        if depth > MAX_DEPTH:
            raise ValueError(f"types nested over {MAX_DEPTH} deep at {describe(comp)}")
        name, t = self._type(comp)
        places = self.locations(comp)
        if not places:
            raise ValueError(f"{describe(comp)} has no <location>")
        places = [p for p in places if p[2] not in skip]
        self._params(comp, comp.get("name") or name)
        k = self.kind(t)
        if k not in ("detector", "monitor") and any(el.find("facing") is not None for *_, el in places):
            raise ValueError(f"{describe(comp)}: <facing> is supported only on single detectors and monitors")
        for _, _, loc_name, el in places:
            if el is not None and el.tag == "location":
                self._params(el, loc_name, skip=_POSITION_PARAMS)
        if k in ("detector", "monitor"):  # single pixels: only their positions matter, one array for all
            n = len(places)
            mon = np.array(
                [k == "monitor" or (el is not None and el.get("mark-as") == "monitor") for *_, el in places]
            )
            pos = np.array([trans for _, trans, _, _ in places]).reshape(n, 3)
            out = _Block(pos, np.zeros(n, np.int64), np.ones(n, bool), mon.astype(bool).reshape(n), [])
        else:
            blocks = []
            for rot, trans, loc_name, el in places:
                if k == "assembly":
                    excludes = frozenset(x.get("sub-part", "") for x in el.findall("exclude"))
                    block = self.assembly(name, t, excludes, depth)
                    shape = None if excludes else grid_shape(self, name, t)
                    if shape is not None and shape[0] * shape[1] == block.ids.size:  # a bank: keep its layout
                        block = replace(block, grids=add_grid(block.grids, Grid((loc_name,), 0, *shape)))
                elif k == "rect":
                    block = self.rect(name, t, comp)
                    xp, yp = integer(t, "xpixels"), integer(t, "ypixels")
                    block.grids = [Grid((loc_name,), 0, xp, yp, True)]
                elif k in ("source", "sample"):
                    block = _Block.empty()
                    block.marks = [(k, np.zeros(3))]
                else:
                    block = _Block.empty()
                blocks.append(block.placed(rot, trans))
            out = _Block.concat(blocks)
        if comp.get("idlist") is not None:
            out = self.assign(out, comp)
        return out

    def assembly(self, name: str, t: ET.Element, excludes: frozenset[str], depth: int) -> _Block:
        """The leaves of one placement of an assembly type, in its own frame: computed once and kept for types
        the XML places more than once (a type placed once is inside one that is kept, or is a one-off: keeping
        it too would hold a copy per nesting level)."""
        key = (name, excludes)
        block = self._blocks.get(key)
        if block is None:
            self._params(t, name)
            block = _Block.concat([self.component(c, depth + 1, excludes) for c in t.findall("component")])
            if self._refs.get(name, 0) > 1:
                self._blocks[key] = block
        return block

    def rect(self, name: str, t: ET.Element, comp: ET.Element) -> _Block:
        """A RectangularDetector's pixels: (x, y) = (xstart + i·xstep, ystart + j·ystep, 0); ids from the
        component: y first (default) gives idstart + i·idstepbyrow + j·idstep, x first the reverse."""
        xp, yp = integer(t, "xpixels"), integer(t, "ypixels")
        fill = (comp.get("idfillbyfirst") or "y").strip().lower()
        if fill not in ("x", "y"):
            raise ValueError(f"{describe(comp)}: idfillbyfirst={fill!r}")
        start, step = integer(comp, "idstart", 0), integer(comp, "idstep", 1)
        by_row = integer(comp, "idstepbyrow", yp if fill == "y" else xp)
        a, b = (by_row, step) if fill == "y" else (step, by_row)  # id = start + a·i + b·j
        _ids_fit(
            comp,
            start,
            step,
            by_row,
            *(start + a * i + b * j for i in (0, max(xp - 1, 0)) for j in (0, max(yp - 1, 0))),
        )
        pixel = t.get("type")
        if not pixel or pixel not in self.types:
            raise ValueError(f"{describe(t)}: pixel type {pixel!r} is not defined")
        i = np.repeat(np.arange(xp), yp)  # pixel (i, j): i along x, j along y
        j = np.tile(np.arange(yp), xp)
        pos = np.zeros((i.size, 3))
        pos[:, 0] = number(t, "xstart") + i * number(t, "xstep")
        pos[:, 1] = number(t, "ystart") + j * number(t, "ystep")
        ids = start + (i * by_row + j * step if fill == "y" else j * by_row + i * step)
        return _Block(pos, ids.astype(np.int64), np.zeros(i.size, bool), np.zeros(i.size, bool), [])

    def assign(self, block: _Block, comp: ET.Element) -> _Block:
        """Hand out the component's idlist to its leaves still without an id, in document order."""
        name = comp.get("idlist", "")
        el = self.idlists.get(name)
        if el is None:
            raise ValueError(f"{describe(comp)}: no <idlist idname={name!r}>")
        ids = self.idlist(el)
        n = int(block.need.sum())
        if ids.size != n:
            raise ValueError(f"<idlist idname={name!r}> has {ids.size} ids for {n} detectors/monitors")
        out = _Block(
            block.pos, block.ids.copy(), np.zeros_like(block.need), block.monitor, block.marks, block.grids
        )
        out.ids[block.need] = ids
        return out

    def idlist(self, el: ET.Element) -> np.ndarray:
        parts, total = [], 0
        for i in el.findall("id"):
            if i.get("val") is not None:
                v = integer(i, "val")
                _ids_fit(i, v)
                parts.append(np.array([v], np.int64))
            else:
                a, b, step = integer(i, "start"), integer(i, "end"), integer(i, "step", 1)
                _ids_fit(i, a, b, step)
                if step == 0 and a != b:
                    raise ValueError(f"{describe(el)} <id start={a} end={b} step=0>: step is zero")
                if step and ((b - a) % step or (b - a) // step < 0):
                    raise ValueError(
                        f"{describe(el)} <id start={a} end={b} step={step}>: no whole steps lead from start to end"
                    )
                n = (b - a) // step + 1 if step else 1
                if total + n > self.max_pixels:
                    raise ValueError(f"{describe(el)}: over {self.max_pixels} ids")
                parts.append(a + step * np.arange(n, dtype=np.int64))
            total += parts[-1].size
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    # ---- parameters ----------------------------------------------------------------------------------------
    def _params(self, el: ET.Element, owner: str, skip=frozenset()) -> None:
        for par in el.findall("parameter"):
            pname = par.get("name", "")
            if pname in skip:
                continue
            v = parameter_value(par, self.logs)
            if v is not None:
                self.parameters.setdefault(owner, {}).setdefault(pname, v)

    # ---- the whole instrument ------------------------------------------------------------------------------
    def read(self) -> InstrumentGeometry:
        tops = self.root.findall("component")
        total = 0
        for comp in tops:  # bound every array before making any
            name, t = self._type(comp)
            places = self.n_locations(comp)
            self._refs[name] = self._refs.get(name, 0) + places
            total += places * self.count(name, t)
            if total > self.max_pixels:
                raise ValueError(f"declares over {self.max_pixels} detectors and monitors")
        self._params(self.root, self.name)
        for link in self.root.findall("component-link"):
            self._params(link, link.get("name", ""))
        for link in self.overrides:  # a parameter file's values replace the definition's, as in Mantid
            for par in link.findall("parameter"):
                v = parameter_value(par, self.logs)
                if v is not None:
                    self.parameters.setdefault(link.get("name", "") or self.name, {})[par.get("name", "")] = v
        block = _Block.concat([self.component(c) for c in tops])
        if block.need.any():
            raise ValueError(f"{int(block.need.sum())} detectors/monitors are in no component with an idlist")
        far = ~(np.abs(block.pos) <= MAX_COORDINATE)  # NaN too: numbers that overflowed on the way
        if far.any():
            raise ValueError(
                f"detector {int(block.ids[far.any(axis=1)][0])} is placed beyond {MAX_COORDINATE:g} m"
            )
        banks = grids_of(block.grids, block.ids, block.monitor)  # leaf order → ids, before sorting
        ids, mon = block.ids, block.monitor
        if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):  # sorted already (most files): no copies
            order = np.argsort(ids, kind="stable")
            ids, mon = ids[order], mon[order]
            dup = ids[1:][ids[1:] == ids[:-1]]
            if dup.size:
                raise ValueError(f"detector id {int(dup[0])} is used twice")
            block = _Block(block.pos[order], ids, block.need, mon, block.marks)
        marks: dict[str, np.ndarray] = {}
        for k, p in block.marks:
            marks.setdefault(k, p)
        sample = marks.get("sample", np.zeros(3))
        source = marks.get("source", np.full(3, np.nan))
        det = ~mon
        pos, mpos = (block.pos, block.pos[mon]) if det.all() else (block.pos[det], block.pos[mon])
        if sample.any():  # positions relative to the sample (new arrays: pos may be a kept block)
            pos = pos - sample
            mpos = mpos - sample
        return InstrumentGeometry(
            name=self.name,
            frame=self.frame,
            source=source,
            sample=sample,
            det_ids=ids[det] if not det.all() else ids,
            positions=pos,
            monitor_ids=ids[mon],
            monitor_positions=mpos,
            parameters=self.parameters,
            valid_from=self.root.get("valid-from", ""),
            valid_to=self.root.get("valid-to", ""),
            banks=banks,
        )


def read_root(
    root: ET.Element,
    max_pixels: int = MAX_PIXELS,
    logs: Mapping[str, float] | None = None,
    parameter_file: ET.Element | None = None,
) -> InstrumentGeometry:
    """The geometry of a parsed IDF (namespaces are stripped from `root` in place). ValueError naming the
    element for anything unsupported or inconsistent; numpy's overflow warnings are off (overflowed numbers
    are caught as positions out of bounds)."""
    with np.errstate(all="ignore"):
        reader = _Reader(root, max_pixels, logs or {})
        reader.overrides = _links(parameter_file) if parameter_file is not None else []
        return reader.read()


def _links(root: ET.Element) -> list[ET.Element]:
    """The <component-link>s of a Mantid parameter file (<parameter-file instrument=…>)."""
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.rsplit("}", 1)[1]
    if root.tag != "parameter-file":
        raise ValueError(f"parameter file: root element is <{root.tag}>, not <parameter-file>")
    return root.findall("component-link")
