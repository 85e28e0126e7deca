"""ISIS listeners against misbehaving peers over real TCP: non-finite values, silent and trickling DAEs,
garbage that must back the reconnects off, bad timeouts, and the decoders' fuzz run. Expected numbers come
from what the servers sent; waits have deadlines, never fixed sleeps."""

from __future__ import annotations

import logging
import socket
import threading
import time

import numpy as np
import pytest

from livereduce.errors import NotYet
from livereduce.listeners import idc
from livereduce.listeners.isis_event import ISISEventListener, pack_frame, pack_setup
from livereduce.listeners.isis_fuzz import fuzz
from livereduce.listeners.isis_histogram import ISISHistogramListener
from livereduce.listeners.stream import StreamThread, enable_keepalive
from livereduce.servers.isis_histogram import FakeHistogramDAE
from livereduce.workspace.events import default_edges


class ScriptServer:
    """A TCP server that runs `script(conn, stop)` for each connection and notes when each was accepted."""

    def __init__(self, script, port: int = 0):
        self.script = script
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(16)
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.accepted: list[float] = []
        self.stop = threading.Event()
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(time.monotonic())
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.script(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self._thread.join(5)  # its accept() returns within 0.1 s: then the port is free again
        self.server.close()
        for conn in self.conns:
            try:
                conn.close()
            except OSError:
                pass


def wait_for(condition, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.01)


def hold_open(conn, stop):
    stop.wait(30)


@pytest.fixture
def side_dae():
    """The IDC side channel of the event listener: spectra 1..4 (+3 monitors)."""
    dae = FakeHistogramDAE(port=0, nspectra=4, nbins=2)
    dae.start()
    yield dae
    dae.stop()


def event_listener(port: int, side_port: int, **kw) -> ISISEventListener:
    listener = ISISEventListener(f"127.0.0.1:{port}", **kw)
    listener.idc_port = side_port
    return listener


def drain(listener, expected: int, timeout: float = 10.0) -> int:
    total = 0
    deadline = time.monotonic() + timeout
    while total < expected and time.monotonic() < deadline:
        try:
            total += listener.extract().n_events
        except NotYet:
            pass
        time.sleep(0.02)
    return total


# -- 1. non-finite values ------------------------------------------------------------------------------------
def test_default_edges_only_ever_derive_from_finite_values():
    assert default_edges(np.array([5.0, np.nan, 7.0])).tolist() == [5.0, np.nextafter(7.0, np.inf)]
    assert default_edges(np.array([np.inf, 2.0, -np.inf, 3.0])).tolist() == [2.0, np.nextafter(3.0, np.inf)]
    assert default_edges(np.array([np.nan, np.nan])).tolist() == [0.0, 1.0]
    assert default_edges(np.array([4.0])).tolist() == [4.0, 5.0]
    assert default_edges(np.empty(0)).tolist() == [0.0, 1.0]
    assert np.all(np.isfinite(default_edges(np.array([np.nan, 1e308, -1e308]))))


def test_nan_tof_and_absurd_frame_time_are_dropped_and_counted(side_dae, caplog):
    rng = np.random.default_rng(11)
    frames, sent = [], 0
    for frame in range(6):
        n = 10 + frame
        tof = rng.uniform(10_000.0, 20_000.0, n)
        spectrum = rng.integers(1, 5, n)
        t0 = 0.02 * frame
        if frame == 2:
            tof[3] = np.nan  # one NaN TOF: that event only is dropped
        if frame == 4:
            t0 = 1e30  # an absurd frame time: the whole frame is dropped
        frames.append(pack_frame(frame, 0, 0.01, t0, tof, spectrum))
        sent += n
    bad_frame_events = 10 + 4
    payload = pack_setup(77, 1_700_000_000, "MUSR") + b"".join(frames)

    def script(conn, stop):
        conn.sendall(payload)
        stop.wait(30)

    server = ScriptServer(script)
    listener = event_listener(server.port, side_dae.port)
    try:
        with caplog.at_level(logging.WARNING, logger="livereduce.listener.isis_event"):
            listener.start(None)
            expected = sent - 1 - bad_frame_events
            events = []

            def collect():
                try:
                    chunk = listener.extract()
                except NotYet:
                    return False
                events.append(chunk.events)
                return sum(len(e) for e in events) >= expected

            wait_for(collect, what="all valid events")
        total = sum(len(e) for e in events)
        assert total == expected
        tof = np.concatenate([e.tof for e in events])
        assert np.all(np.isfinite(tof))
        assert np.all(np.isfinite(default_edges(tof)))
        pulses = np.concatenate([e.pulse_time for e in events])
        assert pulses.max() < (1_700_000_000 + 1) * 10**9  # the 1e30 frame left no trace
        state = listener.state()
        assert state["nonfinite_events_dropped"] == 1
        assert state["bad_frames_dropped"] == 1
        assert state["bad_frame_events_dropped"] == bad_frame_events
        assert "NaN or infinite time of flight" in caplog.text
        assert "dropped frame 4 with time 1e+30" in caplog.text
    finally:
        listener.close()
        server.close()


# -- 2. DAEs that accept and then say nothing, or trickle ----------------------------------------------------
def trickle(payload: bytes, every: float):
    def script(conn, stop):
        conn.settimeout(0.05)
        for i in range(len(payload)):
            if stop.wait(every):
                return
            conn.sendall(payload[i : i + 1])
            try:  # swallow the client's requests
                conn.recv(4096)
            except (TimeoutError, OSError):
                pass
        stop.wait(30)

    return script


def handshake_then(script_after):
    def script(conn, stop):
        conn.settimeout(5)
        got = b""
        while len(got) < idc.OPEN.size:
            got += conn.recv(idc.OPEN.size - len(got))
        conn.sendall(idc.pack_message("OK"))
        script_after(conn, stop)

    return script


@pytest.mark.parametrize(
    "script, phase",
    [
        (hold_open, "silent at the handshake"),
        (trickle(idc.pack_message("OK"), 0.2), "handshake trickled a byte at a time"),
        (handshake_then(hold_open), "silent after the handshake"),
        (handshake_then(trickle(idc.pack_message("OK", idc.INT32, np.array([1])), 0.2)), "reply trickled"),
    ],
)
def test_histogram_listener_gives_up_on_a_stalling_dae_then_reads_a_healthy_one(script, phase, caplog):
    server = ScriptServer(script)
    port = server.port
    listener = ISISHistogramListener(f"127.0.0.1:{port}", timeout=1.0)
    try:
        with caplog.at_level(logging.INFO, logger="livereduce.listener.isis_histogram"):
            started = time.monotonic()
            with pytest.raises(NotYet):
                listener.extract()
            took = time.monotonic() - started
            assert took < 1.0 + 1.0, f"{phase}: the extract took {took:.1f} s"
            assert listener.state()["connected"] is False
            server.close()
            dae = FakeHistogramDAE(port=port, nperiods=1, nspectra=4, nbins=5)
            dae.start()
            try:
                deadline = time.monotonic() + 10
                while True:
                    try:
                        chunk = listener.extract()
                        break
                    except NotYet:
                        assert time.monotonic() < deadline
                        time.sleep(0.05)
                assert chunk.histograms.counts[0, 3, 0] == 1004  # the fake's rule: p·1000 + s
            finally:
                dae.stop()
        text = caplog.text
        assert "within 1 s" in text  # the give-up is logged with its deadline
        assert "connected to the DAE" in text
    finally:
        listener.close()
        server.close()


def test_event_listener_side_channel_that_stalls_is_bounded(caplog):
    side = ScriptServer(hold_open)  # the IDC side channel accepts and says nothing
    stream = ScriptServer(hold_open)
    listener = event_listener(stream.port, side.port, timeout=0.5, backoff=(0.05, 0.1))
    try:
        with caplog.at_level(logging.WARNING, logger="livereduce.listener.isis_event"):
            listener.start(None)
            wait_for(
                lambda: len(stream.accepted) >= 2,
                timeout=5,
                what="a reconnect after the stalled side channel",
            )
        assert "no open handshake from the DAE within 0.5 s" in caplog.text
    finally:
        listener.close()
        side.close()
        stream.close()


# -- 3. silence ----------------------------------------------------------------------------------------------
def test_a_stream_that_goes_quiet_is_dropped_after_silence_timeout(side_dae, caplog):
    frames = [pack_frame(f, 0, 0.01, 0.02 * f, [12_000.0] * 5, [1, 2, 3, 4, 1]) for f in range(3)]
    payload = pack_setup(5, 1_700_000_000, "MUSR") + b"".join(frames)

    def script(conn, stop):
        conn.sendall(payload)
        stop.wait(30)  # then nothing, connection open

    server = ScriptServer(script)
    listener = event_listener(server.port, side_dae.port, silence_timeout=1.0, backoff=(0.05, 0.1))
    try:
        with caplog.at_level(logging.WARNING, logger="livereduce.listener.isis_event"):
            listener.start(None)
            assert drain(listener, 15) == 15
            sock = listener._stream._sock
            assert sock is not None and sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            wait_for(lambda: len(server.accepted) >= 2, timeout=5, what="a reconnect after the silence")
            gap = server.accepted[1] - server.accepted[0]
            assert 1.0 <= gap < 3.0
            assert drain(listener, 15) == 15  # the next connection is read normally
        assert listener.state()["silences"] >= 1
        assert "no data for 1 s (silence_timeout 1 s)" in caplog.text
    finally:
        listener.close()
        server.close()


def test_a_stream_trickling_a_packet_is_dropped_as_silent(side_dae):
    payload = pack_setup(5, 1_700_000_000, "MUSR")
    server = ScriptServer(trickle(payload * 10, 0.05))  # 20 bytes/s: never a whole packet per 0.5 s
    listener = event_listener(server.port, side_dae.port, silence_timeout=0.5, backoff=(0.05, 0.1))
    try:
        listener.start(None)
        wait_for(lambda: len(server.accepted) >= 2, timeout=5, what="a reconnect from the trickling stream")
        assert listener.state()["silences"] >= 1
    finally:
        listener.close()
        server.close()


# -- 4. backoff ----------------------------------------------------------------------------------------------
def test_backoff_grows_after_repeated_protocol_errors(side_dae, caplog):
    def garbage(conn, stop):
        conn.sendall(b"\x01\x02\x03\x04" * 10)  # wrong markers: a ProtocolError on every connection

    server = ScriptServer(garbage)
    listener = event_listener(server.port, side_dae.port, backoff=(0.05, 0.8))
    try:
        with caplog.at_level(logging.ERROR, logger="livereduce.listener.isis_event"):
            listener.start(None)
            wait_for(lambda: len(server.accepted) >= 7, timeout=15, what="seven connection attempts")
            attempts = [t - server.accepted[0] for t in server.accepted[:7]]
    finally:
        listener.close()
        server.close()
    gaps = np.diff(attempts)
    # delays 0.05, 0.1, 0.2, 0.4, 0.8, 0.8: a fixed 0.05 s retry would make 7 attempts in ~0.4 s
    assert attempts[-1] >= 0.05 + 0.1 + 0.2 + 0.4 + 0.8 + 0.8 - 0.1, attempts
    assert gaps[-1] >= 0.7 and gaps[0] < 0.5, gaps
    assert np.all(np.diff(gaps) > -0.05), gaps  # never shrinking
    assert "protocol error" in caplog.text and "reconnecting in 0.8 s" in caplog.text


def test_backoff_resets_after_a_connection_that_delivered_data_for_a_while(side_dae):
    frames = [pack_frame(f, 0, 0.01, 0.02 * f, [12_000.0], [1]) for f in range(3)]

    def healthy_then_close(conn, stop):
        conn.sendall(pack_setup(5, 1_700_000_000, "MUSR"))
        for frame in frames:
            stop.wait(0.15)
            conn.sendall(frame)

    server = ScriptServer(healthy_then_close)
    listener = event_listener(server.port, side_dae.port, backoff=(0.05, 5.0), healthy_after=0.3)
    try:
        listener.start(None)
        wait_for(lambda: len(server.accepted) >= 4, timeout=10, what="four connections")
        gaps = np.diff(server.accepted[:4])
        assert np.all(gaps < 0.45 + 0.5), gaps  # each ~0.45 s of data then 0.05 s: no growth towards 5 s
    finally:
        listener.close()
        server.close()


# -- 5. options ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option", ["silence_timeout", "timeout", "connect_timeout"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan")])
def test_zero_or_negative_timeouts_are_refused_naming_the_option(option, value):
    for cls in (ISISEventListener, ISISHistogramListener):
        with pytest.raises(ValueError, match=rf"^{option} must be a number of seconds > 0"):
            cls("127.0.0.1:1", **{option: value})
    with pytest.raises(ValueError, match=rf"^{option} must be"):
        StreamThread("127.0.0.1", 1, name="x", logger=logging.getLogger("x"), **{option: value})


def test_keepalive_is_enabled():
    with socket.socket() as sock:
        enable_keepalive(sock, idle=30, interval=10, count=3)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3


# -- 6. fuzz -------------------------------------------------------------------------------------------------
def test_fuzz_the_decoders_ci_sized():
    started = time.monotonic()
    result = fuzz(cases=15_000, seed=20240601, jobs=1)
    assert result["undocumented"] == 0, result["sites"]
    assert time.monotonic() - started < 15
    outcomes = result["outcomes"]
    for target in ("histogram", "side_channel", "event_stream"):  # every target was really exercised
        assert sum(n for k, n in outcomes.items() if k.startswith(target)) == 5_000
    assert any("values dropped and counted" in k for k in outcomes)
    assert outcomes.get("histogram: chunk", 0) > 0
