#!/usr/bin/env python3
"""Bytes per buffered event (issue #12: ≤ 8 B in the listener and with preserve_events), beside the ADARA wire
format's 8 B per event (the baseline: what arrives). Resident memory, measured as this process's RSS growth
(psutil), so capacity reserved but never written does not count and spare capacity that was written does:

  listener    the listener's EventBuffer (max_buffered_events at its default) holding N events that came in
              pulses of 10^5
  kept        an EventWorkspace accumulation (preserve_events) of N events that came in chunks of 10^7, as the
              session appends them (workspace_from_chunk, then Add), once the chunks are gone: index and
              float32 TOF per event, pulses run-length (pulse_start: 8 B per pulse, here per 10^5 events)
    columns   the same accumulation's filled rows by nbytes (index, x, pulses, pulse table): what RSS
              shows beyond it is allocator and page overhead (also in the listener line)
  peak        the largest RSS growth over the kept path (buffer filled, swapped, made a workspace, added)

    python benchmarks/bench_buffer_bytes.py [--events 50000000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from bench_post_proc import PeakRSS

from livereduce.accumulate import Method, accumulate
from livereduce.chunks import workspace_from_chunk
from livereduce.listeners.base import Chunk, EventBuffer
from livereduce.workspace.spectra import Spectra

TARGET = 8.0
WIRE = 8.0  # ADARA: uint32 TOF + uint32 pixel


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=float, default=5e7)
    a, _ = ap.parse_known_args()
    n, pulse, chunk = int(a.events), 100_000, 10_000_000
    rng = np.random.default_rng(0)
    index = rng.integers(0, 100_000, pulse, dtype=np.uint32)
    tof = rng.uniform(1000.0, 16000.0, pulse).astype(np.float32)
    spectra = Spectra.one_to_one(np.arange(100_000))

    rss = psutil.Process().memory_info
    start = rss().rss
    buffer = EventBuffer()  # the daemon's default bound
    for k in range(n // pulse):
        buffer.add_pulse(1_700_000_000_000_000_000 + k, index, tof)
    listener_bytes = (rss().rss - start) / n
    del buffer

    start = rss().rss
    with PeakRSS() as m:
        acc, t = None, 0
        while t < n:
            buffer = EventBuffer()
            for _ in range(min(chunk, n - t) // pulse):
                buffer.add_pulse(1_700_000_000_000_000_000 + t, index, tof)
                t += pulse
            ws = workspace_from_chunk(Chunk(spectra=spectra, events=buffer.swap()))
            del buffer
            acc = ws if acc is None else accumulate(acc, ws, Method.ADD)
            del ws
        kept_bytes = (rss().rss - start) / n
    ev = acc.events
    runs = ev.pulse_start
    columns = [ev.index, ev.x_native, ev.pulse if runs is None else runs, ev.pulse_times, ev.weights, ev.err2]
    column_bytes = sum(c.nbytes for c in columns if c is not None) / n  # the rows alone, no spare capacity
    peak = (m.peak - start) / n

    print(f"\nbytes per buffered event ({n:.0e} events; the wire: {WIRE:.0f} B)")
    print(f"{'where':<12} {'B/event':>8} {'× wire':>7}")
    rows = (
        ("listener", listener_bytes),
        ("kept", kept_bytes),
        ("  columns", column_bytes),
        ("peak (RSS)", peak),
    )
    for name, b in rows:
        print(f"{name:<12} {b:8.2f} {b / WIRE:7.2f}")
    worst = max(listener_bytes, kept_bytes)
    print(
        f"target: ≤ {TARGET:.0f} B per buffered event (listener and preserve_events): listener "
        f"{listener_bytes:.2f}, kept {kept_bytes:.2f} {'(met)' if worst <= TARGET else 'BELOW'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
