"""The fake SMS's pooled synthetic pulses: each replayed pulse is a valid packet with its own time and cycle,
its pixels in range, and the count the server logs is the count the packet holds."""

from __future__ import annotations

import numpy as np

from livereduce.listeners.adara import packets as P
from livereduce.servers.adara_synthetic import PULSE_NS, PooledPacket, SyntheticRuns, packet_parts


def test_pooled_pulses_decode_with_their_own_time_cycle_and_counts():
    runs = SyntheticRuns(np.random.default_rng(3), pixels=100, banks=3, rate=6000, run_seconds=0.5, runs=2)
    events, counts, _ = runs.pool()
    assert 8 <= len(events) <= 64 and len(counts) == len(events)
    starts, pulses, monitors = [], [], 0
    for t, data in runs.stream():
        if isinstance(data, PooledPacket):
            whole = b"".join(packet_parts(data))
            assert whole == bytes(data)
            n, fmt, sec, nsec = P.HEADER.unpack_from(whole)
            assert fmt >> 8 == P.Type.BANKED_EVENT and n == len(whole) - 16
            assert (sec, nsec) == P.epics_from_ns(t)
            pkt = P.BankedEventPkt.decode(whole[16:], fmt & 0xFF)
            banks = [b for s in pkt.sources for b in s.banks if b.bank_id not in P.ERROR_BANKS]
            pixel = np.concatenate([b.pixel for b in banks])
            assert data.events == pixel.size  # what the server adds to "run N: sent M events"
            assert pixel.size == 0 or (pixel.min() >= 0 and pixel.max() < 100)
            assert [b.bank_id for b in banks] == [1, 2, 3]
            assert all(np.all((b.pixel >= 34 * i) & (b.pixel < 34 * (i + 1))) for i, b in enumerate(banks))
            pulses.append((t, pkt.cycle))
        else:
            n, fmt, sec, nsec = P.HEADER.unpack_from(data)
            if fmt >> 8 == P.Type.BEAM_MONITOR_EVENT:
                assert (sec, nsec) == P.epics_from_ns(t)
                assert P.BeamMonitorPkt.decode(data[16:], fmt & 0xFF).cycle == pulses[-1][1]
                monitors += 1
            elif (
                fmt >> 8 == P.Type.RUN_STATUS
                and P.RunStatusPkt.decode(data[16:], 1).status == P.RunStatusCode.NEW_RUN
            ):
                starts.append(len(pulses))
    assert len(pulses) == 60 and monitors == 60 and starts == [0, 30]  # 30 pulses of 1/60 s per run
    for run in (pulses[:30], pulses[30:]):
        t0 = run[0][0]
        assert [(t - t0, c) for t, c in run] == [(i * PULSE_NS, i) for i in range(30)]


def test_iterating_yields_plain_bytes():
    runs = SyntheticRuns(np.random.default_rng(4), pixels=16, banks=2, rate=600, run_seconds=0.1, runs=1)
    assert all(type(data) is bytes for _, data in runs)
