"""ADARA packets: type codes, header and payload layouts, and a decoder plus an encoder for every type.

Written from the protocol description (16-byte little-endian header of four uint32: payload length,
`(type << 8) | version`, EPICS seconds, nanoseconds; payloads padded to 4 bytes). Each packet class knows its
type code, decodes a payload (`decode(payload, version)`) and encodes one (`payload(version)`); `encode()`
adds the header. The fake SMS builds its stream with the same classes, so round trips test both halves.

Decoders raise `PacketError` (a ProtocolError) when a payload is shorter than its own fields say, and
nothing else (the fuzzer, `livereduce.listeners.adara.fuzz`, holds them to that). Event arrays are numpy views
over the payload: decoding never loops over events in Python.

`PAYLOAD_BOUNDS` is the largest payload each type may claim (see the table there, with the reason for each
bound); a header claiming more is a framing error, and the parser resynchronises instead of skipping it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from livereduce.errors import ProtocolError
from livereduce.workspace.run import EPICS_EPOCH_OFFSET_S

HEADER = struct.Struct("<4I")
HEADER_SIZE = 16
MAX_PACKET = 8 << 20  # bytes, header included: longer packets are skipped (reference parser)
ERROR_BANKS = (0xFFFFFFFE, 0xFFFFFFFF)  # unmapped / error pixel banks: never events of a detector


class PacketError(ProtocolError):
    """A payload does not hold what its own length fields promise, or its contents are inconsistent (a value
    whose type disagrees with its descriptor, unreadable XML). The listener drops and counts such a packet;
    it never drops the connection for one (only framing errors, raised by the parser, may)."""


# Base packet types: the header's format word is (type << 8) | version.
Type = enum.IntEnum(
    "Type",
    [
        ("RAW_EVENT", 0x0000),
        ("RTDL", 0x0001),
        ("SOURCE_LIST", 0x0002),
        ("MAPPED_EVENT", 0x0003),
        ("BANKED_EVENT", 0x4000),
        ("BEAM_MONITOR_EVENT", 0x4001),
        ("PIXEL_MAPPING", 0x4002),
        ("RUN_STATUS", 0x4003),
        ("RUN_INFO", 0x4004),
        ("TRANS_COMPLETE", 0x4005),
        ("CLIENT_HELLO", 0x4006),
        ("STREAM_ANNOTATION", 0x4007),
        ("SYNC", 0x4008),
        ("HEARTBEAT", 0x4009),
        ("GEOMETRY", 0x400A),
        ("BEAMLINE_INFO", 0x400B),
        ("DATA_DONE", 0x400C),
        ("BEAM_MONITOR_CONFIG", 0x400D),
        ("DETECTOR_BANK_SETS", 0x400E),
        ("BANKED_EVENT_STATE", 0x4100),
        ("PIXEL_MAPPING_ALT", 0x4102),
        ("DEVICE_DESC", 0x8000),
        ("VAR_VALUE_U32", 0x8001),
        ("VAR_VALUE_DOUBLE", 0x8002),
        ("VAR_VALUE_STRING", 0x8003),
        ("VAR_VALUE_U32_ARRAY", 0x8004),
        ("VAR_VALUE_DOUBLE_ARRAY", 0x8005),
        ("MULT_VAR_VALUE_U32", 0x8101),
        ("MULT_VAR_VALUE_DOUBLE", 0x8102),
        ("MULT_VAR_VALUE_STRING", 0x8103),
        ("MULT_VAR_VALUE_U32_ARRAY", 0x8104),
        ("MULT_VAR_VALUE_DOUBLE_ARRAY", 0x8105),
    ],
)
KNOWN_TYPES = frozenset(int(t) for t in Type)

# ---- payload bounds ----------------------------------------------------------------------------------------
# The largest payload (bytes, header excluded) a header of each type may claim, and why. A header claiming more
# is a framing error: the parser counts it (`oversize_packets`), logs it and resynchronises on the next
# plausible header; it never skips the claimed length (one corrupt length word must not eat gigabytes).
KiB, MiB = 1 << 10, 1 << 20
GENERIC_MAX_PAYLOAD = MAX_PACKET - HEADER_SIZE  # the reference parser's 8 MiB packet ceiling
_B = GENERIC_MAX_PAYLOAD
PAYLOAD_BOUNDS: dict[int, tuple[int, str]] = {
    Type.RAW_EVENT: (_B, "one pulse of raw (tof, pixel) pairs: 8 B each, about 1M events"),
    Type.RTDL: (1 * KiB, "30 words (120 B) in v0 and v1; room for longer future versions"),
    Type.SOURCE_LIST: (64 * KiB, "one u32 id per event source: a few dozen"),
    Type.MAPPED_EVENT: (_B, "one pulse of mapped (tof, pixel) pairs, as RAW_EVENT"),
    Type.BANKED_EVENT: (
        _B,
        "what one pulse can hold: 8 B per event, about 1M events, 6x the busiest SNS instrument's "
        "~1e7 n/s at 60 Hz; also the reference parser's ceiling",
    ),
    Type.BEAM_MONITOR_EVENT: (4 * MiB, "one pulse of monitor events, 4 B each: 1M, far above monitor rates"),
    Type.PIXEL_MAPPING: (_B, "one entry per pixel, a few million pixels at most"),
    Type.RUN_STATUS: (256, "3 words in v0, 5 in v1"),
    Type.RUN_INFO: (2 * MiB, "XML: proposal, title, users, sample: kilobytes in practice"),
    Type.TRANS_COMPLETE: (4 + 64 * KiB, "status word + a reason of at most 0xFFFF bytes (16-bit length)"),
    Type.CLIENT_HELLO: (64, "1 word in v0, 2 in v1"),
    Type.STREAM_ANNOTATION: (8 + 64 * KiB, "2 words + a comment of at most 0xFFFF bytes (16-bit length)"),
    Type.SYNC: (64 * KiB, "16-byte signature, offset, length, short comment"),
    Type.HEARTBEAT: (64, "empty; room for future versions"),
    Type.GEOMETRY: (4 * MiB, "XML (an IDF): the largest SNS IDFs are well under 4 MiB"),
    Type.BEAMLINE_INFO: (1 * KiB, "1 word + three names of at most 255 bytes (8-bit lengths)"),
    Type.DATA_DONE: (64, "empty; room for future versions"),
    Type.BEAM_MONITOR_CONFIG: (64 * KiB, "a few words per beam monitor"),
    Type.DETECTOR_BANK_SETS: (1 * MiB, "bank-set names and bank lists: kilobytes in practice"),
    Type.BANKED_EVENT_STATE: (_B, "one pulse of banked events, as BANKED_EVENT"),
    Type.PIXEL_MAPPING_ALT: (_B, "one entry per pixel, as PIXEL_MAPPING"),
    Type.DEVICE_DESC: (2 * MiB, "XML: one device's process variables, hundreds at most"),
    Type.VAR_VALUE_U32: (64, "3 words + a u32 (16 B)"),
    Type.VAR_VALUE_DOUBLE: (64, "3 words + a double (20 B)"),
    Type.VAR_VALUE_STRING: (1 * MiB, "3 words + an EPICS string or char waveform"),
    Type.VAR_VALUE_U32_ARRAY: (4 * MiB, "3 words + an EPICS waveform: 1M u32"),
    Type.VAR_VALUE_DOUBLE_ARRAY: (4 * MiB, "3 words + an EPICS waveform: 512k doubles"),
    Type.MULT_VAR_VALUE_U32: (4 * MiB, "timed updates of one variable, 8 B each: 512k"),
    Type.MULT_VAR_VALUE_DOUBLE: (4 * MiB, "timed updates of one variable, 12 B each: 350k"),
    Type.MULT_VAR_VALUE_STRING: (4 * MiB, "timed string updates of one variable"),
    Type.MULT_VAR_VALUE_U32_ARRAY: (4 * MiB, "timed waveform updates of one variable"),
    Type.MULT_VAR_VALUE_DOUBLE_ARRAY: (4 * MiB, "timed waveform updates of one variable"),
}
UNKNOWN_TYPE_REASON = "unknown type: the reference parser's generic 8 MiB packet ceiling"
MAX_PAYLOAD = {int(t): bound for t, (bound, _) in PAYLOAD_BOUNDS.items()}


def max_payload(ptype: int) -> int:
    """The largest payload a header of type `ptype` may claim (the generic bound for unknown types)."""
    return MAX_PAYLOAD.get(ptype, GENERIC_MAX_PAYLOAD)


RunStatusCode = enum.IntEnum("RunStatusCode", "NO_RUN NEW_RUN RUN_EOF RUN_BOF END_RUN STATE", start=0)
MarkerType = enum.IntEnum(
    "MarkerType", "GENERIC SCAN_START SCAN_STOP PAUSE RESUME OVERALL_RUN_COMMENT", start=0
)
HelloFlags = enum.IntEnum("HelloFlags", "PAUSE_AGNOSTIC NO_PAUSE_DATA SEND_PAUSE_DATA", start=0)
# NORMAL is beam on target 1
PulseFlavor = enum.IntEnum(
    "PulseFlavor",
    "NO_BEAM NORMAL NORMAL_TGT_2 DIAG_10US DIAG_50US DIAG_100US SPECIAL_PHYSICS_1 SPECIAL_PHYSICS_2",
    start=0,
)

FLAG_NAMES = {
    0x1: "ERROR_PIXELS",
    0x2: "PARTIAL_DATA",
    0x4: "PULSE_VETO",
    0x8: "MISSING_RTDL",
    0x10: "MAPPING_ERROR",
    0x20: "DUPLICATE_PULSE",
    0x40: "PCHARGE_UNCORRECTED",
    0x80: "VETO_UNCORRECTED",
    0x100: "GOT_METADATA",
    0x200: "GOT_NEUTRONS",
}


def flag_names(flags: int) -> str:
    return "|".join(name for bit, name in FLAG_NAMES.items() if flags & bit)


# ---- framing -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Packet:
    """One framed packet as it came off the wire; `payload` is bytes or a read-only view."""

    type: int
    version: int
    sec: int  # EPICS seconds (since 1990-01-01 UTC)
    nsec: int
    payload: bytes | memoryview

    @property
    def time_ns(self) -> int:
        """Packet time in ns since the Unix epoch."""
        return (self.sec + EPICS_EPOCH_OFFSET_S) * 1_000_000_000 + self.nsec

    @property
    def length(self) -> int:
        return HEADER_SIZE + len(self.payload)


def epics_from_ns(time_ns: int) -> tuple[int, int]:
    """Unix ns → (EPICS seconds, nanoseconds)."""
    sec, nsec = divmod(int(time_ns), 1_000_000_000)
    return sec - EPICS_EPOCH_OFFSET_S, nsec


def encode(body, sec: int = 0, nsec: int = 0, version: int | None = None) -> bytes:
    """A whole packet (header + padded payload) for a packet object."""
    version = body.VERSION if version is None else version
    payload = body.payload(version)
    if len(payload) % 4:
        raise ValueError(f"{type(body).__name__} payload of {len(payload)} bytes is not padded")
    return HEADER.pack(len(payload), (body.type_code << 8) | version, sec, nsec) + payload


def decode(packet: Packet):
    """The packet object for a framed packet; unlisted types decode to an `OpaquePkt`."""
    cls = CLASSES.get(packet.type)
    if cls is None:
        return OpaquePkt(packet.type, bytes(packet.payload))
    return cls.decode(packet.payload, packet.version)


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _need(payload, n: int, what: str) -> None:
    if len(payload) < n:
        raise PacketError(f"{what}: payload of {len(payload)} bytes, need at least {n}")


def _text(payload, start: int, length: int, what: str) -> str:
    _need(payload, start + length, what)
    return bytes(payload[start : start + length]).decode("utf-8", "replace").rstrip("\0")


class _Pkt:
    TYPE: ClassVar[Type]
    VERSION: ClassVar[int] = 0
    CODEC: ClassVar[tuple[Callable, Callable]]  # (decode at offset, encode) of a variable's value

    @classmethod
    def decode(cls, payload, version: int) -> Any:  # each packet type decodes its own payload
        raise NotImplementedError

    @property
    def type_code(self) -> int:
        return int(self.TYPE)


@dataclass
class OpaquePkt(_Pkt):
    """A type the listener ignores: kept as its raw payload (and re-encoded unchanged)."""

    type: int
    data: bytes = b""

    @property
    def type_code(self) -> int:
        return self.type

    def payload(self, version: int) -> bytes:
        return _pad(self.data)


@dataclass
class _Empty(_Pkt):
    @classmethod
    def decode(cls, payload, version: int):
        return cls()

    def payload(self, version: int) -> bytes:
        return b""


class HeartbeatPkt(_Empty):
    TYPE = Type.HEARTBEAT


class DataDonePkt(_Empty):
    TYPE = Type.DATA_DONE


# ---- events ------------------------------------------------------------------------------------------------
_PULSE = struct.Struct("<4I")  # pulse charge (10 pC), pulse energy (eV), cycle, veto (31-20) | flags (19-0)


def _pulse_fields(payload) -> tuple[int, int, int, int, int]:
    _need(payload, 16, "pulse header")
    charge, energy, cycle, word = _PULSE.unpack_from(payload, 0)
    return charge, energy, cycle, word >> 20, word & 0xFFFFF


@dataclass(eq=False)
class _PulsePkt(_Pkt):
    """The four words that open event and monitor packets."""

    VERSION = 1
    pulse_charge: int = 0  # units of 10 pC
    pulse_energy: int = 0  # eV
    cycle: int = 0
    veto_flags: int = 0
    flags: int = 0

    def _pulse_bytes(self) -> bytes:
        return _PULSE.pack(
            self.pulse_charge, self.pulse_energy, self.cycle, (self.veto_flags << 20) | (self.flags & 0xFFFFF)
        )


def _words(payload) -> np.ndarray:
    if len(payload) % 4:
        raise PacketError(f"payload of {len(payload)} bytes is not a whole number of words")
    return np.frombuffer(payload, "<u4")


def walk_banks(payload) -> list[tuple[tuple[int, int, int], list[tuple[int, int, int]]]]:
    """BankedEvent section headers: [((source id, intra-pulse time, tof word), [(bank id, word, count)])].

    Python touches only section headers (a few per source and bank); `word` is where the bank's (tof, pixel)
    pairs start in the payload's uint32 view.
    """
    n, pos, out = len(payload), 16, []
    _need(payload, 16, "banked event")
    unpack = struct.unpack_from
    while pos < n:
        _need(payload, pos + 16, "event source section")
        source_id, intra, tofw, nbanks = unpack("<4I", payload, pos)
        pos += 16
        banks = []
        for _ in range(nbanks):
            _need(payload, pos + 8, "event bank section")
            bank_id, count = unpack("<2I", payload, pos)
            start, pos = pos + 8, pos + 8 + 8 * count
            _need(payload, pos, f"bank {bank_id} with {count} events")
            banks.append((bank_id, start // 4, count))
        out.append(((source_id, intra, tofw), banks))
    return out


def event_spans(payload, sections=None) -> list[np.ndarray]:
    """The (tof, pixel) word pairs of each detector bank with events (error banks left out): payload views."""
    words = _words(payload)
    sections = walk_banks(payload) if sections is None else sections
    return [words[w : w + 2 * c] for _, banks in sections for b, w, c in banks if c and b not in ERROR_BANKS]


def copy_events(spans: list[np.ndarray], pixel_out: np.ndarray, tof_out: np.ndarray) -> None:
    """Write the spans' pixels and TOFs (100 ns units → µs, float32) into the given rows, in order: the
    listener's buffer, with no gathered copy first."""
    k = 0
    for span in spans:
        c = span.size // 2
        pixel_out[k : k + c] = span[1::2]
        np.divide(span[0::2], np.float32(10), out=tof_out[k : k + c], dtype=np.float32)
        k += c


def event_arrays(payload, sections=None) -> tuple[np.ndarray, np.ndarray]:
    """(tof µs float32, pixel uint32) of every event outside the error banks, vectorised.

    The pairs of all detector banks are gathered with one concatenate; TOF (100 ns units) is divided by 10.
    `pixel` is a strided view of that gathered copy.
    """
    spans = event_spans(payload, sections)
    if not spans:
        return np.empty(0, np.float32), np.empty(0, np.uint32)
    pairs = spans[0] if len(spans) == 1 else np.concatenate(spans)
    return np.divide(pairs[0::2], np.float32(10), dtype=np.float32), pairs[1::2]


@dataclass(eq=False)
class EventBank:
    bank_id: int
    tof: np.ndarray  # uint32, 100 ns units
    pixel: np.ndarray  # uint32 detector ids


@dataclass(eq=False)
class EventSource:
    source_id: int
    intra_pulse_time: int
    tof_offset: int
    tof_corrected: bool
    banks: list[EventBank] = field(default_factory=list)


@dataclass(eq=False)
class BankedEventPkt(_PulsePkt):
    TYPE = Type.BANKED_EVENT
    sources: list[EventSource] = field(default_factory=list)

    @classmethod
    def decode(cls, payload, version: int):
        words = _words(payload)
        sources = []
        for (sid, intra, tofw), banks in walk_banks(payload):
            sources.append(
                EventSource(
                    sid,
                    intra,
                    tofw & 0x7FFFFFFF,
                    bool(tofw >> 31),
                    [
                        EventBank(b, words[w : w + 2 * c : 2], words[w + 1 : w + 2 * c : 2])
                        for b, w, c in banks
                    ],
                )
            )
        return cls(*_pulse_fields(payload), sources)

    def payload(self, version: int) -> bytes:
        parts = [self._pulse_bytes()]
        for s in self.sources:
            parts.append(
                struct.pack(
                    "<4I",
                    s.source_id,
                    s.intra_pulse_time,
                    (int(s.tof_corrected) << 31) | s.tof_offset,
                    len(s.banks),
                )
            )
            for b in s.banks:
                pairs = np.empty((len(b.tof), 2), "<u4")
                pairs[:, 0], pairs[:, 1] = b.tof, b.pixel
                parts += [struct.pack("<2I", b.bank_id, len(b.tof)), pairs.tobytes()]
        return b"".join(parts)

    @property
    def total_events(self) -> int:
        return sum(len(b.tof) for s in self.sources for b in s.banks)


@dataclass(eq=False)
class MonitorSection:
    monitor_id: int
    source_id: int
    tof_offset: int
    tof_corrected: bool
    events: np.ndarray  # uint32 words: rising edge (31) | cycle (30-21) | tof (20-0, 100 ns)

    @property
    def tof(self) -> np.ndarray:
        return self.events & 0x1FFFFF

    @property
    def cycle(self) -> np.ndarray:
        return (self.events >> 21) & 0x3FF

    @property
    def rising_edge(self) -> np.ndarray:
        return (self.events >> 31).astype(bool)


@dataclass(eq=False)
class BeamMonitorPkt(_PulsePkt):
    TYPE = Type.BEAM_MONITOR_EVENT
    sections: list[MonitorSection] = field(default_factory=list)

    @classmethod
    def decode(cls, payload, version: int):
        words, pos, sections = _words(payload), 4, []
        head = _pulse_fields(payload)
        while pos < words.size:
            _need(payload, 4 * pos + 12, "monitor section")
            w0, source, tofw = (int(x) for x in words[pos : pos + 3])
            count = w0 & 0x3FFFFF
            _need(payload, 4 * (pos + 3 + count), f"monitor {w0 >> 22} with {count} events")
            sections.append(
                MonitorSection(
                    w0 >> 22, source, tofw & 0x7FFFFFFF, bool(tofw >> 31), words[pos + 3 : pos + 3 + count]
                )
            )
            pos += 3 + count
        return cls(*head, sections)

    def payload(self, version: int) -> bytes:
        parts = [self._pulse_bytes()]
        for s in self.sections:
            parts.append(
                struct.pack(
                    "<3I",
                    (s.monitor_id << 22) | len(s.events),
                    s.source_id,
                    (int(s.tof_corrected) << 31) | s.tof_offset,
                )
            )
            parts.append(np.asarray(s.events, "<u4").tobytes())
        return b"".join(parts)


@dataclass
class RTDLPkt(_Pkt):
    """Accelerator timing record (the listener ignores it; decoded for conformance and the fake SMS)."""

    TYPE = Type.RTDL
    VERSION = 1
    flavor: int = 1
    pulse_charge: int = 0
    bad_veto: bool = False
    bad_cycle: bool = False
    timing_status: int = 0
    veto_flags: int = 0
    cycle: int = 0
    intra_pulse_time: int = 0
    tof_corrected: bool = False
    tof_offset: int = 0
    ring_period: int = 0
    frames: tuple[tuple[int, int], ...] = ((0, 0),) * 25  # (frame number address, data) × 25
    data_flags: int | None = None  # present from version 1 on

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 120, "RTDL")
        w = struct.unpack_from("<30I", payload, 0)
        if w[4] >> 24 != 4:
            raise PacketError("RTDL: missing ring period")
        return cls(
            (w[0] >> 24) & 0x7,
            w[0] & 0xFFFFFF,
            bool(w[1] >> 31),
            bool((w[1] >> 30) & 1),
            (w[1] >> 22) & 0xFF,
            (w[1] >> 10) & 0xFFF,
            w[1] & 0x3FF,
            w[2],
            bool(w[3] >> 31),
            w[3] & 0x7FFFFFFF,
            w[4] & 0xFFFFFF,
            tuple((x >> 24, x & 0xFFFFFF) for x in w[5:30]),
            (w[0] >> 27) if version >= 1 else None,
        )

    @property
    def got_data_flags(self) -> bool:
        return self.data_flags is not None

    @property
    def flavor_name(self) -> str:
        return PulseFlavor(self.flavor).name

    def payload(self, version: int) -> bytes:
        w0 = ((self.data_flags or 0) << 27 if version >= 1 else 0) | (self.flavor << 24) | self.pulse_charge
        w1 = (
            (self.bad_veto << 31)
            | (self.bad_cycle << 30)
            | (self.timing_status << 22)
            | (self.veto_flags << 10)
            | self.cycle
        )
        w3 = (self.tof_corrected << 31) | self.tof_offset
        return struct.pack(
            "<30I",
            w0,
            w1,
            self.intra_pulse_time,
            w3,
            (4 << 24) | self.ring_period,
            *((f << 24) | d for f, d in self.frames),
        )


# ---- run control -------------------------------------------------------------------------------------------
@dataclass
class RunStatusPkt(_Pkt):
    TYPE = Type.RUN_STATUS
    VERSION = 1
    run_number: int = 0
    run_start: int = 0  # EPICS seconds
    status: int = RunStatusCode.NO_RUN
    file_number: int = 0
    extra: tuple[int, ...] = (0, 0)  # v1: paused and addendum words

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 12, "run status")
        run, start, word = struct.unpack_from("<3I", payload, 0)
        extra = struct.unpack_from(f"<{(len(payload) - 12) // 4}I", payload, 12)
        return cls(run, start, word >> 24, word & 0xFFFFFF, extra)

    @property
    def status_name(self) -> str:
        known = self.status in RunStatusCode._value2member_map_
        return RunStatusCode(self.status).name if known else "UNKNOWN"

    def payload(self, version: int) -> bytes:
        extra = self.extra if version >= 1 else ()
        return struct.pack(
            f"<{3 + len(extra)}I",
            self.run_number,
            self.run_start,
            (self.status << 24) | self.file_number,
            *extra,
        )


@dataclass
class _XmlPkt(_Pkt):
    """u32 byte length, then XML text padded to 4 bytes (RUN_INFO, GEOMETRY)."""

    xml: str = ""

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 4, cls.__name__)
        (n,) = struct.unpack_from("<I", payload, 0)
        return cls(_text(payload, 4, n, cls.__name__))

    def payload(self, version: int) -> bytes:
        text = self.xml.encode()
        return _pad(struct.pack("<I", len(text)) + text)


class RunInfoPkt(_XmlPkt):
    TYPE = Type.RUN_INFO


class GeometryPkt(_XmlPkt):
    TYPE = Type.GEOMETRY


@dataclass
class TransCompletePkt(_Pkt):
    TYPE = Type.TRANS_COMPLETE
    status: int = 0
    reason: str = ""

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 4, "translation complete")
        (w,) = struct.unpack_from("<I", payload, 0)
        return cls(w >> 16, _text(payload, 4, w & 0xFFFF, "translation complete"))

    def payload(self, version: int) -> bytes:
        text = self.reason.encode()
        return _pad(struct.pack("<I", (self.status << 16) | len(text)) + text)


@dataclass
class ClientHelloPkt(_Pkt):
    """Sent by the client: start time in EPICS seconds (0 = now, 1 = start of the current run)."""

    TYPE = Type.CLIENT_HELLO
    VERSION = 1  # the listener sends v0, as Mantid does
    start_time: int = 0
    flags: int | None = None  # v1 only

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 8 if version >= 1 else 4, "client hello")
        return cls(*struct.unpack_from("<2I" if version >= 1 else "<I", payload, 0))

    def payload(self, version: int) -> bytes:
        return (
            struct.pack("<2I", self.start_time, self.flags or 0)
            if version >= 1
            else struct.pack("<I", self.start_time)
        )


@dataclass
class AnnotationPkt(_Pkt):
    TYPE = Type.STREAM_ANNOTATION
    marker_type: int = MarkerType.GENERIC
    scan_index: int = 0
    comment: str = ""
    reset_hint: bool = False

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 8, "annotation")
        w, scan = struct.unpack_from("<2I", payload, 0)
        return cls((w >> 16) & 0x7FFF, scan, _text(payload, 8, w & 0xFFFF, "annotation"), bool(w >> 31))

    @property
    def marker_name(self) -> str:
        return MarkerType(self.marker_type).name if self.marker_type in MarkerType._value2member_map_ else "?"

    def payload(self, version: int) -> bytes:
        text = self.comment.encode()
        return _pad(
            struct.pack(
                "<2I", (self.reset_hint << 31) | (self.marker_type << 16) | len(text), self.scan_index
            )
            + text
        )


SYNC_SIGNATURE = b"SNSADARAORNL\x00\x00\xf0\x7f"


@dataclass
class SyncPkt(_Pkt):
    TYPE = Type.SYNC
    signature_block: bytes = SYNC_SIGNATURE
    file_offset: int = 0
    comment: str = ""

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 28, "sync")
        offset, n = struct.unpack_from("<QI", payload, 16)
        return cls(bytes(payload[:16]), offset, _text(payload, 28, n, "sync"))

    @property
    def signature(self) -> str:
        return self.signature_block[:12].decode("ascii", "replace")

    def payload(self, version: int) -> bytes:
        text = self.comment.encode()
        block = self.signature_block[:16].ljust(16, b"\0")
        return _pad(block + struct.pack("<QI", self.file_offset, len(text)) + text)


@dataclass
class BeamlineInfoPkt(_Pkt):
    TYPE = Type.BEAMLINE_INFO
    VERSION = 1
    beamline_id: str = ""
    short_name: str = ""
    long_name: str = ""
    target_station: int = 1

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 4, "beamline info")
        (w,) = struct.unpack_from("<I", payload, 0)
        lens = ((w >> 16) & 0xFF, (w >> 8) & 0xFF, w & 0xFF)
        _need(payload, 4 + sum(lens), "beamline info")
        raw, pos, names = bytes(payload), 4, []
        for n in lens:
            names.append(raw[pos : pos + n].decode("utf-8", "replace"))
            pos += n
        return cls(names[0], names[1], names[2], target_station=(w >> 24) or 1)

    def payload(self, version: int) -> bytes:
        ids = [s.encode()[:255] for s in (self.beamline_id, self.short_name, self.long_name)]
        station = self.target_station if version >= 1 else 0
        word = (station << 24) | (len(ids[0]) << 16) | (len(ids[1]) << 8) | len(ids[2])
        return _pad(struct.pack("<I", word) + b"".join(ids))


# ---- slow controls -----------------------------------------------------------------------------------------
@dataclass
class DeviceDescriptorPkt(_Pkt):
    TYPE = Type.DEVICE_DESC
    device_id: int = 0
    xml: str = ""

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 8, "device descriptor")
        dev, n = struct.unpack_from("<2I", payload, 0)
        return cls(dev, _text(payload, 8, n, "device descriptor"))

    def payload(self, version: int) -> bytes:
        text = self.xml.encode()
        return _pad(struct.pack("<2I", self.device_id, len(text)) + text)


# Value codecs of the variable packets: read(payload, pos) -> (value, next pos), write(value) -> bytes.
def _read_u32(p, pos):
    _need(p, pos + 4, "u32 value")
    return struct.unpack_from("<I", p, pos)[0], pos + 4


def _read_f64(p, pos):
    _need(p, pos + 8, "double value")
    return struct.unpack_from("<d", p, pos)[0], pos + 8


def _read_str(p, pos):
    """Length-prefixed text, padded to 4 bytes. A payload whose length is not a multiple of 4 cannot hold
    padded strings, so there they are read unpadded (the recorded multi-string packet is laid out so)."""
    _need(p, pos + 4, "string length")
    (n,) = struct.unpack_from("<I", p, pos)
    return _text(p, pos + 4, n, "string value"), pos + 4 + (n + (-n % 4) if len(p) % 4 == 0 else n)


def _array_reader(dtype: str):
    def read(p, pos):
        _need(p, pos + 4, "array count")
        (n,) = struct.unpack_from("<I", p, pos)
        end = pos + 4 + n * np.dtype(dtype).itemsize
        _need(p, end, f"array of {n}")
        return np.frombuffer(p, dtype, n, pos + 4).copy(), end

    return read


U32 = (_read_u32, lambda v: struct.pack("<I", v))
F64 = (_read_f64, lambda v: struct.pack("<d", v))
STR = (_read_str, lambda v: _pad(struct.pack("<I", len(v.encode())) + v.encode()))
U32_ARRAY = (_array_reader("<u4"), lambda v: struct.pack("<I", len(v)) + np.asarray(v, "<u4").tobytes())
F64_ARRAY = (_array_reader("<f8"), lambda v: struct.pack("<I", len(v)) + np.asarray(v, "<f8").tobytes())
_VAR = struct.Struct("<3I")  # device id, variable id, status (31-16) | severity (15-0)


@dataclass
class VariablePkt(_Pkt):
    """One process-variable update; CODEC says how its value is laid out."""

    device_id: int = 0
    variable_id: int = 0
    status: int = 0
    severity: int = 0
    value: object = 0

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 12, cls.__name__)
        dev, var, word = _VAR.unpack_from(payload, 0)
        return cls(dev, var, word >> 16, word & 0xFFFF, cls.CODEC[0](payload, 12)[0])

    def payload(self, version: int) -> bytes:
        head = _VAR.pack(self.device_id, self.variable_id, (self.status << 16) | self.severity)
        return head + self.CODEC[1](self.value)


@dataclass
class MultVariablePkt(_Pkt):
    """Several timed updates of one variable: `tofs` are ns offsets from the packet time.

    `count` is the declared number of updates. A payload that ends early yields the updates present (a
    recorded packet declares 8 and carries 3); `truncated` says so.
    """

    device_id: int = 0
    variable_id: int = 0
    status: int = 0
    severity: int = 0
    tofs: list[int] = field(default_factory=list)
    values: list = field(default_factory=list)
    count: int | None = None

    @property
    def truncated(self) -> bool:
        return self.count is not None and self.count != len(self.tofs)

    @classmethod
    def decode(cls, payload, version: int):
        _need(payload, 16, cls.__name__)
        dev, var, word, count = struct.unpack_from("<4I", payload, 0)
        tofs, values, pos = [], [], 16
        for _ in range(count):
            if pos + 4 > len(payload):
                break
            tofs.append(struct.unpack_from("<I", payload, pos)[0])
            value, pos = cls.CODEC[0](payload, pos + 4)
            values.append(value)
        return cls(dev, var, word >> 16, word & 0xFFFF, tofs, values, count)

    def payload(self, version: int) -> bytes:
        head = struct.pack(
            "<4I", self.device_id, self.variable_id, (self.status << 16) | self.severity, len(self.tofs)
        )
        write = self.CODEC[1]
        return _pad(
            head
            + b"".join(struct.pack("<I", t) + write(v) for t, v in zip(self.tofs, self.values, strict=True))
        )


def _variant(base: type[_Pkt], name: str, code: Type, codec) -> Any:  # a class made at import time
    return type(name, (base,), {"TYPE": code, "CODEC": codec, "__doc__": f"{code.name} packet."})


VariableU32Pkt = _variant(VariablePkt, "VariableU32Pkt", Type.VAR_VALUE_U32, U32)
VariableDoublePkt = _variant(VariablePkt, "VariableDoublePkt", Type.VAR_VALUE_DOUBLE, F64)
VariableStringPkt = _variant(VariablePkt, "VariableStringPkt", Type.VAR_VALUE_STRING, STR)
VariableU32ArrayPkt = _variant(VariablePkt, "VariableU32ArrayPkt", Type.VAR_VALUE_U32_ARRAY, U32_ARRAY)
VariableDoubleArrayPkt = _variant(
    VariablePkt, "VariableDoubleArrayPkt", Type.VAR_VALUE_DOUBLE_ARRAY, F64_ARRAY
)
MultVariableU32Pkt = _variant(MultVariablePkt, "MultVariableU32Pkt", Type.MULT_VAR_VALUE_U32, U32)
MultVariableDoublePkt = _variant(MultVariablePkt, "MultVariableDoublePkt", Type.MULT_VAR_VALUE_DOUBLE, F64)
MultVariableStringPkt = _variant(MultVariablePkt, "MultVariableStringPkt", Type.MULT_VAR_VALUE_STRING, STR)
MultVariableU32ArrayPkt = _variant(
    MultVariablePkt, "MultVariableU32ArrayPkt", Type.MULT_VAR_VALUE_U32_ARRAY, U32_ARRAY
)
MultVariableDoubleArrayPkt = _variant(
    MultVariablePkt, "MultVariableDoubleArrayPkt", Type.MULT_VAR_VALUE_DOUBLE_ARRAY, F64_ARRAY
)


CLASSES: dict[int, type[_Pkt]] = {
    cls.TYPE: cls
    for cls in (
        RTDLPkt,
        BankedEventPkt,
        BeamMonitorPkt,
        RunStatusPkt,
        RunInfoPkt,
        TransCompletePkt,
        ClientHelloPkt,
        AnnotationPkt,
        SyncPkt,
        HeartbeatPkt,
        GeometryPkt,
        BeamlineInfoPkt,
        DataDonePkt,
        DeviceDescriptorPkt,
        VariableU32Pkt,
        VariableDoublePkt,
        VariableStringPkt,
        VariableU32ArrayPkt,
        VariableDoubleArrayPkt,
        MultVariableU32Pkt,
        MultVariableDoublePkt,
        MultVariableStringPkt,
        MultVariableU32ArrayPkt,
        MultVariableDoubleArrayPkt,
    )
}
