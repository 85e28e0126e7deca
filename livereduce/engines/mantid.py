"""The Mantid engine: where real Mantid is installed, drive its StartLiveData as the anchor daemon does.

It runs in the daemon's worker slot (livereduce.worker.ProcessWorker with `target=worker_main`): the daemon's
watcher, memory guard, signals, logging, status page and systemd notify are the same as for the embedded
engine. The worker speaks the worker pipe protocol: `ready`, `log` (Mantid's own log included, through its
Python logging channel), `record` (STARTED, WAITING, LISTENER, CYCLE, RUN_TRANSITION, SCRIPT_ERROR, read from
Mantid's algorithms and workspaces), `exiting`; it acts on `stop` and the requests `swap_post_proc`,
`compress`, `clear` and `set_parameters`.

Scripts: Mantid runs the scripts by file name and reads the file at every run (RunPythonScript's Filename).
The worker gives Mantid private copies of the scripts the daemon accepted (spec.scripts), so an edit the
daemon rejects never reaches Mantid, and a post_proc swap is a new copy, read from the next cycle on, with the
accumulation kept (docs/engines.md).

Mantid cannot be installed on our build machines: this module is tested against the stand-in package in
test/mantid_standin, written from Mantid's documentation; it has not run against a real Mantid.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from livereduce.instruments import MANTID_LISTENER_NAMES, ListenerKind
from livereduce.records import Record, RecordKind, make_record
from livereduce.session import Phase, SessionState
from livereduce.worker import WorkerSpec, child_setup

log = logging.getLogger("livereduce.engine.mantid")

MANTID_LISTENERS = {
    kind: mantid_name for mantid_name, kind in MANTID_LISTENER_NAMES.items()
}  # ours → Mantid's
SCRIPT_ARGS = {"proc": "ProcessingScriptFilename", "post_proc": "PostProcessingScriptFilename"}
ACCUMULATION = "accumulation"
STOP_WAIT_S = 2.0  # how long a stop waits for Mantid's asynchronous algorithms (the daemon kills after 3 s)
RETRY_MAX_S = 30.0  # StartLiveData that failed (no DAS, a script error) is tried again, backing off to this
# Python level → Mantid's root log level (Mantid's notice is its default user level; it arrives as INFO)
MANTID_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "notice",
    logging.WARNING: "warning",
    logging.ERROR: "error",
}


def start_live_data_args(config, runtime, scripts: dict[str, str] | None = None) -> dict:
    """The StartLiveData keyword arguments for this configuration, as Mantid names them.

    `scripts` maps kind ("proc", "post_proc") to the file Mantid is to run; None leaves the scripts out (the
    worker adds its copies of the scripts the daemon accepted). Spectra go under SpectraList (the anchor passed
    them under `spectra`, which is no StartLiveData property: Mantid raises on it). PeriodList and SpectraList
    are properties of Mantid's ISIS histogram listener only (StartLiveData copies a listener's properties in),
    so they are passed only for it.
    """
    args: dict = dict(
        Instrument=runtime.name,
        UpdateEvery=float(config.update_every),
        PreserveEvents=bool(config.preserve_events),
        AccumulationMethod=config.accum_method,
        OutputWorkspace=config.output_name,
        RunTransitionBehavior=config.run_transition,
        FromNow=config.start_from == "now",
        FromStartOfRun=config.start_from == "start_of_run",
    )
    if config.listener:
        args["Listener"] = MANTID_LISTENERS.get(runtime.listener, str(runtime.listener))
    if config.address:
        args["Address"] = config.address
    for kind, path in (scripts or {}).items():
        args[SCRIPT_ARGS[kind]] = path
    if "PostProcessingScriptFilename" in args:
        args["AccumulationWorkspace"] = ACCUMULATION
    if runtime.listener == ListenerKind.ISIS_HISTOGRAM:
        if config.periods:
            args["PeriodList"] = [int(p) for p in config.periods]
        if config.spectra:
            args["SpectraList"] = [int(s) for s in config.spectra]
    return args


def mantid_importable(python_path: Sequence[str] = ()) -> tuple[bool, str]:
    """(whether `import mantid` finds a real Mantid package — or the test stand-in —, where). livereduce's own
    `mantid` aliases (livereduce.mantidapi, installed only while the embedded engine runs a script) do not
    count."""
    import importlib.util

    from livereduce import mantidapi

    if "mantid" in sys.modules and getattr(sys.modules["mantid"], "__version__", "").endswith("+livereduce"):
        return False, "only livereduce's embedded mantid aliases are loaded"
    with _on_path(python_path):
        if not mantidapi.real_mantid_available():
            return False, "no mantid package on the Python path"
        try:
            spec = importlib.util.find_spec("mantid")
        except (ImportError, ValueError) as exc:
            return False, f"mantid cannot be found: {exc}"
    where = spec.origin if spec is not None and spec.origin else "?"
    return True, where


@contextlib.contextmanager
def _on_path(paths: Sequence[str]):
    added = [p for p in paths if p not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(p)


def route_mantid_log(level: int) -> None:
    """Mantid's log into Python's `logging` (logger "Mantid"), at the level matching ours: Mantid's
    fatal/critical → CRITICAL, error → ERROR, warning → WARNING, notice/information → INFO, debug → DEBUG
    (Mantid's PythonLoggingChannel)."""
    name = MANTID_LEVELS.get(level, "notice" if level < logging.WARNING else "warning")
    if level <= logging.DEBUG:
        name = "debug"
    try:
        from mantid.utils.logging import log_to_python
    except ImportError:  # an older Mantid: set the channel as log_to_python does
        from mantid.kernel import ConfigService

        ConfigService["logging.channels.consoleChannel.class"] = "PythonLoggingChannel"
        ConfigService.setLogLevel(name, True)
    else:
        log_to_python(name)
    logging.getLogger("Mantid").setLevel(level)


class _ErrorTail(logging.Handler):
    """The last few ERROR texts Mantid logged (a failed script's traceback is among them)."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.texts: list[str] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock2:
            self.texts.append(record.getMessage())
            del self.texts[:-10]

    def take(self) -> list[str]:
        with self._lock2:
            texts, self.texts = self.texts, []
        return texts


_TRACE_LINE = re.compile(r'File "([^"]+)", line (\d+)')


class MantidEngine:
    """StartLiveData and what follows it, in this process. `emit(record, state)` sends a record (with the
    SessionState dict for CYCLE records). Call `poll()` often (the worker's loop does, every 0.1 s): it turns
    Mantid's notifications into records and retries a failed start when its time comes."""

    def __init__(
        self,
        args: dict,
        scripts: dict[str, tuple[str, bytes | str]],
        emit: Callable[[Record, dict | None], None],
        *,
        workdir: str,
        stop_wait: float = STOP_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
        log_level: int = logging.INFO,
    ):
        from mantid.api import AlgorithmManager, AnalysisDataService

        route_mantid_log(log_level)  # script failures are read from Mantid's log (and it belongs in ours)

        self.manager, self.ads = AlgorithmManager, AnalysisDataService
        self.base_args = {k: v for k, v in args.items() if k not in SCRIPT_ARGS.values()}
        self.base_args.pop("AccumulationWorkspace", None)
        self.emit_record, self.stop_wait, self.clock = emit, stop_wait, clock
        self.workdir = Path(workdir)
        self.originals: dict[str, str] = {}  # kind → the user's script path
        self.copies: dict[str, str] = {}  # kind → the copy Mantid runs
        for kind, (path, text) in scripts.items():
            self.originals[kind] = path
            self.copies[kind] = self._write_copy(kind, path, text)
        self.update_every = float(args.get("UpdateEvery", 60.0))
        self.state = SessionState()
        self.cycle = 0
        self.events: queue.SimpleQueue = queue.SimpleQueue()  # (kind, payload, time) from Mantid's threads
        self._starter: threading.Thread | None = None
        self._monitor: Any = None  # Mantid objects (no type stubs)
        self._observer: Any = None
        self._stopping = False  # we cancelled: a "terminated" notification is ours
        self._retry_at: float | None = None
        self._retry_delay = 1.0
        self._stopped_why = ""
        self._waiting_at = -float("inf")
        self._last_update: float | None = None
        self._previous_events = 0
        self._compress_pending = False
        self._ended = False  # MonitorLiveData finished on its own (RunTransitionBehavior Stop) or single shot
        self.errors = _ErrorTail()
        logging.getLogger("Mantid").addHandler(self.errors)

    # -- the scripts ------------------------------------------------------------------------------------------
    def _write_copy(self, kind: str, path: str, text: bytes | str) -> str:
        """The script's text, written (atomically) where Mantid reads it; the copy keeps the file's name."""
        target = self.workdir / kind / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_suffix(".tmp")
        temp.write_bytes(text if isinstance(text, bytes) else text.encode())
        temp.replace(target)  # Mantid reads the old file or the new one, never half of one
        return str(target)

    def args(self) -> dict:
        """StartLiveData's arguments with the scripts Mantid runs (our copies)."""
        args = dict(self.base_args)
        for kind in ("proc", "post_proc"):
            if kind in self.copies:
                args[SCRIPT_ARGS[kind]] = self.copies[kind]
        if "post_proc" in self.copies:
            args["AccumulationWorkspace"] = ACCUMULATION
        return args

    @property
    def accumulation_name(self) -> str:
        return ACCUMULATION if "post_proc" in self.copies else str(self.base_args["OutputWorkspace"])

    # -- start, stop ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """StartLiveData on a thread of its own: it returns only after the first chunk (Mantid's LoadLiveData
        waits for the DAS); meanwhile `poll` reports WAITING."""
        self._stopping, self._retry_at, self._ended = False, None, False
        args = self.args()
        log.info("starting Mantid StartLiveData(%s)", ", ".join(f"{k}={v!r}" for k, v in args.items()))
        self._starter = threading.Thread(target=self._start_live_data, args=(args,), name="mantid-start")
        self._starter.daemon = True
        self._starter.start()

    def _start_live_data(self, args: dict) -> None:
        try:
            self._select_facility(str(args.get("Instrument", "")))
            from mantid.simpleapi import StartLiveData

            StartLiveData(**args)
        except Exception as exc:  # Mantid's failures reach us as exceptions: reported, and retried
            self.events.put(("start_failed", str(exc), self.clock()))
            return
        self.events.put(("started", None, self.clock()))

    def _select_facility(self, instrument: str) -> None:
        """StartLiveData offers the live instruments of the default facility only: select the instrument's."""
        from mantid.kernel import ConfigService

        try:
            facility = ConfigService.getInstrument(instrument).facility().name()
        except Exception:  # not one of Mantid's instruments: StartLiveData says so
            return
        if facility != ConfigService.getFacility().name():
            ConfigService.setFacility(facility)
            log.info("Mantid's default facility set to %s (instrument %s)", facility, instrument)

    def running(self) -> list:
        """Mantid's live-data algorithms still running (of any session in this process)."""
        found = []
        for name in ("StartLiveData", "MonitorLiveData", "LoadLiveData"):
            found += list(self.manager.runningInstancesOf(name))
        return found

    def stop(self) -> bool:
        """Cancel every running algorithm through the algorithm manager, then wait (at most `stop_wait`) for
        the asynchronous ones to finish. True when none is left running."""
        self._stopping = True
        self._retry_at = None
        self.manager.cancelAll()
        deadline = self.clock() + self.stop_wait
        while self.running() and self.clock() < deadline:
            time.sleep(0.02)
        left = self.running()
        if left:
            log.warning(
                "Mantid's %s still running %.1f s after cancelAll; going on without waiting longer",
                ", ".join(sorted({a.name() for a in left})),
                self.stop_wait,
            )
        self._unobserve()
        return not left

    def restart(self, why: str) -> None:
        """stop + clear the ADS + start: a new accumulation."""
        log.info("restarting Mantid's live data (%s): stop, clear the workspaces, start", why)
        self.stop()
        self.ads.clear()
        self._previous_events = 0
        self.start()

    def close(self) -> None:
        logging.getLogger("Mantid").removeHandler(self.errors)

    # -- requests ------------------------------------------------------------------------------------------
    def request(self, action: str, payload) -> None:
        if action == "swap_post_proc":
            path, text = payload
            self.originals["post_proc"] = path
            self.copies["post_proc"] = self._write_copy("post_proc", path, text)
            log.info(
                "post_proc %s swapped in: Mantid runs it from the next cycle, on the same accumulation", path
            )
        elif action == "compress":
            self._compress_pending = True  # right after the next update, between two LoadLiveData runs
        elif action == "clear":
            self.restart(f"clear: {payload}" if payload else "clear")
        elif action == "set_parameters":
            log.warning(
                "the Mantid engine cannot hand parameters to the scripts Mantid runs: %s",
                "the edit takes effect when the service restarts",
            )
        else:
            log.error("unknown request %r ignored", action)

    def _compress(self) -> None:
        from mantid.simpleapi import CompressEvents

        name = self.accumulation_name
        if not self.ads.doesExist(name):
            return
        before = _events(self.ads[name])
        try:
            CompressEvents(InputWorkspace=name, OutputWorkspace=name, Tolerance=0.01)
        except Exception as exc:
            log.error("CompressEvents on the accumulation %s failed: %s", name, exc)
            return
        log.info("accumulation %s compressed: %d → %d events", name, before, _events(self.ads[name]))

    # -- Mantid's notifications → records ------------------------------------------------------------------
    def _observe(self) -> None:
        from mantid.api import AlgorithmObserver

        monitors = list(self.manager.runningInstancesOf("MonitorLiveData"))
        if not monitors:
            return
        engine = self

        class Observer(AlgorithmObserver):
            def progressHandle(self, p, message, *_rest):
                engine.events.put(("update", str(message), engine.clock()))

            def finishHandle(self):
                engine.events.put(("finished", None, engine.clock()))

            def errorHandle(self, what):
                engine.events.put(("failed", str(what), engine.clock()))

        self._monitor, self._observer = monitors[-1], Observer()
        self._observer.observeAll(self._monitor)

    def _unobserve(self) -> None:
        if self._observer is not None and self._monitor is not None:
            with contextlib.suppress(Exception):
                self._observer.stopObserving(self._monitor)
        self._monitor = self._observer = None

    def poll(self) -> None:
        while True:
            try:
                kind, payload, at = self.events.get_nowait()
            except queue.Empty:
                break
            getattr(self, f"_on_{kind}")(payload, at)
        now = self.clock()
        if self._retry_at is not None and now >= self._retry_at:
            self.restart("trying again")
        if now - self._waiting_at >= min(max(self.update_every, 1.0), 10.0):
            # waiting, not stuck (the watchdog is fed): on the first chunk, or to start again after a failure
            if self._waiting():
                self._waiting_at = now
                self._emit(
                    RecordKind.WAITING, reason=f"StartLiveData: no first chunk yet from {self._where()}"
                )
            elif self._retry_at is not None:
                self._waiting_at = now
                self._emit(
                    RecordKind.WAITING,
                    reason=f"Mantid stopped live data ({self._stopped_why}); StartLiveData again in "
                    f"{max(self._retry_at - now, 0):.0f} s",
                )

    def _waiting(self) -> bool:
        return self._starter is not None and self._starter.is_alive() and not self._stopping

    def _where(self) -> str:
        args = self.base_args
        listener = args.get("Listener") or f"{args.get('Instrument')}'s listener"
        return f"{listener} at {args.get('Address') or 'its default address'}"

    def _on_started(self, _payload, at: float) -> None:
        if self._stopping:
            return
        self._retry_delay = 1.0
        self._emit(
            RecordKind.STARTED, accumulation=self.accumulation_name, output=self.base_args["OutputWorkspace"]
        )
        self._emit(RecordKind.LISTENER, connected=True, address=self._where(), counters={})
        self._observe()
        self._on_update("first chunk", at)
        if self.update_every <= 0:
            self._ended = True  # one chunk only (UpdateEvery 0): the session is over

    def _on_start_failed(self, text: str, at: float) -> None:
        if self._stopping:
            return
        if not self._script_failure(text):
            log.error("Mantid's StartLiveData failed: %s; trying again in %.0f s", text, self._retry_delay)
            self._emit(
                RecordKind.LISTENER, connected=False, address=self._where(), counters={}, last_error=text
            )
            self._emit(RecordKind.WAITING, reason=f"StartLiveData failed: {text}")
            self._waiting_at = at
        self._schedule_retry(at, text)

    def _schedule_retry(self, at: float, why: str) -> None:
        self._stopped_why = why
        self._retry_at = at + self._retry_delay
        self._retry_delay = min(2 * self._retry_delay, RETRY_MAX_S)

    def _on_update(self, _message, at: float) -> None:
        if self._stopping:
            return
        name = self.accumulation_name
        if not self.ads.doesExist(name):
            return
        acc = self.ads[name]
        events, size, run = _events(acc), _bytes(acc), _run_number(acc)
        s = self.state
        if s.run_number and run and run != s.run_number:
            self._emit(
                RecordKind.RUN_TRANSITION,
                run_number=s.run_number,
                behaviour=self.base_args["RunTransitionBehavior"],
            )
            s.events_in_run = 0
        replaced = self.base_args.get("AccumulationMethod") == "Replace" or events < self._previous_events
        chunk = events if replaced else events - self._previous_events
        self._previous_events = events
        seconds = None if self._last_update is None else at - self._last_update
        self._last_update = at
        self.cycle += 1
        s.phase, s.cycles = Phase.RUNNING, self.cycle
        s.events_last_chunk, s.events_received = chunk, s.events_received + chunk
        s.events_in_run = events if replaced else s.events_in_run + chunk
        s.events_accumulated, s.accumulation_bytes = events, size
        s.run_number, s.run_status = run, "RUNNING" if run else "NO_RUN"
        s.cycle_seconds = seconds
        s.event_rate = chunk / seconds if seconds else 0.0
        for kind, record_kind in (("proc", RecordKind.PROC_DONE), ("post_proc", RecordKind.POST_PROC_DONE)):
            if kind in self.copies:  # an update means Mantid ran them; how long each took it does not say
                self._emit(record_kind, seconds=math.nan, script=self.originals[kind])
        self._emit_cycle()
        if self._compress_pending:
            self._compress_pending = False
            self._compress()

    def _emit_cycle(self) -> None:
        s = self.state
        self._emit(
            RecordKind.CYCLE,
            state=asdict(s),
            run_number=s.run_number,
            run_status=s.run_status,
            events=s.events_last_chunk,
            events_in_run=s.events_in_run,
            events_accumulated=s.events_accumulated,
            events_outside_bins=0,
            events_carried=0,
            proc_seconds=None,
            post_proc_seconds=None,
            accumulation_bytes=s.accumulation_bytes,
            cycle_seconds=s.cycle_seconds,
            event_rate=s.event_rate,
        )

    def _on_finished(self, _payload, at: float) -> None:
        if self._stopping:
            return
        self._unobserve()
        # MonitorLiveData ends by itself only at a run's end with RunTransitionBehavior Stop
        self._on_update("last chunk", at)
        self.state.run_status = "END_RUN"
        self._emit_cycle()
        self._ended = True

    def _on_failed(self, what: str, at: float) -> None:
        if self._stopping:
            return
        self._unobserve()
        if not self._script_failure(what):
            log.error(
                "Mantid's MonitorLiveData failed: %s; starting live data again in %.0f s",
                what,
                self._retry_delay,
            )
            self._emit(
                RecordKind.LISTENER, connected=False, address=self._where(), counters={}, last_error=what
            )
        self._schedule_retry(at, what)

    def _script_failure(self, what: str) -> bool:
        """A failure of a script Mantid ran: a SCRIPT_ERROR record with the script's file and line, read from
        the traceback Mantid logged. False when the failure was not a script's."""
        texts = self.errors.take()
        copies = {copy: kind for kind, copy in self.copies.items()}
        for text in reversed(texts):
            hits = [(f, int(n)) for f, n in _TRACE_LINE.findall(text) if f in copies]
            if not hits:
                continue
            copy, line = hits[-1]
            kind = copies[copy]
            message = text.strip().splitlines()[-1]
            self._emit(
                RecordKind.SCRIPT_ERROR,
                script=kind,
                file=self.originals.get(kind, copy),
                line=line,
                message=message,
                traceback=text.replace(copy, self.originals.get(kind, copy)),
            )
            setattr(self.state, f"{kind}_errors", getattr(self.state, f"{kind}_errors") + 1)
            log.error(
                "script failed under Mantid: %s %s line %d: %s (Mantid stopped live data; it starts again in %.0f s)",
                kind,
                self.originals.get(kind, copy),
                line,
                message,
                self._retry_delay,
            )
            return True
        if "RunPythonScript" not in what and not any("RunPythonScript" in t for t in texts):
            return False
        # a script failed but its traceback names no copy (Mantid may run the text under another file name):
        # the step from Mantid's "While processing chunk:" line, the message from the traceback's last line
        kind = "proc" if any("While processing chunk" in t for t in texts) else "post_proc"
        traces = [t for t in texts if "Traceback" in t]
        message = traces[-1].strip().splitlines()[-1] if traces else what
        self._emit(
            RecordKind.SCRIPT_ERROR,
            script=kind,
            file=self.originals.get(kind),
            line=None,
            message=message,
            traceback=traces[-1] if traces else None,
        )
        log.error(
            "script failed under Mantid: %s %s: %s (Mantid stopped live data; it starts again in %.0f s)",
            kind,
            self.originals.get(kind),
            message,
            self._retry_delay,
        )
        return True

    @property
    def ended(self) -> bool:
        return self._ended

    def _emit(self, kind: RecordKind, state: dict | None = None, **fields) -> None:
        self.emit_record(make_record(kind, self.cycle, **fields), state)


def _events(ws) -> int:
    """Events in an event workspace; counts in a histogram one."""
    if hasattr(ws, "getNumberEvents"):
        return int(ws.getNumberEvents())
    if hasattr(ws, "extractY"):
        return int(ws.extractY().sum())
    return 0


def _bytes(ws) -> int:
    try:
        return int(ws.getMemorySize())
    except Exception:
        return 0


def _run_number(ws) -> int:
    try:
        return int(ws.getRunNumber())
    except Exception:
        return 0


def worker_main(conn: Connection, spec: WorkerSpec, log_level: int, python_path: Sequence[str] = ()) -> None:
    """The Mantid engine's worker process: StartLiveData with `spec.engine`'s arguments and copies of the
    accepted scripts, until the supervisor says stop. `python_path`: directories put first on sys.path before
    Mantid is imported (tests: the stand-in)."""
    send = child_setup(conn, log_level)

    def thread_crashed(args: threading.ExceptHookArgs) -> None:  # Mantid's Python threads included
        name = args.thread.name if args.thread is not None else "?"
        log.error("a thread of the Mantid worker crashed: %s", name, exc_info=args.exc_value or True)

    threading.excepthook = thread_crashed
    sys.path[:0] = [p for p in python_path if p not in sys.path]
    send(("ready", os.getpid()))
    messages: queue.SimpleQueue = queue.SimpleQueue()

    def receive() -> None:
        while True:
            try:
                messages.put(conn.recv())
            except (EOFError, OSError):
                messages.put(("gone",))  # the supervisor died: stop Mantid and end
                return

    threading.Thread(target=receive, name="worker-receive", daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="livereduce-mantid-") as workdir:
        try:
            engine = MantidEngine(  # imports Mantid: only in this process, only for this engine
                dict(spec.engine),
                dict(spec.scripts),
                lambda record, state: send(("record", record, state)),
                workdir=workdir,
                log_level=log_level,
            )
        except Exception:
            log.exception("the Mantid engine could not start")
            send(("exiting", {}))
            return
        engine.start()
        gone = False
        while not engine.ended:
            try:
                message = messages.get(timeout=0.1)
            except queue.Empty:
                message = None
            if message is not None:
                if message[0] in ("stop", "gone"):
                    gone = message[0] == "gone"
                    break
                if message[0] == "request":
                    try:
                        engine.request(message[1], message[2])
                    except Exception:
                        log.exception("the Mantid engine failed on request %r", message[1])
            try:
                engine.poll()
            except Exception:  # a bug: this worker ends; the daemon starts another
                log.exception("the Mantid engine's loop failed; ending this worker")
                break
        log.info("stopping Mantid live data")
        engine.stop()
        engine.close()
        if not gone:
            with contextlib.suppress(OSError):
                send(("exiting", asdict(engine.state)))
