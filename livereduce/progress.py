"""The operator's view in the log: one progress line per cycle, quiet streams and script errors said once.

A subscriber to the session's records (livereduce.records); the session itself does not write these lines.
- `cycle` records become one INFO line, at most one per `update_every` (and per second): cycle, run, events in
  the chunk and in the run, events outside the bins, proc / post_proc milliseconds, accumulation size.
- A stream that sends no events says so in that line (`no events for 75 s`), and a session that keeps
  waiting for its DAS says so every `quiet_after` seconds.
- Events falling outside the bins (Rebin's range, Mantid's rule: they are not counted) are warned about once
  per run when they exceed `outside_warn_fraction` of the run's events.
- A script error logs its traceback once; the same error again logs one line with a repeat count, until the
  error changes or the script succeeds again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from livereduce.records import CycleSummary, Record


@dataclass
class _ErrorStreak:
    key: tuple  # (file, line, message) of the error being repeated
    count: int = 1  # times in a row this same error
    failed_cycles: int = 1  # times in a row the script failed, whatever the error


class ProgressLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        update_every: float,
        quiet_after: float = 60.0,
        outside_warn_fraction: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.log = logger
        self.min_interval = max(float(update_every), 1.0) * 0.9  # cycles are update_every apart, ± jitter
        self.quiet_after = quiet_after
        self.outside_warn_fraction = outside_warn_fraction
        self.clock = clock
        self._last_line = -float("inf")
        self._last_events = clock()  # last time a chunk held events (or the session started)
        self._waiting_since: float | None = None
        self._waiting_said = 0.0
        self._outside_warned_run: int | None = None
        self._errors: dict[str, _ErrorStreak] = {}  # script kind → the error it keeps raising

    def __call__(self, record: Record) -> None:
        handler = getattr(self, f"_on_{record.kind}", None)
        if handler is not None:
            handler(record)

    # -- cycles -----------------------------------------------------------------------------------
    def _on_cycle(self, record: Record) -> None:
        d, now = record.data, self.clock()
        self._waiting_since = None
        if d.events:
            self._last_events = now
        self._warn_outside(d)
        if now - self._last_line < self.min_interval:
            return
        self._last_line = now
        run = f"run {d.run_number}" if d.run_status != "NO_RUN" else "no run"
        parts = [
            f"cycle {record.cycle}: {run} ({d.run_status})",
            f"chunk {d.events:,} events",
            f"run {d.events_in_run:,} events",
            f"accumulated {d.events_accumulated:,}",
            f"outside bins {d.events_outside_bins:,}",
        ]
        if d.events_carried:
            parts.append(f"carried {d.events_carried:,}")
        parts.append(f"proc {_ms(d.proc_seconds)}, post_proc {_ms(d.post_proc_seconds)}")
        parts.append(f"accumulation {d.accumulation_bytes / 1e6:.1f} MB")
        quiet = now - self._last_events
        if quiet >= self.quiet_after:
            parts.append(f"no events for {quiet:.0f} s")
        self.log.info(", ".join(parts))

    def _warn_outside(self, d: CycleSummary) -> None:
        outside, total = d.events_outside_bins, d.events_in_run
        if not outside or not total or outside < self.outside_warn_fraction * total:
            return
        if self._outside_warned_run == d.run_number:
            return
        self._outside_warned_run = d.run_number
        self.log.warning(
            "%s of %s events of run %d (%.0f %%) fell outside the bins they were histogrammed into "
            "and are not counted (Mantid's rule); widen Rebin's Params to keep them",
            f"{outside:,}",
            f"{total:,}",
            d.run_number,
            100.0 * outside / total,
        )

    def _on_waiting(self, record: Record) -> None:
        now = self.clock()
        if self._waiting_since is None:
            self._waiting_since = self._waiting_said = now
            return  # the session says "waiting for data" itself, once
        if now - self._waiting_said >= self.quiet_after:
            self._waiting_said = now
            self.log.info(
                "still waiting for data after %.0f s: %s",
                now - self._waiting_since,
                record.data.reason,
            )

    # -- script errors ----------------------------------------------------------------------------
    def _on_script_error(self, record: Record) -> None:
        d = record.data
        key = (d.file, d.line, d.message)
        streak = self._errors.get(d.script)
        if streak is not None and streak.key == key:
            streak.count += 1
            streak.failed_cycles += 1
            self.log.error(
                "script error in cycle %d (the same as before, %d times in a row): %s",
                record.cycle,
                streak.count,
                d.message,
            )
            return
        self._errors[d.script] = _ErrorStreak(key, failed_cycles=streak.failed_cycles + 1 if streak else 1)
        self.log.error(
            "script error in cycle %d: %s\n%s",
            record.cycle,
            d.message,
            (d.traceback or "").rstrip(),
        )

    def _script_ok(self, record: Record, script: str) -> None:
        streak = self._errors.pop(script, None)
        if streak is not None:
            self.log.info(
                "%s script runs again after %d failed cycle%s",
                script,
                streak.failed_cycles,
                "" if streak.failed_cycles == 1 else "s",
            )

    def _on_proc_done(self, record: Record) -> None:
        self._script_ok(record, "proc")

    def _on_post_proc_done(self, record: Record) -> None:
        self._script_ok(record, "post_proc")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.0f} ms"
