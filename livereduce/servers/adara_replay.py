"""The fake SMS's replay sources, as (time_ns, packet) pairs: a recorded `.adara` capture (concatenated
packets, passed on as they are) or a NeXus event file (every NXevent_data group a bank, one BankedEvent per
pulse, framed by NEW_RUN, beamline info, geometry, run info and END_RUN)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.parser import Parser
from livereduce.servers.adara_synthetic import frame, geometry_xml, run_info_xml

NEXUS_SUFFIXES = (".nxs", ".h5", ".hdf5", ".hdf")


def replay_packets(path: Path) -> Iterator[tuple[int, bytes]]:
    """The packets of a NeXus event file (by its suffix) or else of an `.adara` capture."""
    if path.suffix in NEXUS_SUFFIXES or path.name.endswith(".nxs.h5"):
        yield from nexus_packets(path)
    else:
        yield from adara_packets(path)


def adara_packets(path: Path) -> Iterator[tuple[int, bytes]]:
    """Every packet of a capture (concatenated packets), unknown types included, with its time."""
    parser, newest = Parser(keep_unknown=True), 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            parser.feed(block)
            for pkt in parser:
                newest = max(newest, pkt.time_ns if pkt.sec else 0)  # metadata may carry older times
                yield (
                    newest,
                    P.HEADER.pack(len(pkt.payload), (pkt.type << 8) | pkt.version, pkt.sec, pkt.nsec)
                    + bytes(pkt.payload),
                )


def _decoded(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nxclass(obj) -> str:
    return _decoded(obj.attrs.get("NX_class", ""))


def _text(group, name: str, default: str = "") -> str:
    if name not in group:
        return default
    value = group[name][()]
    return _decoded(value[0] if getattr(value, "shape", ()) else value)


def nexus_packets(path: Path) -> Iterator[tuple[int, bytes]]:
    """A NeXus event file as one run: every NXevent_data group is a bank; one BankedEvent per pulse."""
    import h5py

    with h5py.File(path, "r") as f:
        entry = ([f[k] for k in f if _nxclass(f[k]) == "NXentry"] or [f[k] for k in f])[0]
        groups = []
        entry.visititems(
            lambda name, obj: (
                groups.append((name, obj))
                if isinstance(obj, h5py.Group) and (_nxclass(obj) == "NXevent_data")
                else None
            )
        )
        banks = []
        for number, (name, g) in enumerate(sorted(groups), start=1):
            tof = g["event_time_offset"][()].astype(np.float64)
            unit = _decoded(g["event_time_offset"].attrs.get("units", "microsecond"))
            tof = tof / 100.0 if unit in ("ns", "nanosecond") else tof * 10.0  # → 100 ns units
            tz = g["event_time_zero"]
            zunit, offset = _decoded(tz.attrs.get("units", "second")), tz.attrs.get("offset", None)
            base = (
                int(datetime.fromisoformat(_decoded(offset)).timestamp() * 1e9)
                if offset is not None
                else time.time_ns()
            )
            zero = tz[()].astype(np.float64)
            times = base + np.round(zero if zunit in ("ns", "nanosecond") else zero * 1e9).astype(np.int64)
            digits = "".join(c for c in name.rsplit("/", 1)[-1] if c.isdigit())
            banks.append(
                (
                    int(digits) if digits else number,
                    g["event_id"][()].astype(np.uint32),
                    np.round(tof).astype(np.uint32),
                    g["event_index"][()].astype(np.int64),
                    times,
                )
            )
        run = int(_text(entry, "run_number", "0") or 0)
        name = _text(entry.get("instrument", entry), "name", "NEXUS")
        # an SNS event file embeds the instrument's definition: the real SMS sends the same in its geometry
        idf_text = _text(entry.get("instrument", entry), "instrument_xml/data")
        proposal, title = _text(entry, "experiment_identifier"), _text(entry, "title")
    pulses = np.unique(np.concatenate([b[4] for b in banks])) if banks else np.empty(0, np.int64)
    t0 = int(pulses[0]) if pulses.size else time.time_ns()
    top = max((int(b[1].max()) for b in banks if b[1].size), default=0)
    epics = P.epics_from_ns(t0)[0]
    for body in (
        P.RunStatusPkt(run, epics, P.RunStatusCode.NEW_RUN),
        P.BeamlineInfoPkt("BL", name[:8], name),
        P.GeometryPkt(idf_text or geometry_xml(name, top + 1, l1=None, l2=None, monitors=())),
        P.RunInfoPkt(run_info_xml(proposal, title)),
    ):
        yield t0, frame(body, t0)
    ends = [np.append(b[3], b[1].size) for b in banks]
    slots = [np.searchsorted(pulses, b[4]) for b in banks]  # bank pulse j → union pulse slot
    where = [dict(zip(s.tolist(), range(s.size), strict=True)) for s in slots]
    for k, t in enumerate(pulses.tolist()):
        sections = []
        for (bank_id, ids, tof, _, _), w, e in zip(banks, where, ends, strict=True):
            j = w.get(k)
            if j is not None and e[j + 1] > e[j]:
                sections.append(P.EventBank(bank_id, tof[e[j] : e[j + 1]], ids[e[j] : e[j + 1]]))
        yield t, frame(P.BankedEventPkt(0, 0, k % 600, 0, 0, [P.EventSource(0, 0, 0, True, sections)]), t)
    t_end = int(pulses[-1]) if pulses.size else t0
    yield t_end, frame(P.RunStatusPkt(run, epics, P.RunStatusCode.END_RUN), t_end)
