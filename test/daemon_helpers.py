"""Running the real daemon as a subprocess, and reading its log as an operator would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fake_event_config(tmp_path: Path, **extra) -> dict:
    """A config for the in-process fake event listener with scripts in tmp_path/scripts (made if missing)."""
    scripts = tmp_path / "scripts"
    scripts.mkdir(exist_ok=True)
    return {
        "instrument": "FAKE",
        "listener": "fake_event",
        "listener_options": {"rate": 2000, "seed": 1},
        "script_dir": str(scripts),
        "update_every": 0.3,
        "system_mem_limit_perc": 0,
        **extra,
    }


class DaemonProcess:
    """`python scripts/livereduce.py CONFIG` in a temporary directory, with its log file at hand."""

    def __init__(self, tmp_path: Path, config: dict, *, args: tuple[str, ...] = ()):
        self.dir = tmp_path
        self.log_path = tmp_path / "livereduce.log"
        # the status page on a free port (the default 8140 would be shared by daemons of parallel tests)
        config = {"log_file": str(self.log_path), "status": {"port": 0}, **config}
        self.config_path = tmp_path / "livereduce.conf"
        self.config_path.write_text(json.dumps(config, indent=2))
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "livereduce.py"), *args, str(self.config_path)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # its merged stdout/stderr is read as it comes, so the pipe never fills and blocks the daemon
        self._lines: list[str] = []
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line)
        self._done.set()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_for(self, text: str, timeout: float = 30.0, count: int = 1) -> str:
        """Wait until `text` appears `count` times in the log; fail with the log's tail if it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if log.count(text) >= count:
                return log
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"{text!r} (×{count}) not in the log after {timeout} s; exit={self.proc.poll()}\n"
            f"--- log tail ---\n{self.log()[-4000:]}\n--- output ---\n{self.output()[-2000:]}"
        )

    def output(self) -> str:
        """What it printed so far (stdout and stderr)."""
        return "".join(self._lines)

    def wait_for_output(self, text: str, timeout: float = 30.0, count: int = 1) -> str:
        """Wait until `text` appears `count` times in the output; fail with the output's tail if it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if out.count(text) >= count:
                return out
            if self._done.is_set():
                break
            time.sleep(0.1)
        raise AssertionError(
            f"{text!r} (×{count}) not in the output after {timeout} s; exit={self.proc.poll()}\n"
            f"--- output tail ---\n{self.output()[-4000:]}"
        )

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout:
            self.proc.stdout.close()


def run_once(
    tmp_path: Path, config: dict | str, *args: str, timeout: float = 60.0
) -> subprocess.CompletedProcess:
    """Run the CLI to completion (config errors, `check`) and return its result."""
    path = tmp_path / "livereduce.conf"
    path.write_text(config if isinstance(config, str) else json.dumps({"status": {"port": 0}, **config}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "livereduce.py"), *args, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_config_file(
    config_path: Path, *args: str, cwd: Path | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess:
    """Run the CLI to completion on a config file that already exists (written, chmod-ed or shared by the test),
    without rewriting it: a daemon watching that file would take a rewrite as a config change."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "livereduce.py"), *args, str(config_path)],
        cwd=cwd or config_path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(text: str) -> list[str]:
    """The ERROR lines of a run's output (the log format's ' - ERROR - ')."""
    return [line for line in text.splitlines() if " - ERROR - " in line]
