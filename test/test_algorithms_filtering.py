"""FilterByTime and FilterByLogValue: which events survive, worked by hand from Mantid's documented rules."""

from __future__ import annotations

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra

S = 1_000_000_000
T0 = np.datetime64("2010-01-01T00:00:00", "ns").astype(np.int64)


def one_event_per_minute(minutes=60):
    """One event per pulse, pulses once a minute from T0 (the docs' example run is an hour long)."""
    n = minutes
    run = Run()
    run.set("run_start", "2010-01-01T00:00:00")
    pc = run.series("proton_charge", "picoCoulomb")
    pc.append(T0 + np.arange(0, 3600, 600) * S, [100.0, 100.0, 100.0, 100.0, 15.0, 100.0])
    run.series("temp", "K").append(T0 + np.array([0, 1500]) * S, [300.0, 310.0])
    ev = EventColumns(
        np.zeros(n, np.uint32), np.full(n, 5.0), np.arange(n, dtype=np.uint32), T0 + np.arange(n) * 60 * S
    )
    return EventWorkspace(Spectra.one_to_one([1]), ev, [0.0, 10.0], run)


def pulses_minutes(ws):
    return ((ws.events.pulse_time() - T0) // (60 * S)).tolist()


def test_filter_by_time_relative_and_absolute(ads):
    ws = one_event_per_minute()
    first_half = registry.call("FilterByTime", ws, StartTime=0, StopTime=1800, OutputWorkspace="a")
    assert pulses_minutes(first_half) == list(range(30))  # [0, 1800 s): minutes 0..29
    ten_to_twenty = registry.call(
        "FilterByTime",
        ws,
        AbsoluteStartTime="2010-01-01T00:10:00",
        AbsoluteStopTime="2010-01-01T00:20:00",
        OutputWorkspace="b",
    )
    assert pulses_minutes(ten_to_twenty) == list(range(10, 20))
    to_end = registry.call("FilterByTime", ws, StartTime=3000, OutputWorkspace="c")  # StopTime 0: the end
    assert pulses_minutes(to_end) == list(range(50, 60))
    run = first_half.getRun()  # logs cut to the window, charge recomputed: 3 entries × 100 pC
    assert run["proton_charge"].values.tolist() == [100.0, 100.0, 100.0]
    assert run["gd_prtn_chrg"].value == pytest.approx(300e-12 / 3.6e-3)
    late = to_end.getRun()["temp"]  # the value in force at the start is kept, at the start
    assert late.times.tolist() == [T0 + 3000 * S] and late.values.tolist() == [310.0]
    assert ws.getNumberEvents() == 60  # the input is unchanged
    with pytest.raises(AlgorithmError, match="EventWorkspace"):
        registry.call(
            "FilterByTime",
            HistogramWorkspace([[1.0]], None, [0, 1], Spectra.one_to_one([1])),
            OutputWorkspace="x",
        )
    with pytest.raises(AlgorithmError, match="after the start"):
        registry.call("FilterByTime", ws, StartTime=100, StopTime=50, OutputWorkspace="x")


def test_filter_by_log_value_left_and_centre(ads):
    ws = one_event_per_minute()
    # proton_charge: 100 at minutes 0,10,20,30, 15 at 40, 100 at 50; keep 75..150
    left = registry.call(
        "FilterByLogValue",
        ws,
        "proton_charge",
        MinimumValue=75,
        MaximumValue=150,
        LogBoundary="Left",
        OutputWorkspace="l",
    )
    # Left: good from 0 until the first bad entry (40), and from 50 on (constant after the last entry)
    assert pulses_minutes(left) == list(range(40)) + list(range(50, 60))
    centre = registry.call(
        "FilterByLogValue",
        ws,
        "proton_charge",
        MinimumValue=75,
        MaximumValue=150,
        TimeTolerance=300,
        OutputWorkspace="c",
    )
    # Centre: good run 0..30 min → [-∞ (first entry), 30 min + 5 min]; 50 min (last) → [45 min, ∞)
    assert pulses_minutes(centre) == list(range(36)) + list(range(45, 60))
    unbounded = registry.call("FilterByLogValue", ws, "temp", LogBoundary="Left", OutputWorkspace="u")
    assert unbounded.getNumberEvents() == 60
    with pytest.raises(AlgorithmError, match="no time-series log"):
        registry.call("FilterByLogValue", ws, "nothing", OutputWorkspace="x")


def test_pulse_filter_cuts_notches(ads):
    ws = one_event_per_minute()
    ws.getRun().series("veto_pulse_time").append(T0 + np.array([10, 20]) * 60 * S, [1, 1])
    out = registry.call(
        "FilterByLogValue", ws, "veto_pulse_time", PulseFilter=True, TimeTolerance=60, OutputWorkspace="v"
    )
    # notches [9 min, 11 min] and [19 min, 21 min] are cut (the stop of a notch is where events resume)
    assert pulses_minutes(out) == [m for m in range(60) if m not in (9, 10, 19, 20)]


def test_filter_bad_pulses(ads):
    ws = one_event_per_minute(6)  # pulses at minutes 0..5, one event each
    ws.getRun().remove("proton_charge")  # one charge per pulse instead of the hour-long log
    ws.getRun().series("proton_charge", "picoCoulomb").append(
        T0 + np.arange(6) * 60 * S, [10.0, 10.0, 2.0, 10.0, 10.0, 9.0]
    )
    # mean 8.5: below 95 % of it (8.075) is bad → the pulse at minute 2; 9.0 is kept
    out = registry.call("FilterBadPulses", ws, OutputWorkspace="good")
    assert pulses_minutes(out) == [0, 1, 3, 4, 5]
    with pytest.raises(AlgorithmError, match=r"within 0\.\.100"):
        registry.call("FilterBadPulses", ws, LowerCutoff=120, OutputWorkspace="x")
    ws.getRun().set("gd_prtn_chrg", 0.0)
    with pytest.raises(AlgorithmError, match="no integrated charge"):
        registry.call("FilterBadPulses", ws, OutputWorkspace="x")
