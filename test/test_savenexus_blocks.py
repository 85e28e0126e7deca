"""SaveNexus writes errors = sqrt(variances) a block of rows at a time through one reused buffer, straight
into the file (write_direct): the same numbers and layout as one whole-table write (contiguous float64
datasets, as Mantid's SaveNexusProcessed), a last block shorter than the others, and at most about one block
allocated (traced with tracemalloc)."""

from __future__ import annotations

import tracemalloc

import h5py
import numpy as np

from livereduce.algorithms.nexus import save
from livereduce.workspace import histogram as histogram_module
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

NSPEC, NBINS = 1003, 250  # 8 rows of 250 float64 a 16 kB block: 125 full blocks and a last of 3 rows


def test_errors_in_blocks_through_one_buffer(monkeypatch, tmp_path):
    monkeypatch.setattr(histogram_module, "BLOCK_BYTES", 16 * 1024)
    rng = np.random.default_rng(9)
    values = rng.integers(0, 9, (NSPEC, NBINS)).astype(float)
    variances = values + rng.uniform(0, 2, values.shape)
    ws = HistogramWorkspace(
        values, variances, np.linspace(0.0, 500.0, NBINS + 1), Spectra.one_to_one(np.arange(NSPEC))
    )
    path = tmp_path / "p.nxs"
    save(ws, str(path))  # h5py's first-use allocations out of the trace
    tracemalloc.start()
    try:
        save(ws, str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with h5py.File(path) as f:
        d = f["mantid_workspace_1/workspace"]
        for name, expected in (("values", values), ("errors", np.sqrt(variances))):
            assert d[name].dtype == np.float64 and d[name].shape == (NSPEC, NBINS)
            assert d[name].chunks is None and d[name].compression is None  # contiguous, as Mantid writes
            assert np.array_equal(d[name][()], expected)
        assert (
            d["errors"][NSPEC - 3 :].tolist() == np.sqrt(variances[NSPEC - 3 :]).tolist()
        )  # the short block
    # one 16 kB buffer, a spectrum-sized index (8 kB) and the spectrum table's own small arrays; the table is 2 MB
    assert peak < 8 * histogram_module.BLOCK_BYTES < values.nbytes / 10
