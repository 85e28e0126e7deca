"""Streaming ADARA framer: bytes in (split anywhere), whole packets out.

Framing rules. A header whose length exceeds its type's documented bound (`packets.PAYLOAD_BOUNDS`; the generic
8 MiB ceiling for unknown types) is an *oversize* framing error: logged (at most one line per minute), counted
(`oversize_packets`) and *resynchronised*: the parser scans forward, byte by byte and vectorised, for the next
plausible header instead of trusting (or skipping) the claimed length, so one corrupt length word costs only
the bytes up to the next packet. A payload length that is not a multiple of 4 means the stream is not ADARA
(or is out of step): counted (`misaligned_packets`) and, by default, `ProtocolError` so the caller drops the
connection (the reference parser's rule); with `resync_misaligned` (the listener's choice: a misaligned header
stored in the SMS would otherwise drop every replay of the run at the same place) it is resynchronised too.

A plausible header has a known type, a version of at most `MAX_VERSION`, an aligned length within its bound,
nanoseconds below 10^9, non-zero seconds within `RESYNC_WINDOW_S` of the last good packet; its payload must
decode (types with a decoder) and the header after it must be plausible too. The parser waits for the bytes
that check needs (the first candidate that can be confirmed wins). When no plausible header turns up within
`resync_limit` bytes, resynchronisation is impossible: `ProtocolError`, and the listener drops the connection
and reconnects. No framing error passes without being counted and logged.

Unknown types within the generic bound are skipped and counted (or passed through with `keep_unknown`, for
replaying captures verbatim).

Iteration is pull-based and lazy: a consumer may stop after any packet (back-pressure at a run boundary) and
the rest stays buffered for the next iteration. Yielded payloads are independent `bytes`.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import numpy as np

from livereduce.errors import ProtocolError
from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.packets import HEADER, HEADER_SIZE, KNOWN_TYPES, MAX_PACKET, Packet

log = logging.getLogger("livereduce.listener.adara")

MAX_VERSION = 3  # packet versions seen so far are 0 and 1; a resync candidate must not claim more than this
RESYNC_WINDOW_S = 7 * 86400  # a resync candidate's time must be this close to the last good packet's
RESYNC_LIMIT = MAX_PACKET  # bytes thrown away while resynchronising before giving up on the connection
_TYPES = np.array(sorted(KNOWN_TYPES), np.int64)
_BOUNDS = np.array([P.max_payload(int(t)) for t in _TYPES], np.int64)


class LogLimiter:
    """At most one log line per key per `period` seconds; says how many were held back in between."""

    def __init__(self, logger: logging.Logger, period: float = 60.0):
        self.log, self.period = logger, period
        self._last: dict[object, float] = {}
        self._held: dict[object, int] = {}

    def __call__(self, key: object, level: int, msg: str, *args) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            msg += " (%d more like this in the last %.0f s not logged)"
            args = (*args, held, self.period)
        self.log.log(level, msg, *args)
        return True


def plausible_header(n: int, fmt: int, sec: int, nsec: int, ref_sec: int) -> bool:
    """Whether a header could start a packet, by its own fields (`ref_sec`: last good packet's seconds, or 0)."""
    ptype = fmt >> 8
    return (
        ptype in KNOWN_TYPES
        and (fmt & 0xFF) <= MAX_VERSION
        and n % 4 == 0
        and n <= P.max_payload(ptype)
        and nsec < 1_000_000_000
        and sec != 0
        and (not ref_sec or abs(sec - ref_sec) <= RESYNC_WINDOW_S)
    )


def _candidates(data: bytes, ref_sec: int) -> np.ndarray:
    """Offsets in `data` where a plausible header starts (its own fields only), ascending; vectorised."""
    found = []
    for o in range(4):
        m = (len(data) - o) // 4
        if m < 4:
            continue
        w = np.frombuffer(data, "<u4", m, o).astype(np.int64)
        n, fmt, sec, nsec = w[:-3], w[1:-2], w[2:-1], w[3:]
        ptype = fmt >> 8
        i = np.minimum(np.searchsorted(_TYPES, ptype), _TYPES.size - 1)
        ok = (_TYPES[i] == ptype) & ((fmt & 0xFF) <= MAX_VERSION) & (n % 4 == 0) & (n <= _BOUNDS[i])
        ok &= (nsec < 1_000_000_000) & (sec != 0)
        if ref_sec:
            ok &= np.abs(sec - ref_sec) <= RESYNC_WINDOW_S
        found.append(o + 4 * np.flatnonzero(ok))
    return np.sort(np.concatenate(found)) if found else np.empty(0, np.int64)


def find_header(data: bytes, ref_sec: int) -> tuple[int, bool, int]:
    """(offset, confirmed, need). Confirmed: a packet starts at `offset` (its payload decodes and the header
    after it is plausible); the first confirmed candidate wins over an earlier one that cannot be checked yet
    (its bytes have not all arrived), since a false candidate may claim megabytes. Not confirmed: every offset
    before `offset` is ruled out; look again once `need` bytes from `offset` are there."""
    pending, ready = -1, 0  # first candidate that cannot be checked yet; where the next one can be
    for p in (int(x) for x in _candidates(data, ref_sec)):
        n, fmt, sec, _ = HEADER.unpack_from(data, p)
        end = p + HEADER_SIZE + n
        if end + HEADER_SIZE > len(data):
            if pending < 0:  # its payload or the next header has not arrived yet
                pending, ready = p, end + HEADER_SIZE
            ready = min(ready, end + HEADER_SIZE)
            continue
        cls = P.CLASSES.get(fmt >> 8)
        if cls is not None:
            try:
                cls.decode(memoryview(data)[p + HEADER_SIZE : end], fmt & 0xFF)
            except Exception:  # noqa: S112 - any failure rules the candidate out
                continue
        n2, fmt2, sec2, nsec2 = HEADER.unpack_from(data, end)
        if plausible_header(n2, fmt2, sec2, nsec2, sec):
            return p, True, 0
    if pending >= 0:  # look again when the first waiting candidate can be checked, or the data has doubled
        return pending, False, min(ready - pending, 2 * (len(data) - pending) + (64 << 10))
    return max(0, len(data) - HEADER_SIZE + 1), False, HEADER_SIZE


class Parser:
    def __init__(
        self,
        *,
        max_packet: int = MAX_PACKET,
        keep_unknown: bool = False,
        capacity: int = 1 << 20,
        resync_limit: int = RESYNC_LIMIT,
        source: str = "the ADARA stream",
        resync_misaligned: bool = False,
        limiter: LogLimiter | None = None,
    ):
        self.max_packet = max_packet
        self._generic_bound = min(P.GENERIC_MAX_PAYLOAD, max_packet - HEADER_SIZE)
        self._bounds = {t: min(b, max_packet - HEADER_SIZE) for t, b in P.MAX_PAYLOAD.items()}
        self.keep_unknown = keep_unknown
        self.resync_limit = resync_limit
        self.resync_misaligned = resync_misaligned
        self.source = source
        self._buf = bytearray(capacity)
        self._pos = 0  # first unparsed byte
        self._end = 0  # end of received bytes
        self._resyncing = False
        self._skipped_now = 0  # bytes thrown away by the resynchronisation under way
        self._need = 0  # bytes the resynchronisation waits for before it looks again
        self._last_sec = 0  # seconds of the last good header
        self._limiter = limiter or LogLimiter(log)  # the listener shares one across its connections
        self.packets = 0
        self.discarded_unknown = 0
        self.oversize_packets = 0  # headers claiming more than their type's bound
        self.misaligned_packets = 0  # headers whose payload length is not a multiple of 4
        self.resyncs = 0  # resynchronisations completed
        self.resync_bytes_skipped = 0
        self.bytes_fed = 0

    COUNTERS = (
        "packets",
        "discarded_unknown",
        "oversize_packets",
        "misaligned_packets",
        "resyncs",
        "resync_bytes_skipped",
    )

    @property
    def buffered(self) -> int:
        return self._end - self._pos

    @property
    def resyncing(self) -> bool:
        return self._resyncing

    def _room(self, n: int) -> None:
        """Make n free bytes after the data: move the live bytes to the front, grow if still short."""
        buf = self._buf
        if len(buf) - self._end >= n:
            return
        live = self._end - self._pos
        if self._pos:
            buf[:live] = buf[self._pos : self._end]
            self._pos, self._end = 0, live
        if len(buf) - live < n:
            grown = bytearray(max(2 * len(buf), live + n))
            grown[:live] = buf[:live]
            self._buf = grown

    def feed(self, data) -> None:
        data = memoryview(data).cast("B")
        self._room(len(data))
        self._buf[self._end : self._end + len(data)] = data
        self._end += len(data)
        self.bytes_fed += len(data)

    def recv_from(self, sock: socket.socket, size: int = 1 << 20) -> int:
        """Receive straight into the buffer (no intermediate copy); returns the byte count, 0 at EOF."""
        self._room(size)
        with memoryview(self._buf) as view:
            n = sock.recv_into(view[self._end : self._end + size])
        self._end += n
        self.bytes_fed += n
        return n

    def _framing_error(self, kind: str, what: str, fmt: int) -> None:
        self._limiter(
            kind,
            logging.ERROR,
            "protocol error in %s: a header (type 0x%04x v%d) at stream byte %d %s; resynchronising on the "
            "next plausible header (the claimed length is not skipped)",
            self.source,
            fmt >> 8,
            fmt & 0xFF,
            self.bytes_fed - (self._end - self._pos),
            what,
        )
        self._resyncing, self._skipped_now, self._need = True, 1, 0
        self._pos += 1  # the bad header's first byte can not start a packet
        self.resync_bytes_skipped += 1

    def _resync(self) -> bool:
        """Look for the next packet start; True when found (the parser is back in step)."""
        start, end = self._pos, self._end
        if end - start < self._need:
            return False
        offset, confirmed, self._need = find_header(bytes(self._buf[start:end]), self._last_sec)
        self._pos += offset
        self._skipped_now += offset
        self.resync_bytes_skipped += offset
        if self._skipped_now > self.resync_limit:
            raise ProtocolError(
                f"no plausible ADARA header within {self._skipped_now} bytes after a framing error: "
                "cannot resynchronise"
            )
        if confirmed:
            self._resyncing = False
            self.resyncs += 1
            self._limiter(
                "resync",
                logging.WARNING,
                "back in step with %s after skipping %d bytes",
                self.source,
                self._skipped_now,
            )
        return confirmed

    def __iter__(self) -> Iterator[Packet]:
        while True:
            if self._resyncing and not self._resync():
                return
            buf = self._buf
            avail = self._end - self._pos
            if avail < HEADER_SIZE:
                return
            n, fmt, sec, nsec = HEADER.unpack_from(buf, self._pos)
            ptype = fmt >> 8
            bound = self._bounds.get(ptype, self._generic_bound)
            if n % 4:
                self.misaligned_packets += 1
                if not self.resync_misaligned:
                    raise ProtocolError(
                        f"payload length {n} is not a multiple of 4 (format 0x{fmt:08x}): "
                        "not an ADARA stream, or out of step"
                    )
                self._framing_error("misaligned", f"claims a {n}-byte payload, not a multiple of 4", fmt)
                continue
            if n > bound:
                self.oversize_packets += 1
                what = f"claims a {n}-byte payload, over the {bound}-byte bound of its type"
                self._framing_error("oversize", what, fmt)
                continue
            total = n + HEADER_SIZE
            if avail < total:
                return
            start = self._pos
            self._pos += total
            self._last_sec = sec
            if ptype not in KNOWN_TYPES and not self.keep_unknown:
                self.discarded_unknown += 1
                continue
            with memoryview(buf) as view:
                payload = bytes(view[start + HEADER_SIZE : start + total])
            self.packets += 1
            yield Packet(ptype, fmt & 0xFF, sec, nsec, payload)

    def parse(self, data) -> list[Packet]:
        """Feed bytes and return every packet now complete."""
        self.feed(data)
        return list(self)
