"""Pulses kept run-length (each pulse's first event) through Add accumulation, pickling, copies and filters:
events kept cost 8 bytes each (index + float32 TOF), and every per-event pulse time reads back as sent.

Expected values are written out by hand from the chunks each test sends."""

from __future__ import annotations

import pickle

import numpy as np

from livereduce.accumulate import Method, accumulate
from livereduce.algorithms import registry
from livereduce.algorithms.binning import compress_events
from livereduce.chunks import workspace_from_chunk
from livereduce.listeners.base import Chunk, ChunkEvents
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra

S = 1_000_000_000
T0 = 1_700_000_000 * S
SPECTRA = Spectra.one_to_one(np.arange(1, 5))


def chunk(index, tof, times, starts) -> EventWorkspace:
    """An event workspace as the session makes it from a listener's chunk."""
    events = ChunkEvents(
        np.asarray(index, np.uint32),
        np.asarray(tof, np.float32),
        np.asarray(times, np.int64),
        np.asarray(starts, np.int64),
    )
    run = Run()
    run.set("run_start", "2023-11-14T22:13:20")  # T0
    return workspace_from_chunk(Chunk(spectra=SPECTRA.copy(), run=run, events=events))


def three_chunks() -> EventWorkspace:
    """Chunk 1: pulses T0 (events 0-2), T0+1 s (3-4); chunk 2: T0+2 s (0), T0+3 s (none), T0+4 s (1-3);
    chunk 3: T0+5 s (0-1)."""
    acc = chunk([0, 1, 2, 3, 0], [10, 11, 12, 13, 14], [T0, T0 + S], [0, 3])
    for c in (
        chunk([1, 1, 2, 3], [20, 21, 22, 23], [T0 + 2 * S, T0 + 3 * S, T0 + 4 * S], [0, 1, 1]),
        chunk([3, 0], [30, 31], [T0 + 5 * S], [0]),
    ):
        acc = accumulate(acc, c, Method.ADD)
    return acc


SENT = [T0] * 3 + [T0 + S] * 2 + [T0 + 2 * S] + [T0 + 4 * S] * 3 + [T0 + 5 * S] * 2


def never_spelled_out(ev: EventColumns) -> bool:
    return ev._pulse is None and ev._spelled is None


def test_three_chunks_appended_read_back_the_pulse_times_sent():
    acc = three_chunks()
    ev = acc.events
    assert never_spelled_out(ev)
    assert ev.pulse_start.tolist() == [0, 3, 5, 6, 6, 9]
    assert ev.pulse_times.tolist() == [T0 + k * S for k in range(6)]
    assert ev.index.tolist() == [0, 1, 2, 3, 0, 1, 1, 2, 3, 3, 0]
    assert ev.x.tolist() == [10, 11, 12, 13, 14, 20, 21, 22, 23, 30, 31]
    assert ev.pulse_time().tolist() == SENT
    assert never_spelled_out(ev)  # pulse_time() needs no pulse column
    assert ev.pulse.tolist() == [0, 0, 0, 1, 1, 2, 4, 4, 4, 5, 5]
    assert ev.used_pulses().tolist() == [0, 1, 2, 4, 5]
    # the per-spectrum view Mantid scripts read
    assert acc.getSpectrum(3).getPulseTimes().tolist() == [T0 + S, T0 + 4 * S, T0 + 5 * S]
    assert acc.getPulseTimeMin().unix_ns == T0 and acc.getPulseTimeMax().unix_ns == T0 + 5 * S


def test_an_append_drops_the_spelled_out_column():
    acc = three_chunks()
    acc.events.pulse  # noqa: B018
    assert acc.events._spelled is not None
    acc = accumulate(acc, chunk([2], [40], [T0 + 6 * S], [0]), Method.ADD)
    assert never_spelled_out(acc.events)
    assert acc.events.pulse_time().tolist() == [*SENT, T0 + 6 * S]


def test_bytes_per_kept_event_are_index_and_float32_tof():
    pulses, per_pulse = 200, 1000
    rng = np.random.default_rng(1)
    acc = None
    for c in range(4):  # four chunks of 50 pulses of 1000 events
        n = pulses // 4 * per_pulse
        ws = chunk(
            rng.integers(0, 4, n),
            rng.uniform(1e3, 2e4, n),
            T0 + (c * 50 + np.arange(50)) * S // 60,
            np.arange(50) * per_pulse,
        )
        acc = ws if acc is None else accumulate(acc, ws, Method.ADD)
    ev = acc.events
    n = pulses * per_pulse
    assert len(ev) == n and never_spelled_out(ev)
    rows = ev.index.nbytes + ev.x_native.nbytes + ev.pulse_start.nbytes  # 4 + 4 per event, 8 per pulse
    assert rows == 8 * n + 8 * pulses
    assert rows / n <= 8.01
    assert ev.pulse_time().tolist() == np.repeat(T0 + np.arange(pulses) * S // 60, per_pulse).tolist()


def test_a_pulse_continued_in_the_next_chunk_keeps_its_time():
    """The listener's pulse T0+1 s is split between two extracts: the second chunk starts with it again."""
    acc = chunk([0, 1, 2], [1, 2, 3], [T0, T0 + S], [0, 2])
    acc = accumulate(acc, chunk([3, 3], [4, 5], [T0 + S, T0 + 2 * S], [0, 1]), Method.ADD)
    ev = acc.events
    assert never_spelled_out(ev)
    assert ev.pulse_time().tolist() == [T0, T0, T0 + S, T0 + S, T0 + 2 * S]
    assert ev.pulse_start.tolist() == [0, 2, 3, 4]  # a table entry each time the pulse is sent, as before
    assert ev.pulse_times.tolist() == [T0, T0 + S, T0 + S, T0 + 2 * S]
    assert acc.getPulseTimeMax().unix_ns == T0 + 2 * S
    out = registry.call("FilterByTime", acc, AbsoluteStartTime="2023-11-14T22:13:21", OutputWorkspace="f")
    assert out.events.x.tolist() == [3, 4, 5] and out.events.pulse_time().tolist() == [T0 + S] * 2 + [
        T0 + 2 * S
    ]


def test_empty_chunks_and_chunks_without_pulses():
    acc = chunk([0, 1], [1, 2], [T0], [0])
    acc = accumulate(acc, chunk([], [], [], []), Method.ADD)  # nothing at all
    acc = accumulate(acc, chunk([], [], [T0 + S, T0 + 2 * S], [0, 0]), Method.ADD)  # pulses, no events
    acc = accumulate(acc, chunk([2, 3], [3, 4], [], []), Method.ADD)  # events, no pulse: time 0, as before
    acc = accumulate(acc, chunk([0], [5], [T0 + 3 * S], [0]), Method.ADD)
    ev = acc.events
    assert never_spelled_out(ev)
    assert ev.x.tolist() == [1, 2, 3, 4, 5]
    assert ev.pulse_time().tolist() == [T0, T0, 0, 0, T0 + 3 * S]
    assert ev.pulse_times.tolist() == [T0, 0, T0 + 3 * S]  # empty chunks add no pulse, as before
    empty = EventColumns.empty()
    assert len(empty) == 0 and empty.pulse.tolist() == [] and empty.pulse_time().tolist() == []


def test_weights_and_float64_x_appended_keep_the_runs():
    acc = chunk([0, 1], [1.5, 2.5], [T0], [0])
    weighted = EventColumns(
        np.array([2, 3], np.uint32), np.array([3.25, 4.25]), None, [T0 + S], [2.0, 3.0], [4.0, 9.0], [0]
    )
    acc.events.append(weighted)
    ev = acc.events
    assert never_spelled_out(ev) and ev.x_native.dtype == np.float64
    assert ev.x.tolist() == [1.5, 2.5, 3.25, 4.25]
    assert ev.weights.tolist() == [1.0, 1.0, 2.0, 3.0] and ev.err2.tolist() == [1.0, 1.0, 4.0, 9.0]
    assert ev.pulse_time().tolist() == [T0, T0, T0 + S, T0 + S]
    acc.events.append(chunk([1], [5], [T0 + 2 * S], [0]).events)  # plain events into weighted ones
    assert never_spelled_out(acc.events) and acc.events.weights.tolist() == [1.0, 1.0, 2.0, 3.0, 1.0]
    assert acc.events.pulse_time().tolist() == [T0, T0, T0 + S, T0 + S, T0 + 2 * S]


def test_pickle_copy_view_and_slices_keep_the_runs():
    ev = three_chunks().events
    again = pickle.loads(pickle.dumps(ev))  # noqa: S301 - our own bytes (the worker pipe, checkpoints)
    for other in (again, ev.copy(), ev.view()):
        assert never_spelled_out(other) and other.pulse_start.tolist() == [0, 3, 5, 6, 6, 9]
        assert other.pulse_time().tolist() == SENT and other.x_native.dtype == np.float32
    assert ev.__reduce__()[1][2] is None  # pickled with no per-event pulse column
    newest = ev.take(slice(4, None))  # what drop_oldest keeps
    assert newest.pulse_start.tolist() == [0, 0, 1, 2, 2, 5] and newest.pulse_time().tolist() == SENT[4:]
    picked = ev.take(np.array([0, 5, 6, 10]))  # ascending positions
    assert never_spelled_out(picked) and picked.pulse_time().tolist() == [
        T0,
        T0 + 2 * S,
        T0 + 4 * S,
        T0 + 5 * S,
    ]
    shuffled = ev.take(np.array([10, 0]))  # reordered: a column, as before
    assert shuffled.pulse_start is None and shuffled.pulse_time().tolist() == [T0 + 5 * S, T0]


def test_drop_oldest_keeps_the_runs():
    acc = three_chunks()
    acc.drop_oldest(6)
    assert never_spelled_out(acc.events) and acc.events.pulse_time().tolist() == SENT[6:]


def explicit(ws: EventWorkspace) -> EventWorkspace:
    """The same events with a per-event pulse column (the representation before run lengths)."""
    ev = ws.events
    cols = EventColumns(ev.index, ev.x_native, ev.pulse.copy(), ev.pulse_times, ev.weights, ev.err2)
    assert cols.pulse_start is None
    return ws.with_events(cols)


def same_events(a: EventColumns, b: EventColumns) -> bool:
    return (
        a.index.tolist() == b.index.tolist()
        and a.x.tolist() == b.x.tolist()
        and a.pulse_time().tolist() == b.pulse_time().tolist()
        and a.pulse.tolist() == b.pulse.tolist()
    )


def test_filter_by_time_and_log_value_give_the_same_events_as_a_pulse_column():
    acc = three_chunks()
    run = acc.run_info
    run.series("temp", "K").append(T0 + np.array([0, 2, 5]) * S, [300.0, 320.0, 300.0])
    col = explicit(acc)
    cases = [
        ("FilterByTime", {"StartTime": 1, "StopTime": 4.5}),
        ("FilterByTime", {"StartTime": 2}),
        ("FilterByLogValue", {"LogName": "temp", "MinimumValue": 310, "LogBoundary": "Left"}),
        ("FilterByLogValue", {"LogName": "temp", "PulseFilter": True, "TimeTolerance": 0.5}),
    ]
    for name, kw in cases:
        lazy = registry.call(name, acc, OutputWorkspace="a", **kw)
        eager = registry.call(name, col, OutputWorkspace="b", **kw)
        assert never_spelled_out(lazy.events) and same_events(lazy.events, eager.events), (name, kw)
    window = registry.call("FilterByTime", acc, StartTime=1, StopTime=4.5, OutputWorkspace="a")
    assert window.events.x.tolist() == [13, 14, 20, 21, 22, 23]  # pulses T0+1 s .. T0+4 s
    assert window.events.pulse_start.tolist() == [0, 0, 2, 3, 3, 6]
    left = registry.call(
        "FilterByLogValue", acc, LogName="temp", MinimumValue=310, LogBoundary="Left", OutputWorkspace="l"
    )
    assert left.events.x.tolist() == [20, 21, 22, 23]  # temp 320 from T0+2 s until T0+5 s


def test_compress_events_is_the_same_with_runs_or_a_column():
    rng = np.random.default_rng(3)
    acc = None
    for c in range(3):
        n = 400
        starts = np.sort(rng.integers(0, n, 9))
        starts[0] = 0
        ws = chunk(
            rng.integers(0, 4, n), rng.integers(0, 20, n) * 0.5, T0 + (c * 9 + np.arange(9)) * S, starts
        )
        acc = ws if acc is None else accumulate(acc, ws, Method.ADD)
    lazy = compress_events(acc, 1.0)
    assert never_spelled_out(acc.events)
    eager = compress_events(explicit(acc), 1.0)
    assert same_events(lazy.events, eager.events)
    assert lazy.events.weights.tolist() == eager.events.weights.tolist()


def test_a_pulse_column_becomes_runs_at_the_first_append_when_it_never_decreases():
    """An accumulation restored from a checkpoint has a pulse column (pulses in arrival order)."""
    restored = EventColumns(
        np.zeros(4, np.uint32), np.arange(4.0), np.array([0, 0, 1, 3], np.uint32), T0 + np.arange(4) * S
    )
    restored.append(chunk([1], [9], [T0 + 9 * S], [0]).events)
    assert never_spelled_out(restored) and restored.pulse_start.tolist() == [0, 2, 3, 3, 4]
    assert restored.pulse_time().tolist() == [T0, T0, T0 + S, T0 + 3 * S, T0 + 9 * S]
    shuffled = EventColumns(
        np.zeros(3, np.uint32), np.arange(3.0), np.array([1, 0, 0], np.uint32), [T0, T0 + S]
    )
    shuffled.append(chunk([1], [9], [T0 + 9 * S], [0]).events)
    assert shuffled.pulse_start is None and shuffled.pulse_time().tolist() == [T0 + S, T0, T0, T0 + 9 * S]
    later = EventColumns(np.zeros(2, np.uint32), np.arange(2.0), np.array([1, 0], np.uint32), [T0, T0 + S])
    shuffled.append(later)  # a column appended to a column
    assert shuffled.pulse_time().tolist() == [T0 + S, T0, T0, T0 + 9 * S, T0 + S, T0]


def test_malformed_starts_are_made_non_decreasing_from_zero():
    ev = EventColumns(
        np.zeros(4, np.uint32), np.arange(4.0), None, [T0, T0 + S, T0 + 2 * S], pulse_start=[1, 3, 9]
    )
    assert ev.pulse_start.tolist() == [0, 3, 4] and ev.pulse_time().tolist() == [T0, T0, T0, T0 + S]
