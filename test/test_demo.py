"""The README's first command, `bash scripts/demo`, run as a user runs it (in the checkout, into the
environment running these tests): the daemon processes the fake SMS's POWGEN runs and writes products; with
port 31415 taken by someone else, the demo refuses to start rather than connect the daemon to a stranger."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import h5py
import pytest
from conftest import REPO

PORT = 31415
LOG = REPO / "demo-output" / "livereduce.log"


def port_free() -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is fine
        try:
            s.bind(("127.0.0.1", PORT))
        except OSError:
            return False
    return True


def start_demo() -> subprocess.Popen:
    env = {**os.environ, "LIVEREDUCE_VENV": sys.prefix, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        ["bash", str(REPO / "scripts" / "demo")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_the_demo_reduces_the_fake_runs_and_stops_on_ctrl_c():
    if not port_free():
        pytest.skip(f"port {PORT}, which the demo uses, is in use on this machine")
    offset = LOG.stat().st_size if LOG.exists() else 0
    started = time.time()
    demo = start_demo()
    try:
        deadline, new = time.monotonic() + 120, ""
        while time.monotonic() < deadline and demo.poll() is None:
            new = LOG.read_text()[offset:] if LOG.exists() else ""
            cycles = [
                int(n) for n in re.findall(r"cycle \d+: run 1 .*?accumulated ([\d,]+)", new.replace(",", ""))
            ]
            if len([c for c in cycles if c > 0]) >= 2:
                break
            time.sleep(0.2)
        else:
            out = demo.communicate(timeout=10)[0] if demo.poll() is not None else ""
            pytest.fail(f"no two cycles with data in the demo's log\n{new[-3000:]}\n{out[-3000:]}")
        product = REPO / "demo-output" / "POWGEN_1_live.nxs"
        assert product.stat().st_mtime >= started
        with h5py.File(product, "r") as f:
            assert f["mantid_workspace_1/workspace/values"].shape[0] > 0
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        out = demo.communicate(timeout=30)[0]
    assert demo.returncode == 0, out[-3000:]
    log = LOG.read_text()[offset:]
    assert "Traceback" not in log and " - ERROR - " not in log, log[-3000:]
    assert "Traceback" not in out


def test_the_demo_refuses_to_start_when_its_port_is_taken():
    if not port_free():
        pytest.skip(f"port {PORT}, which the demo uses, is in use on this machine")
    offset = LOG.stat().st_size if LOG.exists() else 0
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", PORT))
        squatter.listen(1)
        demo = start_demo()
        try:
            out = demo.communicate(timeout=120)[0]
        finally:
            if demo.poll() is None:  # it went on to start a daemon: stop the whole group
                os.killpg(demo.pid, signal.SIGINT)
                demo.communicate(timeout=30)
    assert demo.returncode == 2, out
    assert f"port {PORT}" in out and "could not start" in out
    assert "Traceback" not in out
    new = LOG.read_text()[offset:] if LOG.exists() else ""
    assert "session started" not in new  # the daemon never ran
