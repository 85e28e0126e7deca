"""The fake SMS's synthetic instrument: the ADARA packets of runs back to back, as (time_ns, packet) pairs.

Each run: run status (NEW_RUN), beamline info, geometry, run info, a sample-environment device and its
values, a scan, then per 60 Hz pulse a BankedEvent (Poisson events over pixels split into banks, plus a few
error-bank events) and a beam monitor packet, the sample temperature once a second, an optional pause and
resume, and END_RUN. Heartbeats fill the gap between runs. Run numbers increment from `first_run`.

Event and monitor packets come from a pool of pulses encoded once per SyntheticRuns (vectorised numpy, the
listener's own encoders); each pulse replays a random pool entry with only its time and cycle patched, so
generation costs a few µs per pulse whatever its size (issue #12: ≥ 100 M events/s to drive the daemon).
`stream()` yields a pooled BankedEvent as a `PooledPacket` (a fresh 32-byte head, the pool's bytes as body:
the SMS sends and keeps it without copying); iterating yields plain bytes.

Also the packet helpers the replays share: `frame`, `geometry_xml`, `run_info_xml`.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import ClassVar, NamedTuple
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from livereduce.listeners.adara import packets as P

PULSE_NS = 1_000_000_000 // 60
POOL_BYTES = 256 << 20  # event bytes the pool may hold ...
POOL_PULSES = (8, 64)  # ... as at least / at most this many pulses
_TIME = struct.Struct("<2I")  # header words 2-3: EPICS seconds, nanoseconds
_CYCLE = struct.Struct("<I")  # payload word 2 of event and monitor packets
_CYCLE_AT = P.HEADER_SIZE + 8


class PooledPacket(NamedTuple):
    """A BankedEvent packet whose event sections are shared with the pool: `head` is this pulse's own header
    and pulse words (32 bytes), `body` the pool entry's sections (never copied), `events` its detector events
    (error banks excluded), so the server counts without walking the banks."""

    head: bytes
    body: memoryview
    events: int

    def __bytes__(self) -> bytes:
        return self.head + self.body


def packet_head(data: bytes | PooledPacket) -> bytes:
    """The bytes that hold a packet's header (HEADER.unpack_from works on them)."""
    return data.head if isinstance(data, PooledPacket) else data


def packet_parts(data: bytes | PooledPacket) -> tuple:
    """The buffers to send, in order, for a packet (no copy)."""
    return (data.head, data.body) if isinstance(data, PooledPacket) else (data,)


def detector_events(pkt: P.BankedEventPkt) -> int:
    """Events of a BankedEvent outside the error banks (what the SMS counts as sent)."""
    return sum(len(b.tof) for s in pkt.sources for b in s.banks if b.bank_id not in P.ERROR_BANKS)


def restamp(packet: bytes, time_ns: int, cycle: int) -> bytearray:
    """The first 32 bytes of a pooled event or monitor packet, with this pulse's time and cycle."""
    head = bytearray(packet[:32])
    _TIME.pack_into(head, 8, *P.epics_from_ns(time_ns))
    _CYCLE.pack_into(head, _CYCLE_AT, cycle)
    return head


def frame(body, time_ns: int, version: int | None = None) -> bytes:
    """A packet body framed with its header, stamped `time_ns`."""
    return P.encode(body, *P.epics_from_ns(time_ns), version=version)


def geometry_xml(
    name: str, pixels: int, first_id: int = 0, l1: float | None = 10.0, l2: float | None = 2.0, monitors=(1,)
) -> str:
    """Geometry in the listener's IDF subset (see livereduce.listeners.adara.geometry.parse_geometry)."""
    source = f'<source z="{-l1}"/><sample z="0.0"/>' if l1 is not None else ""
    angles = f' l2="{l2}" two_theta_first="10.0" two_theta_last="170.0"' if l2 is not None else ""
    mons = "".join(f'<monitor id="{m}"/>' for m in monitors)
    return (
        f'<instrument name={quoteattr(name)}>{source}<detectors first_id="{first_id}" count="{pixels}"'
        f"{angles}/>{mons}</instrument>"
    )


def run_info_xml(proposal: str, title: str) -> str:
    return (
        f"<runinfo><proposal_id>{escape(proposal)}</proposal_id><run_title>{escape(title)}</run_title>"
        "</runinfo>"
    )


DEVICE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<device xmlns="http://public.sns.gov/schema/device.xsd"><device_name>fake_env</device_name><process_variables>
<process_variable><pv_name>SampleTemp</pv_name><pv_id>1</pv_id><pv_type>double</pv_type><pv_units>K</pv_units>
</process_variable>
<process_variable><pv_name>SampleName</pv_name><pv_id>2</pv_id><pv_type>string</pv_type></process_variable>
<process_variable><pv_name>LoopStatus</pv_name><pv_id>3</pv_id><pv_type>enum_01</pv_type></process_variable>
</process_variables></device>"""


@dataclass
class SyntheticRuns:
    """Iterating yields the stream: NO_RUN, then `runs` runs (0: forever) starting now."""

    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    pixels: int = 1024
    banks: int = 4
    rate: float = 10_000.0  # detector events per second
    run_seconds: float | list[float] = 10.0  # a list: the k-th run lasts its k-th entry (cycled)
    runs: int = 0
    first_run: int = 1
    gap_seconds: float = 1.0
    instrument: str = "FAKE"
    proposal: str = "IPTS-0000"
    title: str = "fake run"
    pause_at: float | None = None  # seconds into each run
    pause_for: float = 1.0
    error_events: float = 0.5  # error-bank events per pulse
    monitor_rate: float = 100.0  # monitor events per second
    # a fuller pulse is sent as several packets (not a field: subclasses add fields, callers pass them by name)
    max_payload: ClassVar[int] = P.max_payload(P.Type.BANKED_EVENT)

    def __post_init__(self) -> None:
        self._pool: tuple[list[list[tuple[bytes, int]]], list[bytes]] | None = None

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        for t, data in self.stream():
            yield t, data if isinstance(data, bytes) else bytes(data)

    def stream(self) -> Iterator[tuple[int, bytes | PooledPacket]]:
        """As iterating, but BankedEvent packets come as PooledPackets (zero-copy; see `packet_parts`)."""
        self.pool()  # before the first time stamp, so building it never makes the first run late
        t = time.time_ns()
        run, k = self.first_run, 0
        yield t, frame(P.RunStatusPkt(0, 0, P.RunStatusCode.NO_RUN), t)
        while self.runs <= 0 or k < self.runs:
            seconds = self.run_length(k)
            yield from self.run(run, t, seconds)
            t += int(seconds * 1e9)
            for i in range(max(1, int(self.gap_seconds))):  # heartbeats between runs
                yield t + i * 1_000_000_000, frame(P.HeartbeatPkt(), t + i * 1_000_000_000)
            t += int(self.gap_seconds * 1e9)
            run, k = run + 1, k + 1

    def run_length(self, k: int) -> float:
        """Length of the k-th run: `run_seconds`, or its k-th entry (cycled) when it is a list."""
        lengths = self.run_seconds if isinstance(self.run_seconds, list | tuple) else [self.run_seconds]
        return float(lengths[k % len(lengths)])

    def run(self, run: int, t0: int, seconds: float) -> Iterator[tuple[int, bytes | PooledPacket]]:
        """The packets of one run starting at t0."""
        rng, epics = self.rng, P.epics_from_ns(t0)[0]
        M = P.MarkerType
        for body in (
            P.RunStatusPkt(run, epics, P.RunStatusCode.NEW_RUN),
            P.BeamlineInfoPkt("BL0", self.instrument[:8], self.instrument),
            P.GeometryPkt(geometry_xml(self.instrument, self.pixels)),
            P.RunInfoPkt(run_info_xml(self.proposal, f"{self.title} {run}")),
            P.DeviceDescriptorPkt(1, DEVICE_XML),
            P.VariableStringPkt(1, 2, value=f"sample of run {run}"),
            P.VariableU32Pkt(1, 3, value=1),
            P.AnnotationPkt(M.SCAN_START, 1, f"run {run} scan 1"),
        ):
            yield t0, frame(body, t0)
        pulses = max(1, round(seconds * 60))
        pause = (
            (round(self.pause_at * 60), round((self.pause_at + self.pause_for) * 60))
            if (self.pause_at is not None)
            else (-1, -1)
        )
        events, monitors = self.pool()
        picks = rng.integers(0, len(events), pulses)  # which pool entry each pulse replays
        for i in range(pulses):
            t, k = t0 + i * PULSE_NS, picks[i]
            if i in pause:
                marker = M.PAUSE if i == pause[0] else M.RESUME
                yield t, frame(P.AnnotationPkt(marker, 0, f"run {run} {marker.name.lower()}"), t)
            if i % 60 == 0:
                yield t, frame(P.VariableDoublePkt(1, 1, value=300.0 + rng.normal(0, 0.1)), t)
            for packet, count in events[k]:
                yield t, PooledPacket(bytes(restamp(packet, t, i % 600)), memoryview(packet)[32:], count)
            monitor = monitors[k]
            yield t, bytes(restamp(monitor, t, i % 600) + monitor[32:])
        t = t0 + pulses * PULSE_NS
        yield t, frame(P.AnnotationPkt(M.SCAN_STOP, 1, f"run {run} scan 1 done"), t)
        yield t, frame(P.RunStatusPkt(run, epics, P.RunStatusCode.END_RUN), t)

    def pool(self) -> tuple[list[list[tuple[bytes, int]]], list[bytes]]:
        """Per pool pulse, its framed event packets with their detector event counts (one packet, or several
        when the pulse would exceed `max_payload`); and per pool pulse its framed monitor packet. Built on
        first use; time and cycle are patched per pulse. Its size: as many pulses as POOL_BYTES holds at the
        mean rate, within POOL_PULSES, so a run rarely replays the same pulse twice in a row."""
        if self._pool is None:
            per_pulse = 8 * self.rate / 60 + 64
            size = int(min(max(POOL_BYTES // per_pulse, POOL_PULSES[0]), POOL_PULSES[1]))
            self._pool = (
                [
                    [(P.encode(part), detector_events(part)) for part in self._split(self._events(i))]
                    for i in range(size)
                ],
                [P.encode(self._monitor(i)) for i in range(size)],
            )
        return self._pool

    def _split(self, pkt: P.BankedEventPkt) -> list[P.BankedEventPkt]:
        """The pulse as packets of at most `max_payload` bytes, banks in order (a bank too large for one
        packet continues in the next with the same id), all with the pulse's words."""
        fixed = 32 + 8  # pulse words and source header, and one bank header
        room = (self.max_payload - fixed) // 8  # events per packet
        if room < 1:
            raise ValueError(f"max_payload {self.max_payload} holds no event")
        (source,) = pkt.sources
        parts: list[list[P.EventBank]] = [[]]
        left = room
        for bank in source.banks:
            start = 0
            while True:
                take = min(left, len(bank.tof) - start)
                parts[-1].append(
                    P.EventBank(
                        bank.bank_id, bank.tof[start : start + take], bank.pixel[start : start + take]
                    )
                )
                start, left = start + take, left - take
                if start == len(bank.tof):
                    break
                parts.append([])
                left = room
            left -= 1  # each bank header (8 bytes) costs one event's room
            if left < 1:
                parts.append([])
                left = room
        return [replace(pkt, sources=[replace(source, banks=banks)]) for banks in parts if banks]

    def _events(self, pulse: int) -> P.BankedEventPkt:
        """One pulse's detector events, sorted by pixel into banks; error-bank events first, if any."""
        rng, per_bank = self.rng, -(-self.pixels // self.banks)
        n = int(rng.poisson(self.rate / 60))
        pixel = np.sort(rng.integers(0, self.pixels, n, dtype=np.uint32))
        tof = rng.integers(10_000, 160_000, n, dtype=np.uint32)  # 1–16 ms in 100 ns units
        edges = np.searchsorted(pixel, np.arange(self.banks + 1) * per_bank)
        banks = [
            P.EventBank(b + 1, tof[edges[b] : edges[b + 1]], pixel[edges[b] : edges[b + 1]])
            for b in range(self.banks)
        ]
        bad = int(rng.poisson(self.error_events))
        if bad:
            banks.insert(
                0,
                P.EventBank(
                    P.ERROR_BANKS[0],
                    np.full(bad, 150_000, np.uint32),
                    np.full(bad, 0x80000000, np.uint32),
                ),
            )
        source = P.EventSource(0, 0, 0, True, banks)
        return P.BankedEventPkt(1_500_000, 940_000_000, pulse % 600, 0, 0, [source])

    def _monitor(self, pulse: int) -> P.BeamMonitorPkt:
        """One pulse's events of monitor 1."""
        m = int(self.rng.poisson(self.monitor_rate / 60))
        words = self.rng.integers(10_000, 160_000, m).astype(np.uint32) | np.uint32(1 << 31)
        section = P.MonitorSection(1, 0, 0, True, words)
        return P.BeamMonitorPkt(1_500_000, 940_000_000, pulse % 600, 0, 0, [section])


def add_run_options(p) -> None:
    """The options of the synthetic runs (and replays) every fake server takes alike (an argparse parser):
    fake-adara and fake-kafka play the same runs, so their options must not drift apart."""
    p.add_argument("--pixels", type=int, default=1024, help="detector pixels")
    p.add_argument("--banks", type=int, default=4, help="detector banks the pixels are split into")
    p.add_argument("--rate", type=float, default=10_000.0, help="detector events per second")
    p.add_argument("--run-seconds", type=float, default=10.0, help="length of each run")
    p.add_argument("--runs", type=int, default=0, help="number of runs (0: forever)")
    p.add_argument("--first-run", type=int, default=1, help="run number of the first run")
    p.add_argument("--gap-seconds", type=float, default=1.0, help="pause between runs")
    p.add_argument("--replay", default=None, help="a .adara capture or a NeXus event file")
    p.add_argument("--speed", choices=("original", "unlimited"), default="original", help="replay speed")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--exit-when-done", action="store_true", help="exit once every run has been sent")
