"""Fake ISIS histogram DAE speaking IDC, with Mantid's FakeISISHistoDAE defaults (port 56789, name MUSR).

Every bin of spectrum s in period p holds p·1000 + s, so tests can check every value. Spectra 1..NSpectra
are detectors; the 3 monitors follow as spectra NSpectra+1..NSpectra+3 (listed by NMON/MDET). Unlike
Mantid's fake, the monitors share the detectors' time regime, so one GETDAT serves both. Bin edges (RTCB1)
are 10000 + 100·i µs; RRPB[8] (proton charge) is 3.14.

The command line (`livereduce fake-dae`, `python test/fake_server.py`) defaults to the processing-scripts
guide's DAE, which the README's configs expect (test/fake.conf asks for periods [1, 3]): 5 periods, 10
spectra, 100 bins on port 56789. The class keeps Mantid's defaults (1 period, 100 spectra, 30 bins).

    livereduce fake-dae [--port 56789] [--periods 5] [--spectra 10] [--bins 100]
"""

from __future__ import annotations

import argparse
import logging
import socket

import numpy as np

from livereduce.errors import ProtocolError
from livereduce.listeners import idc
from livereduce.listeners.stream import recv_exact
from livereduce.servers.base import HelpFormatter, TCPServer, serve_forever

log = logging.getLogger("livereduce.fake_dae")
NMON = 3
PORT = 56789
GUIDE_PERIODS, GUIDE_SPECTRA, GUIDE_BINS = 5, 10, 100  # the command line's defaults (the guide's DAE)


class FakeHistogramDAE(TCPServer):
    name = "fake-dae"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = PORT,
        *,
        nperiods: int = 1,
        nspectra: int = 100,
        nbins: int = 30,
        name: str = "MUSR",
    ):
        super().__init__(host, port)
        self.nperiods, self.nspectra, self.nbins, self.instrument = (
            int(nperiods),
            int(nspectra),
            int(nbins),
            name,
        )
        self.nsp1 = self.nspectra + NMON
        self.requests = 0

    # -- what the DAE holds ---------------------------------------------------------------------
    def parameters(self) -> dict[str, tuple[int, object]]:
        n = self.nsp1
        rrpb = np.zeros(32, np.float32)
        rrpb[8] = 3.14
        return {
            "NPER": (idc.INT32, np.array([self.nperiods])),
            "NSP1": (idc.INT32, np.array([n])),
            "NTC1": (idc.INT32, np.array([self.nbins])),
            "NSP2": (idc.INT32, np.array([0])),
            "NTC2": (idc.INT32, np.array([0])),
            "NMON": (idc.INT32, np.array([NMON])),
            "MDET": (idc.INT32, np.arange(self.nspectra + 1, n + 1)),
            "NDET": (idc.INT32, np.array([n])),
            "UDET": (idc.INT32, np.arange(1, n + 1)),
            "SPEC": (idc.INT32, np.arange(1, n + 1)),
            "RTCB1": (idc.REAL32, 10000.0 + 100.0 * np.arange(self.nbins + 1)),
            "RRPB": (idc.REAL32, rrpb),
            "NAME": (idc.CHAR, self.instrument.encode()),
        }

    def histograms(self, first: int, count: int) -> np.ndarray:
        """DAE index i = s + (p-1)·(NSP1+1): spectrum s (0 is the unused spectrum) of period p."""
        index = np.arange(first, first + count)
        p, s = index // (self.nsp1 + 1) + 1, index % (self.nsp1 + 1)
        data = np.repeat(((p * 1000 + s) * (s > 0))[:, None], self.nbins + 1, axis=1).astype(np.int32)
        data[:, 0] = 0  # bin 0 is never used
        return data

    # -- serving --------------------------------------------------------------------------------
    def start(self) -> int:
        port = super().start()
        log.info(
            "fake ISIS histogram DAE on %s:%d (%d periods, %d spectra, %d bins)",
            self.host,
            port,
            self.nperiods,
            self.nspectra,
            self.nbins,
        )
        return port

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.5)
        params = self.parameters()
        try:
            length, major, _minor = idc.unpack_open(self._recv(conn, idc.OPEN.size))
            if length != idc.OPEN.size or major != 1:
                raise ProtocolError(f"bad open message (len {length}, major {major})")
            conn.sendall(idc.pack_message("OK"))
            while not self._stop.is_set():
                command, dtype, _dims, data = self._read(conn)
                self.requests += 1
                if dtype == idc.CHAR and command.startswith("GETPAR"):
                    name = data.split(b"\0", 1)[0].decode("ascii", "replace")
                    kind = idc.GETPAR_TYPES.get(command[6:])
                    if name not in params or params[name][0] != kind:
                        conn.sendall(idc.pack_message("ERROR: no such parameter of that type", idc.CHAR, b""))
                        continue
                    ptype, value = params[name]
                    conn.sendall(idc.pack_message("OK", ptype, value))
                elif command == "GETDAT" and dtype == idc.INT32 and len(data) == 8:
                    first, count = np.frombuffer(data, "<i4")
                    if first < 0 or count < 0 or first + count > self.nperiods * (self.nsp1 + 1):
                        conn.sendall(idc.pack_message("ERROR: spectra out of range", idc.CHAR, b""))
                        continue
                    conn.sendall(idc.pack_message("OK", idc.INT32, self.histograms(int(first), int(count))))
                else:
                    raise ProtocolError(f"unknown request {command!r}")
        except (ProtocolError, OSError, EOFError) as exc:
            log.debug("client dropped: %s", exc)

    def _recv(self, conn, n):
        while True:
            try:
                return recv_exact(conn, n, self._stop)
            except TimeoutError:
                if self._stop.is_set():
                    raise EOFError("stopping") from None

    def _read(self, conn):
        while True:
            try:
                return idc.read_message(conn)
            except TimeoutError:
                if self._stop.is_set():
                    raise EOFError("stopping") from None


def main(argv: list[str] | None = None, prog: str = "livereduce fake-isis-histogram") -> int:
    p = argparse.ArgumentParser(
        prog=prog,
        formatter_class=HelpFormatter,
        description="Fake ISIS histogram DAE (IDC): every bin of spectrum s in "
        "period p holds p*1000 + s; 3 monitors follow the detectors. "
        "Ctrl-C stops it.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=PORT, help="TCP port to listen on")
    p.add_argument("--periods", type=int, default=GUIDE_PERIODS, help="number of periods")
    p.add_argument(
        "--spectra", type=int, default=GUIDE_SPECTRA, help="detector spectra (monitors not counted)"
    )
    p.add_argument("--bins", type=int, default=GUIDE_BINS, help="time-of-flight bins per spectrum")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    dae = FakeHistogramDAE(
        args.host, args.port, nperiods=args.periods, nspectra=args.spectra, nbins=args.bins
    )
    return serve_forever(
        dae,
        f"fake ISIS histogram DAE on {args.host}:{{port}}: {args.periods} periods, "
        f"{args.spectra} spectra, {args.bins} bins (Ctrl-C to stop)",
        prog,
    )


if __name__ == "__main__":
    raise SystemExit(main())
