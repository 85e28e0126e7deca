"""Records the session (and the supervisor) emit, and the dispatcher that hands them to subscribers.

The session does not call the log, the status page or systemd; it emits, and they subscribe (bluesky's
documents → callbacks). A failing subscriber is logged and skipped: it must never stop data reduction.

Each kind has one payload dataclass (`PAYLOADS`): emitting a field a payload does not have, or leaving one
out, is a TypeError at the emitting line, not a KeyError in a subscriber hours later. Records cross the
worker's pipe pickled, so payloads hold plain values only.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("livereduce.records")


class RecordKind(enum.StrEnum):
    STARTED = "started"
    WAITING = "waiting"  # the listener is not ready (NotYet)
    CHUNK = "chunk"
    PROC_DONE = "proc_done"
    ACCUMULATED = "accumulated"
    POST_PROC_DONE = "post_proc_done"
    SCRIPT_ERROR = "script_error"
    EVENTS_DROPPED = "events_dropped"
    CYCLE = "cycle"  # a summary at the end of each cycle
    RUN_TRANSITION = "run_transition"
    RESET = "reset"
    STOPPED = "stopped"
    PLOT = "plot"  # a small copy of the output workspace, for the live page
    LISTENER = "listener"  # the supervisor's listener: connection and loss counters


@dataclass(frozen=True)
class Started:
    accumulation: str
    output: str


@dataclass(frozen=True)
class Waiting:
    reason: str


@dataclass(frozen=True)
class ChunkTaken:
    events: int
    run_status: str
    run_number: int


@dataclass(frozen=True)
class ScriptDone:
    seconds: float
    script: str  # the script's path


@dataclass(frozen=True)
class Accumulated:
    method: str
    events: int
    bytes: int


@dataclass(frozen=True)
class ScriptFailed:
    script: str  # "proc" or "post_proc"
    file: str | None
    line: int | None
    message: str
    traceback: str | None = None


@dataclass(frozen=True)
class EventsDropped:
    events: int
    reason: str


@dataclass(frozen=True)
class CycleSummary:
    run_number: int
    run_status: str
    events: int  # in this cycle's chunk
    events_in_run: int
    events_accumulated: int
    events_outside_bins: int
    events_carried: int
    proc_seconds: float | None
    post_proc_seconds: float | None
    accumulation_bytes: int
    cycle_seconds: float | None
    event_rate: float = 0.0  # events/s between this chunk's extract and the previous one
    events_dropped: int = 0  # by this session, since it started


@dataclass(frozen=True)
class RunTransition:
    run_number: int
    behaviour: str


@dataclass(frozen=True)
class Reset:
    reason: str


@dataclass(frozen=True)
class Stopped:
    pass


@dataclass(frozen=True)
class Curve:
    """One spectrum, downsampled: x are bin centres (or points), y the values."""

    label: str
    x: list[float | None]  # None: not finite (JSON has no NaN)
    y: list[float | None]


@dataclass(frozen=True)
class PlotData:
    """What the live page draws of one workspace: a few spectra and, for many spectra, counts per spectrum as
    an image (row-major, `image_shape` rows × columns, NaN padding the last row)."""

    workspace: str
    run_number: int
    x_label: str
    y_label: str
    n_spectra: int
    curves: list[Curve]
    image: list[float | None] | None = None
    image_shape: tuple[int, int] | None = None


@dataclass(frozen=True)
class ListenerState:
    connected: bool
    address: str
    counters: dict[
        str, int | float
    ]  # bytes, reconnects, bad packets, unmapped pixels, …: as the listener has
    last_error: str = ""


PAYLOADS: dict[RecordKind, type] = {
    RecordKind.STARTED: Started,
    RecordKind.WAITING: Waiting,
    RecordKind.CHUNK: ChunkTaken,
    RecordKind.PROC_DONE: ScriptDone,
    RecordKind.ACCUMULATED: Accumulated,
    RecordKind.POST_PROC_DONE: ScriptDone,
    RecordKind.SCRIPT_ERROR: ScriptFailed,
    RecordKind.EVENTS_DROPPED: EventsDropped,
    RecordKind.CYCLE: CycleSummary,
    RecordKind.RUN_TRANSITION: RunTransition,
    RecordKind.RESET: Reset,
    RecordKind.STOPPED: Stopped,
    RecordKind.PLOT: PlotData,
    RecordKind.LISTENER: ListenerState,
}


@dataclass(frozen=True)
class Record:
    kind: RecordKind
    cycle: int
    data: Any  # the kind's payload (PAYLOADS[kind])
    time: float = field(default_factory=time.time)


def make_record(kind: RecordKind, cycle: int, **fields) -> Record:
    return Record(kind, cycle, PAYLOADS[kind](**fields))


Subscriber = Callable[[Record], None]


class Dispatcher:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def emit(self, kind: RecordKind, cycle: int, **fields) -> None:
        self.publish(make_record(kind, cycle, **fields))

    def publish(self, record: Record) -> None:
        for fn in list(self._subscribers):
            try:
                fn(record)
            except Exception:
                log.exception("subscriber %r failed on %s record; continuing", fn, record.kind)
