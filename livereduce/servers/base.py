"""What every fake DAS server shares: bind, an accept loop with one thread per client, a clean stop, and a
command-line runner that stops on Ctrl-C or SIGTERM (no kill -9 needed)."""

from __future__ import annotations

import signal
import socket
import threading


class TCPServer:
    """Subclasses implement `handle(conn)`; `start()` returns the bound port (useful with port 0)."""

    name = "fake server"

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def handle(self, conn: socket.socket) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def start(self) -> int:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self.port))
        server.listen(16)
        server.settimeout(0.2)
        self._server, self.port = server, server.getsockname()[1]
        self._spawn(self._accept)
        return self.port

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        for thread in self._threads:
            thread.join(2)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=self.name, daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._client, conn)

    def _client(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        finally:
            conn.close()


def serve_forever(server, banner: str) -> int:
    """Run a fake server until SIGINT/SIGTERM (Ctrl-C), then stop it cleanly; exit code 0."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(banner.format(port=server.port), flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    print("fake server stopped", flush=True)
    return 0
