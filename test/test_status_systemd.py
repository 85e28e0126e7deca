"""systemd notify as systemd runs the daemon: a real daemon subprocess with $NOTIFY_SOCKET bound by the test
and WATCHDOG_USEC = 2 s. READY comes first, WATCHDOG=1 every second (half of WATCHDOG_USEC, as
sd_watchdog_enabled(3) advises) while cycles complete, and no more while a proc script is stuck; STATUS says
which. When the script moves on, the pings come back.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
import uuid

from daemon_helpers import DaemonProcess, fake_event_config

from livereduce import systemd

WATCHDOG_USEC = 2_000_000
THRESHOLD_S = 20  # watchdog.threshold: its minimum, so the test waits as little as the config allows


class NotifySocket:
    """An abstract-namespace datagram socket standing in for systemd's, with the time each message came."""

    def __init__(self):
        self.name = f"livereduce-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            for line in data.decode(errors="replace").splitlines():
                self.messages.append((now, line))

    def pings(self, since: float = 0.0) -> list[float]:
        return [t for t, m in list(self.messages) if m == "WATCHDOG=1" and t >= since]

    def statuses(self) -> list[str]:
        return [m[7:] for _, m in list(self.messages) if m.startswith("STATUS=")]

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def wait_for(condition, timeout: float, what: str, daemon: DaemonProcess):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if daemon.proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{what} not seen within {timeout} s\n--- log ---\n{daemon.log()[-3000:]}")


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_this_process():
    assert systemd.watchdog_every({"WATCHDOG_USEC": "2000000"}) == 1.0
    assert systemd.watchdog_every({}) is None  # no WatchdogSec: no pings
    assert systemd.watchdog_every({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert systemd.watchdog_every({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "2"}, pid=2) == 1.0
    assert systemd.watchdog_every({"WATCHDOG_USEC": "nonsense"}) is None


def test_ready_status_and_watchdog_follow_the_session_and_stop_while_a_script_is_stuck(tmp_path, monkeypatch):
    marker = tmp_path / "stuck"
    config = fake_event_config(
        tmp_path,
        update_every=0.5,
        watchdog={"threshold": THRESHOLD_S},
        step_timeout=3600,  # the daemon's own fix stays out of the way: this test is about systemd's
        state_dir=str(tmp_path / "state"),
    )
    (tmp_path / "scripts" / "reduce_FAKE_live_proc.py").write_text(
        f"import os, time\nwhile os.path.exists({str(marker)!r}):\n    time.sleep(0.05)\n"
    )
    notify = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + notify.name)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    daemon = DaemonProcess(tmp_path, config)
    try:
        wait_for(lambda: len(notify.pings()) >= 6, 30, "six watchdog pings", daemon)
        assert notify.messages[0][1] == "READY=1", notify.messages[:3]
        assert any(s.startswith("running: run 1, ") for s in notify.statuses()), notify.statuses()
        gaps = [b - a for a, b in zip(notify.pings(), notify.pings()[1:], strict=False)]
        assert 0.8 <= statistics.median(gaps) <= 1.3, gaps  # WATCHDOG_USEC / 2
        assert max(gaps) < WATCHDOG_USEC / 1e6, gaps  # never late enough for systemd to act

        marker.touch()  # the next proc run blocks until the marker goes
        stuck_at = time.monotonic()
        wait_for(
            lambda: any(s.startswith("stuck: no cycle completed") for s in notify.statuses()),
            THRESHOLD_S + 15,
            "a stuck STATUS",
            daemon,
        )
        seen_stuck = time.monotonic()
        last_ping = notify.pings()[-1]
        # fed while the quiet time was under the threshold, and not after it
        assert THRESHOLD_S - 3 <= last_ping - stuck_at <= THRESHOLD_S + 2, last_ping - stuck_at
        wait_for(lambda: time.monotonic() - seen_stuck > 3, 10, "three seconds", daemon)
        assert notify.pings(since=last_ping + 0.01) == [], "pinged while the script was stuck"

        os.unlink(marker)  # the script moves on: cycles complete and systemd is fed again
        resumed = time.monotonic()
        wait_for(lambda: len(notify.pings(since=resumed)) >= 2, 15, "pings after the script moved on", daemon)
        assert notify.statuses()[-1].startswith(("running:", "idle:")), notify.statuses()[-3:]
    finally:
        daemon.stop()
        notify.close()
    assert notify.messages[-1][1] == "STOPPING=1"


def test_ready_waits_for_the_das_then_comes_after_the_grace_with_a_status_saying_why(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port where nothing listens: the DAS is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "reduce_PG3_live_proc.py").write_text("pass\n")
    notify = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + notify.name)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    started = time.monotonic()
    daemon = DaemonProcess(
        tmp_path,
        {
            "instrument": "POWGEN",
            "address": f"127.0.0.1:{port}",
            "script_dir": str(tmp_path / "scripts"),
            "update_every": 0.5,
            "system_mem_limit_perc": 0,
            "ready_grace": 3,
        },
    )
    try:
        wait_for(lambda: any(m == "READY=1" for _, m in notify.messages), 30, "READY=1", daemon)
        ready_at = next(t for t, m in notify.messages if m == "READY=1")
        assert ready_at - started >= 3, "READY before the grace although the DAS never answered"
        assert any("(the DAS was not reachable within 3 s)" in s for s in notify.statuses()), (
            notify.statuses()
        )
        daemon.wait_for("telling systemd the service is ready although", timeout=10)
    finally:
        daemon.stop()
        notify.close()
