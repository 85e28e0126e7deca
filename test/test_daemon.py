"""The daemon as a subprocess: config errors and exit codes, signals, and `check`, as an operator meets them.
The daemon's logic (hot reload, memory requests, crashes) is tested in-process in test_daemon_inprocess.py."""

from __future__ import annotations

import os
import signal
import time

import pytest
from daemon_helpers import DaemonProcess, fake_event_config, run_once


def write_script(tmp_path, kind, text):
    path = tmp_path / "scripts" / f"reduce_FAKE_live_{kind}.py"
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # editors that save by rename must be caught
    return path


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('{"instrument": "FAKE",\n "update_every": 3,,}', "line 2"),
        ({"instrument": "ISIS_Histogram", "update_every": "fast"}, "update_every"),
        ({"instrument": "ISIS_Event", "accum_method": "Sum"}, "accum_method"),
        ({"instrument": "ISIS_Event", "mem_check_interval_sec": -1}, "mem_check_interval_sec"),
        ({"instrument": "ISIS_Event", "watchdog": {"threshold": 5}}, "threshold"),
        ({"instrument": "ISIS_Histogram", "accum_method": "Add"}, "accum_method"),
        ({"instrument": "POWGENN"}, "POWGEN"),
    ],
)
def test_config_errors_exit_2_with_a_clear_message(tmp_path, config, expected):
    result = run_once(tmp_path, config)
    assert result.returncode == 2, result.stdout + result.stderr
    text = (
        result.stdout + result.stderr + (tmp_path / "livereduce.log").read_text(errors="replace")
        if (tmp_path / "livereduce.log").exists()
        else result.stdout + result.stderr
    )
    assert "configuration error" in text and expected in text


def test_missing_scripts_are_waited_for_and_picked_up(tmp_path):
    """No script yet (or an /SNS mount not back): the daemon stays up, says what it looks for, and starts the
    session when the script appears (exit 2 would leave the service down until someone notices)."""
    daemon = DaemonProcess(tmp_path, fake_event_config(tmp_path))
    try:
        log = daemon.wait_for("waiting for scripts:")
        assert "reduce_FAKE_live_proc.py" in log
        assert daemon.proc.poll() is None
        write_script(tmp_path, "proc", "pass\n")
        daemon.wait_for("session started (scripts usable)", timeout=90)
        daemon.wait_for("run 1 (RUNNING)")
    finally:
        daemon.stop()


def test_sigterm_stops_within_five_seconds(tmp_path):
    write_script(tmp_path, "proc", "pass\n")
    daemon = DaemonProcess(tmp_path, fake_event_config(tmp_path))
    try:
        daemon.wait_for("session started")
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(5) == 0
        assert time.monotonic() - started < 5
        assert "SIGTERM received" in daemon.log()
    finally:
        daemon.stop()


def test_check_finds_unsupported_algorithm_and_syntax_error(tmp_path):
    write_script(
        tmp_path,
        "proc",
        "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='40000,100,60000')\n"
        "FitPeak(InputWorkspace=output)\n",
    )
    write_script(tmp_path, "post_proc", "y = 2\nfor\n")
    result = run_once(tmp_path, fake_event_config(tmp_path), "check")
    assert result.returncode != 0
    assert "reduce_FAKE_live_proc.py:2: FitPeak is not provided" in result.stdout
    assert "reduce_FAKE_live_post_proc.py:2" in result.stdout and "SyntaxError" in result.stdout


def test_check_passes_good_scripts(tmp_path):
    write_script(
        tmp_path, "proc", "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='40000,100,60000')\n"
    )
    products = tmp_path / "products"
    write_script(
        tmp_path,
        "post_proc",
        "SumSpectra(InputWorkspace=input, OutputWorkspace=output)\n"
        f"SaveAscii(InputWorkspace=output, Filename={str(products / 'live.txt')!r})\n",
    )
    products.mkdir()
    result = run_once(tmp_path, fake_event_config(tmp_path), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check passed" in result.stdout and "OK dry run" in result.stdout
    assert not (products / "live.txt").exists()  # synthetic data never overwrites real products


def test_sighup_rereads_scripts(tmp_path):
    write_script(tmp_path, "proc", "pass\n")
    daemon = DaemonProcess(tmp_path, fake_event_config(tmp_path))
    try:
        daemon.wait_for("run 1 (RUNNING)")
        daemon.signal(signal.SIGHUP)
        log = daemon.wait_for("restarting the session: SIGHUP (resuming from the checkpoint)")
        assert "SIGHUP received: re-reading scripts" in log
        daemon.wait_for("session started (SIGHUP)")
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()


def test_a_missing_script_directory_is_waited_for(tmp_path):
    """An /SNS mount not back yet: the daemon stays up and starts when the directory and its script appear."""
    config = fake_event_config(tmp_path)
    scripts = tmp_path / "scripts"
    scripts.rmdir()
    daemon = DaemonProcess(tmp_path, config)
    try:
        log = daemon.wait_for("waiting for scripts:")
        assert "script_dir does not exist" in log
        write_script(tmp_path, "proc", "pass\n")  # makes the directory too
        daemon.wait_for("session started (scripts usable)", timeout=60)
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
