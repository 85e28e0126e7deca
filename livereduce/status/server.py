"""The daemon's read-only HTTP server: the live page, /status, /metrics, plot data and server-sent events.

aiohttp, because it is one well-kept library with both the server and streaming responses (server-sent
events) in it, and its AppRunner is made for embedding: it runs on an event loop in a thread of ours, installs
no signal handlers and leaves the main thread to the daemon (uvicorn's Server wants to own the process). The
socket is bound here, before the thread starts, so a port in use is an error the daemon reports at once.

Only GET (and HEAD): nothing here changes the daemon. The page's scripts, including the plotting library
(plotly.js, from the installed plotly package), are served from this package: a control room without internet
still gets its plots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from importlib import resources

from aiohttp import web

from livereduce.status.metrics import CONTENT_TYPE, exposition, registry_for
from livereduce.status.model import StatusModel

log = logging.getLogger("livereduce.status")

SSE_KEEPALIVE_S = 15.0
SSE_MIN_INTERVAL_S = 0.25  # at most four status pushes a second, however often records arrive
STATIC = resources.files("livereduce.status") / "static"


def plotly_js():
    """plotly.js as the installed plotly package ships it (no CDN: control rooms may have no internet)."""
    return resources.files("plotly") / "package_data" / "plotly.min.js"


class StatusServer:
    def __init__(self, model: StatusModel, host: str = "127.0.0.1", port: int = 8140):
        self.model, self.host, self.port = model, host, port
        self.registry = registry_for(model)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._changed: asyncio.Event | None = None  # replaced at each change: waiters hold the one they saw
        self._version = 0
        self._closing = False
        self._unsubscribe = lambda: None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> str:
        """Bind (OSError when the port is taken or the host is not ours), serve on a thread; returns the URL."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready, sock), name="status-http", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        return self.url

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        self._unsubscribe()
        loop.call_soon_threadsafe(self._begin_close)
        self._thread.join(10)

    # -- the server thread ------------------------------------------------------------------------
    def _serve(self, ready: threading.Event, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._open(sock))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
        finally:
            ready.set()
            loop.close()

    async def _open(self, sock: socket.socket) -> None:
        self._changed = asyncio.Event()
        loop = asyncio.get_running_loop()

        def changed() -> None:  # called on the thread that changed the model
            loop.call_soon_threadsafe(self._notify)

        self._unsubscribe = self.model.on_change(changed)
        runner = web.AppRunner(self.app(), handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    def _notify(self) -> None:
        self._version += 1
        old, self._changed = self._changed, asyncio.Event()
        if old is not None:
            old.set()

    def _begin_close(self) -> None:
        self._closing = True
        self._notify()  # server-sent event streams see _closing and end
        asyncio.get_running_loop().stop()

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the application --------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/status", self.status)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/plot/{workspace}.json", self.plot)
        app.router.add_get("/rates.json", self.rates)
        app.router.add_get("/log.json", self.log_lines)
        app.router.add_get("/events", self.events)
        app.router.add_get("/static/{name}", self.static)
        return app

    async def page(self, _request: web.Request) -> web.Response:
        return web.Response(text=(STATIC / "index.html").read_text(), content_type="text/html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "plotly.min.js":
            body = plotly_js().read_bytes()
            return web.Response(
                body=body, content_type="application/javascript", headers={"Cache-Control": "max-age=86400"}
            )
        if name not in ("app.js", "style.css"):  # a fixed list: no path from the request reaches the disk
            raise web.HTTPNotFound()
        kind = "application/javascript" if name.endswith(".js") else "text/css"
        return web.Response(text=(STATIC / name).read_text(), content_type=kind)

    async def status(self, _request: web.Request) -> web.Response:
        return web.json_response(self.model.snapshot(), dumps=_dumps)

    async def metrics(self, _request: web.Request) -> web.Response:
        body = exposition(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def plot(self, request: web.Request) -> web.Response:
        data = self.model.plot(request.match_info["workspace"])
        if data is None:
            raise web.HTTPNotFound(text=f"no plot of {request.match_info['workspace']!r} yet")
        return web.json_response(data, dumps=_dumps)

    async def rates(self, _request: web.Request) -> web.Response:
        return web.json_response([{"time": t, "rate": r} for t, r in self.model.rates()])

    async def log_lines(self, _request: web.Request) -> web.Response:
        return web.json_response(list(self.model.log_tail.lines))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the status each time it changes (at most 4 a second), a comment every 15 s."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            sent = self._version
            await response.write(_event(self.model.snapshot()))
            while not self._closing:
                if sent == self._version and self._changed is not None:
                    try:
                        await asyncio.wait_for(self._changed.wait(), SSE_KEEPALIVE_S)
                    except TimeoutError:
                        await response.write(b": keepalive\n\n")
                        continue
                await asyncio.sleep(SSE_MIN_INTERVAL_S)  # fold a burst of records into one push
                if self._closing:
                    break
                sent = self._version
                await response.write(_event(self.model.snapshot()))
        return response


def _dumps(value) -> str:
    return json.dumps(value, allow_nan=False, default=str)


def _event(snapshot: dict) -> bytes:
    return f"event: status\ndata: {_dumps(snapshot)}\n\n".encode()
