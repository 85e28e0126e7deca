"""ISIS histogram DAE listener (IDC): every extract returns the full cumulative histograms.

Semantics from Mantid's ISISHistoDataListener (shared/reference/mantid-livedata.md §2.3): counts are cumulative
since the run started (so only Replace or Append make sense); E = √counts; a period selection entry above
NPER is an error; run status is always RUNNING, run number 0. Where we differ: when the DAE's dimensions
change between extracts (periods, spectra, bins) we set `data_reset` so the session starts a new accumulation,
instead of failing; an unreachable or misbehaving DAE gives NotYet and a reconnect on the next extract.
"""

from __future__ import annotations

import logging

import numpy as np

from livereduce.errors import NotYet, ProtocolError
from livereduce.listeners.base import Chunk, Histograms, RunStatus, StartFrom, parse_address
from livereduce.listeners.idc import IDCClient, spectra_from_tables
from livereduce.workspace.run import Run

log = logging.getLogger("livereduce.listener.isis_histogram")
DEFAULT_PORT = 6789


class ISISHistogramListener:
    buffers_events = False

    def __init__(self, address: str = "", *, periods=None, spectra=None, timeout: float = 30.0, **options):
        if options:
            log.debug("isis_histogram ignores options %s", sorted(options))
        self.host, self.port = parse_address(address, DEFAULT_PORT)
        self.periods = list(periods) if periods else None
        self.spectra = list(spectra) if spectra else None
        self.timeout = timeout
        self._client: IDCClient | None = None
        self._layout: tuple | None = None
        self._reset = False
        self.connects = self.drops = 0
        self.last_error = ""

    # -- connection -------------------------------------------------------------------------------
    def start(self, start: StartFrom) -> None:
        try:
            self._connect()
        except NotYet as exc:
            log.warning("%s", exc)

    def _connect(self) -> None:
        try:
            self._client = IDCClient(self.host, self.port, self.timeout)
        except (OSError, ProtocolError) as exc:
            self._client = None
            self.last_error = str(exc)
            raise NotYet(f"cannot reach the DAE at {self.host}:{self.port} ({exc}); will retry") from exc
        self.connects += 1
        log.info("connected to the DAE at %s:%d", self.host, self.port)

    def _drop(self, why: str) -> None:
        self.drops += 1
        self.last_error = why
        log.error(
            "DAE %s:%d: %s; dropping the connection and reconnecting at the next update",
            self.host,
            self.port,
            why,
        )
        if self._client is not None:
            self._client.close()
        self._client = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- the contract -----------------------------------------------------------------------------
    @property
    def run_number(self) -> int:
        return 0

    def run_status(self) -> RunStatus:
        return RunStatus.RUNNING

    def data_reset(self) -> bool:
        reset, self._reset = self._reset, False
        return reset

    def state(self) -> dict:
        return {
            "connected": self._client is not None,
            "address": f"{self.host}:{self.port}",
            "connects": self.connects,
            "drops": self.drops,
            "last_error": self.last_error,
        }

    def extract(self) -> Chunk:
        if self._client is None:
            self._connect()
        try:
            return self._read()
        except (OSError, EOFError, ProtocolError) as exc:
            self._drop(f"{type(exc).__name__}: {exc}")
            raise NotYet("the DAE connection was lost; reconnecting") from exc

    def _read(self) -> Chunk:
        c = self._client
        if c is None:
            raise NotYet("not connected to the DAE")
        nper = int(c.getpar("NPER", "I32")[0])
        nsp1 = int(c.getpar("NSP1", "I32")[0])
        nbins = int(c.getpar("NTC1", "I32")[0])
        if nbins <= 0:
            raise ProtocolError("NTC1 is 0: the DAE reports no time channels")
        edges = c.getpar("RTCB1", "R32").astype(np.float64)
        if edges.size != nbins + 1:
            raise ProtocolError(f"RTCB1 has {edges.size} edges for {nbins} bins")
        udet, spec = c.getpar("UDET", "I32"), c.getpar("SPEC", "I32")
        nmon = int(c.getpar("NMON", "I32")[0])
        monitors = sorted({int(spec[m - 1]) for m in c.getpar("MDET", "I32")[:nmon] if 0 < m <= spec.size})
        periods = self.periods or list(range(1, nper + 1))
        bad = [p for p in periods if not 1 <= p <= nper]
        if bad:
            raise ValueError(f"periods {bad} are not in the DAE's 1..{nper}")
        detectors = [s for s in range(1, nsp1 + 1) if s not in monitors]
        wanted = self.spectra or detectors
        bad = [s for s in wanted if not 1 <= s <= nsp1]
        if bad:
            raise ValueError(f"spectra {bad} are not in the DAE's 1..{nsp1}")
        layout = (nper, nsp1, nbins, tuple(periods), tuple(wanted))
        if self._layout is not None and layout != self._layout:
            log.warning(
                "the DAE's dimensions changed (%s -> %s): starting a new accumulation", self._layout, layout
            )
            self._reset = True
        self._layout = layout

        rows = {p: c.getdat((p - 1) * (nsp1 + 1), nsp1 + 1, nbins) for p in periods}  # one read per period
        counts = np.stack([rows[p][wanted, 1:] for p in periods]).astype(np.float64)
        run = Run()
        run.set("run_number", "0")
        run.set("gd_prtn_chrg", float(c.getpar("RRPB", "R32")[8]), "uAh")
        name = c.getpar_text("NAME")
        chunk = Chunk(
            spectra=spectra_from_tables(wanted, udet, spec, name),
            run=run,
            histograms=Histograms(edges, counts, tuple(periods)),
        )
        if monitors and self.spectra is None:
            mon = np.stack([rows[p][monitors, 1:] for p in periods]).astype(np.float64)
            chunk.monitors = Chunk(
                spectra=spectra_from_tables(monitors, udet, spec, name),
                run=run.copy(),
                histograms=Histograms(edges.copy(), mon, tuple(periods)),
            )
        return chunk
