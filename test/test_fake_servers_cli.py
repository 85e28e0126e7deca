"""The fake servers' command lines, as real processes on real sockets.

- A server whose port is taken says so in one line on stderr (naming the port, suggesting --port) and exits
  2, with no traceback: `livereduce fake-sms`, `fake-dae`, `fake-event-dae`, test/fake_server.py,
  test/fake_event_server.py. The event DAE also needs port + 1 (its IDC side channel): that one taken is
  named too.
- --help shows each option's default, the port among them.
- `livereduce fake-dae` with no options is the guide's DAE (5 periods, 10 spectra, 100 bins), which the
  README's test/fake.conf expects.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "PYTHONUNBUFFERED": "1",
    "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
}

SERVERS = {
    "fake-adara": [sys.executable, "-m", "livereduce", "fake-adara"],
    "fake-isis-histogram": [sys.executable, "-m", "livereduce", "fake-isis-histogram"],
    "fake-isis-event": [sys.executable, "-m", "livereduce", "fake-isis-event"],
    "fake-sms": [sys.executable, "-m", "livereduce", "fake-sms"],
    "fake-dae": [sys.executable, "-m", "livereduce", "fake-dae"],
    "fake-event-dae": [sys.executable, "-m", "livereduce", "fake-event-dae"],
    "test/fake_server.py": [sys.executable, "test/fake_server.py"],
    "test/fake_event_server.py": [sys.executable, "test/fake_event_server.py"],
}
DEFAULT_PORTS = {
    "fake-adara": 31415,
    "fake-isis-histogram": 56789,
    "fake-isis-event": 59876,
    "fake-sms": 31415,
    "fake-dae": 56789,
    "fake-event-dae": 59876,
    "test/fake_server.py": 56789,
    "test/fake_event_server.py": 59876,
}


def _occupy(port: int = 0) -> socket.socket:
    """A real listening socket, as another server would hold it (no SO_REUSEADDR)."""
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return s


def _occupied_pair() -> tuple[socket.socket, int]:
    """A socket holding port p + 1 while p is free (for the event DAE's side channel)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        try:
            held = _occupy(port + 1)
        except OSError:
            continue
        try:
            with socket.socket() as check:  # p itself must still be free for the test to mean anything
                check.bind(("127.0.0.1", port))
        except OSError:
            held.close()
            continue
        return held, port
    pytest.skip("no free pair of adjacent ports found")


def _run(argv: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _assert_port_in_use_message(result: subprocess.CompletedProcess, port: int) -> str:
    out = result.stdout + result.stderr
    assert result.returncode == 2, f"exit {result.returncode}\n{out}"
    assert "Traceback" not in out, out
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert f"port {port}" in lines[0] and "in use" in lines[0] and "--port" in lines[0], lines[0]
    assert result.stdout.strip() == "", f"nothing on stdout expected, got:\n{result.stdout}"
    return lines[0]


@pytest.mark.parametrize("name", list(SERVERS))
def test_port_in_use_is_one_line_and_exit_2(name):
    held = _occupy()
    port = held.getsockname()[1]
    try:
        result = _run([*SERVERS[name], "--port", str(port)])
    finally:
        held.close()
    line = _assert_port_in_use_message(result, port)
    assert line.startswith(("livereduce ", "python test/")), line  # says which server it is


@pytest.mark.parametrize("name", ["fake-isis-event", "fake-event-dae", "test/fake_event_server.py"])
def test_event_dae_side_channel_port_in_use_is_named(name):
    held, port = _occupied_pair()
    try:
        result = _run([*SERVERS[name], "--port", str(port)])
    finally:
        held.close()
    line = _assert_port_in_use_message(result, port + 1)
    assert "side channel" in line, line


@pytest.mark.parametrize("name", list(SERVERS))
def test_help_shows_defaults_and_port(name):
    result = _run([*SERVERS[name], "--help"])
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps lines
    assert "--port PORT" in text
    assert f"(default: {DEFAULT_PORTS[name]})" in text, text
    assert "(default: 127.0.0.1)" in text, text
    if name in ("fake-isis-histogram", "fake-dae", "test/fake_server.py"):
        for value in (
            "periods (default: 5)",
            "(monitors not counted) (default: 10)",
            "per spectrum (default: 100)",
        ):
            assert value in text, text


def test_fake_dae_defaults_are_the_guides_dae(free_port):
    """`livereduce fake-dae` (on a free port, no other option) serves 5 periods of 10 spectra x 100 bins, as
    test/fake.conf (periods [1, 3]) expects; Ctrl-C stops it with exit 0."""
    from livereduce.listeners.idc import IDCClient  # the listener's own client, over a real socket

    proc = subprocess.Popen(
        [*SERVERS["fake-dae"], "--port", str(free_port)],
        cwd=REPO,
        env=ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                client = IDCClient("127.0.0.1", free_port, timeout=5)
                break
            except OSError:
                assert proc.poll() is None, f"fake-dae exited {proc.poll()}: {proc.stdout.read()}"
                assert time.monotonic() < deadline, "fake-dae did not start listening within 15 s"
                time.sleep(0.05)
        try:
            nper, nsp1, ntc1 = (int(client.getpar(n, "I32")[0]) for n in ("NPER", "NSP1", "NTC1"))
            assert (nper, nsp1, ntc1) == (5, 10 + 3, 100)  # 10 detectors, then 3 monitors
            # period 3, spectrum 7: DAE index s + (p-1)(NSP1+1); every used bin holds p*1000 + s
            data = client.getdat(7 + 2 * (nsp1 + 1), 1, ntc1)
            assert data.shape == (1, 101) and set(data[0, 1:].tolist()) == {3007}
        finally:
            client.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        out = proc.stdout.read()
        assert f"127.0.0.1:{free_port}: 5 periods, 10 spectra, 100 bins" in out, out
        assert "Traceback" not in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
