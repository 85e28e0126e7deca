"""A fake SNS Stream Management Service (SMS): speaks ADARA over TCP, built on the listener's own encoders.

Sources: a synthetic instrument (pixels in banks, Poisson events at 60 Hz pulses, runs back to back with
incrementing run numbers, RunInfo, a sample-environment device, scans, optional pause/resume), or a replay of
a recorded `.adara` capture (concatenated packets) or of a NeXus event file (NXevent_data → one BankedEvent
per pulse), at original or unlimited speed.

Each client first sends a client hello: start time 0 gets the current state (run status, instrument,
geometry, run info, devices, last values) and the live stream; 1 gets the current run replayed from its
NEW_RUN; any other EPICS time gets the run replayed without the event packets older than that time.

Tests read `sent_events_per_run` (detector events per run, error banks excluded) and
`paused_events_per_run` (those sent while paused, which clients drop). Every finished run logs
"run N: sent M events". The current run's packets are kept in memory for "start of run" clients, and each
client has an unbounded queue: this is a test and demo server, not a production SMS.
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.parser import Parser
from livereduce.servers.base import BindError, HelpFormatter, bind_listen, report_bind_error
from livereduce.workspace.run import EPICS_EPOCH_OFFSET_S

log = logging.getLogger("livereduce.sms")
PULSE_NS = 1_000_000_000 // 60
MAX_GAP_NS = 10 * 1_000_000_000  # replays at original speed shorten longer silences to this


def _frame(body, time_ns: int, version: int | None = None) -> bytes:
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


class FakeSMS:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 31415,
        *,
        pixels: int = 1024,
        banks: int = 4,
        rate: float = 10_000.0,
        run_seconds: float | list[float] = 10.0,
        runs: int = 0,
        first_run: int = 1,
        gap_seconds: float = 1.0,
        speed: str = "original",
        replay: str | Path | None = None,
        instrument: str = "FAKE",
        proposal: str = "IPTS-0000",
        title: str = "fake run",
        pause_at: float | None = None,
        pause_for: float = 1.0,
        error_events: float = 0.5,
        monitor_rate: float = 100.0,
        seed: int | None = None,
        wait_for_client: bool = False,
        hello_timeout: float = 10.0,
    ):
        if speed not in ("original", "unlimited"):
            raise ValueError(f"speed must be original or unlimited, not {speed!r}")
        self.host, self.port = host, port
        self.pixels, self.banks, self.rate = int(pixels), max(1, int(banks)), rate
        self.run_seconds, self.runs, self.first_run = run_seconds, int(runs), int(first_run)
        self.gap_seconds, self.speed = gap_seconds, speed
        self.replay = Path(replay) if replay else None
        self.instrument, self.proposal, self.title = instrument, proposal, title
        self.pause_at, self.pause_for, self.error_events = pause_at, pause_for, error_events
        self.monitor_rate, self.wait_for_client = monitor_rate, wait_for_client
        self.hello_timeout = hello_timeout
        self._rng = np.random.default_rng(seed)
        self.sent_events_per_run: dict[int, int] = {}
        self.sent_monitor_events_per_run: dict[int, dict[int, int]] = {}  # run → monitor id → events
        self.paused_events_per_run: dict[int, int] = {}
        self.runs_finished: list[int] = []
        self.done = threading.Event()  # every run / the whole replay has been sent
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client_ready = threading.Event()
        self._clients: dict[socket.socket, queue.Queue] = {}
        self._threads: list[threading.Thread] = []
        self._run, self._run_start, self._paused = 0, 0, False
        self._history: list[bytes] = []  # the current run's packets, for "start of run" clients
        self._history_times: list[int] = []
        self._meta: dict[object, bytes] = {}  # latest instrument / geometry / run info / device / values
        self._server: socket.socket | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> int:
        """Bind, start serving and producing; returns the bound port (useful with port=0)."""
        server = bind_listen(self.host, self.port, 8)  # a port in use raises BindError naming it
        server.settimeout(0.2)
        self._server, self.port = server, server.getsockname()[1]
        log.info("fake SMS listening on %s:%d", self.host, self.port)
        for target, name in ((self._accept, "sms-accept"), (self._produce, "sms-produce")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self.port

    def stop(self) -> None:
        """Stop accepting, cut every client and wait for all threads (the port is free afterwards)."""
        self._stop.set()
        if self._server is not None:  # first, so no client slips in while the others are cut
            try:
                self._server.shutdown(socket.SHUT_RDWR)  # stops listening at once, even mid-accept
            except OSError:
                pass
            self._server.close()
        self.drop_clients()
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(5.0)

    def drop_clients(self) -> None:
        """Cut every client connection (clients are expected to reconnect)."""
        with self._lock:
            clients = list(self._clients)
        for sock in clients:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def clients(self) -> int:
        return len(self._clients)

    # ---- clients -------------------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, peer = self._server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return
            if self._stop.is_set():
                sock.close()
                return
            thread = threading.Thread(
                target=self._serve, args=(sock, peer), name=f"sms-client-{peer[1]}", daemon=True
            )
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _read_hello(self, sock: socket.socket) -> int | None:
        """The client's requested start time (EPICS seconds): 0 (now) when it sends none in time or sends
        something else; None when the server is stopping or the client left."""
        sock.settimeout(0.2)  # short reads, so stop() is never kept waiting
        deadline, data = time.monotonic() + self.hello_timeout, b""
        while len(data) < 16 or len(data) < 16 + min(P.HEADER.unpack_from(data)[0], 64):
            if self._stop.is_set():
                return None
            if time.monotonic() > deadline:
                return 0
            try:
                more = sock.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return None
            if not more:
                return None
            data += more
        n, fmt, _, _ = P.HEADER.unpack_from(data)
        try:
            if fmt >> 8 == P.Type.CLIENT_HELLO:
                return P.ClientHelloPkt.decode(data[16 : 16 + n], fmt & 0xFF).start_time
        except P.PacketError:
            pass
        log.warning("first packet from client is not a client hello (format 0x%08x); sending from now", fmt)
        return 0

    def _serve(self, sock: socket.socket, peer) -> None:
        start = self._read_hello(sock)
        if start is None:
            sock.close()
            return
        q: queue.Queue = queue.Queue()
        with self._lock:
            if start == 0 or not self._run:
                backlog = self._state_packets()
            elif start == 1:
                backlog = list(self._history)
            else:
                since = (start + EPICS_EPOCH_OFFSET_S) * 1_000_000_000
                backlog = [
                    b
                    for b, t in zip(self._history, self._history_times, strict=True)
                    if t >= since
                    or P.HEADER.unpack_from(b)[1] >> 8 not in (P.Type.BANKED_EVENT, P.Type.BEAM_MONITOR_EVENT)
                ]
            self._clients[sock] = q
        log.info(
            "client %s:%d connected (hello start time %d); %d packets of backlog",
            *peer[:2],
            start,
            len(backlog),
        )
        self._client_ready.set()
        sock.settimeout(5.0)
        try:
            if backlog:
                sock.sendall(b"".join(backlog))
            while not self._stop.is_set():
                try:
                    data = q.get(timeout=0.2)
                except queue.Empty:
                    continue
                sock.sendall(data)
        except OSError as exc:
            log.info("client %s:%d gone (%s)", *peer[:2], exc)
        finally:
            with self._lock:
                self._clients.pop(sock, None)
            sock.close()

    def _state_packets(self) -> list[bytes]:
        """What a client joining now needs: run status, then the latest metadata and values (lock held)."""
        now = time.time_ns()
        status = P.RunStatusPkt(self._run, self._run_start, P.RunStatusCode.STATE if self._run else 0)
        return [_frame(status, now), *self._meta.values()]

    # ---- producing -----------------------------------------------------------------------------------------
    def _produce(self) -> None:
        if self.wait_for_client:
            while not self._client_ready.wait(0.1):
                if self._stop.is_set():
                    return
        source = self._replay_source() if self.replay else self._synthetic()
        wall0 = stream0 = None
        try:
            for time_ns, data in source:
                if self._stop.is_set():
                    return
                if self.speed == "original" and time_ns:
                    if stream0 is None or time_ns - stream0 > (time.time_ns() - wall0) + MAX_GAP_NS:
                        wall0, stream0 = time.time_ns(), time_ns  # first packet, or a long silence shortened
                    delay = (time_ns - stream0) - (time.time_ns() - wall0)
                    if delay > 0 and self._stop.wait(delay / 1e9):
                        return
                self._publish(data, time_ns)
        except Exception:
            log.exception("fake SMS source failed")
        finally:
            self.done.set()

    def _publish(self, data: bytes, time_ns: int) -> None:
        n, fmt, _, _ = P.HEADER.unpack_from(data)
        ptype, payload = fmt >> 8, data[16 : 16 + n]
        with self._lock:
            if ptype == P.Type.RUN_STATUS:
                rs = P.RunStatusPkt.decode(payload, fmt & 0xFF)
                if rs.status == P.RunStatusCode.NEW_RUN:
                    self._run, self._run_start = rs.run_number, rs.run_start
                    self._history, self._history_times = [], []
                    self.sent_events_per_run.setdefault(rs.run_number, 0)
                    self.sent_monitor_events_per_run.setdefault(rs.run_number, {})
                    self.paused_events_per_run.setdefault(rs.run_number, 0)
            elif ptype == P.Type.BANKED_EVENT and self._run:
                count = sum(
                    c for _, banks in P.walk_banks(payload) for b, _, c in banks if b not in P.ERROR_BANKS
                )
                self.sent_events_per_run[self._run] += count
                if self._paused:
                    self.paused_events_per_run[self._run] += count
            elif ptype == P.Type.BEAM_MONITOR_EVENT and self._run:
                sent = self.sent_monitor_events_per_run[self._run]
                for s in P.BeamMonitorPkt.decode(payload, fmt & 0xFF).sections:
                    sent[s.monitor_id] = sent.get(s.monitor_id, 0) + len(s.events)
            elif ptype == P.Type.STREAM_ANNOTATION:
                marker = P.AnnotationPkt.decode(payload, 0).marker_type
                if marker in (P.MarkerType.PAUSE, P.MarkerType.RESUME):
                    self._paused = marker == P.MarkerType.PAUSE
                    self._meta["pause"] = data
            elif ptype in (P.Type.BEAMLINE_INFO, P.Type.GEOMETRY, P.Type.RUN_INFO):
                self._meta[ptype] = data
            elif ptype == P.Type.DEVICE_DESC:
                self._meta[("device", struct.unpack_from("<I", payload)[0])] = data
            elif ptype >= P.Type.VAR_VALUE_U32:  # last value of each variable
                self._meta[("value", *struct.unpack_from("<2I", payload))] = data
            if self._run:
                self._history.append(data)
                self._history_times.append(time_ns)
            for q in self._clients.values():
                q.put(data)
            if ptype == P.Type.RUN_STATUS and rs.status == P.RunStatusCode.END_RUN and self._run:
                run, sent = self._run, self.sent_events_per_run.get(self._run, 0)
                self.runs_finished.append(run)
                self._run, self._history, self._history_times = 0, [], []
                self._meta.pop(P.Type.RUN_INFO, None)
                log.info("run %d: sent %d events", run, sent)

    def _synthetic(self) -> Iterator[tuple[int, bytes]]:
        t = time.time_ns()
        run, k = self.first_run, 0
        yield t, _frame(P.RunStatusPkt(0, 0, P.RunStatusCode.NO_RUN), t)
        while self.runs <= 0 or k < self.runs:
            seconds = self._run_seconds(k)
            yield from self._synthetic_run(run, t, seconds)
            t += int(seconds * 1e9)
            for i in range(max(1, int(self.gap_seconds))):  # heartbeats between runs
                yield t + i * 1_000_000_000, _frame(P.HeartbeatPkt(), t + i * 1_000_000_000)
            t += int(self.gap_seconds * 1e9)
            run, k = run + 1, k + 1

    def _run_seconds(self, k: int) -> float:
        """Length of the k-th run: `run_seconds`, or its k-th entry (cycled) when it is a list."""
        lengths = self.run_seconds if isinstance(self.run_seconds, list | tuple) else [self.run_seconds]
        return float(lengths[k % len(lengths)])

    def _synthetic_run(self, run: int, t0: int, seconds: float) -> Iterator[tuple[int, bytes]]:
        rng, epics = self._rng, P.epics_from_ns(t0)[0]
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
            yield t0, _frame(body, t0)
        per_bank = -(-self.pixels // self.banks)
        pulses = max(1, round(seconds * 60))
        pause = (
            (round(self.pause_at * 60), round((self.pause_at + self.pause_for) * 60))
            if (self.pause_at is not None)
            else (-1, -1)
        )
        for i in range(pulses):
            t = t0 + i * PULSE_NS
            if i in pause:
                marker = M.PAUSE if i == pause[0] else M.RESUME
                yield t, _frame(P.AnnotationPkt(marker, 0, f"run {run} {marker.name.lower()}"), t)
            if i % 60 == 0:
                yield t, _frame(P.VariableDoublePkt(1, 1, value=300.0 + rng.normal(0, 0.1)), t)
            n = int(rng.poisson(self.rate / 60))
            pixel = np.sort(rng.integers(0, self.pixels, n)).astype(np.uint32)
            tof = rng.integers(10_000, 160_000, n).astype(np.uint32)  # 1–16 ms in 100 ns units
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
            yield t, _frame(P.BankedEventPkt(1_500_000, 940_000_000, i % 600, 0, 0, [source]), t)
            m = int(rng.poisson(self.monitor_rate / 60))
            words = rng.integers(10_000, 160_000, m).astype(np.uint32) | np.uint32(1 << 31)
            yield (
                t,
                _frame(
                    P.BeamMonitorPkt(
                        1_500_000, 940_000_000, i % 600, 0, 0, [P.MonitorSection(1, 0, 0, True, words)]
                    ),
                    t,
                ),
            )
        t = t0 + pulses * PULSE_NS
        yield t, _frame(P.AnnotationPkt(M.SCAN_STOP, 1, f"run {run} scan 1 done"), t)
        yield t, _frame(P.RunStatusPkt(run, epics, P.RunStatusCode.END_RUN), t)

    # ---- replays -------------------------------------------------------------------------------------------
    def _replay_source(self) -> Iterator[tuple[int, bytes]]:
        if self.replay.suffix in (".nxs", ".h5", ".hdf5", ".hdf") or self.replay.name.endswith(".nxs.h5"):
            yield from nexus_packets(self.replay)
        else:
            yield from adara_packets(self.replay)


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
        proposal, title = _text(entry, "experiment_identifier"), _text(entry, "title")
    pulses = np.unique(np.concatenate([b[4] for b in banks])) if banks else np.empty(0, np.int64)
    t0 = int(pulses[0]) if pulses.size else time.time_ns()
    top = max((int(b[1].max()) for b in banks if b[1].size), default=0)
    epics = P.epics_from_ns(t0)[0]
    for body in (
        P.RunStatusPkt(run, epics, P.RunStatusCode.NEW_RUN),
        P.BeamlineInfoPkt("BL", name[:8], name),
        P.GeometryPkt(geometry_xml(name, top + 1, l1=None, l2=None, monitors=())),
        P.RunInfoPkt(run_info_xml(proposal, title)),
    ):
        yield t0, _frame(body, t0)
    ends = [np.append(b[3], b[1].size) for b in banks]
    slots = [np.searchsorted(pulses, b[4]) for b in banks]  # bank pulse j → union pulse slot
    where = [dict(zip(s.tolist(), range(s.size), strict=True)) for s in slots]
    for k, t in enumerate(pulses.tolist()):
        sections = []
        for (bank_id, ids, tof, _, _), w, e in zip(banks, where, ends, strict=True):
            j = w.get(k)
            if j is not None and e[j + 1] > e[j]:
                sections.append(P.EventBank(bank_id, tof[e[j] : e[j + 1]], ids[e[j] : e[j + 1]]))
        yield t, _frame(P.BankedEventPkt(0, 0, k % 600, 0, 0, [P.EventSource(0, 0, 0, True, sections)]), t)
    t_end = int(pulses[-1]) if pulses.size else t0
    yield t_end, _frame(P.RunStatusPkt(run, epics, P.RunStatusCode.END_RUN), t_end)


def main(argv: list[str] | None = None, prog: str = "livereduce fake-adara") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=31415, help="TCP port to listen on")
    p.add_argument("--pixels", type=int, default=1024, help="detector pixels")
    p.add_argument("--banks", type=int, default=4, help="detector banks the pixels are split into")
    p.add_argument("--rate", type=float, default=10_000.0, help="detector events per second")
    p.add_argument("--run-seconds", type=float, default=10.0, help="length of each run")
    p.add_argument("--runs", type=int, default=0, help="number of runs (0: forever)")
    p.add_argument("--first-run", type=int, default=1, help="run number of the first run")
    p.add_argument("--gap-seconds", type=float, default=1.0, help="pause between runs")
    p.add_argument("--instrument", default="FAKE", help="instrument name")
    p.add_argument("--proposal", default="IPTS-0000", help="proposal in the run info")
    p.add_argument("--title", default="fake run", help="run title")
    p.add_argument("--pause-at", type=float, default=None, help="pause each run this many seconds in")
    p.add_argument("--pause-for", type=float, default=1.0, help="seconds each pause lasts")
    p.add_argument("--replay", default=None, help="a .adara capture or a NeXus event file")
    p.add_argument("--speed", choices=("original", "unlimited"), default="original", help="replay speed")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--exit-when-done", action="store_true", help="exit once every run has been sent")
    a = p.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sms = FakeSMS(
        a.host,
        a.port,
        pixels=a.pixels,
        banks=a.banks,
        rate=a.rate,
        run_seconds=a.run_seconds,
        runs=a.runs,
        first_run=a.first_run,
        gap_seconds=a.gap_seconds,
        speed=a.speed,
        replay=a.replay,
        instrument=a.instrument,
        proposal=a.proposal,
        title=a.title,
        pause_at=a.pause_at,
        pause_for=a.pause_for,
        seed=a.seed,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        sms.start()
    except BindError as exc:
        return report_bind_error(exc, prog)
    while not stop.wait(0.2):
        if a.exit_when_done and sms.done.is_set():
            break
    sms.stop()
    log.info("fake SMS stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
