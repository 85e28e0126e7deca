"""A fake SNS Stream Management Service (SMS): speaks ADARA over TCP, built on the listener's own encoders.

Sources: a synthetic instrument (pixels in banks, Poisson events at 60 Hz pulses, runs back to back with
incrementing run numbers, RunInfo, a sample-environment device, scans, optional pause/resume), or a replay of
a recorded `.adara` capture (concatenated packets) or of a NeXus event file (NXevent_data → one BankedEvent
per pulse), at original or unlimited speed. The sources live in adara_synthetic.py and adara_replay.py; this module
serves them (accept loop, Ctrl-C runner: servers/base.py).

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
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from livereduce.listeners.adara import packets as P
from livereduce.servers.adara_idf import IdfRuns, idf_source
from livereduce.servers.adara_replay import replay_packets
from livereduce.servers.adara_synthetic import (
    PooledPacket,
    SyntheticRuns,
    add_run_options,
    frame,
    packet_head,
    packet_parts,
)
from livereduce.servers.base import HelpFormatter, TCPServer, serve_forever
from livereduce.workspace.run import EPICS_EPOCH_OFFSET_S

log = logging.getLogger("livereduce.sms")
MAX_GAP_NS = 10 * 1_000_000_000  # replays at original speed shorten longer silences to this
Data = bytes | PooledPacket  # a framed packet, or a pooled event packet sent without copying


class FakeSMS(TCPServer):
    name = "sms"  # threads: sms-accept, sms-produce, sms-client-PORT
    backlog = 8
    join_timeout = 5.0

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
        idf: str | Path | None = None,
        powder: str | None = None,
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
        super().__init__(host, port)  # _lock, _stop, _threads and _clients (socket → its send queue)
        self.pixels, self.banks, self.rate = int(pixels), max(1, int(banks)), rate
        self.run_seconds, self.runs, self.first_run = run_seconds, int(runs), int(first_run)
        self.gap_seconds, self.speed = gap_seconds, speed
        self.replay = Path(replay) if replay else None
        # a real IDF: its text is the GEOMETRY packet and events go to its detector ids (ValueError if unusable)
        self.idf = idf_source(idf) if idf else None
        if powder and not self.idf:
            raise ValueError("a powder sample needs an IDF (--idf): its geometry gives each pixel's DIFC")
        self.powder = powder
        if self.idf and instrument == "FAKE":
            instrument = self.idf[1]
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
        self._client_ready = threading.Event()
        self._run, self._run_start, self._paused = 0, 0, False
        self._history: list[Data] = []  # the current run's packets, for "start of run" clients
        self._history_times: list[int] = []
        self._meta: dict[object, Data] = {}  # latest instrument / geometry / run info / device / values

    # ---- lifecycle (stop, drop_clients and clients come from TCPServer) ------------------------------------
    def start(self) -> int:
        """Bind, start serving and producing; returns the bound port (useful with port=0)."""
        port = super().start()  # a port in use raises BindError naming it
        log.info("fake SMS listening on %s:%d", self.host, port)
        self._spawn(self._produce, name="sms-produce")
        return port

    # ---- clients -------------------------------------------------------------------------------------------
    def _read_hello(self, conn: socket.socket) -> int | None:
        """The client's requested start time (EPICS seconds): 0 (now) when it sends none in time or sends
        something else; None when the server is stopping or the client left."""
        conn.settimeout(0.2)  # short reads, so stop() is never kept waiting
        deadline, data = time.monotonic() + self.hello_timeout, b""
        while len(data) < 16 or len(data) < 16 + min(P.HEADER.unpack_from(data)[0], 64):
            if self._stop.is_set():
                return None
            if time.monotonic() > deadline:
                return 0
            try:
                more = conn.recv(64)
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

    def handle(self, conn: socket.socket) -> None:
        """Read the hello, send the backlog it asks for, then the live stream until the client or we stop."""
        try:
            peer = conn.getpeername()
        except OSError:  # gone already
            return
        start = self._read_hello(conn)
        if start is None:
            return
        q: queue.Queue = queue.Queue()
        with self._lock:
            backlog = self._backlog(start)
            self._clients[conn] = q  # TCPServer removes it when we return
        log.info(
            "client %s:%d connected (hello start time %d); %d packets of backlog",
            *peer[:2],
            start,
            len(backlog),
        )
        self._client_ready.set()
        conn.settimeout(5.0)
        try:
            if backlog:
                conn.sendall(b"".join(part for data in backlog for part in packet_parts(data)))
            while not self._stop.is_set():
                try:
                    data = q.get(timeout=0.2)
                except queue.Empty:
                    continue
                for part in packet_parts(data):  # a pooled event packet: its head, then the pool's bytes
                    conn.sendall(part)
        except OSError as exc:
            log.info("client %s:%d gone (%s)", *peer[:2], exc)

    def _backlog(self, start: int) -> list[Data]:
        """What a client asking for `start` gets before the live stream (lock held): the joining state (0, or
        no run), the run from its NEW_RUN (1), or the run without the events older than `start`."""
        if start == 0 or not self._run:
            return self._state_packets()
        if start == 1:
            return list(self._history)
        since = (start + EPICS_EPOCH_OFFSET_S) * 1_000_000_000
        return [
            b
            for b, t in zip(self._history, self._history_times, strict=True)
            if t >= since
            or P.HEADER.unpack_from(packet_head(b))[1] >> 8
            not in (P.Type.BANKED_EVENT, P.Type.BEAM_MONITOR_EVENT)
        ]

    def _state_packets(self) -> list[Data]:
        """What a client joining now needs: run status, then the latest metadata and values (lock held)."""
        now = time.time_ns()
        status = P.RunStatusPkt(self._run, self._run_start, P.RunStatusCode.STATE if self._run else 0)
        return [frame(status, now), *self._meta.values()]

    # ---- producing -----------------------------------------------------------------------------------------
    def _produce(self) -> None:
        if self.wait_for_client:
            while not self._client_ready.wait(0.1):
                if self._stop.is_set():
                    return
        wall0, stream0 = 0, None  # wall clock and stream time of the pacing's reference packet
        try:
            for time_ns, data in self._source():
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

    def _source(self) -> Iterable[tuple[int, Data]]:
        """The replay, or synthetic runs with this server's settings."""
        if self.replay:
            return replay_packets(self.replay)
        runs: type[SyntheticRuns] = SyntheticRuns
        extra: dict[str, object] = {}
        if self.idf is not None:
            runs, extra = IdfRuns, {"idf_text": self.idf[0], "det_ids": self.idf[2], "powder": self.powder}
        return runs(
            rng=self._rng,
            pixels=self.pixels,
            banks=self.banks,
            rate=self.rate,
            run_seconds=self.run_seconds,
            runs=self.runs,
            first_run=self.first_run,
            gap_seconds=self.gap_seconds,
            instrument=self.instrument,
            proposal=self.proposal,
            title=self.title,
            pause_at=self.pause_at,
            pause_for=self.pause_for,
            error_events=self.error_events,
            monitor_rate=self.monitor_rate,
            **extra,
        ).stream()

    def _publish(self, data: Data, time_ns: int) -> None:
        n, fmt, _, _ = P.HEADER.unpack_from(packet_head(data))
        ptype = fmt >> 8
        payload = b""  # event packets are counted, not copied
        if not (isinstance(data, PooledPacket) or ptype == P.Type.BANKED_EVENT):
            payload = data[16 : 16 + n]
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
                count = (
                    data.events
                    if isinstance(data, PooledPacket)
                    else sum(
                        c
                        for _, banks in P.walk_banks(memoryview(data)[16 : 16 + n])
                        for b, _, c in banks
                        if b not in P.ERROR_BANKS
                    )
                )
                self.sent_events_per_run[self._run] += count
                if self._paused:
                    self.paused_events_per_run[self._run] += count
            elif ptype == P.Type.BEAM_MONITOR_EVENT and self._run:
                monitors = self.sent_monitor_events_per_run[self._run]
                for s in P.BeamMonitorPkt.decode(payload, fmt & 0xFF).sections:
                    monitors[s.monitor_id] = monitors.get(s.monitor_id, 0) + len(s.events)
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


def main(argv: list[str] | None = None, prog: str = "livereduce fake-adara") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=31415, help="TCP port to listen on")
    add_run_options(p)
    p.add_argument("--instrument", default="FAKE", help="instrument name")
    p.add_argument("--proposal", default="IPTS-0000", help="proposal in the run info")
    p.add_argument("--title", default="fake run", help="run title")
    p.add_argument("--pause-at", type=float, default=None, help="pause each run this many seconds in")
    p.add_argument("--pause-for", type=float, default=1.0, help="seconds each pause lasts")
    p.add_argument(
        "--idf", default=None, help="a Mantid IDF: sent as the geometry, events over its detector ids"
    )
    p.add_argument(
        "--powder",
        choices=("silicon", "diamond"),
        default=None,
        help="with --idf: events follow this powder's Bragg peaks (TOF = DIFC·d of each pixel)",
    )
    a = p.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if a.powder and not a.idf:
        print(
            f"{prog}: --powder needs --idf (each pixel's DIFC comes from the IDF's geometry)", file=sys.stderr
        )
        return 2
    if a.idf:
        try:
            idf_source(a.idf)  # an unusable --idf is one error line (the parse is cached for FakeSMS)
        except (OSError, ValueError) as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
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
        idf=a.idf,
        powder=a.powder,
        instrument=a.instrument,
        proposal=a.proposal,
        title=a.title,
        pause_at=a.pause_at,
        pause_for=a.pause_for,
        seed=a.seed,
    )
    return serve_forever(
        sms,
        None,  # start() logs "fake SMS listening on HOST:PORT"
        prog,
        until=sms.done if a.exit_when_done else None,
        stopped="fake SMS stopped",
        say=log.info,
    )


if __name__ == "__main__":
    sys.exit(main())
