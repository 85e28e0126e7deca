"""ISIS live event stream listener, with the DAE's IDC side channel for the spectrum table.

Wire facts (shared/reference/mantid-livedata.md §2.4), native little-endian structs: every packet starts with a
20-byte header (marker1, marker2 = 0xFFFFFFFF, version major<<16|minor with major 1, length of the whole
packet, type 1 setup / 2 neutron / 3 SE). The setup body (56 bytes) carries the run start (time_t), run
number and instrument name; a neutron body (24 bytes: length, frame number, period, protons µA·h, frame time
zero s, event count) is followed by (tof float32 µs, spectrum uint32) pairs. The spectrum table (SPEC, UDET,
NSP1) comes over IDC from the event port + 1 when the port is above 10000, else 6789.

Events are mapped to workspace indices with one vectorised lookup per frame. Events of every period go into
the same chunk (the `periods` option filters them). Garbage on the wire drops the connection and reconnects.

Values are checked at decode, so nothing downstream sees them: an event whose TOF is NaN or infinite is
dropped (`nonfinite_events_dropped`); a frame whose time is not finite or further than MAX_FRAME_TIME_S from
the run start is dropped with its events (`bad_frames_dropped`, `bad_frame_events_dropped`); a frame whose
proton charge is not finite keeps its events but adds 0 charge (`nonfinite_charge_frames`). Each is logged at
most once a minute. A setup packet with an impossible start time is a ProtocolError. Liveness (connect
timeout, silence, keepalive, backoff) is StreamThread's; the IDC side channel must answer within `timeout`.
"""

from __future__ import annotations

import logging
import struct
import threading
import time

import numpy as np

from livereduce.errors import NotYet, ProtocolError
from livereduce.listeners.base import (
    MAX_BUFFERED_EVENTS,
    Chunk,
    EventBuffer,
    RunStateMixin,
    RunTracker,
    StartFrom,
    buffer_state,
    say_buffer_drops,
)
from livereduce.listeners.idc import MAX_TABLE, IDCClient, check_spectrum_count, spectra_from_tables
from livereduce.listeners.stream import (
    RateLimited,
    SilenceTimeout,
    StreamThread,
    parse_address,
    positive_seconds,
    recv_exact,
)
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
MAX_FRAME_TIME_S = 1e8  # ~3 years from the run start: a frame time beyond it is garbage
MAX_START_TIME_S = 1 << 33  # run start (Unix s) after 2242 is garbage; with MAX_FRAME_TIME_S it fits int64 ns


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


def read_packet(sock, stop, deadline: float | None = None) -> tuple[int, bytes]:
    """(type, body) of the next packet; ProtocolError for anything that is not a valid packet, TimeoutError if
    it is not complete by `deadline` (time.monotonic())."""
    m1, m2, version, length, kind = HEADER.unpack(recv_exact(sock, HEADER.size, stop, deadline))
    if m1 != MARKER or m2 != MARKER:
        raise ProtocolError(f"bad packet markers {m1:#x} {m2:#x}")
    if version >> 16 != 1 or kind == 0 or kind > 3:
        raise ProtocolError(f"packet version {version:#x} type {kind} not understood")
    if not HEADER.size <= length <= MAX_PACKET:
        raise ProtocolError(f"packet length {length} out of range")
    return kind, recv_exact(sock, length - HEADER.size, stop, deadline)


class _Stream(StreamThread):
    def __init__(self, owner: ISISEventListener, **options):
        super().__init__(owner.host, owner.port, name="isis-event-rx", logger=log, **options)
        self.owner = owner

    def handle(self, sock) -> None:
        self.owner._read_spectra()  # the side channel, once per connection
        self.decode(sock)

    def decode(self, sock) -> None:
        """Read and decode packets until the stream ends. Each packet must be complete within silence_timeout
        of starting to wait for it, so a peer that trickles bytes is dropped as a silent one is."""
        silence = self.silence_timeout
        while not self.stopping:
            try:
                deadline = None if silence is None else time.monotonic() + silence
                kind, body = read_packet(sock, self._stop, deadline)
            except TimeoutError as exc:
                if silence is not None and time.monotonic() >= deadline:  # type: ignore[operator]
                    raise SilenceTimeout(silence) from exc
                raise
            self.bytes_received += HEADER.size + len(body)
            self.owner._on_packet(kind, body)


class ISISEventListener(RunStateMixin):
    buffers_events = True

    def __init__(
        self,
        address: str = "",
        *,
        periods=None,
        spectra=None,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        silence_timeout: float = 120.0,
        backoff: tuple[float, float] = (0.2, 10.0),
        healthy_after: float = 10.0,
        max_buffered_events: int = MAX_BUFFERED_EVENTS,
        **options,
    ):
        if options:
            log.debug("isis_event ignores options %s", sorted(options))
        self.timeout = positive_seconds("timeout", timeout)  # the IDC side channel's, in all
        silence_timeout = positive_seconds("silence_timeout", silence_timeout)
        connect_timeout = positive_seconds("connect_timeout", connect_timeout)
        self.host, self.port = parse_address(address, DEFAULT_PORT)
        self.idc_port = self.port + 1 if self.port > 10000 else 6789
        self.periods = set(periods) if periods else None
        self.wanted_spectra = list(spectra) if spectra else None
        self._buffer = EventBuffer(1 << 16, max_buffered_events)
        self._dropped_said = 0  # buffer-full drops already logged
        self._tracker = RunTracker()
        self._lock = threading.Lock()
        self._spectra: Spectra | None = None
        self._index_of = np.empty(0, np.int64)  # spectrum number → workspace index (-1: not wanted)
        self._run = Run()
        self._start_ns = 0
        self._setup_seen = False
        self._reset = False
        self.events_unmapped = 0
        self.nonfinite_events_dropped = 0
        self.bad_frames_dropped = 0
        self.bad_frame_events_dropped = 0
        self.nonfinite_charge_frames = 0
        self._limited = RateLimited(log)
        self._stream = _Stream(
            self,
            timeout=silence_timeout,
            connect_timeout=connect_timeout,
            silence_timeout=silence_timeout,
            backoff=backoff,
            healthy_after=healthy_after,
        )

    # -- receive thread ---------------------------------------------------------------------------
    def _read_spectra(self) -> None:
        client = IDCClient(
            self.host,
            self.idc_port,
            self.timeout,
            connect_timeout=self._stream.connect_timeout,
            handshake_timeout=self.timeout,
        )
        try:
            self._spectra_from(client)
        finally:
            client.close()

    def _spectra_from(self, client: IDCClient) -> None:
        """Spectrum table from the side channel; all its requests together must finish within `timeout`."""
        client.deadline = time.monotonic() + self.timeout
        nsp1 = client.getpar_int("NSP1", 0, MAX_TABLE)
        udet, spec = client.getpar_vector("UDET", "I32"), client.getpar_vector("SPEC", "I32")
        check_spectrum_count(nsp1, udet)
        name = client.getpar_text("NAME")
        numbers = np.asarray(self.wanted_spectra or range(1, nsp1 + 1), np.int64)
        index_of = np.full(max(nsp1, int(numbers.max(initial=0))) + 1, -1, np.int64)
        index_of[numbers] = np.arange(numbers.size)
        spectra = spectra_from_tables(numbers, udet, spec, name)
        with self._lock:
            if self._spectra is not None and not self._spectra.same_layout(spectra):
                self._reset = True
            self._spectra, self._index_of = spectra, index_of

    def _on_packet(self, kind: int, body: bytes) -> None:
        if kind == SETUP_TYPE:
            if len(body) < SETUP.size:
                raise ProtocolError(f"setup body of {len(body)} bytes")
            _, _, start, run, _, name = SETUP.unpack_from(body)
            if not 0 <= start <= MAX_START_TIME_S:
                raise ProtocolError(f"setup packet with run start {start} s: not a time")
            self._on_setup(int(run), int(start), name.split(b"\0", 1)[0].decode("ascii", "replace"))
        elif kind == NEUTRON_TYPE:
            if len(body) < NEUTRON.size:
                raise ProtocolError(f"neutron body of {len(body)} bytes")
            _, frame, period, protons, t0, n = NEUTRON.unpack_from(body)
            if NEUTRON.size + n * EVENT.itemsize > len(body):
                raise ProtocolError(f"frame {frame} claims {n} events in {len(body)} bytes")
            events = np.frombuffer(body, EVENT, n, NEUTRON.size)
            if not abs(t0) <= MAX_FRAME_TIME_S:  # NaN fails this too
                self.bad_frames_dropped += 1
                self.bad_frame_events_dropped += n
                self._limited.warning(
                    "frame",
                    "dropped frame %d with time %.3g s from the run start (and its %d events); "
                    "%d such frames so far",
                    frame,
                    t0,
                    n,
                    self.bad_frames_dropped,
                )
                return
            if not np.isfinite(protons):
                self.nonfinite_charge_frames += 1
                self._limited.warning(
                    "charge",
                    "frame %d has proton charge %.3g: counted as 0 (%d such frames so far)",
                    frame,
                    protons,
                    self.nonfinite_charge_frames,
                )
                protons = 0.0
            self._on_frame(period, protons, t0, events)

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
        tof = events["tof"]
        inside = spectrum < self._index_of.size
        index = np.full(spectrum.size, -1, np.int64)
        index[inside] = self._index_of[spectrum[inside]]
        keep = index >= 0
        self.events_unmapped += int(spectrum.size - keep.sum())
        finite = np.isfinite(tof)
        if not finite.all():
            bad = int((keep & ~finite).sum())
            keep &= finite
            self.nonfinite_events_dropped += bad
            if bad:
                self._limited.warning(
                    "tof",
                    "dropped %d events with a NaN or infinite time of flight; %d so far",
                    bad,
                    self.nonfinite_events_dropped,
                )
        pulse = self._start_ns + int(t0 * 1e9)
        self._buffer.add_pulse(pulse, index[keep].astype(np.uint32), tof[keep])
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
        self._dropped_said = say_buffer_drops(self._buffer, self._dropped_said, log)
        return Chunk(spectra=spectra, run=run, events=events)

    def close(self) -> None:
        self._stream.stop()

    def share_events(self, pool) -> None:
        """Buffer events in `pool`'s shared memory (livereduce.shared_events: a worker process reads them there)."""
        self._buffer.share(pool)

    def state(self) -> dict:
        s = self._stream
        return {
            "connected": s.connected,
            "address": f"{self.host}:{self.port}",
            "connects": s.connects,
            "drops": s.drops,
            "bytes_received": s.bytes_received,
            "events_unmapped": self.events_unmapped,
            "nonfinite_events_dropped": self.nonfinite_events_dropped,
            "bad_frames_dropped": self.bad_frames_dropped,
            "bad_frame_events_dropped": self.bad_frame_events_dropped,
            "nonfinite_charge_frames": self.nonfinite_charge_frames,
            "silences": s.silences,
            "retry_delay": s.retry_delay,
            "last_error": s.last_error,
            **buffer_state(self._buffer),
        }
