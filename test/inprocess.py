"""The daemon in-process, assembled from parts, for tests of its logic: the in-process fake listener, the real
inotify watcher on a temporary script directory, a memory guard the test fires, and a notifier that records what
systemd would be told. The `running` fixture (conftest.py) starts one and stops it after the test."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from livereduce.config import parse_config, resolve
from livereduce.daemon import Daemon, Parts
from livereduce.listeners.fake import FakeEventListener
from livereduce.watch import Watcher
from livereduce.worker import ThreadWorker


class Notifier:
    """Records the sd_notify messages instead of sending them."""

    def __init__(self):
        self.sent: list[str] = []

    def ready(self):
        self.sent.append("READY=1")

    def status(self, text):
        self.sent.append(f"STATUS={text}")

    def watchdog(self):
        self.sent.append("WATCHDOG=1")

    def stopping(self):
        self.sent.append("STOPPING=1")


class FiringGuard:
    """A memory guard the test fires by hand (the real one reads RSS; see test_ops_modules)."""

    def __init__(self, on_soft, on_hard):
        self.on_soft, self.on_hard = on_soft, on_hard
        self.restarts = 0

    def start(self):
        pass

    def stop(self):
        pass

    def restarted(self):
        self.restarts += 1


def wait_until(condition, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} not reached within {timeout} s")


class DaemonOnThread:
    """A Daemon running on a thread of the test: `launch` waits until it runs; `stop` asks it to stop as SIGTERM
    does and returns its exit code."""

    stop_timeout = 15.0

    def launch(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        assert self.daemon.started.wait(10), "the daemon did not start"

    def _run(self):
        self.exit_code = self.daemon.run()

    def stop(self) -> int | None:
        self.daemon.request_stop()
        self.thread.join(self.stop_timeout)
        assert not self.thread.is_alive(), "the daemon did not stop"
        return self.exit_code


class Running(DaemonOnThread):
    """A daemon running on a thread, with its script directory and config file."""

    def __init__(
        self, tmp_path: Path, scripts: dict[str, str], *, files: dict[str, str] | None = None, **config
    ):
        """`scripts`: kind → text; `files`: other files for the script directory (name → text)."""
        self.dir = tmp_path / "scripts"
        self.dir.mkdir()
        for kind, text in scripts.items():
            self.write(kind, text)
        for name, text in (files or {}).items():
            (self.dir / name).write_text(text)
        self.config_path = tmp_path / "livereduce.conf"
        raw = {
            "instrument": "FAKE",
            "listener": "fake_event",
            "script_dir": str(self.dir),
            "update_every": 0.02,
            "system_mem_limit_perc": 0,
            "state_dir": str(tmp_path / "state"),
            **config,
        }
        self.config_path.write_text(json.dumps(raw))
        cfg, _ = parse_config(raw)
        self.listeners: list[FakeEventListener] = []
        self.guards: list[FiringGuard] = []
        self.notifier = Notifier()

        def listener():
            self.listeners.append(FakeEventListener(events_per_extract=100, seed=len(self.listeners)))
            return self.listeners[-1]

        def guard(on_soft, on_hard):
            self.guards.append(FiringGuard(on_soft, on_hard))
            return self.guards[-1]

        self.launch(
            Daemon(
                cfg,
                resolve(cfg),
                Parts(
                    make_listener=listener,
                    watch=Watcher,
                    memory_guard=guard,
                    notifier=self.notifier,
                    worker=ThreadWorker,
                    watchdog_every=0.05,  # as if systemd set WATCHDOG_USEC=100000
                ),
                config_path=str(self.config_path),
            )
        )

    def write(self, kind: str, text: str):
        path = self.dir / f"reduce_FAKE_live_{kind}.py"
        temp = path.with_suffix(".tmp")
        temp.write_text(text)
        temp.replace(path)  # as editors save: a new file renamed over the old

    def session(self):
        return self.daemon.session

    def records(self, session=None):
        """The list post_proc appends the accumulation's event count to, each cycle."""
        session = session or self.session()
        script = session.post_proc
        return script.namespace.setdefault("record", []) if script is not None else []
