"""What every fake DAS server shares: bind, an accept loop with one thread per client, a clean stop, and a
command-line runner that stops on Ctrl-C or SIGTERM (no kill -9 needed). A port that cannot be bound (another
server already listens there) is one line on stderr and exit code 2, not a traceback."""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import sys
import threading
from typing import Any

EXIT_SETUP = 2  # the CLI's "fix the setup" exit code


class BindError(OSError):
    """The server could not listen on host:port (the port is in use, or not ours to take)."""

    def __init__(self, host: str, port: int, cause: OSError):
        super().__init__(cause.errno, cause.strerror)
        self.host, self.port, self.cause = host, port, cause
        self.role = ""  # e.g. "the IDC side channel, --port + 1"

    def one_line(self, prog: str) -> str:
        if self.cause.errno == errno.EADDRINUSE:
            why = "is already in use (another server is listening there?)"
        else:
            why = f"cannot be bound: {self.cause.strerror or self.cause}"
        role = f" ({self.role})" if self.role else ""
        return f"{prog}: port {self.port}{role} on {self.host} {why}; choose another with --port"


def bind_listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket on host:port (SO_REUSEADDR, so a restart is not blocked by TIME_WAIT); a port
    already in use raises BindError naming it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, port))
        server.listen(backlog)
    except OSError as exc:
        server.close()
        raise BindError(host, port, exc) from None
    return server


def report_bind_error(exc: BindError, prog: str) -> int:
    """The one line on stderr for a port that cannot be bound; returns the exit code (2)."""
    print(exc.one_line(prog), file=sys.stderr, flush=True)
    return EXIT_SETUP


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows every option's default (the ports among them); a help text that already says its default,
    or an option without one, is left as it is."""

    def _get_help_string(self, action):
        if action.default is None or action.nargs == 0 or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class TCPServer:
    """Subclasses implement `handle(conn)`; `start()` returns the bound port (useful with port 0).

    A handler that keeps per-client state (a send queue, say) adds `conn: state` to `_clients` while holding
    `_lock`; the entry goes when `handle` returns. `drop_clients()` cuts those connections and `stop()` cuts
    them too, so no handler is left blocked in a send."""

    name = "fake server"
    backlog = 16  # listen() backlog
    join_timeout = 2.0  # seconds stop() waits for each thread

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._clients: dict[socket.socket, Any] = {}  # conn → the handler's per-client state

    def handle(self, conn: socket.socket) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def start(self) -> int:
        server = bind_listen(self.host, self.port, self.backlog)  # a port in use raises BindError naming it
        server.settimeout(0.2)
        self._server, self.port = server, server.getsockname()[1]
        self._spawn(self._accept, name=f"{self.name}-accept")
        return self.port

    def stop(self) -> None:
        """Stop accepting, cut every registered client and wait for the threads (the port is free afterwards)."""
        self._stop.set()
        if self._server is not None:  # first, so no client slips in while the others are cut
            try:
                self._server.shutdown(socket.SHUT_RDWR)  # stops listening at once, even mid-accept
            except OSError:
                pass
            self._server.close()
        self.drop_clients()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(self.join_timeout)

    def drop_clients(self) -> None:
        """Cut every registered client connection (clients are expected to reconnect)."""
        with self._lock:
            clients = list(self._clients)
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def clients(self) -> int:
        """How many clients are registered (being served)."""
        return len(self._clients)

    def _spawn(self, target, *args, name: str | None = None) -> None:
        thread = threading.Thread(target=target, args=args, name=name or self.name, daemon=True)
        with self._lock:  # the accept thread spawns too: one list, changed under the lock
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept(self) -> None:
        server = self._server
        while server is not None and not self._stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return
            if self._stop.is_set():
                conn.close()
                return
            self._spawn(self._client, conn, name=f"{self.name}-client-{peer[1]}")

    def _client(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        finally:
            with self._lock:
                self._clients.pop(conn, None)
            conn.close()


def serve_forever(
    server,
    banner: str | None,
    prog: str = "fake server",
    *,
    until: threading.Event | None = None,
    stopped: str = "fake server stopped",
    say=None,
) -> int:
    """Run a fake server until SIGINT/SIGTERM (Ctrl-C) or, when given, until `until` is set; then stop it
    cleanly; exit code 0. `banner` (its `{port}` filled in, None for none) and `stopped` go to `say` (default:
    print to stdout). A port that cannot be bound: one line on stderr (the port, and --port to choose
    another), exit code 2."""
    say = say or (lambda message: print(message, flush=True))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server.start()
    except BindError as exc:
        return report_bind_error(exc, prog)
    if banner is not None:
        say(banner.format(port=server.port))
    while not stop.wait(0.2):
        if until is not None and until.is_set():
            break
    server.stop()
    say(stopped)
    return 0
