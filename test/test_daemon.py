"""The daemon as a subprocess on the in-process fake listener: what an operator sees in its log and outputs."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from daemon_helpers import DaemonProcess, run_once

POST_PROC_COUNT = """import os
n = accumulation.getNumberEvents()
with open(os.path.join({out!r}, 'count-{tag}.txt'), 'w') as f:
    f.write(str(n))
"""


def base_config(tmp_path, **extra):
    scripts = tmp_path / "scripts"
    scripts.mkdir(exist_ok=True)
    return {"instrument": "FAKE", "listener": "fake_event", "listener_options": {"rate": 2000, "seed": 1},
            "script_dir": str(scripts), "update_every": 0.3, "system_mem_limit_perc": 0, **extra}


def write_script(tmp_path, kind, text):
    path = tmp_path / "scripts" / f"reduce_FAKE_live_{kind}.py"
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)          # editors that save by rename must be caught
    return path


def read_count(path) -> int:
    for _ in range(50):
        try:
            return int(path.read_text())
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"{path} never held a number")


@pytest.mark.parametrize(("config", "expected"), [
    ('{"instrument": "FAKE",\n "update_every": 3,,}', "line 2"),
    ({"instrument": "ISIS_Histogram", "update_every": "fast"}, "update_every"),
    ({"instrument": "ISIS_Event", "accum_method": "Sum"}, "accum_method"),
    ({"instrument": "ISIS_Event", "mem_check_interval_sec": -1}, "mem_check_interval_sec"),
    ({"instrument": "ISIS_Event", "watchdog": {"threshold": 5}}, "threshold"),
    ({"instrument": "ISIS_Histogram", "accum_method": "Add"}, "accum_method"),
    ({"instrument": "POWGENN"}, "POWGEN"),
])
def test_config_errors_exit_2_with_a_clear_message(tmp_path, config, expected):
    result = run_once(tmp_path, config)
    assert result.returncode == 2, result.stdout + result.stderr
    text = result.stdout + result.stderr + (tmp_path / "livereduce.log").read_text(errors="replace") \
        if (tmp_path / "livereduce.log").exists() else result.stdout + result.stderr
    assert "configuration error" in text and expected in text


def test_missing_scripts_exit_2_naming_the_files(tmp_path):
    result = run_once(tmp_path, base_config(tmp_path))
    assert result.returncode == 2
    assert "reduce_FAKE_live_proc.py" in result.stdout + result.stderr


def test_sigterm_stops_within_five_seconds(tmp_path):
    write_script(tmp_path, "proc", "pass\n")
    daemon = DaemonProcess(tmp_path, base_config(tmp_path))
    try:
        daemon.wait_for("session started")
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(5) == 0
        assert time.monotonic() - started < 5
        assert "SIGTERM received" in daemon.log()
    finally:
        daemon.stop()


def test_script_edits_proc_restarts_post_proc_swaps_broken_is_rejected(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write_script(tmp_path, "proc", "pass\n")
    write_script(tmp_path, "post_proc", POST_PROC_COUNT.format(out=str(out), tag="a"))
    daemon = DaemonProcess(tmp_path, base_config(tmp_path))
    try:
        daemon.wait_for("session started")
        for _ in range(100):                       # let the accumulation grow for a few cycles
            if (out / "count-a.txt").exists() and read_count(out / "count-a.txt") > 1000:
                break
            time.sleep(0.1)
        before = read_count(out / "count-a.txt")
        assert before > 1000

        # post_proc edited: swapped in, the accumulation keeps its events
        write_script(tmp_path, "post_proc", POST_PROC_COUNT.format(out=str(out), tag="b"))
        daemon.wait_for("post_proc script swapped in")
        for _ in range(100):
            if (out / "count-b.txt").exists():
                break
            time.sleep(0.1)
        assert read_count(out / "count-b.txt") >= before
        assert "restarting the session" not in daemon.log()

        # a broken edit is rejected with its line; the running script stays and keeps writing
        write_script(tmp_path, "post_proc", "x = 1\nif x\n")
        log = daemon.wait_for("rejected the new post_proc script")
        assert "reduce_FAKE_live_post_proc.py:2" in log
        seen = read_count(out / "count-b.txt")
        for _ in range(100):
            if read_count(out / "count-b.txt") > seen:
                break
            time.sleep(0.1)
        assert read_count(out / "count-b.txt") > seen

        # proc edited: the session restarts and clears
        write_script(tmp_path, "proc", "print('new proc')\n")
        daemon.wait_for("restarting the session: proc script changed")
        daemon.wait_for("new proc")

        # same content written again: md5 unchanged, nothing happens
        write_script(tmp_path, "proc", "print('new proc')\n")
        daemon.wait_for("md5")
        assert daemon.log().count("restarting the session") == 1
    finally:
        daemon.stop()


def test_config_edit_exits_cleanly(tmp_path):
    write_script(tmp_path, "proc", "pass\n")
    daemon = DaemonProcess(tmp_path, base_config(tmp_path))
    try:
        daemon.wait_for("session started")
        config = json.loads(daemon.config_path.read_text())
        config["update_every"] = 1
        daemon.config_path.write_text(json.dumps(config))
        assert daemon.wait(10) == 0
        assert "changed: exiting" in daemon.log()
    finally:
        daemon.stop()


def test_tiny_memory_limit_restarts_the_session(tmp_path):
    write_script(tmp_path, "proc", "pass\n")
    daemon = DaemonProcess(tmp_path, base_config(tmp_path, system_mem_limit_perc=0.01, mem_check_interval_sec=0.2))
    try:
        log = daemon.wait_for("restarting the session: memory", timeout=20)
        assert "MB exceeds the limit" in log
    finally:
        daemon.stop()


def test_check_finds_unsupported_algorithm_and_syntax_error(tmp_path):
    write_script(tmp_path, "proc", "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='40000,100,60000')\n"
                                   "FitPeak(InputWorkspace=output)\n")
    write_script(tmp_path, "post_proc", "y = 2\nfor\n")
    result = run_once(tmp_path, base_config(tmp_path), "check")
    assert result.returncode != 0
    assert "reduce_FAKE_live_proc.py:2: FitPeak is not provided" in result.stdout
    assert "reduce_FAKE_live_post_proc.py:2" in result.stdout and "SyntaxError" in result.stdout


def test_check_passes_good_scripts(tmp_path):
    write_script(tmp_path, "proc", "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='40000,100,60000')\n")
    products = tmp_path / "products"
    write_script(tmp_path, "post_proc", "SumSpectra(InputWorkspace=input, OutputWorkspace=output)\n"
                                        f"SaveAscii(InputWorkspace=output, Filename={str(products / 'live.txt')!r})\n")
    products.mkdir()
    result = run_once(tmp_path, base_config(tmp_path), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check passed" in result.stdout and "OK dry run" in result.stdout
    assert not (products / "live.txt").exists()      # synthetic data never overwrites real products


def test_sighup_rereads_scripts(tmp_path):
    write_script(tmp_path, "proc", "pass\n")
    daemon = DaemonProcess(tmp_path, base_config(tmp_path))
    try:
        daemon.wait_for("session started")
        daemon.signal(signal.SIGHUP)
        log = daemon.wait_for("restarting the session: proc script changed")
        assert "SIGHUP received: re-reading scripts" in log
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
