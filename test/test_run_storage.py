"""Log and pulse-time storage that grows in place (issue #12): values, order, dtype and the length readers see
after many appends; views handed out earlier keep what they showed."""

from __future__ import annotations

import numpy as np
import pytest

from livereduce.workspace.events import EventColumns
from livereduce.workspace.run import Run, TimeSeries


def test_many_appends_keep_values_order_and_dtype():
    ts = TimeSeries("temp", "K")
    for i in range(5000):
        ts.append(1000 + i, 0.5 * i)
        if i in (0, 15, 16, 17, 1023, 4999):  # around the buffer's doublings
            assert ts.size() == i + 1 and ts.times.size == ts.values.size == i + 1
    assert ts.times.dtype == np.int64 and ts.values.dtype == np.float64
    assert np.array_equal(ts.times, np.arange(1000, 6000))
    assert np.array_equal(ts.values, 0.5 * np.arange(5000))
    assert ts.firstValue() == 0.0 and ts.lastValue() == 2499.5


def test_array_appends_and_a_view_taken_earlier_is_unchanged():
    ts = TimeSeries("proton_charge", "picoCoulomb")
    ts.append(np.array([1, 2, 3]), np.array([10.0, 20.0, 30.0]))
    early_t, early_v = ts.times, ts.values
    for k in range(100):
        ts.append(np.array([4 + 2 * k, 5 + 2 * k]), np.array([1.0, 2.0]))
    assert early_t.tolist() == [1, 2, 3] and early_v.tolist() == [10.0, 20.0, 30.0]
    assert ts.size() == 203 and ts.times[-1] == 203 and ts.values[-2:].tolist() == [1.0, 2.0]
    assert float(np.sum(ts.values)) == 60.0 + 100 * 3.0


def test_first_value_sets_dtype_and_later_ones_promote_like_concatenate():
    ints = TimeSeries("count")
    ints.append(1, 3)
    assert ints.values.dtype == np.int64
    ints.append(2, 0.5)  # int then float: float, the earlier value kept
    assert ints.values.dtype == np.float64 and ints.values.tolist() == [3.0, 0.5]
    names = TimeSeries("SampleName")
    names.append(1, "Si")
    for i in range(40):
        names.append(2 + i, "x")
    names.append(100, "a much longer sample name")  # widens, not truncated
    assert names.values[0] == "Si" and names.values[-1] == "a much longer sample name"
    assert names.size() == 42
    objects = TimeSeries("waveform")
    objects.append([1, 2], np.array(["a", "bb"], object))
    assert objects.values.dtype == object and objects.values.tolist() == ["a", "bb"]


def test_one_time_for_several_values_applies_to_each():
    ts = TimeSeries("x")
    ts.append(7, [1.0, 2.0])
    assert ts.times.tolist() == [7, 7] and ts.values.tolist() == [1.0, 2.0]


def test_merge_copy_and_carry_over_after_growth():
    run, chunk = Run(), Run()
    for i in range(50):
        run.series("proton_charge").append(i, 1.0)
    chunk.series("proton_charge").append(np.array([48, 49, 50, 51]), np.array([9.0, 9.0, 2.0, 3.0]))
    run.merge(chunk)  # only times after the last one held are new
    pc = run["proton_charge"]
    assert pc.size() == 52 and pc.values[-3:].tolist() == [1.0, 2.0, 3.0]
    copy = run.copy()["proton_charge"]
    pc.append(60, 4.0)
    assert copy.size() == 52 and pc.size() == 53
    carried = run.carry_over()["proton_charge"]
    assert carried.times.tolist() == [60] and carried.values.tolist() == [4.0]
    assert run.getProtonCharge() == pytest.approx((50 + 2 + 3 + 4) * 1e-12 / 3.6e-3)


def chunk(pulses: list[int], events_per_pulse: int, first_x: float) -> EventColumns:
    n = len(pulses) * events_per_pulse
    pulse = np.repeat(np.arange(len(pulses)), events_per_pulse)
    return EventColumns(np.arange(n) % 3, first_x + np.arange(n), pulse, np.array(pulses))


def test_pulse_times_grow_in_place_and_each_event_keeps_its_pulse():
    acc = EventColumns.empty()  # starts with one pulse at time 0, indexed by no event
    early = acc.pulse_times
    for k in range(300):
        acc.append(chunk([1000 * k + 1, 1000 * k + 2], 2, 4.0 * k))
    assert early.tolist() == [0]
    assert acc.pulse_times.size == 1 + 600 and len(acc) == 1200
    assert acc.pulse_times[1:4].tolist() == [1, 2, 1001]
    # chunk k's events: x = 4k..4k+3, pulses 1000k+1 (first two) and 1000k+2 (last two)
    expected = [1000 * (int(x) // 4) + 1 + (int(x) % 4) // 2 for x in acc.x]
    assert acc.pulse_time().tolist() == expected
    assert acc.take(slice(-2, None)).pulse_time().tolist() == [299_002, 299_002]
    assert acc.copy().pulse_times.size == 601


def test_a_copy_is_independent_both_ways_without_copying_at_once():
    log = TimeSeries("proton_charge")
    for i in range(10):
        log.append(i, float(i))
    copy = log.copy()
    assert np.shares_memory(copy.values, log.values)  # O(1): borrowed until it appends
    log.append(10, 10.0)  # the original goes on growing in place
    assert copy.size() == 10 and copy.lastValue() == 9.0 and log.size() == 11
    copy.append(20, -1.0)  # the copy takes its own buffers first
    assert copy.times.tolist() == [*range(10), 20] and copy.values[-1] == -1.0
    assert log.times.tolist() == list(range(11)) and log.values[-1] == 10.0
    assert not np.shares_memory(copy.values, log.values)
    again = copy.copy()
    again.append(21, 5.0)
    copy.append(22, 6.0)
    assert again.values[-2:].tolist() == [-1.0, 5.0] and copy.values[-2:].tolist() == [-1.0, 6.0]


def test_pickles_hold_the_entries_only():
    import pickle

    log = TimeSeries("proton_charge", "pC")
    for i in range(1000):
        log.append(i, float(i))
    copy = log.copy()
    log.append(np.arange(1000, 100_000), np.ones(99_000))  # the copy's borrowed buffer now holds 10^5
    back = pickle.loads(pickle.dumps(copy))  # noqa: S301  # our own bytes
    assert (back.name, back.unit, back.size()) == ("proton_charge", "pC", 1000) and back.lastValue() == 999.0
    assert len(pickle.dumps(copy)) < 20 * 1000
    cols = EventColumns.empty()
    cols.append(chunk([5, 6], 3, 0.0))
    again = pickle.loads(pickle.dumps(cols))  # noqa: S301  # our own bytes
    assert again.pulse_time().tolist() == [5, 5, 5, 6, 6, 6] and again.x.tolist() == [0, 1, 2, 3, 4, 5]
