"""An event workspace's default binning is made only when read, spans the events it was made with, and shares
one min/max with getTofMin/getTofMax (issue #12: no passes over a chunk's events that nobody needs)."""

from __future__ import annotations

import numpy as np

from livereduce.algorithms.binning import rebin
from livereduce.workspace import events as E
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.spectra import Spectra


def workspace(x, index=None) -> EventWorkspace:
    x = np.asarray(x, float)
    index = np.zeros(x.size, np.uint32) if index is None else np.asarray(index, np.uint32)
    return EventWorkspace(Spectra.one_to_one([1, 2]), EventColumns(index, x))


def test_rebin_with_params_and_accumulating_never_make_default_edges(monkeypatch):
    calls = []
    monkeypatch.setattr(E, "default_edges", lambda *a: calls.append(a) or np.array([0.0, 1.0]))
    ws = workspace([3.0, 1.0, 2.0, 0.5], index=[0, 1, 1, 0])
    h = rebin(ws, "0,1,4", preserve_events=False)
    assert h.values.tolist() == [[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]]  # 0.5, 3 | 1, 2
    acc = workspace([])
    acc.edges = np.array([0.0, 2.0, 4.0])
    target = h.__class__.zeros(ws.spectra, acc.edges)
    ws.histogram_into(target)
    assert target.values.tolist() == [[1.0, 1.0], [1.0, 1.0]] and calls == []


def test_default_edges_when_read_and_tof_range_by_hand():
    ws = workspace([3.0, 1.0, 2.0])
    assert (ws.getTofMin(), ws.getTofMax()) == (1.0, 3.0)
    assert ws.edges.tolist() == [1.0, np.nextafter(3.0, np.inf)]
    nan = workspace([2.0, np.nan, 4.0])
    assert np.isnan(nan.getTofMin()) and nan.edges.tolist() == [2.0, np.nextafter(4.0, np.inf)]
    assert workspace([]).edges.tolist() == [0.0, 1.0] and workspace([]).getTofMax() == 0.0


def test_default_edges_span_the_events_given_at_construction():
    ws = workspace([5.0])
    ws.add_events(workspace([5.5]))  # one value: the bin is [5, 5 + 1]; the later event does not move it
    assert ws.edges.tolist() == [5.0, 6.0]
    assert (ws.getTofMin(), ws.getTofMax()) == (5.0, 5.5)  # the range follows the events
    outside = workspace([5.0])
    outside.events.append(EventColumns(np.zeros(1, np.uint32), np.array([9.0])))  # appended behind its back
    assert outside.edges.tolist() == [5.0, 6.0] and outside.getTofMax() == 9.0
    replaced = workspace([7.0, 8.0])
    replaced.events = EventColumns(np.zeros(1, np.uint32), np.array([1.0]))
    assert replaced.edges.tolist() == [7.0, np.nextafter(8.0, np.inf)] and replaced.getTofMin() == 1.0
    dropped = workspace([1.0, 2.0, 3.0])
    dropped.drop_oldest(2)
    assert dropped.edges.tolist() == [1.0, np.nextafter(3.0, np.inf)] and dropped.getTofMin() == 3.0
