"""The worker process: a hung script, sys.exit() in a script, and kill -9 of the whole daemon, against the real
daemon (a subprocess) reading a real fake SMS over TCP. The totals compared are what the server sent."""

from __future__ import annotations

import json
import os
import time

import h5py
import pytest
from daemon_helpers import DaemonProcess

from livereduce.servers.adara import FakeSMS

POST_PROC = """import json, os
from mantid.simpleapi import SaveNexus
run = accumulation.getRun()
number = int(run.getProperty("run_number").value)
record = {{"run_number": number, "events": accumulation.getNumberEvents()}}
with open(os.path.join({out!r}, "run_%d.json.tmp" % number), "w") as f:
    json.dump(record, f)
os.replace(os.path.join({out!r}, "run_%d.json.tmp" % number), os.path.join({out!r}, "run_%d.json" % number))
SaveNexus(InputWorkspace=accumulation, Filename=os.path.join({out!r}, "run_%d.nxs" % number))
"""

# hangs once, in the cycle that finds no marker: the worker running it must be killed
HANG_ONCE = """import os
marker = os.path.join({out!r}, "hung-once")
if input.getNumberEvents() and not os.path.exists(marker):
    open(marker, "w").close()
    while True:
        pass
"""


def setup(tmp_path, proc: str | None = None):
    out, scripts = tmp_path / "out", tmp_path / "scripts"
    out.mkdir()
    scripts.mkdir()
    (scripts / "reduce_PG3_live_post_proc.py").write_text(POST_PROC.format(out=str(out)))
    if proc:
        (scripts / "reduce_PG3_live_proc.py").write_text(proc.format(out=str(out)))
    return out, scripts


def config(port, scripts, tmp_path, **extra):
    return {
        "instrument": "POWGEN",
        "address": f"127.0.0.1:{port}",
        "script_dir": str(scripts),
        "update_every": 0.5,
        "accum_method": "Add",
        "system_mem_limit_perc": 0,
        "state_dir": str(tmp_path / "state"),
        "checkpoint_every": 2,
        **extra,
    }


def wait_run(out, run: int, expected: int, timeout: float = 60.0) -> dict:
    """The run's record once it holds `expected` events (or the last one seen, when time runs out)."""
    path, record, deadline = out / f"run_{run}.json", {}, time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            record = json.loads(path.read_text())
            if record["events"] >= expected:
                return record
        time.sleep(0.1)
    return record


def test_a_run_that_ends_while_the_daemon_is_down_is_reported_incomplete(tmp_path):
    """A DAS does not send a finished run again: killed mid-run and started after the run's end, the daemon
    cannot get the events since its last checkpoint. It must say so, not pass the partial run off as whole."""
    out, scripts = setup(tmp_path)
    sms = FakeSMS(
        port=0, rate=20_000, run_seconds=12.0, runs=1, instrument="POWGEN", seed=9, wait_for_client=True
    )
    port = sms.start()
    cfg = config(port, scripts, tmp_path)
    daemon = DaemonProcess(tmp_path, cfg)
    try:
        daemon.wait_for("cycle ", timeout=60, count=3)  # past the first checkpoint (checkpoint_every 2)
        assert not sms.done.is_set(), "the run ended before the kill: this test needs a mid-run kill"
        daemon.proc.kill()
        daemon.proc.wait(10)
        daemon.stop()
        assert sms.done.wait(60), "the fake SMS did not finish its run"
        daemon = DaemonProcess(tmp_path, cfg)
        log = daemon.wait_for("a run ended while livereduce was down or disconnected", timeout=60)
        assert "so run 1 misses what was sent after its last checkpoint" in log
        record = json.loads((out / "run_1.json").read_text())
        assert record["events"] < sms.sent_events_per_run[1]  # the loss is real, and now it is said
    finally:
        daemon.stop()
        sms.stop()


def test_a_hung_script_is_stopped_and_the_run_is_complete(tmp_path):
    out, scripts = setup(tmp_path, HANG_ONCE)
    sms = FakeSMS(
        port=0, rate=20_000, run_seconds=4.0, runs=1, instrument="POWGEN", seed=5, wait_for_client=True
    )
    port = sms.start()
    daemon = DaemonProcess(tmp_path, config(port, scripts, tmp_path, step_timeout=2))
    try:
        log = daemon.wait_for("the script is hung", timeout=60)
        assert "stopping its worker" in log
        assert sms.done.wait(60)
        sent = sms.sent_events_per_run[1]
        record = wait_run(out, 1, sent)
        assert record["events"] == sent, f"accumulated {record.get('events')}, sent {sent}"
        assert daemon.proc.poll() is None  # the daemon never went down
    finally:
        daemon.stop()
        sms.stop()


def test_sys_exit_in_a_script_is_a_script_error_and_the_session_goes_on(tmp_path):
    _out, scripts = setup(tmp_path, "import sys\nsys.exit(3)\n")
    sms = FakeSMS(port=0, rate=5_000, run_seconds=30, instrument="POWGEN", seed=6, wait_for_client=True)
    port = sms.start()
    daemon = DaemonProcess(tmp_path, config(port, scripts, tmp_path))
    try:
        log = daemon.wait_for("the same as before, 3 times in a row", timeout=60)
        assert "reduce_PG3_live_proc.py:2: SystemExit: 3" in log
        assert "worker ended unexpectedly" not in log
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
        sms.stop()


@pytest.mark.parametrize("trials", [int(os.environ.get("LIVEREDUCE_KILL_TRIALS", "3"))])
def test_kill_9_then_restart_resumes_the_run_with_nothing_lost_or_doubled(tmp_path, trials):
    """kill -9 at points spread over the run; after each, a new daemon resumes from the checkpoint. The long
    version (LIVEREDUCE_KILL_TRIALS=20) is in docs/reliability.md."""
    out, scripts = setup(tmp_path)
    run_seconds = 6.0 + 5.0 * trials  # restarts land inside the run (on a loaded machine see below)
    sms = FakeSMS(
        port=0,
        rate=20_000,
        run_seconds=run_seconds,
        runs=1,
        instrument="POWGEN",
        seed=7,
        wait_for_client=True,
    )
    port = sms.start()
    cfg = config(port, scripts, tmp_path)
    daemon = DaemonProcess(tmp_path, cfg)
    try:
        for k in range(trials):
            # this daemon's own cycles (the log file is shared by all of them): two, so it has checkpointed
            daemon.wait_for("cycle ", timeout=60, count=daemon.log().count("cycle ") + 2)
            time.sleep(0.3 + 0.37 * (k % 3))  # kill points spread over the cycle's phases on purpose
            daemon.proc.kill()
            daemon.proc.wait(10)
            daemon.stop()  # collects what it printed
            for name in os.listdir(out):  # every product a kill may have interrupted still opens
                if name.endswith(".nxs"):
                    with h5py.File(out / name, "r") as f:
                        assert "mantid_workspace_1" in f
            ended_while_down = sms.done.is_set()  # a slow machine: the run ended before this restart
            daemon = DaemonProcess(tmp_path, cfg)
        assert sms.done.wait(run_seconds + 60)
        sent = sms.sent_events_per_run[1]
        if ended_while_down:  # nothing can bring that tail back (the DAS does not resend a finished run) …
            log = daemon.wait_for("a run ended while livereduce was down or disconnected", timeout=60)
            assert "so run 1 misses what was sent after its last checkpoint" in log  # … but it is said
            return
        record = wait_run(out, 1, sent)
        assert record["events"] == sent, f"accumulated {record.get('events')}, sent {sent}"
        assert "restored the checkpoint of run 1" in daemon.log()
    finally:
        daemon.stop()
        sms.stop()
