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
import functools
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

from livereduce import checkpoint as checkpoints
from livereduce import logs, systemd
from livereduce.config import Config, Runtime, state_dir_path
from livereduce.engines import mantid  # imports no Mantid itself: its worker does, in its own process
from livereduce.instrument.attach import with_instrument
from livereduce.listeners import make_listener
from livereduce.listeners.base import Listener, StartFrom
from livereduce.memory import MemoryGuard, limits_mb
from livereduce.progress import ProgressLog
from livereduce.records import Dispatcher, Record, RecordKind
from livereduce.script_set import ScriptSet
from livereduce.scripts import script_kind
from livereduce.session import Session
from livereduce.shared_events import SharedEventPool
from livereduce.status.model import StatusModel
from livereduce.status.server import StatusServer
from livereduce.status.systemd_feed import SystemdFeed
from livereduce.watch import Watcher
from livereduce.worker import MAX_ATTEMPTS, ProcessWorker, Worker, WorkerSpec, session_options

log = logging.getLogger("livereduce.daemon")

HANDLED_SIGNALS = {
    signal.SIGTERM: "term",  # systemctl stop
    signal.SIGINT: "int",  # Ctrl-C
    signal.SIGHUP: "hup",  # systemctl reload: re-read scripts
    signal.SIGUSR1: "usr1",  # logrotate: reopen the log file
}
SYSTEMD_EVERY_S = 5.0  # STATUS at least this often; the log file retried from this interval
LISTENER_EVERY_S = 2.0  # the listener's counters published as a record


class Notifier(Protocol):
    """What systemd is told (livereduce.systemd; a recorder in tests)."""

    def ready(self) -> object: ...
    def status(self, text: str) -> object: ...
    def watchdog(self) -> object: ...
    def stopping(self) -> object: ...


class Server(Protocol):
    """The status HTTP server (livereduce.status.server)."""

    def start(self) -> str: ...
    def stop(self) -> None: ...


class Guard(Protocol):
    """A helper thread the daemon starts and stops: the file watcher, the memory guard."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Parts:
    """What the daemon is built from. Tests replace any of these."""

    make_listener: Callable[[], Listener] | None  # None: the engine reads the DAS itself (Mantid's listener)
    watch: Callable[[list[Path], Callable[[Path], None]], Guard] | None = None
    memory_guard: Callable[[Callable, Callable], Guard] | None = None
    notifier: Notifier = systemd  # a module with the Notifier functions
    clock: Callable[[], float] = time.monotonic
    extra_subscribers: list[Callable] = field(default_factory=list)  # more record subscribers per session
    worker: Callable[..., Worker] = ProcessWorker  # ThreadWorker in tests of the daemon's logic
    status_server: Callable[[StatusModel], Server] | None = None
    engine: str = "embedded"  # what runs in the worker: our session, or Mantid's StartLiveData
    engine_options: dict = field(default_factory=dict)  # handed to the worker (WorkerSpec.engine)
    watchdog_every: float | None = field(default_factory=systemd.watchdog_every)  # None: no systemd watchdog


def build_daemon(
    config: Config, runtime: Runtime, *, config_path: str | None = None, engine: str = "embedded"
) -> Daemon:
    """The daemon with its real parts: the configured listener, the inotify watcher, the memory guard, and the
    engine's worker (the embedded session; or, for engine "mantid", Mantid's StartLiveData reading the DAS with
    its own listener)."""
    options = dict(config.listener_options)
    if config.periods:
        options.setdefault("periods", list(config.periods))
    if config.spectra:
        options.setdefault("spectra", list(config.spectra))
    if runtime.listener.needs_address:
        options.setdefault("silence_timeout", config.das_silence_timeout)
    if not runtime.listener.cumulative:
        options.setdefault("max_buffered_events", config.max_buffered_events)
    if runtime.listener == "kafka":  # its topics default to <instrument>_events, ...
        options.setdefault("instrument", runtime.name)
    memory: Callable[[Callable, Callable], Guard] | None = None
    if config.system_mem_limit_perc:

        def memory(on_soft, on_hard):
            return MemoryGuard(config.system_mem_limit_perc, config.mem_check_interval_sec, on_soft, on_hard)

    server: Callable[[StatusModel], Server] | None = None
    if config.status_enabled:

        def server(model: StatusModel) -> Server:
            return StatusServer(model, config.status_host, config.status_port)

    def listener() -> Listener:
        extra = {}
        if runtime.listener == "kafka":  # a run that ended while the daemon was down is read again from Kafka
            extra = resume_run(state_dir_path(config.state_dir))
        return with_instrument(
            make_listener(runtime.listener, runtime.address, **options, **extra), config.instrument_definition
        )

    parts = Parts(
        make_listener=listener,
        watch=Watcher,
        memory_guard=memory,
        status_server=server,
    )
    if engine == "mantid":
        parts.make_listener = None
        parts.worker = functools.partial(ProcessWorker, target=mantid.worker_main)
        parts.engine, parts.engine_options = "mantid", mantid.start_live_data_args(config, runtime)
    return Daemon(config, runtime, parts, config_path=config_path)


def resume_run(state_dir) -> dict:
    """The listener option `resume_run` for the checkpoint's run when that run had not ended (a listener that
    can read a finished run again reads it from its start; the session skips what the checkpoint holds)."""
    checkpoint = checkpoints.read_index(state_dir)
    if checkpoint is None or checkpoint.run_ended or not checkpoint.run_number:
        return {}
    run = {
        "run_number": checkpoint.run_number,
        "run_start": checkpoint.run_start,
        "last_pulse_ns": checkpoint.last_pulse_ns,
    }
    return {"resume_run": run}


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
        self.worker: Worker | None = None
        self.listener: Listener | None = None  # kept across workers: what it received is never lost
        # a worker process reads the listener's events where they were written (no copy through the pipe)
        self.shared_events = (
            SharedEventPool(
                max_segments=config.checkpoint_every + 3,  # chunks are kept until the next checkpoint
                budget_bytes=16 * config.max_buffered_events,  # a full buffer and a chunk in the worker
            )
            if getattr(parts.worker, "shares_events", False)
            else None
        )
        self.restarts = 0
        self._watching_scripts = self._watching_config = self._watching_parameters = False
        # the log file failed (if it did) a moment ago, at setup: the first retry is one interval away
        self._log_retry_at, self._log_retry_delay = time.monotonic() + SYSTEMD_EVERY_S, SYSTEMD_EVERY_S
        self._memory_restart_at = -float("inf")  # when the memory limit last restarted the worker
        self._memory_interval = config.memory_restart_interval
        self._memory_cleared = False  # the last memory restart started a new accumulation
        self.events_dropped = 0  # chunks dropped after workers hung or died on them
        self.started = threading.Event()  # set once the first session runs (tests wait on it)
        self._worker_started = 0.0
        self.scripts = ScriptSet(runtime, config.allow_insecure_scripts, config.parameters)
        self.state_dir = str(state_dir_path(config.state_dir))
        self.step_timeout = config.step_timeout or max(10 * config.update_every, 300.0)
        self._guards: list[Guard] = []
        self._guard_factories: dict[int, Callable[[], Guard]] = {}  # id(guard) → how to make it again
        self.status = StatusModel(
            instrument=runtime.name,
            engine=parts.engine,
            listener=str(runtime.listener),
            address=runtime.where,
            memory_limits_mb=limits_mb(config.system_mem_limit_perc)
            if config.system_mem_limit_perc
            else None,
        )
        self.records = Dispatcher()  # what the workers and the daemon report: the status model, health, tests
        self.systemd = SystemdFeed(
            parts.notifier,
            self.status,
            update_every=config.update_every,
            threshold=config.watchdog_threshold,
            ready_grace=config.ready_grace,
            watchdog_every=parts.watchdog_every,
            clock=parts.clock,
            every=SYSTEMD_EVERY_S,
        )
        subscribers: list[Callable[[Record], None]] = [self.status, self.systemd.note]
        for fn in (*subscribers, *parts.extra_subscribers):
            self.records.subscribe(fn)
        self.server: Server | None = None
        self._listener_at = -float("inf")

    # -- lifecycle --------------------------------------------------------------------------------
    def run(self) -> int:
        previous, threading.excepthook = threading.excepthook, self._thread_crashed
        try:
            with self._captured_signals():
                self.startup()
                try:
                    self.main_loop()
                finally:
                    self.shutdown()
        finally:
            threading.excepthook = previous
        return self.exit_code

    def _thread_crashed(self, args: threading.ExceptHookArgs) -> None:
        """A thread that dies is an error in the log (never only a trace on stderr) and, for the parts this
        daemon can start again (the watcher, the memory guard), a request to do so."""
        name = args.thread.name if args.thread is not None else "?"
        log.error("thread %s crashed", name, exc_info=args.exc_value if args.exc_value is not None else True)
        self.requests.put(("thread_crashed", name))

    def handle_thread_crashed(self, name: str) -> None:
        for i, guard in enumerate(self._guards):
            thread = getattr(guard, "_thread", None)
            if thread is not None and thread.name == name and not thread.is_alive():
                log.warning("starting %s again", name)
                factory = self._guard_factories.pop(id(guard))
                self._guards.pop(i)
                self._start_guard(factory)
                return

    def request_stop(self) -> None:
        """Stop as SIGTERM does (for callers on other threads)."""
        self.requests.put(("term", None))

    def startup(self) -> None:
        cfg = self.config
        for line in cfg.describe():
            log.info("config: %s", line)
        self._start_status_server()
        self._start_guards()  # first, so an edit made while the session starts is not missed
        if self.scripts.load():
            self._start_session("startup")
        self._scripts_changed()
        self._feed_systemd(self.parts.clock())
        self.started.set()

    def _feed_systemd(self, now: float) -> None:
        worker = self.worker
        busy = worker.busy_seconds() if worker is not None else None
        self.systemd.feed(now, self.scripts.waiting, busy, self._listener_connected)

    def _start_status_server(self) -> None:
        """The status page is for people; a port someone else holds must not stop the reduction."""
        self.status.log_tail.setLevel(logging.INFO)
        logging.getLogger().addHandler(self.status.log_tail)
        factory = self.parts.status_server
        if factory is None:
            return
        server = factory(self.status)
        try:
            url = server.start()
        except OSError as exc:
            log.error(
                "status page not started: cannot listen on %s:%s (%s); set status.port (0 picks a free "
                'port) or "status": false. Live reduction goes on without it',
                self.config.status_host,
                self.config.status_port,
                exc.strerror or exc,
            )
            return
        self.server = server
        log.info("status page at %s (JSON at %sstatus, metrics at %smetrics)", url, url, url)

    def _scripts_changed(self) -> None:
        self.status.set_scripts(self.scripts.describe())
        if self.scripts.waiting is not None:
            self.status.set_phase("waiting for scripts", self.scripts.waiting)

    def _retry_scripts(self) -> None:
        if self.scripts.load():
            if not self._watching_scripts:
                self._start_watcher()
            self._start_session("scripts usable")
        self._scripts_changed()

    def main_loop(self) -> None:
        last_log_retry = -SYSTEMD_EVERY_S
        while not self.should_exit:
            try:
                kind, payload = self.requests.get(timeout=self.tick)
                self._handle(kind, payload)
            except queue.Empty:
                pass
            if self.scripts.retry_due():
                self._retry_scripts()
            self._supervise()
            now = self.parts.clock()
            self._publish_listener(now)
            self._feed_systemd(now)
            if now - last_log_retry >= SYSTEMD_EVERY_S:
                last_log_retry = now
                self._retry_log_file()

    def shutdown(self) -> None:
        self.parts.notifier.stopping()
        log.info("shutting down")
        for guard in self._guards:
            try:
                guard.stop()
            except Exception:
                log.exception("stopping %r failed", guard)
        self._stop_session()
        self._close_listener()
        if self.server is not None:
            self.server.stop()
        logging.getLogger().removeHandler(self.status.log_tail)
        log.info("stopped (exit code %d)", self.exit_code)

    # -- the worker -------------------------------------------------------------------------------
    @property
    def session(self) -> Session | None:
        """The session object when it runs in this process (ThreadWorker: tests), else None."""
        return self.worker.session if self.worker is not None else None

    def _spec(self, restore: bool) -> WorkerSpec:
        cfg = self.config
        return WorkerSpec(
            scripts=self.scripts.sources(),
            session=session_options(cfg, self.scripts.parameters.values),
            cumulative=self.runtime.listener.cumulative,
            state_dir=self.state_dir,
            checkpoint_every=cfg.checkpoint_every,
            # chunks kept for a successor: four buffers' worth at most (a checkpoint of a 10^8-bin accumulation
            # takes seconds: one buffer's worth asked for one every other cycle under load, halving the rate)
            max_held_events=4 * cfg.max_buffered_events,
            restore=restore,
            engine=dict(self.parts.engine_options),
        )

    def _start_session(
        self, why: str, *, restore: bool = True, fresh_listener: bool = False, pending=None
    ) -> None:
        """A new worker. The listener is kept (nothing it received is lost) unless `fresh_listener`: a new proc
        script needs the run from its start, which a new connection replays."""
        cfg = self.config
        if fresh_listener and self.listener is not None:
            self._close_listener()
        if self.listener is None and self.parts.make_listener is not None:
            self.listener = self.parts.make_listener()
            share = getattr(self.listener, "share_events", None)
            if share is not None and self.shared_events is not None:
                share(self.shared_events)
            self.listener.start(StartFrom(cfg.start_from))
        progress = ProgressLog(logging.getLogger("livereduce.progress"), update_every=cfg.update_every)

        def emit(record: Record) -> None:
            try:  # a new progress log per session: its quiet time and error streaks start again
                progress(record)
            except Exception:
                log.exception("the progress log failed on a %s record; continuing", record.kind)
            self.records.publish(record)

        self.worker = self.parts.worker(
            self._spec(restore),
            self.listener,
            emit,
            pending=pending,
            log_level=logging.getLogger().getEffectiveLevel(),
            pool=self.shared_events,
        )
        self.worker.start()
        self._worker_started = time.monotonic()
        self.systemd.worker_started()
        log.info(
            "session started (%s): listener %s %s, accumulation %s, update every %s s",
            why,
            self.runtime.listener,
            self.runtime.where,
            cfg.accum_method,
            cfg.update_every,
        )

    def _close_listener(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            try:
                listener.close()
            except Exception:
                log.exception("closing the listener failed")

    def _stop_session(self) -> None:
        if self.worker is not None:
            self.worker.stop(self.stop_timeout)

    def restart_session(self, why: str, *, resume: bool = True, fresh_listener: bool | None = None) -> None:
        """Replace the worker. `resume`: the new one starts from the last checkpoint and is handed the chunks
        taken since, with the listener kept; otherwise a new accumulation from a new connection (which
        replays the run from its start)."""
        log.warning(
            "restarting the session: %s (%s)",
            why,
            "resuming from the checkpoint" if resume else "new accumulation, the run replayed",
        )
        pending = None
        if self.worker is not None:
            self.worker.stop(self.stop_timeout)
            pending = self.worker.unacknowledged() if resume else None
        if not resume and self.state_dir:
            checkpoints.archive(self.state_dir, "not-resumed")
        self.restarts += 1
        self.status.restarted(why)
        fresh = (not resume) if fresh_listener is None else fresh_listener
        self._start_session(why, restore=resume, fresh_listener=fresh, pending=pending)

    def _replace_hung_worker(self, seconds: float) -> None:
        worker = self.worker
        if worker is None:
            return
        log.error(
            "a cycle has run for %.0f s (step_timeout %.0f s): the script is hung; stopping its worker and "
            "going on from the last checkpoint",
            seconds,
            self.step_timeout,
        )
        worker.kill()
        pending = worker.unacknowledged()
        kept = [item for item in pending if item.attempts < MAX_ATTEMPTS]
        for item in pending:
            if item.attempts >= MAX_ATTEMPTS:
                n = item.taken.chunk.n_events
                self.events_dropped += n
                log.error(
                    "dropped a chunk of %d events of run %d: workers hung or died on it %d times",
                    n,
                    item.taken.chunk.run.getRunNumber(),
                    item.attempts,
                )
        self.restarts += 1
        self.status.restarted(f"a cycle hung for {seconds:.0f} s")
        self._start_session("the previous worker hung", restore=True, pending=kept)

    def _supervise(self) -> None:
        worker = self.worker
        if worker is None or self.should_exit:
            return
        busy = worker.busy_seconds()
        if busy > self.step_timeout:
            self._replace_hung_worker(busy)
            return
        if worker.alive():
            return
        last = self.systemd.last  # the last cycle's record: the daemon knows the session by its records only
        cycles = last.cycle if last is not None and last.kind is RecordKind.CYCLE else 0
        ended = cycles and last is not None and last.data.run_status == "END_RUN"
        if self.config.update_every == 0 or (ended and self.config.run_transition == "Stop"):
            log.info("the session ended (%d cycles); exiting", cycles)
            self.should_exit = True
        else:
            log.error("the session's worker ended unexpectedly; starting another from the last checkpoint")
            pending = worker.unacknowledged()
            self.restarts += 1
            self.status.restarted("the worker ended unexpectedly")
            self._start_session("the previous worker ended", restore=True, pending=pending)

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
        before = self.scripts.md5s()
        for script in list(self.scripts.scripts.values()):
            if script is not None:
                self.handle_script_changed(script.path, restart=False)
        after = self.scripts.md5s()
        parameters = self.scripts.parameters_changed() if self.scripts.parameters_file else None
        proc_changed = before["proc"] != after["proc"] or bool(parameters and parameters.restart)
        # a new proc needs the run replayed through it; otherwise a fresh worker resumes where this one was
        self.restart_session("SIGHUP", resume=not proc_changed)

    def handle_usr1(self, _payload) -> None:
        if logs.reopen():
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
        if self.worker is not None:
            self.worker.request("compress", f"memory {rss_mb:.0f} MB")

    def handle_memory_hard(self, payload) -> None:
        rss_mb, _soft_mb, limit_mb = payload
        now = time.monotonic()
        again = now - self._memory_restart_at < self._memory_interval
        if again and self._memory_cleared:  # cleared already: restarting once more cannot help
            log.error(
                "memory %.0f MB is still above the limit %.0f MB after starting a new accumulation; not "
                "restarting again within %.0f s (compressing instead)",
                rss_mb,
                limit_mb,
                self._memory_interval,
            )
            if self.worker is not None:
                self.worker.request("compress", f"memory {rss_mb:.0f} MB")
            return
        self._memory_cleared = again
        if again:  # resuming did not help: the accumulation itself is too large for the limit
            self._memory_interval = min(2 * self._memory_interval, 3600.0)
            log.error(
                "memory %.0f MB exceeds the limit %.0f MB again %.0f s after the last restart: the accumulation "
                "itself is too large; starting a new, empty one (what it held of run %s is no longer in it). "
                "Next time within %.0f s the same",
                rss_mb,
                limit_mb,
                now - self._memory_restart_at,
                self.status.snapshot(memory=False)["run"]["number"],
                self._memory_interval,
            )
        else:
            self._memory_interval = self.config.memory_restart_interval
            log.error(
                "memory %.0f MB exceeds the limit %.0f MB (system_mem_limit_perc=%s): replacing the worker "
                "(its memory is freed; the new one resumes from the last checkpoint)",
                rss_mb,
                limit_mb,
                self.config.system_mem_limit_perc,
            )
        self._memory_restart_at = now
        self.restart_session(
            f"memory {rss_mb:.0f} MB > limit {limit_mb:.0f} MB", resume=not again, fresh_listener=False
        )
        for guard in self._guards:
            if hasattr(guard, "restarted"):
                guard.restarted()

    def handle_script_changed(self, path, restart: bool = True) -> None:
        """A script file changed: a new post_proc is swapped in (the accumulation is kept); a new proc restarts
        the session on a new accumulation. `restart=False` (SIGHUP) only re-reads; the caller restarts."""
        if self.scripts.waiting is not None:
            self.scripts.retry_now()  # the fix may have arrived: try at once
            return
        change = self.scripts.changed(str(path))
        if change is not None:
            self._scripts_changed()
        if change is None or not restart:
            return
        if change.script is None:
            self.restart_session(f"{change.kind} script removed", resume=change.kind == "post_proc")
        elif change.kind == "post_proc" and change.previous is not None and self.worker is not None:
            self.worker.request("swap_post_proc", (change.script.path, change.text))
        else:
            self.restart_session(f"{change.kind} script changed", resume=change.kind == "post_proc")

    def handle_parameters_changed(self, _path) -> None:
        """A parameters edit: values only post_proc uses swap in at the next cycle; a key the proc script names
        restarts the session as a proc edit does (every chunk of the run through the same proc)."""
        if self.scripts.waiting is not None:
            self.scripts.retry_now()
            return
        change = self.scripts.parameters_changed()
        if change is None:
            return
        keys = ", ".join(sorted(change.changed))
        if change.restart or self.worker is None:
            self.restart_session(
                f"parameters the proc script uses changed ({', '.join(sorted(change.restart))})", resume=False
            )
            return
        self.worker.request("set_parameters", change.parameters.values)
        log.info("parameters changed (%s): applied from the next cycle, without a restart", keys)

    # -- guards and systemd -----------------------------------------------------------------------
    def _start_watcher(self) -> None:
        """Watch the script directory and the config file; a script directory that does not exist yet is
        watched from when the scripts load."""
        watched = []
        if not self._watching_scripts and Path(self.runtime.script_dir).is_dir():
            watched.append(Path(self.runtime.script_dir))
            self._watching_scripts = True
        if self.config_path and not self._watching_config:
            watched.append(Path(self.config_path))
            self._watching_config = True
        parameters = self.scripts.parameters_file
        if (
            parameters
            and not self._watching_parameters
            and Path(parameters).parent != Path(self.runtime.script_dir)
        ):
            watched.append(Path(parameters))  # in the script directory it is watched with the scripts
            self._watching_parameters = True
        watch = self.parts.watch
        if watched and watch is not None:
            self._start_guard(lambda: watch(watched, self._on_file_change))

    def _start_guards(self) -> None:
        self._start_watcher()
        memory_guard = self.parts.memory_guard
        if memory_guard is not None:
            self._start_guard(
                lambda: memory_guard(
                    lambda *mb: self.requests.put(("memory_soft", mb)),
                    lambda *mb: self.requests.put(("memory_hard", mb)),
                )
            )

    def _start_guard(self, factory: Callable[[], Guard]) -> None:
        """Make, start and keep a helper thread; `factory` makes it again if its thread dies."""
        guard = factory()
        guard.start()
        self._guards.append(guard)
        self._guard_factories[id(guard)] = factory

    def _on_file_change(self, path) -> None:
        path = str(path)
        if self.config_path and os.path.abspath(path) == os.path.abspath(self.config_path):
            self.requests.put(("config_changed", path))
        elif self.scripts.parameters_file and os.path.abspath(path) == os.path.abspath(
            self.scripts.parameters_file
        ):
            self.requests.put(("parameters_changed", path))
        elif script_kind(path, self.runtime.script_names) is not None:
            self.requests.put(("script_changed", path))

    def _retry_log_file(self) -> None:
        """A log file that could not be written (a mount not back, a full disk) is tried again at a growing
        interval, up to 10 minutes; meanwhile everything goes to stderr (the journal)."""
        if logs.failing() is None:
            self._log_retry_delay = SYSTEMD_EVERY_S
            return
        now = time.monotonic()
        if now < self._log_retry_at:
            return
        if logs.reopen():
            log.info("the log file can be written again")
            self._log_retry_delay = SYSTEMD_EVERY_S
        else:
            self._log_retry_delay = min(2 * self._log_retry_delay, 600.0)
        self._log_retry_at = now + self._log_retry_delay

    def _publish_listener(self, now: float) -> None:
        """The listener's connection and loss counters, as a record (the status page's and metrics' source)."""
        if self.listener is None or now - self._listener_at < LISTENER_EVERY_S:
            return
        self._listener_at = now
        try:
            state = dict(self.listener.state())
        except Exception:
            log.exception("reading the listener's state failed")
            return
        if self.shared_events is not None:  # chunks in shared memory: segments, and chunks that missed them
            state.update({f"shared_events_{k}": v for k, v in self.shared_events.state().items()})
        counters = {k: v for k, v in state.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        self.records.emit(
            RecordKind.LISTENER,
            0,
            connected=bool(state.get("connected")),
            address=str(state.get("address", self.runtime.where)),
            counters=counters,
            last_error=str(state.get("last_error") or ""),
        )

    def _listener_connected(self) -> bool:
        if self.listener is None:  # an engine with its own listener reports it in LISTENER records
            return self.status.listener_connected()
        try:
            return bool(self.listener.state().get("connected"))
        except Exception:
            return False

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
