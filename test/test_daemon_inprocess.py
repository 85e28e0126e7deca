"""The daemon in-process, assembled from parts: the in-process fake listener, the real inotify watcher on a
temporary script directory, a memory guard the test fires, and a notifier that records what systemd would be
told. Its logic (hot reload, memory requests, a crashed session) is tested here in well under a second per
test; signals, exit codes and kill are tested on the subprocess (test_daemon.py)."""

from __future__ import annotations

import logging
import threading

from inprocess import FiringGuard, Notifier, Running, wait_until

from livereduce.config import parse_config, resolve
from livereduce.daemon import Daemon, Parts
from livereduce.listeners.fake import FakeEventListener
from livereduce.worker import ThreadWorker

COUNT = "record.append(accumulation.getNumberEvents())\n"


def accumulated(session) -> int:
    return session.state.events_accumulated


def test_post_proc_edit_swaps_in_and_keeps_the_accumulation(running):
    r = running({"proc": "pass\n", "post_proc": "x = 1\n"})
    session = r.session()
    wait_until(lambda: accumulated(session) >= 500, what="500 events accumulated")
    old = session.post_proc.md5
    r.write("post_proc", "y = 2\n")
    wait_until(lambda: session.post_proc.md5 != old, what="the new post_proc swapped in")
    before = accumulated(session)
    assert before >= 500
    wait_until(lambda: accumulated(session) > before, what="accumulation growing")
    assert r.session() is session  # the same session: nothing cleared
    assert r.stop() == 0


def test_proc_edit_restarts_the_session_with_a_new_registry(running):
    r = running({"proc": "pass\n"})
    first = r.session()
    wait_until(lambda: first.state.cycles >= 2)
    r.write("proc", "CloneWorkspace(input, OutputWorkspace=output)\n")
    wait_until(lambda: r.session() is not first, what="a new session")
    assert r.session().ads is not first.ads
    assert len(r.listeners) == 2  # and a new listener
    assert r.stop() == 0


def test_an_unchanged_rewrite_and_a_broken_edit_keep_the_running_session(running, caplog):
    r = running({"proc": "pass\n"})
    first = r.session()
    r.write("proc", "pass\n")  # same bytes: md5 unchanged
    wait_until(lambda: "is unchanged; nothing to do" in caplog.text, what="the unchanged rewrite noticed")
    r.write("proc", "x = 1\nif x\n")  # a syntax error on line 2
    wait_until(lambda: "rejected the new proc script" in caplog.text, what="the broken edit rejected")
    assert "reduce_FAKE_live_proc.py:2" in caplog.text
    cycles = first.state.cycles
    wait_until(lambda: first.state.cycles > cycles + 2, what="the old session still cycling")
    assert r.session() is first
    assert "restarting the session" not in caplog.text
    assert r.stop() == 0


def test_a_config_edit_stops_the_daemon_cleanly(running):
    r = running({"proc": "pass\n"})
    r.config_path.write_text(r.config_path.read_text().replace("0.02", "0.03"))
    r.thread.join(10)
    assert r.exit_code == 0


def test_memory_soft_compresses_and_hard_restarts(running, caplog):
    r = running({"proc": "pass\n"}, system_mem_limit_perc=50)
    first = r.session()
    wait_until(lambda: accumulated(first) >= 300)
    guard = r.guards[0]
    guard.on_soft(900.0, 800.0, 1000.0)
    wait_until(lambda: "accumulation compressed" in caplog.text, what="the accumulation compressed")
    assert r.session() is first
    guard.on_hard(1100.0, 800.0, 1000.0)
    wait_until(lambda: r.session() is not first and guard.restarts == 1, what="a restart, and the guard told")
    assert "1100 MB exceeds the limit 1000 MB" in caplog.text
    second = r.session()
    assert "restored the checkpoint of run 1" in caplog.text  # the first restart resumes
    assert (
        accumulated(second) >= accumulated(first) - 100 * 3
    )  # (what arrived since the last checkpoint is re-sent)
    wait_until(lambda: accumulated(second) >= 300)
    guard.on_hard(1200.0, 800.0, 1000.0)  # again within memory_restart_interval: the accumulation is too big
    wait_until(lambda: r.session() is not second, what="a second restart")
    assert "the accumulation itself is too large; starting a new, empty one" in caplog.text
    assert caplog.text.count("restored the checkpoint") == 1  # the second restart did not resume
    assert r.stop() == 0


def test_a_crashed_session_thread_is_reported_and_restarted(running, caplog):
    r = running({"proc": "pass\n"})
    first = r.session()

    extract = first.listener.extract

    def extract_then_exit():
        first.listener.extract = extract  # once: the listener is kept for the next session
        raise SystemExit(3)  # not an Exception: escapes the session's per-cycle error handling

    first.listener.extract = extract_then_exit
    wait_until(lambda: r.session() is not first, what="a replacement session")
    assert "the session thread crashed" in caplog.text and "SystemExit: 3" in caplog.text
    assert "the session's worker ended unexpectedly; starting another from the last checkpoint" in caplog.text
    wait_until(lambda: r.session().state.cycles >= 2, what="the new session cycling")
    assert r.stop() == 0


def test_systemd_is_told_ready_status_and_stopping(running):
    r = running({"proc": "pass\n"})
    wait_until(lambda: any(m.startswith("STATUS=running") for m in r.notifier.sent), what="a running status")
    assert r.notifier.sent[0] == "READY=1"
    assert "WATCHDOG=1" in r.notifier.sent  # fed while the session makes progress
    assert r.stop() == 0
    assert r.notifier.sent[-1] == "STOPPING=1"


class CrashingGuard:
    """A memory guard whose thread dies of a bug, as a guard's thread could."""

    def __init__(self, on_soft, on_hard):
        self._thread = threading.Thread(target=self._run, name="memory-guard-test")

    def _run(self):
        raise RuntimeError("a bug in the guard")

    def start(self):
        self._thread.start()

    def stop(self):
        pass


def test_a_crashed_helper_thread_is_logged_and_started_again(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    r = Running.__new__(Running)
    made = []

    def guard(on_soft, on_hard):
        made.append(CrashingGuard(on_soft, on_hard) if not made else FiringGuard(on_soft, on_hard))
        return made[-1]

    r.dir = tmp_path / "scripts"
    r.dir.mkdir()
    (r.dir / "reduce_FAKE_live_proc.py").write_text("pass\n")
    raw = {
        "instrument": "FAKE",
        "listener": "fake_event",
        "script_dir": str(r.dir),
        "update_every": 0.05,
        "system_mem_limit_perc": 50,
        "state_dir": str(tmp_path / "state"),
    }
    cfg, _ = parse_config(raw)
    daemon = Daemon(
        cfg,
        resolve(cfg),
        Parts(
            make_listener=lambda: FakeEventListener(events_per_extract=10),
            memory_guard=guard,
            notifier=Notifier(),
            worker=ThreadWorker,
        ),
    )
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_until(lambda: len(made) == 2, what="the guard started again")
        assert (
            "thread memory-guard-test crashed" in caplog.text
            and "RuntimeError: a bug in the guard" in caplog.text
        )
        assert "starting memory-guard-test again" in caplog.text
    finally:
        daemon.request_stop()
        thread.join(15)
