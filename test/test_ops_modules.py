"""The daemon's helpers, each for real: watcher on real files, memory guard on real RSS, sd_notify on a real
AF_UNIX socket, logging to a real file."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading

import psutil

from livereduce import logs, systemd
from livereduce.memory import MemoryGuard
from livereduce.scripts import md5_of_text
from livereduce.watch import Watcher


def test_watcher_sees_a_save_by_rename(tmp_path):
    script = tmp_path / "reduce_X_live_proc.py"
    script.write_text("pass\n")
    seen, event = [], threading.Event()
    watcher = Watcher([tmp_path], lambda p: (seen.append(p), event.set()))
    watcher.start()
    try:
        tmp = tmp_path / ".reduce_X_live_proc.py.swp"
        tmp.write_text("print(1)\n")
        os.replace(tmp, script)
        assert event.wait(5)
        assert str(script) in seen
        assert md5_of_text(script.read_bytes()) == hashlib.md5(b"print(1)\n").hexdigest()
    finally:
        watcher.stop()


def test_memory_guard_soft_before_hard(tmp_path):
    total_mb = psutil.virtual_memory().total / 1e6
    # what the guard measures: this process and its children (a forkserver an earlier test left counts too)
    rss = MemoryGuard(100, 1, on_soft=None, on_hard=None).rss_mb()
    calls = []
    # limit set so current RSS is between 80 % and 100 % of it: soft fires, hard does not
    guard = MemoryGuard(
        100 * rss / 0.9 / total_mb,
        0.05,
        on_soft=lambda *_mb: calls.append("soft"),
        on_hard=lambda *_mb: calls.append("hard"),
    )
    guard.check()
    assert calls == ["soft"]
    guard.check()
    assert calls == ["soft"]  # once per crossing
    ballast = bytearray(int(0.3 * rss * 1e6))  # real memory: now above the limit
    ballast[::4096] = b"x" * len(ballast[::4096])
    guard.check()
    assert calls == ["soft", "hard"]
    del ballast


def test_memory_guard_thread_fires_with_a_tiny_limit():
    fired = threading.Event()
    guard = MemoryGuard(0.001, 0.02, on_soft=lambda *_mb: None, on_hard=lambda *_mb: fired.set())
    guard.start()
    try:
        assert fired.wait(5)
    finally:
        guard.stop()


def test_sd_notify_reaches_a_real_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert systemd.ready() and systemd.status("3 cycles") and systemd.watchdog()
        assert [server.recv(100) for _ in range(3)] == [b"READY=1", b"STATUS=3 cycles", b"WATCHDOG=1"]
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert systemd.ready() is False  # outside systemd: a silent no-op


def test_logging_format_and_reopen(tmp_path):
    path = tmp_path / "livereduce.log"
    logs.setup_logging(str(path), "INFO")
    try:
        logging.getLogger("livereduce.script").info("[x.py] hello")
        os.rename(path, tmp_path / "livereduce.log.1")  # logrotate moves the file
        logs.reopen()
        logging.getLogger("livereduce.daemon").warning("after rotation")
        rotated = (tmp_path / "livereduce.log.1").read_text()
        assert " - livereduce.script - INFO - [x.py] hello" in rotated
        assert " - livereduce.daemon - WARNING - after rotation" in path.read_text()
    finally:
        root = logging.getLogger()
        for handler in list(logs._handlers):
            root.removeHandler(handler)
            handler.close()
        logs._handlers.clear()
