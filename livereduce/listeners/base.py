"""The Listener contract and the parts every listener shares.

A listener turns a DAS stream into `Chunk`s. Its receive thread only touches its own buffer; `extract()` swaps
the buffer out under a lock and returns everything received since the previous extract. Buffered events cost
8 bytes each (uint32 spectrum index + float32 TOF); pulse times are kept per pulse, not per event.
"""

from __future__ import annotations

import enum
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from livereduce.errors import ProtocolError
from livereduce.workspace.events import grown
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra


class RunStatus(enum.IntEnum):
    """Mantid's ILiveListener::RunStatus. BEGIN_RUN / END_RUN mean 'happened since the previous extract'."""

    NO_RUN = 0
    BEGIN_RUN = 1
    RUNNING = 2
    END_RUN = 4


@dataclass(frozen=True)
class StartFrom:
    """Where the stream should start: now, the start of the current run, or an absolute time (ns, Unix)."""

    mode: str = "start_of_run"  # "now" | "start_of_run" | "time"
    time_ns: int = 0

    def __post_init__(self):
        if self.mode not in ("now", "start_of_run", "time"):
            raise ValueError(f"start mode must be now, start_of_run or time, not {self.mode!r}")


@dataclass(eq=False)
class ChunkEvents:
    """Columnar events of one chunk."""

    index: np.ndarray  # uint32 [n] workspace index (into the chunk's Spectra)
    tof: np.ndarray  # float32 [n] time of flight, µs
    pulse_time: np.ndarray  # int64 [p] ns since Unix epoch, one per pulse
    pulse_start: np.ndarray  # int64 [p] index of each pulse's first event (non-decreasing)

    @classmethod
    def empty(cls) -> ChunkEvents:
        return cls(
            np.empty(0, np.uint32), np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0, np.int64)
        )

    def __len__(self) -> int:
        return int(self.index.size)


@dataclass(eq=False)
class Histograms:
    """Histogram data of one chunk (ISIS DAE): cumulative counts since the run started."""

    edges: np.ndarray  # float64 [nbins+1] TOF bin edges, µs, shared by all spectra
    counts: np.ndarray  # float64 [nperiods, nspec, nbins]
    periods: tuple[int, ...] = (1,)  # period numbers (1-based) of counts' first axis


@dataclass(eq=False)
class Chunk:
    """Everything a listener received since the previous extract."""

    spectra: Spectra
    run: Run = field(default_factory=Run)
    events: ChunkEvents | None = None
    histograms: Histograms | None = None
    monitors: Chunk | None = None

    @property
    def n_events(self) -> int:
        return len(self.events) if self.events is not None else 0


@runtime_checkable
class Listener(Protocol):
    """What the session needs from a DAS connection (Mantid's ILiveListener, pythonic)."""

    buffers_events: bool  # True: chunks hold new events (Add makes sense); False: cumulative histograms

    def start(self, start: StartFrom) -> None: ...
    def extract(self) -> Chunk: ...  # raises NotYet until the stream is initialised
    def run_status(self) -> RunStatus: ...  # call after extract; edges reported once
    @property
    def run_number(self) -> int: ...
    def data_reset(self) -> bool: ...  # read-and-clear; read before extract
    def close(self) -> None: ...
    def state(self) -> dict: ...  # connected, address, reconnects, bytes, errors: for status


class EventBuffer:
    """Thread-safe growable columnar event buffer: the receive thread appends, extract() swaps it out.

    Growth is by doubling, so appending is amortised O(events); swap is O(1) plus trimming copies.
    """

    def __init__(self, capacity: int = 1 << 16):
        self._lock = threading.Lock()
        self._capacity = capacity
        self._new()

    def _new(self) -> None:
        # start the next chunk at the size the last one reached, so steady streams never regrow
        self._capacity = max(self._capacity, getattr(self, "_n", 0))
        self._index = np.empty(self._capacity, np.uint32)
        self._tof = np.empty(self._capacity, np.float32)
        self._n = 0
        self._pulse_time: list[int] = []
        self._pulse_start: list[int] = []

    def _grow(self, need: int) -> None:
        self._index, self._tof = grown([self._index, self._tof], self._n, need)

    def add_pulse(self, pulse_time_ns: int, index: np.ndarray, tof_us: np.ndarray) -> None:
        """Append one pulse's events. `index` and `tof_us` may be views into a receive buffer."""
        n = index.size
        with self._lock:
            if self._n + n > self._index.size:
                self._grow(self._n + n)
            self._index[self._n : self._n + n] = index
            self._tof[self._n : self._n + n] = tof_us
            if not self._pulse_time or self._pulse_time[-1] != pulse_time_ns:
                self._pulse_time.append(int(pulse_time_ns))
                self._pulse_start.append(self._n)
            self._n += n

    def __len__(self) -> int:
        return self._n

    def swap(self) -> ChunkEvents:
        """Everything buffered so far, as Events; the buffer starts empty again."""
        with self._lock:
            n, index, tof = self._n, self._index, self._tof
            times, starts = self._pulse_time, self._pulse_start
            self._new()
        return ChunkEvents(
            index[:n].copy() if n < index.size // 2 else index[:n],
            tof[:n].copy() if n < tof.size // 2 else tof[:n],
            np.asarray(times, np.int64),
            np.asarray(starts, np.int64),
        )


class RunTracker:
    """Run state as the session sees it: transitions are latched at extract and reported once.

    The receive thread calls `begin_run` / `end_run`; `extract()` calls `latch()`; `run_status()` returns the
    latched value. So BEGIN_RUN / END_RUN appear exactly once, after the extract that closed the old state.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = RunStatus.NO_RUN
        self._pending: RunStatus | None = None
        self._latched = RunStatus.NO_RUN
        self.run_number = 0

    def begin_run(self, run_number: int) -> None:
        with self._lock:
            self.run_number = run_number
            self._state = RunStatus.RUNNING
            self._pending = RunStatus.END_RUN if self._pending == RunStatus.END_RUN else RunStatus.BEGIN_RUN

    def end_run(self) -> None:
        with self._lock:
            self._state = RunStatus.NO_RUN
            self._pending = RunStatus.END_RUN

    def running(self, run_number: int) -> None:
        """Joined a run already in progress: no edge, just state."""
        with self._lock:
            self.run_number = run_number
            self._state = RunStatus.RUNNING

    def latch(self) -> None:
        with self._lock:
            self._latched = self._pending if self._pending is not None else self._state
            self._pending = None

    def status(self) -> RunStatus:
        return self._latched


class RunStateMixin:
    """The contract's run_number, run_status and data_reset, for listeners that keep a RunTracker
    (`_tracker`) and a reset flag (`_reset`, guarded by `_lock`) written by their receive thread."""

    _tracker: RunTracker
    _lock: threading.Lock
    _reset: bool

    @property
    def run_number(self) -> int:
        return self._tracker.run_number

    def run_status(self) -> RunStatus:
        return self._tracker.status()

    def data_reset(self) -> bool:
        with self._lock:
            reset, self._reset = self._reset, False
        return reset


class SilenceTimeout(OSError):
    """Nothing arrived for `seconds` while the reader waited: the peer is silent, drop and reconnect.

    Deliberately not a TimeoutError: readers that poll with short socket timeouts catch TimeoutError and
    retry, and must not swallow this one."""

    def __init__(self, seconds: float):
        super().__init__(f"no data for {seconds:.0f} s")
        self.seconds = seconds


def positive_seconds(name: str, value) -> float:
    """`value` as seconds > 0 (finite); a ValueError naming the option otherwise."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if isinstance(value, bool) or not 0 < seconds < float("inf"):
        raise ValueError(f"{name} must be a number of seconds > 0, not {value!r}")
    return seconds


def enable_keepalive(sock: socket.socket, idle: int = 30, interval: int = 10, count: int = 3) -> None:
    """TCP keepalive, so a peer that vanished (power cut, cable pulled) is noticed in ~idle + interval·count s
    even while nothing is read. TCP_KEEPIDLE / INTVL / CNT are set where the platform has them."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:
        return
    for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", count)):
        option = getattr(socket, name, None)
        if option is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
            except OSError:
                pass


class RateLimited:
    """Log a recurring condition at most once per `every` seconds per key, with the count since the last line."""

    def __init__(self, logger: logging.Logger, every: float = 60.0):
        self.log, self.every = logger, every
        self._last: dict[str, float] = {}

    def warning(self, key: str, message: str, *args) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            return False
        self._last[key] = now
        self.log.warning(message, *args, stacklevel=2)
        return True


class WatchedSocket:
    """A connected socket whose reads notice silence: once a reader has waited `silence` seconds in a row
    without a byte, reads raise SilenceTimeout.

    Waiting counts only while the reader is reading: a gap of more than `gap` seconds between two reads (the
    reader was busy, or holding back on purpose) starts the count again. The timeout a reader sets is kept and
    honoured (TimeoutError as usual); each read is also bounded by what is left of the silence allowance."""

    gap = 1.0

    def __init__(self, sock: socket.socket, silence: float | None):
        self._sock, self._silence = sock, silence
        self._timeout = sock.gettimeout()
        self._quiet_since: float | None = None
        self._last_read = time.monotonic()

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def __getattr__(self, name):  # sendall, fileno, setsockopt, ...: the socket's own
        return getattr(self._sock, name)

    def _read(self, call, *args) -> int | bytes:
        if self._silence is None:
            self._sock.settimeout(self._timeout)
            return call(*args)
        now = time.monotonic()
        if self._quiet_since is None or now - self._last_read > self.gap:
            self._quiet_since = now
        left = self._silence - (now - self._quiet_since)
        if left <= 0:
            raise SilenceTimeout(now - self._quiet_since)
        self._sock.settimeout(left if self._timeout is None else min(left, self._timeout))
        try:
            got = call(*args)
        except TimeoutError:
            self._last_read = time.monotonic()
            if self._last_read - self._quiet_since >= self._silence:
                raise SilenceTimeout(self._last_read - self._quiet_since) from None
            raise
        self._last_read = time.monotonic()
        if got:
            self._quiet_since = None
        return got

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        return int(self._read(self._sock.recv_into, buffer, nbytes, flags))

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        return bytes(self._read(self._sock.recv, bufsize, flags))


class StreamThread:
    """A receive thread that connects, reads until the stream breaks, and reconnects with backoff.

    Subclasses implement `handle(sock)`: read and decode until the connection ends, adding what they decoded
    to `bytes_received` (that is what counts as data). A ProtocolError (garbage on the wire) or a socket error
    drops the connection; the loop logs one line and reconnects. Nothing a peer sends can end the process.

    Liveness: connecting is bounded by `connect_timeout`; `handle` gets a `WatchedSocket`, so a peer silent for
    `silence_timeout` s while the reader waits is dropped (logged with the seconds) and reconnected; TCP
    keepalive is on. The delay before reconnecting doubles after every connection that failed or ended
    without `healthy_after` s of data (protocol errors included), up to `backoff[1]`, and goes back to
    `backoff[0]` only after a connection that delivered data for at least `healthy_after` s.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        name: str,
        logger: logging.Logger,
        timeout: float = 30.0,
        backoff: tuple[float, float] = (0.2, 10.0),
        connect_timeout: float = 5.0,
        silence_timeout: float | None = 120.0,
        healthy_after: float = 10.0,
    ):
        self.timeout = positive_seconds("timeout", timeout)
        self.connect_timeout = positive_seconds("connect_timeout", connect_timeout)
        self.silence_timeout = (
            None if silence_timeout is None else positive_seconds("silence_timeout", silence_timeout)
        )
        self.healthy_after = float(healthy_after)
        low, high = (positive_seconds("backoff", b) for b in backoff)
        self.host, self.port, self.log = host, port, logger
        self._backoff = (low, max(low, high))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._sock: socket.socket | None = None
        self._data_since: float | None = None  # when the current connection first delivered data
        self._bytes = 0
        self.connected = False
        self.connects = 0
        self.attempts = 0
        self.drops = 0
        self.silences = 0
        self.retry_delay = low
        self.last_error = ""

    @property
    def bytes_received(self) -> int:
        return self._bytes

    @bytes_received.setter
    def bytes_received(self, value: int) -> None:
        if value > self._bytes and self._data_since is None:
            self._data_since = time.monotonic()
        self._bytes = value

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            try:  # wakes a reader blocked in recv: it sees EOF and the loop ends
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def handle(self, sock: socket.socket) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _retry(self, delay: float, healthy: bool) -> float:
        """Wait before the next attempt; returns the delay to use after that."""
        if healthy:
            delay = self._backoff[0]
        self.retry_delay = delay
        self._stop.wait(delay)
        return delay if healthy else min(delay * 2, self._backoff[1])

    def _run(self) -> None:
        delay = self._backoff[0]
        where = f"{self.host}:{self.port}"
        while not self._stop.is_set():
            self.attempts += 1
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            except OSError as exc:
                self.last_error = f"connect: {exc}"
                self.log.warning("cannot connect to %s (%s); retrying in %.1f s", where, exc, delay)
                delay = self._retry(delay, healthy=False)
                continue
            enable_keepalive(sock)
            self.connects += 1
            self.connected = True
            self._data_since = None
            self._sock = sock
            self.log.info("connected to %s", where)
            why = ""
            try:
                watched = WatchedSocket(sock, self.silence_timeout)
                watched.settimeout(self.timeout)
                self.handle(watched)  # type: ignore[arg-type]  # a socket in all but name
                if not self._stop.is_set():
                    why = "connection closed by peer"
            except SilenceTimeout as exc:
                self.silences += 1
                self.last_error = f"silence: nothing for {exc.seconds:.0f} s"
                why = f"no data for {exc.seconds:.0f} s (silence_timeout {self.silence_timeout:g} s)"
            except ProtocolError as exc:
                self.last_error = f"protocol: {exc}"
                why = f"protocol error: {exc}"
            except (OSError, EOFError) as exc:
                if not self._stop.is_set():
                    self.last_error = f"socket: {exc}"
                    why = f"connection lost ({exc})"
            except Exception as exc:  # a decoder bug must not kill the receive thread for good
                self.last_error = f"unexpected: {exc!r}"
                self.log.exception("unexpected error reading from %s", where)
                why = "unexpected error"
            finally:
                self.connected = False
                self._sock = None
                self.drops += 1
                try:
                    sock.close()
                except OSError:
                    pass
            if self._stop.is_set():
                break
            since = self._data_since
            healthy = since is not None and time.monotonic() - since >= self.healthy_after
            wait = self._backoff[0] if healthy else delay
            level = logging.ERROR if why.startswith("protocol") else logging.WARNING
            self.log.log(
                level, "%s from %s; dropping the connection, reconnecting in %.1f s", why, where, wait
            )
            delay = self._retry(delay, healthy)


def recv_exact(
    sock: socket.socket, n: int, stop: threading.Event | None = None, deadline: float | None = None
) -> bytes:
    """Read exactly n bytes; EOFError if the peer closes first. With a `deadline` (time.monotonic()), a
    TimeoutError once it passes, however the bytes trickle in."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"deadline passed with {got} of {n} bytes received")
            sock.settimeout(left)
        try:
            k = sock.recv_into(view[got:], n - got)
        except TimeoutError:
            if stop is not None and stop.is_set():
                raise EOFError("stopping") from None
            if deadline is not None and got < n:
                raise TimeoutError(f"deadline passed with {got} of {n} bytes received") from None
            raise
        if k == 0:
            raise EOFError(f"peer closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def parse_address(address: str, default_port: int) -> tuple[str, int]:
    """'host:port' → (host, port); empty or 0.0.0.0 host means localhost (as Mantid does)."""
    host, _, port = (address or "").rpartition(":") if ":" in (address or "") else (address or "", "", "")
    host = host or "127.0.0.1"
    if host == "0.0.0.0":  # noqa: S104 - a config value we map to localhost, not a bind
        host = "127.0.0.1"
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise ValueError(f"address must be host:port, not {address!r}") from None
