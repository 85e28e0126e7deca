"""Fuzz the ADARA framer, every packet type's decoder and the listener's packet handlers with mutated packets.

    python -m livereduce.listeners.adara.fuzz --cases 1000000 [--seed 0] [--conformance DIR]

Seeds: one packet of every type built with the `packets` encoders, the packets of a short synthetic run
(`livereduce.servers.adara_synthetic`, when importable), the recorded conformance packets
(`../shared/conformance/adara/*.bin` next to the repository, or `--conformance`), and known poison (a PV
value whose type disagrees with its descriptor, XML naming an unknown encoding, entity declarations, a small
geometry declaring millions of pixels). A seeded numpy mutator then flips bits, sets bytes, truncates (with and
without fixing the length), sets the length word to extremes, swaps type codes, changes versions and times,
sets payload words to extremes, inserts and deletes words, splices payloads and appends garbage.

Each case goes three ways: the mutated packet is decoded directly (`packets.decode`); it is framed by a fresh
`Parser`, followed by two valid heartbeats (so an oversize header must resynchronise onto them); and every
packet the parser yields is dispatched to one long-lived `AdaraListener` (no socket; run boundaries are
extracted as the session would). The only documented failures are `ProtocolError` from the framer (counted as
protocol errors, as are the oversize and misaligned headers it resynchronises over; every other case frames
the way the listener does, resynchronising misaligned headers too) and the counted bad-packet path (a decoder's
`PacketError`, or the listener's `bad_packets`). Anything else is unexpected: the summary line

    N cases, M protocol errors, K bad packets, U unexpected

is printed, the first few unexpected ones with their bytes, and the exit status is 1 if U > 0.
"""

from __future__ import annotations

import argparse
import logging
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livereduce.errors import NotYet, ProtocolError
from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.client import AdaraListener
from livereduce.listeners.adara.parser import Parser

S = 1117010897  # an EPICS second (2025)
DEVICE = (
    "<device><device_name>env</device_name><process_variables>"
    "<process_variable><pv_name>T</pv_name><pv_id>1</pv_id><pv_type>double</pv_type><pv_units>K</pv_units>"
    "</process_variable><process_variable><pv_name>Mode</pv_name><pv_id>2</pv_id><pv_type>string</pv_type>"
    "</process_variable><process_variable><pv_name>N</pv_name><pv_id>3</pv_id><pv_type>integer</pv_type>"
    "</process_variable><process_variable><pv_name>W</pv_name><pv_id>4</pv_id><pv_type>double array</pv_type>"
    "</process_variable></process_variables></device>"
)
GEOMETRY = (
    '<instrument name="FUZZ"><source z="-10"/><sample z="0"/><detectors first_id="0" count="64" l2="2" '
    'two_theta_first="10" two_theta_last="170"/><detector id="100" l2="3" two_theta="90"/><monitor id="1"/>'
    "</instrument>"
)
MAX_REPORTED = 5


def _u32(*v) -> np.ndarray:
    return np.array(v, np.uint32)


def encoder_seeds() -> list[bytes]:
    """One packet of every type the codec knows (and a few variants), from the `packets` encoders."""
    banks = [P.EventBank(2, _u32(1000, 7), _u32(3, 9)), P.EventBank(0xFFFFFFFE, _u32(5), _u32(0x80000000))]
    C, M = P.RunStatusCode, P.MarkerType
    bodies: list = [
        P.BankedEventPkt(1549703, 937987556, 60, 4, 0x303, [P.EventSource(11, 5, 63112, True, banks)]),
        P.BankedEventPkt(
            10, 0, 1, 0, 0, [P.EventSource(1, 0, 0, False, [P.EventBank(1, _u32(5), _u32(100))])]
        ),
        P.BeamMonitorPkt(23, 1, 2, 0, 0, [P.MonitorSection(1, 0, 5, True, _u32(0x8001BFA5, 7))]),
        P.RTDLPkt(),
        P.RunStatusPkt(7, S, C.NEW_RUN),
        P.RunStatusPkt(7, S, C.STATE),
        P.RunStatusPkt(7, S, C.END_RUN),
        P.RunStatusPkt(8, S + 60, C.NEW_RUN),
        P.RunStatusPkt(0, 0, C.NO_RUN),
        P.RunInfoPkt("<runinfo><proposal_id>IPTS-1</proposal_id><run_title>t</run_title></runinfo>"),
        P.TransCompletePkt(3, "done"),
        P.ClientHelloPkt(1, 2),
        P.AnnotationPkt(M.PAUSE, 0, "pause"),
        P.AnnotationPkt(M.RESUME, 0, "resume"),
        P.AnnotationPkt(M.SCAN_START, 2, "scan", True),
        P.SyncPkt(P.SYNC_SIGNATURE, 42, "sync"),
        P.HeartbeatPkt(),
        P.DataDonePkt(),
        P.GeometryPkt(GEOMETRY),
        P.BeamlineInfoPkt("BL3", "SNAP", "SNAP"),
        P.DeviceDescriptorPkt(5, DEVICE),
        P.VariableU32Pkt(5, 3, value=7),
        P.VariableDoublePkt(5, 1, value=295.5),
        P.VariableStringPkt(5, 2, value="powder"),
        P.VariableU32ArrayPkt(5, 4, value=[1, 2, 3]),
        P.VariableDoubleArrayPkt(5, 4, value=[1.5, 2.5]),
        P.MultVariableU32Pkt(5, 3, tofs=[0, 10], values=[1, 2]),
        P.MultVariableDoublePkt(5, 1, tofs=[0, 10], values=[1.0, 2.0]),
        P.MultVariableStringPkt(5, 2, tofs=[0, 10], values=["a", "bc"]),
        P.MultVariableU32ArrayPkt(5, 4, tofs=[0], values=[[1, 2]]),
        P.MultVariableDoubleArrayPkt(5, 4, tofs=[0], values=[[1.0]]),
        P.OpaquePkt(int(P.Type.PIXEL_MAPPING), b"\1\0\0\0" * 4),
        P.OpaquePkt(0x7777, b"abcd"),
    ]
    return [P.encode(b, S + 1, 5) for b in bodies]


def poison_seeds() -> list[bytes]:
    """Packets whose contents are inconsistent: each must be dropped and counted, never drop the connection."""
    bomb = '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><device>&b;</device>'
    bodies = [
        P.VariableStringPkt(5, 1, value="not a double"),  # T is a double
        P.VariableDoubleArrayPkt(5, 3, value=[1.0, 2.0]),  # N is an integer
        P.DeviceDescriptorPkt(6, '<?xml version="1.0" encoding="bogus"?><device/>'),
        P.DeviceDescriptorPkt(6, bomb),
        P.GeometryPkt('<instrument name="X"><detectors first_id="0" count="16777216" l2="2"/></instrument>'),
        P.GeometryPkt("<instrument"),
        P.RunInfoPkt('<?xml version="1.0" encoding="utf-16"?><runinfo/>'),
    ]
    return [P.encode(b, S + 1, 5) for b in bodies]


def synthetic_seeds(limit: int = 40) -> list[bytes]:
    """Packets of a short synthetic run from the fake SMS's generator (none when it cannot be imported)."""
    try:
        from livereduce.servers.adara_synthetic import SyntheticRuns
    except ImportError:
        return []
    runs = SyntheticRuns(np.random.default_rng(1), pixels=64, banks=2, rate=600.0, run_seconds=0.1, runs=1)
    seen: set[int] = set()
    out: list[bytes] = []
    for _, data in runs:
        key = struct.unpack_from("<I", data, 4)[0]
        if key not in seen or len(out) < limit:
            seen.add(key)
            out.append(data)
    return out


def conformance_seeds(directory: Path | None) -> list[bytes]:
    if directory is None:
        directory = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "adara"
    return [p.read_bytes() for p in sorted(directory.glob("*.bin"))] if directory.is_dir() else []


TYPES = np.array(sorted(P.KNOWN_TYPES), np.uint32)
EXTREMES = np.array([0, 1, 4, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFC, 0xFFFFFFFF], np.uint32)
HEARTBEATS = P.encode(P.HeartbeatPkt(), S + 2, 0) + P.encode(P.HeartbeatPkt(), S + 3, 0)


def mutate(rng: np.random.Generator, data: bytes, seeds: list[bytes]) -> bytes:
    """One mutation of a framed packet (about one case in 13 stays valid)."""
    b = bytearray(data)
    kind = int(rng.integers(13))
    n = len(b)
    if kind == 0:  # bit flips anywhere
        for i in rng.integers(0, n, int(rng.integers(1, 9))):
            b[i] ^= 1 << int(rng.integers(8))
    elif kind == 1 and n > 16:  # bytes set at random in the payload
        for i in rng.integers(16, n, int(rng.integers(1, 9))):
            b[i] = int(rng.integers(256))
    elif kind == 2 and n > 16:  # truncated payload, length fixed up
        k = 16 + 4 * int(rng.integers(0, (n - 16) // 4 + 1))
        b = b[:k]
        struct.pack_into("<I", b, 0, k - 16)
    elif kind == 3:  # truncated, the header still claiming the full length
        b = b[: int(rng.integers(1, n + 1))]
    elif kind == 4:  # the length word set to an extreme
        choices = [
            0,
            4,
            n - 20,
            n - 12,
            0xFFFFFFFC,
            0xFFFFFFFF,
            0x7FFFFFFC,
            P.max_payload(b[5] | b[6] << 8) + 4,
        ]
        struct.pack_into("<I", b, 0, int(choices[int(rng.integers(len(choices)))]) & 0xFFFFFFFF)
    elif kind == 5:  # type code swapped for another known type
        struct.pack_into("<I", b, 4, (int(TYPES[rng.integers(TYPES.size)]) << 8) | b[4])
    elif kind == 6:  # version
        b[4] = int(rng.integers(256)) if rng.random() < 0.5 else int(rng.integers(3))
    elif kind == 7 and n >= 20:  # a payload word (a count, a length, an id) set to an extreme
        w = int(rng.integers(4, n // 4))
        value = int(EXTREMES[rng.integers(EXTREMES.size)]) if rng.random() < 0.8 else n - 16 + 4
        struct.pack_into("<I", b, 4 * w, value & 0xFFFFFFFF)
    elif kind == 8 and n >= 20:  # a word inserted or deleted, length fixed up
        w = 4 * int(rng.integers(4, n // 4 + 1))
        if rng.random() < 0.5:
            b[w:w] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        else:
            del b[max(16, w - 4) : max(20, w)]
        struct.pack_into("<I", b, 0, max(0, len(b) - 16))
    elif kind == 9:  # another packet's payload under this header
        other = seeds[int(rng.integers(len(seeds)))]
        b = b[:16] + bytearray(other[16:])
        struct.pack_into("<I", b, 0, len(b) - 16)
    elif kind == 10:  # times at the edges
        struct.pack_into(
            "<2I", b, 8, *[(0, 0), (0xFFFFFFFF, 999_999_999), (S, 0xFFFFFFFF)][int(rng.integers(3))]
        )
    elif kind == 11:  # garbage after the packet
        b += rng.integers(0, 256, 4 * int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
    return bytes(b)


@dataclass
class Result:
    cases: int = 0
    protocol_errors: int = 0
    bad_packets: int = 0
    unexpected: int = 0
    packets: int = 0
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.cases} cases, {self.protocol_errors} protocol errors, {self.bad_packets} bad packets, "
            f"{self.unexpected} unexpected"
        )


class _Fuzzer:
    def __init__(self, seed: int, conformance: Path | None):
        self.rng = np.random.default_rng(seed)
        self.seeds = encoder_seeds() + poison_seeds() + synthetic_seeds() + conformance_seeds(conformance)
        self.result = Result()
        self.listener = self._new_listener()

    def _new_listener(self) -> AdaraListener:
        listener = AdaraListener(pixels=128, init_wait=0.0)
        seeds = encoder_seeds()
        for data in (seeds[4], seeds[18], seeds[20]):  # a run, its geometry, its process variables
            for packet in Parser().parse(data):
                listener._dispatch(packet)
        return listener

    def _unexpected(self, where: str, data: bytes, exc: BaseException | None = None) -> None:
        self.result.unexpected += 1
        if len(self.result.examples) < MAX_REPORTED:
            detail = "".join(traceback.format_exception(exc)) if exc is not None else ""
            self.result.examples.append(f"{where}: {data[:96].hex()}\n{detail}")

    def _bad_total(self) -> tuple[int, int]:
        state = self.listener.state()
        return sum(state["bad_packets"].values()), state["handler_errors"]

    def _drain(self) -> None:
        try:
            self.listener.extract()
        except NotYet:
            pass

    def case(self) -> None:
        r, rng = self.result, self.rng
        data = mutate(rng, self.seeds[int(rng.integers(len(self.seeds)))], self.seeds)
        r.cases += 1
        bad = False
        # 1. the decoder alone, on whatever payload the mutation left
        if len(data) >= 16:
            _, fmt, sec, nsec = struct.unpack_from("<4I", data, 0)
            try:
                P.decode(P.Packet(fmt >> 8, fmt & 0xFF, sec, nsec, data[16:]))
            except P.PacketError:
                bad = True
            except Exception as exc:
                self._unexpected("decoder", data, exc)
        # 2. the framer, then 3. the listener's handlers for every packet framed
        parser = Parser(capacity=256, resync_misaligned=bool(r.cases % 2))  # odd cases: as the listener
        before, errors_before = self._bad_total()
        try:
            for packet in parser.parse(data + HEARTBEATS):
                r.packets += 1
                self.listener._dispatch(packet)
                if self.listener._hold is not None:  # a run boundary: extract, as the session would
                    self._drain()
        except ProtocolError:
            r.protocol_errors += 1
        except Exception as exc:
            self._unexpected("framer/listener", data, exc)
        else:
            r.protocol_errors += parser.oversize_packets + parser.misaligned_packets > 0
        after, errors_after = self._bad_total()
        if errors_after > errors_before:
            self._unexpected(f"handler: {self.listener.state()['last_bad_packet']}", data)
        bad = bad or after > before
        r.bad_packets += bad
        if r.cases % 2000 == 0:
            self._drain()
            if r.cases % 100_000 == 0:  # keep logs and buffers small over a long run
                self.listener = self._new_listener()


def run(cases: int, seed: int = 0, conformance: Path | None = None, progress: bool = False) -> Result:
    """Run `cases` fuzz cases; the listener's logs are silenced meanwhile (everything is counted)."""
    logger = logging.getLogger("livereduce.listener.adara")
    level, logger.level = logger.level, logging.CRITICAL + 1
    fuzzer = _Fuzzer(seed, conformance)
    t0 = time.perf_counter()
    try:
        for i in range(cases):
            fuzzer.case()
            if progress and (i + 1) % 100_000 == 0:
                print(f"  {fuzzer.result.summary()} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    finally:
        logger.setLevel(level)
    fuzzer.result.seconds = time.perf_counter() - t0
    return fuzzer.result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m livereduce.listeners.adara.fuzz", description=__doc__.split("\n")[0]
    )
    p.add_argument("--cases", type=int, default=100_000, help="number of mutated packets (default 100000)")
    p.add_argument("--seed", type=int, default=0, help="mutator seed (default 0)")
    p.add_argument("--conformance", type=Path, default=None, help="directory of recorded .bin packets")
    p.add_argument("--progress", action="store_true", help="a line every 100000 cases on stderr")
    a = p.parse_args(argv)
    result = run(a.cases, a.seed, a.conformance, a.progress)
    for example in result.examples:
        print(example)
    print(f"{result.summary()} ({result.packets} packets framed, {result.seconds:.1f} s)")
    return 1 if result.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
