"""The instrument in a run start's NeXus JSON (pl72 `nexus_structure`, the ESS file-writer's description of the
file it writes): detector ids and positions, the source and the sample, as an `InstrumentGeometry`.

The JSON's nodes (kafka-to-nexus documentation/commands.md):
- a group: {"name", "type": "group", "attributes", "children"};
- a static dataset: {"module": "dataset", "config": {"name", "values", "dtype"}, "attributes": [...]}, or the
  older {"type": "dataset", "name", "values", "attributes"};
- a stream ({"module": "ev44", "config": {...}}, or {"type": "stream", ...}) and a link: no values, passed over.
Attributes are a list of {"name", "values"} or a mapping name → value.

What is read: every NXdetector group with a `detector_number` dataset; its pixels at `x/y/z_pixel_offset`
(absent: 0; in `units`, metres when none) in the detector's frame, placed by the detector's `depends_on`
chain of NXtransformations (a translation or rotation by the dataset's value along/about its `vector`, in its
`units` (metres, degrees when none), then its `offset`; each depends on the next, "." ends the chain: the lab
position is T_last ... T_first · p). The NXsource and NXsample positions come from their chains (no sample:
the origin; no source: L1 unknown, the beam along +z). A transformation whose value is streamed (an NXlog group)
takes its `value` dataset's last value when the JSON has one.

The coordinate system is NeXus's (McStas's): z along the beam, y up, x horizontal, as ReferenceFrame's default.
Anything that does not fit raises GeometryError, naming what; the caller keeps the run's spectra without it.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field

import numpy as np

from livereduce.instrument.model import InstrumentGeometry, ReferenceFrame

LENGTH = {"m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "meters": 1.0, "cm": 1e-2, "mm": 1e-3}
LENGTH |= {"um": 1e-6, "µm": 1e-6, "micron": 1e-6, "nm": 1e-9, "km": 1e3}
ANGLE = {"deg": np.pi / 180, "degree": np.pi / 180, "degrees": np.pi / 180, "rad": 1.0, "radian": 1.0}
ANGLE |= {"radians": 1.0}
MAX_CHAIN = 100


class GeometryError(ValueError):
    """The NeXus JSON's instrument cannot be read (the message says where)."""


@dataclass
class _Node:
    path: str
    kind: str  # group, dataset, other
    attrs: dict = field(default_factory=dict)
    values: object = None
    children: list[str] = field(default_factory=list)

    @property
    def nx_class(self) -> str:
        return str(self.attrs.get("NX_class", ""))


def _attributes(raw) -> dict:
    if isinstance(raw, dict):
        return dict(raw)
    out = {}
    for a in raw or []:
        if isinstance(a, dict) and "name" in a:
            out[str(a["name"])] = a.get("values")
    return out


def _index(tree: dict) -> dict[str, _Node]:
    """Every node of the JSON by its path ("/" is the root)."""
    nodes: dict[str, _Node] = {}
    stack = [(tree, "/")]
    while stack:
        raw, path = stack.pop()
        node = _Node(path, "group", _attributes(raw.get("attributes")))
        nodes[path] = node
        for child in raw.get("children") or []:
            if not isinstance(child, dict):
                continue
            config = child["config"] if isinstance(child.get("config"), dict) else {}
            if child.get("module") == "dataset":
                name, kind, values = config.get("name"), "dataset", config.get("values")
            elif child.get("type") == "dataset":
                name, kind, values = child.get("name"), "dataset", child.get("values")
            elif child.get("type") == "group" or ("children" in child and "module" not in child):
                name, kind, values = child.get("name"), "group", None
            else:
                continue  # a stream or a link: no values here
            if not name:
                continue
            child_path = posixpath.join(path, str(name))
            node.children.append(child_path)
            if kind == "group":
                stack.append((child, child_path))
            else:
                nodes[child_path] = _Node(child_path, "dataset", _attributes(child.get("attributes")), values)
    return nodes


def _scale(units, table: dict, default: float, where: str) -> float:
    if units is None or units == "":
        return default
    try:
        return table[str(units).strip()]
    except KeyError:
        raise GeometryError(f"{where}: units {units!r} are not among {', '.join(table)}") from None


def _resolve(base: str, ref: str) -> str:
    """A depends_on path: absolute, or relative to the group holding the reference."""
    return posixpath.normpath(ref if ref.startswith("/") else posixpath.join(base, ref))


def _value(node: _Node, nodes: dict[str, _Node]) -> float:
    values = node.values
    if (
        node.kind == "group"
    ):  # a streamed value (NXlog): its `value` dataset's last value, if the JSON has one
        inner = nodes.get(posixpath.join(node.path, "value"))
        if inner is None or inner.values is None:
            raise GeometryError(
                f"{node.path}: a transformation whose value is streamed, with no value in the JSON"
            )
        values = inner.values
        node.attrs = {**inner.attrs, **node.attrs}
    array = np.asarray(values, dtype=float).ravel()
    if not array.size:
        raise GeometryError(f"{node.path}: a transformation with no value")
    return float(array[-1])


def _vector(raw, where: str, name: str) -> np.ndarray:
    try:
        v = np.asarray(raw, dtype=float).ravel()
    except (TypeError, ValueError):
        v = np.empty(0)
    if v.size != 3 or not np.all(np.isfinite(v)):
        raise GeometryError(f"{where}: attribute {name} is not three numbers ({raw!r})")
    return v


def _transform(node: _Node, nodes: dict[str, _Node]) -> np.ndarray:
    """The 4x4 matrix of one NXtransformations entry."""
    value = _value(node, nodes)
    kind = str(node.attrs.get("transformation_type", "")).lower()
    axis = _vector(node.attrs.get("vector"), node.path, "vector")
    norm = float(np.linalg.norm(axis))
    if norm == 0:
        raise GeometryError(f"{node.path}: a zero vector")
    axis = axis / norm
    m = np.eye(4)
    if kind == "translation":
        m[:3, 3] = axis * value * _scale(node.attrs.get("units"), LENGTH, 1.0, node.path)
    elif kind == "rotation":
        a = value * _scale(node.attrs.get("units"), ANGLE, np.pi / 180, node.path)
        x, y, z = axis
        k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
        m[:3, :3] = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)  # right-handed about the axis
    else:
        raise GeometryError(f"{node.path}: transformation_type {kind!r} (translation or rotation)")
    if node.attrs.get("offset") is not None:
        offset = _vector(node.attrs["offset"], node.path, "offset")
        shift = np.eye(4)
        shift[:3, 3] = offset * _scale(node.attrs.get("offset_units"), LENGTH, 1.0, node.path)
        m = shift @ m
    return m


def _depends_on(group: _Node, nodes: dict[str, _Node]) -> str | None:
    """The path a group's `depends_on` dataset names (None: none, or ".")."""
    ref = nodes.get(posixpath.join(group.path, "depends_on"))
    value = None if ref is None else ref.values
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None or str(value) in ("", "."):
        return None
    return _resolve(group.path, str(value))


def _chain(start: str | None, nodes: dict[str, _Node], where: str) -> np.ndarray:
    """The matrix placing a component whose depends_on names `start`."""
    m = np.eye(4)
    path, seen = start, 0
    while path is not None:
        node = nodes.get(path)
        if node is None:
            raise GeometryError(f"{where}: depends_on names {path}, which is not in the JSON")
        m = _transform(node, nodes) @ m
        seen += 1
        if seen > MAX_CHAIN:
            raise GeometryError(f"{where}: a depends_on chain longer than {MAX_CHAIN} (a loop?)")
        ref = node.attrs.get("depends_on")
        path = None if ref is None or str(ref) in ("", ".") else _resolve(posixpath.dirname(path), str(ref))
    return m


def _position(group: _Node, nodes: dict[str, _Node]) -> np.ndarray:
    return _chain(_depends_on(group, nodes), nodes, group.path)[:3, 3]


def _pixels(group: _Node, nodes: dict[str, _Node]) -> tuple[np.ndarray, np.ndarray]:
    """A detector's ids and pixel positions (n, 3) in the lab frame."""
    numbers = nodes[posixpath.join(group.path, "detector_number")]
    try:
        ids = np.asarray(numbers.values, dtype=np.int64).ravel()
    except (TypeError, ValueError):
        raise GeometryError(f"{numbers.path}: detector numbers are not integers") from None
    local = np.zeros((ids.size, 3))
    for k, axis in enumerate("xyz"):
        node = nodes.get(posixpath.join(group.path, f"{axis}_pixel_offset"))
        if node is None:
            continue
        try:
            offsets = np.asarray(node.values, dtype=float).ravel()
        except (TypeError, ValueError):
            raise GeometryError(f"{node.path}: offsets are not numbers") from None
        if offsets.size not in (1, ids.size):
            raise GeometryError(f"{node.path}: {offsets.size} offsets for {ids.size} detector numbers")
        local[:, k] = offsets * _scale(node.attrs.get("units"), LENGTH, 1.0, node.path)
    m = _chain(_depends_on(group, nodes), nodes, group.path)
    return ids, local @ m[:3, :3].T + m[:3, 3]


def parse(text: str, name: str = "") -> InstrumentGeometry | None:
    """The instrument in a NeXus JSON document, or None when it has no NXdetector with detector numbers.
    GeometryError when it has one that cannot be read."""
    try:
        tree = json.loads(text)
    except ValueError as exc:
        raise GeometryError(f"not JSON ({exc})") from None
    if not isinstance(tree, dict):
        return None
    nodes = _index(tree)
    groups = [n for n in nodes.values() if n.kind == "group"]
    detectors = [
        g for g in groups if g.nx_class == "NXdetector" and posixpath.join(g.path, "detector_number") in nodes
    ]
    if not detectors:
        return None
    ids, positions = zip(*(_pixels(g, nodes) for g in detectors), strict=True)
    det_ids, pos = np.concatenate(ids), np.concatenate(positions)
    order = np.argsort(det_ids, kind="stable")
    det_ids, pos = det_ids[order], pos[order]
    if det_ids.size and np.any(np.diff(det_ids) == 0):
        raise GeometryError(f"detector number {int(det_ids[np.flatnonzero(np.diff(det_ids) == 0)[0]])} twice")
    sources = [g for g in groups if g.nx_class == "NXsource"]
    samples = [g for g in groups if g.nx_class == "NXsample"]
    source = _position(sources[0], nodes) if sources else np.full(3, np.nan)
    sample = _position(samples[0], nodes) if samples else np.zeros(3)
    if not name:
        instrument = next((g for g in groups if g.nx_class == "NXinstrument"), None)
        found = nodes.get(posixpath.join(instrument.path, "name")) if instrument else None
        name = str(found.values) if found is not None and found.values is not None else ""
    return InstrumentGeometry(
        name=name,
        frame=ReferenceFrame(),
        source=source,
        sample=sample,
        det_ids=det_ids,
        positions=pos - sample,
        monitor_ids=np.empty(0, np.int64),
        monitor_positions=np.empty((0, 3)),
    )
