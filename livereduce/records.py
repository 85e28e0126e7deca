"""Records the session emits at each step, and the dispatcher that hands them to subscribers.

The session does not call the log, the status page or systemd; it emits, and they subscribe (bluesky's
documents → callbacks). A failing subscriber is logged and skipped: it must never stop data reduction.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Record:
    kind: RecordKind
    cycle: int
    data: dict = field(default_factory=dict)
    time: float = field(default_factory=time.time)


Subscriber = Callable[[Record], None]


class Dispatcher:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def emit(self, kind: RecordKind, cycle: int, **data) -> None:
        record = Record(kind, cycle, data)
        for fn in list(self._subscribers):
            try:
                fn(record)
            except Exception:
                log.exception("subscriber %r failed on %s record; continuing", fn, kind)
