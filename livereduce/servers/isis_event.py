"""Fake ISIS event DAE, with Mantid's FakeISISEventDAE defaults: port 59876, 1000 events per packet every
20 ms (≈ 50,000 events/s), 100 spectra, run 1234 of "MUSR", TOF uniform in 10,000–20,000 µs. It also serves
the histogram DAE's IDC side channel on port + 1, as the listener expects.

It counts exactly what it sends (`sent_events`) and prints "sent N events" every few seconds and at exit.

    python -m livereduce.servers.isis_event --port 59876
"""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import time

import numpy as np

from livereduce.listeners.isis_event import pack_frame, pack_setup
from livereduce.servers.base import BindError, HelpFormatter, TCPServer, serve_forever
from livereduce.servers.isis_histogram import FakeHistogramDAE

log = logging.getLogger("livereduce.fake_event_dae")
PORT = 59876


class FakeEventDAE(TCPServer):
    name = "fake-event-dae"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = PORT,
        *,
        nspectra: int = 100,
        nperiods: int = 1,
        events_per_packet: int = 1000,
        rate_ms: float = 20.0,
        run_number: int = 1234,
        seed: int | None = None,
        report_every: float = 5.0,
    ):
        super().__init__(host, port)
        self.nspectra, self.nperiods = int(nspectra), int(nperiods)
        self.events_per_packet, self.rate_ms, self.run_number = (
            int(events_per_packet),
            float(rate_ms),
            run_number,
        )
        self.report_every = report_every
        self._rng = np.random.default_rng(seed)
        self.sending = threading.Event()  # clear it to pause sending (tests drain the listener)
        self.sending.set()
        self.sent_events = 0  # guarded by the base class's _lock
        self.side_channel: FakeHistogramDAE | None = None

    def start(self) -> int:
        self._start_time = int(time.time())
        port = super().start()
        side = FakeHistogramDAE(self.host, port + 1, nperiods=self.nperiods, nspectra=self.nspectra, nbins=10)
        try:
            side.start()
        except BindError as exc:
            super().stop()  # free the event port too: nothing half-started stays behind
            exc.role = "the IDC side channel, --port + 1"
            raise
        self.side_channel = side
        self._spawn(self._report)
        log.info("fake ISIS event DAE on %s:%d (IDC side channel on %d)", self.host, port, port + 1)
        return port

    def stop(self) -> None:
        super().stop()
        if self.side_channel is not None:
            self.side_channel.stop()
        print(f"sent {self.sent_events} events", flush=True)

    def handle(self, conn: socket.socket) -> None:
        frame = 0
        try:
            conn.sendall(pack_setup(self.run_number, self._start_time, "MUSR"))
            next_at = time.monotonic()
            while not self._stop.is_set():
                next_at += self.rate_ms / 1000
                self._stop.wait(max(0.0, next_at - time.monotonic()))
                if not self.sending.is_set():
                    continue
                n = self.events_per_packet
                tof = self._rng.uniform(10_000.0, 20_000.0, n)
                spectrum = self._rng.integers(1, self.nspectra + 1, n)
                period = int(self._rng.integers(0, self.nperiods))
                packet = pack_frame(frame, period, 0.01, time.time() - self._start_time, tof, spectrum)
                conn.sendall(packet)
                with self._lock:
                    self.sent_events += n
                frame += 1
        except OSError as exc:
            log.info("client gone: %s", exc)

    def _report(self) -> None:
        while not self._stop.wait(self.report_every):
            print(f"sent {self.sent_events} events", flush=True)


def main(argv: list[str] | None = None, prog: str = "livereduce fake-isis-event") -> int:
    p = argparse.ArgumentParser(
        prog=prog,
        formatter_class=HelpFormatter,
        description="Fake ISIS event DAE; it also serves the histogram DAE's IDC "
        "side channel on port + 1. Ctrl-C stops it.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=PORT, help="TCP port of the event stream (IDC on port + 1)")
    p.add_argument("--spectra", type=int, default=100, help="number of spectra")
    p.add_argument("--periods", type=int, default=1, help="number of periods")
    p.add_argument("--events", type=int, default=1000, help="events per packet")
    p.add_argument("--rate", type=float, default=20.0, help="milliseconds between packets")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one each run)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    dae = FakeEventDAE(
        args.host,
        args.port,
        nspectra=args.spectra,
        nperiods=args.periods,
        events_per_packet=args.events,
        rate_ms=args.rate,
        seed=args.seed,
    )
    return serve_forever(
        dae, f"fake ISIS event DAE on {args.host}:{{port}} (IDC on port+1; Ctrl-C to stop)", prog
    )


if __name__ == "__main__":
    raise SystemExit(main())
