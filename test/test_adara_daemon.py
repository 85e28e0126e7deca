"""End to end: fake SMS → daemon subprocess over TCP, three runs back to back (issue: ADARA live stream).

Per run, the accumulated event total equals what the SMS says it sent; run_number and experiment_identifier
reach the post_proc script; Restart clears between runs.
"""

from __future__ import annotations

import json

from daemon_helpers import DaemonProcess

from livereduce.servers.adara import FakeSMS

POST_PROC = """import json, os
run = accumulation.getRun()
record = {{"run_number": run.getProperty("run_number").value,
          "experiment_identifier": run.getProperty("experiment_identifier").value,
          "events": accumulation.getNumberEvents()}}
path = os.path.join({out!r}, "run_" + str(record["run_number"]) + ".json")
with open(path + ".tmp", "w") as f:
    json.dump(record, f)
os.replace(path + ".tmp", path)
"""


def test_three_runs_back_to_back(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    # the seed's powder proc template minus site files; events are kept so totals can be checked exactly
    (scripts / "reduce_PG3_live_proc.py").write_text(
        "from mantid.simpleapi import ConvertUnits\n"
        "ConvertUnits(InputWorkspace=input, OutputWorkspace=output, Target='dSpacing')\n"
    )
    (scripts / "reduce_PG3_live_post_proc.py").write_text(POST_PROC.format(out=str(out)))
    sms = FakeSMS(
        port=0,
        rate=20_000,
        run_seconds=2.0,
        gap_seconds=0.5,
        runs=3,
        instrument="POWGEN",
        proposal="IPTS-31415",
        seed=7,
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
            "preserve_events": True,
            "accum_method": "Add",
            "system_mem_limit_perc": 0,
        },
    )
    try:
        assert sms.done.wait(60), "the fake SMS did not finish its three runs"
        daemon.wait_for("ended (", timeout=30, count=3)  # the session saw all three EndRuns
        for run in (1, 2, 3):  # post_proc of each END_RUN cycle wrote last
            record = json.loads((out / f"run_{run}.json").read_text())
            assert record["run_number"] == str(run)
            assert record["experiment_identifier"] == "IPTS-31415"
            sent = sms.sent_events_per_run[run] - sms.paused_events_per_run.get(run, 0)
            assert record["events"] == sent, f"run {run}: accumulated {record['events']}, sent {sent}"
        log = daemon.log()
        assert "Traceback" not in log
    finally:
        daemon.stop()
        sms.stop()
