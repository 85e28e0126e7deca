"""ADARA listener hardening, over real TCP against a scripted SMS: an oversize header is resynchronised (no
data skipped), poison packets are dropped and counted (the connection stays), a reconnect's replay neither
doubles nor loses events, small XML cannot cost seconds or gigabytes, and the fuzzer finds nothing unexpected.

Expected totals are what the scripted server sent; waits poll under deadlines."""

from __future__ import annotations

import logging
import struct
import time
import tracemalloc

import pytest
from test_adara_listener import DEVICE, S, ScriptedSMS, events, pk, status, wait_for

from livereduce.errors import NotYet
from livereduce.listeners.adara import fuzz
from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.client import AdaraListener
from livereduce.listeners.base import RunStatus, StartFrom

C = P.RunStatusCode
PIXELS = 16
GOOD_GEOMETRY = (
    f'<instrument name="T"><source z="-10"/><sample z="0"/><detectors first_id="0" count="{PIXELS}" l2="2" '
    'two_theta_first="10" two_theta_last="170"/><monitor id="1"/></instrument>'
)


@pytest.fixture
def sms_factory():
    made = []

    def make(*scripts):
        made.append(ScriptedSMS(list(scripts)))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def listen():
    made = []

    def make(address, **kw):
        kw.setdefault("backoff", (0.05, 0.2))
        made.append(AdaraListener(address, pixels=PIXELS, init_wait=0.05, **kw))
        made[-1].start(StartFrom("start_of_run"))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def pulse(run: int, i: int) -> tuple[bytes, int]:
    """Pulse i of a run: 1 + i % 5 events on pixels < PIXELS (every one mapped); (bytes, event count)."""
    n = 1 + i % 5
    tofs = [100 * (k + 1) for k in range(n)]
    pixels = [(run + i + k) % PIXELS for k in range(n)]
    return events(S + 10 * run + i, (1, tofs, pixels), charge=run * 1000 + i), n


def whole_run(run: int, pulses: int, *, end: bool = True) -> tuple[list[bytes], int]:
    """A run's packets (NEW_RUN, pulses, END_RUN) and its event total."""
    out, total = [status(C.NEW_RUN, run=run, sec=S + 10 * run)], 0
    for i in range(pulses):
        data, n = pulse(run, i)
        out.append(data)
        total += n
    if end:
        out.append(status(C.END_RUN, run=run, sec=S + 10 * run + pulses))
    return out, total


def collect(listener, until_ended: set[int], timeout: float = 10.0) -> tuple[dict[int, int], list]:
    """Extract as the session would until every run in `until_ended` has reported END_RUN: events per run, and
    the (status, run number) edges seen."""
    per_run: dict[int, int] = {}
    edges, ended = [], set()
    deadline = time.monotonic() + timeout
    while not until_ended <= ended:
        assert time.monotonic() < deadline, f"timed out: ended {ended}, events {per_run}"
        try:
            chunk = listener.extract()
        except NotYet:
            continue
        st = listener.run_status()
        run = int(chunk.run["run_number"].value) if chunk.run.hasProperty("run_number") else 0
        if chunk.n_events:
            assert run, "events outside a run"
            per_run[run] = per_run.get(run, 0) + chunk.n_events
        if st in (RunStatus.BEGIN_RUN, RunStatus.END_RUN):
            edges.append((st, run))
        if st == RunStatus.END_RUN:
            ended.add(run)
        else:
            time.sleep(0.01)  # a poll interval, not a wait for something: the loop has its deadline
    return per_run, edges


def test_an_oversize_header_between_runs_is_resynchronised_and_loses_no_event(sms_factory, listen, caplog):
    run1, sent1 = whole_run(1, 30)
    run2, sent2 = whole_run(2, 40)
    run3, sent3 = whole_run(3, 25)
    oversize = struct.pack("<4I", 0xFFFFFFFC, int(P.Type.BANKED_EVENT) << 8 | 1, S + 15, 0)  # claims 4 GiB
    sms = sms_factory([*run1, oversize, *run2, *run3])
    with caplog.at_level(logging.INFO, "livereduce.listener.adara"):
        listener = listen(sms.address)
        per_run, edges = collect(listener, {1, 2, 3})
    assert per_run == {1: sent1, 2: sent2, 3: sent3}
    assert [e for e, _ in edges].count(RunStatus.END_RUN) == 3
    state = listener.state()
    assert state["oversize_packets"] == 1 and state["resyncs"] == 1 and state["resync_bytes_skipped"] == 16
    assert state["connects"] == 1 and state["drops"] == 0 and state["connected"]
    logged = [r.message for r in caplog.records if "over the" in r.message]
    assert len(logged) == 1 and "4294967292-byte payload" in logged[0] and "resynchronising" in logged[0]


def test_an_oversize_header_inside_a_run_costs_only_its_own_bytes(sms_factory, listen):
    packets, sent = whole_run(4, 50)
    oversize = struct.pack("<4I", 0xFFFFFFFC, int(P.Type.GEOMETRY) << 8, S + 41, 0)
    sms = sms_factory([*packets[:20], oversize, *packets[20:]])
    listener = listen(sms.address)
    per_run, _ = collect(listener, {4})
    assert per_run == {4: sent} and listener.state()["oversize_packets"] == 1
    assert listener.state()["connects"] == 1


def test_a_misaligned_header_inside_a_run_is_resynchronised_not_a_reconnect(sms_factory, listen):
    packets, sent = whole_run(9, 30)
    misaligned = struct.pack("<4I", 6, int(P.Type.HEARTBEAT) << 8, S + 91, 0) + b"\xff" * 8
    sms = sms_factory([*packets[:10], misaligned, *packets[10:]])
    listener = listen(sms.address)
    per_run, _ = collect(listener, {9})
    state = listener.state()
    assert per_run == {9: sent} and state["misaligned_packets"] == 1 and state["resyncs"] == 1
    assert state["connects"] == 1 and state["resync_bytes_skipped"] == 24


def test_poison_packets_inside_a_run_are_dropped_and_counted_and_the_connection_stays(
    sms_factory, listen, caplog
):
    packets, sent = whole_run(5, 40)
    bad_walk = bytearray(pulse(5, 99)[0])
    struct.pack_into("<I", bad_walk, 16 + 16 + 12, 1000)  # the first source claims 1000 banks: a decode error
    poison = [
        pk(P.VariableStringPkt(5, 1, value="warm"), S + 51),  # SampleTemp is a double
        pk(P.VariableU32ArrayPkt(5, 3, value=[1, 2]), S + 51),  # Count is an integer
        pk(P.DeviceDescriptorPkt(6, '<?xml version="1.0" encoding="bogus"?><device/>'), S + 51),
        pk(P.DeviceDescriptorPkt(7, "<device"), S + 51),
        pk(P.GeometryPkt('<instrument><detectors first_id="0" count="99999999"/></instrument>'), S + 51),
        bytes(bad_walk),
    ]
    script = [
        *packets[:2],
        pk(P.GeometryPkt(GOOD_GEOMETRY)),
        pk(P.DeviceDescriptorPkt(5, DEVICE), S + 50),
        *packets[2:20],
        *poison,
        pk(P.VariableDoublePkt(5, 1, value=300.0), S + 52),
        *packets[20:],
    ]
    sms = sms_factory(script)
    with caplog.at_level(logging.WARNING, "livereduce.listener.adara"):
        listener = listen(sms.address)
        per_run, _ = collect(listener, {5})
    assert per_run == {5: sent}
    state = listener.state()
    assert state["connects"] == 1 and state["drops"] == 0 and state["handler_errors"] == 0
    assert state["bad_packets"] == {
        "VAR_VALUE_STRING": 1,
        "VAR_VALUE_U32_ARRAY": 1,
        "DEVICE_DESC": 2,
        "GEOMETRY": 1,
        "BANKED_EVENT": 1,
    }
    bad_lines = [r.message for r in caplog.records if "dropped a bad" in r.message]
    assert len(bad_lines) == 5  # one line per type per minute: the second DEVICE_DESC is counted, not logged
    assert any("disagrees with the descriptor" in m for m in bad_lines)
    assert any("unknown encoding" in m for m in bad_lines)


def test_a_dropped_connection_mid_run_then_the_replay_neither_doubles_nor_loses(sms_factory, listen):
    packets, sent = whole_run(6, 60)  # NEW_RUN, pulses 0..59, END_RUN
    half_pulse = packets[26][:40]  # the connection breaks inside pulse 25
    sms = sms_factory(packets[:11], packets)  # connection 2: the SMS replays the run from its start
    listener = listen(sms.address)
    wait_for(lambda: listener.state()["packets"] >= 11)
    first = listener.extract()  # pulses 0..9 handed out
    assert listener.run_status() == RunStatus.BEGIN_RUN and first.n_events == sum(
        1 + i % 5 for i in range(10)
    )
    sms.send(*packets[11:26], half_pulse)  # pulses 10..24 buffered, not extracted
    wait_for(lambda: listener.state()["packets"] >= 26)
    sms.drop()
    per_run, edges = collect(listener, {6})
    per_run[6] += first.n_events
    assert per_run == {6: sent}
    assert not listener.data_reset() and edges == [(RunStatus.END_RUN, 6)]
    state = listener.state()
    assert state["connects"] == 2 and state["replayed_pulses_skipped"] == 25


def test_a_replay_of_a_run_that_already_ended_here_is_skipped_whole(sms_factory, listen):
    run7, sent7 = whole_run(7, 20)
    run8, sent8 = whole_run(8, 15)
    sms = sms_factory(run7, [*run7, *run8])
    listener = listen(sms.address)
    per_run, _ = collect(listener, {7})
    sms.drop()
    more, more_edges = collect(listener, {8})
    assert per_run == {7: sent7} and more == {8: sent8}
    assert more_edges == [(RunStatus.BEGIN_RUN, 8), (RunStatus.END_RUN, 8)]  # no second BEGIN/END of run 7
    assert listener.state()["replayed_pulses_skipped"] == 20


@pytest.mark.parametrize(
    "xml",
    [
        '<instrument name="X"><detectors first_id="0" count="16777216" l2="2" two_theta_first="1" '
        'two_theta_last="9"/><detectors first_id="-2147483648" count="16777216"/></instrument>',
        '<instrument name="X"><detectors first_id="262144" count="262144" l2="2" two_theta_first="1" '
        'two_theta_last="9"/><detectors first_id="0" count="262144" l2="2"/></instrument>',  # at the bound
        '<!DOCTYPE i [<!ENTITY a "aaaaaaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><i>&b;</i>',
    ],
    ids=["millions-of-pixels", "at-the-bound", "entities"],
)
def test_a_small_geometry_packet_costs_under_half_a_second_and_50_mb(xml):
    assert len(xml) <= 217
    listener = AdaraListener(pixels=4)
    packet = P.Packet(int(P.Type.GEOMETRY), 0, S, 0, P.GeometryPkt(xml).payload(0))
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        listener._dispatch(packet)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 0.5 and peak < 50e6, (seconds, peak)
    assert listener.state()["handler_errors"] == 0


def test_xml_over_its_packet_bound_is_refused_before_parsing():
    listener = AdaraListener(pixels=4)
    big = "<runinfo>" + "x" * (P.max_payload(P.Type.RUN_INFO) + 1) + "</runinfo>"
    listener._dispatch(P.Packet(int(P.Type.RUN_INFO), 0, S, 0, P.RunInfoPkt(big).payload(0)))
    assert listener.state()["bad_packets"] == {"RUN_INFO": 1}
    assert "bound" in listener.state()["last_bad_packet"]


def test_every_type_has_a_documented_bound():
    for t in P.Type:
        bound, reason = P.PAYLOAD_BOUNDS[t]
        assert 0 < bound <= P.GENERIC_MAX_PAYLOAD and reason
    assert P.max_payload(0x7777) == P.GENERIC_MAX_PAYLOAD


def test_fuzz_ci_sized_run_finds_nothing_unexpected(capsys):
    t0 = time.perf_counter()
    assert fuzz.main(["--cases", "20000", "--seed", "1"]) == 0
    assert time.perf_counter() - t0 < 15
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("20000 cases, ") and ", 0 unexpected" in line
    n, protocol, bad = (int(x.split()[0]) for x in line.split(", ")[:3])
    assert n == 20000 and protocol > 1000 and bad > 1000  # the mutator does reach both counted paths


def test_the_fuzzer_would_see_an_unexpected_exception(monkeypatch):
    def broken(cls, payload, version):
        raise IndexError("a decoder bug")

    monkeypatch.setattr(P.AnnotationPkt, "decode", classmethod(broken))
    result = fuzz.run(2000, seed=2)
    assert result.unexpected > 0 and "IndexError" in result.examples[0]
