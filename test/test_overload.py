"""The worst night: the session cannot keep up. Events are buffered up to `max_buffered_events`, then whole
pulses are dropped and counted -- never memory without end, never a silent loss, never the run broken.

The EventBuffer's policy is checked directly; then a real daemon subprocess is driven at twice the rate its
proc script can sustain for 60 s (a fake SMS over TCP; the proc sleeps 5 µs per event: 200,000 events/s at
most), and every event the SMS sent is either in the run's accumulation or counted as dropped.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request

import numpy as np
from daemon_helpers import DaemonProcess

from livereduce.listeners.base import EventBuffer
from livereduce.servers.adara import FakeSMS


def test_a_full_buffer_drops_whole_pulses_and_counts_them():
    buffer = EventBuffer(capacity=4, max_events=10)
    ids, tofs = np.arange(4, dtype=np.uint32), np.full(4, 100.0, np.float32)
    assert buffer.add_pulse(1_000, ids, tofs) and buffer.add_pulse(2_000, ids, tofs)  # 8 of 10
    assert not buffer.add_pulse(3_000, ids, tofs)  # 12 > 10: the whole pulse goes
    assert buffer.add_pulse(4_000, ids[:2], tofs[:2])  # 10: fits exactly
    assert (len(buffer), buffer.dropped, buffer.dropped_pulses) == (10, 4, 1)
    waiting, seconds = buffer.lag(now_ns=1_000 + 2_500_000_000)
    assert (waiting, seconds) == (10, 2.5)  # the oldest waiting pulse is 2.5 s old
    chunk = buffer.swap()
    assert len(chunk) == 10 and chunk.pulse_time.tolist() == [1_000, 2_000, 4_000]
    assert buffer.lag() == (0, 0.0) and buffer.add_pulse(5_000, ids, tofs)  # room again after the extract
    assert buffer._index.size <= 10  # growth stopped at the cap


PROC = "import time\ntime.sleep(input.getNumberEvents() * 5e-6)  # 200,000 events/s at most\n"
POST_PROC = """import json, os
run = accumulation.getRun()
if run.hasProperty("run_number"):
    number = int(run.getProperty("run_number").value)
    with open(os.path.join({out!r}, "run_%d.json.tmp" % number), "w") as f:
        json.dump({{"events": accumulation.getNumberEvents()}}, f)
    os.replace(os.path.join({out!r}, "run_%d.json.tmp" % number), os.path.join({out!r}, "run_%d.json" % number))
"""


def test_twice_the_sustainable_rate_for_a_minute_loses_nothing_uncounted(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "reduce_PG3_live_proc.py").write_text(PROC)
    (scripts / "reduce_PG3_live_post_proc.py").write_text(POST_PROC.format(out=str(out)))
    sms = FakeSMS(
        port=0, rate=400_000, run_seconds=60, runs=1, instrument="POWGEN", seed=11, wait_for_client=True
    )
    port = sms.start()
    daemon = DaemonProcess(
        tmp_path,
        {
            "instrument": "POWGEN",
            "address": f"127.0.0.1:{port}",
            "script_dir": str(scripts),
            "update_every": 0.5,
            "accum_method": "Add",
            "preserve_events": True,
            "system_mem_limit_perc": 0,
            "max_buffered_events": 300_000,
        },
    )
    try:
        log = daemon.wait_for("status page at ", timeout=30)
        url = re.search(r"status page at (http://\S+/) ", log).group(1)
        assert sms.done.wait(120), "the fake SMS did not finish its run"
        log = daemon.wait_for("run 1 ended (", timeout=60)
        sent = sms.sent_events_per_run[1]
        deadline = time.monotonic() + 30
        while not (out / "run_1.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        accumulated = json.loads((out / "run_1.json").read_text())["events"]
        said = [int(n) for n in re.findall(r"dropped since the last cycle \((\d+) in all\)", log)]
        assert said, "the overload was never said in the log"
        dropped = max(said)
        assert accumulated + dropped == sent, f"accumulated {accumulated} + dropped {dropped} != sent {sent}"
        assert dropped > 0.2 * sent and accumulated > 0.2 * sent  # twice the rate: roughly half is lost
        assert "END_RUN was missed" not in log and "data reset" not in log  # the run intact
        # the status page says the same, and the lag while it lasted was bounded by the cap
        with urllib.request.urlopen(url + "status", timeout=10) as response:
            status = json.load(response)
        counters = status["listener"]["counters"]
        assert counters["events_dropped_buffer_full"] == dropped
        assert status["events"]["dropped_total"] >= dropped
    finally:
        daemon.stop()
        sms.stop()
