"""The fake SMS and the ADARA listener together over real TCP: runs back to back, restarts, joining mid-run,
replays of .adara captures and NeXus event files, and the command line (Ctrl-C)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from livereduce.errors import NotYet
from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.client import AdaraListener
from livereduce.listeners.base import RunStatus, StartFrom
from livereduce.servers.adara import FakeSMS, main

REPO = Path(__file__).resolve().parents[1]
S = 1117010897


@pytest.fixture
def cleanup():
    things = []
    yield things.append
    for thing in reversed(things):
        (thing.close if isinstance(thing, AdaraListener) else thing.stop)()


def drain(listener, until, timeout: float = 15.0) -> list[tuple]:
    """Extract until `until(records)`; records are (status, run_number or None, chunk)."""
    records, end = [], time.monotonic() + timeout
    while not records or not until(records):
        seen = [(r[0].name, r[1], r[2].n_events) for r in records]
        assert time.monotonic() < end, f"timed out after {seen}"
        try:
            chunk = listener.extract()
        except NotYet:
            time.sleep(0.02)
            continue
        run = chunk.run["run_number"].value if chunk.run.hasProperty("run_number") else None
        records.append((listener.run_status(), run, chunk))
        time.sleep(0.02)
    return records


def ended(*runs):
    return lambda records: {str(n) for n in runs} <= {r[1] for r in records if r[0] == RunStatus.END_RUN}


def test_three_runs_back_to_back_every_event_accounted_for(cleanup, caplog):
    sms = FakeSMS(
        port=0,
        runs=3,
        run_seconds=0.5,
        gap_seconds=0.2,
        speed="unlimited",
        wait_for_client=True,
        rate=30_000,
        pause_at=0.1,
        pause_for=0.1,
        proposal="IPTS-4242",
        title="Si <111> & co",
        seed=1,
    )
    cleanup(sms)
    with caplog.at_level(logging.INFO, "livereduce.sms"):
        port = sms.start()
        listener = AdaraListener(f"127.0.0.1:{port}")
        cleanup(listener)
        listener.start(StartFrom("start_of_run"))
        records = drain(listener, ended(1, 2, 3))
    edges = [(r[0], r[1]) for r in records if r[0] in (RunStatus.BEGIN_RUN, RunStatus.END_RUN)]
    assert edges == [(e, str(n)) for n in (1, 2, 3) for e in (RunStatus.BEGIN_RUN, RunStatus.END_RUN)]
    for n in (1, 2, 3):
        chunks = [c for _, run, c in records if run == str(n)]
        assert sum(c.n_events for c in chunks) == sms.sent_events_per_run[n] - sms.paused_events_per_run[n]
        assert all(c.spectra.same_layout(chunks[0].spectra) for c in chunks)
        assert all(c.run["experiment_identifier"].value == "IPTS-4242" for c in chunks)
        assert all(c.run["run_title"].value == f"Si <111> & co {n}" for c in chunks)
        assert all(c.run.hasProperty("SampleTemp") for c in chunks)
    assert all(sms.paused_events_per_run[n] > 0 for n in (1, 2, 3))
    assert listener.state()["paused_events_dropped"] == sum(sms.paused_events_per_run.values())
    assert len(records[0][2].spectra) == 1024 and records[0][2].spectra.l1 == 10.0
    lines = [r.message for r in caplog.records if r.name == "livereduce.sms" and ": sent " in r.message]
    assert lines == [f"run {n}: sent {sms.sent_events_per_run[n]} events" for n in (1, 2, 3)]


def test_listener_reconnects_when_the_server_is_stopped_and_restarted(cleanup, caplog):
    first = FakeSMS(port=0, run_seconds=30, rate=6000, seed=2)
    cleanup(first)
    port = first.start()
    with caplog.at_level(logging.INFO, "livereduce.listener.adara"):
        listener = AdaraListener(f"127.0.0.1:{port}", backoff=(0.05, 0.2))
        cleanup(listener)
        listener.start(StartFrom("start_of_run"))
        drain(listener, lambda recs: sum(r[2].n_events for r in recs) > 0)
        first.stop()
        deadline = time.monotonic() + 10  # refused while nobody listens
        while not listener.state()["last_error"].startswith("connect") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert listener.state()["last_error"].startswith("connect")
        second = FakeSMS(
            port=port,
            first_run=10,
            runs=1,
            run_seconds=0.3,
            speed="unlimited",
            wait_for_client=True,
            rate=6000,
            seed=3,
        )
        cleanup(second)
        second.start()
        records = drain(listener, ended(10))
    assert sum(c.n_events for _, run, c in records if run == "10") == second.sent_events_per_run[10]
    # the new SMS first says "no run": run 1, cut off by the restart, is reported ended, then run 10 runs
    assert [(s.name, r) for s, r, _ in records if s != RunStatus.RUNNING and r] == [
        ("END_RUN", "1"),
        ("BEGIN_RUN", "10"),
        ("END_RUN", "10"),
    ]
    messages = [r.message for r in caplog.records]
    assert sum("connected to" in m for m in messages) == 2
    assert sum("closed by peer" in m for m in messages) == 1
    assert any("cannot connect" in m for m in messages)


def test_a_client_joining_now_gets_the_state_of_the_run_in_progress(cleanup):
    sms = FakeSMS(port=0, run_seconds=30, rate=3000, seed=4, proposal="IPTS-7")
    cleanup(sms)
    port = sms.start()
    deadline = time.monotonic() + 5
    while not sms.sent_events_per_run.get(1):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    listener = AdaraListener(f"127.0.0.1:{port}")
    cleanup(listener)
    listener.start(StartFrom("now"))
    ((status, run, chunk),) = drain(listener, lambda recs: True)
    assert status == RunStatus.RUNNING and run == "1" and listener.run_number == 1
    assert chunk.run["experiment_identifier"].value == "IPTS-7" and chunk.run.hasProperty("SampleName")
    assert len(chunk.spectra) == 1024 and chunk.spectra.instrument == "FAKE"


def test_a_client_asking_from_a_time_gets_the_run_without_older_events(cleanup):
    sms = FakeSMS(port=0, run_seconds=30, rate=6000, seed=5)
    cleanup(sms)
    port = sms.start()
    deadline = time.monotonic() + 10  # more than a second of run 1 is history
    while not (sms._history_times and sms._history_times[-1] - sms._history_times[0] > 1_200_000_000):
        assert time.monotonic() < deadline, "the fake SMS published no second of run 1"
        time.sleep(0.02)
    since_s = time.time_ns() // 10**9  # whole seconds: the hello's resolution
    listener = AdaraListener(f"127.0.0.1:{port}")
    cleanup(listener)
    listener.start(StartFrom("time", since_s * 10**9))
    records = drain(listener, lambda recs: sum(r[2].n_events for r in recs) > 0)
    first = next(c for *_, c in records if c.n_events)
    assert records[0][0] == RunStatus.BEGIN_RUN and records[0][1] == "1"  # the run's NEW_RUN is replayed
    assert first.events.pulse_time[0] >= since_s * 10**9  # older pulses are not
    assert first.run["experiment_identifier"].value == "IPTS-0000"


def capture(path: Path, run: int, counts: list[int]) -> int:
    """A hand-built .adara capture: one run on 4 pixels, pulses 1/60 s apart; returns its event count."""
    geometry = '<instrument name="CAP"><detectors first_id="0" count="4"/></instrument>'
    data = [
        P.encode(P.RunStatusPkt(run, S, P.RunStatusCode.NEW_RUN), S, 0),
        P.encode(P.GeometryPkt(geometry), S, 0),
        P.encode(P.OpaquePkt(0x4555, b"future type!"), S, 0),
    ]
    for k, n in enumerate(counts):
        nsec = k * 16_666_667
        bank = P.EventBank(1, np.full(n, 1000 + k, np.uint32), np.arange(n, dtype=np.uint32) % 4)
        data.append(
            P.encode(
                P.BankedEventPkt(10, 0, k, 0, 0, [P.EventSource(0, 0, 0, True, [bank])]),
                S + nsec // 10**9,
                nsec % 10**9,
            )
        )
    data.append(P.encode(P.RunStatusPkt(run, S, P.RunStatusCode.END_RUN), S + 1, 0))
    path.write_bytes(b"".join(data))
    return sum(counts)


@pytest.mark.parametrize("speed", ["unlimited", "original"])
def test_replaying_an_adara_capture(cleanup, tmp_path, speed):
    counts = [3, 0, 5, 2] * 8  # 32 pulses over 0.52 s of stream time
    total = capture(tmp_path / "run.adara", 77, counts)
    sms = FakeSMS(port=0, replay=tmp_path / "run.adara", speed=speed, wait_for_client=True)
    cleanup(sms)
    listener = AdaraListener(f"127.0.0.1:{sms.start()}")
    cleanup(listener)
    listener.start(StartFrom("start_of_run"))
    t0 = time.monotonic()
    records = drain(listener, ended(77))
    assert sms.done.wait(5)
    elapsed = time.monotonic() - t0
    assert sum(c.n_events for *_, c in records) == total == sms.sent_events_per_run[77] == 80
    assert sum(c.events.pulse_time.size for *_, c in records) == len(counts)
    if speed == "original":
        assert elapsed > 0.9  # END_RUN is stamped 1 s after NEW_RUN
    assert listener.state()["discarded_unknown"] == 1  # the unknown type went through and was skipped


def test_replaying_a_nexus_event_file(cleanup, tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "EXP_321.nxs.h5"
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["run_number"], entry["title"], entry["experiment_identifier"] = "321", "a title", "IPTS-9"
        entry.create_group("instrument")["name"] = "NXINST"
        for name, ids, tofs, index in (
            ("bank1_events", [0, 5, 2], [1234.5, 100.0, 16000.0], [0, 2, 2]),
            ("bank2_events", [3, 4], [50.0, 60.0], [0, 1, 2]),
        ):
            g = entry.create_group(name)
            g.attrs["NX_class"] = "NXevent_data"
            g["event_id"] = np.array(ids, np.uint32)
            g["event_time_offset"] = np.array(tofs, np.float32)
            g["event_time_offset"].attrs["units"] = "microsecond"
            g["event_index"] = np.array(index, np.uint64)
            g["event_time_zero"] = np.array([0.0, 1 / 60, 2 / 60])
            g["event_time_zero"].attrs.update(units="second", offset="2024-05-01T12:00:00+00:00")
    sms = FakeSMS(port=0, replay=path, speed="unlimited", wait_for_client=True)
    cleanup(sms)
    listener = AdaraListener(f"127.0.0.1:{sms.start()}")
    cleanup(listener)
    listener.start(StartFrom("start_of_run"))
    records = drain(listener, ended(321))
    chunks = [c for *_, c in records if c.n_events]
    assert len(chunks) == 1
    ev, chunk = chunks[0].events, chunks[0]
    # pulse 0: bank1 ids 0, 5 then bank2 id 3; pulse 1: bank2 id 4; pulse 2: bank1 id 2
    assert chunk.spectra.det_ids.tolist() == [0, 1, 2, 3, 4, 5]
    assert ev.index.tolist() == [0, 5, 3, 4, 2] and ev.pulse_start.tolist() == [0, 3, 4]
    np.testing.assert_allclose(ev.tof, [1234.5, 100.0, 50.0, 60.0, 16000.0])
    t0 = 1714564800 * 10**9  # 2024-05-01T12:00:00Z
    assert (ev.pulse_time - t0).tolist() == [0, 16_666_667, 33_333_333]
    assert chunk.run["experiment_identifier"].value == "IPTS-9" and chunk.spectra.instrument == "NXINST"


def test_stop_ends_every_thread_and_frees_the_port():
    sms = FakeSMS(port=0, run_seconds=30, rate=1000)
    port = sms.start()
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(P.encode(P.ClientHelloPkt(0), version=0))
        assert client.recv(16)  # the run status of the joining state
        sms.stop()
        assert not any(t.is_alive() for t in sms._threads)
        client.settimeout(2)
        assert client.recv(1 << 20) is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_client_without_a_hello_is_served_from_now(cleanup):
    sms = FakeSMS(port=0, hello_timeout=0.2, runs=1, run_seconds=30)
    cleanup(sms)
    port = sms.start()
    address = ("127.0.0.1", port)
    with socket.create_connection(address) as quiet, socket.create_connection(address) as rude:
        rude.sendall(P.encode(P.HeartbeatPkt()))  # not a hello: treated as "now" at once
        for client in (quiet, rude):
            client.settimeout(5)
            head = client.recv(16, socket.MSG_WAITALL)
            n, fmt, _, _ = P.HEADER.unpack(head)
            assert fmt >> 8 == P.Type.RUN_STATUS  # the joining state comes first
            body = P.RunStatusPkt.decode(client.recv(n, socket.MSG_WAITALL), fmt & 0xFF)
            assert body.status in (P.RunStatusCode.STATE, P.RunStatusCode.NO_RUN)


def test_command_line_runs_and_stops_on_ctrl_c():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livereduce.servers.adara",
            "--port",
            "0",
            "--runs",
            "1",
            "--run-seconds",
            "0.2",
            "--speed",
            "unlimited",
            "--rate",
            "600",
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        lines = []
        while not any(": sent " in line for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert any("listening on 127.0.0.1:" in line for line in lines)
    assert any(
        line.rstrip().endswith("run 1: sent " + line.rsplit("sent ", 1)[1].split()[0] + " events")
        for line in lines
        if ": sent " in line
    )
    assert "fake SMS stopped" in out


def test_main_rejects_a_bad_speed():
    with pytest.raises(SystemExit):
        main(["--speed", "warp"])


TINY_IDF = """<?xml version="1.0" encoding="UTF-8"?>
<instrument name="TINY">
  <defaults><length unit="meter"/><angle unit="degree"/>
    <reference-frame><along-beam axis="z"/><pointing-up axis="y"/><handedness val="right"/></reference-frame>
  </defaults>
  <component type="moderator"><location z="-10.0"/></component>
  <type name="moderator" is="Source"/>
  <component type="sample-position"><location/></component>
  <type name="sample-position" is="SamplePos"/>
  <component type="pixel" idlist="pixels">
    <location x="1.0"/><location y="2.0"/><location z="3.0"/>
  </component>
  <type name="pixel" is="detector"/>
  <idlist idname="pixels"><id start="10" end="12"/></idlist>
</instrument>
"""


def test_replaying_a_nexus_file_sends_its_embedded_instrument_definition(cleanup, tmp_path):
    """An SNS event file carries its IDF (/entry/instrument/instrument_xml/data), and the real SMS sends the
    definition in its geometry packet: the replay does the same, so replays have the run's real geometry."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "TINY_5.nxs.h5"
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["run_number"] = "5"
        instrument = entry.create_group("instrument")
        instrument["name"] = "TINY"
        instrument.create_group("instrument_xml")["data"] = TINY_IDF
        g = entry.create_group("bank1_events")
        g.attrs["NX_class"] = "NXevent_data"
        g["event_id"] = np.array([10, 12, 11], np.uint32)
        g["event_time_offset"] = np.array([100.0, 200.0, 300.0], np.float32)
        g["event_time_offset"].attrs["units"] = "microsecond"
        g["event_index"] = np.array([0], np.uint64)
        g["event_time_zero"] = np.array([0.0])
        g["event_time_zero"].attrs.update(units="second", offset="2024-05-01T12:00:00+00:00")
    sms = FakeSMS(port=0, replay=path, speed="unlimited", wait_for_client=True)
    cleanup(sms)
    listener = AdaraListener(f"127.0.0.1:{sms.start()}")
    cleanup(listener)
    listener.start(StartFrom("start_of_run"))
    chunks = [c for *_, c in drain(listener, ended(5)) if c.n_events]
    spectra = chunks[0].spectra
    # from the IDF by hand: source at z = -10 m (L1 = 10 m); pixels 10, 11, 12 at (1,0,0), (0,2,0), (0,0,3)
    assert spectra.det_ids.tolist() == [10, 11, 12] and spectra.l1 == pytest.approx(10.0)
    np.testing.assert_allclose(spectra.l2, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(np.degrees(spectra.two_theta), [90.0, 90.0, 0.0], atol=1e-9)
    assert chunks[0].events.index.tolist() == [0, 2, 1]  # ids 10, 12, 11 → workspace indices 0, 2, 1
