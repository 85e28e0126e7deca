"""ISIS histogram DAE (IDC) and event stream: listeners against the fake servers over real TCP, hostile
byte streams, and the daemon end to end. Expected histogram values follow the fake DAE's rule: every bin of
spectrum s in period p holds p·1000 + s."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from daemon_helpers import REPO, DaemonProcess

from livereduce.errors import NotYet
from livereduce.listeners.isis_event import ISISEventListener, pack_frame, pack_setup
from livereduce.listeners.isis_histogram import ISISHistogramListener
from livereduce.servers.isis_event import FakeEventDAE
from livereduce.servers.isis_histogram import FakeHistogramDAE


@pytest.fixture
def histo_dae():
    dae = FakeHistogramDAE(port=0, nperiods=5, nspectra=10, nbins=100)
    dae.start()
    yield dae
    dae.stop()


def extract_when_ready(listener, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return listener.extract()
        except NotYet:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_histogram_values_for_selected_periods(histo_dae):
    listener = ISISHistogramListener(f"127.0.0.1:{histo_dae.port}", periods=[1, 3])
    chunk = extract_when_ready(listener)
    h = chunk.histograms
    assert h.periods == (1, 3) and h.counts.shape == (2, 10, 100)
    for i, p in enumerate((1, 3)):
        for s in range(1, 11):
            assert np.all(h.counts[i, s - 1] == p * 1000 + s)
    assert np.array_equal(h.edges, 10000.0 + 100.0 * np.arange(101))
    assert chunk.spectra.numbers.tolist() == list(range(1, 11))
    assert chunk.run["gd_prtn_chrg"].value == pytest.approx(3.14, rel=1e-6)
    # the 3 monitors follow the detectors: spectra 11..13
    assert chunk.monitors.spectra.numbers.tolist() == [11, 12, 13]
    assert np.all(chunk.monitors.histograms.counts[1, 2] == 3 * 1000 + 13)
    listener.close()


def test_histogram_spectra_selection_and_bad_selections(histo_dae):
    listener = ISISHistogramListener(f"127.0.0.1:{histo_dae.port}", periods=[2], spectra=[4, 7])
    h = extract_when_ready(listener).histograms
    assert h.counts.shape == (1, 2, 100)
    assert h.counts[0, 0, 0] == 2004 and h.counts[0, 1, 99] == 2007
    listener.close()
    for kwargs, message in (
        ({"periods": [7]}, r"periods \[7\] are not in the DAE's 1..5"),
        ({"spectra": [99]}, r"spectra \[99\] are not in the DAE's 1..13"),
    ):
        bad = ISISHistogramListener(f"127.0.0.1:{histo_dae.port}", **kwargs)
        try:
            with pytest.raises(ValueError, match=message):
                bad.extract()
        finally:
            bad.close()


def test_histogram_listener_reconnects_after_the_dae_restarts(caplog):
    dae = FakeHistogramDAE(port=0, nperiods=1, nspectra=4, nbins=5)
    port = dae.start()
    listener = ISISHistogramListener(f"127.0.0.1:{port}")
    assert extract_when_ready(listener).histograms.counts[0, 3, 0] == 1004
    dae.stop()
    with caplog.at_level("INFO", logger="livereduce.listener.isis_histogram"):
        with pytest.raises(NotYet):
            listener.extract()
        dae = FakeHistogramDAE(port=port, nperiods=1, nspectra=4, nbins=5)
        dae.start()
        try:
            assert extract_when_ready(listener).histograms.counts[0, 0, 4] == 1001
        finally:
            listener.close()
            dae.stop()
    text = caplog.text
    assert "dropping the connection and reconnecting" in text and "connected to the DAE" in text


def hostile_server(payloads: list[bytes]):
    """A TCP server that answers each connection with the next payload, then closes it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    served = []

    def run():
        for payload in payloads:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                conn.sendall(payload)
            except OSError:
                pass
            served.append(len(payload))
            conn.close()
        server.close()

    threading.Thread(target=run, daemon=True).start()
    return server.getsockname()[1], served


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00" * 200,  # wrong everything
        b"\xff" * 7,  # truncated header
        bytes(88)[:4] + (2**31 - 1).to_bytes(4, "little") + bytes(80),  # absurd length
    ],
)
def test_histogram_listener_survives_garbage(garbage):
    port, served = hostile_server([garbage] * 3)
    listener = ISISHistogramListener(f"127.0.0.1:{port}", timeout=2)
    for _ in range(3):
        with pytest.raises(NotYet):
            listener.extract()
    deadline = time.monotonic() + 10  # the server counts a connection after sending its garbage
    while len(served) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(served) == 3  # it came back each time, and never raised anything else


def test_event_totals_equal_what_was_sent():
    dae = FakeEventDAE(port=0, seed=3, report_every=1e9)
    port = dae.start()
    listener = ISISEventListener(f"127.0.0.1:{port}")
    listener.start(None)
    try:
        chunks = []
        # every extract counts, from the first: the DAE counts a frame after sending it, so zeroing its counter
        # midway raced with a frame in flight (one frame too many on a loaded machine)
        total = extract_when_ready(listener).n_events  # setup seen
        for _ in range(5):
            time.sleep(0.2)
            chunk = listener.extract()
            chunks.append(chunk)
            total += chunk.n_events
        dae.sending.clear()  # stop the stream: everything sent must arrive
        deadline = time.monotonic() + 10
        while total != dae.sent_events and time.monotonic() < deadline:
            total += listener.extract().n_events
            time.sleep(0.02)
        assert total == dae.sent_events > 0
        chunk = chunks[-1]
        assert chunk.events.tof.min() >= 10_000 and chunk.events.tof.max() < 20_000
        numbers = chunk.spectra.numbers[chunk.events.index]
        assert numbers.min() >= 1 and numbers.max() <= 100  # the fake sends spectra 1..100
        assert chunk.run["run_number"].value == "1234"
    finally:
        listener.close()
        dae.stop()


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x01\x02\x03\x04" * 10,  # wrong markers
        pack_setup(1, 0, "X")[:12],  # truncated header
        b"\xff" * 8
        + (0x00010000).to_bytes(4, "little")
        + (2**31).to_bytes(4, "little")
        + (2).to_bytes(4, "little"),
        pack_setup(1, 0, "X")
        + pack_frame(0, 0, 0.0, 0.0, [1.0], [1])[:40]
        + b"\xff" * 12,  # inconsistent frame
    ],
)
def test_event_listener_drops_and_reconnects_on_garbage(garbage, caplog):
    side = FakeHistogramDAE(port=0, nspectra=4, nbins=2)
    side_port = side.start()
    port, served = hostile_server([garbage] * 3)
    listener = ISISEventListener(f"127.0.0.1:{port}")
    listener.idc_port = side_port
    with caplog.at_level("INFO", logger="livereduce.listener.isis_event"):
        listener.start(None)
        deadline = time.monotonic() + 10
        # the server counts a connection when it accepts it; the listener logs it a moment later
        while (len(served) < 3 or caplog.text.count("connected to") < 3) and time.monotonic() < deadline:
            try:
                listener.extract()
            except NotYet:
                pass
            time.sleep(0.05)
    listener.close()
    side.stop()
    assert len(served) == 3
    assert caplog.text.count("connected to") >= 3


def test_seed_fake_server_stops_on_ctrl_c(free_port):
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "test" / "fake_server.py"), "--port", str(free_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", free_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0
        assert "5 periods, 10 spectra, 100 bins" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()


POST_COUNT = """import json, os
total = sum(float(m.readY(0).sum()) for m in accumulation) if hasattr(accumulation, 'members') \\
    else accumulation.getNumberEvents()
path = {path!r}
with open(path + '.tmp', 'w') as f:
    json.dump({{'total': total}}, f)
os.replace(path + '.tmp', path)
"""


def wait_json(path, predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = json.loads(path.read_text())
            if predicate(value):
                return value
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path}: condition not met in {timeout} s")


def test_daemon_histogram_end_to_end_with_server_restart(tmp_path):
    dae = FakeHistogramDAE(port=0, nperiods=5, nspectra=10, nbins=100)
    port = dae.start()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "reduce_ISIS_Histogram_live_proc.py").write_text(
        (REPO / "test" / "reduce_ISIS_Histogram_live_proc.py").read_text()
    )
    out = tmp_path / "total.json"
    (scripts / "reduce_ISIS_Histogram_live_post_proc.py").write_text(POST_COUNT.format(path=str(out)))
    daemon = DaemonProcess(
        tmp_path,
        {
            "instrument": "ISIS_Histogram",
            "address": f"127.0.0.1:{port}",
            "script_dir": str(scripts),
            "update_every": 0.3,
            "accum_method": "Replace",
            "periods": [1, 3],
            "system_mem_limit_perc": 0,
        },
    )
    try:
        # SumSpectra then Rebin(300,20,17000): per period, Σ_s (p·1000+s) per 100 µs input bin, and only the
        # 70 input bins of 10000–17000 µs fall inside the output range
        expected = sum(70 * sum(p * 1000 + s for s in range(1, 11)) for p in (1, 3))
        assert wait_json(out, lambda v: v["total"] > 0)["total"] == pytest.approx(expected)
        dae.stop()
        daemon.wait_for("dropping the connection and reconnecting")
        dae = FakeHistogramDAE(port=port, nperiods=5, nspectra=10, nbins=100)
        dae.start()
        daemon.wait_for("connected to the DAE", count=2)
        assert daemon.proc.poll() is None
        out.unlink()
        assert wait_json(out, lambda v: v["total"] > 0)["total"] == pytest.approx(expected)
    finally:
        daemon.stop()
        dae.stop()


def test_daemon_event_totals_end_to_end(tmp_path):
    dae = FakeEventDAE(port=0, seed=5, report_every=1e9)
    port = dae.start()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "reduce_ISIS_Event_live_proc.py").write_text(
        (REPO / "test" / "reduce_ISIS_Event_live_proc.py").read_text()
    )
    out = tmp_path / "total.json"
    (scripts / "reduce_ISIS_Event_live_post_proc.py").write_text(POST_COUNT.format(path=str(out)))
    daemon = DaemonProcess(
        tmp_path,
        {
            "instrument": "ISIS_Event",
            "address": f"127.0.0.1:{port}",
            "script_dir": str(scripts),
            "update_every": 0.3,
            "accum_method": "Add",
            "system_mem_limit_perc": 0,
        },
    )
    try:
        wait_json(out, lambda v: v["total"] > 20_000)
        dae.sending.clear()  # stop the stream, then everything sent must arrive
        final = wait_json(out, lambda v: v["total"] == dae.sent_events, timeout=15)
        assert final["total"] == dae.sent_events
    finally:
        daemon.stop()
        dae.stop()
