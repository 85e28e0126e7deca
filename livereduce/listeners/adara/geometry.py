"""Detector geometry for the ADARA listener: the GEOMETRY packet's IDF subset read into a `Geometry`, and the
detector id → workspace index map that turns buffered events' pixel ids into spectrum indices at extract.

Pure: no locks, no logging, no I/O (the listener calls `map_events` outside its lock).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from livereduce.listeners.adara.xmlutil import local_tag, parse_xml
from livereduce.listeners.base import ChunkEvents


@dataclass(eq=False)
class Geometry:
    name: str
    l1: float
    det_ids: np.ndarray
    l2: np.ndarray
    two_theta: np.ndarray  # rad
    azimuthal: np.ndarray  # rad
    monitors: tuple[int, ...]


def parse_geometry(text: str) -> Geometry:
    """The IDF subset this listener (and the fake SMS) understands. Lengths in m, angles in degrees:

        <instrument name="NAME">
          <source z="-10.0"/> <sample z="0.0"/>                       L1 = sample z - source z
          <detector id="7" l2="2.0" two_theta="30" azimuthal="0"/>     one pixel
          <detectors first_id="100" count="1000" l2="2.0" two_theta_first="30" two_theta_last="150"/>
          <monitor id="1"/>                                            ADARA monitor 1 = detector id -1
        </instrument>

    Spectra are ordered by detector id. A real IDF (components, types, idlists) yields its name and no pixels,
    so the listener falls back to the `pixels` rule. Raises ValueError on unreadable XML.
    """
    try:
        return _geometry(parse_xml(text))
    except (ET.ParseError, KeyError, ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"geometry XML: {exc!r}") from None


def _geometry(root: ET.Element) -> Geometry:
    z: dict[str, float] = {}
    ids: list = []
    l2: list = []
    tt: list = []
    az: list = []
    monitors: list[int] = []
    for el in root.iter():
        a, tag = el.attrib, local_tag(el)
        if tag in ("source", "sample") and "z" in a:
            z[tag] = float(a["z"])
        elif tag == "detector" and "id" in a:
            ids.append([int(a["id"])])
            l2.append([float(a.get("l2", "nan"))])
            tt.append([float(a.get("two_theta", "nan"))])
            az.append([float(a.get("azimuthal", "0"))])
        elif tag == "detectors" and "first_id" in a:
            n = int(a["count"])
            if not 0 <= n <= 1 << 24:
                raise ValueError(f"detector count {n}")
            ids.append(int(a["first_id"]) + np.arange(n))
            l2.append(np.full(n, float(a.get("l2", "nan"))))
            first, last = float(a.get("two_theta_first", "nan")), float(a.get("two_theta_last", "nan"))
            tt.append(np.linspace(first, last, n))
            az.append(np.full(n, float(a.get("azimuthal", "0"))))
        elif tag == "monitor" and "id" in a:
            monitors.append(int(a["id"]))

    def cat(parts):
        return np.concatenate(parts) if parts else np.empty(0)

    det = cat(ids).astype(np.int64)
    order = np.argsort(det, kind="stable")
    if np.unique(det).size != det.size or (det.size and not -(2**31) <= det.min() <= det.max() < 2**31):
        raise ValueError("duplicate detector ids, or ids beyond 32 bits")
    l1 = z["sample"] - z["source"] if {"sample", "source"} <= z.keys() else float("nan")
    return Geometry(
        root.get("name", ""),
        l1,
        det[order],
        cat(l2)[order],
        np.deg2rad(cat(tt)[order]),
        np.deg2rad(cat(az)[order]),
        tuple(sorted(set(monitors))),
    )


class DetectorMap:
    """Detector id → workspace index (uint32; any value >= `size` means "not mapped"), vectorised.

    Contiguous ids (the common case) are an offset, with no lookup at all; dense ids use a lookup table;
    sparse ones a sorted search.
    """

    UNMAPPED = np.uint32(0xFFFFFFFF)

    def __init__(self, det_ids: np.ndarray):
        det = np.asarray(det_ids, np.int64)
        self.size = int(det.size)
        self.first: int | None = int(det[0]) if det.size else 0  # None: not a contiguous range
        self.lut: np.ndarray | None = None
        self.sorted: np.ndarray | None = None
        if det.size and det.min() >= 0 and np.array_equal(det, self.first + np.arange(det.size)):
            return
        self.first = None
        top = int(det.max()) + 2 if det.size else 1
        if det.size == 0 or (det.min() >= 0 and top <= 4 * det.size + (1 << 20)):
            self.lut = np.full(top, self.UNMAPPED, np.uint32)  # last entry: every larger id
            self.lut[det] = np.arange(det.size, dtype=np.uint32)
        else:
            order = np.argsort(det, kind="stable")
            self.sorted, self.index = det[order], order.astype(np.uint32)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        if self.first is not None:  # ids below `first` wrap around to huge values: unmapped
            return ids - np.uint32(self.first) if self.first else ids
        if self.lut is not None:
            return self.lut[np.minimum(ids, self.lut.size - 1)]
        sorted_ids = self.sorted if self.sorted is not None else np.empty(0, np.int64)
        if sorted_ids.size == 0:
            return np.full(ids.shape, self.UNMAPPED)
        pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
        return np.where(sorted_ids[pos] == ids, self.index[pos], self.UNMAPPED)


def map_events(events: ChunkEvents, mapping: DetectorMap) -> tuple[ChunkEvents, int]:
    """Events with workspace indices; events with unmapped ids are dropped (returns their count)."""
    index = mapping(events.index)
    bad = index >= mapping.size
    dropped = int(np.count_nonzero(bad))
    if not dropped:
        return ChunkEvents(index, events.tof, events.pulse_time, events.pulse_start), 0
    kept_before = np.concatenate([[0], np.cumsum(~bad)])
    return ChunkEvents(
        index[~bad], events.tof[~bad], events.pulse_time, kept_before[events.pulse_start]
    ), dropped
