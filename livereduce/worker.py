"""The session in a worker process the supervisor (the daemon) can stop for real.

A thread cannot be stopped: a hung script (`while True: pass`) kept a core busy for ever, `sys.exit()` in a
script ended the session thread, and memory a script held outlived its session. So the session, its scripts
and its workspaces live in a child process (design.md, "Next shape"). The daemon keeps the listener: its
receive thread reads the DAS at full speed whatever a script does, and a worker that is killed and replaced
loses nothing the listener received.

One cycle: the worker's session asks the supervisor for what the listener has (`take`, one round trip with
the chunk pickled across the pipe), processes it, and sends its records (progress, script errors, the cycle
summary with its state) back. Log records of the worker (the session's lines, the scripts' prints) travel the
same way into the daemon's log.

Nothing is lost when a worker dies or is killed: the worker checkpoints (livereduce.checkpoint) every
`checkpoint_every` cycles and at each run's end; the supervisor keeps the chunks taken since the last
checkpoint and hands them to the next worker, which starts from the checkpoint. A chunk that was being
processed when two workers in a row died or hung on it is dropped, counted and logged, so one poison chunk
cannot stop live reduction.

`ThreadWorker` runs the same session in a thread of this process: for tests of the daemon's logic, where
nothing needs killing.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any, Protocol

import numpy as np

from livereduce import checkpoint as checkpoints
from livereduce.algorithms.binning import compress_events
from livereduce.errors import NotYet
from livereduce.listeners.base import Listener, RunStatus, StartFrom
from livereduce.records import Record, RecordKind
from livereduce.scripts import compile_script
from livereduce.session import Session, SessionState, Taken, take_from
from livereduce.shared_events import SharedEventMaps, SharedEventPool
from livereduce.status.plot import PlotPublisher
from livereduce.workspace.events import EventWorkspace

log = logging.getLogger("livereduce.worker")

_WORKER_IDS = itertools.count(1)
MAX_ATTEMPTS = 2  # workers that may die or hang on one chunk before it is dropped


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to build its session; picklable (scripts travel as path and text)."""

    scripts: dict[str, tuple[str, bytes]]  # kind → (path, text)
    session: dict[str, Any]  # Session keyword arguments (accum_method, update_every, ...)
    cumulative: bool  # the listener sends cumulative histograms (Add is refused)
    state_dir: str | None  # checkpoints go here; None: none are written
    checkpoint_every: int = 10
    # events the supervisor may keep for a successor before it asks for a checkpoint early (0: no bound)
    max_held_events: int = 0
    restore: bool = True  # take up the checkpoint in state_dir (its run is checked at the first chunk)
    engine: dict[str, Any] = field(default_factory=dict)  # an engine's own options (Mantid: StartLiveData's)


def session_options(config, parameters: dict, start: StartFrom | None = None) -> dict[str, Any]:
    """The Session keyword arguments a config gives (WorkerSpec.session): the daemon's, `try`'s and `check`'s
    sessions are the same session."""
    return dict(
        accum_method=config.accum_method,
        preserve_events=config.preserve_events,
        update_every=config.update_every,
        run_transition=config.run_transition,
        output_name=config.output_name,
        start=StartFrom(config.start_from) if start is None else start,
        max_carried_events=config.max_carried_events,
        parameters=dict(parameters),
    )


def build_session(spec: WorkerSpec, listener, log_name: str = "livereduce.session") -> Session:
    scripts = {kind: compile_script(path, kind, text) for kind, (path, text) in spec.scripts.items()}
    session = Session(
        listener=listener,
        proc=scripts.get("proc"),
        post_proc=scripts.get("post_proc"),
        logger=logging.getLogger(log_name),
        **spec.session,
    )
    session.compress_hook = compress_accumulation
    if spec.restore and spec.state_dir:
        loaded = checkpoints.load(spec.state_dir)
        if loaded is not None:
            session.restore(*loaded)
    return session


def compress_accumulation(acc):
    """Soft memory limit: merge nearly equal events (lossless for any histogram coarser than 0.01 µs)."""
    if not isinstance(acc, EventWorkspace):
        return acc
    return compress_events(acc, tolerance=0.01)


class Checkpointer:
    """A record subscriber that writes a checkpoint every N cycles and at each run's end.

    Writing one costs time in proportion to the accumulation (seconds at 10^8 bins), so a regular checkpoint
    waits until writing the last one took at most WRITING_SHARE of the time since it began: a tenth of the
    session's time at most, where one every 10 cycles took a third of it under load. A run's end, a clean stop
    and the supervisor's request (it holds too many chunks) are never deferred."""

    WRITING_SHARE = 0.1

    def __init__(self, session: Session, spec: WorkerSpec, on_written: Callable[[int], None]):
        self.session, self.on_written = session, on_written
        self.every, self.state_dir = spec.checkpoint_every, spec.state_dir
        self._last_run = 0
        self.due = False  # the supervisor asked for one at the next cycle (it holds too many events)
        self._regular_due = False  # checkpoint_every cycles have passed: written once the share allows
        self._not_before = 0.0  # monotonic time before which a regular checkpoint waits

    def __call__(self, record: Record) -> None:
        if record.kind is not RecordKind.CYCLE or not self.state_dir:
            return
        data = record.data
        run = int(data.run_number or 0)
        if self._last_run and run and run != self._last_run:
            checkpoints.archive(self.state_dir, f"run-{self._last_run}-done")
        if run:
            self._last_run = run
        if record.cycle % self.every == 0:
            self._regular_due = True
        regular = self._regular_due and time.monotonic() >= self._not_before
        if regular or data.run_status == RunStatus.END_RUN.name or self.due:
            self.due = self._regular_due = False
            self.write(record.cycle)

    def write(self, cycle: int) -> None:
        checkpoint, accumulation = self.session.checkpoint()
        if not checkpoint.run_number or not self.state_dir:
            return
        t = time.monotonic()
        checkpoints.write(self.state_dir, checkpoint, accumulation)
        done = time.monotonic()
        took = done - t
        self._not_before = done + took * (1 / self.WRITING_SHARE - 1)
        log.debug(
            "checkpoint of run %d written after cycle %d in %.0f ms", checkpoint.run_number, cycle, took * 1e3
        )
        self.on_written(cycle)


# -- the child process ----------------------------------------------------------------------------------


class RemoteListener:
    """The supervisor's listener, seen from the worker: the cycle's four reads in one round trip."""

    def __init__(
        self, send: Callable[[tuple], None], replies: queue.Queue, cumulative: bool, maps: SharedEventMaps
    ):
        self._send, self._replies, self._maps = send, replies, maps
        self.buffers_events = not cumulative

    def start(self, start: StartFrom | None = None) -> None:
        pass  # the supervisor started the real listener

    def take(self) -> Taken:
        self._send(("take", self._maps.take_returned()))  # with the shared segments no chunk reads any more
        kind, value = self._replies.get()
        if kind == "notyet":
            raise NotYet(value)
        return value

    def close(self) -> None:
        pass


class PipeLogHandler(logging.Handler):
    def __init__(self, send: Callable[[tuple], None]):
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # the pipe is gone: the supervisor is stopping us
            self._send(("log", record.levelno, record.name, self.format(record)))


def child_setup(conn: Connection, log_level: int) -> Callable[[tuple], None]:
    """What every engine's worker process does first: leave the daemon's signals to the daemon, send its log
    up the pipe. Returns the thread-safe send."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):  # the daemon's signals: it acts on them
        signal.signal(sig, signal.SIG_IGN)
    lock = threading.Lock()

    def send(message: tuple) -> None:
        with lock:
            conn.send(message)

    root = logging.getLogger()
    root.handlers[:] = [PipeLogHandler(send)]
    root.setLevel(log_level)
    return send


def worker_main(conn: Connection, spec: WorkerSpec, log_level: int) -> None:
    """The worker process: build the session, run it until told to stop."""
    send = child_setup(conn, log_level)
    replies: queue.Queue = queue.Queue()
    stop, orphaned = threading.Event(), threading.Event()
    maps = SharedEventMaps()
    listener = RemoteListener(send, replies, spec.cumulative, maps)
    session = build_session(spec, listener)
    session.records.subscribe(
        lambda r: send(("record", r, _state(session) if r.kind is RecordKind.CYCLE else None))
    )
    checkpointer = Checkpointer(session, spec, lambda cycle: send(("checkpointed", cycle)))
    session.records.subscribe(checkpointer)
    session.records.subscribe(PlotPublisher(session))

    def receive() -> None:
        try:
            serve()
        except Exception:
            # where in the pipe's stream we are is lost: end, and be replaced from the checkpoint
            log.exception(
                "the worker's receive thread failed; the worker ends, and a new one resumes from the last "
                "checkpoint with the chunks taken since"
            )
            orphaned.set()  # no clean-stop checkpoint: the supervisor keeps every chunk taken since the last one
            stop.set()
            replies.put(("notyet", "the worker's receive thread failed"))

    def serve() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                orphaned.set()  # the daemon died (kill -9): its successor owns the checkpoints now
                stop.set()
                replies.put(("notyet", "the supervisor is gone"))
                return
            kind = message[0]
            if kind == "taken_oob":
                replies.put(("taken", receive_out_of_band(conn, message[1], maps)))
            elif kind == "shm_fd":  # a shared event segment: its fd follows on the socket
                maps.add(message[1], reduction.recv_handle(conn), message[2])
            elif kind in ("taken", "notyet"):
                replies.put(message)
            elif kind == "request" and message[1] == "checkpoint":
                checkpointer.due = True
            elif kind == "request":
                session.request(message[1], message[2])
            elif kind == "stop":
                stop.set()
                replies.put(("notyet", "stopping"))

    threading.Thread(target=receive, name="worker-receive", daemon=True).start()
    send(("ready", os.getpid()))
    session.run(stop)
    if orphaned.is_set():
        return
    if spec.state_dir and session.state.cycles:
        checkpointer.write(session.state.cycles)  # a clean stop leaves a checkpoint to resume from
    send(("exiting", _state(session)))


def _state(session: Session) -> dict:
    return asdict(session.state)


# -- chunks across the pipe ----------------------------------------------------------------------------------
# Pickling a chunk copies its arrays into one bytes object while holding the GIL: 0.1 s at 10^7 events, 0.6 s
# at 5×10^7, long enough to starve the listener's receive thread in the supervisor (the DAS then drops us).
# With pickle protocol 5 the arrays travel out of band: a small pickle, then each array either as a place in a
# shared segment the worker maps (the listener's event columns: livereduce.shared_events, no copy at all) or
# its memory written to the pipe by os.write, which releases the GIL (max stall measured: 9 ms at 5×10^7
# events), and read on the other side straight into new arrays.


class SharedSender:
    """Where a chunk's arrays lie in the pool's shared segments, for one worker: sends each segment's fd to it
    once (before the first message that needs it) and counts what it lends."""

    def __init__(self, pool: SharedEventPool, worker: int, pid: int):
        self.pool, self.worker, self.pid = pool, worker, pid
        self._fds_sent: set[int] = set()

    def place(self, conn: Connection, raw: memoryview) -> tuple[int, int, int] | None:
        """(segment, offset, nbytes) of `raw` when it lies in a shared segment, else None."""
        if raw.nbytes == 0:
            return None
        found = self.pool.locate(np.frombuffer(raw, np.uint8).ctypes.data, raw.nbytes)
        if found is None:
            return None
        ident, offset = found
        if ident not in self._fds_sent:
            fd, size = self.pool.descriptor(ident)
            conn.send(("shm_fd", ident, size))
            reduction.send_handle(conn, fd, self.pid)
            self._fds_sent.add(ident)
        return ident, offset, raw.nbytes


def send_out_of_band(conn: Connection, kind: str, obj, shared: SharedSender | None = None) -> None:
    """Send `obj` as (kind, places), its pickle, then its buffers that are not in shared memory; the caller
    holds the send lock. A place is a byte count (the buffer follows on the pipe) or a shared span."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    places: list[int | tuple[int, int, int]] = []
    for raw in raws:
        span = shared.place(conn, raw) if shared is not None else None
        places.append(raw.nbytes if span is None else span)
    if shared is not None:
        for ident in {p[0] for p in places if isinstance(p, tuple)}:  # one mapping per segment in the worker
            shared.pool.lend(ident, shared.worker)
    conn.send((kind, places))
    conn.send_bytes(data)
    for raw, place in zip(raws, places, strict=True):
        if not isinstance(place, tuple):
            conn.send_bytes(raw)


def receive_out_of_band(conn: Connection, places: list, maps: SharedEventMaps | None = None):
    data = conn.recv_bytes()
    spans = [p for p in places if isinstance(p, tuple)]
    mapped = iter(maps.buffers(spans) if spans and maps is not None else [])
    buffers = []
    for place in places:
        if isinstance(place, tuple):
            buffers.append(next(mapped))  # a private (copy-on-write) mapping: writable, like the others
        else:
            buffer = np.empty(place, np.uint8)  # writable, unlike bytes: scripts may change arrays
            conn.recv_bytes_into(buffer)
            buffers.append(buffer)
    return pickle.loads(data, buffers=buffers)  # noqa: S301 - our own supervisor's message


# -- the supervisor's side ---------------------------------------------------------------------------------


@dataclass
class _InFlight:
    taken: Taken
    attempts: int = 0


class Worker(Protocol):
    state: SessionState
    session: Session | None  # the session object itself (ThreadWorker only)

    def start(self) -> None: ...
    def request(self, action: str, payload=None) -> None: ...
    def stop(self, timeout: float) -> None: ...
    def kill(self) -> None: ...
    def alive(self) -> bool: ...
    def busy_seconds(self) -> float: ...
    def unacknowledged(self) -> list[_InFlight]: ...


def _context():
    """forkserver: workers fork from a clean server process (not from the daemon and its threads), which
    has imported the worker's modules once, so a replacement worker starts in a fraction of a second."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["livereduce.worker"])
    return context


class ProcessWorker:
    """A worker process and the supervisor thread that serves its requests (take, records, logs)."""

    shares_events = True  # takes a SharedEventPool (`pool`): chunks cross in shared memory

    def __init__(
        self,
        spec: WorkerSpec,
        listener: Listener | None,  # None: the engine reads the DAS itself (Mantid)
        emit: Callable[[Record], None],
        *,
        pending: list[_InFlight] | None = None,
        log_level: int = logging.INFO,
        target: Callable[[Connection, WorkerSpec, int], None] | None = None,
        pool: SharedEventPool | None = None,
    ):
        """`target` is the engine's main in the child (default `worker_main`, the embedded session); it speaks
        the same pipe protocol: records, logs, checkpointed, exiting; take when it reads our listener.
        `pool`: the shared segments the listener's events are kept in (chunks then cross without a copy)."""
        self.spec, self.listener, self.emit = spec, listener, emit
        self.pool = pool
        self._shared: SharedSender | None = None
        self._ident = next(_WORKER_IDS)  # whose shared-segment leases are whose (never reused, unlike id())
        self.state = SessionState()
        self.session: Session | None = None
        self.exit_state: dict | None = None
        self._pending = list(pending or [])  # chunks to hand over before new ones (from a dead worker)
        self._in_flight: list[_InFlight] = []
        self._checkpoint_asked = False
        self._busy_since: float | None = None
        self._send_lock = threading.Lock()
        context = _context()
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=target or worker_main, args=(child, spec, log_level), name="livereduce-worker", daemon=True
        )
        self._child = child
        self._thread = threading.Thread(target=self._serve, name="worker-serve", daemon=True)

    def start(self) -> None:
        self._process.start()
        self._child.close()
        if self.pool is not None and self._process.pid is not None:
            self._shared = SharedSender(self.pool, self._ident, self._process.pid)
        self._thread.start()

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _serve(self) -> None:
        try:
            while True:
                message = self._conn.recv()
                self._handle(message)
        except (EOFError, OSError):
            pass
        except Exception:
            log.exception("serving the worker failed")
        finally:
            self._busy_since = None
            if self.pool is not None:  # the process is gone, and its mappings of shared events with it
                self.pool.worker_gone(self._ident)

    def _handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "take":
            if self.pool is not None and len(message) > 1:
                self.pool.returned(message[1], self._ident)
            self._give()
        elif kind == "record":
            record, state = message[1], message[2]
            if state is not None:
                self.state = SessionState(**state)
            if record.kind in (RecordKind.CYCLE, RecordKind.WAITING):
                self._busy_since = None
            self.emit(record)
        elif kind == "log":
            _, level, name, text = message
            logging.getLogger(name).log(level, "%s", text)
        elif kind == "checkpointed":
            self._in_flight.clear()  # everything taken so far is in the checkpoint
            self._checkpoint_asked = False
        elif kind == "exiting":
            self.exit_state = message[1]
            self.state = SessionState(**message[1])

    def _give(self) -> None:
        if self._pending:
            item = self._pending.pop(0)
            item.attempts += 1
        else:
            try:
                item = _InFlight(take_from(self.listener), attempts=1)
            except NotYet as exc:
                self._send(("notyet", str(exc)))
                return
            except Exception as exc:  # a listener bug: reported, and the cycle waits
                log.exception("reading the listener failed")
                self._send(("notyet", f"listener failed: {exc!r}"))
                return
        self._in_flight.append(item)
        self._ask_checkpoint_when_holding_too_much()
        self._busy_since = time.monotonic()
        with self._send_lock:
            send_out_of_band(self._conn, "taken_oob", item.taken, self._shared)

    def _ask_checkpoint_when_holding_too_much(self) -> None:
        """The chunks kept for a successor are bounded: past `max_held_events` the worker is asked for a
        checkpoint at its next cycle (after which they are let go), instead of waiting for checkpoint_every."""
        bound = self.spec.max_held_events
        if not bound or self._checkpoint_asked:
            return
        held = sum(item.taken.chunk.n_events for item in self._in_flight)
        if held > bound:
            self._checkpoint_asked = True
            log.debug("%d events kept since the last checkpoint (> %d): asking for one now", held, bound)
            self.request("checkpoint")

    def unacknowledged(self) -> list[_InFlight]:
        """Chunks this worker took since its last checkpoint, oldest first (for its successor)."""
        return (
            self._in_flight + self._pending
        )  # pending ones are only handed out after earlier in-flight ones

    def request(self, action: str, payload=None) -> None:
        try:
            self._send(("request", action, payload))
        except OSError:
            pass

    def busy_seconds(self) -> float:
        since = self._busy_since
        return 0.0 if since is None else time.monotonic() - since

    def alive(self) -> bool:
        return self._process.is_alive()

    def stop(self, timeout: float) -> None:
        """Ask the worker to finish its cycle, checkpoint and exit; kill it if it does not in time."""
        try:
            self._send(("stop",))
        except OSError:
            pass
        self._process.join(timeout)
        if self._process.is_alive():
            log.warning("the worker did not stop within %.1f s; killing it", timeout)
            self.kill()
        self._thread.join(5)

    def kill(self) -> None:
        self._process.kill()
        self._process.join(10)
        self._thread.join(5)
        self._conn.close()


class ThreadWorker:
    """The same session on a thread of this process (tests of the daemon's logic; nothing to kill)."""

    def __init__(self, spec: WorkerSpec, listener: Listener, emit: Callable[[Record], None], **_ignored):
        self.spec = spec
        self.session = build_session(spec, listener)
        self.session.records.subscribe(emit)
        self._checkpointer = Checkpointer(self.session, spec, lambda cycle: None)
        self.session.records.subscribe(self._checkpointer)
        self.session.records.subscribe(PlotPublisher(self.session))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session", daemon=True)

    @property
    def state(self) -> SessionState:
        return self.session.state

    def _run(self) -> None:
        try:
            self.session.run(self._stop)
        except BaseException:
            log.exception("the session thread crashed")

    def start(self) -> None:
        self._thread.start()

    def request(self, action: str, payload=None) -> None:
        self.session.request(action, payload)

    def busy_seconds(self) -> float:
        return 0.0

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if not self._thread.is_alive() and self.session.state.cycles:
            self._checkpointer.write(self.session.state.cycles)  # as a worker process does at a clean stop

    def kill(self) -> None:
        self._stop.set()  # a thread cannot be killed; it is abandoned

    def unacknowledged(self) -> list[_InFlight]:
        return []
