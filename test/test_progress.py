"""What the operator reads in the log: the per-cycle progress line, folded script errors, the carried-chunk
cap and events that fall outside the bins. A real session over the fake listener, its records feeding the
same ProgressLog the daemon subscribes; expected numbers come from the listener's fixed chunk size and from
the fake listener's TOF range against the Rebin range (by hand)."""

from __future__ import annotations

import logging
import re

from livereduce.listeners.fake import FakeEventListener
from livereduce.progress import ProgressLog
from livereduce.scripts import compile_script
from livereduce.session import Session

PROC_FAILS = "raise RuntimeError('calibration file missing')\n"


class Clock:
    """A clock the test advances: the progress line's rate limit and quiet time are about elapsed time."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make(tmp_path, ads, caplog, *, proc=None, update_every=1.0, **kw):
    listener = kw.pop("listener", None) or FakeEventListener(events_per_extract=1000, seed=1)
    script = None
    if proc is not None:
        path = tmp_path / "reduce_FAKE_live_proc.py"
        path.write_text(proc)
        script = compile_script(path, "proc")
    session = Session(listener=listener, proc=script, ads=ads, update_every=update_every, **kw)
    clock = Clock()
    session.records.subscribe(
        ProgressLog(logging.getLogger("test.progress"), update_every=update_every, clock=clock)
    )
    caplog.set_level(logging.INFO)
    return session, clock


def lines(caplog, pattern):
    return [r.getMessage() for r in caplog.records if re.search(pattern, r.getMessage())]


def test_one_progress_line_per_cycle_with_the_numbers_of_the_cycle(tmp_path, ads, caplog):
    session, clock = make(tmp_path, ads, caplog)
    for _ in range(3):
        session.step()
        clock.now += 1.0
    progress = lines(caplog, r"^cycle \d+:")
    assert len(progress) == 3
    assert progress[2].startswith(
        "cycle 3: run 1 (RUNNING), chunk 1,000 events, run 3,000 events, "
        "accumulated 3,000, outside bins 0, proc -, post_proc -, accumulation "
    )


def test_progress_lines_are_rate_limited_to_one_per_update_every(tmp_path, ads, caplog):
    session, clock = make(tmp_path, ads, caplog, update_every=2.0)
    for _ in range(10):  # ten cycles within 5 s of the clock: a line at 0, 2.0 and 4.0 s
        session.step()
        clock.now += 0.5
    assert len(lines(caplog, r"^cycle \d+:")) == 3


def test_a_quiet_stream_says_so(tmp_path, ads, caplog):
    session, clock = make(tmp_path, ads, caplog, listener=FakeEventListener(events_per_extract=0, seed=1))
    session.step()
    clock.now += 61
    session.step()
    assert lines(caplog, r"^cycle 2:.*no events for 61 s$")
    assert not lines(caplog, r"^cycle 1:.*no events")


def test_a_repeated_script_error_logs_its_traceback_once_then_one_line_per_repeat(tmp_path, ads, caplog):
    session, clock = make(tmp_path, ads, caplog, proc=PROC_FAILS)
    for _ in range(4):
        session.step()
        clock.now += 1.0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "script error" in r.getMessage()]
    assert len(errors) == 4
    assert "Traceback" in errors[0].getMessage() and "reduce_FAKE_live_proc.py" in errors[0].getMessage()
    assert "line 1" in errors[0].getMessage()
    for n, record in enumerate(errors[1:], start=2):
        assert "Traceback" not in record.getMessage()
        assert f"the same as before, {n} times in a row" in record.getMessage()
        assert "calibration file missing" in record.getMessage()


def test_a_changed_error_logs_its_traceback_and_recovery_is_said(tmp_path, ads, caplog):
    path = tmp_path / "reduce_FAKE_live_proc.py"
    session, _clock = make(tmp_path, ads, caplog, proc=PROC_FAILS)
    session.step()
    session.step()
    path.write_text("x = undefined_name\n")
    session.proc = compile_script(path, "proc")
    session.step()
    path.write_text("CloneWorkspace(InputWorkspace=input, OutputWorkspace=output)\n")
    session.proc = compile_script(path, "proc")
    session.step()
    tracebacks = [r.getMessage() for r in caplog.records if "Traceback" in r.getMessage()]
    assert len(tracebacks) == 2 and "NameError" in tracebacks[1]
    assert lines(caplog, r"^proc script runs again after 3 failed cycles$")
    assert ads["result"].getNumberEvents() == 4000  # the carried chunks were processed, none lost


def test_the_chunk_carried_for_a_failing_proc_is_capped_and_what_is_dropped_is_counted(tmp_path, ads, caplog):
    session, _ = make(tmp_path, ads, caplog, proc=PROC_FAILS, max_carried_events=2500)
    drops = []
    session.records.subscribe(lambda r: drops.append(r.data.events) if r.kind == "events_dropped" else None)
    for _ in range(5):  # 1000 events a cycle: carried 1000, 2000, then capped at 2500
        session.step()
    assert session.state.events_carried == 2500
    assert session.state.events_dropped == 5000 - 2500
    assert drops == [500, 1000, 1000]
    assert lines(
        caplog,
        r"dropped the 1000 oldest of the events kept for it \(max_carried_events = 2500\); "
        r"2500 events lost so far",
    )
    # the newest events are the ones kept: fix the script and exactly the cap's worth plus the new chunk count
    path = tmp_path / "reduce_FAKE_live_proc.py"
    path.write_text("CloneWorkspace(InputWorkspace=input, OutputWorkspace=output)\n")
    session.proc = compile_script(path, "proc")
    session.step()
    assert ads["result"].getNumberEvents() == 2500 + 1000


def test_events_outside_the_rebin_range_are_counted_and_warned_about_once_per_run(tmp_path, ads, caplog):
    # fake TOF is uniform on [40000, 60000) µs; Rebin keeps [40000, 50000): half the events are outside
    proc = "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='40000,100,50000', PreserveEvents=False)\n"
    listener = FakeEventListener(events_per_extract=20_000, seed=4)
    session, clock = make(tmp_path, ads, caplog, proc=proc, listener=listener, preserve_events=False)
    for _ in range(3):
        session.step()
        clock.now += 1.0
    outside = session.state.events_outside_bins
    assert abs(outside - 30_000) < 600  # binomial: sd ≈ 87
    assert outside + ads["result"].readY(0).sum() + ads["result"].readY(1).sum() == 60_000
    assert lines(caplog, rf"^cycle 3:.*outside bins {outside:,}")
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "outside" in r.getMessage()
    ]
    assert len(warnings) == 1 and "widen Rebin's Params" in warnings[0]
