"""Run bookkeeping against the fake SMS: every message and name carries the run its data belongs to.

Three back-to-back runs of different lengths (one shorter than a cycle, so its start and end fall between
two cycles) with run_transition Rename. What the daemon logs, the names Rename keeps and the run properties
post_proc sees are compared with the run numbers the server sent; the monitor counts post_proc sees at each
run's end are compared with the monitor events the server sent in that run.
"""

from __future__ import annotations

import json
import re
import time

from daemon_helpers import DaemonProcess

from livereduce.listeners.adara.client import AdaraListener
from livereduce.listeners.base import RunStatus
from livereduce.servers.adara import FakeSMS
from livereduce.session import Session

FIRST_RUN = 41
RUN_SECONDS = [1.3, 0.3, 2.1]  # the second run is shorter than update_every

POST_PROC = """import json, os
from mantid.simpleapi import CloneWorkspace, mtd
CloneWorkspace(InputWorkspace=accumulation, OutputWorkspace=output)
run = accumulation.getRun()
number = run.getProperty("run_number").value
record = {{"run_number": number, "events": accumulation.getNumberEvents(),
          "monitor1_counts": run.getProperty("monitor1_counts").value if run.hasProperty("monitor1_counts")
          else None, "names": sorted(mtd.getObjectNames())}}
with open(os.path.join({out!r}, "cycles.jsonl"), "a") as f:
    f.write(json.dumps(record) + "\\n")
"""


def test_back_to_back_runs_are_named_and_counted_by_the_run_they_belong_to(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "reduce_PG3_live_post_proc.py").write_text(POST_PROC.format(out=str(out)))
    sms = FakeSMS(
        port=0,
        rate=20_000,
        run_seconds=RUN_SECONDS,
        gap_seconds=0.4,
        runs=3,
        first_run=FIRST_RUN,
        instrument="POWGEN",
        monitor_rate=600,
        seed=11,
        wait_for_client=True,
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
            "run_transition": "Rename",
            "system_mem_limit_perc": 0,
        },
    )
    runs = [FIRST_RUN, FIRST_RUN + 1, FIRST_RUN + 2]
    try:
        assert sms.done.wait(60), "the fake SMS did not finish its runs"
        log = daemon.wait_for(f"run {runs[-1]} ended (", timeout=30)
    finally:
        daemon.stop()
        sms.stop()
    assert sms.runs_finished == runs
    ended = [int(n) for n in re.findall(r"livereduce\.session.*run (\d+) ended \(", log)]
    started = [int(n) for n in re.findall(r"livereduce\.session.*run (\d+) started", log)]
    assert ended == runs, log[-3000:]
    assert started == runs, log[-3000:]
    kept = re.findall(r"kept the result of run (\d+) as '([^']+)'", log)
    assert kept == [(str(r), f"result_{r}") for r in runs]

    records = [json.loads(line) for line in (out / "cycles.jsonl").read_text().splitlines()]
    last_of_run = {r["run_number"]: r for r in records}  # the END_RUN cycle writes last
    assert sorted(last_of_run) == [str(r) for r in runs]
    for run in runs:
        record = last_of_run[str(run)]
        assert record["events"] == sms.sent_events_per_run[run], f"run {run}"
        assert record["monitor1_counts"] == sms.sent_monitor_events_per_run[run][1], f"run {run}"
        assert sms.sent_monitor_events_per_run[run][1] > 0
    # while run N is processed, the kept names are those of the runs before it, never its own or a later one
    for record in records:
        kept_names = {n for n in record["names"] if n.startswith("result_")}
        assert kept_names == {f"result_{r}" for r in runs if r < int(record["run_number"])}, record
    assert "Traceback" not in log


class ListenerThatRunsAhead(AdaraListener):
    """The real ADARA listener, with the worst interleaving of its two threads made certain: after an END_RUN
    chunk is extracted, run_status() returns only once the receive thread has taken the next run's NEW_RUN.
    (In the field this happens when the session thread is descheduled between extract and its next call.)"""

    last_run = 0  # no NEW_RUN follows this run's END_RUN

    def extract(self):
        chunk = super().extract()
        self.number_at_extract = self.run_number
        return chunk

    def run_status(self):
        status = super().run_status()
        if status == RunStatus.END_RUN and self.number_at_extract != self.last_run:
            deadline = time.monotonic() + 10
            while self.run_number == self.number_at_extract and time.monotonic() < deadline:
                time.sleep(0.005)
        return status


def test_a_run_is_labelled_by_its_own_number_when_the_listener_has_moved_on(ads):
    sms = FakeSMS(
        port=0,
        rate=5_000,
        run_seconds=[0.5, 0.5],
        gap_seconds=0.2,
        runs=2,
        first_run=7,
        instrument="POWGEN",
        seed=3,
        wait_for_client=True,
    )
    port = sms.start()
    listener = ListenerThatRunsAhead(f"127.0.0.1:{port}")
    listener.last_run = 8
    session = Session(
        listener=listener, accum_method="Add", run_transition="Rename", update_every=0.3, ads=ads
    )
    transitions = []
    session.records.subscribe(
        lambda r: transitions.append(r.data.run_number) if r.kind == "run_transition" else None
    )
    try:
        deadline = time.monotonic() + 30
        while len(transitions) < 2 and time.monotonic() < deadline:
            session.step()
            time.sleep(0.3)  # the cycle period: the receive thread runs meanwhile
    finally:
        listener.close()
        sms.stop()
    assert transitions == [7, 8]
    assert ads.doesExist("result_7") and ads.doesExist("result_8")
    assert ads["result_7"].getNumberEvents() == sms.sent_events_per_run[7]
    assert ads["result_8"].getNumberEvents() == sms.sent_events_per_run[8]
