"""Memory guard: this process's RSS against `limit_perc` % of the machine's RAM (the anchor's rule).

Above the soft threshold (a fraction of the limit) it asks once for the accumulation to be compressed; above
the limit it asks for a restart. It only posts requests (callbacks, given rss, soft and hard limits in MB);
the daemon decides. After a hard
request it waits for `restarted()` or for RSS to fall before asking again.
"""

from __future__ import annotations

import logging
import threading

import psutil

from livereduce import shared_events
from livereduce.config import SOFT_MEMORY_FRACTION

log = logging.getLogger("livereduce.memory")


def rss_mb(process: psutil.Process) -> float:
    """The daemon's RSS with its children's, in MB: the session's worker process holds the accumulation.

    Shared memory (the events both the listener and the worker map: livereduce.shared_events) is in both
    processes' RSS; it is counted once, from the segments themselves."""
    total = 0
    try:
        children = process.children(recursive=True)
    except psutil.Error:
        children = []
    for proc in (process, *children):
        try:
            total += proc.memory_info().rss - _shmem_bytes(proc.pid)
        except psutil.Error:  # a child that just exited
            continue
    return (total + shared_events.resident_bytes()) / 1e6


def _shmem_bytes(pid: int) -> int:
    """A process's resident shared memory (RssShmem in /proc/<pid>/status); 0 where that is not known."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"RssShmem:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def limits_mb(limit_perc: float, soft_fraction: float = SOFT_MEMORY_FRACTION) -> tuple[float, float]:
    """(soft, hard) limits in MB for `limit_perc` % of the machine's RAM."""
    hard = psutil.virtual_memory().total * float(limit_perc) / 100 / 1e6
    return soft_fraction * hard, hard


class MemoryGuard:
    def __init__(
        self,
        limit_perc: float,
        interval_s: float,
        on_soft,
        on_hard,
        soft_fraction: float = SOFT_MEMORY_FRACTION,
    ):
        self.limit_mb = limits_mb(limit_perc, soft_fraction)[1]
        self.interval, self.soft_fraction = float(interval_s), soft_fraction
        self.on_soft, self.on_hard = on_soft, on_hard
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._soft_sent = self._hard_sent = False
        self._thread = threading.Thread(target=self._run, name="memory-guard", daemon=True)

    def rss_mb(self) -> float:
        return rss_mb(self._process)

    def check(self) -> None:
        rss = self.rss_mb()
        if rss > self.limit_mb:
            if not self._hard_sent:
                self._hard_sent = True
                self.on_hard(rss, self.soft_fraction * self.limit_mb, self.limit_mb)
        elif rss > self.soft_fraction * self.limit_mb:
            if not self._soft_sent:
                self._soft_sent = True
                self.on_soft(rss, self.soft_fraction * self.limit_mb, self.limit_mb)
        else:
            self._soft_sent = self._hard_sent = False

    def restarted(self) -> None:
        """The daemon acted on a hard request: the guard may ask again if memory is still too high."""
        self._hard_sent = self._soft_sent = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:
                log.exception("memory check failed")
