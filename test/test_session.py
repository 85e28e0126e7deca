"""The live session driven by the in-process fake listeners over many cycles; totals checked exactly.

Expected numbers come from the listener's fixed events_per_extract and from Mantid's pinned semantics
(MonitorLiveDataTest: with EndRun after the 3rd extract, Stop keeps 3×200 events; Rename keeps the finished
run under <output>_<run>).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from livereduce.errors import ConfigError
from livereduce.listeners.fake import FakeEventListener, FakeHistogramListener
from livereduce.session import Session
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace


def make(ads, listener=None, **kw):
    listener = listener or FakeEventListener(events_per_extract=200, seed=3)
    kw.setdefault("update_every", 0.01)
    return Session(listener=listener, ads=ads, **kw), listener


def test_add_events_keeps_every_event(ads):
    session, listener = make(ads, accum_method="Add")
    for _ in range(10):
        assert session.step()
    acc = ads["result"]
    assert isinstance(acc, EventWorkspace)
    assert acc.getNumberEvents() == 2000 == listener.produced_total
    assert session.state.events_accumulated == 2000
    assert session.state.cycles == 10


def test_add_without_preserving_events_histograms_in_place(ads):
    listener = FakeEventListener(events_per_extract=500, seed=4)
    session, _ = make(ads, listener, accum_method="Add", preserve_events=False)
    for _ in range(6):
        session.step()
    acc = ads["result"]
    assert isinstance(acc, HistogramWorkspace)
    assert acc.values.sum() == 3000  # every event counted once (default bin widened to hold all)
    assert np.array_equal(acc.variances, acc.values)  # Poisson: variance = counts


def test_replace_keeps_only_the_last_chunk(ads):
    session, _ = make(ads, accum_method="Replace")
    for _ in range(4):
        session.step()
    assert ads["result"].getNumberEvents() == 200


def test_append_grows_spectra(ads):
    session, _ = make(ads, accum_method="Append")
    sizes = []
    for _ in range(3):
        session.step()
        sizes.append(ads["result"].getNumberHistograms())
    assert sizes == [2, 4, 6]
    numbers = ads["result"].getSpectrumNumbers()
    assert len(set(numbers)) == 6  # appended spectra get unique numbers


def test_histogram_source_refuses_add(ads):
    with pytest.raises(ConfigError, match="accum_method"):
        Session(listener=FakeHistogramListener(), ads=ads, accum_method="Add")


def test_histogram_source_replace_gives_cumulative_counts(ads):
    listener = FakeHistogramListener(nspectra=10, nbins=100, nperiods=5, periods=[1, 3])
    session, _ = make(ads, listener, accum_method="Replace")
    for _ in range(3):
        session.step()
    group = ads["result"]
    assert len(group) == 2 and ads.doesExist("result_1") and ads.doesExist("result_2")
    # after 3 extracts every bin of spectrum s, period p holds 3·(p·1000 + s)
    assert np.all(group[0].values[4] == 3 * (1 * 1000 + 5))
    assert np.all(group[1].values[9] == 3 * (3 * 1000 + 10))


@pytest.mark.parametrize("behaviour", ["Restart", "Stop", "Rename"])
def test_run_transitions(ads, behaviour):
    listener = FakeEventListener(events_per_extract=200, end_run_every_extracts=3, seed=5)
    session, _ = make(ads, listener, accum_method="Add", run_transition=behaviour)
    results = [session.step() for _ in range(5)]
    if behaviour == "Stop":
        # the EndRun chunk belongs to the finished run: 3 × 200 events, then the session ends
        assert results[:3] == [True, True, False]
        return
    assert all(results)
    # cycles 4 and 5 are run 2: the accumulation restarted at its first chunk
    assert ads["result"].getNumberEvents() == 400
    assert session.state.run_number == 2
    if behaviour == "Rename":
        assert ads["result_1"].getNumberEvents() == 600
    else:
        assert not ads.doesExist("result_1")


def test_stop_keeps_the_end_run_chunk(ads):
    listener = FakeEventListener(events_per_extract=200, end_run_every_extracts=3, seed=6)
    session, _ = make(ads, listener, accum_method="Add", run_transition="Stop")
    while session.step():
        pass
    assert ads["result"].getNumberEvents() == 600
    assert session.state.run_status == "END_RUN"


def test_not_yet_is_retried_without_ending_the_session(ads):
    listener = FakeEventListener(events_per_extract=10, not_yet_times=2, seed=7)
    session, _ = make(ads, listener)
    session.step()
    assert session.state.phase == "waiting" and session.state.cycles == 0
    session.step()
    session.step()
    assert session.state.phase == "running" and session.state.cycles == 1
    assert ads["result"].getNumberEvents() == 10


def test_update_every_zero_runs_one_cycle(ads):
    session, _ = make(ads, update_every=0)
    stop = threading.Event()
    thread = threading.Thread(target=session.run, args=(stop,))
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert session.state.cycles == 1 and session.state.phase == "stopped"


def test_run_loop_stops_promptly_on_request(ads):
    session, _ = make(ads, update_every=30)
    stop = threading.Event()
    thread = threading.Thread(target=session.run, args=(stop,))
    thread.start()
    while session.state.cycles < 1:
        thread.join(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert session.state.cycles == 1


def test_clear_request_starts_a_new_accumulation(ads):
    session, _ = make(ads, accum_method="Add")
    session.step()
    session.step()
    session.request("clear", "test")
    session.step()
    assert ads["result"].getNumberEvents() == 200


def test_compress_request_keeps_every_event_in_less_memory(ads):
    from livereduce.worker import compress_accumulation as _compress_accumulation

    listener = FakeEventListener(
        events_per_extract=20_000, nspectra=2, tof_range=(40_000.0, 40_010.0), seed=8
    )
    session, _ = make(ads, listener, accum_method="Add")
    session.compress_hook = _compress_accumulation
    for _ in range(3):
        session.step()
    before = ads["result"].nbytes()
    session.request("compress", "test")
    session.step()
    acc = ads["result"]
    # 80,000 events over 2 spectra × 10 µs merge into weighted events 0.01 µs apart: far fewer, same total
    assert acc.nbytes() < before
    assert acc.events.weights.sum() == 80_000
    assert acc.getNumberEvents() < 80_000 * 0.6
