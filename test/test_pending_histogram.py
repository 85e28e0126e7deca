"""Rebin(PreserveEvents=False) of events is a pending histogram: Add accumulation histograms its events straight
into the accumulator; every other reader sees the eager histogram.

Expected numbers are worked by hand or made independently with np.histogram per spectrum.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from livereduce.accumulate import Method, accumulate
from livereduce.algorithms.binning import rebin
from livereduce.listeners.fake import FakeEventListener
from livereduce.scripts import compile_script
from livereduce.session import Session
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra


def events_ws(index, x, nspec=2, weights=None, err2=None):
    spectra = Spectra.one_to_one(np.arange(nspec))
    return EventWorkspace(
        spectra, EventColumns(np.array(index, np.uint32), np.array(x, float), None, None, weights, err2)
    )


def by_numpy(index, x, edges, nspec, weights=None):
    """Per-spectrum np.histogram: the independent reference (np.histogram's last bin includes its right
    edge, Mantid's does not: values on the last edge are dropped first)."""
    index, x = np.asarray(index), np.asarray(x, float)
    w = None if weights is None else np.asarray(weights, float)
    keep = x != edges[-1]
    index, x, w = index[keep], x[keep], None if w is None else w[keep]
    return np.array(
        [
            np.histogram(x[index == s], edges, weights=None if w is None else w[index == s])[0]
            for s in range(nspec)
        ],
        float,
    )


# spectrum 0: 1.0, 9.99 (bin 0), 10.0 (bin 1: on an edge), 30.0 (outside: the last edge is excluded)
# spectrum 1: 25.0 (bin 2), -1.0 (outside). By hand: [[2, 1, 0], [0, 0, 1]], 2 outside.
INDEX = [0, 0, 0, 0, 1, 1]
X = [1.0, 9.99, 10.0, 30.0, 25.0, -1.0]
HAND = [[2, 1, 0], [0, 0, 1]]


def test_rebin_without_events_is_pending_and_reads_as_the_hand_count():
    h = rebin(events_ws(INDEX, X), "0,10,30", preserve_events=False)
    assert isinstance(h, HistogramWorkspace) and h.pending_events is not None
    assert h.blocksize() == 3 and h.readX(0).tolist() == [0, 10, 20, 30]  # no need to resolve for these
    assert h.pending_events is not None
    assert h.readY(0).tolist() == HAND[0] and h.readY(1).tolist() == HAND[1]
    assert h.pending_events is None  # resolved by reading
    assert h.readE(0).tolist() == pytest.approx(np.sqrt(HAND[0]).tolist())
    assert h.events_outside_bins == 2


def test_outside_count_alone_resolves_a_pending_histogram():
    h = rebin(events_ws(INDEX, X), "0,10,30", preserve_events=False)
    assert h.events_outside_bins == 2
    assert h.extractY().tolist() == HAND


def test_add_histograms_pending_events_into_the_accumulator_in_place():
    rng = np.random.default_rng(7)
    n, nspec = 5000, 7
    i1, x1 = rng.integers(0, nspec, n), rng.uniform(-50, 1050, n)
    i2, x2 = rng.integers(0, nspec, n), rng.uniform(-50, 1050, n)
    edges = np.arange(0.0, 1001.0, 25.0)
    acc = rebin(events_ws(i1, x1, nspec), "0,25,1000", preserve_events=False)
    acc.readY(0)  # the accumulation: resolved (the session reads it every cycle)
    values_buffer = acc.values
    chunk = rebin(events_ws(i2, x2, nspec), "0,25,1000", preserve_events=False)
    out = accumulate(acc, chunk, Method.ADD)
    assert out is acc and acc.values is not None and np.shares_memory(acc.values, values_buffer)
    assert chunk.pending_events is not None  # its table was never made
    expected = by_numpy(i1, x1, edges, nspec) + by_numpy(i2, x2, edges, nspec)
    assert np.array_equal(acc.values, expected)
    assert np.array_equal(acc.variances, expected)
    assert chunk.events_outside_bins == int(((x2 < 0) | (x2 >= 1000)).sum())
    assert chunk.pending_events is not None  # known without resolving
    assert np.array_equal(chunk.extractY(), by_numpy(i2, x2, edges, nspec))  # and still readable


def test_weighted_events_keep_their_variances():
    ws = events_ws(
        [0, 0, 1], [1.0, 2.0, 15.0], weights=np.array([2.0, 0.5, 3.0]), err2=np.array([4.0, 1.0, 9.0])
    )
    acc = HistogramWorkspace.zeros(ws.spectra, [0.0, 10.0, 20.0])
    accumulate(acc, rebin(ws, "0,10,20", preserve_events=False), Method.ADD)
    assert acc.values.tolist() == [[2.5, 0.0], [0.0, 3.0]]
    assert acc.variances.tolist() == [[5.0, 0.0], [0.0, 9.0]]
    eager = rebin(ws, "0,10,20", preserve_events=False)
    assert eager.extractY().tolist() == [[2.5, 0.0], [0.0, 3.0]]
    assert eager.variances.tolist() == [[5.0, 0.0], [0.0, 9.0]]


def test_events_appended_to_the_input_later_do_not_reach_the_histogram():
    ws = events_ws(INDEX, X)
    h = rebin(ws, "0,10,30", preserve_events=False)
    ws.events.append(EventColumns(np.zeros(3, np.uint32), np.full(3, 5.0)))
    assert h.extractY().tolist() == HAND


def test_arithmetic_and_saving_see_the_eager_numbers(tmp_path):
    from livereduce.algorithms.nexus import save

    h = rebin(events_ws(INDEX, X), "0,10,30", preserve_events=False)
    doubled = h + rebin(events_ws(INDEX, X), "0,10,30", preserve_events=False)
    assert doubled.extractY().tolist() == [[4, 2, 0], [0, 0, 2]]
    path = tmp_path / "h.nxs"
    save(rebin(events_ws(INDEX, X), "0,10,30", preserve_events=False), str(path))
    with h5py.File(path) as f:
        assert f["mantid_workspace_1/workspace/values"][()].tolist() == HAND


def test_session_rebin_proc_into_add_accumulation_equals_numpy(tmp_path, ads, monkeypatch):
    """A proc Rebin(PreserveEvents=False) into Add: the accumulation is the histogram of every event sent,
    and the events past the last edge are counted as outside; only the first chunk (which becomes the
    accumulation) is made into a table."""
    seen, resolved = [], []
    real_resolve = HistogramWorkspace._resolve
    monkeypatch.setattr(HistogramWorkspace, "_resolve", lambda ws: resolved.append(1) or real_resolve(ws))

    class Recording(FakeEventListener):
        def extract(self):
            chunk = super().extract()
            if chunk.events is not None:
                seen.append((chunk.events.index.copy(), chunk.events.tof.astype(float)))
            return chunk

    proc = tmp_path / "reduce_FAKE_live_proc.py"
    proc.write_text(
        "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='40000,500,55000', PreserveEvents=False)\n"
    )
    listener = Recording(events_per_extract=400, seed=11, nspectra=3)
    s = Session(
        listener=listener, ads=ads, update_every=0.01, accum_method="Add", proc=compile_script(proc, "proc")
    )
    for _ in range(6):
        s.step()
    assert len(resolved) == 1
    index = np.concatenate([i for i, _ in seen])
    tof = np.concatenate([t for _, t in seen])
    edges = np.arange(40000.0, 55001.0, 500.0)
    acc = ads["result"]
    assert np.array_equal(acc.extractY(), by_numpy(index, tof, edges, 3))
    outside = int(((tof < 40000) | (tof >= 55000)).sum())
    assert outside > 0 and s.state.events_outside_bins == outside
    assert acc.values.sum() + outside == listener.produced_total == 2400
    # kept up from each chunk's in-place counts, not a pass over the table: the same number
    assert s.state.events_accumulated == acc.values.sum() == 2400 - outside


@pytest.mark.parametrize("params", ["0,20,20000", "0,0.1,100", "40000,500,55000", "0.1,0.001,5"])
def test_linear_kernel_puts_edge_values_where_the_edges_say(params, monkeypatch):
    """Every edge, the float just below it, random values and values outside: each lands as np.histogram
    (edges[i] <= x < edges[i+1]) says, on the exact-division path and on the checked-multiply one, with one
    thread and with two owning halves of the spectra."""
    from livereduce.algorithms.binning import edges_from_params
    from livereduce.workspace import histogram_kernels as hk

    edges = edges_from_params(params)
    rng = np.random.default_rng(5)
    span = edges[-1] - edges[0]
    x = np.concatenate(
        [
            edges,
            np.nextafter(edges, -np.inf),
            rng.uniform(edges[0] - 0.1 * span, edges[-1] + 0.1 * span, 3000),
        ]
    )
    x = np.append(x, [np.nan, np.inf, -np.inf])
    nspec = 5
    index = rng.integers(0, nspec + 1, x.size).astype(np.uint32)  # spectrum 5 does not exist: missed
    expected = by_numpy(index, x, edges, nspec)
    in_range = (x >= edges[0]) & (x < edges[-1]) & (index < nspec)
    monkeypatch.setattr(hk, "PARALLEL_MIN_EVENTS", 1)
    for threads in (1, 2):
        values, variances = np.zeros((nspec, edges.size - 1)), np.zeros((nspec, edges.size - 1))
        missed = hk.histogram_into(values, variances, index, x, edges, threads=threads)
        assert np.array_equal(values, expected) and np.array_equal(variances, expected)
        assert missed == int((~in_range).sum())
        counts = np.zeros((nspec, edges.size - 1))
        assert hk.histogram_into(counts, None, index, x.astype(np.float32), edges, threads=threads) == int(
            (
                ~((x.astype(np.float32) >= edges[0]) & (x.astype(np.float32) < edges[-1]) & (index < nspec))
            ).sum()
        )
        assert np.array_equal(counts, by_numpy(index, x.astype(np.float32).astype(float), edges, nspec))


def test_division_is_exact_only_where_it_is():
    from livereduce.algorithms.binning import edges_from_params
    from livereduce.workspace.histogram_kernels import division_is_exact

    assert division_is_exact(edges_from_params("0,20,20000"))
    # 0.1 steps: some float just below an edge divides to that edge's own index (so the checked path is used)
    e = edges_from_params("0,0.1,100")
    below = np.floor((np.nextafter(e[1:], -np.inf) - e[0]) / (e[1] - e[0]))
    assert not np.array_equal(below, np.arange(e.size - 1)) and not division_is_exact(e)


def test_float32_tof_stays_float32_until_read_as_float64():
    import pickle

    from livereduce.chunks import workspace_from_chunk
    from livereduce.listeners.base import Chunk, ChunkEvents

    tof = np.array([1.5, 10.0, 19.999998, 25.25], np.float32)  # 19.999998 is a float32 just below 20
    index = np.array([0, 1, 1, 0], np.uint32)
    chunk = Chunk(
        spectra=Spectra.one_to_one(np.arange(2)),
        events=ChunkEvents(index, tof, np.array([10**18], np.int64), np.zeros(1, np.int64)),
    )
    ws = workspace_from_chunk(chunk)
    assert ws.events.x_native.dtype == np.float32
    acc = HistogramWorkspace.zeros(ws.spectra, [0.0, 10.0, 20.0, 30.0])
    accumulate(acc, rebin(ws, "0,10,30", preserve_events=False), Method.ADD)
    assert acc.values.tolist() == [[1, 0, 1], [0, 2, 0]]  # by hand: 19.999998 < 20 is bin 1
    assert ws.events.x_native.dtype == np.float32  # never converted on that path
    assert pickle.loads(pickle.dumps(ws.events)).x_native.dtype == np.float32  # noqa: S301 - our own bytes
    x = ws.events.x
    assert x.dtype == np.float64 and np.array_equal(x, tof.astype(np.float64))  # exact
    mixed = EventColumns(index, tof)
    mixed.append(EventColumns(np.zeros(1, np.uint32), np.array([0.1])))  # float64 joins: all float64
    assert mixed.x_native.dtype == np.float64
    assert mixed.x.tolist() == [*tof.astype(np.float64).tolist(), 0.1]


def test_pulses_are_spelled_out_per_event_only_when_read():
    from livereduce.chunks import workspace_from_chunk
    from livereduce.listeners.base import Chunk, ChunkEvents

    def chunk(t0):  # 3 pulses: events 0-1, 2 (none), 2-4
        return workspace_from_chunk(
            Chunk(
                spectra=Spectra.one_to_one(np.arange(2)),
                events=ChunkEvents(
                    np.array([0, 1, 0, 1, 1], np.uint32),
                    np.array([1, 2, 3, 4, 5], np.float32),
                    np.array([t0, t0 + 10, t0 + 20], np.int64),
                    np.array([0, 2, 2], np.int64),
                ),
            )
        )

    ws = chunk(1000)
    acc = HistogramWorkspace.zeros(ws.spectra, [0.0, 10.0])
    accumulate(acc, rebin(ws, "0,10,10", preserve_events=False), Method.ADD)
    assert acc.values.tolist() == [[2.0], [3.0]] and ws.events._pulse is None  # never needed
    assert ws.events.pulse.tolist() == [0, 0, 2, 2, 2]  # by hand: pulse 1 has no events
    assert ws.events.pulse_time().tolist() == [1000, 1000, 1020, 1020, 1020]
    kept = chunk(1000)
    kept.add_events(chunk(2000))  # an events accumulation: the second chunk's pulses follow the first's
    assert kept.events.pulse_time().tolist() == [1000, 1000, 1020, 1020, 1020, 2000, 2000, 2020, 2020, 2020]
