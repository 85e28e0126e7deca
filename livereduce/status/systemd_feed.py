"""What systemd is told, decided from the records (docs/status.md, "systemd").

- READY=1 once the DAS is connected, or after `ready_grace` seconds with a WARNING and a STATUS saying so
  (`systemctl start` must not hang on a DAS that is down).
- WATCHDOG=1 every `watchdog_every` seconds (half of $WATCHDOG_USEC) while the daemon shows progress: a cycle
  completed, the session waits on the DAS, or the daemon waits for its scripts. A cycle stuck for longer than
  max(3 × update_every, watchdog.threshold) stops the pings, and systemd acts.
- STATUS: `running`/`idle: run R, C cycles, E events, K script errors`, `waiting on the DAS: …`, `waiting for
  scripts: …`, `stuck: …` — when it changes, and at least every `every` seconds.

The notifier is injected (livereduce.systemd in the daemon, a recorder in tests); this module sends nothing
itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from livereduce.records import Record, RecordKind
from livereduce.status.model import StatusModel

log = logging.getLogger("livereduce.daemon")


class SystemdFeed:
    def __init__(
        self,
        notifier,
        status: StatusModel,
        *,
        update_every: float,
        threshold: float,
        ready_grace: float,
        watchdog_every: float | None,
        clock: Callable[[], float],
        every: float = 5.0,
    ):
        self.notifier, self.status, self.clock = notifier, status, clock
        self.stuck_after = max(3 * update_every, threshold)
        self.ready_grace, self.watchdog_every, self.every = ready_grace, watchdog_every, every
        self.ready = False
        self.started_at = self.progress_at = clock()
        self.last: Record | None = None  # the last cycle or wait on the DAS
        self._pinged_at = -float("inf")
        self._status_text, self._status_at = "", -float("inf")

    def note(self, record: Record) -> None:
        """A record subscriber: a cycle that completed, or a wait on the DAS, shows the worker is not stuck."""
        if record.kind in (RecordKind.CYCLE, RecordKind.WAITING):
            self.last, self.progress_at = record, self.clock()

    def worker_started(self) -> None:
        self.progress_at = self.clock()

    def health(self, now: float, scripts_waiting: str | None, worker_busy: float | None) -> tuple[bool, str]:
        """(whether to feed systemd's watchdog, what STATUS says). `worker_busy`: seconds the worker has spent
        on its current step, None when no worker runs."""
        if scripts_waiting is not None:
            return True, f"waiting for scripts: {scripts_waiting}"
        if worker_busy is None:
            return True, "starting"
        quiet = max(now - self.progress_at, worker_busy)
        if quiet > self.stuck_after:
            return False, f"stuck: no cycle completed for {quiet:.0f} s (the watchdog is no longer fed)"
        record = self.last
        if record is None:
            return True, "starting: waiting for the first cycle"
        if record.kind is RecordKind.WAITING:
            return True, f"waiting on the DAS: {record.data.reason}"
        d = record.data
        errors = self.status.script_errors()
        idle = d.run_status in ("NO_RUN", "END_RUN") and not d.events
        return True, (
            f"{'idle' if idle else 'running'}: run {d.run_number}, {record.cycle} cycles, "
            f"{d.events_accumulated} events, {errors} script errors"
        )

    def feed(
        self,
        now: float,
        scripts_waiting: str | None,
        worker_busy: float | None,
        connected: Callable[[], bool],
    ) -> None:
        """One tick of the daemon's main loop: READY when due, WATCHDOG when due and healthy, STATUS."""
        healthy, text = self.health(now, scripts_waiting, worker_busy)
        if not self.ready:
            is_connected = connected()
            if is_connected or now - self.started_at >= self.ready_grace:
                self.ready = True
                self.notifier.ready()
                if not is_connected:
                    text = f"{text} (the DAS was not reachable within {self.ready_grace:.0f} s)"
                    log.warning("telling systemd the service is ready although %s", text)
        if self.watchdog_every and healthy and now - self._pinged_at >= self.watchdog_every:
            self._pinged_at = now
            self.notifier.watchdog()
        if text != self._status_text or now - self._status_at >= self.every:
            self._status_text, self._status_at = text, now
            self.notifier.status(text)
