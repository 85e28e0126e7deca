"""The daemon: startup → main loop → shutdown around one live session, assembled from injected parts.

Only the main loop decides. Signal handlers, the file watcher and the memory guard just post requests to one
queue; the main loop handles them in order (gunicorn's arbiter, uvicorn's should_exit):

  SIGTERM / SIGINT  stop: the session finishes its step (or is abandoned after `stop_timeout`), exit 0;
                    a second one forces exit at once
  SIGHUP            re-read the scripts (as if both changed)
  SIGUSR1           reopen the log file (logrotate)
  proc changed      restart the session (a new session, a new workspace registry)
  post_proc changed swap it in at the next cycle boundary; the accumulation is kept
  script broken     rejected with its file and line; the running script stays
  config changed    clean exit, so systemd restarts us with the new config (as the anchor does)
  memory soft       compress the accumulation;  memory hard: restart the session, clearing it

`build_daemon` wires the real parts (listener from the config, inotify watcher, memory guard, systemd);
tests build a `Daemon` with their own and run it in-process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from livereduce import logs, systemd
from livereduce.algorithms.binning import compress_events
from livereduce.config import Config, Runtime
from livereduce.errors import ScriptError
from livereduce.listeners import make_listener
from livereduce.listeners.base import Listener, StartFrom
from livereduce.memory import MemoryGuard
from livereduce.progress import ProgressLog
from livereduce.scripts import Script, compile_script, find_scripts, md5_of_text, script_kind
from livereduce.session import Session
from livereduce.watch import Watcher
from livereduce.workspace.events import EventWorkspace

log = logging.getLogger("livereduce.daemon")

HANDLED_SIGNALS = {
    signal.SIGTERM: "term",  # systemctl stop
    signal.SIGINT: "int",  # Ctrl-C
    signal.SIGHUP: "hup",  # systemctl reload: re-read scripts
    signal.SIGUSR1: "usr1",  # logrotate: reopen the log file
}
SYSTEMD_EVERY_S = 5.0


class Notifier(Protocol):
    """What systemd is told (livereduce.systemd; a recorder in tests)."""

    def ready(self) -> object: ...
    def status(self, text: str) -> object: ...
    def watchdog(self) -> object: ...
    def stopping(self) -> object: ...


class Guard(Protocol):
    """A helper thread the daemon starts and stops: the file watcher, the memory guard."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Parts:
    """What the daemon is built from. Tests replace any of these."""

    make_listener: Callable[[], Listener]
    watch: Callable[[list[Path], Callable[[Path], None]], Guard] | None = None
    memory_guard: Callable[[Callable, Callable], Guard] | None = None
    notifier: Notifier = systemd  # a module with the Notifier functions
    clock: Callable[[], float] = time.monotonic
    extra_subscribers: list[Callable] = field(default_factory=list)  # more record subscribers per session


def build_daemon(config: Config, runtime: Runtime, *, config_path: str | None = None) -> Daemon:
    """The daemon with its real parts: the configured listener, the inotify watcher, the memory guard."""
    options = dict(config.listener_options)
    if config.periods:
        options.setdefault("periods", list(config.periods))
    if config.spectra:
        options.setdefault("spectra", list(config.spectra))
    memory: Callable[[Callable, Callable], Guard] | None = None
    if config.system_mem_limit_perc:

        def memory(on_soft, on_hard):
            return MemoryGuard(config.system_mem_limit_perc, config.mem_check_interval_sec, on_soft, on_hard)

    parts = Parts(
        make_listener=lambda: make_listener(runtime.listener, runtime.address, **options),
        watch=Watcher,
        memory_guard=memory,
    )
    return Daemon(config, runtime, parts, config_path=config_path)


class Daemon:
    def __init__(
        self,
        config: Config,
        runtime: Runtime,
        parts: Parts,
        *,
        config_path: str | None = None,
        stop_timeout: float = 3.0,
        tick: float = 0.1,
    ):
        self.config, self.runtime, self.parts = config, runtime, parts
        self.config_path = config_path
        self.stop_timeout, self.tick = stop_timeout, tick
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.should_exit = False
        self.exit_code = 0
        self.session: Session | None = None
        self.started = threading.Event()  # set once the first session runs (tests wait on it)
        self._session_thread: threading.Thread | None = None
        self._session_stop = threading.Event()
        self._scripts: dict[str, Script | None] = {"proc": None, "post_proc": None}
        self._guards: list[Guard] = []

    # -- lifecycle --------------------------------------------------------------------------------
    def run(self) -> int:
        with self._captured_signals():
            self.startup()
            try:
                self.main_loop()
            finally:
                self.shutdown()
        return self.exit_code

    def request_stop(self) -> None:
        """Stop as SIGTERM does (for callers on other threads)."""
        self.requests.put(("term", None))

    def startup(self) -> None:
        cfg = self.config
        for line in cfg.describe():
            log.info("config: %s", line)
        found = find_scripts(self.runtime.script_dir, self.runtime.script_names)
        for kind, path in (("proc", found.proc), ("post_proc", found.post_proc)):
            if path:
                script = compile_script(path, kind)
                self._scripts[kind] = script
                log.info("using %s script %s (md5 %s)", kind, path, script.md5)
            else:
                log.info(
                    "no %s script (%s)",
                    kind,
                    "accumulation passes through"
                    if kind == "post_proc"
                    else "chunks pass through unprocessed",
                )
        self._start_guards()  # first, so an edit made while the session starts is not missed
        self._start_session("startup")
        self.parts.notifier.ready()
        self.parts.notifier.status(f"live reduction of {self.runtime.name} started")
        self.started.set()

    def main_loop(self) -> None:
        last_status = -SYSTEMD_EVERY_S
        while not self.should_exit:
            try:
                kind, payload = self.requests.get(timeout=self.tick)
                self._handle(kind, payload)
            except queue.Empty:
                pass
            self._supervise()
            now = self.parts.clock()
            if now - last_status >= SYSTEMD_EVERY_S:
                last_status = now
                self._notify_systemd()

    def shutdown(self) -> None:
        self.parts.notifier.stopping()
        log.info("shutting down")
        for guard in self._guards:
            try:
                guard.stop()
            except Exception:
                log.exception("stopping %r failed", guard)
        self._stop_session()
        log.info("stopped (exit code %d)", self.exit_code)

    # -- session ----------------------------------------------------------------------------------
    def _start_session(self, why: str) -> None:
        cfg = self.config
        self.session = Session(
            listener=self.parts.make_listener(),
            proc=_fresh(self._scripts["proc"]),
            post_proc=_fresh(self._scripts["post_proc"]),
            accum_method=cfg.accum_method,
            preserve_events=cfg.preserve_events,
            update_every=cfg.update_every,
            run_transition=cfg.run_transition,
            output_name=cfg.output_name,
            start=StartFrom(cfg.start_from),
            max_carried_events=cfg.max_carried_events,
        )
        self.session.records.subscribe(
            ProgressLog(logging.getLogger("livereduce.progress"), update_every=cfg.update_every)
        )
        for subscriber in self.parts.extra_subscribers:
            self.session.records.subscribe(subscriber)
        self.session.compress_hook = _compress_accumulation
        self._session_stop = threading.Event()
        self._session_thread = threading.Thread(
            target=self._run_session, args=(self.session, self._session_stop), name="session", daemon=True
        )
        self._session_thread.start()
        log.info(
            "session started (%s): listener %s %s, accumulation %s, update every %s s",
            why,
            self.runtime.listener,
            self.runtime.where,
            cfg.accum_method,
            cfg.update_every,
        )

    def _run_session(self, session: Session, stop: threading.Event) -> None:
        try:
            session.run(stop)
        except BaseException:  # reported here; the main loop restarts the session
            log.exception("the session thread crashed")
        finally:
            try:
                session.listener.close()
            except Exception:
                log.exception("closing the listener failed")

    def _stop_session(self) -> None:
        thread = self._session_thread
        if thread is None:
            return
        self._session_stop.set()
        thread.join(self.stop_timeout)
        if thread.is_alive() and self.session is not None:
            log.warning(
                "the session is still busy after %.1f s (a long script step?); abandoning it",
                self.stop_timeout,
            )
            try:
                self.session.listener.close()
            except Exception:
                log.exception("closing the listener failed")
        self._session_thread = None

    def restart_session(self, why: str) -> None:
        """Stop the session and start a new one, with a new registry (the listener replays from run start)."""
        log.warning("restarting the session: %s", why)
        self._stop_session()
        self._start_session(why)

    def _supervise(self) -> None:
        thread = self._session_thread
        if thread is None or self.session is None or thread.is_alive() or self.should_exit:
            return
        state = self.session.state
        if self.config.update_every == 0 or (
            state.run_status == "END_RUN" and self.config.run_transition == "Stop"
        ):
            log.info("the session ended (%d cycles); exiting", state.cycles)
            self.should_exit = True
        else:
            log.error("the session thread ended unexpectedly; restarting it")
            self.restart_session("session thread ended")

    # -- requests ---------------------------------------------------------------------------------
    def _handle(self, kind: str, payload) -> None:
        handler = getattr(self, f"handle_{kind}", None)
        if handler is None:
            log.error("unknown request %r ignored", kind)
            return
        handler(payload)

    def handle_term(self, _payload) -> None:
        log.info("SIGTERM received: stopping")
        self.should_exit = True

    def handle_int(self, _payload) -> None:
        log.info("SIGINT received: stopping")
        self.should_exit = True

    def handle_hup(self, _payload) -> None:
        log.info("SIGHUP received: re-reading scripts")
        for script in list(self._scripts.values()):
            if script is not None:
                self.handle_script_changed(script.path, force=True)

    def handle_usr1(self, _payload) -> None:
        logs.reopen()
        log.info("log file reopened")

    def handle_config_changed(self, path) -> None:
        log.warning(
            "config file %s changed: exiting so the service restarts with the new configuration", path
        )
        self.should_exit = True

    def handle_memory_soft(self, payload) -> None:
        rss_mb, soft_mb, limit_mb = payload
        log.warning(
            "memory %.0f MB is above the soft limit (%.0f MB of %.0f MB hard): compressing the accumulation",
            rss_mb,
            soft_mb,
            limit_mb,
        )
        if self.session is not None:
            self.session.request("compress", f"memory {rss_mb:.0f} MB")

    def handle_memory_hard(self, payload) -> None:
        rss_mb, _soft_mb, limit_mb = payload
        log.error(
            "memory %.0f MB exceeds the limit %.0f MB (system_mem_limit_perc=%s): restarting the session "
            "and clearing workspaces",
            rss_mb,
            limit_mb,
            self.config.system_mem_limit_perc,
        )
        self.restart_session(f"memory {rss_mb:.0f} MB > limit {limit_mb:.0f} MB")
        for guard in self._guards:
            if hasattr(guard, "restarted"):
                guard.restarted()

    def handle_script_changed(self, path, force: bool = False) -> None:
        path = str(path)
        kind = script_kind(path, self.runtime.script_names)
        if kind is None:
            return
        current = self._scripts.get(kind)
        if not Path(path).is_file():
            if current is not None and os.path.abspath(current.path) == os.path.abspath(path):
                log.warning("%s script %s was removed", kind, path)
                if self._scripts["proc" if kind == "post_proc" else "post_proc"] is None:
                    log.error("no script left; keeping the running session until a script appears")
                    return
                self._scripts[kind] = None
                self.restart_session(f"{kind} script removed")
            return
        text = Path(path).read_bytes()
        if current is not None and not force and md5_of_text(text) == current.md5:
            log.info("%s changed on disk but its md5 %s is unchanged; nothing to do", path, current.md5)
            return
        try:
            script = compile_script(path, kind, text)
        except ScriptError as exc:
            log.error(
                "rejected the new %s script: %s; the running version stays\n%s",
                kind,
                exc,
                exc.traceback_text.rstrip(),
            )
            return
        log.info(
            "%s script %s changed (md5 %s -> %s)", kind, path, current.md5 if current else "none", script.md5
        )
        self._scripts[kind] = script
        if kind == "post_proc" and current is not None and self.session is not None:
            self.session.request("swap_post_proc", _fresh(script))
        else:
            self.restart_session(f"{kind} script changed")

    # -- guards and systemd -----------------------------------------------------------------------
    def _start_guards(self) -> None:
        parts = self.parts
        if parts.watch is not None:
            watched = [Path(self.runtime.script_dir)]
            if self.config_path:
                watched.append(Path(self.config_path))
            watcher = parts.watch(watched, self._on_file_change)
            watcher.start()
            self._guards.append(watcher)
        if parts.memory_guard is not None:
            guard = parts.memory_guard(
                lambda *mb: self.requests.put(("memory_soft", mb)),
                lambda *mb: self.requests.put(("memory_hard", mb)),
            )
            guard.start()
            self._guards.append(guard)

    def _on_file_change(self, path) -> None:
        path = str(path)
        if self.config_path and os.path.abspath(path) == os.path.abspath(self.config_path):
            self.requests.put(("config_changed", path))
        elif script_kind(path, self.runtime.script_names) is not None:
            self.requests.put(("script_changed", path))

    def _notify_systemd(self) -> None:
        session = self.session
        if session is None:
            return
        st = session.state
        # WATCHDOG only while the session shows progress: a hung script stops the pings and systemd acts
        limit = max(self.config.update_every * 3, self.config.watchdog_threshold)
        if time.monotonic() - st.heartbeat < limit:
            self.parts.notifier.watchdog()
        self.parts.notifier.status(
            f"{st.phase}: run {st.run_number}, {st.cycles} cycles, "
            f"{st.events_accumulated} events, "
            f"{st.proc_errors + st.post_proc_errors} script errors"
        )

    # -- signals ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _captured_signals(self) -> Iterator[None]:
        """On the main thread, signals become requests. The handler only enqueues (no logging, no locks);
        a second stop request forces exit at once, as uvicorn does."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(sig, _frame):
            name = HANDLED_SIGNALS[sig]
            if name in ("term", "int") and self.should_exit:
                os._exit(self.exit_code)
            self.requests.put((name, None))

        previous = {sig: signal.signal(sig, handler) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


def _fresh(script: Script | None) -> Script | None:
    """A new namespace per session: a restart must not inherit the old session's script globals."""
    if script is None:
        return None
    return Script(path=script.path, kind=script.kind, md5=script.md5, code=script.code)


def _compress_accumulation(acc):
    """Soft memory limit: merge nearly equal events (lossless for any histogram coarser than 0.01 µs)."""
    if not isinstance(acc, EventWorkspace):
        return acc
    return compress_events(acc, tolerance=0.01)
