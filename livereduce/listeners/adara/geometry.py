"""Detector geometry for the ADARA listener: the GEOMETRY packet (a real Mantid IDF, read by
livereduce.instrument, or the small subset the fake SMS sends) read into a `Geometry`, and the detector id →
workspace index map that turns buffered events' pixel ids into spectrum indices at extract.

Pure: no locks, no logging, no I/O (the listener calls `map_events` outside its lock).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from livereduce.instrument import InstrumentGeometry, parse_idf
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
    note: str = ""  # why a real IDF gave no pixels (the reader's error), for the log
    instrument: InstrumentGeometry | None = None  # the full definition when the packet held a real IDF


MAX_GEOMETRY_DETECTORS = 1 << 19  # pixels the IDF subset may declare in all (a few tens of MB of arrays)
# a real IDF: SNAP has 1.2 M pixels, TOPAZ/MANDI ~1.6 M; the reader totals declared counts before allocating
# (~60 B per pixel while reading, so at most ~130 MB for this bound)
MAX_IDF_DETECTORS = 1 << 21
MAX_GEOMETRY_XML = 4 << 20  # bytes: packets.PAYLOAD_BOUNDS[GEOMETRY]


def parse_geometry(text: str, limit: int = MAX_GEOMETRY_XML) -> Geometry:
    """The IDF subset this listener (and the fake SMS) understands. Lengths in m, angles in degrees:

        <instrument name="NAME">
          <source z="-10.0"/> <sample z="0.0"/>                       L1 = sample z - source z
          <detector id="7" l2="2.0" two_theta="30" azimuthal="0"/>     one pixel
          <detectors first_id="100" count="1000" l2="2.0" two_theta_first="30" two_theta_last="150"/>
          <monitor id="1"/>                                            ADARA monitor 1 = detector id -1
        </instrument>

    Spectra are ordered by detector id. A real IDF (an <instrument> with <component>s or <type>s, as an SMS
    sends) is read by livereduce.instrument.parse_idf (cached by the text's hash, so each run's identical
    packet costs a hash): every detector's L2, 2θ and φ, L1 from the source and sample, and its negative
    monitor ids as ADARA monitors (-1 → 1). One the reader refuses yields its name, no pixels and the reason in
    `note`, so the listener falls back to the `pixels` rule. Raises ValueError on unreadable XML, on XML over
    `limit` bytes (refused before parsing) and on more than MAX_GEOMETRY_DETECTORS pixels in all in the subset
    (refused before any array is made: a few hundred bytes of XML must not cost seconds or gigabytes).
    """
    try:
        root = parse_xml(text, limit)
        if any(local_tag(el) in ("component", "type") for el in root):
            return _from_idf(root.get("name", ""), text, limit)
        return _geometry(root)
    except (ET.ParseError, KeyError, ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"geometry XML: {exc!r}") from None


def from_instrument(g: InstrumentGeometry) -> Geometry:
    """The listener's Geometry of an IDF reader's result. Its arrays are the reader's, shared with its cache and
    read-only (Spectra copies what it keeps), so a 10^6-pixel geometry is not held twice."""
    return Geometry(
        g.name,
        g.l1,
        g.det_ids,
        g.l2,
        g.two_theta,
        g.azimuthal,
        tuple(sorted(-int(m) for m in g.monitor_ids if m < 0)),  # SNS monitor ids are -1, -2, ...
        instrument=g,
    )


def _from_idf(name: str, text: str, limit: int) -> Geometry:
    try:
        return from_instrument(parse_idf(text, max_pixels=MAX_IDF_DETECTORS, limit=limit))
    except ValueError as exc:
        empty = np.empty(0)
        return Geometry(name, float("nan"), np.empty(0, np.int64), empty, empty, empty, (), note=str(exc))


def _geometry(root: ET.Element) -> Geometry:
    z: dict[str, float] = {}
    singles: list[tuple[int, float, float, float]] = []
    ranges: list[tuple[int, int, float, float, float, float]] = []
    monitors: list[int] = []
    total = 0
    for el in root.iter():
        a, tag = el.attrib, local_tag(el)
        if tag in ("source", "sample") and "z" in a:
            z[tag] = float(a["z"])
        elif tag == "detector" and "id" in a:
            singles.append(
                (
                    int(a["id"]),
                    float(a.get("l2", "nan")),
                    float(a.get("two_theta", "nan")),
                    float(a.get("azimuthal", "0")),
                )
            )
            total += 1
        elif tag == "detectors" and "first_id" in a:
            n = int(a["count"])
            if n < 0:
                raise ValueError(f"detector count {n}")
            first = int(a["first_id"])
            if not (-(2**31) <= first and first + n <= 2**31):
                raise ValueError("detector ids beyond 32 bits")
            ranges.append(
                (
                    first,
                    n,
                    float(a.get("l2", "nan")),
                    float(a.get("two_theta_first", "nan")),
                    float(a.get("two_theta_last", "nan")),
                    float(a.get("azimuthal", "0")),
                )
            )
            total += n
        elif tag == "monitor" and "id" in a:
            monitors.append(int(a["id"]))
        if total > MAX_GEOMETRY_DETECTORS:
            raise ValueError(f"more than {MAX_GEOMETRY_DETECTORS} detectors declared")
    det = np.empty(total, np.int64)
    l2, tt, az = np.empty(total), np.empty(total), np.empty(total)
    pos = 0
    for first, n, dl2, t0, t1, daz in ranges:
        det[pos : pos + n] = np.arange(first, first + n)
        l2[pos : pos + n], az[pos : pos + n] = dl2, daz
        tt[pos : pos + n] = np.linspace(t0, t1, n)
        pos += n
    for i, (did, dl2, dtt, daz) in enumerate(singles):
        det[pos + i], l2[pos + i], tt[pos + i], az[pos + i] = did, dl2, dtt, daz
    if det.size and not -(2**31) <= det.min() <= det.max() < 2**31:
        raise ValueError("detector ids beyond 32 bits")
    if det.size > 1 and not np.all(det[1:] > det[:-1]):
        order = np.argsort(det, kind="stable")
        det, l2, tt, az = det[order], l2[order], tt[order], az[order]
        if np.any(det[1:] == det[:-1]):
            raise ValueError("duplicate detector ids")
    l1 = z["sample"] - z["source"] if {"sample", "source"} <= z.keys() else float("nan")
    return Geometry(
        root.get("name", ""),
        l1,
        det,
        l2,
        np.deg2rad(tt, out=tt),
        np.deg2rad(az, out=az),
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


def map_events(events: ChunkEvents, mapping: DetectorMap, in_place: bool = False) -> tuple[ChunkEvents, int]:
    """Events with workspace indices; events with unmapped ids are dropped (returns their count).

    `in_place`: the indices overwrite the ids (the caller owns them), so events kept in shared memory stay
    there (livereduce.shared_events) when none is dropped."""
    index = mapping(events.index)
    if in_place and index is not events.index:
        np.copyto(events.index, index)
        index = events.index
    if not index.size or int(index.max()) < mapping.size:  # the usual case, one pass and no mask
        return ChunkEvents(index, events.tof, events.pulse_time, events.pulse_start), 0
    bad = index >= mapping.size
    dropped = int(np.count_nonzero(bad))
    kept_before = np.concatenate([[0], np.cumsum(~bad)])
    return ChunkEvents(
        index[~bad], events.tof[~bad], events.pulse_time, kept_before[events.pulse_start]
    ), dropped
