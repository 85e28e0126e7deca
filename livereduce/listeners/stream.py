"""Network stream plumbing every DAS client shares: the connect / read / reconnect loop with its timeouts and
backoff, TCP keepalive, exact reads with deadlines, rate-limited warnings, and host:port parsing."""

from __future__ import annotations

import logging
import socket
import threading
import time

from livereduce.errors import ProtocolError


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
