"""Run methods scripts call (Mantid's Run): integrateProtonCharge, getProtonCharge, startTime, endTime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livereduce.workspace.dates import DateAndTime
from livereduce.workspace.run import Run


def test_integrate_proton_charge_units():
    run = Run()
    run.series("proton_charge", "picoCoulomb").append([1, 2, 3], [1.0e9, 2.0e9, 4.2e9])
    assert run.getProtonCharge() == pytest.approx(7.2e9 * 1e-12 / 3.6e-3)  # 7.2e-3 C = 2 µA·h
    assert not run.hasProperty("gd_prtn_chrg")  # asking does not store it (the log still grows)
    assert run.integrateProtonCharge() is None
    assert run["gd_prtn_chrg"].value == pytest.approx(2.0) and run["gd_prtn_chrg"].unit == "uA.hour"
    run.series("proton_charge").append(4, 3.6e9)
    assert run.getProtonCharge() == pytest.approx(2.0)  # the stored total wins, as in Mantid
    run.integrateProtonCharge()
    assert run.getProtonCharge() == pytest.approx(3.0)
    uah = Run()
    uah.series("charge", "uAh").append([1, 2], [0.25, 0.5])  # ISIS/Kafka logs are in µA·h already
    uah.integrateProtonCharge("charge")
    assert uah.getProtonCharge() == 0.75
    assert Run().getProtonCharge() == 0.0
    nothing = Run()
    nothing.integrateProtonCharge()  # no log: nothing is stored
    assert not nothing.hasProperty("gd_prtn_chrg")


def test_start_and_end_time_are_date_and_times():
    run = Run()
    run.set("run_start", "2024-05-01T12:00:00.5")
    run.set("end_time", "2024-05-01T13:00:00.5")
    start, end = run.startTime(), run.endTime()
    assert isinstance(start, DateAndTime)
    expected = (
        np.datetime64("2024-05-01T12:00:00.5", "ns") - np.datetime64("1990-01-01T00:00:00", "ns")
    ).astype(int)
    assert start.totalNanoseconds() == expected
    assert (end - start).total_seconds() == 3600.0
    assert start < end and start == DateAndTime("2024-05-01T12:00:00.5")
    assert (start + 10**9).toISO8601String() == "2024-05-01T12:00:01.5"
    assert str(start) == "2024-05-01T12:00:00.5" and json.dumps(start) == '"2024-05-01T12:00:00.5"'
    run.set("start_time", "2024-05-01T11:00:00")  # start_time is tried first, as in Mantid
    assert run.startTime() == "2024-05-01T11:00:00"
    assert not Run().startTime() and Run().endTime() == ""  # none set: empty (Mantid raises)
