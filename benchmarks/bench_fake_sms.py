#!/usr/bin/env python3
"""How fast the fake SMS makes synthetic events (issue #12: ≥ 100 M events/s, so a benchmark of the daemon
measures the daemon), beside a memcpy of the same bytes.

Per rate (events/s, 10^5 pixels in 32 banks), medians of interleaved rounds, each over one second of pulses:
  fresh    what the generator did before the pool: Poisson draws, sort and encode per pulse (`_events`)
  pooled   the generator now: a pool entry per pulse with time and cycle patched, zero-copy (`stream()`)
  bytes    the same as plain bytes (iterating SyntheticRuns: one copy of each packet)
  memcpy   np.copyto of the same number of bytes into a preallocated buffer (the baseline)
Then the whole FakeSMS at unlimited speed sending a run over loopback TCP to a reader thread (recv_into a
reused buffer), counted from the SMS's own per-run total. Pool build time is shown separately: it is paid once
per SyntheticRuns. Missed targets are reported, not failures.

    python benchmarks/bench_fake_sms.py [--rounds 5] [--tcp-seconds 4]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livereduce.listeners.adara import packets as P
from livereduce.servers.adara import FakeSMS
from livereduce.servers.adara_synthetic import PULSE_NS, SyntheticRuns, frame

TARGET = 100e6
PIXELS, BANKS = 100_000, 32


def runs(rate: float, **kw) -> SyntheticRuns:
    return SyntheticRuns(np.random.default_rng(1), pixels=PIXELS, banks=BANKS, rate=rate, **kw)


def rates(rate: float, rounds: int) -> tuple[dict[str, float], float]:
    """Median M events/s of fresh / pooled / bytes generation and memcpy over one second of pulses each."""
    pulses = 60
    t0 = time.time_ns()
    fresh_src = runs(rate)
    t = time.perf_counter()
    pooled_src = runs(rate, run_seconds=pulses / 60, runs=1, gap_seconds=0)
    pooled_src.pool()
    build = time.perf_counter() - t
    pool = pooled_src.pool()[0]
    events = sum(c for parts in pool for _, c in parts) * pulses / len(pool)  # mean per pulse, for memcpy
    nbytes = int(events * 8)
    src, dst = np.ones(nbytes, np.uint8), np.zeros(nbytes, np.uint8)

    def fresh() -> int:
        n = 0
        for i in range(pulses):
            t = t0 + i * PULSE_NS
            pkt = fresh_src._events(i)
            frame(pkt, t), frame(fresh_src._monitor(i), t)
            n += pkt.total_events
        return n

    def pooled() -> int:
        return sum(d.events for _, d in pooled_src.stream() if not isinstance(d, bytes))

    def as_bytes() -> int:
        return sum(len(d) for _, d in pooled_src) // 8  # ~events: headers are a few bytes per pulse

    def memcpy() -> int:
        np.copyto(dst, src)
        return int(events)

    fns = {"fresh": fresh, "pooled": pooled, "bytes": as_bytes, "memcpy": memcpy}
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            n = fn()
            out[name].append(n / (time.perf_counter() - t) / 1e6)
    return {k: statistics.median(v) for k, v in out.items()}, build


def tcp_rate(rate: float, seconds: float) -> float:
    """M events/s the FakeSMS sends at unlimited speed to one client reading into a reused buffer."""
    sms = FakeSMS(
        port=0, pixels=PIXELS, banks=BANKS, rate=rate, run_seconds=seconds, runs=1, gap_seconds=0,
        speed="unlimited", wait_for_client=True, monitor_rate=100.0, seed=1,
    )  # fmt: skip
    port = sms.start()
    buf = bytearray(1 << 22)
    first, last = [0.0], [0.0]
    try:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(P.encode(P.ClientHelloPkt(0), 0, 0, version=0))
            conn.settimeout(1.0)
            while True:
                try:
                    n = conn.recv_into(buf)
                except TimeoutError:
                    if sms.done.is_set():
                        break
                    continue
                if not n:
                    break
                last[0] = time.perf_counter()
                first[0] = first[0] or last[0]
        return sms.sent_events_per_run[1] / (last[0] - first[0]) / 1e6
    finally:
        sms.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tcp-seconds", type=float, default=4.0, help="seconds of run sent over TCP (0: skip)")
    a = ap.parse_args(argv)
    threading.current_thread().name = "bench"
    print(
        f"{'rate ev/s':>10} {'pool build s':>12} {'fresh M/s':>10} {'pooled M/s':>11} {'bytes M/s':>10} "
        f"{'memcpy M/s':>11} {'pooled/memcpy':>13} {'bytes/memcpy':>12} {'pooled/fresh':>12}"
    )
    worst = float("inf")
    for rate in (1e6, 1e7, 5e7):
        med, build = rates(rate, a.rounds)
        worst = min(worst, med["bytes"] * 1e6)
        print(
            f"{rate:>10.0e} {build:>12.2f} {med['fresh']:>10.0f} {med['pooled']:>11.0f} {med['bytes']:>10.0f} "
            f"{med['memcpy']:>11.0f} {med['pooled'] / med['memcpy']:>13.2f} {med['bytes'] / med['memcpy']:>12.2f} "
            f"{med['pooled'] / med['fresh']:>12.1f}"
        )
    if a.tcp_seconds:
        for rate in (1e7, 5e7, 1e8):  # 10^8: 1.7 M events a pulse, more than one packet holds (split)
            got = tcp_rate(rate, a.tcp_seconds)
            worst = min(worst, got * 1e6)
            print(
                f"FakeSMS → loopback TCP client, {rate:.0e} ev/s run at unlimited speed: {got:.0f} M events/s"
            )
    verdict = "meets" if worst >= TARGET else "BELOW"
    print(
        f"slowest synthetic source: {worst / 1e6:.0f} M events/s — {verdict} the {TARGET / 1e6:.0f} M events/s target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
