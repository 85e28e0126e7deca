"""SumSpectra, Integration and SaveNexus of a whole table work a block of rows at a time: same numbers as the
plain numpy reductions (computed here independently), and no temporary near the table's size (traced with
tracemalloc, which sees numpy's allocations)."""

from __future__ import annotations

import tracemalloc

import h5py
import numpy as np
import pytest

from livereduce.algorithms.nexus import save
from livereduce.algorithms.spectra_ops import integrate, sum_spectra
from livereduce.workspace import histogram as histogram_module
from livereduce.workspace.histogram import HistogramWorkspace, row_blocks
from livereduce.workspace.spectra import Spectra

NSPEC, NBINS = 400, 500  # 1.6 MB per array


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(histogram_module, "BLOCK_BYTES", 32 * 1024)  # 8 rows a block: many blocks
    rng = np.random.default_rng(2)
    values = rng.integers(0, 5, (NSPEC, NBINS)).astype(float)
    variances = values + rng.uniform(0, 1, values.shape)
    edges = np.linspace(0.0, 1000.0, NBINS + 1)
    return HistogramWorkspace(values, variances, edges, Spectra.one_to_one(np.arange(NSPEC)))


def peak_of(fn):
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_row_blocks_are_slices_where_consecutive():
    blocks = list(row_blocks(np.array([0, 1, 2, 3, 4, 7, 9, 10]), histogram_module.BLOCK_BYTES // 3))
    assert blocks[0] == slice(0, 3) and blocks[1].tolist() == [3, 4, 7] and blocks[2] == slice(9, 11)


def test_sum_spectra_in_blocks(table):
    idx = np.arange(NSPEC)
    out, peak = peak_of(lambda: sum_spectra(table, idx))
    assert np.array_equal(out.readY(0), table.values.sum(axis=0))  # integer counts: exact in any order
    assert np.allclose(out.variances[0], table.variances.sum(axis=0), rtol=1e-12)
    assert peak < table.values.nbytes / 4
    picked = np.array([3, 5, 6, 7, 100, 399])
    assert np.array_equal(sum_spectra(table, picked).readY(0), table.values[picked].sum(axis=0))


def test_integration_in_blocks(table):
    out, peak = peak_of(lambda: integrate(table, 100.0, 500.0))
    # bins [100, 102) ... [498, 500): indices 50..249 (edges every 2.0)
    assert np.array_equal(out.extractY()[:, 0], table.values[:, 50:250].sum(axis=1))
    assert np.allclose(out.variances[:, 0], table.variances[:, 50:250].sum(axis=1), rtol=1e-12)
    assert out.readX(0).tolist() == [100.0, 500.0]
    assert peak < table.values.nbytes / 4
    # partial bins: [101, 103) takes half of bin 50 and half of bin 51
    part = integrate(table, 101.0, 103.0, partial=True)
    assert np.allclose(part.extractY()[:, 0], 0.5 * table.values[:, 50] + 0.5 * table.values[:, 51])
    picked = np.array([0, 2, 399])
    assert np.array_equal(integrate(table, indices=picked).extractY()[:, 0], table.values[picked].sum(axis=1))


def test_integration_with_per_spectrum_edges(monkeypatch):
    monkeypatch.setattr(histogram_module, "BLOCK_BYTES", 64)
    values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    edges = np.array([[0.0, 1, 2, 3], [10, 11, 12, 13], [0, 2, 4, 6]])
    ws = HistogramWorkspace(values, values.copy(), edges, Spectra.one_to_one(np.arange(3)))
    out = integrate(ws, 0.5, 4.0)  # whole bins inside: row 0 bins 1, 2; row 1 none; row 2 bins 1
    assert out.extractY()[:, 0].tolist() == [5.0, 0.0, 8.0]


def test_save_nexus_writes_errors_in_blocks(table, tmp_path):
    path = tmp_path / "t.nxs"
    _, peak = peak_of(lambda: save(table, str(path)))
    with h5py.File(path) as f:
        assert np.array_equal(f["mantid_workspace_1/workspace/values"][()], table.values)
        assert np.array_equal(f["mantid_workspace_1/workspace/errors"][()], np.sqrt(table.variances))
    assert peak < table.values.nbytes / 4
