"""Fuzz the ISIS decoders: the IDC client's replies and the event stream, with seeded mutations.

    python -m livereduce.listeners.isis_fuzz --cases 1000000 [--seed 1] [--jobs 2]
    python -m livereduce.listeners.isis_fuzz --replay 12345 [--seed 1]      # one case, with its traceback

Each case takes a valid conversation, mutates it and feeds it, from memory, to the real decoding code:

- `histogram`: a whole extract of the histogram listener (the open handshake's reply, then NPER, NSP1, NTC1,
  RTCB1, UDET, SPEC, NMON, MDET, GETDAT per period, RRPB, NAME), as `IDCClient.over` + `extract()`;
- `side_channel`: the event listener's spectrum table over IDC (handshake, NSP1, UDET, SPEC, NAME);
- `event_stream`: the event stream (setup, neutron frames, an SE packet) through `_Stream.decode`, then
  `extract()`.

Mutations (one to three per case): bit flips, truncation, extreme values in length / type / dimension /
count fields of a message header, extreme integers or floats (NaN, ±inf, 1e30) in data values, swapped
message types, and messages dropped, duplicated or swapped.

Documented outcomes, i.e. what the listeners are built to handle: a ProtocolError (the connection is dropped
and made again), EOFError (the bytes ran out: the peer closed; dropped and made again), NotYet from
`extract()` (the histogram listener dropped the connection; nothing to give yet), a chunk, and frames or
events dropped and counted at decode. Anything else is undocumented and reported by exception type and code
site, with the first case that raised it; the chunks returned are also checked (finite TOF, indices within
the spectra, bin edges finite and increasing, shapes consistent). Exit status 1 if anything undocumented
turned up.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import struct
import sys
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from livereduce.errors import NotYet, ProtocolError
from livereduce.listeners import idc
from livereduce.listeners.isis_event import (
    HEADER as EV_HEADER,
)
from livereduce.listeners.isis_event import (
    MARKER as EV_MARKER,
)
from livereduce.listeners.isis_event import (
    NEUTRON,
    SETUP,
    ISISEventListener,
    pack_frame,
    pack_setup,
)
from livereduce.listeners.isis_event import (
    SE_TYPE as EV_SE,
)
from livereduce.listeners.isis_event import (
    VERSION as EV_VERSION,
)
from livereduce.listeners.isis_histogram import ISISHistogramListener

TARGETS = ("histogram", "side_channel", "event_stream")
INTS = (0, 1, -1, 2, 3, 7, 8, 88, 89, 255, 256, 65535, 65536, 1 << 20, 1 << 24, 2**31 - 1, -(2**31), -2, 12)
FLOATS = (float("nan"), float("inf"), float("-inf"), 1e30, -1e30, 0.0, -0.0, 1e-45, 3.4e38, -1.0)


class ByteSocket:
    """Enough of a socket for the decoders: reads come from `data`, writes are discarded."""

    def __init__(self, data: bytes):
        self._data = memoryview(data)
        self._pos = 0

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        n = nbytes or len(buffer)
        k = min(n, len(self._data) - self._pos)
        buffer[:k] = self._data[self._pos : self._pos + k]
        self._pos += k
        return k

    def sendall(self, data) -> None:
        pass

    def settimeout(self, timeout) -> None:
        pass

    def gettimeout(self):
        return None

    def close(self) -> None:
        pass


# -- the valid conversations ----------------------------------------------------------------------------------
NPER, NSPEC, NMON, NBINS = 2, 4, 2, 5
NSP1 = NSPEC + NMON


def _parameters() -> dict[str, tuple[int, np.ndarray | bytes]]:
    rrpb = np.zeros(32, np.float32)
    rrpb[8] = 3.14
    return {
        "NPER": (idc.INT32, np.array([NPER])),
        "NSP1": (idc.INT32, np.array([NSP1])),
        "NTC1": (idc.INT32, np.array([NBINS])),
        "RTCB1": (idc.REAL32, 10000.0 + 100.0 * np.arange(NBINS + 1)),
        "UDET": (idc.INT32, np.arange(1, NSP1 + 1)),
        "SPEC": (idc.INT32, np.arange(1, NSP1 + 1)),
        "NMON": (idc.INT32, np.array([NMON])),
        "MDET": (idc.INT32, np.arange(NSPEC + 1, NSP1 + 1)),
        "RRPB": (idc.REAL32, rrpb),
        "NAME": (idc.CHAR, b"MUSR"),
    }


def _reply(name: str) -> bytes:
    dtype, value = _parameters()[name]
    return idc.pack_message("OK", dtype, value)


def _histogram_messages() -> list[bytes]:
    messages = [idc.pack_message("OK")]  # the open handshake's reply
    messages += [_reply(n) for n in ("NPER", "NSP1", "NTC1", "RTCB1", "UDET", "SPEC", "NMON", "MDET")]
    for p in range(1, NPER + 1):
        index = np.arange((p - 1) * (NSP1 + 1), p * (NSP1 + 1))
        s = index % (NSP1 + 1)
        data = np.repeat((p * 1000 + s)[:, None], NBINS + 1, axis=1).astype(np.int32)
        messages.append(idc.pack_message("OK", idc.INT32, data))
    messages += [_reply("RRPB"), _reply("NAME")]
    return messages


def _side_channel_messages() -> list[bytes]:
    return [idc.pack_message("OK")] + [_reply(n) for n in ("NSP1", "UDET", "SPEC", "NAME")]


def _event_messages() -> list[bytes]:
    rng = np.random.default_rng(7)
    packets = [pack_setup(1234, 1_700_000_000, "MUSR")]
    for frame in range(3):
        n = 4 + 4 * frame
        tof = rng.uniform(10_000.0, 20_000.0, n)
        spectrum = rng.integers(0, NSP1 + 2, n)  # a few outside the table: unmapped, counted
        packets.append(pack_frame(frame, frame % 2, 0.01, 0.02 * frame, tof, spectrum))
    se = struct.pack("<4i", 0, 0, 0, 0)
    packets.append(EV_HEADER.pack(EV_MARKER, EV_MARKER, EV_VERSION, EV_HEADER.size + len(se), EV_SE) + se)
    return packets


MESSAGES = {
    "histogram": _histogram_messages(),
    "side_channel": _side_channel_messages(),
    "event_stream": _event_messages(),
}


# -- mutation ---------------------------------------------------------------------------------------------------
def _fields(target: str, message: bytes) -> list[tuple[int, str]]:
    """Byte offsets and struct formats of a message's header fields (lengths, types, dims, counts, times)."""
    if target != "event_stream":
        return [(0, "<i"), (4, "<i"), (8, "<i")] + [(12 + 4 * k, "<i") for k in range(11)]
    fields = [(0, "<I"), (4, "<I"), (8, "<I"), (12, "<I"), (16, "<I")]
    body = EV_HEADER.size
    kind = struct.unpack_from("<I", message, 16)[0] if len(message) >= 20 else 0
    if kind == 1 and len(message) >= body + SETUP.size:  # changed, length, start_time, run, state
        fields += [(body, "<i"), (body + 4, "<I"), (body + 8, "<q"), (body + 16, "<i"), (body + 20, "<i")]
    if kind == 2 and len(message) >= body + NEUTRON.size:  # length, frame, period, protons, t0, nevents
        fields += [(body + 4 * k, f) for k, f in enumerate(("<I", "<I", "<I", "<f", "<f", "<I"))]
    return fields


def _data_start(target: str, message: bytes) -> int:
    if target != "event_stream":
        return idc.HEADER.size
    kind = struct.unpack_from("<I", message, 16)[0] if len(message) >= 20 else 0
    return EV_HEADER.size + (NEUTRON.size if kind == 2 else 0)


def _extreme(rng: random.Random, fmt: str) -> bytes:
    if fmt.endswith("f"):
        return struct.pack("<f", rng.choice(FLOATS))
    value = rng.choice(INTS)
    if fmt.endswith("q"):
        return struct.pack("<q", rng.choice((value, 2**63 - 1, -(2**63), 2**40, -(2**40))))
    return struct.pack(fmt, value % 2**32 if fmt.endswith("I") else value)


def _set(message: bytearray, offset: int, raw: bytes) -> None:
    if offset + len(raw) <= len(message):
        message[offset : offset + len(raw)] = raw


def mutate(target: str, rng: random.Random) -> bytes:
    """One mutated conversation for `target`."""
    messages = [bytearray(m) for m in MESSAGES[target]]
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        op = rng.randrange(8)
        m = messages[rng.randrange(len(messages))] if messages else bytearray()
        if op == 0 and m:  # bit flips
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(m))
                m[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # an extreme value in a header field
            offset, fmt = rng.choice(_fields(target, bytes(m))) if len(m) >= 20 else (0, "<i")
            _set(m, offset, _extreme(rng, fmt))
        elif op == 2:  # an extreme value in the data (parameter values, event TOFs and spectra)
            start = _data_start(target, bytes(m))
            if len(m) >= start + 4:
                offset = start + 4 * rng.randrange((len(m) - start) // 4)
                _set(m, offset, _extreme(rng, rng.choice(("<i", "<f", "<I"))))
        elif op == 3 and len(m) >= 20:  # swapped types
            offset = 4 if target != "event_stream" else 16
            _set(m, offset, struct.pack("<i", rng.choice((0, 1, 2, 3, 4, 5, -1))))
        elif op == 4 and messages:  # messages dropped, duplicated or swapped
            i, j = rng.randrange(len(messages)), rng.randrange(len(messages))
            what = rng.randrange(3)
            if what == 0:
                del messages[i]
            elif what == 1:
                messages.insert(i, bytearray(messages[j]))
            else:
                messages[i], messages[j] = messages[j], messages[i]
        elif op == 5 and m:  # a message cut short or grown
            if rng.random() < 0.5:
                del m[rng.randrange(len(m)) :]
            else:
                m.extend(rng.randbytes(rng.randint(1, 16)))
        elif op == 6 and m:  # random bytes over a random place
            i = rng.randrange(len(m))
            raw = rng.randbytes(rng.randint(1, 8))
            m[i : i + len(raw)] = raw
        else:  # the whole conversation truncated
            data = b"".join(messages)
            return data[: rng.randrange(len(data) + 1)]
    return b"".join(messages)


# -- running one case --------------------------------------------------------------------------------------------
class Undocumented(Exception):
    """A chunk that breaks an invariant (reported like an undocumented exception)."""


def _check_histogram_chunk(chunk) -> None:
    h = chunk.histograms
    if h is None or h.edges.ndim != 1 or h.counts.ndim != 3:
        raise Undocumented("histogram chunk without proper histograms")
    if not (np.all(np.isfinite(h.edges)) and np.all(np.diff(h.edges) > 0)):
        raise Undocumented("bin edges not finite and increasing")
    if h.counts.shape[2] != h.edges.size - 1 or h.counts.shape[1] != len(chunk.spectra):
        raise Undocumented(
            f"counts {h.counts.shape} do not fit {h.edges.size} edges, {len(chunk.spectra)} spectra"
        )
    if h.counts.shape[0] != len(h.periods):
        raise Undocumented("periods do not match counts")


def _check_event_chunk(chunk) -> None:
    ev = chunk.events
    if ev is None:
        raise Undocumented("event chunk without events")
    if ev.tof.size and not np.all(np.isfinite(ev.tof)):
        raise Undocumented("non-finite TOF reached a chunk")
    if ev.index.size and int(ev.index.max()) >= len(chunk.spectra):
        raise Undocumented("event index outside the spectra")
    if ev.pulse_start.size and (int(ev.pulse_start[-1]) > len(ev) or np.any(np.diff(ev.pulse_start) < 0)):
        raise Undocumented("pulse starts inconsistent")


def run_case(target: str, data: bytes) -> str:
    """Feed one conversation to `target`; the documented outcome's name, or an exception propagates."""
    sock = ByteSocket(data)
    if target == "histogram":
        listener = ISISHistogramListener("127.0.0.1:1")
        try:
            client = idc.IDCClient.over(sock)
        except (ProtocolError, EOFError) as exc:
            return f"handshake {type(exc).__name__}"
        listener._client = client
        try:
            chunk = listener.extract()
        except NotYet:
            return "NotYet (dropped, reconnect)"
        _check_histogram_chunk(chunk)
        return "chunk"
    if target == "side_channel":
        event = ISISEventListener("127.0.0.1:1")
        try:
            event._spectra_from(idc.IDCClient.over(sock))
        except (ProtocolError, EOFError) as exc:
            return type(exc).__name__
        return "spectra"
    stream = ISISEventListener("127.0.0.1:1")
    stream._spectra_from(idc.IDCClient.over(ByteSocket(b"".join(MESSAGES["side_channel"]))))
    outcome = "end of input (EOFError)"
    try:
        stream._stream.decode(sock)
    except ProtocolError:
        outcome = "ProtocolError"
    except EOFError:
        pass
    try:
        chunk = stream.extract()
    except NotYet:
        return outcome + ", no setup (NotYet)"
    _check_event_chunk(chunk)
    dropped = stream.nonfinite_events_dropped + stream.bad_frames_dropped + stream.nonfinite_charge_frames
    return outcome + (", values dropped and counted" if dropped else "")


def _site(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "livereduce" in f.filename]
    where = frames[-1] if frames else traceback.extract_tb(exc.__traceback__)[-1]
    path = where.filename.split("livereduce/", 1)[-1]
    return f"{type(exc).__name__} at {path}:{where.lineno} ({where.name})"


def case_rng(seed: int, case: int) -> random.Random:
    return random.Random(seed * 1_000_003 + case)  # noqa: S311 - reproducible cases, not secrets


def run_range(seed: int, first: int, stop: int) -> tuple[Counter, dict[str, int], dict[str, str]]:
    """Cases first..stop-1: outcome counts, and per undocumented site the first case and its message."""
    outcomes: Counter = Counter()
    first_case: dict[str, int] = {}
    messages: dict[str, str] = {}
    for case in range(first, stop):
        target = TARGETS[case % len(TARGETS)]
        data = mutate(target, case_rng(seed, case))
        try:
            outcomes[f"{target}: {run_case(target, data)}"] += 1
        except Exception as exc:
            site = f"{target}: {_site(exc)}"
            outcomes["UNDOCUMENTED " + site] += 1
            if site not in first_case:
                first_case[site], messages[site] = case, str(exc)[:200]
    return outcomes, first_case, messages


def fuzz(cases: int, seed: int = 1, jobs: int = 1) -> dict:
    """Run `cases` cases (on `jobs` processes); a summary dict."""
    quiet = logging.getLogger("livereduce.listener")
    level, quiet.level = quiet.level, logging.CRITICAL + 1
    started = time.perf_counter()
    try:
        if jobs <= 1:
            parts = [run_range(seed, 0, cases)]
        else:
            step = -(-cases // (jobs * 8))
            bounds = [(seed, a, min(a + step, cases)) for a in range(0, cases, step)]
            with ProcessPoolExecutor(jobs) as pool:
                parts = list(pool.map(run_range, *zip(*bounds, strict=True)))
    finally:
        quiet.level = level
    outcomes: Counter = Counter()
    first_case: dict[str, int] = {}
    messages: dict[str, str] = {}
    for counts, firsts, texts in parts:
        outcomes.update(counts)
        for site, case in firsts.items():
            if site not in first_case or case < first_case[site]:
                first_case[site], messages[site] = case, texts[site]
    undocumented = sum(n for k, n in outcomes.items() if k.startswith("UNDOCUMENTED"))
    return {
        "cases": cases,
        "seed": seed,
        "seconds": time.perf_counter() - started,
        "outcomes": dict(sorted(outcomes.items())),
        "undocumented": undocumented,
        "sites": {site: (first_case[site], messages[site]) for site in sorted(first_case)},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m livereduce.listeners.isis_fuzz",
        description="Fuzz the ISIS IDC client replies and event stream decoder with seeded mutations.",
    )
    p.add_argument("--cases", type=int, default=100_000, help="number of mutated inputs")
    p.add_argument("--seed", type=int, default=1, help="seed: the same seed gives the same cases")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--replay", type=int, default=None, help="run this one case and show its traceback")
    args = p.parse_args(argv)
    if args.replay is not None:
        target = TARGETS[args.replay % len(TARGETS)]
        data = mutate(target, case_rng(args.seed, args.replay))
        print(f"case {args.replay} ({target}, {len(data)} bytes): {data.hex()}")
        logging.basicConfig(level=logging.DEBUG)
        print(run_case(target, data))
        return 0
    result = fuzz(args.cases, args.seed, max(1, args.jobs))
    rate = result["cases"] / result["seconds"] if result["seconds"] else 0.0
    print(f"{result['cases']} cases, seed {result['seed']}, {result['seconds']:.1f} s ({rate:,.0f} cases/s)")
    for outcome, n in result["outcomes"].items():
        print(f"  {n:>9}  {outcome}")
    print(f"undocumented exceptions: {result['undocumented']} at {len(result['sites'])} code sites")
    for site, (case, message) in result["sites"].items():
        print(f"  {site}: first case {case} ({message}); replay with --replay {case} --seed {result['seed']}")
    return 1 if result["undocumented"] else 0


if __name__ == "__main__":
    sys.exit(main())
