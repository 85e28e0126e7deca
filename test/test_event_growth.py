"""How event columns grow: unbounded columns double; a bounded buffer reserves its bound at once (untouched
pages cost nothing), so it never copies its events again."""

from __future__ import annotations

import numpy as np

from livereduce.listeners.base import EventBuffer
from livereduce.workspace import events as events_module
from livereduce.workspace.events import grown


def test_unbounded_columns_double_and_keep_their_rows():
    (col,) = grown([np.arange(2000, dtype=np.uint32)], 1500, 2001)
    assert col.size == 4000 and col[:1500].tolist() == list(range(1500))


def test_a_bounded_buffer_reserves_its_bound_once():
    (col,) = grown([np.arange(1024, dtype=np.uint32)], 1024, 1025, limit=10_000)
    assert col.size == 10_000 and col[:1024].tolist() == list(range(1024))


def test_a_large_bound_is_reserved_up_to_reserve_rows(monkeypatch):
    monkeypatch.setattr(events_module, "RESERVE", 5000)
    (col,) = grown([np.zeros(1024, np.uint32)], 1024, 1025, limit=10**9)
    assert col.size == 5000  # then doubling again past it
    (col,) = grown([col], 5000, 5001, limit=10**9)
    assert col.size == 10_000


def test_event_buffer_keeps_every_event_across_its_growth():
    buf = EventBuffer(capacity=16, max_events=1000)
    for k in range(30):
        assert buf.add_pulse(k, np.full(20, k, np.uint32), np.full(20, k, np.float32))
    chunk = buf.swap()
    assert len(chunk) == 600 and chunk.index.tolist() == np.repeat(np.arange(30), 20).tolist()
    assert chunk.pulse_start.tolist() == list(range(0, 600, 20))


def test_reading_x_widens_only_the_filled_rows_of_a_float32_column():
    """The spare capacity of a grown column is uninitialised memory; widening it could meet NaN bit patterns
    (an 'invalid value' warning, an error under this suite's settings) and costs a pass for nothing."""
    import warnings

    from livereduce.workspace.events import EventColumns

    cols = EventColumns(np.array([0, 1], np.uint32), np.array([100.5, 200.25], np.float32))
    # what uninitialised spare rows may hold: a signalling NaN's bits (0x7f800001) warn when cast
    spare = np.full(8, 0x7F800001, np.uint32).view(np.float32)
    spare[:2] = cols.x_native
    cols._x = spare  # two rows filled, six spare
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = cols.x
    assert x.dtype == np.float64 and x.tolist() == [100.5, 200.25]
    assert cols.x_native.dtype == np.float64 and cols._x.size == 8  # converted once, capacity kept
