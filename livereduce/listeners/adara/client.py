"""SNS ADARA listener: a TCP client of the SMS (Mantid's SNSLiveEventDataListener, without Mantid).

Receive thread (StreamThread: reconnects with backoff, one log line per event): sends a v0 client hello
(0 = now, 1 = start of run, else EPICS seconds), frames the stream with `Parser`, and turns packets into a
columnar event buffer, monitor events, logs and run state. `extract()` swaps it all out as a `Chunk`.
Helpers: `packets` (codecs), `parser` (framing), `geometry` (GEOMETRY packet → spectra, detector id →
workspace index), `pvs` (device descriptors and variable values → run logs).

Decisions worth knowing:
- Events are buffered with their raw detector id; ids become workspace indices at extract, vectorised, once
  the run's spectra are known. Ids outside the map are dropped and counted.
- Spectra come from the GEOMETRY packet, read as a small IDF subset (see `geometry.parse_geometry`). Without a
  usable geometry: detector ids 0..pixels-1 from the `pixels` option, else 0..highest id seen by the first
  extract, with NaN geometry. The layout is fixed at the run's first extract and kept for the whole run.
- Run boundaries apply back-pressure (as Mantid does): after END_RUN, and before a NEW_RUN while data is
  buffered, the thread stops consuming until the next extract. So the END_RUN chunk holds the run's tail and
  the BEGIN_RUN chunk holds the start of the new run. A NEW_RUN seen on the stream is reported as BEGIN_RUN
  even for the first run (Mantid hides it before its workspace exists); joining mid-run (STATE) is silent.
- Faults (counted in `state()`, logged at most once a minute per kind): a *framing* error (a header whose
  length is unaligned or over its type's bound, `packets.PAYLOAD_BOUNDS`) makes the parser resynchronise on
  the next plausible header; only when it cannot (no plausible header within 8 MiB) does the connection drop
  (then reconnect and replay, below).
  A *bad packet* (a decoder's PacketError, unreadable or oversized XML, a PV value whose type disagrees with its
  descriptor, any error inside a handler) is dropped and counted in `bad_packets` by type; it never drops
  the connection, so a poison packet in a run cannot make the replay loop.
- Reconnecting asks for the start of the current run again (unless started "now"), and the SMS replays the
  run. The rule, per kind of time-stamped data (event pulses, monitor pulses, each process variable,
  annotations): the listener remembers the latest packet time it took in for the run (`marks`: handed out
  by extract() or still buffered, both are accumulated), and after a reconnect into the *same* run (same run
  number and same run start; also any repeated NEW_RUN of it) it skips replayed packets at or before that
  mark (`replayed_pulses_skipped`, `replayed_packets_skipped`). The SMS sends each kind in time order, so
  everything up to the mark was received before the drop and everything after it was not: nothing doubles,
  nothing is lost, the buffer is kept and there is no data reset. Descriptors, geometry and run info are
  re-applied (idempotent). A replay of a run that already ended here is skipped whole (no second BEGIN_RUN /
  END_RUN). Discarding the partial buffer (with `data_reset()` turning true) is right only when the replayed
  run has our run number but a different run start: the SMS restarted the run, so what we hold is not this
  run's data and marks mean nothing. With start "now" there is no replay: the gap is lost, nothing doubles.
- TOF is the event's TOF word / 10 (µs). Mantid's source-offset correction adds a boolean, i.e. nothing
  measurable, so it is not reproduced.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import numpy as np

from livereduce.errors import NotYet
from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.geometry import DetectorMap, Geometry, map_events, parse_geometry
from livereduce.listeners.adara.parser import LogLimiter, Parser
from livereduce.listeners.adara.pvs import ProcessVariable, describe, log_values
from livereduce.listeners.adara.xmlutil import local_tag, parse_xml
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
from livereduce.listeners.stream import StreamThread, parse_address
from livereduce.workspace.run import EPICS_EPOCH_OFFSET_S, Run, iso_from_ns
from livereduce.workspace.spectra import Spectra

log = logging.getLogger("livereduce.listener.adara")
DEFAULT_PORT = 31415
PER_RUN = ("run_number", "run_start", "run_end", "run_title", "experiment_identifier", "proton_charge")
FALLBACK_MONITORS = tuple(range(6))  # ADARA monitor ids 0..5 (Mantid accepts no others)
FALLBACK_MAX_PIXELS = 1 << 22  # a stray id beyond this never sizes the fallback spectra
_S = P.RunStatusCode


class _Receiver(StreamThread):
    def __init__(self, listener: AdaraListener, **kw):
        super().__init__(listener.host, listener.port, name=f"adara-{listener.address}", logger=log, **kw)
        self.listener = listener

    def handle(self, sock) -> None:
        self.listener._receive(sock, self)


class AdaraListener(RunStateMixin):
    buffers_events = True

    def __init__(
        self,
        address: str = "",
        *,
        pixels: int | None = None,
        keep_paused_events: bool = False,
        init_wait: float = 1.0,
        timeout: float = 30.0,
        backoff: tuple[float, float] = (0.2, 10.0),
        silence_timeout: float | None = 120.0,
        connect_timeout: float = 5.0,
        max_buffered_events: int = MAX_BUFFERED_EVENTS,
        **options,
    ):
        if options:
            log.debug("adara listener ignores options %s", sorted(options))
        self.host, self.port = parse_address(address, DEFAULT_PORT)
        self.address = f"{self.host}:{self.port}"
        self.pixels = None if pixels is None else int(pixels)
        self.keep_paused_events, self.init_wait = bool(keep_paused_events), float(init_wait)
        self._thread_options = {
            "timeout": float(timeout),
            "backoff": tuple(backoff),
            "silence_timeout": silence_timeout,
            "connect_timeout": connect_timeout,
        }
        self._lock = threading.Lock()
        self._events, self._monitor_events = EventBuffer(1 << 20, max_buffered_events), EventBuffer(1024)
        self._dropped_said = 0  # buffer-full drops already logged
        self._tracker = RunTracker()
        self._run = Run()
        self._charge: tuple[list[int], list[float]] = ([], [])
        self._monitor_counts: dict[int, int] = {}
        self._geometry: Geometry | None = None
        self._instrument = ""
        self._layout: tuple[Spectra, DetectorMap, Spectra, DetectorMap] | None = None
        self._max_pixel = -1
        self._pvs: dict[tuple[int, int], ProcessVariable] = {}  # written by the receive thread only
        self._in_run = 0  # run number the stream is in (0: none), unlatched
        self._paused = False
        self._hold: tuple | None = None  # (what, RunStatusPkt, time): the receiver waits for an extract
        self._begin_pending = False  # a BEGIN_RUN edge not yet latched by an extract
        self._released = threading.Event()
        self._initialised = threading.Event()
        self._rejoin = False
        self._reset = False
        self._start = StartFrom()
        self._receiver: _Receiver | None = None
        self._parser: Parser | None = None
        self._counts = dict.fromkeys(
            (
                *Parser.COUNTERS,
                "paused_events_dropped",
                "unmapped_events_dropped",
                "unknown_variable_values",
                "replayed_pulses_skipped",
                "replayed_packets_skipped",
                "handler_errors",
            ),
            0,
        )
        self._bad_packets: dict[str, int] = {}  # packets dropped as inconsistent, by type name
        self._bad_log = LogLimiter(log)
        self._frame_log = LogLimiter(log)  # framing errors: one line a minute per kind, across reconnects
        self._last_bad = ""  # the last bad packet's type and error, for state()
        # replay after a reconnect (receive thread, or extract while the receiver is held)
        self._run_key: tuple[int, int] | None = None  # (run number, run start) of the current or last run
        self._marks: dict[object, int] = {}  # latest packet time taken in, per kind, for that run
        self._replay: dict[object, int] = {}  # marks a replay must pass before its data is taken again
        self._replaying_ended = False  # the replay is of a run that already ended here

    # ---- Listener contract ---------------------------------------------------------------------------------
    def start(self, start: StartFrom | None = None) -> None:
        if self._receiver is not None:
            return
        self._start = start or StartFrom()
        self._receiver = _Receiver(self, **self._thread_options)
        self._receiver.start()

    def close(self) -> None:
        if self._receiver is not None:
            self._receiver.stop()

    def share_events(self, pool) -> None:
        """Buffer events in `pool`'s shared memory (livereduce.shared_events: a worker process reads them there)."""
        self._events.share(pool)

    def state(self) -> dict:
        r, p = self._receiver, self._parser
        out = {
            "connected": bool(r and r.connected),
            "address": self.address,
            "connects": r.connects if r else 0,
            "drops": r.drops if r else 0,
            "bytes_received": r.bytes_received if r else 0,
            "last_error": r.last_error if r else "",
            "run_number": self.run_number,
            "paused": self._paused,
            **buffer_state(self._events),
        }
        with self._lock:
            out.update(self._counts)
            out["bad_packets"] = dict(self._bad_packets)
            out["last_bad_packet"] = self._last_bad
        if p is not None:
            for key in Parser.COUNTERS:
                out[key] += getattr(p, key)
        return out

    def extract(self) -> Chunk:
        if not self._initialised.wait(self.init_wait):
            r = self._receiver
            error = r.last_error if r else "not started"
            raise NotYet(
                f"ADARA stream from {self.address} not initialised (no run status yet; "
                f"connected={bool(r and r.connected)}, last error: {error})"
            )
        with self._lock:
            layout = self._layout or self._make_layout()
            if layout is None:
                if self._hold is None:
                    raise NotYet("no geometry, no `pixels` option and no events yet to size the spectra")
                empty = Spectra.one_to_one([], instrument=self._instrument)
                layout = (empty, DetectorMap(np.empty(0)), empty, DetectorMap(np.empty(0)))
            events, monitor_events = self._events.swap(), self._monitor_events.swap()
            run, times, charges = self._run, *self._charge
            self._charge = ([], [])
            if times:
                run.series("proton_charge", "picoCoulomb").append(np.asarray(times), np.asarray(charges))
            self._run = run.carry_over()
            for monitor, count in self._monitor_counts.items():
                run.set(f"monitor{monitor}_counts", count, additive=True)  # this chunk's; Add sums them
            self._monitor_counts = {}
            self._tracker.latch()
            self._begin_pending = False
            hold, self._hold = self._hold, None
            if hold is not None:
                what, rs, t = hold
                if what == "closed":  # the END_RUN chunk is out: the gap after it starts afresh
                    self._run = self._fresh_run()
                elif what == "new":
                    self._begin(rs, t)
                else:
                    self._end(rs, t)  # holds again: the END_RUN chunk comes next
            if self._hold is None:
                self._released.set()
        self._dropped_said = say_buffer_drops(self._events, self._dropped_said, log)
        spectra, detectors, monitor_spectra, monitor_map = layout
        events, dropped = map_events(events, detectors, in_place=True)  # the swap's own arrays
        monitor_events, mdropped = map_events(monitor_events, monitor_map)
        if dropped + mdropped:
            with self._lock:
                self._counts["unmapped_events_dropped"] += dropped + mdropped
            log.debug("dropped %d events and %d monitor events with unmapped ids", dropped, mdropped)
        monitor_run = Run()
        if run.hasProperty("run_number"):
            monitor_run.set("run_number", run["run_number"].value)
        return Chunk(
            spectra=spectra.copy(),
            run=run,
            events=events,
            monitors=Chunk(spectra=monitor_spectra.copy(), run=monitor_run, events=monitor_events),
        )

    # ---- layout --------------------------------------------------------------------------------------------
    def _make_layout(self):
        """Spectra for the run (main, monitors), or None when nothing says how many pixels there are yet."""
        g = self._geometry
        name = self._instrument or (g.name if g else "")
        if g is not None and g.det_ids.size:
            spectra = Spectra.one_to_one(
                g.det_ids, l1=g.l1, l2=g.l2, two_theta=g.two_theta, azimuthal=g.azimuthal, instrument=name
            )
            spectra.geometry = g.instrument  # getInstrument(), spectrumInfo(), parameters: the full IDF
        elif self.pixels is not None or self._max_pixel >= 0:
            n = self.pixels if self.pixels is not None else self._max_pixel + 1
            spectra = Spectra.one_to_one(np.arange(n), l1=g.l1 if g else float("nan"), instrument=name)
            log.info("no usable geometry: %d spectra for detector ids 0..%d, geometry unknown", n, n - 1)
        else:
            return None
        monitors = g.monitors if g is not None and g.monitors else FALLBACK_MONITORS
        mon = Spectra.one_to_one([-m for m in monitors], instrument=spectra.instrument, l1=spectra.l1)
        self._layout = (spectra, DetectorMap(spectra.det_ids), mon, DetectorMap(np.asarray(monitors)))
        return self._layout

    # ---- receive thread ------------------------------------------------------------------------------------
    def _hello_time(self, first: bool) -> int:
        mode = self._start.mode
        if mode == "now":
            return 0
        if mode == "start_of_run" or not first:
            return 1
        if self._start.time_ns > time.time_ns():
            log.error("start time %s is in the future; starting from now", iso_from_ns(self._start.time_ns))
            return 0
        return max(2, self._start.time_ns // 1_000_000_000 - EPICS_EPOCH_OFFSET_S)

    def _receive(self, sock, thread: _Receiver) -> None:
        first = thread.connects == 1
        start = self._hello_time(first)
        sec, nsec = P.epics_from_ns(time.time_ns())
        sock.sendall(P.encode(P.ClientHelloPkt(start), sec, nsec, version=0))
        log.info(
            "client hello sent to %s (start time %d: %s)",
            self.address,
            start,
            {0: "now", 1: "start of run"}.get(start, "EPICS seconds"),
        )
        with self._lock:
            self._rejoin = not first
        parser = self._parser = Parser(
            source=f"the ADARA stream from {self.address}", resync_misaligned=True, limiter=self._frame_log
        )
        sock.settimeout(0.2)  # short, so stop() and extract() releases are seen promptly
        idle = 0.0
        try:
            while not thread.stopping:
                if self._hold is not None:
                    self._released.wait(0.1)
                    continue
                for packet in parser:
                    self._dispatch(packet)
                    if self._hold is not None:
                        break
                if self._hold is not None:
                    continue
                try:
                    n = parser.recv_from(sock)
                except TimeoutError:
                    idle += 0.2
                    if idle >= thread.timeout:
                        log.warning(
                            "nothing from the SMS at %s for %.0f s; is it still sending?", self.address, idle
                        )
                        idle = 0.0
                    continue
                if n == 0:
                    return
                idle = 0.0
                thread.bytes_received += n
        finally:
            with self._lock:
                self._parser = None
                for key in Parser.COUNTERS:
                    self._counts[key] += getattr(parser, key)

    def _dispatch(self, packet: P.Packet) -> None:
        """Apply one packet. An inconsistent one is dropped and counted; nothing here drops the connection."""
        handler = _HANDLERS.get(packet.type)
        if handler is None:
            return
        try:
            handler(self, packet)
        except P.PacketError as exc:
            self._bad(packet, exc, unexpected=False)
        except Exception as exc:  # a handler bug loses this packet, never the connection
            self._bad(packet, exc, unexpected=True)

    def _bad(self, packet: P.Packet, exc: Exception, *, unexpected: bool) -> None:
        name = _type_name(packet.type)
        with self._lock:
            count = self._bad_packets[name] = self._bad_packets.get(name, 0) + 1
            self._last_bad = f"{name}: {exc!r}"
            if unexpected:
                self._counts["handler_errors"] += 1
        self._bad_log(
            name,
            logging.ERROR if unexpected else logging.WARNING,
            "dropped a bad %s packet (v%d, %d-byte payload, time %s): %s; %d such packets so far",
            name,
            packet.version,
            len(packet.payload),
            iso_from_ns(packet.time_ns) if 0 <= packet.sec < 1 << 32 else packet.sec,
            repr(exc) if unexpected else exc,
            count,
        )

    def _replayed(self, kind: object, time_ns: int) -> bool:
        """Whether a packet of `kind` at `time_ns` was already taken in (a replay after a reconnect: skip it);
        otherwise records it as the kind's latest."""
        mark = self._replay.get(kind)
        if mark is not None:
            if time_ns <= mark:
                with self._lock:
                    self._counts[
                        "replayed_pulses_skipped" if kind == "events" else "replayed_packets_skipped"
                    ] += 1
                return True
            del self._replay[kind]  # past the mark: this kind is live again
        if time_ns > self._marks.get(kind, time_ns - 1):
            self._marks[kind] = time_ns
        return False

    def _on_events(self, packet: P.Packet) -> None:
        payload = packet.payload
        sections = P.walk_banks(payload)
        if self._replayed("events", packet.time_ns):
            return
        if self._paused and not self.keep_paused_events:
            n = sum(c for _, banks in sections for b, _, c in banks if b not in P.ERROR_BANKS)
            with self._lock:
                self._counts["paused_events_dropped"] += n
            return
        spans = P.event_spans(payload, sections)
        n = sum(span.size for span in spans) // 2
        charge = struct.unpack_from("<I", payload, 0)[0] * 10.0  # 10 pC units → pC
        with self._lock:  # decoded straight into the buffer's rows
            self._events.add_pulse_with(
                packet.time_ns, n, lambda pixel, tof: P.copy_events(spans, pixel, tof)
            )
            self._charge[0].append(packet.time_ns)
            self._charge[1].append(charge)
            if self._layout is None and self.pixels is None and n:  # may size the fallback spectra
                pixel = np.concatenate([span[1::2] for span in spans])
                top = int(pixel.max())
                if top >= FALLBACK_MAX_PIXELS:
                    sane = pixel[pixel < FALLBACK_MAX_PIXELS]
                    top = int(sane.max()) if sane.size else -1
                self._max_pixel = max(self._max_pixel, top)

    def _on_monitors(self, packet: P.Packet) -> None:
        pkt = P.BeamMonitorPkt.decode(packet.payload, packet.version)
        if self._replayed("monitors", packet.time_ns):
            return
        with self._lock:
            for s in pkt.sections:
                self._monitor_counts[s.monitor_id] = self._monitor_counts.get(s.monitor_id, 0) + len(s.events)
                ids = np.full(len(s.events), s.monitor_id, np.uint32)
                self._monitor_events.add_pulse(
                    packet.time_ns, ids, np.divide(s.tof, np.float32(10), dtype=np.float32)
                )

    def _on_run_status(self, packet: P.Packet) -> None:
        rs = P.RunStatusPkt.decode(packet.payload, packet.version)
        with self._lock:
            initialised, rejoin = self._initialised.is_set(), self._rejoin
            self._rejoin = False
            self._initialised.set()
            key = (rs.run_number, rs.run_start)
            repeat = rejoin or (
                rs.status == _S.NEW_RUN and key == self._run_key
            )  # a repeated NEW_RUN: a replay
            if (
                repeat
                and rs.run_number
                and not self._in_run
                and key == self._run_key
                and rs.status != _S.END_RUN
            ):
                log.info(
                    "reconnected: the SMS replays run %d, which already ended here; skipping it",
                    rs.run_number,
                )
                self._replay, self._replaying_ended = dict(self._marks), True
            elif self._replaying_ended and key == self._run_key:
                if rs.status == _S.END_RUN:
                    self._replaying_ended = False  # the replay is over; its END_RUN was reported before
            elif rs.status == _S.END_RUN or (rs.status == _S.NO_RUN and self._in_run):
                self._replaying_ended = False
                if self._begin_pending:  # report the run's BEGIN_RUN (with its data) first
                    self._defer("end", rs, packet.time_ns)
                else:
                    self._end(rs, packet.time_ns)
            elif repeat and rs.status in (_S.NEW_RUN, _S.STATE) and rs.run_number == self._in_run != 0:
                if key == self._run_key:
                    log.info(
                        "reconnected into run %d: its replay is skipped up to what was already received, "
                        "the buffer is kept (no data reset)",
                        rs.run_number,
                    )
                    self._replay = dict(self._marks)
                else:
                    log.info(
                        "reconnected into run %d, but the SMS gives it another start time (a restarted run): "
                        "discarding the partial buffer (data reset)",
                        rs.run_number,
                    )
                    self._events.swap()
                    self._monitor_events.swap()
                    self._charge, self._monitor_counts, self._reset = ([], []), {}, True
                    self._run = self._fresh_run()
                    self._details(rs)
                    self._run_key, self._marks, self._replay = key, {}, {}
            elif (
                rs.status == _S.NEW_RUN
                or (rs.run_number and self._in_run not in (0, rs.run_number))
                or (rs.run_number and not self._in_run and initialised)
            ):
                if rs.status != _S.NEW_RUN:
                    log.warning(
                        "stream is in run %d without a NEW_RUN seen; treating it as begun", rs.run_number
                    )
                busy = (
                    len(self._events) or len(self._monitor_events) or self._charge[0] or self._begin_pending
                )
                if initialised and busy:
                    self._defer("new", rs, packet.time_ns)
                else:
                    self._begin(rs, packet.time_ns)
            elif rs.run_number and not self._in_run:
                self._tracker.running(rs.run_number)  # joined a run in progress: no edge
                self._in_run = rs.run_number
                self._run_key, self._marks, self._replay = key, {}, {}
                self._details(rs)
                self._seed(packet.time_ns)

    def _defer(self, what: str, rs: P.RunStatusPkt, time_ns: int) -> None:
        """Stop consuming until the next extract, which applies this run status (back-pressure)."""
        self._hold = (what, rs, time_ns)
        self._released.clear()

    def _end(self, rs: P.RunStatusPkt, time_ns: int) -> None:
        """Apply an END_RUN (lock held); the receiver then waits until the run's last chunk is extracted."""
        if rs.status == _S.NO_RUN:
            log.warning("stream says no run while run %d was on: its END_RUN was missed", self._in_run)
        elif not self._run.hasProperty("run_number"):
            self._details(rs)
        self._run.set("run_end", iso_from_ns(time_ns))
        self._tracker.end_run()
        log.info("run %d ended", self._in_run or rs.run_number)
        self._in_run = 0
        self._defer("closed", rs, time_ns)

    def _begin(self, rs: P.RunStatusPkt, time_ns: int) -> None:
        """Apply a NEW_RUN (lock held)."""
        self._tracker.begin_run(rs.run_number)
        self._begin_pending = True
        self._in_run = rs.run_number
        self._run_key, self._marks, self._replay = (rs.run_number, rs.run_start), {}, {}
        self._replaying_ended = False
        self._run = self._fresh_run()
        self._details(rs)
        self._seed(time_ns)
        self._layout, self._max_pixel = None, -1
        log.info("run %d started", rs.run_number)

    def _details(self, rs: P.RunStatusPkt) -> None:
        self._run.set("run_number", str(rs.run_number))
        self._run.set("run_start", iso_from_ns((rs.run_start + EPICS_EPOCH_OFFSET_S) * 1_000_000_000))

    def _seed(self, time_ns: int) -> None:
        for name, value in (("pause", int(self._paused)), ("scan_index", 0)):
            series = self._run.series(name)
            if not series.times.size:
                series.append(time_ns, value)

    def _fresh_run(self) -> Run:
        """What a new run (or the gap after one) starts from: last log values, none of the old run's own."""
        run = self._run.carry_over()
        for name in PER_RUN:
            run.remove(name)
        return run

    def _on_run_info(self, packet: P.Packet) -> None:
        try:
            root = parse_xml(
                P.RunInfoPkt.decode(packet.payload, packet.version).xml, P.max_payload(T.RUN_INFO)
            )
        except ET.ParseError as exc:
            raise P.PacketError(f"unreadable RUN_INFO XML: {exc}") from None
        with self._lock:
            for el in root.iter():
                name = {"proposal_id": "experiment_identifier", "run_title": "run_title"}.get(local_tag(el))
                if name and el.text is not None:
                    self._run.set(name, el.text.strip())

    def _on_geometry(self, packet: P.Packet) -> None:
        try:
            geometry = parse_geometry(
                P.GeometryPkt.decode(packet.payload, packet.version).xml, P.max_payload(T.GEOMETRY)
            )
        except ValueError as exc:
            raise P.PacketError(f"{exc}; spectra fall back to detector ids 0..pixels-1") from None
        if geometry.note:  # a real IDF the reader refused: the run falls back to ids 0..pixels-1
            log.warning(
                "GEOMETRY packet: instrument definition refused (%s); no detector geometry", geometry.note
            )
        with self._lock:
            self._geometry = geometry

    def _on_beamline(self, packet: P.Packet) -> None:
        info = P.BeamlineInfoPkt.decode(packet.payload, packet.version)
        with self._lock:
            self._instrument = info.long_name or info.short_name

    def _on_annotation(self, packet: P.Packet) -> None:
        a = P.AnnotationPkt.decode(packet.payload, packet.version)
        t, M = packet.time_ns, P.MarkerType
        if self._replayed("annotation", t):
            return
        with self._lock:
            if a.marker_type in (M.PAUSE, M.RESUME):
                self._paused = a.marker_type == M.PAUSE
                self._run.series("pause").append(t, int(self._paused))
                log.info("stream %s", "paused" if self._paused else "resumed")
            elif a.marker_type in (M.SCAN_START, M.SCAN_STOP):
                self._run.series("scan_index").append(t, a.scan_index if a.marker_type == M.SCAN_START else 0)
            elif a.comment:
                log.info("annotation: %s", a.comment)

    def _on_descriptor(self, packet: P.Packet) -> None:
        pvs = describe(P.DeviceDescriptorPkt.decode(packet.payload, packet.version))
        with self._lock:
            for pv in pvs:
                self._pvs[pv.key] = pv
                self._run.series(pv.name, pv.unit)

    def _on_variable(self, packet: P.Packet) -> None:
        pkt = P.CLASSES[packet.type].decode(packet.payload, packet.version)
        if self._replayed(("pv", pkt.device_id, pkt.variable_id), packet.time_ns):
            return
        pv = self._pvs.get((pkt.device_id, pkt.variable_id))
        if pv is None:
            with self._lock:
                self._counts["unknown_variable_values"] += 1
            log.debug("value for unknown variable %d of device %d dropped", pkt.variable_id, pkt.device_id)
            return
        update = log_values(pkt, packet.time_ns, pv)
        if update is not None:
            with self._lock:
                self._run.series(pv.name, pv.unit).append(*update)


def _type_name(ptype: int) -> str:
    return P.Type(ptype).name if ptype in P.KNOWN_TYPES else f"0x{ptype:04x}"


T = P.Type
_HANDLERS: dict[int, Callable[[AdaraListener, P.Packet], None]] = {
    T.BANKED_EVENT: AdaraListener._on_events,
    T.BEAM_MONITOR_EVENT: AdaraListener._on_monitors,
    T.RUN_STATUS: AdaraListener._on_run_status,
    T.RUN_INFO: AdaraListener._on_run_info,
    T.GEOMETRY: AdaraListener._on_geometry,
    T.BEAMLINE_INFO: AdaraListener._on_beamline,
    T.STREAM_ANNOTATION: AdaraListener._on_annotation,
    T.DEVICE_DESC: AdaraListener._on_descriptor,
    **{t: AdaraListener._on_variable for t in T if t.name.startswith(("VAR_VALUE", "MULT_VAR_VALUE"))},
}
