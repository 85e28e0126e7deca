"""The status model: what the daemon is doing, built only from records and the daemon's own facts.

A record subscriber in the supervisor. The HTTP server, the metrics, `livereduce status` and systemd STATUS
read `snapshot()`; none of them reaches into the session or the worker. Records arrive on the worker-serving
thread and the daemon's main loop; snapshots are read on the HTTP server's thread: one lock guards the state.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import psutil

from livereduce import __version__
from livereduce.memory import rss_mb
from livereduce.records import PlotData, Record

RATE_HISTORY = 720  # (time, events/s) points kept for the page's rate plot: an hour at 5 s cycles
LOG_LINES = 50


class LogTail(logging.Handler):
    """The last LOG_LINES formatted log lines, for the live page."""

    def __init__(self, lines: int = LOG_LINES):
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a log line that cannot be formatted must not break logging
            self.handleError(record)


class StatusModel:
    def __init__(
        self,
        *,
        instrument: str,
        engine: str,
        listener: str,
        address: str,
        memory_limits_mb: tuple[float, float] | None = None,  # (soft, hard)
        log_tail: LogTail | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._lock = threading.Lock()
        self._clock = clock
        self._started = clock()
        self._memory_limits = memory_limits_mb
        self.log_tail = log_tail or LogTail()
        self._listeners: list[Callable[[], None]] = []
        self._process = psutil.Process()
        self._s: dict[str, Any] = {
            "instrument": instrument,
            "engine": engine,
            "engine_reason": None,  # why this engine runs (engine: auto decides; livereduce.cli._engine)
            "version": __version__,
            "listener": {"kind": listener, "address": address, "connected": False, "counters": {}},
            "phase": "starting",
            "waiting_reason": None,
            "cycle": 0,
            "run": {"number": 0, "state": "NO_RUN"},
            "events": {
                "last_chunk": 0,
                "run": 0,
                "accumulated": 0,
                "outside_bins": 0,
                "carried": 0,
                "rate_per_s": 0.0,
                "received_total": 0,
                "dropped_total": 0,
            },
            "timing_ms": {"proc": None, "post_proc": None, "cycle": None},
            "accumulation_bytes": 0,
            "last_cycle_time": None,
            "last_error": None,
            "errors_total": {"proc": 0, "post_proc": 0},
            "failing": [],  # scripts whose latest run failed
            "scripts": [],
            "restarts": [],  # the last 20: time and why
            "restarts_total": 0,
            "runs_ended": 0,
        }
        self._rates: collections.deque[tuple[float, float]] = collections.deque(maxlen=RATE_HISTORY)
        self._plot: PlotData | None = None
        self.plot_version = 0

    # -- the daemon's facts ---------------------------------------------------------------------------
    def set_scripts(self, scripts: list[dict]) -> None:
        with self._lock:
            self._s["scripts"] = list(scripts)
        self._changed()

    def set_engine(self, engine: str, reason: str) -> None:
        with self._lock:
            self._s["engine"], self._s["engine_reason"] = engine, reason
        self._changed()

    def set_phase(self, phase: str, reason: str | None = None) -> None:
        with self._lock:
            self._s["phase"], self._s["waiting_reason"] = phase, reason
        self._changed()

    def restarted(self, why: str) -> None:
        with self._lock:
            self._s["restarts"].append({"time": self._clock(), "why": why})
            self._s["restarts_total"] += 1
            del self._s["restarts"][:-20]  # the last 20 are enough to see a pattern
        self._changed()

    def on_change(self, fn: Callable[[], None]) -> Callable[[], None]:
        """`fn` is called (on the thread that changed the model) after each change; returns an unsubscribe."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn)

    def _changed(self) -> None:
        for fn in list(self._listeners):
            fn()

    # -- records ----------------------------------------------------------------------------------
    def __call__(self, record: Record) -> None:
        handler = getattr(self, f"_on_{record.kind}", None)
        if handler is None:
            return
        with self._lock:
            handler(record)
        self._changed()

    def _on_cycle(self, record: Record) -> None:
        d, s = record.data, self._s
        s["phase"], s["waiting_reason"] = "running", None
        s["cycle"] = record.cycle
        s["run"] = {"number": d.run_number, "state": d.run_status}
        ev = s["events"]
        ev.update(
            last_chunk=d.events,
            run=d.events_in_run,
            accumulated=d.events_accumulated,
            outside_bins=d.events_outside_bins,
            carried=d.events_carried,
            rate_per_s=d.event_rate,
        )
        ev["received_total"] += d.events
        s["timing_ms"] = {
            "proc": _ms(d.proc_seconds),
            "post_proc": _ms(d.post_proc_seconds),
            "cycle": _ms(d.cycle_seconds),
        }
        s["accumulation_bytes"] = d.accumulation_bytes
        s["last_cycle_time"] = record.time
        if record.cycle > 1:  # a session's first chunk has no rate of its own
            self._rates.append((record.time, d.event_rate))

    def _on_waiting(self, record: Record) -> None:
        self._s["phase"], self._s["waiting_reason"] = "waiting for data", record.data.reason

    def _on_script_error(self, record: Record) -> None:
        d, s = record.data, self._s
        last = s["last_error"]
        same = last is not None and (last["script"], last["file"], last["line"], last["message"]) == (
            d.script,
            d.file,
            d.line,
            d.message,
        )
        s["last_error"] = {
            "script": d.script,
            "file": d.file,
            "line": d.line,
            "message": d.message,
            "time": record.time,
            "cycle": record.cycle,
            "repeat": last["repeat"] + 1 if same else 1,
        }
        s["errors_total"][d.script] = s["errors_total"].get(d.script, 0) + 1
        if d.script not in s["failing"]:
            s["failing"].append(d.script)

    def _script_ok(self, script: str) -> None:
        if script in self._s["failing"]:
            self._s["failing"].remove(script)

    def _on_proc_done(self, record: Record) -> None:
        self._script_ok("proc")

    def _on_post_proc_done(self, record: Record) -> None:
        self._script_ok("post_proc")

    def _on_events_dropped(self, record: Record) -> None:
        self._s["events"]["dropped_total"] += record.data.events

    def _on_run_transition(self, record: Record) -> None:
        self._s["runs_ended"] += 1

    def _on_plot(self, record: Record) -> None:
        self._plot = record.data
        self.plot_version += 1

    def _on_listener(self, record: Record) -> None:
        d = record.data
        self._s["listener"].update(
            connected=d.connected, address=d.address, counters=dict(d.counters), last_error=d.last_error
        )

    # -- readers ----------------------------------------------------------------------------------
    def snapshot(self, memory: bool = True) -> dict:
        """The status as plain JSON-able values (a copy: the caller may keep it). `memory`: measure the daemon's
        and its worker's RSS (a few system calls; the daemon's own frequent reads leave it out)."""
        with self._lock:
            out = _copy(self._s)
            out["plot_version"] = self.plot_version
            out["plot_workspace"] = self._plot.workspace if self._plot is not None else None
        # the listener's drops when its buffer was full are events lost too (the session never saw them)
        out["events"]["dropped_total"] += int(
            out["listener"]["counters"].get("events_dropped_buffer_full", 0)
        )
        now = self._clock()
        out["time"] = now
        out["uptime_s"] = now - self._started
        if memory:
            out["memory"] = self._memory()
        return out

    def script_errors(self) -> int:
        """Script errors since the daemon started (systemd's STATUS reads it every tick: no snapshot copy)."""
        with self._lock:
            return sum(self._s["errors_total"].values())

    def listener_connected(self) -> bool:
        with self._lock:
            return bool(self._s["listener"]["connected"])

    def rates(self) -> list[tuple[float, float]]:
        with self._lock:
            return list(self._rates)

    def plot(self, workspace: str | None = None) -> dict | None:
        with self._lock:
            plot = self._plot
        if plot is None or (workspace is not None and workspace != plot.workspace):
            return None
        return asdict(plot)

    def _memory(self) -> dict:
        soft, hard = self._memory_limits or (None, None)
        return {"rss_mb": rss_mb(self._process), "soft_limit_mb": soft, "hard_limit_mb": hard}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
