"""The live page's plot record reads the whole accumulation every cycle: counts per spectrum a block of rows
(row_blocks) at a time, NaN as 0 as np.nansum, and no temporary near the table's size (traced with tracemalloc,
which sees numpy's allocations); events a block of events at a time, the same way."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from livereduce.status import plot
from livereduce.workspace import histogram as histogram_module
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

NSPEC, NBINS = 400, 500  # 1.6 MB a table


def peak_of(fn):
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(histogram_module, "BLOCK_BYTES", 32 * 1024)  # 8 rows of 500 float64 a block


def test_row_sums_by_hand_with_nan_and_infinities(small_blocks):
    values = np.array(
        [
            [1.0, 2.0, 3.0],
            [np.nan, 2.0, 5.0],  # NaN counts as 0
            [np.nan, np.nan, np.nan],  # all NaN: 0
            [np.inf, 1.0, np.nan],  # inf stays
            [np.inf, -np.inf, 1.0],  # inf - inf: NaN, as np.nansum
            [0.0, 0.0, 0.0],
        ]
    )
    got = plot._row_sums(values)
    assert got[:4].tolist() == [6.0, 7.0, 0.0, np.inf]
    assert np.isnan(got[4]) and got[5] == 0.0
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(got, np.nansum(values, axis=-1))


def test_row_sums_work_a_block_at_a_time(small_blocks):
    rng = np.random.default_rng(5)
    values = rng.integers(0, 7, (NSPEC, NBINS)).astype(float)
    values[rng.integers(0, NSPEC, 60), rng.integers(0, NBINS, 60)] = np.nan  # NaNs in many blocks
    values[-1] = np.nan
    expected = np.array([sum(v for v in row if not np.isnan(v)) for row in values.tolist()])  # by hand
    got, peak = peak_of(lambda: plot._row_sums(values))
    assert np.array_equal(got, expected)  # integer counts: exact in any order
    assert np.array_equal(got, np.nansum(values, axis=-1))
    # the output (3.2 kB), one block's sums, and for NaN rows their copy and mask: far below the table
    assert peak < 2 * histogram_module.BLOCK_BYTES < values.nbytes / 4


def test_plot_data_of_a_histogram_accumulation_has_no_table_sized_temporary(small_blocks):
    rng = np.random.default_rng(6)
    values = rng.integers(0, 5, (NSPEC, NBINS)).astype(float)
    values[3, 7] = np.nan
    ws = HistogramWorkspace(
        values, values.copy(), np.linspace(0.0, 1000.0, NBINS + 1), Spectra.one_to_one(np.arange(NSPEC))
    )
    data, peak = peak_of(lambda: plot.plot_data(ws, "acc", 1))
    assert data is not None and data.image_shape == (20, 20)
    assert data.image == np.nansum(values, axis=-1).tolist()  # 400 spectra: one pixel each
    assert peak < values.nbytes / 4


def test_event_counts_per_spectrum_a_block_of_events_at_a_time(monkeypatch):
    monkeypatch.setattr(histogram_module, "BLOCK_BYTES", 8 * 1000)  # 1000 events a block
    rng = np.random.default_rng(7)
    n, nspec = 200_000, 50
    index = rng.integers(0, nspec, n).astype(np.uint32)
    tof = rng.uniform(0.0, 100.0, n).astype(np.float32)
    ws = EventWorkspace(
        Spectra.one_to_one(np.arange(nspec)), EventColumns(index, tof), np.linspace(0, 100, 11)
    )
    curves, per_spectrum = peak_of(lambda: plot._event_curves(ws))[0]
    assert per_spectrum.tolist() == np.bincount(index, minlength=nspec).astype(float).tolist()
    assert len(curves) == plot.MAX_CURVES
    for i, c in enumerate(curves):  # each of the first spectra's histogram, as numpy makes it
        expected = np.histogram(tof[index == i], bins=np.linspace(0, 100, 11))[0]
        assert c.y == expected.astype(float).tolist()
    _, peak = peak_of(lambda: plot._event_curves(ws))
    # widening the whole index to intp would be 1.6 MB; the first spectra's events (16 %) are kept
    assert peak < index.nbytes * 8 / 4

    w = rng.uniform(0.5, 2.0, n)
    weighted = EventWorkspace(
        Spectra.one_to_one(np.arange(nspec)), EventColumns(index, tof, weights=w), np.linspace(0, 100, 11)
    )
    curves, per_spectrum = plot._event_curves(weighted)
    assert np.allclose(per_spectrum, np.bincount(index, weights=w, minlength=nspec), rtol=1e-12)
    expected = np.histogram(tof[index == 2], bins=np.linspace(0, 100, 11), weights=w[index == 2])[0]
    assert np.allclose(curves[2].y, expected, rtol=1e-12)
