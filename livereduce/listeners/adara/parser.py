"""Streaming ADARA framer: bytes in (split anywhere), whole packets out.

Rules, as the reference parser has them: a payload length that is not a multiple of 4 means the stream is
not ADARA (or is out of step), so `ProtocolError` and the caller drops the connection. Packets longer than
8 MiB (header included) are skipped in pieces, without buffering them, and counted. Unknown types are skipped
and counted (or passed through with `keep_unknown`, for replaying captures verbatim).

Iteration is pull-based and lazy: a consumer may stop after any packet (back-pressure at a run boundary) and
the rest stays buffered for the next iteration. Yielded payloads are independent `bytes`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from livereduce.errors import ProtocolError
from livereduce.listeners.adara.packets import HEADER, HEADER_SIZE, KNOWN_TYPES, MAX_PACKET, Packet


class Parser:
    def __init__(self, *, max_packet: int = MAX_PACKET, keep_unknown: bool = False, capacity: int = 1 << 20):
        self.max_packet = max_packet
        self.keep_unknown = keep_unknown
        self._buf = bytearray(capacity)
        self._pos = 0  # first unparsed byte
        self._end = 0  # end of received bytes
        self._skip = 0  # bytes of an oversize packet still to throw away
        self.packets = 0
        self.discarded_unknown = 0
        self.discarded_oversize = 0
        self.bytes_fed = 0

    @property
    def buffered(self) -> int:
        return self._end - self._pos

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

    def _received(self, n: int) -> None:
        self._end += n
        self.bytes_fed += n
        if self._skip:
            k = min(self._skip, self._end - self._pos)
            self._pos += k
            self._skip -= k

    def feed(self, data) -> None:
        data = memoryview(data).cast("B")
        self._room(len(data))
        self._buf[self._end : self._end + len(data)] = data
        self._received(len(data))

    def recv_from(self, sock: socket.socket, size: int = 1 << 20) -> int:
        """Receive straight into the buffer (no intermediate copy); returns the byte count, 0 at EOF."""
        self._room(size)
        with memoryview(self._buf) as view:
            n = sock.recv_into(view[self._end : self._end + size])
        self._received(n)
        return n

    def __iter__(self) -> Iterator[Packet]:
        while True:
            buf = self._buf
            avail = self._end - self._pos
            if avail < HEADER_SIZE:
                return
            n, fmt, sec, nsec = HEADER.unpack_from(buf, self._pos)
            if n % 4:
                raise ProtocolError(
                    f"payload length {n} is not a multiple of 4 (format 0x{fmt:08x}): "
                    "not an ADARA stream, or out of step"
                )
            total = n + HEADER_SIZE
            if total > self.max_packet:
                self.discarded_oversize += 1
                k = min(total, avail)
                self._pos += k
                self._skip = total - k
                continue
            if avail < total:
                return
            start = self._pos
            self._pos += total
            if (fmt >> 8) not in KNOWN_TYPES and not self.keep_unknown:
                self.discarded_unknown += 1
                continue
            with memoryview(buf) as view:
                payload = bytes(view[start + HEADER_SIZE : start + total])
            self.packets += 1
            yield Packet(fmt >> 8, fmt & 0xFF, sec, nsec, payload)

    def parse(self, data) -> list[Packet]:
        """Feed bytes and return every packet now complete."""
        self.feed(data)
        return list(self)
