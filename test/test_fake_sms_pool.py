"""The fake SMS's pooled synthetic pulses: each replayed pulse is a valid packet with its own time and cycle,
its pixels in range, and the count the server logs is the count the packet holds."""

from __future__ import annotations

import time

import numpy as np

from livereduce.errors import NotYet
from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.client import AdaraListener
from livereduce.listeners.base import RunStatus, StartFrom
from livereduce.servers.adara import FakeSMS
from livereduce.servers.adara_synthetic import PULSE_NS, PooledPacket, SyntheticRuns, packet_parts


def test_pooled_pulses_decode_with_their_own_time_cycle_and_counts():
    runs = SyntheticRuns(np.random.default_rng(3), pixels=100, banks=3, rate=6000, run_seconds=0.5, runs=2)
    events, monitors = runs.pool()
    assert 8 <= len(events) <= 64 and len(monitors) == len(events)
    assert all(len(parts) == 1 for parts in events)  # 100 events a pulse: one packet each
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


def test_a_pulse_larger_than_a_packet_is_split_and_every_event_sent_once():
    runs = SyntheticRuns(
        np.random.default_rng(5), pixels=1000, banks=3, rate=60 * 500, run_seconds=0.1, runs=1
    )
    runs.max_payload = 32 + 8 + 8 * 100  # pulse words, source header, a bank header and 100 events
    events, _ = runs.pool()
    for parts in events:
        assert len(parts) >= 5  # ~500 events (and 3 bank headers) in at most 100 per packet
        pixels = []
        for packet, count in parts:
            assert len(packet) - 16 <= runs.max_payload
            pkt = P.BankedEventPkt.decode(packet[16:], 1)
            banks = [b for s in pkt.sources for b in s.banks if b.bank_id not in P.ERROR_BANKS]
            assert count == sum(b.pixel.size for b in banks)
            pixels += [(b.bank_id, p) for b in banks for p in b.pixel.tolist()]
        # in order and whole: bank ids ascend, pixels sorted, each bank's pixels in its third of 0..999
        assert pixels == sorted(pixels) and all(334 * (bank - 1) <= p < 334 * bank for bank, p in pixels)
    pulses = {}
    for t, data in runs.stream():
        if isinstance(data, PooledPacket):
            pulses.setdefault(t, []).append(data.events)
    assert len(pulses) == 6 and all(len(v) >= 5 for v in pulses.values())  # 0.1 s: 6 pulses, all split


def test_the_listener_takes_in_every_event_of_split_pulses(monkeypatch):
    monkeypatch.setattr(SyntheticRuns, "max_payload", 32 + 8 + 8 * 100)
    sms = FakeSMS(
        port=0, runs=1, run_seconds=0.5, rate=60 * 450, speed="unlimited", wait_for_client=True, seed=6
    )
    listener = None
    try:
        port = sms.start()
        listener = AdaraListener(f"127.0.0.1:{port}")
        listener.start(StartFrom("start_of_run"))
        got, deadline = 0, time.monotonic() + 20
        while True:  # until the chunk that ends the run
            assert time.monotonic() < deadline, f"got {got} events of {sms.sent_events_per_run}"
            try:
                got += listener.extract().n_events
            except NotYet:
                time.sleep(0.02)
                continue
            if listener.run_status() == RunStatus.END_RUN:
                break
        assert got == sms.sent_events_per_run[1] > 30 * 400
    finally:
        if listener is not None:
            listener.close()
        sms.stop()
