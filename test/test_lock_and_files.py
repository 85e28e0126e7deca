"""One daemon per state directory; scripts and a config that others may write; unreadable scripts; a log file
that cannot be written. Real daemons (subprocesses) where the exit code and what the operator sees matter."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import stat
from pathlib import Path

import pytest
from daemon_helpers import DaemonProcess, error_lines, fake_event_config, run_config_file

from livereduce import logs
from livereduce.errors import ScriptError
from livereduce.lock import LOCK_NAME, AlreadyRunning, InstanceLock, LockError
from livereduce.scripts import compile_script, read_script

AS_ROOT = os.geteuid() == 0


def setup(tmp_path: Path, **extra) -> dict:
    """A fake-event config with a trivial proc script under tmp_path/scripts and its own state directory."""
    config = fake_event_config(tmp_path, **{"state_dir": str(tmp_path / "state"), **extra})
    (tmp_path / "scripts" / "reduce_FAKE_live_proc.py").write_text("pass\n")
    return config


def write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "livereduce.conf"
    path.write_text(
        json.dumps({"log_file": str(tmp_path / "livereduce.log"), "status": {"port": 0}, **config})
    )
    path.chmod(0o644)
    return path


# -- single instance ---------------------------------------------------------------------------------


def test_a_second_daemon_on_one_state_dir_exits_2_naming_the_lock_and_the_first_pid(tmp_path):
    first = DaemonProcess(tmp_path, setup(tmp_path))
    try:
        first.wait_for("session started")
        lock = tmp_path / "state" / LOCK_NAME
        second = run_config_file(first.config_path)  # the same file, not rewritten: the first watches it
        assert second.returncode == 2, second.stdout + second.stderr
        assert "Traceback" not in second.stdout + second.stderr
        errors = error_lines(second.stderr)
        assert len(errors) == 1 and str(lock) in errors[0] and f"PID {first.proc.pid}" in errors[0], errors
        progress = first.log().count("livereduce.progress")
        first.wait_for("livereduce.progress", count=progress + 1)  # the first keeps running
        assert first.proc.poll() is None
        assert lock.read_text().strip() == str(first.proc.pid)
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        assert stat.S_IMODE(lock.parent.stat().st_mode) == 0o700
    finally:
        first.stop()
    assert first.proc.returncode == 0


def test_the_lock_is_held_for_the_block_and_free_afterwards(tmp_path):
    state = tmp_path / "new" / "state"
    with InstanceLock(state) as held:
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        with pytest.raises(AlreadyRunning) as err:  # flock is per open file: a second open conflicts
            InstanceLock(state).acquire()
        assert err.value.pid == str(os.getpid()) and str(held.path) in str(err.value)
    again = InstanceLock(state)
    again.acquire()  # released at the end of the block
    again.release()


def test_a_symlink_at_the_lock_path_is_not_followed(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    target = tmp_path / "precious"
    target.write_text("keep me")
    (state / LOCK_NAME).symlink_to(target)
    with pytest.raises(LockError, match=LOCK_NAME):
        InstanceLock(state).acquire()
    assert target.read_text() == "keep me"


# -- files others may write --------------------------------------------------------------------------

TARGETS = {
    "script_dir": lambda tmp: tmp / "scripts",
    "script": lambda tmp: tmp / "scripts" / "reduce_FAKE_live_proc.py",
    "config": lambda tmp: tmp / "livereduce.conf",
}


@pytest.mark.parametrize("bit", [stat.S_IWGRP, stat.S_IWOTH], ids=["g+w", "o+w"])
@pytest.mark.parametrize("target", list(TARGETS))
def test_writable_by_others_is_refused_naming_path_and_mode(tmp_path, target, bit):
    config = write_config(tmp_path, setup(tmp_path, update_every=0))
    path = TARGETS[target](tmp_path)
    path.chmod(stat.S_IMODE(path.stat().st_mode) | bit)
    mode = f"{stat.S_IMODE(path.stat().st_mode):04o}"
    result = run_config_file(config)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and str(path) in errors[0] and f"mode {mode}" in errors[0], errors
    assert ("group-writable" if bit == stat.S_IWGRP else "world-writable") in errors[0]


@pytest.mark.parametrize("target", list(TARGETS))
def test_allow_insecure_scripts_turns_the_refusal_into_a_warning(tmp_path, target):
    config = write_config(tmp_path, setup(tmp_path, update_every=0, allow_insecure_scripts=True))
    path = TARGETS[target](tmp_path)
    path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IWGRP | stat.S_IWOTH)
    result = run_config_file(config)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out  # update_every 0: one cycle, then a clean exit
    warnings = [line for line in result.stderr.splitlines() if " - WARNING - " in line and str(path) in line]
    assert len(warnings) == 1 and "allow_insecure_scripts" in warnings[0], out


# -- unreadable scripts ------------------------------------------------------------------------------


def _waits_for_the_script(tmp_path, config, proc, reason):
    """An unreadable script is not a reason to exit (exit 2 would keep the service down; the fix arrives as a
    file): the daemon stays up, says why, and starts once the script is readable."""
    daemon = DaemonProcess(tmp_path, config)
    try:
        log = daemon.wait_for("waiting for scripts:", timeout=30)
        line = next(line for line in log.splitlines() if "waiting for scripts:" in line)
        assert str(proc) in line and reason in line, line
        assert daemon.proc.poll() is None and "Traceback" not in log
        if proc.is_dir():
            proc.rmdir()
        proc.write_text("pass\n")
        proc.chmod(0o644)
        daemon.wait_for("session started (scripts usable)", timeout=90)
    finally:
        daemon.stop()


def test_a_script_name_on_a_directory_is_waited_for_naming_it(tmp_path):
    """Root reads any file, so a script that even root cannot read is made a directory."""
    config = setup(tmp_path)
    proc = tmp_path / "scripts" / "reduce_FAKE_live_proc.py"
    proc.unlink()
    proc.mkdir()
    _waits_for_the_script(tmp_path, config, proc, "cannot read script")


@pytest.mark.skipif(AS_ROOT, reason="root reads a chmod 000 file; the directory case above covers root")
def test_a_chmod_000_script_is_waited_for_naming_it(tmp_path):
    config = setup(tmp_path)
    proc = tmp_path / "scripts" / "reduce_FAKE_live_proc.py"
    proc.chmod(0)
    _waits_for_the_script(tmp_path, config, proc, "Permission denied")


def test_reading_an_unreadable_script_is_a_script_error(tmp_path):
    """What the daemon's hot-reload path relies on: `except ScriptError` keeps the running version."""
    not_a_file = tmp_path / "reduce_FAKE_live_proc.py"
    not_a_file.mkdir()
    for call in (lambda: read_script(not_a_file), lambda: compile_script(not_a_file, "proc")):
        with pytest.raises(ScriptError, match="cannot read script") as err:
            call()
        assert err.value.filename == str(not_a_file)
    if not AS_ROOT:
        locked = tmp_path / "locked.py"
        locked.write_text("pass\n")
        locked.chmod(0)
        with pytest.raises(ScriptError, match="Permission denied"):
            read_script(locked)


# -- the log file ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["a-directory", "under-a-file"])
def test_an_unwritable_log_path_warns_on_stderr_and_runs(tmp_path, where):
    if where == "a-directory":  # root may write anywhere, so the log path is made unwritable by its type
        log_file = tmp_path / "logdir"
        log_file.mkdir()
    else:
        (tmp_path / "plain").write_text("")
        log_file = tmp_path / "plain" / "livereduce.log"
    daemon = DaemonProcess(tmp_path, setup(tmp_path, log_file=str(log_file)))
    try:
        out = daemon.wait_for_output("session started")
        warnings = [line for line in out.splitlines() if "cannot write the log file" in line]
        assert len(warnings) == 1 and str(log_file) in warnings[0]
        daemon.wait_for_output("livereduce.progress")
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0
    assert "Traceback" not in daemon.output()


def test_log_dir_removed_then_sigusr1_keeps_running_on_stderr(tmp_path):
    log_dir = tmp_path / "logs"
    daemon = DaemonProcess(tmp_path, setup(tmp_path, log_file=str(log_dir / "livereduce.log")))
    daemon.log_path = log_dir / "livereduce.log"
    try:
        daemon.wait_for("session started")
        shutil.rmtree(log_dir)
        daemon.signal(signal.SIGUSR1)
        out = daemon.wait_for_output("cannot write the log file")
        progress = out.count("livereduce.progress")
        daemon.wait_for_output("livereduce.progress", count=progress + 2)  # still running, on stderr
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0
    assert "Traceback" not in daemon.output()


def test_reopen_falls_back_then_recovers(tmp_path):
    log_dir = tmp_path / "logs"
    path = log_dir / "livereduce.log"
    logs.setup_logging(str(path), "INFO")
    try:
        logging.getLogger("livereduce.test").info("before")
        shutil.rmtree(log_dir)
        assert logs.reopen() is False
        logging.getLogger("livereduce.test").info("while the directory is gone")  # does not raise
        log_dir.mkdir()
        assert logs.reopen() is True
        logging.getLogger("livereduce.test").warning("after")
        assert " - livereduce.test - WARNING - after" in path.read_text()
    finally:
        root = logging.getLogger()
        for handler in list(logs._handlers):
            root.removeHandler(handler)
            handler.close()
        logs._handlers.clear()


def test_a_log_file_that_becomes_writable_again_is_taken_up(tmp_path):
    """A log path that cannot be written at start (its directory's mount not back) is retried while the daemon
    runs on stderr; once it can be written, the log goes there again."""
    log_dir = tmp_path / "logs"
    log_dir.write_text("")  # a file where the directory should be: not writable, even by root
    daemon = DaemonProcess(tmp_path, setup(tmp_path, log_file=str(log_dir / "livereduce.log")))
    daemon.log_path = log_dir / "livereduce.log"
    try:
        daemon.wait_for_output("cannot write the log file")
        log_dir.unlink()
        log_dir.mkdir()
        daemon.wait_for("the log file can be written again", timeout=60)
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
