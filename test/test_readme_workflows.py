"""Every workflow of README.md ("Running it", "Testing scripts locally") run word for word, as real processes.

Each test starts the README's fake server and then the daemon with the README's exact command line
(`python test/fake_server.py`, `python scripts/livereduce.py test/fake.conf`, ...; `python` is this
interpreter, `livereduce fake-dae` is `python -m livereduce fake-dae`), waits until the daemon has completed
at least two cycles with data, stops the daemon and then the server with Ctrl-C (SIGINT), and checks: both
exit 0, and the log has no Traceback, no ERROR line and no script error.

Where they run: the README's configs write `livereduce.log` into the working directory, so running in the
checkout would leave a log in the source tree. Each test runs in its own temporary directory that holds
symlinks `test` -> <repo>/test and `scripts` -> <repo>/scripts, so the README's relative command lines
and the configs' relative `script_dir` work unchanged, the scripts under test are the checkout's own, and
the log lands in the temporary directory (the test asserts that no livereduce.log appears in the checkout).
PYTHONPATH names the checkout so that `python -m livereduce` works without an install.

How cycles are counted (polling with a deadline, never a fixed sleep): the per-cycle INFO line
`cycle N: ..., accumulated E, ...` in the log when the daemon writes one; otherwise the daemon's own
systemd status ("running: run R, N cycles, E events, S script errors"), which it sends every 5 s to
$NOTIFY_SOCKET: the test binds a real datagram socket there (nothing else changes: without WATCHDOG_USEC
no watchdog is armed). Each workflow also needs evidence of data in its product: the histogram
workflows, accumulated counts > 0 in a cycle line or the status; the event workflow, the proc script's
"chunk of N events" lines with N > 0; the post-processing workflow, the post-proc script's per-period
report, with the exact counts the fake DAE serves.

The README's servers listen on fixed ports (56789; 59876 and 59877): a test whose port is taken is
skipped, naming the port.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STATUS = re.compile(r"^STATUS=(\w+): run (\d+), (\d+) cycles, (\d+) events, (\d+) script errors$", re.M)
CYCLE_LINE = re.compile(r" - INFO - cycle (\d+): (.*)")
ACCUMULATED = re.compile(r"accumulated ([\d,]+)")
CHUNK_LINE = re.compile(r"\[reduce_ISIS_Event_live_proc\.py\] chunk of (\d+) events in (\d+) spectra")
# test/fake_server.py: every bin of spectrum s in period p holds p*1000 + s; 10 spectra x 100 bins per period
POST_LINE = (
    "[reduce_ISIS_Histogram_live_post_proc.py] accumulation: "
    f"period 1: 10 spectra, {sum(1000 + s for s in range(1, 11)) * 100} counts; "
    f"period 3: 10 spectra, {sum(3000 + s for s in range(1, 11)) * 100} counts"
)
CYCLES = 2
DEADLINE_S = 40.0  # a deadline, not a wait: under a loaded CI the worker process may take seconds to start


def _port_free(port: int) -> bool:
    """Could a fake server bind this port now? (SO_REUSEADDR as the servers use: TIME_WAIT is no obstacle.)"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Workflow:
    """One README workflow in a temporary directory that looks like the checkout."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        (tmp_path / "test").symlink_to(REPO / "test", target_is_directory=True)
        (tmp_path / "scripts").symlink_to(REPO / "scripts", target_is_directory=True)
        self.log_path = tmp_path / "livereduce.log"
        name = f"livereduce-readme-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind("\0" + name)  # abstract namespace: no path-length limit
        self.notify.setblocking(False)
        self.notices: list[str] = []
        env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_USEC", "WATCHDOG_PID")}
        self.env = {
            **env,
            "PYTHONUNBUFFERED": "1",
            "NOTIFY_SOCKET": "@" + name,
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        }
        self.procs: list[subprocess.Popen] = []
        self.server: subprocess.Popen | None = None
        self.daemon: subprocess.Popen | None = None

    def _start(self, argv: list[str], out: str) -> subprocess.Popen:
        with open(self.dir / out, "w") as f:
            proc = subprocess.Popen(
                argv, cwd=self.dir, env=self.env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.procs.append(proc)
        return proc

    def text(self, name: str) -> str:
        path = self.dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start_server(self, argv: list[str], ready: str = "Ctrl-C to stop") -> None:
        self.server = self._start(argv, "server.out")
        deadline = time.monotonic() + DEADLINE_S
        while ready not in self.text("server.out"):
            if self.server.poll() == 2 and "in use" in self.text("server.out"):  # taken since _ports looked
                pytest.skip(self.text("server.out").strip())
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{' '.join(argv)} did not start (exit {self.server.poll()}):\n{self.text('server.out')}"
                )
            time.sleep(0.05)

    def start_daemon(self, config: str) -> None:
        self.daemon = self._start([sys.executable, "scripts/livereduce.py", config], "daemon.out")

    def statuses(self) -> list[tuple[str, int, int, int, int]]:
        while True:
            try:
                self.notices.append(self.notify.recv(65536).decode(errors="replace"))
            except BlockingIOError:
                break
        found = STATUS.findall("\n".join(self.notices))
        return [(m[0], int(m[1]), int(m[2]), int(m[3]), int(m[4])) for m in found]

    def cycles(self) -> tuple[int, bool]:
        """(completed cycles, whether they carried data) from the log's cycle lines or the systemd status."""
        lines = CYCLE_LINE.findall(self.log())
        status = [s for s in self.statuses() if s[0] == "running"]
        by_lines = max((int(n) for n, _ in lines), default=0)
        by_status = max((s[2] for s in status), default=0)
        accumulated = [
            int(m.group(1).replace(",", "")) for _, rest in lines if (m := ACCUMULATED.search(rest))
        ]
        data = any(n > 0 for n in accumulated) or any(s[3] > 0 for s in status)
        return max(by_lines, by_status), data

    def wait_until(self, what: str, condition) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not condition():
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"not seen within {DEADLINE_S} s: {what} (daemon exit {self.daemon.poll()}; cycles "
                    f"{self.cycles()}; status {self.notices[-3:]})\n--- log tail ---\n{self.log()[-4000:]}\n"
                    f"--- server ---\n{self.text('server.out')[-1500:]}"
                )
            time.sleep(0.1)

    def stop(self, proc: subprocess.Popen, name: str) -> int:
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as the README says
        try:
            return proc.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} did not stop on Ctrl-C within 10 s") from None

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        self.notify.close()


@pytest.fixture
def workflow(tmp_path):
    had_log = (REPO / "livereduce.log").exists()
    wf = Workflow(tmp_path)
    yield wf
    wf.close()
    if not had_log:
        assert not (REPO / "livereduce.log").exists(), "a workflow wrote livereduce.log in the checkout"


def _ports(*ports: int) -> None:
    for port in ports:
        if not _port_free(port):
            pytest.skip(
                f"port {port} is in use (another fake server or daemon running?); the README "
                f"workflow needs this fixed port"
            )


def _run(wf: Workflow, server: list[str], config: str, data_seen) -> str:
    """Server, then daemon; wait for CYCLES cycles with data; Ctrl-C the daemon, then the server."""
    wf.start_server(server)
    wf.start_daemon(config)

    def done():
        cycles, data = wf.cycles()
        return cycles >= CYCLES and data and data_seen(wf.log())

    wf.wait_until(f"{CYCLES} completed cycles with data", done)
    assert wf.stop(wf.daemon, "the daemon") == 0, wf.log()[-4000:]
    assert wf.stop(wf.server, "the fake server") == 0, wf.text("server.out")
    log = wf.log()
    assert "stopped (exit code 0)" in log
    assert "Traceback" not in log, log[-4000:]
    assert " - ERROR - " not in log, log[-4000:]
    assert "script error" not in log, log[-4000:]
    assert [s for s in wf.statuses() if s[4]] == [], "the daemon's status counted script errors"
    for out in ("daemon.out", "server.out"):
        assert "Traceback" not in wf.text(out), wf.text(out)[-4000:]
    return log


def test_histogram_workflow(workflow):
    """Terminal 1: python test/fake_server.py; terminal 2: python scripts/livereduce.py test/fake.conf."""
    _ports(56789)
    log = _run(workflow, [sys.executable, "test/fake_server.py"], "test/fake.conf", lambda log: True)
    assert "listener isis_histogram 127.0.0.1:56789" in log
    assert "5 periods, 10 spectra, 100 bins" in workflow.text("server.out")


def test_event_workflow(workflow):
    """python test/fake_event_server.py; python scripts/livereduce.py test/fake_event.conf."""
    _ports(59876, 59877)

    def chunks_with_events(log):
        return sum(int(n) > 0 for n, _ in CHUNK_LINE.findall(log)) >= CYCLES

    log = _run(
        workflow, [sys.executable, "test/fake_event_server.py"], "test/fake_event.conf", chunks_with_events
    )
    assert "listener isis_event 127.0.0.1:59876" in log
    assert "sent " in workflow.text("server.out")


def test_postprocessing_workflow(workflow):
    """python scripts/livereduce.py test/postprocessing/fake.conf, with test/fake_server.py running."""
    _ports(56789)
    log = _run(
        workflow,
        [sys.executable, "test/fake_server.py"],
        "test/postprocessing/fake.conf",
        lambda log: log.count(POST_LINE) >= CYCLES,
    )
    assert "using post_proc script" in log and "no proc script" in log


def test_fake_dae_workflow(workflow):
    """`livereduce fake-dae` (defaults: the guide's DAE) serves test/fake.conf, periods [1, 3] included."""
    _ports(56789)
    log = _run(workflow, [sys.executable, "-m", "livereduce", "fake-dae"], "test/fake.conf", lambda log: True)
    assert "listener isis_histogram 127.0.0.1:56789" in log
    assert "on 127.0.0.1:56789: 5 periods, 10 spectra, 100 bins" in workflow.text("server.out")
