"""ISIS live event stream listener, with the DAE's IDC side channel for the spectrum table.

Wire facts (shared/reference/mantid-livedata.md §2.4), native little-endian structs: every packet starts with a
20-byte header (marker1, marker2 = 0xFFFFFFFF, version major<<16|minor with major 1, length of the whole
packet, type 1 setup / 2 neutron / 3 SE). The setup body (56 bytes) carries the run start (time_t), run
number and instrument name; a neutron body (24 bytes: length, frame number, period, protons µA·h, frame time
zero s, event count) is followed by (tof float32 µs, spectrum uint32) pairs. The spectrum table (SPEC, UDET,
NSP1) comes over IDC from the event port + 1 when the port is above 10000, else 6789.

Events are mapped to workspace indices with one vectorised lookup per frame. Events of every period go into
the same chunk (the `periods` option filters them). Garbage on the wire drops the connection and reconnects.
"""

from __future__ import annotations

import logging
import struct
import threading

import numpy as np

from livereduce.errors import NotYet, ProtocolError
from livereduce.listeners.base import (
    Chunk,
    EventBuffer,
    RunStateMixin,
    RunTracker,
    StartFrom,
    StreamThread,
    parse_address,
    recv_exact,
)
from livereduce.listeners.idc import IDCClient, spectra_from_tables
from livereduce.workspace.run import Run, iso_from_ns
from livereduce.workspace.spectra import Spectra

log = logging.getLogger("livereduce.listener.isis_event")

HEADER = struct.Struct("<5I")  # marker1, marker2, version, length, type
SETUP = struct.Struct("<iIqii32s")  # changed fields, length, start_time, run_number, run_state, name
NEUTRON = struct.Struct("<IIIffI")  # length, frame_number, period, protons, frame_time_zero, nevents
EVENT = np.dtype([("tof", "<f4"), ("spectrum", "<u4")])
MARKER, VERSION = 0xFFFFFFFF, 0x00010000
SETUP_TYPE, NEUTRON_TYPE, SE_TYPE = 1, 2, 3
MAX_PACKET = 64 << 20
DEFAULT_PORT = 10000


def pack_setup(run_number: int, start_time_s: int, name: str) -> bytes:
    body = SETUP.pack(0, SETUP.size, start_time_s, run_number, 1, name.encode()[:32])
    return HEADER.pack(MARKER, MARKER, VERSION, HEADER.size + len(body), SETUP_TYPE) + body


def pack_frame(frame: int, period: int, protons: float, time_zero: float, tof, spectrum) -> bytes:
    events = np.empty(len(tof), EVENT)
    events["tof"], events["spectrum"] = tof, spectrum
    body = (
        NEUTRON.pack(NEUTRON.size + events.nbytes, frame, period, protons, time_zero, len(tof))
        + events.tobytes()
    )
    return HEADER.pack(MARKER, MARKER, VERSION, HEADER.size + len(body), NEUTRON_TYPE) + body


def read_packet(sock, stop) -> tuple[int, bytes]:
    """(type, body) of the next packet; ProtocolError for anything that is not a valid packet."""
    m1, m2, version, length, kind = HEADER.unpack(recv_exact(sock, HEADER.size, stop))
    if m1 != MARKER or m2 != MARKER:
        raise ProtocolError(f"bad packet markers {m1:#x} {m2:#x}")
    if version >> 16 != 1 or kind == 0 or kind > 3:
        raise ProtocolError(f"packet version {version:#x} type {kind} not understood")
    if not HEADER.size <= length <= MAX_PACKET:
        raise ProtocolError(f"packet length {length} out of range")
    return kind, recv_exact(sock, length - HEADER.size, stop)


class _Stream(StreamThread):
    def __init__(self, owner: ISISEventListener):
        super().__init__(owner.host, owner.port, name="isis-event-rx", logger=log)
        self.owner = owner

    def handle(self, sock) -> None:
        self.owner._read_spectra()  # the side channel, once per connection
        while not self.stopping:
            kind, body = read_packet(sock, self._stop)
            self.bytes_received += HEADER.size + len(body)
            if kind == SETUP_TYPE:
                if len(body) < SETUP.size:
                    raise ProtocolError(f"setup body of {len(body)} bytes")
                _, _, start, run, _, name = SETUP.unpack_from(body)
                self.owner._on_setup(int(run), int(start), name.split(b"\0", 1)[0].decode("ascii", "replace"))
            elif kind == NEUTRON_TYPE:
                if len(body) < NEUTRON.size:
                    raise ProtocolError(f"neutron body of {len(body)} bytes")
                _, frame, period, protons, t0, n = NEUTRON.unpack_from(body)
                if NEUTRON.size + n * EVENT.itemsize > len(body):
                    raise ProtocolError(f"frame {frame} claims {n} events in {len(body)} bytes")
                events = np.frombuffer(body, EVENT, n, NEUTRON.size)
                self.owner._on_frame(period, protons, t0, events)


class ISISEventListener(RunStateMixin):
    buffers_events = True

    def __init__(self, address: str = "", *, periods=None, spectra=None, **options):
        if options:
            log.debug("isis_event ignores options %s", sorted(options))
        self.host, self.port = parse_address(address, DEFAULT_PORT)
        self.idc_port = self.port + 1 if self.port > 10000 else 6789
        self.periods = set(periods) if periods else None
        self.wanted_spectra = list(spectra) if spectra else None
        self._buffer = EventBuffer()
        self._tracker = RunTracker()
        self._lock = threading.Lock()
        self._spectra: Spectra | None = None
        self._index_of = np.empty(0, np.int64)  # spectrum number → workspace index (-1: not wanted)
        self._run = Run()
        self._start_ns = 0
        self._setup_seen = False
        self._reset = False
        self.events_unmapped = 0
        self._stream = _Stream(self)

    # -- receive thread ---------------------------------------------------------------------------
    def _read_spectra(self) -> None:
        client = IDCClient(self.host, self.idc_port, timeout=10)
        try:
            nsp1 = int(client.getpar("NSP1", "I32")[0])
            udet, spec = client.getpar("UDET", "I32"), client.getpar("SPEC", "I32")
            name = client.getpar_text("NAME")
        finally:
            client.close()
        numbers = np.asarray(self.wanted_spectra or range(1, nsp1 + 1), np.int64)
        index_of = np.full(max(nsp1, int(numbers.max(initial=0))) + 1, -1, np.int64)
        index_of[numbers] = np.arange(numbers.size)
        spectra = spectra_from_tables(numbers, udet, spec, name)
        with self._lock:
            if self._spectra is not None and not self._spectra.same_layout(spectra):
                self._reset = True
            self._spectra, self._index_of = spectra, index_of

    def _on_setup(self, run: int, start_s: int, name: str) -> None:
        with self._lock:
            self._start_ns = start_s * 1_000_000_000
            self._run.set("run_number", str(run))
            self._run.set("run_start", iso_from_ns(self._start_ns))
            self._run.set("instrument_name", name)
            if not self._setup_seen or run != self._tracker.run_number:
                self._tracker.running(run)
            self._setup_seen = True
        log.info("stream set up: run %d of %s", run, name)

    def _on_frame(self, period: int, protons: float, t0: float, events: np.ndarray) -> None:
        if self.periods is not None and period + 1 not in self.periods:
            return
        spectrum = events["spectrum"].astype(np.int64)
        inside = spectrum < self._index_of.size
        index = np.full(spectrum.size, -1, np.int64)
        index[inside] = self._index_of[spectrum[inside]]
        keep = index >= 0
        self.events_unmapped += int(spectrum.size - keep.sum())
        pulse = self._start_ns + int(t0 * 1e9)
        self._buffer.add_pulse(pulse, index[keep].astype(np.uint32), events["tof"][keep])
        with self._lock:
            self._run.series("proton_charge", "uAh").append(pulse, float(protons))

    # -- the contract -----------------------------------------------------------------------------
    def start(self, start: StartFrom) -> None:
        self._stream.start()

    def extract(self) -> Chunk:
        with self._lock:
            if not (self._setup_seen and self._spectra is not None):
                raise NotYet(f"no stream setup from {self.host}:{self.port} yet")
            run, self._run = self._run, self._run.carry_over()
            spectra = self._spectra.copy()
        events = self._buffer.swap()
        self._tracker.latch()
        return Chunk(spectra=spectra, run=run, events=events)

    def close(self) -> None:
        self._stream.stop()

    def state(self) -> dict:
        s = self._stream
        return {
            "connected": s.connected,
            "address": f"{self.host}:{self.port}",
            "connects": s.connects,
            "drops": s.drops,
            "bytes_received": s.bytes_received,
            "events_unmapped": self.events_unmapped,
            "last_error": s.last_error,
        }
