#!/usr/bin/env python3
"""Handing a chunk from the supervisor to its worker process: how long the supervisor's GIL is held, i.e. how
long the listener's receive thread can be starved while a chunk crosses the pipe.

Baseline in the same run: a plain `Connection.send` (pickle in band: one big copy with the GIL held). Measured:
livereduce.worker.send_out_of_band (pickle protocol 5, arrays written by os.write with the GIL released), and
the same with the events in a shared segment (livereduce.shared_events: only their place crosses the pipe).
A ticker thread sleeping 1 ms records the largest gap it sees; the target is a gap under 50 ms (issue #12).
Each round trip ends when the child has read every index (so a mapping's page faults are counted).
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
from multiprocessing import reduction

import numpy as np

from livereduce.listeners.base import ChunkEvents
from livereduce.shared_events import SharedEventMaps, SharedEventPool
from livereduce.worker import SharedSender, receive_out_of_band, send_out_of_band

TARGET_GAP_MS = 50.0


def child(conn) -> None:
    maps = SharedEventMaps()
    while True:
        message = conn.recv()
        if message is None:
            return
        if message[0] == "shm_fd":
            maps.add(message[1], reduction.recv_handle(conn), message[2])
            continue
        if message[0] == "oob":
            events = receive_out_of_band(conn, message[1], maps)
        else:
            events = message[1]
        total = int(events.index.sum())
        del events  # the mapping is returned, as a worker's is after its cycle
        conn.send((total, maps.take_returned()))


def gap_while(fn) -> tuple[float, float]:
    """(seconds fn took, the largest gap in ms a 1 ms ticker saw meanwhile)."""
    gaps: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.02)
    t0 = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t0
    time.sleep(0.02)
    stop.set()
    thread.join()
    return elapsed, 1e3 * max(gaps)


def main() -> int:
    ctx = multiprocessing.get_context("forkserver")
    parent, worker_end = ctx.Pipe()
    proc = ctx.Process(target=child, args=(worker_end,))
    proc.start()
    rng = np.random.default_rng(1)
    pool = SharedEventPool(max_segments=2)
    sender = SharedSender(pool, worker=1, pid=proc.pid)
    print(
        f"{'events':>10} {'pickle s':>9} {'gap ms':>7} {'out-of-band s':>14} {'gap ms':>7} "
        f"{'shared s':>9} {'gap ms':>7} {'shared ÷ pickle s':>17}"
    )
    missed = []
    sizes = (10**6, 10**7, 5 * 10**7)
    for n in sizes:
        index, tof = pool.columns(max(sizes))  # as a listener's: sized to its bound, filled to n
        index, tof = index[:n], tof[:n]
        index[:] = rng.integers(0, 10**5, n, dtype=np.uint32)
        tof[:] = rng.random(n, dtype=np.float32)
        pulses = (np.arange(n // 10_000, dtype=np.int64), np.arange(0, n, 10_000, dtype=np.int64))
        shared = ChunkEvents(index, tof, *pulses)
        events = ChunkEvents(index.copy(), tof.copy(), *pulses)  # private memory
        rows: dict[str, list] = {"pickle": [], "oob": [], "shared": []}
        for _ in range(3):  # interleaved rounds: the machine is noisy
            rows["pickle"].append(gap_while(lambda e=events: (parent.send(("pickle", e)), parent.recv())))
            rows["oob"].append(
                gap_while(lambda e=events: (send_out_of_band(parent, "oob", e), parent.recv()))
            )
            rows["shared"].append(
                gap_while(
                    lambda e=shared: (
                        send_out_of_band(parent, "oob", e, sender),
                        pool.returned(parent.recv()[1], worker=1),
                    )
                )
            )
        (p_s, p_gap), (o_s, o_gap), (s_s, s_gap) = (
            tuple(statistics.median(v) for v in zip(*rows[k], strict=True))
            for k in ("pickle", "oob", "shared")
        )
        print(
            f"{n:>10.0e} {p_s:>9.3f} {p_gap:>7.1f} {o_s:>14.3f} {o_gap:>7.1f} {s_s:>9.3f} {s_gap:>7.1f} "
            f"{s_s / p_s:>17.2f}"
        )
        for name, gap in (("out of band", o_gap), ("shared", s_gap)):
            if gap > TARGET_GAP_MS:
                missed.append(
                    f"target: receive-thread stall ≤ {TARGET_GAP_MS:g} ms at {n:.0e} events ({name}): "
                    f"BELOW ({gap:.0f} ms)"
                )
        del shared, index, tof
    parent.send(None)
    proc.join()
    for line in missed:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
