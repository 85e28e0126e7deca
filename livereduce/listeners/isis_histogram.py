"""ISIS histogram DAE listener (IDC): every extract returns the full cumulative histograms.

Semantics from Mantid's ISISHistoDataListener (shared/reference/mantid-livedata.md §2.3): counts are cumulative
since the run started (so only Replace or Append make sense); E = √counts; a period selection entry above
NPER is an error; run status is always RUNNING, run number 0. Where we differ: when the DAE's dimensions
change between extracts (periods, spectra, bins) we set `data_reset` so the session starts a new accumulation,
instead of failing; an unreachable or misbehaving DAE gives NotYet and a reconnect on the next extract.

Liveness: the listener reads in the session's thread, so every exchange is bounded. Connecting takes at most
`connect_timeout` s, the open handshake at most `timeout` s, and a whole extract (all its requests, however
slowly the DAE trickles its replies) at most min(`timeout`, `silence_timeout`) s. On expiry the extract
gives NotYet, the connection is dropped (logged) and made again at the next extract. Values the DAE sends are
checked before they size anything: garbage is a ProtocolError, handled the same way.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from livereduce.errors import NotYet, ProtocolError
from livereduce.listeners.base import Chunk, Histograms, RunStatus, StartFrom
from livereduce.listeners.idc import MAX_TABLE, IDCClient, check_spectrum_count, spectra_from_tables
from livereduce.listeners.stream import RateLimited, parse_address, positive_seconds
from livereduce.workspace.run import Run

log = logging.getLogger("livereduce.listener.isis_histogram")
DEFAULT_PORT = 6789
MAX_PERIODS = 1 << 16  # more periods than this from the DAE is garbage
MAX_BINS = 1 << 22  # time channels per spectrum


class ISISHistogramListener:
    buffers_events = False

    def __init__(
        self,
        address: str = "",
        *,
        periods=None,
        spectra=None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        silence_timeout: float = 120.0,
        **options,
    ):
        if options:
            log.debug("isis_histogram ignores options %s", sorted(options))
        self.timeout = positive_seconds("timeout", timeout)
        self.connect_timeout = positive_seconds("connect_timeout", connect_timeout)
        self.silence_timeout = positive_seconds("silence_timeout", silence_timeout)
        self.host, self.port = parse_address(address, DEFAULT_PORT)
        self.periods = list(periods) if periods else None
        self.spectra = list(spectra) if spectra else None
        self._limited = RateLimited(log)
        self._client: IDCClient | None = None
        self._layout: tuple | None = None
        self._reset = False
        self.connects = self.drops = 0
        self.last_error = ""

    @property
    def cycle_timeout(self) -> float:
        """Seconds one extract (or the open handshake) may take in all."""
        return min(self.timeout, self.silence_timeout)

    # -- connection -------------------------------------------------------------------------------
    def start(self, start: StartFrom) -> None:
        try:
            self._connect()
        except NotYet as exc:
            log.warning("%s", exc)

    def _connect(self) -> None:
        try:
            self._client = IDCClient(
                self.host,
                self.port,
                self.cycle_timeout,
                connect_timeout=self.connect_timeout,
                handshake_timeout=self.cycle_timeout,
            )
        except (OSError, EOFError, ProtocolError) as exc:
            self._client = None
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._limited.warning(
                "connect",
                "cannot open the DAE at %s:%d (%s); retrying at each update",
                self.host,
                self.port,
                exc,
            )
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
        except TimeoutError as exc:
            self._drop(f"no complete reply within {self.cycle_timeout:g} s ({exc})")
            raise NotYet("the DAE did not answer in time; reconnecting") from exc
        except (OSError, EOFError, ProtocolError) as exc:
            self._drop(f"{type(exc).__name__}: {exc}")
            raise NotYet("the DAE connection was lost; reconnecting") from exc

    def _read(self) -> Chunk:
        c = self._client
        if c is None:
            raise NotYet("not connected to the DAE")
        c.deadline = time.monotonic() + self.cycle_timeout  # every request of this extract, in all
        nper = c.getpar_int("NPER", 1, MAX_PERIODS)
        nsp1 = c.getpar_int("NSP1", 0, MAX_TABLE)
        nbins = c.getpar_int("NTC1", 0, MAX_BINS)
        if nbins <= 0:
            raise ProtocolError("NTC1 is 0: the DAE reports no time channels")
        with np.errstate(invalid="ignore"):  # NaN edges are refused just below
            edges = c.getpar_vector("RTCB1", "R32").astype(np.float64)
        if edges.size != nbins + 1:
            raise ProtocolError(f"RTCB1 has {edges.size} edges for {nbins} bins")
        if not (np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)):
            raise ProtocolError("RTCB1 bin edges are not finite and increasing")
        udet, spec = c.getpar_vector("UDET", "I32"), c.getpar_vector("SPEC", "I32")
        check_spectrum_count(nsp1, udet)
        nmon = c.getpar_int("NMON", 0, MAX_TABLE)
        mdet = c.getpar_vector("MDET", "I32")[:nmon].astype(np.int64)
        mdet = mdet[(mdet > 0) & (mdet <= spec.size)]
        monitors = np.unique(spec[mdet - 1]).astype(np.int64)
        monitors = monitors[(monitors >= 1) & (monitors <= nsp1)]
        periods = self.periods or list(range(1, nper + 1))
        bad = [p for p in periods if not 1 <= p <= nper]
        if bad:
            raise ValueError(f"periods {bad} are not in the DAE's 1..{nper}")
        # the histograms before anything is sized by NSP1: replies that do not match it fail here, cheaply
        rows = {p: c.getdat((p - 1) * (nsp1 + 1), nsp1 + 1, nbins) for p in periods}  # one read per period
        wanted = (
            np.asarray(self.spectra, np.int64) if self.spectra else np.arange(1, nsp1 + 1, dtype=np.int64)
        )
        if self.spectra:
            bad = [s for s in self.spectra if not 1 <= s <= nsp1]
            if bad:
                raise ValueError(f"spectra {bad} are not in the DAE's 1..{nsp1}")
        else:
            wanted = wanted[~np.isin(wanted, monitors)]  # the detectors
        layout = (nper, nsp1, nbins, tuple(periods), tuple(self.spectra or ()), tuple(monitors.tolist()))
        if self._layout is not None and layout != self._layout:
            log.warning(
                "the DAE's dimensions changed (%s -> %s): starting a new accumulation",
                self._layout[:4],
                layout[:4],
            )
            self._reset = True
        self._layout = layout
        counts = np.stack([rows[p][wanted, 1:] for p in periods]).astype(np.float64)
        run = Run()
        run.set("run_number", "0")
        run.set("gd_prtn_chrg", float(c.getpar_vector("RRPB", "R32", 9)[8]), "uAh")
        name = c.getpar_text("NAME")
        c.deadline = None
        chunk = Chunk(
            spectra=spectra_from_tables(wanted, udet, spec, name),
            run=run,
            histograms=Histograms(edges, counts, tuple(periods)),
        )
        if monitors.size and self.spectra is None:
            mon = np.stack([rows[p][monitors, 1:] for p in periods]).astype(np.float64)
            chunk.monitors = Chunk(
                spectra=spectra_from_tables(monitors, udet, spec, name),
                run=run.copy(),
                histograms=Histograms(edges.copy(), mon, tuple(periods)),
            )
        return chunk
