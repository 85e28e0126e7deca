"""AdaraListener over real TCP against a scripted server: events, geometry, logs, monitors, run state machine,
back-pressure, pause, reconnects, garbage. Expected values are worked out by hand from the packets sent."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_adara_parser import mutated_stream

from livereduce.errors import NotYet, ProtocolError
from livereduce.listeners import make_listener
from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.client import AdaraListener
from livereduce.listeners.adara.geometry import DetectorMap, parse_geometry
from livereduce.listeners.adara.parser import Parser
from livereduce.listeners.base import RunStatus, StartFrom

S = 1117010897  # an EPICS second (2025-05-25T08:48:17Z)
UNIX_NS = (S + 631_152_000) * 1_000_000_000  # the same instant in ns since 1970


def u32(*values) -> np.ndarray:
    return np.array(values, np.uint32)


def pk(body, sec: int = S, nsec: int = 0) -> bytes:
    return P.encode(body, sec, nsec)


def events(sec: int, *banks: tuple[int, list[int], list[int]], charge: int = 1000) -> bytes:
    return pk(
        P.BankedEventPkt(
            charge,
            0,
            0,
            0,
            0,
            [P.EventSource(0, 0, 0, True, [P.EventBank(b, u32(*tof), u32(*pix)) for b, tof, pix in banks])],
        ),
        sec,
    )


def status(code: int, run: int = 44635, sec: int = S) -> bytes:
    return pk(P.RunStatusPkt(run, S, code), sec)


class ScriptedSMS:
    """A tiny TCP server: records each client hello, sends connection i its script, then stays open."""

    def __init__(self, scripts: list[list[bytes]]):
        self.scripts, self.hellos, self.conns = scripts, [], []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            hello = b""
            while len(hello) < 20:
                hello += conn.recv(20 - len(hello))
            self.hellos.append(hello)
            i = len(self.conns)
            self.conns.append(conn)
            if i < len(self.scripts):
                conn.sendall(b"".join(self.scripts[i]))

    def send(self, *data: bytes) -> None:
        self.conns[-1].sendall(b"".join(data))

    def drop(self) -> None:
        self.conns[-1].shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.server.close()


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

    def make(address, start=None, **kw):
        kw.setdefault("backoff", (0.05, 0.2))
        made.append(AdaraListener(address, **kw))
        made[-1].start(start or StartFrom("start_of_run"))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def wait_for(cond, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def packets_seen(listener, n):
    wait_for(lambda: listener.state()["packets"] >= n)


GEOMETRY = (
    '<instrument name="SNAPGEOM"><source z="-15.0"/><sample z="0.0"/>'
    '<detectors first_id="1000" count="4" l2="2.0" two_theta_first="30" two_theta_last="120"/>'
    '<detector id="7" l2="3.0" two_theta="90"/><monitor id="1"/></instrument>'
)
DEVICE = (
    "<device><device_name>env</device_name><process_variables>"
    "<process_variable><pv_name>SampleTemp</pv_name><pv_id>1</pv_id><pv_type>double</pv_type>"
    "<pv_units>K</pv_units></process_variable>"
    "<process_variable><pv_name>Mode</pv_name><pv_id>2</pv_id><pv_type>string</pv_type>"
    "</process_variable>"
    "<process_variable><pv_name>Count</pv_name><pv_id>3</pv_id><pv_type>integer</pv_type>"
    "</process_variable>"
    "</process_variables></device>"
)


def test_a_run_end_to_end(sms_factory, listen):
    first = [
        status(1),
        pk(P.BeamlineInfoPkt("BL3", "SNAP", "SNAP")),
        pk(P.GeometryPkt(GEOMETRY)),
        pk(
            P.RunInfoPkt(
                "<runinfo><proposal_id>IPTS-1234</proposal_id><run_title>Si powder</run_title></runinfo>"
            )
        ),
        pk(P.DeviceDescriptorPkt(5, DEVICE)),
        pk(P.VariableDoublePkt(5, 1, value=295.5), S + 1),
        pk(P.VariableStringPkt(5, 2, value="powder"), S + 1),
        pk(P.VariableU32Pkt(5, 3, value=7), S + 1),
        pk(P.VariableU32Pkt(5, 9, value=1), S + 1),  # no such variable: dropped
        events(
            S + 1,
            (1, [146393, 100], [1002, 7]),
            (0xFFFFFFFE, [5], [0x80000000]),
            (2, [1000], [999]),
            charge=1549703,
        ),
        pk(
            P.BeamMonitorPkt(
                1, 0, 0, 0, 0, [P.MonitorSection(1, 0, 0, True, u32((1 << 31) | 1000, (1 << 31) | 2000, 30))]
            ),
            S + 1,
        ),
    ]
    sms = sms_factory(first)
    listener = listen(sms.address)
    packets_seen(listener, len(first))
    chunk = listener.extract()
    assert listener.run_status() == RunStatus.BEGIN_RUN and listener.run_number == 44635
    sp = chunk.spectra
    assert sp.det_ids.tolist() == [7, 1000, 1001, 1002, 1003] and sp.instrument == "SNAP"
    assert sp.l1 == 15.0 and sp.l2.tolist() == [3.0, 2.0, 2.0, 2.0, 2.0]
    np.testing.assert_allclose(np.rad2deg(sp.two_theta), [90, 30, 60, 90, 120])
    ev = chunk.events
    assert ev.index.tolist() == [3, 0]  # pixel 1002 → index 3, pixel 7 → index 0
    np.testing.assert_allclose(ev.tof, np.float32([14639.3, 10.0]))
    assert ev.pulse_time.tolist() == [UNIX_NS + 1_000_000_000] and ev.pulse_start.tolist() == [0]
    run = chunk.run
    assert run["run_number"].value == "44635" and run["experiment_identifier"].value == "IPTS-1234"
    assert run["run_title"].value == "Si powder"
    assert run["run_start"].value == datetime.fromtimestamp(UNIX_NS / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert run["proton_charge"].values.tolist() == [15497030.0]  # 1549703 × 10 pC
    assert run["SampleTemp"].values.tolist() == [295.5] and run["SampleTemp"].unit == "K"
    assert run["Mode"].values.tolist() == ["powder"] and run["Count"].values.tolist() == [7]
    assert run["monitor1_counts"].value == 3
    mon = chunk.monitors
    assert mon.spectra.det_ids.tolist() == [-1] and mon.events.index.tolist() == [0, 0, 0]
    np.testing.assert_allclose(mon.events.tof, [100.0, 200.0, 3.0])
    state = listener.state()
    assert state["unmapped_events_dropped"] == 1 and state["unknown_variable_values"] == 1

    # the rest of the run, END_RUN, and one pulse after it: held back until the END_RUN chunk is out
    tail = [
        pk(P.VariableDoublePkt(5, 1, value=296.0), S + 2),
        events(S + 2, (1, [50], [1000])),
        status(4, sec=S + 3),
    ]
    sms.send(*tail, events(S + 4, (1, [60], [1001])))
    packets_seen(listener, len(first) + len(tail))
    time.sleep(0.1)
    assert len(listener._events) == 1  # the pulse after END_RUN is not consumed yet
    chunk2 = listener.extract()
    assert listener.run_status() == RunStatus.END_RUN
    assert chunk2.events.index.tolist() == [1] and chunk2.spectra.same_layout(sp)
    assert chunk2.run["SampleTemp"].values.tolist() == [295.5, 296.0]  # carried over, then the new value
    assert chunk2.run.hasProperty("run_end") and "monitor1_counts" not in chunk2.run
    wait_for(lambda: len(listener._events) == 1)
    chunk3 = listener.extract()
    assert listener.run_status() == RunStatus.NO_RUN
    assert chunk3.events.index.tolist() == [2] and not chunk3.run.hasProperty("run_number")
    assert chunk3.run["SampleTemp"].values.tolist() == [296.0]


def test_pause_drops_and_counts_events_and_scans_set_scan_index(sms_factory, listen):
    M = P.MarkerType
    script = [
        status(1),
        events(S, (1, [10, 20], [0, 1])),
        pk(P.AnnotationPkt(M.PAUSE), S + 1),
        events(S + 1, (1, [10, 20, 30], [1, 2, 3])),
        pk(P.AnnotationPkt(M.RESUME), S + 2),
        events(S + 2, (1, [40], [3])),
        pk(P.AnnotationPkt(M.SCAN_START, 3), S + 3),
        pk(P.AnnotationPkt(M.SCAN_STOP, 3), S + 4),
    ]
    listener = listen(sms_factory(script).address, pixels=4)
    packets_seen(listener, len(script))
    chunk = listener.extract()
    assert chunk.n_events == 3 and listener.state()["paused_events_dropped"] == 3
    assert chunk.spectra.det_ids.tolist() == [0, 1, 2, 3] and np.isnan(chunk.spectra.l2).all()
    assert chunk.run["pause"].values.tolist() == [0, 1, 0]
    assert chunk.run["scan_index"].values.tolist() == [0, 3, 0]
    assert len(chunk.run["proton_charge"].values) == 2  # the paused pulse is dropped whole


def test_without_geometry_the_highest_pixel_sizes_the_run_and_later_strays_are_dropped(sms_factory, listen):
    stray = 0x7FFFFFF0  # one absurd id must not size the spectra
    sms = sms_factory([status(1), events(S, (1, [10, 20, 30], [5, 2, stray]))])
    listener = listen(sms.address)
    packets_seen(listener, 2)
    chunk = listener.extract()
    assert chunk.spectra.det_ids.tolist() == [0, 1, 2, 3, 4, 5] and chunk.events.index.tolist() == [5, 2]
    sms.send(events(S + 1, (1, [10, 20], [9, 4])))
    packets_seen(listener, 3)
    chunk = listener.extract()
    assert len(chunk.spectra) == 6 and chunk.events.index.tolist() == [4]
    assert listener.state()["unmapped_events_dropped"] == 2


def test_not_yet_until_a_run_status_then_joins_a_run_in_progress_silently(sms_factory, listen):
    sms = sms_factory([pk(P.HeartbeatPkt())])
    listener = listen(sms.address, pixels=2, init_wait=0.1)
    packets_seen(listener, 1)
    with pytest.raises(NotYet, match="not initialised"):
        listener.extract()
    sms.send(status(P.RunStatusCode.STATE, run=7))
    packets_seen(listener, 2)
    chunk = listener.extract()
    assert listener.run_status() == RunStatus.RUNNING and listener.run_number == 7
    assert chunk.run["run_number"].value == "7" and chunk.n_events == 0


def test_client_hello_for_each_start_mode(sms_factory, listen):
    sms = sms_factory()
    when = (S + 631_152_000 + 5) * 1_000_000_000
    for start in (StartFrom("now"), StartFrom("start_of_run"), StartFrom("time", when)):
        listen(sms.address, start)
    wait_for(lambda: len(sms.hellos) == 3)
    got = sorted(struct.unpack("<5I", h) for h in sms.hellos)
    assert all(h[0] == 4 and h[1] == 0x00400600 for h in got)  # v0 hello: 4-byte payload
    assert sorted(h[4] for h in got) == [0, 1, S + 5]


def test_reconnecting_into_the_same_run_skips_what_was_already_received(sms_factory, listen, caplog):
    run = [status(1, run=5), events(S, (1, [10, 20], [0, 1]))]
    sms = sms_factory(run, [*run, events(S + 1, (1, [30], [1]))])
    listener = listen(sms.address, pixels=2)
    packets_seen(listener, 2)
    assert listener.extract().n_events == 2 and listener.run_status() == RunStatus.BEGIN_RUN
    with caplog.at_level(logging.INFO, "livereduce.listener.adara"):
        sms.drop()
        wait_for(lambda: listener.state()["connects"] == 2 and listener.state()["packets"] >= 5)
    assert [h[16:] for h in sms.hellos] == [struct.pack("<I", 1)] * 2  # start of run both times
    assert not listener.data_reset()  # the replay's first pulse was skipped: nothing to reset
    chunk = listener.extract()
    assert chunk.n_events == 1 and listener.run_status() == RunStatus.RUNNING
    times = chunk.run["proton_charge"].times.tolist()  # the last value carried over, then the new pulse's
    assert len(times) == len(set(times)) and times[-1] == UNIX_NS + 1_000_000_000
    assert listener.state()["replayed_pulses_skipped"] == 1
    assert sum("closed by peer" in r.message or "lost" in r.message for r in caplog.records) == 1
    assert sum("connected to" in r.message for r in caplog.records) == 1
    assert sum("replay is skipped" in r.message for r in caplog.records) == 1


def test_reconnecting_into_a_restarted_run_replaces_its_partial_data(sms_factory, listen, caplog):
    # same run number, another run start: the SMS restarted the run, so what we hold is not its data
    restarted = pk(P.RunStatusPkt(5, S + 100, P.RunStatusCode.NEW_RUN), S + 100)
    sms = sms_factory(
        [status(1, run=5), events(S, (1, [10, 20], [0, 1]))],
        [restarted, events(S + 101, (1, [30], [1]))],
    )
    listener = listen(sms.address, pixels=2)
    packets_seen(listener, 2)
    assert listener.extract().n_events == 2
    with caplog.at_level(logging.INFO, "livereduce.listener.adara"):
        sms.drop()
        wait_for(lambda: listener.state()["connects"] == 2 and listener.state()["packets"] >= 4)
    assert listener.data_reset() and not listener.data_reset()
    assert listener.extract().n_events == 1 and listener.state()["replayed_pulses_skipped"] == 0
    assert sum("discarding the partial buffer" in r.message for r in caplog.records) == 1


def test_garbage_over_tcp_drops_and_reconnects_without_dying(listen, caplog):
    rng = np.random.default_rng(5)
    blobs = [
        rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),  # pure noise
        P.encode(P.HeartbeatPkt()) + struct.pack("<4I", 6, 0x400900, 0, 0) + b"x" * 8,  # unaligned
        mutated_stream(rng, 300, 1.0),
    ]
    server = socket.create_server(("127.0.0.1", 0))
    served = []

    def serve():
        server.settimeout(0.1)
        while len(served) < 6:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(20)
                conn.sendall(blobs[len(served) % 3] + struct.pack("<4I", 7, 0x400900, 0, 0))
                served.append(True)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with caplog.at_level(logging.INFO, "livereduce.listener.adara"):
        listener = listen(f"127.0.0.1:{server.getsockname()[1]}")
        wait_for(lambda: len(served) == 6 and listener.state()["drops"] >= 6, timeout=10)
    thread.join(2)
    server.close()
    state = listener.state()
    assert state["connects"] >= 6 and listener._receiver._thread.is_alive()
    # framing errors are resynchronised (counted, logged); the peer closing ends each connection
    assert state["misaligned_packets"] + state["oversize_packets"] >= 2
    assert sum("protocol error" in r.message for r in caplog.records) >= 2
    with pytest.raises(NotYet):
        listener.extract()  # no run status in garbage: still not initialised, still alive


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**63))
def test_mutated_packets_into_the_listener_only_raise_protocol_errors(seed):
    listener = AdaraListener(pixels=8)
    rng = np.random.default_rng(seed)
    stream = b"".join(
        [status(1), pk(P.GeometryPkt(GEOMETRY)), pk(P.DeviceDescriptorPkt(5, DEVICE))]
    ) + mutated_stream(rng, 300, 0.15)
    parser = Parser()
    parser.feed(stream)
    try:
        for packet in parser:
            try:
                listener._dispatch(packet)
            except ProtocolError:
                pass
            if listener._hold is not None:  # a run boundary: extract, as the session would
                listener.extract()
    except ProtocolError:
        pass
    assert listener._initialised.is_set()


@pytest.mark.parametrize("det_ids", [[100, 101, 102, 103], [7, 1000, 1001, 1002], [-3, 5, 2_000_000_000, 9]])
def test_detector_map_modes_give_the_same_answers(det_ids):
    # offset (contiguous ids), lookup table (dense) and sorted search (negative or huge ids)
    mapping = DetectorMap(np.array(det_ids))
    words = [det_ids[2], det_ids[0] % 2**32, 99, 0, det_ids[3], 0xFFFFFFFF, det_ids[1]]  # as pixel words
    index = mapping(np.array(words, dtype=np.uint32))
    expected = [2, 0, None, None, 3, None, 1]
    if det_ids[0] < 0:
        expected[1] = None  # the word 2**32 - 3 is not detector -3
    assert [int(i) if i < mapping.size else None for i in index] == expected


def test_geometry_subset_and_real_idf_fallback():
    g = parse_geometry(GEOMETRY)
    assert g.name == "SNAPGEOM" and g.l1 == 15.0 and g.monitors == (1,)
    assert g.det_ids.tolist() == [7, 1000, 1001, 1002, 1003]
    idf = (
        '<?xml version="1.0"?><instrument xmlns="http://www.mantidproject.org/IDF/1.0" name="CNCS">'
        '<component type="bank1" idlist="bank1"><location/></component></instrument>'
    )
    real = parse_geometry(idf)
    assert real.name == "CNCS" and real.det_ids.size == 0
    with pytest.raises(ValueError, match="geometry XML"):
        parse_geometry("<instrument")


def test_registered_with_mantid_alias_default_port_and_unknown_options():
    listener = make_listener("SNSLiveEventDataListener", "", pixels=3, BufferThreshold=5)
    assert isinstance(listener, AdaraListener) and listener.address == "127.0.0.1:31415"
    assert listener.state()["connected"] is False
    with pytest.raises(NotYet):
        AdaraListener("127.0.0.1:1", init_wait=0).extract()
