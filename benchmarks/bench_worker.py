#!/usr/bin/env python3
"""What running the session in a worker process costs per cycle (docs/reliability.md): the same cycles of the
same chunks, in a worker process (chunks pickled over a pipe) and in a thread of this process (the baseline).

Each cycle takes one chunk of N events from an in-process fake listener and accumulates it (Add, events kept,
no scripts), so the difference is the transport. Prints the median seconds per cycle and the ratio.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livereduce.listeners.base import StartFrom
from livereduce.listeners.fake import FakeEventListener
from livereduce.records import RecordKind
from livereduce.worker import ProcessWorker, ThreadWorker, WorkerSpec

CYCLES = 30


def per_cycle(kind, events: int) -> float:
    listener = FakeEventListener(events_per_extract=events, nspectra=1000, seed=1)
    listener.start(StartFrom())
    times: list[float] = []
    last = [0.0]

    def emit(record):
        if record.kind is RecordKind.CYCLE:
            now = time.perf_counter()
            if last[0]:
                times.append(now - last[0])
            last[0] = now

    spec = WorkerSpec(scripts={}, session=dict(update_every=0.0001), cumulative=False, state_dir=None)
    worker = kind(spec, listener, emit)
    worker.start()
    deadline = time.monotonic() + 120
    while len(times) < CYCLES and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop(10)
    return statistics.median(times)


def main() -> int:
    print(f"{'events/chunk':>13} {'thread s/cycle':>15} {'process s/cycle':>16} {'ratio':>6}")
    for events in (10_000, 1_000_000):
        base = per_cycle(ThreadWorker, events)
        proc = per_cycle(ProcessWorker, events)
        print(f"{events:>13,} {base:>15.4f} {proc:>16.4f} {proc / base:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
